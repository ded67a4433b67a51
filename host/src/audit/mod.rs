//! Audit devices (Vault's audit broker, `vault/audit.go` and
//! `audit_broker.go`): the enabled devices, their records in storage, and
//! the trail every authenticated request leaves: one JSON line when it is
//! about to run (after its token and its ACL check, before its handler)
//! and one with its response, every string of which is HMAC'd with the
//! device's salt ([`hash`]) unless the device logs raw. As Vault's, the
//! broker fails closed: a request that no enabled device records is
//! refused (500 `internal error`) without running; a response that no
//! device records is replaced by the same 500 (and what it issued, a lease
//! or a token, is revoked at once: nobody received it, and nothing
//! unrecorded stays usable). Requests served without a token (health,
//! seal-status, init, unseal) are not audited, as in Vault, whose HTTP
//! layer answers them before the broker.
//!
//! Only the `file` device type exists ([`file`]); its records live under
//! `core/audit/<uuid>` (`core/local-audit/<uuid>` when `local`), each with
//! its salt, under the barrier.

pub mod file;
pub mod hash;

use crate::core::Core;
use crate::error::{Error, Result};
use crate::logical::{Auth, Operation, Reply, Request, Response};
use crate::storage::{Storage, View, layout};
use hash::Salt;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};

/// Vault's answer when the broker cannot record a request or a response
/// (`ErrInternalError`).
const INTERNAL_ERROR: &str = "internal error";

/// A device as stored (and, without its salt, as `sys/audit` lists it).
#[derive(Clone, Serialize, Deserialize)]
pub struct DeviceRecord {
    /// With a trailing '/', as Vault shows it ("file/").
    pub path: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    #[serde(default)]
    pub local: bool,
    pub uuid: String,
    pub accessor: String,
    /// The HMAC key of this device (a UUID's text, as Vault's salts).
    salt: String,
}

impl DeviceRecord {
    fn key(&self) -> String {
        let prefix = if self.local { layout::LOCAL_AUDIT } else { layout::AUDIT };
        format!("{prefix}{}", self.uuid)
    }
}

/// How a device renders its entries (the `file` device's options).
#[derive(Clone)]
struct Format {
    /// `log_raw`: plaintext instead of HMACs.
    raw: bool,
    /// `hmac_accessor`: accessors are HMAC'd too (default true).
    hmac_accessor: bool,
    /// `elide_list_responses`: a LIST's `keys` become their count.
    elide_list_responses: bool,
    /// `prefix`: written before each line's JSON.
    prefix: String,
}

/// An enabled device.
pub struct Device {
    record: DeviceRecord,
    salt: Salt,
    format: Format,
    sink: file::FileSink,
}

/// The enabled devices.
pub struct Broker {
    storage: Storage,
    /// A snapshot per change: a request takes the current one with a
    /// read lock and a reference count, and keeps it to its end.
    devices: RwLock<Arc<[Arc<Device>]>>,
    /// Serialises enable and disable (a check of the table and the write
    /// that follows must see the same table).
    changes: tokio::sync::Mutex<()>,
}

impl Broker {
    /// Open every stored device. A device whose file cannot be opened now
    /// stays enabled and fails its writes (so requests are refused, not
    /// served unrecorded) until its file can be opened.
    pub async fn load(storage: Storage) -> anyhow::Result<Broker> {
        let mut devices = Vec::new();
        for prefix in [layout::AUDIT, layout::LOCAL_AUDIT] {
            let view = View::new(storage.clone(), prefix);
            for key in view.list("").await? {
                let Some(record) = view.get_json::<DeviceRecord>(&key).await? else {
                    continue;
                };
                match Device::build(record.clone()) {
                    Ok(device) => devices.push(Arc::new(device)),
                    Err(e) => {
                        tracing::error!(path = %record.path, error = %e, "audit device cannot be opened; requests fail until it can");
                        devices.push(Arc::new(Device::unopened(record)?));
                    }
                }
            }
        }
        devices.sort_by(|a, b| a.record.path.cmp(&b.record.path));
        if !devices.is_empty() {
            tracing::info!(devices = devices.len(), "audit devices enabled");
        }
        Ok(Broker {
            storage,
            devices: RwLock::new(devices.into()),
            changes: tokio::sync::Mutex::new(()),
        })
    }

