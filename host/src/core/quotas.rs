//! Resource quotas (Vault's `sys/quotas`): rate-limit quotas, a token
//! bucket per quota and client address, and lease-count quotas, the live
//! leases below a path (counted by the expiration manager), with the
//! operator's settings (`sys/quotas/config`). Kept in storage below
//! `sys/quotas/` and in memory; the router asks before every request
//! (crate::routing), so a refused request costs no work behind it.
//!
//! A quota's `path` is empty (global), a mount (`db/`), a path below a
//! mount (`db/creds/app`), or such a path ending in `*` (a prefix). The
//! most specific quota that covers a request is the one applied, as in
//! Vault: an exact path, then the longest prefix, then the mount, then the
//! global quota.

use crate::core::expiration::Expiration;
use crate::error::{Error, Result};
use crate::storage::View;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

pub const RATE_LIMIT: &str = "rate-limit";
pub const LEASE_COUNT: &str = "lease-count";
pub const SANDBOX: &str = "sandbox";
const CONFIG: &str = "config";
/// Written once the default lease-count quota was made, so that an
/// operator who deletes it does not see it come back at the next start.
const DEFAULT_MADE: &str = "default-lease-count-made";

/// The lease-count quota every new server starts with, as Vault's: a
/// global cap that keeps a runaway client from filling storage with
/// leases. An operator may change or delete it.
pub const DEFAULT_LEASE_COUNT: &str = "default";
pub const DEFAULT_MAX_LEASES: u64 = 300_000;

/// Vault's default exempt paths: the seal's own, which an operator must
/// reach whatever the quotas say.
pub const DEFAULT_EXEMPT_PATHS: &[&str] = &[
    "sys/generate-recovery-token/attempt",
    "sys/generate-recovery-token/update",
    "sys/generate-root/attempt",
    "sys/generate-root/update",
    "sys/health",
    "sys/seal-status",
    "sys/unseal",
];

/// Paths no rate limit applies to, whatever the configuration says: the
/// quotas' own endpoints, so an operator who set a global limit too tight
/// (and emptied the exempt paths) can still lift it.
pub const ABSOLUTE_EXEMPT_PATHS: &[&str] = &["sys/quotas/*"];

/// Most buckets kept: past this, buckets idle for longer than their
/// quota's interval and block are dropped (a full bucket is the same as
/// none), so a flood from many addresses cannot grow the map without end.
const MAX_BUCKETS: usize = 100_000;

/// What the rate-limit response headers say (sent when
/// `enable_rate_limit_response_headers` is set).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateState {
    /// The bucket's size.
    pub limit: u64,
    /// Whole tokens left.
    pub remaining: u64,
    /// When the bucket will be full again.
    pub reset: std::time::SystemTime,
}

impl RateState {
    /// Vault's headers (go-limiter's names; the reset as an HTTP date).
    pub fn add_headers(&self, headers: &mut axum::http::HeaderMap) {
        use axum::http::HeaderValue;
        headers.insert("x-ratelimit-limit", HeaderValue::from(self.limit));
        headers.insert("x-ratelimit-remaining", HeaderValue::from(self.remaining));
        let reset = chrono::DateTime::<chrono::Utc>::from(self.reset)
            .format("%a, %d %b %Y %H:%M:%S GMT")
            .to_string();
        if let Ok(value) = HeaderValue::from_str(&reset) {
            headers.insert("x-ratelimit-reset", value);
        }
    }
}

/// A rate-limit quota, as stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RateLimit {
    pub name: String,
    pub path: String,
    /// Requests per `interval` (the bucket's size and refill).
    pub rate: f64,
    /// Seconds.
    pub interval: i64,
    /// Seconds a client that ran out is refused (0: until a token refills).
    pub block_interval: i64,
    #[serde(default)]
    pub inheritable: bool,
}

/// A lease-count quota, as stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LeaseCount {
    pub name: String,
    pub path: String,
    pub max_leases: u64,
    #[serde(default)]
    pub inheritable: bool,
}

/// A sandbox quota (Warden's own): tighter limits for the driver calls
/// made for requests below its path. 0 in a field: the runtime's own.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SandboxQuota {
    pub name: String,
    pub path: String,
    /// Linear memory of one driver instance, bytes.
    #[serde(default)]
    pub max_memory_bytes: u64,
    /// Deadline of one driver call, seconds.
    #[serde(default)]
    pub call_timeout: i64,
    /// Driver calls at once.
    #[serde(default)]
    pub max_instances: u32,
    /// Connections of each database connection's pool.
    #[serde(default)]
    pub max_connections: u32,
}

