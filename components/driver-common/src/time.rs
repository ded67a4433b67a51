//! UTC calendar arithmetic and Go's reference-time layouts, such as
//! "2006-01-02 15:04:05-0700", which Vault uses for `{{expiration}}` and the
//! `timestamp` template function. Warden formats every time in UTC.

/// Vault's layout for `{{expiration}}` in SQL statements.
pub const EXPIRATION_LAYOUT: &str = "2006-01-02 15:04:05-0700";

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const WEEKDAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// A broken-down UTC time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateTime {
    pub year: i64,
    /// 1 to 12.
    pub month: usize,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub nanos: u32,
    /// 0 is Sunday.
    pub weekday: usize,
}

/// Breaks Unix seconds down into a UTC date and time (proleptic Gregorian,
/// after Howard Hinnant's `civil_from_days`).
pub fn utc(secs: i64, nanos: u32) -> DateTime {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    DateTime {
        year: yoe + era * 400 + i64::from(month <= 2),
        month: month as usize,
        day: (doy - (153 * mp + 2) / 5 + 1) as u32,
        hour: (rem / 3600) as u32,
        minute: (rem % 3600 / 60) as u32,
        second: (rem % 60) as u32,
        nanos,
        // 1970-01-01 was a Thursday.
        weekday: (days + 4).rem_euclid(7) as usize,
    }
}

