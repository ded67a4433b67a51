//! Telemetry: what Warden counts and times, and what `sys/metrics` renders.
//! This module owns every metric name ([`METRICS`] lists them, with what
//! they mean), the process-wide sinks behind them, the `telemetry`
//! settings, the route label of the request being served, and the gauges
//! read when the metrics are asked for. Call sites elsewhere are one-line
//! calls of the functions below; nothing else names a metric.
//!
//! Two sinks, as Vault has: the Prometheus recorder of the
//! `metrics-exporter-prometheus` crate (only when `prometheus_retention_time`
//! is above 0; a series not updated for that long leaves the output) and
//! Vault's in-memory sink ([`inmem`]: 10-second intervals, a minute kept),
//! which the JSON form shows. Counters and timers go to both as they
//! happen; gauges (leases per mount, pools, instances...) are read from
//! the live state each time the metrics are rendered, so a gauge never
//! outlives what it measures. Timers are in milliseconds, as Vault's.
//!
//! Labels carry only bounded, non-secret values: a route template (never
//! the raw path), a mount path, a connection or component name, a status
//! code. Before [`init`] (unit tests, tools) every call is a no-op.

mod inmem;

use metrics::{Key, KeyName, Label, Metadata, Recorder};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};
use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The `telemetry` stanza (Vault's names), as far as Warden honours it.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// `prometheus_retention_time`: how long a series stays in the
    /// Prometheus output after its last update; zero turns the Prometheus
    /// format off (Vault's default).
    pub prometheus_retention: Duration,
    /// `disable_hostname`: false (Vault's default) puts the host name in
    /// every gauge's name (`vault.<host>.core.unsealed`), as go-metrics does.
    pub disable_hostname: bool,
    /// `enable_hostname_label`: a `host` label on every metric instead.
    pub enable_hostname_label: bool,
}

impl Default for Settings {
    /// A configuration file's defaults: Vault's.
    fn default() -> Self {
        Settings {
            prometheus_retention: Duration::ZERO,
            disable_hostname: false,
            enable_hostname_label: false,
        }
    }
}

impl Settings {
    /// `-dev`: Prometheus on (24h retention), no host name in the names.
    pub fn dev() -> Self {
        Settings {
            prometheus_retention: Duration::from_secs(24 * 3600),
            disable_hostname: true,
            enable_hostname_label: false,
        }
    }
}

/// What a metric is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    /// `vault.core.handle_request`: a summary (0.5, 0.9, 0.99 quantiles
    /// over the last minute, `_sum`, `_count`) in Prometheus, as Vault's; a
    /// sample in the JSON form.
    Summary,
    /// Every other timer: a Prometheus histogram ([`BUCKETS_MS`]), a sample
    /// in the JSON form. The recorder's summary keeps a fine sketch of
    /// about 2 MiB per series; a histogram's memory is small and fixed,
    /// whatever the labels.
    Histogram,
    Gauge,
}

