//! One way to write and read time: UTC, RFC 3339 with milliseconds and a `Z`.
//!
//! Every timestamp the project stores has the same width and zone, so two of them compare
//! correctly as strings too (the earlier implementation mixed naive local time and UTC).

use chrono::{DateTime, SecondsFormat, Utc};

pub type Timestamp = DateTime<Utc>;

pub fn now() -> Timestamp {
    Utc::now()
}

/// `2026-11-26T18:20:57.123Z`
pub fn format(ts: Timestamp) -> String {
    ts.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub fn parse(s: &str) -> Result<Timestamp, chrono::ParseError> {
    DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc))
}

/// A short duration for tables: `24ms` under a second, `1.4s` above.
pub fn short_ms(ms: f64) -> String {
    if ms < 1000.0 {
        format!("{ms:.0}ms")
    } else {
        format!("{:.1}s", ms / 1000.0)
    }
}

/// A short human age such as `42s`, `5m`, `3h`, `2d`.
pub fn age(since: Timestamp, now: Timestamp) -> String {
    let secs = (now - since).num_seconds().max(0);
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_sorts_as_text() {
        let a = parse("2026-01-02T03:04:05.006Z").unwrap();
        assert_eq!(format(a), "2026-01-02T03:04:05.006Z");
        let b = a + chrono::Duration::milliseconds(994);
        assert_eq!(format(b), "2026-01-02T03:04:06.000Z");
        assert!(format(a) < format(b));
    }

    #[test]
    fn offsets_are_normalised_to_utc() {
        let t = parse("2026-01-02T05:04:05.006+02:00").unwrap();
        assert_eq!(format(t), "2026-01-02T03:04:05.006Z");
    }

    #[test]
    fn ages_are_short() {
        let t = parse("2026-01-02T00:00:00Z").unwrap();
        assert_eq!(age(t, t + chrono::Duration::seconds(59)), "59s");
        assert_eq!(age(t, t + chrono::Duration::seconds(61)), "1m");
        assert_eq!(age(t, t + chrono::Duration::hours(5)), "5h");
        assert_eq!(age(t, t - chrono::Duration::hours(5)), "0s");
    }
}
