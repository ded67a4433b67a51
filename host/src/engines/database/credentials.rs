//! Credential types of dynamic roles (Vault's `credential_type` and
//! `credential_config`): checking and normalising a role's config with
//! Vault's defaults and messages, and whether a connection's driver can use
//! the type at all. Generating the credential is the generator components'
//! work (`builtin-password-generator`; see path_creds_create).

use super::path_config_connection::DbConfig;
use crate::error::{Error, Result};
use crate::runtime::catalog;
use serde_json::{Map, Value};
use warden_driver_common::template::Template;

pub const PASSWORD: &str = "password";
pub const RSA_PRIVATE_KEY: &str = "rsa_private_key";
pub const CLIENT_CERTIFICATE: &str = "client_certificate";

/// Settings never shown when a role is read (Vault shows them; a CA's
/// private key has no business in a read response).
pub const SECRET_SETTINGS: &[&str] = &["ca_private_key"];

/// Check `raw` for `credential_type` and return it as stored: Vault's
/// defaults filled in, unknown settings dropped, numbers as numbers.
pub fn normalise(credential_type: &str, raw: &Map<String, Value>) -> Result<Map<String, Value>> {
    let settings = strings(raw)?;
    let get = |k: &str| settings.get(k).map(String::as_str).unwrap_or("").trim().to_string();
    let invalid = |e: String| Error::bad(format!("credential_config validation failed: {e}"));
    let mut out = Map::new();
    match credential_type {
        PASSWORD => {
            let policy = get("password_policy");
            if !policy.is_empty() {
                out.insert("password_policy".into(), Value::from(policy));
            }
        }
        RSA_PRIVATE_KEY => {
            let format = get("format").to_lowercase();
            if !format.is_empty() && format != "pkcs8" {
                return Err(invalid(format!("invalid format: {}", get("format"))));
            }
            let bits = number(&get("key_bits")).map_err(invalid)?;
            let bits = match bits {
                0 => 2048,
                2048 | 3072 | 4096 => bits,
                other => return Err(invalid(format!("invalid key_bits: {other}"))),
            };
            out.insert("format".into(), Value::from("pkcs8"));
            out.insert("key_bits".into(), Value::from(bits));
        }
        CLIENT_CERTIFICATE => {
            let key_type = get("key_type");
            let bits = number(&get("key_bits")).map_err(invalid)?;
            let bits = match (key_type.as_str(), bits) {
                ("rsa", 0) => 2048,
                ("rsa", 2048 | 3072 | 4096) | ("ec", 224 | 256 | 384 | 521) => bits,
                ("ec", 0) => 256,
                ("ed25519", _) => 0,
                ("rsa" | "ec", _) => return Err(invalid("invalid key_bits".into())),
                _ => return Err(invalid("invalid key_type".into())),
            };
            let signature_bits = match number(&get("signature_bits")).map_err(invalid)? {
                0 => 256,
                b @ (256 | 384 | 512) => b,
                _ => return Err(invalid("invalid signature_bits".into())),
            };
            let template = get("common_name_template");
            if template.is_empty() {
                return Err(invalid("missing required common_name_template".into()));
            }
            Template::parse(&template).map_err(|e| invalid(format!("failed to create template: {e}")))?;
            let ca_cert = get("ca_cert");
            let ca_key = get("ca_private_key");
            if ca_cert.is_empty() {
                return Err(invalid("missing required ca_cert".into()));
            }
            if ca_key.is_empty() {
                return Err(invalid("missing required ca_private_key".into()));
            }
            if !ca_cert.contains("-----BEGIN CERTIFICATE-----") {
                return Err(invalid("certificate not found in the PEM bundle".into()));
            }
            if !(ca_key.contains("-----BEGIN") && ca_key.contains("PRIVATE KEY-----")) {
                return Err(invalid("private key not found in the PEM bundle".into()));
            }
            out.insert("key_type".into(), Value::from(key_type));
            if bits > 0 {
                out.insert("key_bits".into(), Value::from(bits));
            }
            out.insert("signature_bits".into(), Value::from(signature_bits));
            out.insert("common_name_template".into(), Value::from(template));
            out.insert("ca_cert".into(), Value::from(ca_cert));
            out.insert("ca_private_key".into(), Value::from(ca_key));
        }
        other => return Err(Error::bad(format!("invalid credential_type {other:?}"))),
    }
    Ok(out)
}

