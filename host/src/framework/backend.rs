//! Path declarations and the router over them: Vault's `framework.Path` and
//! `framework.Backend`. A backend is a list of paths; each has a pattern
//! (a regular expression with named captures), typed fields, the operations
//! it supports with their handlers, an optional existence check (which
//! turns an update of something that does not exist into a create), and
//! help text. The router picks the most specific matching pattern, answers
//! Vault's routing errors, converts the fields, and calls the handler.

use super::field::{Field, FieldData, FieldType};
use crate::error::{Error, Result};
use crate::logical::{Auth, Mount, Operation, Reply, Request, Response};
use futures::future::BoxFuture;
use regex::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};
use serde_json::{Map, Value};

/// Vault's `framework.GenericNameRegex`, `\w(([\w-.]+)?\w)?`: the
/// pattern of names (roles, connections, policies) in paths. Go's `\w` is
/// ASCII, so the class is spelled out: a Unicode `\w` would also let
/// names through that Vault does not route, and makes every matcher's
/// lazy DFA (and its per-thread caches) far larger.
pub const NAME: &str = r"[0-9A-Za-z_](([0-9A-Za-z_\-.]+)?[0-9A-Za-z_])?";

/// The lazy DFA cache of each path matcher, per thread that uses it. The
/// regex crate's default (2 MiB) lets a server's matchers keep MiBs once
/// warm; paths are short and the patterns small, so a small cache costs
/// no measurable time (routing_bench).
const DFA_CACHE_BYTES: usize = 64 << 10;

/// A named capture of a name: `(?P<field>` [`NAME`] `)`.
pub fn name_capture(field: &str) -> String {
    format!("(?P<{field}>{NAME})")
}

/// The policy check the router runs on what it resolved, before the
/// handler (today every authenticated token is root; ACL policies will
/// check here).
pub type Check<'a> = dyn Fn(&Resolved) -> Result<()> + Sync + 'a;

/// What a handler sees of its request: the operation (create told apart
/// from update), the path below the mount, the converted fields, and who
/// asks.
pub struct Req<'a> {
    pub operation: Operation,
    /// The path below the mount (or below `sys/`).
    pub path: &'a str,
    pub fields: FieldData,
    /// The mount the request reached (None for `sys/` and `auth/token/`).
    pub mount: Option<&'a Mount>,
    pub auth: &'a Auth,
    /// The id a lease will have if this request issues a secret.
    pub lease_id: &'a str,
    pub request_id: &'a str,
    /// The TTL the response will be wrapped with (`X-Vault-Wrap-TTL`).
    pub wrap_ttl: Option<i64>,
    /// The client's address, where known (CIDR-bound credentials).
    pub remote_addr: Option<std::net::IpAddr>,
    /// The namespace the request is in.
    pub namespace: &'a crate::logical::Namespace,
}

impl Req<'_> {
    /// The mount of an engine's request.
    pub fn mount(&self) -> Result<&Mount> {
        self.mount
            .ok_or_else(|| Error::internal("this path is only served below a mount"))
    }
}

/// An operation's handler: an async function over the backend and the
/// request, written `|b, r| Box::pin(handler(b, r))` (the [`handler!`]
/// macro).
pub type Handler<B> = for<'a> fn(&'a B, &'a Req<'a>) -> BoxFuture<'a, Reply>;

/// An existence check: does the object this path names exist already?
pub type Existence<B> = for<'a> fn(&'a B, &'a Req<'a>) -> BoxFuture<'a, Result<bool>>;

/// `handler!(path_roles::read)`: a [`Handler`] of an `async fn(&B, &Req)`.
#[macro_export]
macro_rules! handler {
    ($f:path) => {
        |b, r| Box::pin($f(b, r))
    };
}

/// One operation a path supports.
pub struct Op<B: 'static> {
    pub operation: Operation,
    pub handler: Handler<B>,
    pub summary: &'static str,
}

/// One declared path.
pub struct Path<B: 'static> {
    /// A regular expression over the path below the mount, anchored at
    /// both ends by the router.
    pub pattern: String,
    pub fields: Vec<Field>,
    pub operations: Vec<Op<B>>,
    pub existence: Option<Existence<B>>,
    pub synopsis: &'static str,
    pub description: &'static str,
    /// Served without a token (sys/health, sys/unseal...).
    pub unauthenticated: bool,
    /// Needs `sudo` in the caller's policy (Vault's root-protected paths).
    pub sudo: bool,
    /// Exempt from the request timeout: its work (revoking every lease
    /// below a prefix) takes as long as it takes, each step bounded on its
    /// own; cut off, it would answer an error while the work went on.
    pub runs_to_completion: bool,
    /// The request metrics' route label: the backend type and the templated
    /// pattern (`database/creds/{name}`), set by [`Backend::new`].
    pub route: &'static str,
}

