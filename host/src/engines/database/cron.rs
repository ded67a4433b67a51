//! Five-field cron expressions (`minute hour day-of-month month
//! day-of-week`) for static roles' `rotation_schedule`, read as Vault reads
//! them: robfig/cron's parser with the minute, hour, day-of-month, month and
//! day-of-week fields only (no seconds, no `@daily` descriptors). Times are
//! UTC.
//!
//! The `cron` crate computes the times. Its dialect is Quartz's, not
//! robfig's, so this module checks each field with robfig's rules and error
//! texts and hands the crate a normalised numeric expression:
//! - the crate wants a seconds field: "0 " goes in front;
//! - robfig numbers weekdays 0-6 from Sunday (7 is out of range), the crate
//!   1-7: weekday numbers are shifted by one;
//! - robfig takes `?` for `*` in any field, and any step (`*/90` in minutes
//!   is minute 0 alone); the crate takes `?` only in the day fields and no
//!   step past a field's maximum: ranges and steps go over as `a-b/s`, or
//!   as the single value `a` when the step passes the range's end;
//! - robfig fires when the day of the month OR the day of the week matches
//!   if both fields are restricted (neither holds a `*` or `?` item with a
//!   step of 1), and when both match otherwise; the crate always needs
//!   both, so the OR case is two crate schedules, one per day field, and the
//!   earlier time wins.

use chrono::{DateTime, Datelike, Utc};

/// A parsed schedule: one crate schedule, or two whose earlier time wins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    schedules: Vec<cron::Schedule>,
}

/// How far ahead `next` looks before deciding a schedule never fires: as
/// robfig/cron, five calendar years past the start's.
const HORIZON_YEARS: i32 = 5;

/// One field's bounds and names (robfig's `bounds`).
struct Bounds {
    min: i64,
    max: i64,
    names: &'static [&'static str],
    /// The number the first name stands for.
    names_from: i64,
}

const MINUTES: Bounds = Bounds {
    min: 0,
    max: 59,
    names: &[],
    names_from: 0,
};
const HOURS: Bounds = Bounds {
    min: 0,
    max: 23,
    names: &[],
    names_from: 0,
};
const DAYS_OF_MONTH: Bounds = Bounds {
    min: 1,
    max: 31,
    names: &[],
    names_from: 0,
};
const MONTHS: Bounds = Bounds {
    min: 1,
    max: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
    names_from: 1,
};
const DAYS_OF_WEEK: Bounds = Bounds {
    min: 0,
    max: 6,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
    names_from: 0,
};

/// A field checked with robfig's rules: the crate's text for it, and
/// whether robfig would mark it with its "star bit".
struct Field {
    text: String,
    star: bool,
}

impl Schedule {
    /// Parses a five-field expression; errors are robfig/cron's texts.
    pub fn parse(spec: &str) -> Result<Schedule, String> {
        if spec.is_empty() {
            return Err("empty spec string".into());
        }
        let spec = without_time_zone(spec)?;
        if spec.starts_with('@') {
            return Err(format!("parser does not accept descriptors: {spec}"));
        }
        let fields: Vec<&str> = spec.split_whitespace().collect();
        let [minute, hour, dom, month, dow] = fields.as_slice() else {
            return Err(format!(
                "expected exactly 5 fields, found {}: [{}]",
                fields.len(),
                fields.join(" ")
            ));
        };
        let minute = field(minute, &MINUTES, 0)?;
        let hour = field(hour, &HOURS, 0)?;
        let dom = field(dom, &DAYS_OF_MONTH, 0)?;
        let month = field(month, &MONTHS, 0)?;
        let dow = field(dow, &DAYS_OF_WEEK, 1)?;
        let build = |dom: &str, dow: &str| {
            let text = format!("0 {} {} {dom} {} {dow}", minute.text, hour.text, month.text);
            cron::Schedule::try_from(text.as_str()).map_err(|e| format!("invalid schedule {spec:?}: {e}"))
        };
        let schedules = if dom.star || dow.star {
            vec![build(&dom.text, &dow.text)?]
        } else {
            vec![build(&dom.text, "*")?, build("*", &dow.text)?]
        };
        Ok(Schedule { schedules })
    }

    /// The first time strictly after `after` (at a whole minute) that the
    /// schedule names, or None if there is none within five years.
    pub fn next(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // The crate's years end at 2100, and it adds a second to `after`
        // (which must not overflow): nothing to find past then anyway.
        if after.year() >= 2100 {
            return None;
        }
        self.schedules
            .iter()
            .filter_map(|s| s.after(&after).next())
            .min()
            .filter(|t| t.year() <= after.year() + HORIZON_YEARS)
    }
}

