//! The barrier: AES-256-GCM encryption of every value at rest, under a keyring
//! of numbered keys that is itself sealed by the root key. [`Barrier`] wraps
//! any [`Backend`] so that the physical storage only ever sees ciphertext.
//! The root key itself is stored encrypted under the unseal key
//! ([`seal_root_key`]); the unseal key exists only as Shamir shares held by
//! operators (see `crate::node`).
//!
//! Value format: `term (u32 BE) || version (1 byte) || nonce (12) || ciphertext+tag`.
//! The term selects the key, so data written before a rotation stays readable.
//! The GCM associated data is the 5-byte header followed by the storage key
//! path, so a value copied or moved to another path, or given another header,
//! fails authentication instead of decrypting.

use super::{Backend, Result as StorageResult, Storage, StorageError, Write};
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::sync::RwLock;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// The only ciphertext layout so far; a new layout gets a new number so old
/// values can still be told apart.
pub const VERSION: u8 = 1;
pub const NONCE_LEN: usize = 12;
pub const TAG_LEN: usize = 16;
pub const HEADER_LEN: usize = 4 + 1 + NONCE_LEN;
pub const KEY_LEN: usize = 32;
/// Associated data of the sealed keyring, so that no other value encrypted
/// under the root key can be passed off as a keyring.
pub const KEYRING_AAD: &[u8] = b"warden/keyring";
/// The term written in a sealed keyring's header: the root key is not part of
/// the keyring, and 0 is never a keyring term.
const ROOT_TERM: u32 = 0;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BarrierError {
    #[error("barrier: ciphertext is truncated ({0} bytes, at least {min} needed)", min = HEADER_LEN + TAG_LEN)]
    Truncated(usize),
    #[error("barrier: unsupported ciphertext version {0}")]
    Version(u8),
    #[error("barrier: no key for term {0} in the keyring")]
    UnknownTerm(u32),
    #[error("barrier: message authentication failed (wrong key, or the value was tampered with or moved)")]
    Authentication,
    #[error("barrier: encryption failed")]
    Encrypt,
    #[error("barrier: invalid keyring: {0}")]
    Keyring(String),
}

pub type Result<T> = std::result::Result<T, BarrierError>;

impl From<BarrierError> for StorageError {
    fn from(e: BarrierError) -> Self {
        StorageError::Backend(e.to_string())
    }
}

/// One numbered data key. The key bytes are wiped when dropped.
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct Key {
    #[zeroize(skip)]
    pub term: u32,
    #[serde(with = "b64_key")]
    value: [u8; KEY_LEN],
    #[zeroize(skip)]
    pub installed: DateTime<Utc>,
}

impl Key {
    fn generate(term: u32) -> Key {
        let mut value = [0u8; KEY_LEN];
        rand::rng().fill_bytes(&mut value);
        Key {
            term,
            value,
            installed: Utc::now(),
        }
    }
}

// Never print key material, not even in a debug log.
impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("term", &self.term)
            .field("value", &"<redacted>")
            .field("installed", &self.installed)
            .finish()
    }
}

/// The data keys by term and the one new writes use. Terms only grow, so a
/// term names one key forever.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Keyring {
    active: u32,
    /// Sorted by term, ascending.
    keys: Vec<Key>,
}

impl Default for Keyring {
    fn default() -> Self {
        Self::new()
    }
}

impl Keyring {
    /// A keyring with one fresh random key, term 1.
    pub fn new() -> Keyring {
        Keyring {
            active: 1,
            keys: vec![Key::generate(1)],
        }
    }

    pub fn active_term(&self) -> u32 {
        self.active
    }

    pub fn terms(&self) -> Vec<u32> {
        self.keys.iter().map(|k| k.term).collect()
    }

    pub fn key(&self, term: u32) -> Option<&Key> {
        self.keys.iter().find(|k| k.term == term)
    }

    /// Add a fresh key as term+1 and make it the active one; returns the new
    /// term. Old keys stay to read what they wrote.
    pub fn rotate(&mut self) -> u32 {
        let term = self.keys.iter().map(|k| k.term).max().unwrap_or(0) + 1;
        self.keys.push(Key::generate(term));
        self.active = term;
        term
    }

    /// Encrypt under the active key; `aad` is the storage path (or any
    /// context the ciphertext must stay bound to).
    pub fn encrypt(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
        let key = self.key(self.active).ok_or(BarrierError::UnknownTerm(self.active))?;
        seal(&key.value, key.term, plaintext, aad)
    }

