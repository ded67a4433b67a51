//! Reading typed fields out of a request's JSON data the way Vault's
//! framework does: durations as seconds or Go duration strings, lists as JSON
//! arrays or comma-separated strings, and Vault's error texts on bad input.

use crate::error::{Error, Result};
use serde_json::{Map, Value};

fn convert_err(field: &str, msg: impl std::fmt::Display) -> Error {
    Error::bad(format!("error converting input for field {field:?}: {msg}"))
}

/// The longest duration Vault can hold, in seconds: Go's `time.Duration`
/// is an int64 of nanoseconds (about 292 years). Longer input is refused
/// where it is parsed, so every TTL, period and window stored is in range
/// and no timestamp computed from one can overflow later.
pub const MAX_DURATION_SECS: i64 = goduration::MAX_SECS;

/// The error for a duration past [`MAX_DURATION_SECS`] either way.
fn out_of_range(input: impl std::fmt::Display) -> String {
    format!(
        "duration {input} is out of range: at most {MAX_DURATION_SECS} seconds ({}) either way",
        super::ttl::human(MAX_DURATION_SECS)
    )
}

/// A Vault duration field's text in whole seconds: a bare integer is
/// seconds, "2d" days, anything else a Go duration ("1h30m", "300ms",
/// "-2s"); "" is 0. Anything longer than [`MAX_DURATION_SECS`] is an error.
/// The parser is the `goduration` crate's, shared with the components.
pub fn parse_duration(input: &str) -> std::result::Result<i64, String> {
    goduration::parse_seconds(input).map_err(|e| e.to_string())
}

fn in_range(secs: i64) -> Option<i64> {
    (-MAX_DURATION_SECS..=MAX_DURATION_SECS).contains(&secs).then_some(secs)
}

/// A duration field in seconds; absent means `None`.
pub fn duration(data: &Map<String, Value>, field: &str) -> Result<Option<i64>> {
    match data.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            let secs = match n.as_i64() {
                Some(i) => in_range(i),
                // A float (or an integer past i64) counts in whole seconds.
                None => n
                    .as_f64()
                    .filter(|f| f.abs() <= MAX_DURATION_SECS as f64)
                    .map(|f| f.trunc() as i64),
            };
            secs.map(Some).ok_or_else(|| convert_err(field, out_of_range(n)))
        }
        Some(Value::String(s)) => parse_duration(s).map(Some).map_err(|e| convert_err(field, e)),
        Some(other) => Err(convert_err(field, format!("cannot parse {other} as a duration"))),
    }
}

pub fn string(data: &Map<String, Value>, field: &str) -> Result<Option<String>> {
    match data.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(Value::Bool(b)) => Ok(Some(b.to_string())),
        Some(_) => Err(convert_err(field, "expected a string")),
    }
}

pub fn boolean(data: &Map<String, Value>, field: &str) -> Result<Option<bool>> {
    match data.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) => match s.as_str() {
            "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(Some(true)),
            "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(Some(false)),
            _ => Err(convert_err(field, format!("cannot parse '{s}' as bool"))),
        },
        Some(Value::Number(n)) => Ok(Some(n.as_f64() != Some(0.0))),
        Some(_) => Err(convert_err(field, "expected a boolean")),
    }
}

pub fn integer(data: &Map<String, Value>, field: &str) -> Result<Option<i64>> {
    match data.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| convert_err(field, "expected an integer")),
        Some(Value::String(s)) => s
            .trim()
            .parse::<i64>()
            .map(Some)
            .map_err(|_| convert_err(field, format!("cannot parse '{s}' as int"))),
        Some(_) => Err(convert_err(field, "expected an integer")),
    }
}

/// Vault's `TypeFloat`: a JSON number or a numeric string; NaN and the
/// infinities are refused (no quota or setting means them).
pub fn float(data: &Map<String, Value>, field: &str) -> Result<Option<f64>> {
    let value = match data.get(field) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        Some(_) => None,
    };
    match value {
        Some(f) if f.is_finite() => Ok(Some(f)),
        _ => Err(convert_err(field, "expected a finite number")),
    }
}