    fn snapshot(&self) -> Arc<[Arc<Device>]> {
        self.devices.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn replace(&self, devices: Vec<Arc<Device>>) {
        *self.devices.write().unwrap_or_else(|p| p.into_inner()) = devices.into();
    }

    /// The devices a request must be recorded by; None when there are
    /// none (the request path then pays nothing).
    pub fn active(&self) -> Option<Arc<[Arc<Device>]>> {
        let devices = self.snapshot();
        (!devices.is_empty()).then_some(devices)
    }

    /// `sys/audit`: each device by path.
    pub fn table(&self) -> Map<String, Value> {
        self.snapshot()
            .iter()
            .map(|d| {
                let r = &d.record;
                (
                    r.path.clone(),
                    json!({
                        "path": r.path,
                        "type": r.kind,
                        "description": r.description,
                        "options": r.options,
                        "local": r.local,
                    }),
                )
            })
            .collect()
    }

    /// Vault's `enableAudit`: the path free (not a prefix of another
    /// device's, nor below one), the device opened and a test entry
    /// written, then its record stored, and only then live.
    pub async fn enable(
        &self,
        path: &str,
        kind: &str,
        description: String,
        options: BTreeMap<String, String>,
        local: bool,
    ) -> Result<()> {
        let path = normalise(path)?;
        let _changes = self.changes.lock().await;
        let current = self.snapshot();
        if current
            .iter()
            .any(|d| d.record.path.starts_with(&path) || path.starts_with(&d.record.path))
        {
            return Err(Error::bad("path already in use"));
        }
        if kind != "file" {
            return Err(Error::bad(format!("unknown backend type: {kind:?}")));
        }
        let record = DeviceRecord {
            path: path.clone(),
            kind: kind.to_string(),
            description,
            options,
            local,
            uuid: uuid::Uuid::new_v4().to_string(),
            accessor: format!("audit_{kind}_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]),
            salt: uuid::Uuid::new_v4().to_string(),
        };
        let device = Device::build(record).map_err(Error::BadRequest)?;
        if record_skip_test(&device.record) {
            tracing::debug!(path = %path, "audit device test skipped (skip_test)");
        } else {
            device
                .test_probe()
                .map_err(|e| Error::bad(format!("audit backend failed test message: {e}")))?;
        }
        View::new(self.storage.clone(), "")
            .put_json(&device.record.key(), &device.record)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "failed to persist the audit table");
                Error::internal("failed to update audit table")
            })?;
        let mut devices = current.to_vec();
        devices.push(Arc::new(device));
        devices.sort_by(|a, b| a.record.path.cmp(&b.record.path));
        self.replace(devices);
        tracing::info!(path = %path, kind, "enabled audit backend");
        Ok(())
    }

    /// Vault's `disableAudit`: a path with no device is not an error.
    pub async fn disable(&self, path: &str) -> Result<()> {
        let path = normalise(path)?;
        let _changes = self.changes.lock().await;
        let current = self.snapshot();
        let Some(device) = current.iter().find(|d| d.record.path == path) else {
            return Ok(());
        };
        self.storage.delete(&device.record.key()).await.map_err(|e| {
            tracing::error!(error = %e, "failed to persist the audit table");
            Error::internal("failed to update audit table")
        })?;
        let devices = current.iter().filter(|d| d.record.path != path).cloned().collect();
        self.replace(devices);
        tracing::info!(path = %path, "disabled audit backend");
        Ok(())
    }

    /// `sys/audit-hash/:path`: `input`'s HMAC with the device's salt.
    pub fn hash(&self, path: &str, input: &str) -> Result<String> {
        let path = format!("{}/", path.trim_start_matches('/').trim_end_matches('/'));
        self.snapshot()
            .iter()
            .find(|d| d.record.path == path)
            .map(|d| d.salt.hmac(input))
            .ok_or_else(|| Error::bad(format!("unknown audit backend {path:?}")))
    }

    /// SIGHUP: every file device closes and reopens its file (log
    /// rotation). A file that cannot be opened is retried by the next
    /// entry, which fails (and so refuses its request) until it can.
    pub fn reopen(&self) {
        for device in self.snapshot().iter() {
            match device.sink.reopen() {
                Ok(()) => tracing::info!(path = %device.record.path, "reopened the audit file"),
                Err(e) => tracing::error!(path = %device.record.path, error = %e, "audit file cannot be reopened"),
            }
        }
    }
}

fn record_skip_test(record: &DeviceRecord) -> bool {
    record.options.get("skip_test").is_some_and(|v| v == "true")
}

/// Vault's device path: a trailing '/', no leading one, not empty.
fn normalise(path: &str) -> Result<String> {
    let path = path.trim_start_matches('/');
    let path = match path.ends_with('/') {
        true => path.to_string(),
        false => format!("{path}/"),
    };
    if path == "/" {
        return Err(Error::bad("backend path must be specified"));
    }
    Ok(path)
}

/// Go's `strconv.ParseBool`, which Vault reads the options with.
fn parse_bool(name: &str, value: &str) -> std::result::Result<bool, String> {
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(format!(
            "strconv.ParseBool: parsing {value:?}: invalid syntax (option {name})"
        )),
    }
}

