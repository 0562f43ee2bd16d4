//! UTC calendar fields from Unix time, for S3-style object keys.
//!
//! Firehose names objects after the UTC date and time; converting days
//! since the epoch to a civil date is a dozen lines of integer arithmetic
//! (Howard Hinnant's `civil_from_days`), not worth a date-time dependency.

/// UTC calendar fields of one instant, to the second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UtcTime {
    pub(crate) year: i64,
    pub(crate) month: u32,
    pub(crate) day: u32,
    pub(crate) hour: u32,
    pub(crate) minute: u32,
    pub(crate) second: u32,
}

impl UtcTime {
    /// The calendar fields of `secs` seconds after 1970-01-01T00:00:00Z.
    pub(crate) fn from_unix(secs: u64) -> Self {
        let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2);
        let rem = secs % 86_400;
        let (year, month, day) = civil_from_days(days);
        // rem < 86,400, so the casts below cannot truncate.
        UtcTime {
            year,
            month,
            day,
            hour: (rem / 3600) as u32,
            minute: (rem / 60 % 60) as u32,
            second: (rem % 60) as u32,
        }
    }
}

/// (year, month 1–12, day 1–31) of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(UtcTime::from_unix(0), UtcTime { year: 1970, month: 1, day: 1, hour: 0, minute: 0, second: 0 });
        // 2000-02-29T23:59:59Z, a leap day in a century leap year.
        assert_eq!(
            UtcTime::from_unix(951_868_799),
            UtcTime { year: 2000, month: 2, day: 29, hour: 23, minute: 59, second: 59 }
        );
        // 2024-12-31T12:34:56Z
        assert_eq!(
            UtcTime::from_unix(1_735_648_496),
            UtcTime { year: 2024, month: 12, day: 31, hour: 12, minute: 34, second: 56 }
        );
    }

    #[test]
    fn consecutive_days_are_consecutive_dates() {
        let mut prev = civil_from_days(-1);
        for d in 0..(400 * 366) {
            let cur = civil_from_days(d);
            let next_day = (prev.0, prev.1, prev.2 + 1);
            let next_month = (prev.0, prev.1 + 1, 1);
            let next_year = (prev.0 + 1, 1, 1);
            assert!(cur == next_day || cur == next_month || cur == next_year, "{prev:?} → {cur:?}");
            prev = cur;
        }
    }
}
