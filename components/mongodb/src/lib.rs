//! The mongodb-database-plugin: Vault's MongoDB database driver as a Warden
//! component. Stateless: every call carries the stored connection
//! configuration (JSON); the host owns the MongoDB clients (the `mongo`
//! import) and the driver turns Vault's rules into user-management commands
//! (createUser, updateUser, dropUser). The pure logic (configuration,
//! statements, commands) lives in warden-driver-common's `mongo` module.
//!
//! Error kinds tell the engines what went wrong: a statement or role the
//! server refuses as bad input (RoleNotFound, a malformed statement) is
//! `bad-parameter`; an unreachable server or failed login is
//! `connection-failed`; any other refusal is `query-failed`. Passwords are
//! redacted from every error text.

use exports::warden::plugin::database::{Credential, Guest, NewUserRequest, UpdateUserRequest};
use std::rc::Rc;
use warden::plugin::mongo::{Client, ClientOptions};
use warden::plugin::types::Error;
use warden::plugin::{clock, crypto};
use warden_driver_common::Env;
use warden_driver_common::memo::Memo;
use warden_driver_common::mongo::{
    self as m, CreationStatement, MONGODB_DEFAULT, MongoConfig, ROLE_NOT_FOUND, Refusal, USER_NOT_FOUND,
};
use warden_driver_common::redact::redact_secrets;
use warden_driver_common::template::{Template, UsernameMetadata};

wit_bindgen::generate!({ world: "database-driver", path: "../../wit" });

struct MongoDb;

impl Guest for MongoDb {
    fn initialize(config: String, verify: bool) -> Result<String, Error> {
        let cfg = parse(&config)?;
        redact(initialize(&cfg, verify), &cfg.secrets())
    }

    fn new_user(config: String, request: NewUserRequest) -> Result<String, Error> {
        let cfg = parse(&config)?;
        let mut secrets = cfg.secrets();
        if let Credential::Password(password) = &request.credential {
            secrets.push(password.clone());
        }
        redact(new_user(&cfg, &request), &secrets)
    }

    fn new_username(config: String, request: NewUserRequest) -> Result<String, Error> {
        let cfg = parse(&config)?;
        username_for(&cfg, &request)
    }

    fn update_user(config: String, request: UpdateUserRequest) -> Result<(), Error> {
        let cfg = parse(&config)?;
        let mut secrets = cfg.secrets();
        secrets.extend(request.password.iter().map(|p| p.new_password.clone()));
        redact(update_user(&cfg, &request), &secrets)
    }

    fn delete_user(config: String, username: String, statements: Vec<String>) -> Result<(), Error> {
        let cfg = parse(&config)?;
        redact(delete_user(&cfg, &username, &statements), &cfg.secrets())
    }

    fn driver_type() -> String {
        "mongodb".into()
    }
}

export!(MongoDb);

fn initialize(cfg: &MongoConfig, verify: bool) -> Result<String, Error> {
    cfg.url().map_err(Error::BadParameter)?;
    // Like Vault, render the username template once now so a broken one
    // fails here.
    let template = cfg.username_template.as_deref().unwrap_or(MONGODB_DEFAULT);
    username(template, &UsernameMetadata::default())
        .map_err(|e| Error::BadParameter(format!("invalid username template: {e}")))?;
    if verify {
        let verifying = |e| context("failed to verify connection", e);
        connect(cfg).map_err(verifying)?.ping().map_err(verifying)?;
    }
    Ok(cfg.to_json())
}

/// The request's username: its template (or the config's, or Vault's
/// default for MongoDB) rendered.
fn username_for(cfg: &MongoConfig, request: &NewUserRequest) -> Result<String, Error> {
    let template = (request.username_template.as_deref())
        .filter(|t| !t.is_empty())
        .or(cfg.username_template.as_deref())
        .unwrap_or(MONGODB_DEFAULT);
    let metadata = UsernameMetadata {
        display_name: &request.username_config.display_name,
        role_name: &request.username_config.role_name,
    };
    username(template, &metadata).map_err(Error::BadParameter)
}

fn new_user(cfg: &MongoConfig, request: &NewUserRequest) -> Result<String, Error> {
    let statement = CreationStatement::parse(&request.creation_statements).map_err(Error::BadParameter)?;
    let Credential::Password(password) = &request.credential else {
        return Err(Error::BadParameter("unsupported credential type".into()));
    };
    let username = match &request.username {
        Some(name) if !name.is_empty() => name.clone(),
        _ => username_for(cfg, request)?,
    };
    let command = m::create_user(&username, password, &statement.roles, cfg.write_concern.as_deref());
    let client = connect(cfg)?;
    run(&client, &statement.db, &command).map_err(|e| match e {
        // A role that does not exist is the role definition's fault.
        Failure::Refused(r) if r.code == ROLE_NOT_FOUND => Error::BadParameter(format!("failed to create user: {r}")),
        other => context("failed to create user", other.into()),
    })?;
    Ok(username)
}