impl Device {
    /// The `file` device's options, as Vault's factory reads them.
    fn build(record: DeviceRecord) -> std::result::Result<Device, String> {
        let o = &record.options;
        let file_path = o
            .get("file_path")
            .or_else(|| o.get("path"))
            .ok_or_else(|| "file_path is required".to_string())?;
        match o.get("format").map(String::as_str) {
            None | Some("json") => {}
            Some("jsonx") => return Err("format \"jsonx\" is not supported by Warden; use \"json\"".into()),
            Some(other) => return Err(format!("unknown format type {other:?}")),
        }
        let flag = |name: &str, default: bool| o.get(name).map_or(Ok(default), |v| parse_bool(name, v));
        let format = Format {
            raw: flag("log_raw", false)?,
            hmac_accessor: flag("hmac_accessor", true)?,
            elide_list_responses: flag("elide_list_responses", false)?,
            prefix: o.get("prefix").cloned().unwrap_or_default(),
        };
        let mode = match o.get("mode") {
            None => 0o600,
            Some(m) => u32::from_str_radix(m, 8)
                .ok()
                .filter(|m| *m <= 0o7777)
                .ok_or_else(|| format!("strconv.ParseUint: parsing {m:?}: invalid syntax (option mode)"))?,
        };
        let special = file_path.eq_ignore_ascii_case("stdout") || file_path.eq_ignore_ascii_case("discard");
        if mode == 0 && !special {
            // Vault: mode 0000 keeps the mode of a file that must exist.
            std::fs::metadata(file_path).map_err(|e| format!("stat {file_path}: {e}"))?;
        }
        let sink = file::FileSink::open(file_path, mode)
            .map_err(|e| format!("sanity check failed; unable to open {file_path:?} for writing: {e}"))?;
        let salt = Salt::new(&record.salt);
        Ok(Device {
            record,
            salt,
            format,
            sink,
        })
    }

    /// A stored device whose file cannot be opened at start: enabled, its
    /// writes failing (each one retries the open) until it can be.
    fn unopened(record: DeviceRecord) -> anyhow::Result<Device> {
        let o = &record.options;
        let file_path = o
            .get("file_path")
            .or_else(|| o.get("path"))
            .cloned()
            .unwrap_or_default();
        let mode = o
            .get("mode")
            .and_then(|m| u32::from_str_radix(m, 8).ok())
            .unwrap_or(0o600);
        let flag = |name: &str, default: bool| o.get(name).map_or(default, |v| parse_bool(name, v).unwrap_or(default));
        Ok(Device {
            salt: Salt::new(&record.salt),
            format: Format {
                raw: flag("log_raw", false),
                hmac_accessor: flag("hmac_accessor", true),
                elide_list_responses: flag("elide_list_responses", false),
                prefix: o.get("prefix").cloned().unwrap_or_default(),
            },
            sink: file::FileSink::unopened(&file_path, mode),
            record,
        })
    }

    /// Vault's `LogTestMessage`: a request entry for `sys/audit/test`,
    /// hashed with a throwaway salt.
    fn test_probe(&self) -> std::io::Result<()> {
        let probe = Device {
            record: self.record.clone(),
            salt: Salt::new(&uuid::Uuid::new_v4().to_string()),
            format: self.format.clone(),
            sink: file::FileSink::unopened("discard", 0),
        };
        let auth = Who::default();
        let meta = RequestMeta {
            id: uuid::Uuid::new_v4().to_string(),
            path: "sys/audit/test".into(),
            namespace: Default::default(),
            operation: Operation::Update,
            mount: MountInfo::default(),
            data: Map::new(),
            remote_address: None,
        };
        let (a, r) = probe.render_parts(&auth, &meta, Operation::Update);
        self.sink
            .write_line(&line("request", &self.format.prefix, &a, &r, None, None)?)
    }

    /// This device's `auth` and `request` objects of a request's entries.
    fn render_parts(&self, who: &Who, meta: &RequestMeta, operation: Operation) -> (String, String) {
        let f = &self.format;
        let secret = |v: &str| match f.raw || v.is_empty() {
            true => v.to_string(),
            false => self.salt.hmac(v),
        };
        let accessor = |v: &str| match f.hmac_accessor {
            true => secret(v),
            false => v.to_string(),
        };
        let client_token = secret(&who.client_token);
        let token_accessor = accessor(&who.accessor);
        let auth = AuditAuth {
            client_token: &client_token,
            accessor: &token_accessor,
            display_name: &who.display_name,
            policies: &who.policies,
            token_policies: &who.policies,
            metadata: None,
            num_uses: 0,
            token_type: who.token_type,
            token_ttl: 0,
        };
        let data = match f.raw {
            true => meta.data.clone(),
            false => self.salt.hash_map(&meta.data),
        };
        let request = AuditRequest {
            id: &meta.id,
            operation: operation.as_str(),
            mount_point: &meta.mount.point,
            mount_type: meta.mount.kind,
            mount_accessor: &meta.mount.accessor,
            client_token: &client_token,
            client_token_accessor: &token_accessor,
            namespace: Namespace {
                id: &meta.namespace.id,
                path: &meta.namespace.path,
            },
            path: &meta.path,
            data: (!data.is_empty()).then_some(data),
            remote_address: meta.remote_address.as_deref(),
        };
        (to_json(&auth), to_json(&request))
    }

