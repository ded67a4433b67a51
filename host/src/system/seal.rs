//! The seal's paths: `sys/health`, `sys/seal-status`, `sys/init` and
//! `sys/unseal` without a token (they must work while sealed), and
//! `sys/seal`, `sys/key-status`, `sys/rotate` with one. Vault answers the
//! unauthenticated ones with a bare JSON body, not the envelope.

use crate::error::Error;
use crate::framework::{Field, FieldType, Path, Req};
use crate::handler;
use crate::logical::Operation::{Read, Update};
use crate::logical::{Reply, Response};
use crate::node::{Node, init_response};
use chrono::SecondsFormat;
use serde_json::{Value, json};

pub fn paths() -> Vec<Path<Node>> {
    vec![
        Path::new("health")
            .unauthenticated()
            .op(Read, handler!(health), "Returns the health status of Warden.")
            .help(
                "Checks the health of Warden.",
                "Returns 200 when initialised and unsealed, 503 when sealed, 501 when not initialised.",
            ),
        Path::new("seal-status")
            .unauthenticated()
            .op(Read, handler!(seal_status), "Check the seal status of Warden.")
            .help("Returns the seal status of Warden.", "Sealed or not, the threshold and the unseal progress."),
        Path::new("init")
            .unauthenticated()
            .field(Field::new("secret_shares", FieldType::Int, "The number of shares to split the root key into.").required())
            .field(Field::new("secret_threshold", FieldType::Int, "The number of shares required to reconstruct the root key.").required())
            .field(Field::new("pgp_keys", FieldType::CommaList, "PGP keys to encrypt the unseal shares with (not supported)."))
            .field(Field::new("root_token_pgp_key", FieldType::Str, "A PGP key to encrypt the root token with (not supported)."))
            .field(Field::new("recovery_shares", FieldType::Int, "Recovery shares (auto-unseal only; not supported)."))
            .field(Field::new("recovery_threshold", FieldType::Int, "Recovery threshold (auto-unseal only; not supported)."))
            .field(Field::new("recovery_pgp_keys", FieldType::CommaList, "Recovery PGP keys (not supported)."))
            .field(Field::new("stored_shares", FieldType::Int, "Stored shares (auto-unseal only; not supported)."))
            .op(Read, handler!(init_status), "Returns the initialization status of Warden.")
            .op(Update, handler!(init), "Initialize a new Warden.")
            .help(
                "Initializes or returns the initialization status of Warden.",
                "Initialization generates the root key, splits it into unseal shares and returns them with the root token. It can be done once.",
            ),
        Path::new("unseal")
            .unauthenticated()
            .field(Field::new("key", FieldType::Str, "One unseal share, hex or base64."))
            .field(Field::new("reset", FieldType::Bool, "Discard the shares given so far.").default(false))
            .op(Update, handler!(unseal), "Unseal Warden.")
            .help("Unseals Warden.", "Give unseal shares one at a time until the threshold is reached."),
        Path::new("seal")
            .sudo()
            .op(Update, handler!(seal), "Seal Warden.")
            .help("Seals Warden.", "Sealing drops the keys from memory: every request but the seal's own answers 503 until unsealed."),
        Path::new("rotate")
            .sudo()
            .op(Update, handler!(rotate), "Rotate the backend encryption key used to persist data.")
            .help("Rotates the backend encryption key.", "Adds a new key to the keyring; new writes use it, old values stay readable."),
        Path::new("key-status")
            .op(Read, handler!(key_status), "Provides information about the backend encryption key.")
            .help("Provides information about the backend encryption key.", "The keyring's term and when its newest key was installed."),
    ]
}

async fn health(node: &Node, _: &Req<'_>) -> Reply {
    // Vault's status codes: 200 unsealed and active, 503 sealed, 501 not
    // initialised; the body is the same in every case.
    let status = match (node.initialized(), node.sealed()) {
        (false, _) => 501,
        (true, true) => 503,
        (true, false) => 200,
    };
    let seal = node.seal_status();
    let body = json!({
        "initialized": node.initialized(),
        "sealed": node.sealed(),
        "standby": false,
        "performance_standby": false,
        "replication_performance_mode": "disabled",
        "replication_dr_mode": "disabled",
        "server_time_utc": chrono::Utc::now().timestamp(),
        "version": env!("CARGO_PKG_VERSION"),
        "cluster_name": seal.get("cluster_name").cloned().unwrap_or(Value::Null),
        "cluster_id": seal.get("cluster_id").cloned().unwrap_or(Value::Null),
    });
    Ok(Some(Response {
        status: Some(status),
        ..Response::raw(body)
    }))
}

async fn seal_status(node: &Node, _: &Req<'_>) -> Reply {
    Ok(Some(Response::raw(node.seal_status())))
}

async fn init_status(node: &Node, _: &Req<'_>) -> Reply {
    Ok(Some(Response::raw(json!({ "initialized": node.initialized() }))))
}

async fn init(node: &Node, r: &Req<'_>) -> Reply {
    let f = &r.fields;
    for unsupported in ["pgp_keys", "root_token_pgp_key", "recovery_pgp_keys"] {
        if f.opt_list(unsupported).is_some_and(|l| !l.is_empty())
            || f.opt_str(unsupported).is_some_and(|s| !s.is_empty())
        {
            return Err(Error::bad(format!("{unsupported} is not supported")));
        }
    }
    for unsupported in ["recovery_shares", "recovery_threshold", "stored_shares"] {
        if f.opt_int(unsupported).is_some_and(|n| n != 0) {
            return Err(Error::bad(format!("{unsupported} is not supported")));
        }
    }
    let shares = f
        .opt_int("secret_shares")
        .ok_or_else(|| Error::bad("secret_shares is required"))?;
    let threshold = f
        .opt_int("secret_threshold")
        .ok_or_else(|| Error::bad("secret_threshold is required"))?;
    let result = node.init(shares, threshold, None).await?;
    Ok(Some(Response::raw(init_response(&result))))
}

async fn unseal(node: &Node, r: &Req<'_>) -> Reply {
    let key = r.fields.opt_str("key");
    Ok(Some(Response::raw(
        node.unseal(key.as_deref(), r.fields.bool("reset")).await?,
    )))
}

async fn seal(node: &Node, _: &Req<'_>) -> Reply {
    node.seal().await?;
    Ok(None)
}

async fn rotate(node: &Node, _: &Req<'_>) -> Reply {
    node.rotate().await?;
    Ok(None)
}

async fn key_status(node: &Node, _: &Req<'_>) -> Reply {
    let (term, installed) = node.key_status()?;
    let data = json!({
        "term": term,
        "install_time": installed.to_rfc3339_opts(SecondsFormat::Nanos, true),
        "encryptions": 0,
    });
    Ok(Some(Response {
        top_level: data.as_object().cloned(),
        ..Response::data(data)
    }))
}
