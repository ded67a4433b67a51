//! The node's operator paths, declared as every other path: without a
//! token (they must work while sealed, and the unseal keys are their
//! authority) `sys/health` (GET and HEAD, with Vault's status-code query
//! parameters), `sys/seal-status`, `sys/init`, `sys/unseal`, `sys/leader`
//! the rekey flow `sys/rekey/init|update|verify` and root token generation
//! `sys/generate-root/attempt|update`; with a token `sys/seal`,
//! `sys/rotate` and `sys/rotate/keyring`, `sys/key-status`, OpenBao's
//! `sys/generate-root-token/attempt|update` and `sys/decode-token`.
//! Vault answers the unauthenticated ones with a bare JSON body, not the
//! envelope.

use crate::error::{Error, Result};
use crate::framework::convert;
use crate::framework::{Field, FieldType, Path, Req};
use crate::handler;
use crate::logical::Operation::{Delete, Read, Update};
use crate::logical::{Reply, Response as Logical};
use crate::node::{GenerateRootStatus, InitRequest, Node, RekeyRequest, init_response};
use chrono::SecondsFormat;
use serde_json::{Map, Value, json};

type Data = Map<String, Value>;

/// The query parameters of sys/health (strings: [`HealthQuery`] parses
/// them as Go does).
const HEALTH_PARAMS: [&str; 10] = [
    "standbyok",
    "perfstandbyok",
    "activecode",
    "standbycode",
    "drsecondarycode",
    "haunhealthycode",
    "performancestandbycode",
    "removedcode",
    "sealedcode",
    "uninitcode",
];

