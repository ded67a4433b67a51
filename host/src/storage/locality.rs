//! Storage locality: which keys are this node's own (*local*: leases,
//! tokens, the seal's keys, crash-recovery records, the replication log)
//! and which are *replicated* (the mount table, configs, roles, policies).
//!
//! The storage layer does not decide this: each owner of keys declares its
//! local prefixes, as Vault's backends declare `PathsSpecial.LocalStorage`:
//! the node its seal keys (`node::LOCAL_STORAGE`), the core its leases and
//! tokens (`core::LOCAL_STORAGE`), the log its own records
//! (`wal::LOCAL_STORAGE`), and each engine type the prefixes below its
//! mount (`DatabaseEngine::LOCAL_STORAGE`, relative to `logical/<uuid>/`).
//! [`Locality`] collects the declarations: the fixed ones when it is built,
//! an engine's when the core builds a mount of that type (the core knows
//! which type each uuid has; the key alone does not say).
//!
//! Classing a key is on the path of every write: a few prefix comparisons,
//! and for a mount's key one hash lookup under a read lock (uncontended:
//! mounts change rarely). `tests::classing_a_key_is_cheap` measures it.

use super::layout;
use std::collections::HashMap;
use std::sync::RwLock;

/// Local prefixes declared by an owner: full keys for the node and core,
/// relative to the mount for an engine.
pub type LocalStorage = &'static [&'static str];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyClass {
    Replicated,
    Local,
}

/// The declarations of local storage, consulted by [`Locality::class_of`].
#[derive(Default)]
pub struct Locality {
    /// Full-key prefixes (node, core, the log).
    fixed: Vec<&'static str>,
    /// Each mount's engine declaration, by mount uuid. Mounts whose engine
    /// declares nothing are not kept.
    mounts: RwLock<HashMap<Box<str>, LocalStorage>>,
}

impl Locality {
    /// Locality with the owners' full-key declarations.
    pub fn new(declarations: &[LocalStorage]) -> Locality {
        Locality {
            fixed: declarations.iter().flat_map(|d| d.iter().copied()).collect(),
            mounts: RwLock::default(),
        }
    }

    /// The mount `uuid` runs an engine that declares `local` (relative to
    /// the mount). Called before the mount writes anything.
    pub fn register_mount(&self, uuid: &str, local: LocalStorage) {
        if local.is_empty() {
            return;
        }
        self.mounts
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(uuid.into(), local);
    }

    /// The mount `uuid` is gone (its keys deleted).
    pub fn forget_mount(&self, uuid: &str) {
        self.mounts.write().unwrap_or_else(|p| p.into_inner()).remove(uuid);
    }

    /// The class of a storage key. Anything no owner declared local is
    /// replicated, including keys of a mount not registered (yet).
    pub fn class_of(&self, key: &str) -> KeyClass {
        if self.fixed.iter().any(|p| key.starts_with(p)) {
            return KeyClass::Local;
        }
        // A secrets engine's keys, or an auth method's (the uuids are
        // distinct, so one map serves both).
        if let Some(rest) = key
            .strip_prefix(layout::LOGICAL)
            .or_else(|| key.strip_prefix(layout::AUTH_LOGICAL))
            && let Some((uuid, inner)) = rest.split_once('/')
        {
            let mounts = self.mounts.read().unwrap_or_else(|p| p.into_inner());
            if let Some(local) = mounts.get(uuid)
                && local.iter().any(|p| inner.starts_with(p))
            {
                return KeyClass::Local;
            }
        }
        KeyClass::Replicated
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODE: LocalStorage = &[layout::SEAL_CONFIG];
    const CORE: LocalStorage = &[layout::EXPIRE, layout::TOKENS];
    const ENGINE: LocalStorage = &[layout::engine::WAL];

    #[test]
    fn owners_declarations_decide() {
        let l = Locality::new(&[NODE, CORE]);
        assert_eq!(l.class_of("core/seal-config"), KeyClass::Local);
        assert_eq!(l.class_of("sys/expire/id/db/creds/r/x"), KeyClass::Local);
        assert_eq!(l.class_of("sys/token/root"), KeyClass::Local);
        assert_eq!(l.class_of("core/mounts/u1"), KeyClass::Replicated);
        assert_eq!(l.class_of("sys/password_policy/p"), KeyClass::Replicated);
        // Not declared by anyone here: replicated.
        assert_eq!(l.class_of("core/keyring"), KeyClass::Replicated);

        // A mount's keys follow its engine's declaration, relative to the mount.
        assert_eq!(l.class_of("logical/u1/wal/creds/x"), KeyClass::Replicated);
        l.register_mount("u1", ENGINE);
        l.register_mount("u2", &[]);
        assert_eq!(l.class_of("logical/u1/wal/creds/x"), KeyClass::Local);
        assert_eq!(l.class_of("logical/u1/wal/static/r"), KeyClass::Local);
        assert_eq!(l.class_of("logical/u1/role/wal"), KeyClass::Replicated);
        assert_eq!(l.class_of("logical/u1/config/pg"), KeyClass::Replicated);
        // An auth method mount's keys are classed the same way.
        assert_eq!(l.class_of("auth/u1/wal/x"), KeyClass::Local);
        assert_eq!(l.class_of("auth/u1/role/x"), KeyClass::Replicated);
        assert_eq!(l.class_of("logical/u2/wal/creds/x"), KeyClass::Replicated);
        assert_eq!(l.class_of("logical/u1"), KeyClass::Replicated);
        // The declaration is relative: a mount's "wal/" is not the log's.
        assert_eq!(l.class_of("wal/x"), KeyClass::Replicated);
        l.forget_mount("u1");
        assert_eq!(l.class_of("logical/u1/wal/creds/x"), KeyClass::Replicated);
    }

    /// Classing is on every write's path: with 5,000 mounts registered it
    /// stays well under a microsecond (a debug build included).
    #[test]
    fn classing_a_key_is_cheap() {
        let l = Locality::new(&[NODE, CORE, &[layout::LOG]]);
        let uuids: Vec<String> = (0..5000).map(|_| uuid::Uuid::new_v4().to_string()).collect();
        for u in &uuids {
            l.register_mount(u, ENGINE);
        }
        let keys: Vec<String> = uuids
            .iter()
            .take(100)
            .flat_map(|u| [format!("logical/{u}/wal/creds/x"), format!("logical/{u}/role/r")])
            .chain(["sys/expire/id/x".to_string(), "core/mounts/x".to_string()])
            .collect();
        let rounds = 200;
        let started = std::time::Instant::now();
        let mut local = 0;
        for _ in 0..rounds {
            for k in &keys {
                local += usize::from(l.class_of(std::hint::black_box(k)) == KeyClass::Local);
            }
        }
        let ns = started.elapsed().as_nanos() as f64 / (rounds * keys.len()) as f64;
        eprintln!("class_of: {ns:.0} ns per key");
        assert_eq!(local, rounds * 101);
        assert!(ns < 5_000.0, "{ns} ns per key");
    }
}