impl<B: 'static> Path<B> {
    pub fn new(pattern: impl Into<String>) -> Path<B> {
        let pattern = pattern.into();
        // Every named capture is a field of the path (a name, unless the
        // declaration says otherwise with `field`).
        let fields = Regex::new(&pattern)
            .map(|re| {
                re.capture_names()
                    .flatten()
                    .map(|name| Field {
                        in_path: true,
                        ..Field::new(leak(name), FieldType::Str, "")
                    })
                    .collect()
            })
            .unwrap_or_default();
        Path {
            pattern,
            fields,
            operations: Vec::new(),
            existence: None,
            synopsis: "",
            description: "",
            unauthenticated: false,
            sudo: false,
            runs_to_completion: false,
            route: "",
        }
    }

    /// Declare a field (a capture of the same name keeps `in_path` and takes
    /// the declared type and description).
    pub fn field(mut self, field: Field) -> Self {
        match self.fields.iter_mut().find(|f| f.name == field.name) {
            Some(existing) => {
                let in_path = existing.in_path;
                *existing = Field { in_path, ..field };
            }
            None => self.fields.push(field),
        }
        self
    }

    pub fn op(mut self, operation: Operation, handler: Handler<B>, summary: &'static str) -> Self {
        self.operations.push(Op {
            operation,
            handler,
            summary,
        });
        self
    }

    pub fn existence(mut self, check: Existence<B>) -> Self {
        self.existence = Some(check);
        self
    }

    pub fn help(mut self, synopsis: &'static str, description: &'static str) -> Self {
        self.synopsis = synopsis;
        self.description = description;
        self
    }

    pub fn unauthenticated(mut self) -> Self {
        self.unauthenticated = true;
        self
    }

    pub fn sudo(mut self) -> Self {
        self.sudo = true;
        self
    }

    /// Exempt the path from the request timeout ([`Path::runs_to_completion`]).
    pub fn runs_to_completion(mut self) -> Self {
        self.runs_to_completion = true;
        self
    }

    fn handler(&self, op: Operation) -> Option<&Op<B>> {
        self.operations.iter().find(|o| o.operation == op)
    }

    /// How specific the pattern is: its literal characters before the
    /// first special one (a character made optional by a quantifier does
    /// not count), then whether it is literal throughout. The router
    /// prefers the most specific of the patterns that match.
    fn specificity(&self) -> (usize, bool) {
        match self.pattern.find(|c: char| "\\.+*?()|[]{}^$".contains(c)) {
            None => (self.pattern.len(), true),
            Some(i) if self.pattern[i..].starts_with(['?', '*', '{']) => (i.saturating_sub(1), false),
            Some(i) => (i, false),
        }
    }
}

/// Field names live as long as the declarations (built once per process).
fn leak(name: &str) -> &'static str {
    Box::leak(name.to_string().into_boxed_str())
}

/// What the router resolved for a request, before its handler runs: what a
/// policy check needs (the operation with create told apart, the matched
/// declaration's flags, the fields given).
pub struct Resolved<'a> {
    pub operation: Operation,
    pub pattern: &'a str,
    pub unauthenticated: bool,
    pub sudo: bool,
    pub fields: &'a FieldData,
    /// The request's input as sent (ACL parameter rules read its keys
    /// and values, as Vault's do).
    pub data: &'a Map<String, Value>,
}

/// A backend: its declared paths, compiled once.
pub struct Backend<B: 'static> {
    /// The mount type ("database", "system"...).
    pub kind: &'static str,
    pub help: &'static str,
    pub paths: Vec<Path<B>>,
    set: RegexSet,
    regexes: Vec<Regex>,
}

