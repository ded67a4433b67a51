//! Vault's duration settings (`parseutil.ParseDurationSecond`): a plain
//! number of seconds, a number with a `d` suffix for days, or a Go duration
//! string such as "1h30m" or "1.5s". Warden keeps whole seconds.

/// Parses a duration string into whole seconds (fractions are dropped).
pub fn parse_seconds(input: &str) -> Result<u64, String> {
    let s = input.trim();
    let invalid = || format!("invalid duration {input:?}");
    if s.is_empty() {
        return Ok(0);
    }
    if s.starts_with('-') {
        return Err(format!("duration {input:?} must not be negative"));
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().map_err(|_| invalid());
    }
    if let Some(days) = s.strip_suffix('d') {
        let days: u64 = days.parse().map_err(|_| invalid())?;
        return days.checked_mul(86_400).ok_or_else(invalid);
    }
    // A Go duration: one or more <number><unit>, with an optional '+'.
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let number: f64 = rest[..num_len].parse().map_err(|_| invalid())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(invalid()),
        };
        rest = &rest[unit_len..];
        total += number * unit;
    }
    if total >= u64::MAX as f64 {
        return Err(invalid());
    }
    Ok(total as u64)
}

#[cfg(test)]
mod tests {
    use super::parse_seconds;

    #[test]
    fn vault_forms() {
        assert_eq!(parse_seconds(""), Ok(0));
        assert_eq!(parse_seconds("0s"), Ok(0));
        assert_eq!(parse_seconds("30"), Ok(30));
        assert_eq!(parse_seconds("30s"), Ok(30));
        assert_eq!(parse_seconds("5m"), Ok(300));
        assert_eq!(parse_seconds("1h30m"), Ok(5400));
        assert_eq!(parse_seconds("1.5h"), Ok(5400));
        assert_eq!(parse_seconds("2d"), Ok(172_800));
        assert_eq!(parse_seconds("1500ms"), Ok(1));
        assert_eq!(parse_seconds(" 10m "), Ok(600));
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["abc", "5x", "-5s", "m", "1.2.3s", "5 m", "1d2h"] {
            assert!(parse_seconds(bad).is_err(), "{bad} should be rejected");
        }
    }
}