    /// This device's `response` object.
    fn render_response(&self, meta: &RequestMeta, operation: Operation, resp: Option<&Response>) -> String {
        let f = &self.format;
        let mut data = resp.and_then(|r| r.data.as_ref().or(r.raw_body.as_ref())).cloned();
        if f.elide_list_responses
            && operation == Operation::List
            && let Some(Value::Object(m)) = data.as_mut()
        {
            for key in ["keys", "key_info"] {
                let n = match m.get(key) {
                    Some(Value::Array(a)) => a.len(),
                    Some(Value::Object(o)) => o.len(),
                    _ => continue,
                };
                m.insert(key.into(), json!(n));
            }
        }
        let data = match f.raw {
            true => data,
            false => data.map(|d| self.salt.hash_value(&d)),
        };
        let auth = resp.and_then(|r| r.auth.as_ref()).map(|a| self.response_auth(a));
        let response = AuditResponse {
            auth,
            mount_point: &meta.mount.point,
            mount_type: meta.mount.kind,
            mount_accessor: &meta.mount.accessor,
            secret: resp
                .and_then(|r| r.lease.as_ref())
                .map(|l| Secret { lease_id: &l.lease_id }),
            data,
            warnings: resp.map_or(&[][..], |r| &r.warnings[..]),
            wrap_info: resp.and_then(|r| r.wrap_info.as_ref()).map(|w| self.wrap_info(w)),
        };
        to_json(&response)
    }

    /// A wrapped response's `wrap_info`, as Vault's `HashWrapInfo`: the
    /// wrapping token HMAC'd, and the accessors with `hmac_accessor`.
    fn wrap_info(&self, info: &Value) -> Value {
        let f = &self.format;
        let mut out = Map::new();
        for key in [
            "ttl",
            "token",
            "accessor",
            "creation_time",
            "creation_path",
            "wrapped_accessor",
        ] {
            let Some(v) = info.get(key).filter(|v| !v.is_null()) else {
                continue;
            };
            let hashed = match (key, v.as_str()) {
                ("token", Some(t)) if !f.raw => json!(self.salt.hmac(t)),
                ("accessor" | "wrapped_accessor", Some(a)) if !f.raw && f.hmac_accessor && !a.is_empty() => {
                    json!(self.salt.hmac(a))
                }
                _ => v.clone(),
            };
            out.insert(key.into(), hashed);
        }
        Value::Object(out)
    }

    /// The `auth` block of a response that issued a token, as Vault's
    /// `AuditAuth`: the token and its accessor HMAC'd, nothing else of it.
    fn response_auth(&self, block: &Value) -> Value {
        let f = &self.format;
        let text = |k: &str| block.get(k).and_then(Value::as_str).unwrap_or_default();
        let secret = |v: &str| match f.raw || v.is_empty() {
            true => v.to_string(),
            false => self.salt.hmac(v),
        };
        let accessor = match f.hmac_accessor {
            true => secret(text("accessor")),
            false => text("accessor").to_string(),
        };
        let mut out = Map::new();
        out.insert("client_token".into(), json!(secret(text("client_token"))));
        out.insert("accessor".into(), json!(accessor));
        for key in [
            "policies",
            "token_policies",
            "metadata",
            "num_uses",
            "entity_id",
            "token_type",
        ] {
            if let Some(v) = block.get(key).filter(|v| !v.is_null()) {
                out.insert(key.into(), v.clone());
            }
        }
        if let Some(ttl) = block.get("lease_duration") {
            out.insert("token_ttl".into(), ttl.clone());
        }
        Value::Object(out)
    }
}

fn to_json<T: Serialize>(v: &T) -> String {
    // Serialising these types cannot fail (string keys only).
    serde_json::to_string(v).unwrap_or_else(|_| "{}".into())
}

/// One entry's line: Vault's field order (time, type, auth, request,
/// response, error), the device's prefix first.
fn line(
    kind: &str,
    prefix: &str,
    auth: &str,
    request: &str,
    response: Option<&str>,
    error: Option<&str>,
) -> std::io::Result<Vec<u8>> {
    let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
    let mut out = Vec::with_capacity(prefix.len() + auth.len() + request.len() + response.map_or(0, str::len) + 160);
    out.extend_from_slice(prefix.as_bytes());
    out.extend_from_slice(b"{\"time\":");
    serde_json::to_writer(&mut out, &time)?;
    out.extend_from_slice(b",\"type\":");
    serde_json::to_writer(&mut out, kind)?;
    out.extend_from_slice(b",\"auth\":");
    out.extend_from_slice(auth.as_bytes());
    out.extend_from_slice(b",\"request\":");
    out.extend_from_slice(request.as_bytes());
    if let Some(r) = response {
        out.extend_from_slice(b",\"response\":");
        out.extend_from_slice(r.as_bytes());
    }
    if let Some(e) = error {
        out.extend_from_slice(b",\"error\":");
        serde_json::to_writer(&mut out, e)?;
    }
    out.extend_from_slice(b"}\n");
    Ok(out)
}

