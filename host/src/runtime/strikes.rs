//! Back-off for misbehaving drivers: a grant (one mount's one connection)
//! whose driver calls trap, run out of memory or time out gets a strike per
//! failure. Its next call waits out a back-off that doubles with each strike
//! (100 ms up to 5 s, never longer than the call deadline) and then runs
//! penalised: paused at every epoch tick from its first, so it gets a tenth
//! of a core instead of a whole one. One call that returns (even with the
//! database's own error) clears the strikes. Driver errors are not strikes:
//! a refused login or a bad statement is the database answering, not the
//! component misbehaving. Without this, a hostile or broken driver retried
//! in a loop by its clients took a core's worth of the other mounts' time
//! (hostile_bench).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The back-off after the first strike; it doubles with each further one.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The longest back-off.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Grants tracked at most; past it, expired records make room, and a new
/// grant's strike is not recorded while all are live (memory stays bounded
/// whatever the number of mounts).
const MAX_TRACKED: usize = 10_000;

struct Record {
    strikes: u32,
    /// The earliest time the grant's next call starts.
    until: Instant,
}

#[derive(Default)]
pub struct Strikes {
    records: Mutex<HashMap<String, Record>>,
    /// `records.len()`, read without the lock: the calls of a healthy
    /// server (no records) never take it.
    tracked: AtomicUsize,
}

impl Strikes {
    /// Whether `key` has strikes; if so, wait until its back-off ends (at
    /// most `cap`, the call deadline) and answer true: the call then runs
    /// penalised.
    pub async fn wait_out(&self, key: &str, cap: Duration) -> bool {
        if self.tracked.load(Ordering::Relaxed) == 0 {
            return false;
        }
        let until = match self.lock().get(key) {
            Some(record) => record.until,
            None => return false,
        };
        let wait = until.saturating_duration_since(Instant::now()).min(cap);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        true
    }

    /// Record a misbehaving call of `key`.
    pub fn strike(&self, key: &str) {
        let now = Instant::now();
        let mut records = self.lock();
        if records.len() >= MAX_TRACKED && !records.contains_key(key) {
            // A record whose back-off ended long ago: the grant is at worst
            // penalised again after its next strike.
            records.retain(|_, r| now.saturating_duration_since(r.until) < MAX_BACKOFF);
            if records.len() >= MAX_TRACKED {
                return;
            }
        }
        let record = records
            .entry(key.to_string())
            .or_insert(Record { strikes: 0, until: now });
        record.strikes = record.strikes.saturating_add(1);
        record.until = now.checked_add(backoff(record.strikes)).unwrap_or(now);
        self.tracked.store(records.len(), Ordering::Relaxed);
    }

    /// A call of `key` returned: its strikes are forgiven.
    pub fn clear(&self, key: &str) {
        if self.tracked.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut records = self.lock();
        if records.remove(key).is_some() {
            self.tracked.store(records.len(), Ordering::Relaxed);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Record>> {
        self.records.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The back-off after `strikes` strikes (at least one).
fn backoff(strikes: u32) -> Duration {
    // 2^6 x 100 ms is past the cap already; the shift never overflows.
    let doublings = strikes.saturating_sub(1).min(6);
    FIRST_BACKOFF.saturating_mul(1 << doublings).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        assert_eq!(backoff(1), Duration::from_millis(100));
        assert_eq!(backoff(2), Duration::from_millis(200));
        assert_eq!(backoff(4), Duration::from_millis(800));
        assert_eq!(backoff(7), MAX_BACKOFF);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
        // Zero strikes is not a call this module makes; it still answers.
        assert_eq!(backoff(0), FIRST_BACKOFF);
    }

    #[tokio::test]
    async fn a_struck_grant_waits_and_one_good_call_clears_it() {
        let strikes = Strikes::default();
        assert!(!strikes.wait_out("a", Duration::from_secs(2)).await);
        strikes.strike("a");
        strikes.strike("a");
        let started = Instant::now();
        assert!(strikes.wait_out("a", Duration::from_secs(2)).await);
        // The second strike's back-off: 200 ms from the strike.
        assert!(started.elapsed() >= Duration::from_millis(150));
        // Other grants are not touched.
        assert!(!strikes.wait_out("b", Duration::from_secs(2)).await);
        strikes.clear("a");
        assert!(!strikes.wait_out("a", Duration::from_secs(2)).await);
        assert_eq!(strikes.tracked.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn the_wait_is_capped_by_the_deadline() {
        let strikes = Strikes::default();
        for _ in 0..10 {
            strikes.strike("a");
        }
        // A 5 s back-off, capped at 50 ms.
        let started = Instant::now();
        assert!(strikes.wait_out("a", Duration::from_millis(50)).await);
        assert!(started.elapsed() < MAX_BACKOFF);
    }

    #[test]
    fn records_stay_bounded() {
        let strikes = Strikes::default();
        for i in 0..MAX_TRACKED + 50 {
            strikes.strike(&format!("grant{i}"));
        }
        assert_eq!(strikes.tracked.load(Ordering::Relaxed), MAX_TRACKED);
    }
}
