//! What an audit device writes instead of a secret: Vault's "identified
//! HMAC" (`hmac-sha256:<hex>`, HMAC-SHA256 keyed with the device's salt),
//! and the walk that replaces every string of a JSON structure by it
//! (Vault's `audit/hashstructure.go`): object keys are kept, numbers,
//! booleans and null are kept (Vault hashes after a JSON round trip, where
//! they are not strings), strings at any depth are hashed.

use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha2::Sha256;

/// Vault's `HMACType` for the salts of audit devices.
pub const HMAC_TYPE: &str = "hmac-sha256";

/// A device's salt, keyed once: hashing clones the keyed state instead of
/// deriving the key pads again for every value.
#[derive(Clone)]
pub struct Salt {
    keyed: Hmac<Sha256>,
}

impl Salt {
    /// The salt as Vault keeps it: a random UUID whose text is the key.
    pub fn new(salt: &str) -> Salt {
        let keyed = <Hmac<Sha256> as Mac>::new_from_slice(salt.as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        Salt { keyed }
    }

    /// `hmac-sha256:<hex>` of `value` (Vault's `GetIdentifiedHMAC`).
    pub fn hmac(&self, value: &str) -> String {
        let mut mac = self.keyed.clone();
        mac.update(value.as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut out = String::with_capacity(HMAC_TYPE.len() + 1 + digest.len() * 2);
        out.push_str(HMAC_TYPE);
        out.push(':');
        out.push_str(&hex::encode(digest));
        out
    }

    /// A copy of `value` with every string replaced by its HMAC.
    pub fn hash_value(&self, value: &Value) -> Value {
        match value {
            Value::String(s) => Value::String(self.hmac(s)),
            Value::Array(items) => Value::Array(items.iter().map(|v| self.hash_value(v)).collect()),
            Value::Object(map) => Value::Object(self.hash_map(map)),
            other => other.clone(),
        }
    }

    /// [`Salt::hash_value`] of an object: keys kept, values hashed.
    pub fn hash_map(&self, map: &Map<String, Value>) -> Map<String, Value> {
        map.iter().map(|(k, v)| (k.clone(), self.hash_value(v))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The HMAC is keyed by the salt's text, as Vault's `salt.GetHMAC`.
    #[test]
    fn the_hmac_is_hmac_sha256_of_the_value_keyed_by_the_salt() {
        let salt = Salt::new("key");
        // RFC 4231-style check against a known HMAC-SHA256 vector.
        assert_eq!(
            salt.hmac("The quick brown fox jumps over the lazy dog"),
            "hmac-sha256:f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
        assert_ne!(Salt::new("other").hmac("x"), salt.hmac("x"));
        assert_eq!(salt.hmac("x"), salt.hmac("x"));
    }

    #[test]
    fn strings_at_any_depth_are_hashed_and_nothing_else_is() {
        let salt = Salt::new("s");
        let input = json!({
            "password": "hunter2",
            "ttl": 3600,
            "ratio": 0.5,
            "renewable": true,
            "none": null,
            "nested": {"token": "hvs.abc", "list": ["a", 1, {"deep": "secret"}]},
        });
        let hashed = salt.hash_value(&input);
        let text = hashed.to_string();
        for plain in ["hunter2", "hvs.abc", "\"a\"", "secret"] {
            assert!(!text.contains(plain), "{plain} left in {text}");
        }
        assert_eq!(hashed["password"], json!(salt.hmac("hunter2")));
        assert_eq!(hashed["nested"]["token"], json!(salt.hmac("hvs.abc")));
        assert_eq!(hashed["nested"]["list"][0], json!(salt.hmac("a")));
        assert_eq!(hashed["nested"]["list"][1], json!(1));
        assert_eq!(hashed["nested"]["list"][2]["deep"], json!(salt.hmac("secret")));
        // Keys, numbers, booleans and null are kept.
        assert_eq!(hashed["ttl"], json!(3600));
        assert_eq!(hashed["ratio"], json!(0.5));
        assert_eq!(hashed["renewable"], json!(true));
        assert_eq!(hashed["none"], Value::Null);
        assert_eq!(hashed.as_object().map(|m| m.len()), input.as_object().map(|m| m.len()));
    }
}
