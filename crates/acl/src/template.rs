//! ACL policy templating: `{{identity.entity.id}}` and friends in a path
//! pattern, filled in from the token's entity and groups when the ACL is
//! built (Vault's sdk/helper/identitytpl, ACL mode).
//!
//! When a policy is written only the braces are checked (balanced, else
//! `failed to validate policy templating: unbalanced templating
//! characters`). When an ACL is built, a pattern whose template cannot be
//! filled (no entity, no such metadata key, an alias or group the entity
//! lacks) is dropped from the ACL, as Vault drops it; the default policy's
//! two `identity/entity/...` paths are dropped that way for tokens without
//! an entity.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

/// What the templates can name: the token's entity and its groups.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    pub entity_id: String,
    pub entity_name: String,
    pub metadata: BTreeMap<String, String>,
    pub aliases: Vec<Alias>,
    /// Direct and inherited groups.
    pub groups: Vec<Group>,
}

/// An entity alias, found in templates by its mount's accessor.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Alias {
    pub mount_accessor: String,
    pub id: String,
    pub name: String,
    pub metadata: BTreeMap<String, String>,
    pub custom_metadata: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Group {
    pub id: String,
    pub name: String,
    pub metadata: BTreeMap<String, String>,
}

/// Braces that do not pair up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Unbalanced;

/// Whether `s` holds templates, checking that its braces pair up
/// (identitytpl's validity check).
pub(crate) fn has_templates(s: &str) -> Result<bool, Unbalanced> {
    let mut pieces = s.split("{{");
    if pieces.next().is_some_and(|first| first.contains("}}")) {
        return Err(Unbalanced);
    }
    let mut any = false;
    for piece in pieces {
        if piece.split("}}").count() != 2 {
            return Err(Unbalanced);
        }
        any = true;
    }
    Ok(any)
}

/// `s` with its templates filled from `identity` (`None`: a token without
/// an entity). `None` back when a template cannot be filled, for whatever
/// reason: Vault then skips the path, so the reason is never shown.
pub(crate) fn render(s: &str, identity: Option<&Identity>) -> Option<String> {
    let mut pieces = s.split("{{");
    let first = pieces.next()?;
    if first.contains("}}") {
        return None;
    }
    let mut out = String::with_capacity(s.len() * 2);
    out.push_str(first);
    for piece in pieces {
        let mut parts = piece.split("}}");
        let (Some(inner), Some(after), None) = (parts.next(), parts.next(), parts.next()) else {
            return None;
        };
        out.push_str(&directive(inner.trim(), identity)?);
        out.push_str(after);
    }
    Some(out)
}

/// ACL mode: a value must be a non-empty string, or a map entry named by
/// the selector (which may be empty); lists and whole maps are refused.
fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

