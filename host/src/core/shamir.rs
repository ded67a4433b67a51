//! Shamir's secret sharing over GF(2^8), byte-compatible with Vault's `shamir`
//! package: the unseal keys an operator holds are shares of the root key, and
//! any `threshold` of them rebuild it. A share is the polynomial values for
//! every secret byte followed by one byte: its x-coordinate.

use rand::RngCore;
use rand::seq::SliceRandom;
use zeroize::Zeroizing;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ShamirError {
    #[error("parts cannot be less than threshold")]
    PartsLessThanThreshold,
    #[error("threshold must be at least 2")]
    ThresholdTooSmall,
    #[error("cannot split an empty secret")]
    EmptySecret,
    #[error("less than two parts cannot be used to reconstruct the secret")]
    TooFewParts,
    #[error("parts must be at least two bytes")]
    PartTooShort,
    #[error("all parts must be the same length")]
    LengthMismatch,
    #[error("duplicate part detected")]
    DuplicatePart,
    #[error("invalid share: x-coordinate 0 would reveal the secret itself")]
    ZeroX,
}

pub type Result<T> = std::result::Result<T, ShamirError>;

/// Multiplication in GF(2^8) modulo the AES polynomial x^8+x^4+x^3+x+1 (0x11b).
/// A fixed 8-round loop with masks instead of branches or lookup tables, so the
/// time taken does not depend on the (secret) operands.
pub fn mul(mut a: u8, mut b: u8) -> u8 {
    let mut r = 0u8;
    for _ in 0..8 {
        r ^= a & 0u8.wrapping_sub(b & 1);
        let carry = 0u8.wrapping_sub(a >> 7);
        a = (a << 1) ^ (0x1b & carry);
        b >>= 1;
    }
    r
}

/// The multiplicative inverse: a^254, since a^255 = 1 for every non-zero a.
/// Maps 0 to 0; callers never divide by 0 (x-coordinates are distinct).
pub fn inv(a: u8) -> u8 {
    let mut result = 1u8;
    let mut base = a;
    let mut exp = 254u8;
    while exp > 0 {
        if exp & 1 == 1 {
            result = mul(result, base);
        }
        base = mul(base, base);
        exp >>= 1;
    }
    result
}

pub fn div(a: u8, b: u8) -> u8 {
    mul(a, inv(b))
}

/// Evaluate the polynomial with `coefficients` (constant term first) at `x`
/// by Horner's rule.
fn evaluate(coefficients: &[u8], x: u8) -> u8 {
    coefficients.iter().rev().fold(0u8, |acc, &c| mul(acc, x) ^ c)
}

/// The value at x = 0 of the polynomial through the points (xs[i], ys[i]):
/// Lagrange interpolation, as Vault's `interpolatePolynomial(x_samples, y_samples, 0)`.
fn interpolate_at_zero(xs: &[u8], ys: &[u8]) -> u8 {
    let mut result = 0u8;
    for (i, (&xi, &yi)) in xs.iter().zip(ys).enumerate() {
        let mut basis = 1u8;
        for (j, &xj) in xs.iter().enumerate() {
            if i != j {
                // (0 - xj) / (xi - xj); subtraction is XOR in GF(2^8).
                basis = mul(basis, div(xj, xi ^ xj));
            }
        }
        result ^= mul(yi, basis);
    }
    result
}

/// Split `secret` into `parts` shares, any `threshold` of which rebuild it.
/// `parts` is a u8, so Vault's "parts cannot exceed 255" holds by type.
pub fn split(secret: &[u8], parts: u8, threshold: u8) -> Result<Vec<Vec<u8>>> {
    if parts < threshold {
        return Err(ShamirError::PartsLessThanThreshold);
    }
    if threshold < 2 {
        return Err(ShamirError::ThresholdTooSmall);
    }
    if secret.is_empty() {
        return Err(ShamirError::EmptySecret);
    }
    let mut rng = rand::rng();
    // Distinct, non-zero x-coordinates in random order, as Vault does; x = 0
    // would be the secret itself.
    let mut xs: Vec<u8> = (1..=255).collect();
    xs.shuffle(&mut rng);
    xs.truncate(usize::from(parts));

    let mut shares: Vec<Vec<u8>> = xs
        .iter()
        .map(|&x| {
            let mut share = vec![0u8; secret.len() + 1];
            share[secret.len()] = x;
            share
        })
        .collect();
    // The random coefficients are as secret as the secret: wipe them after use.
    let mut coefficients = Zeroizing::new(vec![0u8; usize::from(threshold)]);
    for (idx, &byte) in secret.iter().enumerate() {
        coefficients[0] = byte;
        rng.fill_bytes(&mut coefficients[1..]);
        for share in shares.iter_mut() {
            let x = share[secret.len()];
            share[idx] = evaluate(&coefficients, x);
        }
    }
    Ok(shares)
}

