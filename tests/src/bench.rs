//! What the benchmark programs (src/bin/*_bench*.rs) share: a timed run of
//! concurrent requests and its statistics, the Warden side of a run
//! (`GET creds` from CLIENTS concurrent clients), and readings of a
//! process's and the machine's CPU from /proc.
//!
//! The machine's stolen time matters on a virtual machine: a hypervisor
//! that takes the CPU away mid-run slows whichever run it hits, so each
//! program prints it beside its rates.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use sqlx::Connection;
use sqlx::postgres::PgConnection;

use crate::util::random_alnum;
use crate::{Client, Scratch};

/// The middle value (the upper one of an even count); 0 when empty.
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// Values as "0.912, 1.003, ..." for a per-round line.
pub fn list(values: &[f64]) -> String {
    values.iter().map(|r| format!("{r:.3}")).collect::<Vec<_>>().join(", ")
}

/// One timed run: how long it took and each operation's latency (sorted).
pub struct Run {
    pub elapsed: Duration,
    pub latencies: Vec<Duration>,
}

impl Run {
    pub fn count(&self) -> usize {
        self.latencies.len()
    }

    /// Operations per second.
    pub fn rate(&self) -> f64 {
        self.count() as f64 / self.elapsed.as_secs_f64()
    }

    pub fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let i = ((self.latencies.len() as f64 * p).ceil() as usize).clamp(1, self.latencies.len()) - 1;
        self.latencies[i]
    }

    pub fn print(&self, label: &str, unit: &str) {
        println!(
            "{label}: {} {unit} in {:.2} s = {:.1}/s, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            self.count(),
            self.elapsed.as_secs_f64(),
            self.rate(),
            ms(self.percentile(0.50)),
            ms(self.percentile(0.99)),
            ms(self.latencies.last().copied().unwrap_or_default())
        );
    }
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Wait for workers that each return their latencies; the run ends when
/// the last one does.
pub async fn collect(tasks: Vec<tokio::task::JoinHandle<Result<Vec<Duration>>>>, started: Instant) -> Result<Run> {
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    let elapsed = started.elapsed();
    latencies.sort();
    Ok(Run { elapsed, latencies })
}

/// `n` GET `path` requests (each must answer 200) spread over `clients`
/// concurrent clients, each sending its next request when the last is
/// answered.
pub async fn warden_gets(client: &Client, path: &str, n: usize, clients: usize) -> Result<Run> {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks = (0..clients)
        .map(|_| {
            let (client, next, path) = (client.clone(), next.clone(), path.to_string());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while next.fetch_add(1, Ordering::Relaxed) < n {
                    let t = Instant::now();
                    let (status, body) = client.req("GET", &path, None).await?;
                    if status != 200 {
                        bail!("GET {path}: expected 200, got {status} {body}");
                    }
                    latencies.push(t.elapsed());
                }
                Ok(latencies)
            })
        })
        .collect();
    collect(tasks, started).await
}

/// The benchmarks' database engine: `db/` mounted, `db/config/pg` on the
/// scratch database with `clients` pooled connections, and `db/roles/<role>`
/// with the standard CREATE ROLE (1 h leases).
pub async fn mount_pg_role(client: &Client, scratch: &Scratch, role: &str, clients: usize) -> Result<()> {
    use serde_json::json;
    client
        .expect("POST", "/v1/sys/mounts/db", Some(json!({"type": "database"})), 204)
        .await?;
    let mut config = crate::fixtures::postgres_config(scratch, &[role]);
    config["max_open_connections"] = json!(clients);
    config["max_idle_connections"] = json!(clients);
    client.expect("POST", "/v1/db/config/pg", Some(config), 204).await?;
    client
        .expect(
            "POST",
            &format!("/v1/db/roles/{role}"),
            Some(json!({
                "db_name": "pg",
                "creation_statements": [crate::CREATE_ROLE],
                "default_ttl": "1h",
                "max_ttl": "24h",
            })),
            204,
        )
        .await?;
    Ok(())
}

/// The same CREATE ROLE as Warden's standard role, as raw SQL (simple
/// query protocol, no prepared statement), over `sessions` connections of
/// the scratch admin: the direct side of a credentials comparison.
pub async fn pg_create_roles(scratch: &Scratch, names: &[String], sessions: usize) -> Result<Run> {
    let expiration = format_utc(unix_now() + 3600);
    pg_each(scratch, names, sessions, move |name| {
        format!(
            "CREATE ROLE \"{name}\" WITH LOGIN PASSWORD '{}' VALID UNTIL '{expiration}';",
            random_alnum(20)
        )
    })
    .await
}

/// `DROP ROLE IF EXISTS` of each name over `sessions` connections.
pub async fn pg_drop_roles(scratch: &Scratch, names: &[String], sessions: usize) -> Result<Run> {
    pg_each(scratch, names, sessions, |name| {
        format!("DROP ROLE IF EXISTS \"{name}\";")
    })
    .await
}

/// One statement per name, `sessions` connections taking the next name as
/// each finishes its last.
async fn pg_each<F>(scratch: &Scratch, names: &[String], sessions: usize, sql: F) -> Result<Run>
where
    F: Fn(&str) -> String + Send + Sync + 'static,
{
    let next = Arc::new(AtomicUsize::new(0));
    let names = Arc::new(names.to_vec());
    let sql = Arc::new(sql);
    let mut conns = Vec::new();
    for _ in 0..sessions {
        conns.push(pg_admin(scratch).await?);
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for mut conn in conns {
        let (next, names, sql) = (next.clone(), names.clone(), sql.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(name) = names.get(i) else { break };
                let t = Instant::now();
                pg_exec_raw(&mut conn, sql(name)).await?;
                latencies.push(t.elapsed());
            }
            conn.close().await.ok();
            Ok(latencies)
        }));
    }
    collect(tasks, started).await
}