/// Vault's `TypeCommaStringSlice`: a JSON array, or one string split on ','.
pub fn comma_list(data: &Map<String, Value>, field: &str) -> Result<Option<Vec<String>>> {
    match data.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(
            s.split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(String::from)
                .collect(),
        )),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.trim().to_string()),
                other => Ok(other.to_string()),
            })
            .collect::<Result<Vec<_>>>()
            .map(Some),
        Some(_) => Err(convert_err(field, "expected a list of strings")),
    }
}

/// Vault's `TypeStringSlice` for statements: a JSON array, or one string kept
/// whole (drivers split statements on ';' when they run them).
pub fn string_list(data: &Map<String, Value>, field: &str) -> Result<Option<Vec<String>>> {
    match data.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(Some(vec![])),
        Some(Value::String(s)) => Ok(Some(vec![s.clone()])),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                _ => Err(convert_err(field, "expected a list of strings")),
            })
            .collect::<Result<Vec<_>>>()
            .map(Some),
        Some(_) => Err(convert_err(field, "expected a list of strings")),
    }
}

/// Names of objects (roles, connections) follow Vault's `framework.GenericNameRegex`.
pub fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    match b.len() {
        0 => false,
        1 => word(b[0]),
        n => word(b[0]) && word(b[n - 1]) && b[1..n - 1].iter().all(|&c| word(c) || c == b'-' || c == b'.'),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_like_go_and_vault() {
        assert_eq!(parse_duration("1h"), Ok(3600));
        assert_eq!(parse_duration("1h30m"), Ok(5400));
        assert_eq!(parse_duration("300"), Ok(300));
        assert_eq!(parse_duration("1.5h"), Ok(5400));
        assert_eq!(parse_duration("2d"), Ok(172800));
        assert_eq!(parse_duration("1500ms"), Ok(1));
        assert_eq!(
            parse_duration("1x"),
            Err("time: unknown unit \"x\" in duration \"1x\"".into())
        );
        assert_eq!(
            parse_duration("banana"),
            Err("time: invalid duration \"banana\"".into())
        );
        assert!(parse_duration("h").is_err());
        // Exact past 2^53 ns (an f64 sum made this 4632596260).
        assert_eq!(parse_duration("4632596261s"), Ok(4632596261));
        assert_eq!(parse_duration("1.h"), Ok(3600));
        assert_eq!(parse_duration(".5m"), Ok(30));
        assert!(parse_duration(".h").is_err());
        assert!(parse_duration("1.2.3h").is_err());
    }

    #[test]
    fn durations_past_gos_int64_nanoseconds_are_refused() {
        assert_eq!(parse_duration("9223372036"), Ok(MAX_DURATION_SECS));
        assert_eq!(parse_duration("-9223372036"), Ok(-MAX_DURATION_SECS));
        for bad in [
            "9223372037",
            "10000000000000",
            "9223372036854775807",
            "9999999999999h",
            "2562048h",
            "-2562048h",
            &format!("{}s", "9".repeat(400)),
        ] {
            let e = parse_duration(bad).unwrap_err();
            assert!(e.contains("out of range"), "{bad}: {e}");
        }
        // Too long for i64 and no unit: not a duration at all.
        assert!(parse_duration(&"9".repeat(400)).is_err());
        assert_eq!(parse_duration("2562047h"), Ok(2562047 * 3600));
        for (body, ok) in [
            (serde_json::json!({"t": 10000000000000i64}), false),
            (serde_json::json!({"t": i64::MAX}), false),
            (serde_json::json!({"t": u64::MAX}), false),
            (serde_json::json!({"t": 1e308}), false),
            (serde_json::json!({"t": -1e13}), false),
            (serde_json::json!({"t": 9223372036i64}), true),
            (serde_json::json!({"t": 1.5}), true),
        ] {
            let got = duration(body.as_object().unwrap(), "t");
            assert_eq!(got.is_ok(), ok, "{body}: {got:?}");
            if let Err(e) = got {
                assert!(
                    e.to_string()
                        .starts_with("error converting input for field \"t\": duration"),
                    "{e}"
                );
            }
        }
    }

    #[test]
    fn duration_field_error_names_the_field() {
        let data = serde_json::json!({"default_ttl": "1x"});
        let err = duration(data.as_object().unwrap(), "default_ttl").unwrap_err();
        assert_eq!(
            err.to_string(),
            "error converting input for field \"default_ttl\": time: unknown unit \"x\" in duration \"1x\""
        );
    }

    #[test]
    fn lists_accept_arrays_and_strings() {
        let data = serde_json::json!({"a": "x, y", "b": ["p", "q"], "s": "one; two"});
        let m = data.as_object().unwrap();
        assert_eq!(comma_list(m, "a").unwrap().unwrap(), vec!["x", "y"]);
        assert_eq!(comma_list(m, "b").unwrap().unwrap(), vec!["p", "q"]);
        assert_eq!(string_list(m, "s").unwrap().unwrap(), vec!["one; two"]);
    }

    #[test]
    fn names_follow_vaults_regex() {
        for ok in ["a", "app", "my-role.v2", "a_b"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "a/b", "a b", ".a"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}

/// Property tests: no input of any shape makes a field parser panic, and
/// every duration accepted is within Go's int64 nanoseconds. Kept apart from
/// `tests` so edits to the parsers and to these properties merge cleanly.
#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    /// Strings shaped like Go durations (signs, long digit runs, fractions,
    /// exponents, every unit, unknown units, several segments) as well as
    /// any string at all.
    fn duration_text() -> impl Strategy<Value = String> {
        let unit = prop::sample::select(vec![
            "", "ns", "us", "µs", "μs", "ms", "s", "m", "h", "d", "x", "e3s", "S", " ", "hh",
        ]);
        let number = prop_oneof![
            "[0-9]{1,25}",
            "[0-9]{0,12}\\.[0-9]{0,12}",
            "[0-9]{300,400}",
            Just("9223372036854775807".to_string()),
            Just("18446744073709551616".to_string()),
            Just("1e308".to_string()),
            Just("NaN".to_string()),
            Just("inf".to_string()),
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

    /// Any JSON number serde_json can hold: i64, u64, finite f64.
    fn json_number() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
            prop::sample::select(vec![1e308, -1e308, 1e13, -1e13, 9.223372036854775e18, 0.5, -0.0])
                .prop_map(|f| json!(f)),
        ]
    }

    /// Any JSON value, a few levels deep.
    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            json_number(),
            duration_text().prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-z_]{0,8}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn field(v: Value) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("f".into(), v);
        m
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn parse_duration_never_panics_and_stays_in_range(s in duration_text()) {
            if let Ok(secs) = parse_duration(&s) {
                prop_assert!(secs.abs() <= MAX_DURATION_SECS, "{s:?} -> {secs}");
            }
        }

        #[test]
        fn whole_seconds_parse_to_themselves(n in -MAX_DURATION_SECS..=MAX_DURATION_SECS) {
            prop_assert_eq!(parse_duration(&n.to_string()), Ok(n));
            prop_assert_eq!(parse_duration(&format!("{n}s")), Ok(n));
        }

        #[test]
        fn units_multiply(n in 0i64..100_000, unit in prop::sample::select(vec![("s", 1i64), ("m", 60), ("h", 3600), ("d", 86400)])) {
            prop_assert_eq!(parse_duration(&format!("{n}{}", unit.0)), Ok(n * unit.1));
        }

        #[test]
        fn duration_field_never_panics_and_stays_in_range(v in json_value()) {
            if let Ok(Some(secs)) = duration(&field(v.clone()), "f") {
                prop_assert!(secs.abs() <= MAX_DURATION_SECS, "{v} -> {secs}");
            }
        }

        #[test]
        fn integer_boolean_string_and_lists_never_panic(v in json_value()) {
            let data = field(v);
            let _ = integer(&data, "f");
            let _ = boolean(&data, "f");
            let _ = string(&data, "f");
            let _ = comma_list(&data, "f");
            let _ = string_list(&data, "f");
            let _ = integer(&data, "absent");
        }

        #[test]
        fn integer_reads_every_i64(n in any::<i64>()) {
            prop_assert_eq!(integer(&field(json!(n)), "f").ok().flatten(), Some(n));
            prop_assert_eq!(integer(&field(json!(n.to_string())), "f").ok().flatten(), Some(n));
        }

        #[test]
        fn comma_list_items_are_trimmed_and_never_empty(s in any::<String>()) {
            if let Ok(Some(items)) = comma_list(&field(Value::String(s)), "f") {
                prop_assert!(items.iter().all(|i| !i.is_empty() && i.trim() == i));
            }
        }

        #[test]
        fn valid_name_never_panics(s in any::<String>()) {
            let _ = valid_name(&s);
        }
    }
}