/// robfig's `TZ=` / `CRON_TZ=` prefix: Warden's schedules are in UTC, so
/// only UTC is accepted there.
fn without_time_zone(spec: &str) -> Result<&str, String> {
    let Some(rest) = spec.strip_prefix("CRON_TZ=").or_else(|| spec.strip_prefix("TZ=")) else {
        return Ok(spec);
    };
    let (zone, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    match zone {
        "" | "UTC" | "Etc/UTC" => Ok(rest.trim()),
        other => Err(format!(
            "provided bad location {other}: only UTC is supported (schedules are in UTC)"
        )),
    }
}

/// One field: comma-separated items, each `*`, `?`, `v` or `a-b`, with an
/// optional `/step`, checked as robfig's `getRange` checks them. `shift` is
/// added to every value in the crate's text (1 for weekdays).
fn field(text: &str, b: &Bounds, shift: i64) -> Result<Field, String> {
    let mut items = Vec::new();
    let mut star = false;
    for expr in text.split(',') {
        let (range, step) = match expr.split('/').collect::<Vec<_>>().as_slice() {
            [range] => (*range, None),
            [range, step] => (*range, Some(number(step)?)),
            _ => return Err(format!("too many slashes: {expr}")),
        };
        let bounds: Vec<&str> = range.split('-').collect();
        let (start, mut end, item_star) = if bounds[0] == "*" || bounds[0] == "?" {
            // As robfig: anything after "*-" is ignored.
            (b.min, b.max, true)
        } else {
            let start = value(bounds[0], b)?;
            match bounds.as_slice() {
                [_] => (start, start, false),
                [_, end] => (start, value(end, b)?, false),
                _ => return Err(format!("too many hyphens: {expr}")),
            }
        };
        // "v/step" runs from v to the field's end.
        if step.is_some() && bounds.len() == 1 {
            end = b.max;
        }
        let step = step.unwrap_or(1);
        if start < b.min {
            return Err(format!(
                "beginning of range ({start}) below minimum ({}): {expr}",
                b.min
            ));
        }
        if end > b.max {
            return Err(format!("end of range ({end}) above maximum ({}): {expr}", b.max));
        }
        if start > end {
            return Err(format!(
                "beginning of range ({start}) beyond end of range ({end}): {expr}"
            ));
        }
        if step == 0 {
            return Err(format!("step of range should be a positive number: {expr}"));
        }
        star |= item_star && step <= 1;
        let (start, end) = (start + shift, end + shift);
        items.push(if step > end - start {
            start.to_string()
        } else if step == 1 {
            format!("{start}-{end}")
        } else {
            format!("{start}-{end}/{step}")
        });
    }
    Ok(Field {
        text: items.join(","),
        star,
    })
}

/// A number or (case-insensitive) name, as robfig's `parseIntOrName`.
fn value(text: &str, b: &Bounds) -> Result<i64, String> {
    let lower = text.to_ascii_lowercase();
    match b.names.iter().position(|n| *n == lower) {
        Some(i) => Ok(b.names_from + i as i64),
        None => number(text),
    }
}

/// robfig's `mustParseInt`: Go's `strconv.Atoi`, and no negatives.
fn number(text: &str) -> Result<i64, String> {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "failed to parse int from {text}: strconv.Atoi: parsing {text:?}: invalid syntax"
        ));
    }
    let n: i64 = text
        .parse()
        .map_err(|_| format!("failed to parse int from {text}: strconv.Atoi: parsing {text:?}: value out of range"))?;
    if n < 0 {
        return Err(format!("negative number ({n}) not allowed: {text}"));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).expect("time").with_timezone(&Utc)
    }

    fn next(spec: &str, after: &str) -> String {
        Schedule::parse(spec)
            .expect("schedule")
            .next(at(after))
            .map(|t| t.to_rfc3339())
            .unwrap_or_default()
    }

    fn err(spec: &str) -> String {
        Schedule::parse(spec).expect_err(spec)
    }

    #[test]
    fn every_minute_fires_at_the_next_whole_minute() {
        assert_eq!(next("*/1 * * * *", "2026-11-25T10:00:30Z"), "2026-11-25T10:01:00+00:00");
        assert_eq!(next("* * * * *", "2026-11-25T10:00:00Z"), "2026-11-25T10:01:00+00:00");
        assert_eq!(
            next("* * * * *", "2026-11-25T10:00:59.999Z"),
            "2026-11-25T10:01:00+00:00"
        );
        assert_eq!(
            next("*/15 * * * *", "2026-11-25T10:14:59Z"),
            "2026-11-25T10:15:00+00:00"
        );
        assert_eq!(
            next("*/15 * * * *", "2026-11-25T10:45:00Z"),
            "2026-11-25T11:00:00+00:00"
        );
    }

    #[test]
    fn hours_days_months_and_names() {
        assert_eq!(next("1 0 * * *", "2026-11-25T10:00:00Z"), "2026-11-26T00:01:00+00:00");
        assert_eq!(
            next("0 12 1 jan *", "2026-11-25T10:00:00Z"),
            "2027-01-01T12:00:00+00:00"
        );
        assert_eq!(
            next("30 9 * * MON-FRI", "2026-11-27T10:00:00Z"),
            "2026-11-30T09:30:00+00:00"
        );
        // 0 is Sunday: 2026-11-29 is one.
        assert_eq!(next("0 0 * * 0", "2026-11-25T10:00:00Z"), "2026-11-29T00:00:00+00:00");
        assert_eq!(next("0 0 * * sun", "2026-11-25T10:00:00Z"), "2026-11-29T00:00:00+00:00");
        assert_eq!(next("0 0 * * 6", "2026-11-25T10:00:00Z"), "2026-11-28T00:00:00+00:00");
        assert_eq!(next("0 0 29 2 *", "2026-11-25T10:00:00Z"), "2028-02-29T00:00:00+00:00");
        assert_eq!(
            next("5,10-12 3 * * *", "2026-11-25T03:10:30Z"),
            "2026-11-25T03:11:00+00:00"
        );
        assert_eq!(
            next("10/20 * * * *", "2026-11-25T03:31:00Z"),
            "2026-11-25T03:50:00+00:00"
        );
        // A step past the range's end: its start alone.
        assert_eq!(
            next("*/90 * * * *", "2026-11-25T03:31:00Z"),
            "2026-11-25T04:00:00+00:00"
        );
        assert_eq!(next("? ? ? ? ?", "2026-11-25T03:31:00Z"), "2026-11-25T03:32:00+00:00");
        // Weekday steps count from Sunday: Sun, Tue, Thu, Sat.
        assert_eq!(next("0 0 * * */2", "2026-11-25T10:00:00Z"), "2026-11-26T00:00:00+00:00");
        assert_eq!(next("0 0 * * 1/2", "2026-11-25T10:00:00Z"), "2026-11-27T00:00:00+00:00");
    }

    #[test]
    fn day_of_month_or_day_of_week_when_both_are_given() {
        // The 1st of the month OR any Monday: 2026-11-30 is a Monday.
        assert_eq!(next("0 0 1 * 1", "2026-11-25T00:00:00Z"), "2026-11-30T00:00:00+00:00");
        assert_eq!(next("0 0 1 * 1", "2026-11-30T00:00:00Z"), "2026-12-01T00:00:00+00:00");
        // A step over the whole range is not a star, for robfig: OR again.
        assert_eq!(next("0 0 */2 * 1", "2026-11-30T00:00:00Z"), "2026-12-01T00:00:00+00:00");
        // A star with step 1 is: AND, so the 1st that is a Monday.
        assert_eq!(next("0 0 1 * */1", "2026-11-25T00:00:00Z"), "2026-12-01T00:00:00+00:00");
        assert_eq!(next("0 0 1 * mon", "2026-11-25T00:00:00Z"), "2026-11-30T00:00:00+00:00");
        assert_eq!(
            next("0 0 1 * mon", "2026-11-25T00:00:00Z"),
            next("0 0 1 * 1", "2026-11-25T00:00:00Z")
        );
        assert_eq!(
            next("0 0 */1 * mon", "2026-11-25T00:00:00Z"),
            "2026-11-30T00:00:00+00:00"
        );
        assert_eq!(
            next("0 0 13 * fri", "2026-11-25T00:00:00Z"),
            "2026-11-27T00:00:00+00:00"
        );
    }

    #[test]
    fn never_firing_schedules_have_no_next() {
        let never = Schedule::parse("0 0 30 2 *").expect("parses");
        assert!(never.next(at("2026-01-01T00:00:00Z")).is_none());
        // Five calendar years ahead, as robfig looks.
        let leap = Schedule::parse("0 0 29 2 *").expect("parses");
        assert_eq!(
            leap.next(at("2097-03-01T00:00:00Z")),
            None,
            "2100 is not a leap year and 2104 is past the horizon"
        );
        assert!(leap.next(at("2099-12-31T23:59:59Z")).is_none());
        assert!(leap.next(DateTime::<Utc>::MAX_UTC).is_none());
        assert!(
            leap.next(DateTime::<Utc>::MIN_UTC).is_none(),
            "before 1970: the crate's years"
        );
    }

    #[test]
    fn time_zone_prefixes_name_utc_only() {
        assert_eq!(
            next("TZ=UTC 0 0 * * *", "2026-11-25T10:00:00Z"),
            "2026-11-26T00:00:00+00:00"
        );
        assert_eq!(
            next("CRON_TZ=Etc/UTC 0 0 * * *", "2026-11-25T10:00:00Z"),
            "2026-11-26T00:00:00+00:00"
        );
        assert!(err("TZ=Europe/Paris 0 0 * * *").starts_with("provided bad location Europe/Paris"));
    }

    #[test]
    fn bad_expressions_get_robfigs_errors() {
        assert_eq!(err(""), "empty spec string");
        assert_eq!(err("   "), "expected exactly 5 fields, found 0: []");
        assert_eq!(err("* * * *"), "expected exactly 5 fields, found 4: [* * * *]");
        assert_eq!(err("0 * * * * *"), "expected exactly 5 fields, found 6: [0 * * * * *]");
        assert_eq!(err("@daily"), "parser does not accept descriptors: @daily");
        assert_eq!(err("@every 1h"), "parser does not accept descriptors: @every 1h");
        assert_eq!(err("60 * * * *"), "end of range (60) above maximum (59): 60");
        assert_eq!(err("* 24 * * *"), "end of range (24) above maximum (23): 24");
        assert_eq!(err("* * 0 * *"), "beginning of range (0) below minimum (1): 0");
        assert_eq!(err("* * * 13 *"), "end of range (13) above maximum (12): 13");
        assert_eq!(err("* * * * 7"), "end of range (7) above maximum (6): 7");
        assert_eq!(err("*/0 * * * *"), "step of range should be a positive number: */0");
        assert_eq!(
            err("5-1 * * * *"),
            "beginning of range (5) beyond end of range (1): 5-1"
        );
        assert_eq!(err("1-2-3 * * * *"), "too many hyphens: 1-2-3");
        assert_eq!(err("1/2/3 * * * *"), "too many slashes: 1/2/3");
        assert_eq!(err("*/-1 * * * *"), "negative number (-1) not allowed: -1");
        assert_eq!(
            err("a * * * *"),
            "failed to parse int from a: strconv.Atoi: parsing \"a\": invalid syntax"
        );
        assert!(err("* * * * monday").contains("parsing \"monday\""));
        assert!(err("1,,2 * * * *").contains("parsing \"\""));
        assert!(err("99999999999999999999 * * * *").contains("value out of range"));
        assert!(err("not a cron").starts_with("expected exactly 5 fields, found 3"));
    }
}