fn is_empty(s: &&str) -> bool {
    s.is_empty()
}

fn no_strings(v: &&[String]) -> bool {
    v.is_empty()
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// Vault's `AuditAuth` (the fields Warden has).
#[derive(Serialize)]
struct AuditAuth<'a> {
    #[serde(skip_serializing_if = "is_empty")]
    client_token: &'a str,
    #[serde(skip_serializing_if = "is_empty")]
    accessor: &'a str,
    #[serde(skip_serializing_if = "is_empty")]
    display_name: &'a str,
    #[serde(skip_serializing_if = "no_strings")]
    policies: &'a [String],
    #[serde(skip_serializing_if = "no_strings")]
    token_policies: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<&'a Map<String, Value>>,
    #[serde(skip_serializing_if = "is_zero")]
    num_uses: i64,
    #[serde(skip_serializing_if = "is_empty")]
    token_type: &'a str,
    #[serde(skip_serializing_if = "is_zero")]
    token_ttl: i64,
}

/// The request's namespace (Vault's `namespace`: `{"id":"root"}` for the
/// root, id and path for any other).
#[derive(Serialize)]
struct Namespace<'a> {
    id: &'a str,
    #[serde(skip_serializing_if = "is_empty")]
    path: &'a str,
}

/// Vault's `AuditRequest` (the fields Warden has).
#[derive(Serialize)]
struct AuditRequest<'a> {
    id: &'a str,
    operation: &'a str,
    #[serde(skip_serializing_if = "is_empty")]
    mount_point: &'a str,
    #[serde(skip_serializing_if = "is_empty")]
    mount_type: &'a str,
    #[serde(skip_serializing_if = "is_empty")]
    mount_accessor: &'a str,
    #[serde(skip_serializing_if = "is_empty")]
    client_token: &'a str,
    #[serde(skip_serializing_if = "is_empty")]
    client_token_accessor: &'a str,
    namespace: Namespace<'a>,
    path: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    remote_address: Option<&'a str>,
}

#[derive(Serialize)]
struct Secret<'a> {
    lease_id: &'a str,
}

/// Vault's `AuditResponse` (the fields Warden has).
#[derive(Serialize)]
struct AuditResponse<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    auth: Option<Value>,
    #[serde(skip_serializing_if = "is_empty")]
    mount_point: &'a str,
    #[serde(skip_serializing_if = "is_empty")]
    mount_type: &'a str,
    #[serde(skip_serializing_if = "is_empty")]
    mount_accessor: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<Secret<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<Value>,
    #[serde(skip_serializing_if = "no_strings")]
    warnings: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    wrap_info: Option<Value>,
}

/// Who made a request, as far as its token says.
#[derive(Default)]
struct Who {
    /// The token presented (HMAC'd when written).
    client_token: String,
    accessor: String,
    display_name: String,
    policies: Vec<String>,
    token_type: &'static str,
}

impl Who {
    fn of(auth: &Auth, presented: &str) -> Who {
        Who {
            client_token: presented.to_string(),
            accessor: auth.accessor.clone(),
            display_name: auth.display_name.clone(),
            policies: auth.policies.clone(),
            token_type: if auth.anonymous { "" } else { "service" },
        }
    }
}

/// The mount a request reaches: `sys/`, `auth/token/` or an engine's.
#[derive(Default)]
struct MountInfo {
    point: String,
    kind: &'static str,
    accessor: String,
}

impl MountInfo {
    /// The mount a request reaches (`path` is full; the mount point is
    /// shown from the request's namespace, as Vault's).
    fn of(core: &Core, ns: &crate::logical::Namespace, full: &str) -> MountInfo {
        let path = ns.relative(full);
        if path.starts_with("sys/") || path == "sys" {
            return MountInfo {
                point: "sys/".into(),
                kind: "system",
                ..MountInfo::default()
            };
        }
        if path.starts_with("auth/token/") {
            return MountInfo {
                point: "auth/token/".into(),
                kind: "token",
                ..MountInfo::default()
            };
        }
        match core.mount_for(full) {
            Some(m) => MountInfo {
                point: ns.relative(&m.record.path).to_string(),
                kind: engine_kind(&m.record.kind),
                accessor: m.record.accessor.clone(),
            },
            None => MountInfo::default(),
        }
    }
}

/// Mount types are a few registered names; an unknown one is shown as
/// "unknown" rather than kept in a leaked string.
fn engine_kind(kind: &str) -> &'static str {
    match kind {
        "database" => "database",
        "mongodb" => "mongodb",
        "cluster" => "cluster",
        _ => "unknown",
    }
}