/// One raw (simple-protocol) statement. A named function returning a boxed
/// Send future sidesteps sqlx's higher-ranked `Executor` bound inside spawn.
pub fn pg_exec_raw(
    conn: &mut PgConnection,
    sql: String,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + Send + '_>> {
    Box::pin(async move {
        use sqlx::Executor;
        conn.execute(sqlx::raw_sql(&sql)).await?;
        Ok(())
    })
}

/// A connection as the scratch database's admin (the login Warden uses).
pub async fn pg_admin(scratch: &Scratch) -> Result<PgConnection> {
    scratch
        .connect_as(&scratch.admin_user, &scratch.admin_password)
        .await
        .context("connect as the scratch admin")
}

pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// `YYYY-MM-DD HH:MM:SS+00` for Unix seconds (as Vault renders {{expiration}}).
pub fn format_utc(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .unwrap_or_default()
        .format("%Y-%m-%d %H:%M:%S+00")
        .to_string()
}

/// Linux's USER_HZ, the unit of /proc's CPU times: 100 on every
/// architecture Warden runs on.
const TICKS_PER_SECOND: f64 = 100.0;

/// Milliseconds of CPU in `ticks` (from [`cpu_ticks`]).
pub fn ticks_ms(ticks: u64) -> f64 {
    ticks as f64 * 1000.0 / TICKS_PER_SECOND
}

/// utime + stime of a process in clock ticks (see [`ticks_ms`]), from
/// /proc/<pid>/stat.
pub fn cpu_ticks(pid: u32) -> Result<u64> {
    let stat =
        std::fs::read_to_string(format!("/proc/{pid}/stat")).with_context(|| format!("read /proc/{pid}/stat"))?;
    // Fields after "(comm)": utime and stime are the 12th and 13th.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).context("malformed stat")?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: u64 = fields.get(11).context("no utime")?.parse()?;
    let stime: u64 = fields.get(12).context("no stime")?.parse()?;
    Ok(utime + stime)
}

/// Context switches (voluntary and not) of all a process's threads so
/// far: each is a thread going to sleep or being preempted, the cost that
/// CPU time alone does not show on a shared machine.
pub fn context_switches(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("status")).ok())
        .map(|status| {
            status
                .lines()
                .filter(|l| l.contains("ctxt_switches:"))
                .filter_map(|l| l.split_whitespace().last()?.parse::<u64>().ok())
                .sum::<u64>()
        })
        .sum()
}

/// Resident memory of a process in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The resident set of a process in MiB (0 when unknown).
pub fn rss_mib(pid: u32) -> f64 {
    rss_kib(pid).map_or(0.0, |kib| kib as f64 / 1024.0)
}

/// The machine's CPU time so far, all cores, from the first line of
/// /proc/stat: (total, idle + iowait, steal) in ticks.
#[derive(Clone, Copy, Debug, Default)]
pub struct MachineCpu {
    total: u64,
    idle: u64,
    steal: u64,
}

impl MachineCpu {
    pub fn now() -> MachineCpu {
        std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|s| parse_cpu_line(s.lines().next()?))
            .unwrap_or_default()
    }

    /// "idle 41%, stolen 12%" of the time since `self`.
    pub fn since(&self) -> String {
        let now = MachineCpu::now();
        let total = now.total.saturating_sub(self.total).max(1) as f64;
        format!(
            "idle {:.0}%, stolen {:.0}%",
            100.0 * now.idle.saturating_sub(self.idle) as f64 / total,
            100.0 * now.steal.saturating_sub(self.steal) as f64 / total
        )
    }
}

/// "cpu  user nice system idle iowait irq softirq steal guest guest_nice";
/// guest time is already counted in user, so it is left out of the total.
fn parse_cpu_line(line: &str) -> Option<MachineCpu> {
    let mut fields = line.split_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    let v: Vec<u64> = fields.map(|f| f.parse().unwrap_or(0)).collect();
    let get = |i: usize| v.get(i).copied().unwrap_or(0);
    Some(MachineCpu {
        total: (0..8).map(get).sum(),
        idle: get(3) + get(4),
        steal: get(7),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_takes_the_middle_value() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 3.0);
        assert_eq!(median(&[]), 0.0);
    }

    #[test]
    fn percentiles_of_a_run() {
        let run = Run {
            elapsed: Duration::from_secs(2),
            latencies: (1..=100).map(Duration::from_millis).collect(),
        };
        assert_eq!(run.rate(), 50.0);
        assert_eq!(run.percentile(0.5), Duration::from_millis(50));
        assert_eq!(run.percentile(0.99), Duration::from_millis(99));
    }

    #[test]
    fn reads_the_cpu_line_of_proc_stat() {
        let cpu = parse_cpu_line("cpu  209191 0 22727 138375 3819 0 2115 763 0 0").unwrap();
        assert_eq!(cpu.total, 209191 + 22727 + 138375 + 3819 + 2115 + 763);
        assert_eq!(cpu.idle, 138375 + 3819);
        assert_eq!(cpu.steal, 763);
        assert!(parse_cpu_line("cpu0 1 2 3").is_none());
    }

    #[test]
    fn formats_utc_timestamps() {
        assert_eq!(format_utc(0), "1970-01-01 00:00:00+00");
        assert_eq!(format_utc(951_782_400), "2000-02-29 00:00:00+00");
        assert_eq!(format_utc(1_795_339_408), "2026-11-22 09:23:28+00");
    }

    #[test]
    fn reads_this_process() {
        let pid = std::process::id();
        assert!(cpu_ticks(pid).is_ok());
        assert!(rss_kib(pid).unwrap_or(0) > 0);
        assert!(context_switches(pid) > 0);
    }
}