/// Formats a Unix time in UTC with a Go layout. Like Go, anything that is
/// not a layout element is copied as is.
pub fn format(layout: &str, secs: i64, nanos: u32) -> String {
    let t = utc(secs, nanos);
    if layout == EXPIRATION_LAYOUT && (0..=9999).contains(&t.year) {
        // Every credential renders this one: skip the layout scan.
        return format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}+0000",
            t.year, t.month, t.day, t.hour, t.minute, t.second
        );
    }
    let mut out = String::new();
    let mut rest = layout;
    while let Some(c) = rest.chars().next() {
        match element(rest, &t) {
            Some((consumed, text)) => {
                out.push_str(&text);
                rest = &rest[consumed..];
            }
            None => {
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    out
}

/// The layout element at the start of `s`, if any: how many bytes it spans
/// and its text. Longer elements are tried first, as in Go.
fn element(s: &str, t: &DateTime) -> Option<(usize, String)> {
    let hour12 = match t.hour % 12 {
        0 => 12,
        h => h,
    };
    let month = MONTHS[t.month - 1];
    let weekday = WEEKDAYS[t.weekday];
    let elements: [(&str, String); 31] = [
        ("January", month.to_string()),
        ("Jan", month[..3].to_string()),
        ("Monday", weekday.to_string()),
        ("Mon", weekday[..3].to_string()),
        ("MST", "UTC".into()),
        ("2006", format!("{:04}", t.year)),
        // Go reads "_2006" as a literal '_' and then the year.
        ("_2006", "_".into()),
        ("_2", format!("{:>2}", t.day)),
        ("-070000", "+000000".into()),
        ("-07:00:00", "+00:00:00".into()),
        ("-0700", "+0000".into()),
        ("-07:00", "+00:00".into()),
        ("-07", "+00".into()),
        ("Z070000", "Z".into()),
        ("Z07:00:00", "Z".into()),
        ("Z0700", "Z".into()),
        ("Z07:00", "Z".into()),
        ("Z07", "Z".into()),
        ("01", format!("{:02}", t.month)),
        ("02", format!("{:02}", t.day)),
        ("03", format!("{hour12:02}")),
        ("04", format!("{:02}", t.minute)),
        ("05", format!("{:02}", t.second)),
        ("06", format!("{:02}", t.year.rem_euclid(100))),
        ("15", format!("{:02}", t.hour)),
        ("1", t.month.to_string()),
        ("2", t.day.to_string()),
        ("3", hour12.to_string()),
        ("4", t.minute.to_string()),
        ("5", t.second.to_string()),
        ("PM", if t.hour >= 12 { "PM" } else { "AM" }.into()),
    ];
    if let Some((token, text)) = elements.into_iter().find(|(token, _)| s.starts_with(token)) {
        let consumed = if token == "_2006" { 1 } else { token.len() };
        return Some((consumed, text));
    }
    if s.starts_with("pm") {
        return Some((2, if t.hour >= 12 { "pm" } else { "am" }.into()));
    }
    fraction(s, t.nanos)
}

/// Fractional seconds: ".000" prints exactly that many digits, ".999" drops
/// trailing zeros (and the dot when nothing is left); ',' works like '.'.
fn fraction(s: &str, nanos: u32) -> Option<(usize, String)> {
    let mut chars = s.chars();
    let sep = chars.next().filter(|c| *c == '.' || *c == ',')?;
    let digit = chars.next().filter(|c| *c == '0' || *c == '9')?;
    let run = 1 + s[2..].chars().take_while(|c| *c == digit).count();
    if s[1 + run..].starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let digits = format!("{nanos:09}");
    let mut text = digits[..run.min(9)].to_string();
    if digit == '9' {
        text.truncate(text.trim_end_matches('0').len());
        if text.is_empty() {
            return Some((1 + run, String::new()));
        }
    }
    Some((1 + run, format!("{sep}{text}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_795_615_391; // 2026-11-25 14:03:11 UTC, a Wednesday

    #[test]
    fn expiration_fast_path_matches_the_layout_scan() {
        // A trailing space takes the general path; the rest must agree.
        for t in [T, 0, -1, 1_709_164_800, 253_402_300_799] {
            let general = format(&format!("{EXPIRATION_LAYOUT} "), t, 0);
            assert_eq!(format(EXPIRATION_LAYOUT, t, 0), general.trim_end());
        }
    }

    #[test]
    fn vault_expiration_layout() {
        assert_eq!(format(EXPIRATION_LAYOUT, T, 0), "2026-11-25 14:03:11+0000");
        assert_eq!(format(EXPIRATION_LAYOUT, 0, 0), "1970-01-01 00:00:00+0000");
        assert_eq!(format(EXPIRATION_LAYOUT, -1, 0), "1969-12-31 23:59:59+0000");
        assert_eq!(format(EXPIRATION_LAYOUT, 1_709_164_800, 0), "2024-02-29 00:00:00+0000");
        assert_eq!(
            format(EXPIRATION_LAYOUT, 253_402_300_799, 0),
            "9999-12-31 23:59:59+0000"
        );
    }

    #[test]
    fn go_standard_layouts() {
        assert_eq!(
            format("Mon Jan _2 15:04:05 MST 2006", T, 0),
            "Wed Nov 25 14:03:11 UTC 2026"
        );
        assert_eq!(format("2006-01-02T15:04:05Z07:00", T, 0), "2026-11-25T14:03:11Z");
        assert_eq!(
            format("2006-01-02T15:04:05.999999999Z07:00", T, 120_000_000),
            "2026-11-25T14:03:11.12Z"
        );
        assert_eq!(
            format("2006-01-02T15:04:05.999999999Z07:00", T, 0),
            "2026-11-25T14:03:11Z"
        );
        assert_eq!(format("15:04:05.000", T, 5_000_000), "14:03:11.005");
        assert_eq!(
            format("Monday, 02-Jan-06 3:04PM -07:00", T, 0),
            "Wednesday, 25-Nov-26 2:03PM +00:00"
        );
        assert_eq!(format("January 2, 2006 3pm", 1_767_225_600, 0), "January 1, 2026 12am");
        assert_eq!(format("20060102150405", T, 0), "20261125140311");
    }

    #[test]
    fn literal_text_is_kept() {
        assert_eq!(format("day _2006 ok", T, 0), "day _2026 ok");
        assert_eq!(format("x.09y", T, 0), "x.09y");
        assert_eq!(format("été", T, 0), "été");
    }
}
