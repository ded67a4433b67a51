//! `roles/:name`: the database users are created in (`db`) and their MongoDB
//! roles, given as a JSON string (`["readWrite", {"role": "read", "db":
//! "bar"}]`) and stored as role documents; LIST and DELETE. Roles that are
//! not a JSON array of names and `{"role", "db"}` documents are refused
//! (400) and nothing is stored.

use super::MongoDbEngine;
use crate::error::{Error, Result};
use crate::framework::Req;
use crate::logical::Mount;
use crate::logical::{Reply, Response};
use crate::storage::layout;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MongoRole {
    pub role: String,
    /// Empty: the role's own database.
    #[serde(default)]
    pub db: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Role {
    pub db: String,
    #[serde(default)]
    pub roles: Vec<MongoRole>,
}

impl Role {
    /// MongoDB's standard roles array: a name for a role of the user's own
    /// database, a document otherwise.
    pub fn roles_value(&self) -> Value {
        Value::Array(
            self.roles
                .iter()
                .map(|r| {
                    if r.db.is_empty() {
                        json!(r.role)
                    } else {
                        // Keys in the order Vault's documentation shows them.
                        json!({ "db": r.db, "role": r.role })
                    }
                })
                .collect(),
        )
    }
}

fn key(name: &str) -> String {
    format!("{}{name}", layout::engine::ROLE)
}

pub async fn load(mount: &Mount, name: &str) -> Result<Option<Role>> {
    Ok(mount.storage.get_json(&key(name)).await?)
}

pub async fn list(mount: &Mount) -> Reply {
    let keys = mount.storage.list(layout::engine::ROLE).await?;
    if keys.is_empty() {
        return Err(Error::NotFound);
    }
    Ok(Some(Response::list(keys)))
}

pub async fn list_handler(_: &MongoDbEngine, r: &Req<'_>) -> Reply {
    list(r.mount()?).await
}

pub async fn read(_: &MongoDbEngine, r: &Req<'_>) -> Reply {
    Ok(load(r.mount()?, &r.fields.str("name")).await?.map(|role| {
        Response::data(json!({
            "db": role.db,
            "roles": role.roles_value().to_string(),
        }))
    }))
}

pub async fn exists(_: &MongoDbEngine, r: &Req<'_>) -> Result<bool> {
    Ok(load(r.mount()?, &r.fields.str("name")).await?.is_some())
}

pub async fn write(_: &MongoDbEngine, r: &Req<'_>) -> Reply {
    let db = r.fields.str("db");
    if db.is_empty() {
        return Err(Error::bad("db parameter is required"));
    }
    let roles = parse_roles(&r.fields.str("roles"))?;
    r.mount()?
        .storage
        .put_json(&key(&r.fields.str("name")), &Role { db, roles })
        .await?;
    Ok(None)
}

pub async fn delete(_: &MongoDbEngine, r: &Req<'_>) -> Reply {
    r.mount()?.storage.delete(&key(&r.fields.str("name"))).await?;
    Ok(None)
}

/// Reads the roles JSON string; empty means no roles.
pub fn parse_roles(text: &str) -> Result<Vec<MongoRole>> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let value: Value = serde_json::from_str(text).map_err(|e| Error::bad(format!("roles is not valid JSON: {e}")))?;
    let Value::Array(items) = value else {
        return Err(Error::bad("roles must be a JSON array"));
    };
    items
        .into_iter()
        .map(|item| match &item {
            Value::String(role) if !role.is_empty() => Ok(MongoRole {
                role: role.clone(),
                db: String::new(),
            }),
            Value::Object(doc) => match (doc.get("role"), doc.get("db")) {
                (Some(Value::String(role)), db @ (None | Some(Value::String(_)))) if !role.is_empty() => {
                    Ok(MongoRole {
                        role: role.clone(),
                        db: db.and_then(Value::as_str).unwrap_or_default().to_string(),
                    })
                }
                _ => Err(Error::bad(format!(
                    "invalid role {item}: a role document needs a \"role\" name and an optional \"db\""
                ))),
            },
            _ => Err(Error::bad(format!(
                "invalid role {item}: a role is a name or a {{\"role\", \"db\"}} document"
            ))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_and_print_as_mongodb_takes_them() {
        let roles = parse_roles(r#"["readWrite",{"db":"bar","role":"read"},{"role":"dbAdmin"}]"#).expect("roles");
        let role = Role {
            db: "foo".into(),
            roles,
        };
        assert_eq!(
            role.roles_value().to_string(),
            r#"["readWrite",{"db":"bar","role":"read"},"dbAdmin"]"#
        );
        assert!(parse_roles("").expect("empty").is_empty());
        for bad in [
            "[",
            "{}",
            "[5]",
            r#"[{"db":"x"}]"#,
            r#"[{"role":"r","db":5}]"#,
            "[\"\"]",
        ] {
            assert!(parse_roles(bad).is_err(), "{bad}");
        }
    }
}
