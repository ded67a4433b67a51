//! Token roles (Vault's `auth/token/roles/:role_name`): named settings a
//! token made with `auth/token/create/:role_name` gets — the policies it
//! may (or may not) have, whether it is an orphan, renewable or periodic,
//! its explicit max TTL, uses and type, and a suffix for its path. A role
//! lets a caller make tokens with policies it does not hold itself, which
//! is what roles are for (the ACL on `auth/token/create/<role>` decides
//! who may).
//!
//! Stored at `sys/token-role/<name>` ([`layout::TOKEN_ROLES`]), replicated
//! (Vault's token store keeps its roles outside its local paths).

use super::sanitize_policies;
use crate::error::{Error, Result};
use crate::framework::Req;
use crate::logical::Namespace;
use crate::storage::{View, layout};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// A token role as stored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TokenRole {
    pub name: String,
    pub allowed_policies: Vec<String>,
    pub disallowed_policies: Vec<String>,
    pub allowed_policies_glob: Vec<String>,
    pub disallowed_policies_glob: Vec<String>,
    pub orphan: bool,
    pub renewable: bool,
    pub path_suffix: String,
    pub allowed_entity_aliases: Option<Vec<String>>,
    /// Legacy fields, shown as Vault shows them.
    pub explicit_max_ttl: i64,
    pub period: i64,
    pub token_explicit_max_ttl: i64,
    pub token_no_default_policy: bool,
    pub token_num_uses: i64,
    pub token_period: i64,
    /// service, batch, default-service or default-batch.
    pub token_type: String,
    pub token_bound_cidrs: Vec<String>,
}

impl TokenRole {
    /// Vault's read of a role.
    pub fn to_json(&self) -> Value {
        let mut data = json!({
            "allowed_entity_aliases": self.allowed_entity_aliases,
            "allowed_policies": self.allowed_policies,
            "allowed_policies_glob": self.allowed_policies_glob,
            "disallowed_policies": self.disallowed_policies,
            "disallowed_policies_glob": self.disallowed_policies_glob,
            "explicit_max_ttl": self.explicit_max_ttl,
            "name": self.name,
            "orphan": self.orphan,
            "path_suffix": self.path_suffix,
            "period": self.period,
            "renewable": self.renewable,
            "token_explicit_max_ttl": self.token_explicit_max_ttl,
            "token_no_default_policy": self.token_no_default_policy,
            "token_period": self.token_period,
            "token_type": self.token_type,
        });
        if !self.token_bound_cidrs.is_empty() {
            data["token_bound_cidrs"] = json!(self.token_bound_cidrs);
        }
        if self.token_num_uses > 0 {
            data["token_num_uses"] = json!(self.token_num_uses);
        }
        data
    }

    /// The period a token of this role gets (the legacy field if the new
    /// one is unset).
    pub fn effective_period(&self) -> i64 {
        if self.token_period > 0 {
            self.token_period
        } else {
            self.period
        }
    }

    /// The explicit max TTL a token of this role gets.
    pub fn effective_explicit_max_ttl(&self) -> i64 {
        if self.token_explicit_max_ttl > 0 {
            self.token_explicit_max_ttl
        } else {
            self.explicit_max_ttl
        }
    }

    /// Does this role make batch tokens unless the request asks otherwise?
    pub fn makes_batch(&self) -> bool {
        matches!(self.token_type.as_str(), "batch" | "default-batch")
    }
}

/// A namespace's token roles.
fn view(core: &super::Core, ns: &Namespace) -> View {
    View::new(
        core.storage.clone(),
        format!("{}{}", layout::namespace(ns), layout::TOKEN_ROLES),
    )
}

pub async fn get(core: &super::Core, ns: &Namespace, name: &str) -> Result<Option<TokenRole>> {
    Ok(view(core, ns).get_json(&name.to_lowercase()).await?)
}

pub async fn list(core: &super::Core, ns: &Namespace) -> Result<Vec<String>> {
    let mut names = view(core, ns).list("").await?;
    names.sort();
    Ok(names)
}

pub async fn delete(core: &super::Core, ns: &Namespace, name: &str) -> Result<()> {
    Ok(view(core, ns).delete(&name.to_lowercase()).await?)
}

/// Vault's `\w[\w-.]+\w`, which a path suffix must match whole.
fn valid_suffix(s: &str) -> bool {
    let word = |c: char| c.is_alphanumeric() || c == '_';
    let chars: Vec<char> = s.chars().collect();
    chars.len() >= 3
        && word(chars[0])
        && word(chars[chars.len() - 1])
        && chars[1..chars.len() - 1]
            .iter()
            .all(|c| word(*c) || *c == '-' || *c == '.')
}

