//! The PostgreSQL driver as it was when warden:plugin 1.0.0 was the
//! contract (frozen: driver.rs is its code from before the driver moved to
//! the SDK), with bindings generated from wit/released/1.0.0. Not built
//! into the host: the end-to-end tests register it as an external driver
//! and issue credentials with it, proving the host still serves drivers
//! built against an earlier contract. Do not update driver.rs: a
//! third-party driver built then does not change either.

wit_bindgen::generate!({ world: "database-driver", path: "../../wit/released/1.0.0" });

include!("driver.rs");