/// `sys/quotas/config`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct QuotaConfig {
    #[serde(default)]
    pub enable_rate_limit_audit_logging: bool,
    #[serde(default)]
    pub enable_rate_limit_response_headers: bool,
    pub rate_limit_exempt_paths: Vec<String>,
}

impl Default for QuotaConfig {
    fn default() -> Self {
        QuotaConfig {
            enable_rate_limit_audit_logging: false,
            enable_rate_limit_response_headers: false,
            rate_limit_exempt_paths: DEFAULT_EXEMPT_PATHS.iter().map(|p| p.to_string()).collect(),
        }
    }
}

/// How specifically a quota's `path` covers a request path; None: not at
/// all. Higher wins: exact path, then prefix (longer first), then mount
/// (longer first), then global.
fn coverage(quota_path: &str, request: &str) -> Option<(u8, usize)> {
    let request = request.trim_end_matches('/');
    if quota_path.is_empty() {
        return Some((0, 0));
    }
    if let Some(prefix) = quota_path.strip_suffix('*') {
        return request.starts_with(prefix).then_some((2, prefix.len()));
    }
    if quota_path.ends_with('/') {
        let covered = request.starts_with(quota_path) || format!("{request}/") == quota_path;
        return covered.then_some((1, quota_path.len()));
    }
    (request == quota_path).then_some((3, quota_path.len()))
}

/// Of `quotas` (each with its path and name), the one that covers
/// `request` most specifically; on a tie, the first name in order.
fn most_specific<'a, T>(
    quotas: impl Iterator<Item = &'a T>,
    request: &str,
    path_and_name: impl Fn(&T) -> (&str, &str),
) -> Option<&'a T> {
    quotas
        .filter_map(|q| coverage(path_and_name(q).0, request).map(|c| (c, q)))
        .max_by(|(a, qa), (b, qb)| a.cmp(b).then_with(|| path_and_name(qb).1.cmp(path_and_name(qa).1)))
        .map(|(_, q)| q)
}

/// The lease-id prefix below which a lease-count quota counts (lease ids
/// are the request path plus a random id).
fn lease_prefix(quota_path: &str) -> String {
    match quota_path.strip_suffix('*') {
        Some(prefix) => prefix.to_string(),
        None if quota_path.is_empty() || quota_path.ends_with('/') => quota_path.to_string(),
        None => format!("{quota_path}/"),
    }
}

/// One client's token bucket for one quota.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
    blocked_until: Option<Instant>,
}

impl Bucket {
    fn full(quota: &RateLimit, now: Instant) -> Bucket {
        Bucket {
            tokens: capacity(quota),
            last: now,
            blocked_until: None,
        }
    }

    /// Take a token; Err: how long until the client may try again.
    fn take(&mut self, quota: &RateLimit, now: Instant) -> std::result::Result<(), Duration> {
        if let Some(until) = self.blocked_until {
            if now < until {
                return Err(until - now);
            }
            self.blocked_until = None;
        }
        let interval = quota.interval.max(1) as f64;
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * quota.rate / interval).min(capacity(quota));
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Ok(());
        }
        if quota.block_interval > 0 {
            let block = Duration::from_secs(quota.block_interval.unsigned_abs());
            self.blocked_until = now.checked_add(block);
            return Err(block);
        }
        Err(seconds((1.0 - self.tokens) * interval / quota.rate))
    }

    /// The headers' view of the bucket just after a take.
    fn state(&self, quota: &RateLimit) -> RateState {
        let interval = quota.interval.max(1) as f64;
        let missing = (capacity(quota) - self.tokens).max(0.0);
        let full_in = seconds(missing * interval / quota.rate);
        RateState {
            limit: capacity(quota) as u64,
            remaining: self.tokens.max(0.0) as u64,
            reset: std::time::SystemTime::now()
                .checked_add(full_in)
                .unwrap_or_else(std::time::SystemTime::now),
        }
    }

    /// Idle long enough to be as good as full.
    fn stale(&self, quota: &RateLimit, now: Instant) -> bool {
        let idle = now.saturating_duration_since(self.last).as_secs();
        let blocked = self.blocked_until.is_some_and(|until| now < until);
        !blocked && idle >= quota.interval.max(1).unsigned_abs()
    }
}