fn directive(input: &str, identity: Option<&Identity>) -> Option<String> {
    if let Some(rest) = input.strip_prefix("identity.entity.") {
        let entity = identity?;
        return match rest {
            "id" => non_empty(&entity.entity_id),
            "name" => non_empty(&entity.entity_name),
            _ => {
                if let Some(key) = rest.strip_prefix("metadata.") {
                    return entity.metadata.get(key).cloned();
                }
                let (accessor, field) = rest.strip_prefix("aliases.")?.split_once('.')?;
                let alias = entity.aliases.iter().find(|a| a.mount_accessor == accessor)?;
                match field {
                    "id" => non_empty(&alias.id),
                    "name" => non_empty(&alias.name),
                    _ => match field.split_once('.') {
                        Some(("metadata", key)) => alias.metadata.get(key).cloned(),
                        Some(("custom_metadata", key)) => alias.custom_metadata.get(key).cloned(),
                        _ => None,
                    },
                }
            }
        };
    }
    if let Some(rest) = input.strip_prefix("identity.groups.") {
        let groups = identity.map(|i| i.groups.as_slice()).unwrap_or_default();
        if groups.is_empty() {
            return None;
        }
        let (by, rest) = rest.split_once('.')?;
        let (wanted, field) = rest.split_once('.')?;
        let group = match by {
            "ids" => groups.iter().find(|g| g.id == wanted),
            "names" => groups.iter().find(|g| g.name == wanted),
            _ => None,
        }?;
        return match field {
            "id" => Some(group.id.clone()),
            "name" => non_empty(&group.name),
            _ => group.metadata.get(field.strip_prefix("metadata.")?).cloned(),
        };
    }
    if let Some(rest) = input.strip_prefix("time.") {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
        let now = i64::try_from(now).ok()?;
        let mut ops = rest.splitn(3, '.');
        if ops.next()? != "now" {
            return None;
        }
        let at = match (ops.next(), ops.next()) {
            (None, _) => now,
            (Some(_), None) => return None,
            (Some(op), Some(duration)) => {
                let secs = goduration::parse_seconds(duration).ok()?;
                match op {
                    "plus" => now.checked_add(secs)?,
                    "minus" => now.checked_sub(secs)?,
                    _ => return None,
                }
            }
        };
        return Some(at.to_string());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> Identity {
        Identity {
            entity_id: "e-1".into(),
            entity_name: "alice".into(),
            metadata: [
                ("team".to_string(), "blue".to_string()),
                ("empty".into(), String::new()),
            ]
            .into(),
            aliases: vec![Alias {
                mount_accessor: "auth_userpass_1".into(),
                id: "a-1".into(),
                name: "alice-up".into(),
                metadata: [("k".to_string(), "v".to_string())].into(),
                custom_metadata: [("c".to_string(), "w".to_string())].into(),
            }],
            groups: vec![Group {
                id: "g-1".into(),
                name: "admins".into(),
                metadata: [("site".to_string(), "eu".to_string())].into(),
            }],
        }
    }

    #[test]
    fn validity_is_about_braces_only() {
        assert_eq!(has_templates("plain/path"), Ok(false));
        assert_eq!(has_templates("a/{{identity.entity.id}}/b"), Ok(true));
        assert_eq!(has_templates("a/{{anything at all}}"), Ok(true));
        assert_eq!(has_templates("a/}}x"), Err(Unbalanced));
        assert_eq!(has_templates("a/{{x"), Err(Unbalanced));
        assert_eq!(has_templates("a/{{x}}y}}"), Err(Unbalanced));
        assert_eq!(has_templates("a/{{x{{y}}"), Err(Unbalanced));
    }

    #[test]
    fn fills_from_the_identity() {
        let id = identity();
        let r = |s: &str| render(s, Some(&id));
        assert_eq!(r("p/{{identity.entity.id}}").as_deref(), Some("p/e-1"));
        assert_eq!(r("p/{{ identity.entity.name }}/x").as_deref(), Some("p/alice/x"));
        assert_eq!(r("{{identity.entity.metadata.team}}").as_deref(), Some("blue"));
        assert_eq!(
            r("x{{identity.entity.metadata.empty}}").as_deref(),
            Some("x"),
            "a map entry may be empty"
        );
        assert_eq!(r("{{identity.entity.metadata.none}}"), None);
        assert_eq!(r("{{identity.entity.metadata}}"), None, "a whole map is refused");
        assert_eq!(r("{{identity.entity.groups.names}}"), None, "a list is refused");
        assert_eq!(
            r("{{identity.entity.aliases.auth_userpass_1.name}}").as_deref(),
            Some("alice-up")
        );
        assert_eq!(
            r("{{identity.entity.aliases.auth_userpass_1.metadata.k}}").as_deref(),
            Some("v")
        );
        assert_eq!(
            r("{{identity.entity.aliases.auth_userpass_1.custom_metadata.c}}").as_deref(),
            Some("w")
        );
        assert_eq!(r("{{identity.entity.aliases.other.name}}"), None);
        assert_eq!(r("{{identity.groups.names.admins.id}}").as_deref(), Some("g-1"));
        assert_eq!(r("{{identity.groups.ids.g-1.name}}").as_deref(), Some("admins"));
        assert_eq!(r("{{identity.groups.ids.g-1.metadata.site}}").as_deref(), Some("eu"));
        assert_eq!(r("{{identity.groups.names.users.id}}"), None);
        assert_eq!(r("{{unknown}}"), None);
        assert_eq!(r("plain").as_deref(), Some("plain"));
        let now = render("{{time.now}}", None)
            .expect("time")
            .parse::<i64>()
            .expect("number");
        let later = render("{{time.now.plus.1h}}", None)
            .expect("time")
            .parse::<i64>()
            .expect("number");
        assert!((3599..=3601).contains(&(later - now)), "{now} {later}");
        assert_eq!(render("{{time.now.plus}}", None), None);
        assert_eq!(render("{{time.then}}", None), None);
    }

    #[test]
    fn no_entity_fills_nothing() {
        assert_eq!(render("p/{{identity.entity.id}}", None), None);
        assert_eq!(render("p/{{identity.groups.names.admins.id}}", None), None);
        let no_groups = Identity {
            groups: vec![],
            ..identity()
        };
        assert_eq!(render("{{identity.groups.names.admins.id}}", Some(&no_groups)), None);
    }
}
