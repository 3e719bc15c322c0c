//! Rotation rules: `AutomaticallyAfterDays`, `rate(N hours|days)` and `cron(…)` expressions
//! (UTC), with the optional `Duration` window, validated as AWS validates them (never more often
//! than every four hours), and the next due date computed from them.
//!
//! A rotation falls due at the start of its window; the scheduler starts it at its first tick
//! at or after that instant (a server that was down through a window rotates when it is back).

use citadel_api::AwsError;
use time::OffsetDateTime;

use crate::clock::{MILLIS_PER_DAY, MILLIS_PER_HOUR, day_start, from_millis, to_millis};
use crate::errors;
use crate::record::RulesRecord;

/// AWS's minimum interval between rotations.
const MIN_INTERVAL_MS: i64 = 4 * MILLIS_PER_HOUR;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    /// `AutomaticallyAfterDays`: that many days after the last rotation.
    AfterDays(i64),
    /// `rate(N hours)`.
    RateHours(i64),
    /// `rate(N days)`: windows start at midnight UTC.
    RateDays(i64),
    Cron(Box<Cron>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    pub schedule: Schedule,
    /// The window, in hours.
    pub duration_hours: Option<i64>,
}

fn bad(message: &str) -> AwsError {
    errors::invalid_parameter(message)
}

/// Checks rotation rules as RotateSecret receives them.
pub fn parse_rules(r: &RulesRecord) -> Result<Rules, AwsError> {
    let schedule = match (r.automatically_after_days, r.schedule_expression.as_deref()) {
        (Some(_), Some(_)) => {
            return Err(bad(
                "You cannot specify both rotation frequency and schedule expression together.",
            ));
        }
        (Some(days), None) => {
            if !(1..=1000).contains(&days) {
                return Err(bad(
                    "RotationRules.AutomaticallyAfterDays must be within 1-1000.",
                ));
            }
            Schedule::AfterDays(days)
        }
        (None, Some(expr)) => parse_expression(expr)?,
        (None, None) => {
            return Err(bad(
                "RotationRules must specify AutomaticallyAfterDays or ScheduleExpression.",
            ));
        }
    };
    let duration_hours = match r.duration.as_deref() {
        None => None,
        Some(d) => {
            let hours: i64 = d
                .strip_suffix('h')
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| {
                    bad("The rotation window Duration must be a number of hours, such as 3h.")
                })?;
            if !(1..=24).contains(&hours) {
                return Err(bad(
                    "The rotation window Duration must be between 1h and 24h.",
                ));
            }
            if let Schedule::RateHours(n) = schedule
                && hours > n
            {
                return Err(bad(
                    "The rotation window Duration can't be longer than the rotation interval.",
                ));
            }
            Some(hours)
        }
    };
    Ok(Rules {
        schedule,
        duration_hours,
    })
}

fn parse_expression(expr: &str) -> Result<Schedule, AwsError> {
    let expr = expr.trim();
    if let Some(inner) = expr.strip_prefix("rate(").and_then(|s| s.strip_suffix(')')) {
        let mut parts = inner.split_whitespace();
        let (Some(n), Some(unit), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad(
                "The ScheduleExpression is not a valid rate expression.",
            ));
        };
        let n: i64 = n
            .parse()
            .map_err(|_| bad("The ScheduleExpression is not a valid rate expression."))?;
        return match unit {
            "hour" | "hours" => {
                if n < 4 {
                    Err(bad(
                        "The schedule expression rotates the secret more often than every 4 hours. Secrets Manager rotates a secret at most once every four hours.",
                    ))
                } else if n > 24_000 {
                    Err(bad("The ScheduleExpression rate is out of range."))
                } else {
                    Ok(Schedule::RateHours(n))
                }
            }
            "day" | "days" => {
                if (1..=1000).contains(&n) {
                    Ok(Schedule::RateDays(n))
                } else {
                    Err(bad("The ScheduleExpression rate is out of range."))
                }
            }
            _ => Err(bad(
                "The ScheduleExpression rate unit must be hours or days.",
            )),
        };
    }
    if let Some(inner) = expr.strip_prefix("cron(").and_then(|s| s.strip_suffix(')')) {
        let cron = Cron::parse(inner)
            .ok_or_else(|| bad("The ScheduleExpression is not a valid cron expression."))?;
        // Never more often than every four hours: check the gaps of the next occurrences.
        let mut t = to_millis(OffsetDateTime::now_utc());
        let mut prev: Option<i64> = None;
        for _ in 0..64 {
            let Some(n) = cron.next_after(t) else { break };
            if let Some(p) = prev
                && n - p < MIN_INTERVAL_MS
            {
                return Err(bad(
                    "The schedule expression rotates the secret more often than every 4 hours. Secrets Manager rotates a secret at most once every four hours.",
                ));
            }
            prev = Some(n);
            t = n;
        }
        if prev.is_none() {
            return Err(bad("The ScheduleExpression never falls due."));
        }
        return Ok(Schedule::Cron(Box::new(cron)));
    }
    Err(bad(
        "The ScheduleExpression must be a rate() or cron() expression.",
    ))
}

