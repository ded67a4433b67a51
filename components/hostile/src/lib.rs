//! A database driver that misbehaves on request, for the host's tests only:
//! it proves that a runaway, trapping, memory-hungry, deeply recursing,
//! import-hammering or overreaching component is stopped by the sandbox
//! (epoch deadline, trap handling, memory and stack limits, the grant, the
//! host's size limits) and leaves the host serving. The role name picks the
//! misbehaviour: loop, trap, bomb, recurse, huge, hammer, sneak, tunnel.

use core::hint::black_box;

use exports::warden::plugin::database::{Error, Guest, NewUserRequest, UpdateUserRequest};
use warden::plugin::crypto;
use warden::plugin::sql::{Connection, PoolOptions};
use warden::plugin::tcp::{self, ConnectOptions};

wit_bindgen::generate!({ world: "database-driver", path: "../../wit" });

struct Hostile;

impl Guest for Hostile {
    fn initialize(config: String, _verify: bool) -> Result<String, Error> {
        Ok(config)
    }

    fn new_username(_config: String, request: NewUserRequest) -> Result<String, Error> {
        Ok(format!("hostile-{}", request.username_config.role_name))
    }

    fn new_user(_config: String, request: NewUserRequest) -> Result<String, Error> {
        let role = request.username_config.role_name;
        if role.contains("loop") {
            spin_forever()
        } else if role.contains("trap") {
            unreachable!("hostile driver asked to trap")
        } else if role.contains("bomb") {
            hoard_memory()
        } else if role.contains("recurse") {
            Ok(format!("depth-{}", recurse(black_box(1))))
        } else if role.contains("huge") {
            // 32 MiB of username: within the memory limit, far beyond any
            // name a database takes.
            Ok("x".repeat(32 << 20))
        } else if role.contains("hammer") {
            hammer_imports()
        } else if role.contains("sneak") {
            // A database the connection was not configured for.
            let options = PoolOptions {
                max_open: 1,
                max_idle: 1,
                max_lifetime_seconds: 0,
            };
            Connection::open("postgresql://u:p@192.0.2.1:5432/x", options)?;
            Ok("sneaked-in".into())
        } else if role.contains("tunnel") {
            // A raw TCP connection to a host the configuration does not name.
            let options = ConnectOptions {
                connect_timeout_ms: 1000,
                io_timeout_ms: 1000,
                tls: None,
            };
            tcp::Connection::connect("192.0.2.1", 6379, &options)?;
            Ok("tunnelled-out".into())
        } else {
            Ok("hostile-user".into())
        }
    }

    fn update_user(_config: String, _request: UpdateUserRequest) -> Result<(), Error> {
        Ok(())
    }

    fn delete_user(_config: String, _username: String, _statements: Vec<String>) -> Result<(), Error> {
        Ok(())
    }

    fn driver_type() -> String {
        "hostile".into()
    }
}

/// Never returns; black_box keeps the optimiser from proving the loop useless.
fn spin_forever() -> ! {
    let mut n = 0u64;
    loop {
        n = black_box(n.wrapping_add(1));
    }
}

/// Recurses without end (each frame keeps a buffer alive so the optimiser
/// cannot turn it into a loop) until the stack limit traps.
#[expect(
    unconditional_recursion,
    reason = "the misbehaviour under test: recursion until the stack traps"
)]
fn recurse(depth: u64) -> u64 {
    let frame = black_box([depth; 32]);
    recurse(black_box(frame[depth as usize % 32] + 1)) + frame[0]
}

/// Calls a host import (1 MiB of random bytes) as fast as it can, forever:
/// the deadline must stop it although most of its time is in the host.
fn hammer_imports() -> ! {
    loop {
        black_box(crypto::random_bytes(1 << 20));
    }
}

/// Grows memory 1 MiB at a time until the host's limit makes an allocation
/// fail, which aborts (traps). Every page is written so none stays lazy.
fn hoard_memory() -> ! {
    const CHUNK: usize = 1 << 20;
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut chunk = vec![0u8; CHUNK];
        for byte in chunk.iter_mut().step_by(4096) {
            *byte = 1;
        }
        hoard.push(black_box(chunk));
    }
}

export!(Hostile);
