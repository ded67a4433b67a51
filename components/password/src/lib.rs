//! Vault's password generator as a Warden component (world
//! credential-generator). Settings: `length` (default 20) and `policy`, a
//! password policy as JSON; without a policy Vault's default rules apply.
//! The policy logic lives in warden-driver-common; this crate reads the
//! settings and supplies the host's randomness.

use exports::warden::plugin::generator::Guest;
use warden::plugin::{clock, crypto};
use warden_driver_common::Env;
use warden_driver_common::memo::Memo;
use warden_driver_common::password::Policy;

wit_bindgen::generate!({ world: "credential-generator", path: "../../wit" });

const DEFAULT_LENGTH: usize = 20;

struct Password;

thread_local! {
    static POLICY: Memo<Policy> = Memo::default();
}

impl Guest for Password {
    fn generate(config: Vec<(String, String)>) -> Result<Vec<(String, String)>, String> {
        let setting = |key: &str| config.iter().find(|(k, _)| k == key).map(|(_, v)| v.trim());
        let length = match setting("length") {
            None | Some("") => DEFAULT_LENGTH,
            Some(n) => n
                .parse()
                .map_err(|_| format!("length must be a whole number, not {n:?}"))?,
        };
        // The same settings arrive call after call on a reused instance.
        let key = format!("{length}\0{}", setting("policy").unwrap_or(""));
        let policy = POLICY.with(|m| {
            m.get_or_parse(&key, |_| match setting("policy") {
                None | Some("") => Policy::vault_default(length),
                Some(json) => Policy::parse(json, length),
            })
        })?;
        Ok(vec![("password".into(), policy.generate(&mut Host::default())?)])
    }
}

export!(Password);

/// The host's randomness for the shared logic (the clock and hashing are
/// not used by password policies but complete the interface). Bytes are
/// fetched in blocks: a policy is met by rejection, so Vault's default
/// rules take about four candidates, and one host call serves them all.
/// The buffer lives for one `generate` call only.
#[derive(Default)]
struct Host {
    buffer: Vec<u8>,
}

/// Random bytes fetched from the host at a time.
const RANDOM_BLOCK: usize = 256;

impl Env for Host {
    fn random_bytes(&mut self, len: usize) -> Vec<u8> {
        if self.buffer.len() < len {
            let want = len.max(RANDOM_BLOCK) - self.buffer.len();
            self.buffer
                .extend(crypto::random_bytes(u32::try_from(want).unwrap_or(u32::MAX)));
        }
        let rest = self.buffer.split_off(len.min(self.buffer.len()));
        std::mem::replace(&mut self.buffer, rest)
    }
    fn now(&self) -> (i64, u32) {
        clock::now()
    }
    fn sha256(&self, data: &[u8]) -> Vec<u8> {
        crypto::sha256(data)
    }
}
