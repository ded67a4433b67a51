//! A database driver that misbehaves on request, for the host's tests only:
//! it proves that a runaway, trapping or memory-hungry component is stopped
//! by the sandbox (fuel or epoch deadline, trap handling, memory limit) and
//! leaves the host serving. The role name picks the misbehaviour.

use core::hint::black_box;

use exports::warden::plugin::database::{Error, Guest, NewUserRequest, UpdateUserRequest};

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
