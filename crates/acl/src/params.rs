//! Whether a request parameter's value is in a rule's list of allowed or
//! denied values (vault/acl.go `valueInParameterList`, OpenBao's version).
//!
//! - An empty list holds every value.
//! - Strings match strings with go-secure-stdlib's `GlobbedStringsMatch`:
//!   `foo*` is a prefix, `*foo` a suffix, `*foo*` a substring, anything
//!   else (and any pattern shorter than 2, so a lone `*`) exact.
//! - `null` matches only `null`.
//! - Anything else compares as equal JSON values, numbers by value.
//!
//! Two choices to know about. Numbers: Vault compares the HCL value with
//! `reflect.DeepEqual`, and over HTTP a request's number is a `json.Number`
//! that never equals the policy's `int`, so in Vault `allowed_parameters =
//! { ttl = [3600] }` refuses every `ttl`; here 3600 matches 3600, which is
//! what the policy says. Lists: OpenBao compares a list value whole,
//! without looking at its elements or splitting comma-separated strings,
//! and so do we; recent Vault matches element by element (each element
//! allowed; any element denied) unless `VAULT_LEGACY_EXACT_MATCHING_ON_LIST`
//! is set.

use serde_json::Value;

/// `GlobbedStringsMatch(pattern, value)`.
pub(crate) fn glob_match(pattern: &str, value: &str) -> bool {
    if pattern.len() < 2 {
        return value == pattern;
    }
    match (pattern.strip_prefix('*'), pattern.strip_suffix('*')) {
        (Some(_), Some(_)) => value.contains(&pattern[1..pattern.len() - 1]),
        (Some(suffix), None) => value.ends_with(suffix),
        (None, Some(prefix)) => value.starts_with(prefix),
        (None, None) => value == pattern,
    }
}

/// `valueInParameterList(value, list)`.
pub(crate) fn value_in_list(value: &Value, list: &[Value]) -> bool {
    list.is_empty()
        || list.iter().any(|el| match (el, value) {
            (Value::Null, _) | (_, Value::Null) => el.is_null() && value.is_null(),
            (Value::String(pattern), Value::String(s)) => glob_match(pattern, s),
            _ => json_equal(el, value),
        })
}

/// JSON equality with numbers compared by value (1 equals 1.0).
fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64(), x.as_u64(), y.as_u64()) {
            (Some(x), Some(y), _, _) => x == y,
            (_, _, Some(x), Some(y)) => x == y,
            _ => x.as_f64().zip(y.as_f64()).is_some_and(|(x, y)| x == y),
        },
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_equal(x, y)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn globbed_strings() {
        assert!(glob_match("foo*", "foobar"));
        assert!(!glob_match("foo*", "barfoo"));
        assert!(glob_match("*foo", "barfoo"));
        assert!(!glob_match("*foo", "foobar"));
        assert!(glob_match("*oo*", "xooy"));
        assert!(glob_match("**", "anything"), "*…* with nothing inside");
        assert!(glob_match("*", "*"));
        assert!(!glob_match("*", "anything"), "a lone * is literal, as in Vault");
        assert!(glob_match("", ""));
        assert!(!glob_match("", "x"));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("exact", "exactly"));
        assert!(glob_match("a*b", "a*b"), "a * in the middle is literal");
        assert!(!glob_match("a*b", "axb"));
    }

    #[test]
    fn values() {
        assert!(value_in_list(&json!("anything"), &[]));
        assert!(value_in_list(&json!(null), &[]));
        assert!(value_in_list(&json!("bad glob"), &[json!("bad*")]));
        assert!(!value_in_list(&json!("good"), &[json!("bad*")]));
        assert!(!value_in_list(&json!(null), &[json!("bad*")]));
        assert!(value_in_list(&json!(null), &[json!("x"), json!(null)]));
        assert!(!value_in_list(&json!("null"), &[json!(null)]));
        assert!(value_in_list(&json!(1), &[json!(1), json!(2)]));
        assert!(value_in_list(&json!(1.0), &[json!(1)]), "numbers by value");
        assert!(!value_in_list(&json!(3), &[json!(1), json!(2)]));
        assert!(!value_in_list(&json!("1"), &[json!(1)]), "a string is not a number");
        assert!(value_in_list(&json!(false), &[json!(false)]));
        assert!(!value_in_list(&json!(true), &[json!(false)]));
        assert!(value_in_list(&json!({"good": "one"}), &[json!({"good": "one"})]));
        assert!(!value_in_list(&json!({"bad": "one"}), &[json!({"good": "one"})]));
        assert!(value_in_list(&json!(["a", 1]), &[json!(["a", 1.0])]));
        assert!(
            !value_in_list(&json!(["a", "b"]), &[json!("a"), json!("b")]),
            "lists compare whole (OpenBao)"
        );
        assert!(
            !value_in_list(&json!("a,b"), &[json!("a"), json!("b")]),
            "no comma splitting (OpenBao)"
        );
        assert!(value_in_list(&json!(u64::MAX), &[json!(u64::MAX)]));
        assert!(!value_in_list(&json!(-1), &[json!(u64::MAX)]));
    }
}
