//! Shamir secret sharing over GF(2^8) with the AES polynomial, byte-compatible with sops's fork
//! of HashiCorp Vault's `shamir` package: a share is the y-values for every secret byte followed
//! by its x coordinate (`i + 1` for group `i`).

/// Why shares could not be combined or a secret split.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ShamirError {
    /// Fewer than two parts, or parts of different lengths.
    #[error("need at least two key-group shares of equal length to combine, got {0}")]
    Parts(usize),
    /// Two parts have the same x coordinate.
    #[error("duplicate key-group share")]
    Duplicate,
    /// Parameters out of range (2 ≤ threshold ≤ parts ≤ 255).
    #[error("invalid Shamir parameters: threshold {threshold}, parts {parts}")]
    Params { threshold: usize, parts: usize },
    /// The OS random source failed.
    #[error("cannot read random bytes")]
    Random,
}

fn mul(mut a: u8, mut b: u8) -> u8 {
    let mut r = 0u8;
    for _ in 0..8 {
        r ^= a & 0u8.wrapping_sub(b & 1);
        let hi = a >> 7;
        a = (a << 1) ^ (0x1b & 0u8.wrapping_sub(hi));
        b >>= 1;
    }
    r
}

fn inv(a: u8) -> u8 {
    // a^254 = a^-1 in GF(2^8).
    let mut r = 1u8;
    let mut base = a;
    let mut e = 254u8;
    while e > 0 {
        if e & 1 == 1 {
            r = mul(r, base);
        }
        base = mul(base, base);
        e >>= 1;
    }
    r
}

fn div(a: u8, b: u8) -> u8 {
    mul(a, inv(b))
}

/// Recovers the secret from `parts` (each `y… || x`).
pub fn combine(parts: &[&[u8]]) -> Result<zeroize::Zeroizing<Vec<u8>>, ShamirError> {
    if parts.len() < 2 {
        return Err(ShamirError::Parts(parts.len()));
    }
    let len = parts[0].len();
    if len < 2 || parts.iter().any(|p| p.len() != len) {
        return Err(ShamirError::Parts(parts.len()));
    }
    let xs: Vec<u8> = parts.iter().map(|p| p[len - 1]).collect();
    for (i, a) in xs.iter().enumerate() {
        if xs[..i].contains(a) {
            return Err(ShamirError::Duplicate);
        }
    }
    let mut secret = zeroize::Zeroizing::new(vec![0u8; len - 1]);
    for (idx, out) in secret.iter_mut().enumerate() {
        let mut acc = 0u8;
        for (i, p) in parts.iter().enumerate() {
            let mut basis = 1u8;
            for (j, &xj) in xs.iter().enumerate() {
                if i != j {
                    basis = mul(basis, div(xj, xj ^ xs[i]));
                }
            }
            acc ^= mul(p[idx], basis);
        }
        *out = acc;
    }
    Ok(secret)
}

/// Splits `secret` into `parts` shares, any `threshold` of which recover it.
pub fn split(
    secret: &[u8],
    parts: usize,
    threshold: usize,
) -> Result<Vec<zeroize::Zeroizing<Vec<u8>>>, ShamirError> {
    if threshold < 2 || parts < threshold || parts > 255 {
        return Err(ShamirError::Params { threshold, parts });
    }
    let mut shares: Vec<zeroize::Zeroizing<Vec<u8>>> = (0..parts)
        .map(|i| {
            let mut v = vec![0u8; secret.len() + 1];
            v[secret.len()] = (i + 1) as u8;
            zeroize::Zeroizing::new(v)
        })
        .collect();
    let mut coeffs = zeroize::Zeroizing::new(vec![0u8; threshold]);
    for (idx, &s) in secret.iter().enumerate() {
        coeffs[0] = s;
        getrandom::getrandom(&mut coeffs[1..]).map_err(|_| ShamirError::Random)?;
        for share in shares.iter_mut() {
            let x = share[secret.len()];
            // Horner's rule.
            let mut y = 0u8;
            for &c in coeffs.iter().rev() {
                y = mul(y, x) ^ c;
            }
            share[idx] = y;
        }
    }
    Ok(shares)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_combine() {
        let secret: Vec<u8> = (0..32).collect();
        let shares = split(&secret, 3, 2).unwrap_or_default();
        assert_eq!(shares.len(), 3);
        for (a, b) in [(0, 1), (0, 2), (1, 2)] {
            let got = combine(&[&shares[a], &shares[b]]).map(|s| s.to_vec());
            assert_eq!(got, Ok(secret.clone()));
        }
        assert_eq!(mul(0x53, 0xca), 0x01);
        assert_eq!(combine(&[&shares[0]]).err(), Some(ShamirError::Parts(1)));
    }
}