    /// Decrypt with the key named by the ciphertext's term.
    pub fn decrypt(&self, ciphertext: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
        let term = parse_header(ciphertext)?;
        let key = self.key(term).ok_or(BarrierError::UnknownTerm(term))?;
        open(&key.value, ciphertext, aad)
    }

    /// Check what a deserialised keyring promises: terms are unique and
    /// non-zero, and the active one is present.
    fn validate(&self) -> Result<()> {
        let mut terms = self.terms();
        terms.sort_unstable();
        terms.dedup();
        if terms.len() != self.keys.len() {
            return Err(BarrierError::Keyring("duplicate key term".into()));
        }
        if terms.contains(&ROOT_TERM) {
            return Err(BarrierError::Keyring("key term 0 is reserved".into()));
        }
        if self.key(self.active).is_none() {
            return Err(BarrierError::Keyring(format!("active term {} has no key", self.active)));
        }
        Ok(())
    }
}

/// Encryption of values that live outside storage under the barrier's
/// keyring (Vault seals batch tokens this way): whoever holds the same
/// keyring, a restarted node or a performance secondary, can open them.
pub trait Sealer: Send + Sync {
    /// Encrypt under the active key, bound to `aad`.
    fn seal_value(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>>;
    /// Decrypt what [`Sealer::seal_value`] made with the same `aad`.
    fn open_value(&self, ciphertext: &[u8], aad: &[u8]) -> Result<Vec<u8>>;
}

impl Sealer for Keyring {
    fn seal_value(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
        self.encrypt(plaintext, aad)
    }

    fn open_value(&self, ciphertext: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
        self.decrypt(ciphertext, aad)
    }
}

/// Encrypt the keyring under the root key, for storing it (inside the same
/// storage, at a well-known path) next to the data it protects.
pub fn seal_keyring(root_key: &[u8; KEY_LEN], keyring: &Keyring) -> Result<Vec<u8>> {
    // The JSON holds every data key in clear: wipe it once encrypted.
    let json = Zeroizing::new(serde_json::to_vec(keyring).map_err(|e| BarrierError::Keyring(e.to_string()))?);
    seal(root_key, ROOT_TERM, &json, KEYRING_AAD)
}

/// Decrypt a keyring sealed by [`seal_keyring`]; a wrong root key fails
/// authentication.
pub fn open_keyring(root_key: &[u8; KEY_LEN], sealed: &[u8]) -> Result<Keyring> {
    let term = parse_header(sealed)?;
    if term != ROOT_TERM {
        return Err(BarrierError::Keyring(format!(
            "sealed keyring has term {term}, expected {ROOT_TERM}"
        )));
    }
    let json = Zeroizing::new(open(root_key, sealed, KEYRING_AAD)?);
    // Serde error text names positions and types, never the key values.
    let keyring: Keyring = serde_json::from_slice(&json).map_err(|e| BarrierError::Keyring(e.to_string()))?;
    keyring.validate()?;
    Ok(keyring)
}

/// Associated data of the stored root key (encrypted under the unseal key).
pub const ROOT_KEY_AAD: &[u8] = b"warden/root-key";

/// Encrypt the root key under the unseal key, for storing it.
pub fn seal_root_key(unseal_key: &[u8; KEY_LEN], root_key: &[u8; KEY_LEN]) -> Result<Vec<u8>> {
    seal(unseal_key, ROOT_TERM, root_key, ROOT_KEY_AAD)
}

/// Decrypt the stored root key; a wrong unseal key fails authentication.
pub fn open_root_key(unseal_key: &[u8; KEY_LEN], sealed: &[u8]) -> Result<Zeroizing<[u8; KEY_LEN]>> {
    let bytes = Zeroizing::new(open(unseal_key, sealed, ROOT_KEY_AAD)?);
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    if bytes.len() != KEY_LEN {
        return Err(BarrierError::Keyring(format!(
            "stored root key is {} bytes",
            bytes.len()
        )));
    }
    key.copy_from_slice(&bytes);
    Ok(key)
}

/// Encrypt a small secret (a key) under `key`, bound to `aad`: what the
/// static seal stores (the root key, the recovery key).
pub fn seal_secret(key: &[u8; KEY_LEN], secret: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
    seal(key, ROOT_TERM, secret, aad)
}

/// Decrypt what [`seal_secret`] made with the same key and `aad`.
pub fn open_secret(key: &[u8; KEY_LEN], sealed: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    Ok(Zeroizing::new(open(key, sealed, aad)?))
}

/// A fresh random 256-bit key (root key, unseal key).
pub fn random_key() -> Zeroizing<[u8; KEY_LEN]> {
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    rand::rng().fill_bytes(key.as_mut());
    key
}

/// The header goes into the associated data so it cannot be altered either.
fn associated_data(header: &[u8], aad: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + aad.len());
    out.extend_from_slice(&header[..5]);
    out.extend_from_slice(aad);
    out
}

