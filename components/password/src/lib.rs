//! Vault's password generator as a Warden component (world
//! credential-generator). Settings: `length` (default 20) and `policy`, a
//! password policy as JSON; without a policy Vault's default rules apply.
//! The policy logic lives in warden-driver-common; this crate reads the
//! settings and supplies the host's randomness.

use exports::warden::plugin::generator::Guest;
use warden::plugin::{clock, crypto};
use warden_driver_common::Env;
use warden_driver_common::password::Policy;

wit_bindgen::generate!({ world: "credential-generator", path: "../../wit" });

const DEFAULT_LENGTH: usize = 20;

struct Password;

impl Guest for Password {
    fn generate(config: Vec<(String, String)>) -> Result<Vec<(String, String)>, String> {
        let setting = |key: &str| config.iter().find(|(k, _)| k == key).map(|(_, v)| v.trim());
        let length = match setting("length") {
            None | Some("") => DEFAULT_LENGTH,
            Some(n) => n
                .parse()
                .map_err(|_| format!("length must be a whole number, not {n:?}"))?,
        };
        let policy = match setting("policy") {
            None | Some("") => Policy::vault_default(length)?,
            Some(json) => Policy::parse(json, length)?,
        };
        Ok(vec![("password".into(), policy.generate(&mut Host)?)])
    }
}

export!(Password);

/// The host's randomness for the shared logic (the clock and hashing are
/// not used by password policies but complete the interface).
struct Host;

impl Env for Host {
    fn random_bytes(&mut self, len: usize) -> Vec<u8> {
        crypto::random_bytes(u32::try_from(len).unwrap_or(u32::MAX))
    }
    fn now(&self) -> (i64, u32) {
        clock::now()
    }
    fn sha256(&self, data: &[u8]) -> Vec<u8> {
        crypto::sha256(data)
    }
}
