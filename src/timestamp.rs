//! UTC instants as RFC 3339 text: formatting and parsing without a date library.
//!
//! Only the wall clock read in [`Timestamp::now`] touches the system; everything else is pure
//! arithmetic on milliseconds since the Unix epoch, so callers can pass time in and tests can
//! pin it.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Milliseconds since 1970-01-01T00:00:00Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

/// Calendar fields of a UTC instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CivilTime {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub millis: u32,
}

impl Timestamp {
    pub fn now() -> Self {
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(since_epoch.as_millis() as i64)
    }

    pub fn from_secs(secs: i64) -> Self {
        Timestamp(secs * 1000)
    }

    pub fn millis(self) -> i64 {
        self.0
    }

    pub fn civil(self) -> CivilTime {
        let days = self.0.div_euclid(86_400_000);
        let ms_of_day = self.0.rem_euclid(86_400_000);
        let (year, month, day) = civil_from_days(days);
        CivilTime {
            year,
            month,
            day,
            hour: (ms_of_day / 3_600_000) as u32,
            minute: (ms_of_day / 60_000 % 60) as u32,
            second: (ms_of_day / 1000 % 60) as u32,
            millis: (ms_of_day % 1000) as u32,
        }
    }

    /// `20261121_175811`, the shape session ids use (seed 003).
    pub fn compact(self) -> String {
        let c = self.civil();
        format!(
            "{:04}{:02}{:02}_{:02}{:02}{:02}",
            c.year, c.month, c.day, c.hour, c.minute, c.second
        )
    }

    /// Parses RFC 3339 (`2026-11-21T18:00:00Z`, `...00.123+02:00`, a space instead of `T`).
    pub fn parse(text: &str) -> Option<Self> {
        let b = text.trim().as_bytes();
        if b.len() < 19 {
            return None;
        }
        let year = digits(b, 0, 4)?;
        let month = digits(b, 5, 2)?;
        let day = digits(b, 8, 2)?;
        let hour = digits(b, 11, 2)?;
        let minute = digits(b, 14, 2)?;
        let second = digits(b, 17, 2)?;
        if b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
            return None;
        }
        if b[13] != b':' || b[16] != b':' {
            return None;
        }
        if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
            return None;
        }
        if second > 60 {
            return None;
        }
        let mut i = 19;
        let mut millis = 0i64;
        if b.get(i) == Some(&b'.') {
            i += 1;
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                if i - start < 3 {
                    millis = millis * 10 + i64::from(b[i] - b'0');
                }
                i += 1;
            }
            if i == start {
                return None;
            }
            for _ in (i - start)..3 {
                millis *= 10;
            }
        }
        let offset_minutes = match b.get(i) {
            Some(b'Z' | b'z') if i + 1 == b.len() => 0,
            Some(sign @ (b'+' | b'-')) if i + 6 == b.len() && b[i + 3] == b':' => {
                let minutes = digits(b, i + 1, 2)? * 60 + digits(b, i + 4, 2)?;
                if *sign == b'+' { minutes } else { -minutes }
            }
            _ => return None,
        };
        let days = days_from_civil(year, month as u32, day as u32);
        let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
        Some(Timestamp(secs * 1000 + millis))
    }
}

impl Timestamp {
    /// `YYYY-MM-DDTHH:MM:SS.mmmZ` written digit by digit: every journaled event carries one,
    /// and the formatting machinery was a visible share of writing events. `None` outside the
    /// years 0 to 9999, which take the general path.
    fn rfc3339(&self) -> Option<[u8; 24]> {
        let c = self.civil();
        let year = u32::try_from(c.year).ok().filter(|y| *y <= 9999)?;
        let mut out = *b"0000-00-00T00:00:00.000Z";
        let mut put = |at: usize, width: usize, mut value: u32| {
            for i in (at..at + width).rev() {
                out[i] = b'0' + (value % 10) as u8;
                value /= 10;
            }
        };
        put(0, 4, year);
        put(5, 2, c.month);
        put(8, 2, c.day);
        put(11, 2, c.hour);
        put(14, 2, c.minute);
        put(17, 2, c.second);
        put(20, 3, c.millis);
        Some(out)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(text) = self.rfc3339() {
            // ASCII digits and separators only.
            return f.pad(std::str::from_utf8(&text).unwrap_or_default());
        }
        let c = self.civil();
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            c.year, c.month, c.day, c.hour, c.minute, c.second, c.millis
        )
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.rfc3339() {
            Some(text) => serializer.serialize_str(std::str::from_utf8(&text).unwrap_or_default()),
            None => serializer.collect_str(self),
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Read from the text where it lies (every event has a time: no copy per line).
        struct Rfc3339;
        impl serde::de::Visitor<'_> for Rfc3339 {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an RFC 3339 time")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Timestamp, E> {
                Timestamp::parse(text)
                    .ok_or_else(|| E::custom(format!("not an RFC 3339 time: {text:?}")))
            }
        }
        deserializer.deserialize_str(Rfc3339)
    }
}

fn digits(b: &[u8], at: usize, len: usize) -> Option<i64> {
    let slice = b.get(at..at + len)?;
    slice.iter().try_fold(0i64, |acc, &d| {
        d.is_ascii_digit().then(|| acc * 10 + i64::from(d - b'0'))
    })
}

// Howard Hinnant's days-from-civil and its inverse: exact for the proleptic Gregorian calendar.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_a_known_instant() {
        // 2026-11-21T18:00:00Z, checked with `date -u -d @1795284000`.
        let t = Timestamp::from_secs(1_795_284_000);
        assert_eq!(t.to_string(), "2026-11-21T18:00:00.000Z");
        assert_eq!(t.compact(), "20261121_180000");
        let later = Timestamp(t.0 + 3_723_045);
        assert_eq!(
            serde_json::to_string(&later).unwrap(),
            "\"2026-11-21T19:02:03.045Z\""
        );
        assert_eq!(format!("[{later:>26}]"), "[  2026-11-21T19:02:03.045Z]");
    }

    #[test]
    fn parses_the_shapes_agents_print() {
        let base = Timestamp::from_secs(1_795_284_000);
        assert_eq!(Timestamp::parse("2026-11-21T18:00:00Z"), Some(base));
        assert_eq!(Timestamp::parse("2026-11-21 18:00:00z"), Some(base));
        assert_eq!(
            Timestamp::parse("2026-11-21T18:00:00.5Z"),
            Some(Timestamp(base.0 + 500))
        );
        assert_eq!(
            Timestamp::parse("2026-11-21T18:00:00.123456789Z"),
            Some(Timestamp(base.0 + 123))
        );
        assert_eq!(Timestamp::parse("2026-11-21T20:00:00+02:00"), Some(base));
        assert_eq!(Timestamp::parse("2026-11-21T17:30:00-00:30"), Some(base));
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "2026-11-21",
            "2026-13-21T18:00:00Z",
            "2026-11-21T18:00:00",
            "2026-11-21T18:00:00.Z",
            "2026/11/21T18:00:00Z",
            "2026-11-21T18:00:00+0200",
        ] {
            assert_eq!(Timestamp::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn round_trips_across_eras() {
        for ms in [
            0,
            1,
            -1,
            951_782_400_000,
            4_102_444_800_123,
            -62_135_596_800_000,
        ] {
            let t = Timestamp(ms);
            assert_eq!(Timestamp::parse(&t.to_string()), Some(t), "{t}");
        }
    }
}
