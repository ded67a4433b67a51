//! Vault's root token generation (`sys/generate-root/attempt|update`, and
//! OpenBao's authenticated `sys/generate-root-token/…`, which its CLI
//! calls): a threshold of unseal shares, each entered with the attempt's
//! nonce, proves the caller may have a new root token. The token is never
//! returned in clear: it comes back XORed with a one-time password chosen
//! (or handed out) when the attempt started, base64-encoded, so that whoever
//! watches the last update sees nothing usable without the OTP.
//!
//! One attempt at a time, in memory (a seal or a restart forgets it, as in
//! Vault). The shares are checked by opening the stored root key with the
//! unseal key they make, exactly as an unseal would.

use super::Node;
use super::rekey::{add_share, decode_share};
use crate::error::{Error, Result};
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD as B64_RAW;
use zeroize::Zeroizing;

/// The OTP's length: that of the tokens it masks (`hvs.` and 24
/// characters), as Vault's.
pub const OTP_LENGTH: usize = 28;

/// An attempt in progress.
pub(super) struct Attempt {
    nonce: String,
    /// The one-time password the new token is XORed with.
    otp: Zeroizing<String>,
    /// Shares entered so far.
    progress: Vec<Zeroizing<Vec<u8>>>,
}

/// What every generate-root endpoint answers (Vault's
/// `GenerateRootStatusResponse`).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct GenerateRootStatus {
    pub started: bool,
    pub nonce: String,
    pub progress: usize,
    pub required: u8,
    pub complete: bool,
    /// The new root token XORed with the OTP, base64 (once complete).
    pub encoded_token: String,
    /// The OTP, only in the answer to a start that generated it.
    pub otp: String,
    pub otp_length: usize,
}

impl Node {
    fn generate_root_lock(&self) -> std::sync::MutexGuard<'_, Option<Attempt>> {
        self.generate_root.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The attempt's progress (or that none is started).
    pub fn generate_root_status(&self) -> Result<GenerateRootStatus> {
        let config = self.unsealed_config()?;
        let attempt = self.generate_root_lock();
        Ok(status(attempt.as_ref(), config.secret_threshold))
    }

    /// Start an attempt with the caller's OTP, or one made here and
    /// returned once. PGP-encrypting the token is not supported.
    pub fn generate_root_init(&self, otp: Option<&str>, pgp_key: Option<&str>) -> Result<GenerateRootStatus> {
        let config = self.unsealed_config()?;
        if pgp_key.is_some_and(|k| !k.is_empty()) {
            if otp.is_some_and(|o| !o.is_empty()) {
                return Err(Error::bad("only one of \"otp\" and \"pgp_key\" may be given"));
            }
            return Err(Error::bad(
                "PGP-encrypted root tokens are not supported by this server: use an OTP",
            ));
        }
        let given = otp.filter(|o| !o.is_empty());
        if given.is_some_and(|o| o.len() != OTP_LENGTH) {
            return Err(Error::bad("OTP string has incorrect length"));
        }
        let mut attempt = self.generate_root_lock();
        if attempt.is_some() {
            return Err(Error::bad("root generation already in progress for this namespace"));
        }
        let otp = Zeroizing::new(given.map_or_else(random_otp, str::to_string));
        let started = Attempt {
            nonce: uuid::Uuid::new_v4().to_string(),
            otp: otp.clone(),
            progress: Vec::new(),
        };
        let mut answer = status(Some(&started), config.secret_threshold);
        if given.is_none() {
            answer.otp = otp.to_string();
        }
        *attempt = Some(started);
        tracing::warn!("root token generation started");
        Ok(answer)
    }

    /// Forget the attempt (none is fine).
    pub fn generate_root_cancel(&self) -> Result<()> {
        self.unsealed_config()?;
        if self.generate_root_lock().take().is_some() {
            tracing::warn!("root token generation cancelled");
        }
        Ok(())
    }

