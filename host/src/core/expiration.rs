//! The expiration manager: every lease Warden hands out, in storage at
//! `sys/expire/id/<lease_id>`, and a timer that revokes each one through
//! its engine when it expires. A revocation that fails (the database is
//! down) is retried with exponential back-off.

use crate::error::{Error, Result};
use crate::storage::View;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::Notify;

/// Longest wait between two attempts to revoke an expired lease.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LeaseEntry {
    pub lease_id: String,
    /// The request path that created it, such as `db/creds/app`.
    pub path: String,
    /// The mount that issued it (`db/`), whose engine revokes it.
    pub mount_path: String,
    /// Engine-private data (the database username, the role).
    pub internal: Value,
    pub issue_time: DateTime<Utc>,
    pub expire_time: DateTime<Utc>,
    pub last_renewal: Option<DateTime<Utc>>,
    pub renewable: bool,
}

impl LeaseEntry {
    pub fn ttl(&self, now: DateTime<Utc>) -> i64 {
        (self.expire_time - now).num_seconds().max(0)
    }
}

#[derive(Default)]
struct Queue {
    /// (expiry in Unix milliseconds, lease id), earliest first.
    due: BTreeSet<(i64, String)>,
    when: HashMap<String, i64>,
    /// Failed revocation attempts so far, for the back-off.
    attempts: HashMap<String, u32>,
}

pub struct Expiration {
    storage: View,
    queue: Mutex<Queue>,
    wake: Notify,
}

impl Expiration {
    pub fn new(storage: View) -> Self {
        Expiration {
            storage,
            queue: Mutex::new(Queue::default()),
            wake: Notify::new(),
        }
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn schedule(&self, id: &str, at: DateTime<Utc>) {
        let ms = at.timestamp_millis();
        let mut q = self.queue();
        if let Some(old) = q.when.insert(id.to_string(), ms) {
            q.due.remove(&(old, id.to_string()));
        }
        let earliest = q.due.first().map(|(t, _)| *t);
        q.due.insert((ms, id.to_string()));
        drop(q);
        if earliest.is_none_or(|t| ms < t) {
            self.wake.notify_one();
        }
    }

    fn unschedule(&self, id: &str) {
        let mut q = self.queue();
        if let Some(old) = q.when.remove(id) {
            q.due.remove(&(old, id.to_string()));
        }
        q.attempts.remove(id);
    }

    /// Persist a new or changed lease and (re)arm its timer.
    pub async fn save(&self, entry: &LeaseEntry) -> Result<()> {
        self.storage.put_json(&entry.lease_id, entry).await?;
        self.schedule(&entry.lease_id, entry.expire_time);
        Ok(())
    }

    pub async fn get(&self, lease_id: &str) -> Result<Option<LeaseEntry>> {
        if lease_id.is_empty() || lease_id.ends_with('/') {
            return Ok(None);
        }
        Ok(self.storage.get_json(lease_id).await?)
    }

    /// Forget a lease (after its secret was revoked).
    pub async fn remove(&self, lease_id: &str) -> Result<()> {
        self.storage.delete(lease_id).await?;
        self.unschedule(lease_id);
        Ok(())
    }

    /// Names directly below a lease-id prefix, for LIST sys/leases/lookup.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        Ok(self.storage.list(prefix).await?)
    }

    /// Every lease id below a prefix ("db/creds/app/"), prefix included.
    pub async fn ids_under(&self, prefix: &str) -> Result<Vec<String>> {
        Ok(self.storage.walk(prefix).await?)
    }

