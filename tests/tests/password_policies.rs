//! Password policies (`sys/policies/password/:name`) over real HTTP against
//! a real `warden server -dev`: write (HCL or base64), read, LIST, delete,
//! generate, and every way a bad policy is refused with nothing stored.
//! Then policies in use: a connection's and a role's `password_policy` make
//! real PostgreSQL logins with conforming passwords.

use anyhow::{Context, Result, bail};
use base64::Engine;
use serde_json::{Value, json};
use sqlx::{Connection, Row};
use std::collections::HashSet;
use warden_tests::{DbEnv, WardenServer, check_error, errors_of, keys_of};

/// A policy with three charset rules, as Vault's documentation writes them.
const STRICT: &str = r#"
# 24 characters: lower case, at least 2 digits, at least 3 symbols
length = 24
rule "charset" {
  charset = "abcdefghijklmnopqrstuvwxyz"
  min-chars = 1
}
rule "charset" {
  charset = "0123456789"
  min-chars = 2
}
rule "charset" {
  charset = "-_.~"
  min-chars = 3
}
"#;

/// A rule of a policy as the test checks it.
struct Rule {
    charset: &'static str,
    min: usize,
}

const STRICT_RULES: [Rule; 3] = [
    Rule {
        charset: "abcdefghijklmnopqrstuvwxyz",
        min: 1,
    },
    Rule {
        charset: "0123456789",
        min: 2,
    },
    Rule {
        charset: "-_.~",
        min: 3,
    },
];

/// Whether `password` has `length` characters, all from the rules'
/// charsets, and at least each rule's minimum of its charset.
fn check_password(password: &str, length: usize, rules: &[Rule]) -> Result<()> {
    let n = password.chars().count();
    if n != length {
        bail!("password {password:?} has {n} characters, not {length}");
    }
    if let Some(c) = password.chars().find(|c| !rules.iter().any(|r| r.charset.contains(*c))) {
        bail!("password {password:?} has {c:?}, which no rule allows");
    }
    for rule in rules {
        let count = password.chars().filter(|c| rule.charset.contains(*c)).count();
        if count < rule.min {
            bail!(
                "password {password:?} has {count} of {:?}, the policy wants {}",
                rule.charset,
                rule.min
            );
        }
    }
    Ok(())
}

const POLICIES: &str = "/v1/sys/policies/password";

#[tokio::test]
async fn policies_are_written_read_listed_and_deleted() -> Result<()> {
    let server = WardenServer::start().await?;
    let c = server.client();
    c.expect("LIST", POLICIES, None, 404).await?;
    c.expect(
        "POST",
        &format!("{POLICIES}/strict"),
        Some(json!({"policy": STRICT})),
        204,
    )
    .await?;
    let read = c.expect("GET", &format!("{POLICIES}/strict"), None, 200).await?;
    assert_eq!(read["data"], json!({"policy": STRICT}), "{read}");

    // Vault accepts the document base64-encoded and keeps it decoded.
    let short = "length = 8\nrule \"charset\" {\n  charset = \"xyz\"\n}\n";
    let encoded = base64::engine::general_purpose::STANDARD.encode(short);
    c.expect("PUT", &format!("{POLICIES}/b64"), Some(json!({"policy": encoded})), 204)
        .await?;
    let read = c.expect("GET", &format!("{POLICIES}/b64"), None, 200).await?;
    assert_eq!(read["data"]["policy"], json!(short), "{read}");

    let listed = c.expect("LIST", POLICIES, None, 200).await?;
    assert_eq!(keys_of(&listed)?, vec!["b64", "strict"], "{listed}");
    let listed = c.expect("GET", &format!("{POLICIES}?list=true"), None, 200).await?;
    assert_eq!(keys_of(&listed)?, vec!["b64", "strict"], "{listed}");

    // A missing policy: 404 with Vault's message, for read and generate.
    for path in [format!("{POLICIES}/nope"), format!("{POLICIES}/nope/generate")] {
        let got = c.get(&path).await?;
        check_error(&format!("GET {path}"), &got, 404)?;
        assert_eq!(got.1, json!({"errors": ["policy does not exist"]}));
    }

    c.expect("DELETE", &format!("{POLICIES}/b64"), None, 204).await?;
    c.expect("GET", &format!("{POLICIES}/b64"), None, 404).await?;
    let listed = c.expect("LIST", POLICIES, None, 200).await?;
    assert_eq!(keys_of(&listed)?, vec!["strict"], "{listed}");
    // Deleting what is not there is not an error (as Vault).
    c.expect("DELETE", &format!("{POLICIES}/b64"), None, 204).await?;
    Ok(())
}

