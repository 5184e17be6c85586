//! When a usage or rate limit lifts, read from the words a CLI prints: an epoch after a bar
//! (`Claude AI usage limit reached|1767225600`), a relative delay (`try again in 5 minutes`,
//! `retry after 12s`, `resets in 3h 20m`), or a clock time (`try again at 3:04 PM`,
//! `resets 5pm`, `resets Fri 9am (Asia/Tokyo)`, `at 15:04`) taken as the next such local
//! time (the machine's offset from UTC is given). Pure.

use std::sync::OnceLock;

use regex::Regex;

use crate::timestamp::Timestamp;

/// The moment `text` says the limit lifts, `now` being when it was printed.
pub fn reset_time(text: &str, now: Timestamp, utc_offset_secs: i64) -> Option<Timestamp> {
    epoch(text)
        .or_else(|| relative(text).map(|secs| Timestamp(now.millis() + secs * 1000)))
        .or_else(|| clock(text, now, utc_offset_secs))
}

fn regex(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pattern).expect("reset patterns compile"))
}

/// `...limit reached|1767225600`: seconds (or milliseconds) since the epoch.
fn epoch(text: &str) -> Option<Timestamp> {
    static RE: OnceLock<Regex> = OnceLock::new();
    let caps = regex(&RE, r"(?i)limit[^|\n]*\|\s*(\d{10,13})\b").captures(text)?;
    let n: i64 = caps[1].parse().ok()?;
    Some(Timestamp(if n > 10_000_000_000 { n } else { n * 1000 }))
}

/// `in 5 minutes`, `after 12s`, `in 3h 20m`, `retry after 30 seconds`: seconds from now.
fn relative(text: &str) -> Option<i64> {
    static RE: OnceLock<Regex> = OnceLock::new();
    static PART: OnceLock<Regex> = OnceLock::new();
    let re = regex(
        &RE,
        r"(?i)\b(?:in|after)\s+((?:\d+(?:\.\d+)?\s*(?:hours?|hrs?|h|minutes?|mins?|m|seconds?|secs?|s)\b[\s,]*(?:and\s+)?)+)",
    );
    let span = re.captures(text)?.get(1)?.as_str().to_string();
    let part = regex(
        &PART,
        r"(?i)(\d+(?:\.\d+)?)\s*(hours?|hrs?|h|minutes?|mins?|m|seconds?|secs?|s)\b",
    );
    let mut secs = 0.0_f64;
    for caps in part.captures_iter(&span) {
        let n: f64 = caps[1].parse().ok()?;
        let unit = caps[2].to_ascii_lowercase();
        secs += n * match unit.chars().next() {
            Some('h') => 3600.0,
            Some('m') => 60.0,
            _ => 1.0,
        };
    }
    (secs > 0.0).then_some(secs.ceil() as i64)
}

/// `at 3:04 PM`, `resets 5pm`, `resets Fri 9am`, `until 15:04`: the next such local time.
fn clock(text: &str, now: Timestamp, utc_offset_secs: i64) -> Option<Timestamp> {
    static RE: OnceLock<Regex> = OnceLock::new();
    let caps = regex(
        &RE,
        r"(?i)\b(?:at|resets?|until)\s+(?:(mon|tue|wed|thu|fri|sat|sun)[a-z]*\s+)?(\d{1,2})(?::(\d{2}))?\s*(am|pm)?\b",
    )
    .captures(text)?;
    let weekday = caps.get(1).map(|m| m.as_str().to_ascii_lowercase());
    let mut hour: i64 = caps[2].parse().ok()?;
    let minute: i64 = caps.get(3).map_or(Some(0), |m| m.as_str().parse().ok())?;
    match caps
        .get(4)
        .map(|m| m.as_str().to_ascii_lowercase())
        .as_deref()
    {
        Some("pm") if hour < 12 => hour += 12,
        Some("am") if hour == 12 => hour = 0,
        None if caps.get(3).is_none() => return None, // a bare number is not a time
        _ => {}
    }
    if hour > 23 || minute > 59 {
        return None;
    }
    const DAY: i64 = 86_400_000;
    let offset = utc_offset_secs * 1000;
    // Local midnight, in UTC milliseconds.
    let midnight = (now.millis() + offset).div_euclid(DAY) * DAY - offset;
    let mut at = midnight + (hour * 3600 + minute * 60) * 1000;
    // A time a few minutes past is this minute's (the text rounds down, clocks drift): the
    // end of that minute. Further past, it is tomorrow's.
    const RECENT: i64 = 15 * 60_000;
    if at <= now.millis() && now.millis() - at < RECENT {
        at += 60_000;
    } else if at <= now.millis() {
        at += DAY;
    }
    if let Some(day) = weekday {
        // 1970-01-01 was a Thursday.
        const DAYS: [&str; 7] = ["thu", "fri", "sat", "sun", "mon", "tue", "wed"];
        let wanted = DAYS.iter().position(|d| day.starts_with(d))? as i64;
        while (at + offset).div_euclid(DAY).rem_euclid(7) != wanted {
            at += DAY;
        }
    }
    Some(Timestamp(at))
}
