//! CIDR blocks of CIDR-bound credentials (AppRole's
//! `secret_id_bound_cidrs`, a secret ID's `cidr_list`): parsing with
//! Vault's rules and texts, membership of a client address, and the
//! subset check between a secret ID's blocks and its role's.

use std::net::IpAddr;

/// One block: an address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// `a.b.c.d/n` or `v6::/n` (Go's `net.ParseCIDR`); a bare address only
    /// when `bare_ok` (as `parseutil.ParseAddrs` takes, a /32 or /128).
    pub fn parse(text: &str, bare_ok: bool) -> Result<Cidr, String> {
        let text = text.trim();
        let invalid = || format!("invalid CIDR address: {text}");
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => {
                let addr: IpAddr = a.parse().map_err(|_| invalid())?;
                // Go's ParseCIDR takes decimal digits only.
                if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) || p.len() > 3 {
                    return Err(invalid());
                }
                let prefix: u8 = p.parse().map_err(|_| invalid())?;
                (addr, prefix)
            }
            None if bare_ok => {
                let addr: IpAddr = text.parse().map_err(|_| invalid())?;
                (addr, if addr.is_ipv4() { 32 } else { 128 })
            }
            None => return Err(invalid()),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(invalid());
        }
        Ok(Cidr { addr, prefix })
    }

    /// Is `ip` inside the block? (An IPv4 address is never inside an IPv6
    /// block and the other way round, except IPv4-mapped IPv6 addresses,
    /// taken as their IPv4 address.)
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                masked(u32::from(net).into(), 32, self.prefix) == masked(u32::from(ip).into(), 32, self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                masked(u128::from(net), 128, self.prefix) == masked(u128::from(ip), 128, self.prefix)
            }
            _ => false,
        }
    }

    /// Is every address of `other` inside this block?
    pub fn covers(&self, other: &Cidr) -> bool {
        other.prefix >= self.prefix && self.contains(other.addr)
    }
}

/// The top `prefix` bits of a `width`-bit address.
fn masked(addr: u128, width: u32, prefix: u8) -> u128 {
    let prefix = u32::from(prefix).min(width);
    if prefix == 0 {
        return 0;
    }
    let keep = width - prefix;
    (addr >> keep) << keep
}

/// Parse every block, or Vault's error for the first bad one.
pub fn parse_all(blocks: &[String], bare_ok: bool) -> Result<Vec<Cidr>, String> {
    blocks.iter().map(|b| Cidr::parse(b, bare_ok)).collect()
}

/// Is `ip` in any of `blocks`? Blocks that do not parse (none can: they
/// were validated when written) match nothing.
pub fn any_contains(blocks: &[String], ip: IpAddr) -> bool {
    blocks
        .iter()
        .filter_map(|b| Cidr::parse(b, true).ok())
        .any(|c| c.contains(ip))
}

/// Vault's `verifyCIDRRoleSecretIDSubset`: every block of a secret ID must
/// lie inside one of its role's (a role without blocks allows any).
pub fn verify_subset(secret_id_blocks: &[String], role_blocks: &[String]) -> Result<(), String> {
    if secret_id_blocks.is_empty() || role_blocks.is_empty() {
        return Ok(());
    }
    let roles = parse_all(role_blocks, true)?;
    let ours = parse_all(secret_id_blocks, true)?;
    if ours.iter().all(|s| roles.iter().any(|r| r.covers(s))) {
        Ok(())
    } else {
        Err(format!(
            "failed to verify subset relationship between CIDR blocks on the role {role_blocks:?} and CIDR blocks on the secret ID {secret_id_blocks:?}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn blocks_parse_as_go_does_and_contain_their_addresses() {
        let c = Cidr::parse("10.1.0.0/16", false).unwrap();
        assert!(c.contains(ip("10.1.255.3")));
        assert!(!c.contains(ip("10.2.0.1")));
        assert!(c.contains(ip("::ffff:10.1.0.9")), "IPv4-mapped");
        assert!(Cidr::parse("0.0.0.0/0", false).unwrap().contains(ip("8.8.8.8")));
        assert!(Cidr::parse("127.0.0.1/32", false).unwrap().contains(ip("127.0.0.1")));
        let v6 = Cidr::parse("fd00::/8", false).unwrap();
        assert!(v6.contains(ip("fd12::1")) && !v6.contains(ip("fe80::1")) && !v6.contains(ip("10.0.0.1")));
        for bad in [
            "10.0.0.0",
            "10.0.0.0/33",
            "10.0.0/8",
            "x/8",
            "10.0.0.0/-1",
            "10.0.0.0/+8",
            "",
            "::/129",
        ] {
            assert_eq!(
                Cidr::parse(bad, false).unwrap_err(),
                format!("invalid CIDR address: {bad}"),
                "{bad}"
            );
        }
        assert!(Cidr::parse("10.0.0.1", true).unwrap().contains(ip("10.0.0.1")));
        assert!(!Cidr::parse("10.0.0.1", true).unwrap().contains(ip("10.0.0.2")));
    }

    #[test]
    fn a_secret_ids_blocks_must_lie_within_its_roles() {
        let role = vec!["10.0.0.0/8".to_string()];
        assert!(verify_subset(&["10.1.0.0/16".into()], &role).is_ok());
        assert!(verify_subset(&["10.0.0.0/8".into()], &role).is_ok());
        assert!(verify_subset(&["0.0.0.0/0".into()], &role).is_err());
        assert!(verify_subset(&["11.0.0.0/16".into()], &role).is_err());
        assert!(verify_subset(&["11.0.0.0/16".into()], &[]).is_ok());
        assert!(verify_subset(&[], &role).is_ok());
        assert!(any_contains(&role, ip("10.9.9.9")));
        assert!(!any_contains(&role, ip("192.168.0.1")));
    }
}
