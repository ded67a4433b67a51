//! The database engine's paths, declared once: patterns, fields,
//! operations and help, as Vault's database backend declares them. The
//! handlers live in the path_*.rs module of each.

use super::{DatabaseEngine, path_config_connection as config, path_creds_create as creds, path_roles as roles};
use super::{path_cluster as cluster, path_cluster_database as cluster_db};
use super::{path_rotate as rotate, path_static_roles as statics};
use crate::framework::{Backend, Field, FieldType, Path, name_capture};
use crate::handler;
use crate::logical::Operation::{Create, Delete, List, Read, Update};
use std::sync::LazyLock;

const HELP: &str = "The database backend supports using many different databases as secret backends, including but not limited to: PostgreSQL, MySQL/MariaDB and MongoDB. Each database type is a WebAssembly driver that Warden runs sandboxed.

After mounting this backend, configure it using the endpoints within the \"database/config/\" path.";

pub static BACKEND: LazyLock<Backend<DatabaseEngine>> = LazyLock::new(|| {
    Backend::new(
        "database",
        HELP,
        vec![
            Path::new("config/?")
                .op(List, handler!(config::list), "List the configured connections.")
                .help(CONFIG_SYN, CONFIG_DESC),
            Path::new(format!("config/{}", name_capture("name")))
                .field(Field::new("name", FieldType::Str, "Name of this database connection"))
                .field(Field::new("plugin_name", FieldType::Str, "The name of a builtin or previously registered plugin known to Warden. This endpoint will create an instance of that plugin type."))
                .field(Field::new("plugin_version", FieldType::Str, "The version of the plugin to use."))
                .field(Field::new("verify_connection", FieldType::Bool, "If true, the connection details are verified by actually connecting to the database. Defaults to true.").default(true))
                .field(Field::new("allowed_roles", FieldType::CommaList, "Comma separated string or array of the role names allowed to get creds from this database connection. If empty no roles are allowed. If \"*\" all roles are allowed."))
                .field(Field::new("root_rotation_statements", FieldType::StrList, "Specifies the database statements to be executed to rotate the root user's credentials."))
                .field(Field::new("password_policy", FieldType::Str, "Password policy to use when generating passwords."))
                .existence(|b, r| Box::pin(config::exists(b, r)))
                .op(Read, handler!(config::read), "Read a connection's configuration (without its secrets).")
                .op(Create, handler!(config::write), "Configure a connection to a database.")
                .op(Update, handler!(config::write), "Configure a connection to a database.")
                .op(Delete, handler!(config::delete), "Delete a connection configuration.")
                .help(CONFIG_SYN, CONFIG_DESC),
            Path::new("cluster/?")
                .op(List, handler!(cluster::list), "List the names of all clusters that have been registered so far.")
                .help(CLUSTER_LIST_SYN, CLUSTER_LIST_DESC),
            Path::new(format!("cluster/{}/?", name_capture("cluster")))
                .field(Field::new("cluster", FieldType::Str, "Name of the cluster"))
                .field(Field::new("plugin_name", FieldType::Str, "The plugin that talks to the cluster: postgresql-database-plugin (the default) or a MySQL plugin name."))
                .field(Field::new("database", FieldType::Str, "Name of the database to connect with"))
                .field(Field::new("host", FieldType::Str, "Host name of the writer node in cluster"))
                .field(Field::new("port", FieldType::Int, "Port number to be used for database connections"))
                .field(Field::new("username", FieldType::Str, "Username that can be used to connect with the cluster"))
                .field(Field::new("password", FieldType::Str, "Password to authenticate the database connection"))
                .field(Field::new("ssl_mode", FieldType::Str, "Whether or not to use SSL"))
                .field(Field::new("max_open_connections", FieldType::Int, "Maximum number of connections to create with the database"))
                .field(Field::new("max_idle_connections", FieldType::Int, "Maximum number of idle connections to maintain in pool"))
                .field(Field::new("max_connection_lifetime", FieldType::Duration, "Maximum time duration to keep an idle connection alive"))
                .existence(|b, r| Box::pin(cluster::exists(b, r)))
                .op(Read, handler!(cluster::read), "Read a cluster's configuration, both passwords included.")
                .op(Create, handler!(cluster::write), "Register a cluster: its password is rotated and a management role created.")
                .op(Update, handler!(cluster::write), "Update a registered cluster's settings (and enable it again).")
                .op(Delete, handler!(cluster::delete), "Disable a cluster; its configuration is kept.")
                .op(List, handler!(cluster_db::list), "List the databases registered in the cluster, active or disabled.")
                .help(CLUSTER_SYN, CLUSTER_DESC),
            Path::new(format!("cluster/{}/database/{}", name_capture("cluster"), name_capture("database")))
                .field(Field::new("cluster", FieldType::Str, "Name of the cluster in which the database is created"))
                .field(Field::new("database", FieldType::Str, "Name of the database to create"))
                .field(Field::new("owner_role", FieldType::Str, "The role that owns the database and everything the issued logins create in it (default: <database>_owner). Warden creates and manages it."))
                .field(Field::new("allowed_roles", FieldType::CommaList, "Comma separated string or array of the role names allowed to get creds from the database's connection. If empty no roles are allowed. If \"*\" all roles are allowed."))
                .existence(|b, r| Box::pin(cluster_db::exists(b, r)))
                .op(Read, handler!(cluster_db::read), "Read a tenant database's settings.")
                .op(Create, handler!(cluster_db::write), "Create a tenant database in the cluster, with its owner role and its connection.")
                .op(Update, handler!(cluster_db::write), "Update a tenant database's allowed roles (and enable it again).")
                .op(Delete, handler!(cluster_db::delete), "Disable a tenant database; the database and its data stay.")
                .help(CLUSTER_DB_SYN, CLUSTER_DB_DESC),
            Path::new(format!("reset/{}", name_capture("name")))
                .field(Field::new("name", FieldType::Str, "Name of this database connection"))
                .op(Update, handler!(rotate::reset), "Close the connection and start it again from its stored configuration.")
                .help("Resets a database plugin.", "This path resets the database connection by closing the existing database plugin instance and running a new one."),
            Path::new(format!("rotate-root/{}", name_capture("name")))
                .field(Field::new("name", FieldType::Str, "Name of this database connection"))
                .op(Update, handler!(rotate::rotate_root), "Rotate the connection's root credentials.")
                .help("Request to rotate the root credentials for a certain database connection.", "This path attempts to rotate the root credentials for the given database. The new password is stored and never returned."),
            Path::new(format!("rotate-role/{}", name_capture("name")))
                .field(Field::new("name", FieldType::Str, "Name of the static role"))
                .op(Update, handler!(rotate::rotate_role), "Rotate a static role's credentials now.")
                .help("Request to rotate the credentials for a static user account.", "This path attempts to rotate the credentials for the given static role now."),
            Path::new("roles/?")
                .op(List, handler!(roles::list), "List the dynamic roles.")
                .help(ROLES_SYN, ROLES_DESC),
            Path::new(format!("roles/{}", name_capture("name")))
                .field(Field::new("name", FieldType::Str, "Name of the role."))
                .field(Field::new("db_name", FieldType::Str, "Name of the database this role acts on."))
                .field(Field::new("creation_statements", FieldType::StrList, "Specifies the database statements executed to create and configure a user. See the plugin's API page for more information on support and formatting for this parameter."))
                .field(Field::new("revocation_statements", FieldType::StrList, "Specifies the database statements to be executed to revoke a user."))
                .field(Field::new("renew_statements", FieldType::StrList, "Specifies the database statements to be executed to renew a user."))
                .field(Field::new("rollback_statements", FieldType::StrList, "Specifies the database statements to be executed to rollback a create operation in the event of an error."))
                .field(Field::new("default_ttl", FieldType::Duration, "Default ttl for role."))
                .field(Field::new("max_ttl", FieldType::Duration, "Maximum time a credential is valid for"))
                .field(Field::new("credential_type", FieldType::Str, "The type of credential to manage. Options include: 'password', 'rsa_private_key', 'client_certificate'. Defaults to 'password'.").default("password"))
                .field(Field::new("credential_config", FieldType::Map, "The configuration for the given credential_type."))
                .existence(|b, r| Box::pin(roles::exists(b, r)))
                .op(Read, handler!(roles::read), "Read a role.")
                .op(Create, handler!(roles::write), "Create a role.")
                .op(Update, handler!(roles::write), "Update a role.")
                .op(Delete, handler!(roles::delete), "Delete a role.")
                .help(ROLES_SYN, ROLES_DESC),
            Path::new(format!("creds/{}", name_capture("name")))
                .field(Field::new("name", FieldType::Str, "Name of the role."))
                .op(Read, handler!(creds::read), "Request database credentials for a certain role.")
                .help("Request database credentials for a certain role.", "This path reads database credentials for a certain role. The database credentials will be generated on demand and will be automatically revoked when the lease is up."),
            Path::new("static-roles/?")
                .op(List, handler!(statics::list), "List the static roles.")
                .help(STATIC_SYN, STATIC_DESC),
            Path::new(format!("static-roles/{}", name_capture("name")))
                .field(Field::new("name", FieldType::Str, "Name of the role."))
                .field(Field::new("db_name", FieldType::Str, "Name of the database this role acts on."))
                .field(Field::new("username", FieldType::Str, "Name of the static user account for Warden to manage. Requires \"rotation_period\" or \"rotation_schedule\" to be specified"))
                .field(Field::new("rotation_period", FieldType::Duration, "Period for automatic credential rotation of the given username. Not valid unless used with \"username\". Mutually exclusive with \"rotation_schedule.\""))
                .field(Field::new("rotation_schedule", FieldType::Str, "Schedule for automatic credential rotation of the given username. Mutually exclusive with \"rotation_period.\""))
                .field(Field::new("rotation_window", FieldType::Duration, "The window of time in which rotations are allowed to occur starting from a given \"rotation_schedule\". Requires \"rotation_schedule\" to be specified"))
                .field(Field::new("rotation_statements", FieldType::StrList, "Specifies the database statements to be executed to rotate the accounts credentials. Not every plugin type will support this functionality. See the plugin's API page for more information on support and formatting for this parameter."))
                .field(Field::new("credential_type", FieldType::Str, "The type of credential to manage. Options include: 'password'. Defaults to 'password'."))
                .field(Field::new("credential_config", FieldType::Map, "The configuration for the given credential_type."))
                .existence(|b, r| Box::pin(statics::exists(b, r)))
                .op(Read, handler!(statics::read), "Read a static role.")
                .op(Create, handler!(statics::write), "Create a static role.")
                .op(Update, handler!(statics::write), "Update a static role.")
                .op(Delete, handler!(statics::delete), "Delete a static role.")
                .help(STATIC_SYN, STATIC_DESC),
            Path::new(format!("static-creds/{}", name_capture("name")))
                .field(Field::new("name", FieldType::Str, "Name of the static role."))
                .op(Read, handler!(statics::creds), "Request database credentials for a certain static role.")
                .help("Request database credentials for a certain static role. These credentials are rotated periodically.", "This path reads database credentials for a certain static role. The database credentials are rotated periodically according to their configuration, and will return the same password until they are rotated."),
        ],
    )
});

