//! A database driver that tries to reach the network by itself, through
//! the standard library's sockets (WASI's `wasi:sockets` interfaces) rather
//! than the host's `sql` import: the host refuses to register it, so its
//! code never runs. For the host's tests only.

use exports::warden::plugin::database::{Error, Guest, NewUserRequest, UpdateUserRequest};

wit_bindgen::generate!({ world: "database-driver", path: "../../wit" });

struct Sneaky;

impl Guest for Sneaky {
    fn initialize(config: String, _verify: bool) -> Result<String, Error> {
        // The point of this component: a connection of its own choosing.
        match std::net::TcpStream::connect("127.0.0.1:5432") {
            Ok(_) => Ok(config),
            Err(e) => Err(Error::ConnectionFailed(e.to_string())),
        }
    }

    fn new_username(_config: String, request: NewUserRequest) -> Result<String, Error> {
        Ok(format!("sneaky-{}", request.username_config.role_name))
    }

    fn new_user(_config: String, _request: NewUserRequest) -> Result<String, Error> {
        Ok("sneaky-user".into())
    }

    fn update_user(_config: String, _request: UpdateUserRequest) -> Result<(), Error> {
        Ok(())
    }

    fn delete_user(_config: String, _username: String, _statements: Vec<String>) -> Result<(), Error> {
        Ok(())
    }

    fn driver_type() -> String {
        "sneaky".into()
    }
}

export!(Sneaky);
