//! The one place every request is routed, so that a check made here (the
//! token today, ACL policies next) cannot miss a path: `sys/` goes to the
//! system backend (served by the node, so the seal's paths answer while
//! sealed), `auth/token/` to the token backend, `auth/<path>/` to the auth
//! method enabled there, everything else to the mount at the longest
//! matching prefix. Each backend's declarations say which of its paths are
//! served without a token (the seal's, an auth method's `login`).

use crate::error::{Error, Result};
use crate::framework::Resolved;
use crate::logical::{Auth, Operation, Reply, Request};

use crate::node::Node;

/// Is the request path (below `/v1/`, from the root namespace) exempt
/// from the request timeout? Its declaration says so
/// ([`crate::framework::Path::runs_to_completion`]), in whichever
/// namespace the path is.
pub fn runs_to_completion(node: &Node, path: &str) -> bool {
    let relative = match node.core() {
        Ok(core) => {
            let ns = core.namespaces.resolve(path).unwrap_or_default();
            path[ns.path.len()..].to_string()
        }
        Err(_) => path.to_string(),
    };
    relative
        .strip_prefix("sys/")
        .is_some_and(|rest| crate::system::BACKEND.runs_to_completion(rest))
}

/// Serve one request made with `token` (empty: none). `req.path` is the
/// full path, from the root namespace (the HTTP layer put the
/// `X-Vault-Namespace` header's namespace, `asked`, in front of it). The
/// router finds the request's namespace (the longest namespace path that
/// prefixes the path), authenticates the token (unless the declaration is
/// unauthenticated) and keeps a token inside its own namespace, then
/// routes the path below the namespace; the check it runs once it has
/// resolved the path is the token's ACL, over the path relative to the
/// token's namespace (create vs update from the path's existence check,
/// sudo where the declaration says so). A token's last use revokes it
/// after the request.
pub async fn handle(node: &Node, mut req: Request, token: &str, asked: Option<&str>) -> Reply {
    // Vault refuses writes to a path ending in '/' before routing them.
    if req.operation.is_write() && req.path.ends_with('/') {
        return Err(Error::bad("cannot write to a path ending in '/'"));
    }
    let sys = &*crate::system::BACKEND;
    if asked.is_none()
        && let Some(rest) = req.path.strip_prefix("sys/")
        && req.operation != Operation::Help
        && sys.is_unauthenticated(rest)
    {
        let rest = rest.to_string();
        req.auth = Auth::anonymous();
        return sys.handle(node, &req, &rest, None, &|_| Ok(())).await;
    }
    // Everything else needs an unsealed node (503) and, but for an auth
    // method's login, a token.
    let core = node.core()?;
    // A header naming a namespace that is not there is OpenBao's 404.
    if let Some(asked) = asked
        && core.namespaces.get(asked).is_none()
    {
        return Err(Error::Missing("namespace not found".into()));
    }
    let full_path = req.path.clone();
    // A namespace being deleted serves nothing.
    let mut ns = core
        .namespaces
        .resolve(&full_path)
        .ok_or_else(|| Error::NoRoute(full_path.clone()))?;
    let relative = full_path[ns.path.len()..].to_string();
    let sys_rest = relative.strip_prefix("sys/").map(str::to_string);
    // Below a namespace, sys/ serves what a namespace has of its own
    // (mounts, policies, leases, plugins, namespaces...); the rest (the
    // seal, audit devices, quotas, plugin reloads) is the root's only.
    if let Some(rest) = &sys_rest
        && !ns.is_root()
        && req.operation != Operation::Help
        && !crate::system::serves_in_namespaces(rest)
    {
        return Err(Error::NoRoute(full_path));
    }
    // Audit devices record the request after its token and ACL check and
    // before its handler, then its response (crate::audit): a request
    // whose token is refused is recorded too, and so is a login.
    let audit = core.audit.active();
    let login = req.operation != Operation::Help && core.is_login_path(&ns, &relative);
    req.namespace = ns.clone();
    if login {
        req.auth = Auth::anonymous();
    } else {
        req.auth = match core.authenticate(Some(token)).await {
            Ok(auth) => auth,
            Err(e) => return crate::audit::refused(audit, &req, token, e),
        };
        // A token bound to CIDR blocks (an auth method's token_bound_cidrs)
        // is refused from anywhere else, as Vault's 403.
        if !req.auth.bound_cidrs.is_empty()
            && !req
                .remote_addr
                .is_some_and(|ip| crate::credential::cidr::any_contains(&req.auth.bound_cidrs, ip))
        {
            return crate::audit::refused(audit, &req, token, Error::PermissionDenied);
        }
        // A token reaches its own namespace and the ones inside it, never
        // a parent's. Its own token paths (lookup-self, renew-self,
        // revoke-self) are served in its namespace wherever it asks, as
        // Vault's.
        if !req.auth.namespace.contains(&full_path) {
            if ns.is_root() && SELF_PATHS.contains(&relative.as_str()) {
                ns = req.auth.namespace.clone();
                req.namespace = ns.clone();
            } else {
                return crate::audit::refused(audit, &req, token, Error::AclDenied);
            }
        }
    }
    // A lease-count quota covering the path must have room for the lease
    // the request may create; the request holds its place until it ends.
    let _reservation = match sys_rest {
        Some(_) => None,
        None => match core.quotas.reserve(&full_path, &ns.path) {
            Ok(r) => r,
            Err(e) => return crate::audit::refused(audit, &req, token, e),
        },
    };
    let trail = audit.map(|devices| crate::audit::Trail::new(devices, &core, &req, token));
    let acl = match login || req.auth.is_root() {
        true => None,
        false => Some(core.policies_in(&req.auth.namespace).acl(&req.auth.policies).await?),
    };
    // The ACL sees the path from the token's namespace ("prod/db/creds/x"
    // for a token of team-a asking for team-a/prod/db/creds/x). A root
    // token's request pays for none of it.
    let wrap_ttl = req.wrap_ttl;
    let acl = acl.map(|acl| (acl, req.auth.namespace.relative(&full_path).to_string()));
    let check = |resolved: &Resolved| -> Result<()> {
        let verdict = match &acl {
            // Without a token, only what the auth method declares
            // unauthenticated (its login) is served.
            None if login && !resolved.unauthenticated => Err(Error::PermissionDenied),
            None => Ok(()),
            Some((acl, path)) => authorize(acl, path, resolved, wrap_ttl),
        };
        match &trail {
            None => verdict,
            Some(trail) => trail.request(resolved.operation, verdict),
        }
    };
    let last_use = req.auth.last_use.then(|| req.auth.token_hash.clone());
    let wrap = wrap_ttl.map(|ttl| (ttl, relative.clone(), req.request_id.clone()));
    // From here on the request's path is below its namespace.
    req.path = relative;
    let reply = match &sys_rest {
        Some(rest) => sys.handle(node, &req, rest, None, &check).await,
        None => core.handle(req, &check).await,
    };
    // A response asked to be wrapped goes to a wrapping token instead; the
    // caller gets its wrap_info. Nothing to wrap (a 204, a raw body such
    // as an unwrap's, a queued job) is sent as it is.
    let reply = match (reply, wrap) {
        (Ok(Some(resp)), Some((ttl, path, request_id))) if wrappable(&resp) => {
            core.wrap_response(resp, ttl, &path, &request_id).await.map(Some)
        }
        (reply, _) => reply,
    };
    // The audit devices see what the caller gets (a wrapped response's
    // wrap_info, as Vault's).
    let reply = match &trail {
        None => reply,
        Some(trail) => trail.response(&core, reply).await,
    };
    if let Some(hash) = last_use
        && let Err(e) = core.revoke_token(&hash).await
    {
        tracing::warn!(error = %e, "could not revoke a token after its last use (its use count stays spent)");
    }
    reply
}

