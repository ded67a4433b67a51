//! Routing and field parsing, without HTTP or handlers: for every declared
//! path of the database engine, the legacy mongodb engine and sys/, how
//! long the framework takes to pick the declaration and convert a typical
//! body into typed fields (`Backend::resolve`). Prints ns per request (p50,
//! p99) per path; the target is under 5 µs p50 for `creds/:name`.
//!
//!     cargo run --release -p warden-tests --bin routing_bench [ROUNDS]

use serde_json::{Map, Value, json};
use std::time::Instant;
use warden::framework::{Backend, openapi::templated_paths};

fn body_for(path: &str) -> Map<String, Value> {
    let v = if path.starts_with("roles/") {
        json!({"db_name": "pg", "creation_statements": ["CREATE ROLE \"{{name}}\""], "default_ttl": "1h", "max_ttl": 86400})
    } else if path.starts_with("config/") {
        json!({"plugin_name": "postgresql-database-plugin", "connection_url": "postgresql://{{username}}:{{password}}@h/db", "allowed_roles": "a,b"})
    } else {
        json!({})
    };
    v.as_object().cloned().unwrap_or_default()
}

fn measure<B>(label: &str, backend: &Backend<B>, rounds: usize) -> Vec<(String, u128, u128)> {
    let mut rows = Vec::new();
    for p in backend.describe().paths {
        for templated in templated_paths(&p) {
            let concrete = templated.replace("{", "x").replace("}", "");
            let body = body_for(&concrete);
            let mut samples = Vec::with_capacity(rounds);
            for _ in 0..rounds {
                let began = Instant::now();
                let resolved = backend.resolve(&concrete, &body);
                std::hint::black_box(&resolved);
                samples.push(began.elapsed().as_nanos());
                drop(resolved);
            }
            samples.sort_unstable();
            let p50 = samples[samples.len() / 2];
            let p99 = samples[samples.len() * 99 / 100];
            rows.push((format!("{label}{templated}"), p50, p99));
        }
    }
    rows
}

fn main() {
    let rounds: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let mut rows = measure("db/", &warden::engines::database::paths::BACKEND, rounds);
    rows.extend(measure("mongodb/", &warden::engines::mongodb::BACKEND, rounds));
    rows.extend(measure("sys/", &warden::system::BACKEND, rounds));
    println!("routing + field parsing, {rounds} rounds per path");
    println!("{:<48} {:>8} {:>8}", "path", "p50 ns", "p99 ns");
    for (path, p50, p99) in &rows {
        println!("{path:<48} {p50:>8} {p99:>8}");
    }
    if let Some((_, p50, _)) = rows.iter().find(|(p, _, _)| p == "db/creds/{name}") {
        println!("creds path p50: {p50} ns (target: under 5000 ns)");
    }
}
