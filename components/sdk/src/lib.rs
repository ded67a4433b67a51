//! The Warden driver SDK: write a database driver as a small Rust crate,
//! build it with `cargo build --release --target wasm32-wasip2`, and
//! register the `.wasm` file in Warden's plugin catalog.
//!
//! A driver implements [`Driver`] (parse its configuration, connect, create,
//! update and drop users) and calls [`export_driver!`]. The SDK does the
//! rest of what every Vault database plugin repeats: it parses each call's
//! configuration once per instance ([`Driver::parse`] is memoised), picks
//! and renders the username template (the role's, the connection's or the
//! driver's default), checks the template at `initialize`, and redacts the
//! configuration's secrets and the new password from every error, as
//! Vault's error-sanitising middleware does.
//!
//! The host's capabilities are the modules re-exported here: [`sql`],
//! [`mongo`], [`tcp`] (with the buffered [`net::Conn`] over it), [`storage`],
//! [`log`]; what they may reach is the connection's configured host and
//! nothing else. Vault's shared logic is [`common`].

#![deny(unsafe_code)]

pub mod net;

/// The contract's bindings, generated from wit/host.wit.
#[allow(unsafe_code, reason = "wit-bindgen's generated glue")]
pub mod bindings {
    wit_bindgen::generate!({
        world: "database-driver",
        path: "../../wit",
        pub_export_macro: true,
        export_macro_name: "export_database",
        default_bindings_module: "warden_driver_sdk::bindings",
    });
}

pub use bindings::exports::warden::plugin::database::{
    ChangeExpiration, ChangePassword, Credential, NewUserRequest, UpdateUserRequest,
};
pub use bindings::warden::plugin::types::Error;
pub use bindings::warden::plugin::{clock, crypto, log, mongo, sql, storage, tcp};
pub use warden_driver_common as common;

use common::Env;
use common::memo::Memo;
use common::redact::redact_secrets;
use common::template::{Template, UsernameMetadata};
use std::any::Any;

/// A database driver. Every call carries the stored connection
/// configuration; the host keeps connection pools and instances, so a
/// driver holds no state of its own.
pub trait Driver {
    /// The connection configuration, parsed from the JSON the host passes
    /// (the connection's fields, plus `plugin_name`).
    type Config: 'static;

    /// The driver's type name, as Vault's `Type()` ("redis").
    const TYPE: &'static str;

    /// Parse and check a configuration; the error text is shown as is.
    fn parse(config: &str) -> Result<Self::Config, String>;

    /// The configuration's secret values, redacted from every error.
    fn secrets(config: &Self::Config) -> Vec<String>;

    /// The configuration's own `username_template`, if it has one.
    fn username_template(config: &Self::Config) -> Option<&str>;

    /// The template used when neither the role nor the configuration names
    /// one (see `common::template` for Vault's defaults).
    fn default_username_template(config: &Self::Config) -> &str;

    /// Check the configuration (and connect when `verify`); return the
    /// configuration JSON to store.
    fn initialize(config: &Self::Config, verify: bool) -> Result<String, Error>;

    /// Create `username` as the request asks.
    fn new_user(config: &Self::Config, username: &str, request: &NewUserRequest) -> Result<(), Error>;

    /// Change a user's password or expiration (rotate-root, static roles).
    fn update_user(config: &Self::Config, request: &UpdateUserRequest) -> Result<(), Error>;

    /// Drop a user; empty `statements` means the driver's default revocation.
    fn delete_user(config: &Self::Config, username: &str, statements: &[String]) -> Result<(), Error>;
}

/// Export a [`Driver`] as the component's `database` interface.
#[macro_export]
macro_rules! export_driver {
    ($driver:ty) => {
        const _: () = {
            struct Exported;
            impl $crate::bindings::exports::warden::plugin::database::Guest for Exported {
                fn initialize(config: String, verify: bool) -> Result<String, $crate::Error> {
                    $crate::glue::initialize::<$driver>(&config, verify)
                }
                fn new_username(config: String, request: $crate::NewUserRequest) -> Result<String, $crate::Error> {
                    $crate::glue::new_username::<$driver>(&config, &request)
                }
                fn new_user(config: String, request: $crate::NewUserRequest) -> Result<String, $crate::Error> {
                    $crate::glue::new_user::<$driver>(&config, &request)
                }
                fn update_user(config: String, request: $crate::UpdateUserRequest) -> Result<(), $crate::Error> {
                    $crate::glue::update_user::<$driver>(&config, &request)
                }
                fn delete_user(config: String, username: String, statements: Vec<String>) -> Result<(), $crate::Error> {
                    $crate::glue::delete_user::<$driver>(&config, &username, &statements)
                }
                fn driver_type() -> String {
                    <$driver as $crate::Driver>::TYPE.to_string()
                }
            }
    $crate::bindings::export_database!(Exported with_types_in $crate::bindings);
        };
    };
}

