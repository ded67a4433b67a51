//! High availability on PostgreSQL storage, end to end: several `warden`
//! processes on one throwaway PostgreSQL (tests/src/ha.rs). One node is
//! active, the others forward; kill -9 of the active node under credential
//! load hands over to a standby with every credential accounted for; a
//! node that lost the lock cannot write (the storage's fencing); step-down,
//! redirects, the bao CLI's view; a database restart under load.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};
use warden_tests::ha::{HaCluster, Role};
use warden_tests::{Creds, TestPostgres, keys_of};

/// Credentials issued by clients spread over the nodes until `stop`.
struct Load {
    stop: Arc<AtomicBool>,
    issued: Arc<std::sync::Mutex<Vec<Creds>>>,
    failures: Arc<AtomicUsize>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    /// `clients` tasks asking `role` of the nodes in turn (`down`: nodes
    /// to skip, set by the test when it kills one).
    fn start(cluster: &HaCluster, clients: usize, role: &str, down: Arc<std::sync::Mutex<HashSet<usize>>>) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let issued = Arc::new(std::sync::Mutex::new(Vec::new()));
        let failures = Arc::new(AtomicUsize::new(0));
        let nodes: Vec<_> = (0..cluster.nodes.len()).map(|i| cluster.client(i)).collect();
        let mut tasks = Vec::new();
        for t in 0..clients {
            let (stop, issued, failures, nodes, down) = (
                stop.clone(),
                issued.clone(),
                failures.clone(),
                nodes.clone(),
                down.clone(),
            );
            let path = format!("/v1/db/creds/{role}");
            tasks.push(tokio::spawn(async move {
                let mut k = t;
                while !stop.load(Ordering::SeqCst) {
                    k += 1;
                    let i = k % nodes.len();
                    if down.lock().unwrap_or_else(|p| p.into_inner()).contains(&i) {
                        continue;
                    }
                    match nodes[i].req("GET", &path, None).await {
                        Ok((200, body)) => match Creds::from_body(body) {
                            Ok(c) => issued.lock().unwrap_or_else(|p| p.into_inner()).push(c),
                            Err(_) => {
                                failures.fetch_add(1, Ordering::SeqCst);
                            }
                        },
                        _ => {
                            failures.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
            }));
        }
        Load {
            stop,
            issued,
            failures,
            tasks,
        }
    }

    async fn finish(self) -> (Vec<Creds>, usize) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.tasks {
            let _ = t.await;
        }
        let issued = std::mem::take(&mut *self.issued.lock().unwrap_or_else(|p| p.into_inner()));
        (issued, self.failures.load(Ordering::SeqCst))
    }
}

/// Whether `f` turns true within `timeout` (asked every 100 ms).
async fn within<F, Fut>(timeout: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let began = Instant::now();
    loop {
        if f().await {
            return true;
        }
        if began.elapsed() > timeout {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn lookup(cluster: &HaCluster, via: usize, lease_id: &str) -> Result<(u16, Value)> {
    cluster
        .client(via)
        .req("PUT", "/v1/sys/leases/lookup", Some(json!({ "lease_id": lease_id })))
        .await
}

async fn lease_count(cluster: &HaCluster, via: usize, role: &str) -> Result<usize> {
    let (status, body) = cluster
        .client(via)
        .list(&format!("/v1/sys/leases/lookup/db/creds/{role}/"))
        .await?;
    match status {
        404 => Ok(0),
        200 => Ok(keys_of(&body)?.len()),
        _ => bail!("LIST leases of {role}: {status} {body}"),
    }
}

/// The failover test's role, and its logins (usernames carry the role's
/// first 8 characters; the pattern is this test's alone on the server).
const ROLE: &str = "failover";
const LOGINS: &str = "v-%-failover-%";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_node_is_active_standbys_forward_and_kill_9_fails_over() -> Result<()> {
    let mut cluster = HaCluster::start(3, "ha-failover").await?;
    let active = cluster.wait_active(Duration::from_secs(20)).await?;
    let standbys: Vec<usize> = (0..3).filter(|i| *i != active).collect();

    // What each node says of the cluster.
    let cluster_id = {
        let (_, s) = cluster.nodes[active]
            .client(None)
            .req("GET", "/v1/sys/seal-status", None)
            .await?;
        s["cluster_id"].as_str().unwrap_or_default().to_string()
    };
    ensure!(!cluster_id.is_empty(), "the active node names no cluster id");
    // Standbys learn the active node and the cluster's id within a round
    // of their election loop (a second).
    for i in 0..3 {
        let expected = json!({
            "ha_enabled": true,
            "is_self": i == active,
            "leader_address": cluster.nodes[active].url(),
            "leader_cluster_address": cluster.nodes[active].cluster_url().unwrap_or_default(),
        });
        let agreed = within(Duration::from_secs(5), || async {
            let Ok(leader) = cluster.leader(i).await else {
                return false;
            };
            let Ok((_, seal)) = cluster.nodes[i]
                .client(None)
                .req("GET", "/v1/sys/seal-status", None)
                .await
            else {
                return false;
            };
            ["ha_enabled", "is_self", "leader_address", "leader_cluster_address"]
                .iter()
                .all(|k| leader[*k] == expected[*k])
                && seal["sealed"] == false
                && seal["cluster_id"] == cluster_id.as_str()
        })
        .await;
        ensure!(agreed, "node {i} does not agree: leader {:?}", cluster.leader(i).await?);
    }
    let s = standbys[0];
    let anon = cluster.nodes[s].client(None);
    let (status, health) = anon.req("GET", "/v1/sys/health", None).await?;
    ensure!(
        status == 429 && health["standby"] == true,
        "standby health: {status} {health}"
    );
    let (status, _) = anon.req("GET", "/v1/sys/health?standbyok=true", None).await?;
    ensure!(status == 200, "standbyok: {status}");
    let (status, _) = anon.req("GET", "/v1/sys/health?standbycode=299", None).await?;
    ensure!(status == 299, "standbycode: {status}");

    // Everything written through a standby lands on the active node.
    let target = TestPostgres::shared().scratch("ha-failover-target").await?;
    cluster.mount_db(standbys[0], &target, ROLE, "1h").await?;
    cluster
        .client(standbys[1])
        .expect(
            "POST",
            "/v1/db/roles/brief",
            Some(json!({"db_name": "pg", "creation_statements": [warden_tests::CREATE_ROLE], "default_ttl": "8s", "max_ttl": "8s"})),
            204,
        )
        .await?;
    let pg = cluster
        .client(standbys[1])
        .expect("GET", "/v1/db/config/pg", None, 200)
        .await?;
    ensure!(
        pg["data"]["allowed_roles"] == json!([ROLE]),
        "config read through a standby: {pg}"
    );
    cluster
        .client(active)
        .expect(
            "POST",
            "/v1/db/config/pg",
            Some(json!({"allowed_roles": [ROLE, "brief"]})),
            204,
        )
        .await?;
    // ha-status lists the three, the active one once.
    let members = cluster
        .client(standbys[0])
        .expect("GET", "/v1/sys/ha-status", None, 200)
        .await?;
    let nodes = members["data"]["nodes"].as_array().context("ha-status nodes")?;
    ensure!(nodes.len() == 3, "ha-status: {members}");
    ensure!(
        nodes.iter().filter(|n| n["active_node"] == true).count() == 1
            && nodes
                .iter()
                .any(|n| n["active_node"] == true && n["api_address"] == cluster.nodes[active].url()),
        "ha-status: {members}"
    );

    // Short-lived credentials from before the failover: the new active
    // node's timers must revoke them.
    let mut brief = Vec::new();
    for i in 0..3 {
        let body = cluster.client(i).expect("GET", "/v1/db/creds/brief", None, 200).await?;
        brief.push(Creds::from_body(body)?);
    }

    // kill -9 of the active node under 8 clients' load.
    let down = Arc::new(std::sync::Mutex::new(HashSet::new()));
    let load = Load::start(&cluster, 8, ROLE, down.clone());
    tokio::time::sleep(Duration::from_secs(2)).await;
    down.lock().unwrap_or_else(|p| p.into_inner()).insert(active);
    let killed_at = Instant::now();
    cluster.kill(active);
    let new_active = loop {
        let mut found = None;
        for i in &standbys {
            if cluster.role(*i).await == Role::Active {
                found = Some(*i);
            }
        }
        if let Some(i) = found {
            break i;
        }
        ensure!(
            killed_at.elapsed() < Duration::from_secs(15),
            "no standby became active within 15 s of kill -9"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let failover = killed_at.elapsed();
    eprintln!("failover: node {new_active} active {failover:?} after kill -9 of node {active}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (issued, failures) = load.finish().await;
    eprintln!("load: {} credentials issued, {failures} requests failed", issued.len());
    ensure!(
        issued.len() > 20,
        "too few credentials issued under load: {}",
        issued.len()
    );

    // Every credential a client received has its lease on the new active node.
    for c in &issued {
        let (status, body) = lookup(&cluster, new_active, &c.lease_id).await?;
        ensure!(
            status == 200,
            "lease {} of a received credential: {status} {body}",
            c.lease_id
        );
    }
    // ... and its login works.
    let sample = &issued[issued.len() - 1];
    ensure!(
        target.logs_in(&sample.username, &sample.password).await,
        "a received login does not work"
    );
    // No database login without a lease: once the new active node has
    // settled what the dead one left, logins and leases of the role match.
    let last = std::sync::Mutex::new((0, 0));
    let settled = within(Duration::from_secs(40), || async {
        let logins = target.roles_like(LOGINS).await.map(|r| r.len()).unwrap_or(usize::MAX);
        let leases = lease_count(&cluster, new_active, ROLE).await.unwrap_or(0);
        *last.lock().unwrap_or_else(|p| p.into_inner()) = (logins, leases);
        logins == leases
    })
    .await;
    let last = *last.lock().unwrap_or_else(|p| p.into_inner());
    ensure!(settled, "database logins and leases of {ROLE} differ: {last:?}");
    let logins: HashSet<String> = target.roles_like(LOGINS).await?.into_iter().collect();
    for c in &issued {
        ensure!(logins.contains(&c.username), "received login {} is gone", c.username);
    }
    // Lease timers from before the failover still revoke.
    let names: Vec<String> = brief.iter().map(|c| c.username.clone()).collect();
    let left = target.wait_roles_gone(&names, Duration::from_secs(40)).await?;
    ensure!(
        left.is_empty(),
        "logins of expired leases from before the failover remain: {left:?}"
    );

    // The killed node comes back as a standby.
    cluster.nodes[active].start().await?;
    cluster.unseal(active).await?;
    let again = cluster.wait_active(Duration::from_secs(10)).await?;
    ensure!(
        again == new_active,
        "the active node changed when the old one came back"
    );
    ensure!(
        cluster.role(active).await == Role::Standby,
        "the restarted node is not a standby"
    );
    Ok(())
}

/// A node that lost the lock and does not know it (the fault
/// `ha-blind-renewal`: no renewal, no self-check, as a node paused at the
/// worst moment) still believes it is active; its writes are refused by
/// the storage's fencing and do not land; it then steps down.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_that_lost_the_lock_cannot_write() -> Result<()> {
    let cluster = HaCluster::new(
        TestPostgres::shared(),
        2,
        "ha-fenced",
        &[(0, "WARDEN_TEST_FAULT", "ha-blind-renewal")],
    )
    .await?;
    cluster.unseal(0).await?;
    ensure!(
        cluster.wait_active(Duration::from_secs(20)).await? == 0,
        "node 0 is not active"
    );
    let c0 = cluster.client(0);
    c0.expect(
        "PUT",
        "/v1/sys/policies/acl/before",
        Some(json!({"policy": "path \"a\" { capabilities = [\"read\"] }"})),
        204,
    )
    .await?;
    cluster.unseal(1).await?;
    // Node 0 does not renew: its lease runs out and node 1 takes over,
    // while node 0 still believes it is active.
    let took_over = within(Duration::from_secs(20), || async {
        cluster.leader(1).await.is_ok_and(|l| l["is_self"] == true)
    })
    .await;
    ensure!(took_over, "node 1 did not take over");
    let l0 = cluster.leader(0).await?;
    ensure!(l0["is_self"] == true, "node 0 should still believe it is active: {l0}");
    // Its write is refused by the storage and does not land.
    let (status, body) = c0
        .req(
            "PUT",
            "/v1/sys/policies/acl/after",
            Some(json!({"policy": "path \"b\" { capabilities = [\"read\"] }"})),
        )
        .await?;
    ensure!(
        status >= 500,
        "a write of a node that lost the lock answered {status} {body}"
    );
    let text = body.to_string();
    ensure!(
        text.contains("not the active node"),
        "the refusal should say why: {body}"
    );
    let (status, _) = cluster.client(1).req("GET", "/v1/sys/policies/acl/after", None).await?;
    ensure!(status == 404, "the refused write landed: {status}");
    // The request log: one info line per request with its route template
    // (never the raw path), and the failure logged with its cause.
    let log = std::fs::read_to_string(cluster.nodes[0].dir.path().join("warden-1.log"))?;
    ensure!(
        log.contains("request failed") && log.contains("not the active node"),
        "the failure is not logged with its cause:\n{log}"
    );
    ensure!(
        log.lines().any(|l| l.contains("route=\"system/policies/acl/")
            && l.contains("status=500")
            && l.contains("request_id")),
        "no request line with route and status:\n{log}"
    );
    ensure!(
        !log.contains("policies/acl/after"),
        "the raw path is in the log:\n{log}"
    );
    cluster
        .client(1)
        .expect("GET", "/v1/sys/policies/acl/before", None, 200)
        .await?;
    // Refused once, it steps down and forwards.
    let stepped = within(Duration::from_secs(10), || async {
        cluster.role(0).await == Role::Standby
    })
    .await;
    ensure!(stepped, "node 0 did not step down after its write was refused");
    c0.expect(
        "PUT",
        "/v1/sys/policies/acl/after",
        Some(json!({"policy": "path \"b\" { capabilities = [\"read\"] }"})),
        204,
    )
    .await?;
    cluster
        .client(1)
        .expect("GET", "/v1/sys/policies/acl/after", None, 200)
        .await?;
    Ok(())
}

/// SIGSTOP of the active node past its lease, then SIGCONT: a standby has
/// taken over, the old node steps down, and a write sent to it while it
/// was stopped either failed or landed on the new active node, never both
/// ways and never half.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_paused_active_node_steps_down_when_it_wakes() -> Result<()> {
    let cluster = HaCluster::start(3, "ha-paused").await?;
    let active = cluster.wait_active(Duration::from_secs(20)).await?;
    cluster.pause(active, true)?;
    let paused_at = Instant::now();
    let write = {
        let c = cluster.client(active);
        tokio::spawn(async move {
            c.req(
                "PUT",
                "/v1/sys/policies/acl/during-pause",
                Some(json!({"policy": "path \"p\" { capabilities = [\"read\"] }"})),
            )
            .await
        })
    };
    let others: Vec<usize> = (0..3).filter(|i| *i != active).collect();
    let mut new_active = None;
    while new_active.is_none() {
        ensure!(
            paused_at.elapsed() < Duration::from_secs(20),
            "no standby took over from the paused node"
        );
        for i in &others {
            if cluster.role(*i).await == Role::Active {
                new_active = Some(*i);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let new_active = new_active.unwrap_or_default();
    eprintln!("node {new_active} took over {:?} after SIGSTOP", paused_at.elapsed());
    tokio::time::sleep(Duration::from_secs(1)).await;
    cluster.pause(active, false)?;
    let stepped = within(Duration::from_secs(10), || async {
        cluster.role(active).await == Role::Standby
    })
    .await;
    ensure!(stepped, "the woken node did not step down");
    ensure!(
        cluster.wait_active(Duration::from_secs(5)).await? == new_active,
        "the active node changed"
    );
    let (status, body) = write.await??;
    let (landed, _) = cluster
        .client(new_active)
        .req("GET", "/v1/sys/policies/acl/during-pause", None)
        .await?;
    eprintln!("write sent during the pause: {status} {body}; on the new active node: {landed}");
    match status {
        200 | 204 => ensure!(landed == 200, "acknowledged write is missing on the new active node"),
        _ => ensure!(landed == 404, "a write answered {status} landed anyway"),
    }
    Ok(())
}

/// `sys/step-down` through a standby moves the active role; a client that
/// asks for no forwarding gets 307 to the active node; the bao CLI's
/// status, members and step-down.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn step_down_redirects_and_the_bao_cli() -> Result<()> {
    let cluster = HaCluster::start(3, "ha-stepdown").await?;
    let active = cluster.wait_active(Duration::from_secs(20)).await?;
    let standby = (active + 1) % 3;

    // X-Vault-No-Request-Forwarding: 307 to the active node's api_addr.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let resp = http
        .get(format!("{}/v1/sys/mounts?x=1", cluster.nodes[standby].url()))
        .header("X-Vault-Token", &cluster.root_token)
        .header("X-Vault-No-Request-Forwarding", "true")
        .send()
        .await?;
    ensure!(resp.status().as_u16() == 307, "no-forwarding: {}", resp.status());
    let location = resp
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    ensure!(
        location == format!("{}/v1/sys/mounts?x=1", cluster.nodes[active].url()),
        "307 location: {location}"
    );
    // Without a token, step-down is refused; a non-sudo path works through
    // a standby as on the active node.
    let (status, _) = cluster.nodes[standby]
        .client(None)
        .req("PUT", "/v1/sys/step-down", None)
        .await?;
    ensure!(status == 403, "step-down without a token: {status}");

    // The bao CLI against a standby.
    let bin = tokio::task::spawn_blocking(warden_tests::bao::ensure_bao).await??;
    let mut bao = warden_tests::bao::Bao::new(&bin, &cluster.nodes[standby].url())?;
    bao.token = Some(cluster.root_token.clone());
    let status = bao.expect(&["status"], 0)?;
    let ha_enabled = status
        .stdout
        .lines()
        .any(|l| l.starts_with("HA Enabled") && l.ends_with("true"));
    let ha_mode = status
        .stdout
        .lines()
        .any(|l| l.starts_with("HA Mode") && l.ends_with("standby"));
    ensure!(ha_enabled && ha_mode, "bao status on a standby: {status}");
    let members = bao.expect(&["operator", "members"], 0)?;
    ensure!(
        members.stdout.contains(&cluster.nodes[active].url()) && members.stdout.lines().count() >= 4,
        "bao operator members: {members}"
    );
    let began = Instant::now();
    bao.expect(&["operator", "step-down"], 0)?;
    let moved = within(Duration::from_secs(15), || async {
        match cluster.wait_active(Duration::from_millis(200)).await {
            Ok(i) => i != active,
            Err(_) => false,
        }
    })
    .await;
    ensure!(moved, "step-down did not move the active role");
    eprintln!("step-down: a new node active {:?} later", began.elapsed());
    ensure!(
        cluster.role(active).await == Role::Standby,
        "the stepped-down node is not a standby"
    );
    Ok(())
}

/// A restart of the storage's database under load: the nodes recover by
/// themselves (one active again, credentials issued again).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_nodes_recover_from_a_database_restart() -> Result<()> {
    // A server of its own: the restart must not disturb the other tests.
    let pg = TestPostgres::start()?;
    let cluster = HaCluster::new(&pg, 2, "ha-restart", &[]).await?;
    cluster.unseal(0).await?;
    cluster.unseal(1).await?;
    let active = cluster.wait_active(Duration::from_secs(20)).await?;
    let target = pg.scratch("ha-restart-target").await?;
    cluster.mount_db(active, &target, "app", "1h").await?;
    let down = Arc::new(std::sync::Mutex::new(HashSet::new()));
    let load = Load::start(&cluster, 8, "app", down);
    tokio::time::sleep(Duration::from_secs(1)).await;
    pg.pause()?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    pg.resume()?;
    let restarted = Instant::now();
    // Once one node is active again, credentials flow again.
    let active = cluster.wait_active(Duration::from_secs(30)).await?;
    let before = load.issued.lock().unwrap_or_else(|p| p.into_inner()).len();
    let flowing = within(Duration::from_secs(30), || async {
        load.issued.lock().unwrap_or_else(|p| p.into_inner()).len() > before + 10
    })
    .await;
    ensure!(flowing, "no credentials after the database came back");
    eprintln!(
        "recovered {:?} after the restart; node {active} active",
        restarted.elapsed()
    );
    let (issued, _) = load.finish().await;
    for c in issued.iter().rev().take(20) {
        let (status, body) = lookup(&cluster, active, &c.lease_id).await?;
        ensure!(status == 200, "lease {}: {status} {body}", c.lease_id);
    }
    Ok(())
}

/// Fencing at the storage itself, with the library: a backend whose epoch
/// was taken over writes nothing (put, delete, batch), and renewing fails.
#[tokio::test]
async fn a_stale_epoch_writes_nothing() -> Result<()> {
    use warden::ha::fence::Fence;
    use warden::ha::lock::{Address, PgLock};
    use warden::storage::{Backend, PostgresBackend, Write};
    let scratch = TestPostgres::shared().scratch("ha-fence").await?;
    let url = scratch
        .connection_url_template()
        .replace("{{username}}", &scratch.admin_user)
        .replace("{{password}}", &scratch.admin_password);
    let lock = PgLock::connect(&url, "locks").await?;
    let (fa, fb) = (Arc::new(Fence::new("a")), Arc::new(Fence::new("b")));
    let a = PostgresBackend::connect(&url, "kv")
        .await?
        .fenced("locks", fa.clone())?;
    let b = PostgresBackend::connect(&url, "kv")
        .await?
        .fenced("locks", fb.clone())?;
    // Nobody holds the lock: nobody writes.
    ensure!(a.put("k", b"0").await.is_err(), "a write without the lock landed");
    let ttl = Duration::from_millis(800);
    let ea = lock
        .try_acquire("a", &Address::default(), ttl)
        .await?
        .context("a acquires")?;
    fa.hold(ea);
    ensure!(
        lock.try_acquire("b", &Address::default(), ttl).await?.is_none(),
        "b took a held lock"
    );
    a.put("k", b"1").await?;
    a.batch(vec![
        Write::Put("j".into(), b"1".to_vec()),
        Write::Delete("gone".into()),
    ])
    .await?;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let eb = lock
        .try_acquire("b", &Address::default(), Duration::from_secs(5))
        .await?
        .context("b acquires")?;
    ensure!(eb == ea + 1, "epochs: {ea} then {eb}");
    fb.hold(eb);
    // a still believes it holds epoch ea: every kind of write is refused.
    let refused = a.put("k", b"2").await.unwrap_err().to_string();
    ensure!(refused.contains("not the active node"), "{refused}");
    fa.hold(ea);
    ensure!(a.delete("k").await.is_err(), "a stale delete landed");
    fa.hold(ea);
    ensure!(
        a.batch(vec![Write::Put("k".into(), b"3".to_vec()), Write::Delete("j".into())])
            .await
            .is_err(),
        "a stale batch landed"
    );
    ensure!(!lock.renew("a", ea, ttl).await?, "a renewed a lock it lost");
    ensure!(b.get("k").await?.as_deref() == Some(&b"1"[..]), "k changed");
    ensure!(b.get("j").await?.as_deref() == Some(&b"1"[..]), "j changed");
    b.put("k", b"4").await?;
    ensure!(a.get("k").await?.as_deref() == Some(&b"4"[..]), "reads are not fenced");
    ensure!(lock.renew("b", eb, ttl).await?, "b cannot renew");
    Ok(())
}
