//! Static roles end to end: a real `warden server -dev` manages the password
//! of an existing PostgreSQL login. Creating the role rotates it at once,
//! the scheduler rotates it on a period or a cron schedule, rotate-role
//! rotates it now, every issued password logs in and the previous one stops
//! working, a failing rotation keeps the last working password, and bad
//! input is refused with nothing stored.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Timelike, Utc};
use serde_json::{Value, json};
use sqlx::Connection;
use warden_tests::{DbEnv, check_error, eventually, keys_of};

const ALTER: &str = "ALTER ROLE \"{{name}}\" WITH PASSWORD '{{password}}'";

async fn static_creds(env: &DbEnv, role: &str) -> Result<Value> {
    let body = env
        .client
        .expect("GET", &format!("/v1/db/static-creds/{role}"), None, 200)
        .await?;
    Ok(body["data"].clone())
}

fn text(v: &Value, field: &str) -> Result<String> {
    v[field]
        .as_str()
        .map(str::to_string)
        .with_context(|| format!("no string {field}: {v}"))
}

fn time_of(v: &Value) -> Result<DateTime<Utc>> {
    let s = text(v, "last_vault_rotation")?;
    Ok(DateTime::parse_from_rfc3339(&s)
        .with_context(|| format!("last_vault_rotation {s:?} is not RFC 3339"))?
        .with_timezone(&Utc))
}

#[tokio::test]
async fn static_role_endpoints_follow_vault() -> Result<()> {
    let env = DbEnv::start("static_api", &["*"]).await?;
    let (user, initial) = env.scratch.create_login("st_api").await?;
    let c = &env.client;

    c.expect(
        "POST",
        "/v1/db/static-roles/app",
        Some(json!({"db_name": "pg", "username": user, "rotation_period": "1h"})),
        204,
    )
    .await?;
    // Taking the user over changed its password.
    assert!(
        !env.scratch.logs_in(&user, &initial).await,
        "the initial password still works"
    );

    let role = c.expect("GET", "/v1/db/static-roles/app", None, 200).await?;
    let data = &role["data"];
    let mut keys: Vec<&String> = data.as_object().context("data")?.keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        vec![
            "credential_type",
            "db_name",
            "last_vault_rotation",
            "rotation_period",
            "rotation_statements",
            "username"
        ],
        "{role}"
    );
    assert_eq!(data["credential_type"], json!("password"));
    assert_eq!(data["db_name"], json!("pg"));
    assert_eq!(data["rotation_period"], json!(3600));
    assert_eq!(data["rotation_statements"], json!([]));
    assert_eq!(data["username"], json!(user));
    let created = time_of(data)?;
    assert!((Utc::now() - created).num_seconds().abs() < 30, "{created}");

    // static-creds: the fields, their types, and a password that logs in.
    let creds = static_creds(&env, "app").await?;
    let mut keys: Vec<&String> = creds.as_object().context("data")?.keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        vec!["last_vault_rotation", "password", "rotation_period", "ttl", "username"],
        "{creds}"
    );
    assert_eq!(creds["username"], json!(user));
    assert_eq!(creds["rotation_period"], json!(3600));
    let ttl = creds["ttl"].as_i64().context("ttl is an integer")?;
    assert!((3500..=3600).contains(&ttl), "ttl {ttl}");
    assert_eq!(time_of(&creds)?, created);
    let first = text(&creds, "password")?;
    assert!(
        env.scratch.logs_in(&user, &first).await,
        "static-creds password does not log in"
    );

    // LIST, with and without ?list=true.
    let (status, list) = c.list("/v1/db/static-roles").await?;
    assert_eq!(status, 200, "{list}");
    assert_eq!(keys_of(&list)?, vec!["app"]);
    let list = c.expect("GET", "/v1/db/static-roles?list=true", None, 200).await?;
    assert_eq!(keys_of(&list)?, vec!["app"]);

    // rotate-role: a new password that works; the old one stops working.
    c.expect("POST", "/v1/db/rotate-role/app", None, 204).await?;
    let rotated = static_creds(&env, "app").await?;
    let second = text(&rotated, "password")?;
    assert_ne!(first, second);
    assert!(time_of(&rotated)? > created);
    assert!(env.scratch.logs_in(&user, &second).await);
    assert!(
        !env.scratch.logs_in(&user, &first).await,
        "the rotated-away password still works"
    );

    // Update the period: no rotation, the new period shows.
    c.expect(
        "POST",
        "/v1/db/static-roles/app",
        Some(json!({"db_name": "pg", "username": user, "rotation_period": "2h"})),
        204,
    )
    .await?;
    let updated = static_creds(&env, "app").await?;
    assert_eq!(updated["rotation_period"], json!(7200));
    assert_eq!(text(&updated, "password")?, second);
    let (status, body) = c
        .post(
            "/v1/db/static-roles/app",
            json!({"db_name": "pg", "username": "someone_else", "rotation_period": "2h"}),
        )
        .await?;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body, json!({"errors": ["cannot update static account username"]}));

    // Names are shared with dynamic roles; creds/ and static-creds/ do not mix.
    let (status, body) = c
        .post(
            "/v1/db/roles/app",
            json!({"db_name": "pg", "creation_statements": [warden_tests::CREATE_ROLE]}),
        )
        .await?;
    assert_eq!(
        (status, body),
        (400, json!({"errors": ["Role and Static Role names must be unique"]}))
    );
    env.write_role("dyn", json!({})).await?;
    let (status, body) = c
        .post(
            "/v1/db/static-roles/dyn",
            json!({"db_name": "pg", "username": user, "rotation_period": "1h"}),
        )
        .await?;
    assert_eq!(
        (status, body),
        (400, json!({"errors": ["Role and Static Role names must be unique"]}))
    );
    let (status, body) = c.get("/v1/db/creds/app").await?;
    assert_eq!((status, body), (400, json!({"errors": ["unknown role: app"]})));
    let (status, body) = c.get("/v1/db/static-creds/dyn").await?;
    assert_eq!((status, body), (400, json!({"errors": ["unknown role: dyn"]})));
    let (status, body) = c.get("/v1/db/static-creds/nope").await?;
    assert_eq!((status, body), (400, json!({"errors": ["unknown role: nope"]})));
    let (status, body) = c.post("/v1/db/rotate-role/nope", json!({})).await?;
    assert_eq!(
        (status, body),
        (400, json!({"errors": ["no static role found for role name"]}))
    );
    let (status, body) = c.get("/v1/db/static-roles/nope").await?;
    assert_eq!((status, body), (404, json!({"errors": []})));

    // DELETE: 204 (twice), the role is gone, the database user stays and
    // keeps its last password.
    c.expect("DELETE", "/v1/db/static-roles/app", None, 204).await?;
    c.expect("DELETE", "/v1/db/static-roles/app", None, 204).await?;
    let (status, _) = c.get("/v1/db/static-roles/app").await?;
    assert_eq!(status, 404);
    let (status, _) = c.list("/v1/db/static-roles").await?;
    assert_eq!(status, 404);
    assert!(
        env.scratch.role_exists(&user).await?,
        "deleting the static role dropped the user"
    );
    assert!(env.scratch.logs_in(&user, &second).await);
    Ok(())
}

