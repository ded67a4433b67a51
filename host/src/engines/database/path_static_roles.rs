//! `static-roles/:name` and `static-creds/:name`: static roles, each managing
//! the password of one existing database user. Creating a role rotates the
//! password at once (a missing user fails the create and stores nothing);
//! the rotation scheduler (`scheduler.rs`) rotates it every
//! `rotation_period`, or at the minutes a `rotation_schedule` (5-field cron)
//! names within `rotation_window`. Deleting a role leaves the user alone.

use super::cron::Schedule;
use super::{DatabaseEngine, multierror, path_roles, scheduler};
use crate::error::{Error, Result};
use crate::framework::ttl;
use crate::framework::{FieldData, Req};
use crate::logical::Mount;
use crate::logical::{Reply, Response};
use crate::storage::layout;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// Vault's queue tick: no period shorter than this.
pub const MIN_ROTATION_PERIOD: i64 = 5;
/// Vault's smallest rotation window.
pub const MIN_ROTATION_WINDOW: i64 = 3600;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StaticRole {
    pub db_name: String,
    pub username: String,
    /// The current password; never written to a log. Storage is encrypted
    /// at rest by the barrier.
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub rotation_statements: Vec<String>,
    #[serde(default = "password_type")]
    pub credential_type: String,
    /// Seconds; 0 when the role rotates on a schedule.
    #[serde(default)]
    pub rotation_period: i64,
    /// A 5-field cron expression; empty when the role rotates on a period.
    #[serde(default)]
    pub rotation_schedule: String,
    /// Seconds after a scheduled time in which the rotation may still run
    /// (0: until the next scheduled time).
    #[serde(default)]
    pub rotation_window: i64,
    #[serde(default)]
    pub last_vault_rotation: Option<DateTime<Utc>>,
    /// When the next rotation is due (the persistent queue's priority).
    #[serde(default)]
    pub next_vault_rotation: Option<DateTime<Utc>>,
}

fn password_type() -> String {
    "password".into()
}

impl StaticRole {
    pub fn uses_period(&self) -> bool {
        self.rotation_period > 0 && self.rotation_schedule.is_empty()
    }

    fn schedule(&self) -> Option<Schedule> {
        (!self.rotation_schedule.is_empty())
            .then(|| Schedule::parse(&self.rotation_schedule).ok())
            .flatten()
    }

    /// The rotation due after one at `t` (None: never, or past the end of
    /// time, which a checked write never stores).
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.uses_period() {
            ttl::add_secs(t, self.rotation_period)
        } else {
            self.schedule().and_then(|s| s.next(t))
        }
    }

    /// The next scheduled time after `now`, for a schedule-based role whose
    /// rotation fell outside its window.
    pub fn next_scheduled(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.schedule().and_then(|s| s.next(now))
    }

    /// True when a schedule-based role's window for the rotation due at
    /// `due` has closed by `now` (Vault then skips to the next time).
    pub fn window_closed(&self, due: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        !self.uses_period()
            && self.rotation_window > 0
            && ttl::add_secs(due, self.rotation_window).is_some_and(|end| now >= end)
    }

    /// Seconds until the password changes (Vault's CredentialTTL): from the
    /// last rotation for a period, from now for a schedule; never negative.
    fn ttl(&self, now: DateTime<Utc>) -> i64 {
        let next = if self.uses_period() {
            self.last_vault_rotation
                .and_then(|l| ttl::add_secs(l, self.rotation_period))
        } else {
            self.next_scheduled(now)
        };
        next.map(|n| ((n - now).num_milliseconds() as f64 / 1000.0).round() as i64)
            .unwrap_or(0)
            .max(0)
    }

    /// The rotation fields that Vault shows: one of period or schedule.
    fn rotation_fields(&self, data: &mut Map<String, Value>) {
        if self.uses_period() {
            data.insert("rotation_period".into(), json!(self.rotation_period));
        } else if !self.rotation_schedule.is_empty() {
            data.insert("rotation_schedule".into(), json!(self.rotation_schedule));
            if self.rotation_window != 0 {
                data.insert("rotation_window".into(), json!(self.rotation_window));
            }
        }
    }
}

/// Go's RFC 3339 with nanoseconds, trailing zeros dropped, as Vault prints
/// `time.Time`.
pub fn rfc3339_nano(t: DateTime<Utc>) -> String {
    let base = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let nanos = t.timestamp_subsec_nanos();
    if nanos == 0 {
        format!("{base}Z")
    } else {
        let frac = format!("{nanos:09}");
        format!("{base}.{}Z", frac.trim_end_matches('0'))
    }
}

