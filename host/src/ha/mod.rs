//! High availability on PostgreSQL storage: several nodes share one
//! database; one is active, the others are standbys that forward requests
//! to it and take over when it goes.
//!
//! - [`lock`]: the lock row (holder, epoch, valid_until on the database's
//!   clock) and the members' heartbeats.
//! - [`fence`]: the epoch this node holds; the storage checks it inside
//!   every write statement, so a node that lost the lock (paused past its
//!   lease, partitioned) can never write after another took over.
//! - [`cluster_tls`]: the cluster's certificate, pinned by both ends of a
//!   forwarded request (mutual TLS on the cluster address).
//! - [`forward`]: a standby's forwarding client.
//! - this module: the election loop ([`Ha::run`]) — an unsealed standby
//!   tries to take the lock as its lease runs out, the active node renews
//!   it every second and steps down (its core stopped, its epoch dropped
//!   first) when it cannot renew before its own deadline, when another
//!   node holds the row, on `sys/step-down` or seal — and where a request
//!   that reached a standby goes ([`Ha::route`]).
//!
//! Only the active node runs a core: the mount table, lease timers,
//! rotation schedules and crash recovery start at promotion
//! (`Node::promote`) and stop at demotion.

pub mod cluster_tls;
pub mod fence;
pub mod forward;
pub mod lock;

use crate::node::Node;
use fence::Fence;
use lock::{Address, Holder, PgLock};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a lease on the lock lasts without renewal.
pub const LOCK_TTL: Duration = Duration::from_secs(5);
/// How often the active node renews it.
pub const RENEW_EVERY: Duration = Duration::from_secs(1);
/// The active node gives up this long before its lease would run out by
/// its own clock (the database's clock decides; this covers drift).
const DEADLINE_MARGIN: Duration = Duration::from_millis(500);
/// After `sys/step-down`, the node leaves the lock to the others this long
/// (Vault's manual step-down sleep).
const STEP_DOWN_QUIET: Duration = Duration::from_secs(10);

/// A node's HA settings (from the configuration file).
#[derive(Debug, Clone)]
pub struct Settings {
    /// This node's API address, given to clients redirected to it.
    pub api_addr: String,
    /// This node's cluster address (`https://host:port`), where standbys
    /// forward to when it is active.
    pub cluster_addr: String,
    /// `disable_clustering`: standbys answer 307 to the active node's
    /// api_addr instead of forwarding.
    pub disable_forwarding: bool,
}

/// Where a request that reached this node goes.
pub enum Route {
    /// Served here (the active node, a non-HA node, or a path a standby
    /// serves itself).
    Local,
    /// Forwarded to the active node's cluster address.
    Forward {
        cluster_addr: String,
        identity: Arc<cluster_tls::Identity>,
    },
    /// Answered 307 to the active node's API address.
    Redirect(String),
    /// A standby that knows no active node (or cannot reach it).
    Unavailable(&'static str),
}

/// What a standby serves itself (Vault's unforwarded handlers): health,
/// the seal, the leader, metrics of this node.
const STANDBY_LOCAL: &[&str] = &[
    "sys/health",
    "sys/seal-status",
    "sys/seal",
    "sys/unseal",
    "sys/init",
    "sys/leader",
    "sys/metrics",
];

pub fn served_by_standby(path: &str) -> bool {
    STANDBY_LOCAL.contains(&path)
}

pub struct Ha {
    pub settings: Settings,
    pub node_id: String,
    pub lock: PgLock,
    pub fence: Arc<Fence>,
    pub identity: cluster_tls::Cell,
    pub forwarder: forward::Forwarder,
    address: Address,
    /// The holder as last read (a standby's view of the active node).
    leader: Mutex<Option<Holder>>,
    /// When this node last became active.
    active_since: Mutex<Option<chrono::DateTime<chrono::Utc>>>,
    /// `sys/step-down` was asked.
    step_down: tokio::sync::Notify,
}

/// What a node's role is now, for the loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Sealed or not initialised: takes no part.
    Sealed,
    Standby,
    Active,
}

impl Ha {
    pub fn new(settings: Settings, lock: PgLock, fence: Arc<Fence>) -> Arc<Ha> {
        let address = Address {
            api_addr: settings.api_addr.clone(),
            cluster_addr: settings.cluster_addr.clone(),
            hostname: hostname(),
            version: env!("CARGO_PKG_VERSION").to_string(),
        };
        Arc::new(Ha {
            node_id: fence.holder().to_string(),
            settings,
            lock,
            fence,
            identity: Arc::default(),
            forwarder: forward::Forwarder::default(),
            address,
            leader: Mutex::new(None),
            active_since: Mutex::new(None),
            step_down: tokio::sync::Notify::new(),
        })
    }

