//! A minimal Vault HTTP API client for the tests: one call, `req`, returning
//! the status and the JSON body, with the `X-Vault-Token` header and the
//! non-standard LIST verb.

use std::time::Duration;

use anyhow::{Context, Result};
use reqwest::Method;
use serde_json::Value;

/// Default time limit of one request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Clone, Debug)]
pub struct Client {
    base: String,
    token: Option<String>,
    /// Extra headers sent with every request (`X-Vault-Wrap-TTL`).
    headers: Vec<(String, String)>,
    http: reqwest::Client,
}

impl Client {
    /// `base` is `http://host:port`; `token` goes in `X-Vault-Token`.
    pub fn new(base: &str, token: Option<&str>) -> Client {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .pool_max_idle_per_host(64)
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Client {
            base: base.trim_end_matches('/').to_string(),
            token: token.map(str::to_string),
            headers: Vec::new(),
            http,
        }
    }

    /// The same server with another token (None: no header at all).
    pub fn with_token(&self, token: Option<&str>) -> Client {
        Client {
            base: self.base.clone(),
            token: token.map(str::to_string),
            headers: self.headers.clone(),
            http: self.http.clone(),
        }
    }

    /// The same client, sending `name: value` with every request too.
    pub fn with_header(&self, name: &str, value: &str) -> Client {
        let mut c = self.clone();
        c.headers.push((name.to_string(), value.to_string()));
        c
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// Send `method` (GET, POST, PUT, DELETE, LIST, ...) to `path` (such as
    /// `/v1/sys/mounts/db`) with an optional JSON body. The body comes back as
    /// JSON; `Value::Null` when empty, a `Value::String` when not JSON.
    pub async fn req(&self, method: &str, path: &str, body: Option<Value>) -> Result<(u16, Value)> {
        let bytes = match body {
            Some(v) => Some(serde_json::to_vec(&v)?),
            None => None,
        };
        self.req_raw(method, path, bytes).await
    }

    /// As [`Client::req`] with a raw body (to send malformed JSON).
    pub async fn req_raw(&self, method: &str, path: &str, body: Option<Vec<u8>>) -> Result<(u16, Value)> {
        let method = Method::from_bytes(method.as_bytes()).with_context(|| format!("bad HTTP method {method:?}"))?;
        let url = format!("{}{}", self.base, path);
        let mut request = self.http.request(method.clone(), &url);
        if let Some(token) = &self.token {
            request = request.header("X-Vault-Token", token);
        }
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        if let Some(bytes) = body {
            request = request.header("Content-Type", "application/json").body(bytes);
        }
        let response = request.send().await.with_context(|| format!("{method} {url}"))?;
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .with_context(|| format!("read the body of {method} {url}"))?;
        let value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Ok((status, value))
    }

    pub async fn get(&self, path: &str) -> Result<(u16, Value)> {
        self.req("GET", path, None).await
    }

    pub async fn list(&self, path: &str) -> Result<(u16, Value)> {
        self.req("LIST", path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Result<(u16, Value)> {
        self.req("POST", path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Result<(u16, Value)> {
        self.req("PUT", path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Result<(u16, Value)> {
        self.req("DELETE", path, None).await
    }
}
