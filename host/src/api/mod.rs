//! The HTTP API: Vault's `/v1/...` paths over axum. Turns an HTTP request
//! into a logical [`Request`] (method → operation, LIST and `?list=true`,
//! JSON body, token), and a logical response into Vault's envelope.

mod envelope;
mod seal;

use crate::error::Error;
use crate::logical::{Operation, Request};
use crate::node::Node;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use tracing::Instrument;

/// Vault's default `max_request_size`: 32 MiB.
const MAX_REQUEST_SIZE: usize = 32 << 20;
/// Longest a request may take before the client gets a 504-style error,
/// unless `WARDEN_REQUEST_TIMEOUT` (a Go duration such as `90s`) says
/// otherwise: the tests shorten it to show what outlasts it.
const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(90);

fn request_timeout() -> std::time::Duration {
    static TIMEOUT: std::sync::OnceLock<std::time::Duration> = std::sync::OnceLock::new();
    *TIMEOUT.get_or_init(|| {
        let Ok(text) = std::env::var("WARDEN_REQUEST_TIMEOUT") else {
            return REQUEST_TIMEOUT;
        };
        match crate::core::fields::parse_duration(&text) {
            Ok(secs) if secs > 0 => std::time::Duration::from_secs(secs.unsigned_abs()),
            _ => {
                tracing::warn!(value = %text, "WARDEN_REQUEST_TIMEOUT is not a positive duration; using 90s");
                REQUEST_TIMEOUT
            }
        }
    })
}

pub fn router(node: Arc<Node>) -> Router {
    Router::new()
        .fallback(handle)
        .layer(DefaultBodyLimit::max(MAX_REQUEST_SIZE))
        .with_state(node)
}

async fn handle(State(node): State<Arc<Node>>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let span = tracing::info_span!("request", request_id = %request_id, method = %method, path = uri.path());
    let work = async {
        let serving = serve(&node, &method, &uri, &headers, &body, &request_id);
        let result = if runs_to_completion(uri.path()) {
            Ok(serving.await)
        } else {
            tokio::time::timeout(request_timeout(), serving).await
        };
        let mut resp = match result {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => e.into_response(),
            Err(_) => Error::internal("request timed out").into_response(),
        };
        let h = resp.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        resp
    };
    work.instrument(span).await
}

/// Requests exempt from the request timeout: a synchronous revoke-prefix or
/// revoke-force of many leases takes as long as it takes (the revocations
/// are bounded one by one), and cut off it would answer an error while its
/// revocations go on, or stop half done.
fn runs_to_completion(path: &str) -> bool {
    let path = path.strip_prefix("/v1/sys/").unwrap_or_default();
    let path = path.strip_prefix("leases/").unwrap_or(path);
    path.starts_with("revoke-prefix/") || path.starts_with("revoke-force/")
}

fn operation(method: &Method, uri: &Uri) -> Result<Operation, Error> {
    let list_query = uri
        .query()
        .is_some_and(|q| q.split('&').any(|kv| matches!(kv, "list=true" | "list=1")));
    Ok(match method.as_str() {
        "GET" if list_query => Operation::List,
        "GET" => Operation::Read,
        "POST" | "PUT" => Operation::Update,
        "DELETE" => Operation::Delete,
        "LIST" => Operation::List,
        _ => return Err(Error::UnsupportedOperation),
    })
}

fn token(headers: &HeaderMap) -> Option<&str> {
    if let Some(t) = headers.get("x-vault-token").and_then(|v| v.to_str().ok()) {
        return Some(t);
    }
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

async fn serve(
    node: &Node,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
    request_id: &str,
) -> Result<Response, Error> {
    let Some(path) = uri.path().strip_prefix("/v1/") else {
        return Err(Error::UnsupportedPath);
    };
    let path = percent_encoding::percent_decode_str(path)
        .decode_utf8_lossy()
        .into_owned();
    let op = operation(method, uri)?;
    let mut data = parse_body(body)?;
    if matches!(op, Operation::Read | Operation::List) {
        add_query_params(&mut data, uri);
    }
    // The seal's endpoints answer without a token, sealed or not, as Vault's.
    if let Some(resp) = seal::unauthenticated(node, &path, op, &data).await? {
        return Ok(resp);
    }
    // Everything else needs an unsealed node (503 otherwise) and a token.
    let core = node.core()?;
    let token = token(headers).unwrap_or_default();
    core.authorize(Some(token))?;
    if let Some(resp) = seal::authenticated(node, &path, op, request_id).await? {
        return Ok(resp);
    }
    let req = Request {
        operation: op,
        path,
        data,
        display_name: "token".into(),
        lease_id: String::new(),
    };
    let reply = core.handle(&req, token).await;
    Ok(match reply {
        Ok(Some(resp)) if resp.accepted => {
            let mut r = envelope::render(resp, request_id);
            *r.status_mut() = StatusCode::ACCEPTED;
            r
        }
        Ok(Some(resp)) if !resp.is_empty() => envelope::render(resp, request_id),
        // A read of nothing is a 404; a write with nothing to say is a 204.
        Ok(_) if op == Operation::Read || op == Operation::List => Error::NotFound.into_response(),
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => return Err(e),
    })
}

/// As Vault: a GET's query parameters are request data (such as
/// `sys/leases?type=irrevocable`); the body wins where both name a field.
fn add_query_params(data: &mut serde_json::Map<String, serde_json::Value>, uri: &Uri) {
    let Some(query) = uri.query() else { return };
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(&s.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        };
        let key = decode(k);
        if key == "list" {
            continue;
        }
        data.entry(key).or_insert_with(|| serde_json::Value::String(decode(v)));
    }
}

fn parse_body(body: &Bytes) -> Result<serde_json::Map<String, serde_json::Value>, Error> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::Map::new());
    }
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(m)) => Ok(m),
        Ok(_) => Err(Error::bad("failed to parse JSON input: the body must be a JSON object")),
        Err(e) => Err(Error::bad(format!("failed to parse JSON input: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_revoke_prefix_and_force_outlast_the_request_timeout() {
        for path in [
            "/v1/sys/leases/revoke-prefix/db/creds",
            "/v1/sys/revoke-prefix/db/",
            "/v1/sys/leases/revoke-force/db",
            "/v1/sys/revoke-force/db",
        ] {
            assert!(super::runs_to_completion(path), "{path}");
        }
        for path in [
            "/v1/sys/leases/revoke",
            "/v1/db/creds/app",
            "/v1/db/revoke-prefix/x",
            "/v1/sys/mounts/db",
        ] {
            assert!(!super::runs_to_completion(path), "{path}");
        }
    }
}
