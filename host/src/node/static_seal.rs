//! OpenBao's `seal "static"` auto-unseal: the root key is stored encrypted
//! under a 32-byte key the operator provides (in the file, as `env://VAR`,
//! or as `file:///path`), so a node that starts unseals itself with nobody
//! at the console. Humans then hold *recovery* keys instead of unseal keys:
//! they authorise root token generation (and unsealing a node that was
//! sealed by hand), but cannot decrypt anything, as Vault's.
//!
//! Every stored value names the id of the key that sealed it. With
//! `previous_key`/`previous_key_id` a node still opens values sealed by the
//! old key, and the active node seals them again under the current one: the
//! rotation procedure is "new key as current, old as previous, restart,
//! then drop the previous". The key id is bound into the encryption, so a
//! value cannot be relabelled. Key material never reaches a log line or an
//! error message.

use crate::storage::barrier::{self, KEY_LEN};
use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64_URL_RAW};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use zeroize::Zeroizing;

/// OpenBao's environment variables, which take precedence over the stanza.
pub const ENV_CURRENT_KEY: &str = "BAO_STATIC_SEAL_CURRENT_KEY";
pub const ENV_CURRENT_KEY_ID: &str = "BAO_STATIC_SEAL_CURRENT_KEY_ID";
pub const ENV_PREVIOUS_KEY: &str = "BAO_STATIC_SEAL_PREVIOUS_KEY";
pub const ENV_PREVIOUS_KEY_ID: &str = "BAO_STATIC_SEAL_PREVIOUS_KEY_ID";

/// Where a key comes from, as written in the stanza.
#[derive(Clone, PartialEq, Eq)]
pub enum KeySource {
    /// The key itself (raw, hex or base64) in the configuration file.
    Literal(Zeroizing<String>),
    /// `env://NAME`.
    Env(String),
    /// `file:///path`.
    File(PathBuf),
}

impl KeySource {
    /// A stanza value: `env://NAME`, `file://PATH`, or the key itself.
    pub fn parse(value: &str) -> KeySource {
        if let Some(name) = value.strip_prefix("env://") {
            KeySource::Env(name.to_string())
        } else if let Some(path) = value.strip_prefix("file://") {
            KeySource::File(PathBuf::from(path))
        } else {
            KeySource::Literal(Zeroizing::new(value.to_string()))
        }
    }

    /// The key's text (or a file's bytes), named for errors by `setting`.
    fn read(&self, setting: &str, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Zeroizing<Vec<u8>>> {
        Ok(Zeroizing::new(match self {
            KeySource::Literal(text) => text.as_bytes().to_vec(),
            KeySource::Env(name) => env(name)
                .with_context(|| format!("{setting}: the environment variable {name} is not set"))?
                .into_bytes(),
            KeySource::File(path) => std::fs::read(path)
                .with_context(|| format!("{setting}: cannot read the key file {}", path.display()))?,
        }))
    }
}

/// Never the key: a literal prints as redacted.
impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::Literal(_) => f.write_str("Literal(<redacted>)"),
            KeySource::Env(name) => write!(f, "Env({name:?})"),
            KeySource::File(path) => write!(f, "File({path:?})"),
        }
    }
}

/// The `seal "static"` stanza as written (keys not read yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticSealConfig {
    pub current_key_id: Option<String>,
    pub current_key: Option<KeySource>,
    pub previous_key_id: Option<String>,
    pub previous_key: Option<KeySource>,
}

struct SealKey {
    id: String,
    key: Zeroizing<[u8; KEY_LEN]>,
}

/// The seal's keys, read.
pub struct StaticSeal {
    current: SealKey,
    previous: Option<SealKey>,
}

/// What a stored value protects; part of the associated data, so one kind
/// cannot be passed off as the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    RootKey,
    RecoveryKey,
}

/// A value sealed by the static seal, as stored.
#[derive(Serialize, Deserialize)]
struct Stored {
    key_id: String,
    /// The barrier's ciphertext format, base64.
    ciphertext: String,
}

