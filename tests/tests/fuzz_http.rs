//! The HTTP fuzzer (issue 11, "keep the probes"): a real `warden server -dev`
//! with a real PostgreSQL behind a database mount, a dynamic role, a static
//! role on a real login, a second connection for rotate-root, a password
//! policy and a legacy `mongodb` mount, then about 20,000 seeded hostile
//! requests from a few concurrent clients to every path family (see
//! warden_tests::fuzz for what is sent and checked). Between rounds the world
//! is repaired (mounts, connections, roles re-written; leases revoked) so
//! that the fuzzing keeps reaching real database work.
//!
//! Fails on: a request without a complete answer within 5 s, a connection
//! closed without an answer, an error without a `{"errors":[...]}` body, a
//! 5xx outside warden_tests::fuzz::ALLOWED_500, "panicked" in the server's
//! log, a server that died, or resident memory that grew past a bound after
//! warm-up. Each distinct failure prints one reproduction.
//!
//! Knobs: WARDEN_FUZZ_SEED (a number, or `random`; the default is fixed so
//! CI runs the same requests), WARDEN_FUZZ_REQUESTS (20000),
//! WARDEN_FUZZ_CLIENTS (4), WARDEN_FUZZ_SECS (the wall-time budget of the
//! fuzzing, 150), WARDEN_FUZZ_SKIP (comma-separated path families to leave
//! out, such as `sys/unseal`, to see past a known failure). Requests that reuse lease ids seen in answers depend on
//! timing, so a seed repeats a run closely, not exactly.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::{Value, json};
use sqlx::Connection;
use warden_tests::fuzz::{self, FuzzRequest, Generator, LeasePool, Outcome, Tally, World};
use warden_tests::util::{free_port, random_alnum};
use warden_tests::{CREATE_ROLE, Client, DbEnv, Scratch, bench};

/// Every request must be answered within this.
const HANG: Duration = Duration::from_secs(5);
/// Requests per round (then the world is repaired).
const ROUND: u64 = 1000;
/// Stop early after this many hangs or dropped connections.
const FATAL_CAP: u64 = 20;
/// Bound of one request of the repair step (it revokes leases).
const REPAIR_LIMIT: Duration = Duration::from_secs(30);
/// Default seed: fixed, so CI sends the same requests every run.
const DEFAULT_SEED: u64 = 0x5EED_2026_1203;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

fn seed() -> u64 {
    match std::env::var("WARDEN_FUZZ_SEED") {
        Ok(v) if v.trim() == "random" => warden_tests::util::unique_u64(),
        Ok(v) => v.trim().parse().unwrap_or(DEFAULT_SEED),
        Err(_) => DEFAULT_SEED,
    }
}

/// Logins the world needs, made as the scratch database's admin.
async fn create_login(scratch: &Scratch, label: &str, password: &str) -> Result<String> {
    let name = format!("fz_{label}_{}", random_alnum(6));
    let mut admin = scratch.connect_as(&scratch.admin_user, &scratch.admin_password).await?;
    sqlx::raw_sql(&format!("CREATE ROLE \"{name}\" WITH LOGIN PASSWORD '{password}'"))
        .execute(&mut admin)
        .await
        .with_context(|| format!("create login {name}"))?;
    admin.close().await.ok();
    Ok(name)
}

/// The repair step's requests: bounded like the fuzz's (but longer: it
/// revokes leases), each problem noted.
struct Repair<'a> {
    client: &'a Client,
    notes: Vec<String>,
    /// A request went unanswered: the server is stuck, stop asking.
    stuck: bool,
}

