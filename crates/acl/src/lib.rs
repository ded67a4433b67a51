//! Vault's ACL policies for Warden: parsed, compiled and evaluated as Vault
//! (and OpenBao, where the two differ) does it, with no dependency on the
//! server, so that the host calls it and the tests run in seconds.
//!
//! The flow:
//! 1. [`Policy::parse`] reads a policy text, HCL or JSON (a text starting
//!    with `{`), into [`PathRule`]s, refusing what Vault refuses with
//!    Vault's words ([`Error`]'s `Display` is what a 400 `{"errors":[...]}`
//!    carries). [`Policy::root`], [`Policy::default_policy`] (OpenBao's
//!    text, [`DEFAULT_POLICY`]) and [`Policy::response_wrapping`] are the
//!    built-in ones.
//! 2. [`Acl::new`] (or [`Acl::with_identity`], which fills
//!    `{{identity.entity.id}}`-style templates) merges a token's policies
//!    once: rules with the same pattern become one, capabilities unioned,
//!    an explicit deny winning over everything, parameter lists and
//!    wrapping TTLs merged as Vault's `NewACL` merges them.
//! 3. [`Acl::allow`] answers one [`Request`] (Vault's `AllowOperation`):
//!    the exact rule first, then the best prefix (`*`) or segment-wildcard
//!    (`+`) rule by Vault's priority order; help is always allowed; then
//!    the capability, the wrapping TTL bounds, and for read, create,
//!    update and patch the allowed, denied and required parameters. The
//!    [`Decision`] says whether, with sudo, the matched [`Rule`] and, when
//!    refused, a [`Denial`] for the log (the client only ever sees
//!    "permission denied"). [`Acl::capabilities`] is sys/capabilities;
//!    [`Acl::has_mount_access`] is the mount visibility check.
//!
//! Module map: `syntax` (HCL/JSON text to positioned nodes), `policy`
//! (nodes to rules, errors, built-in policies), `pattern` (what a path
//! pattern means, the matching structures, the priority order), `template`
//! (identity templates), `params` (parameter value matching), `time`
//! (per-path expiration), `capability` (capabilities and operations),
//! `acl` (merging and evaluation).

mod acl;
mod capability;
mod params;
mod pattern;
mod policy;
mod syntax;
mod template;
mod time;

pub use acl::{Acl, AclError, Decision, Denial, Request, Rule};
pub use capability::{Capabilities, Operation};
pub use pattern::{Pattern, PatternKind};
pub use policy::{DEFAULT_POLICY, Error, Parameters, PathRule, Policy, RESPONSE_WRAPPING_POLICY, sanitize_name};
pub use template::{Alias, Group, Identity};
