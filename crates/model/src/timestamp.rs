//! Points in time as the AWS protocols carry them: epoch seconds (a JSON number, fractional for
//! milliseconds) on awsJson, ISO 8601 on awsQuery.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Milliseconds since the Unix epoch (AWS timestamps carry at most millisecond precision).
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    millis: i64,
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

impl Timestamp {
    pub const fn from_epoch_millis(millis: i64) -> Self {
        Timestamp { millis }
    }

    pub const fn from_epoch_seconds(secs: i64) -> Self {
        Timestamp {
            millis: secs.saturating_mul(1000),
        }
    }

    /// From fractional epoch seconds (the awsJson form), truncated to milliseconds.
    pub fn from_epoch_seconds_f64(secs: f64) -> Option<Self> {
        let ms = secs * 1000.0;
        // `1700000000.123` is not exact in binary: snap to the nearest millisecond when the
        // float is within rounding error of it, otherwise truncate.
        let ms = if (ms - ms.round()).abs() < 1e-3 {
            ms.round()
        } else {
            ms.floor()
        };
        // i64 range, with margin for the float's precision.
        if !ms.is_finite() || ms.abs() >= 9.0e18 {
            return None;
        }
        #[allow(clippy::cast_possible_truncation)]
        Some(Timestamp { millis: ms as i64 })
    }

    pub fn now() -> Self {
        Self::from_system_time(SystemTime::now())
    }

    pub fn from_system_time(t: SystemTime) -> Self {
        let millis = match t.duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
            Err(e) => i64::try_from(e.duration().as_millis()).map_or(i64::MIN, |m| -m),
        };
        Timestamp { millis }
    }

    pub fn to_system_time(self) -> SystemTime {
        let d = Duration::from_millis(self.millis.unsigned_abs());
        if self.millis >= 0 {
            UNIX_EPOCH + d
        } else {
            UNIX_EPOCH - d
        }
    }

    pub const fn epoch_millis(self) -> i64 {
        self.millis
    }

    /// Whole seconds (rounded down).
    pub const fn epoch_seconds(self) -> i64 {
        self.millis.div_euclid(1000)
    }

    /// The awsJson form: seconds with a millisecond fraction.
    #[allow(clippy::cast_precision_loss)]
    pub fn epoch_seconds_f64(self) -> f64 {
        self.millis as f64 / 1000.0
    }

    /// `2011-07-15T23:28:33.359Z`, or `2011-07-15T23:28:33Z` for a whole second (the forms
    /// STS and IAM return).
    pub fn to_iso8601(self) -> String {
        let secs = self.millis.div_euclid(1000);
        let ms = self.millis.rem_euclid(1000);
        let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
        let sod = secs.rem_euclid(86_400);
        let (h, mi, s) = (sod / 3600, sod % 3600 / 60, sod % 60);
        if ms == 0 {
            format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
        } else {
            format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}Z")
        }
    }

    /// Parses `YYYY-MM-DDThh:mm:ss[.fraction](Z|±hh:mm|±hhmm)` (fraction truncated to ms).
    pub fn parse_iso8601(text: &str) -> Option<Self> {
        let b = text.as_bytes();
        let num = |from: usize, len: usize| -> Option<i64> {
            let s = b.get(from..from + len)?;
            if !s.iter().all(u8::is_ascii_digit) {
                return None;
            }
            std::str::from_utf8(s).ok()?.parse().ok()
        };
        let sep = |at: usize, c: &[u8]| b.get(at).is_some_and(|x| c.contains(x));
        if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt") && sep(13, b":") && sep(16, b":")) {
            return None;
        }
        let (y, mo, d) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
        let (h, mi, s) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
        if !(1..=12).contains(&mo) || d < 1 || h > 23 || mi > 59 || s > 60 {
            return None;
        }
        let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        let dim = [
            31,
            if leap { 29 } else { 28 },
            31,
            30,
            31,
            30,
            31,
            31,
            30,
            31,
            30,
            31,
        ];
        if d > *dim.get(usize::try_from(mo - 1).ok()?)? {
            return None;
        }
        let mut i = 19;
        let mut ms = 0i64;
        if sep(i, b".,") {
            i += 1;
            let start = i;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                if i - start < 3 {
                    ms = ms * 10 + i64::from(b[i] - b'0');
                }
                i += 1;
            }
            if i == start {
                return None;
            }
            for _ in (i - start)..3 {
                ms *= 10;
            }
        }
        let offset_secs = match b.get(i) {
            Some(b'Z' | b'z') if i + 1 == b.len() => 0,
            Some(sign @ (b'+' | b'-')) => {
                let oh = num(i + 1, 2)?;
                let (om, end) = if sep(i + 3, b":") {
                    (num(i + 4, 2)?, i + 6)
                } else {
                    (num(i + 3, 2)?, i + 5)
                };
                if end != b.len() || oh > 23 || om > 59 {
                    return None;
                }
                let o = oh * 3600 + om * 60;
                if *sign == b'+' { o } else { -o }
            }
            _ => return None,
        };
        let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s - offset_secs;
        Some(Timestamp {
            millis: secs.checked_mul(1000)?.checked_add(ms)?,
        })
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({})", self.to_iso8601())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_iso8601())
    }
}

impl From<SystemTime> for Timestamp {
    fn from(t: SystemTime) -> Self {
        Self::from_system_time(t)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.epoch_seconds_f64())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a timestamp in epoch seconds")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Timestamp, E> {
                v.checked_mul(1000)
                    .map(Timestamp::from_epoch_millis)
                    .ok_or_else(|| E::custom("timestamp out of range"))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Timestamp, E> {
                i64::try_from(v)
                    .map_err(|_| E::custom("timestamp out of range"))
                    .and_then(|v| self.visit_i64(v))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Timestamp, E> {
                Timestamp::from_epoch_seconds_f64(v)
                    .ok_or_else(|| E::custom("timestamp out of range"))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_round_trip() {
        let t = Timestamp::parse_iso8601("2011-07-15T23:28:33.359Z").unwrap();
        assert_eq!(t.to_iso8601(), "2011-07-15T23:28:33.359Z");
        assert_eq!(t.epoch_millis(), 1_310_772_513_359);
        let t = Timestamp::from_epoch_seconds(1_767_225_600);
        assert_eq!(t.to_iso8601(), "2026-01-01T00:00:00Z");
        assert_eq!(
            Timestamp::parse_iso8601("2026-01-01T02:00:00+02:00"),
            Some(t)
        );
        assert_eq!(
            Timestamp::parse_iso8601("2026-01-01T00:00:00.5Z")
                .unwrap()
                .epoch_millis()
                % 1000,
            500
        );
        assert_eq!(
            Timestamp::from_epoch_millis(-1).to_iso8601(),
            "1969-12-31T23:59:59.999Z"
        );
        for bad in [
            "2026-13-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-01-01",
            "x",
            "2026-01-01T00:00:00",
        ] {
            assert_eq!(Timestamp::parse_iso8601(bad), None, "{bad}");
        }
    }

    #[test]
    fn json_is_epoch_seconds() {
        let t: Timestamp = serde_json::from_str("1700000000").unwrap();
        assert_eq!(t.epoch_seconds(), 1_700_000_000);
        let t: Timestamp = serde_json::from_str("1700000000.123").unwrap();
        assert_eq!(t.epoch_millis(), 1_700_000_000_123);
        assert_eq!(serde_json::to_string(&t).unwrap(), "1700000000.123");
        assert!(serde_json::from_str::<Timestamp>("\"2020-01-01T00:00:00Z\"").is_err());
    }
}