pub fn key(name: &str) -> String {
    format!("{}{name}", layout::database::STATIC_ROLE)
}

pub async fn load(mount: &Mount, name: &str) -> Result<Option<StaticRole>> {
    Ok(mount.storage.get_json(&key(name)).await?)
}

pub async fn store(mount: &Mount, name: &str, role: &StaticRole) -> Result<()> {
    Ok(mount.storage.put_json(&key(name), role).await?)
}

pub async fn list(_: &DatabaseEngine, r: &Req<'_>) -> Reply {
    let keys = r.mount()?.storage.list(layout::database::STATIC_ROLE).await?;
    if keys.is_empty() {
        return Err(Error::NotFound);
    }
    Ok(Some(Response::list(keys)))
}

pub async fn exists(_: &DatabaseEngine, r: &Req<'_>) -> Result<bool> {
    Ok(load(r.mount()?, &r.fields.str("name")).await?.is_some())
}

pub async fn read(_: &DatabaseEngine, r: &Req<'_>) -> Reply {
    Ok(load(r.mount()?, &r.fields.str("name"))
        .await?
        .map(|r| read_response(&r)))
}

pub async fn delete(engine: &DatabaseEngine, r: &Req<'_>) -> Reply {
    let (mount, name) = (r.mount()?, &r.fields.str("name"));
    let _guard = engine.statics.lock.lock().await;
    engine.statics.unschedule(name);
    mount.storage.delete(&key(name)).await?;
    mount.storage.delete(&scheduler::wal_key(name)).await?;
    Ok(None)
}

fn read_response(r: &StaticRole) -> Response {
    let mut data = Map::new();
    data.insert("db_name".into(), json!(r.db_name));
    data.insert("username".into(), json!(r.username));
    data.insert("rotation_statements".into(), json!(r.rotation_statements));
    data.insert("credential_type".into(), json!(r.credential_type));
    if let Some(t) = r.last_vault_rotation {
        data.insert("last_vault_rotation".into(), json!(rfc3339_nano(t)));
    }
    r.rotation_fields(&mut data);
    Response::data(Value::Object(data))
}

/// `static-creds/:name`: the current password. A failing rotation leaves
/// the last working one here.
pub async fn creds(_: &DatabaseEngine, r: &Req<'_>) -> Reply {
    let (mount, name) = (r.mount()?, &r.fields.str("name"));
    let role = load(mount, name)
        .await?
        .ok_or_else(|| Error::bad(format!("unknown role: {name}")))?;
    let now = Utc::now();
    let mut data = Map::new();
    data.insert("username".into(), json!(role.username));
    data.insert("password".into(), json!(role.password));
    data.insert("ttl".into(), json!(role.ttl(now)));
    data.insert(
        "last_vault_rotation".into(),
        json!(role.last_vault_rotation.map(rfc3339_nano)),
    );
    role.rotation_fields(&mut data);
    Ok(Some(Response::data(Value::Object(data))))
}

/// The validated settings of a write, applied over the stored role (or a
/// new one). Everything is checked before anything is stored or rotated.
fn parse(existing: Option<&StaticRole>, d: &FieldData) -> Result<StaticRole> {
    let creating = existing.is_none();
    let mut role = existing.cloned().unwrap_or_default();
    if let Some(db) = d.opt_str("db_name") {
        role.db_name = db;
    }
    if role.db_name.is_empty() {
        return Err(Error::bad("database name is a required field"));
    }
    let username = d.str("username");
    if creating {
        if username.is_empty() {
            return Err(Error::bad("username is a required field to create a static account"));
        }
        role.username = username;
    } else if !username.is_empty() && username != role.username {
        return Err(Error::bad("cannot update static account username"));
    }

    let period = d.opt_duration("rotation_period");
    let schedule = d.opt_str("rotation_schedule").filter(|s| !s.is_empty());
    let window = d.opt_duration("rotation_window");
    match (&period, &schedule) {
        (Some(_), Some(_)) => {
            return Err(Error::bad(
                "mutually exclusive fields rotation_period and rotation_schedule were both specified; only one of them can be provided",
            ));
        }
        (None, None) if creating => {
            return Err(Error::bad(
                "one of rotation_schedule or rotation_period must be provided to create a static account",
            ));
        }
        _ => {}
    }
    if let Some(period) = period {
        if period < MIN_ROTATION_PERIOD {
            return Err(Error::bad(format!(
                "rotation_period must be {MIN_ROTATION_PERIOD} seconds or more"
            )));
        }
        if window.is_some() {
            return Err(Error::bad("rotation_window is invalid with use of rotation_period"));
        }
        role.rotation_period = period;
        role.rotation_schedule.clear();
        role.rotation_window = 0;
    }
    if let Some(schedule) = schedule {
        Schedule::parse(&schedule).map_err(|e| Error::bad(format!("could not parse rotation_schedule: {e}")))?;
        role.rotation_schedule = schedule;
        // A window given before stays (as in Vault) unless replaced below.
        role.rotation_period = 0;
    }
    if let Some(window) = window {
        if role.rotation_schedule.is_empty() {
            return Err(Error::bad("rotation_window is invalid with use of rotation_period"));
        }
        if window < MIN_ROTATION_WINDOW {
            return Err(Error::bad(format!(
                "rotation_window is invalid: rotation_window must be {MIN_ROTATION_WINDOW} seconds or more"
            )));
        }
        role.rotation_window = window;
    }
    // Everything a rotation will compute is computed once here, before the
    // database is touched: a rotation that changed the password and then
    // failed to schedule the next one would lose it.
    if role.uses_period() && role.next_after(Utc::now()).is_none() {
        return Err(Error::bad("rotation_period is out of range"));
    }
    if let Some(v) = d.opt_list("rotation_statements") {
        role.rotation_statements = v;
    }
    if let Some(t) = d.opt_str("credential_type") {
        role.credential_type = t;
    }
    match role.credential_type.as_str() {
        "" => role.credential_type = password_type(),
        "password" => {}
        "rsa_private_key" | "client_certificate" => {
            return Err(Error::bad(format!(
                "credential_type {:?} is not supported for static roles yet: only \"password\" is",
                role.credential_type
            )));
        }
        other => return Err(Error::bad(format!("invalid credential_type {other:?}"))),
    }
    Ok(role)
}