/// The request, as its entries show it.
struct RequestMeta {
    id: String,
    /// Below its namespace.
    path: String,
    namespace: crate::logical::Namespace,
    operation: Operation,
    mount: MountInfo,
    data: Map<String, Value>,
    /// The client's address (Vault's `remote_address`), where known.
    remote_address: Option<String>,
}

enum State {
    /// Not recorded yet (its check has not run).
    Pending,
    /// Recorded: each device's `auth` and `request` objects, which the
    /// response entry repeats.
    Recorded(Vec<(String, String)>),
    /// No device could record it: it was refused.
    Refused,
}

/// One request's way through the audit devices.
pub struct Trail {
    devices: Arc<[Arc<Device>]>,
    who: Who,
    meta: RequestMeta,
    state: Mutex<State>,
}

impl Trail {
    /// A trail for an authenticated request (before it is routed: its
    /// data is copied, since the request moves on to its handler).
    pub fn new(devices: Arc<[Arc<Device>]>, core: &Core, req: &Request, presented_token: &str) -> Trail {
        Trail {
            devices,
            who: Who::of(&req.auth, presented_token),
            meta: RequestMeta {
                id: req.request_id.clone(),
                path: req.namespace.relative(&req.path).to_string(),
                namespace: req.namespace.clone(),
                operation: req.operation,
                mount: MountInfo::of(core, &req.namespace, &req.path),
                data: req.data.clone(),
                remote_address: req.remote_addr.map(|ip| ip.to_string()),
            },
            state: Mutex::new(State::Pending),
        }
    }

    /// Record the request as it is about to run (`operation` as its
    /// existence check settled it; `verdict`: its ACL check). The verdict
    /// comes back unless no device recorded the request, which refuses it.
    pub fn request(&self, operation: Operation, verdict: Result<()>) -> Result<()> {
        let error = verdict.as_ref().err().map(ToString::to_string);
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if !matches!(*state, State::Pending) {
            return verdict;
        }
        let (recorded, parts) = self.record_request(operation, error.as_deref());
        *state = match recorded {
            true => State::Recorded(parts),
            false => State::Refused,
        };
        drop(state);
        match recorded {
            true => verdict,
            false => {
                tracing::error!(path = %self.meta.path, "failed to audit request: no audit device recorded it");
                Err(Error::internal(INTERNAL_ERROR))
            }
        }
    }

    fn record_request(&self, operation: Operation, error: Option<&str>) -> (bool, Vec<(String, String)>) {
        let mut any = false;
        let mut parts = Vec::with_capacity(self.devices.len());
        for device in self.devices.iter() {
            let (auth, request) = device.render_parts(&self.who, &self.meta, operation);
            let written = line("request", &device.format.prefix, &auth, &request, None, error)
                .and_then(|l| device.sink.write_line(&l));
            match written {
                Ok(()) => any = true,
                Err(e) => {
                    tracing::error!(device = %device.record.path, error = %e, "audit device failed to log request")
                }
            }
            parts.push((auth, request));
        }
        (any, parts)
    }

    /// Record the response (or the error) of the request. A request that
    /// never reached its check (a routing error, help) is recorded first.
    /// When no device records the response, the client gets Vault's 500
    /// instead, and what the response issued is revoked.
    pub async fn response(&self, core: &Core, reply: Reply) -> Reply {
        let parts = {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            if matches!(*state, State::Pending) {
                let error = reply.as_ref().err().map(ToString::to_string);
                let (recorded, parts) = self.record_request(self.meta.operation, error.as_deref());
                *state = match recorded {
                    true => State::Recorded(parts),
                    false => State::Refused,
                };
            }
            match &*state {
                State::Recorded(parts) => Some(parts.clone()),
                _ => None,
            }
        };
        let Some(parts) = parts else {
            // Refused before it ran (or it never ran and was not
            // recorded): nothing was done, nothing to undo.
            if reply.is_ok() {
                tracing::error!(path = %self.meta.path, "failed to audit request: no audit device recorded it");
            }
            return Err(Error::internal(INTERNAL_ERROR));
        };
        let (resp, error) = match &reply {
            Ok(r) => (r.as_ref(), None),
            Err(e) => (None, Some(e.to_string())),
        };
        let mut any = false;
        for (device, (auth, request)) in self.devices.iter().zip(&parts) {
            let response = device.render_response(&self.meta, self.meta.operation, resp);
            let written = line(
                "response",
                &device.format.prefix,
                auth,
                request,
                Some(&response),
                error.as_deref(),
            )
            .and_then(|l| device.sink.write_line(&l));
            match written {
                Ok(()) => any = true,
                Err(e) => {
                    tracing::error!(device = %device.record.path, error = %e, "audit device failed to log response")
                }
            }
        }
        if any {
            return reply;
        }
        tracing::error!(path = %self.meta.path, "failed to audit response: no audit device recorded it");
        if let Ok(Some(resp)) = &reply {
            undo(core, resp).await;
        }
        Err(Error::internal(INTERNAL_ERROR))
    }
}

