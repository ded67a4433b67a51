//! The HTTP API: Vault's `/v1/...` paths over axum. Turns an HTTP request
//! into a logical [`Request`] (method → operation, LIST and `?list=true`,
//! JSON body, token), and a logical response into Vault's envelope. Every
//! error status it answers carries `{"errors":[...]}`: its own limits
//! (URI, headers, body size and read time), a plain-text answer from a layer,
//! and a panicking request (500; the server goes on serving).

mod envelope;
mod errors;
pub mod listener;

pub use listener::HttpLimits;

use crate::error::Error;
use crate::logical::{Operation, Request};
use crate::node::Node;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use listener::{MAX_HEADER_BYTES, MAX_HEADER_COUNT, MAX_URI_BYTES, RequestLimits};
use std::sync::Arc;
use tracing::Instrument;

/// `WARDEN_REQUEST_TIMEOUT` (a Go duration such as `90s`) overrides the
/// listener's `max_request_duration`: the tests shorten it to show what
/// outlasts it.
fn request_timeout(configured: std::time::Duration) -> std::time::Duration {
    static OVERRIDE: std::sync::OnceLock<Option<std::time::Duration>> = std::sync::OnceLock::new();
    OVERRIDE
        .get_or_init(|| {
            let text = std::env::var("WARDEN_REQUEST_TIMEOUT").ok()?;
            match crate::framework::convert::parse_duration(&text) {
                Ok(secs) if secs > 0 => Some(std::time::Duration::from_secs(secs.unsigned_abs())),
                _ => {
                    tracing::warn!(value = %text, "WARDEN_REQUEST_TIMEOUT is not a positive duration; ignored");
                    None
                }
            }
        })
        .unwrap_or(configured)
}

pub fn router(node: Arc<Node>) -> Router {
    with_error_layers(Router::new().fallback(handle).with_state(node))
}

/// The layers that make every error answer Vault's envelope: plain-text or
/// empty error bodies become `{"errors":[...]}`, and a panic becomes a 500.
fn with_error_layers(router: Router) -> Router {
    router
        .layer(axum::middleware::map_response(json_errors))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panic_response))
}

/// A request that panicked: 500 with a fixed text. The panic's own message
/// stays in the server log (it may quote a value; the client sees none).
fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!(panic = %crate::panic_guard::message(&*panic), "a request panicked; it failed with 500 and the server goes on");
    Error::internal("internal error: the server failed on a bug while handling this request (a panic, logged)")
        .into_response()
}

/// An error status whose body is not JSON (an axum rejection, a layer's
/// plain-text answer, an empty body) leaves as `{"errors":[its text]}`.
async fn json_errors(resp: Response) -> Response {
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 16 << 10)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let message = match text.is_empty() {
        true => status.canonical_reason().unwrap_or("error").to_ascii_lowercase(),
        false => text,
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let body = serde_json::json!({ "errors": [message] }).to_string();
    Response::from_parts(parts, Body::from(body))
}