const CONFIG_SYN: &str = "Configure connection details to a database plugin.";
const CONFIG_DESC: &str = "This path configures the connection details used to connect to a particular database. This path runs the provided plugin name and passes the configured connection details to the plugin. See the documentation for the plugin specified for a full list of accepted connection details.

In addition to the database specific connection details, this endpoint also accepts:

  * \"plugin_name\" (required) - The name of a builtin or previously registered plugin known to Warden.

  * \"allowed_roles\" (optional) - An array of strings indicating the roles, or glob patterns of roles, allowed to use this connection.

  * \"verify_connection\" (default: true) - A boolean value denoting if the plugin should verify it is able to connect to the database using the provided connection details.";
const CLUSTER_LIST_SYN: &str = "List the names of all clusters that have been registered so far";
const CLUSTER_LIST_DESC: &str = "List clusters path returns a list of all registered clusters, active or disabled. Note that the list contains no information about whether the cluster is active or not.";
const CLUSTER_SYN: &str = "Write, Read and Delete cluster configuration.";
const CLUSTER_DESC: &str = "Registering a cluster for the first time will automatically change the password provided in the request. Warden will also create a new role in the cluster and send back the role name in response. It is strongly recommended that you do not make any change to the root or management role once the cluster has been registered.

Reading from this endpoint should be protected since reading cluster configuration will send back the password for both root and management users.

Deleting a cluster has no effect on the actual resource. Warden still retains the configuration for a deleted cluster but the cluster is marked as 'disabled'.";
const CLUSTER_DB_SYN: &str = "Write, Read and Delete database configuration.";
const CLUSTER_DB_DESC: &str = "Writing to this endpoint creates a database with the matching name in the cluster, if missing, owned by an owner role that Warden creates and manages; only the owner and the logins Warden issues for the database may connect to it. It also creates the connection config/<cluster>.<database>, so roles and creds/ work on it: every login issued through it gets the owner's rights in that database and nothing elsewhere. It is not possible to write to a database in a cluster that is marked 'disabled'.

Deleting a database disables it: no more logins are issued or renewed for it; the database and its data stay.";
const ROLES_SYN: &str = "Manage the roles that can be created with this backend.";
const ROLES_DESC: &str = "This path lets you manage the roles that can be created with this backend: the connection, the statements that create, revoke, renew and roll back a user, and the TTLs of its credentials.";
const STATIC_SYN: &str = "Manage the static roles that can be created with this backend.";
const STATIC_DESC: &str = "This path lets you manage the static roles: each manages the password of one existing database user, rotated on rotation_period or on a cron rotation_schedule.";
