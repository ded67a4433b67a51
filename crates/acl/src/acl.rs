//! The compiled ACL of a token (vault/acl.go): its policies' rules merged
//! once (`NewACL`), then asked about each request (`AllowOperation`), about
//! a path's capabilities (`Capabilities`, for sys/capabilities) and about a
//! mount's visibility (`hasMountAccess`).
//!
//! Lookup, as Vault does it:
//! 1. the exact rule for the path (leading `/`s dropped);
//! 2. for LIST and SCAN, the exact rule for the path without one trailing `/`;
//! 3. for LIST of a path ending in `/`, the best non-exact rule for the
//!    path without it;
//! 4. the best non-exact rule: the longest prefix rule competes with every
//!    matching segment-wildcard rule under [`crate::pattern::Rank`].
//!
//! Exact rules sit in a hash map, prefix rules in a byte trie, and
//! segment-wildcard rules in a list split into segments beforehand, so a
//! check costs one hash, one trie walk and a scan of the `+` rules,
//! without allocating.

use crate::capability::{Capabilities, Operation};
use crate::params::value_in_list;
use crate::pattern::{Pattern, PatternKind, PrefixTrie, Rank, SegmentPattern};
use crate::policy::{self, Parameters, PathRule, Policy, go_lower, go_quote};
use crate::template::{self, Identity};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::fmt;
use std::time::SystemTime;

/// Why an ACL could not be built.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AclError {
    /// `root` with other policies (Vault: `other policies present along with root`).
    RootWithOthers,
    /// A templated path that, once filled, is not a valid pattern.
    Template { policy: String, source: policy::Error },
}

impl fmt::Display for AclError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AclError::RootWithOthers => f.write_str("failed to construct ACL: other policies present along with root"),
            AclError::Template { policy, source } => {
                write!(f, "error parsing templated policy {}: {source}", go_quote(policy))
            }
        }
    }
}

impl std::error::Error for AclError {}

/// The merged rule of one pattern across the ACL's policies.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    pattern: Pattern,
    capabilities: Capabilities,
    min_wrapping_ttl: i64,
    max_wrapping_ttl: i64,
    allowed: Parameters,
    denied: Parameters,
    required: Vec<String>,
    mfa_methods: Vec<String>,
    pagination_limit: i64,
    /// (policy index, capabilities it brought), in merge order: Vault's
    /// `GrantingPoliciesMap`.
    grants: Vec<(u32, Capabilities)>,
}

impl Rule {
    fn new(pattern: Pattern, rule: &PathRule, policy: u32) -> Rule {
        Rule {
            pattern,
            capabilities: rule.capabilities,
            min_wrapping_ttl: rule.min_wrapping_ttl,
            max_wrapping_ttl: rule.max_wrapping_ttl,
            allowed: rule.allowed_parameters.clone(),
            denied: rule.denied_parameters.clone(),
            required: rule.required_parameters.clone(),
            mfa_methods: rule.mfa_methods.clone(),
            pagination_limit: rule.pagination_limit,
            grants: vec![(policy, rule.capabilities)],
        }
    }

    /// Adds another policy's rule for the same pattern, as `NewACL` does.
    fn merge(&mut self, rule: &PathRule, policy: u32) {
        if self.capabilities.contains(Capabilities::DENY) {
            // An explicit deny already holds: nothing else counts.
            return;
        }
        if rule.capabilities.contains(Capabilities::DENY) {
            // A deny wins over everything merged so far.
            self.capabilities = Capabilities::DENY;
            self.allowed.clear();
            self.denied.clear();
            return;
        }
        self.capabilities = self.capabilities.union(rule.capabilities);
        self.grants.push((policy, rule.capabilities));
        // Wrapping TTLs: the lesser of two set values, for both bounds (the
        // shortest lifetime wins).
        for (mine, theirs) in [
            (&mut self.max_wrapping_ttl, rule.max_wrapping_ttl),
            (&mut self.min_wrapping_ttl, rule.min_wrapping_ttl),
        ] {
            if theirs > 0 && (*mine == 0 || theirs < *mine) {
                *mine = theirs;
            }
        }
        merge_parameters(&mut self.allowed, &rule.allowed_parameters);
        merge_parameters(&mut self.denied, &rule.denied_parameters);
        if self.required.is_empty() {
            self.required = rule.required_parameters.clone();
        } else {
            for name in &rule.required_parameters {
                if !self.required.contains(name) {
                    self.required.push(name.clone());
                }
            }
        }
        if !rule.mfa_methods.is_empty() {
            // strutil.RemoveDuplicates: trimmed, no empties, sorted.
            let mut all: Vec<String> = self
                .mfa_methods
                .iter()
                .chain(&rule.mfa_methods)
                .map(|m| m.trim().to_string())
                .filter(|m| !m.is_empty())
                .collect();
            all.sort();
            all.dedup();
            self.mfa_methods = all;
        }
        if rule.pagination_limit > 0 && (self.pagination_limit <= 0 || rule.pagination_limit < self.pagination_limit) {
            self.pagination_limit = rule.pagination_limit;
        }
    }

