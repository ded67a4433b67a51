//! identity_bench: what identity costs on the hot path. Dynamic PostgreSQL
//! credentials per second with the root token against a non-root token
//! holding 3 ACL policies of 100 rules in all (every request authenticated
//! through the token store and checked against the ACL), in the same run;
//! then the same token with a `file` audit device enabled against without,
//! and a batch token with the same policies against the service token.
//! Issue 13's targets: the token at least 97% of root, audit at least 90%
//! of no audit.
//!
//! Usage: identity_bench [N=2000] [CLIENTS=8] [ROUNDS=3]
//!
//! Each round runs root, token, token with audit, batch token, in an order
//! that rotates from round to round (so that drift in the machine's speed does not
//! favour one); medians of the per-round ratios are reported, with the
//! server's CPU per credential. Uses `WARDEN_TEST_PG_URL` when set, else a
//! throwaway PostgreSQL cluster; starts `warden server -dev`.

use anyhow::{Context, Result, bail};
use serde_json::json;
use warden_tests::bench::{MachineCpu, cpu_ticks, list, median, mount_pg_role, ticks_ms, warden_gets};
use warden_tests::{Client, TestPostgres, WardenServer};

const ROLE: &str = "bench";
const CREDS: &str = "/v1/db/creds/bench";

/// Three policies, 100 rules in all: exact paths, `*` prefixes and `+`
/// segments, the one that grants the credentials among them.
fn policies() -> Vec<(String, String)> {
    let mut exact = String::new();
    for i in 0..33 {
        exact.push_str(&format!("path \"db/creds/other{i}\" {{ capabilities = [\"read\"] }}\n"));
    }
    exact.push_str(&format!("path \"db/creds/{ROLE}\" {{ capabilities = [\"read\"] }}\n"));
    let mut prefix = String::new();
    for i in 0..33 {
        prefix.push_str(&format!(
            "path \"secret/app{i}/*\" {{ capabilities = [\"read\", \"list\"] }}\n"
        ));
    }
    let mut segment = String::new();
    for i in 0..33 {
        segment.push_str(&format!(
            "path \"kv/+/team{i}/*\" {{ capabilities = [\"create\", \"update\"] }}\n"
        ));
    }
    vec![
        ("bench-exact".into(), exact),
        ("bench-prefix".into(), prefix),
        ("bench-segment".into(), segment),
    ]
}

#[derive(Clone, Copy, PartialEq)]
enum Variant {
    Root,
    Token,
    TokenAudited,
    Batch,
}

impl Variant {
    fn label(self) -> &'static str {
        match self {
            Variant::Root => "root token",
            Variant::Token => "token (3 policies, 100 rules)",
            Variant::TokenAudited => "token, file audit device on",
            Variant::Batch => "batch token (same policies)",
        }
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let mut next = |default: usize, what: &str| -> Result<usize> {
        match args.next() {
            Some(a) => a.parse().with_context(|| format!("{what} must be a number")),
            None => Ok(default),
        }
    };
    let (n, clients, rounds) = (next(2000, "N")?, next(8, "CLIENTS")?, next(3, "ROUNDS")?);
    if n == 0 || clients == 0 || rounds == 0 {
        bail!("usage: identity_bench [N>0] [CLIENTS>0] [ROUNDS>0]");
    }
    let pg = tokio::task::spawn_blocking(TestPostgres::from_env).await??;
    let scratch = pg.scratch("identity_bench").await?;
    let server = WardenServer::start().await?;
    let pid = server.pid().context("server has no pid")?;
    let root = server.client();
    println!(
        "identity_bench: N={n} clients={clients} rounds={rounds} warden={} pid={pid}",
        server.addr()
    );
    mount_pg_role(&root, &scratch, ROLE, clients).await?;
    let mut names = Vec::new();
    for (name, text) in policies() {
        root.expect(
            "PUT",
            &format!("/v1/sys/policies/acl/{name}"),
            Some(json!({ "policy": text })),
            204,
        )
        .await?;
        names.push(name);
    }
    let (status, body) = root
        .post(
            "/v1/auth/token/create",
            json!({"policies": names, "no_default_policy": true}),
        )
        .await?;
    if status != 200 {
        bail!("token create: {status} {body}");
    }
    let token = body["auth"]["client_token"].as_str().context("client_token")?;
    let user = root.with_token(Some(token));
    // The same policies in a batch token: nothing read from storage to
    // authenticate, one AES-GCM open instead.
    let (status, body) = root
        .post(
            "/v1/auth/token/create",
            json!({"policies": names, "no_default_policy": true, "type": "batch", "ttl": "2h"}),
        )
        .await?;
    if status != 200 {
        bail!("batch token create: {status} {body}");
    }
    let batch = root.with_token(Some(body["auth"]["client_token"].as_str().context("batch token")?));
    let audit_log = std::env::temp_dir().join(format!("identity-bench-audit-{pid}.log"));
    // Warm-up: pools open, component instances made, policy cache filled.
    warden_gets(&root, CREDS, 20, 1).await?;
    warden_gets(&user, CREDS, 20, 1).await?;
    warden_gets(&batch, CREDS, 20, 1).await?;

