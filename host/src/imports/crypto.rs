//! `warden:plugin/crypto`: the host's CSPRNG and hashes, so components need
//! no cryptography of their own.

use super::{CallState, Plain};
use crate::bindings::driver::warden::plugin::crypto::{self, Host};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};
use wasmtime::component::{HasSelf, Linker};

/// Largest random buffer one call may ask for.
const MAX_RANDOM: u32 = 1 << 20;

impl Host for Plain {
    async fn random_bytes(&mut self, len: u32) -> Vec<u8> {
        let mut buf = vec![0u8; len.min(MAX_RANDOM) as usize];
        rand::rng().fill_bytes(&mut buf);
        buf
    }

    async fn sha256(&mut self, data: Vec<u8>) -> Vec<u8> {
        Sha256::digest(&data).to_vec()
    }

    async fn hmac_sha256(&mut self, key: Vec<u8>, data: Vec<u8>) -> Vec<u8> {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&key) else {
            // HMAC takes keys of any length; this branch cannot happen.
            return Vec::new();
        };
        mac.update(&data);
        mac.finalize().into_bytes().to_vec()
    }
}

pub fn add_to_linker(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    crypto::add_to_linker::<CallState, HasSelf<Plain>>(linker, |s| &mut s.plain)
}
