//! Tests of the compiled ACL: lookup order and priority, merging across
//! policies, parameters, wrapping, pagination, root, help, templates and
//! the built-in policies. The cases follow Vault's own (vault/acl_test.go)
//! where Vault has one, so that a difference in behaviour shows here.

use super::*;
use crate::policy::{DEFAULT_POLICY, Policy};
use crate::template::{Group, Identity};
use serde_json::json;

fn policy(name: &str, text: &str) -> Policy {
    Policy::parse(name, text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn acl(texts: &[&str]) -> Acl {
    let policies: Vec<Policy> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| policy(&format!("p{i}"), t))
        .collect();
    Acl::new(&policies).expect("acl")
}

fn data(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

fn allowed(acl: &Acl, op: Operation, path: &str) -> bool {
    acl.allow(&Request::new(op, path)).allowed
}

/// Vault's aclPolicy (vault/acl_test.go), as one policy.
const SINGLE: &str = r#"
path "dev/*" { policy = "sudo" }
path "stage/*" { policy = "write" }
path "stage/aws/*" {
    policy = "read"
    capabilities = ["update", "sudo"]
}
path "stage/aws/policy/*" { policy = "sudo" }
path "prod/*" { policy = "read" }
path "prod/aws/*" { policy = "deny" }
path "sys/*" { policy = "deny" }
path "foo/bar" { capabilities = ["read", "create", "sudo"] }
path "baz/quux" { capabilities = ["read", "create", "patch"] }
path "test/+/segment" { capabilities = ["read"] }
path "+/segment/at/front" { capabilities = ["read"] }
path "test/segment/at/end/+" { capabilities = ["read"] }
path "test/segment/at/end/v2/+/" { capabilities = ["read"] }
path "test/+/wildcard/+/*" { capabilities = ["read"] }
path "test/+/wildcardglob/+/end*" { capabilities = ["read"] }
path "1/2/*" { capabilities = ["create"] }
path "1/2/+" { capabilities = ["read"] }
path "1/2/+/+" { capabilities = ["update"] }
path "asdf/fdsa" { capabilities = ["scan"] }
"#;

/// Vault's aclPolicy2: layered over SINGLE.
const LAYER: &str = r#"
path "dev/hide/*" { policy = "deny" }
path "stage/aws/policy/*" {
    policy = "deny"
    capabilities = ["read", "update", "sudo"]
}
path "prod/*" { policy = "write" }
path "sys/seal" { policy = "sudo" }
path "foo/bar" { capabilities = ["deny"] }
path "baz/quux" { capabilities = ["deny"] }
"#;

#[test]
fn single_policy_cases() {
    use Operation::*;
    let a = acl(&[SINGLE]);
    let cases: &[(Operation, &str, bool, bool)] = &[
        (Read, "root", false, false),
        (Help, "root", true, false),
        (Read, "dev/foo", true, true),
        (Update, "dev/foo", true, true),
        (Delete, "stage/foo", true, false),
        (List, "stage/aws/foo", true, true),
        (Update, "stage/aws/foo", true, true),
        (Update, "stage/aws/policy/foo", true, true),
        (Delete, "prod/foo", false, false),
        (Update, "prod/foo", false, false),
        (Read, "prod/foo", true, false),
        (List, "prod/foo", true, false),
        (Read, "prod/aws/foo", false, false),
        (Read, "foo/bar", true, true),
        (List, "foo/bar", false, true),
        (Update, "foo/bar", false, true),
        (Create, "foo/bar", true, true),
        (Read, "baz/quux", true, false),
        (Create, "baz/quux", true, false),
        (Patch, "baz/quux", true, false),
        (List, "baz/quux", false, false),
        (Update, "baz/quux", false, false),
        (Scan, "baz/quux", false, false),
        (Scan, "asdf/fdsa", true, false),
        (List, "asdf/fdsa", false, false),
        // segment wildcards
        (Read, "test/foo/bar/segment", false, false),
        (Read, "test/foo/segment", true, false),
        (Read, "test/bar/segment", true, false),
        (Read, "test/segment/at/frond", false, false),
        (Read, "test/segment/at/front", true, false),
        (Read, "test/segment/at/end/foo", true, false),
        (Read, "test/segment/at/end/foo/", false, false),
        (Read, "test/segment/at/end/v2/foo/", true, false),
        (Read, "test/segment/wildcard/at/foo/", true, false),
        (Read, "test/segment/wildcard/at/end", true, false),
        (Read, "test/segment/wildcard/at/end/", true, false),
        (Read, "test/x/wildcardglob/y/endless", true, false),
        (Read, "test/x/wildcardglob/y/en", false, false),
        // segment wildcards against a glob
        (Read, "1/2/3/4", false, false),
        (Read, "1/2/3", true, false),
        (Update, "1/2/3", false, false),
        (Update, "1/2/3/4", true, false),
        (Create, "1/2/3/4/5", true, false),
        // leading slashes are dropped
        (Read, "//dev/foo", true, true),
    ];
    for &(op, path, ok, sudo) in cases {
        let d = a.allow(&Request::new(op, path));
        assert_eq!((d.allowed, d.sudo), (ok, sudo), "{op:?} {path}: {:?}", d.denial);
        assert_eq!(d.denial.is_none(), ok, "{op:?} {path}");
    }
}

#[test]
fn layered_policies_merge_and_deny_wins() {
    use Operation::*;
    for a in [acl(&[SINGLE, LAYER]), acl(&[LAYER, SINGLE])] {
        let cases: &[(Operation, &str, bool, bool)] = &[
            (Read, "dev/foo", true, true),
            (Read, "dev/hide/foo", false, false),
            (Update, "dev/hide/foo", false, false),
            (Delete, "stage/foo", true, false),
            (List, "stage/aws/foo", true, true),
            (Update, "stage/aws/policy/foo", false, false),
            (Delete, "prod/foo", true, false),
            (Update, "prod/foo", true, false),
            (Read, "prod/foo", true, false),
            (Read, "prod/aws/foo", false, false),
            (Read, "sys/status", false, false),
            (Update, "sys/seal", true, true),
            (Read, "foo/bar", false, false),
            (Create, "foo/bar", false, false),
            (Patch, "baz/quux", false, false),
        ];
        for &(op, path, ok, sudo) in cases {
            let d = a.allow(&Request::new(op, path));
            assert_eq!((d.allowed, d.sudo), (ok, sudo), "{op:?} {path}: {:?}", d.denial);
        }
        assert_eq!(a.allow(&Request::new(Read, "foo/bar")).denial, Some(Denial::Denied));
        assert_eq!(a.capabilities("foo/bar"), ["deny"]);
    }
}

/// Vault's TestACL_SegmentWildcardPriority: in each pair the update rule
/// is the more specific one and must win.
#[test]
fn each_priority_rule() {
    let cases = [
        // '*' over '+/*': first wildcard position ties at 0, then fewer '+'
        (
            r#"path "+/*" { capabilities = ["read"] }"#,
            r#"path "*" { capabilities = ["update"] }"#,
            "foo/bar/bar/baz",
        ),
        // 1. later first wildcard
        (
            r#"path "+/*" { capabilities = ["read"] }"#,
            r#"path "foo/+/*" { capabilities = ["update"] }"#,
            "foo/bar/bar/baz",
        ),
        (
            r#"path "foo/+/(ar/baz" { capabilities = ["read"] }"#,
            r#"path "foo/(ar/+/baz" { capabilities = ["update"] }"#,
            "foo/(ar/(ar/baz",
        ),
        (
            r#"path "foo/+" { capabilities = ["read"] }"#,
            r#"path "foo/a*" { capabilities = ["update"] }"#,
            "foo/abc",
        ),
        // 2. not ending in '*'
        (
            r#"path "foo/bar/+/baz*" { capabilities = ["read"] }"#,
            r#"path "foo/bar/+/baz" { capabilities = ["update"] }"#,
            "foo/bar/bar/baz",
        ),
        (
            r#"path "foo/*" { capabilities = ["read"] }"#,
            r#"path "foo/+" { capabilities = ["update"] }"#,
            "foo/bar",
        ),
        // 3. fewer '+' segments
        (
            r#"path "foo/+/+/*" { capabilities = ["read"] }"#,
            r#"path "foo/+/bar/baz" { capabilities = ["update"] }"#,
            "foo/bar/bar/baz",
        ),
        (
            r#"path "foo/+/+/baz" { capabilities = ["read"] }"#,
            r#"path "foo/+/bar/baz" { capabilities = ["update"] }"#,
            "foo/bar/bar/baz",
        ),
        // 4. longer
        (
            r#"path "foo/bar/+/b*" { capabilities = ["read"] }"#,
            r#"path "foo/bar/+/ba*" { capabilities = ["update"] }"#,
            "foo/bar/bar/baz",
        ),
        // 5. lexically greater (same shape otherwise; '+' sorts before 'a')
        (
            r#"path "x/+/+/b" { capabilities = ["read"] }"#,
            r#"path "x/+/a/+" { capabilities = ["update"] }"#,
            "x/1/a/b",
        ),
    ];
    for (low, high, path) in cases {
        for a in [acl(&[&format!("{low}\n{high}")]), acl(&[low, high]), acl(&[high, low])] {
            assert!(
                allowed(&a, Operation::Update, path),
                "{high} should win over {low} for {path}"
            );
            assert!(
                !allowed(&a, Operation::Read, path),
                "{low} should lose to {high} for {path}"
            );
        }
    }
}

#[test]
fn exact_beats_everything_and_longest_prefix_wins() {
    let a = acl(&[r#"
path "secret/*" { capabilities = ["read"] }
path "secret/foo/*" { capabilities = ["update"] }
path "secret/foo/bar" { capabilities = ["delete"] }
path "secret/+/bar" { capabilities = ["list"] }
"#]);
    assert_eq!(a.capabilities("secret/foo/bar"), ["delete"]);
    assert_eq!(a.capabilities("secret/foo/baz"), ["update"]);
    // the prefix "secret/foo/" (first wildcard at 11) beats "+" at 7
    assert_eq!(a.capabilities("secret/x/bar"), ["list"]);
    assert_eq!(a.capabilities("secret/x"), ["read"]);
    assert_eq!(a.capabilities("secre"), ["deny"]);
    let only_prefixes = acl(&[r#"path "a/*" { capabilities = ["read"] }
path "a/b*" { capabilities = ["update"] }"#]);
    assert_eq!(only_prefixes.capabilities("a/bc"), ["update"]);
    assert_eq!(only_prefixes.capabilities("a/c"), ["read"]);
    assert_eq!(only_prefixes.capabilities("a"), ["deny"]);
}

#[test]
fn list_and_the_trailing_slash() {
    let a = acl(&[r#"
path "kv/metadata" { capabilities = ["list", "scan"] }
path "other/*" { capabilities = ["read"] }
path "other/dir" { capabilities = ["list"] }
path "glob/x*" { capabilities = ["list"] }
path "glob/x/*" { capabilities = ["read"] }
"#]);
    assert!(
        allowed(&a, Operation::List, "kv/metadata/"),
        "exact rule without the trailing /"
    );
    assert!(allowed(&a, Operation::Scan, "kv/metadata/"), "scan too");
    assert!(!allowed(&a, Operation::Read, "kv/metadata/"), "only for list");
    assert!(allowed(&a, Operation::List, "other/dir/"));
    // non-exact: LIST tries the path without its '/' first
    // LIST glob/x/ looks up glob/x first and finds glob/x* (list); a read
    // of glob/x/ finds glob/x/* (read only)
    assert!(allowed(&a, Operation::List, "glob/x/"));
    assert!(allowed(&a, Operation::Read, "glob/x/"));
    assert!(!allowed(&a, Operation::Read, "glob/x"));
    assert!(allowed(&a, Operation::Read, "glob/x/y"));
    assert!(
        !allowed(&a, Operation::List, "glob/x/y/"),
        "glob/x/y matches glob/x/* (read)"
    );
    assert_eq!(a.capabilities("glob/x/"), ["list"], "capabilities look up as LIST");
}

#[test]
fn merges_across_policies() {
    // Vault's mergingPolicies, split over two policies.
    let a = acl(&[
        r#"
path "foo/bar" {
    policy = "write"
    denied_parameters = { "baz" = [] }
    required_parameters = ["baz"]
}
path "hello/universe" {
    policy = "write"
    allowed_parameters = { "foo" = [] }
    required_parameters = ["foo"]
    max_wrapping_ttl = 300
    min_wrapping_ttl = 100
}
path "allow/all" {
    policy = "write"
    allowed_parameters = { "test" = [], "test1" = ["foo"] }
}
path "value/merge" {
    policy = "write"
    allowed_parameters = { "test" = [1, 2] }
    denied_parameters = { "test" = [1, 2] }
}
path "value/empty" {
    policy = "write"
    allowed_parameters = { "empty" = [] }
    denied_parameters = { "empty" = [1] }
}
path "mfa" {
    capabilities = ["read"]
    mfa_methods = ["b", "a"]
    pagination_limit = 100
}
"#,
        r#"
path "foo/bar" {
    policy = "write"
    denied_parameters = { "zip" = [] }
}
path "hello/universe" {
    policy = "write"
    allowed_parameters = { "bar" = [] }
    required_parameters = ["bar", "foo"]
    max_wrapping_ttl = 200
    min_wrapping_ttl = 50
}
path "allow/all" {
    policy = "write"
    allowed_parameters = { "*" = [] }
}
path "value/merge" {
    policy = "write"
    allowed_parameters = { "test" = [3, 4] }
    denied_parameters = { "test" = [3, 4] }
}
path "value/empty" {
    policy = "write"
    allowed_parameters = { "empty" = [1] }
    denied_parameters = { "empty" = [] }
}
path "mfa" {
    capabilities = ["list"]
    mfa_methods = [" c ", "a", ""]
    pagination_limit = 20
}
"#,
    ]);
    let rule = |path: &str| a.find_rule(path, Operation::Update).expect(path);
    let params = |v: Value| -> Parameters { serde_json::from_value(v).expect("params") };

    let r = rule("foo/bar");
    assert_eq!(r.denied_parameters(), &params(json!({"baz": [], "zip": []})));
    assert_eq!(r.required_parameters(), ["baz"]);

    let r = rule("hello/universe");
    assert_eq!(r.allowed_parameters(), &params(json!({"foo": [], "bar": []})));
    assert_eq!(r.required_parameters(), ["foo", "bar"], "union, first policy's order");
    assert_eq!(
        (r.min_wrapping_ttl(), r.max_wrapping_ttl()),
        (50, 200),
        "the lesser of each"
    );

    let r = rule("allow/all");
    assert_eq!(
        r.allowed_parameters(),
        &params(json!({"*": [], "test": [], "test1": ["foo"]}))
    );

    let r = rule("value/merge");
    assert_eq!(
        r.allowed_parameters(),
        &params(json!({"test": [3, 4, 1, 2]})),
        "new values first"
    );
    assert_eq!(r.denied_parameters(), &params(json!({"test": [3, 4, 1, 2]})));

    let r = rule("value/empty");
    assert_eq!(
        r.allowed_parameters(),
        &params(json!({"empty": []})),
        "an empty list wins"
    );
    assert_eq!(r.denied_parameters(), &params(json!({"empty": []})));

    let r = rule("mfa");
    assert_eq!(r.capabilities().names(), ["read", "list"]);
    assert_eq!(
        r.mfa_methods(),
        ["a", "b", "c"],
        "deduplicated, trimmed and sorted as Vault does"
    );
    assert_eq!(r.pagination_limit(), 20, "the lowest limit");

    // granting policies: who granted the operation's capability
    let d = a.allow(&Request::new(Operation::Read, "mfa"));
    assert_eq!(d.granting_policies(), ["p0"]);
    let d = a.allow(&Request::new(Operation::List, "mfa"));
    assert_eq!(d.granting_policies(), ["p1"]);
    let d = a.allow(&Request::new(Operation::Update, "allow/all"));
    assert_eq!(d.granting_policies(), ["p0", "p1"]);
    assert!(
        a.allow(&Request::new(Operation::Delete, "nowhere"))
            .granting_policies()
            .is_empty()
    );
}

#[test]
fn deny_drops_what_was_merged() {
    for order in [[0, 1], [1, 0]] {
        let texts = [
            r#"path "a" {
  capabilities = ["read", "update", "sudo"]
  allowed_parameters = { x = [] }
}"#,
            r#"path "a" { capabilities = ["deny"] }"#,
        ];
        let a = acl(&[texts[order[0]], texts[order[1]]]);
        let r = a.find_rule("a", Operation::Read).expect("rule");
        assert_eq!(r.capabilities(), Capabilities::DENY, "{order:?}");
        assert!(r.allowed_parameters().is_empty(), "{order:?}");
        let d = a.allow(&Request::new(Operation::Read, "a"));
        assert!(!d.allowed && !d.sudo, "{order:?}");
        assert_eq!(a.capabilities("a"), ["deny"]);
    }
    // a deny on a more specific rule only covers that rule
    let a = acl(&[
        r#"path "s/*" { capabilities = ["read"] }"#,
        r#"path "s/private/*" { capabilities = ["deny"] }"#,
    ]);
    assert!(allowed(&a, Operation::Read, "s/public"));
    assert!(!allowed(&a, Operation::Read, "s/private/x"));
}

#[test]
fn parameters() {
    // Vault's permissionsPolicy and valuePermissionsPolicy cases.
    let a = acl(&[r#"
path "dev/*" {
    policy = "write"
    allowed_parameters = { "zip" = [] }
}
path "broken/phone" {
    policy = "write"
    allowed_parameters = { "steve" = [] }
    denied_parameters = { "steve" = [] }
}
path "hello/world" {
    policy = "write"
    allowed_parameters = { "*" = [] }
    denied_parameters = { "*" = [] }
}
path "tree/fort" {
    policy = "write"
    allowed_parameters = { "*" = [] }
    denied_parameters = { "foo" = [] }
}
path "fruit/apple" {
    policy = "write"
    allowed_parameters = { "pear" = [] }
    denied_parameters = { "*" = [] }
}
path "cold/weather" {
    policy = "write"
    allowed_parameters = {}
    denied_parameters = {}
}
path "var/req" {
    policy = "write"
    required_parameters = ["foo"]
}
path "caps/req" {
    policy = "write"
    required_parameters = ["Foo"]
}
path "foo/bar" {
    policy = "write"
    denied_parameters = { "deny" = ["bad*"] }
}
path "foo/baz" {
    policy = "write"
    allowed_parameters = { "ALLOW" = ["good"] }
    denied_parameters = { "dEny" = ["bad"] }
}
path "fizz/buzz" {
    policy = "write"
    allowed_parameters = {
        "allow_multi" = ["good", "good1", "good2", "*good3"]
        "allow" = ["good"]
    }
    denied_parameters = { "deny_multi" = ["bad", "bad1", "bad2"] }
}
path "test/types" {
    policy = "write"
    allowed_parameters = {
        "map" = [{ "good" = "one" }]
        "int" = [1, 2]
        "bool" = [false]
    }
}
path "test/star" {
    policy = "write"
    allowed_parameters = {
        "*" = []
        "foo" = []
        "bar" = [false]
    }
}
"#]);
    let cases = [
        ("dev/ops", json!({"zip": ""}), None),
        ("dev/ops", json!({}), None),
        (
            "dev/ops",
            json!({"zap": ""}),
            Some(Denial::ParameterNotAllowed("zap".into())),
        ),
        (
            "broken/phone",
            json!({"steve": ""}),
            Some(Denial::DeniedParameter("steve".into())),
        ),
        ("hello/world", json!({"one": ""}), Some(Denial::AllParametersDenied)),
        ("hello/world", json!({}), None),
        ("tree/fort", json!({"one": ""}), None),
        (
            "tree/fort",
            json!({"foo": ""}),
            Some(Denial::DeniedParameter("foo".into())),
        ),
        ("fruit/apple", json!({"pear": ""}), Some(Denial::AllParametersDenied)),
        ("cold/weather", json!({"four": ""}), None),
        (
            "var/req",
            json!({"cold": ""}),
            Some(Denial::MissingRequiredParameter("foo".into())),
        ),
        ("var/req", json!({"cold": "", "foo": ""}), None),
        (
            "var/req",
            json!({"FOO": ""}),
            Some(Denial::MissingRequiredParameter("foo".into())),
        ),
        ("caps/req", json!({"foo": ""}), None),
        (
            "caps/req",
            json!({"Foo": ""}),
            Some(Denial::MissingRequiredParameter("Foo".into())),
        ),
        (
            "foo/bar",
            json!({"deny": "bad"}),
            Some(Denial::DeniedParameter("deny".into())),
        ),
        (
            "foo/bar",
            json!({"deny": "bad glob"}),
            Some(Denial::DeniedParameter("deny".into())),
        ),
        ("foo/bar", json!({"deny": "good"}), None),
        ("foo/bar", json!({"deny": null}), None),
        ("foo/bar", json!({"allow": "good"}), None),
        ("foo/baz", json!({"aLLow": "good"}), None),
        (
            "foo/baz",
            json!({"deny": "bad"}),
            Some(Denial::DeniedParameter("deny".into())),
        ),
        (
            "foo/baz",
            json!({"deNy": "bad", "allow": "good"}),
            Some(Denial::DeniedParameter("deNy".into())),
        ),
        (
            "foo/baz",
            json!({"deny": "good"}),
            Some(Denial::ParameterNotAllowed("deny".into())),
        ),
        (
            "foo/baz",
            json!({"aLLow": "bad"}),
            Some(Denial::ValueNotAllowed("aLLow".into())),
        ),
        (
            "foo/baz",
            json!({"Neither": "bad"}),
            Some(Denial::ParameterNotAllowed("Neither".into())),
        ),
        (
            "foo/baz",
            json!({"allow": null}),
            Some(Denial::ValueNotAllowed("allow".into())),
        ),
        ("fizz/buzz", json!({"allow_multi": "good1"}), None),
        (
            "fizz/buzz",
            json!({"allow_multi": "glob good2"}),
            Some(Denial::ValueNotAllowed("allow_multi".into())),
        ),
        ("fizz/buzz", json!({"allow_multi": "glob good3"}), None),
        ("fizz/buzz", json!({"allow_multi": "good1", "allow": "good"}), None),
        (
            "fizz/buzz",
            json!({"deny_multi": "bad2"}),
            Some(Denial::DeniedParameter("deny_multi".into())),
        ),
        ("test/types", json!({"map": {"good": "one"}}), None),
        (
            "test/types",
            json!({"map": {"bad": "one"}}),
            Some(Denial::ValueNotAllowed("map".into())),
        ),
        ("test/types", json!({"int": 1}), None),
        (
            "test/types",
            json!({"int": 3}),
            Some(Denial::ValueNotAllowed("int".into())),
        ),
        ("test/types", json!({"bool": false}), None),
        (
            "test/types",
            json!({"bool": true}),
            Some(Denial::ValueNotAllowed("bool".into())),
        ),
        ("test/star", json!({"anything": true}), None),
        ("test/star", json!({"bar": false}), None),
        (
            "test/star",
            json!({"bar": true}),
            Some(Denial::ValueNotAllowed("bar".into())),
        ),
    ];
    for (path, body, why) in cases {
        let body = data(body);
        // the legacy "write" grants create, read and update (not patch)
        for op in [Operation::Create, Operation::Update, Operation::Read] {
            let d = a.check(op, path, &body);
            assert_eq!(d.denial, why, "{op:?} {path} {body:?}");
            assert_eq!(d.allowed, why.is_none(), "{op:?} {path} {body:?}");
        }
        // delete and list never look at parameters
        assert!(
            a.check(Operation::Delete, path, &body).allowed,
            "delete {path} {body:?}"
        );
    }
    let patch = acl(&[r#"path "p" {
  capabilities = ["patch"]
  allowed_parameters = { "a" = ["x*"] }
}"#]);
    assert!(patch.check(Operation::Patch, "p", &data(json!({"a": "xy"}))).allowed);
    assert!(!patch.check(Operation::Patch, "p", &data(json!({"a": "y"}))).allowed);
    assert_eq!(
        Denial::ValueNotAllowed("x".into()).to_string(),
        "the value of parameter \"x\" is not allowed"
    );
}

#[test]
fn wrapping_ttls() {
    // Vault's permissionsPolicy wrapping cases.
    let a = acl(&[r#"
path "foo/bar" {
    policy = "write"
    min_wrapping_ttl = 300
    max_wrapping_ttl = 400
}
path "foo/baz" {
    policy = "write"
    min_wrapping_ttl = "5m"
}
path "working/phone" {
    policy = "write"
    max_wrapping_ttl = 400
}
"#]);
    let check = |path: &str, ttl: Option<i64>| {
        let mut r = Request::new(Operation::Update, path);
        r.wrap_ttl = ttl;
        a.allow(&r)
    };
    assert_eq!(check("foo/bar", None).denial, Some(Denial::NotWrapped));
    assert_eq!(
        check("foo/bar", Some(50)).denial,
        Some(Denial::WrapTtlBelowMin { ttl: 50, min: 300 })
    );
    assert_eq!(
        check("foo/bar", Some(450)).denial,
        Some(Denial::WrapTtlAboveMax { ttl: 450, max: 400 })
    );
    assert!(check("foo/bar", Some(350)).allowed);
    assert!(!check("foo/baz", None).allowed);
    assert!(check("foo/baz", Some(450)).allowed);
    assert!(
        !check("working/phone", None).allowed,
        "a max alone still requires wrapping"
    );
    assert!(!check("working/phone", Some(450)).allowed);
    assert!(check("working/phone", Some(350)).allowed);
    let d = check("foo/bar", Some(350));
    assert_eq!((d.min_wrapping_ttl(), d.max_wrapping_ttl()), (300, 400));

    // merged bounds that cross refuse everything
    let crossed = acl(&[
        r#"path "x" {
  capabilities = ["read"]
  min_wrapping_ttl = 100
}"#,
        r#"path "x" {
  capabilities = ["read"]
  max_wrapping_ttl = 50
}"#,
    ]);
    let d = crossed.allow(&Request::new(Operation::Read, "x").wrap_ttl(75));
    assert_eq!(d.denial, Some(Denial::WrapTtlAboveMax { ttl: 75, max: 50 }));
    let d = crossed.allow(&Request::new(Operation::Read, "x").wrap_ttl(50));
    assert_eq!(d.denial, Some(Denial::WrapTtlBelowMin { ttl: 50, min: 100 }));
}

#[test]
fn help_root_and_nothing() {
    let a = acl(&[r#"path "sys/*" { capabilities = ["deny"] }"#]);
    let d = a.allow(&Request::new(Operation::Help, "sys/seal"));
    assert!(
        d.allowed && !d.sudo && !d.root,
        "help is always allowed, even on a denied path"
    );

    let root = Acl::new([&Policy::root()]).expect("root");
    assert!(root.is_root());
    for op in [Operation::Read, Operation::Delete, Operation::Help, Operation::Scan] {
        let d = root.allow(&Request::new(op, "sys/anything"));
        assert!(d.allowed && d.sudo && d.root, "{op:?}");
    }
    assert_eq!(root.capabilities("any/path"), ["root"]);
    assert_eq!(
        root.allow(&Request::new(Operation::Read, "x")).granting_policies(),
        ["root"]
    );
    assert!(root.has_mount_access("secret/"));
    assert!(Acl::root().is_root());
    assert_eq!(
        Acl::new([&Policy::root(), &Policy::default_policy()]).expect_err("root and more"),
        AclError::RootWithOthers
    );
    assert_eq!(
        AclError::RootWithOthers.to_string(),
        "failed to construct ACL: other policies present along with root"
    );

    let none = Acl::new([]).expect("no policies");
    assert_eq!(
        none.allow(&Request::new(Operation::Read, "x")).denial,
        Some(Denial::NoRule)
    );
    assert_eq!(none.capabilities("x"), ["deny"]);
    assert!(!none.has_mount_access("secret/"));
}

#[test]
fn capabilities_are_sorted_names() {
    // Vault's testACLCapabilities, sorted as sys/capabilities sorts them.
    let a = acl(&[SINGLE]);
    assert_eq!(a.capabilities("dev"), ["deny"]);
    assert_eq!(
        a.capabilities("dev/"),
        ["create", "delete", "list", "read", "sudo", "update"]
    );
    assert_eq!(a.capabilities("stage/aws/test"), ["list", "read", "sudo", "update"]);
    assert_eq!(a.capabilities("prod/aws/x"), ["deny"]);
    assert_eq!(a.capabilities("baz/quux"), ["create", "patch", "read"]);
    assert_eq!(a.capabilities("asdf/fdsa"), ["scan"]);
}

#[test]
fn pagination_limits() {
    let a = acl(&[r#"
path "kv/metadata" {
    capabilities = ["list"]
    pagination_limit = 10
}
path "strict/metadata" {
    capabilities = ["list"]
    pagination_limit = 10
    required_parameters = ["limit"]
}
path "open/metadata" { capabilities = ["list"] }
"#]);
    let list = |path: &str, body: Value| {
        let body = data(body);
        let d = a.allow(&Request::new(Operation::List, path).data(&body));
        (d.allowed, d.set_limit, d.denial)
    };
    assert_eq!(list("kv/metadata", json!({})), (true, Some(10), None));
    assert_eq!(list("kv/metadata", json!({"limit": 5})), (true, None, None));
    assert_eq!(list("kv/metadata", json!({"limit": "10"})), (true, None, None));
    assert_eq!(list("kv/metadata", json!({"limit": "max"})), (true, Some(10), None));
    assert_eq!(
        list("kv/metadata", json!({"limit": 11})),
        (false, None, Some(Denial::LimitAboveMax { max: 10 }))
    );
    assert_eq!(
        list("kv/metadata", json!({"limit": "lots"})),
        (false, None, Some(Denial::InvalidLimit))
    );
    assert_eq!(
        list("strict/metadata", json!({})),
        (false, None, Some(Denial::LimitRequired))
    );
    assert_eq!(list("open/metadata", json!({"limit": "max"})), (true, Some(0), None));
    assert_eq!(list("open/metadata", json!({"limit": 1000})), (true, None, None));
}

#[test]
fn default_policy_and_templates() {
    let default = Policy::default_policy();
    let a = Acl::new([&default]).expect("default");
    use Operation::*;
    for (op, path, ok) in [
        (Read, "auth/token/lookup-self", true),
        (Update, "auth/token/lookup-self", false),
        (Update, "auth/token/renew-self", true),
        (Update, "sys/capabilities-self", true),
        (Create, "cubbyhole/my/secret", true),
        (List, "cubbyhole/", true),
        (Update, "sys/tools/hash/sha2-256", true),
        (Update, "identity/oidc/provider/p1/authorize", true),
        (Read, "identity/oidc/provider/p1/other", false),
        (Read, "sys/mounts", false),
        (Read, "secret/data/x", false),
    ] {
        assert_eq!(allowed(&a, op, path), ok, "{op:?} {path}");
    }
    // no entity: the templated paths are left out, even the literal text
    assert_eq!(a.capabilities("identity/entity/id/{{identity.entity.id}}"), ["deny"]);
    assert_eq!(a.capabilities("identity/entity/id/e-1"), ["deny"]);

    let id = Identity {
        entity_id: "e-1".into(),
        entity_name: "alice".into(),
        groups: vec![Group {
            id: "g-1".into(),
            name: "admins".into(),
            ..Group::default()
        }],
        ..Identity::default()
    };
    let a = Acl::with_identity([&default], Some(&id)).expect("default with identity");
    assert_eq!(a.capabilities("identity/entity/id/e-1"), ["read"]);
    assert_eq!(a.capabilities("identity/entity/name/alice"), ["read"]);
    assert_eq!(a.capabilities("identity/entity/id/e-2"), ["deny"]);

    let team = policy(
        "team",
        r#"path "teams/{{identity.groups.names.admins.id}}/*" { capabilities = ["read"] }
path "plain" { capabilities = ["read"] }"#,
    );
    let a = Acl::with_identity([&team], Some(&id)).expect("team");
    assert!(allowed(&a, Read, "teams/g-1/x"));
    assert!(allowed(&a, Read, "plain"));
    let a = Acl::new([&team]).expect("team without entity");
    assert!(!allowed(&a, Read, "teams/g-1/x"));
    assert!(allowed(&a, Read, "plain"), "untemplated paths stay");

    // a filled template can still make a bad pattern
    let bad = policy(
        "bad",
        r#"path "x/{{identity.entity.name}}*" { capabilities = ["read"] }"#,
    );
    let plus = Identity {
        entity_name: "+".into(),
        ..id.clone()
    };
    let e = Acl::with_identity([&bad], Some(&plus)).expect_err("+*");
    assert_eq!(
        e.to_string(),
        "error parsing templated policy \"bad\": failed to parse policy: path \"x/+*\": invalid use of wildcards ('+*' is forbidden)"
    );
    assert_eq!(Policy::default_policy().text(), DEFAULT_POLICY);
}

#[test]
fn response_wrapping_policy() {
    let a = Acl::new([&Policy::response_wrapping()]).expect("rw");
    assert_eq!(a.capabilities("cubbyhole/response"), ["create", "read"]);
    assert_eq!(a.capabilities("sys/wrapping/unwrap"), ["update"]);
    assert_eq!(a.capabilities("cubbyhole/other"), ["deny"]);
}

#[test]
fn expired_rules_are_left_out() {
    let mut p = policy("p", r#"path "a" { capabilities = ["read"] }"#);
    // a rule that expired after the policy was read
    let rules = p.rules().to_vec();
    let expired: Vec<PathRule> = rules
        .into_iter()
        .map(|mut r| {
            r.expiration = Some(SystemTime::UNIX_EPOCH);
            r
        })
        .collect();
    p = Policy::from_rules_for_tests(&p, expired);
    let a = Acl::new([&p]).expect("acl");
    assert_eq!(a.capabilities("a"), ["deny"]);
}

#[test]
fn mount_access() {
    // Vault's TestACL_SegmentWildcardPriority_BareMount cases.
    for (text, mount, has) in [
        (r#"path "+" { capabilities = ["read"] }"#, "foo/", true),
        (r#"path "+/*" { capabilities = ["read"] }"#, "foo/", true),
        (r#"path "foo/+/+/*" { capabilities = ["read"] }"#, "foo/", true),
        (r#"path "foo/+/+/*" { capabilities = ["read"] }"#, "foo/bar/", true),
        (r#"path "foo/+/+/*" { capabilities = ["read"] }"#, "foo/bar/bar/", true),
        (
            r#"path "foo/+/+/*" { capabilities = ["read"] }"#,
            "foo/bar/bar/baz/",
            true,
        ),
        (
            r#"path "foo/+/+/baz" { capabilities = ["read"] }"#,
            "foo/bar/bar/baz/",
            true,
        ),
        (
            r#"path "foo/+/bar/baz" { capabilities = ["read"] }"#,
            "foo/bar/bar/baz/",
            true,
        ),
        (
            r#"path "foo/bar/+/baz*" { capabilities = ["read"] }"#,
            "foo/bar/bar/baz/",
            true,
        ),
        (
            r#"path "foo/bar/+/b*" { capabilities = ["read"] }"#,
            "foo/bar/bar/baz/",
            true,
        ),
        (r#"path "foo/+" { capabilities = ["read"] }"#, "foo/", true),
        (r#"path "foo/+" { capabilities = ["deny"] }"#, "foo/", false),
        (r#"path "bar/+" { capabilities = ["read"] }"#, "foo/", false),
        (r#"path "secret/data/app" { capabilities = ["read"] }"#, "secret/", true),
        (r#"path "secret/data/*" { capabilities = ["list"] }"#, "secret/", true),
        (r#"path "secret/data/*" { capabilities = ["scan"] }"#, "secret/", false),
        (r#"path "secret/data/*" { capabilities = ["deny"] }"#, "secret/", false),
        (r#"path "secret/*" { capabilities = ["read"] }"#, "secret/", true),
        (r#"path "secrets/*" { capabilities = ["read"] }"#, "secret/", false),
    ] {
        assert_eq!(acl(&[text]).has_mount_access(mount), has, "{text} {mount}");
    }
}

/// Property tests: the rule the ACL picks is the one Vault's algorithm
/// picks, written out here the way vault/acl.go writes it (a linear
/// longest-prefix search, every segment pattern tried, the candidates
/// sorted by Vault's `less` and the last one taken); and no text makes
/// the parser panic.
mod props {
    use super::*;
    use proptest::prelude::*;
    use std::cmp::Ordering;

    fn vault_pick(patterns: &[Pattern], path: &str, op: Operation) -> Option<Pattern> {
        let path = path.trim_start_matches('/');
        let exact = |p: &str| {
            patterns
                .iter()
                .find(|x| x.kind == PatternKind::Exact && x.key == p)
                .cloned()
        };
        if let Some(p) = exact(path) {
            return Some(p);
        }
        if matches!(op, Operation::List | Operation::Scan)
            && let Some(p) = exact(path.strip_suffix('/').unwrap_or(path))
        {
            return Some(p);
        }
        if op == Operation::List
            && let Some(t) = path.strip_suffix('/')
            && let Some(p) = vault_non_exact(patterns, t)
        {
            return Some(p);
        }
        vault_non_exact(patterns, path)
    }

    struct Descr {
        first: usize,
        wildcards: usize,
        is_prefix: bool,
        path: String,
        pattern: Pattern,
    }

    /// Go's `less(i, j)`: i has lower priority than j.
    fn less(i: &Descr, j: &Descr) -> bool {
        if i.first != j.first {
            return i.first < j.first;
        }
        if i.is_prefix != j.is_prefix {
            return i.is_prefix;
        }
        if i.wildcards != j.wildcards {
            return i.wildcards > j.wildcards;
        }
        if i.path.len() != j.path.len() {
            return i.path.len() < j.path.len();
        }
        i.path < j.path
    }

    fn vault_non_exact(patterns: &[Pattern], path: &str) -> Option<Pattern> {
        let prefix = patterns
            .iter()
            .filter(|p| p.kind == PatternKind::Prefix && path.starts_with(&p.key))
            .max_by_key(|p| p.key.len())
            .cloned();
        let segment_patterns: Vec<&Pattern> = patterns
            .iter()
            .filter(|p| p.kind == PatternKind::SegmentWildcard)
            .collect();
        if segment_patterns.is_empty() {
            return prefix;
        }
        let mut descrs = Vec::new();
        if let Some(p) = prefix {
            descrs.push(Descr {
                first: p.key.len(),
                wildcards: 0,
                is_prefix: true,
                path: p.key.clone(),
                pattern: p,
            });
        }
        let parts: Vec<&str> = path.split('/').collect();
        'patterns: for p in segment_patterns {
            let first = p.key.find('+').unwrap_or(0);
            let (curr, is_prefix) = match p.key.strip_suffix('*') {
                Some(c) => (c, true),
                None => (p.key.as_str(), false),
            };
            let split: Vec<&str> = curr.split('/').collect();
            if parts.len() < split.len() || (!is_prefix && split.len() != parts.len()) {
                continue;
            }
            let mut wildcards = 0;
            for (i, part) in split.iter().enumerate() {
                if *part == "+" {
                    wildcards += 1;
                } else if *part == parts[i] || (is_prefix && i == split.len() - 1 && parts[i].starts_with(part)) {
                } else {
                    continue 'patterns;
                }
            }
            descrs.push(Descr {
                first,
                wildcards,
                is_prefix,
                path: curr.to_string(),
                pattern: p.clone(),
            });
        }
        descrs.sort_by(|a, b| {
            if less(a, b) {
                Ordering::Less
            } else if less(b, a) {
                Ordering::Greater
            } else {
                Ordering::Equal
            }
        });
        descrs.pop().map(|d| d.pattern)
    }

    fn pattern_text() -> impl Strategy<Value = String> {
        (
            prop::collection::vec(prop::sample::select(vec!["a", "b", "ab", "+", ""]), 1..5),
            prop::sample::select(vec!["", "*", "b*"]),
            any::<bool>(),
        )
            .prop_map(|(segments, tail, slash)| {
                let mut s = segments.join("/");
                if !tail.is_empty() {
                    if !s.is_empty() {
                        s.push('/');
                    }
                    s.push_str(tail);
                }
                if slash { format!("/{s}") } else { s }
            })
    }

    fn path_text() -> impl Strategy<Value = String> {
        (
            prop::collection::vec(prop::sample::select(vec!["a", "b", "ab", "abc", "ba", ""]), 1..6),
            any::<bool>(),
        )
            .prop_map(|(segments, slash)| {
                let s = segments.join("/");
                if slash { format!("{s}/") } else { s }
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn picks_the_rule_vault_picks(
            raw in prop::collection::vec(pattern_text(), 1..12),
            paths in prop::collection::vec(path_text(), 1..8),
        ) {
            let text: String = raw
                .iter()
                .map(|p| format!("path {} {{ capabilities = [\"read\"] }}\n", serde_json::to_string(p).unwrap_or_default()))
                .collect();
            let policy = match Policy::parse("p", &text) {
                Ok(p) => p,
                Err(e) => {
                    // only '+*' is refused among these patterns
                    prop_assert!(raw.iter().any(|p| p.contains("+*")), "{}: {}", text, e);
                    return Ok(());
                }
            };
            let patterns: Vec<Pattern> = policy.rules().iter().map(|r| r.pattern.clone()).collect();
            let a = Acl::new([&policy]).expect("acl");
            for path in &paths {
                for op in [Operation::Read, Operation::List, Operation::Scan] {
                    let ours = a.find_rule(path, op).map(|r| r.pattern().clone());
                    let theirs = vault_pick(&patterns, path, op);
                    prop_assert_eq!(ours, theirs, "{:?} {} in\n{}", op, path, text);
                }
            }
        }

        #[test]
        fn parse_never_panics(s in prop_oneof![
            3 => prop::collection::vec(prop::sample::select(vec![
                "path", " ", "\"a/*\"", "\"+\"", "{", "}", "[", "]", "=", ":", ",", "\n", "capabilities",
                "\"read\"", "\"deny\"", "policy", "allowed_parameters", "min_wrapping_ttl", "\"1h\"", "1",
                "{{", "}}", "name", "null", "true", "expiration", "\"2006-01-02T15:04:05Z\"",
            ]), 0..40).prop_map(|t| t.concat()),
            1 => any::<String>(),
        ]) {
            if let Ok(policy) = Policy::parse("p", &s) {
                let a = Acl::new([&policy]).expect("a parsed policy always compiles");
                let _ = a.capabilities("a/b");
            }
        }
    }
}
