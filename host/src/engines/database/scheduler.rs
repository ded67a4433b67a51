//! The rotation scheduler of one database mount: rotates static roles'
//! passwords when they fall due, and owns the write-ahead records that make
//! rotations (and rotate-root) crash safe.
//!
//! The persistent queue is the static role entries themselves: each stores
//! `next_vault_rotation`. At start-up a task per mount reads them, runs
//! what fell due while the server was down, and then sleeps until the
//! earliest due time (or until a write changes the queue). A failed
//! rotation is retried with exponential back-off; the role keeps its last
//! working password meanwhile, so static-creds keeps answering with it.
//!
//! Write-ahead records, in the mount's storage:
//! - `wal/static/<role>` {username, password}: written before the database
//!   is told the new password, deleted once the role stores it. A retry
//!   reuses the recorded password (the database may already have it). One
//!   found at start-up is rolled forward once; if that fails it is dropped
//!   and the next attempt generates a new password.
//! - `wal/root/<connection>` {old, new}: written before rotate-root changes
//!   the root password. One found at start-up means the rotation did not
//!   finish: the connection is rolled back to the old, working password.

use super::path_config_connection::{self, DbConfig};
use super::path_creds_create::generate_password;
use super::path_static_roles::{self, StaticRole};
use super::{DatabaseEngine, plugin_error};
use crate::bindings::db;
use crate::error::{Error, Result};
use crate::logical::Mount;
use crate::storage::layout;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::AbortHandle;
use warden_driver_common::redact::redact_secrets;

/// First retry delay after a failed rotation; doubles up to the cap.
const RETRY_BASE: Duration = Duration::from_secs(5);
const RETRY_CAP: Duration = Duration::from_secs(300);

pub fn wal_key(role: &str) -> String {
    format!("{}{role}", layout::database::STATIC_WAL)
}

pub fn root_wal_key(connection: &str) -> String {
    format!("{}{connection}", layout::database::ROOT_WAL)
}

#[derive(Debug, Serialize, Deserialize)]
struct StaticWal {
    username: String,
    password: String,
    created: DateTime<Utc>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct RootWal {
    pub username: String,
    pub old_password: String,
    pub new_password: String,
    pub created: DateTime<Utc>,
}

#[derive(Debug, Clone)]
struct Due {
    at: DateTime<Utc>,
    /// Failed attempts in a row (for the back-off).
    failures: u32,
    /// A write-ahead record found at start-up: rolled forward once only.
    recovered: bool,
}

/// The in-memory side of a mount's queue, shared by the API paths and the
/// scheduler task.
#[derive(Default)]
pub struct Statics {
    /// Serialises static-role writes, rotations and rotate-root on a mount,
    /// so a rotation never races a change of the role it rotates.
    pub lock: tokio::sync::Mutex<()>,
    queue: Mutex<HashMap<String, Due>>,
    wake: Notify,
    task: Mutex<Option<AbortHandle>>,
}

impl Statics {
    /// (Re)schedule a role at `at`, forgetting earlier failures.
    pub fn schedule(&self, name: &str, at: DateTime<Utc>) {
        self.queue().insert(
            name.to_string(),
            Due {
                at,
                failures: 0,
                recovered: false,
            },
        );
        self.wake.notify_one();
    }

    pub fn unschedule(&self, name: &str) {
        self.queue().remove(name);
        self.wake.notify_one();
    }

