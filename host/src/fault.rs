//! Test-only fault points: named places where the process dies at once when
//! `WARDEN_TEST_FAULT` names them, so a crash-safety test can kill the
//! server exactly between two steps (a signal from outside cannot aim that
//! well). Unset, as in any real deployment, a point costs one cached
//! lookup. Points: `cluster-role-created` and `cluster-password-rotated`
//! (engines/database/path_cluster.rs).
//!
//! A few faults are behaviours rather than crashes ([`active`]):
//! `ha-blind-renewal` makes an active HA node neither renew its lock nor
//! notice that it lapsed (as a node paused at the worst moment), so a test
//! can show that the storage's fencing alone refuses its writes.

use std::sync::OnceLock;

fn named() -> Option<&'static str> {
    static FAULT: OnceLock<Option<String>> = OnceLock::new();
    FAULT.get_or_init(|| std::env::var("WARDEN_TEST_FAULT").ok()).as_deref()
}

/// Whether `WARDEN_TEST_FAULT` names the behaviour `name`.
pub fn active(name: &str) -> bool {
    named() == Some(name)
}

/// Die here if `WARDEN_TEST_FAULT` is `name`.
pub fn point(name: &str) {
    if named() == Some(name) {
        eprintln!("WARDEN_TEST_FAULT: stopping at fault point {name}");
        std::process::abort();
    }
}