/// Every metric Warden emits: its name (Vault's where Vault has one; the
/// Prometheus name replaces '.' with '_'), kind, labels and meaning.
/// docs/operations.md lists the same (a unit test keeps them together).
pub const METRICS: &[(&str, Kind, &str, &str)] = &[
    (
        "vault.core.handle_request",
        Kind::Summary,
        "",
        "Time to handle a request (ms), every request",
    ),
    (
        "warden.http.requests",
        Kind::Counter,
        "method, route, code",
        "Requests answered, by HTTP method, route template and status code",
    ),
    (
        "warden.http.request_duration",
        Kind::Histogram,
        "method, route",
        "Time to handle a request (ms), by HTTP method and route template",
    ),
    (
        "vault.secret.lease.creation",
        Kind::Counter,
        "mount_point, secret_engine",
        "Leased secrets (dynamic credentials) issued, by mount",
    ),
    (
        "warden.secret.lease.revocation",
        Kind::Counter,
        "mount_point",
        "Leased secrets revoked (on request, on expiry or forced), by mount",
    ),
    (
        "vault.expire.num_leases",
        Kind::Gauge,
        "",
        "Live leases (secrets and tokens)",
    ),
    (
        "warden.expire.num_leases",
        Kind::Gauge,
        "mount_point",
        "Live leases by secrets mount",
    ),
    (
        "vault.expire.num_irrevocable_leases",
        Kind::Gauge,
        "",
        "Leases whose revocation failed past the retry limit",
    ),
    (
        "warden.expire.revocation_queue",
        Kind::Gauge,
        "",
        "Expired leases waiting for or being revoked",
    ),
    ("vault.core.unsealed", Kind::Gauge, "", "1 when the node is unsealed"),
    (
        "vault.core.active",
        Kind::Gauge,
        "",
        "1 when this node is the active HA node (once HA reports it)",
    ),
    (
        "warden.ha.lock_epoch",
        Kind::Gauge,
        "",
        "The epoch of the HA lock this node last held or saw",
    ),
    (
        "vault.barrier.get",
        Kind::Histogram,
        "",
        "Time of a storage read through the barrier (ms)",
    ),
    (
        "vault.barrier.put",
        Kind::Histogram,
        "",
        "Time of a storage write through the barrier (ms)",
    ),
    (
        "vault.barrier.delete",
        Kind::Histogram,
        "",
        "Time of a storage delete through the barrier (ms)",
    ),
    (
        "vault.barrier.list",
        Kind::Histogram,
        "",
        "Time of a storage list through the barrier (ms)",
    ),
    (
        "warden.barrier.batch",
        Kind::Histogram,
        "",
        "Time of an atomic batch of storage writes through the barrier (ms)",
    ),
    (
        "warden.barrier.scan",
        Kind::Histogram,
        "",
        "Time of a storage range read (one page) through the barrier (ms)",
    ),
    (
        "warden.runtime.instances",
        Kind::Gauge,
        "component",
        "Live Wasm component instances (in use or idle), by component",
    ),
    (
        "warden.runtime.kills",
        Kind::Counter,
        "component, reason",
        "Component calls stopped by the sandbox: reason epoch (deadline), memory (limit) or trap",
    ),
    (
        "warden.sql.pool.in_use",
        Kind::Gauge,
        "mount_point, connection",
        "Database connections lent to a call, by connection configuration",
    ),
    (
        "warden.sql.pool.idle",
        Kind::Gauge,
        "mount_point, connection",
        "Database connections waiting idle, by connection configuration",
    ),
    (
        "warden.sql.pool.max_open",
        Kind::Gauge,
        "mount_point, connection",
        "The configuration's max_open_connections",
    ),
];

/// The upper bounds (ms) of the histograms' buckets: from a storage read
/// in memory to a request that waits out a database.
pub const BUCKETS_MS: &[f64] = &[
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0,
    30000.0,
];

/// The process's sinks, once [`init`] ran.
static GLOBAL: OnceLock<Telemetry> = OnceLock::new();

/// Start the sinks with `settings` (the first call wins; later ones are
/// ignored). Inside a Tokio runtime, a task keeps the Prometheus
/// summaries' windows moving.
pub fn init(settings: Settings) {
    let mut fresh = false;
    let telemetry = GLOBAL.get_or_init(|| {
        fresh = true;
        Telemetry::new(&settings, hostname())
    });
    if fresh
        && let Some(prom) = &telemetry.prometheus
        && let Ok(rt) = tokio::runtime::Handle::try_current()
    {
        let handle = prom.handle();
        rt.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tick.tick().await;
                handle.run_upkeep();
            }
        });
    }
}

/// The host name, as Go's os.Hostname gives it (for `disable_hostname`).
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

static METADATA: Metadata<'static> = Metadata::new("warden", metrics::Level::INFO, Some(module_path!()));