/// A token's paths about itself, which it may use from the root namespace
/// whatever namespace it was made in.
const SELF_PATHS: &[&str] = &[
    "auth/token/lookup-self",
    "auth/token/renew-self",
    "auth/token/revoke-self",
];

/// Is there something in this response to wrap?
fn wrappable(resp: &crate::logical::Response) -> bool {
    !resp.is_empty() && resp.raw_body.is_none() && resp.status.is_none() && !resp.accepted && resp.wrap_info.is_none()
}

/// The ACL's verdict on a resolved request: allowed by a capability for
/// its operation, with sudo where the path needs it, and within the
/// rule's parameter and wrapping-TTL constraints. Refusals are Vault's
/// 403 (its multierror wording); the reason goes to the debug log only.
fn authorize(acl: &warden_acl::Acl, path: &str, resolved: &Resolved, wrap_ttl: Option<i64>) -> Result<()> {
    let operation = match resolved.operation {
        Operation::Read => warden_acl::Operation::Read,
        Operation::Create => warden_acl::Operation::Create,
        Operation::Update => warden_acl::Operation::Update,
        Operation::Patch => warden_acl::Operation::Patch,
        Operation::Delete => warden_acl::Operation::Delete,
        Operation::List => warden_acl::Operation::List,
        Operation::Help => warden_acl::Operation::Help,
    };
    let mut request = warden_acl::Request::new(operation, path).data(resolved.data);
    if let Some(ttl) = wrap_ttl {
        request = request.wrap_ttl(ttl);
    }
    let decision = acl.allow(&request);
    if !decision.allowed || (resolved.sudo && !decision.sudo) {
        tracing::debug!(path, operation = resolved.operation.as_str(), denial = ?decision.denial, sudo_needed = resolved.sudo, "permission denied");
        return Err(Error::AclDenied);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::framework::{BackendDoc, table};

    /// sys/, auth/token/, the auth methods and every registered engine
    /// type, mounted at its type's name.
    fn every_backend() -> Vec<(String, BackendDoc)> {
        let mut all = vec![
            ("sys/".to_string(), crate::system::BACKEND.describe()),
            ("auth/token/".to_string(), crate::core::token::BACKEND.describe()),
            (
                "auth/approle/".to_string(),
                crate::credential::approle::BACKEND.describe(),
            ),
        ];
        let engines = crate::engines::builtins();
        for name in engines.names() {
            let describe = engines.get(name).expect("registered").describe;
            all.push((format!("{name}/"), describe()));
        }
        all
    }

    const BEGIN: &str =
        "<!-- routes:begin (generated: WARDEN_UPDATE_DOCS=1 cargo test -p warden --lib route_table) -->\n";
    const END: &str = "<!-- routes:end -->";

    /// docs/api.md carries the route table printed from the declarations;
    /// `WARDEN_UPDATE_DOCS=1` rewrites it.
    #[test]
    fn route_table_in_docs_is_current() {
        let backends = every_backend();
        let borrowed: Vec<(&str, BackendDoc)> = backends.iter().map(|(p, d)| (p.as_str(), d.clone())).collect();
        let table = table::markdown(&borrowed);
        eprintln!("{table}");
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/api.md");
        let doc = std::fs::read_to_string(path).unwrap();
        let (head, rest) = doc.split_once(BEGIN).expect("docs/api.md has the routes:begin marker");
        let (current, tail) = rest.split_once(END).expect("docs/api.md has the routes:end marker");
        if current != table {
            if std::env::var("WARDEN_UPDATE_DOCS").is_ok() {
                std::fs::write(path, format!("{head}{BEGIN}{table}{END}{tail}")).unwrap();
            } else {
                panic!(
                    "docs/api.md's route table is stale: run WARDEN_UPDATE_DOCS=1 cargo test -p warden --lib route_table"
                );
            }
        }
    }

    /// No engine or sys/ module routes by hand any more: no handler
    /// matches on the operation or splits the path itself.
    #[test]
    fn no_path_is_routed_by_hand() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/src");
        let mut offenders = Vec::new();
        for dir in [
            "engines",
            "engines/database",
            "engines/mongodb",
            "credential",
            "credential/approle",
            "system",
            "core",
            "api",
        ] {
            for entry in std::fs::read_dir(format!("{root}/{dir}")).unwrap() {
                let path = entry.unwrap().path();
                if path.extension().is_none_or(|e| e != "rs") {
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                for needle in [
                    "match req.operation",
                    "match (head, name)",
                    "req.path.strip_prefix(\"sys/\")",
                    "split_path(",
                ] {
                    if text.contains(needle) {
                        offenders.push(format!("{}: {needle}", path.display()));
                    }
                }
            }
        }
        assert!(offenders.is_empty(), "hand-written routing left: {offenders:#?}");
    }

    /// Only what a path's declaration marks outlasts the request timeout:
    /// revoke-prefix, revoke-force, a mount's disable (which revokes its
    /// leases) and an auth method's (which revokes its tokens).
    #[test]
    fn only_declared_paths_outlast_the_request_timeout() {
        let runs = |path: &str| {
            path.strip_prefix("sys/")
                .is_some_and(|rest| crate::system::BACKEND.runs_to_completion(rest))
        };
        for path in [
            "sys/leases/revoke-prefix/db/creds",
            "sys/revoke-prefix/db/",
            "sys/leases/revoke-force/db",
            "sys/revoke-force/db",
            "sys/mounts/db",
            "sys/auth/approle",
        ] {
            assert!(runs(path), "{path}");
        }
        for path in [
            "sys/leases/revoke",
            "sys/leases/lookup",
            "sys/mounts/db/tune",
            "sys/auth/approle/tune",
            "sys/auth",
            "sys/mounts",
            "db/creds/app",
            "db/revoke-prefix/x",
            "sys",
            "",
        ] {
            assert!(!runs(path), "{path}");
        }
    }

    /// Every `.rs` file below `src/<dir>`, with its text.
    fn sources(dir: &str) -> Vec<(std::path::PathBuf, String)> {
        let mut out = Vec::new();
        let mut todo = vec![std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/src")).join(dir)];
        while let Some(d) = todo.pop() {
            for entry in std::fs::read_dir(&d).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    todo.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    out.push((path, text));
                }
            }
        }
        out
    }

    /// Engines see the engine-facing API only (framework, logical), never
    /// the core; the core never names an engine (it builds mounts from the
    /// registry the server fills). The framework and the request types
    /// below them name neither.
    #[test]
    fn core_and_engines_do_not_import_each_other() {
        let mut offenders = Vec::new();
        for (dir, forbidden) in [
            (
                "engines",
                &["crate::core", "crate::system", "crate::node", "crate::api"][..],
            ),
            ("core", &["crate::engines"][..]),
            (
                "credential",
                &[
                    "crate::core",
                    "crate::engines",
                    "crate::system",
                    "crate::node",
                    "crate::api",
                ][..],
            ),
            (
                "framework",
                &["crate::core", "crate::engines", "crate::system", "crate::node"][..],
            ),
            (
                "logical",
                &["crate::core", "crate::engines", "crate::system", "crate::node"][..],
            ),
        ] {
            for (path, text) in sources(dir) {
                for needle in forbidden {
                    if text.contains(needle) {
                        offenders.push(format!("{}: {needle}", path.display()));
                    }
                }
            }
        }
        assert!(offenders.is_empty(), "imports across the engine API: {offenders:#?}");
    }

    /// Every declared pattern routes a path made from it to itself (no
    /// declaration is shadowed by another).
    #[test]
    fn every_declaration_is_reachable() {
        fn check<B>(prefix: &str, backend: &crate::framework::Backend<B>) {
            for p in &backend.describe().paths {
                for templated in crate::framework::openapi::templated_paths(p) {
                    // A capture stands for a name, except the catalog's
                    // plugin type (one of a few words).
                    let concrete = templated.replace("{type}", "database").replace(['{', '}'], "");
                    let routed = backend.route(&concrete).map(|(d, _)| d.pattern.clone());
                    assert_eq!(
                        routed.as_deref(),
                        Some(p.pattern.as_str()),
                        "{prefix}{concrete} ({templated})"
                    );
                }
            }
        }
        check("sys/", &crate::system::BACKEND);
        check("auth/token/", &crate::core::token::BACKEND);
        check("auth/approle/", &crate::credential::approle::BACKEND);
        check("database/", &crate::engines::database::paths::BACKEND);
        check("mongodb/", &crate::engines::mongodb::BACKEND);
    }
}