impl Rules {
    /// When the first rotation window after `base_ms` (the last rotation, or when rotation was
    /// configured) starts.
    pub fn next_after(&self, base_ms: i64) -> Option<i64> {
        match &self.schedule {
            Schedule::AfterDays(d) => {
                Some(base_ms.saturating_add(d.saturating_mul(MILLIS_PER_DAY)))
            }
            Schedule::RateHours(h) => {
                Some(base_ms.saturating_add(h.saturating_mul(MILLIS_PER_HOUR)))
            }
            Schedule::RateDays(d) => {
                Some(day_start(base_ms).saturating_add(d.saturating_mul(MILLIS_PER_DAY)))
            }
            Schedule::Cron(c) => c.next_after(base_ms),
        }
    }
}

/// A parsed AWS `cron()` expression: minutes, hours, day-of-month, month, day-of-week, year.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    minutes: Vec<bool>,
    hours: Vec<bool>,
    dom: DayField,
    months: Vec<bool>,
    dow: DowField,
    years: Vec<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum DayField {
    Any,
    Days(Vec<bool>),
    Last,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum DowField {
    Any,
    /// Indexed 1 (SUN) ..= 7 (SAT).
    Days(Vec<bool>),
    /// `dL`: the last such weekday of the month.
    Last(u8),
    /// `d#n`: the n-th such weekday of the month.
    Nth(u8, u8),
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
const FIRST_YEAR: i32 = 1970;
const LAST_YEAR: i32 = 2199;

fn value(token: &str, names: &[&str], base: u32) -> Option<u32> {
    if let Ok(n) = token.parse::<u32>() {
        return Some(n);
    }
    let upper = token.to_ascii_uppercase();
    names
        .iter()
        .position(|n| *n == upper)
        .and_then(|i| u32::try_from(i).ok())
        .map(|i| i + base)
}

/// Parses a list of `*`, `a`, `a-b`, `a/n`, `a-b/n`, `*/n` into a membership table over
/// `min..=max`.
fn set(field: &str, min: u32, max: u32, names: &[&str]) -> Option<Vec<bool>> {
    let mut out = vec![false; usize::try_from(max).ok()? + 1];
    for part in field.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (r, s.parse::<u32>().ok().filter(|s| *s > 0)?),
            None => (part, 1),
        };
        let (lo, hi) = if range == "*" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a, names, min)?, value(b, names, min)?)
        } else {
            let v = value(range, names, min)?;
            (v, if part.contains('/') { max } else { v })
        };
        if lo < min || hi > max || lo > hi {
            return None;
        }
        let mut v = lo;
        while v <= hi {
            *out.get_mut(usize::try_from(v).ok()?)? = true;
            v = v.checked_add(step)?;
        }
    }
    Some(out)
}

fn has(table: &[bool], v: u32) -> bool {
    usize::try_from(v)
        .ok()
        .and_then(|i| table.get(i))
        .copied()
        .unwrap_or(false)
}

fn days_in_month(year: i32, month: time::Month) -> u8 {
    month.length(year)
}

impl Cron {
    pub fn parse(text: &str) -> Option<Cron> {
        let fields: Vec<&str> = text.split_whitespace().collect();
        let [min, hour, dom, month, dow, year] = fields.as_slice() else {
            return None;
        };
        // AWS: one of day-of-month and day-of-week must be `?`.
        if (*dom == "?") == (*dow == "?") {
            return None;
        }
        let dom = match *dom {
            "?" => DayField::Any,
            "L" => DayField::Last,
            d => DayField::Days(set(d, 1, 31, &[])?),
        };
        let dow = match *dow {
            "?" => DowField::Any,
            d if d.ends_with('L') && d.len() > 1 => {
                let n = value(d.strip_suffix('L')?, &DAYS, 1)?;
                DowField::Last(u8::try_from(n).ok().filter(|n| (1..=7).contains(n))?)
            }
            d if d.contains('#') => {
                let (a, b) = d.split_once('#')?;
                let day = u8::try_from(value(a, &DAYS, 1)?)
                    .ok()
                    .filter(|n| (1..=7).contains(n))?;
                let nth: u8 = b.parse().ok().filter(|n| (1..=5).contains(n))?;
                DowField::Nth(day, nth)
            }
            d => DowField::Days(set(d, 1, 7, &DAYS)?),
        };
        let years = set(
            year,
            u32::try_from(FIRST_YEAR).ok()?,
            u32::try_from(LAST_YEAR).ok()?,
            &[],
        )?;
        Some(Cron {
            minutes: set(min, 0, 59, &[])?,
            hours: set(hour, 0, 23, &[])?,
            dom,
            months: set(month, 1, 12, &MONTHS)?,
            dow,
            years,
        })
    }