    /// A rotation failed: try again after a back-off; returns the delay.
    pub fn retry_later(&self, name: &str) -> Duration {
        let mut queue = self.queue();
        let failures = queue.get(name).map(|d| d.failures).unwrap_or(0) + 1;
        let delay = backoff(failures);
        queue.insert(
            name.to_string(),
            Due {
                at: Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default(),
                failures,
                recovered: false,
            },
        );
        drop(queue);
        self.wake.notify_one();
        delay
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, HashMap<String, Due>> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn earliest(&self) -> Option<DateTime<Utc>> {
        self.queue().values().map(|d| d.at).min()
    }

    /// Names due at `now`, earliest first.
    fn due(&self, now: DateTime<Utc>) -> Vec<(String, Due)> {
        let mut due: Vec<(String, Due)> = self
            .queue()
            .iter()
            .filter(|(_, d)| d.at <= now)
            .map(|(n, d)| (n.clone(), d.clone()))
            .collect();
        due.sort_by_key(|(_, d)| d.at);
        due
    }

    /// Stop the mount's scheduler task (unmount).
    pub fn stop(&self) {
        if let Some(task) = self.task.lock().unwrap_or_else(|p| p.into_inner()).take() {
            task.abort();
        }
        self.queue().clear();
    }
}

/// Exponential back-off: 5 s, 10 s, 20 s, ... up to 5 minutes.
fn backoff(failures: u32) -> Duration {
    RETRY_BASE
        .checked_mul(1u32 << failures.saturating_sub(1).min(16))
        .unwrap_or(RETRY_CAP)
        .min(RETRY_CAP)
}

/// Start the scheduler task of a mount: recover what a crash left behind,
/// load the queue from storage, then rotate roles as they fall due.
pub fn start(engine: DatabaseEngine, mount: Arc<Mount>) {
    let statics = engine.statics.clone();
    let handle = tokio::spawn(task(engine, mount));
    if let Some(old) = statics
        .task
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .replace(handle.abort_handle())
    {
        old.abort();
    }
}

/// The scheduler task's body. Every database mount has one, idle nearly all
/// the time: the work it awaits now and then (recovery, a rotation) is
/// boxed, so the task's own allocation stays small (it was 6.9 KB per mount
/// with that work inline, most of the memory a mount cost).
async fn task(engine: DatabaseEngine, mount: Arc<Mount>) {
    // At start-up every mount's task begins at once; each recovery reads
    // storage a few times. Unbounded, 10,000 mounts queued 30,000 reads
    // ahead of the first requests (mounts_bench: the first call after a
    // restart took 318 ms). A few at a time, the requests get their turn.
    // (The semaphore is never closed: acquiring cannot fail.)
    let slot = RECOVERY_SLOTS.acquire().await.ok();
    let recovered = Box::pin(recover(&engine, &mount)).await;
    drop(slot);
    if let Err(e) = recovered {
        tracing::error!(mount = %mount.path(), error = %e, "static role recovery failed");
    }
    run(&engine, &mount).await;
}

/// Mounts recovering their static roles at once (see `task`).
static RECOVERY_SLOTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(4);

async fn run(engine: &DatabaseEngine, mount: &Mount) {
    let statics = &engine.statics;
    loop {
        let wait = statics
            .earliest()
            .map(|at| (at - Utc::now()).to_std().unwrap_or(Duration::ZERO));
        match wait {
            None => statics.wake.notified().await,
            Some(wait) if !wait.is_zero() => {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = statics.wake.notified() => continue,
                }
            }
            Some(_) => {}
        }
        for (name, due) in statics.due(Utc::now()) {
            // One role's failure, even a panic, must not stop the others.
            if let Err(panic) = crate::panic_guard::guard(Box::pin(process(engine, mount, &name, &due))).await {
                let delay = statics.retry_later(&name);
                tracing::error!(role = %name, panic = %panic, retry_in_s = delay.as_secs(), "static role rotation panicked; retrying later");
            }
        }
    }
}

/// Handle one due role: rotate it, or (outside a schedule's window) skip to
/// its next scheduled time; reschedule either way.
async fn process(engine: &DatabaseEngine, mount: &Mount, name: &str, due: &Due) {
    let statics = &engine.statics;
    let _guard = statics.lock.lock().await;
    // The role may have changed or gone while this one waited for the lock.
    match statics.queue().get(name) {
        Some(d) if d.at <= Utc::now() => {}
        _ => return,
    }
    let mut role = match path_static_roles::load(mount, name).await {
        Ok(Some(role)) => role,
        Ok(None) => {
            statics.queue().remove(name);
            return;
        }
        Err(e) => {
            let delay = statics.retry_later(name);
            tracing::warn!(role = name, error = %e, retry_in_s = delay.as_secs(), "could not read a static role");
            return;
        }
    };
    let now = Utc::now();
    let scheduled = role.next_vault_rotation.unwrap_or(due.at);
    if role.window_closed(scheduled, now) {
        // Vault's rule: outside the window, wait for the next scheduled time.
        role.next_vault_rotation = role.next_scheduled(now);
        let stored = path_static_roles::store(mount, name, &role).await;
        match (stored, role.next_vault_rotation) {
            (Ok(()), Some(at)) => statics.schedule(name, at),
            (Ok(()), None) => statics.unschedule(name),
            (Err(e), _) => {
                statics.retry_later(name);
                tracing::warn!(role = name, error = %e, "could not store a static role");
            }
        }
        tracing::info!(
            role = name,
            "rotation window passed; waiting for the next scheduled time"
        );
        return;
    }
    match rotate(engine, mount, name, &mut role).await {
        Ok(()) => {
            tracing::info!(role = name, "static role rotated");
            match role.next_vault_rotation {
                Some(at) => statics.schedule(name, at),
                None => statics.unschedule(name),
            }
        }
        Err(e) => {
            if due.recovered {
                // Rolled forward once; from now on generate a new password.
                if let Err(e) = mount.storage.delete(&wal_key(name)).await {
                    tracing::warn!(role = name, error = %e, "could not drop a write-ahead record");
                }
            }
            let delay = statics.retry_later(name);
            tracing::warn!(role = name, error = %e, retry_in_s = delay.as_secs(), "static role rotation failed; the last password stays in use");
        }
    }
}

/// Set a new password for a static role's user and store it. The caller
/// holds `statics.lock`. The new password is recorded (write-ahead) before
/// the database sees it; a recorded one is reused, because a failed attempt
/// may have reached the database. On failure the role is unchanged.
pub async fn rotate(engine: &DatabaseEngine, mount: &Mount, name: &str, role: &mut StaticRole) -> Result<()> {
    let password = change_password(engine, mount, name, role).await?;
    commit_rotation(mount, name, role, password).await
}

/// The first half of a rotation: record a new password (or reuse the
/// recorded one) and have the database take it. Returns the password, which
/// from now on lives only in the write-ahead record until
/// [`commit_rotation`] stores it in the role.
pub async fn change_password(engine: &DatabaseEngine, mount: &Mount, name: &str, role: &StaticRole) -> Result<String> {
    let config = engine.config(mount, &role.db_name).await?;
    let recorded: Option<StaticWal> = mount.storage.get_json(&wal_key(name)).await?;
    let password = match recorded {
        Some(w) if w.username == role.username && !w.password.is_empty() => w.password,
        _ => {
            let password = generate_password(engine, mount, &config.password_policy).await?;
            let wal = StaticWal {
                username: role.username.clone(),
                password: password.clone(),
                created: Utc::now(),
            };
            mount.storage.put_json(&wal_key(name), &wal).await?;
            password
        }
    };
    set_password(
        engine,
        mount,
        &role.db_name,
        &config,
        &role.username,
        &password,
        &role.rotation_statements,
    )
    .await?;
    Ok(password)
}

/// The second half: the role takes the password the database now has, and
/// only then is the write-ahead record dropped. If storing fails the record
/// stays, so the next attempt (or start-up recovery) reuses the password.
pub async fn commit_rotation(mount: &Mount, name: &str, role: &mut StaticRole, password: String) -> Result<()> {
    let now = Utc::now();
    let mut rotated = role.clone();
    rotated.password = password;
    rotated.last_vault_rotation = Some(now);
    rotated.next_vault_rotation = role.next_after(now);
    path_static_roles::store(mount, name, &rotated).await?;
    *role = rotated;
    mount.storage.delete(&wal_key(name)).await?;
    Ok(())
}

/// Have the driver change a user's password (update-user).
pub async fn set_password(
    engine: &DatabaseEngine,
    mount: &Mount,
    connection: &str,
    config: &DbConfig,
    username: &str,
    password: &str,
    statements: &[String],
) -> Result<()> {
    let request = db::UpdateUserRequest {
        username: username.to_string(),
        password: Some(db::ChangePassword {
            new_password: password.to_string(),
            statements: statements.to_vec(),
        }),
        expiration: None,
    };
    let mut driver = engine.driver(mount, connection, config).await?;
    driver
        .update_user(&config.details_json(), &request)
        .await
        .map_err(|e| redact(plugin_error(e), password))
}

/// Never echo a password in an error; only its whole occurrences go, so a
/// short one leaves the words around it readable.
fn redact(e: Error, secret: &str) -> Error {
    match e {
        Error::Internal(m) => Error::Internal(redact_secrets(&m, &[secret], "[password]")),
        Error::BadRequest(m) => Error::BadRequest(redact_secrets(&m, &[secret], "[password]")),
        other => other,
    }
}

/// Start-up: finish or undo what a crash interrupted, then fill the queue.
async fn recover(engine: &DatabaseEngine, mount: &Mount) -> Result<()> {
    for connection in mount.storage.list(layout::database::ROOT_WAL).await? {
        let _guard = engine.statics.lock.lock().await;
        if let Err(e) = recover_root(engine, mount, &connection).await {
            tracing::error!(connection = %connection, error = %e, "could not roll back an interrupted rotate-root; will try again at the next start");
        }
    }
    super::path_cluster::recover_all(engine, mount).await?;
    let now = Utc::now();
    let roles = mount.storage.list(layout::database::STATIC_ROLE).await?;
    let mut queue = HashMap::new();
    for name in &roles {
        let Some(role) = path_static_roles::load(mount, name).await? else {
            continue;
        };
        let recovered = mount.storage.get(&wal_key(name)).await?.is_some();
        let at = if recovered {
            Some(now)
        } else {
            // Due while the server was down: now.
            role.next_vault_rotation
                .or_else(|| role.last_vault_rotation.and_then(|l| role.next_after(l)))
                .map(|at| at.max(now))
        };
        if let Some(at) = at {
            queue.insert(
                name.clone(),
                Due {
                    at,
                    failures: 0,
                    recovered,
                },
            );
        }
    }
    // A record without a role is a creation that was interrupted (deleting
    // a role deletes its record). The database may already have the
    // recorded password, so the record is kept: writing the role again with
    // the same username reuses it.
    for name in mount.storage.list(layout::database::STATIC_WAL).await? {
        if !roles.contains(&name) {
            tracing::warn!(mount = %mount.path(), role = %name, "a static role's creation was interrupted after its new password was recorded; write the role again to finish it");
        }
    }
    let count = queue.len();
    {
        let mut q = engine.statics.queue();
        // Writes that raced the start-up win over what was read.
        for (name, due) in queue {
            q.entry(name).or_insert(due);
        }
    }
    engine.statics.wake.notify_one();
    if count > 0 {
        tracing::info!(mount = %mount.path(), roles = count, "static roles scheduled");
    }
    Ok(())
}

/// What to do about an interrupted rotate-root, given which password logs in.
#[derive(Debug, PartialEq, Eq)]
enum RootRecovery {
    /// The stored config works and holds the old password: just forget the record.
    Nothing,
    /// The old password works but the config holds the new one: store the old one.
    StoreOld,
    /// Only the new password works: set the old one in the database again,
    /// then store it.
    RestoreOld,
    /// Nothing works: keep the record and try again later.
    GiveUp,
}

fn root_plan(stored: &str, wal: &RootWal, works: impl Fn(&str) -> bool) -> RootRecovery {
    if works(&wal.old_password) {
        if stored == wal.old_password {
            RootRecovery::Nothing
        } else {
            RootRecovery::StoreOld
        }
    } else if works(&wal.new_password) {
        RootRecovery::RestoreOld
    } else {
        RootRecovery::GiveUp
    }
}

/// Roll an interrupted rotate-root back to the old, working password.
pub(super) async fn recover_root(engine: &DatabaseEngine, mount: &Mount, connection: &str) -> Result<()> {
    let Some(wal) = mount.storage.get_json::<RootWal>(&root_wal_key(connection)).await? else {
        return Ok(());
    };
    let Some(config) = path_config_connection::load(mount, connection).await? else {
        mount.storage.delete(&root_wal_key(connection)).await?;
        return Ok(());
    };
    let stored = config
        .connection_details
        .get("password")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_string();
    let mut works = HashMap::new();
    for candidate in [&wal.old_password, &wal.new_password] {
        let ok = logs_in(engine, mount, connection, &with_password(&config, candidate)).await;
        works.insert(candidate.clone(), ok);
    }
    let plan = root_plan(&stored, &wal, |p| works.get(p).copied().unwrap_or(false));
    tracing::warn!(connection = %connection, action = ?plan, "recovering an interrupted rotate-root");
    match plan {
        RootRecovery::Nothing => {}
        RootRecovery::StoreOld => {
            path_config_connection::store(mount, connection, &with_password(&config, &wal.old_password)).await?;
        }
        RootRecovery::RestoreOld => {
            let current = with_password(&config, &wal.new_password);
            set_password(
                engine,
                mount,
                connection,
                &current,
                &wal.username,
                &wal.old_password,
                &config.root_credentials_rotate_statements,
            )
            .await?;
            path_config_connection::store(mount, connection, &with_password(&config, &wal.old_password)).await?;
        }
        RootRecovery::GiveUp => {
            return Err(Error::internal("neither the old nor the new root password logs in"));
        }
    }
    engine.release(mount, connection);
    mount.storage.delete(&root_wal_key(connection)).await?;
    Ok(())
}

pub fn with_password(config: &DbConfig, password: &str) -> DbConfig {
    let mut c = config.clone();
    c.connection_details
        .insert("password".into(), serde_json::Value::String(password.to_string()));
    c
}

/// True when the driver can log in with this configuration.
pub(super) async fn logs_in(engine: &DatabaseEngine, mount: &Mount, connection: &str, config: &DbConfig) -> bool {
    let Ok(mut driver) = engine.driver(mount, connection, config).await else {
        return false;
    };
    driver.initialize(&config.details_json(), true).await.is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 11, item 9: the idle task every database mount keeps must
    /// stay small (it was 6.9 KB, with recovery and rotation inline).
    #[tokio::test]
    async fn the_scheduler_task_of_a_mount_is_small() {
        let mem: crate::storage::Storage = Arc::new(crate::storage::MemoryBackend::new());
        let rt = crate::runtime::Runtime::new(Duration::from_secs(5)).expect("runtime");
        let engine = DatabaseEngine::new(rt, Arc::default(), Arc::default());
        let mount = Arc::new(Mount {
            path: "db/".into(),
            uuid: "u".into(),
            default_lease_ttl: 0,
            max_lease_ttl: 0,
            storage: crate::storage::View::new(mem, layout::mount("u")),
            system: Arc::new(crate::logical::mount::testing::NoSystem),
        });
        let size = std::mem::size_of_val(&task(engine, mount));
        assert!(size <= 1024, "a mount's scheduler task takes {size} bytes");
    }

    #[test]
    fn backoff_doubles_up_to_five_minutes() {
        let secs: Vec<u64> = (1..=8).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(secs, vec![5, 10, 20, 40, 80, 160, 300, 300]);
        assert_eq!(backoff(1000).as_secs(), 300);
    }

    #[test]
    fn queue_orders_due_roles_and_retries_later() {
        let s = Statics::default();
        let now = Utc::now();
        s.schedule("b", now - chrono::Duration::seconds(1));
        s.schedule("a", now - chrono::Duration::seconds(5));
        s.schedule("c", now + chrono::Duration::seconds(60));
        let due: Vec<String> = s.due(now).into_iter().map(|(n, _)| n).collect();
        assert_eq!(due, vec!["a", "b"]);
        assert_eq!(s.earliest(), Some(now - chrono::Duration::seconds(5)));
        assert_eq!(s.retry_later("a").as_secs(), 5);
        assert_eq!(s.retry_later("a").as_secs(), 10);
        let due: Vec<String> = s.due(now).into_iter().map(|(n, _)| n).collect();
        assert_eq!(due, vec!["b"]);
        s.schedule("a", now);
        assert_eq!(s.queue()["a"].failures, 0);
        s.unschedule("b");
        assert!(!s.queue().contains_key("b"));
    }

    fn wal() -> RootWal {
        RootWal {
            username: "root".into(),
            old_password: "old".into(),
            new_password: "new".into(),
            created: Utc::now(),
        }
    }

    #[test]
    fn interrupted_root_rotation_rolls_back_to_the_old_password() {
        let w = wal();
        // Crashed before the database changed: nothing to undo.
        assert_eq!(root_plan("old", &w, |p| p == "old"), RootRecovery::Nothing);
        // Crashed after the database changed, before the config was stored.
        assert_eq!(root_plan("old", &w, |p| p == "new"), RootRecovery::RestoreOld);
        // Config stored with the new one but the database has the old one.
        assert_eq!(root_plan("new", &w, |p| p == "old"), RootRecovery::StoreOld);
        // Both stored: roll back still.
        assert_eq!(root_plan("new", &w, |p| p == "new"), RootRecovery::RestoreOld);
        assert_eq!(root_plan("old", &w, |_| false), RootRecovery::GiveUp);
    }
}