impl<B: 'static> Backend<B> {
    /// Compile the declarations. A pattern that does not compile is a bug
    /// in a declaration, caught by every backend's unit test.
    pub fn new(kind: &'static str, help: &'static str, mut paths: Vec<Path<B>>) -> Self {
        for p in &mut paths {
            p.route = crate::telemetry::route_label(kind, &super::openapi::route_template(&p.pattern));
        }
        let anchored: Vec<String> = paths.iter().map(|p| format!("^{}$", p.pattern)).collect();
        #[allow(
            clippy::expect_used,
            reason = "declarations are static; a unit test compiles every backend"
        )]
        let set = RegexSetBuilder::new(&anchored)
            .dfa_size_limit(DFA_CACHE_BYTES)
            .build()
            .expect("path patterns compile");
        #[allow(clippy::expect_used, reason = "as above")]
        let regexes = anchored
            .iter()
            .map(|p| {
                RegexBuilder::new(p)
                    .dfa_size_limit(DFA_CACHE_BYTES)
                    .build()
                    .expect("path patterns compile")
            })
            .collect();
        Backend {
            kind,
            help,
            paths,
            set,
            regexes,
        }
    }

    /// The declaration that serves `path`, and its captures: the most
    /// specific of those that match (see `Path::specificity`; on a tie the
    /// first declared).
    pub fn route(&self, path: &str) -> Option<(&Path<B>, Map<String, Value>)> {
        let best = self
            .set
            .matches(path)
            .into_iter()
            .max_by_key(|&i| (self.paths[i].specificity(), std::cmp::Reverse(i)))?;
        let mut captures = Map::new();
        if let Some(caps) = self.regexes[best].captures(path) {
            for name in self.regexes[best].capture_names().flatten() {
                if let Some(m) = caps.name(name) {
                    captures.insert(name.to_string(), Value::String(m.as_str().to_string()));
                }
            }
        }
        Some((&self.paths[best], captures))
    }

    /// Route `path` and convert `data` (with the path's captures) into the
    /// declaration's typed fields: all the framework does before a handler.
    pub fn resolve(&self, path: &str, data: &Map<String, Value>) -> Result<(&Path<B>, FieldData)> {
        let (declared, captures) = self.route(path).ok_or(Error::UnsupportedPath)?;
        let mut raw = data.clone();
        raw.extend(captures);
        let fields = FieldData::parse(&declared.fields, raw)?;
        Ok((declared, fields))
    }

    /// Serve a request below this backend: route it, settle create vs
    /// update with the existence check, convert the fields, let `check`
    /// (the policy check) see what was resolved, then run the handler.
    /// `?help=1` answers the path's help instead.
    pub async fn handle(&self, b: &B, req: &Request, path: &str, mount: Option<&Mount>, check: &Check<'_>) -> Reply {
        if req.operation == Operation::Help {
            return self.help_response(path, mount).map(Some);
        }
        let (declared, fields) = self.resolve(path, &req.data)?;
        crate::telemetry::matched(declared.route);
        let mut r = Req {
            operation: req.operation,
            path,
            fields,
            mount,
            auth: &req.auth,
            lease_id: &req.lease_id,
            request_id: &req.request_id,
            wrap_ttl: req.wrap_ttl,
            remote_addr: req.remote_addr,
            namespace: &req.namespace,
        };
        if r.operation == Operation::Update
            && let Some(exists) = declared.existence
            && !exists(b, &r).await?
        {
            r.operation = Operation::Create;
        }
        let op = match declared.handler(r.operation) {
            Some(op) => op,
            // A path without a create handler creates through update.
            None if r.operation == Operation::Create => {
                declared.handler(Operation::Update).ok_or(Error::UnsupportedOperation)?
            }
            None => return Err(Error::UnsupportedOperation),
        };
        check(&Resolved {
            operation: r.operation,
            pattern: &declared.pattern,
            unauthenticated: declared.unauthenticated,
            sudo: declared.sudo,
            fields: &r.fields,
            data: &req.data,
        })?;
        (op.handler)(b, &r).await
    }

    /// Is `path` served without a token?
    pub fn is_unauthenticated(&self, path: &str) -> bool {
        self.route(path).is_some_and(|(p, _)| p.unauthenticated)
    }

    /// Is `path` exempt from the request timeout?
    pub fn runs_to_completion(&self, path: &str) -> bool {
        self.route(path).is_some_and(|(p, _)| p.runs_to_completion)
    }

    /// Vault's help response: `help` text, `see_also`, and the path's
    /// OpenAPI document. The backend's root (an empty path) lists its paths.
    fn help_response(&self, path: &str, mount: Option<&Mount>) -> Result<Response> {
        let prefix = mount.map_or("", |m| m.path());
        let (text, doc) = if path.is_empty() {
            (self.root_help(), super::openapi::document(&[(prefix, self.describe())]))
        } else {
            let (declared, _) = self.route(path).ok_or(Error::UnsupportedPath)?;
            let one = BackendDoc {
                paths: vec![declared.doc()],
                ..self.describe_empty()
            };
            (path_help(path, declared), super::openapi::document(&[(prefix, one)]))
        };
        Ok(Response {
            raw_body: Some(serde_json::json!({ "help": text, "see_also": null, "openapi": doc })),
            ..Response::default()
        })
    }

    fn root_help(&self) -> String {
        let mut out = format!(
            "## DESCRIPTION\n\n{}\n\n## PATHS\n\nThe following paths are supported by this backend. To view help for\nany of the paths below, use the help command with any route matching\nthe path pattern. Note that depending on the policy of your auth token,\nyou may or may not be able to access certain paths.\n\n",
            self.help.trim()
        );
        for p in &self.paths {
            out.push_str(&format!("    ^{}$\n        {}\n\n", p.pattern, p.synopsis.trim()));
        }
        out
    }

    /// The declarations as data: what path-help, the OpenAPI document and
    /// the route table print.
    pub fn describe(&self) -> BackendDoc {
        BackendDoc {
            paths: self.paths.iter().map(Path::doc).collect(),
            ..self.describe_empty()
        }
    }

    fn describe_empty(&self) -> BackendDoc {
        BackendDoc {
            kind: self.kind,
            help: self.help,
            paths: Vec::new(),
        }
    }
}

