//! AppRole's handlers over an in-memory mount, without a core: roles,
//! secret IDs, logins and what storage holds.

use super::*;
use crate::logical::{Login, Operation, Request, Response};
use crate::storage::{Backend, MemoryBackend};
use serde_json::{Value, json};
use std::sync::Arc;

struct Fixture {
    mem: Arc<MemoryBackend>,
    mount: Mount,
    approle: AppRole,
}

fn fixture() -> Fixture {
    let mem = Arc::new(MemoryBackend::new());
    let mount = Mount {
        path: "auth/approle/".into(),
        uuid: "u1".into(),
        default_lease_ttl: 0,
        max_lease_ttl: 0,
        storage: View::new(mem.clone(), "auth/u1/"),
        system: Arc::new(crate::logical::mount::testing::NoSystem),
    };
    Fixture {
        mem,
        mount,
        approle: AppRole::default(),
    }
}

impl Fixture {
    async fn call_from(
        &self,
        op: Operation,
        path: &str,
        data: Value,
        from: Option<&str>,
    ) -> crate::error::Result<Option<Response>> {
        let req = Request {
            operation: op,
            path: path.into(),
            data: data.as_object().cloned().unwrap_or_default(),
            remote_addr: from.map(|a| a.parse().unwrap()),
            ..Request::default()
        };
        self.approle.handle(&self.mount, &req, &|_| Ok(())).await
    }

    async fn call(&self, op: Operation, path: &str, data: Value) -> crate::error::Result<Option<Response>> {
        self.call_from(op, path, data, Some("127.0.0.1")).await
    }

    async fn data(&self, op: Operation, path: &str, body: Value) -> Value {
        self.call(op, path, body).await.unwrap().unwrap().data.unwrap()
    }

    async fn role_id(&self, role: &str) -> String {
        let d = self
            .data(Operation::Read, &format!("role/{role}/role-id"), json!({}))
            .await;
        d["role_id"].as_str().unwrap().to_string()
    }

    async fn secret_id(&self, role: &str, body: Value) -> Value {
        self.data(Operation::Update, &format!("role/{role}/secret-id"), body)
            .await
    }

    async fn login_from(&self, role_id: &str, secret_id: &str, from: &str) -> crate::error::Result<Login> {
        let resp = self
            .call_from(
                Operation::Update,
                "login",
                json!({"role_id": role_id, "secret_id": secret_id}),
                Some(from),
            )
            .await?;
        Ok(resp.unwrap().login.unwrap())
    }

    async fn login(&self, role_id: &str, secret_id: &str) -> crate::error::Result<Login> {
        self.login_from(role_id, secret_id, "127.0.0.1").await
    }

    /// Every key and value stored below the mount.
    async fn stored(&self) -> Vec<(String, String)> {
        self.mem
            .scan("auth/u1/", None, 10_000)
            .await
            .unwrap()
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
            .collect()
    }
}

fn err_text(r: crate::error::Result<impl std::fmt::Debug>) -> String {
    r.unwrap_err().to_string()
}

#[tokio::test]
async fn a_login_grants_exactly_the_roles_token_settings() {
    let f = fixture();
    f.call(
        Operation::Update,
        "role/App",
        json!({"token_policies": "read-db,other", "token_ttl": "10m", "token_max_ttl": "1h", "token_num_uses": 3}),
    )
    .await
    .unwrap();
    let role = f.data(Operation::Read, "role/app", json!({})).await;
    assert_eq!(role["token_policies"], json!(["read-db", "other"]));
    assert_eq!(role["token_ttl"], 600);
    assert_eq!(role["token_max_ttl"], 3600);
    assert_eq!(role["bind_secret_id"], true);
    assert_eq!(role["token_type"], "default");
    assert_eq!(role["secret_id_bound_cidrs"], Value::Null);
    assert_eq!(role["token_bound_cidrs"], json!([]));
    let listed = f.data(Operation::List, "role/", json!({})).await;
    assert_eq!(listed["keys"], json!(["app"]), "names are lower-cased");

    let role_id = f.role_id("app").await;
    let issued = f.secret_id("app", json!({"metadata": {"team": "blue"}})).await;
    assert_eq!(issued["secret_id_num_uses"], 0);
    assert_eq!(issued["secret_id_ttl"], 0);
    let secret = issued["secret_id"].as_str().unwrap();
    let login = f.login(&role_id, secret).await.unwrap();
    assert_eq!(login.policies, vec!["read-db", "other"]);
    assert!(!login.no_default_policy);
    assert_eq!((login.ttl, login.max_ttl, login.num_uses), (600, 3600, 3));
    assert_eq!(
        login.metadata,
        json!({"team": "blue", "role_name": "app"})
            .as_object()
            .cloned()
            .unwrap()
    );
    // An unlimited secret ID logs in again.
    f.login(&role_id, secret).await.unwrap();

    // Wrong credentials all get the one answer.
    for (rid, sid) in [(role_id.as_str(), "not-the-secret"), ("no-such-role-id", secret)] {
        assert_eq!(err_text(f.login(rid, sid).await), "invalid role or secret ID");
    }
    assert_eq!(err_text(f.login("", secret).await), "missing role_id");
    assert_eq!(err_text(f.login(&role_id, "").await), "missing secret_id");
}