    /// Re-arm the timers of every stored lease (at start-up), a page of
    /// leases per storage read. Runs in the background while requests are
    /// served; a lease renewed or revoked meanwhile is not overwritten,
    /// because `schedule` only adds ids the timer does not know yet.
    pub async fn restore(&self) -> Result<usize> {
        const PAGE: usize = 2000;
        let mut after: Option<String> = None;
        let mut count = 0;
        loop {
            let page = self.storage.scan("", after.as_deref(), PAGE).await?;
            let Some((last, _)) = page.last() else { break };
            after = Some(last.clone());
            let mut q = self.queue();
            let earliest = q.due.first().map(|(t, _)| *t);
            let mut sooner = false;
            for (id, bytes) in &page {
                let entry: LeaseEntry = serde_json::from_slice(bytes)
                    .map_err(|e| Error::internal(format!("corrupt lease entry {id:?}: {e}")))?;
                if q.when.contains_key(id) {
                    continue;
                }
                let ms = entry.expire_time.timestamp_millis();
                sooner |= earliest.is_none_or(|t| ms < t);
                q.when.insert(id.clone(), ms);
                q.due.insert((ms, id.clone()));
                count += 1;
            }
            drop(q);
            if sooner {
                self.wake.notify_one();
            }
            if page.len() < PAGE {
                break;
            }
        }
        Ok(count)
    }

    /// After a failed revocation of an expired lease: try again later.
    pub fn retry_later(&self, id: &str) -> Duration {
        let attempts = {
            let mut q = self.queue();
            let n = q.attempts.entry(id.to_string()).or_insert(0);
            *n += 1;
            *n
        };
        let backoff = Duration::from_secs(1u64 << attempts.min(9)).min(MAX_BACKOFF);
        self.schedule(id, Utc::now() + backoff);
        backoff
    }

    /// Wait for the next lease that is due and take it off the timer.
    pub async fn next_due(&self) -> String {
        loop {
            let notified = self.wake.notified();
            let next = self.queue().due.first().cloned();
            match next {
                None => notified.await,
                Some((ms, id)) => {
                    let wait = ms - Utc::now().timestamp_millis();
                    if wait <= 0 {
                        let mut q = self.queue();
                        q.due.remove(&(ms, id.clone()));
                        q.when.remove(&id);
                        return id;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(wait as u64)) => {}
                        _ = notified => {}
                    }
                }
            }
        }
    }
}

/// A lease id is `<request path>/<random>`.
pub fn new_lease_id(path: &str) -> String {
    use rand::Rng;
    use rand::distr::Alphanumeric;
    let suffix: String = rand::rng()
        .sample_iter(&Alphanumeric)
        .take(24)
        .map(char::from)
        .collect();
    format!("{path}/{suffix}")
}

pub fn invalid_lease() -> Error {
    Error::bad("invalid lease")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemoryBackend;
    use std::sync::Arc;

    fn lease(id: &str, expires_in_ms: i64) -> LeaseEntry {
        let now = Utc::now();
        LeaseEntry {
            lease_id: id.into(),
            path: "db/creds/app".into(),
            mount_path: "db/".into(),
            internal: Value::Null,
            issue_time: now,
            expire_time: now + chrono::Duration::milliseconds(expires_in_ms),
            last_renewal: None,
            renewable: true,
        }
    }

    #[tokio::test]
    async fn leases_come_due_in_expiry_order() {
        let exp = Expiration::new(View::new(Arc::new(MemoryBackend::new()), "sys/expire/id/"));
        exp.save(&lease("db/creds/app/b", 60)).await.unwrap();
        exp.save(&lease("db/creds/app/a", 20)).await.unwrap();
        assert_eq!(exp.next_due().await, "db/creds/app/a");
        assert_eq!(exp.next_due().await, "db/creds/app/b");
    }

    #[tokio::test]
    async fn renewal_moves_the_timer_and_removal_cancels_it() {
        let exp = Expiration::new(View::new(Arc::new(MemoryBackend::new()), "sys/expire/id/"));
        exp.save(&lease("x/1", 10)).await.unwrap();
        exp.save(&lease("x/2", 30)).await.unwrap();
        exp.save(&lease("x/1", 100_000)).await.unwrap();
        assert_eq!(exp.next_due().await, "x/2");
        exp.remove("x/1").await.unwrap();
        assert!(exp.queue().due.is_empty());
        assert_eq!(exp.ids_under("").await.unwrap(), vec!["x/2"]);
    }
}
