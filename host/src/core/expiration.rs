//! The expiration manager: every lease Warden hands out, in storage at
//! `sys/expire/id/<lease_id>`, indexed by the token that obtained it at
//! `sys/expire/token/<token hash>/<lease_id>` (written in the same atomic
//! batch, so that revoking a token finds every lease issued through it, as
//! Vault's secondary index does), and a timer that revokes each one through
//! its engine when it expires. A revocation that fails (the database is
//! down) is retried with exponential back-off; past the retry limit the
//! lease is marked irrevocable (kept, listed by `sys/leases?type=irrevocable`,
//! no longer retried) as Vault does. The attempt count and the mark live in
//! the stored lease, so they survive a restart.

use crate::error::{Error, Result};
use crate::storage::{View, Write};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::Notify;

/// Longest wait between two attempts to revoke an expired lease.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// How expired leases whose revocation fails are retried: the n-th retry
/// waits `base * 2^(n-1)` (at most `MAX_BACKOFF`); after `limit` failed
/// attempts the lease becomes irrevocable (`limit` 0: retry forever).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub base: Duration,
    pub limit: u32,
}

impl Default for RetryPolicy {
    /// Vault's: a 10 s base and 6 attempts (revokeRetryBase, maxRevokeAttempts).
    fn default() -> Self {
        RetryPolicy {
            base: Duration::from_secs(10),
            limit: 6,
        }
    }
}

impl RetryPolicy {
    pub fn backoff(&self, attempts: u32) -> Duration {
        let doublings = attempts.saturating_sub(1).min(16);
        self.base.saturating_mul(1u32 << doublings).min(MAX_BACKOFF)
    }
}

/// The server's retry policy, set once at start from its flags (every core
/// of the process, across seal and unseal, uses the same).
static RETRY_POLICY: OnceLock<RetryPolicy> = OnceLock::new();

pub fn set_retry_policy(policy: RetryPolicy) {
    let _ = RETRY_POLICY.set(policy);
}

/// Failed revocations of an expired lease so far, stored with the lease.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokeState {
    #[serde(default)]
    pub attempts: u32,
    /// Set when the lease became irrevocable: the last revocation error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl RevokeState {
    pub fn is_clean(&self) -> bool {
        *self == RevokeState::default()
    }
}

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
    /// Revocation attempts that failed (absent in leases never failed).
    #[serde(default, skip_serializing_if = "RevokeState::is_clean")]
    pub revoke: RevokeState,
    /// The token store's name (salted hash) of the token the lease was
    /// issued through; revoking that token revokes the lease. Empty for a
    /// token's own expiry lease and for leases stored before the index.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub token: String,
    /// When the batch token it was issued through expires: nothing can
    /// revoke such a token early, so the lease never lives past it, renewed
    /// or not (Vault's rule). None: no such bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_by: Option<DateTime<Utc>>,
}

impl LeaseEntry {
    /// What the engine that issued it sees of it.
    pub fn as_lease(&self) -> crate::logical::Lease<'_> {
        crate::logical::Lease {
            id: &self.lease_id,
            internal: &self.internal,
        }
    }

    pub fn ttl(&self, now: DateTime<Utc>) -> i64 {
        (self.expire_time - now).num_seconds().max(0)
    }

    pub fn is_irrevocable(&self) -> bool {
        self.revoke.error.is_some()
    }
}

/// [`Expiration::stats`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseStats {
    pub live: usize,
    /// Live leases below each mount asked about, in the same order.
    pub by_mount: Vec<usize>,
    pub irrevocable: usize,
    pub revocation_backlog: usize,
}

#[derive(Default)]
struct Queue {
    /// (expiry in Unix milliseconds, lease id), earliest first.
    due: BTreeSet<(i64, String)>,
    when: HashMap<String, i64>,
    /// Leases marked irrevocable (no timer), for listing them without a
    /// scan of every lease.
    irrevocable: BTreeSet<String>,
    /// Leases taken off the timer to be revoked now: still live until the
    /// revocation removes them or re-arms their timer.
    revoking: HashSet<String>,
    /// Lease-count quotas' prefixes: how many quotas watch each, and how
    /// many live leases (timed, irrevocable or being revoked) are below it.
    tracked: HashMap<String, Tracked>,
    /// The tracked prefixes that do not end in '/' (a quota on
    /// `db/creds/ap*`): the others are found from a lease id's own
    /// prefixes, so a change costs a lookup per '/' of its id, not a
    /// comparison with every tracked prefix (every namespace is one).
    odd: HashSet<String>,
}