pub fn paths() -> Vec<Path<Node>> {
    let key = || {
        Field::new(
            "key",
            FieldType::Str,
            "One unseal share (for rekey: of the current key), hex or base64.",
        )
    };
    let nonce = || Field::new("nonce", FieldType::Str, "The nonce of the rekey attempt.");
    let shares = |what: &'static str| Field::new("secret_shares", FieldType::Int, what);
    let threshold = |what: &'static str| Field::new("secret_threshold", FieldType::Int, what);
    let mut health = Path::new("health").unauthenticated();
    for p in HEALTH_PARAMS {
        health = health.field(Field::new(
            p,
            FieldType::Str,
            "A status code to answer with (a *code), or whether a standby counts as healthy (a *ok).",
        ));
    }
    vec![
        health
            .op(Read, handler!(health_handler), "Returns the health status of Warden.")
            .help(
                "Checks the health of Warden.",
                "Returns 200 when initialised and unsealed, 503 when sealed, 501 when not initialised; the query parameters change those codes. HEAD answers the code alone.",
            ),
        Path::new("seal-status")
            .unauthenticated()
            .op(Read, handler!(seal_status), "Check the seal status of Warden.")
            .help("Returns the seal status of Warden.", "Sealed or not, the threshold and the unseal progress."),
        Path::new("leader")
            .unauthenticated()
            .op(Read, handler!(leader_handler), "Returns the high availability status and current leader instance of Warden.")
            .help("Check the high availability status and current leader of Warden.", "A single node without HA storage answers ha_enabled false."),
        Path::new("init")
            .unauthenticated()
            .field(shares("The number of shares to split the root key into.").required())
            .field(threshold("The number of shares required to reconstruct the root key.").required())
            .field(Field::new("pgp_keys", FieldType::CommaList, "PGP keys to encrypt the unseal shares with (not supported)."))
            .field(Field::new("root_token_pgp_key", FieldType::Str, "A PGP key to encrypt the root token with (not supported)."))
            .field(Field::new("recovery_shares", FieldType::Int, "The number of shares to split the recovery key into (a static seal only; 0: no recovery keys)."))
            .field(Field::new("recovery_threshold", FieldType::Int, "The number of recovery shares required to authorise (a static seal only)."))
            .field(Field::new("recovery_pgp_keys", FieldType::CommaList, "PGP keys to encrypt the recovery shares with (not supported)."))
            .field(Field::new("stored_shares", FieldType::Int, "Stored shares (a Shamir seal stores one)."))
            .op(Read, handler!(init_status), "Returns the initialization status of Warden.")
            .op(Update, handler!(init_handler), "Initialize a new Warden.")
            .help(
                "Initializes or returns the initialization status of Warden.",
                "Initialization generates the root key, splits it into unseal shares and returns them with the root token. It can be done once.",
            ),
        Path::new("unseal")
            .unauthenticated()
            .field(key())
            .field(Field::new("reset", FieldType::Bool, "Discard the shares given so far.").default(false))
            .op(Update, handler!(unseal), "Unseal Warden.")
            .help("Unseals Warden.", "Give unseal shares one at a time until the threshold is reached."),
        Path::new("rekey/init")
            .unauthenticated()
            .field(shares("The number of shares to split the new unseal key into."))
            .field(threshold("The number of shares required to reconstruct the new unseal key."))
            .field(Field::new("pgp_keys", FieldType::CommaList, "PGP keys to encrypt the new shares with (not supported)."))
            .field(Field::new("backup", FieldType::Bool, "Store a backup of the new shares (needs PGP: not supported).").default(false))
            .field(Field::new("require_verification", FieldType::Bool, "Require the new shares to be given back before they replace the old ones.").default(false))
            .op(Read, handler!(rekey_status), "Reads the configuration and progress of the current rekey attempt.")
            .op(Update, handler!(rekey_init), "Initializes a new rekey attempt.")
            .op(Delete, handler!(rekey_cancel), "Cancels any in-progress rekey.")
            .help("Starts, reads or cancels a rekey of the unseal key.", "A rekey splits the root key anew into shares under a new unseal key, from a threshold of the current shares; the data and its encryption key are unchanged."),
        Path::new("rekey/update")
            .unauthenticated()
            .field(key())
            .field(nonce())
            .op(Update, handler!(rekey_update), "Enter a single unseal key share to progress the rekey.")
            .help("Gives one share of the current unseal key to a rekey attempt.", "Once the threshold is reached the new shares are returned (and, if verification is required, must be given back to sys/rekey/verify)."),
        Path::new("rekey/verify")
            .unauthenticated()
            .field(key())
            .field(nonce())
            .op(Read, handler!(rekey_verify_status), "Read the configuration and progress of the current rekey verification attempt.")
            .op(Update, handler!(rekey_verify), "Enter a single new key share to progress the rekey verification.")
            .op(Delete, handler!(rekey_verify_restart), "Cancel any in-progress rekey verification and start it again.")
            .help("Verifies the new shares of a rekey.", "Gives the new shares back; once a threshold of them is in, they replace the old ones."),
        Path::new("generate-root/attempt")
            .unauthenticated()
            .field(Field::new("otp", FieldType::Str, "A one-time password (base62, otp_length characters) to XOR the new token with; without it one is made and returned."))
            .field(Field::new("pgp_key", FieldType::Str, "A PGP key to encrypt the new token with (not supported)."))
            .op(Read, handler!(generate_root_status), "Read the configuration and progress of the current root generation attempt.")
            .op(Update, handler!(generate_root_init), "Initializes a new root generation attempt.")
            .op(Delete, handler!(generate_root_cancel), "Cancels any in-progress root generation attempt.")
            .help("Starts, reads or cancels a root token generation.", "A threshold of unseal shares (sys/generate-root/update) makes a new root token, returned XORed with the attempt's one-time password. Vault's unauthenticated API: the shares are the authority."),
        Path::new("generate-root/update")
            .unauthenticated()
            .field(key())
            .field(Field::new("nonce", FieldType::Str, "The nonce of the root generation attempt."))
            .op(Update, handler!(generate_root_update), "Enter a single unseal key share to progress the root generation attempt.")
            .help("Gives one unseal share to a root token generation.", "At the threshold the new root token is returned, encoded with the attempt's one-time password."),
        Path::new("generate-root-token/attempt")
            .field(Field::new("otp", FieldType::Str, "A one-time password (base62, otp_length characters) to XOR the new token with; without it one is made and returned."))
            .field(Field::new("pgp_key", FieldType::Str, "A PGP key to encrypt the new token with (not supported)."))
            .op(Read, handler!(generate_root_token_status), "Read the configuration and progress of the current root token generation attempt.")
            .op(Update, handler!(generate_root_token_init), "Initializes a new root token generation attempt.")
            .op(Delete, handler!(generate_root_cancel), "Cancels any in-progress root token generation attempt.")
            .help("OpenBao's authenticated root token generation (what its CLI calls).", "The same attempt as sys/generate-root, answered in the usual envelope, for a token its policy allows."),
        Path::new("generate-root-token/update")
            .field(key())
            .field(Field::new("nonce", FieldType::Str, "The nonce of the root generation attempt."))
            .op(Update, handler!(generate_root_token_update), "Enter a single unseal key share to progress the root token generation attempt.")
            .help("Gives one unseal share to a root token generation (authenticated).", "At the threshold the new root token is returned, encoded with the attempt's one-time password."),
        Path::new("decode-token")
            .field(Field::new("encoded_token", FieldType::Str, "The encoded token (the result of sys/generate-root).").required())
            .field(Field::new("otp", FieldType::Str, "The one-time password of the attempt.").required())
            .op(Update, handler!(decode_token), "Decodes the encoded token with the otp.")
            .help("Decodes a token encoded by sys/generate-root.", "The token XORed back with the one-time password."),
        Path::new("seal")
            .sudo()
            .op(Update, handler!(seal), "Seal Warden.")
            .help("Seals Warden.", "Sealing drops the keys from memory: every request but the seal's own answers 503 until unsealed."),
        Path::new("rotate(/keyring)?")
            .sudo()
            .op(Update, handler!(rotate), "Rotate the backend encryption key used to persist data.")
            .help("Rotates the backend encryption key.", "Adds a new key to the keyring; new writes use it, old values stay readable. sys/rotate/keyring is the newer name bao operator rotate uses."),
        Path::new("key-status")
            .op(Read, handler!(key_status_handler), "Provides information about the backend encryption key.")
            .help("Provides information about the backend encryption key.", "The keyring's term and when its newest key was installed."),
    ]
}