async fn handle(State(node): State<Arc<Node>>, request: axum::extract::Request) -> Response {
    let (parts, body) = request.into_parts();
    let limits = parts.extensions.get::<RequestLimits>().cloned().unwrap_or_default();
    let client = parts.extensions.get::<listener::ClientAddr>().map(|c| c.0);
    let (method, uri, headers) = (parts.method, parts.uri, parts.headers);
    let request_id = uuid::Uuid::new_v4().to_string();
    // No raw path in the log: it may name a lease or an accessor. The
    // request's line below names its route template.
    let span = tracing::info_span!("request", request_id = %request_id);
    let started = std::time::Instant::now();
    let work = async {
        let below_v1 = uri.path().strip_prefix("/v1/").unwrap_or_default();
        let full_path = format!("{}{below_v1}", asked_namespace(&headers).unwrap_or_default());
        // OpenBao's answer when the listener turns these paths off.
        let turned_off = limits.disable_unauthed_generate_root && below_v1.starts_with("sys/generate-root/");
        let read = match turned_off {
            true => Err(Error::Http(405, "unsupported operation".into())),
            false => read_request(&uri, &headers, body, &limits).await,
        };
        let mut resp = match read {
            Ok(body) => {
                match standby_answer(&node, &method, &uri, &headers, &body, client, &limits, &full_path).await {
                    Some(resp) => resp,
                    None => {
                        let serving = serve(&node, &method, &uri, &headers, &body, &request_id, client);
                        // Paths declared to run to completion (a synchronous revoke-prefix,
                        // revoke-force or mount disable of many leases: each revocation
                        // is bounded on its own) are not cut off half done.
                        let result = if crate::routing::runs_to_completion(&node, &full_path) {
                            Ok(serving.await)
                        } else {
                            tokio::time::timeout(request_timeout(limits.max_request_duration), serving).await
                        };
                        match result {
                            Ok(Ok(r)) => r,
                            Ok(Err(e)) => {
                                // The server's own failures, with their cause
                                // (error texts never carry a secret).
                                if matches!(e, Error::Internal(_) | Error::Storage(_)) {
                                    tracing::error!(error = %e, "request failed");
                                }
                                e.into_response()
                            }
                            Err(_) => Error::internal("request timed out").into_response(),
                        }
                    }
                }
            }
            // Refused before its body was read: what is left of the body
            // cannot be told from a next request, so the connection ends.
            Err(e) => {
                let mut resp = e.into_response();
                resp.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
                resp
            }
        };
        let h = resp.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        let (status, elapsed) = (resp.status().as_u16(), started.elapsed());
        crate::telemetry::request(method.as_str(), status, elapsed);
        tracing::info!(
            method = %method,
            route = crate::telemetry::current_route(),
            status,
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            "request"
        );
        resp
    };
    crate::telemetry::scoped(work).instrument(span).await
}

/// On an HA standby, a request it does not serve itself: forwarded to the
/// active node (or redirected with 307 when forwarding is off or the
/// client asks so with `X-Vault-No-Request-Forwarding`). None: served here.
#[allow(clippy::too_many_arguments, reason = "the parts of one HTTP request")]
async fn standby_answer(
    node: &Node,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
    client: Option<std::net::IpAddr>,
    limits: &RequestLimits,
    full_path: &str,
) -> Option<Response> {
    use crate::ha::Route;
    use crate::ha::forward::ForwardError;
    let ha = node.ha()?;
    let no_forwarding = headers
        .get("x-vault-no-request-forwarding")
        .is_some_and(|v| !v.is_empty());
    let redirect = |api_addr: &str| {
        let target = format!(
            "{}{}",
            api_addr.trim_end_matches('/'),
            uri.path_and_query().map_or("/", |p| p.as_str())
        );
        match HeaderValue::from_str(&target) {
            Ok(location) => {
                let mut resp = StatusCode::TEMPORARY_REDIRECT.into_response();
                resp.headers_mut().insert(header::LOCATION, location);
                resp
            }
            Err(_) => Error::Http(503, "the active node's api_addr is not a valid URL".into()).into_response(),
        }
    };
    match ha.route(node.ha_role(), full_path, no_forwarding).await {
        Route::Local => None,
        // A forwarded request that reached a standby (the active node
        // changed meanwhile) is not forwarded again: no loops.
        Route::Forward { .. } | Route::Redirect(_) if limits.from_cluster => {
            Some(Error::Http(503, "this node is no longer the active node; retry the request".into()).into_response())
        }
        Route::Redirect(api_addr) => Some(redirect(&api_addr)),
        Route::Unavailable(why) => Some(Error::Http(503, why.into()).into_response()),
        Route::Forward { cluster_addr, identity } => {
            let forwarding = ha
                .forwarder
                .forward(&cluster_addr, &identity, method, uri, headers, body, client);
            // The active node bounds its own work; this bounds a node that
            // stopped answering (paused, partitioned).
            let Ok(forwarded) = tokio::time::timeout(request_timeout(limits.max_request_duration), forwarding).await
            else {
                return Some(Error::internal("request timed out (forwarded to the active node)").into_response());
            };
            Some(match forwarded {
                Ok(resp) => resp,
                // The request never left: the client may go itself (Vault
                // falls back to a redirect when forwarding fails).
                Err(ForwardError::Connect(e)) => {
                    tracing::warn!(error = %e, "could not forward to the active node; redirecting the client");
                    match ha.leader().map(|l| l.address.api_addr).filter(|a| !a.is_empty()) {
                        Some(api_addr) => redirect(&api_addr),
                        None => Error::Http(503, e).into_response(),
                    }
                }
                Err(ForwardError::Failed(e)) => {
                    tracing::warn!(error = %e, "a forwarded request failed");
                    Error::Http(502, e).into_response()
                }
            })
        }
    }
}