#[tokio::test]
async fn storage_never_holds_a_secret_id_and_delete_leaves_nothing() {
    let f = fixture();
    f.call(Operation::Update, "role/r", json!({"token_policies": "p"}))
        .await
        .unwrap();
    let issued = f.secret_id("r", json!({})).await;
    let secret = issued["secret_id"].as_str().unwrap().to_string();
    let accessor = issued["secret_id_accessor"].as_str().unwrap().to_string();
    let role_id = f.role_id("r").await;
    for (k, v) in f.stored().await {
        assert!(!k.contains(&secret) && !v.contains(&secret), "{k}: {v}");
        assert!(
            !k.contains(&accessor) && !k.contains(&role_id),
            "indexes are HMACs: {k}"
        );
    }
    // Lookups by value and by accessor; the list shows the accessor.
    let by_value = f
        .data(
            Operation::Update,
            "role/r/secret-id/lookup",
            json!({"secret_id": secret}),
        )
        .await;
    assert_eq!(by_value["secret_id_accessor"], accessor.as_str());
    assert_eq!(by_value["expiration_time"], "0001-01-01T00:00:00Z");
    let by_accessor = f
        .data(
            Operation::Update,
            "role/r/secret-id-accessor/lookup",
            json!({"secret_id_accessor": accessor}),
        )
        .await;
    assert_eq!(by_accessor, by_value);
    let listed = f.data(Operation::List, "role/r/secret-id/", json!({})).await;
    assert_eq!(listed["keys"], json!([accessor]));
    f.call(Operation::Delete, "role/r", json!({})).await.unwrap();
    let left: Vec<String> = f.stored().await.into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        left,
        vec!["auth/u1/salt".to_string()],
        "role, index, secret ID and accessor all gone"
    );
    assert_eq!(err_text(f.login(&role_id, &secret).await), "invalid role or secret ID");
}

#[tokio::test]
async fn refused_input_gets_vaults_text_and_stores_nothing() {
    let f = fixture();
    for (body, text) in [
        (
            json!({"token_ttl": "2h", "token_max_ttl": "1h"}),
            "'token_ttl' cannot be greater than 'token_max_ttl'",
        ),
        (
            json!({"secret_id_num_uses": -1}),
            "secret_id_num_uses cannot be negative",
        ),
        (json!({"token_num_uses": -2}), "'token_num_uses' cannot be negative"),
        (
            json!({"bind_secret_id": false}),
            "at least one constraint should be enabled on the role",
        ),
        (
            json!({"secret_id_bound_cidrs": "10.0.0.1"}),
            "failed to validate CIDR blocks: invalid CIDR address: 10.0.0.1",
        ),
        (json!({"token_type": "bogus"}), "invalid 'token_type' value \"bogus\""),
        (
            json!({"token_type": "batch", "token_num_uses": 2}),
            "'token_type' cannot be 'batch' or 'default_batch' when set to generate tokens with limited use count",
        ),
        (
            json!({"token_type": "batch", "token_period": "1h"}),
            "'token_type' cannot be 'batch' or 'default_batch' when set to generate periodic tokens",
        ),
        (
            json!({"period": "999999h"}),
            "period of \"999999h0m0s\" is greater than the backend's maximum lease TTL of \"768h0m0s\"",
        ),
        (
            json!({"token_ttl": "soon"}),
            "error converting input for field \"token_ttl\"",
        ),
    ] {
        let e = err_text(f.call(Operation::Update, "role/bad", body.clone()).await);
        // The Go duration text is checked separately; here its start.
        let want = text.split(" of \"").next().unwrap();
        assert!(e.starts_with(want), "{body}: {e}");
    }
    assert!(
        f.stored().await.iter().all(|(k, _)| !k.contains("role")),
        "{:?}",
        f.stored().await
    );
    assert!(f.call(Operation::Read, "role/bad", json!({})).await.unwrap().is_none());
    // A role-id another role holds is refused, and the role not written.
    f.call(Operation::Update, "role/a", json!({"role_id": "shared"}))
        .await
        .unwrap();
    assert_eq!(
        err_text(f.call(Operation::Update, "role/b", json!({"role_id": "shared"})).await),
        "role_id already in use"
    );
    assert!(f.call(Operation::Read, "role/b", json!({})).await.unwrap().is_none());
    // Secret-ID requests against a role's limits.
    f.call(
        Operation::Update,
        "role/lim",
        json!({"secret_id_num_uses": 2, "secret_id_ttl": "1h"}),
    )
    .await
    .unwrap();
    for (body, text) in [
        (
            json!({"num_uses": 3}),
            "num_uses cannot be higher than the role's secret_id_num_uses",
        ),
        (json!({"num_uses": -1}), "num_uses cannot be negative"),
        (
            json!({"ttl": "2h"}),
            "ttl cannot be longer than the role's secret_id_ttl",
        ),
        (
            json!({"cidr_list": "nope"}),
            "failed to validate CIDR blocks: invalid CIDR address: nope",
        ),
    ] {
        assert_eq!(
            err_text(f.call(Operation::Update, "role/lim/secret-id", body.clone()).await),
            text,
            "{body}"
        );
    }
    assert_eq!(
        err_text(f.call(Operation::Update, "role/none/secret-id", json!({})).await),
        "role \"none\" does not exist"
    );
    assert!(
        f.call(Operation::List, "role/lim/secret-id/", json!({})).await.is_err(),
        "none issued"
    );
}