#[tokio::test]
async fn a_thousand_generated_passwords_all_follow_the_policy() -> Result<()> {
    let server = WardenServer::start().await?;
    let c = server.client();
    c.expect(
        "POST",
        &format!("{POLICIES}/strict"),
        Some(json!({"policy": STRICT})),
        204,
    )
    .await?;
    let mut seen = HashSet::new();
    for i in 0..1000 {
        let body = c
            .expect("GET", &format!("{POLICIES}/strict/generate"), None, 200)
            .await?;
        let password = body["data"]["password"]
            .as_str()
            .with_context(|| format!("generate #{i}: no data.password in {body}"))?;
        check_password(password, 24, &STRICT_RULES).with_context(|| format!("generate #{i}"))?;
        seen.insert(password.to_string());
    }
    // 24 characters from 40: a repeat would mean the randomness is broken.
    assert_eq!(seen.len(), 1000, "generated passwords repeat");
    Ok(())
}

#[tokio::test]
async fn bad_policies_get_a_400_and_nothing_is_stored() -> Result<()> {
    let server = WardenServer::start().await?;
    let c = server.client();
    // 200 printable characters that the three small rules cannot be met
    // with: 6 of 203 symbols must be exactly two 'a', two 'b', two 'c'.
    let wide: String = ('\u{4E00}'..='\u{4EC7}').collect();
    let impossible = format!(
        "length = 6\nrule \"charset\" {{\n charset = \"a\"\n min-chars = 2\n}}\n\
         rule \"charset\" {{\n charset = \"b\"\n min-chars = 2\n}}\n\
         rule \"charset\" {{\n charset = \"c\"\n min-chars = 2\n}}\n\
         rule \"charset\" {{\n charset = \"{wide}\"\n}}\n"
    );
    let cases: Vec<(&str, Value, &str)> = vec![
        ("no policy", json!({}), "missing policy"),
        ("empty policy", json!({"policy": ""}), "missing policy"),
        (
            "bad HCL",
            json!({"policy": "length = 20\nrule \"charset\" {\n charset = \"abc\"\n"}),
            "invalid password policy",
        ),
        (
            "too short",
            json!({"policy": "length = 3\nrule \"charset\" {\n charset = \"abc\"\n}"}),
            "between 4 and 100",
        ),
        (
            "too long",
            json!({"policy": "length = 101\nrule \"charset\" {\n charset = \"abc\"\n}"}),
            "between 4 and 100",
        ),
        (
            "no length",
            json!({"policy": "rule \"charset\" {\n charset = \"abc\"\n}"}),
            "length must be > 0",
        ),
        (
            "more min-chars than length",
            json!({"policy": "length = 5\nrule \"charset\" {\n charset = \"abc\"\n min-chars = 6\n}"}),
            "require at least 6",
        ),
        (
            "empty charset",
            json!({"policy": "length = 8\nrule \"charset\" {\n charset = \"\"\n}"}),
            "charset must be specified",
        ),
        ("no rules", json!({"policy": "length = 8"}), "no charset specified"),
        (
            "unknown rule type",
            json!({"policy": "length = 8\nrule \"length\" {\n min = 2\n}"}),
            "unrecognized rule type",
        ),
        (
            "non-printable charset",
            json!({"policy": "length = 8\nrule \"charset\" {\n charset = \"ab\\tc\"\n}"}),
            "non-printable",
        ),
        (
            "impossible rules",
            json!({"policy": impossible}),
            "are the rules impossible",
        ),
    ];
    for (what, body, expected) in cases {
        let got = c.post(&format!("{POLICIES}/bad"), body).await?;
        check_error(what, &got, 400)?;
        let message = errors_of(&got.1).map(|e| e[0].to_string()).unwrap_or_default();
        assert!(message.contains(expected), "{what}: {message} should say {expected:?}");
        c.expect("GET", &format!("{POLICIES}/bad"), None, 404)
            .await
            .with_context(|| format!("{what}: the bad policy must not be stored"))?;
    }
    c.expect("LIST", POLICIES, None, 404).await?;

    // A bad write over a good policy leaves the good one as it was.
    c.expect(
        "POST",
        &format!("{POLICIES}/kept"),
        Some(json!({"policy": STRICT})),
        204,
    )
    .await?;
    let got = c
        .post(&format!("{POLICIES}/kept"), json!({"policy": "length = 2"}))
        .await?;
    check_error("overwrite with a bad policy", &got, 400)?;
    let read = c.expect("GET", &format!("{POLICIES}/kept"), None, 200).await?;
    assert_eq!(read["data"]["policy"], json!(STRICT));
    Ok(())
}

