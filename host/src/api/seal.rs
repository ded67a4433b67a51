//! The node's operator endpoints, answered by the node rather than the core,
//! as Vault answers them in its HTTP layer (raw JSON, not the logical
//! envelope, unless noted):
//!
//! - without a token (they must work while sealed, and the unseal keys are
//!   their authority): `sys/health` (GET and HEAD, with Vault's status-code
//!   query parameters), `sys/seal-status`, `sys/init`, `sys/unseal`,
//!   `sys/leader`, and the rekey flow `sys/rekey/init|update|verify`;
//! - with a token: `sys/seal`, `sys/rotate` and `sys/rotate/keyring`,
//!   `sys/key-status` (enveloped).
//!
//! Each endpoint is a small handler taking the node and typed values; the
//! two routing functions at the top only match the path and method, parse
//! the fields and turn the answer into HTTP.

use super::envelope;
use crate::core::fields;
use crate::error::{Error, Result};
use crate::logical::{Operation, Response as Logical};
use crate::node::{Node, RekeyRequest, init_response};
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::SecondsFormat;
use serde_json::{Map, Value, json};

type Data = Map<String, Value>;

/// Paths answered by [`unauthenticated`].
const UNAUTHENTICATED: [&str; 8] = [
    "sys/health",
    "sys/seal-status",
    "sys/init",
    "sys/unseal",
    "sys/leader",
    "sys/rekey/init",
    "sys/rekey/update",
    "sys/rekey/verify",
];

/// The endpoints Vault serves without a token; None for any other path.
pub async fn unauthenticated(
    node: &Node,
    path: &str,
    op: Operation,
    query: Option<&str>,
    data: &Data,
) -> Result<Option<Response>> {
    Ok(Some(match (path, op) {
        ("sys/health", Operation::Read) => match HealthQuery::parse(query) {
            Ok(q) => {
                let (status, body) = health(node, &q);
                (status, Json(body)).into_response()
            }
            // Vault answers a bad parameter with an empty error list.
            Err(()) => (StatusCode::BAD_REQUEST, Json(json!({ "errors": [] }))).into_response(),
        },
        ("sys/seal-status", Operation::Read) => Json(node.seal_status()).into_response(),
        ("sys/leader", Operation::Read) => Json(leader()).into_response(),
        ("sys/init", Operation::Read) => Json(json!({ "initialized": node.initialized() })).into_response(),
        ("sys/init", Operation::Update) => Json(init(node, &init_request(data)?).await?).into_response(),
        ("sys/unseal", Operation::Update) => {
            let key = fields::string(data, "key")?;
            let reset = fields::boolean(data, "reset")?.unwrap_or(false);
            Json(node.unseal(key.as_deref(), reset).await?).into_response()
        }
        ("sys/rekey/init", Operation::Read) => Json(node.rekey_status()?).into_response(),
        ("sys/rekey/init", Operation::Update) => Json(node.rekey_init(&rekey_request(data)?).await?).into_response(),
        ("sys/rekey/init", Operation::Delete) => {
            node.rekey_cancel()?;
            StatusCode::NO_CONTENT.into_response()
        }
        ("sys/rekey/update", Operation::Update) => {
            let (key, nonce) = key_and_nonce(data)?;
            Json(node.rekey_update(&key, &nonce).await?).into_response()
        }
        ("sys/rekey/verify", Operation::Read) => Json(node.rekey_verify_status()?).into_response(),
        ("sys/rekey/verify", Operation::Update) => {
            let (key, nonce) = key_and_nonce(data)?;
            Json(node.rekey_verify(&key, &nonce).await?).into_response()
        }
        ("sys/rekey/verify", Operation::Delete) => Json(node.rekey_verify_restart()?).into_response(),
        (p, _) if UNAUTHENTICATED.contains(&p) => return Err(Error::UnsupportedOperation),
        _ => return Ok(None),
    }))
}