/// A response nobody received (its audit failed): revoke the lease and
/// the token it issued, so that nothing unrecorded stays usable.
async fn undo(core: &Core, resp: &Response) {
    if let Some(lease) = &resp.lease
        && let Err(e) = core.revoke_lease(&lease.lease_id).await
    {
        tracing::error!(lease_id = %lease.lease_id, error = %e, "could not revoke a lease whose response was not audited (it expires with its TTL)");
    }
    let token = resp
        .auth
        .as_ref()
        .and_then(|a| a.get("client_token"))
        .and_then(Value::as_str);
    if let Some(token) = token {
        let revoked = match core.tokens.lookup(token).await {
            Ok(Some(entry)) => core.revoke_token(&entry.hash).await,
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        };
        if let Err(e) = revoked {
            tracing::error!(error = %e, "could not revoke a token whose response was not audited (it expires with its TTL)");
        }
    }
}

/// A request whose token was refused: Vault records it (with the error)
/// before refusing it. When no device can record it, the answer is 500.
pub fn refused(devices: Option<Arc<[Arc<Device>]>>, req: &Request, presented_token: &str, error: Error) -> Reply {
    let Some(devices) = devices else {
        return Err(error);
    };
    let who = Who {
        client_token: presented_token.to_string(),
        ..Who::default()
    };
    let meta = RequestMeta {
        id: req.request_id.clone(),
        path: req.namespace.relative(&req.path).to_string(),
        namespace: req.namespace.clone(),
        operation: req.operation,
        mount: MountInfo::default(),
        data: req.data.clone(),
        remote_address: req.remote_addr.map(|ip| ip.to_string()),
    };
    let message = error.to_string();
    let mut any = false;
    for device in devices.iter() {
        let (auth, request) = device.render_parts(&who, &meta, meta.operation);
        let response = device.render_response(&meta, meta.operation, None);
        let written = line("request", &device.format.prefix, &auth, &request, None, Some(&message))
            .and_then(|l| device.sink.write_line(&l))
            .and_then(|()| {
                line(
                    "response",
                    &device.format.prefix,
                    &auth,
                    &request,
                    Some(&response),
                    Some(&message),
                )
            })
            .and_then(|l| device.sink.write_line(&l));
        match written {
            Ok(()) => any = true,
            Err(e) => tracing::error!(device = %device.record.path, error = %e, "audit device failed to log request"),
        }
    }
    match any {
        true => Err(error),
        false => {
            tracing::error!(path = %req.path, "failed to audit request: no audit device recorded it");
            Err(Error::internal(INTERNAL_ERROR))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(options: &[(&str, &str)]) -> DeviceRecord {
        DeviceRecord {
            path: "file/".into(),
            kind: "file".into(),
            description: String::new(),
            options: options.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            local: false,
            uuid: "u".into(),
            accessor: "audit_file_x".into(),
            salt: "salt".into(),
        }
    }

    fn meta(data: Value) -> RequestMeta {
        RequestMeta {
            id: "req-1".into(),
            path: "db/config/pg".into(),
            namespace: Default::default(),
            operation: Operation::Update,
            mount: MountInfo {
                point: "db/".into(),
                kind: "database",
                accessor: "database_1234".into(),
            },
            data: data.as_object().cloned().unwrap_or_default(),
            remote_address: Some("127.0.0.1".into()),
        }
    }

    fn who() -> Who {
        Who {
            client_token: "hvs.secrettoken".into(),
            accessor: "accessor-1".into(),
            display_name: "token".into(),
            policies: vec!["default".into()],
            token_type: "service",
        }
    }

    #[test]
    fn options_are_read_as_vault_reads_them() {
        let d = Device::build(record(&[("file_path", "discard")])).unwrap_or_else(|e| panic!("{e}"));
        assert!(!d.format.raw && d.format.hmac_accessor && !d.format.elide_list_responses);
        for (options, error) in [
            (&[][..], "file_path is required"),
            (
                &[("file_path", "discard"), ("format", "xml")][..],
                "unknown format type \"xml\"",
            ),
            (&[("file_path", "discard"), ("log_raw", "maybe")][..], "ParseBool"),
            (&[("file_path", "discard"), ("mode", "9")][..], "ParseUint"),
        ] {
            let err = Device::build(record(options)).err().unwrap_or_default();
            assert!(err.contains(error), "{options:?}: {err}");
        }
        let raw = Device::build(record(&[
            ("path", "discard"),
            ("log_raw", "true"),
            ("hmac_accessor", "f"),
        ]))
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(raw.format.raw && !raw.format.hmac_accessor);
    }

    #[test]
    fn entries_carry_no_plaintext_secret_and_the_hmacs_reproduce() {
        let d = Device::build(record(&[("file_path", "discard")])).unwrap_or_else(|e| panic!("{e}"));
        let m = meta(json!({"password": "conn-pass", "max_open_connections": 4, "verify_connection": true}));
        let (auth, request) = d.render_parts(&who(), &m, Operation::Create);
        let resp = Response {
            data: Some(json!({"username": "v-user", "password": "issued-pass"})),
            lease: Some(crate::logical::LeaseInfo {
                lease_id: "db/creds/app/abc".into(),
                lease_duration: 3600,
                renewable: true,
            }),
            auth: Some(
                json!({"client_token": "hvs.child", "accessor": "acc-2", "policies": ["p"], "lease_duration": 60}),
            ),
            wrap_info: Some(
                json!({"token": "hvs.wrapping", "accessor": "wrap-acc", "ttl": 300, "creation_path": "db/creds/app"}),
            ),
            ..Response::default()
        };
        let response = d.render_response(&m, Operation::Create, Some(&resp));
        let bytes = line("response", "", &auth, &request, Some(&response), None).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.ends_with("}\n") && text.matches('\n').count() == 1);
        for plain in [
            "hvs.secrettoken",
            "accessor-1",
            "conn-pass",
            "issued-pass",
            "v-user",
            "hvs.child",
            "acc-2",
            "hvs.wrapping",
            "wrap-acc",
        ] {
            assert!(!text.contains(plain), "{plain} in {text}");
        }
        let entry: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(entry["type"], "response");
        assert_eq!(entry["auth"]["client_token"], json!(d.salt.hmac("hvs.secrettoken")));
        assert_eq!(entry["auth"]["accessor"], json!(d.salt.hmac("accessor-1")));
        assert_eq!(entry["auth"]["policies"], json!(["default"]));
        assert_eq!(entry["request"]["operation"], "create");
        assert_eq!(entry["request"]["mount_type"], "database");
        assert_eq!(entry["request"]["namespace"], json!({"id": "root"}));
        assert_eq!(
            entry["request"]["remote_address"], "127.0.0.1",
            "the client's address, in clear as Vault's"
        );
        assert_eq!(entry["request"]["client_token"], json!(d.salt.hmac("hvs.secrettoken")));
        assert_eq!(entry["request"]["data"]["password"], json!(d.salt.hmac("conn-pass")));
        assert_eq!(entry["request"]["data"]["max_open_connections"], json!(4));
        assert_eq!(entry["request"]["data"]["verify_connection"], json!(true));
        assert_eq!(entry["response"]["data"]["password"], json!(d.salt.hmac("issued-pass")));
        assert_eq!(entry["response"]["secret"]["lease_id"], "db/creds/app/abc");
        assert_eq!(
            entry["response"]["auth"]["client_token"],
            json!(d.salt.hmac("hvs.child"))
        );
        assert_eq!(entry["response"]["auth"]["token_ttl"], json!(60));
        assert_eq!(
            entry["response"]["wrap_info"]["token"],
            json!(d.salt.hmac("hvs.wrapping"))
        );
        assert_eq!(entry["response"]["wrap_info"]["creation_path"], "db/creds/app");
    }

    #[test]
    fn log_raw_writes_plaintext_and_hmac_accessor_false_keeps_accessors() {
        let raw =
            Device::build(record(&[("file_path", "discard"), ("log_raw", "true")])).unwrap_or_else(|e| panic!("{e}"));
        let m = meta(json!({"password": "conn-pass"}));
        let (auth, request) = raw.render_parts(&who(), &m, Operation::Update);
        assert!(auth.contains("hvs.secrettoken") && request.contains("conn-pass"));
        let plain_acc = Device::build(record(&[("file_path", "discard"), ("hmac_accessor", "false")]))
            .unwrap_or_else(|e| panic!("{e}"));
        let (auth, _) = plain_acc.render_parts(&who(), &m, Operation::Update);
        assert!(
            auth.contains("\"accessor\":\"accessor-1\"") && !auth.contains("hvs.secrettoken"),
            "{auth}"
        );
    }

    #[test]
    fn list_responses_can_be_elided_to_counts() {
        let d = Device::build(record(&[("file_path", "discard"), ("elide_list_responses", "true")]))
            .unwrap_or_else(|e| panic!("{e}"));
        let resp = Response::list(vec!["a".into(), "b".into()]);
        let out: Value =
            serde_json::from_str(&d.render_response(&meta(json!({})), Operation::List, Some(&resp))).unwrap();
        assert_eq!(out["data"]["keys"], json!(2));
    }

    #[test]
    fn device_paths_are_normalised_as_vaults() {
        assert_eq!(normalise("file").unwrap(), "file/");
        assert_eq!(normalise("/a/b/").unwrap(), "a/b/");
        assert!(normalise("").is_err() && normalise("/").is_err());
    }
}
