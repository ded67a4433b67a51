//! `warden:plugin/log`: component messages into the host's tracing, tagged
//! with the component's name.

use super::CallState;
use crate::runtime::bindings::driver::warden::plugin::log::{Host, Level};

/// Longest message kept, so a component cannot flood the log.
const MAX_MESSAGE: usize = 4096;

impl Host for CallState {
    async fn log(&mut self, level: Level, message: String) {
        let mut message = message;
        if message.len() > MAX_MESSAGE {
            let mut cut = MAX_MESSAGE;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
        }
        let component = self.grant.component.as_str();
        match level {
            Level::Trace => tracing::trace!(component, "{message}"),
            Level::Debug => tracing::debug!(component, "{message}"),
            Level::Info => tracing::info!(component, "{message}"),
            Level::Warn => tracing::warn!(component, "{message}"),
            Level::Error => tracing::error!(component, "{message}"),
        }
    }
}
