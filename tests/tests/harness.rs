//! The test harness itself: the throwaway PostgreSQL starts, enforces
//! passwords, hands each test its own database and admin login, and is
//! stopped when the test process ends, however it ends.

use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use sqlx::{Connection, Row};
use warden_tests::TestPostgres;
use warden_tests::postgres::PG_URL_ENV;

const REAPER_CHILD_ENV: &str = "WARDEN_TEST_REAPER_CHILD";

fn using_external_server() -> bool {
    std::env::var(PG_URL_ENV).is_ok_and(|v| !v.trim().is_empty())
}

#[tokio::test]
async fn shared_postgres_answers_select_1() -> Result<()> {
    let pg = TestPostgres::shared();
    let mut conn = pg.superuser_connection("postgres").await?;
    let one: i32 = sqlx::query("SELECT 1").fetch_one(&mut conn).await?.try_get(0)?;
    assert_eq!(one, 1);
    let version: String = sqlx::query("SHOW server_version")
        .fetch_one(&mut conn)
        .await?
        .try_get(0)?;
    eprintln!("PostgreSQL {version} on port {}", pg.port());
    Ok(())
}

#[tokio::test]
async fn scratch_admin_logs_in_and_can_create_and_drop_roles() -> Result<()> {
    let scratch = TestPostgres::shared().scratch("harness").await?;
    let mut conn = scratch
        .connect_as(&scratch.admin_user, &scratch.admin_password)
        .await
        .context("admin login")?;
    let db: String = sqlx::query("SELECT current_database()")
        .fetch_one(&mut conn)
        .await?
        .try_get(0)?;
    assert_eq!(db, scratch.database);
    let role = format!("wt_probe_{}", warden_tests::util::random_alnum(6));
    sqlx::raw_sql(&format!(
        "CREATE ROLE \"{role}\" WITH LOGIN PASSWORD 'pw-{role}' VALID UNTIL '2100-01-01 00:00:00+00'"
    ))
    .execute(&mut conn)
    .await?;
    assert!(scratch.role_exists(&role).await?);
    let hash = scratch.password_hash(&role).await?.unwrap_or_default();
    assert!(hash.starts_with("SCRAM-SHA-256$"), "password hash {hash:?}");
    let until = scratch.valid_until(&role).await?.unwrap_or_default();
    let expected = scratch.parse_timestamp("2100-01-01T00:00:00Z").await?;
    assert!((until - expected).abs() < 1.0, "{until} vs {expected}");
    let mut login = scratch.connect_as(&role, &format!("pw-{role}")).await?;
    let one: i32 = sqlx::query("SELECT 1").fetch_one(&mut login).await?.try_get(0)?;
    assert_eq!(one, 1);
    login.close().await?;
    sqlx::raw_sql(&format!("DROP ROLE \"{role}\""))
        .execute(&mut conn)
        .await?;
    assert!(!scratch.role_exists(&role).await?);
    assert!(scratch.roles_like("wt_probe_%").await?.iter().all(|r| r != &role));
    Ok(())
}

#[tokio::test]
async fn a_wrong_password_is_rejected() -> Result<()> {
    let pg = TestPostgres::shared();
    if !pg.password_auth_enforced().await? {
        eprintln!("skipped: the server named by {PG_URL_ENV} trusts every login");
        return Ok(());
    }
    let scratch = pg.scratch("wrongpw").await?;
    let result = scratch.connect_as(&scratch.admin_user, "not-the-password").await;
    let err = match result {
        Ok(_) => bail!("logged in with a wrong password"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("password authentication failed"), "{err}");
    Ok(())
}

#[tokio::test]
async fn each_scratch_gets_its_own_database_and_admin() -> Result<()> {
    let pg = TestPostgres::shared();
    let a = pg.scratch("same").await?;
    let b = pg.scratch("same").await?;
    assert_ne!(a.database, b.database);
    assert_ne!(a.admin_user, b.admin_user);
    assert!(
        a.connection_url_template()
            .starts_with("postgresql://{{username}}:{{password}}@")
    );
    assert!(
        a.connection_url_template()
            .ends_with(&format!(":{}/{}", a.port(), a.database))
    );
    Ok(())
}

#[tokio::test]
async fn a_dropped_cluster_is_stopped_and_removed() -> Result<()> {
    if using_external_server() {
        eprintln!("skipped: {PG_URL_ENV} is set");
        return Ok(());
    }
    let pg = tokio::task::spawn_blocking(TestPostgres::start).await??;
    let port = pg.port();
    let dir = pg.cluster_dir().map(|d| d.to_path_buf()).context("no cluster dir")?;
    pg.superuser_connection("postgres").await?.close().await?;
    tokio::task::spawn_blocking(move || drop(pg)).await?;
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "port {port} still open"
    );
    assert!(!dir.exists(), "{} still exists", dir.display());
    Ok(())
}

/// Runs this test binary again with only `reaper_child` selected; the child
/// starts a cluster, prints where, and aborts (no destructor runs). The
/// reaper must then stop the cluster and delete its directory.
#[test]
fn cluster_is_stopped_when_the_test_process_dies() -> Result<()> {
    if using_external_server() {
        eprintln!("skipped: {PG_URL_ENV} is set");
        return Ok(());
    }
    let exe = std::env::current_exe()?;
    let output = Command::new(exe)
        .args([
            "--exact",
            "reaper_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(REAPER_CHILD_ENV, "1")
        .output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.split_once("REAPER-CHILD ").map(|(_, rest)| rest))
        .with_context(|| {
            format!(
                "child printed no cluster line; stdout:\n{stdout}\nstderr:\n{}",
                String::from_utf8_lossy(&output.stderr)
            )
        })?;
    let mut parts = line.split_whitespace();
    let port: u16 = parts.next().context("no port")?.parse()?;
    let dir = std::path::PathBuf::from(parts.next().context("no dir")?);
    assert!(!output.status.success(), "the child should have aborted");

    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let port_closed = std::net::TcpStream::connect(("127.0.0.1", port)).is_err();
        if port_closed && !dir.exists() {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            bail!(
                "after the test process died: port {port} closed: {port_closed}, {} exists: {}",
                dir.display(),
                dir.exists()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
#[ignore = "helper of cluster_is_stopped_when_the_test_process_dies"]
fn reaper_child() {
    if std::env::var_os(REAPER_CHILD_ENV).is_none() {
        return;
    }
    let pg = match TestPostgres::start() {
        Ok(pg) => pg,
        Err(e) => {
            eprintln!("cannot start: {e:#}");
            std::process::exit(2);
        }
    };
    let dir = pg.cluster_dir().map(|d| d.display().to_string()).unwrap_or_default();
    println!("REAPER-CHILD {} {dir}", pg.port());
    use std::io::Write;
    let _ = std::io::stdout().flush();
    std::process::abort();
}