/// The seal's endpoints that need a token (already checked); None for any
/// other path.
pub async fn authenticated(node: &Node, path: &str, op: Operation, request_id: &str) -> Result<Option<Response>> {
    Ok(Some(match (path, op) {
        ("sys/seal", Operation::Update) => {
            node.seal().await?;
            StatusCode::NO_CONTENT.into_response()
        }
        // `sys/rotate/keyring` is the newer name `bao operator rotate` uses.
        ("sys/rotate" | "sys/rotate/keyring", Operation::Update) => {
            node.rotate().await?;
            StatusCode::NO_CONTENT.into_response()
        }
        ("sys/key-status", Operation::Read) => envelope::render(key_status(node)?, request_id),
        ("sys/seal" | "sys/rotate" | "sys/rotate/keyring" | "sys/key-status", _) => {
            return Err(Error::UnsupportedOperation);
        }
        _ => return Ok(None),
    }))
}

/// `HEAD` on any path: `sys/health` answers its status code; every other
/// path has no HEAD operation (Vault's `HeaderOperation`, which none of
/// Warden's paths declares): 405 once the checks a GET would meet (sealed,
/// token) have passed. The body is dropped by the HTTP layer.
pub fn head(node: &Node, path: &str, query: Option<&str>, token: Option<&str>) -> Result<Response> {
    if path == "sys/health" {
        let status = match HealthQuery::parse(query) {
            Ok(q) => health(node, &q).0,
            Err(()) => StatusCode::BAD_REQUEST,
        };
        let mut resp = status.into_response();
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        return Ok(resp);
    }
    if !UNAUTHENTICATED.contains(&path) {
        node.core()?.authorize(token)?;
    }
    Err(Error::UnsupportedOperation)
}

/// Vault's `sys/health` query parameters. The standby, performance
/// standby, DR secondary, removed and HA-unhealthy codes are parsed (a bad
/// value is refused as Vault refuses it) but never apply to a single node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthQuery {
    pub active: u16,
    pub sealed: u16,
    pub uninit: u16,
}

impl HealthQuery {
    /// Parse the query string as Vault's `sys/health` does: the first value
    /// of each parameter; a bool that Go's `strconv.ParseBool` refuses or a
    /// code that is not an integer is a 400. Codes must also be ones an HTTP
    /// response can end with (200 to 999; Go would panic on others).
    pub fn parse(query: Option<&str>) -> std::result::Result<HealthQuery, ()> {
        let params: Vec<(String, String)> = query
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect()
            })
            .unwrap_or_default();
        let first = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        for name in ["standbyok", "perfstandbyok"] {
            if let Some(v) = first(name) {
                go_bool(v).ok_or(())?;
            }
        }
        let code = |name: &str, default: u16| -> std::result::Result<u16, ()> {
            match first(name) {
                None => Ok(default),
                Some(v) => v
                    .parse::<i64>()
                    .ok()
                    .filter(|c| (200..=999).contains(c))
                    .map(|c| c as u16)
                    .ok_or(()),
            }
        };
        // Vault's defaults; the ones a single node never reaches are still
        // checked.
        code("standbycode", 429)?;
        code("drsecondarycode", 472)?;
        code("performancestandbycode", 473)?;
        code("haunhealthycode", 474)?;
        code("removedcode", 530)?;
        Ok(HealthQuery {
            active: code("activecode", 200)?,
            sealed: code("sealedcode", 503)?,
            uninit: code("uninitcode", 501)?,
        })
    }
}