/// The sinks and how names and labels are made.
pub struct Telemetry {
    prometheus: Option<PrometheusRecorder>,
    inmem: inmem::Inmem,
    /// The host name to put in gauge names (`disable_hostname` false).
    host_in_gauge_names: Option<String>,
    /// The `host` label (`enable_hostname_label`).
    host_label: Option<Label>,
}

impl Telemetry {
    pub fn new(settings: &Settings, host: String) -> Telemetry {
        let prometheus = (!settings.prometheus_retention.is_zero()).then(|| {
            let builder = PrometheusBuilder::new()
                .idle_timeout(metrics_util::MetricKindMask::ALL, Some(settings.prometheus_retention));
            // Vault's go-metrics summaries: the median, 0.9 and 0.99.
            let builder = match builder.set_quantiles(&[0.5, 0.9, 0.99]) {
                Ok(b) => b,
                Err(_) => PrometheusBuilder::new(),
            };
            // Every timer but vault.core.handle_request is a histogram
            // (matched on the sanitized names).
            let mut builder = builder;
            for (name, kind, ..) in METRICS {
                if *kind == Kind::Histogram {
                    let matcher = metrics_exporter_prometheus::Matcher::Full(name.replace('.', "_"));
                    builder = match builder.set_buckets_for_metric(matcher, BUCKETS_MS) {
                        Ok(b) => b,
                        Err(_) => PrometheusBuilder::new(),
                    };
                }
            }
            let recorder = builder.build_recorder();
            for (name, kind, _, help) in METRICS {
                let (name, help) = (KeyName::from_const_str(name), metrics::SharedString::const_str(help));
                match kind {
                    Kind::Counter => recorder.describe_counter(name, None, help),
                    Kind::Summary | Kind::Histogram => recorder.describe_histogram(name, None, help),
                    Kind::Gauge => {}
                }
            }
            recorder
        });
        Telemetry {
            prometheus,
            inmem: inmem::Inmem::new(),
            host_in_gauge_names: (!settings.disable_hostname && !settings.enable_hostname_label).then(|| host.clone()),
            host_label: settings.enable_hostname_label.then(|| Label::new("host", host)),
        }
    }

    fn with_host<'k>(&self, key: &'k Key) -> std::borrow::Cow<'k, Key> {
        match &self.host_label {
            None => std::borrow::Cow::Borrowed(key),
            Some(host) => std::borrow::Cow::Owned(key.with_extra_labels(vec![host.clone()])),
        }
    }

    fn count(&self, key: &Key, n: u64) {
        let key = self.with_host(key);
        if let Some(p) = &self.prometheus {
            p.register_counter(&key, &METADATA).increment(n);
        }
        self.inmem.counter(&key, n as f64);
    }

    fn sample(&self, key: &Key, ms: f64) {
        let key = self.with_host(key);
        if let Some(p) = &self.prometheus {
            p.register_histogram(&key, &METADATA).record(ms);
        }
        self.inmem.sample(&key, ms);
    }

    /// A gauge's name: the host name after the first segment when
    /// `disable_hostname` is false (go-metrics' EnableHostname).
    fn gauge_name(&self, name: &str) -> String {
        match (&self.host_in_gauge_names, name.split_once('.')) {
            (Some(host), Some((service, rest))) => format!("{service}.{host}.{rest}"),
            _ => name.to_string(),
        }
    }

    fn gauges_with_host(&self, gauges: &[Gauge]) -> Vec<Gauge> {
        gauges
            .iter()
            .map(|g| {
                let mut labels = g.labels.clone();
                if let Some(host) = &self.host_label {
                    labels.push(("host", host.value().to_string()));
                }
                Gauge {
                    name: self.gauge_name(g.metric),
                    metric: g.metric,
                    labels,
                    value: g.value,
                }
            })
            .collect()
    }

    /// The Prometheus text exposition format: the recorder's counters and
    /// summaries, then `gauges`. None when Prometheus is off.
    pub fn prometheus(&self, gauges: &[Gauge]) -> Option<String> {
        let recorder = self.prometheus.as_ref()?;
        let mut out = recorder.handle().render();
        let gauges = self.gauges_with_host(gauges);
        render_gauges(&mut out, &gauges);
        Some(out)
    }

    /// Vault's JSON form (go-metrics' `InmemSink.DisplayMetrics`).
    pub fn json(&self, gauges: &[Gauge]) -> serde_json::Value {
        let gauges = self.gauges_with_host(gauges);
        self.inmem.display(&gauges, std::time::SystemTime::now())
    }
}