/// A value opened: the secret, and whether it was sealed by the previous key
/// (and should be sealed again under the current one).
pub struct Opened {
    pub secret: Zeroizing<Vec<u8>>,
    pub stale: bool,
}

impl StaticSeal {
    /// Read the keys the stanza names, with OpenBao's environment variables
    /// taking precedence over it.
    pub fn load(config: &StaticSealConfig) -> anyhow::Result<StaticSeal> {
        StaticSeal::load_with(config, &|name| std::env::var(name).ok())
    }

    /// [`StaticSeal::load`] with the environment given (tests).
    pub fn load_with(config: &StaticSealConfig, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<StaticSeal> {
        let set = |name: &str| env(name).filter(|v| !v.is_empty());
        let current_key = match set(ENV_CURRENT_KEY) {
            Some(v) => Some(KeySource::Literal(Zeroizing::new(v))),
            None => config.current_key.clone(),
        };
        let current_id = set(ENV_CURRENT_KEY_ID).or_else(|| config.current_key_id.clone());
        let previous_key = match set(ENV_PREVIOUS_KEY) {
            Some(v) => Some(KeySource::Literal(Zeroizing::new(v))),
            None => config.previous_key.clone(),
        };
        let previous_id = set(ENV_PREVIOUS_KEY_ID).or_else(|| config.previous_key_id.clone());

        let current_key = current_key.context("seal \"static\": current_key is required")?;
        let current = decode_key(&current_key.read("current_key", env)?).context("seal \"static\": current_key")?;
        let current_id = current_id
            .filter(|id| !id.is_empty())
            .context("seal \"static\": current_key_id is required: a permanent identifier of the current key")?;
        let previous = match previous_key {
            Some(source) => {
                Some(decode_key(&source.read("previous_key", env)?).context("seal \"static\": previous_key")?)
            }
            None => None,
        };
        let previous_id = previous_id.filter(|id| !id.is_empty());
        let previous = match (previous, previous_id) {
            (None, None) => None,
            (Some(_), None) => bail!("seal \"static\": previous_key is set without previous_key_id"),
            (None, Some(_)) => bail!("seal \"static\": previous_key_id is set without previous_key"),
            (Some(key), Some(id)) => {
                let same_key = crate::core::constant_time_eq(key.as_slice(), current.as_slice());
                if same_key && id != current_id {
                    bail!("seal \"static\": the current and previous keys are the same key under different ids");
                }
                if !same_key && id == current_id {
                    bail!("seal \"static\": the current and previous keys differ but have the same id");
                }
                Some(SealKey { id, key })
            }
        };
        Ok(StaticSeal {
            current: SealKey {
                id: current_id,
                key: current,
            },
            previous,
        })
    }

    /// The id of the key new values are sealed with.
    pub fn current_key_id(&self) -> &str {
        &self.current.id
    }

    /// Seal `secret` under the current key.
    pub fn seal(&self, purpose: Purpose, secret: &[u8]) -> anyhow::Result<Vec<u8>> {
        let sealed = barrier::seal_secret(&self.current.key, secret, &aad(purpose, &self.current.id))?;
        Ok(serde_json::to_vec(&Stored {
            key_id: self.current.id.clone(),
            ciphertext: B64.encode(sealed),
        })?)
    }

    /// Open a stored value with the key its id names.
    pub fn open(&self, purpose: Purpose, stored: &[u8]) -> anyhow::Result<Opened> {
        let stored: Stored =
            serde_json::from_slice(stored).context("the stored value is not sealed by a static seal")?;
        let (key, stale) = if stored.key_id == self.current.id {
            (&self.current, false)
        } else if let Some(previous) = self.previous.as_ref().filter(|p| p.id == stored.key_id) {
            (previous, true)
        } else {
            bail!(
                "the stored {} is sealed by the static key {:?}, which is neither current_key_id nor previous_key_id",
                purpose.name(),
                stored.key_id
            );
        };
        let ciphertext = B64
            .decode(&stored.ciphertext)
            .context("the stored value's ciphertext is not base64")?;
        let secret = barrier::open_secret(&key.key, &ciphertext, &aad(purpose, &key.id)).map_err(|_| {
            anyhow::anyhow!(
                "the static key {:?} does not open the stored {} (message authentication failed): is it the key that sealed it?",
                key.id,
                purpose.name()
            )
        })?;
        Ok(Opened { secret, stale })
    }
}

impl Purpose {
    fn name(self) -> &'static str {
        match self {
            Purpose::RootKey => "root key",
            Purpose::RecoveryKey => "recovery key",
        }
    }
}

