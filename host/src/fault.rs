//! Test-only fault points: named places where the process dies at once when
//! `WARDEN_TEST_FAULT` names them, so a crash-safety test can kill the
//! server exactly between two steps (a signal from outside cannot aim that
//! well). Unset, as in any real deployment, a point costs one cached
//! lookup. Points: `cluster-role-created` and `cluster-password-rotated`
//! (engines/database/path_cluster.rs).

use std::sync::OnceLock;

/// Die here if `WARDEN_TEST_FAULT` is `name`.
pub fn point(name: &str) {
    static FAULT: OnceLock<Option<String>> = OnceLock::new();
    if FAULT.get_or_init(|| std::env::var("WARDEN_TEST_FAULT").ok()).as_deref() == Some(name) {
        eprintln!("WARDEN_TEST_FAULT: stopping at fault point {name}");
        std::process::abort();
    }
}
