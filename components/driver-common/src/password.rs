//! Vault's password generation: a length and charset rules ("at least N of
//! these characters"). A candidate is drawn uniformly from the union of the
//! rules' charsets, and drawn again until every rule holds. Without a policy
//! Vault's default applies: 20 characters from [A-Za-z0-9-], at least one
//! lowercase, one uppercase, one digit and one '-'.

use serde_json::Value;

use crate::Env;
use crate::random::random_chars;

/// Longest password Warden generates; far beyond any real need.
pub const MAX_LENGTH: usize = 4096;
/// Vault gives up after a second; Warden after this many candidates.
const MAX_TRIES: usize = 10_000;

/// A password policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    length: usize,
    rules: Vec<Rule>,
    /// The union of the rules' charsets, sorted, computed once.
    alphabet: Vec<char>,
}

#[derive(Debug, Clone, PartialEq)]
struct Rule {
    charset: Vec<char>,
    min_chars: usize,
}

impl Policy {
    /// Vault's default rules with the given length.
    pub fn vault_default(length: usize) -> Result<Policy, String> {
        let rule = |charset: &str| Rule {
            charset: charset.chars().collect(),
            min_chars: 1,
        };
        Policy {
            length,
            alphabet: Vec::new(),
            rules: vec![
                rule("abcdefghijklmnopqrstuvwxyz"),
                rule("ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
                rule("0123456789"),
                rule("-"),
            ],
        }
        .validated()
    }

    /// Reads a policy from JSON: `{"length": N, "rules": [{"charset": "...",
    /// "min_chars": N}]}`, or the JSON form of a Vault HCL policy,
    /// `{"length": N, "rule": [{"charset": {"charset": "...", "min-chars": N}}]}`.
    /// `default_length` applies when the policy names no length.
    pub fn parse(json: &str, default_length: usize) -> Result<Policy, String> {
        let root: Value =
            serde_json::from_str(json).map_err(|e| format!("the password policy is not valid JSON: {e}"))?;
        let length = match root.get("length") {
            None | Some(Value::Null) => default_length,
            Some(v) => v
                .as_u64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                .and_then(|n| usize::try_from(n).ok())
                .ok_or("length must be a whole number")?,
        };
        let mut rules = Vec::new();
        if let Some(list) = root.get("rules") {
            for item in list.as_array().ok_or("rules must be a list")? {
                rules.push(charset_rule(item)?);
            }
        }
        if let Some(blocks) = root.get("rule") {
            let blocks = blocks.as_array().cloned().unwrap_or_else(|| vec![blocks.clone()]);
            for block in &blocks {
                for (kind, body) in block.as_object().ok_or("each rule must be an object")? {
                    if kind != "charset" {
                        return Err(format!("unknown rule type {kind:?}"));
                    }
                    match body {
                        Value::Array(items) => {
                            for item in items {
                                rules.push(charset_rule(item)?);
                            }
                        }
                        item => rules.push(charset_rule(item)?),
                    }
                }
            }
        }
        Policy {
            length,
            rules,
            alphabet: Vec::new(),
        }
        .validated()
    }

    /// The length of the passwords this policy generates.
    pub fn length(&self) -> usize {
        self.length
    }

    /// Vault's checks on a policy, so a bad one fails before generating.
    fn validated(mut self) -> Result<Policy, String> {
        let min: usize = self.rules.iter().map(|r| r.min_chars).sum();
        if self.length == 0 {
            return Err("length must be > 0".into());
        }
        if self.length > MAX_LENGTH {
            return Err(format!("length must be at most {MAX_LENGTH}"));
        }
        if self.length < min {
            return Err(format!(
                "specified rules require at least {min} characters but {} is specified",
                self.length
            ));
        }
        let charset = self.charset();
        if charset.is_empty() {
            return Err("no charset specified".into());
        }
        if charset.len() > 256 {
            return Err("charset is too long: limited to 256 characters".into());
        }
        if charset
            .iter()
            .any(|c| c.is_control() || (c.is_whitespace() && *c != ' '))
        {
            return Err("non-printable character in charset".into());
        }
        self.alphabet = charset;
        Ok(self)
    }

    /// The union of the rules' charsets, sorted and without repeats.
    fn charset(&self) -> Vec<char> {
        let mut chars: Vec<char> = self.rules.iter().flat_map(|r| r.charset.iter().copied()).collect();
        chars.sort_unstable();
        chars.dedup();
        chars
    }

    /// Draws candidates until one satisfies every rule.
    pub fn generate(&self, env: &mut dyn Env) -> Result<String, String> {
        let charset = &self.alphabet;
        for _ in 0..MAX_TRIES {
            let candidate = random_chars(env, charset, self.length)?;
            let passes = |rule: &Rule| candidate.chars().filter(|c| rule.charset.contains(c)).count() >= rule.min_chars;
            if self.rules.iter().all(passes) {
                return Ok(candidate);
            }
        }
        Err(format!(
            "unable to generate a password that satisfies the policy in {MAX_TRIES} attempts"
        ))
    }
}

fn charset_rule(item: &Value) -> Result<Rule, String> {
    let charset = item
        .get("charset")
        .and_then(Value::as_str)
        .ok_or("each charset rule needs a \"charset\" string")?;
    let min = item.get("min_chars").or_else(|| item.get("min-chars"));
    let min_chars = match min {
        None | Some(Value::Null) => 0,
        Some(v) => v
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .ok_or("min_chars must be a whole number")?,
    };
    Ok(Rule {
        charset: charset.chars().collect(),
        min_chars,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_env::FixedEnv;

    #[test]
    fn vault_default_passwords() {
        let policy = Policy::vault_default(20).expect("policy");
        let mut env = FixedEnv::new();
        for _ in 0..20 {
            let pw = policy.generate(&mut env).expect("generate");
            assert_eq!(pw.len(), 20);
            assert!(pw.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
            assert!(pw.chars().any(|c| c.is_ascii_lowercase()));
            assert!(pw.chars().any(|c| c.is_ascii_uppercase()));
            assert!(pw.chars().any(|c| c.is_ascii_digit()));
            assert!(pw.contains('-'));
        }
        assert_eq!(policy.charset().len(), 63);
        assert!(Policy::vault_default(3).is_err(), "four rules need four characters");
    }

    #[test]
    fn parses_both_json_forms() {
        let simple = Policy::parse(
            r#"{"length":8,"rules":[{"charset":"ab","min_chars":2},{"charset":"XY"}]}"#,
            20,
        )
        .expect("policy");
        let hcl = Policy::parse(
            r#"{"length":"8","rule":[{"charset":{"charset":"ab","min-chars":2}},{"charset":[{"charset":"XY"}]}]}"#,
            20,
        )
        .expect("policy");
        assert_eq!(simple, hcl);
        let pw = simple.generate(&mut FixedEnv::new()).expect("generate");
        assert_eq!(pw.len(), 8);
        assert!(pw.chars().filter(|c| "ab".contains(*c)).count() >= 2);
        let defaulted = Policy::parse(r#"{"rules":[{"charset":"z"}]}"#, 12).expect("policy");
        assert_eq!(defaulted.generate(&mut FixedEnv::new()).as_deref(), Ok("zzzzzzzzzzzz"));
    }

    #[test]
    fn rejects_bad_policies() {
        let err = |json: &str| Policy::parse(json, 20).expect_err(json);
        assert!(err("nope").contains("not valid JSON"));
        assert_eq!(err(r#"{"length":20}"#), "no charset specified");
        assert_eq!(err(r#"{"length":0,"rules":[{"charset":"a"}]}"#), "length must be > 0");
        assert!(err(r#"{"length":1,"rules":[{"charset":"a","min_chars":2}]}"#).contains("require at least 2"));
        assert!(err(r#"{"rules":[{"charset":"a\tb"}]}"#).contains("non-printable"));
        assert!(err(r#"{"rule":[{"length":{"min":1}}]}"#).contains("unknown rule type"));
        assert!(err(r#"{"rules":[{"min_chars":1}]}"#).contains("needs a \"charset\""));
        assert!(err(r#"{"length":100000,"rules":[{"charset":"a"}]}"#).contains("at most"));
    }

    #[test]
    fn gives_up_when_the_rules_never_hold() {
        struct Zeros;
        impl Env for Zeros {
            fn random_bytes(&mut self, len: usize) -> Vec<u8> {
                vec![0; len]
            }
            fn now(&self) -> (i64, u32) {
                (0, 0)
            }
            fn sha256(&self, _: &[u8]) -> Vec<u8> {
                Vec::new()
            }
        }
        let policy = Policy::parse(
            r#"{"length":2,"rules":[{"charset":"a"},{"charset":"b","min_chars":1}]}"#,
            20,
        )
        .expect("policy");
        assert!(policy.generate(&mut Zeros).expect_err("never").contains("attempts"));
    }
}