/// The HTTP layer's limits, then the body: a URI or headers over their
/// limits (414, 431), a body over `max_request_size` (413, before reading
/// it when Content-Length says so) or not in by the read deadline (408).
async fn read_request(uri: &Uri, headers: &HeaderMap, body: Body, limits: &RequestLimits) -> Result<Bytes, Error> {
    let target = uri.path_and_query().map_or(0, |p| p.as_str().len());
    if target > MAX_URI_BYTES {
        return Err(Error::Http(
            StatusCode::URI_TOO_LONG.as_u16(),
            format!("URI too long: the limit is {MAX_URI_BYTES} bytes"),
        ));
    }
    let header_bytes = headers
        .iter()
        .fold(0usize, |n, (k, v)| n.saturating_add(k.as_str().len() + v.len()));
    if header_bytes > MAX_HEADER_BYTES || headers.len() > MAX_HEADER_COUNT {
        return Err(Error::Http(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE.as_u16(),
            format!(
                "request header fields too large: the limits are {MAX_HEADER_BYTES} bytes and {MAX_HEADER_COUNT} fields"
            ),
        ));
    }
    // Go's http.MaxBytesReader's text, which Vault answers with.
    let too_large = || {
        Error::Http(
            StatusCode::PAYLOAD_TOO_LARGE.as_u16(),
            "http: request body too large".into(),
        )
    };
    let max = limits.max_request_size.unwrap_or(usize::MAX);
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    let collect = Limited::new(body, max).collect();
    let collected = match limits.body_deadline {
        Some(deadline) => tokio::time::timeout_at(deadline, collect).await.map_err(|_| {
            Error::Http(
                StatusCode::REQUEST_TIMEOUT.as_u16(),
                "timed out reading the request body".into(),
            )
        })?,
        None => collect.await,
    };
    match collected {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<LengthLimitError>() => Err(too_large()),
        Err(_) => Err(Error::bad("failed to read the request body")),
    }
}

/// A query flag such as `list=true` or `help=1`.
fn query_flag(uri: &Uri, name: &str) -> bool {
    uri.query().is_some_and(|q| {
        q.split('&').any(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, "1"));
            k == name && matches!(v, "1" | "true" | "t" | "True" | "TRUE")
        })
    })
}

fn operation(method: &Method, uri: &Uri) -> Result<Operation, Error> {
    if query_flag(uri, "help") && matches!(method.as_str(), "GET" | "HEAD") {
        return Ok(Operation::Help);
    }
    Ok(match method.as_str() {
        "GET" | "HEAD" if query_flag(uri, "list") => Operation::List,
        // HEAD is a GET whose body hyper drops (sys/health's status code).
        "GET" | "HEAD" => Operation::Read,
        "POST" | "PUT" => Operation::Update,
        "PATCH" => Operation::Patch,
        "DELETE" => Operation::Delete,
        "LIST" => Operation::List,
        _ => return Err(Error::UnsupportedOperation),
    })
}