/// A policy whose passwords are safe inside PostgreSQL's '...' literal.
const PG_POLICY: &str = r#"
length = 30
rule "charset" {
  charset = "abcdefghijklmnopqrstuvwxyz"
  min-chars = 5
}
rule "charset" {
  charset = "0123456789"
  min-chars = 5
}
rule "charset" {
  charset = "-_.~!#%+"
  min-chars = 4
}
"#;

const PG_RULES: [Rule; 3] = [
    Rule {
        charset: "abcdefghijklmnopqrstuvwxyz",
        min: 5,
    },
    Rule {
        charset: "0123456789",
        min: 5,
    },
    Rule {
        charset: "-_.~!#%+",
        min: 4,
    },
];

/// Only upper case and digits, 12 long: nothing like the connection's.
const ROLE_POLICY: &str = "length = 12\nrule \"charset\" {\n  charset = \"ABCDEFGHIJKLMNOPQRSTUVWXYZ\"\n  min-chars = 6\n}\nrule \"charset\" {\n  charset = \"0123456789\"\n  min-chars = 6\n}\n";

const ROLE_RULES: [Rule; 2] = [
    Rule {
        charset: "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
        min: 6,
    },
    Rule {
        charset: "0123456789",
        min: 6,
    },
];

/// Log in as the issued user and check it is who it says.
async fn login_works(env: &DbEnv, username: &str, password: &str) -> Result<()> {
    let mut conn = env
        .scratch
        .connect_as(username, password)
        .await
        .with_context(|| format!("log in as {username} with its policy-made password"))?;
    let row = sqlx::query("SELECT current_user::text").fetch_one(&mut conn).await?;
    assert_eq!(row.try_get::<String, _>(0)?, username);
    conn.close().await?;
    Ok(())
}

#[tokio::test]
async fn connection_and_role_password_policies_make_working_logins() -> Result<()> {
    let env = DbEnv::start("pwpolicy", &["app", "own", "ghost"]).await?;
    let c = &env.client;
    c.expect(
        "POST",
        &format!("{POLICIES}/pgpol"),
        Some(json!({"policy": PG_POLICY})),
        204,
    )
    .await?;
    c.expect(
        "POST",
        &format!("{POLICIES}/rolepol"),
        Some(json!({"policy": ROLE_POLICY})),
        204,
    )
    .await?;
    c.expect(
        "POST",
        "/v1/db/config/pg",
        Some(json!({"password_policy": "pgpol"})),
        204,
    )
    .await?;
    let config = c.expect("GET", "/v1/db/config/pg", None, 200).await?;
    assert_eq!(config["data"]["password_policy"], json!("pgpol"), "{config}");

    // The connection's policy.
    env.write_role("app", json!({})).await?;
    for _ in 0..3 {
        let creds = env.creds("app").await?;
        check_password(&creds.password, 30, &PG_RULES)?;
        login_works(&env, &creds.username, &creds.password).await?;
    }

    // The role's own policy wins over the connection's.
    env.write_role("own", json!({"credential_config": {"password_policy": "rolepol"}}))
        .await?;
    let role = c.expect("GET", "/v1/db/roles/own", None, 200).await?;
    assert_eq!(
        role["data"]["credential_config"],
        json!({"password_policy": "rolepol"}),
        "{role}"
    );
    assert_eq!(role["data"]["credential_type"], json!("password"), "{role}");
    let creds = env.creds("own").await?;
    check_password(&creds.password, 12, &ROLE_RULES)?;
    login_works(&env, &creds.username, &creds.password).await?;

    // A role without credential_config shows none (as Vault).
    let role = c.expect("GET", "/v1/db/roles/app", None, 200).await?;
    assert!(role["data"].get("credential_config").is_none(), "{role}");

    // A policy that does not exist: a clear error, no login, no lease.
    env.write_role("ghost", json!({"credential_config": {"password_policy": "missing"}}))
        .await?;
    let before = env.scratch.roles_like("v-token-ghost-%").await?;
    let got = c.get("/v1/db/creds/ghost").await?;
    check_error("creds with a missing password policy", &got, 500)?;
    let message = errors_of(&got.1).map(|e| e[0].to_string()).unwrap_or_default();
    assert!(
        message.contains("no password policy found") && message.contains("missing"),
        "{message}"
    );
    assert!(before.is_empty());
    assert!(env.scratch.roles_like("v-token-ghost-%").await?.is_empty());
    assert!(env.lease_keys("ghost").await?.is_empty());

    // Deleting the connection's policy breaks its roles' creds the same way.
    c.expect("DELETE", &format!("{POLICIES}/pgpol"), None, 204).await?;
    let got = c.get("/v1/db/creds/app").await?;
    check_error("creds after the policy was deleted", &got, 500)?;
    Ok(())
}

