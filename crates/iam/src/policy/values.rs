//! Typed values for condition operators: dates (ISO 8601 or epoch seconds), CIDR blocks and
//! numbers, parsed once from policy text.

use std::net::IpAddr;

use time::{Date, Month, PrimitiveDateTime, Time, UtcOffset};

/// A point in time as nanoseconds since the Unix epoch: one integer compares fast and covers
/// every date IAM accepts.
pub(crate) type Instant = i128;

const NANOS_PER_SECOND: i128 = 1_000_000_000;

/// Parses a date the way IAM's Date operators read one: epoch seconds (`1700000000`) or a W3C
/// profile of ISO 8601 (`2024`, `2024-05`, `2024-05-01`, `2024-05-01T12:00Z`,
/// `2024-05-01T12:00:30.5+02:00`). A missing zone means UTC.
pub(crate) fn parse_date(s: &str) -> Option<Instant> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let digits = s.strip_prefix('-').unwrap_or(s);
    if digits.bytes().all(|b| b.is_ascii_digit()) {
        let secs: i64 = s.parse().ok()?;
        return Some(i128::from(secs) * NANOS_PER_SECOND);
    }
    let (date_part, time_part) = match s.find(['T', 't']) {
        Some(i) => (s.get(..i)?, Some(s.get(i + 1..)?)),
        None => (s, None),
    };
    let mut fields = date_part.split('-');
    let year: i32 = parse_fixed(fields.next()?, 4)?;
    let month: u8 = fields.next().map_or(Some(1), |m| parse_fixed(m, 2))?;
    let day: u8 = fields.next().map_or(Some(1), |d| parse_fixed(d, 2))?;
    if fields.next().is_some() {
        return None;
    }
    let date = Date::from_calendar_date(year, Month::try_from(month).ok()?, day).ok()?;
    let (time, offset) = match time_part {
        None => (Time::MIDNIGHT, UtcOffset::UTC),
        Some(t) => parse_time(t)?,
    };
    let dt = PrimitiveDateTime::new(date, time).assume_offset(offset);
    Some(dt.unix_timestamp_nanos())
}

fn parse_fixed<T: std::str::FromStr>(s: &str, len: usize) -> Option<T> {
    if s.len() != len || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn parse_time(t: &str) -> Option<(Time, UtcOffset)> {
    // Split off the zone designator: `Z`, `+hh:mm`, `-hh:mm`, `+hhmm`, `+hh`, or nothing.
    let (clock, offset) = if let Some(c) = t.strip_suffix(['Z', 'z']) {
        (c, UtcOffset::UTC)
    } else if let Some(i) = t.rfind(['+', '-']) {
        let zone = t.get(i + 1..)?;
        let sign: i8 = if t.get(i..i + 1)? == "-" { -1 } else { 1 };
        let (h, m) = match zone.split_once(':') {
            Some((h, m)) => (parse_fixed::<i8>(h, 2)?, parse_fixed::<i8>(m, 2)?),
            None if zone.len() == 4 => (
                parse_fixed::<i8>(zone.get(..2)?, 2)?,
                parse_fixed::<i8>(zone.get(2..)?, 2)?,
            ),
            None => (parse_fixed::<i8>(zone, 2)?, 0),
        };
        (
            t.get(..i)?,
            UtcOffset::from_hms(sign * h, sign * m, 0).ok()?,
        )
    } else {
        (t, UtcOffset::UTC)
    };
    let mut fields = clock.split(':');
    let hour: u8 = parse_fixed(fields.next()?, 2)?;
    let minute: u8 = fields.next().map_or(Some(0), |m| parse_fixed(m, 2))?;
    let (second, nanos) = match fields.next() {
        None => (0u8, 0u32),
        Some(sec) => {
            let (whole, frac) = match sec.split_once('.') {
                Some((w, f)) => (w, Some(f)),
                None => (sec, None),
            };
            let second: u8 = parse_fixed(whole, 2)?;
            let nanos = match frac {
                None => 0,
                Some(f) => {
                    if f.is_empty() || f.len() > 9 || !f.bytes().all(|b| b.is_ascii_digit()) {
                        return None;
                    }
                    // Scale to nanoseconds: "5" is 500 ms.
                    let mut n: u32 = f.parse().ok()?;
                    for _ in f.len()..9 {
                        n = n.checked_mul(10)?;
                    }
                    n
                }
            };
            (second, nanos)
        }
    };
    if fields.next().is_some() {
        return None;
    }
    Some((
        Time::from_hms_nano(hour, minute, second, nanos).ok()?,
        offset,
    ))
}

/// An IPv4 or IPv6 block; a bare address is a /32 (or /128), as IAM reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub(crate) fn parse(s: &str) -> Option<Cidr> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => {
                if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                let p: u8 = p.parse().ok()?;
                if p > max {
                    return None;
                }
                p
            }
        };
        Some(Cidr { addr, prefix })
    }

    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => v4_in(net.to_bits(), self.prefix, ip.to_bits()),
            (IpAddr::V6(net), IpAddr::V6(ip)) => v6_in(net.to_bits(), self.prefix, ip.to_bits()),
            // An IPv4 client seen through an IPv6 socket arrives as ::ffff:a.b.c.d.
            (IpAddr::V4(net), IpAddr::V6(ip)) => ip
                .to_ipv4_mapped()
                .is_some_and(|v4| v4_in(net.to_bits(), self.prefix, v4.to_bits())),
            (IpAddr::V6(net), IpAddr::V4(ip)) => {
                v6_in(net.to_bits(), self.prefix, ip.to_ipv6_mapped().to_bits())
            }
        }
    }
}