/// One gauge read at render time. `name` is the dotted name of
/// [`METRICS`]; label values are bounded and never secret.
#[derive(Debug, Clone, PartialEq)]
pub struct Gauge {
    /// As shown: [`Gauge::metric`], with the host name in it where
    /// `disable_hostname` is false.
    pub name: String,
    /// The name in [`METRICS`].
    pub metric: &'static str,
    pub labels: Vec<(&'static str, String)>,
    pub value: f64,
}

impl Gauge {
    pub fn new(name: &'static str, value: f64) -> Gauge {
        Gauge {
            name: name.to_string(),
            metric: name,
            labels: Vec::new(),
            value,
        }
    }

    pub fn label(mut self, key: &'static str, value: impl Into<String>) -> Gauge {
        self.labels.push((key, value.into()));
        self
    }
}

/// Gauges in the text format, grouped by name (a `# TYPE` line each, and
/// `# HELP` from [`METRICS`]).
fn render_gauges(out: &mut String, gauges: &[Gauge]) {
    use metrics_exporter_prometheus::formatting::{sanitize_description, sanitize_label_value, sanitize_metric_name};
    use std::fmt::Write;
    let mut by_name: std::collections::BTreeMap<String, Vec<&Gauge>> = Default::default();
    for g in gauges {
        by_name.entry(sanitize_metric_name(&g.name)).or_default().push(g);
    }
    for (name, series) in by_name {
        let help = series
            .first()
            .and_then(|g| METRICS.iter().find(|(n, ..)| *n == g.metric))
            .map(|(.., help)| *help);
        if let Some(help) = help {
            let _ = writeln!(out, "# HELP {name} {}", sanitize_description(help));
        }
        let _ = writeln!(out, "# TYPE {name} gauge");
        for g in series {
            out.push_str(&name);
            if !g.labels.is_empty() {
                out.push('{');
                for (i, (k, v)) in g.labels.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "{k}=\"{}\"", sanitize_label_value(v));
                }
                out.push('}');
            }
            let _ = writeln!(out, " {}", g.value);
        }
        out.push('\n');
    }
}

// ---- Events -------------------------------------------------------------

/// Run with `f` the closure over the sinks, if started.
fn with(f: impl FnOnce(&Telemetry)) {
    if let Some(t) = GLOBAL.get() {
        f(t);
    }
}

static HANDLE_REQUEST: Key = Key::from_static_name("vault.core.handle_request");

tokio::task_local! {
    /// The route template of the request this task serves, set by the
    /// framework when it resolves the path ([`matched`]).
    static ROUTE: Cell<Option<&'static str>>;
}

/// Serve one HTTP request with a place for its route label.
pub async fn scoped<F: Future>(request: F) -> F::Output {
    ROUTE.scope(Cell::new(None), request).await
}

/// The framework resolved the request's path to a declaration: `route` is
/// its label (the mount type and the templated pattern, such as
/// `database/creds/{name}`). The first declaration a request resolves wins.
pub fn matched(route: &'static str) {
    let _ = ROUTE.try_with(|r| {
        if r.get().is_none() {
            r.set(Some(route));
        }
    });
}

/// The route template of the request this task serves (`unresolved` when
/// no declaration served it): what the request log names instead of the
/// raw path.
pub fn current_route() -> &'static str {
    ROUTE.try_with(|r| r.get()).ok().flatten().unwrap_or("unresolved")
}