/// Property tests: no input panics or hangs, and every time `next` gives
/// is after the start, on a whole minute, and named by the fields.
#[cfg(test)]
mod props {
    use super::*;
    use chrono::{Duration, Timelike};
    use proptest::prelude::*;

    /// Items of one field: numbers near the bounds, names, stars, ranges,
    /// steps, and junk.
    fn item() -> impl Strategy<Value = String> {
        let atom = prop_oneof![
            (0u32..70).prop_map(|n| n.to_string()),
            prop::sample::select(vec![
                "*",
                "?",
                "jan",
                "DEC",
                "mon",
                "Sun",
                "x",
                "",
                "-1",
                "99999999999999999999",
                "+3",
            ])
            .prop_map(String::from),
        ];
        (
            atom.clone(),
            prop::option::of(atom),
            prop::option::of(prop_oneof![
                (0u32..100).prop_map(|n| n.to_string()),
                Just("x".to_string())
            ]),
        )
            .prop_map(|(a, b, step)| {
                let mut s = a;
                if let Some(b) = b {
                    s = format!("{s}-{b}");
                }
                if let Some(step) = step {
                    s = format!("{s}/{step}");
                }
                s
            })
    }

    fn spec() -> impl Strategy<Value = String> {
        let field = prop::collection::vec(item(), 1..4).prop_map(|items| items.join(","));
        prop_oneof![
            4 => prop::collection::vec(field, 5).prop_map(|f| f.join(" ")),
            1 => prop::collection::vec(item(), 0..8).prop_map(|f| f.join(" ")),
            1 => any::<String>(),
            1 => "[-0-9*?/, @a-zA-Z=]{0,40}",
        ]
    }