#[tokio::test]
async fn the_last_use_of_a_secret_id_is_spent_once_even_when_raced() {
    let f = Arc::new(fixture());
    f.call(Operation::Update, "role/r", json!({"secret_id_num_uses": 2}))
        .await
        .unwrap();
    let role_id = f.role_id("r").await;
    let issued = f.secret_id("r", json!({})).await;
    assert_eq!(issued["secret_id_num_uses"], 2);
    let secret = issued["secret_id"].as_str().unwrap().to_string();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (f, role_id, secret) = (f.clone(), role_id.clone(), secret.clone());
        tasks.push(tokio::spawn(async move { f.login(&role_id, &secret).await.is_ok() }));
    }
    let mut granted = 0;
    for t in tasks {
        granted += usize::from(t.await.unwrap());
    }
    assert_eq!(granted, 2);
    // Used up: gone from storage, index and all.
    assert!(
        f.stored()
            .await
            .iter()
            .all(|(k, _)| !k.contains("secret_id/") && !k.contains("accessor/"))
    );
}

#[tokio::test]
async fn cidr_blocks_bind_logins_to_addresses() {
    let f = fixture();
    f.call(
        Operation::Update,
        "role/net",
        json!({"secret_id_bound_cidrs": ["10.0.0.0/8", "127.0.0.0/8"]}),
    )
    .await
    .unwrap();
    let role_id = f.role_id("net").await;
    let secret = f
        .secret_id("net", json!({"cidr_list": "127.0.0.1/32", "num_uses": 0}))
        .await;
    let secret = secret["secret_id"].as_str().unwrap().to_string();
    assert_eq!(
        err_text(f.login_from(&role_id, &secret, "192.168.1.1").await),
        "source address \"192.168.1.1\" unauthorized by CIDR restrictions on the role"
    );
    assert_eq!(
        err_text(f.login_from(&role_id, &secret, "10.1.1.1").await),
        "source address \"10.1.1.1\" unauthorized through CIDR restrictions on the secret ID"
    );
    f.login_from(&role_id, &secret, "127.0.0.1").await.unwrap();
    // A secret ID's blocks must lie within the role's.
    let e = err_text(
        f.call(
            Operation::Update,
            "role/net/secret-id",
            json!({"cidr_list": "0.0.0.0/0"}),
        )
        .await,
    );
    assert!(e.starts_with("failed to verify subset relationship"), "{e}");
    // Without a client address, a CIDR-bound login cannot be checked.
    let e = f
        .call_from(
            Operation::Update,
            "login",
            json!({"role_id": role_id, "secret_id": secret}),
            None,
        )
        .await;
    assert_eq!(err_text(e), "failed to get connection information");
    // A role bound by CIDRs alone logs in without a secret ID.
    f.call(
        Operation::Update,
        "role/open",
        json!({"bind_secret_id": false, "secret_id_bound_cidrs": "127.0.0.0/8"}),
    )
    .await
    .unwrap();
    let open_id = f.role_id("open").await;
    assert!(f.login(&open_id, "").await.is_ok());
    assert_eq!(
        err_text(f.call(Operation::Update, "role/open/secret-id", json!({})).await),
        "bind_secret_id is not set on the role"
    );
}

