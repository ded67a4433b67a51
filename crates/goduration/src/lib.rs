//! Duration strings as Vault reads them, in one place for the host and the
//! Wasm components:
//! - [`parse_go`]: Go's `time.ParseDuration` (`"1h30m"`, `"-1.5s"`,
//!   `"300ms"`; units ns, us/µs/μs, ms, s, m, h; a bare number only when it
//!   is `0`), with Go's error texts;
//! - [`parse_seconds`]: Vault's duration fields (go-secure-stdlib's
//!   `parseutil.ParseDurationSecond`): empty is zero, an integer is seconds,
//!   `<integer>d` is days, anything else a Go duration.
//!
//! The arithmetic is Go's, on integers (an `f64` sum would lose whole
//! seconds past 2^53 nanoseconds), so results agree with Vault to the
//! second. Durations are bounded as Go's are (an `i64` of nanoseconds, about
//! 292 years, [`MAX_SECS`]); anything longer is [`Error::OutOfRange`], so no
//! timestamp computed from a parsed value can overflow later. Plain `std`,
//! no dependencies: it builds for wasm32-wasip2 as well as natively.

use std::fmt;

/// The longest duration Go (hence Vault) can hold, in whole seconds either
/// way: `time.Duration` is an `i64` of nanoseconds.
pub const MAX_SECS: i64 = i64::MAX / NANOS_PER_SEC;

const NANOS_PER_SEC: i64 = 1_000_000_000;

/// Why a duration string was refused. The texts are Go's (`time:` and
/// `strconv.ParseInt:`), except [`Error::OutOfRange`], which says the limit
/// where Go only says "invalid duration".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// `time: invalid duration "…"`: not the shape of a Go duration.
    Invalid { input: String },
    /// `time: missing unit in duration "…"`: a number without a unit.
    MissingUnit { input: String },
    /// `time: unknown unit "…" in duration "…"`.
    UnknownUnit { unit: String, input: String },
    /// `strconv.ParseInt: parsing "…": invalid syntax`: the number before a
    /// `d` suffix is not an integer (`"1.5d"`, `"1h2d"`).
    BadDays { number: String },
    /// Longer than [`MAX_SECS`] either way.
    OutOfRange { input: String },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Invalid { input } => write!(f, "time: invalid duration {}", quote(input)),
            Error::MissingUnit { input } => write!(f, "time: missing unit in duration {}", quote(input)),
            Error::UnknownUnit { unit, input } => {
                write!(f, "time: unknown unit {} in duration {}", quote(unit), quote(input))
            }
            Error::BadDays { number } => write!(f, "strconv.ParseInt: parsing {number:?}: invalid syntax"),
            Error::OutOfRange { input } => write!(
                f,
                "duration {} is out of range: at most {MAX_SECS} seconds ({}) either way",
                quote(input),
                human(MAX_SECS)
            ),
        }
    }
}

impl std::error::Error for Error {}

/// Vault's duration field (`parseutil.ParseDurationSecond`) in whole
/// seconds, truncated toward zero: `""` is 0, `"300"` is 300 seconds,
/// `"2d"` two days, `"1h30m"` a Go duration. Like Vault, no surrounding
/// space is trimmed and `d` is only a suffix of a whole number.
pub fn parse_seconds(input: &str) -> Result<i64, Error> {
    if input.is_empty() {
        return Ok(0);
    }
    let out_of_range = || Error::OutOfRange { input: input.into() };
    if let Ok(secs) = input.parse::<i64>() {
        return in_range(secs).ok_or_else(out_of_range);
    }
    if let Some(number) = input.strip_suffix('d') {
        // strconv.ParseInt's syntax: an optional sign and ASCII digits,
        // which is what i64's FromStr takes; only the range differs.
        let digits = number.strip_prefix(['-', '+']).unwrap_or(number);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::BadDays { number: number.into() });
        }
        return number
            .parse::<i64>()
            .ok()
            .and_then(|days| days.checked_mul(86_400))
            .and_then(in_range)
            .ok_or_else(out_of_range);
    }
    parse_go(input).map(|nanos| nanos / NANOS_PER_SEC)
}