/// MongoDB users have no expiry, so only a password change does anything
/// (as in Vault, which also ignores custom statements for it). The user is
/// looked for in the database the connection URL names, else "admin".
fn update_user(cfg: &MongoConfig, request: &UpdateUserRequest) -> Result<(), Error> {
    if request.username.is_empty() {
        return Err(Error::BadParameter("missing username".into()));
    }
    let Some(change) = &request.password else {
        return Ok(());
    };
    if change.new_password.is_empty() {
        return Err(Error::BadParameter("missing password".into()));
    }
    let command = m::update_password(&request.username, &change.new_password, cfg.write_concern.as_deref());
    let client = connect(cfg)?;
    run(&client, &cfg.url_database(), &command).map_err(|e| context("failed to change password", e.into()))
}

/// Vault's revocation: dropUser in the database the revocation statement
/// names (`{"db": "..."}`, default "admin"); a user already gone is fine.
fn delete_user(cfg: &MongoConfig, username: &str, statements: &[String]) -> Result<(), Error> {
    let db = m::revocation_database(statements).map_err(Error::BadParameter)?;
    let command = m::drop_user(username, cfg.write_concern.as_deref());
    let client = connect(cfg)?;
    match run(&client, &db, &command) {
        Ok(()) => Ok(()),
        Err(Failure::Refused(r)) if r.code == USER_NOT_FOUND => Ok(()),
        Err(e) => Err(context("failed to drop user", e.into())),
    }
}

/// Why a command did not succeed: the host could not run it, or the server
/// refused it.
enum Failure {
    Host(Error),
    Refused(Refusal),
}

impl From<Failure> for Error {
    fn from(f: Failure) -> Error {
        match f {
            Failure::Host(e) => e,
            Failure::Refused(r) => Error::QueryFailed(r.to_string()),
        }
    }
}

fn run(client: &Client, db: &str, command: &str) -> Result<(), Failure> {
    let reply = client.run_command(db, command).map_err(Failure::Host)?;
    m::check_reply(&reply).map_err(Failure::Refused)
}

thread_local! {
    static CONFIG: Memo<MongoConfig> = Memo::default();
    static TEMPLATE: Memo<Template> = Memo::default();
}

fn parse(config: &str) -> Result<Rc<MongoConfig>, Error> {
    CONFIG.with(|memo| {
        memo.get_or_parse(config, MongoConfig::parse)
            .map_err(Error::BadParameter)
    })
}

fn connect(cfg: &MongoConfig) -> Result<Client, Error> {
    let url = cfg.url().map_err(Error::BadParameter)?;
    let options = ClientOptions {
        connect_timeout_ms: cfg.connect_timeout_ms,
        server_selection_timeout_ms: cfg.server_selection_timeout_ms,
        command_timeout_ms: cfg.socket_timeout_ms,
        max_pool_size: 0,
    };
    Client::open(&url, options)
}

fn username(template: &str, metadata: &UsernameMetadata) -> Result<String, String> {
    TEMPLATE
        .with(|memo| memo.get_or_parse(template, Template::parse))?
        .render(metadata, &mut Host)
}

/// The host's randomness, clock and hashing, for the shared logic.
struct Host;

impl Env for Host {
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

fn map_message(e: Error, f: impl FnOnce(String) -> String) -> Error {
    match e {
        Error::ConnectionFailed(m) => Error::ConnectionFailed(f(m)),
        Error::BadParameter(m) => Error::BadParameter(f(m)),
        Error::QueryFailed(m) => Error::QueryFailed(f(m)),
        Error::NotPermitted(m) => Error::NotPermitted(f(m)),
        Error::Other(m) => Error::Other(f(m)),
    }
}

fn context(prefix: &str, e: Error) -> Error {
    map_message(e, |m| format!("{prefix}: {m}"))
}

/// Replaces secrets in error text, as Vault's error-sanitising middleware
/// does: a server or driver error can echo the connection string.
/// Only whole occurrences: a short password leaves the words around it
/// readable (`warden_driver_common::redact`).
fn redact<T>(result: Result<T, Error>, secrets: &[String]) -> Result<T, Error> {
    result.map_err(|e| {
        map_message(e, |m| {
            let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
            redact_secrets(&m, &secrets, "[password]")
        })
    })
}