impl Repair<'_> {
    async fn req(&mut self, method: &str, path: &str, body: Option<Value>) -> Option<(u16, Value)> {
        if self.stuck {
            return None;
        }
        match tokio::time::timeout(REPAIR_LIMIT, self.client.req(method, path, body)).await {
            Ok(Ok(answer)) => Some(answer),
            Ok(Err(e)) => {
                self.notes.push(format!("repair: {method} {path}: {e:#}"));
                None
            }
            Err(_) => {
                self.notes.push(format!(
                    "repair: {method} {path}: no answer within {}s",
                    REPAIR_LIMIT.as_secs()
                ));
                self.stuck = true;
                None
            }
        }
    }

    /// Send and note anything but one of `ok`.
    async fn want(&mut self, method: &str, path: &str, body: Option<Value>, ok: &[u16]) -> Option<Value> {
        let (status, answer) = self.req(method, path, body).await?;
        if !ok.contains(&status) {
            let text = answer.to_string();
            self.notes.push(format!(
                "repair: {method} {path}: {status} {}",
                &text[..text.len().min(300)]
            ));
        }
        Some(answer)
    }
}

/// Put the world back as the fuzz expects it: the mounts with their
/// types and default TTLs, the connections, roles and policy, and no leases
/// left (so that revocation work stays bounded). Returns notes on what did
/// not go as expected, and whether the server stopped answering.
async fn repair(env: &DbEnv, world: &World, rot_password: &str) -> (Vec<String>, bool) {
    let mut r = Repair {
        client: &env.client,
        notes: Vec::new(),
        stuck: false,
    };
    for (mount, kind) in [("db", "database"), ("mongodb", "mongodb")] {
        let current = r.req("GET", &format!("/v1/sys/mounts/{mount}"), None).await;
        let ty = current
            .as_ref()
            .and_then(|(s, b)| (*s == 200).then(|| b["data"]["type"].clone()));
        if ty.as_ref().and_then(Value::as_str) != Some(kind) {
            if ty.is_some() {
                r.want("DELETE", &format!("/v1/sys/mounts/{mount}"), None, &[204]).await;
            }
            r.want(
                "POST",
                &format!("/v1/sys/mounts/{mount}"),
                Some(json!({"type": kind})),
                &[204],
            )
            .await;
        }
        r.want(
            "POST",
            &format!("/v1/sys/mounts/{mount}/tune"),
            Some(json!({"default_lease_ttl": 0, "max_lease_ttl": 0})),
            &[204],
        )
        .await;
    }
    r.want(
        "POST",
        "/v1/sys/policies/password/fuzzpol",
        Some(json!({"policy": "length = 24\nrule \"charset\" {\n  charset = \"abcdefghijklmnopqrstuvwxyz0123456789\"\n  min-chars = 1\n}\n"})),
        &[204],
    )
    .await;
    r.want(
        "POST",
        "/v1/db/config/pg",
        Some(json!({
            "plugin_name": "postgresql-database-plugin",
            "connection_url": world.pg_url,
            "username": world.admin_user,
            "password": world.admin_password,
            "allowed_roles": ["*"],
        })),
        &[204],
    )
    .await;
    // The fuzz runs real statements: rot's password may have been rotated,
    // and a statement such as `DROP ROLE "{{name}}"` as a static role's
    // rotation or rot's root rotation may have dropped a login. Make them
    // again where needed and set rot's password back.
    match env.scratch.connect_as(&world.admin_user, &world.admin_password).await {
        Ok(mut admin) => {
            let mut sql = String::new();
            for user in world.static_users.iter().chain([&world.rot_user]) {
                sql += &format!(
                    "DO $$ BEGIN CREATE ROLE \"{user}\" WITH LOGIN; \
                     EXCEPTION WHEN duplicate_object THEN NULL; END $$;"
                );
            }
            sql += &format!("ALTER ROLE \"{}\" WITH PASSWORD '{rot_password}';", world.rot_user);
            if let Err(e) = sqlx::raw_sql(&sql).execute(&mut admin).await {
                r.notes.push(format!("repair: re-create the logins: {e}"));
            }
            admin.close().await.ok();
        }
        Err(e) => r.notes.push(format!("repair: connect as the scratch admin: {e}")),
    }
    r.want(
        "POST",
        "/v1/db/config/rot",
        Some(json!({
            "plugin_name": "postgresql-database-plugin",
            "connection_url": world.pg_url,
            "username": world.rot_user,
            "password": rot_password,
            "allowed_roles": ["*"],
        })),
        &[204],
    )
    .await;
    r.want(
        "POST",
        "/v1/db/roles/dyn",
        Some(json!({
            "db_name": "pg",
            "creation_statements": [CREATE_ROLE],
            "default_ttl": "1h",
            "max_ttl": "24h",
            "credential_config": {"password_policy": "fuzzpol"},
        })),
        &[204],
    )
    .await;
    // The static role on the first static login: re-written if it still
    // manages that login, else made again (which rotates its password).
    let stat_user = &world.static_users[0];
    let current = r.req("GET", "/v1/db/static-roles/stat", None).await;
    let same_user = matches!(&current, Some((200, b)) if b["data"]["username"].as_str() == Some(stat_user));
    if !same_user {
        r.want("DELETE", "/v1/db/roles/stat", None, &[204]).await;
        r.want("DELETE", "/v1/db/static-roles/stat", None, &[204]).await;
    }
    r.want(
        "POST",
        "/v1/db/static-roles/stat",
        Some(json!({"db_name": "pg", "username": stat_user, "rotation_period": "1h"})),
        &[204],
    )
    .await;
    // Outstanding leases: revoked, which drops their users for real. A
    // lease whose connection the fuzz deleted cannot be (Vault cannot
    // either): those are forced out, so leases never pile up.
    if !matches!(
        r.req("PUT", "/v1/sys/leases/revoke-prefix/db/creds", None).await,
        Some((204, _))
    ) {
        r.want("PUT", "/v1/sys/leases/revoke-force/db/creds", None, &[204])
            .await;
    }
    r.want("PUT", "/v1/sys/leases/revoke-force/mongodb/creds", None, &[204])
        .await;
    r.want(
        "POST",
        "/v1/mongodb/config/connection",
        Some(json!({"url": world.closed_mongo_url, "verify_connection": false})),
        &[200, 204],
    )
    .await;
    r.want(
        "POST",
        "/v1/mongodb/config/lease",
        Some(json!({"lease": "1h", "lease_max": "24h"})),
        &[204],
    )
    .await;
    r.want(
        "POST",
        "/v1/mongodb/roles/app",
        Some(json!({"db": "admin", "roles": "[\"readWrite\"]"})),
        &[204],
    )
    .await;
    (r.notes, r.stuck)
}