    /// The pattern the rule is keyed by.
    pub fn pattern(&self) -> &Pattern {
        &self.pattern
    }

    pub fn capabilities(&self) -> Capabilities {
        self.capabilities
    }

    /// Seconds; 0 when unset.
    pub fn min_wrapping_ttl(&self) -> i64 {
        self.min_wrapping_ttl
    }

    /// Seconds; 0 when unset.
    pub fn max_wrapping_ttl(&self) -> i64 {
        self.max_wrapping_ttl
    }

    pub fn allowed_parameters(&self) -> &Parameters {
        &self.allowed
    }

    pub fn denied_parameters(&self) -> &Parameters {
        &self.denied
    }

    pub fn required_parameters(&self) -> &[String] {
        &self.required
    }

    pub fn mfa_methods(&self) -> &[String] {
        &self.mfa_methods
    }

    /// OpenBao's LIST page size limit; 0 when unset.
    pub fn pagination_limit(&self) -> i64 {
        self.pagination_limit
    }
}

/// Two rules' parameter maps merged as `NewACL` merges them: an empty list
/// (any value) on either side wins; otherwise the new values go first,
/// then the ones already there.
fn merge_parameters(mine: &mut Parameters, theirs: &Parameters) {
    for (name, values) in theirs {
        let merged = match mine.get(name) {
            _ if values.is_empty() => Vec::new(),
            Some(existing) if existing.is_empty() => Vec::new(),
            Some(existing) => values.iter().chain(existing).cloned().collect(),
            None => values.clone(),
        };
        mine.insert(name.clone(), merged);
    }
}

/// One request to check.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    pub operation: Operation,
    /// The request path after `/v1/` (mount and all).
    pub path: &'a str,
    /// The request's parameters (body, or query for reads and lists).
    pub data: Option<&'a Map<String, Value>>,
    /// The TTL the client asked to wrap the response in
    /// (`X-Vault-Wrap-TTL`), in seconds; `None` when not wrapping.
    pub wrap_ttl: Option<i64>,
}