    pub fn leader(&self) -> Option<Holder> {
        self.leader.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set_leader(&self, holder: Option<Holder>) {
        *self.leader.lock().unwrap_or_else(|p| p.into_inner()) = holder;
    }

    /// Read the lock row now (a standby's view of the active node).
    pub async fn refresh_leader(&self) {
        if let Ok(holder) = self.lock.holder().await {
            self.set_leader(holder);
        }
    }

    pub fn active_since(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        *self.active_since.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set_active_since(&self, at: Option<chrono::DateTime<chrono::Utc>>) {
        *self.active_since.lock().unwrap_or_else(|p| p.into_inner()) = at;
    }

    pub fn is_active(&self) -> bool {
        self.fence.epoch().is_some()
    }

    /// `sys/step-down`: the loop gives the lock up.
    pub fn request_step_down(&self) {
        self.step_down.notify_one();
    }

    /// The node is being sealed: no more writes, and the lock goes at once
    /// (best effort: otherwise it runs out by itself).
    pub async fn on_seal(&self) {
        if let Some(epoch) = self.fence.epoch() {
            self.fence.drop_epoch();
            self.set_active_since(None);
            if let Err(e) = self.lock.release(&self.node_id, epoch).await {
                tracing::warn!(error = %e, "could not release the HA lock; it runs out by itself");
            }
        }
    }

    /// Where a request for `path` goes on this node (`role` now). A
    /// standby that knows no live active node reads the lock row once
    /// more before it says so (the row may have changed since its last
    /// round).
    pub async fn route(&self, role: Role, path: &str, no_forwarding: bool) -> Route {
        match self.route_known(role, path, no_forwarding) {
            Route::Unavailable(_) => {
                self.refresh_leader().await;
                self.route_known(role, path, no_forwarding)
            }
            route => route,
        }
    }

    fn route_known(&self, role: Role, path: &str, no_forwarding: bool) -> Route {
        if role != Role::Standby || served_by_standby(path) {
            return Route::Local;
        }
        let Some(leader) = self.leader().filter(|l| !l.expired && l.node_id != self.node_id) else {
            return Route::Unavailable("local node not active but active cluster node not found");
        };
        if self.settings.disable_forwarding || no_forwarding {
            return match leader.address.api_addr.is_empty() {
                true => Route::Unavailable("local node not active but active cluster node not found"),
                false => Route::Redirect(leader.address.api_addr),
            };
        }
        let identity = self.identity.read().unwrap_or_else(|p| p.into_inner()).clone();
        match identity {
            Some(identity) if !leader.address.cluster_addr.is_empty() => Route::Forward {
                cluster_addr: leader.address.cluster_addr,
                identity,
            },
            _ if !leader.address.api_addr.is_empty() => Route::Redirect(leader.address.api_addr),
            _ => Route::Unavailable("local node not active but active cluster node not found"),
        }
    }

    /// The election loop, for the life of the process.
    pub async fn run(self: Arc<Self>, node: Arc<Node>) {
        let mut quiet_until: Option<Instant> = None;
        let mut last_heartbeat: Option<Instant> = None;
        let mut deadline = Instant::now();
        loop {
            if last_heartbeat.is_none_or(|t| t.elapsed() >= RENEW_EVERY) {
                last_heartbeat = Some(Instant::now());
                if let Err(e) = self.lock.heartbeat(&self.node_id, &self.address).await {
                    tracing::debug!(error = %e, "HA heartbeat failed");
                }
            }
            match node.ha_role() {
                Role::Sealed => {
                    node.reread_initialized().await;
                    // A static seal unseals a node that saw another one
                    // initialise the storage.
                    node.retry_auto_unseal().await;
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Role::Standby => {
                    node.reread_cluster_info().await;
                    let pause = self.standby_round(&node, &mut quiet_until, &mut deadline).await;
                    tokio::time::sleep(pause).await;
                }
                Role::Active => {
                    let stepped = tokio::select! {
                        _ = self.step_down.notified() => true,
                        _ = tokio::time::sleep(RENEW_EVERY) => false,
                    };
                    if stepped {
                        tracing::info!("stepping down (sys/step-down): the lock goes to a standby");
                        self.demote(&node, true).await;
                        quiet_until = Instant::now().checked_add(STEP_DOWN_QUIET);
                        continue;
                    }
                    self.renew(&node, &mut deadline).await;
                }
            }
        }
    }

    /// A standby's turn: take the lock if it is free, else learn who holds
    /// it. Returns how long to wait before the next turn.
    async fn standby_round(
        &self,
        node: &Arc<Node>,
        quiet_until: &mut Option<Instant>,
        deadline: &mut Instant,
    ) -> Duration {
        if self.fence.epoch().is_some() {
            // Promoted in a previous turn but the core did not start.
            return Duration::from_millis(200);
        }
        let quiet = quiet_until.is_some_and(|t| Instant::now() < t);
        if !quiet {
            let sent = Instant::now();
            match self.lock.try_acquire(&self.node_id, &self.address, LOCK_TTL).await {
                Ok(Some(epoch)) => {
                    *deadline = lease_end(sent);
                    self.fence.hold(epoch);
                    tracing::info!(epoch, "acquired the HA lock: becoming the active node");
                    match node.promote().await {
                        Ok(()) => {
                            self.set_active_since(Some(chrono::Utc::now()));
                            self.set_leader(self.lock.holder().await.ok().flatten());
                            return Duration::ZERO;
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "could not become active; giving the lock up");
                            self.fence.drop_epoch();
                            let _ = self.lock.release(&self.node_id, epoch).await;
                            *quiet_until = Instant::now().checked_add(Duration::from_secs(2));
                        }
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "HA: could not reach the lock"),
            }
        }
        match self.lock.holder().await {
            Ok(holder) => {
                let pause = match &holder {
                    // Try again right as its lease runs out.
                    Some(h) if !h.expired => h.remaining.clamp(Duration::from_millis(50), Duration::from_secs(1)),
                    _ => Duration::from_millis(200),
                };
                self.set_leader(holder);
                if quiet { Duration::from_millis(500) } else { pause }
            }
            Err(e) => {
                tracing::warn!(error = %e, "HA: could not read the lock");
                Duration::from_secs(1)
            }
        }
    }

    /// The active node's renewal; steps down when it must.
    async fn renew(&self, node: &Arc<Node>, deadline: &mut Instant) {
        let Some(epoch) = self.fence.epoch() else {
            // The storage refused a write: another node holds the lock.
            tracing::warn!("the storage refused this node's epoch: stepping down");
            self.demote(node, false).await;
            return;
        };
        if crate::fault::active("ha-blind-renewal") {
            return;
        }
        let sent = Instant::now();
        let left = deadline.saturating_duration_since(sent);
        let renewed = tokio::time::timeout(
            left.max(Duration::from_millis(100)),
            self.lock.renew(&self.node_id, epoch, LOCK_TTL),
        )
        .await;
        match renewed {
            Ok(Ok(true)) => *deadline = lease_end(sent),
            Ok(Ok(false)) => {
                tracing::warn!(epoch, "another node holds the HA lock: stepping down");
                self.demote(node, false).await;
            }
            Ok(Err(_)) | Err(_) if Instant::now() < *deadline => {
                tracing::warn!("could not renew the HA lock; retrying until the lease runs out");
            }
            _ => {
                tracing::warn!(epoch, "the HA lease ran out before it could be renewed: stepping down");
                self.demote(node, false).await;
            }
        }
    }

    /// Stop being active: the epoch goes first (no write lands after), then
    /// the core; with `release`, the lock is freed for a standby at once.
    async fn demote(&self, node: &Arc<Node>, release: bool) {
        let epoch = self.fence.epoch();
        self.fence.drop_epoch();
        self.set_active_since(None);
        node.demote().await;
        if release
            && let Some(epoch) = epoch
            && let Err(e) = self.lock.release(&self.node_id, epoch).await
        {
            tracing::warn!(error = %e, "could not release the HA lock; it runs out by itself");
        }
        self.set_leader(self.lock.holder().await.ok().flatten());
    }

    /// `sys/ha-status`: the members heard from lately.
    pub async fn members(&self) -> crate::storage::Result<Vec<lock::Member>> {
        self.lock.members().await
    }

    /// A node shutting down leaves the member list and, if active, the lock.
    pub async fn leave(&self) {
        self.on_seal().await;
        let _ = self.lock.leave(&self.node_id).await;
    }
}

/// When this node's lease ends by its own clock, for a renewal sent at
/// `sent` (the margin covers clock drift against the database's).
fn lease_end(sent: Instant) -> Instant {
    sent.checked_add(LOCK_TTL.saturating_sub(DEADLINE_MARGIN))
        .unwrap_or(sent)
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_standby_serves_its_own_seal_and_health() {
        for p in ["sys/health", "sys/seal-status", "sys/unseal", "sys/leader"] {
            assert!(served_by_standby(p), "{p}");
        }
        for p in [
            "sys/step-down",
            "sys/ha-status",
            "db/creds/app",
            "sys/mounts",
            "team-a/sys/health",
        ] {
            assert!(!served_by_standby(p), "{p}");
        }
    }
}
