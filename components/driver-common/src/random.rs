//! Uniform random characters from a charset, by rejection sampling: a byte is
//! used only if it falls below the largest multiple of the charset length
//! that fits in a byte, so `byte % len` favours no character.

use crate::Env;

/// Vault's base62 alphabet, used by the `random` template function.
pub const BASE62: &str = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `len` characters drawn uniformly from `charset` (1 to 256 characters).
pub fn random_chars(env: &mut dyn Env, charset: &[char], len: usize) -> Result<String, String> {
    let n = charset.len();
    if n == 0 || n > 256 {
        return Err(format!("charset must hold 1 to 256 characters, not {n}"));
    }
    let limit = 256 / n * n;
    let mut out = String::with_capacity(len);
    let mut count = 0;
    // Each byte is kept with probability > 1/2, so 64 rounds only run out
    // if the host's random source is broken.
    for _ in 0..64 {
        if count == len {
            return Ok(out);
        }
        // Ask for a little more than needed to make up for rejected bytes.
        let missing = len - count;
        for b in env.random_bytes(missing + missing / 2 + 1) {
            if usize::from(b) < limit && count < len {
                out.push(charset[usize::from(b) % n]);
                count += 1;
            }
        }
    }
    if count == len {
        Ok(out)
    } else {
        Err("the random source returned too few usable bytes".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_env::FixedEnv;

    #[test]
    fn draws_only_from_charset() {
        let chars: Vec<char> = BASE62.chars().collect();
        let s = random_chars(&mut FixedEnv::new(), &chars, 300).expect("random");
        assert_eq!(s.chars().count(), 300);
        assert!(s.chars().all(|c| c.is_ascii_alphanumeric()));
    }

    #[test]
    fn rejects_bytes_that_would_bias() {
        // 3 chars: bytes >= 255 are dropped; 1,2,3 map to b,c,a.
        let s = random_chars(&mut FixedEnv::new(), &['a', 'b', 'c'], 3).expect("random");
        assert_eq!(s, "bca");
        struct High;
        impl Env for High {
            fn random_bytes(&mut self, len: usize) -> Vec<u8> {
                vec![255; len]
            }
            fn now(&self) -> (i64, u32) {
                (0, 0)
            }
            fn sha256(&self, _: &[u8]) -> Vec<u8> {
                Vec::new()
            }
        }
        assert!(random_chars(&mut High, &['a', 'b', 'c'], 1).is_err());
        assert_eq!(random_chars(&mut High, &['a', 'b'], 2).as_deref(), Ok("bb"));
    }

    #[test]
    fn zero_length_and_bad_charsets() {
        assert_eq!(random_chars(&mut FixedEnv::new(), &['a'], 0).as_deref(), Ok(""));
        assert!(random_chars(&mut FixedEnv::new(), &[], 1).is_err());
    }
}
