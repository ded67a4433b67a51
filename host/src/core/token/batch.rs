//! Batch tokens (Vault's `hvb.` tokens): the token *is* its entry, sealed
//! under the barrier's keyring, so nothing is written when one is made or
//! used. That makes them cheap and lets an orphan batch token made on a
//! performance primary work on its secondaries (which hold the same
//! keyring), at a price Vault's users know: a batch token cannot be renewed
//! or revoked, has no accessor and cannot create tokens. One with a parent
//! dies with it (its parent is checked at every use); its leases are
//! tracked by that parent and never outlive the token itself.

use super::store::TokenEntry;
use crate::error::{Error, Result};
use crate::storage::barrier::Sealer;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;

/// What every batch token starts with.
pub const PREFIX: &str = "hvb.";

/// The associated data a batch token is sealed with, so that no other
/// value sealed under the keyring can pass for one.
const AAD: &[u8] = b"warden/batch-token";

/// Is this (syntactically) a batch token?
pub fn is_batch(token: &str) -> bool {
    token.starts_with(PREFIX)
}

/// The token carrying `entry` (whose hash and accessor stay empty).
pub fn seal(sealer: &dyn Sealer, entry: &TokenEntry) -> Result<String> {
    let plain = serde_json::to_vec(entry).map_err(|e| Error::internal(format!("encoding a batch token: {e}")))?;
    let sealed = sealer
        .seal_value(&plain, AAD)
        .map_err(|e| Error::internal(format!("sealing a batch token: {e}")))?;
    Ok(format!("{PREFIX}{}", B64URL.encode(sealed)))
}

/// The entry a batch token carries; None for anything that is not a batch
/// token this keyring sealed (a forged or altered one fails authentication).
pub fn open(sealer: &dyn Sealer, token: &str) -> Option<TokenEntry> {
    let body = token.strip_prefix(PREFIX)?;
    // A bound on what is decoded: a real batch token is well under this.
    if body.len() > 8192 {
        return None;
    }
    let sealed = B64URL.decode(body).ok()?;
    let plain = sealer.open_value(&sealed, AAD).ok()?;
    let entry: TokenEntry = serde_json::from_slice(&plain).ok()?;
    entry.batch.then_some(entry)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::barrier::Keyring;
    use chrono::Utc;

    fn entry() -> TokenEntry {
        TokenEntry {
            hash: String::new(),
            accessor: String::new(),
            parent: "root".into(),
            policies: vec!["default".into(), "reader".into()],
            path: "auth/token/create".into(),
            meta: Default::default(),
            display_name: "token-b".into(),
            num_uses: 0,
            creation_time: Utc::now(),
            creation_ttl: 60,
            explicit_max_ttl: 0,
            period: 0,
            renewable: false,
            expire_time: Some(Utc::now()),
            bound_cidrs: Vec::new(),
            role: String::new(),
            batch: true,
            namespace_id: String::new(),
            namespace_path: String::new(),
        }
    }

    #[test]
    fn a_batch_token_opens_under_its_keyring_only() {
        let keyring = Keyring::new();
        let token = seal(&keyring, &entry()).unwrap();
        assert!(token.starts_with("hvb.") && is_batch(&token));
        let opened = open(&keyring, &token).unwrap();
        assert_eq!(opened, entry_with_time(&opened));
        // Another keyring, a flipped character, garbage, a service token.
        assert!(open(&Keyring::new(), &token).is_none());
        let mut altered = token.clone().into_bytes();
        let i = altered.len() - 5;
        altered[i] = if altered[i] == b'A' { b'B' } else { b'A' };
        assert!(open(&keyring, &String::from_utf8(altered).unwrap()).is_none());
        assert!(open(&keyring, "hvb.!!!").is_none());
        assert!(open(&keyring, "hvs.abc").is_none());
        assert!(open(&keyring, &format!("hvb.{}", "A".repeat(10_000))).is_none());
        // A sealed entry not marked batch is refused.
        let not_batch = TokenEntry {
            batch: false,
            ..entry()
        };
        assert!(open(&keyring, &seal(&keyring, &not_batch).unwrap()).is_none());
    }

    fn entry_with_time(e: &TokenEntry) -> TokenEntry {
        TokenEntry {
            creation_time: e.creation_time,
            expire_time: e.expire_time,
            ..entry()
        }
    }
}