#[derive(Default)]
struct Tracked {
    watchers: usize,
    live: usize,
}

impl Queue {
    fn is_live(&self, id: &str) -> bool {
        self.when.contains_key(id) || self.irrevocable.contains(id) || self.revoking.contains(id)
    }

    /// After a change of `id` that made it live or not (`was` before):
    /// keep the tracked counts.
    fn counted(&mut self, id: &str, was: bool) {
        let now = self.is_live(id);
        if was == now || self.tracked.is_empty() {
            return;
        }
        let odd: Vec<String> = self
            .odd
            .iter()
            .filter(|p| id.starts_with(p.as_str()))
            .cloned()
            .collect();
        let prefixes = std::iter::once("")
            .chain(id.match_indices('/').map(|(i, _)| &id[..=i]))
            .chain(odd.iter().map(String::as_str));
        for prefix in prefixes {
            if let Some(t) = self.tracked.get_mut(prefix) {
                t.live = if now {
                    t.live.saturating_add(1)
                } else {
                    t.live.saturating_sub(1)
                };
            }
        }
    }
}

pub struct Expiration {
    /// Every lease by id (`sys/expire/id/`).
    storage: View,
    /// `sys/expire/`, for batches that write a lease with its token index.
    root: View,
    queue: Mutex<Queue>,
    wake: Notify,
    policy: RetryPolicy,
    /// Lease ids of requests being handled right now, which may be issuing
    /// a secret whose lease is not stored yet: crash recovery, which runs
    /// while requests are served, must leave their write-ahead records alone.
    issuing: Mutex<HashSet<String>>,
}

/// Marks a lease id as being issued until dropped ([`Expiration::issuing`]).
pub struct Issuing<'a> {
    expiration: &'a Expiration,
    lease_id: String,
}

impl Drop for Issuing<'_> {
    fn drop(&mut self) {
        self.expiration
            .issuing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.lease_id);
    }
}

impl Expiration {
    /// The manager over its storage view (`sys/expire/`).
    pub fn new(storage: View) -> Self {
        Self::with_policy(storage, RETRY_POLICY.get().copied().unwrap_or_default())
    }

    pub fn with_policy(root: View, policy: RetryPolicy) -> Self {
        Expiration {
            storage: root.sub(ID),
            root,
            queue: Mutex::new(Queue::default()),
            wake: Notify::new(),
            policy,
            issuing: Mutex::new(HashSet::new()),
        }
    }

