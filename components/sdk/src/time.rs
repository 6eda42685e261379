//! Time helpers: wall-clock now, and parsing of HTTP dates and RFC 3339.

/// Seconds since the Unix epoch, from `wasi:clocks/wall-clock`.
pub fn now_unix() -> u64 {
    wasip2::clocks::wall_clock::now().seconds
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = month as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn to_epoch(y: i64, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> Option<u64> {
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let secs = days_from_civil(y, mo, d) * 86400 + (h * 3600 + mi * 60 + s) as i64;
    u64::try_from(secs).ok()
}

/// Parse an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), as in
/// `Retry-After` and `Last-Modified`.
pub fn parse_http_date(s: &str) -> Option<u64> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    if parts.len() != 6 {
        return None;
    }
    let day: u32 = parts[1].parse().ok()?;
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| m.eq_ignore_ascii_case(parts[2]))? as u32
        + 1;
    let year: i64 = parts[3].parse().ok()?;
    let hms: Vec<u32> = parts[4]
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    if hms.len() != 3 {
        return None;
    }
    to_epoch(year, month, day, hms[0], hms[1], hms[2])
}

/// Parse an RFC 3339 / ISO 8601 time (`2024-05-01T12:00:00Z`,
/// `2024-05-01T12:00:00.000+02:00`, or a bare `2024-05-01`) to Unix seconds.
pub fn parse_rfc3339(s: &str) -> Option<u64> {
    let s = s.trim();
    let date = s.get(..10)?;
    let mut dp = date.split('-');
    let y: i64 = dp.next()?.parse().ok()?;
    let mo: u32 = dp.next()?.parse().ok()?;
    let d: u32 = dp.next()?.parse().ok()?;
    let rest = &s[10..];
    if rest.is_empty() {
        return to_epoch(y, mo, d, 0, 0, 0);
    }
    let rest = rest.strip_prefix(['T', 't', ' '])?;
    let h: u32 = rest.get(0..2)?.parse().ok()?;
    let mi: u32 = rest.get(3..5)?.parse().ok()?;
    let sec: u32 = rest.get(6..8)?.parse().ok()?;
    let mut tail = &rest[8..];
    if let Some(t) = tail.strip_prefix('.') {
        let n = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        tail = &t[n..];
    }
    let base = to_epoch(y, mo, d, h, mi, sec)? as i64;
    let offset = match tail {
        "" | "Z" | "z" => 0,
        t if t.len() == 6 && (t.starts_with('+') || t.starts_with('-')) => {
            let oh: i64 = t.get(1..3)?.parse().ok()?;
            let om: i64 = t.get(4..6)?.parse().ok()?;
            let o = oh * 3600 + om * 60;
            if t.starts_with('+') { o } else { -o }
        }
        _ => return None,
    };
    u64::try_from(base - offset).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_date_is_parsed() {
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784111777)
        );
    }

    #[test]
    fn rfc3339_with_offset_and_fraction_is_parsed() {
        assert_eq!(parse_rfc3339("1994-11-06T08:49:37Z"), Some(784111777));
        assert_eq!(
            parse_rfc3339("1994-11-06T10:49:37.123+02:00"),
            Some(784111777)
        );
        assert_eq!(parse_rfc3339("2023-08-06"), Some(1691280000));
    }
}
