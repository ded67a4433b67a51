//! The versioned driver contract, `warden:plugin` (wit/host.wit): which
//! contract versions the host serves. A component names the version it was
//! built against in every `warden:plugin/...@x.y.z` it imports or exports;
//! wasmtime matches semver-compatible names (1.0.0 to the host's 1.x), so
//! the host only has to refuse, clearly, what it cannot serve: another
//! major version, or a newer minor one.

/// The contract the host implements; `package warden:plugin@...` in
/// wit/host.wit says the same (a unit test checks).
pub const VERSION: &str = "1.1.0";
const PACKAGE: &str = "warden:plugin/";

/// Refuse a component built against a contract this host does not serve.
/// `names` are the component's import and export names.
pub fn check<'a>(plugin: &str, names: impl IntoIterator<Item = &'a str>) -> Result<(), String> {
    let ours = semver::Version::parse(VERSION).map_err(|e| e.to_string())?;
    for name in names {
        let Some(rest) = name.strip_prefix(PACKAGE) else {
            continue;
        };
        let Some((_, version)) = rest.split_once('@') else {
            return Err(format!(
                "plugin {plugin:?} was built against an unversioned warden:plugin contract; this Warden \
                 serves warden:plugin@{VERSION} (rebuild the driver against wit/host.wit)"
            ));
        };
        let theirs = semver::Version::parse(version)
            .map_err(|e| format!("plugin {plugin:?} names a malformed contract version {version:?}: {e}"))?;
        let same_major = match ours.major {
            // Before 1.0 every minor version is a major one (Cargo's rule).
            0 => theirs.major == 0 && theirs.minor == ours.minor,
            major => theirs.major == major,
        };
        if !same_major {
            return Err(format!(
                "plugin {plugin:?} was built against warden:plugin@{theirs}, which this Warden cannot load: \
                 it serves warden:plugin@{VERSION} and drivers built against earlier {}.x versions",
                ours.major
            ));
        }
        if theirs > ours {
            return Err(format!(
                "plugin {plugin:?} was built against warden:plugin@{theirs}, newer than this Warden's \
                 warden:plugin@{VERSION}: upgrade Warden to run it"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{VERSION, check};

    #[test]
    fn the_wit_file_declares_this_version() {
        let wit = include_str!("../../../wit/host.wit");
        assert!(
            wit.contains(&format!("package warden:plugin@{VERSION};")),
            "wit/host.wit and contract::VERSION disagree"
        );
        let frozen = include_str!("../../../wit/released/1.0.0/host.wit");
        assert!(frozen.contains("package warden:plugin@1.0.0;"));
    }

    #[test]
    fn earlier_minor_versions_load_other_majors_and_newer_minors_do_not() {
        let names = |v: &str| vec![format!("warden:plugin/sql@{v}"), format!("warden:plugin/database@{v}")];
        let ok = names("1.0.0");
        assert_eq!(check("p", ok.iter().map(String::as_str)), Ok(()));
        assert_eq!(check("p", ["wasi:io/streams@0.2.6"]), Ok(()));
        let old = names("0.1.0");
        let err = check("p", old.iter().map(String::as_str)).unwrap_err();
        assert!(
            err.contains("warden:plugin@0.1.0") && err.contains(&format!("warden:plugin@{VERSION}")),
            "{err}"
        );
        let next_major = names("2.0.0");
        assert!(
            check("p", next_major.iter().map(String::as_str))
                .unwrap_err()
                .contains("cannot load")
        );
        let newer = names("1.99.0");
        assert!(
            check("p", newer.iter().map(String::as_str))
                .unwrap_err()
                .contains("upgrade Warden")
        );
        assert!(check("p", ["warden:plugin/sql"]).unwrap_err().contains("unversioned"));
    }
}
