use super::*;

fn on() -> Settings {
    Settings {
        prometheus_retention: Duration::from_secs(3600),
        disable_hostname: true,
        enable_hostname_label: false,
    }
}

#[test]
fn prometheus_renders_counters_summaries_and_gauges() {
    let t = Telemetry::new(&on(), "node-1".into());
    let key = Key::from_parts(
        "warden.http.requests",
        vec![Label::new("route", "database/creds/{name}"), Label::new("code", "200")],
    );
    t.count(&key, 1);
    t.count(&key, 2);
    for ms in [1.0, 2.0, 3.0] {
        t.sample(&HANDLE_REQUEST, ms);
    }
    t.sample(&BARRIER[StorageOp::Batch as usize], 0.3);
    let gauges = [Gauge::new("warden.expire.num_leases", 4.0).label("mount_point", "a \"b\"\n/")];
    let text = t.prometheus(&gauges).unwrap();
    assert!(text.contains("# TYPE warden_http_requests counter"), "{text}");
    assert!(
        text.contains("warden_http_requests{route=\"database/creds/{name}\",code=\"200\"} 3"),
        "{text}"
    );
    assert!(text.contains("# TYPE vault_core_handle_request summary"), "{text}");
    assert!(text.contains("vault_core_handle_request{quantile=\"0.99\"}"), "{text}");
    assert!(text.contains("vault_core_handle_request_count 3"), "{text}");
    assert!(text.contains("vault_core_handle_request_sum 6"), "{text}");
    assert!(
        text.contains("# HELP vault_core_handle_request Time to handle"),
        "{text}"
    );
    assert!(text.contains("# TYPE warden_expire_num_leases gauge"), "{text}");
    // Warden's own timers are histograms.
    assert!(text.contains("# TYPE warden_barrier_batch histogram"), "{text}");
    assert!(text.contains("warden_barrier_batch_bucket{le=\"0.25\"} 0"), "{text}");
    assert!(text.contains("warden_barrier_batch_bucket{le=\"0.5\"} 1"), "{text}");
    assert!(text.contains("warden_barrier_batch_count 1"), "{text}");
    assert!(
        text.contains("warden_expire_num_leases{mount_point=\"a \\\"b\\\"\\n/\"} 4"),
        "{text}"
    );
    // The same events in the JSON form.
    let json = t.json(&gauges);
    assert_eq!(json["Counters"][0]["Name"], "warden.http.requests");
    assert_eq!(json["Counters"][0]["Sum"], 3.0);
    assert_eq!(json["Samples"][0]["Name"], "vault.core.handle_request");
    assert_eq!(json["Samples"][0]["Mean"], 2.0);
    assert_eq!(json["Samples"][1]["Name"], "warden.barrier.batch");
    assert_eq!(json["Gauges"][0]["Value"], 4.0);
}

#[test]
fn prometheus_off_renders_nothing_but_json_still_works() {
    let t = Telemetry::new(&Settings::default(), "node-1".into());
    t.count(&Key::from_static_name("warden.http.requests"), 1);
    assert_eq!(t.prometheus(&[]), None);
    assert_eq!(t.json(&[])["Counters"][0]["Count"], 1);
}

#[test]
fn the_host_name_goes_in_gauge_names_or_in_a_label_as_vault_puts_it() {
    let gauges = [Gauge::new("vault.core.unsealed", 1.0)];
    let named = Telemetry::new(
        &Settings {
            disable_hostname: false,
            ..on()
        },
        "web-1.example".into(),
    );
    let text = named.prometheus(&gauges).unwrap();
    assert!(text.contains("vault_web_1_example_core_unsealed 1"), "{text}");
    assert!(
        text.contains("# HELP vault_web_1_example_core_unsealed 1 when"),
        "{text}"
    );
    assert_eq!(
        named.json(&gauges)["Gauges"][0]["Name"],
        "vault.web-1.example.core.unsealed"
    );
    let labelled = Telemetry::new(
        &Settings {
            disable_hostname: false,
            enable_hostname_label: true,
            ..on()
        },
        "web-1".into(),
    );
    labelled.count(&Key::from_static_name("warden.http.requests"), 1);
    let text = labelled.prometheus(&gauges).unwrap();
    assert!(text.contains("vault_core_unsealed{host=\"web-1\"} 1"), "{text}");
    assert!(text.contains("warden_http_requests{host=\"web-1\"} 1"), "{text}");
    let plain = Telemetry::new(&on(), "web-1".into()).prometheus(&gauges).unwrap();
    assert!(plain.contains("\nvault_core_unsealed 1\n"), "{plain}");
}

#[test]
fn labels_stay_bounded() {
    assert_eq!(method_label("GET"), "GET");
    assert_eq!(method_label("LIST"), "LIST");
    assert_eq!(method_label("BREW"), "OTHER");
    assert_eq!(route_label("database", "creds/{name}"), "database/creds/{name}");
}

#[tokio::test]
async fn the_first_resolved_route_is_the_requests() {
    let seen = scoped(async {
        matched("database/creds/{name}");
        matched("system/leases/revoke");
        ROUTE.with(|r| r.get())
    })
    .await;
    assert_eq!(seen, Some("database/creds/{name}"));
    // Outside a request: nothing happens.
    matched("x");
}

#[test]
fn accept_headers_that_ask_for_prometheus() {
    assert_eq!(
        format_from_accept("application/openmetrics-text;version=1.0.0,text/plain;q=0.5"),
        Some("prometheus")
    );
    assert_eq!(format_from_accept("prometheus/telemetry"), Some("prometheus"));
    assert_eq!(format_from_accept("application/json"), None);
}

#[test]
fn component_instances_are_counted_while_alive() {
    let a = component_instance("telemetry-test-component");
    let b = component_instance("telemetry-test-component");
    let count = || {
        own_gauges()
            .into_iter()
            .find(|g| g.labels == [("component", "telemetry-test-component".to_string())])
            .map(|g| g.value)
    };
    assert_eq!(count(), Some(2.0));
    drop(a);
    assert_eq!(count(), Some(1.0));
    drop(b);
    assert_eq!(count(), Some(0.0));
}

/// docs/operations.md lists every metric of [`METRICS`].
#[test]
fn every_metric_is_documented() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/operations.md");
    let doc = std::fs::read_to_string(path).unwrap();
    let missing: Vec<&str> = METRICS
        .iter()
        .map(|(name, ..)| *name)
        .filter(|name| !doc.contains(&format!("`{}`", name.replace('.', "_"))))
        .collect();
    assert!(
        missing.is_empty(),
        "metrics missing from docs/operations.md: {missing:?}"
    );
}