fn v4_in(net: u32, prefix: u8, ip: u32) -> bool {
    let mask = u32::MAX
        .checked_shl(32u32.saturating_sub(u32::from(prefix)))
        .unwrap_or(0);
    net & mask == ip & mask
}

fn v6_in(net: u128, prefix: u8, ip: u128) -> bool {
    let mask = u128::MAX
        .checked_shl(128u32.saturating_sub(u32::from(prefix)))
        .unwrap_or(0);
    net & mask == ip & mask
}

/// Numbers as Numeric operators read them (integers and decimals).
pub(crate) fn parse_number(s: &str) -> Option<f64> {
    let v: f64 = s.trim().parse().ok()?;
    v.is_finite().then_some(v)
}

/// `true`/`false` in any case, as `Bool` and `Null` read their values.
pub(crate) fn parse_bool(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_in_every_accepted_form() {
        let base = parse_date("2024-05-01T00:00:00Z").unwrap();
        assert_eq!(parse_date("2024-05-01"), Some(base));
        assert_eq!(parse_date("2024-05-01T00:00Z"), Some(base));
        assert_eq!(parse_date("2024-05-01t02:00:00+02:00"), Some(base));
        assert_eq!(parse_date("2024-04-30T22:00:00-0200"), Some(base));
        assert_eq!(parse_date("1714521600"), Some(base));
        assert_eq!(
            parse_date("2024-05-01T00:00:00.5Z"),
            Some(base + 500_000_000)
        );
        // Digits alone are epoch seconds, never a bare year.
        assert_eq!(parse_date("2024"), Some(2024 * 1_000_000_000));
        assert_eq!(parse_date("2024-01"), parse_date("2024-01-01T00:00:00Z"));
        for bad in [
            "",
            "2024-13-01",
            "2024-02-30",
            "yesterday",
            "2024-05-01T25:00Z",
            "1.5",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn cidrs_v4_v6_and_mapped() {
        let c = Cidr::parse("203.0.113.0/24").unwrap();
        assert!(c.contains("203.0.113.77".parse().unwrap()));
        assert!(!c.contains("203.0.114.1".parse().unwrap()));
        assert!(c.contains("::ffff:203.0.113.9".parse().unwrap()));
        let one = Cidr::parse("10.1.2.3").unwrap();
        assert!(one.contains("10.1.2.3".parse().unwrap()));
        assert!(!one.contains("10.1.2.4".parse().unwrap()));
        let all = Cidr::parse("0.0.0.0/0").unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        let v6 = Cidr::parse("2001:DB8:1234:5678::/64").unwrap();
        assert!(v6.contains("2001:db8:1234:5678::1".parse().unwrap()));
        assert!(!v6.contains("2001:db8:1234:5679::1".parse().unwrap()));
        for bad in ["10.0.0.0/33", "10.0.0/8", "x", "::/129", "10.0.0.0/"] {
            assert_eq!(Cidr::parse(bad), None, "{bad}");
        }
    }
}
