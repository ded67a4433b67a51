//! Vault's duration settings (`parseutil.ParseDurationSecond`) for the
//! drivers' connection settings: a plain number of seconds, a whole number
//! with a `d` suffix for days, or a Go duration string such as "1h30m" or
//! "1.5s". The parsing is the `goduration` crate's, the host's too; this
//! module only adds that these settings cannot be negative.

/// Parses a duration string into whole seconds (fractions are dropped).
pub fn parse_seconds(input: &str) -> Result<u64, String> {
    let secs = goduration::parse_seconds(input).map_err(|e| e.to_string())?;
    u64::try_from(secs).map_err(|_| format!("duration {input:?} must not be negative"))
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
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["abc", "5x", "m", "1.2.3s", "5 m", "1d2h", " 10m ", "1.5d"] {
            assert!(parse_seconds(bad).is_err(), "{bad} should be rejected");
        }
        assert_eq!(
            parse_seconds("-5s"),
            Err("duration \"-5s\" must not be negative".into())
        );
        assert_eq!(
            parse_seconds("5x"),
            Err("time: unknown unit \"x\" in duration \"5x\"".into())
        );
    }
}
