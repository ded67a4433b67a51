//! `warden:plugin/clock`: wall-clock time for expirations and usernames.

use super::{CallState, Plain};
use crate::bindings::driver::warden::plugin::clock::{self, Host};
use wasmtime::component::{HasSelf, Linker};

impl Host for Plain {
    async fn now(&mut self) -> (i64, u32) {
        let now = chrono::Utc::now();
        (now.timestamp(), now.timestamp_subsec_nanos())
    }
}

pub fn add_to_linker(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    clock::add_to_linker::<CallState, HasSelf<Plain>>(linker, |s| &mut s.plain)
}
