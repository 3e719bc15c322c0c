//! The two timestamp forms SigV4 accepts, parsed by hand so that every malformed value is a
//! `None` rather than a lenient guess, and all time arithmetic in plain Unix seconds so that no
//! date can overflow a `time` operation.

use time::{Date, Month, OffsetDateTime, Time};

/// `YYYYMMDD'T'HHMMSS'Z'`, the only form allowed in `X-Amz-Date`.
pub(crate) fn parse_amz_date(s: &str) -> Option<OffsetDateTime> {
    let b = s.as_bytes();
    if b.len() != 16 || b.get(8) != Some(&b'T') || b.get(15) != Some(&b'Z') {
        return None;
    }
    let year = digits(b, 0, 4)?;
    let month = digits(b, 4, 2)?;
    let day = digits(b, 6, 2)?;
    let hour = digits(b, 9, 2)?;
    let minute = digits(b, 11, 2)?;
    let second = digits(b, 13, 2)?;
    build(year, month, day, hour, minute, second)
}

/// An HTTP `Date` header: RFC 1123 (`Sun, 30 Aug 2015 12:36:00 GMT`), also with the numeric
/// zero offsets RFC 2822 writers such as Python's `email.utils.formatdate` produce.
pub(crate) fn parse_http_date(s: &str) -> Option<OffsetDateTime> {
    let mut tokens: Vec<&str> = s.split_ascii_whitespace().collect();
    if tokens.first().is_some_and(|t| t.ends_with(',')) {
        tokens.remove(0);
    }
    let [day, month, year, clock, zone] = tokens.as_slice() else {
        return None;
    };
    if !matches!(*zone, "GMT" | "UT" | "UTC" | "Z" | "+0000" | "-0000") {
        return None;
    }
    let day_b = day.as_bytes();
    if day_b.is_empty() || day_b.len() > 2 {
        return None;
    }
    let day = digits(day_b, 0, day_b.len())?;
    let month = month_number(month)?;
    let year_b = year.as_bytes();
    if year_b.len() != 4 {
        return None;
    }
    let year = digits(year_b, 0, 4)?;
    let c = clock.as_bytes();
    if c.len() != 8 || c.get(2) != Some(&b':') || c.get(5) != Some(&b':') {
        return None;
    }
    build(
        year,
        month,
        day,
        digits(c, 0, 2)?,
        digits(c, 3, 2)?,
        digits(c, 6, 2)?,
    )
}

/// The ISO 8601 basic form of a Unix time, as used in the string to sign and in messages.
/// Falls back to the raw number for instants `time` cannot represent, which only a broken
/// clock could produce.
pub(crate) fn format_amz_date(unix: i64) -> String {
    match OffsetDateTime::from_unix_timestamp(unix) {
        Ok(t) => format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => unix.to_string(),
    }
}

/// `YYYYMMDD` of a Unix time, the date element of a credential scope.
pub(crate) fn format_scope_date(unix: i64) -> String {
    let mut s = format_amz_date(unix);
    s.truncate(8);
    s
}

fn digits(b: &[u8], start: usize, len: usize) -> Option<u32> {
    let slice = b.get(start..start.checked_add(len)?)?;
    slice.iter().try_fold(0u32, |acc, &c| {
        if c.is_ascii_digit() {
            Some(acc * 10 + u32::from(c - b'0'))
        } else {
            None
        }
    })
}

fn month_number(name: &str) -> Option<u32> {
    const NAMES: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let lower = name.to_ascii_lowercase();
    let index = NAMES.iter().position(|m| *m == lower)?;
    u32::try_from(index).ok().map(|i| i + 1)
}

fn build(
    year: u32,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
) -> Option<OffsetDateTime> {
    let month = Month::try_from(u8::try_from(month).ok()?).ok()?;
    let date =
        Date::from_calendar_date(i32::try_from(year).ok()?, month, u8::try_from(day).ok()?).ok()?;
    let time = Time::from_hms(
        u8::try_from(hour).ok()?,
        u8::try_from(minute).ok()?,
        u8::try_from(second).ok()?,
    )
    .ok()?;
    Some(date.with_time(time).assume_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amz_date_round_trips() {
        let t = parse_amz_date("20150830T123600Z").unwrap();
        assert_eq!(format_amz_date(t.unix_timestamp()), "20150830T123600Z");
        assert_eq!(format_scope_date(t.unix_timestamp()), "20150830");
    }

    #[test]
    fn amz_date_rejects_near_misses() {
        for bad in [
            "",
            "20150830T123600",
            "20150830T123600z",
            "20150830 123600Z",
            "2015083OT123600Z",
            "20151330T123600Z",
            "20150230T123600Z",
            "20150830T246000Z",
            "20150830T123660Z",
            "+0150830T123600Z",
            "20150830T123600Zx",
        ] {
            assert!(parse_amz_date(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn http_dates_in_the_forms_clients_send() {
        let want = parse_amz_date("20150830T123600Z").unwrap();
        for ok in [
            "Sun, 30 Aug 2015 12:36:00 GMT",
            "Sun, 30 Aug 2015 12:36:00 -0000",
            "Sun, 30 Aug 2015 12:36:00 +0000",
            "30 Aug 2015 12:36:00 GMT",
            "Sun,  30 aug 2015 12:36:00 UTC",
        ] {
            assert_eq!(parse_http_date(ok), Some(want), "{ok}");
        }
        for bad in [
            "Sun, 30 Aug 2015 12:36:00 +0200",
            "Sun, 30 Aug 15 12:36:00 GMT",
            "Sun, 30 Foo 2015 12:36:00 GMT",
            "Sun, 30 Aug 2015 12:36 GMT",
            "Sunday, 30-Aug-15 12:36:00 GMT",
            "",
        ] {
            assert!(parse_http_date(bad).is_none(), "{bad}");
        }
    }
}