    /// Valid specs only: every item within its field's bounds.
    fn valid_spec() -> impl Strategy<Value = String> {
        let field = |lo: u32, hi: u32| {
            let item = (
                lo..=hi,
                lo..=hi,
                prop::option::of(1u32..80),
                any::<bool>(),
                any::<bool>(),
            )
                .prop_map(move |(a, b, step, range, star)| {
                    let base = match (star, range) {
                        (true, _) => "*".to_string(),
                        (false, true) => format!("{}-{}", a.min(b), a.max(b)),
                        (false, false) => a.to_string(),
                    };
                    step.map_or(base.clone(), |s| format!("{base}/{s}"))
                });
            prop::collection::vec(item, 1..3).prop_map(|items| items.join(","))
        };
        (field(0, 59), field(0, 23), field(1, 31), field(1, 12), field(0, 6))
            .prop_map(|(a, b, c, d, e)| format!("{a} {b} {c} {d} {e}"))
    }

    /// robfig's reading of a valid `spec`, expanded field by field apart
    /// from the crate: one bit per value, and the day fields' star bits.
    struct Expanded {
        fields: [u64; 5],
        dom_star: bool,
        dow_star: bool,
    }

    impl Expanded {
        fn new(spec: &str) -> Expanded {
            let spec = without_time_zone(spec).expect("valid");
            let f: Vec<&str> = spec.split_whitespace().collect();
            let set = |text: &str, b: &Bounds| -> (u64, bool) {
                let parsed = field(text, b, 0).expect("valid field");
                let mut bits = 0u64;
                for item in parsed.text.split(',') {
                    let (range, step) = item.split_once('/').unwrap_or((item, "1"));
                    let (lo, hi) = range.split_once('-').unwrap_or((range, range));
                    let (lo, hi, step): (u64, u64, usize) = (
                        lo.parse().expect("lo"),
                        hi.parse().expect("hi"),
                        step.parse().expect("step"),
                    );
                    for v in (lo..=hi).step_by(step) {
                        bits |= 1 << v;
                    }
                }
                (bits, parsed.star)
            };
            let (dom, dom_star) = set(f[2], &DAYS_OF_MONTH);
            let (dow, dow_star) = set(f[4], &DAYS_OF_WEEK);
            Expanded {
                fields: [
                    set(f[0], &MINUTES).0,
                    set(f[1], &HOURS).0,
                    dom,
                    set(f[3], &MONTHS).0,
                    dow,
                ],
                dom_star,
                dow_star,
            }
        }