/// The route label of a declaration's pattern in a backend of type `kind`:
/// made once per declaration (backends are built once per process).
pub fn route_label(kind: &str, template: &str) -> &'static str {
    Box::leak(format!("{kind}/{template}").into_boxed_str())
}

/// An HTTP method as a label: the ones Vault serves, else OTHER (a client
/// picks the method; the label must stay bounded).
fn method_label(method: &str) -> &'static str {
    const KNOWN: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "LIST", "OPTIONS"];
    KNOWN.iter().find(|m| **m == method).copied().unwrap_or("OTHER")
}

/// A request was answered with `status` after `elapsed`. Called inside
/// [`scoped`]; a request no declaration served (refused before routing:
/// sealed, bad token, no such path) has the route `unresolved`.
pub fn request(method: &str, status: u16, elapsed: Duration) {
    with(|t| {
        let route = ROUTE.try_with(|r| r.get()).ok().flatten().unwrap_or("unresolved");
        let method = Label::from_static_parts("method", method_label(method));
        let route = Label::from_static_parts("route", route);
        let ms = elapsed.as_secs_f64() * 1000.0;
        t.sample(&HANDLE_REQUEST, ms);
        let code = Label::new("code", status.to_string());
        t.count(
            &Key::from_parts("warden.http.requests", vec![method.clone(), route.clone(), code]),
            1,
        );
        t.sample(
            &Key::from_parts("warden.http.request_duration", vec![method, route]),
            ms,
        );
    });
}

/// A secret with a lease was issued through the mount at `mount_point`
/// (its full path, namespace included) of engine type `engine`.
pub fn lease_created(mount_point: &str, engine: &str) {
    with(|t| {
        let labels = vec![
            Label::new("mount_point", mount_point.to_string()),
            Label::new("secret_engine", engine.to_string()),
        ];
        t.count(&Key::from_parts("vault.secret.lease.creation", labels), 1);
    });
}

/// A leased secret of the mount at `mount_point` was revoked.
pub fn lease_revoked(mount_point: &str) {
    with(|t| {
        let labels = vec![Label::new("mount_point", mount_point.to_string())];
        t.count(&Key::from_parts("warden.secret.lease.revocation", labels), 1);
    });
}

/// A storage operation through the barrier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageOp {
    Get,
    Put,
    Delete,
    List,
    Batch,
    Scan,
}

static BARRIER: [Key; 6] = [
    Key::from_static_name("vault.barrier.get"),
    Key::from_static_name("vault.barrier.put"),
    Key::from_static_name("vault.barrier.delete"),
    Key::from_static_name("vault.barrier.list"),
    Key::from_static_name("warden.barrier.batch"),
    Key::from_static_name("warden.barrier.scan"),
];

/// Times what runs until it is dropped (a failed operation counts too).
pub struct Timer {
    key: &'static Key,
    started: Instant,
}

impl Drop for Timer {
    fn drop(&mut self) {
        let ms = self.started.elapsed().as_secs_f64() * 1000.0;
        with(|t| t.sample(self.key, ms));
    }
}

/// Time one storage operation: `let _timer = telemetry::storage(Get);`.
pub fn storage(op: StorageOp) -> Option<Timer> {
    GLOBAL.get()?;
    Some(Timer {
        key: &BARRIER[op as usize],
        started: Instant::now(),
    })
}

/// Why the sandbox stopped a component call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kill {
    /// Its deadline passed (the epoch interrupt, or the call's timeout).
    Epoch,
    /// It grew its memory past the limit.
    Memory,
    /// Any other trap.
    Trap,
}