pub async fn write(engine: &DatabaseEngine, r: &Req<'_>) -> Reply {
    let (mount, name) = (r.mount()?, &r.fields.str("name"));
    let _guard = engine.statics.lock.lock().await;
    if path_roles::load(mount, name).await?.is_some() {
        return Err(Error::bad("Role and Static Role names must be unique"));
    }
    let existing = load(mount, name).await?;
    let mut role = parse(existing.as_ref(), &r.fields)?;
    let config = engine.config(mount, &role.db_name).await.map_err(multierror)?;
    if let Some(link) = &config.cluster {
        // The management role could take over any login in the cluster.
        return Err(Error::bad(format!(
            "static roles are not supported on database {:?} of cluster {:?}",
            link.database, link.cluster
        )));
    }
    if !config.allows(name) {
        return Err(multierror(Error::internal(format!("{name:?} is not an allowed role"))));
    }

    if existing.is_none() {
        // Creating: take over the user by setting a password now. If the
        // database refuses, nothing is stored (its write-ahead record is
        // removed here).
        let password = match scheduler::change_password(engine, mount, name, &role).await {
            Ok(password) => password,
            Err(e) => {
                mount.storage.delete(&scheduler::wal_key(name)).await?;
                return Err(Error::bad(format!("error setting credentials: {}", message(&e))));
            }
        };
        // The database has the new password: from here a failure keeps the
        // write-ahead record, and writing the role again reuses it.
        scheduler::commit_rotation(mount, name, &mut role, password)
            .await
            .map_err(|e| {
                Error::internal(format!(
                    "the password was changed but the role could not be stored ({}); write the role again to finish",
                    message(&e)
                ))
            })?;
    } else {
        // Updating: no rotation; a new period or schedule counts from the
        // last rotation (as Vault does).
        let changed = r.fields.is_given("rotation_period") || r.fields.is_given("rotation_schedule");
        if changed {
            let from = role.last_vault_rotation.unwrap_or_else(Utc::now);
            role.next_vault_rotation = role.next_after(from);
        }
        store(mount, name, &role).await?;
    }
    match role.next_vault_rotation {
        Some(at) => engine.statics.schedule(name, at),
        None => engine.statics.unschedule(name),
    }
    Ok(None)
}

