//! OpenBao's per-path `expiration`: an absolute time, read as go-secure-
//! stdlib's `parseutil.ParseAbsoluteTime` reads a string (RFC 3339, with or
//! without a fraction of a second, else whole Unix seconds).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The message Vault gives for a string that is neither form.
pub(crate) const UNPARSEABLE: &str = "could not parse string as date and time";

pub(crate) fn parse_absolute(text: &str) -> Result<SystemTime, &'static str> {
    if let Some(t) = rfc3339(text) {
        return Ok(t);
    }
    let secs: i64 = text.parse().map_err(|_| UNPARSEABLE)?;
    at(secs, 0).ok_or(UNPARSEABLE)
}

/// The instant `secs` (and `nanos`) after the epoch; `None` past what
/// `SystemTime` holds, so that no input can make the addition panic.
fn at(secs: i64, nanos: u32) -> Option<SystemTime> {
    let base = if secs >= 0 {
        UNIX_EPOCH.checked_add(Duration::from_secs(secs.unsigned_abs()))
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_secs(secs.unsigned_abs()))
    };
    base?.checked_add(Duration::from_nanos(u64::from(nanos)))
}

/// `2006-01-02T15:04:05[.999999999](Z|±07:00)`, as Go's `time.RFC3339`
/// layout parses it (a `T`, a `Z` or a numeric offset, fields in range).
fn rfc3339(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let digits = b.get(from..from + len)?;
        digits
            .iter()
            .all(u8::is_ascii_digit)
            .then(|| digits.iter().fold(0i64, |n, d| n * 10 + i64::from(d - b'0')))
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    let mut i = 19;
    let mut nanos = 0u32;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        let len = b[start..].iter().take_while(|c| c.is_ascii_digit()).count();
        if len == 0 || len > 9 {
            return None;
        }
        let frac = num(start, len)?;
        nanos = u32::try_from(frac * 10i64.pow(9 - len as u32)).ok()?;
        i = start + len;
    }
    let offset = match b.get(i..)? {
        b"Z" => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (h, m) = (num(i + 1, 2)?, num(i + 4, 2)?);
            if h > 23 || m > 59 {
                return None;
            }
            let off = h * 3600 + m * 60;
            if *sign == b'-' { -off } else { off }
        }
        _ => return None,
    };
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days_in_month = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month[(month - 1) as usize]
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    at(days * 86_400 + hour * 3600 + minute * 60 + second - offset, nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(t: SystemTime) -> i64 {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_secs() as i64,
            Err(e) => -(e.duration().as_secs() as i64),
        }
    }

    #[test]
    fn rfc3339_and_epoch() {
        assert_eq!(secs(parse_absolute("2006-01-02T15:04:05Z").expect("z")), 1_136_214_245);
        assert_eq!(
            secs(parse_absolute("2006-01-02T15:04:05-07:00").expect("offset")),
            1_136_239_445
        );
        assert_eq!(secs(parse_absolute("1970-01-01T00:00:00.5Z").expect("frac")), 0);
        assert_eq!(secs(parse_absolute("2000-02-29T00:00:00Z").expect("leap")), 951_782_400);
        assert_eq!(secs(parse_absolute("1700000000").expect("epoch")), 1_700_000_000);
        assert_eq!(secs(parse_absolute("-1").expect("before epoch")), -1);
        for extreme in [i64::MIN, i64::MAX] {
            let _ = parse_absolute(&extreme.to_string());
        }
        for bad in [
            "",
            "tomorrow",
            "2006-01-02",
            "2006-01-02 15:04:05Z",
            "2001-02-29T00:00:00Z",
            "2006-13-02T15:04:05Z",
            "2006-01-02T15:04:05",
            "2006-01-02T15:04:05.Z",
            "2006-01-02T15:04:05+7:00",
            "1.5",
        ] {
            assert_eq!(parse_absolute(bad), Err(UNPARSEABLE), "{bad}");
        }
    }
}