/// The sandbox stopped a call of `component`.
pub fn component_killed(component: &str, why: Kill) {
    with(|t| {
        let reason = match why {
            Kill::Epoch => "epoch",
            Kill::Memory => "memory",
            Kill::Trap => "trap",
        };
        let labels = vec![
            Label::new("component", component.to_string()),
            Label::from_static_parts("reason", reason),
        ];
        t.count(&Key::from_parts("warden.runtime.kills", labels), 1);
    });
}

/// Live instances by component name.
static INSTANCES: LazyLock<Mutex<HashMap<String, Arc<AtomicI64>>>> = LazyLock::new(Default::default);

/// Counts one live instance of a component until dropped.
pub struct Live(Arc<AtomicI64>);

impl Drop for Live {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A new instance of `component`: hold the guard as long as it lives.
pub fn component_instance(component: &str) -> Live {
    let mut all = INSTANCES.lock().unwrap_or_else(|p| p.into_inner());
    let count = all.entry(component.to_string()).or_default().clone();
    count.fetch_add(1, Ordering::Relaxed);
    Live(count)
}

/// HA as the HA work reports it: whether this node is active, and the
/// lock's epoch.
static HA_KNOWN: AtomicBool = AtomicBool::new(false);
static HA_ACTIVE: AtomicBool = AtomicBool::new(false);
static HA_EPOCH: AtomicI64 = AtomicI64::new(0);

/// Report this node's HA state (`vault.core.active`, `warden.ha.lock_epoch`
/// appear once this was called).
pub fn set_ha_state(active: bool, epoch: i64) {
    HA_ACTIVE.store(active, Ordering::Relaxed);
    HA_EPOCH.store(epoch, Ordering::Relaxed);
    HA_KNOWN.store(true, Ordering::Relaxed);
}

/// The gauges this module keeps itself: live instances by component, and
/// the HA state once reported.
pub fn own_gauges() -> Vec<Gauge> {
    let mut out: Vec<Gauge> = INSTANCES
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|(name, n)| {
            Gauge::new("warden.runtime.instances", n.load(Ordering::Relaxed) as f64).label("component", name.clone())
        })
        .collect();
    if HA_KNOWN.load(Ordering::Relaxed) {
        out.push(Gauge::new(
            "vault.core.active",
            f64::from(u8::from(HA_ACTIVE.load(Ordering::Relaxed))),
        ));
        out.push(Gauge::new(
            "warden.ha.lock_epoch",
            HA_EPOCH.load(Ordering::Relaxed) as f64,
        ));
    }
    out
}

/// Why a format cannot be rendered (Vault's 400 texts).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RenderError {
    #[error("prometheus is not enabled")]
    PrometheusOff,
    #[error("metric response format \"{0}\" unknown")]
    UnknownFormat(String),
    #[error("telemetry is not started")]
    NotStarted,
}

/// The content type of the Prometheus text format (Vault's, expfmt's).
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What `sys/metrics` answers: `format` "prometheus" (the text format) or
/// "" (Vault's JSON), with `gauges` read by the caller.
pub enum Rendered {
    Prometheus(String),
    Json(serde_json::Value),
}

pub fn render(format: &str, gauges: &[Gauge]) -> Result<Rendered, RenderError> {
    let t = GLOBAL.get().ok_or(RenderError::NotStarted)?;
    let mut all = own_gauges();
    all.extend_from_slice(gauges);
    match format {
        "prometheus" => t
            .prometheus(&all)
            .map(Rendered::Prometheus)
            .ok_or(RenderError::PrometheusOff),
        "" => Ok(Rendered::Json(t.json(&all))),
        other => Err(RenderError::UnknownFormat(other.to_string())),
    }
}

/// Vault's `metricsutil.FormatFromRequest`: an Accept header asking for
/// OpenMetrics or `prometheus/telemetry` means the Prometheus format.
pub fn format_from_accept(accept: &str) -> Option<&'static str> {
    (accept.starts_with("application/openmetrics-text") || accept.contains("prometheus/telemetry"))
        .then_some("prometheus")
}

#[cfg(test)]
mod tests;
