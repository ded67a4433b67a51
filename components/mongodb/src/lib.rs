//! The mongodb-database-plugin: Vault's MongoDB database driver as a Warden
//! component. Stateless: every call carries the stored connection
//! configuration (JSON); the host owns the MongoDB clients (the `mongo`
//! import) and the driver turns Vault's rules into user-management commands
//! (createUser, updateUser, dropUser). The pure logic (configuration,
//! statements, commands) lives in warden-driver-common's `mongo` module;
//! the driver SDK (components/sdk) does the export glue, username templates
//! and error redaction.
//!
//! Error kinds tell the engines what went wrong: a statement or role the
//! server refuses as bad input (RoleNotFound, a malformed statement) is
//! `bad-parameter`; an unreachable server or failed login is
//! `connection-failed`; any other refusal is `query-failed`. Passwords are
//! redacted from every error text.

use warden_driver_sdk::common::mongo::{
    self as m, CreationStatement, MONGODB_DEFAULT, MongoConfig, ROLE_NOT_FOUND, Refusal, USER_NOT_FOUND,
};
use warden_driver_sdk::mongo::{Client, ClientOptions};
use warden_driver_sdk::{Driver, Error, NewUserRequest, UpdateUserRequest, context, export_driver, password};

struct MongoDb;

impl Driver for MongoDb {
    type Config = MongoConfig;
    const TYPE: &'static str = "mongodb";

    fn parse(config: &str) -> Result<MongoConfig, String> {
        MongoConfig::parse(config)
    }

    fn secrets(cfg: &MongoConfig) -> Vec<String> {
        cfg.secrets()
    }

    fn username_template(cfg: &MongoConfig) -> Option<&str> {
        cfg.username_template.as_deref()
    }

    fn default_username_template(_: &MongoConfig) -> &str {
        MONGODB_DEFAULT
    }

    fn initialize(cfg: &MongoConfig, verify: bool) -> Result<String, Error> {
        cfg.url().map_err(Error::BadParameter)?;
        if verify {
            let verifying = |e| context("failed to verify connection", e);
            connect(cfg).map_err(verifying)?.ping().map_err(verifying)?;
        }
        Ok(cfg.to_json())
    }

    fn new_user(cfg: &MongoConfig, username: &str, request: &NewUserRequest) -> Result<(), Error> {
        new_user(cfg, username, request)
    }

    fn update_user(cfg: &MongoConfig, request: &UpdateUserRequest) -> Result<(), Error> {
        update_user(cfg, request)
    }

    fn delete_user(cfg: &MongoConfig, username: &str, statements: &[String]) -> Result<(), Error> {
        delete_user(cfg, username, statements)
    }
}

export_driver!(MongoDb);

fn new_user(cfg: &MongoConfig, username: &str, request: &NewUserRequest) -> Result<(), Error> {
    let statement = CreationStatement::parse(&request.creation_statements).map_err(Error::BadParameter)?;
    let password = password(&request.credential)?;
    let command = m::create_user(username, password, &statement.roles, cfg.write_concern.as_deref());
    let client = connect(cfg)?;
    run(&client, &statement.db, &command).map_err(|e| match e {
        // A role that does not exist is the role definition's fault.
        Failure::Refused(r) if r.code == ROLE_NOT_FOUND => Error::BadParameter(format!("failed to create user: {r}")),
        other => context("failed to create user", other.into()),
    })
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
