//! The `as_of` date of a snapshot (SPEC §3): as an instant it is the start of that day in
//! UTC. Dates are held as days since the Unix epoch, instants as microseconds.

use std::fmt;
use std::str::FromStr;

use chrono::NaiveDate;

/// A calendar date written in the source, checked when the program is built: an
/// impossible date (`calendar_date!(2026, 2, 30)`) fails compilation instead of quietly
/// becoming some default at run time.
macro_rules! calendar_date {
    ($year:expr, $month:expr, $day:expr) => {
        const {
            match chrono::NaiveDate::from_ymd_opt($year, $month, $day) {
                Some(date) => date,
                None => panic!("not a calendar date"),
            }
        }
    };
}
pub(crate) use calendar_date;

/// Microseconds in a day.
pub const MICROS_PER_DAY: i64 = 86_400_000_000;

/// A snapshot date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AsOf(i32);

impl AsOf {
    /// From days since 1970-01-01.
    pub fn from_days(days: i32) -> AsOf {
        AsOf(days)
    }

    /// From a calendar date.
    pub fn from_date(date: NaiveDate) -> AsOf {
        AsOf((date - epoch()).num_days() as i32)
    }

    /// Days since 1970-01-01.
    pub fn days(self) -> i32 {
        self.0
    }

    /// The start of the day in UTC, in microseconds since the epoch.
    pub fn micros(self) -> i64 {
        self.0 as i64 * MICROS_PER_DAY
    }

    /// The calendar date (clamped to chrono's range for absurd day numbers).
    pub fn date(self) -> NaiveDate {
        epoch()
            .checked_add_signed(chrono::Duration::days(self.0 as i64))
            .unwrap_or(if self.0 < 0 {
                NaiveDate::MIN
            } else {
                NaiveDate::MAX
            })
    }

    /// This date moved by `days` (negative for earlier).
    pub fn plus_days(self, days: i32) -> AsOf {
        AsOf(self.0 + days)
    }
}

fn epoch() -> NaiveDate {
    calendar_date!(1970, 1, 1)
}

impl FromStr for AsOf {
    type Err = String;

    fn from_str(s: &str) -> Result<AsOf, String> {
        NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
            .map(AsOf::from_date)
            .map_err(|e| format!("`{s}` is not a date like 2026-07-01 ({e})"))
    }
}

impl fmt::Display for AsOf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match epoch().checked_add_signed(chrono::Duration::days(self.0 as i64)) {
            Some(date) => write!(f, "{}", date.format("%Y-%m-%d")),
            None => write!(f, "day {} after 1970-01-01", self.0),
        }
    }
}

impl serde::Serialize for AsOf {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for AsOf {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<AsOf, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_dates_are_the_dates_written() {
        assert_eq!(epoch().to_string(), "1970-01-01");
        assert_eq!(calendar_date!(2026, 7, 1).to_string(), "2026-07-01");
        assert_eq!(crate::generate::DEFAULT_END.to_string(), "2026-07-01");
    }

    #[test]
    fn parses_and_prints() {
        let a: AsOf = "2026-07-01".parse().unwrap();
        assert_eq!(a.to_string(), "2026-07-01");
        assert_eq!(a.micros() % MICROS_PER_DAY, 0);
        assert_eq!(AsOf::from_days(0).to_string(), "1970-01-01");
        assert!("2026-13-01".parse::<AsOf>().is_err());
        // regression: out-of-range days from broken inputs used to panic when printed
        assert!(AsOf::from_days(i32::MAX).to_string().contains("day"));
        let _ = AsOf::from_days(i32::MIN).date();
    }
}
