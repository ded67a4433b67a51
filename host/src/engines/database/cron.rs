//! Five-field cron expressions (`minute hour day-of-month month
//! day-of-week`) for static roles' `rotation_schedule`, with the semantics
//! of the robfig/cron parser Vault uses: `*`, lists, ranges, steps, month
//! and weekday names, 7 as Sunday, and day-of-month OR day-of-week when both
//! are restricted. Times are UTC.

use chrono::{DateTime, Datelike, Duration, TimeZone, Timelike, Utc};

/// A parsed schedule: one bit per allowed value of each field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    minutes: u64,
    hours: u64,
    days: u64,
    months: u64,
    weekdays: u64,
    /// True when day-of-month or day-of-week was `*` (or `?`): then both
    /// must match; otherwise either may.
    day_star: bool,
}

const MONTHS: &[&str] = &[
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const WEEKDAYS: &[&str] = &["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/// How far ahead `next` looks before deciding a schedule never fires (as
/// robfig/cron: five years).
const HORIZON_DAYS: i64 = 5 * 366;

impl Schedule {
    pub fn parse(spec: &str) -> Result<Schedule, String> {
        let fields: Vec<&str> = spec.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(format!(
                "expected exactly 5 fields (minute hour day-of-month month day-of-week), found {}: {spec:?}",
                fields.len()
            ));
        }
        let minutes = field(fields[0], 0, 59, &[], 0)?;
        let hours = field(fields[1], 0, 23, &[], 0)?;
        let days = field(fields[2], 1, 31, &[], 0)?;
        let months = field(fields[3], 1, 12, MONTHS, 1)?;
        let mut weekdays = field(fields[4], 0, 7, WEEKDAYS, 0)?;
        // 7 is Sunday too.
        if weekdays & (1 << 7) != 0 {
            weekdays = (weekdays | 1) & !(1 << 7);
        }
        let star = |f: &str| f == "*" || f == "?";
        Ok(Schedule {
            minutes,
            hours,
            days,
            months,
            weekdays,
            day_star: star(fields[2]) || star(fields[4]),
        })
    }

    fn day_matches(&self, t: &DateTime<Utc>) -> bool {
        let dom = self.days & (1 << t.day()) != 0;
        let dow = self.weekdays & (1 << t.weekday().num_days_from_sunday()) != 0;
        if self.day_star { dom && dow } else { dom || dow }
    }

    /// The first time strictly after `after` (at a whole minute) that the
    /// schedule names, or None if there is none within five years.
    pub fn next(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // Start at the next whole minute.
        let start = after.with_second(0)?.with_nanosecond(0)? + Duration::minutes(1);
        let limit = start + Duration::days(HORIZON_DAYS);
        let mut t = start;
        while t < limit {
            if self.months & (1 << t.month()) == 0 {
                // First minute of the next month.
                let (y, m) = if t.month() == 12 {
                    (t.year() + 1, 1)
                } else {
                    (t.year(), t.month() + 1)
                };
                t = Utc.with_ymd_and_hms(y, m, 1, 0, 0, 0).single()?;
                continue;
            }
            if !self.day_matches(&t) {
                t = (t + Duration::days(1)).with_hour(0)?.with_minute(0)?;
                continue;
            }
            if self.hours & (1 << t.hour()) == 0 {
                t = (t + Duration::hours(1)).with_minute(0)?;
                continue;
            }
            if self.minutes & (1 << t.minute()) == 0 {
                t += Duration::minutes(1);
                continue;
            }
            return Some(t);
        }
        None
    }
}

/// One field: comma-separated items, each `*`, `?`, `v`, `a-b`, with an
/// optional `/step`. Names (case-insensitive) stand for numbers from `base`.
fn field(text: &str, min: u32, max: u32, names: &[&str], base: u32) -> Result<u64, String> {
    let mut bits = 0u64;
    for item in text.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s.parse().map_err(|_| format!("invalid step {s:?} in {text:?}"))?;
                if step == 0 {
                    return Err(format!("step of zero in {text:?}"));
                }
                (r, Some(step))
            }
            None => (item, None),
        };
        let (lo, hi) = if range == "*" || range == "?" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a, names, base)?, value(b, names, base)?)
        } else {
            let v = value(range, names, base)?;
            // "v/step" means from v to the end, as robfig/cron reads it.
            (v, if step.is_some() { max } else { v })
        };
        if lo < min || hi > max {
            return Err(format!("value out of range ({min}-{max}) in {text:?}"));
        }
        if lo > hi {
            return Err(format!(
                "beginning of range ({lo}) beyond end of range ({hi}) in {text:?}"
            ));
        }
        let step = step.unwrap_or(1) as usize;
        for v in (lo..=hi).step_by(step) {
            bits |= 1 << v;
        }
    }
    Ok(bits)
}

fn value(text: &str, names: &[&str], base: u32) -> Result<u32, String> {
    let lower = text.to_ascii_lowercase();
    if let Some(i) = names.iter().position(|n| *n == lower) {
        return Ok(i as u32 + base);
    }
    text.parse().map_err(|_| format!("failed to parse int from {text:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn next(spec: &str, after: &str) -> String {
        Schedule::parse(spec)
            .unwrap()
            .next(at(after))
            .map(|t| t.to_rfc3339())
            .unwrap_or_default()
    }

    #[test]
    fn every_minute_fires_at_the_next_whole_minute() {
        assert_eq!(next("*/1 * * * *", "2026-11-25T10:00:30Z"), "2026-11-25T10:01:00+00:00");
        assert_eq!(next("* * * * *", "2026-11-25T10:00:00Z"), "2026-11-25T10:01:00+00:00");
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
        // 7 is Sunday.
        assert_eq!(next("0 0 * * 7", "2026-11-25T10:00:00Z"), "2026-11-29T00:00:00+00:00");
        assert_eq!(next("0 0 29 2 *", "2026-11-25T10:00:00Z"), "2028-02-29T00:00:00+00:00");
        assert_eq!(
            next("5,10-12 3 * * *", "2026-11-25T03:10:30Z"),
            "2026-11-25T03:11:00+00:00"
        );
        assert_eq!(
            next("10/20 * * * *", "2026-11-25T03:31:00Z"),
            "2026-11-25T03:50:00+00:00"
        );
    }

    #[test]
    fn day_of_month_or_day_of_week_when_both_are_given() {
        // The 1st of the month OR any Monday: 2026-11-30 is a Monday.
        assert_eq!(next("0 0 1 * 1", "2026-11-25T00:00:00Z"), "2026-11-30T00:00:00+00:00");
    }

    #[test]
    fn never_firing_schedules_have_no_next() {
        assert!(
            Schedule::parse("0 0 30 2 *")
                .unwrap()
                .next(at("2026-01-01T00:00:00Z"))
                .is_none()
        );
    }

    #[test]
    fn bad_expressions_are_rejected() {
        for bad in [
            "",
            "* * * *",
            "* * * * * *",
            "60 * * * *",
            "* 24 * * *",
            "* * 0 * *",
            "* * * 13 *",
            "* * * * 8",
            "*/0 * * * *",
            "5-1 * * * *",
            "a * * * *",
            "not a cron",
            "@daily",
        ] {
            assert!(Schedule::parse(bad).is_err(), "{bad:?} should not parse");
        }
    }
}