/// The given fields as JSON, for the parsers below that read what the CLI
/// sends (empty PGP values, zero recovery fields) as Vault does.
fn given(r: &Req<'_>) -> Data {
    r.fields.given_json()
}

async fn health_handler(node: &Node, r: &Req<'_>) -> Reply {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(
            HEALTH_PARAMS
                .iter()
                .filter_map(|p| r.fields.opt_str(p).map(|v| (*p, v))),
        )
        .finish();
    Ok(Some(match HealthQuery::parse(Some(&query)) {
        Ok(q) => {
            let (status, body) = health(node, &q);
            Logical {
                status: Some(status),
                ..Logical::raw(body)
            }
        }
        // Vault answers a bad parameter with an empty error list.
        Err(()) => Logical {
            status: Some(400),
            ..Logical::raw(json!({ "errors": [] }))
        },
    }))
}

async fn seal_status(node: &Node, _: &Req<'_>) -> Reply {
    Ok(Some(Logical::raw(node.seal_status())))
}

async fn leader_handler(node: &Node, _: &Req<'_>) -> Reply {
    Ok(Some(Logical::raw(super::ha::leader(node).await?)))
}

async fn init_status(node: &Node, _: &Req<'_>) -> Reply {
    Ok(Some(Logical::raw(json!({ "initialized": node.initialized() }))))
}

async fn init_handler(node: &Node, r: &Req<'_>) -> Reply {
    Ok(Some(Logical::raw(init(node, &init_request(&given(r))?).await?)))
}

async fn unseal(node: &Node, r: &Req<'_>) -> Reply {
    let key = r.fields.opt_str("key");
    Ok(Some(Logical::raw(
        node.unseal(key.as_deref(), r.fields.bool("reset")).await?,
    )))
}

async fn rekey_status(node: &Node, _: &Req<'_>) -> Reply {
    Ok(Some(Logical::raw(node.rekey_status()?)))
}

async fn rekey_init(node: &Node, r: &Req<'_>) -> Reply {
    Ok(Some(Logical::raw(node.rekey_init(&rekey_request(&given(r))?).await?)))
}

async fn rekey_cancel(node: &Node, _: &Req<'_>) -> Reply {
    node.rekey_cancel()?;
    Ok(None)
}