/// Go's `time.ParseDuration`, in nanoseconds: `[-+]?([0-9]*(\.[0-9]*)?unit)+`
/// or `0`. A fraction counts to the nanosecond as Go counts it (through
/// an `f64`, exact for every unit up to hours).
pub fn parse_go(input: &str) -> Result<i64, Error> {
    let invalid = || Error::Invalid { input: input.into() };
    let out_of_range = || Error::OutOfRange { input: input.into() };
    let (neg, mut rest) = match input.as_bytes().first() {
        Some(b'-') => (true, &input[1..]),
        Some(b'+') => (false, &input[1..]),
        _ => (false, input),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    // The total so far, in nanoseconds; at most 2^63 (i64::MIN's magnitude
    // when negative).
    const LIMIT: u64 = 1 << 63;
    let mut total: u64 = 0;
    while !rest.is_empty() {
        if !rest.starts_with(|c: char| c == '.' || c.is_ascii_digit()) {
            return Err(invalid());
        }
        let int_len = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        let whole = leading_int(&rest[..int_len]).ok_or_else(out_of_range)?;
        rest = &rest[int_len..];
        let mut fraction = None;
        if let Some(after_dot) = rest.strip_prefix('.') {
            let frac_len = after_dot.find(|c: char| !c.is_ascii_digit()).unwrap_or(after_dot.len());
            fraction = Some(leading_fraction(&after_dot[..frac_len]));
            rest = &after_dot[frac_len..];
        }
        if int_len == 0 && fraction.is_none_or(|(_, _, digits)| digits == 0) {
            // No digits at all: ".s", "-.h".
            return Err(invalid());
        }
        let unit_len = rest
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(rest.len());
        if unit_len == 0 {
            return Err(Error::MissingUnit { input: input.into() });
        }
        let unit_text = &rest[..unit_len];
        rest = &rest[unit_len..];
        let unit: u64 = match unit_text {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => {
                return Err(Error::UnknownUnit {
                    unit: unit_text.into(),
                    input: input.into(),
                });
            }
        };
        let mut value = whole
            .checked_mul(unit)
            .filter(|v| *v <= LIMIT)
            .ok_or_else(out_of_range)?;
        if let Some((f, scale, _)) = fraction.filter(|(f, _, _)| *f > 0) {
            // Go: v += uint64(float64(f) * (float64(unit) / scale)); the
            // product is at most 3.6e12 (nanoseconds in an hour), so the
            // conversion cannot saturate.
            let nanos = (f as f64 * (unit as f64 / scale)) as u64;
            value = value
                .checked_add(nanos)
                .filter(|v| *v <= LIMIT)
                .ok_or_else(out_of_range)?;
        }
        total = total
            .checked_add(value)
            .filter(|t| *t <= LIMIT)
            .ok_or_else(out_of_range)?;
    }
    if neg {
        // -2^63 is i64::MIN itself.
        Ok(0i64.wrapping_sub_unsigned(total))
    } else {
        i64::try_from(total).map_err(|_| out_of_range())
    }
}

/// Go's `leadingInt`: ASCII digits as a u64, None past 2^63.
fn leading_int(digits: &str) -> Option<u64> {
    let mut x: u64 = 0;
    for d in digits.bytes() {
        x = x.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
        if x > 1 << 63 {
            return None;
        }
    }
    Some(x)
}

/// Go's `leadingFraction`: the digits after a '.', as a value and its scale
/// (10^digits used); digits past what a u64 holds are dropped, as Go drops
/// them. Also returns how many digits there were.
fn leading_fraction(digits: &str) -> (u64, f64, usize) {
    let (mut x, mut scale, mut overflow) = (0u64, 1f64, false);
    for d in digits.bytes() {
        if overflow {
            continue;
        }
        if x > (i64::MAX as u64) / 10 {
            overflow = true;
            continue;
        }
        let y = x * 10 + u64::from(d - b'0');
        if y > 1 << 63 {
            overflow = true;
            continue;
        }
        x = y;
        scale *= 10.0;
    }
    (x, scale, digits.len())
}

/// Go's `time.quote`: double quotes around the text, `"` and `\\` escaped,
/// and each byte of a control or non-ASCII character as `\xNN`.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c < ' ' || !c.is_ascii() {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("\\x{b:02x}"));
            }
        } else {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
    }
    out.push('"');
    out
}