#[tokio::test]
async fn credential_types_the_database_cannot_use_are_refused() -> Result<()> {
    let env = DbEnv::start("credtype", &["*"]).await?;
    let c = &env.client;
    let base = json!({
        "db_name": "pg",
        "creation_statements": ["CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}';"],
    });
    let with = |extra: Value| {
        let mut body = base.clone();
        if let (Some(b), Value::Object(e)) = (body.as_object_mut(), extra) {
            b.extend(e);
        }
        body
    };
    let ca = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    let key = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n";
    let cases = vec![
        (
            "rsa_private_key",
            with(json!({"credential_type": "rsa_private_key"})),
            "rsa_private_key",
        ),
        (
            "client_certificate",
            with(json!({"credential_type": "client_certificate", "credential_config": {
                "key_type": "ec", "common_name_template": "{{.RoleName}}", "ca_cert": ca, "ca_private_key": key}})),
            "client_certificate",
        ),
        (
            "unknown type",
            with(json!({"credential_type": "token"})),
            "invalid credential_type",
        ),
        (
            "bad rsa key_bits",
            with(json!({"credential_type": "rsa_private_key", "credential_config": {"key_bits": 1000}})),
            "invalid key_bits",
        ),
        (
            "client_certificate without a CA",
            with(json!({"credential_type": "client_certificate", "credential_config": {
                "key_type": "rsa", "common_name_template": "{{.RoleName}}"}})),
            "missing required ca_cert",
        ),
        (
            "config not a map",
            with(json!({"credential_config": "x"})),
            "credential_config",
        ),
    ];
    for (what, body, expected) in cases {
        let got = c.post("/v1/db/roles/typed", body).await?;
        check_error(what, &got, 400)?;
        let message = errors_of(&got.1).map(|e| e[0].to_string()).unwrap_or_default();
        assert!(message.contains(expected), "{what}: {message} should say {expected:?}");
        c.expect("GET", "/v1/db/roles/typed", None, 404)
            .await
            .with_context(|| format!("{what}: nothing may be stored"))?;
    }
    // Changing a good role to a type the database cannot use keeps the role.
    env.write_role("typed", json!({})).await?;
    let got = c
        .post("/v1/db/roles/typed", json!({"credential_type": "rsa_private_key"}))
        .await?;
    check_error("update to rsa_private_key", &got, 400)?;
    let role = c.expect("GET", "/v1/db/roles/typed", None, 200).await?;
    assert_eq!(role["data"]["credential_type"], json!("password"), "{role}");
    let creds = env.creds("typed").await?;
    login_works(&env, &creds.username, &creds.password).await?;

    // A role written before its connection exists is checked at creds time.
    c.expect(
        "POST",
        "/v1/db/roles/early",
        Some(json!({"db_name": "later", "credential_type": "rsa_private_key",
                    "creation_statements": ["CREATE ROLE \"{{name}}\""]})),
        204,
    )
    .await?;
    let mut config = warden_tests::fixtures::postgres_config(&env.scratch, &["*"]);
    config["verify_connection"] = json!(false);
    c.expect("POST", "/v1/db/config/later", Some(config), 204).await?;
    let got = c.get("/v1/db/creds/early").await?;
    check_error("creds of an rsa_private_key role on PostgreSQL", &got, 400)?;
    let message = errors_of(&got.1).map(|e| e[0].to_string()).unwrap_or_default();
    assert!(message.contains("rsa_private_key"), "{message}");
    Ok(())
}