    let order = [Variant::Root, Variant::Token, Variant::TokenAudited, Variant::Batch];
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); order.len()];
    let mut cpu: Vec<Vec<f64>> = vec![Vec::new(); order.len()];
    let mut audited = true;
    for round in 0..rounds {
        for k in 0..order.len() {
            let i = (k + round) % order.len();
            let variant = order[i];
            if variant == Variant::TokenAudited {
                audited = enable_audit(&root, &audit_log).await?;
                if !audited {
                    continue;
                }
            }
            let client = match variant {
                Variant::Root => &root,
                Variant::Batch => &batch,
                Variant::Token | Variant::TokenAudited => &user,
            };
            let (machine, before) = (MachineCpu::now(), cpu_ticks(pid)?);
            let run = warden_gets(client, CREDS, n, clients).await?;
            let ticks = cpu_ticks(pid)?.saturating_sub(before);
            if variant == Variant::TokenAudited {
                root.expect("DELETE", "/v1/sys/audit/bench", None, 204).await?;
            }
            run.print(
                &format!(
                    "round {}: {} ({clients} clients; {})",
                    round + 1,
                    variant.label(),
                    machine.since()
                ),
                "creds",
            );
            rates[i].push(run.rate());
            cpu[i].push(ticks_ms(ticks) / n as f64);
        }
    }
    for (i, variant) in order.iter().enumerate() {
        if rates[i].is_empty() {
            continue;
        }
        println!(
            "{}: median {:.1} creds/s (per round {}), server CPU median {:.3} ms/cred",
            variant.label(),
            median(&rates[i]),
            list(&rates[i]),
            median(&cpu[i])
        );
    }
    let ratio = |a: usize, b: usize| -> Vec<f64> { rates[a].iter().zip(&rates[b]).map(|(x, y)| x / y).collect() };
    let token_vs_root = ratio(1, 0);
    println!(
        "ratio token / root: median {:.3} (per round {}; target >= 0.97)",
        median(&token_vs_root),
        list(&token_vs_root)
    );
    let batch_vs_service = ratio(3, 1);
    println!(
        "ratio batch token / service token: median {:.3} (per round {})",
        median(&batch_vs_service),
        list(&batch_vs_service)
    );
    if audited {
        let audit_vs_none = ratio(2, 1);
        let lines = std::fs::read_to_string(&audit_log)
            .map(|t| t.lines().count())
            .unwrap_or(0);
        println!(
            "ratio audited / not audited: median {:.3} (per round {}; target >= 0.90); {lines} audit lines written",
            median(&audit_vs_none),
            list(&audit_vs_none)
        );
    } else {
        println!("audit: no file audit device on this server (sys/audit/bench refused); not measured");
    }
    root.expect(
        "PUT",
        &format!("/v1/sys/leases/revoke-prefix/db/creds/{ROLE}"),
        None,
        204,
    )
    .await?;
    let _ = std::fs::remove_file(&audit_log);
    drop(server);
    tokio::task::spawn_blocking(move || drop(pg)).await?;
    Ok(())
}

/// Enable the `file` audit device at `sys/audit/bench`; false when the
/// server has no audit devices.
async fn enable_audit(root: &Client, path: &std::path::Path) -> Result<bool> {
    let (status, body) = root
        .put(
            "/v1/sys/audit/bench",
            json!({"type": "file", "options": {"file_path": path.display().to_string()}}),
        )
        .await?;
    match status {
        204 | 200 => Ok(true),
        404 | 405 => Ok(false),
        _ => bail!("enabling the audit device: {status} {body}"),
    }
}
