//! The AppRole auth method (Vault's `builtin/credential/approle`): machines
//! log in with a role's `role_id` and, when the role binds one (the
//! default), a `secret_id` issued against the role; the token they get
//! carries exactly the role's `token_policies` (plus `default` unless
//! `token_no_default_policy`), with the role's TTLs and use count.
//!
//! Split by what each part owns: [`role`] the roles and their role-id
//! index, [`secret_id`] the secret IDs (stored only as HMACs, their use
//! counts spent atomically), [`login`] the login itself, [`tidy`] the
//! clean-up of secret IDs no login can use. Keys, relative to
//! the mount ([`crate::storage::layout::approle`]):
//!
//! - `salt`: the mount's HMAC key for the role-id and accessor indexes;
//! - `role/<name>`: a role, with its own HMAC key for its secret IDs;
//! - `role_id/<HMAC of role-id>`: the role's name;
//! - `secret_id/<HMAC of role name>/<HMAC of secret ID>`: a secret ID's
//!   properties (never the secret ID);
//! - `accessor/<HMAC of accessor>`: the HMAC of the secret ID it names;
//! - `secret_id_local/`, `accessor_local/`: the same for roles with
//!   `local_secret_ids` (declared local storage: never replicated).

pub mod login;
pub mod role;
pub mod role_fields;
pub mod secret_id;
pub mod tidy;

use crate::credential::AuthMethod;
use crate::error::{Error, Result};
use crate::framework::{Backend, BackendDoc, Check, Field, FieldType, Path, name_capture};
use crate::handler;
use crate::logical::Operation::{Delete, List, Read, Update};
use crate::logical::{Mount, Reply, Request};
use crate::storage::View;
use crate::storage::layout::approle as keys;
use crate::storage::locality::LocalStorage;
use hmac::Mac;

/// Vault's `maxHmacInputLength`: names and secret IDs are HMAC'd, and
/// longer ones are refused.
pub const MAX_HMAC_INPUT: usize = 4096;

/// Secret IDs of roles with `local_secret_ids` stay on this node.
pub const LOCAL_STORAGE: LocalStorage = &[keys::SECRET_ID_LOCAL, keys::ACCESSOR_LOCAL];