/// The namespace the `X-Vault-Namespace` header names, as a path with
/// its trailing '/' ("team-a/prod/"); None for none or the root.
fn asked_namespace(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("x-vault-namespace")?.to_str().ok()?;
    crate::core::namespaces::normalize(value)
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
    client: Option<std::net::IpAddr>,
) -> Result<Response, Error> {
    let Some(path) = uri.path().strip_prefix("/v1/") else {
        return Err(Error::UnsupportedPath);
    };
    let asked = asked_namespace(headers);
    // The full path: the header's namespace in front of the path (a path
    // may also name its namespace itself, `/v1/team-a/db/creds/app`; both
    // at once nest, as Vault's).
    let mut path = format!(
        "{}{}",
        asked.as_deref().unwrap_or_default(),
        percent_encoding::percent_decode_str(path).decode_utf8_lossy()
    );
    // HEAD is Vault's HeaderOperation, which only sys/health takes (its
    // status code, the body dropped by hyper); elsewhere it is refused
    // once the checks a GET would meet (sealed, token) have passed.
    if method == Method::HEAD && path != "sys/health" {
        let open = path
            .strip_prefix("sys/")
            .is_some_and(|rest| crate::system::BACKEND.is_unauthenticated(rest));
        if !open {
            node.core()?.authenticate(token(headers)).await?;
        }
        return Err(Error::UnsupportedOperation);
    }
    let op = operation(method, uri)?;
    // Vault's PATCH is a JSON merge patch, and says so.
    if op == Operation::Patch {
        let given = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if given.split(';').next().map(str::trim) != Some("application/merge-patch+json") {
            return Err(Error::Http(
                StatusCode::UNSUPPORTED_MEDIA_TYPE.as_u16(),
                format!("PATCH requires Content-Type of application/merge-patch+json, provided {given}"),
            ));
        }
    }
    // As Vault: a LIST is of a directory, whose path ends in '/'.
    if op == Operation::List && !path.ends_with('/') {
        path.push('/');
    }
    let mut data = parse_body(headers, body)?;
    if matches!(
        op,
        Operation::Read | Operation::List | Operation::Help | Operation::Delete
    ) {
        add_query_params(&mut data, uri);
    }
    // As Vault, sys/metrics takes its format from the Accept header too.
    if path == "sys/metrics"
        && !data.contains_key("format")
        && let Some(format) = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .and_then(crate::telemetry::format_from_accept)
    {
        data.insert("format".into(), serde_json::Value::String(format.into()));
    }
    let req = Request {
        operation: op,
        path,
        data,
        request_id: request_id.to_string(),
        wrap_ttl: wrap_ttl(headers)?,
        remote_addr: client,
        ..Request::default()
    };
    let token = token(headers).unwrap_or_default();
    // Rate-limit quotas first, as Vault's HTTP handler checks them: a
    // refused request costs no token lookup and no work behind it. A
    // sealed node has no quotas (they live behind the barrier).
    let rate = match node.core() {
        Ok(core) => match core.quotas.check_rate(&req.path, client) {
            Ok(rate) => rate,
            Err(refused) => {
                // Recorded only when the operator asked (sys/quotas/config),
                // as Vault: a flood would otherwise flood the audit log too.
                if core.quotas.config().enable_rate_limit_audit_logging {
                    let audited = crate::audit::refused(core.audit.active(), &req, token, refused);
                    return Err(audited
                        .err()
                        .unwrap_or_else(|| Error::internal("a refused request was answered")));
                }
                return Err(refused);
            }
        },
        Err(_) => None,
    };
    let reply = crate::routing::handle(node, req, token, asked.as_deref()).await;
    let mut response = match reply {
        // A text body of its own type (sys/metrics' Prometheus format).
        Ok(Some(resp)) if resp.content_type.is_some() => {
            let text = match resp.raw_body {
                Some(serde_json::Value::String(text)) => text,
                _ => String::new(),
            };
            let content_type = HeaderValue::from_static(resp.content_type.unwrap_or("text/plain"));
            let status = resp
                .status
                .and_then(|s| StatusCode::from_u16(s).ok())
                .unwrap_or(StatusCode::OK);
            (status, [(header::CONTENT_TYPE, content_type)], text).into_response()
        }
        Ok(Some(resp)) if resp.raw_body.is_some() || resp.status.is_some() => {
            let status = resp
                .status
                .and_then(|s| StatusCode::from_u16(s).ok())
                .unwrap_or(StatusCode::OK);
            (status, axum::Json(resp.raw_body.unwrap_or(serde_json::Value::Null))).into_response()
        }
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
    };
    if let Some(rate) = rate {
        rate.add_headers(response.headers_mut());
    }
    Ok(response)
}

/// The `X-Vault-Wrap-TTL` header (Vault's `requestWrapInfo`): a duration
/// ("5m") or seconds; absent or 0: not wrapped.
fn wrap_ttl(headers: &HeaderMap) -> Result<Option<i64>, Error> {
    let Some(value) = headers.get("x-vault-wrap-ttl") else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or_default().trim();
    if text.is_empty() {
        return Ok(None);
    }
    let secs = crate::framework::convert::parse_duration(text)
        .map_err(|e| Error::bad(format!("error parsing X-Vault-Wrap-TTL header: {e}")))?;
    if secs < 0 {
        return Err(Error::bad(
            "error parsing X-Vault-Wrap-TTL header: requested wrap ttl cannot be negative",
        ));
    }
    Ok((secs > 0).then_some(secs))
}

