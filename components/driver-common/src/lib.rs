//! Logic shared by Warden's components that needs nothing from the host but
//! randomness, time and hashing (passed in through [`Env`]), so it builds and
//! tests natively: Vault's username templates, statement splitting and
//! rendering, SQL connection settings, time formatting and password policies.

#![forbid(unsafe_code)]

pub mod duration;
pub mod memo;
pub mod mongo;
pub mod mysql;
pub mod password;
pub mod random;
pub mod redact;
pub mod sql_config;
pub mod statements;
pub mod template;
pub mod time;

/// What the shared logic needs from the host. Components implement it with
/// the `crypto` and `clock` imports; tests with fixed values.
pub trait Env {
    /// Bytes from a CSPRNG.
    fn random_bytes(&mut self, len: usize) -> Vec<u8>;
    /// Seconds and nanoseconds since the Unix epoch (UTC).
    fn now(&self) -> (i64, u32);
    /// SHA-256 digest of `data`.
    fn sha256(&self, data: &[u8]) -> Vec<u8>;
}

/// A deterministic [`Env`] for unit tests.
#[cfg(test)]
pub(crate) mod test_env {
    pub struct FixedEnv {
        pub counter: u8,
        pub now: (i64, u32),
    }

    impl FixedEnv {
        pub fn new() -> Self {
            // 2026-11-25 14:03:11.123456789 UTC
            FixedEnv {
                counter: 0,
                now: (1_795_615_391, 123_456_789),
            }
        }
    }

    impl super::Env for FixedEnv {
        fn random_bytes(&mut self, len: usize) -> Vec<u8> {
            (0..len)
                .map(|_| {
                    self.counter = self.counter.wrapping_add(1);
                    self.counter
                })
                .collect()
        }
        fn now(&self) -> (i64, u32) {
            self.now
        }
        fn sha256(&self, data: &[u8]) -> Vec<u8> {
            // Not SHA-256: a stand-in that is just stable for tests.
            let mut out = vec![0u8; 32];
            for (i, b) in data.iter().enumerate() {
                out[i % 32] ^= b.wrapping_add(i as u8);
            }
            out
        }
    }
}