fn in_range(secs: i64) -> Option<i64> {
    (-MAX_SECS..=MAX_SECS).contains(&secs).then_some(secs)
}

/// `2562047h47m16s`: whole seconds as Go prints a duration (h, m, s).
fn human(secs: i64) -> String {
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    format!("{h}h{m}m{s}s")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(input: &str) -> String {
        match parse_seconds(input) {
            Ok(v) => panic!("{input:?} parsed as {v}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn vault_duration_fields() {
        assert_eq!(parse_seconds(""), Ok(0));
        assert_eq!(parse_seconds("0"), Ok(0));
        assert_eq!(parse_seconds("300"), Ok(300));
        assert_eq!(parse_seconds("-300"), Ok(-300));
        assert_eq!(parse_seconds("+7"), Ok(7));
        assert_eq!(parse_seconds("30s"), Ok(30));
        assert_eq!(parse_seconds("1h"), Ok(3600));
        assert_eq!(parse_seconds("1h30m"), Ok(5400));
        assert_eq!(parse_seconds("1.5h"), Ok(5400));
        assert_eq!(parse_seconds("1.h"), Ok(3600));
        assert_eq!(parse_seconds(".5m"), Ok(30));
        assert_eq!(parse_seconds("1500ms"), Ok(1));
        assert_eq!(parse_seconds("-1500ms"), Ok(-1), "truncated toward zero, as Go divides");
        assert_eq!(parse_seconds("2d"), Ok(172_800));
        assert_eq!(parse_seconds("-2d"), Ok(-172_800));
        assert_eq!(parse_seconds("4632596261s"), Ok(4_632_596_261));
        assert_eq!(parse_seconds("1µs"), Ok(0));
        assert_eq!(parse_seconds("90μs"), Ok(0));
    }

    #[test]
    fn texts_are_quoted_as_go_quotes_them() {
        assert_eq!(
            err("1µx"),
            "time: unknown unit \"\\xc2\\xb5x\" in duration \"1\\xc2\\xb5x\""
        );
        assert_eq!(err("\"x\\"), "time: invalid duration \"\\\"x\\\\\"");
        assert_eq!(err("1\th"), "time: unknown unit \"\\x09h\" in duration \"1\\x09h\"");
    }

    #[test]
    fn errors_carry_gos_texts() {
        assert_eq!(err("banana"), "time: invalid duration \"banana\"");
        assert_eq!(err("1x"), "time: unknown unit \"x\" in duration \"1x\"");
        assert_eq!(err("1h "), "time: unknown unit \"h \" in duration \"1h \"");
        assert_eq!(err("h"), "time: invalid duration \"h\"");
        assert_eq!(err(".h"), "time: invalid duration \".h\"");
        assert_eq!(err("-"), "time: invalid duration \"-\"");
        assert_eq!(err("1.2.3h"), "time: missing unit in duration \"1.2.3h\"");
        assert_eq!(err("1h30"), "time: missing unit in duration \"1h30\"");
        assert_eq!(err(" 10m"), "time: invalid duration \" 10m\"");
        assert_eq!(err("1.5d"), "strconv.ParseInt: parsing \"1.5\": invalid syntax");
        assert_eq!(err("1h2d"), "strconv.ParseInt: parsing \"1h2\": invalid syntax");
        assert_eq!(err("d"), "strconv.ParseInt: parsing \"\": invalid syntax");
    }

    #[test]
    fn past_gos_int64_nanoseconds_is_out_of_range() {
        assert_eq!(parse_seconds("9223372036"), Ok(MAX_SECS));
        assert_eq!(parse_seconds("-9223372036"), Ok(-MAX_SECS));
        assert_eq!(parse_seconds("2562047h"), Ok(2_562_047 * 3600));
        assert_eq!(parse_go("-9223372036.854775808s"), Ok(i64::MIN));
        assert_eq!(parse_go("9223372036.854775807s"), Ok(i64::MAX));
        for bad in [
            "9223372037",
            "10000000000000",
            "9223372036854775807",
            "9999999999999h",
            "2562048h",
            "-2562048h",
            "106752d",
            "9223372036.854775808s",
            "99999999999999999999d",
            &format!("{}s", "9".repeat(400)),
        ] {
            let e = err(bad);
            assert!(
                e.contains("out of range: at most 9223372036 seconds (2562047h47m16s)"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn go_durations_need_units() {
        assert_eq!(parse_go("0"), Ok(0));
        assert_eq!(parse_go("-0"), Ok(0));
        assert_eq!(parse_go("12h").map(|n| n / NANOS_PER_SEC), Ok(43_200));
        assert_eq!(parse_go("1.000000001s"), Ok(1_000_000_001));
        assert_eq!(parse_go("0.1ns"), Ok(0));
        assert_eq!(
            parse_go("300").map_err(|e| e.to_string()),
            Err("time: missing unit in duration \"300\"".into())
        );
        assert_eq!(
            parse_go("1d").map_err(|e| e.to_string()),
            Err("time: unknown unit \"d\" in duration \"1d\"".into())
        );
        assert_eq!(
            parse_go("").map_err(|e| e.to_string()),
            Err("time: invalid duration \"\"".into())
        );
    }
}

/// Property tests: no input panics, what parses is within Go's range, and
/// the forms Vault documents parse to what they say.
#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    /// Strings shaped like durations (signs, long digit runs, fractions,
    /// every unit, unknown units, several segments), and any string at all.
    fn duration_text() -> impl Strategy<Value = String> {
        let unit = prop::sample::select(vec![
            "", "ns", "us", "µs", "μs", "ms", "s", "m", "h", "d", "x", "e3s", "S", " ", "hh",
        ]);
        let number = prop_oneof![
            "[0-9]{1,25}",
            "[0-9]{0,12}\\.[0-9]{0,25}",
            "[0-9]{300,400}",
            Just("9223372036854775808".to_string()),
            Just("18446744073709551616".to_string()),
            Just(".".to_string()),
        ];
        let segment = (number, unit).prop_map(|(n, u)| format!("{n}{u}"));
        prop_oneof![
            3 => (prop::sample::select(vec!["", "-", "+", "--", " "]), prop::collection::vec(segment, 1..4))
                .prop_map(|(sign, segs)| format!("{sign}{}", segs.concat())),
            1 => any::<String>(),
            1 => any::<i64>().prop_map(|n| n.to_string()),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

        #[test]
        fn never_panics_and_stays_in_range(s in duration_text()) {
            if let Ok(secs) = parse_seconds(&s) {
                prop_assert!((-MAX_SECS..=MAX_SECS).contains(&secs), "{s:?} -> {secs}");
            }
            let _ = parse_go(&s);
        }

        #[test]
        fn whole_seconds_parse_to_themselves(n in -MAX_SECS..=MAX_SECS) {
            prop_assert_eq!(parse_seconds(&n.to_string()), Ok(n));
            prop_assert_eq!(parse_seconds(&format!("{n}s")), Ok(n));
        }

        #[test]
        fn units_multiply(n in 0i64..100_000, unit in prop::sample::select(vec![("s", 1i64), ("m", 60), ("h", 3600), ("d", 86400)])) {
            prop_assert_eq!(parse_seconds(&format!("{n}{}", unit.0)), Ok(n * unit.1));
            prop_assert_eq!(parse_seconds(&format!("-{n}{}", unit.0)), Ok(-n * unit.1));
        }

        #[test]
        fn segments_add_up(h in 0i64..1000, m in 0i64..1000, s in 0i64..1000, ms in 0i64..100_000) {
            prop_assert_eq!(
                parse_seconds(&format!("{h}h{m}m{s}s{ms}ms")),
                Ok(h * 3600 + m * 60 + s + ms / 1000)
            );
        }
    }
}