/// As Vault: a GET's or DELETE's query parameters are request data (such
/// as `sys/leases?type=irrevocable`, or the `version` of a plugin to
/// deregister); the body wins where both name a field.
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
        if key == "list" || key == "help" {
            continue;
        }
        data.entry(key).or_insert_with(|| serde_json::Value::String(decode(v)));
    }
}

/// The request body as fields: a JSON object (`null` or nothing: no
/// fields, as Vault, since `bao write -f` sends `null`), or, with
/// `Content-Type: application/x-www-form-urlencoded` and a body that does
/// not start like JSON, a form whose values are string fields (a repeated
/// key's values joined with ','), as Vault's `parseFormRequest`.
fn parse_body(headers: &HeaderMap, body: &Bytes) -> Result<serde_json::Map<String, serde_json::Value>, Error> {
    if is_form(headers, body) {
        return parse_form(body);
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::Map::new());
    }
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(m)) => Ok(m),
        Ok(serde_json::Value::Null) => Ok(serde_json::Map::new()),
        Ok(_) => Err(Error::bad("failed to parse JSON input: the body must be a JSON object")),
        Err(e) => Err(Error::bad(format!("failed to parse JSON input: {e}"))),
    }
}

/// Vault's `isForm`: the form content type, and a body whose first
/// significant byte is not '{' or '[' (clients that label JSON as a form,
/// as curl's `-d` does, keep working).
fn is_form(headers: &HeaderMap, body: &Bytes) -> bool {
    let media_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    if media_type.as_deref() != Some("application/x-www-form-urlencoded") {
        return false;
    }
    !matches!(
        body.iter().find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r')),
        Some(b'{' | b'[')
    )
}

/// A form body as Go's `ParseForm` reads it: a bad percent escape or a ';'
/// refuses the whole body.
fn parse_form(body: &Bytes) -> Result<serde_json::Map<String, serde_json::Value>, Error> {
    let refused = || Error::bad("error parsing form data");
    let mut fields: Vec<(String, Vec<String>)> = Vec::new();
    for pair in body.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
        if pair.contains(&b';') {
            return Err(refused());
        }
        let (k, v) = match pair.iter().position(|b| *b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &pair[..0]),
        };
        let (k, v) = (
            form_unescape(k).ok_or_else(refused)?,
            form_unescape(v).ok_or_else(refused)?,
        );
        match fields.iter_mut().find(|(name, _)| *name == k) {
            Some((_, values)) => values.push(v),
            None => fields.push((k, vec![v])),
        }
    }
    Ok(fields
        .into_iter()
        .map(|(k, v)| (k, serde_json::Value::String(v.join(","))))
        .collect())
}