#[tokio::test]
async fn an_expired_secret_id_is_refused_and_removed() {
    let f = fixture();
    f.call(Operation::Update, "role/r", json!({})).await.unwrap();
    let role_id = f.role_id("r").await;
    let issued = f.secret_id("r", json!({"ttl": 1})).await;
    assert_eq!(issued["secret_id_ttl"], 1);
    let secret = issued["secret_id"].as_str().unwrap().to_string();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(err_text(f.login(&role_id, &secret).await), "invalid role or secret ID");
    assert!(f.stored().await.iter().all(|(k, _)| !k.contains("secret_id/")));
}

#[tokio::test]
async fn role_ids_can_be_set_and_move_their_index() {
    let f = fixture();
    f.call(Operation::Update, "role/r", json!({})).await.unwrap();
    let old = f.role_id("r").await;
    f.call(Operation::Update, "role/r/role-id", json!({"role_id": "custom-id"}))
        .await
        .unwrap();
    assert_eq!(f.role_id("r").await, "custom-id");
    let secret = f.secret_id("r", json!({})).await["secret_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(f.login("custom-id", &secret).await.is_ok());
    assert_eq!(err_text(f.login(&old, &secret).await), "invalid role or secret ID");
    assert_eq!(
        err_text(
            f.call(Operation::Update, "role/r/role-id", json!({"role_id": ""}))
                .await
        ),
        "missing role_id"
    );
    // Legacy fields: `policies` fills token_policies; token_period wins over period.
    f.call(Operation::Update, "role/r", json!({"policies": "B,a"}))
        .await
        .unwrap();
    let role = f.data(Operation::Read, "role/r", json!({})).await;
    assert_eq!(role["token_policies"], json!(["a", "b"]));
    assert_eq!(role["policies"], json!(["a", "b"]));
    // A custom secret ID, and destroying it by value and by accessor.
    let custom = f
        .data(
            Operation::Update,
            "role/r/custom-secret-id",
            json!({"secret_id": "my-secret"}),
        )
        .await;
    assert_eq!(custom["secret_id"], "my-secret");
    assert_eq!(
        err_text(
            f.call(
                Operation::Update,
                "role/r/custom-secret-id",
                json!({"secret_id": "my-secret"})
            )
            .await
        ),
        "failed to store secret_id: SecretID is already registered"
    );
    f.call(
        Operation::Update,
        "role/r/secret-id/destroy",
        json!({"secret_id": "my-secret"}),
    )
    .await
    .unwrap();
    assert!(f.login("custom-id", "my-secret").await.is_err());
    let acc = f.secret_id("r", json!({})).await["secret_id_accessor"]
        .as_str()
        .unwrap()
        .to_string();
    f.call(
        Operation::Delete,
        "role/r/secret-id-accessor/destroy",
        json!({"secret_id_accessor": acc}),
    )
    .await
    .unwrap();
    let e = f
        .call(
            Operation::Update,
            "role/r/secret-id-accessor/lookup",
            json!({"secret_id_accessor": acc}),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, crate::error::Error::Http(404, _)), "{e:?}");
}

#[tokio::test]
async fn a_batch_role_logs_in_with_a_batch_token() {
    let f = fixture();
    let resp = f
        .call(Operation::Update, "role/b", json!({"token_type": "default-batch"}))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        resp.warnings,
        vec!["default-batch has no useful meaning; adjusting to batch".to_string()]
    );
    let role = f.data(Operation::Read, "role/b", json!({})).await;
    assert_eq!(role["token_type"], "batch");
    let role_id = f.role_id("b").await;
    let secret = f.secret_id("b", json!({})).await;
    let login = f.login(&role_id, secret["secret_id"].as_str().unwrap()).await.unwrap();
    assert!(login.batch);
    // A service role's logins stay service tokens.
    f.call(Operation::Update, "role/s", json!({})).await.unwrap();
    let secret = f.secret_id("s", json!({})).await;
    let login = f
        .login(&f.role_id("s").await, secret["secret_id"].as_str().unwrap())
        .await
        .unwrap();
    assert!(!login.batch);
}

