//! Capabilities (what a path rule grants) and operations (what a request
//! asks for), and which capability each operation needs.
//!
//! The set is OpenBao's: `create`, `read`, `update`, `patch`, `delete`,
//! `list`, `sudo`, `deny` and OpenBao's `scan`. Vault's `subscribe` and
//! `recover` are not capabilities in OpenBao, so a policy naming them is
//! refused there and here (`invalid capability "subscribe"`).

use std::fmt;

/// A set of capabilities, as Vault keeps them: one bit each.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Capabilities(u16);

impl Capabilities {
    pub const NONE: Capabilities = Capabilities(0);
    pub const DENY: Capabilities = Capabilities(1);
    pub const CREATE: Capabilities = Capabilities(1 << 1);
    pub const READ: Capabilities = Capabilities(1 << 2);
    pub const UPDATE: Capabilities = Capabilities(1 << 3);
    pub const DELETE: Capabilities = Capabilities(1 << 4);
    pub const LIST: Capabilities = Capabilities(1 << 5);
    pub const SUDO: Capabilities = Capabilities(1 << 6);
    pub const PATCH: Capabilities = Capabilities(1 << 7);
    pub const SCAN: Capabilities = Capabilities(1 << 8);

    /// Every capability by the name a policy uses, in the order Vault's
    /// `ACL.Capabilities` lists them (sudo, read, list, update, delete,
    /// create, patch, scan); `deny` last, since it never appears with others.
    const NAMED: [(&'static str, Capabilities); 9] = [
        ("sudo", Capabilities::SUDO),
        ("read", Capabilities::READ),
        ("list", Capabilities::LIST),
        ("update", Capabilities::UPDATE),
        ("delete", Capabilities::DELETE),
        ("create", Capabilities::CREATE),
        ("patch", Capabilities::PATCH),
        ("scan", Capabilities::SCAN),
        ("deny", Capabilities::DENY),
    ];

    /// The capability a policy names `name`, if it is one.
    pub fn from_name(name: &str) -> Option<Capabilities> {
        Capabilities::NAMED.iter().find(|(n, _)| *n == name).map(|(_, c)| *c)
    }

    pub const fn union(self, other: Capabilities) -> Capabilities {
        Capabilities(self.0 | other.0)
    }

    /// True when every capability of `other` is in `self` (and `other` is
    /// not empty).
    pub const fn contains(self, other: Capabilities) -> bool {
        other.0 != 0 && self.0 & other.0 == other.0
    }

    /// True when the two sets share a capability.
    pub const fn intersects(self, other: Capabilities) -> bool {
        self.0 & other.0 != 0
    }

    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The names in Vault's `ACL.Capabilities` order (see [`Capabilities::NAMED`]),
    /// `deny` alone when denied.
    pub fn names(self) -> Vec<&'static str> {
        if self.contains(Capabilities::DENY) {
            return vec!["deny"];
        }
        Capabilities::NAMED
            .iter()
            .filter(|(_, c)| self.contains(*c))
            .map(|(n, _)| *n)
            .collect()
    }
}

impl fmt::Debug for Capabilities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.names()).finish()
    }
}

/// What a request asks to do (Vault's `logical.Operation`, as the HTTP
/// layer produces them: GET read, POST/PUT create or update, PATCH patch,
/// DELETE delete, LIST list, OpenBao's SCAN scan, and help).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    Read,
    Create,
    Update,
    Patch,
    Delete,
    List,
    /// OpenBao's recursive listing.
    Scan,
    /// `?help=1`: always allowed, whatever the policies say.
    Help,
}

impl Operation {
    /// The capability the operation needs; none for help.
    pub const fn capability(self) -> Capabilities {
        match self {
            Operation::Read => Capabilities::READ,
            Operation::Create => Capabilities::CREATE,
            Operation::Update => Capabilities::UPDATE,
            Operation::Patch => Capabilities::PATCH,
            Operation::Delete => Capabilities::DELETE,
            Operation::List => Capabilities::LIST,
            Operation::Scan => Capabilities::SCAN,
            Operation::Help => Capabilities::NONE,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_vault_order() {
        for name in [
            "create", "read", "update", "patch", "delete", "list", "sudo", "deny", "scan",
        ] {
            let c = Capabilities::from_name(name).expect(name);
            assert_eq!(c.names(), vec![name]);
        }
        for refused in ["subscribe", "recover", "root", "write", "Read", ""] {
            assert_eq!(Capabilities::from_name(refused), None, "{refused}");
        }
        let all = ["create", "read", "update", "patch", "delete", "list", "sudo", "scan"]
            .iter()
            .filter_map(|n| Capabilities::from_name(n))
            .fold(Capabilities::NONE, Capabilities::union);
        assert_eq!(
            all.names(),
            ["sudo", "read", "list", "update", "delete", "create", "patch", "scan"]
        );
        assert_eq!(all.union(Capabilities::DENY).names(), ["deny"]);
        assert!(Capabilities::NONE.names().is_empty());
        assert!(!all.contains(Capabilities::NONE), "the empty set is never 'contained'");
    }

    #[test]
    fn operations_need_their_capability() {
        assert_eq!(Operation::Read.capability(), Capabilities::READ);
        assert_eq!(Operation::Patch.capability(), Capabilities::PATCH);
        assert_eq!(Operation::Scan.capability(), Capabilities::SCAN);
        assert!(Operation::Help.capability().is_empty());
    }
}