/// Go's `url.QueryUnescape`: '+' is a space, `%XX` a byte; a '%' not
/// followed by two hex digits, or bytes that are not UTF-8, refuse.
fn form_unescape(raw: &[u8]) -> Option<String> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = raw.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use tower::ServiceExt;

    async fn call(router: &Router, path: &str) -> (StatusCode, serde_json::Value) {
        let req = axum::http::Request::get(path).body(Body::empty()).unwrap();
        let resp = router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let ctype = resp.headers().get(header::CONTENT_TYPE).cloned();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
        assert_eq!(ctype.as_ref().and_then(|v| v.to_str().ok()), Some("application/json"));
        (status, serde_json::from_slice(&body).unwrap())
    }

    async fn boom() -> &'static str {
        panic!("the secret is hunter2")
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_500_json_and_the_router_goes_on() {
        let router = with_error_layers(
            Router::new()
                .route("/boom", get(boom))
                .route("/ok", get(|| async { axum::Json(serde_json::json!({"ok": true})) })),
        );
        let (status, body) = call(&router, "/boom").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        let text = body["errors"][0].as_str().unwrap();
        assert!(text.starts_with("internal error:"), "{body}");
        assert!(
            !text.contains("hunter2"),
            "the panic's message reached the client: {body}"
        );
        let (status, body) = call(&router, "/ok").await;
        assert_eq!((status, body), (StatusCode::OK, serde_json::json!({"ok": true})));
    }

    #[tokio::test]
    async fn plain_text_and_empty_errors_become_the_envelope() {
        let router = with_error_layers(
            Router::new()
                .route(
                    "/text",
                    get(|| async { (StatusCode::UNSUPPORTED_MEDIA_TYPE, "Expected JSON\n") }),
                )
                .route("/empty", get(|| async { StatusCode::PAYLOAD_TOO_LARGE })),
        );
        let (status, body) = call(&router, "/text").await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(body, serde_json::json!({"errors": ["Expected JSON"]}));
        let (status, body) = call(&router, "/empty").await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(body, serde_json::json!({"errors": ["payload too large"]}));
        // No route at all: axum's empty 404 leaves as JSON too.
        let (status, body) = call(&router, "/nowhere").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["errors"][0], "not found");
    }

    #[tokio::test]
    async fn the_body_is_read_within_its_limits() {
        let limits = RequestLimits {
            max_request_size: Some(8),
            ..RequestLimits::default()
        };
        let empty = HeaderMap::new();
        let uri: Uri = "/v1/sys/health".parse().unwrap();
        let read = |body: &'static str, limits: RequestLimits| {
            let (uri, empty) = (uri.clone(), empty.clone());
            async move { read_request(&uri, &empty, Body::from(body), &limits).await }
        };
        assert_eq!(read("12345678", limits.clone()).await.unwrap(), "12345678");
        let err = read("123456789", limits.clone()).await.unwrap_err();
        assert_eq!(errors::status(&err), StatusCode::PAYLOAD_TOO_LARGE);
        // A body that never ends, past its deadline: 408.
        let (_tx, body) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(1);
        let stream = Body::from_stream(tokio_stream_shim(body));
        let late = RequestLimits {
            body_deadline: Some(tokio::time::Instant::now() + std::time::Duration::from_millis(50)),
            ..limits
        };
        let err = read_request(&uri, &empty, stream, &late).await.unwrap_err();
        assert_eq!(errors::status(&err), StatusCode::REQUEST_TIMEOUT);
        let long: Uri = format!("/v1/{}", "a".repeat(MAX_URI_BYTES)).parse().unwrap();
        let err = read_request(&long, &empty, Body::empty(), &RequestLimits::default())
            .await
            .unwrap_err();
        assert_eq!(errors::status(&err), StatusCode::URI_TOO_LONG);
    }

    /// A stream of a channel's items (the receiver kept open: it never ends).
    fn tokio_stream_shim(
        mut rx: tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>,
    ) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> {
        futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
    }

    fn headers(content_type: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(ct) = content_type {
            h.insert(header::CONTENT_TYPE, HeaderValue::from_str(ct).unwrap());
        }
        h
    }

    #[test]
    fn a_null_or_empty_body_is_no_fields() {
        for body in ["", "  \n", "null", " null "] {
            let data = parse_body(&headers(None), &Bytes::from(body)).unwrap();
            assert!(data.is_empty(), "{body:?}");
        }
        for body in ["[1]", "\"x\"", "3", "{"] {
            let err = parse_body(&headers(None), &Bytes::from(body)).unwrap_err();
            assert_eq!(errors::status(&err), StatusCode::BAD_REQUEST, "{body:?}");
        }
    }

    #[test]
    fn form_bodies_become_string_fields_as_vault_reads_them() {
        let form = headers(Some("application/x-www-form-urlencoded; charset=utf-8"));
        let data = parse_body(&form, &Bytes::from("a=1&b=x+y%21&c=p&c=q&empty=&flag")).unwrap();
        assert_eq!(
            serde_json::Value::Object(data),
            serde_json::json!({"a": "1", "b": "x y!", "c": "p,q", "empty": "", "flag": ""})
        );
        // JSON labelled as a form stays JSON (curl -d does this).
        let data = parse_body(&form, &Bytes::from(" {\"a\": 2}")).unwrap();
        assert_eq!(data["a"], serde_json::json!(2));
        for bad in ["a=%zz", "a=%4", "a=1;b=2", "a=%ff"] {
            let err = parse_body(&form, &Bytes::from(bad)).unwrap_err();
            assert_eq!(err.to_string(), "error parsing form data", "{bad}");
        }
        // Without the content type, a form is not JSON: refused.
        assert!(parse_body(&headers(Some("text/plain")), &Bytes::from("a=1")).is_err());
    }
}