/// A wait in seconds as a Duration, whatever float arithmetic made of it
/// (never negative, at most about 30 years).
fn seconds(secs: f64) -> Duration {
    Duration::try_from_secs_f64(secs.clamp(0.0, 1e9)).unwrap_or(Duration::from_secs(1_000_000_000))
}

/// A bucket holds `rate` tokens, and at least one (so a rate below 1 per
/// interval still lets one request through per refill).
fn capacity(quota: &RateLimit) -> f64 {
    quota.rate.max(1.0)
}

#[derive(Default)]
struct Rules {
    rate_limits: HashMap<String, RateLimit>,
    lease_counts: HashMap<String, LeaseCount>,
    /// With the semaphore of their concurrent calls.
    sandboxes: HashMap<String, (SandboxQuota, Arc<tokio::sync::Semaphore>)>,
    config: QuotaConfig,
}

fn slots(quota: &SandboxQuota) -> Arc<tokio::sync::Semaphore> {
    let n = match quota.max_instances {
        0 => tokio::sync::Semaphore::MAX_PERMITS,
        n => n as usize,
    };
    Arc::new(tokio::sync::Semaphore::new(n))
}

/// The quotas of one unsealed core.
pub struct Quotas {
    storage: View,
    expiration: Arc<Expiration>,
    rules: RwLock<Rules>,
    buckets: Mutex<HashMap<(String, IpAddr), Bucket>>,
    /// Requests in flight under each lease-count quota (by name): they may
    /// each create a lease that is not counted yet.
    reserved: Mutex<HashMap<String, u64>>,
}

/// A request's place under a lease-count quota, given back when dropped.
pub struct Reservation {
    quotas: Arc<Quotas>,
    name: String,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut reserved = self.quotas.reserved.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = reserved.get_mut(&self.name) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                reserved.remove(&self.name);
            }
        }
    }
}

impl Quotas {
    /// The quotas stored below `storage` (`sys/quotas/`).
    pub async fn load(storage: View, expiration: Arc<Expiration>) -> Result<Arc<Quotas>> {
        let mut rules = Rules {
            config: storage.get_json(CONFIG).await?.unwrap_or_default(),
            ..Rules::default()
        };
        for name in storage.list(&format!("{RATE_LIMIT}/")).await? {
            if let Some(q) = storage.get_json::<RateLimit>(&format!("{RATE_LIMIT}/{name}")).await? {
                rules.rate_limits.insert(name, q);
            }
        }
        for name in storage.list(&format!("{SANDBOX}/")).await? {
            if let Some(q) = storage.get_json::<SandboxQuota>(&format!("{SANDBOX}/{name}")).await? {
                let sem = slots(&q);
                rules.sandboxes.insert(name, (q, sem));
            }
        }
        for name in storage.list(&format!("{LEASE_COUNT}/")).await? {
            if let Some(q) = storage.get_json::<LeaseCount>(&format!("{LEASE_COUNT}/{name}")).await? {
                expiration.track(&lease_prefix(&q.path));
                rules.lease_counts.insert(name, q);
            }
        }
        let quotas = Arc::new(Quotas {
            storage,
            expiration,
            rules: RwLock::new(rules),
            buckets: Mutex::new(HashMap::new()),
            reserved: Mutex::new(HashMap::new()),
        });
        if quotas.storage.get(DEFAULT_MADE).await?.is_none() {
            if quotas.lease_count(DEFAULT_LEASE_COUNT).is_none()
                && quotas.same_path(LEASE_COUNT, DEFAULT_LEASE_COUNT, "").is_none()
            {
                quotas
                    .set_lease_count(LeaseCount {
                        name: DEFAULT_LEASE_COUNT.into(),
                        path: String::new(),
                        max_leases: DEFAULT_MAX_LEASES,
                        inheritable: true,
                    })
                    .await?;
            }
            quotas.storage.put(DEFAULT_MADE, &[]).await?;
        }
        Ok(quotas)
    }