impl<'a> Request<'a> {
    pub fn new(operation: Operation, path: &'a str) -> Request<'a> {
        Request {
            operation,
            path,
            data: None,
            wrap_ttl: None,
        }
    }

    pub fn data(self, data: &'a Map<String, Value>) -> Request<'a> {
        Request {
            data: Some(data),
            ..self
        }
    }

    pub fn wrap_ttl(self, seconds: i64) -> Request<'a> {
        Request {
            wrap_ttl: Some(seconds),
            ..self
        }
    }
}

/// Why a request was refused. Vault answers every one of these with 403
/// "permission denied"; the reason is for the server's log only.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Denial {
    /// No rule matches the path.
    NoRule,
    /// The matching rule is an explicit `deny`.
    Denied,
    /// The matching rule lacks the operation's capability.
    MissingCapability(Capabilities),
    /// The rule bounds the wrapping TTL and the request is not wrapped.
    NotWrapped,
    WrapTtlAboveMax {
        ttl: i64,
        max: i64,
    },
    WrapTtlBelowMin {
        ttl: i64,
        min: i64,
    },
    /// Merged policies left the maximum wrapping TTL below the minimum.
    WrapTtlBoundsConflict {
        min: i64,
        max: i64,
    },
    MissingRequiredParameter(String),
    /// `denied_parameters` holds `"*"` and the request has parameters.
    AllParametersDenied,
    DeniedParameter(String),
    /// A parameter that `allowed_parameters` does not name.
    ParameterNotAllowed(String),
    /// A named parameter whose value is not in its allowed list.
    ValueNotAllowed(String),
    /// LIST without `limit` where `pagination_limit` is set and `limit`
    /// is a required parameter.
    LimitRequired,
    LimitAboveMax {
        max: i64,
    },
    /// A `limit` that is neither an integer nor `max`.
    InvalidLimit,
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Denial::NoRule => f.write_str("no policy rule matches the path"),
            Denial::Denied => f.write_str("the matching rule denies the path"),
            Denial::MissingCapability(c) => write!(f, "the matching rule does not grant {:?}", c.names()),
            Denial::NotWrapped => f.write_str("the matching rule requires a wrapped response"),
            Denial::WrapTtlAboveMax { ttl, max } => write!(f, "wrapping TTL {ttl}s is above max_wrapping_ttl {max}s"),
            Denial::WrapTtlBelowMin { ttl, min } => write!(f, "wrapping TTL {ttl}s is below min_wrapping_ttl {min}s"),
            Denial::WrapTtlBoundsConflict { min, max } => {
                write!(f, "merged max_wrapping_ttl {max}s is below min_wrapping_ttl {min}s")
            }
            Denial::MissingRequiredParameter(p) => write!(f, "required parameter {} is missing", go_quote(p)),
            Denial::AllParametersDenied => f.write_str("all parameters are denied"),
            Denial::DeniedParameter(p) => write!(f, "parameter {} is denied", go_quote(p)),
            Denial::ParameterNotAllowed(p) => write!(f, "parameter {} is not allowed", go_quote(p)),
            Denial::ValueNotAllowed(p) => write!(f, "the value of parameter {} is not allowed", go_quote(p)),
            Denial::LimitRequired => f.write_str("limit is required on this paginated path"),
            Denial::LimitAboveMax { max } => write!(f, "limit is above the pagination_limit {max}"),
            Denial::InvalidLimit => f.write_str("limit is neither an integer nor \"max\""),
        }
    }
}

/// The answer to one request.
#[derive(Clone, Debug)]
pub struct Decision<'a> {
    /// The request may go ahead.
    pub allowed: bool,
    /// The token has the `root` policy (everything allowed, sudo included).
    pub root: bool,
    /// The matched rule grants `sudo` (or root): what sudo-protected
    /// paths need on top of `allowed`. False for help, as in Vault.
    pub sudo: bool,
    /// Why not, when not allowed.
    pub denial: Option<Denial>,
    /// OpenBao pagination: the `limit` parameter the request must be given
    /// before it goes on (Vault rewrites `req.Data["limit"]`): the rule's
    /// `pagination_limit` for a missing or `"max"` limit, 0 for `"max"`
    /// where no limit applies.
    pub set_limit: Option<i64>,
    rule: Option<&'a Rule>,
    operation: Operation,
    acl: &'a Acl,
}

impl<'a> Decision<'a> {
    fn new(acl: &'a Acl, operation: Operation, rule: Option<&'a Rule>) -> Decision<'a> {
        Decision {
            allowed: false,
            root: false,
            sudo: rule.is_some_and(|r| r.capabilities.contains(Capabilities::SUDO)),
            denial: None,
            set_limit: None,
            rule,
            operation,
            acl,
        }
    }

    fn deny(mut self, why: Denial) -> Decision<'a> {
        self.allowed = false;
        self.denial = Some(why);
        self
    }

    fn allow(mut self) -> Decision<'a> {
        self.allowed = true;
        self
    }

    /// The merged rule the request was checked against.
    pub fn rule(&self) -> Option<&'a Rule> {
        self.rule
    }

    /// The matched rule's capabilities (empty when none matched).
    pub fn capabilities(&self) -> Capabilities {
        self.rule.map_or(Capabilities::NONE, |r| r.capabilities)
    }

    /// The matched rule's `min_wrapping_ttl` in seconds, 0 when unset.
    pub fn min_wrapping_ttl(&self) -> i64 {
        self.rule.map_or(0, |r| r.min_wrapping_ttl)
    }

    /// The matched rule's `max_wrapping_ttl` in seconds, 0 when unset.
    pub fn max_wrapping_ttl(&self) -> i64 {
        self.rule.map_or(0, |r| r.max_wrapping_ttl)
    }

    /// The policies that granted the operation's capability, for the audit
    /// log (Vault's `policy_results.granting_policies`); `root` for root.
    pub fn granting_policies(&self) -> Vec<&'a str> {
        if self.root {
            return vec!["root"];
        }
        let (Some(rule), true) = (self.rule, self.allowed) else {
            return Vec::new();
        };
        let wanted = self.operation.capability();
        rule.grants
            .iter()
            .filter(|(_, caps)| caps.contains(wanted))
            .filter_map(|(p, _)| self.acl.policies.get(*p as usize).map(String::as_str))
            .collect()
    }
}