    fn day_matches(&self, d: time::Date) -> bool {
        let year_ok = u32::try_from(d.year()).is_ok_and(|y| has(&self.years, y));
        let month_ok = has(&self.months, u32::from(u8::from(d.month())));
        if !year_ok || !month_ok {
            return false;
        }
        let last = days_in_month(d.year(), d.month());
        let dom_ok = match &self.dom {
            DayField::Any => true,
            DayField::Last => d.day() == last,
            DayField::Days(t) => has(t, u32::from(d.day())),
        };
        let wd = d.weekday().number_from_sunday();
        let dow_ok = match &self.dow {
            DowField::Any => true,
            DowField::Days(t) => has(t, u32::from(wd)),
            DowField::Last(n) => wd == *n && d.day() + 7 > last,
            DowField::Nth(n, k) => wd == *n && (d.day() - 1) / 7 + 1 == *k,
        };
        dom_ok && dow_ok
    }

    /// The first occurrence strictly after `after_ms`, searching up to five years ahead.
    pub fn next_after(&self, after_ms: i64) -> Option<i64> {
        let start = from_millis(after_ms);
        let mut date = start.date();
        for _ in 0..(5 * 366) {
            if self.day_matches(date) {
                for h in 0u8..24 {
                    if !has(&self.hours, u32::from(h)) {
                        continue;
                    }
                    for m in 0u8..60 {
                        if !has(&self.minutes, u32::from(m)) {
                            continue;
                        }
                        let t = date.with_hms(h, m, 0).ok()?.assume_utc();
                        let ms = to_millis(t);
                        if ms > after_ms {
                            return Some(ms);
                        }
                    }
                }
            }
            date = date.next_day()?;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(
        days: Option<i64>,
        expr: Option<&str>,
        duration: Option<&str>,
    ) -> Result<Rules, AwsError> {
        parse_rules(&RulesRecord {
            automatically_after_days: days,
            schedule_expression: expr.map(str::to_owned),
            duration: duration.map(str::to_owned),
        })
    }

    fn at(text: &str) -> i64 {
        let t =
            OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).unwrap();
        to_millis(t)
    }

    #[test]
    fn validation_matches_aws_rules() {
        assert!(rules(Some(1), None, None).is_ok());
        assert!(rules(Some(1000), None, None).is_ok());
        for bad in [
            rules(Some(0), None, None),
            rules(Some(1001), None, None),
            rules(Some(5), Some("rate(5 days)"), None),
            rules(None, Some("rate(3 hours)"), None),
            rules(None, Some("rate(2 minutes)"), None),
            rules(None, Some("cron(0 * * * ? *)"), None),
            rules(None, Some("cron(0 */2 * * ? *)"), None),
            rules(None, Some("cron(0 0 * * * *)"), None),
            rules(None, Some("every day"), None),
            rules(None, Some("rate(4 hours)"), Some("5h")),
            rules(None, None, None),
        ] {
            assert_eq!(bad.unwrap_err().code, "InvalidParameterException");
        }
        assert!(rules(None, Some("rate(4 hours)"), Some("2h")).is_ok());
        assert!(rules(None, Some("rate(10 days)"), Some("3h")).is_ok());
        assert!(rules(None, Some("cron(0 */4 * * ? *)"), None).is_ok());
        assert!(rules(None, Some("cron(0 16 1,15 * ? *)"), Some("2h")).is_ok());
        assert!(rules(None, Some("cron(0 8 ? * MON-FRI *)"), None).is_ok());
    }

    #[test]
    fn next_dates() {
        let r = rules(Some(30), None, None).unwrap();
        assert_eq!(
            r.next_after(at("2024-01-01T10:00:00Z")),
            Some(at("2024-01-31T10:00:00Z"))
        );
        let r = rules(None, Some("rate(10 days)"), None).unwrap();
        assert_eq!(
            r.next_after(at("2024-01-01T10:00:00Z")),
            Some(at("2024-01-11T00:00:00Z"))
        );
        let r = rules(None, Some("rate(6 hours)"), None).unwrap();
        assert_eq!(
            r.next_after(at("2024-01-01T10:00:00Z")),
            Some(at("2024-01-01T16:00:00Z"))
        );
        let r = rules(None, Some("cron(0 16 1,15 * ? *)"), None).unwrap();
        assert_eq!(
            r.next_after(at("2024-01-01T16:00:00Z")),
            Some(at("2024-01-15T16:00:00Z"))
        );
        let r = rules(None, Some("cron(30 8 ? * MON *)"), None).unwrap();
        // 2024-01-03 is a Wednesday; the next Monday is the 8th.
        assert_eq!(
            r.next_after(at("2024-01-03T00:00:00Z")),
            Some(at("2024-01-08T08:30:00Z"))
        );
        let r = rules(None, Some("cron(0 0 L * ? *)"), None).unwrap();
        assert_eq!(
            r.next_after(at("2024-02-01T00:00:00Z")),
            Some(at("2024-02-29T00:00:00Z"))
        );
        let r = rules(None, Some("cron(0 9 ? * 2#1 *)"), None).unwrap();
        assert_eq!(
            r.next_after(at("2024-01-02T00:00:00Z")),
            Some(at("2024-02-05T09:00:00Z"))
        );
    }
}