    fn rules(&self) -> std::sync::RwLockReadGuard<'_, Rules> {
        self.rules.read().unwrap_or_else(|p| p.into_inner())
    }

    fn rules_mut(&self) -> std::sync::RwLockWriteGuard<'_, Rules> {
        self.rules.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The rate-limit check of a request to `path` from `client`: Err is a
    /// 429 (Retry-After: when a token will be there); Ok carries what the
    /// response headers say, when the operator asked for them.
    pub fn check_rate(&self, path: &str, client: Option<IpAddr>) -> Result<Option<RateState>> {
        let rules = self.rules();
        if rules.rate_limits.is_empty()
            || exempt(&rules.config.rate_limit_exempt_paths, path)
            || exempt(ABSOLUTE_EXEMPT_PATHS, path)
        {
            return Ok(None);
        }
        let Some(quota) = most_specific(rules.rate_limits.values(), path, |q| (&q.path, &q.name)) else {
            return Ok(None);
        };
        let now = Instant::now();
        let client = client.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_BUCKETS {
            buckets.retain(|(name, _), b| rules.rate_limits.get(name).is_some_and(|q| !b.stale(q, now)));
            if buckets.len() >= MAX_BUCKETS {
                // Every one of them busy: start afresh rather than grow.
                buckets.clear();
            }
        }
        let bucket = buckets
            .entry((quota.name.clone(), client))
            .or_insert_with(|| Bucket::full(quota, now));
        bucket.take(quota, now).map_err(|wait| {
            Error::Quota(
                format!("request path {path:?}: rate limit quota exceeded"),
                wait.as_secs_f64().ceil().max(1.0) as u64,
            )
        })?;
        if !rules.config.enable_rate_limit_response_headers {
            return Ok(None);
        }
        Ok(Some(bucket.state(quota)))
    }

    /// The lease-count check of a request to `path` (full) in the
    /// namespace at `namespace` ("" for the root): the most specific
    /// lease-count quota covering it must have room for one more lease,
    /// counting the requests in flight under it; the request holds its
    /// place until the returned reservation is dropped. A global quota
    /// (no path, such as the `default` one) is also every namespace's own
    /// cap: a namespace's leases (its children's included) count against
    /// it apart from the others', so one tenant cannot take the whole
    /// allowance; in the root namespace it counts every lease, as Vault's.
    pub fn reserve(self: &Arc<Self>, path: &str, namespace: &str) -> Result<Option<Reservation>> {
        let rules = self.rules();
        if rules.lease_counts.is_empty() {
            return Ok(None);
        }
        let Some(quota) = most_specific(rules.lease_counts.values(), path, |q| (&q.path, &q.name)) else {
            return Ok(None);
        };
        let (prefix, key) = match quota.path.is_empty() && !namespace.is_empty() {
            true => (namespace.to_string(), format!("{}@{namespace}", quota.name)),
            false => (lease_prefix(&quota.path), quota.name.clone()),
        };
        let live = self.expiration.live_under(&prefix) as u64;
        let mut reserved = self.reserved.lock().unwrap_or_else(|p| p.into_inner());
        let in_flight = reserved.entry(key.clone()).or_insert(0);
        if live.saturating_add(*in_flight) >= quota.max_leases {
            if *in_flight == 0 {
                reserved.remove(&key);
            }
            return Err(Error::Quota("lease count quota exceeded".into(), 0));
        }
        *in_flight += 1;
        Ok(Some(Reservation {
            quotas: self.clone(),
            name: key,
        }))
    }

    /// The sandbox limits of a driver call for a request to `path`: the
    /// most specific sandbox quota covering it, and a place among its
    /// concurrent calls (429 when they are all taken: the tenant's own
    /// request fails at once instead of queueing behind its other calls).
    pub fn sandbox(&self, path: &str) -> Result<Option<crate::logical::Sandbox>> {
        let rules = self.rules();
        if rules.sandboxes.is_empty() {
            return Ok(None);
        }
        let Some((quota, sem)) = most_specific(rules.sandboxes.values(), path, |(q, _)| (&q.path, &q.name)) else {
            return Ok(None);
        };
        let permit = match quota.max_instances {
            0 => None,
            n => Some(sem.clone().try_acquire_owned().map_err(|_| {
                Error::Quota(
                    format!(
                        "sandbox quota {:?}: all {n} of its concurrent driver calls are in use",
                        quota.name
                    ),
                    1,
                )
            })?),
        };
        Ok(Some(crate::logical::Sandbox {
            limits: crate::imports::Limits {
                memory: (quota.max_memory_bytes > 0)
                    .then(|| usize::try_from(quota.max_memory_bytes).unwrap_or(usize::MAX)),
                timeout: (quota.call_timeout > 0).then(|| Duration::from_secs(quota.call_timeout.unsigned_abs())),
            },
            max_connections: (quota.max_connections > 0).then_some(quota.max_connections),
            permit,
        }))
    }

    pub fn sandbox_quota(&self, name: &str) -> Option<SandboxQuota> {
        self.rules().sandboxes.get(name).map(|(q, _)| q.clone())
    }

    /// Driver calls running under a sandbox quota now.
    pub fn sandbox_in_use(&self, name: &str) -> u32 {
        self.rules().sandboxes.get(name).map_or(0, |(q, sem)| {
            q.max_instances
                .saturating_sub(u32::try_from(sem.available_permits()).unwrap_or(u32::MAX))
        })
    }

    pub async fn set_sandbox(&self, quota: SandboxQuota) -> Result<()> {
        self.storage
            .put_json(&format!("{SANDBOX}/{}", quota.name), &quota)
            .await?;
        // Calls in flight keep the places of the old semaphore.
        let sem = slots(&quota);
        self.rules_mut().sandboxes.insert(quota.name.clone(), (quota, sem));
        Ok(())
    }

    pub fn config(&self) -> QuotaConfig {
        self.rules().config.clone()
    }

    pub async fn set_config(&self, config: QuotaConfig) -> Result<()> {
        self.storage.put_json(CONFIG, &config).await?;
        self.rules_mut().config = config;
        Ok(())
    }

    pub fn rate_limit(&self, name: &str) -> Option<RateLimit> {
        self.rules().rate_limits.get(name).cloned()
    }

    pub fn lease_count(&self, name: &str) -> Option<LeaseCount> {
        self.rules().lease_counts.get(name).cloned()
    }

    /// Live leases a lease-count quota counts now.
    pub fn counter(&self, quota: &LeaseCount) -> u64 {
        self.expiration.live_under(&lease_prefix(&quota.path)) as u64
    }

    pub fn names(&self, kind: &str) -> Vec<String> {
        let rules = self.rules();
        let mut names: Vec<String> = match kind {
            RATE_LIMIT => rules.rate_limits.keys().cloned().collect(),
            SANDBOX => rules.sandboxes.keys().cloned().collect(),
            _ => rules.lease_counts.keys().cloned().collect(),
        };
        names.sort();
        names
    }

    /// The name of another quota of `kind` on the same path, if any (Vault
    /// allows one quota per path and type).
    pub fn same_path(&self, kind: &str, name: &str, path: &str) -> Option<String> {
        let rules = self.rules();
        match kind {
            RATE_LIMIT => rules
                .rate_limits
                .values()
                .find(|q| q.name != name && q.path == path)
                .map(|q| q.name.clone()),
            SANDBOX => rules
                .sandboxes
                .values()
                .find(|(q, _)| q.name != name && q.path == path)
                .map(|(q, _)| q.name.clone()),
            _ => rules
                .lease_counts
                .values()
                .find(|q| q.name != name && q.path == path)
                .map(|q| q.name.clone()),
        }
    }

    pub async fn set_rate_limit(&self, quota: RateLimit) -> Result<()> {
        self.storage
            .put_json(&format!("{RATE_LIMIT}/{}", quota.name), &quota)
            .await?;
        let name = quota.name.clone();
        self.rules_mut().rate_limits.insert(name.clone(), quota);
        // Buckets follow the new settings from a full start.
        self.forget_buckets(&name);
        Ok(())
    }

    pub async fn set_lease_count(&self, quota: LeaseCount) -> Result<()> {
        self.storage
            .put_json(&format!("{LEASE_COUNT}/{}", quota.name), &quota)
            .await?;
        self.expiration.track(&lease_prefix(&quota.path));
        let old = self.rules_mut().lease_counts.insert(quota.name.clone(), quota);
        if let Some(old) = old {
            self.expiration.untrack(&lease_prefix(&old.path));
        }
        Ok(())
    }

    /// Delete a quota of `kind`; deleting one that does not exist is fine.
    pub async fn delete(&self, kind: &str, name: &str) -> Result<()> {
        self.storage.delete(&format!("{kind}/{name}")).await?;
        if kind == RATE_LIMIT {
            self.rules_mut().rate_limits.remove(name);
            self.forget_buckets(name);
        } else if kind == SANDBOX {
            self.rules_mut().sandboxes.remove(name);
        } else if let Some(old) = self.rules_mut().lease_counts.remove(name) {
            self.expiration.untrack(&lease_prefix(&old.path));
        }
        Ok(())
    }

    /// Delete every quota whose path is below `prefix` (a namespace that
    /// is deleted).
    pub async fn delete_below(&self, prefix: &str) -> Result<()> {
        let doomed: Vec<(&str, String)> = {
            let rules = self.rules();
            let below = |path: &str| path.starts_with(prefix);
            rules
                .rate_limits
                .values()
                .filter(|q| below(&q.path))
                .map(|q| (RATE_LIMIT, q.name.clone()))
                .chain(
                    rules
                        .lease_counts
                        .values()
                        .filter(|q| below(&q.path))
                        .map(|q| (LEASE_COUNT, q.name.clone())),
                )
                .chain(
                    rules
                        .sandboxes
                        .values()
                        .filter(|(q, _)| below(&q.path))
                        .map(|(q, _)| (SANDBOX, q.name.clone())),
                )
                .collect()
        };
        for (kind, name) in doomed {
            self.delete(kind, &name).await?;
        }
        Ok(())
    }

    fn forget_buckets(&self, name: &str) {
        self.buckets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(n, _), _| n != name);
    }
}