/// A token's policies, compiled.
#[derive(Clone, Debug, Default)]
pub struct Acl {
    root: bool,
    policies: Vec<String>,
    rules: Vec<Rule>,
    exact: HashMap<Box<str>, u32>,
    prefix: PrefixTrie,
    segments: Vec<(SegmentPattern, u32)>,
}

impl Acl {
    /// The ACL of `policies` for a token without an entity: templated
    /// paths are left out, as Vault leaves them out.
    pub fn new<'p>(policies: impl IntoIterator<Item = &'p Policy>) -> Result<Acl, AclError> {
        Acl::with_identity(policies, None)
    }

    /// The ACL of a root token.
    pub fn root() -> Acl {
        Acl {
            root: true,
            policies: vec!["root".into()],
            ..Acl::default()
        }
    }

    /// The ACL of `policies` with templated paths filled from `identity`
    /// (a path whose template cannot be filled is left out).
    pub fn with_identity<'p>(
        policies: impl IntoIterator<Item = &'p Policy>,
        identity: Option<&Identity>,
    ) -> Result<Acl, AclError> {
        let policies: Vec<&Policy> = policies.into_iter().collect();
        let mut acl = Acl::default();
        let mut index: HashMap<(PatternKind, String), u32> = HashMap::new();
        let now = SystemTime::now();
        for (p, policy) in policies.iter().enumerate() {
            if policy.is_root() {
                if policies.len() != 1 {
                    return Err(AclError::RootWithOthers);
                }
                acl.root = true;
            }
            acl.policies.push(policy.name().to_string());
            // Policy counts are tiny next to u32.
            let p = p as u32;
            for rule in policy.rules() {
                if rule.expiration.is_some_and(|at| now > at) {
                    continue;
                }
                let pattern = if rule.templated {
                    let Some(filled) = template::render(&rule.raw_path, identity) else {
                        continue;
                    };
                    Pattern::parse(&filled).map_err(|e| AclError::Template {
                        policy: policy.name().to_string(),
                        source: policy::Error::ForbiddenWildcard { path: e.path },
                    })?
                } else {
                    rule.pattern.clone()
                };
                let key = (pattern.kind, pattern.key.clone());
                match index.get(&key) {
                    Some(&i) => acl.rules[i as usize].merge(rule, p),
                    None => {
                        index.insert(key, acl.rules.len() as u32);
                        acl.rules.push(Rule::new(pattern, rule, p));
                    }
                }
            }
        }
        for (i, rule) in acl.rules.iter().enumerate() {
            let i = i as u32;
            match rule.pattern.kind {
                PatternKind::Exact => {
                    acl.exact.insert(rule.pattern.key.as_str().into(), i);
                }
                PatternKind::Prefix => acl.prefix.insert(&rule.pattern.key, i),
                PatternKind::SegmentWildcard => acl.segments.push((SegmentPattern::new(&rule.pattern.key), i)),
            }
        }
        Ok(acl)
    }

    /// The token has the `root` policy.
    pub fn is_root(&self) -> bool {
        self.root
    }

    /// The merged rules, in the order their patterns first appeared (for
    /// sys/internal/ui/resultant-acl and debugging).
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The names of the policies the ACL was built from, in order.
    pub fn policies(&self) -> &[String] {
        &self.policies
    }

    fn rule(&self, i: u32) -> Option<&Rule> {
        self.rules.get(i as usize)
    }

    /// The rule that decides `path` for `operation` (steps 1-4 above).
    pub fn find_rule(&self, path: &str, operation: Operation) -> Option<&Rule> {
        let path = path.trim_start_matches('/');
        if let Some(&i) = self.exact.get(path) {
            return self.rule(i);
        }
        let listing = matches!(operation, Operation::List | Operation::Scan);
        let trimmed = path.strip_suffix('/');
        if listing && let Some(&i) = trimmed.and_then(|t| self.exact.get(t)) {
            return self.rule(i);
        }
        if operation == Operation::List
            && let Some(t) = trimmed
            && let Some(rule) = self.non_exact(t)
        {
            return Some(rule);
        }
        self.non_exact(path)
    }

    /// `CheckAllowedFromNonExactPaths(path, false)`.
    fn non_exact(&self, path: &str) -> Option<&Rule> {
        let mut best: Option<(Rank<'_>, u32)> = None;
        if let Some((_, i)) = self.prefix.longest_prefix(path) {
            if self.segments.is_empty() {
                return self.rule(i);
            }
            let rule = self.rule(i)?;
            best = Some((Rank::prefix(&rule.pattern.key), i));
        }
        if self.segments.is_empty() {
            return None;
        }
        // Split once, on the stack for all but very deep paths.
        let mut stack = [""; 24];
        let mut heap = Vec::new();
        let parts: &[&str] = if path.bytes().filter(|&b| b == b'/').count() < stack.len() {
            let mut n = 0;
            for (slot, part) in stack.iter_mut().zip(path.split('/')) {
                *slot = part;
                n += 1;
            }
            &stack[..n]
        } else {
            heap.extend(path.split('/'));
            &heap
        };
        for (pattern, i) in &self.segments {
            if pattern.matches(parts) {
                let rank = pattern.rank();
                if best.is_none_or(|(b, _)| rank > b) {
                    best = Some((rank, *i));
                }
            }
        }
        best.and_then(|(_, i)| self.rule(i))
    }

    /// Whether a request without parameters or wrapping may go ahead: a
    /// shorthand for [`Acl::allow`].
    pub fn check(&self, operation: Operation, path: &str, data: &Map<String, Value>) -> Decision<'_> {
        self.allow(&Request::new(operation, path).data(data))
    }

    /// Vault's `AllowOperation`: whether the request may go ahead, and why not.
    pub fn allow(&self, request: &Request<'_>) -> Decision<'_> {
        let op = request.operation;
        if self.root {
            let mut d = Decision::new(self, op, None).allow();
            d.root = true;
            d.sudo = true;
            return d;
        }
        if op == Operation::Help {
            return Decision::new(self, op, None).allow();
        }
        let Some(rule) = self.find_rule(request.path, op) else {
            return Decision::new(self, op, None).deny(Denial::NoRule);
        };
        let d = Decision::new(self, op, Some(rule));
        let caps = rule.capabilities;
        if caps.contains(Capabilities::DENY) {
            return d.deny(Denial::Denied);
        }
        if !caps.contains(op.capability()) {
            return d.deny(Denial::MissingCapability(op.capability()));
        }
        let (min, max) = (rule.min_wrapping_ttl, rule.max_wrapping_ttl);
        if max > 0 {
            match request.wrap_ttl {
                None => return d.deny(Denial::NotWrapped),
                Some(ttl) if ttl > max => return d.deny(Denial::WrapTtlAboveMax { ttl, max }),
                Some(_) => {}
            }
        }
        if min > 0 {
            match request.wrap_ttl {
                None => return d.deny(Denial::NotWrapped),
                Some(ttl) if ttl < min => return d.deny(Denial::WrapTtlBelowMin { ttl, min }),
                Some(_) => {}
            }
        }
        if min != 0 && max != 0 && max < min {
            return d.deny(Denial::WrapTtlBoundsConflict { min, max });
        }
        let empty = Map::new();
        let data = request.data.unwrap_or(&empty);
        match op {
            Operation::Read | Operation::Create | Operation::Update | Operation::Patch => {
                match check_parameters(rule, data) {
                    Some(why) => d.deny(why),
                    None => d.allow(),
                }
            }
            Operation::List | Operation::Scan => check_pagination(rule, data, d),
            Operation::Delete | Operation::Help => d.allow(),
        }
    }

    /// Vault's `Capabilities` as sys/capabilities shows it: sorted names,
    /// `["root"]` for root, `["deny"]` when denied or nothing matches.
    pub fn capabilities(&self, path: &str) -> Vec<String> {
        if self.root {
            return vec!["root".into()];
        }
        let caps = self
            .find_rule(path, Operation::List)
            .map_or(Capabilities::NONE, |r| r.capabilities);
        let mut names: Vec<String> = caps.names().into_iter().map(String::from).collect();
        if names.is_empty() {
            names.push("deny".into());
        }
        names.sort();
        names
    }

    /// Vault's `hasMountAccess`: whether the token may see the mount at
    /// `mount` (ending in `/`), that is, has some capability on the mount
    /// path or on some path below it.
    pub fn has_mount_access(&self, mount: &str) -> bool {
        if !self.capabilities(mount).iter().any(|c| c == "deny") {
            return true;
        }
        let grants = Capabilities::CREATE
            .union(Capabilities::DELETE)
            .union(Capabilities::LIST)
            .union(Capabilities::READ)
            .union(Capabilities::SUDO)
            .union(Capabilities::UPDATE)
            .union(Capabilities::PATCH);
        let below = |r: &&Rule| {
            r.pattern.kind != PatternKind::SegmentWildcard
                && r.pattern.key.starts_with(mount)
                && !r.capabilities.contains(Capabilities::DENY)
                && r.capabilities.intersects(grants)
        };
        if self.rules.iter().any(|r| below(&r)) {
            return true;
        }
        self.segments.iter().any(|(pattern, i)| {
            self.rule(*i).is_some_and(|r| {
                !r.capabilities.contains(Capabilities::DENY)
                    && !r.capabilities.is_empty()
                    && pattern.reaches_below(mount)
            })
        })
    }
}