/// One client's share of a round.
async fn client_run(
    addr: String,
    root: String,
    mut generator: Generator,
    n: u64,
    leases: LeasePool,
    deadline: Instant,
    fatal: Arc<AtomicU64>,
) -> Tally {
    let mut tally = Tally::redacting(vec![generator.world().admin_password.clone()]);
    for _ in 0..n {
        if Instant::now() >= deadline || fatal.load(Ordering::Relaxed) >= FATAL_CAP {
            break;
        }
        let req: FuzzRequest = generator.next_request();
        let outcome = fuzz::send(&addr, &root, &req, HANG).await;
        if let Outcome::Answered { status: 200, body, .. } = &outcome
            && let Ok(v) = serde_json::from_slice::<Value>(body)
            && let Some(id) = v["lease_id"].as_str().filter(|id| !id.is_empty())
        {
            leases.add(id.to_string());
        }
        if matches!(outcome, Outcome::Hang | Outcome::Dropped(_) | Outcome::Refused(_)) {
            fatal.fetch_add(1, Ordering::Relaxed);
        }
        tally.check(&req, &outcome);
    }
    tally
}

/// "panicked at" lines of the server's log with the message after each,
/// distinct by location.
fn panics_in_log(log: &str) -> Vec<String> {
    let lines: Vec<&str> = log.lines().collect();
    let mut seen = std::collections::BTreeMap::new();
    for (i, line) in lines.iter().enumerate() {
        if let Some(at) = line.find("panicked at ") {
            let location = line[at..].trim_end_matches(':').to_string();
            let message = lines.get(i + 1).copied().unwrap_or("").to_string();
            seen.entry(location).or_insert((message, 0u64)).1 += 1;
        }
    }
    seen.into_iter()
        .map(|(location, (message, n))| format!("{location} ({n}x): {message}"))
        .collect()
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fuzz_every_path_family() -> Result<()> {
    let seed = seed();
    let total = env_u64("WARDEN_FUZZ_REQUESTS", 20_000);
    let clients = env_u64("WARDEN_FUZZ_CLIENTS", 4).max(1);
    let budget = Duration::from_secs(env_u64("WARDEN_FUZZ_SECS", 150));
    let skip: Vec<String> = std::env::var("WARDEN_FUZZ_SKIP")
        .unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if !skip.is_empty() {
        println!("fuzz_http: leaving out the path families {skip:?} (WARDEN_FUZZ_SKIP)");
    }
    println!(
        "fuzz_http: seed {seed} (WARDEN_FUZZ_SEED={seed} repeats it), {total} requests, {clients} clients, \
         budget {}s",
        budget.as_secs()
    );

    let mut env = DbEnv::start("fuzz", &["*"]).await?;
    let rot_password = format!("rot-{}", random_alnum(16));
    let rot_user = create_login(&env.scratch, "rot", &rot_password).await?;
    let static_users = vec![
        create_login(&env.scratch, "stat", &random_alnum(16)).await?,
        create_login(&env.scratch, "stat2", &random_alnum(16)).await?,
    ];
    let closed = free_port()?;
    let world = Arc::new(World {
        pg_url: env.scratch.connection_url_template(),
        closed_pg_url: format!(
            "postgresql://{{{{username}}}}:{{{{password}}}}@127.0.0.1:{closed}/{}",
            env.scratch.database
        ),
        closed_mongo_url: format!(
            "mongodb://fz:fz@127.0.0.1:{closed}/admin?serverSelectionTimeoutMS=300&connectTimeoutMS=300"
        ),
        admin_user: env.scratch.admin_user.clone(),
        admin_password: env.scratch.admin_password.clone(),
        rot_user,
        static_users,
    });
    let (setup_notes, _) = repair(&env, &world, &rot_password).await;
    anyhow::ensure!(
        setup_notes.is_empty(),
        "setting up the fuzz world failed:\n{}",
        setup_notes.join("\n")
    );

    let pid = env.server.pid().context("the server's pid")?;
    let addr = env.server.addr().to_string();
    let root = env.server.root_token().to_string();
    let leases = LeasePool::default();
    let fatal = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + budget;
    let mut tally = Tally::default();
    let mut repair_notes: Vec<String> = Vec::new();
    let mut rss_warm: Option<u64> = None;
    let mut rss_samples = Vec::new();
    let mut round = 0u64;
    let mut sent = 0u64;
    let mut stuck: Option<String> = None;

    while sent < total && Instant::now() < deadline && fatal.load(Ordering::Relaxed) < FATAL_CAP {
        round += 1;
        let n = ROUND.min(total - sent);
        sent += n;
        let mut tasks = Vec::new();
        for c in 0..clients {
            let share = n / clients + u64::from(c < n % clients);
            let generator = Generator::new(seed, round, c, world.clone(), leases.clone()).skipping(&skip);
            tasks.push(tokio::spawn(client_run(
                addr.clone(),
                root.clone(),
                generator,
                share,
                leases.clone(),
                deadline,
                fatal.clone(),
            )));
        }
        for task in tasks {
            tally.merge(task.await.context("a fuzz client panicked")?);
        }
        if !env.server.is_running() {
            break;
        }
        // A server that no longer answers (a deadlock) ends the fuzzing:
        // every further request would only wait out its bound.
        let probe = FuzzRequest {
            family: "probe".into(),
            method: "GET".into(),
            target: "/v1/sys/mounts".into(),
            token: Some(b"<root>".to_vec()),
            headers: Vec::new(),
            body: Vec::new(),
            framing: fuzz::Framing::Exact,
            origin: format!("the check after round {round}"),
        };
        if !matches!(fuzz::send(&addr, &root, &probe, HANG).await, Outcome::Answered { .. }) {
            stuck = Some(format!(
                "after round {round}, GET /v1/sys/mounts got no answer within {}s",
                HANG.as_secs()
            ));
            break;
        }
        leases.clear();
        let (notes, repair_stuck) = repair(&env, &world, &rot_password).await;
        repair_notes.extend(notes.into_iter().map(|n| format!("round {round}: {n}")));
        if repair_stuck {
            stuck = Some(format!("the repair after round {round} got no answer (see the notes)"));
            break;
        }
        if let Some(rss) = bench::rss_kib(pid) {
            rss_samples.push(rss);
            // Warm-up: the first two rounds (pools, caches, compiled
            // components, allocator arenas).
            if round == 2 {
                rss_warm = Some(rss);
            }
        }
    }
    let elapsed = started.elapsed();
    let alive = env.server.is_running();
    let rss_end = bench::rss_kib(pid);

    // The report.
    println!(
        "fuzz_http: {} requests in {:.1}s ({:.0} requests/s), {round} rounds; seed {seed}",
        tally.requests,
        elapsed.as_secs_f64(),
        tally.requests as f64 / elapsed.as_secs_f64().max(0.001)
    );
    if tally.requests < total {
        println!(
            "fuzz_http: stopped before {total} requests (budget {}s, or {FATAL_CAP} hangs/drops)",
            budget.as_secs()
        );
    }
    println!("fuzz_http: statuses {:?}", tally.by_status);
    for (family, statuses) in &tally.by_family {
        println!("fuzz_http:   {family:<32} {statuses:?}");
    }
    if tally.oversize_dropped > 0 {
        println!(
            "fuzz_http: {} oversized requests answered by a reset connection (allowed)",
            tally.oversize_dropped
        );
    }
    println!(
        "fuzz_http: 500s Vault also answers (fuzz::ALLOWED_500): {:?}",
        tally.allowed_500
    );
    for (entry, messages) in &tally.allowed_500_messages {
        for (message, example) in messages {
            println!("fuzz_http:   500 {entry}: {message}  (e.g. {example})");
        }
    }
    println!(
        "fuzz_http: slowest answer {:.2}s: {}",
        tally.slowest.as_secs_f64(),
        tally.slowest_request
    );
    println!(
        "fuzz_http: RSS after warm-up {} MiB, samples {:?} MiB, at the end {} MiB",
        rss_warm.map_or("?".into(), |k| format!("{:.0}", mib(k))),
        rss_samples.iter().map(|k| mib(*k).round() as u64).collect::<Vec<_>>(),
        rss_end.map_or("?".into(), |k| format!("{:.0}", mib(k))),
    );
    for note in &repair_notes {
        println!("fuzz_http: note: {note}");
    }

    let mut failures: Vec<String> = Vec::new();
    let mut findings: Vec<_> = tally.findings.values().collect();
    findings.sort_by_key(|f| f.first_at);
    for (i, f) in findings.into_iter().enumerate() {
        failures.push(format!(
            "[{}] at +{:.1}s: {} — {} time(s); first:\n      {}{}",
            i + 1,
            f.first_at.saturating_duration_since(started).as_secs_f64(),
            f.kind,
            f.count,
            f.first,
            if f.detail.is_empty() {
                String::new()
            } else {
                format!("\n      answer: {}", f.detail)
            }
        ));
    }
    if !alive {
        failures.push("the server process is no longer running".into());
    }
    if let Some(stuck) = stuck {
        failures.push(format!("the server stopped answering: {stuck}"));
    }
    let log = std::fs::read_to_string(env.server.log_path()).unwrap_or_default();
    for p in panics_in_log(&log) {
        failures.push(format!("the server's log: {p}"));
    }
    // Memory must level off after warm-up: at the end at most half as much
    // again plus 128 MiB (room for pools and allocator slack, not for a
    // leak of every request or every large body).
    if let (Some(warm), Some(end)) = (rss_warm, rss_end) {
        let bound = warm + warm / 2 + 128 * 1024;
        if end > bound {
            failures.push(format!(
                "RSS grew from {:.0} MiB after warm-up to {:.0} MiB (bound {:.0} MiB)",
                mib(warm),
                mib(end),
                mib(bound)
            ));
        }
    }
    if !failures.is_empty() {
        println!("fuzz_http: {} distinct failure(s):", failures.len());
        for f in &failures {
            println!("  {f}");
        }
        panic!(
            "fuzz_http: {} distinct failure(s) (seed {seed}); see above",
            failures.len()
        );
    }
    Ok(())
}
