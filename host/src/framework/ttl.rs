//! Lease TTL arithmetic shared by issuing and renewing (Vault's
//! `framework.CalculateTTL`): a requested TTL, capped by the effective max
//! TTL and, for renewals, by the time left until issue time + max TTL.

use crate::error::{Error, Result};
use chrono::{DateTime, TimeDelta, Utc};

/// Vault's built-in default and maximum lease TTL: 32 days.
pub const SYSTEM_DEFAULT_TTL: i64 = 768 * 3600;

/// The server's `default_lease_ttl` and `max_lease_ttl` (configuration
/// file), set once at start-up; process-wide as in Vault's config.
static SYSTEM_TTLS: std::sync::OnceLock<(i64, i64)> = std::sync::OnceLock::new();

/// Set the system TTLs (0 keeps the built-in 768h). Only the first call counts.
pub fn set_system_ttls(default_ttl: i64, max_ttl: i64) {
    let max = if max_ttl > 0 { max_ttl } else { SYSTEM_DEFAULT_TTL };
    let default = if default_ttl > 0 {
        default_ttl.min(max)
    } else {
        SYSTEM_DEFAULT_TTL.min(max)
    };
    let _ = SYSTEM_TTLS.set((default, max));
}

/// The default lease TTL of mounts that set none.
pub fn system_default_ttl() -> i64 {
    SYSTEM_TTLS.get().map_or(SYSTEM_DEFAULT_TTL, |t| t.0)
}

/// The maximum lease TTL of mounts that set none.
pub fn system_max_ttl() -> i64 {
    SYSTEM_TTLS.get().map_or(SYSTEM_DEFAULT_TTL, |t| t.1)
}

/// The TTL to grant and a warning when it had to be capped.
#[derive(Debug, PartialEq, Eq)]
pub struct Granted {
    pub ttl: i64,
    pub warning: Option<String>,
}