fn message(e: &Error) -> String {
    match e {
        Error::Internal(m) | Error::BadRequest(m) => m.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request body as the router converts it for `static-roles/:name`.
    fn fields(body: &Value) -> FieldData {
        super::super::paths::BACKEND
            .resolve("static-roles/r", body.as_object().unwrap())
            .unwrap()
            .1
    }

    fn parsed(body: Value) -> Result<StaticRole> {
        parse(None, &fields(&body))
    }

    fn err(body: Value) -> String {
        parsed(body).unwrap_err().to_string()
    }

    #[test]
    fn a_period_or_a_schedule_with_a_window() {
        let r = parsed(json!({"db_name": "pg", "username": "u", "rotation_period": "5s"})).unwrap();
        assert_eq!((r.rotation_period, r.rotation_schedule.as_str()), (5, ""));
        let r = parsed(
            json!({"db_name": "pg", "username": "u", "rotation_schedule": "*/1 * * * *", "rotation_window": "1h"}),
        )
        .unwrap();
        assert_eq!((r.rotation_period, r.rotation_window), (0, 3600));
        assert_eq!(r.credential_type, "password");
    }

    #[test]
    fn bad_settings_are_refused() {
        assert_eq!(
            err(json!({"db_name": "pg", "rotation_period": "5s"})),
            "username is a required field to create a static account"
        );
        assert_eq!(
            err(json!({"db_name": "pg", "username": "u", "rotation_period": "4s"})),
            "rotation_period must be 5 seconds or more"
        );
        assert!(
            err(json!({"db_name": "pg", "username": "u", "rotation_period": "1h", "rotation_schedule": "* * * * *"}))
                .starts_with("mutually exclusive fields")
        );
        assert!(
            err(json!({"db_name": "pg", "username": "u", "rotation_schedule": "61 * * * *"}))
                .starts_with("could not parse rotation_schedule")
        );
        assert!(
            err(json!({"db_name": "pg", "username": "u", "rotation_schedule": "* * * * *", "rotation_window": "59m"}))
                .contains("rotation_window must be 3600 seconds or more")
        );
        assert_eq!(
            err(json!({"db_name": "pg", "username": "u", "rotation_period": "1h", "rotation_window": "1h"})),
            "rotation_window is invalid with use of rotation_period"
        );
        assert!(err(json!({"db_name": "pg", "username": "u"})).starts_with("one of rotation_schedule"));
        assert_eq!(
            err(json!({"username": "u", "rotation_period": "1h"})),
            "database name is a required field"
        );
    }

    #[test]
    fn updates_keep_what_is_not_given_and_switch_modes() {
        let r = parsed(json!({"db_name": "pg", "username": "u", "rotation_period": "1h"})).unwrap();
        let u = parse(Some(&r), &fields(&json!({"rotation_schedule": "0 * * * *"}))).unwrap();
        assert_eq!(
            (u.rotation_period, u.rotation_schedule.as_str(), u.username.as_str()),
            (0, "0 * * * *", "u")
        );
        assert!(parse(Some(&r), &fields(&json!({"username": "other"}))).is_err());
    }

    #[test]
    fn times_print_like_go() {
        let t = DateTime::parse_from_rfc3339("2026-11-22T09:23:28.729813476Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(rfc3339_nano(t), "2026-11-22T09:23:28.729813476Z");
        let t = DateTime::parse_from_rfc3339("2026-11-22T09:23:28.5Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(rfc3339_nano(t), "2026-11-22T09:23:28.5Z");
        let t = DateTime::parse_from_rfc3339("2026-11-22T09:23:28Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(rfc3339_nano(t), "2026-11-22T09:23:28Z");
    }

    #[test]
    fn a_missed_schedule_waits_for_the_next_time_after_its_window() {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let r = StaticRole {
            rotation_schedule: "0 3 * * *".into(),
            rotation_window: 3600,
            ..Default::default()
        };
        let due = at("2026-11-25T03:00:00Z");
        assert!(!r.window_closed(due, at("2026-11-25T03:59:59Z")));
        assert!(r.window_closed(due, at("2026-11-25T04:00:00Z")));
        assert_eq!(
            r.next_scheduled(at("2026-11-25T04:00:00Z")),
            Some(at("2026-11-26T03:00:00Z"))
        );
        // Without a window, and for a period, a late rotation still runs.
        let open = StaticRole {
            rotation_window: 0,
            ..r.clone()
        };
        assert!(!open.window_closed(due, at("2026-11-25T12:00:00Z")));
        let period = StaticRole {
            rotation_period: 60,
            ..Default::default()
        };
        assert!(!period.window_closed(due, at("2026-11-26T12:00:00Z")));
        assert_eq!(period.next_after(due), Some(at("2026-11-25T03:01:00Z")));
    }

    #[test]
    fn ttl_counts_down_to_the_next_rotation() {
        let now = Utc::now();
        let r = StaticRole {
            rotation_period: 5,
            last_vault_rotation: Some(now - chrono::Duration::seconds(3)),
            ..Default::default()
        };
        assert_eq!(r.ttl(now), 2);
        let late = StaticRole {
            rotation_period: 5,
            last_vault_rotation: Some(now - chrono::Duration::seconds(30)),
            ..Default::default()
        };
        assert_eq!(late.ttl(now), 0);
    }
}