async fn rekey_update(node: &Node, r: &Req<'_>) -> Reply {
    let (key, nonce) = key_and_nonce(&given(r))?;
    Ok(Some(Logical::raw(node.rekey_update(&key, &nonce).await?)))
}

async fn rekey_verify_status(node: &Node, _: &Req<'_>) -> Reply {
    Ok(Some(Logical::raw(node.rekey_verify_status()?)))
}

async fn rekey_verify(node: &Node, r: &Req<'_>) -> Reply {
    let (key, nonce) = key_and_nonce(&given(r))?;
    Ok(Some(Logical::raw(node.rekey_verify(&key, &nonce).await?)))
}

async fn rekey_verify_restart(node: &Node, _: &Req<'_>) -> Reply {
    Ok(Some(Logical::raw(node.rekey_verify_restart()?)))
}

/// Vault's bare answer of the unauthenticated generate-root paths.
fn generate_root_raw(st: &GenerateRootStatus) -> Logical {
    Logical::raw(json!({
        "started": st.started,
        "nonce": st.nonce,
        "progress": st.progress,
        "required": st.required,
        "encoded_token": st.encoded_token,
        "encoded_root_token": st.encoded_token,
        "pgp_fingerprint": "",
        "otp": st.otp,
        "otp_length": st.otp_length,
        "complete": st.complete,
    }))
}

/// OpenBao's `data` of sys/generate-root-token: the nonce once started,
/// the encoded token once complete.
fn generate_root_data(st: &GenerateRootStatus) -> Logical {
    let mut data = json!({
        "complete": st.complete,
        "otp": st.otp,
        "otp_length": st.otp_length,
        "progress": st.progress,
        "required": st.required,
        "started": st.started,
    });
    if st.started {
        data["nonce"] = json!(st.nonce);
        data["pgp_fingerprint"] = json!("");
    }
    if st.complete {
        data["encoded_token"] = json!(st.encoded_token);
    }
    Logical::data(data)
}

async fn generate_root_status(node: &Node, _: &Req<'_>) -> Reply {
    Ok(Some(generate_root_raw(&node.generate_root_status()?)))
}

async fn generate_root_init(node: &Node, r: &Req<'_>) -> Reply {
    Ok(Some(generate_root_raw(&start_generate_root(node, r)?)))
}

async fn generate_root_cancel(node: &Node, _: &Req<'_>) -> Reply {
    node.generate_root_cancel()?;
    Ok(None)
}

async fn generate_root_update(node: &Node, r: &Req<'_>) -> Reply {
    Ok(Some(generate_root_raw(&update_generate_root(node, r).await?)))
}

async fn generate_root_token_status(node: &Node, _: &Req<'_>) -> Reply {
    Ok(Some(generate_root_data(&node.generate_root_status()?)))
}

async fn generate_root_token_init(node: &Node, r: &Req<'_>) -> Reply {
    Ok(Some(generate_root_data(&start_generate_root(node, r)?)))
}

async fn generate_root_token_update(node: &Node, r: &Req<'_>) -> Reply {
    Ok(Some(generate_root_data(&update_generate_root(node, r).await?)))
}

/// The start of an attempt, as both generate-root APIs take it.
fn start_generate_root(node: &Node, r: &Req<'_>) -> Result<GenerateRootStatus> {
    let (otp, pgp_key) = (r.fields.opt_str("otp"), r.fields.opt_str("pgp_key"));
    node.generate_root_init(otp.as_deref(), pgp_key.as_deref())
}

/// One share, as both generate-root APIs take it.
async fn update_generate_root(node: &Node, r: &Req<'_>) -> Result<GenerateRootStatus> {
    let (key, nonce) = key_and_nonce(&given(r))?;
    node.generate_root_update(&key, &nonce).await
}

async fn decode_token(_: &Node, r: &Req<'_>) -> Reply {
    let token = crate::node::decode_root_token(&r.fields.str("encoded_token"), &r.fields.str("otp"))?;
    Ok(Some(Logical::data(json!({ "token": token }))))
}

async fn seal(node: &Node, _: &Req<'_>) -> Reply {
    node.seal().await?;
    Ok(None)
}