/// Whether `path` is exempt from rate limits: an exempt entry names it
/// exactly, or is a prefix of it ending in `*`.
fn exempt(paths: &[impl AsRef<str>], path: &str) -> bool {
    let path = path.trim_end_matches('/');
    paths.iter().map(AsRef::as_ref).any(|e| match e.strip_suffix('*') {
        Some(prefix) => path.starts_with(prefix),
        None => e.trim_end_matches('/') == path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quota(rate: f64, interval: i64, block: i64) -> RateLimit {
        RateLimit {
            name: "q".into(),
            path: String::new(),
            rate,
            interval,
            block_interval: block,
            inheritable: false,
        }
    }

    #[test]
    fn the_most_specific_path_wins() {
        let r = "db/creds/app";
        assert_eq!(coverage("", r), Some((0, 0)));
        assert_eq!(coverage("db/", r), Some((1, 3)));
        assert_eq!(coverage("db/", "db"), Some((1, 3)));
        assert_eq!(coverage("d/", r), None);
        assert_eq!(coverage("db/creds/*", r), Some((2, 9)));
        assert_eq!(coverage("db/creds/app", r), Some((3, 12)));
        assert_eq!(coverage("db/creds/app", "db/creds/app2"), None);
        assert_eq!(coverage("db/creds/app", "db/creds/app/"), Some((3, 12)));
        assert!(coverage("db/creds/app", r) > coverage("db/creds/*", r));
        assert!(coverage("db/creds/*", r) > coverage("db/", r));
    }

    #[test]
    fn leases_are_counted_below_the_quota_path() {
        assert_eq!(lease_prefix(""), "");
        assert_eq!(lease_prefix("db/"), "db/");
        assert_eq!(lease_prefix("db/creds/app"), "db/creds/app/");
        assert_eq!(lease_prefix("db/creds/a*"), "db/creds/a");
    }

    #[test]
    fn a_bucket_holds_rate_tokens_and_refills_over_the_interval() {
        let q = quota(3.0, 10, 0);
        let t0 = Instant::now();
        let mut b = Bucket::full(&q, t0);
        for _ in 0..3 {
            assert!(b.take(&q, t0).is_ok());
        }
        let wait = b.take(&q, t0).unwrap_err();
        // One token every 10/3 s.
        assert!((wait.as_secs_f64() - 10.0 / 3.0).abs() < 0.01, "{wait:?}");
        assert!(b.take(&q, t0 + Duration::from_secs(3)).is_err());
        assert!(b.take(&q, t0 + Duration::from_secs(4)).is_ok());
        // Never more than `rate` saved up.
        let later = t0 + Duration::from_secs(1000);
        for _ in 0..3 {
            assert!(b.take(&q, later).is_ok());
        }
        assert!(b.take(&q, later).is_err());
    }

    #[test]
    fn a_block_interval_refuses_until_it_ends() {
        let q = quota(1.0, 1, 5);
        let t0 = Instant::now();
        let mut b = Bucket::full(&q, t0);
        assert!(b.take(&q, t0).is_ok());
        assert_eq!(b.take(&q, t0), Err(Duration::from_secs(5)));
        // Refilled, but blocked.
        assert!(b.take(&q, t0 + Duration::from_secs(3)).is_err());
        assert!(b.take(&q, t0 + Duration::from_secs(5)).is_ok());
    }

    #[test]
    fn a_rate_below_one_still_lets_one_through() {
        let q = quota(0.5, 1, 0);
        let t0 = Instant::now();
        let mut b = Bucket::full(&q, t0);
        assert!(b.take(&q, t0).is_ok());
        assert!(b.take(&q, t0 + Duration::from_secs(1)).is_err());
        assert!(b.take(&q, t0 + Duration::from_secs(2)).is_ok());
    }

    #[tokio::test]
    async fn a_sandbox_quota_gives_its_limits_and_refuses_past_its_calls() {
        use crate::storage::{MemoryBackend, layout};
        let storage: crate::storage::Storage = Arc::new(MemoryBackend::new());
        let expiration = Arc::new(Expiration::new(View::new(storage.clone(), layout::EXPIRE)));
        let quotas = Quotas::load(View::new(storage.clone(), layout::QUOTAS), expiration.clone())
            .await
            .unwrap();
        assert!(quotas.sandbox("db/").unwrap().is_none());
        let quota = SandboxQuota {
            name: "box".into(),
            path: "db/".into(),
            max_memory_bytes: 8 << 20,
            call_timeout: 2,
            max_instances: 2,
            max_connections: 3,
        };
        quotas.set_sandbox(quota.clone()).await.unwrap();
        assert!(quotas.sandbox("other/").unwrap().is_none());
        let first = quotas.sandbox("db/").unwrap().unwrap();
        assert_eq!(first.limits.memory, Some(8 << 20));
        assert_eq!(first.limits.timeout, Some(Duration::from_secs(2)));
        assert_eq!(first.max_connections, Some(3));
        let _second = quotas.sandbox("db/").unwrap().unwrap();
        assert_eq!(quotas.sandbox_in_use("box"), 2);
        let refused = quotas.sandbox("db/").unwrap_err();
        assert!(matches!(refused, Error::Quota(..)), "{refused}");
        drop(first);
        assert!(quotas.sandbox("db/").unwrap().is_some());
        // Stored: a new core loads it.
        let again = Quotas::load(View::new(storage, layout::QUOTAS), expiration)
            .await
            .unwrap();
        assert_eq!(again.sandbox_quota("box"), Some(quota));
    }

    #[tokio::test]
    async fn a_new_server_has_the_default_lease_count_quota_until_deleted() {
        use crate::storage::{MemoryBackend, layout};
        let storage: crate::storage::Storage = Arc::new(MemoryBackend::new());
        let expiration = Arc::new(Expiration::new(View::new(storage.clone(), layout::EXPIRE)));
        let view = || View::new(storage.clone(), layout::QUOTAS);
        let quotas = Quotas::load(view(), expiration.clone()).await.unwrap();
        let default = quotas.lease_count(DEFAULT_LEASE_COUNT).unwrap();
        assert_eq!((default.path.as_str(), default.max_leases), ("", DEFAULT_MAX_LEASES));
        quotas.delete(LEASE_COUNT, DEFAULT_LEASE_COUNT).await.unwrap();
        let again = Quotas::load(view(), expiration).await.unwrap();
        assert!(
            again.lease_count(DEFAULT_LEASE_COUNT).is_none(),
            "deleted, it came back"
        );
    }

    #[test]
    fn waits_are_durations_whatever_the_float() {
        assert_eq!(seconds(f64::NAN), Duration::from_secs(1_000_000_000));
        assert_eq!(seconds(f64::INFINITY), Duration::from_secs(1_000_000_000));
        assert_eq!(seconds(-3.0), Duration::ZERO);
        assert_eq!(seconds(1.5), Duration::from_millis(1500));
    }

    #[test]
    fn exempt_paths_match_exactly_or_by_prefix() {
        let paths: Vec<String> = vec!["sys/health".into(), "db/creds/*".into()];
        assert!(exempt(&paths, "sys/health"));
        assert!(!exempt(&paths, "sys/healthy"));
        assert!(exempt(&paths, "db/creds/app"));
        assert!(!exempt(&paths, "db/roles/app"));
        assert!(exempt(ABSOLUTE_EXEMPT_PATHS, "sys/quotas/rate-limit/global"));
        assert!(!exempt(ABSOLUTE_EXEMPT_PATHS, "sys/mounts"));
    }
}