        /// Whether the schedule names minute `t`.
        fn names(&self, t: DateTime<Utc>) -> bool {
            let [min, hour, dom, month, dow] = self.fields;
            let d = dom & (1 << t.day()) != 0;
            let w = dow & (1 << t.weekday().num_days_from_sunday()) != 0;
            let day = if self.dom_star || self.dow_star { d && w } else { d || w };
            min & (1 << t.minute()) != 0 && hour & (1 << t.hour()) != 0 && month & (1 << t.month()) != 0 && day
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

        #[test]
        fn valid_specs_parse(s in valid_spec()) {
            prop_assert!(Schedule::parse(&s).is_ok(), "{:?}: {:?}", s, Schedule::parse(&s));
        }

        #[test]
        fn parse_and_next_never_panic(s in prop_oneof![spec(), valid_spec()], secs in 0i64..4_102_444_800) {
            if let Ok(schedule) = Schedule::parse(&s) {
                let expanded = Expanded::new(&s);
                let after = DateTime::<Utc>::from_timestamp(secs, 0).expect("in range");
                if let Some(t) = schedule.next(after) {
                    prop_assert!(t > after, "{s:?}: {t} after {after}");
                    prop_assert_eq!(t.second(), 0);
                    prop_assert!(expanded.names(t), "{:?} does not name {}", s, t);
                    // Nothing earlier, checked over the first day at most.
                    let mut m = after.with_second(0).expect("s") + Duration::minutes(1);
                    while m < t && m < after + Duration::days(1) {
                        prop_assert!(!expanded.names(m), "{:?}: {} named before {}", s, m, t);
                        m += Duration::minutes(1);
                    }
                }
            }
        }
    }
}
