//! Response wrapping (Vault's `vault/wrapping.go`): a response asked to be
//! wrapped (`X-Vault-Wrap-TTL`) is not sent; it is kept under a new
//! single-use token that lives for the wrap TTL, and the caller gets only
//! `wrap_info` (that token, its accessor, TTL, creation time and path).
//! Whoever holds the token can unwrap the response once; a second unwrap,
//! or one after the TTL, finds nothing.
//!
//! A wrapping token is an orphan service token whose only policy is the
//! built-in `response-wrapping`, with one use and its TTL as explicit max.
//! What it wraps is kept in the token store beside it
//! ([`super::token::store::TokenStore::put_wrapped`]; Vault uses the token's
//! cubbyhole) and goes with the token, whether unwrapped, revoked or expired.
//! The kept response is the envelope the caller would have been sent, and an
//! unwrap answers with it as is, as Vault does.

use super::Core;
use super::token::TokenSpec;
use super::token::store::TokenEntry;
use crate::error::{Error, Result};
use crate::logical::{Auth, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// What a wrapping token keeps.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Wrapped {
    /// The request path whose response is wrapped.
    pub creation_path: String,
    pub creation_time: DateTime<Utc>,
    /// The wrap TTL in seconds.
    pub creation_ttl: i64,
    /// The accessor of a token the response carries (a wrapped login).
    #[serde(default)]
    pub wrapped_accessor: String,
    /// The response envelope as the caller would have received it.
    pub response: Value,
}

/// Vault's words for a wrapping token that is unknown, used, expired or not
/// a wrapping token at all.
pub fn invalid_token() -> Error {
    Error::bad("wrapping token is not valid or does not exist")
}

impl Core {
    /// Wrap a response for `ttl` seconds: the response is kept under a new
    /// wrapping token, and what the caller gets is only `wrap_info`.
    pub async fn wrap_response(&self, resp: Response, ttl: i64, path: &str, request_id: &str) -> Result<Response> {
        let wrapped_accessor = resp
            .auth
            .as_ref()
            .and_then(|a| a.get("accessor"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let wrapped = Wrapped {
            creation_path: path.trim_end_matches('/').to_string(),
            creation_time: Utc::now(),
            creation_ttl: ttl,
            wrapped_accessor,
            response: resp.envelope(request_id),
        };
        self.keep_wrapped(wrapped).await
    }

    /// Mint the wrapping token for `wrapped` and keep it; the response
    /// carrying its `wrap_info`.
    async fn keep_wrapped(&self, wrapped: Wrapped) -> Result<Response> {
        let (token, entry) = self
            .issue_token(TokenSpec {
                policies: vec![super::policy_store::RESPONSE_WRAPPING.to_string()],
                path: wrapped.creation_path.clone(),
                display_name: "response-wrapping".into(),
                num_uses: 1,
                ttl: wrapped.creation_ttl,
                explicit_max_ttl: wrapped.creation_ttl,
                ..TokenSpec::default()
            })
            .await?;
        let stored =
            serde_json::to_value(&wrapped).map_err(|e| Error::internal(format!("encoding a wrapped response: {e}")))?;
        if let Err(e) = self.tokens.put_wrapped(&entry.hash, &stored).await {
            // A wrapping token with nothing to unwrap is of no use to anyone.
            let _ = self.revoke_token(&entry.hash).await;
            return Err(e);
        }
        Ok(Response {
            wrap_info: Some(json!({
                "token": token,
                "accessor": entry.accessor,
                "ttl": wrapped.creation_ttl,
                "creation_time": entry.creation_time.to_rfc3339_opts(SecondsFormat::Nanos, true),
                "creation_path": wrapped.creation_path,
                "wrapped_accessor": wrapped.wrapped_accessor,
            })),
            ..Response::default()
        })
    }

    /// A live wrapping token's entry and what it wraps, without spending it.
    async fn wrapping_token(&self, token: &str) -> Result<(TokenEntry, Wrapped)> {
        let entry = self.tokens.lookup(token).await?.ok_or_else(invalid_token)?;
        if !entry.is_wrapping() || !entry.is_live(Utc::now()) {
            return Err(invalid_token());
        }
        let wrapped = self.tokens.wrapped(&entry.hash).await?.ok_or_else(invalid_token)?;
        let wrapped = serde_json::from_value(wrapped).map_err(|_| invalid_token())?;
        Ok((entry, wrapped))
    }

    /// `sys/wrapping/lookup`: a wrapping token's creation path, time and TTL.
    pub async fn wrapping_lookup(&self, token: &str) -> Result<Value> {
        let (_, wrapped) = self.wrapping_token(token).await?;
        Ok(json!({
            "creation_path": wrapped.creation_path,
            "creation_time": wrapped.creation_time.to_rfc3339_opts(SecondsFormat::Nanos, true),
            "creation_ttl": wrapped.creation_ttl,
        }))
    }

    /// Spend a wrapping token: the one request that gets what it wraps. A
    /// token named in the body spends its one use here (so two unwraps at
    /// once cannot both succeed); a token that made the request (`caller`)
    /// spent it when it was authenticated. The token is revoked either way.
    async fn spend_wrapping_token(&self, token: &str, caller: &Auth) -> Result<Wrapped> {
        let hash = if token.is_empty() || token == caller.client_token {
            // The caller is the wrapping token: authentication spent its use.
            let wrapping = matches!(caller.policies.as_slice(), [p] if p == super::policy_store::RESPONSE_WRAPPING);
            if !wrapping || !caller.last_use {
                return Err(invalid_token());
            }
            caller.token_hash.clone()
        } else {
            let (entry, _) = self.wrapping_token(token).await?;
            match self.tokens.use_once(&entry.hash).await? {
                Some(before) if before.num_uses == 1 => entry.hash,
                _ => return Err(invalid_token()),
            }
        };
        let wrapped = self.tokens.wrapped(&hash).await?;
        self.revoke_token(&hash).await?;
        let wrapped = wrapped.ok_or_else(invalid_token)?;
        serde_json::from_value(wrapped).map_err(|_| invalid_token())
    }

    /// `sys/wrapping/unwrap`: the wrapped response, once.
    pub async fn unwrap(&self, token: &str, caller: &Auth) -> Result<Response> {
        let wrapped = self.spend_wrapping_token(token, caller).await?;
        Ok(Response::raw(wrapped.response))
    }

    /// `sys/wrapping/rewrap`: the same response under a new wrapping token
    /// with the same TTL and creation path; the old one is revoked.
    pub async fn rewrap(&self, token: &str, caller: &Auth) -> Result<Response> {
        let mut wrapped = self.spend_wrapping_token(token, caller).await?;
        wrapped.creation_time = Utc::now();
        self.keep_wrapped(wrapped).await
    }
}