async fn rotate(node: &Node, _: &Req<'_>) -> Reply {
    node.rotate().await?;
    Ok(None)
}

async fn key_status_handler(node: &Node, _: &Req<'_>) -> Reply {
    Ok(Some(key_status(node)?))
}

/// Vault's `sys/health` query parameters. The standby, performance
/// standby, DR secondary, removed and HA-unhealthy codes are parsed (a bad
/// value is refused as Vault refuses it) but never apply to a single node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthQuery {
    /// `standbycode` (429): a standby's answer, unless `standbyok`.
    pub standby: u16,
    pub standby_ok: bool,
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
        code("drsecondarycode", 472)?;
        code("performancestandbycode", 473)?;
        code("haunhealthycode", 474)?;
        code("removedcode", 530)?;
        Ok(HealthQuery {
            standby: code("standbycode", 429)?,
            standby_ok: first("standbyok").and_then(go_bool).unwrap_or(false),
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

/// `sys/health`: the status code says initialised, sealed, standby (HA)
/// or active; the body is the same in every case.
pub fn health(node: &Node, q: &HealthQuery) -> (u16, Value) {
    let (initialized, sealed, standby) = (node.initialized(), node.sealed(), node.standby());
    let code = match (initialized, sealed, standby) {
        (false, _, _) => q.uninit,
        (true, true, _) => q.sealed,
        (true, false, true) if !q.standby_ok => q.standby,
        (true, false, _) => q.active,
    };
    let status = code;
    let seal = node.seal_status();
    let mut body = json!({
        "initialized": initialized,
        "sealed": sealed,
        "standby": standby,
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

/// `sys/init`'s body as the CLI sends it: PGP fields empty or null,
/// recovery fields zero or null, `stored_shares` whatever (one key is
/// stored, as Vault forces). Real PGP use is refused; which of the share
/// fields apply depends on the node's seal ([`Node::init`]).
fn init_request(data: &Data) -> Result<InitRequest> {
    for field in ["pgp_keys", "root_token_pgp_key", "recovery_pgp_keys"] {
        if !list_is_empty(data, field) {
            return Err(Error::bad(format!(
                "{field} is not supported: Warden does not encrypt keys or tokens with PGP"
            )));
        }
    }
    convert::integer(data, "stored_shares")?;
    let int = |field: &str| -> Result<i64> { Ok(convert::integer(data, field)?.unwrap_or(0)) };
    Ok(InitRequest {
        secret_shares: int("secret_shares")?,
        secret_threshold: int("secret_threshold")?,
        recovery_shares: int("recovery_shares")?,
        recovery_threshold: int("recovery_threshold")?,
    })
}

/// `PUT sys/init`.
pub async fn init(node: &Node, request: &InitRequest) -> Result<Value> {
    let result = node.init(*request, None).await?;
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
    if convert::boolean(data, "backup")?.unwrap_or(false) {
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
        secret_shares: convert::integer(data, "secret_shares")?.unwrap_or(0),
        secret_threshold: convert::integer(data, "secret_threshold")?.unwrap_or(0),
        require_verification: convert::boolean(data, "require_verification")?.unwrap_or(false),
    })
}

fn key_and_nonce(data: &Data) -> Result<(String, String)> {
    Ok((
        convert::string(data, "key")?.unwrap_or_default(),
        convert::string(data, "nonce")?.unwrap_or_default(),
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
        assert_eq!(init_request(&cli).unwrap(), InitRequest::shamir(5, 3));
        let recovery = data(json!({"secret_shares": 0, "recovery_shares": 5, "recovery_threshold": 3}));
        assert_eq!(
            init_request(&recovery).unwrap(),
            InitRequest {
                recovery_shares: 5,
                recovery_threshold: 3,
                ..InitRequest::default()
            }
        );
        assert!(
            init_request(&data(
                json!({"secret_shares": 1, "secret_threshold": 1, "pgp_keys": []})
            ))
            .is_ok()
        );
        let err = |v: Value| init_request(&data(v)).unwrap_err().to_string();
        assert!(err(json!({"recovery_pgp_keys": ["a2V5"]})).starts_with("recovery_pgp_keys is not supported"));
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
