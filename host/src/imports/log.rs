//! `warden:plugin/log`: component messages into the host's tracing, tagged
//! with the component's name.

use super::CallState;
use crate::bindings::driver::warden::plugin::log::{self, Host, Level};
use wasmtime::component::{HasSelf, Linker};

/// Longest message kept, so a component cannot flood the log.
const MAX_MESSAGE: usize = 4096;

/// The component's name, for every line it logs.
pub struct LogState {
    component: String,
}

impl LogState {
    pub fn new(component: String) -> Self {
        LogState { component }
    }
}

impl Host for LogState {
    async fn log(&mut self, level: Level, message: String) {
        let mut message = message;
        if message.len() > MAX_MESSAGE {
            let mut cut = MAX_MESSAGE;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
        }
        let component = self.component.as_str();
        match level {
            Level::Trace => tracing::trace!(component, "{message}"),
            Level::Debug => tracing::debug!(component, "{message}"),
            Level::Info => tracing::info!(component, "{message}"),
            Level::Warn => tracing::warn!(component, "{message}"),
            Level::Error => tracing::error!(component, "{message}"),
        }
    }
}

pub fn add_to_linker(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    log::add_to_linker::<CallState, HasSelf<LogState>>(linker, |s| &mut s.log)
}