fn aad(purpose: Purpose, key_id: &str) -> Vec<u8> {
    let what = match purpose {
        Purpose::RootKey => "root-key",
        Purpose::RecoveryKey => "recovery-key",
    };
    format!("warden/static-seal/{what}/{key_id}").into_bytes()
}

/// OpenBao's encodings of an AES-256 key, told apart by length: 64 hex
/// digits, 44 characters of base64, 43 of unpadded URL-safe base64, or the
/// 32 bytes themselves (`openssl rand -out FILE 32`). A file's trailing
/// newline is ignored when the bytes are not themselves the key.
fn decode_key(bytes: &[u8]) -> anyhow::Result<Zeroizing<[u8; KEY_LEN]>> {
    let raw = if bytes.len() == KEY_LEN {
        Zeroizing::new(bytes.to_vec())
    } else {
        let text = bytes.trim_ascii();
        let text =
            std::str::from_utf8(text).map_err(|_| anyhow::anyhow!("the key is not 32 raw bytes, hex or base64"))?;
        Zeroizing::new(match text.len() {
            64 => hex::decode(text).map_err(|_| anyhow::anyhow!("the key is 64 characters but not hex"))?,
            44 => B64
                .decode(text)
                .map_err(|_| anyhow::anyhow!("the key is 44 characters but not base64"))?,
            43 => B64_URL_RAW
                .decode(text)
                .map_err(|_| anyhow::anyhow!("the key is 43 characters but not unpadded URL-safe base64"))?,
            KEY_LEN => text.as_bytes().to_vec(),
            0 => bail!("the key is empty"),
            n => {
                bail!("a key of {n} characters: an AES-256 key is 32 raw bytes, 64 hex digits or 44 base64 characters")
            }
        })
    };
    let key: [u8; KEY_LEN] = raw
        .as_slice()
        .try_into()
        .map_err(|_| anyhow::anyhow!("the key does not decode to 32 bytes"))?;
    Ok(Zeroizing::new(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(current: &str, id: &str) -> StaticSealConfig {
        StaticSealConfig {
            current_key_id: Some(id.into()),
            current_key: Some(KeySource::parse(current)),
            previous_key_id: None,
            previous_key: None,
        }
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn keys_are_read_in_every_encoding_openbao_accepts() {
        let key = [0x5au8; 32];
        let dir = std::env::temp_dir().join(format!("warden-static-seal-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let raw_file = dir.join("raw.key");
        std::fs::write(&raw_file, key).unwrap();
        let hex_file = dir.join("hex.key");
        std::fs::write(&hex_file, format!("{}\n", hex::encode(key))).unwrap();
        let sources = [
            hex::encode(key),
            B64.encode(key),
            B64_URL_RAW.encode(key),
            format!("file://{}", raw_file.display()),
            format!("file://{}", hex_file.display()),
        ];
        for source in sources {
            let seal = StaticSeal::load_with(&config(&source, "k1"), &no_env).unwrap();
            assert_eq!(*seal.current.key, key, "{source}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
        let env = |name: &str| (name == "MY_KEY").then(|| B64.encode(key));
        let seal = StaticSeal::load_with(&config("env://MY_KEY", "k1"), &env).unwrap();
        assert_eq!(*seal.current.key, key);
        // OpenBao's variables win over the stanza.
        let other = [1u8; 32];
        let env = |name: &str| match name {
            ENV_CURRENT_KEY => Some(hex::encode(other)),
            ENV_CURRENT_KEY_ID => Some("from-env".into()),
            _ => None,
        };
        let seal = StaticSeal::load_with(&config(&hex::encode(key), "k1"), &env).unwrap();
        assert_eq!(*seal.current.key, other);
        assert_eq!(seal.current_key_id(), "from-env");
    }

    #[test]
    fn bad_keys_and_ids_are_refused_without_showing_the_key() {
        let err = |c: &StaticSealConfig| format!("{:#}", StaticSeal::load_with(c, &no_env).err().unwrap());
        let secretish = "s3cr3t-but-too-short";
        let e = err(&config(secretish, "k1"));
        assert!(e.contains("20 characters") && !e.contains(secretish), "{e}");
        assert!(err(&config(&"zz".repeat(32), "k1")).contains("not hex"));
        assert!(err(&config(&hex::encode([1u8; 32]), "")).contains("current_key_id is required"));
        assert!(err(&config("env://NOPE", "k1")).contains("NOPE is not set"));
        assert!(err(&config("file:///nonexistent/key", "k1")).contains("cannot read the key file"));
        let mut c = config(&hex::encode([1u8; 32]), "k1");
        c.previous_key = Some(KeySource::parse(&hex::encode([2u8; 32])));
        assert!(err(&c).contains("without previous_key_id"));
        c.previous_key_id = Some("k1".into());
        assert!(err(&c).contains("differ but have the same id"));
        c.previous_key = Some(KeySource::parse(&hex::encode([1u8; 32])));
        c.previous_key_id = Some("k0".into());
        assert!(err(&c).contains("same key under different ids"));
        let debug = format!("{:?}", config(secretish, "k1"));
        assert!(!debug.contains(secretish), "{debug}");
    }

    #[test]
    fn values_open_with_the_key_their_id_names_and_only_for_their_purpose() {
        let old = StaticSeal::load_with(&config(&hex::encode([1u8; 32]), "old"), &no_env).unwrap();
        let sealed = old.seal(Purpose::RootKey, b"the root key").unwrap();
        let opened = old.open(Purpose::RootKey, &sealed).unwrap();
        assert_eq!(opened.secret.as_slice(), b"the root key");
        assert!(!opened.stale);
        assert!(old.open(Purpose::RecoveryKey, &sealed).is_err());

        // Rotation: the new key current, the old one previous.
        let mut c = config(&hex::encode([2u8; 32]), "new");
        c.previous_key = Some(KeySource::parse(&hex::encode([1u8; 32])));
        c.previous_key_id = Some("old".into());
        let rotated = StaticSeal::load_with(&c, &no_env).unwrap();
        let opened = rotated.open(Purpose::RootKey, &sealed).unwrap();
        assert!(opened.stale);
        let resealed = rotated.seal(Purpose::RootKey, &opened.secret).unwrap();
        assert!(!rotated.open(Purpose::RootKey, &resealed).unwrap().stale);
        // The old key alone no longer knows the id.
        assert!(format!("{:#}", old.open(Purpose::RootKey, &resealed).err().unwrap()).contains("\"new\""));

        // A wrong key under the right id fails authentication; a relabelled
        // value too (the id is bound into the encryption).
        let wrong = StaticSeal::load_with(&config(&hex::encode([3u8; 32]), "old"), &no_env).unwrap();
        assert!(format!("{:#}", wrong.open(Purpose::RootKey, &sealed).err().unwrap()).contains("authentication"));
        let mut relabelled: serde_json::Value = serde_json::from_slice(&sealed).unwrap();
        relabelled["key_id"] = "other".into();
        let twin = StaticSeal::load_with(&config(&hex::encode([1u8; 32]), "other"), &no_env).unwrap();
        assert!(
            twin.open(Purpose::RootKey, &serde_json::to_vec(&relabelled).unwrap())
                .is_err()
        );
    }
}