fn cipher(key: &[u8; KEY_LEN]) -> Aes256Gcm {
    // aes-gcm's `zeroize` feature wipes the expanded key schedule on drop.
    Aes256Gcm::new(key.into())
}

fn seal(key: &[u8; KEY_LEN], term: u32, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
    // A random 96-bit nonce per value: safe for well over the 2^32 values a key
    // may encrypt before the collision risk matters; rotate long before that.
    let mut nonce = [0u8; NONCE_LEN];
    rand::rng().fill_bytes(&mut nonce);
    let mut out = Vec::with_capacity(HEADER_LEN + plaintext.len() + TAG_LEN);
    out.extend_from_slice(&term.to_be_bytes());
    out.push(VERSION);
    out.extend_from_slice(&nonce);
    let ad = associated_data(&out, aad);
    let ct = cipher(key)
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad: &ad,
            },
        )
        .map_err(|_| BarrierError::Encrypt)?;
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Check length and version, and return the term.
fn parse_header(ciphertext: &[u8]) -> Result<u32> {
    if ciphertext.len() < HEADER_LEN + TAG_LEN {
        return Err(BarrierError::Truncated(ciphertext.len()));
    }
    if ciphertext[4] != VERSION {
        return Err(BarrierError::Version(ciphertext[4]));
    }
    Ok(u32::from_be_bytes([
        ciphertext[0],
        ciphertext[1],
        ciphertext[2],
        ciphertext[3],
    ]))
}

fn open(key: &[u8; KEY_LEN], ciphertext: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
    parse_header(ciphertext)?;
    let ad = associated_data(ciphertext, aad);
    let nonce = Nonce::from_slice(&ciphertext[5..HEADER_LEN]);
    cipher(key)
        .decrypt(
            nonce,
            Payload {
                msg: &ciphertext[HEADER_LEN..],
                aad: &ad,
            },
        )
        .map_err(|_| BarrierError::Authentication)
}

/// Key bytes as base64 in the keyring JSON; the intermediate strings are wiped.
mod b64_key {
    use super::KEY_LEN;
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};
    use zeroize::Zeroizing;

    pub fn serialize<S: Serializer>(key: &[u8; KEY_LEN], s: S) -> Result<S::Ok, S::Error> {
        let text = Zeroizing::new(STANDARD.encode(key));
        s.serialize_str(&text)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; KEY_LEN], D::Error> {
        let text = Zeroizing::new(String::deserialize(d)?);
        let bytes = Zeroizing::new(
            STANDARD
                .decode(text.as_bytes())
                .map_err(|_| serde::de::Error::custom("key is not valid base64"))?,
        );
        let mut key = [0u8; KEY_LEN];
        if bytes.len() != KEY_LEN {
            return Err(serde::de::Error::custom(format!(
                "key is {} bytes, expected {KEY_LEN}",
                bytes.len()
            )));
        }
        key.copy_from_slice(&bytes);
        Ok(key)
    }
}

/// A [`Backend`] that encrypts values on the way in and decrypts them on the
/// way out. Keys (paths) and listings pass through in clear: Vault's barrier
/// does the same, and the paths are needed to order and list.
pub struct Barrier {
    inner: Storage,
    keyring: RwLock<Keyring>,
}

impl Barrier {
    pub fn new(inner: Storage, keyring: Keyring) -> Barrier {
        Barrier {
            inner,
            keyring: RwLock::new(keyring),
        }
    }

    pub fn inner(&self) -> &Storage {
        &self.inner
    }

    pub fn active_term(&self) -> u32 {
        self.keyring.read().unwrap_or_else(|p| p.into_inner()).active_term()
    }

    /// Install a new active key; returns its term. The caller persists the
    /// keyring (sealed) afterwards, or the new key is lost on restart.
    pub fn rotate(&self) -> u32 {
        self.keyring.write().unwrap_or_else(|p| p.into_inner()).rotate()
    }