/// Go's `strconv.ParseBool`.
fn go_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// `sys/health`: the status code says initialised, sealed or active (a
/// single node is never a standby); the body is the same in every case.
pub fn health(node: &Node, q: &HealthQuery) -> (StatusCode, Value) {
    let (initialized, sealed) = (node.initialized(), node.sealed());
    let code = match (initialized, sealed) {
        (false, _) => q.uninit,
        (true, true) => q.sealed,
        (true, false) => q.active,
    };
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
    let seal = node.seal_status();
    let mut body = json!({
        "initialized": initialized,
        "sealed": sealed,
        "standby": false,
        "performance_standby": false,
        "replication_performance_mode": "disabled",
        "replication_dr_mode": "disabled",
        "server_time_utc": chrono::Utc::now().timestamp(),
        "version": env!("CARGO_PKG_VERSION"),
    });
    // Vault omits the cluster's name and id while sealed.
    for field in ["cluster_name", "cluster_id"] {
        if let Some(v) = seal.get(field) {
            body[field] = v.clone();
        }
    }
    (status, body)
}

/// `sys/leader` on a node without HA storage: Vault's answer when HA is not
/// enabled (the same sealed or not).
pub fn leader() -> Value {
    json!({
        "ha_enabled": false,
        "is_self": false,
        "active_time": "0001-01-01T00:00:00Z",
        "leader_address": "",
        "leader_cluster_address": "",
        "performance_standby": false,
        "performance_standby_last_remote_wal": 0,
    })
}

/// What `PUT sys/init` takes (a Shamir seal: no recovery keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitRequest {
    pub secret_shares: i64,
    pub secret_threshold: i64,
}

/// `sys/init`'s body as the CLI sends it: PGP fields empty or null,
/// recovery fields zero or null, `stored_shares` whatever (a Shamir seal
/// stores one, as Vault forces). Real PGP use is refused; recovery fields
/// with Vault's text for a Shamir seal.
fn init_request(data: &Data) -> Result<InitRequest> {
    let mut recovery = Vec::new();
    for field in ["recovery_shares", "recovery_threshold"] {
        if fields::integer(data, field)?.unwrap_or(0) != 0 {
            recovery.push(field);
        }
    }
    if !list_is_empty(data, "recovery_pgp_keys") {
        recovery.push("recovery_pgp_keys");
    }
    if !recovery.is_empty() {
        return Err(Error::bad(format!(
            "parameters {} not applicable to seal type shamir",
            recovery.join(",")
        )));
    }
    for field in ["pgp_keys", "root_token_pgp_key"] {
        if !list_is_empty(data, field) {
            return Err(Error::bad(format!(
                "{field} is not supported: Warden does not encrypt keys or tokens with PGP"
            )));
        }
    }
    fields::integer(data, "stored_shares")?;
    Ok(InitRequest {
        secret_shares: fields::integer(data, "secret_shares")?.unwrap_or(0),
        secret_threshold: fields::integer(data, "secret_threshold")?.unwrap_or(0),
    })
}

/// `PUT sys/init`.
pub async fn init(node: &Node, request: &InitRequest) -> Result<Value> {
    let result = node.init(request.secret_shares, request.secret_threshold, None).await?;
    Ok(init_response(&result))
}

/// `GET sys/key-status`: the active key's term and when it was installed
/// (Vault also copies the fields to the top level).
pub fn key_status(node: &Node) -> Result<Logical> {
    let (term, installed) = node.key_status()?;
    let data = json!({
        "term": term,
        "install_time": installed.to_rfc3339_opts(SecondsFormat::Nanos, true),
        "encryptions": 0,
    });
    Ok(Logical {
        top_level: data.as_object().cloned(),
        ..Logical::data(data)
    })
}

fn rekey_request(data: &Data) -> Result<RekeyRequest> {
    // Vault refuses a backup without PGP keys; Warden has no PGP, so a
    // backup is never possible.
    if fields::boolean(data, "backup")?.unwrap_or(false) {
        return Err(Error::bad(
            "cannot request a backup of the new keys without providing PGP keys for encryption",
        ));
    }
    if !list_is_empty(data, "pgp_keys") {
        return Err(Error::bad(
            "pgp_keys is not supported: Warden does not encrypt unseal keys with PGP",
        ));
    }
    Ok(RekeyRequest {
        secret_shares: fields::integer(data, "secret_shares")?.unwrap_or(0),
        secret_threshold: fields::integer(data, "secret_threshold")?.unwrap_or(0),
        require_verification: fields::boolean(data, "require_verification")?.unwrap_or(false),
    })
}