/// One AppRole mount's state beside its storage: the cached salt and the
/// locks that make its read-modify-writes safe.
#[derive(Default)]
pub struct AppRole {
    /// The mount's HMAC key, read (or made) once.
    salt: tokio::sync::OnceCell<Vec<u8>>,
    /// Serialises role writes (create, update, role-id, delete, secret-ID
    /// issue) so a check of the role-id index and the write after it see
    /// the same state.
    roles: tokio::sync::Mutex<()>,
    /// Serialises the read-modify-write of a secret ID (spending a use,
    /// destroying it): two logins can never both spend its last use.
    secret_ids: tokio::sync::Mutex<()>,
    /// A `tidy/secret-id` is running (one at a time).
    tidying: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl AppRole {
    /// The mount's HMAC key (made at the first use).
    async fn salt(&self, view: &View) -> Result<&[u8]> {
        let salt = self
            .salt
            .get_or_try_init(|| async {
                if let Some(hex_salt) = view.get(keys::SALT).await? {
                    return hex::decode(&hex_salt).map_err(|_| Error::internal("the AppRole mount's salt is corrupt"));
                }
                let salt: [u8; 32] = rand::random();
                view.put(keys::SALT, hex::encode(salt).as_bytes()).await?;
                Ok(salt.to_vec())
            })
            .await?;
        Ok(salt)
    }

    /// The HMAC of a value under the mount's salt (role-id and accessor
    /// indexes).
    async fn salted(&self, view: &View, value: &str) -> Result<String> {
        Ok(hmac_hex(self.salt(view).await?, value))
    }
}

/// HMAC-SHA256 of `value` under `key`, hex.
pub fn hmac_hex(key: &[u8], value: &str) -> String {
    // HMAC takes a key of any length: this cannot fail.
    let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(value.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

#[async_trait::async_trait]
impl AuthMethod for AppRole {
    fn local_storage(&self) -> LocalStorage {
        LOCAL_STORAGE
    }

    async fn handle(&self, mount: &Mount, req: &Request, check: &Check<'_>) -> Reply {
        BACKEND.handle(self, req, &req.path, Some(mount), check).await
    }

    fn describe(&self) -> BackendDoc {
        BACKEND.describe()
    }

    fn is_unauthenticated(&self, path: &str) -> bool {
        BACKEND.is_unauthenticated(path)
    }
}

/// `role/<role_name>` and what follows it.
fn role_path(rest: &str) -> String {
    format!("role/{}{rest}", name_capture("role_name"))
}

fn role_name_field() -> Field {
    Field::new(
        "role_name",
        FieldType::Str,
        "Name of the role. Must be less than 4096 bytes.",
    )
}

/// AppRole's paths.
pub static BACKEND: std::sync::LazyLock<Backend<AppRole>> = std::sync::LazyLock::new(|| {
    let secret_id = || Field::new("secret_id", FieldType::Str, "SecretID attached to the role.");
    let accessor = || Field::new("secret_id_accessor", FieldType::Str, "Accessor of the SecretID");
    let issue_fields = |p: Path<AppRole>| {
        p.field(role_name_field())
            .field(Field::new(
                "metadata",
                FieldType::Map,
                "Metadata to be tied to the SecretID (a JSON object of strings), shown in the token's metadata on login.",
            ))
            .field(Field::new(
                "cidr_list",
                FieldType::CommaList,
                "Comma separated string or list of CIDR blocks enforcing secret IDs to be used from specific set of IP addresses. If 'secret_id_bound_cidrs' is set on the role, then the list of CIDR blocks listed here should be a subset of the CIDR blocks listed on the role.",
            ))
            .field(Field::new(
                "token_bound_cidrs",
                FieldType::CommaList,
                "Comma separated string or list of CIDR blocks. If set, specifies the blocks of IP addresses which can use the returned token. Should be a subset of the token CIDR blocks listed on the role, if any.",
            ))
            .field(Field::new(
                "num_uses",
                FieldType::Int,
                "Number of times this SecretID can be used, after which the SecretID expires. Overrides secret_id_num_uses role option when supplied. May not be higher than role's secret_id_num_uses.",
            ))
            .field(Field::new(
                "ttl",
                FieldType::Duration,
                "Duration in seconds after which this SecretID expires. Overrides secret_id_ttl role option when supplied. May not be longer than role's secret_id_ttl.",
            ))
    };
    Backend::new(
        "approle",
        "Any registered Role can authenticate itself with Warden. The credentials depends on the constraints that are set on the Role. One common required credential is the 'role_id' which is a unique identifier of the Role. It can be retrieved from the 'role/<appname>/role-id' endpoint.\n\nThe default constraint configuration is 'bind_secret_id', which requires the credential 'secret_id' to be presented during login. Refer to the documentation for other types of constraints.",
        [
            Path::new("login")
                .unauthenticated()
                .field(Field::new(
                    "role_id",
                    FieldType::Str,
                    "Unique identifier of the Role. Required to be supplied when the 'bind_secret_id' constraint is set.",
                ))
                .field(Field::new("secret_id", FieldType::Str, "SecretID belong to the App role").default(""))
                .op(Update, handler!(login::login), "Log in with a role's role_id and secret_id.")
                .help("Issue a token based on the credentials supplied", "While the credential 'role_id' is required at all times, other credentials required depends on the properties App role to which the 'role_id' belongs to. The 'bind_secret_id' constraint (enabled by default) on the App role requires the 'secret_id' credential to be presented.\n\n'role_id' is fetched using the 'role/<role_name>/role-id' endpoint and 'secret_id' is fetched using the 'role/<role_name>/secret-id' endpoint."),
            Path::new("role/?")
                .op(List, handler!(role::list), "List the roles.")
                .help("Lists all the roles registered with the backend.", "The list will contain the names of the roles."),
            role::fields(Path::new(role_path("")))
                .existence(|b, r| Box::pin(role::exists(b, r)))
                .op(Read, handler!(role::read), "Read a role.")
                .op(Update, handler!(role::write), "Create or update a role.")
                .op(Delete, handler!(role::delete), "Delete a role and every secret ID issued against it.")
                .help("Register an role with the backend.", "A role can represent a service, a machine or anything that can be IDed. The set of policies on the role defines access to the role, meaning, any token with a policy set that is a superset of the policies on the role registered here will have access to the role. If a SecretID is desired to be generated against only this specific role, it can be done via 'role/<role_name>/secret-id' and 'role/<role_name>/custom-secret-id' endpoints. The properties of the SecretID created against the role and the properties of the token issued with the SecretID generated against the role, can be configured using the fields of this endpoint."),
            Path::new(role_path("/role-id"))
                .field(role_name_field())
                .field(Field::new("role_id", FieldType::Str, "Identifier of the role. Defaults to a UUID."))
                .op(Read, handler!(role::read_role_id), "Read the role's role_id.")
                .op(Update, handler!(role::write_role_id), "Set a custom role_id for the role.")
                .help("Returns the 'role_id' of the role.", "If login is performed from an role, then its 'role_id' should be presented as a credential during the login. This 'role_id' can be retrieved using this endpoint."),
            issue_fields(Path::new(role_path("/secret-id/?")))
                .op(Update, handler!(secret_id::generate), "Generate a SecretID against this role.")
                .op(List, handler!(secret_id::list), "List the accessors of the role's SecretIDs.")
                .help("Generate a SecretID against this role.", "The SecretID generated using this endpoint will be scoped to access just this role and none else. The properties of this SecretID will be based on the options set on the role. It will expire after a period defined by the 'secret_id_ttl' option on the role and/or the backend mount's maximum TTL value."),
            issue_fields(Path::new(role_path("/custom-secret-id")))
                .field(secret_id())
                .op(Update, handler!(secret_id::custom), "Assign a SecretID of choice against the role.")
                .help("Assign a SecretID of choice against the role.", "This option is not recommended unless there is a specific need to do so. This will assign a client supplied SecretID to be used to access the role. This SecretID will behave similarly to the SecretIDs generated by the backend. The properties of this SecretID will be based on the options set on the role."),
            Path::new(role_path("/secret-id/lookup/?"))
                .field(role_name_field())
                .field(secret_id())
                .op(Update, handler!(secret_id::lookup), "Read the properties of a SecretID.")
                .help("Read the properties of an issued secret_id", "This endpoint is used to read the properties of a secret_id associated to a role."),
            Path::new(role_path("/secret-id/destroy/?"))
                .field(role_name_field())
                .field(secret_id())
                .op(Update, handler!(secret_id::destroy), "Invalidate a SecretID.")
                .op(Delete, handler!(secret_id::destroy), "Invalidate a SecretID.")
                .help("Invalidate an issued secret_id", "This endpoint is used to delete the properties of a secret_id associated to a role."),
            Path::new(role_path("/secret-id-accessor/lookup/?"))
                .field(role_name_field())
                .field(accessor())
                .op(Update, handler!(secret_id::lookup_accessor), "Read the properties of a SecretID by its accessor.")
                .help("Read an issued secret_id, using its accessor", "This is particularly useful to lookup the non-expiring 'secret_id's. The list operation on the 'role/<role_name>/secret-id' endpoint will return the 'secret_id_accessor's. This endpoint can be used to read the properties of the secret. If the 'secret_id_num_uses' field in the response is 0, it represents a non-expiring 'secret_id'."),
            Path::new("tidy/secret-id")
                .op(Update, handler!(tidy::tidy), "Trigger the clean-up of expired SecretID entries.")
                .help("Trigger the clean-up of expired SecretID entries.", "SecretIDs will have expiration time attached to them. The periodic function of the backend will look for expired entries and delete them. It also removes the secret IDs of deleted roles and accessor entries whose secret ID is gone. Answers 202 at once; the work runs in the background."),
            Path::new(role_path("/secret-id-accessor/destroy/?"))
                .field(role_name_field())
                .field(accessor())
                .op(Update, handler!(secret_id::destroy_accessor), "Invalidate a SecretID by its accessor.")
                .op(Delete, handler!(secret_id::destroy_accessor), "Invalidate a SecretID by its accessor.")
                .help("Delete an issued secret_id, using its accessor", "This is particularly useful to clean-up the non-expiring 'secret_id's. The list operation on the 'role/<role_name>/secret-id' endpoint will return the 'secret_id_accessor's. This endpoint can be used to read the properties of the secret. If the 'secret_id_num_uses' field in the response is 0, it represents a non-expiring 'secret_id'."),
        ]
        .into_iter()
        // Vault's per-field role paths (a role name has no '/', so their
        // patterns are disjoint from the role's own).
        .chain(role_fields::paths())
        .collect(),
    )
});

#[cfg(test)]
mod tests;
