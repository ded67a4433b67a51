//! `config/connection` (the MongoDB URI, verified by connecting unless
//! `verify_connection` is false) and `config/lease` (default and maximum
//! lease as Go duration strings, "h" the largest unit; read back in seconds).
//! A write that fails stores nothing.

use super::{MongoDbEngine, driver_config, plugin_error};
use crate::error::{Error, Result};
use crate::framework::Req;
use crate::logical::Mount;
use crate::logical::{Reply, Response};
use crate::storage::layout;
use serde::{Deserialize, Serialize};
use serde_json::json;

const CONNECTION_KEY: &str = layout::mongodb::CONNECTION;
const LEASE_KEY: &str = layout::mongodb::LEASE;

/// Vault's warning on every write of the connection.
pub const READ_WARNING: &str = "Read access to this endpoint should be controlled via ACLs as it will return the connection URI as it is, including passwords, if any.";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Connection {
    pub uri: String,
    #[serde(default)]
    pub verify_connection: bool,
}

/// Lease settings in seconds (0: the mount's).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Lease {
    pub ttl: i64,
    pub max_ttl: i64,
}

pub async fn load_connection(mount: &Mount) -> Result<Option<Connection>> {
    Ok(mount.storage.get_json(CONNECTION_KEY).await?)
}

pub async fn load_lease(mount: &Mount) -> Result<Option<Lease>> {
    Ok(mount.storage.get_json(LEASE_KEY).await?)
}

pub async fn read_connection(_: &MongoDbEngine, r: &Req<'_>) -> Reply {
    Ok(load_connection(r.mount()?)
        .await?
        .map(|c| Response::data(json!({ "uri": c.uri }))))
}

pub async fn write_connection(engine: &MongoDbEngine, r: &Req<'_>) -> Reply {
    let mount = r.mount()?;
    // The documented name is `url`; Vault's code also reads `uri`.
    let uri = match r.fields.str("url") {
        u if !u.is_empty() => u,
        _ => r.fields.str("uri"),
    };
    if uri.is_empty() {
        return Err(Error::bad("url parameter is required"));
    }
    let verify_connection = r.fields.bool("verify_connection");
    let mut driver = engine.driver(mount, &uri).await?;
    driver
        .initialize(&driver_config(&uri), verify_connection)
        .await
        .map_err(|e| Error::bad(format!("Error validating connection info: {}", plugin_error(e))))?;
    // Clients of the old URI must not serve the new one.
    engine.release(mount);
    let conn = Connection { uri, verify_connection };
    mount.storage.put_json(CONNECTION_KEY, &conn).await?;
    Ok(Some(Response::default().with_warning(READ_WARNING)))
}

pub async fn delete_connection(engine: &MongoDbEngine, r: &Req<'_>) -> Reply {
    let mount = r.mount()?;
    mount.storage.delete(CONNECTION_KEY).await?;
    engine.release(mount);
    Ok(None)
}

pub async fn read_lease(_: &MongoDbEngine, r: &Req<'_>) -> Reply {
    Ok(load_lease(r.mount()?)
        .await?
        .map(|l| Response::data(json!({ "ttl": l.ttl, "max_ttl": l.max_ttl }))))
}

pub async fn write_lease(_: &MongoDbEngine, r: &Req<'_>) -> Reply {
    let read = |field: &str, label: &str| -> Result<i64> {
        go_duration(&r.fields.str(field)).map_err(|e| Error::bad(format!("Invalid {label}: {e}")))
    };
    let lease = Lease {
        ttl: read("lease", "lease")?,
        max_ttl: read("lease_max", "lease_max")?,
    };
    if lease.ttl < 0 || lease.max_ttl < 0 {
        return Err(Error::bad("lease and lease_max cannot be negative"));
    }
    r.mount()?.storage.put_json(LEASE_KEY, &lease).await?;
    Ok(None)
}

/// Go's `time.ParseDuration` (the `goduration` crate's), in whole seconds:
/// units up to "h" (no "d"), and a number needs a unit unless it is 0.
pub fn go_duration(s: &str) -> std::result::Result<i64, String> {
    goduration::parse_go(s)
        .map(|nanos| nanos / 1_000_000_000)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::go_duration;

    #[test]
    fn lease_strings_parse_like_go() {
        assert_eq!(go_duration("12h"), Ok(43200));
        assert_eq!(go_duration("1h30m"), Ok(5400));
        assert_eq!(go_duration("90s"), Ok(90));
        assert_eq!(go_duration("0"), Ok(0));
        assert_eq!(
            go_duration("1d"),
            Err("time: unknown unit \"d\" in duration \"1d\"".to_string())
        );
        assert_eq!(
            go_duration("300"),
            Err("time: missing unit in duration \"300\"".to_string())
        );
        assert_eq!(go_duration(""), Err("time: invalid duration \"\"".to_string()));
        assert!(go_duration("h").is_err());
        assert!(go_duration("1x").is_err());
    }
}

/// Property tests: the legacy engine's lease parser never panics and what it
/// accepts fits Go's int64 nanoseconds. Apart from `tests` for easy merging.
#[cfg(test)]
mod props {
    use super::go_duration;
    use crate::framework::convert::MAX_DURATION_SECS;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn go_duration_never_panics_and_stays_in_range(
            s in prop_oneof![
                any::<String>(),
                "[-+]?[0-9]{1,30}(\\.[0-9]{0,10})?(ns|us|µs|ms|s|m|h|d|x)?([0-9]{1,5}(s|m|h))?",
            ]
        ) {
            if let Ok(secs) = go_duration(&s) {
                prop_assert!(secs.abs() <= MAX_DURATION_SECS, "{s:?} -> {secs}");
            }
        }
    }
}