fn key_and_nonce(data: &Data) -> Result<(String, String)> {
    Ok((
        fields::string(data, "key")?.unwrap_or_default(),
        fields::string(data, "nonce")?.unwrap_or_default(),
    ))
}

/// Absent, `null`, `""` or `[]`: what the CLI sends when no PGP is used.
pub(crate) fn list_is_empty(data: &Data, field: &str) -> bool {
    match data.get(field) {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        Some(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_parameters_parse_as_vault_parses_them() {
        let q = HealthQuery::parse(None).unwrap();
        assert_eq!((q.active, q.sealed, q.uninit), (200, 503, 501));
        let q = HealthQuery::parse(Some("activecode=299&sealedcode=200&uninitcode=204&standbyok=true")).unwrap();
        assert_eq!((q.active, q.sealed, q.uninit), (299, 200, 204));
        // The first value wins, as Go's Query()[name][0].
        assert_eq!(
            HealthQuery::parse(Some("activecode=201&activecode=x")).unwrap().active,
            201
        );
        for bad in [
            "activecode=abc",
            "activecode=",
            "sealedcode=99",
            "uninitcode=1000",
            "standbycode=-1",
            "drsecondarycode=4.5",
            "performancestandbycode=x",
            "haunhealthycode=x",
            "removedcode=x",
            "standbyok=yes",
            "perfstandbyok=",
        ] {
            assert!(HealthQuery::parse(Some(bad)).is_err(), "{bad}");
        }
        // Go's ParseBool spellings.
        for ok in [
            "standbyok=1",
            "standbyok=T",
            "perfstandbyok=False",
            "standbycode=%32%39%39",
        ] {
            assert!(HealthQuery::parse(Some(ok)).is_ok(), "{ok}");
        }
    }

    #[test]
    fn init_takes_what_the_cli_sends_and_refuses_real_pgp() {
        let data = |v: Value| -> Data { serde_json::from_value(v).unwrap() };
        let cli = data(json!({
            "secret_shares": 5, "secret_threshold": 3, "stored_shares": 0,
            "pgp_keys": null, "root_token_pgp_key": "",
            "recovery_shares": 0, "recovery_threshold": 0, "recovery_pgp_keys": null,
        }));
        assert_eq!(
            init_request(&cli).unwrap(),
            InitRequest {
                secret_shares: 5,
                secret_threshold: 3
            }
        );
        assert!(
            init_request(&data(
                json!({"secret_shares": 1, "secret_threshold": 1, "pgp_keys": []})
            ))
            .is_ok()
        );
        let err = |v: Value| init_request(&data(v)).unwrap_err().to_string();
        assert_eq!(
            err(json!({"recovery_shares": 5, "recovery_threshold": 3})),
            "parameters recovery_shares,recovery_threshold not applicable to seal type shamir"
        );
        assert!(err(json!({"pgp_keys": ["a2V5"]})).starts_with("pgp_keys is not supported"));
        assert!(err(json!({"root_token_pgp_key": "a2V5"})).starts_with("root_token_pgp_key is not supported"));
        assert!(err(json!({"secret_shares": "five"})).contains("secret_shares"));
    }

    #[test]
    fn a_single_node_is_no_ha_leader() {
        let v = leader();
        assert_eq!(v["ha_enabled"], json!(false));
        assert_eq!(v["leader_address"], json!(""));
    }

    #[test]
    fn the_cli_empty_pgp_values_count_as_none() {
        let data: Data = serde_json::from_value(json!({"a": null, "b": "", "c": [], "d": ["k"], "e": "k"})).unwrap();
        for f in ["a", "b", "c", "missing"] {
            assert!(list_is_empty(&data, f), "{f}");
        }
        for f in ["d", "e"] {
            assert!(!list_is_empty(&data, f), "{f}");
        }
    }
}
