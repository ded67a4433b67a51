//! The fencing token of this node's writes: which lock holder it is and
//! which epoch of the HA lock it holds, if any. The PostgreSQL backend
//! checks it inside every write statement (see `storage::postgres`), so a
//! write lands only while the lock row still names this holder and epoch;
//! a node that is not active (no epoch) writes nothing at all.

use std::sync::atomic::{AtomicI64, Ordering};

/// No epoch held (a standby, a sealed node, one stepping down).
const NONE: i64 = 0;

#[derive(Debug)]
pub struct Fence {
    holder: String,
    epoch: AtomicI64,
}

impl Fence {
    pub fn new(holder: impl Into<String>) -> Self {
        // An HA node reports its state from the start (a standby: inactive).
        crate::telemetry::set_ha_state(false, 0);
        Fence {
            holder: holder.into(),
            epoch: AtomicI64::new(NONE),
        }
    }

    /// The lock holder's name: this node's id.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// The epoch this node holds, if it is the active node.
    pub fn epoch(&self) -> Option<i64> {
        match self.epoch.load(Ordering::SeqCst) {
            NONE => None,
            e => Some(e),
        }
    }

    /// This node now holds `epoch` (epochs start at 1).
    pub fn hold(&self, epoch: i64) {
        self.epoch.store(epoch.max(1), Ordering::SeqCst);
        crate::telemetry::set_ha_state(true, epoch.max(1));
    }

    /// This node holds no epoch: its writes are refused from now on.
    pub fn drop_epoch(&self) {
        let last = self.epoch.swap(NONE, Ordering::SeqCst);
        crate::telemetry::set_ha_state(false, last);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_and_drops() {
        let f = Fence::new("node-a");
        assert_eq!(f.epoch(), None);
        f.hold(7);
        assert_eq!(f.epoch(), Some(7));
        f.drop_epoch();
        assert_eq!(f.epoch(), None);
        assert_eq!(f.holder(), "node-a");
    }
}