/// Create or update a role from the request: the fields given replace
/// the stored ones; the rest keep their values (a new role: Vault's
/// defaults). Validated before anything is stored.
pub async fn write(core: &super::Core, r: &Req<'_>) -> Result<()> {
    let f = &r.fields;
    let name = f.str("role_name").to_lowercase();
    let mut role = match get(core, r.namespace, &name).await? {
        Some(role) => role,
        None => TokenRole {
            name: name.clone(),
            renewable: true,
            token_type: "default-service".into(),
            ..TokenRole::default()
        },
    };
    let policies = |field: &str| sanitize_policies(f.list(field), false);
    if f.is_given("allowed_policies") {
        role.allowed_policies = policies("allowed_policies");
    }
    if f.is_given("disallowed_policies") {
        role.disallowed_policies = policies("disallowed_policies");
    }
    if f.is_given("allowed_policies_glob") {
        role.allowed_policies_glob = policies("allowed_policies_glob");
    }
    if f.is_given("disallowed_policies_glob") {
        role.disallowed_policies_glob = policies("disallowed_policies_glob");
    }
    if f.is_given("allowed_entity_aliases") {
        role.allowed_entity_aliases = Some(f.list("allowed_entity_aliases"));
    }
    if f.is_given("orphan") {
        role.orphan = f.bool("orphan");
    }
    if f.is_given("renewable") {
        role.renewable = f.bool("renewable");
    }
    if f.is_given("path_suffix") {
        let suffix = f.str("path_suffix");
        if !suffix.is_empty() && !valid_suffix(&suffix) {
            return Err(Error::bad(
                "given role path suffix contains invalid characters; must match \\w[\\w-.]+\\w",
            ));
        }
        role.path_suffix = suffix;
    }
    for (field, slot) in [
        ("explicit_max_ttl", &mut role.explicit_max_ttl),
        ("period", &mut role.period),
        ("token_explicit_max_ttl", &mut role.token_explicit_max_ttl),
        ("token_period", &mut role.token_period),
    ] {
        if f.is_given(field) {
            let secs = f.duration(field);
            if secs < 0 {
                return Err(Error::bad(format!("{field} cannot be negative")));
            }
            *slot = secs;
        }
    }
    if f.is_given("token_num_uses") {
        let uses = f.int("token_num_uses");
        if uses < 0 {
            return Err(Error::bad("token_num_uses cannot be negative"));
        }
        role.token_num_uses = uses;
    }
    if f.is_given("token_no_default_policy") {
        role.token_no_default_policy = f.bool("token_no_default_policy");
    }
    if f.is_given("token_type") {
        let kind = f.str("token_type");
        let kind = if kind.is_empty() {
            "default-service".to_string()
        } else {
            kind
        };
        if !matches!(kind.as_str(), "service" | "batch" | "default-service" | "default-batch") {
            return Err(Error::bad(format!("invalid 'token_type' value {kind:?}")));
        }
        role.token_type = kind;
    }
    if f.is_given("token_bound_cidrs") {
        let cidrs = f.list("token_bound_cidrs");
        crate::credential::cidr::parse_all(&cidrs, true).map_err(Error::bad)?;
        role.token_bound_cidrs = cidrs;
    }
    view(core, r.namespace).put_json(&name, &role).await?;
    Ok(())
}

/// Vault's `StrListSubsetGlob`: every item of `items` is in `exact` or
/// matches one of `globs` (a `*` matches any run of characters).
pub fn subset_glob(exact: &[String], globs: &[String], items: &[String]) -> bool {
    items
        .iter()
        .all(|i| exact.contains(i) || globs.iter().any(|g| glob_match(g, i)))
}

/// A `*` glob (Vault's `glob.Glob` as roles use it).
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(at) => rest = &rest[at + middle.len()..],
            None => return false,
        }
    }
    true
}

/// Go's `%q` of a string list: `["a" "b"]`.
pub fn go_quoted(list: &[String]) -> String {
    let items: Vec<String> = list.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", items.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_suffixes_follow_vaults_pattern() {
        for ok in ["abc", "w2-v1", "a.b", "a_b", "v1.2-x"] {
            assert!(valid_suffix(ok), "{ok}");
        }
        for bad in ["", "ab", "-ab", "ab-", "a/b", "a b", ".ab"] {
            assert!(!valid_suffix(bad), "{bad}");
        }
    }

    #[test]
    fn globs_match_as_vaults() {
        assert!(glob_match("dev-*", "dev-app"));
        assert!(glob_match("*-ro", "db-ro"));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(!glob_match("a*b*c", "axxcyyb"));
        assert!(!glob_match("dev-*", "prod-app"));
        assert!(glob_match("exact", "exact") && !glob_match("exact", "exactly"));
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(subset_glob(
            &s(&["default", "a"]),
            &s(&["team-*"]),
            &s(&["a", "team-x"])
        ));
        assert!(!subset_glob(&s(&["default", "a"]), &s(&["team-*"]), &s(&["b"])));
    }

    #[test]
    fn lists_print_as_go_quotes_them() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(go_quoted(&s(&["default", "w2-other"])), r#"["default" "w2-other"]"#);
        assert_eq!(go_quoted(&[]), "[]");
    }
}