#[tokio::test]
async fn tidy_removes_expired_orphaned_and_dangling_entries_only() {
    let f = fixture();
    for role in ["a", "gone"] {
        f.call(Operation::Update, &format!("role/{role}"), json!({}))
            .await
            .unwrap();
    }
    let role_id = f.role_id("a").await;
    let expired = f.secret_id("a", json!({})).await;
    let kept = f.secret_id("a", json!({})).await;
    f.secret_id("gone", json!({})).await;
    // A role removed behind the method's back leaves its secret IDs.
    f.mem.delete("auth/u1/role/gone").await.unwrap();
    // One secret ID past its expiry (rewritten in storage: no waiting).
    let accessor = expired["secret_id_accessor"].as_str().unwrap().to_string();
    for (key, value) in f.stored().await {
        if key.starts_with("auth/u1/secret_id/") && value.contains(&accessor) {
            let mut entry: Value = serde_json::from_str(&value).unwrap();
            entry["expiration_time"] = json!("2000-01-01T00:00:00Z");
            f.mem.put(&key, entry.to_string().as_bytes()).await.unwrap();
        }
    }
    // An accessor entry whose secret ID is nowhere.
    f.mem
        .put("auth/u1/accessor/dangling", br#"{"secret_id_hmac":"nope"}"#)
        .await
        .unwrap();
    let accessors_before = f
        .stored()
        .await
        .iter()
        .filter(|(k, _)| k.contains("/accessor/"))
        .count();

    let salt = f.approle.salt(&f.mount.storage).await.unwrap().to_vec();
    let tidied = tidy::tidy_secret_ids(&f.mount.storage, &salt).await.unwrap();
    assert_eq!(
        tidied,
        tidy::Tidied {
            secret_ids: 2,
            accessors: 1
        }
    );
    let stored = f.stored().await;
    assert_eq!(
        stored.iter().filter(|(k, _)| k.contains("/accessor/")).count(),
        accessors_before - 3,
        "the expired one's, the gone role's and the dangling accessor: {stored:?}"
    );
    assert!(!stored.iter().any(|(_, v)| v.contains(&accessor)));
    // What is live still logs in; a second pass finds nothing.
    f.login(&role_id, kept["secret_id"].as_str().unwrap()).await.unwrap();
    assert_eq!(
        tidy::tidy_secret_ids(&f.mount.storage, &salt).await.unwrap(),
        tidy::Tidied::default()
    );
    // Over the API: 202 at once, with Vault's warning.
    let resp = f
        .call(Operation::Update, "tidy/secret-id", json!({}))
        .await
        .unwrap()
        .unwrap();
    assert!(resp.accepted, "202");
    assert!(resp.warnings[0].starts_with("Tidy operation successfully started"));
}

#[tokio::test]
async fn per_field_role_paths_read_set_and_reset_one_setting() {
    let f = fixture();
    f.call(
        Operation::Update,
        "role/r",
        json!({"token_policies": "a,b", "secret_id_ttl": "10m", "token_ttl": "5m"}),
    )
    .await
    .unwrap();
    let read = |path: &'static str| f.data(Operation::Read, path, json!({}));
    assert_eq!(read("role/r/secret-id-ttl").await, json!({"secret_id_ttl": 600}));
    assert_eq!(
        read("role/r/policies").await,
        json!({"token_policies": ["a", "b"], "policies": ["a", "b"]})
    );
    f.call(
        Operation::Update,
        "role/r/secret-id-ttl",
        json!({"secret_id_ttl": "20m"}),
    )
    .await
    .unwrap();
    assert_eq!(read("role/r").await["secret_id_ttl"], 1200);
    assert_eq!(read("role/r").await["token_ttl"], 300, "other settings untouched");
    // Bad input: nothing given, a role that does not exist, a reset that
    // would leave the role without a constraint, a read-only setting.
    assert_eq!(
        err_text(f.call(Operation::Update, "role/r/token-ttl", json!({})).await),
        "missing token_ttl"
    );
    assert!(matches!(
        f.call(Operation::Update, "role/nosuch/token-ttl", json!({"token_ttl": 5}))
            .await,
        Err(crate::error::Error::UnsupportedPath)
    ));
    assert!(
        f.call(Operation::Read, "role/nosuch/token-ttl", json!({}))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        err_text(
            f.call(
                Operation::Update,
                "role/r/bind-secret-id",
                json!({"bind_secret_id": false})
            )
            .await
        ),
        "at least one constraint should be enabled on the role"
    );
    assert!(
        f.call(Operation::Delete, "role/r/local-secret-ids", json!({}))
            .await
            .is_err()
    );
    assert_eq!(
        read("role/r/local-secret-ids").await,
        json!({"local_secret_ids": false})
    );
    // A reset puts the default back.
    f.call(Operation::Delete, "role/r/policies", json!({})).await.unwrap();
    f.call(Operation::Delete, "role/r/secret-id-ttl", json!({}))
        .await
        .unwrap();
    let role = read("role/r").await;
    assert_eq!(role["token_policies"], json!([]));
    assert_eq!(role["secret_id_ttl"], 0);
}
