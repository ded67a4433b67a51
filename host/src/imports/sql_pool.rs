//! The connection pool behind the `sql` import, one per database
//! configuration. The host's own rather than sqlx's `Pool`, which pings
//! every connection as it is handed back (a database round trip and a
//! spawned task for every statement batch: per credential, more than the
//! CREATE USER itself costs Warden) and has no idle cap.
//!
//! It honours Vault's three settings: at most `max_open` connections exist
//! at once (a semaphore), at most `max_idle` wait idle (a connection handed
//! back beyond that is closed), and none is used past `max_lifetime`. A
//! connection comes back only through [`Pooled::release`] after a use that
//! left it sound; one dropped mid-statement (a timeout) or after a transport
//! error is closed, never reused.

use sqlx::Connection;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// An idle connection older than this is closed rather than reused: the
/// server or a firewall may have dropped it meanwhile (MySQL's wait_timeout),
/// and nothing tests a connection before it is used.
const IDLE_LIMIT: Duration = Duration::from_secs(5 * 60);

pub struct ConnPool<C: Connection> {
    options: C::Options,
    permits: Arc<Semaphore>,
    idle: Mutex<Vec<Idle<C>>>,
    max_idle: usize,
    max_open: usize,
    max_lifetime: Option<Duration>,
    acquire_timeout: Duration,
    closed: AtomicBool,
}

/// [`ConnPool::usage`]; several pools of one connection add up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolUsage {
    pub in_use: usize,
    pub idle: usize,
    pub max_open: usize,
}

impl std::ops::AddAssign for PoolUsage {
    fn add_assign(&mut self, other: PoolUsage) {
        self.in_use += other.in_use;
        self.idle += other.idle;
        self.max_open += other.max_open;
    }
}

struct Idle<C> {
    conn: C,
    born: Instant,
    since: Instant,
}

/// A connection taken from a pool. Dropped without [`Pooled::release`]
/// (the use was interrupted or failed; it may be mid-protocol), its socket
/// is closed and its slot freed.
pub struct Pooled<C: Connection> {
    conn: Option<C>,
    born: Instant,
    pool: Arc<ConnPool<C>>,
    /// The slot this connection holds; a connection being closed keeps it
    /// until it is gone, so no more than max_open ever exist at once.
    permit: Option<OwnedSemaphorePermit>,
}

impl<C: Connection> std::ops::Deref for Pooled<C> {
    type Target = C;
    fn deref(&self) -> &C {
        self.conn
            .as_ref()
            .expect("a pooled connection is present until released")
    }
}

impl<C: Connection> std::ops::DerefMut for Pooled<C> {
    fn deref_mut(&mut self) -> &mut C {
        self.conn
            .as_mut()
            .expect("a pooled connection is present until released")
    }
}

/// Close a connection politely (the server logs no aborted session) without
/// making the caller wait; `slot`, if any, is freed once it is closed.
fn close_later<C: Connection + 'static>(conn: C, slot: Option<OwnedSemaphorePermit>) {
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        rt.spawn(async move {
            let _ = conn.close().await;
            drop(slot);
        });
    }
}

impl<C: Connection + 'static> ConnPool<C> {
    /// `max_idle` 0 means as many as `max_open` (Vault's default).
    pub fn new(
        options: C::Options,
        max_open: u32,
        max_idle: u32,
        max_lifetime: Option<Duration>,
        acquire_timeout: Duration,
    ) -> Arc<Self> {
        let max_open = max_open.max(1);
        let max_idle = if max_idle == 0 {
            max_open
        } else {
            max_idle.min(max_open)
        };
        Arc::new(ConnPool {
            options,
            permits: Arc::new(Semaphore::new(max_open as usize)),
            idle: Mutex::new(Vec::new()),
            max_idle: max_idle as usize,
            max_open: max_open as usize,
            max_lifetime,
            acquire_timeout,
            closed: AtomicBool::new(false),
        })
    }

    pub fn options(&self) -> &C::Options {
        &self.options
    }

    /// For the metrics: connections lent out (slots taken), connections
    /// waiting idle, and the cap.
    pub fn usage(&self) -> PoolUsage {
        PoolUsage {
            in_use: self.max_open.saturating_sub(self.permits.available_permits()),
            idle: self.idle().len(),
            max_open: self.max_open,
        }
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    fn expired(&self, born: Instant) -> bool {
        self.max_lifetime.is_some_and(|life| born.elapsed() >= life)
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Idle<C>>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A connection: the most recently used idle one that is still fit, or
    /// a new one. Waits up to the acquire timeout for a free slot and the
    /// connect together.
    pub async fn acquire(self: &Arc<Self>) -> Result<Pooled<C>, sqlx::Error> {
        let pool = self.clone();
        tokio::time::timeout(self.acquire_timeout, async move {
            if pool.is_closed() {
                return Err(sqlx::Error::PoolClosed);
            }
            let permit = pool
                .permits
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| sqlx::Error::PoolClosed)?;
            loop {
                let next = pool.idle().pop();
                let Some(idle) = next else { break };
                if pool.expired(idle.born) || idle.since.elapsed() >= IDLE_LIMIT {
                    // Closed before its replacement opens, in this slot.
                    let _ = idle.conn.close().await;
                    continue;
                }
                return Ok(Pooled {
                    conn: Some(idle.conn),
                    born: idle.born,
                    pool: pool.clone(),
                    permit: Some(permit),
                });
            }
            let conn = C::connect_with(&pool.options).await?;
            Ok(Pooled {
                conn: Some(conn),
                born: Instant::now(),
                pool: pool.clone(),
                permit: Some(permit),
            })
        })
        .await
        .map_err(|_| sqlx::Error::PoolTimedOut)?
    }

    /// Close the pool at once: idle connections now (in the background),
    /// connections in use as they come back. Later acquires fail.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let idle: Vec<Idle<C>> = std::mem::take(&mut *self.idle());
        for i in idle {
            close_later(i.conn, None);
        }
    }
}

impl<C: Connection + 'static> Pooled<C> {
    /// Hand the connection back after a use that left it sound: idle for
    /// the next caller, or closed when the pool is closed, the connection
    /// has outlived max_lifetime or max_idle are already waiting.
    pub fn release(mut self) {
        let Some(conn) = self.conn.take() else { return };
        let pool = &self.pool;
        if pool.is_closed() || pool.expired(self.born) {
            close_later(conn, self.permit.take());
            return;
        }
        let mut idle = pool.idle();
        if idle.len() >= pool.max_idle {
            drop(idle);
            close_later(conn, self.permit.take());
            return;
        }
        idle.push(Idle {
            conn,
            born: self.born,
            since: Instant::now(),
        });
    }
}

/// Whether a connection is still fit for the next caller after `e`: an
/// error the database answered (a failing statement) leaves it in a known
/// state; anything at the transport or protocol level does not.
pub fn reusable_after(e: &sqlx::Error) -> bool {
    matches!(
        e,
        sqlx::Error::Database(_)
            | sqlx::Error::RowNotFound
            | sqlx::Error::ColumnNotFound(_)
            | sqlx::Error::ColumnIndexOutOfBounds { .. }
            | sqlx::Error::ColumnDecode { .. }
            | sqlx::Error::Decode(_)
            | sqlx::Error::TypeNotFound { .. }
    )
}