impl<B> Path<B> {
    fn doc(&self) -> PathDoc {
        PathDoc {
            pattern: self.pattern.clone(),
            fields: self.fields.clone(),
            operations: self.operations.iter().map(|o| (o.operation, o.summary)).collect(),
            has_existence_check: self.existence.is_some(),
            synopsis: self.synopsis,
            description: self.description,
            unauthenticated: self.unauthenticated,
            sudo: self.sudo,
        }
    }
}

/// A backend's declarations, without their handlers.
#[derive(Clone, Debug)]
pub struct BackendDoc {
    pub kind: &'static str,
    pub help: &'static str,
    pub paths: Vec<PathDoc>,
}

#[derive(Clone, Debug)]
pub struct PathDoc {
    pub pattern: String,
    pub fields: Vec<Field>,
    pub operations: Vec<(Operation, &'static str)>,
    pub has_existence_check: bool,
    pub synopsis: &'static str,
    pub description: &'static str,
    pub unauthenticated: bool,
    pub sudo: bool,
}

/// Vault's path help text (sdk/framework/path.go's template).
fn path_help<B>(request: &str, p: &Path<B>) -> String {
    let or = |s: &str, none: &str| match s.trim() {
        "" => none.to_string(),
        t => t.to_string(),
    };
    let mut out = format!(
        "Request:        {request}\nMatching Route: ^{}$\n\n{}\n\n",
        p.pattern,
        or(p.synopsis, "<no synopsis>")
    );
    let mut fields: Vec<&Field> = p.fields.iter().collect();
    fields.sort_by_key(|f| f.name);
    if !fields.is_empty() {
        out.push_str("## PARAMETERS\n");
        for f in fields {
            let desc = or(f.description, "<no description>");
            out.push_str(&format!("\n    {} ({})\n\n        {}\n", f.name, f.ty.name(), desc));
        }
    }
    out.push_str(&format!(
        "\n## DESCRIPTION\n\n{}\n",
        or(p.description, "<no description>")
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Counter;

    async fn read(_: &Counter, r: &Req<'_>) -> Reply {
        Ok(Some(Response::data(json!({
            "name": r.fields.str("name"),
            "ttl": r.fields.duration("ttl"),
            "op": format!("{:?}", r.operation),
        }))))
    }

    async fn exists(_: &Counter, r: &Req<'_>) -> Result<bool> {
        Ok(r.fields.str("name") == "there")
    }

    fn backend() -> Backend<Counter> {
        Backend::new(
            "test",
            "a test backend",
            vec![
                Path::new(format!("roles/{}", name_capture("name")))
                    .field(Field::new("name", FieldType::Name, "the role"))
                    .field(Field::new("ttl", FieldType::Duration, "its ttl").default(60))
                    .op(Operation::Read, handler!(read), "read a role")
                    .op(Operation::Create, handler!(read), "create a role")
                    .op(Operation::Update, handler!(read), "update a role")
                    .existence(|b, r| Box::pin(exists(b, r)))
                    .help("Manage roles.", "Roles are things."),
                Path::new("roles/?").op(Operation::List, handler!(read), "list roles"),
                Path::new("(?P<any>.+)").op(Operation::Read, handler!(read), "anything"),
            ],
        )
    }

    fn request(op: Operation, data: Value) -> Request {
        Request {
            operation: op,
            data: data.as_object().cloned().unwrap_or_default(),
            ..Request::default()
        }
    }

    async fn call(op: Operation, path: &str, data: Value) -> Reply {
        let b = backend();
        b.handle(&Counter, &request(op, data), path, None, &|_| Ok(())).await
    }

    fn body(reply: Reply) -> Value {
        reply.unwrap().unwrap().data.unwrap()
    }

    #[tokio::test]
    async fn the_most_specific_pattern_wins_and_captures_become_fields() {
        let got = body(call(Operation::Read, "roles/app", json!({})).await);
        assert_eq!(got, json!({"name": "app", "ttl": 60, "op": "Read"}));
        // The catch-all matches too, but has the shorter literal prefix.
        let (p, _) = backend()
            .route("roles/app")
            .map(|(p, c)| (p.pattern.clone(), c))
            .unwrap();
        assert!(p.starts_with("roles/"), "{p}");
        let (p, _) = backend().route("other").map(|(p, c)| (p.pattern.clone(), c)).unwrap();
        assert_eq!(p, "(?P<any>.+)");
    }

    #[tokio::test]
    async fn an_update_of_nothing_is_a_create() {
        let got = body(call(Operation::Update, "roles/new", json!({"ttl": "2m"})).await);
        assert_eq!(got["op"], "Create");
        assert_eq!(got["ttl"], 120);
        let got = body(call(Operation::Update, "roles/there", json!({})).await);
        assert_eq!(got["op"], "Update");
    }

    #[tokio::test]
    async fn routing_errors_are_vaults() {
        let e = call(Operation::Delete, "roles/app", json!({})).await.unwrap_err();
        assert!(matches!(e, Error::UnsupportedOperation), "{e:?}");
        let e = call(Operation::Read, "roles/app", json!({"ttl": "soon"}))
            .await
            .unwrap_err();
        assert!(
            e.to_string().starts_with("error converting input for field \"ttl\""),
            "{e}"
        );
        let b = Backend::new(
            "t",
            "",
            vec![Path::<Counter>::new(format!("creds/{}", name_capture("name")))],
        );
        for bad in ["creds/a b", "creds/-abc", "creds/abc.", "creds/"] {
            assert!(b.route(bad).is_none(), "{bad}");
        }
        assert!(b.route("creds/a.b-c_d").is_some());
    }

    #[tokio::test]
    async fn the_policy_check_sees_create_and_can_refuse() {
        let b = backend();
        let seen = std::sync::Mutex::new(None);
        let e = b
            .handle(
                &Counter,
                &request(Operation::Update, json!({})),
                "roles/new",
                None,
                &|r| {
                    *seen.lock().unwrap() = Some(r.operation);
                    Err(Error::PermissionDenied)
                },
            )
            .await
            .unwrap_err();
        assert!(matches!(e, Error::PermissionDenied));
        assert_eq!(*seen.lock().unwrap(), Some(Operation::Create));
    }

    #[tokio::test]
    async fn help_prints_vaults_template() {
        let resp = call(Operation::Help, "roles/app", json!({})).await.unwrap().unwrap();
        let body = resp.raw_body.unwrap();
        let help = body["help"].as_str().unwrap();
        assert!(help.contains("Request:        roles/app"), "{help}");
        assert!(help.contains("Matching Route: ^roles/(?P<name>"), "{help}");
        assert!(help.contains("    ttl (duration (sec))\n\n        its ttl"), "{help}");
        assert!(help.contains("## DESCRIPTION\n\nRoles are things."), "{help}");
        assert_eq!(body["openapi"]["openapi"], "3.0.2");
        let resp = call(Operation::Help, "", json!({})).await.unwrap().unwrap();
        let help = resp.raw_body.unwrap()["help"].as_str().unwrap().to_string();
        assert!(help.contains("## PATHS") && help.contains("    ^roles/?$"), "{help}");
    }
}
