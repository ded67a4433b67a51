//! The PostgreSQL driver's own code (components/postgres/src/driver.rs) with
//! bindings generated from the oldest contract this host must still serve,
//! warden:plugin 1.0.0 (wit/released/1.0.0). Not built into the host: the
//! end-to-end tests register it as an external driver and issue credentials
//! with it. When the PostgreSQL driver starts using a newer contract's
//! functions, this crate keeps a frozen copy of driver.rs instead.

wit_bindgen::generate!({ world: "database-driver", path: "../../wit/released/1.0.0" });

include!("../../postgres/src/driver.rs");
