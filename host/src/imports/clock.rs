//! `warden:plugin/clock`: wall-clock time for expirations and usernames.

use super::CallState;
use crate::runtime::bindings::driver::warden::plugin::clock::Host;

impl Host for CallState {
    async fn now(&mut self) -> (i64, u32) {
        let now = chrono::Utc::now();
        (now.timestamp(), now.timestamp_subsec_nanos())
    }
}