/// Rebuild a secret from shares made by [`split`] (or by Vault). With fewer
/// than the threshold it returns a wrong value, not an error: nothing in a
/// share says how many are needed.
pub fn combine(shares: &[Vec<u8>]) -> Result<Vec<u8>> {
    if shares.len() < 2 {
        return Err(ShamirError::TooFewParts);
    }
    let len = shares[0].len();
    if len < 2 {
        return Err(ShamirError::PartTooShort);
    }
    if shares.iter().any(|s| s.len() != len) {
        return Err(ShamirError::LengthMismatch);
    }
    let mut xs = Vec::with_capacity(shares.len());
    let mut seen = [false; 256];
    for share in shares {
        let x = share[len - 1];
        if seen[usize::from(x)] {
            return Err(ShamirError::DuplicatePart);
        }
        // Vault does not check this, but a share with x = 0 can only be forged
        // or corrupt; rejecting it keeps the interpolation well defined.
        if x == 0 {
            return Err(ShamirError::ZeroX);
        }
        seen[usize::from(x)] = true;
        xs.push(x);
    }
    let mut secret = vec![0u8; len - 1];
    let mut ys = Zeroizing::new(vec![0u8; shares.len()]);
    for (idx, out) in secret.iter_mut().enumerate() {
        for (y, share) in ys.iter_mut().zip(shares) {
            *y = share[idx];
        }
        *out = interpolate_at_zero(&xs, &ys);
    }
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random_secret(len: usize) -> Vec<u8> {
        let mut s = vec![0u8; len];
        rand::rng().fill_bytes(&mut s);
        s
    }

    #[test]
    fn field_arithmetic() {
        // The worked example from FIPS-197 §4.2: {57} • {83} = {c1}.
        assert_eq!(mul(0x57, 0x83), 0xc1);
        assert_eq!(mul(0x57, 0x13), 0xfe);
        for a in 1..=255u8 {
            assert_eq!(mul(a, inv(a)), 1, "inverse of {a:#x}");
            assert_eq!(mul(a, 1), a);
            assert_eq!(mul(a, 0), 0);
            assert_eq!(div(mul(a, 0x53), 0x53), a);
        }
    }

    #[test]
    fn every_threshold_subset_recovers_a_32_byte_key() {
        let secret = random_secret(32);
        let shares = split(&secret, 5, 3).unwrap();
        assert_eq!(shares.len(), 5);
        let xs: std::collections::HashSet<u8> = shares.iter().map(|s| s[32]).collect();
        assert_eq!(xs.len(), 5, "x-coordinates are distinct");
        assert!(!xs.contains(&0));
        for s in &shares {
            assert_eq!(s.len(), 33);
        }
        let mut subsets = 0;
        for a in 0..5 {
            for b in a + 1..5 {
                for c in b + 1..5 {
                    let subset = vec![shares[a].clone(), shares[b].clone(), shares[c].clone()];
                    assert_eq!(combine(&subset).unwrap(), secret, "shares {a},{b},{c}");
                    // Order does not matter.
                    let reversed: Vec<Vec<u8>> = subset.into_iter().rev().collect();
                    assert_eq!(combine(&reversed).unwrap(), secret);
                    subsets += 1;
                }
            }
        }
        assert_eq!(subsets, 10);
        // More than the threshold works too.
        assert_eq!(combine(&shares).unwrap(), secret);
    }

    #[test]
    fn fewer_than_threshold_do_not_recover() {
        let secret = random_secret(32);
        let shares = split(&secret, 5, 3).unwrap();
        for a in 0..5 {
            for b in a + 1..5 {
                let got = combine(&[shares[a].clone(), shares[b].clone()]).unwrap();
                assert_eq!(got.len(), 32);
                assert_ne!(got, secret, "two of a 3-threshold split must not give the secret");
            }
        }
    }

    #[test]
    fn one_byte_and_64_byte_secrets() {
        for len in [1usize, 64] {
            let secret = random_secret(len);
            let shares = split(&secret, 3, 2).unwrap();
            for (a, b) in [(0, 1), (0, 2), (1, 2)] {
                assert_eq!(combine(&[shares[a].clone(), shares[b].clone()]).unwrap(), secret);
            }
        }
        let secret = random_secret(64);
        let shares = split(&secret, 255, 255).unwrap();
        assert_eq!(combine(&shares).unwrap(), secret);
    }

    #[test]
    fn split_rejects_bad_parameters() {
        assert_eq!(split(b"k", 2, 3), Err(ShamirError::PartsLessThanThreshold));
        assert_eq!(split(b"k", 3, 1), Err(ShamirError::ThresholdTooSmall));
        assert_eq!(split(b"k", 3, 0), Err(ShamirError::ThresholdTooSmall));
        assert_eq!(split(b"", 3, 2), Err(ShamirError::EmptySecret));
    }

    #[test]
    fn combine_rejects_malformed_shares() {
        let shares = split(b"secret", 3, 2).unwrap();
        assert_eq!(combine(&[]), Err(ShamirError::TooFewParts));
        assert_eq!(combine(&shares[..1]), Err(ShamirError::TooFewParts));
        assert_eq!(combine(&[vec![1], vec![2]]), Err(ShamirError::PartTooShort));
        let mut short = shares[1].clone();
        short.remove(0);
        assert_eq!(combine(&[shares[0].clone(), short]), Err(ShamirError::LengthMismatch));
        assert_eq!(
            combine(&[shares[0].clone(), shares[0].clone()]),
            Err(ShamirError::DuplicatePart)
        );
        let mut zero = shares[1].clone();
        *zero.last_mut().unwrap() = 0;
        assert_eq!(combine(&[shares[0].clone(), zero]), Err(ShamirError::ZeroX));
    }

    #[test]
    fn known_shares_interpolate_by_hand() {
        // f(x) = 0x42 + 0x07·x: shares at x=1 and x=2 computed by hand.
        let s1 = vec![0x42 ^ mul(0x07, 1), 1];
        let s2 = vec![0x42 ^ mul(0x07, 2), 2];
        assert_eq!(combine(&[s1, s2]).unwrap(), vec![0x42]);
    }
}
