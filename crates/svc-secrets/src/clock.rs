//! Where Secrets Manager gets the time from: the shared injectable clock, and the day
//! granularity of `LastAccessedDate`.

pub use citadel_api::clock::*;

/// Midnight UTC of the day `ms` falls in (AWS reports `LastAccessedDate` to the day).
pub(crate) fn day_start(ms: i64) -> i64 {
    ms - ms.rem_euclid(MILLIS_PER_DAY)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn days_start_at_midnight_utc() {
        assert_eq!(day_start(1_700_000_000_123) % MILLIS_PER_DAY, 0);
        assert!(1_700_000_000_123 - day_start(1_700_000_000_123) < MILLIS_PER_DAY);
    }
}