    /// The active term and when its key was installed (sys/key-status).
    pub fn key_status(&self) -> (u32, DateTime<Utc>) {
        let keyring = self.keyring.read().unwrap_or_else(|p| p.into_inner());
        let term = keyring.active_term();
        let installed = keyring.key(term).map(|k| k.installed).unwrap_or_else(Utc::now);
        (term, installed)
    }

    /// Seal the current keyring under `root_key`, for persisting it.
    pub fn seal_keyring(&self, root_key: &[u8; KEY_LEN]) -> Result<Vec<u8>> {
        seal_keyring(root_key, &self.keyring.read().unwrap_or_else(|p| p.into_inner()))
    }
}

impl Sealer for Barrier {
    fn seal_value(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
        self.keyring
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .encrypt(plaintext, aad)
    }

    fn open_value(&self, ciphertext: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
        self.keyring
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .decrypt(ciphertext, aad)
    }
}

#[async_trait::async_trait]
impl Backend for Barrier {
    async fn get(&self, key: &str) -> StorageResult<Option<Vec<u8>>> {
        let _timer = crate::telemetry::storage(crate::telemetry::StorageOp::Get);
        let Some(ciphertext) = self.inner.get(key).await? else {
            return Ok(None);
        };
        // The guard is dropped before any await: std locks are not Send.
        let keyring = self.keyring.read().unwrap_or_else(|p| p.into_inner());
        keyring
            .decrypt(&ciphertext, key.as_bytes())
            .map(Some)
            .map_err(|e| StorageError::Backend(format!("{e} (key {key:?})")))
    }

    async fn put(&self, key: &str, value: &[u8]) -> StorageResult<()> {
        let _timer = crate::telemetry::storage(crate::telemetry::StorageOp::Put);
        let ciphertext = {
            let keyring = self.keyring.read().unwrap_or_else(|p| p.into_inner());
            keyring.encrypt(value, key.as_bytes())?
        };
        self.inner.put(key, &ciphertext).await
    }

    async fn delete(&self, key: &str) -> StorageResult<()> {
        let _timer = crate::telemetry::storage(crate::telemetry::StorageOp::Delete);
        self.inner.delete(key).await
    }

    /// Each value encrypted under its own key path, then one batch below:
    /// an encryption failure leaves nothing written.
    async fn batch(&self, writes: Vec<Write>) -> StorageResult<()> {
        let _timer = crate::telemetry::storage(crate::telemetry::StorageOp::Batch);
        let writes = {
            let keyring = self.keyring.read().unwrap_or_else(|p| p.into_inner());
            writes
                .into_iter()
                .map(|w| match w {
                    Write::Put(key, value) => {
                        let ciphertext = keyring.encrypt(&value, key.as_bytes())?;
                        Ok(Write::Put(key, ciphertext))
                    }
                    delete => Ok(delete),
                })
                .collect::<StorageResult<Vec<Write>>>()?
        };
        self.inner.batch(writes).await
    }

    async fn list(&self, prefix: &str) -> StorageResult<Vec<String>> {
        let _timer = crate::telemetry::storage(crate::telemetry::StorageOp::List);
        self.inner.list(prefix).await
    }