/// Request parameters against the rule (read, create, update, patch).
fn check_parameters(rule: &Rule, data: &Map<String, Value>) -> Option<Denial> {
    for name in &rule.required {
        // Vault lower-cases the required name, not the request's keys.
        if !data.contains_key(go_lower(name).as_ref()) {
            return Some(Denial::MissingRequiredParameter(name.clone()));
        }
    }
    if data.is_empty() {
        return None;
    }
    if !rule.denied.is_empty() {
        if rule.denied.contains_key("*") {
            return Some(Denial::AllParametersDenied);
        }
        for (name, value) in data {
            if let Some(values) = rule.denied.get(go_lower(name).as_ref())
                && value_in_list(value, values)
            {
                return Some(Denial::DeniedParameter(name.clone()));
            }
        }
    }
    if rule.allowed.is_empty() {
        return None;
    }
    let allowed_all = rule.allowed.contains_key("*");
    if allowed_all && rule.allowed.len() == 1 {
        return None;
    }
    for (name, value) in data {
        match rule.allowed.get(go_lower(name).as_ref()) {
            None if !allowed_all => return Some(Denial::ParameterNotAllowed(name.clone())),
            Some(values) if !value_in_list(value, values) => return Some(Denial::ValueNotAllowed(name.clone())),
            _ => {}
        }
    }
    None
}

/// OpenBao's `pagination_limit` on LIST and SCAN.
fn check_pagination<'a>(rule: &Rule, data: &Map<String, Value>, mut d: Decision<'a>) -> Decision<'a> {
    let limit = data.get("limit");
    if rule.pagination_limit > 0 {
        match limit {
            None => {
                if rule.required.iter().any(|p| go_lower(p) == "limit") {
                    return d.deny(Denial::LimitRequired);
                }
                d.set_limit = Some(rule.pagination_limit);
            }
            Some(v) => match safe_parse_int(v) {
                Some(n) if n > rule.pagination_limit => {
                    return d.deny(Denial::LimitAboveMax {
                        max: rule.pagination_limit,
                    });
                }
                Some(_) => {}
                None if v.as_str() == Some("max") => d.set_limit = Some(rule.pagination_limit),
                None => return d.deny(Denial::InvalidLimit),
            },
        }
    } else if limit.and_then(Value::as_str) == Some("max") {
        d.set_limit = Some(0);
    }
    d.allow()
}

/// `parseutil.SafeParseInt`: an integer, or a string of one.
fn safe_parse_int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
#[path = "acl_tests.rs"]
mod tests;
