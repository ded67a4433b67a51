//! The postgresql-database-plugin: Vault's PostgreSQL database driver as a
//! Warden component. Stateless: every call carries the stored connection
//! configuration (JSON) and the host keeps the connection pools, so the
//! driver only turns Vault's rules into SQL. The pure logic lives in
//! warden-driver-common; this crate wires it to the host's imports.

wit_bindgen::generate!({ world: "database-driver", path: "../../wit" });

include!("driver.rs");