/// What [`export_driver!`] calls: the shared half of every export.
#[doc(hidden)]
pub mod glue {
    use super::*;

    pub fn initialize<D: Driver>(json: &str, verify: bool) -> Result<String, Error> {
        with_config::<D, _>(json, |cfg| {
            // Like Vault, render the template once now so a broken one fails here.
            let template = D::username_template(cfg).unwrap_or(D::default_username_template(cfg));
            render_username(template, &UsernameMetadata::default())
                .map_err(|e| Error::BadParameter(format!("invalid username template: {e}")))?;
            redact(D::initialize(cfg, verify), &D::secrets(cfg))
        })
    }

    pub fn new_username<D: Driver>(json: &str, request: &NewUserRequest) -> Result<String, Error> {
        with_config::<D, _>(json, |cfg| username_for::<D>(cfg, request))
    }

    pub fn new_user<D: Driver>(json: &str, request: &NewUserRequest) -> Result<String, Error> {
        with_config::<D, _>(json, |cfg| {
            let username = match &request.username {
                Some(name) if !name.is_empty() => name.clone(),
                _ => username_for::<D>(cfg, request)?,
            };
            let mut secrets = D::secrets(cfg);
            if let Credential::Password(password) = &request.credential {
                secrets.push(password.clone());
            }
            redact(D::new_user(cfg, &username, request), &secrets)?;
            Ok(username)
        })
    }

    pub fn update_user<D: Driver>(json: &str, request: &UpdateUserRequest) -> Result<(), Error> {
        with_config::<D, _>(json, |cfg| {
            let mut secrets = D::secrets(cfg);
            secrets.extend(request.password.iter().map(|p| p.new_password.clone()));
            redact(D::update_user(cfg, request), &secrets)
        })
    }

    pub fn delete_user<D: Driver>(json: &str, username: &str, statements: &[String]) -> Result<(), Error> {
        with_config::<D, _>(json, |cfg| {
            redact(D::delete_user(cfg, username, statements), &D::secrets(cfg))
        })
    }

    /// The request's username: the role's template, else the
    /// configuration's, else the driver's default, rendered.
    fn username_for<D: Driver>(cfg: &D::Config, request: &NewUserRequest) -> Result<String, Error> {
        let template = (request.username_template.as_deref())
            .filter(|t| !t.is_empty())
            .or(D::username_template(cfg))
            .unwrap_or(D::default_username_template(cfg));
        let metadata = UsernameMetadata {
            display_name: &request.username_config.display_name,
            role_name: &request.username_config.role_name,
        };
        render_username(template, &metadata).map_err(Error::BadParameter)
    }

    thread_local! {
        /// The last configuration parsed: an instance serves one connection
        /// call after call, so this saves most of a call's work.
        static CONFIG: Memo<Box<dyn Any>> = Memo::default();
    }

    fn with_config<D: Driver, T>(json: &str, f: impl FnOnce(&D::Config) -> Result<T, Error>) -> Result<T, Error> {
        let parse = |j: &str| D::parse(j).map(|c| Box::new(c) as Box<dyn Any>);
        let parsed = CONFIG
            .with(|m| m.get_or_parse(json, parse))
            .map_err(Error::BadParameter)?;
        match parsed.downcast_ref::<D::Config>() {
            Some(cfg) => f(cfg),
            // Only if one component exported two drivers: parse afresh.
            None => f(&D::parse(json).map_err(Error::BadParameter)?),
        }
    }
}

/// The password a request's credential carries, or Vault's refusal of
/// other credential types.
pub fn password(credential: &Credential) -> Result<&str, Error> {
    match credential {
        Credential::Password(p) => Ok(p),
        _ => Err(Error::BadParameter("unsupported credential type".into())),
    }
}

thread_local! {
    static TEMPLATE: Memo<Template> = Memo::default();
}

