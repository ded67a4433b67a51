//! How long one ACL check takes: builds an ACL of 100 rules across 3
//! policies (exact, `*` prefix and `+` segment-wildcard patterns, the
//! default policy's shapes among them), then times `Acl::allow` on a few
//! representative requests and prints nanoseconds per check (p50, p99).
//! It only prints: time is not asserted, since machines differ.
//!
//! Run: `cargo run --release -p warden-acl --bin acl_bench`

use serde_json::{Map, Value, json};
use std::hint::black_box;
use std::time::Instant;
use warden_acl::{Acl, Operation, Policy, Request};

/// Checks per timed sample: long enough for the clock, short enough to
/// give many samples.
const BATCH: u32 = 200;
const SAMPLES: usize = 2_000;

fn policies() -> Vec<Policy> {
    let mut texts = [String::new(), String::new(), String::new()];
    let mut rules = 0;
    let mut add = |p: usize, text: String| {
        texts[p].push_str(&text);
        rules += 1;
    };
    // 40 exact rules
    for i in 0..40 {
        add(
            i % 3,
            format!("path \"secret/data/app{i}/config\" {{ capabilities = [\"read\", \"update\"] }}\n"),
        );
    }
    // 30 prefix rules at varied depths
    for i in 0..30 {
        let caps = if i % 7 == 0 { "\"deny\"" } else { "\"read\", \"list\"" };
        add(
            i % 3,
            format!("path \"kv{}/team{i}/*\" {{ capabilities = [{caps}] }}\n", i % 4),
        );
    }
    // 25 segment-wildcard rules, some ending in a glob
    for i in 0..25 {
        let glob = if i % 2 == 0 { "*" } else { "" };
        add(
            i % 3,
            format!(
                "path \"db{}/+/creds/role{i}{glob}\" {{ capabilities = [\"read\"] }}\n",
                i % 3
            ),
        );
    }
    // 5 rules with parameter constraints
    for i in 0..5 {
        add(
            i % 3,
            format!(
                "path \"sys/policies/acl/p{i}\" {{\n  capabilities = [\"create\", \"update\"]\n  \
                 allowed_parameters = {{ \"policy\" = [], \"name\" = [\"team-*\"] }}\n  \
                 denied_parameters = {{ \"root\" = [] }}\n}}\n"
            ),
        );
    }
    assert_eq!(rules, 100, "the benchmark's rule count");
    texts
        .iter()
        .enumerate()
        .map(|(i, t)| Policy::parse(&format!("bench{i}"), t).unwrap_or_else(|e| panic!("bench policy {i}: {e}")))
        .collect()
}

fn main() {
    let policies = policies();
    let built = Instant::now();
    let acl = Acl::new(&policies).unwrap_or_else(|e| panic!("acl: {e}"));
    println!(
        "ACL of {} merged rules from {} policies built in {:?}",
        acl.rules().len(),
        policies.len(),
        built.elapsed()
    );

    let params: Map<String, Value> = match json!({"policy": "path \"x\" {}", "name": "team-blue"}) {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    let cases: Vec<(&str, Request<'_>)> = vec![
        ("exact hit", Request::new(Operation::Read, "secret/data/app17/config")),
        ("prefix hit", Request::new(Operation::Read, "kv1/team13/some/deep/key")),
        ("prefix deny", Request::new(Operation::Read, "kv0/team7/x")),
        (
            "segment (+) hit",
            Request::new(Operation::Read, "db1/mysql/creds/role10"),
        ),
        (
            "segment glob hit",
            Request::new(Operation::Read, "db2/pg/creds/role14-extra"),
        ),
        ("LIST trailing /", Request::new(Operation::List, "kv2/team2/dir/")),
        ("miss", Request::new(Operation::Read, "nothing/here/at/all")),
        (
            "params checked",
            Request::new(Operation::Update, "sys/policies/acl/p3").data(&params),
        ),
    ];

    println!("{:<18} {:>9} {:>9}  allowed", "case", "p50 ns", "p99 ns");
    for (name, request) in &cases {
        let allowed = acl.allow(request).allowed;
        // warm up
        for _ in 0..10_000 {
            black_box(acl.allow(black_box(request)).allowed);
        }
        let mut per_check: Vec<f64> = (0..SAMPLES)
            .map(|_| {
                let start = Instant::now();
                for _ in 0..BATCH {
                    black_box(acl.allow(black_box(request)).allowed);
                }
                start.elapsed().as_nanos() as f64 / f64::from(BATCH)
            })
            .collect();
        per_check.sort_by(f64::total_cmp);
        let at = |q: f64| per_check[((per_check.len() - 1) as f64 * q) as usize];
        println!("{name:<18} {:>9.1} {:>9.1}  {allowed}", at(0.50), at(0.99));
    }
}