    /// One unseal share. Below the threshold: the progress; at it, the
    /// shares are checked and the new root token comes back encoded.
    pub async fn generate_root_update(&self, key: &str, nonce: &str) -> Result<GenerateRootStatus> {
        let key = decode_share(key)?;
        // Serialised with seal: the core the token goes into stays up.
        let _t = self.transition.lock().await;
        let config = self.unsealed_config()?;
        let (shares, otp, nonce) = {
            let mut guard = self.generate_root_lock();
            let attempt = guard
                .as_mut()
                .ok_or_else(|| Error::bad("no root generation in progress"))?;
            let words = ("root generation", "generation");
            let Some(shares) = add_share(&mut attempt.progress, &attempt.nonce, nonce, key, config, words)? else {
                return Ok(status(Some(attempt), config.secret_threshold));
            };
            (shares, attempt.otp.clone(), attempt.nonce.clone())
        };
        self.open_root_key_with(&config, &shares).await?;
        let core = self.core()?;
        let token = Zeroizing::new(core.issue_root_token().await?);
        let encoded = encode_token(&token, &otp)?;
        // Done: the attempt is over (its nonce is not reusable).
        let mut guard = self.generate_root_lock();
        if guard.as_ref().is_some_and(|a| a.nonce == nonce) {
            *guard = None;
        }
        Ok(GenerateRootStatus {
            started: true,
            nonce,
            progress: config.secret_threshold as usize,
            required: config.secret_threshold,
            complete: true,
            encoded_token: encoded,
            otp: String::new(),
            otp_length: OTP_LENGTH,
        })
    }
}

fn status(attempt: Option<&Attempt>, required: u8) -> GenerateRootStatus {
    GenerateRootStatus {
        started: attempt.is_some(),
        nonce: attempt.map(|a| a.nonce.clone()).unwrap_or_default(),
        progress: attempt.map_or(0, |a| a.progress.len()),
        required,
        otp_length: OTP_LENGTH,
        ..GenerateRootStatus::default()
    }
}

/// A random OTP: base62, [`OTP_LENGTH`] characters (Vault's).
fn random_otp() -> String {
    crate::core::token::store::random_base62(OTP_LENGTH)
}

/// Vault's `roottoken.EncodeToken`: the token's bytes XOR the OTP's, in
/// unpadded standard base64. Both have the same length.
pub fn encode_token(token: &str, otp: &str) -> Result<String> {
    if token.len() != otp.len() {
        return Err(Error::internal("the root token and the OTP differ in length"));
    }
    let xored: Vec<u8> = token.bytes().zip(otp.bytes()).map(|(t, o)| t ^ o).collect();
    Ok(B64_RAW.encode(xored))
}

/// The inverse of [`encode_token`] (`sys/decode-token`, and what the CLI
/// does with `-decode`).
pub fn decode_token(encoded: &str, otp: &str) -> Result<String> {
    let bytes = B64_RAW
        .decode(encoded.trim_end_matches('='))
        .map_err(|_| Error::bad("error decoding base64'd token"))?;
    if bytes.len() != otp.len() {
        return Err(Error::bad("length of the token and the OTP differ"));
    }
    let token: Vec<u8> = bytes.iter().zip(otp.bytes()).map(|(t, o)| t ^ o).collect();
    String::from_utf8(token).map_err(|_| Error::bad("the decoded token is not text: wrong OTP?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_encoded_token_decodes_with_its_otp_only() {
        let token = "hvs.abcdefghijklmnopqrstuvwx";
        let otp = random_otp();
        assert_eq!(otp.len(), OTP_LENGTH);
        assert!(otp.chars().all(|c| c.is_ascii_alphanumeric()));
        let encoded = encode_token(token, &otp).unwrap();
        assert!(!encoded.contains('=') && !encoded.contains("hvs"));
        assert_eq!(decode_token(&encoded, &otp).unwrap(), token);
        assert_ne!(decode_token(&encoded, &random_otp()).ok().as_deref(), Some(token));
        assert!(decode_token(&encoded, "short").is_err());
        assert!(encode_token(token, "short").is_err());
        // A value worked out independently (Python: base64 of the XOR,
        // padding stripped), which Vault's DecodeToken reads back.
        assert_eq!(
            encode_token("hvs.XXXXXXXXXXXXXXXXXXXXXXXX", &"B".repeat(28)).unwrap(),
            "KjQxbBoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGg"
        );
    }
}