    async fn scan(&self, prefix: &str, after: Option<&str>, limit: usize) -> StorageResult<Vec<(String, Vec<u8>)>> {
        let _timer = crate::telemetry::storage(crate::telemetry::StorageOp::Scan);
        let page = self.inner.scan(prefix, after, limit).await?;
        let keyring = self.keyring.read().unwrap_or_else(|p| p.into_inner());
        page.into_iter()
            .map(|(key, ciphertext)| match keyring.decrypt(&ciphertext, key.as_bytes()) {
                Ok(plain) => Ok((key, plain)),
                Err(e) => Err(StorageError::Backend(format!("{e} (key {key:?})"))),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemoryBackend;
    use std::sync::Arc;

    fn barrier() -> (Arc<MemoryBackend>, Barrier) {
        let mem = Arc::new(MemoryBackend::new());
        let b = Barrier::new(mem.clone(), Keyring::new());
        (mem, b)
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    const SECRET: &[u8] = b"postgres password: hunter2-hunter2";

    #[tokio::test]
    async fn round_trip_and_raw_bytes_are_ciphertext() {
        let (mem, b) = barrier();
        b.put("logical/abc/config/pg", SECRET).await.unwrap();
        assert_eq!(b.get("logical/abc/config/pg").await.unwrap().as_deref(), Some(SECRET));
        assert_eq!(b.get("logical/abc/missing").await.unwrap(), None);

        let raw = mem.get("logical/abc/config/pg").await.unwrap().unwrap();
        assert!(!contains(&raw, SECRET));
        assert!(!contains(&raw, b"hunter2"));
        assert_eq!(raw.len(), HEADER_LEN + SECRET.len() + TAG_LEN);
        assert_eq!(&raw[..4], &1u32.to_be_bytes());
        assert_eq!(raw[4], VERSION);

        // Two writes of the same value differ (fresh nonce each time).
        b.put("a", SECRET).await.unwrap();
        b.put("b", SECRET).await.unwrap();
        assert_ne!(mem.get("a").await.unwrap(), mem.get("b").await.unwrap());

        // An empty value round-trips too.
        b.put("empty", b"").await.unwrap();
        assert_eq!(b.get("empty").await.unwrap(), Some(vec![]));
    }

    #[tokio::test]
    async fn list_and_delete_pass_through() {
        let (mem, b) = barrier();
        b.put("sys/a", b"1").await.unwrap();
        b.put("sys/dir/b", b"2").await.unwrap();
        assert_eq!(b.list("sys/").await.unwrap(), vec!["a".to_string(), "dir/".to_string()]);
        assert_eq!(b.list("sys/").await.unwrap(), mem.list("sys/").await.unwrap());
        b.delete("sys/a").await.unwrap();
        assert_eq!(mem.get("sys/a").await.unwrap(), None);
        assert_eq!(b.get("sys/a").await.unwrap(), None);
    }

    #[tokio::test]
    async fn rotate_keeps_old_values_readable_and_writes_with_new_term() {
        let (mem, b) = barrier();
        assert_eq!(b.active_term(), 1);
        b.put("old", b"written under term 1").await.unwrap();
        assert_eq!(b.rotate(), 2);
        assert_eq!(b.active_term(), 2);
        b.put("new", b"written under term 2").await.unwrap();

        assert_eq!(&mem.get("old").await.unwrap().unwrap()[..4], &1u32.to_be_bytes());
        assert_eq!(&mem.get("new").await.unwrap().unwrap()[..4], &2u32.to_be_bytes());
        assert_eq!(b.get("old").await.unwrap().unwrap(), b"written under term 1");
        assert_eq!(b.get("new").await.unwrap().unwrap(), b"written under term 2");

        // Rewriting an old value moves it to the active term.
        b.put("old", b"rewritten").await.unwrap();
        assert_eq!(&mem.get("old").await.unwrap().unwrap()[..4], &2u32.to_be_bytes());
        assert_eq!(b.rotate(), 3);
        assert_eq!(b.get("new").await.unwrap().unwrap(), b"written under term 2");
    }

    #[tokio::test]
    async fn tampering_any_byte_fails() {
        let (mem, b) = barrier();
        b.put("k", SECRET).await.unwrap();
        let raw = mem.get("k").await.unwrap().unwrap();
        for i in 0..raw.len() {
            let mut bad = raw.clone();
            bad[i] ^= 0x01;
            mem.put("k", &bad).await.unwrap();
            let err = b.get("k").await.unwrap_err().to_string();
            assert!(err.contains("barrier:"), "byte {i}: {err}");
            assert!(!err.contains("hunter2"), "error must not leak plaintext: {err}");
        }
        // Truncation is caught before decryption.
        mem.put("k", &raw[..HEADER_LEN + TAG_LEN - 1]).await.unwrap();
        let err = b.get("k").await.unwrap_err().to_string();
        assert!(err.contains("truncated"), "{err}");
        mem.put("k", &raw[..raw.len() - 1]).await.unwrap();
        assert!(
            b.get("k")
                .await
                .unwrap_err()
                .to_string()
                .contains("authentication failed")
        );
    }

    #[tokio::test]
    async fn moving_ciphertext_to_another_key_fails() {
        let (mem, b) = barrier();
        b.put("logical/m1/creds", SECRET).await.unwrap();
        let raw = mem.get("logical/m1/creds").await.unwrap().unwrap();
        mem.put("logical/m2/creds", &raw).await.unwrap();
        let err = b.get("logical/m2/creds").await.unwrap_err().to_string();
        assert!(err.contains("authentication failed"), "{err}");
        assert!(err.contains("logical/m2/creds"), "the error names the key: {err}");
        // The original is still fine.
        assert_eq!(b.get("logical/m1/creds").await.unwrap().unwrap(), SECRET);
    }

    #[tokio::test]
    async fn a_batch_is_encrypted_value_by_value() {
        let (mem, b) = barrier();
        b.put("gone", b"x").await.unwrap();
        b.batch(vec![
            Write::Put("a".into(), SECRET.to_vec()),
            Write::Delete("gone".into()),
            Write::Put("b".into(), b"two".to_vec()),
        ])
        .await
        .unwrap();
        let raw = mem.get("a").await.unwrap().unwrap();
        assert!(!contains(&raw, b"hunter2"));
        assert_eq!(b.get("a").await.unwrap().as_deref(), Some(SECRET));
        assert_eq!(b.get("b").await.unwrap().as_deref(), Some(&b"two"[..]));
        assert_eq!(mem.get("gone").await.unwrap(), None);
        // Each value is bound to its own path, as with a single put.
        mem.put("c", &raw).await.unwrap();
        assert!(b.get("c").await.is_err());
        // A refused part fails the batch, and nothing of it is stored.
        mem.refuse("poison");
        let err = b
            .batch(vec![
                Write::Put("d".into(), b"4".to_vec()),
                Write::Delete("poison".into()),
            ])
            .await
            .unwrap_err();
        assert!(err.to_string().contains("refused"), "{err}");
        assert_eq!(mem.get("d").await.unwrap(), None);
    }

    #[test]
    fn unknown_term_fails_with_a_clear_error() {
        let mut ring = Keyring::new();
        ring.rotate();
        let ct = ring.encrypt(b"x", b"path").unwrap();
        let fresh = Keyring::new();
        assert_eq!(fresh.decrypt(&ct, b"path"), Err(BarrierError::UnknownTerm(2)));
        assert_eq!(
            BarrierError::UnknownTerm(2).to_string(),
            "barrier: no key for term 2 in the keyring"
        );
        // Same term, different key: authentication, not garbage.
        let ct1 = Keyring::new().encrypt(b"x", b"path").unwrap();
        assert_eq!(fresh.decrypt(&ct1, b"path"), Err(BarrierError::Authentication));
        let mut bad_version = ct1.clone();
        bad_version[4] = 9;
        assert_eq!(fresh.decrypt(&bad_version, b"path"), Err(BarrierError::Version(9)));
        assert_eq!(fresh.decrypt(&[], b"path"), Err(BarrierError::Truncated(0)));
    }

    #[test]
    fn seal_and_open_keyring() {
        let mut root = [0u8; KEY_LEN];
        rand::rng().fill_bytes(&mut root);
        let mut ring = Keyring::new();
        ring.rotate();
        let ct = ring.encrypt(SECRET, b"p").unwrap();

        let sealed = seal_keyring(&root, &ring).unwrap();
        assert_eq!(&sealed[..4], &ROOT_TERM.to_be_bytes());
        // The sealed form shows neither the key bytes nor their base64.
        let json = serde_json::to_string(&ring).unwrap();
        let k1 = json.split('"').find(|s| s.len() == 44).unwrap();
        assert!(!contains(&sealed, k1.as_bytes()));
        assert!(!contains(&sealed, &ring.key(1).unwrap().value));

        let opened = open_keyring(&root, &sealed).unwrap();
        assert_eq!(opened.active_term(), 2);
        assert_eq!(opened.terms(), vec![1, 2]);
        assert_eq!(opened.decrypt(&ct, b"p").unwrap(), SECRET);

        let mut wrong = root;
        wrong[0] ^= 1;
        assert_eq!(open_keyring(&wrong, &sealed).unwrap_err(), BarrierError::Authentication);

        // A data value under the root key is not accepted as a keyring (AAD).
        let other = seal(&root, ROOT_TERM, &serde_json::to_vec(&ring).unwrap(), b"something else").unwrap();
        assert_eq!(open_keyring(&root, &other).unwrap_err(), BarrierError::Authentication);
    }

    #[test]
    fn debug_output_redacts_keys() {
        let ring = Keyring::new();
        let shown = format!("{ring:?}");
        assert!(shown.contains("<redacted>"));
        assert!(!shown.contains(&format!("{:?}", ring.key(1).unwrap().value)));
    }
}