/// `requested` 0 means the default: the role's `default_ttl`, else the
/// mount's. The cap is the role's `max_ttl`, else the mount's; a role's
/// max never exceeds the mount's. `issued` (for renewals) also caps the
/// TTL at `issued + max`.
pub fn calculate(
    requested: i64,
    role_default: i64,
    role_max: i64,
    mount_default: i64,
    mount_max: i64,
    issued: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Granted {
    let mount_max = if mount_max > 0 { mount_max } else { system_max_ttl() };
    let mount_default = if mount_default > 0 {
        mount_default.min(mount_max)
    } else {
        system_default_ttl().min(mount_max)
    };
    let max = if role_max > 0 {
        role_max.min(mount_max)
    } else {
        mount_max
    };
    let mut ttl = if requested > 0 {
        requested
    } else if role_default > 0 {
        role_default
    } else {
        mount_default
    };
    let mut warning = None;
    let cap = match issued {
        // Past the end of time (only a value stored before durations were
        // bounded can get there) nothing caps it but `max` itself.
        Some(issued) => add_secs(issued, max).map_or(max, |end| (end - now).num_seconds().clamp(0, max)),
        None => max,
    };
    if ttl > cap {
        if issued.is_none() {
            warning = Some(format!(
                "TTL of {:?} exceeded the effective max_ttl of {:?}; TTL value is capped accordingly",
                human(ttl),
                human(max)
            ));
        }
        ttl = cap;
    }
    Granted { ttl, warning }
}

/// `t` plus `secs` seconds, or None past what a timestamp can hold. Every
/// timestamp computed from a TTL, period or window goes through here (or
/// [`expiry`]): chrono's `+` panics on overflow.
pub fn add_secs(t: DateTime<Utc>, secs: i64) -> Option<DateTime<Utc>> {
    t.checked_add_signed(TimeDelta::try_seconds(secs)?)
}

/// When something granted `ttl` seconds at `now` expires; a TTL too long
/// for a timestamp is refused (400) rather than wrapped or panicked on.
pub fn expiry(now: DateTime<Utc>, ttl: i64) -> Result<DateTime<Utc>> {
    add_secs(now, ttl).ok_or_else(|| Error::bad(format!("TTL of {ttl} seconds is out of range")))
}

/// A duration the way Vault prints it in warnings: "2h", "1h30m", "45s".
pub fn human(secs: i64) -> String {
    if secs == 0 {
        return "0s".into();
    }
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out += &format!("{h}h");
    }
    if m > 0 {
        out += &format!("{m}m");
    }
    if s > 0 {
        out += &format!("{s}s");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_default_is_capped_by_role_max_with_vaults_warning() {
        let g = calculate(0, 7200, 3600, 0, 0, None, Utc::now());
        assert_eq!(g.ttl, 3600);
        assert_eq!(
            g.warning.as_deref(),
            Some("TTL of \"2h\" exceeded the effective max_ttl of \"1h\"; TTL value is capped accordingly")
        );
    }

    #[test]
    fn falls_back_to_mount_then_system_defaults() {
        assert_eq!(calculate(0, 0, 0, 0, 0, None, Utc::now()).ttl, SYSTEM_DEFAULT_TTL);
        assert_eq!(calculate(0, 0, 0, 600, 0, None, Utc::now()).ttl, 600);
        assert_eq!(calculate(0, 0, 0, 0, 60, None, Utc::now()).ttl, 60);
    }

    #[test]
    fn renewal_never_passes_issue_time_plus_max() {
        let now = Utc::now();
        let issued = now - chrono::Duration::seconds(3000);
        let g = calculate(600, 3600, 3600, 0, 0, Some(issued), now);
        assert_eq!(g.ttl, 600);
        let g = calculate(1200, 3600, 3600, 0, 0, Some(issued), now);
        assert_eq!(g.ttl, 600);
    }

    #[test]
    fn extreme_ttls_never_overflow() {
        let now = Utc::now();
        for v in [i64::MAX, i64::MIN, 10_000_000_000_000, -1, 0] {
            let g = calculate(v, v, v, v, v, Some(now), now);
            assert!(g.ttl >= 0, "{v}: {g:?}");
            let g = calculate(v, v, v, v, v, None, now);
            assert!(g.ttl <= v.max(SYSTEM_DEFAULT_TTL), "{v}: {g:?}");
        }
        assert!(expiry(now, i64::MAX).is_err());
        assert!(expiry(now, 10_000_000_000_000).is_err());
        assert_eq!(expiry(now, 60).unwrap(), now + TimeDelta::seconds(60));
        assert_eq!(add_secs(DateTime::<Utc>::MAX_UTC, 1), None);
    }

    #[test]
    fn human_durations() {
        assert_eq!(human(5400), "1h30m");
        assert_eq!(human(45), "45s");
        assert_eq!(human(86400), "24h");
    }
}

/// Property tests: the TTL arithmetic never panics for any i64 input and any
/// timestamp chrono can hold, and what it grants is within the effective
/// maximum. Kept apart from `tests` so edits to `calculate` and to these
/// properties merge cleanly.
#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    /// Any i64, with the edges and the values near Go's duration limit
    /// drawn more often than chance would.
    fn secs() -> impl Strategy<Value = i64> {
        prop_oneof![
            2 => any::<i64>(),
            1 => prop::sample::select(vec![
                0,
                -1,
                1,
                i64::MAX,
                i64::MIN,
                i64::MAX / 1_000_000_000,
                i64::MAX / 1_000_000_000 + 1,
                10_000_000_000_000,
                -10_000_000_000_000,
                SYSTEM_DEFAULT_TTL,
            ]),
            1 => -100_000i64..100_000,
        ]
    }

    /// Any timestamp chrono can represent, its two ends included.
    fn instant() -> impl Strategy<Value = DateTime<Utc>> {
        let (lo, hi) = (
            DateTime::<Utc>::MIN_UTC.timestamp(),
            DateTime::<Utc>::MAX_UTC.timestamp(),
        );
        prop_oneof![
            3 => (lo..=hi).prop_map(|s| DateTime::from_timestamp(s, 0).unwrap_or(DateTime::<Utc>::UNIX_EPOCH)),
            1 => Just(DateTime::<Utc>::MIN_UTC),
            1 => Just(DateTime::<Utc>::MAX_UTC),
            1 => Just(Utc::now()),
        ]
    }

    /// The cap `calculate` documents: the role's max if set (never above
    /// the mount's), else the mount's, else the system's.
    fn effective_max(role_max: i64, mount_max: i64) -> i64 {
        let mount_max = if mount_max > 0 { mount_max } else { system_max_ttl() };
        if role_max > 0 {
            role_max.min(mount_max)
        } else {
            mount_max
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

        #[test]
        fn calculate_never_panics_and_grants_within_the_max(
            requested in secs(), role_default in secs(), role_max in secs(),
            mount_default in secs(), mount_max in secs(),
            issued in prop::option::of(instant()), now in instant(),
        ) {
            let g = calculate(requested, role_default, role_max, mount_default, mount_max, issued, now);
            let max = effective_max(role_max, mount_max);
            prop_assert!(g.ttl >= 0, "negative TTL {g:?}");
            prop_assert!(g.ttl <= max, "TTL {} above the effective max {max}", g.ttl);
        }

        #[test]
        fn renewal_never_passes_issue_time_plus_max(
            requested in secs(), role_max in 1i64..=i64::MAX / 1_000_000_000,
            age in 0i64..10_000_000,
        ) {
            let now = Utc::now();
            let issued = now - TimeDelta::seconds(age);
            let g = calculate(requested, 0, role_max, 0, i64::MAX / 1_000_000_000, Some(issued), now);
            prop_assert!(g.ttl <= (role_max - age).max(0), "{g:?} for max {role_max}, age {age}");
        }

        #[test]
        fn expiry_and_add_secs_never_panic(t in instant(), s in secs()) {
            if let Some(end) = add_secs(t, s) {
                prop_assert_eq!((end - t).num_seconds(), s);
            }
            if let Ok(end) = expiry(t, s) {
                prop_assert_eq!((end - t).num_seconds(), s);
            }
        }

        #[test]
        fn human_never_panics(s in secs()) {
            let _ = human(s);
        }
    }
}
