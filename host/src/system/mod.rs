//! The `sys/` backend, declared as every other backend: the seal (served
//! by the node, so health, seal-status, init and unseal answer while
//! sealed and without a token), mounts, auth methods, leases, password
//! policies, ACL policies and capabilities-self, response wrapping, audit
//! devices, the plugin catalog, resource quotas and the generated OpenAPI
//! document.

mod acl_policies;
mod audit;
mod auth;
mod ha;
mod internal;
mod leases;
mod metrics;
mod mounts;
mod namespaces;
mod plugins;
mod policies;
mod quotas;
mod replication;
mod seal;
mod wrapping;

use crate::framework::{Backend, Field, FieldType};
use crate::node::Node;
use std::sync::LazyLock;

pub static BACKEND: LazyLock<Backend<Node>> = LazyLock::new(|| {
    let mut paths = seal::paths();
    paths.extend(mounts::paths());
    paths.extend(auth::paths());
    paths.extend(leases::paths());
    paths.extend(policies::paths());
    paths.extend(acl_policies::paths());
    paths.extend(audit::paths());
    paths.extend(plugins::paths());
    paths.extend(internal::paths());
    paths.extend(wrapping::paths());
    paths.extend(quotas::paths());
    paths.extend(namespaces::paths());
    paths.extend(ha::paths());
    paths.extend(metrics::paths());
    paths.extend(replication::paths());
    Backend::new(
        "system",
        "The system backend is built into Warden and cannot be remounted or unmounted. It contains the paths used to configure Warden itself: the seal, mounts, leases, password and ACL policies and the plugin catalog.",
        paths,
    )
});

/// What `sys/` serves below a namespace other than the root: what a
/// namespace has of its own (mounts, auth methods, leases, ACL and
/// password policies, capabilities, response wrapping, registered
/// plugins, its child namespaces). The seal, audit devices, quotas and
/// plugin reloads are the root namespace's only (Vault's root-only paths),
/// answered 404 there.
pub fn serves_in_namespaces(path: &str) -> bool {
    const OWN: &[&str] = &[
        "mounts",
        "auth",
        "leases",
        "renew",
        "revoke",
        "revoke-prefix",
        "revoke-force",
        "policy",
        "policies",
        "capabilities",
        "capabilities-self",
        "capabilities-accessor",
        "wrapping",
        "namespaces",
    ];
    let head = path.split('/').next().unwrap_or_default();
    // A namespace registers plugins of its own; reloading is the root's.
    OWN.contains(&head) || path.starts_with("plugins/catalog")
}

/// A duration field of sys/ that also takes "system" (the system default,
/// stored as 0) is a string: the handler parses it.
fn ttl_text(name: &'static str, description: &'static str) -> Field {
    Field::new(name, FieldType::Str, description)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_declaration_compiles() {
        let b = &*super::BACKEND;
        assert!(b.paths.len() > 10);
        assert!(b.route("health").is_some());
        assert!(
            b.route("mounts/db/tune")
                .is_some_and(|(p, _)| p.pattern.ends_with("/tune"))
        );
    }
}
