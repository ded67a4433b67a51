//! `warden:plugin/storage`: get/put/delete/list in the calling mount's own
//! key space (a [`crate::storage::View`]), never another's.

use super::{CallState, denied};
use crate::bindings::driver::warden::plugin::storage::{self, Host};
use crate::bindings::driver::warden::plugin::types::Error;
use crate::storage::View;
use wasmtime::component::{HasSelf, Linker};

/// The calling mount's key space, if the call has one.
pub struct StorageState {
    view: Option<View>,
}

impl StorageState {
    pub fn new(view: Option<View>) -> Self {
        StorageState { view }
    }

    fn view(&self) -> Result<&View, Error> {
        self.view.as_ref().ok_or_else(|| denied("storage"))
    }
}

pub fn add_to_linker(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    storage::add_to_linker::<CallState, HasSelf<StorageState>>(linker, |s| &mut s.storage)
}

fn fail(e: crate::storage::StorageError) -> Error {
    Error::Other(e.to_string())
}

fn check_key(key: &str) -> Result<(), Error> {
    // A view prefixes keys, so only relative paths without '..' can name a
    // key inside it.
    if key.starts_with('/') || key.split('/').any(|s| s == "..") {
        return Err(Error::BadParameter(format!("invalid storage key {key:?}")));
    }
    Ok(())
}

impl Host for StorageState {
    async fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, Error> {
        check_key(&key)?;
        let view = self.view()?;
        view.get(&key).await.map_err(fail)
    }

    async fn put(&mut self, key: String, value: Vec<u8>) -> Result<(), Error> {
        check_key(&key)?;
        let view = self.view()?;
        view.put(&key, &value).await.map_err(fail)
    }

    async fn delete(&mut self, key: String) -> Result<(), Error> {
        check_key(&key)?;
        let view = self.view()?;
        view.delete(&key).await.map_err(fail)
    }

    async fn list(&mut self, prefix: String) -> Result<Vec<String>, Error> {
        check_key(&prefix)?;
        let view = self.view()?;
        view.list(&prefix).await.map_err(fail)
    }
}