/// Render a username template (memoised parse) with the host's
/// randomness and clock.
pub fn render_username(template: &str, metadata: &UsernameMetadata) -> Result<String, String> {
    TEMPLATE
        .with(|m| m.get_or_parse(template, Template::parse))?
        .render(metadata, &mut HostEnv)
}

/// The host's randomness, clock and hashing, for the shared logic.
pub struct HostEnv;

impl Env for HostEnv {
    fn random_bytes(&mut self, len: usize) -> Vec<u8> {
        crypto::random_bytes(u32::try_from(len).unwrap_or(u32::MAX))
    }
    fn now(&self) -> (i64, u32) {
        clock::now()
    }
    fn sha256(&self, data: &[u8]) -> Vec<u8> {
        crypto::sha256(data)
    }
}

/// The pool settings of a SQL configuration, for `sql::Connection::open`.
pub fn pool_options(cfg: &common::sql_config::SqlConfig) -> sql::PoolOptions {
    sql::PoolOptions {
        max_open: cfg.max_open,
        max_idle: cfg.max_idle,
        max_lifetime_seconds: cfg.max_lifetime_seconds,
    }
}

/// The host's pool for a rendered postgres:// or mysql:// URL, with the
/// configuration's pool settings ("unable to get connection: ..." if not).
pub fn connect_sql(url: &str, cfg: &common::sql_config::SqlConfig) -> Result<sql::Connection, Error> {
    sql::Connection::open(url, pool_options(cfg)).map_err(|e| context("unable to get connection", e))
}

/// Vault's check when a configuration is written with verify_connection:
/// connect and log in afresh ("error verifying connection: ..." if not).
pub fn verify_sql(url: &str, cfg: &common::sql_config::SqlConfig) -> Result<(), Error> {
    let verifying = |e| context("error verifying connection", e);
    sql::Connection::open(url, pool_options(cfg))
        .map_err(verifying)?
        .ping()
        .map_err(verifying)
}

/// A SQL user's creation, rendered: what to run and what to undo.
pub struct SqlCreation {
    pub statements: Vec<String>,
    pub rollback: Vec<String>,
}

/// Vault's SQL creation statements for `username`, with `{{name}}`,
/// `{{username}}`, `{{password}}` and `{{expiration}}` filled in, split on
/// `;` (a statement with a body such as `DO ... END` kept whole when
/// `keep_bodies`); the role's rollback statements likewise. None to run is
/// Vault's "empty creation statements".
pub fn sql_creation(username: &str, request: &NewUserRequest, keep_bodies: bool) -> Result<SqlCreation, Error> {
    let empty = || Error::BadParameter("empty creation statements".into());
    let password = password(&request.credential)?;
    let expiration = common::time::format(common::time::EXPIRATION_LAYOUT, request.expiration, 0);
    let vars = [
        ("name", username),
        ("username", username),
        ("password", password),
        ("expiration", &expiration),
    ];
    let statements = common::statements::prepare(&request.creation_statements, &vars, keep_bodies);
    if statements.is_empty() {
        return Err(empty());
    }
    let rollback = common::statements::prepare(&request.rollback_statements, &vars, keep_bodies);
    Ok(SqlCreation { statements, rollback })
}

/// An error's text.
pub fn message(e: &Error) -> &str {
    match e {
        Error::ConnectionFailed(m)
        | Error::BadParameter(m)
        | Error::QueryFailed(m)
        | Error::NotPermitted(m)
        | Error::Other(m) => m,
    }
}

/// The same kind of error with its text changed.
pub fn map_message(e: Error, f: impl FnOnce(String) -> String) -> Error {
    match e {
        Error::ConnectionFailed(m) => Error::ConnectionFailed(f(m)),
        Error::BadParameter(m) => Error::BadParameter(f(m)),
        Error::QueryFailed(m) => Error::QueryFailed(f(m)),
        Error::NotPermitted(m) => Error::NotPermitted(f(m)),
        Error::Other(m) => Error::Other(f(m)),
    }
}

/// `prefix: message`, as Go's `fmt.Errorf("prefix: %w", err)`.
pub fn context(prefix: &str, e: Error) -> Error {
    map_message(e, |m| format!("{prefix}: {m}"))
}

/// Replaces whole occurrences of secrets in an error's text with
/// `[password]`: a database error can echo a statement or a URL.
pub fn redact<T>(result: Result<T, Error>, secrets: &[String]) -> Result<T, Error> {
    result.map_err(|e| {
        map_message(e, |m| {
            let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
            redact_secrets(&m, &secrets, "[password]")
        })
    })
}