/// Vault's `TypeKVPairs`: every value as a string.
fn strings(raw: &Map<String, Value>) -> Result<std::collections::BTreeMap<String, String>> {
    raw.iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k.clone(), s.clone())),
            Value::Number(n) => Ok((k.clone(), n.to_string())),
            Value::Bool(b) => Ok((k.clone(), b.to_string())),
            Value::Null => Ok((k.clone(), String::new())),
            _ => Err(Error::bad(format!(
                "credential_config: {k:?} must be a string, not {v}"
            ))),
        })
        .collect()
}

fn number(s: &str) -> std::result::Result<u64, String> {
    if s.is_empty() {
        return Ok(0);
    }
    s.parse().map_err(|_| format!("cannot parse {s:?} as a number of bits"))
}

/// A 400 naming the type when the connection's driver cannot use it.
pub fn check_supported(config: &DbConfig, db_name: &str, credential_type: &str) -> Result<()> {
    if catalog::credential_types(&config.plugin_name).contains(&credential_type) {
        return Ok(());
    }
    Err(Error::bad(format!(
        "credential_type {credential_type:?} is not supported by the database plugin {:?} of connection {db_name:?}; \
         it supports: {}",
        config.plugin_name,
        catalog::credential_types(&config.plugin_name).join(", ")
    )))
}

/// The role's settings as the read response shows them.
pub fn shown(config: &Map<String, Value>) -> Map<String, Value> {
    config
        .iter()
        .filter(|(k, _)| !SECRET_SETTINGS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn norm(t: &str, v: Value) -> Result<Value> {
        let Value::Object(m) = v else { panic!("object") };
        normalise(t, &m).map(Value::Object)
    }

    fn message(r: Result<Value>) -> String {
        r.expect_err("should fail").to_string()
    }

    #[test]
    fn password_config() {
        assert_eq!(norm(PASSWORD, json!({})).ok(), Some(json!({})));
        assert_eq!(
            norm(PASSWORD, json!({"password_policy": "strict", "other": "x"})).ok(),
            Some(json!({"password_policy": "strict"}))
        );
        assert!(message(norm("token", json!({}))).contains("invalid credential_type \"token\""));
    }

    #[test]
    fn rsa_config_defaults_and_checks() {
        assert_eq!(
            norm(RSA_PRIVATE_KEY, json!({})).ok(),
            Some(json!({"format": "pkcs8", "key_bits": 2048}))
        );
        assert_eq!(
            norm(RSA_PRIVATE_KEY, json!({"key_bits": "4096", "format": "PKCS8"})).ok(),
            Some(json!({"format": "pkcs8", "key_bits": 4096}))
        );
        assert!(message(norm(RSA_PRIVATE_KEY, json!({"key_bits": 1024}))).contains("invalid key_bits: 1024"));
        assert!(message(norm(RSA_PRIVATE_KEY, json!({"format": "pkcs1"}))).contains("invalid format: pkcs1"));
    }

    #[test]
    fn client_certificate_config_checks() {
        let ok = json!({
            "key_type": "ec", "common_name_template": "{{.RoleName}}-{{random 4}}",
            "ca_cert": "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----",
            "ca_private_key": "-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----",
        });
        let out = norm(CLIENT_CERTIFICATE, ok.clone()).expect("valid");
        assert_eq!(out["key_bits"], json!(256));
        assert_eq!(out["signature_bits"], json!(256));
        assert!(!shown(out.as_object().expect("map")).contains_key("ca_private_key"));
        let with = |k: &str, v: Value| {
            let mut c = ok.clone();
            c[k] = v;
            message(norm(CLIENT_CERTIFICATE, c))
        };
        assert!(with("key_type", json!("dsa")).contains("invalid key_type"));
        assert!(with("key_bits", json!(2048)).contains("invalid key_bits"));
        assert!(with("signature_bits", json!(128)).contains("invalid signature_bits"));
        assert!(with("common_name_template", json!("")).contains("missing required common_name_template"));
        assert!(with("common_name_template", json!("{{.Nope")).contains("failed to create template"));
        assert!(with("ca_cert", json!("")).contains("missing required ca_cert"));
        assert!(with("ca_private_key", json!("")).contains("missing required ca_private_key"));
        assert!(with("ca_cert", json!("junk")).contains("certificate not found"));
        let ed = norm(CLIENT_CERTIFICATE, {
            let mut c = ok.clone();
            c["key_type"] = json!("ed25519");
            c
        })
        .expect("valid");
        assert!(ed.get("key_bits").is_none());
    }
}