    /// Mark `lease_id` as being issued by a request in flight, until the
    /// guard is dropped (after its lease is stored, or the request failed).
    pub fn issuing(&self, lease_id: &str) -> Issuing<'_> {
        self.issuing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(lease_id.to_string());
        Issuing {
            expiration: self,
            lease_id: lease_id.to_string(),
        }
    }

    /// True while a request that may issue `lease_id` is in flight. Check
    /// it before looking the lease up: a request unmarks its id only after
    /// its lease is stored, so "not issuing, and no lease" means no lease
    /// will come.
    pub fn is_issuing(&self, lease_id: &str) -> bool {
        self.issuing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(lease_id)
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn schedule(&self, id: &str, at: DateTime<Utc>) {
        let ms = at.timestamp_millis();
        let mut q = self.queue();
        let was = q.is_live(id);
        q.revoking.remove(id);
        if let Some(old) = q.when.insert(id.to_string(), ms) {
            q.due.remove(&(old, id.to_string()));
        }
        q.counted(id, was);
        let earliest = q.due.first().map(|(t, _)| *t);
        q.due.insert((ms, id.to_string()));
        drop(q);
        if earliest.is_none_or(|t| ms < t) {
            self.wake.notify_one();
        }
    }

    fn unschedule(&self, id: &str) {
        let mut q = self.queue();
        let was = q.is_live(id);
        if let Some(old) = q.when.remove(id) {
            q.due.remove(&(old, id.to_string()));
        }
        q.irrevocable.remove(id);
        q.revoking.remove(id);
        q.counted(id, was);
    }

    /// A revocation job of `id` ended without removing the lease or
    /// re-arming its timer (the lease was gone already): it is not live.
    pub fn revocation_done(&self, id: &str) {
        let mut q = self.queue();
        let was = q.is_live(id);
        q.revoking.remove(id);
        q.counted(id, was);
    }

    /// Start counting the live leases below `prefix` (a lease-count
    /// quota's path); counted from the timer's own sets, then kept as
    /// leases come and go. Leases not restored yet after a start are not
    /// counted until they are.
    pub fn track(&self, prefix: &str) {
        let mut q = self.queue();
        if let Some(t) = q.tracked.get_mut(prefix) {
            t.watchers += 1;
            return;
        }
        let below = |id: &&String| id.starts_with(prefix);
        let live = q.when.keys().filter(below).count()
            + q.irrevocable.iter().filter(below).count()
            + q.revoking.iter().filter(below).count();
        q.tracked.insert(prefix.to_string(), Tracked { watchers: 1, live });
        if !prefix.is_empty() && !prefix.ends_with('/') {
            q.odd.insert(prefix.to_string());
        }
    }

    /// Stop counting for one quota that watched `prefix`.
    pub fn untrack(&self, prefix: &str) {
        let mut q = self.queue();
        if let Some(t) = q.tracked.get_mut(prefix) {
            t.watchers = t.watchers.saturating_sub(1);
            if t.watchers == 0 {
                q.tracked.remove(prefix);
                q.odd.remove(prefix);
            }
        }
    }

    /// How many live leases are below a tracked `prefix` (0 if untracked).
    pub fn live_under(&self, prefix: &str) -> usize {
        self.queue().tracked.get(prefix).map_or(0, |t| t.live)
    }

    /// Persist a new or changed lease, with its token index in the same
    /// batch, and (re)arm its timer.
    pub async fn save(&self, entry: &LeaseEntry) -> Result<()> {
        if entry.token.is_empty() {
            self.storage.put_json(&entry.lease_id, entry).await?;
        } else {
            let bytes = serde_json::to_vec(entry).map_err(|e| Error::internal(format!("encoding a lease: {e}")))?;
            self.root
                .batch(vec![
                    Write::Put(format!("{ID}{}", entry.lease_id), bytes),
                    Write::Put(token_key(&entry.token, &entry.lease_id), Vec::new()),
                ])
                .await?;
        }
        self.schedule(&entry.lease_id, entry.expire_time);
        Ok(())
    }

    /// The ids of the leases issued through a token (its salted hash).
    pub async fn ids_by_token(&self, token: &str) -> Result<Vec<String>> {
        if token.is_empty() || token.contains('/') {
            return Ok(Vec::new());
        }
        let prefix = format!("{TOKEN}{token}/");
        Ok(self
            .root
            .walk(&prefix)
            .await?
            .into_iter()
            .map(|key| key[prefix.len()..].to_string())
            .collect())
    }

    pub async fn get(&self, lease_id: &str) -> Result<Option<LeaseEntry>> {
        if lease_id.is_empty() || lease_id.ends_with('/') {
            return Ok(None);
        }
        Ok(self.storage.get_json(lease_id).await?)
    }

    /// Forget a lease (after its secret was revoked), and its entry in the
    /// index of `token`, the token it was issued through (empty: none).
    pub async fn remove(&self, lease_id: &str, token: &str) -> Result<()> {
        if token.is_empty() {
            self.storage.delete(lease_id).await?;
        } else {
            self.root
                .batch(vec![
                    Write::Delete(format!("{ID}{lease_id}")),
                    Write::Delete(token_key(token, lease_id)),
                ])
                .await?;
        }
        self.unschedule(lease_id);
        Ok(())
    }

    /// Drop an index entry whose lease is already gone.
    pub async fn forget_index(&self, token: &str, lease_id: &str) -> Result<()> {
        Ok(self.root.delete(&token_key(token, lease_id)).await?)
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
                if q.is_live(id) {
                    continue;
                }
                if entry.is_irrevocable() {
                    q.irrevocable.insert(id.clone());
                    q.counted(id, false);
                    continue;
                }
                let ms = entry.expire_time.timestamp_millis();
                sooner |= earliest.is_none_or(|t| ms < t);
                q.when.insert(id.clone(), ms);
                q.due.insert((ms, id.clone()));
                q.counted(id, false);
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

    /// After a failed revocation of an expired lease: count the attempt in
    /// the stored lease, then either re-arm its timer after the back-off
    /// (returned) or, at the retry limit, mark it irrevocable (None): it is
    /// kept and listed, and only an explicit revoke or revoke-force ends it.
    pub async fn revocation_failed(&self, id: &str, error: &str) -> Result<Option<Duration>> {
        let Some(mut entry) = self.get(id).await? else {
            self.revocation_done(id);
            return Ok(None); // revoked meanwhile
        };
        entry.revoke.attempts = entry.revoke.attempts.saturating_add(1);
        if self.policy.limit > 0 && entry.revoke.attempts >= self.policy.limit {
            entry.revoke.error = Some(error.to_string());
            self.storage.put_json(id, &entry).await?;
            let mut q = self.queue();
            let was = q.is_live(id);
            if let Some(old) = q.when.remove(id) {
                q.due.remove(&(old, id.to_string()));
            }
            q.revoking.remove(id);
            q.irrevocable.insert(id.to_string());
            q.counted(id, was);
            return Ok(None);
        }
        if let Err(e) = self.storage.put_json(id, &entry).await {
            // Still retry: the timer must not lose the lease.
            self.retry_in(id, self.policy.backoff(entry.revoke.attempts));
            return Err(e.into());
        }
        let backoff = self.policy.backoff(entry.revoke.attempts);
        self.retry_in(id, backoff);
        Ok(Some(backoff))
    }

    /// Re-arm a lease's timer `after` from now (a failed retry bookkeeping).
    pub fn retry_in(&self, id: &str, after: Duration) {
        self.schedule(id, Utc::now() + after);
    }

    pub fn policy(&self) -> RetryPolicy {
        self.policy
    }

    /// What the metrics show of the timer (`sys/metrics`): live leases in
    /// all and below each of `mounts` (paths ending in '/': a lease counts
    /// for the longest that prefixes its id), irrevocable leases, and the
    /// revocation backlog (leases past their expiry, queued or being
    /// revoked). One pass over the live leases, under the timer's lock.
    pub fn stats(&self, mounts: &[&str]) -> LeaseStats {
        let q = self.queue();
        let index: HashMap<&str, usize> = mounts.iter().enumerate().map(|(i, m)| (*m, i)).collect();
        let mut by_mount = vec![0usize; mounts.len()];
        let ids = q.when.keys().chain(q.irrevocable.iter()).chain(q.revoking.iter());
        let mut live = 0;
        for id in ids {
            live += 1;
            let mount = id.match_indices('/').rev().find_map(|(i, _)| index.get(&id[..=i]));
            if let Some(&i) = mount {
                by_mount[i] += 1;
            }
        }
        let now = Utc::now().timestamp_millis();
        let overdue = q.due.iter().take_while(|(ms, _)| *ms <= now).count();
        LeaseStats {
            live,
            by_mount,
            irrevocable: q.irrevocable.len(),
            revocation_backlog: overdue + q.revoking.len(),
        }
    }

    /// The ids of the leases marked irrevocable, in order.
    pub fn irrevocable(&self) -> Vec<String> {
        self.queue().irrevocable.iter().cloned().collect()
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
                        // Still live (counted) while its revocation runs.
                        let mut q = self.queue();
                        q.due.remove(&(ms, id.clone()));
                        q.when.remove(&id);
                        q.revoking.insert(id.clone());
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

/// Below `sys/expire/`: leases by id, and the index by token.
const ID: &str = "id/";
const TOKEN: &str = "token/";

fn token_key(token: &str, lease_id: &str) -> String {
    format!("{TOKEN}{token}/{lease_id}")
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
    use crate::storage::layout;
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
            revoke: RevokeState::default(),
            token: String::new(),
            end_by: None,
        }
    }

    #[test]
    fn a_lease_id_is_issuing_until_its_guard_drops() {
        let exp = Expiration::new(View::new(Arc::new(MemoryBackend::new()), layout::EXPIRE));
        let guard = exp.issuing("db/creds/app/x");
        assert!(exp.is_issuing("db/creds/app/x"));
        assert!(!exp.is_issuing("db/creds/app/y"));
        drop(guard);
        assert!(!exp.is_issuing("db/creds/app/x"));
    }

    #[tokio::test]
    async fn leases_come_due_in_expiry_order() {
        let exp = Expiration::new(View::new(Arc::new(MemoryBackend::new()), layout::EXPIRE));
        exp.save(&lease("db/creds/app/b", 60)).await.unwrap();
        exp.save(&lease("db/creds/app/a", 20)).await.unwrap();
        assert_eq!(exp.next_due().await, "db/creds/app/a");
        assert_eq!(exp.next_due().await, "db/creds/app/b");
    }

    /// The metrics' view: leases by mount (the longest prefixing mount),
    /// and the revocation backlog (overdue or being revoked).
    #[tokio::test]
    async fn stats_count_leases_by_mount_and_the_backlog() {
        let exp = Expiration::new(View::new(Arc::new(MemoryBackend::new()), layout::EXPIRE));
        exp.save(&lease("db/creds/app/a", -1000)).await.unwrap();
        exp.save(&lease("db/creds/app/b", 60_000)).await.unwrap();
        exp.save(&lease("db/x/creds/app/c", 60_000)).await.unwrap();
        exp.save(&lease("auth/token/create/d", 60_000)).await.unwrap();
        let stats = exp.stats(&["db/", "db/x/", "empty/"]);
        assert_eq!(
            stats,
            LeaseStats {
                live: 4,
                by_mount: vec![2, 1, 0],
                irrevocable: 0,
                revocation_backlog: 1,
            }
        );
        // Taken off the timer to be revoked: still live, still in the
        // backlog. Without db/x/ asked about, its lease counts for db/.
        assert_eq!(exp.next_due().await, "db/creds/app/a");
        let stats = exp.stats(&["db/"]);
        assert_eq!((stats.live, stats.by_mount[0], stats.revocation_backlog), (4, 3, 1));
        exp.remove("db/creds/app/a", "").await.unwrap();
        assert_eq!(exp.stats(&[]).revocation_backlog, 0);
    }

    #[tokio::test]
    async fn renewal_moves_the_timer_and_removal_cancels_it() {
        let exp = Expiration::new(View::new(Arc::new(MemoryBackend::new()), layout::EXPIRE));
        exp.save(&lease("x/1", 10)).await.unwrap();
        exp.save(&lease("x/2", 30)).await.unwrap();
        exp.save(&lease("x/1", 100_000)).await.unwrap();
        assert_eq!(exp.next_due().await, "x/2");
        exp.remove("x/1", "").await.unwrap();
        assert!(exp.queue().due.is_empty());
        assert_eq!(exp.ids_under("").await.unwrap(), vec!["x/2"]);
    }

    /// Lease-count quotas count live leases below a prefix: saved, being
    /// revoked, re-armed after a failure, irrevocable, restored; not once
    /// removed, nor twice when renewed.
    #[tokio::test]
    async fn live_leases_are_counted_below_tracked_prefixes() {
        let view = View::new(Arc::new(MemoryBackend::new()), layout::EXPIRE);
        let exp = Expiration::with_policy(
            view.clone(),
            RetryPolicy {
                base: Duration::from_millis(1),
                limit: 2,
            },
        );
        exp.save(&lease("db/creds/app/1", 10)).await.unwrap();
        exp.track("db/creds/app/");
        exp.track("");
        assert_eq!(exp.live_under("db/creds/app/"), 1);
        exp.save(&lease("db/creds/app/2", 100_000)).await.unwrap();
        exp.save(&lease("db/creds/other/1", 100_000)).await.unwrap();
        exp.save(&lease("db/creds/app/2", 200_000)).await.unwrap(); // renewed
        assert_eq!((exp.live_under("db/creds/app/"), exp.live_under("")), (2, 3));
        // Due: still live while it is revoked; a failure re-arms it, the
        // last allowed failure makes it irrevocable (live until removed).
        assert_eq!(exp.next_due().await, "db/creds/app/1");
        assert_eq!(exp.live_under("db/creds/app/"), 2);
        assert!(exp.revocation_failed("db/creds/app/1", "down").await.unwrap().is_some());
        assert_eq!(exp.next_due().await, "db/creds/app/1");
        assert!(exp.revocation_failed("db/creds/app/1", "down").await.unwrap().is_none());
        assert_eq!(exp.live_under("db/creds/app/"), 2);
        exp.remove("db/creds/app/1", "").await.unwrap();
        assert_eq!(exp.live_under("db/creds/app/"), 1);
        // A revocation that found its lease gone leaves nothing counted.
        exp.save(&lease("db/creds/app/3", 5)).await.unwrap();
        assert_eq!(exp.next_due().await, "db/creds/app/3");
        view.delete("id/db/creds/app/3").await.unwrap();
        exp.revocation_done("db/creds/app/3");
        assert_eq!(exp.live_under("db/creds/app/"), 1);
        // Restored leases count as they are restored; untracked, 0.
        let fresh = Expiration::new(view);
        fresh.track("db/creds/app/");
        assert_eq!(fresh.live_under("db/creds/app/"), 0);
        fresh.restore().await.unwrap();
        assert_eq!(fresh.live_under("db/creds/app/"), 1);
        fresh.untrack("db/creds/app/");
        assert_eq!(fresh.live_under("db/creds/app/"), 0);
        // A prefix that does not end in '/' (a quota on `db/creds/ap*`),
        // and a namespace's, count too.
        fresh.track("db/creds/ap");
        fresh.track("team-a/");
        fresh.save(&lease("db/creds/apx/1", 100_000)).await.unwrap();
        fresh.save(&lease("team-a/db/creds/app/1", 100_000)).await.unwrap();
        assert_eq!(fresh.live_under("db/creds/ap"), 2);
        assert_eq!(fresh.live_under("team-a/"), 1);
        fresh.remove("db/creds/apx/1", "").await.unwrap();
        assert_eq!(fresh.live_under("db/creds/ap"), 1);
    }

    #[test]
    fn backoff_doubles_from_the_base_up_to_the_cap() {
        let p = RetryPolicy {
            base: Duration::from_secs(10),
            limit: 6,
        };
        let waits: Vec<u64> = (1..=7).map(|n| p.backoff(n).as_secs()).collect();
        assert_eq!(waits, vec![10, 20, 40, 80, 160, 300, 300]);
        assert_eq!(RetryPolicy::default(), p);
    }

    #[tokio::test]
    async fn past_the_retry_limit_a_lease_becomes_irrevocable_and_survives_a_restart() {
        let backend = Arc::new(MemoryBackend::new());
        let policy = RetryPolicy {
            base: Duration::from_secs(1),
            limit: 3,
        };
        let exp = Expiration::with_policy(View::new(backend.clone(), layout::EXPIRE), policy);
        exp.save(&lease("db/creds/app/x", 0)).await.unwrap();
        assert_eq!(exp.next_due().await, "db/creds/app/x");
        assert_eq!(
            exp.revocation_failed("db/creds/app/x", "down").await.unwrap(),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            exp.revocation_failed("db/creds/app/x", "down").await.unwrap(),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            exp.revocation_failed("db/creds/app/x", "still down").await.unwrap(),
            None
        );
        assert!(exp.queue().due.is_empty(), "an irrevocable lease has no timer");
        assert_eq!(exp.irrevocable(), vec!["db/creds/app/x"]);
        let stored = exp.get("db/creds/app/x").await.unwrap().unwrap();
        assert_eq!(stored.revoke.attempts, 3);
        assert_eq!(stored.revoke.error.as_deref(), Some("still down"));

        // A new manager over the same storage (a restart) knows the mark.
        let again = Expiration::with_policy(View::new(backend, layout::EXPIRE), policy);
        again.save(&lease("db/creds/app/y", 60_000)).await.unwrap();
        assert_eq!(again.restore().await.unwrap(), 0);
        assert_eq!(again.irrevocable(), vec!["db/creds/app/x"]);
        assert_eq!(again.queue().due.len(), 1);
        again.remove("db/creds/app/x", "").await.unwrap();
        assert!(again.irrevocable().is_empty());
    }

    #[test]
    fn old_lease_entries_without_the_revoke_state_still_load() {
        let old = r#"{"lease_id":"a/b","path":"a","mount_path":"a/","internal":null,
            "issue_time":"2026-01-01T00:00:00Z","expire_time":"2026-01-01T00:01:00Z",
            "last_renewal":null,"renewable":true}"#;
        let entry: LeaseEntry = serde_json::from_str(old).unwrap();
        assert!(entry.revoke.is_clean() && !entry.is_irrevocable());
        assert!(!serde_json::to_string(&entry).unwrap().contains("revoke"));
    }
}