#[tokio::test]
async fn a_five_second_period_rotates_repeatedly_and_every_password_works() -> Result<()> {
    let env = DbEnv::start("static_period", &["*"]).await?;
    let (user, _) = env.scratch.create_login("st_period").await?;
    env.client
        .expect(
            "POST",
            "/v1/db/static-roles/fast",
            Some(json!({"db_name": "pg", "username": user, "rotation_period": "5s", "rotation_statements": [ALTER]})),
            204,
        )
        .await?;
    let role = env.client.expect("GET", "/v1/db/static-roles/fast", None, 200).await?;
    assert_eq!(role["data"]["rotation_statements"], json!([ALTER]));
    assert_eq!(role["data"]["rotation_period"], json!(5));

    let mut seen: Vec<(String, DateTime<Utc>)> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    while seen.len() < 4 {
        if tokio::time::Instant::now() > deadline {
            bail!(
                "only {} distinct passwords in 40 s: {:?}",
                seen.len(),
                seen.iter().map(|s| s.1).collect::<Vec<_>>()
            );
        }
        let creds = static_creds(&env, "fast").await?;
        let password = text(&creds, "password")?;
        let at = time_of(&creds)?;
        if seen.last().map(|(p, _)| p) != Some(&password) {
            assert!(creds["ttl"].as_i64().is_some_and(|t| (0..=5).contains(&t)), "{creds}");
            assert!(
                env.scratch.logs_in(&user, &password).await,
                "password of rotation {} does not log in",
                seen.len()
            );
            if let Some((previous, previous_at)) = seen.last() {
                assert!(at > *previous_at, "last_vault_rotation did not advance");
                assert!(
                    !env.scratch.logs_in(&user, previous).await,
                    "a rotated-away password still works"
                );
            }
            seen.push((password, at));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // Rotations about 5 s apart.
    for pair in seen.windows(2) {
        let gap = (pair[1].1 - pair[0].1).num_milliseconds();
        assert!((4_500..=8_000).contains(&gap), "rotations {gap} ms apart");
    }
    Ok(())
}

#[tokio::test]
async fn a_cron_schedule_rotates_at_the_minute() -> Result<()> {
    let env = DbEnv::start("static_cron", &["*"]).await?;
    let (user, _) = env.scratch.create_login("st_cron").await?;
    env.client
        .expect(
            "POST",
            "/v1/db/static-roles/cron",
            Some(
                json!({"db_name": "pg", "username": user, "rotation_schedule": "*/1 * * * *", "rotation_window": "1h"}),
            ),
            204,
        )
        .await?;
    let role = env.client.expect("GET", "/v1/db/static-roles/cron", None, 200).await?;
    assert_eq!(role["data"]["rotation_schedule"], json!("*/1 * * * *"), "{role}");
    assert_eq!(role["data"]["rotation_window"], json!(3600), "{role}");
    assert!(role["data"].get("rotation_period").is_none(), "{role}");

    let creds = static_creds(&env, "cron").await?;
    assert_eq!(creds["rotation_schedule"], json!("*/1 * * * *"), "{creds}");
    assert_eq!(creds["rotation_window"], json!(3600), "{creds}");
    assert!(creds.get("rotation_period").is_none(), "{creds}");
    let ttl = creds["ttl"].as_i64().context("ttl")?;
    assert!((0..=60).contains(&ttl), "ttl {ttl}");
    let created = time_of(&creds)?;
    let first = text(&creds, "password")?;

    let deadline = tokio::time::Instant::now() + Duration::from_secs(75);
    let rotated = loop {
        let c = static_creds(&env, "cron").await?;
        if time_of(&c)? > created {
            break c;
        }
        if tokio::time::Instant::now() > deadline {
            bail!("no rotation within 75 s of {created}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let at = time_of(&rotated)?;
    // At the minute, give or take the scheduler's latency.
    assert!(at.second() <= 2, "rotated at {at}, not at the start of a minute");
    assert!(at > created && (at - created).num_seconds() <= 62, "{created} -> {at}");
    let second = text(&rotated, "password")?;
    assert_ne!(first, second);
    assert!(env.scratch.logs_in(&user, &second).await);
    assert!(!env.scratch.logs_in(&user, &first).await);
    Ok(())
}

#[tokio::test]
async fn bad_static_roles_are_refused_and_nothing_is_stored() -> Result<()> {
    let env = DbEnv::start("static_bad", &["*"]).await?;
    let (user, initial) = env.scratch.create_login("st_bad").await?;
    let cases = [
        (
            json!({"db_name": "pg", "username": user, "rotation_period": "4s"}),
            "rotation_period must be 5 seconds or more",
        ),
        (
            json!({"db_name": "pg", "username": user, "rotation_schedule": "*/1 * * * *", "rotation_window": "59m"}),
            "rotation_window is invalid: rotation_window must be 3600 seconds or more",
        ),
        (
            json!({"db_name": "pg", "username": user, "rotation_period": "1h", "rotation_schedule": "*/1 * * * *"}),
            "mutually exclusive fields rotation_period and rotation_schedule were both specified; only one of them can be provided",
        ),
        (
            json!({"db_name": "pg", "username": user, "rotation_schedule": "*/1 * * *"}),
            "could not parse rotation_schedule",
        ),
        (
            json!({"db_name": "pg", "username": user, "rotation_schedule": "61 * * * *"}),
            "could not parse rotation_schedule",
        ),
        (
            json!({"db_name": "pg", "rotation_period": "5s"}),
            "username is a required field to create a static account",
        ),
        (
            json!({"db_name": "pg", "username": user, "rotation_period": "1h", "rotation_window": "1h"}),
            "rotation_window is invalid with use of rotation_period",
        ),
        (
            json!({"db_name": "pg", "username": user}),
            "one of rotation_schedule or rotation_period must be provided to create a static account",
        ),
        (
            json!({"db_name": "pg", "username": "wt_no_such_user", "rotation_period": "1h"}),
            "error setting credentials: failed to execute query: role \"wt_no_such_user\" does not exist",
        ),
    ];
    for (body, message) in cases {
        let got = env.client.post("/v1/db/static-roles/bad", body.clone()).await?;
        check_error(&format!("static role {body}"), &got, 400)?;
        let error = got.1["errors"][0].as_str().unwrap_or_default();
        assert!(
            error.starts_with(message),
            "{body}: {error:?} should start with {message:?}"
        );
        let (status, stored) = env.client.get("/v1/db/static-roles/bad").await?;
        assert_eq!(
            (status, &stored),
            (404, &json!({"errors": []})),
            "{body} stored something"
        );
    }
    let (status, _) = env.client.list("/v1/db/static-roles").await?;
    assert_eq!(status, 404);
    assert!(!env.scratch.role_exists("wt_no_such_user").await?);
    // No rotation happened either.
    assert!(env.scratch.logs_in(&user, &initial).await);
    Ok(())
}

#[tokio::test]
async fn static_role_on_a_connection_that_does_not_allow_it_fails() -> Result<()> {
    let env = DbEnv::start("static_notallowed", &["other"]).await?;
    let (user, initial) = env.scratch.create_login("st_na").await?;
    let got = env
        .client
        .post(
            "/v1/db/static-roles/notallowed",
            json!({"db_name": "pg", "username": user, "rotation_period": "1h"}),
        )
        .await?;
    assert_eq!(
        got,
        (
            500,
            json!({"errors": ["1 error occurred:\n\t* \"notallowed\" is not an allowed role\n\n"]})
        )
    );
    assert!(env.scratch.logs_in(&user, &initial).await);
    let (status, _) = env.client.get("/v1/db/static-roles/notallowed").await?;
    assert_eq!(status, 404);
    Ok(())
}

#[tokio::test]
async fn a_failing_rotation_retries_and_keeps_the_last_working_password() -> Result<()> {
    let env = DbEnv::start("static_retry", &["*"]).await?;
    let (user, _) = env.scratch.create_login("st_retry").await?;
    // The rotation statements divide by the rows of a gate table: with the
    // gate empty, the whole (atomic) rotation fails in PostgreSQL.
    let mut admin = env
        .scratch
        .connect_as(&env.scratch.admin_user, &env.scratch.admin_password)
        .await?;
    sqlx::raw_sql("CREATE TABLE rotation_gate (open int); INSERT INTO rotation_gate VALUES (1)")
        .execute(&mut admin)
        .await?;
    let statements = json!([ALTER, "SELECT 1 / count(*) FROM rotation_gate"]);
    env.client
        .expect(
            "POST",
            "/v1/db/static-roles/gated",
            Some(
                json!({"db_name": "pg", "username": user, "rotation_period": "5s", "rotation_statements": statements}),
            ),
            204,
        )
        .await?;
    let before = static_creds(&env, "gated").await?;
    let password = text(&before, "password")?;
    sqlx::raw_sql("DELETE FROM rotation_gate").execute(&mut admin).await?;

    // Now every rotation fails: rotate-role says so, and static-creds keeps
    // answering with the last password, which keeps working.
    let (status, body) = env.client.post("/v1/db/rotate-role/gated", json!({})).await?;
    assert_eq!(status, 500, "{body}");
    let error = body["errors"][0].as_str().unwrap_or_default();
    assert!(error.contains("division by zero"), "{error}");
    assert!(!error.contains(&password), "the error shows the password");
    tokio::time::sleep(Duration::from_secs(12)).await;
    let during = static_creds(&env, "gated").await?;
    assert_eq!(text(&during, "password")?, password);
    assert_eq!(time_of(&during)?, time_of(&before)?);
    assert_eq!(during["ttl"], json!(0), "{during}");
    assert!(env.scratch.logs_in(&user, &password).await);

    // Open the gate: a retry (back-off 5, 10, 20 s) rotates again.
    sqlx::raw_sql("INSERT INTO rotation_gate VALUES (1)")
        .execute(&mut admin)
        .await?;
    let recovered = eventually(Duration::from_secs(45), || async {
        Ok(text(&static_creds(&env, "gated").await?, "password")? != password)
    })
    .await?;
    assert!(recovered, "no rotation within 45 s of the gate opening");
    let after = static_creds(&env, "gated").await?;
    assert!(env.scratch.logs_in(&user, &text(&after, "password")?).await);
    admin.close().await.ok();
    Ok(())
}

#[tokio::test]
async fn disabling_the_mount_keeps_the_user_and_its_last_password() -> Result<()> {
    let env = DbEnv::start("static_unmount", &["*"]).await?;
    let (user, _) = env.scratch.create_login("st_unmount").await?;
    env.client
        .expect(
            "POST",
            "/v1/db/static-roles/fast",
            Some(json!({"db_name": "pg", "username": user, "rotation_period": "5s"})),
            204,
        )
        .await?;
    let password = text(&static_creds(&env, "fast").await?, "password")?;
    env.client.expect("DELETE", "/v1/sys/mounts/db", None, 204).await?;
    // Static users are not Warden's to drop (unlike leases' users); after
    // a period the last password still works.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(env.scratch.role_exists(&user).await?);
    assert!(
        env.scratch.logs_in(&user, &password).await,
        "the last password stopped working after unmount"
    );
    Ok(())
}
