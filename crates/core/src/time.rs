//! Instants and spans as the run log stores them: milliseconds since the Unix epoch, the unit Step
//! Functions uses for `startDate` and `stopDate`.

use std::fmt;

use chrono::{DateTime, SecondsFormat};
use serde::{Deserialize, Serialize};

/// An instant, in milliseconds since the Unix epoch (UTC).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The current instant, by this machine's clock.
    pub fn now() -> Timestamp {
        Timestamp(chrono::Utc::now().timestamp_millis())
    }

    /// The instant as milliseconds since the epoch.
    pub fn millis(self) -> i64 {
        self.0
    }

    /// `self - other` as a span (zero when `other` is later).
    pub fn since(self, other: Timestamp) -> Span {
        Span((self.0 - other.0).max(0))
    }

    /// `self - span`.
    pub fn minus(self, span: Span) -> Timestamp {
        Timestamp(self.0.saturating_sub(span.0))
    }

    /// `self + span`.
    pub fn plus(self, span: Span) -> Timestamp {
        Timestamp(self.0.saturating_add(span.0))
    }

    /// Parses an RFC 3339 instant such as `2026-11-22T03:00:00Z`.
    pub fn parse_rfc3339(text: &str) -> Option<Timestamp> {
        DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|t| Timestamp(t.timestamp_millis()))
    }
}

impl fmt::Display for Timestamp {
    /// RFC 3339 in UTC, to the second unless milliseconds are set.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match DateTime::from_timestamp_millis(self.0) {
            Some(t) if self.0 % 1000 == 0 => {
                f.write_str(&t.to_rfc3339_opts(SecondsFormat::Secs, true))
            }
            Some(t) => f.write_str(&t.to_rfc3339_opts(SecondsFormat::Millis, true)),
            None => write!(f, "{}ms", self.0),
        }
    }
}

/// A length of time in milliseconds, written in definitions as `20h`, `90m`, `1d`, `1h30m`, `45s`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Span(pub i64);

impl Span {
    pub const SECOND: Span = Span(1_000);
    pub const MINUTE: Span = Span(60_000);
    pub const HOUR: Span = Span(3_600_000);
    pub const DAY: Span = Span(86_400_000);

    /// `n` days, saturating at the longest span (a retention of "forever").
    pub const fn days(n: u64) -> Span {
        if n > i64::MAX as u64 {
            Span(i64::MAX)
        } else {
            Span((n as i64).saturating_mul(Self::DAY.0))
        }
    }

    /// `n` hours.
    pub fn hours(n: i64) -> Span {
        Span(n * Self::HOUR.0)
    }

    /// `n` minutes.
    pub fn minutes(n: i64) -> Span {
        Span(n * Self::MINUTE.0)
    }

    /// Parses `20h`, `90m`, `1d`, `1h30m`, `45s` (units d, h, m, s; at least one part; positive).
    pub fn parse(text: &str) -> Option<Span> {
        let text = text.trim();
        if text.is_empty() {
            return None;
        }
        let mut total: i64 = 0;
        let mut digits = String::new();
        for c in text.chars() {
            if c.is_ascii_digit() {
                digits.push(c);
                continue;
            }
            let unit = match c {
                'd' => Self::DAY.0,
                'h' => Self::HOUR.0,
                'm' => Self::MINUTE.0,
                's' => Self::SECOND.0,
                _ => return None,
            };
            let n: i64 = digits.parse().ok()?;
            digits.clear();
            total = total.checked_add(n.checked_mul(unit)?)?;
        }
        if !digits.is_empty() || total <= 0 {
            return None;
        }
        Some(Span(total))
    }
}

impl fmt::Display for Span {
    /// The shortest form `parse` reads back, e.g. `1d2h`, `20h`, `1h30m`, `250ms` for sub-second spans.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 % 1000 != 0 || self.0 == 0 {
            return write!(f, "{}ms", self.0);
        }
        let mut rest = self.0;
        for (unit, label) in [
            (Self::DAY.0, "d"),
            (Self::HOUR.0, "h"),
            (Self::MINUTE.0, "m"),
            (Self::SECOND.0, "s"),
        ] {
            if rest >= unit {
                write!(f, "{}{}", rest / unit, label)?;
                rest %= unit;
            }
        }
        Ok(())
    }
}

impl Span {
    /// As people read it in messages: `1d 2h`, `1h 2m 3s`, `45s`, `250ms` (a negative span
    /// reads as none).
    pub fn readable(self) -> String {
        let ms = self.0.max(0);
        if ms < Self::SECOND.0 {
            return format!("{ms}ms");
        }
        let mut secs = ms / Self::SECOND.0;
        let mut parts = Vec::new();
        for (unit, label) in [(86_400, "d"), (3_600, "h"), (60, "m"), (1, "s")] {
            if secs >= unit {
                parts.push(format!("{}{label}", secs / unit));
                secs %= unit;
            }
        }
        parts.join(" ")
    }

    /// In a table column, whole seconds with two-digit minutes and seconds so durations line
    /// up: `1h02m03s`, `4m05s`, `12s`.
    pub fn aligned(self) -> String {
        let s = self.0 / Self::SECOND.0;
        match (s / 3600, (s / 60) % 60, s % 60) {
            (0, 0, sec) => format!("{sec}s"),
            (0, m, sec) => format!("{m}m{sec:02}s"),
            (h, m, sec) => format!("{h}h{m:02}m{sec:02}s"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_parse_and_print_back() {
        for (text, ms) in [
            ("20h", 72_000_000),
            ("90m", 5_400_000),
            ("1d", 86_400_000),
            ("1h30m", 5_400_000),
            ("45s", 45_000),
        ] {
            assert_eq!(Span::parse(text), Some(Span(ms)), "{text}");
            assert_eq!(Span::parse(&Span(ms).to_string()), Some(Span(ms)));
        }
        for bad in ["", "20", "h", "20x", "-1h", "0h", "1.5h"] {
            assert_eq!(Span::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn days_saturate_instead_of_wrapping() {
        assert_eq!(Span::days(90), Span(90 * 86_400_000));
        assert_eq!(Span::days(0), Span(0));
        assert_eq!(Span::days(u64::MAX), Span(i64::MAX));
        assert_eq!(Span::days(1 << 62), Span(i64::MAX));
    }

    #[test]
    fn durations_read_in_messages_and_tables() {
        assert_eq!(Span(250).readable(), "250ms");
        assert_eq!(Span(45_000).readable(), "45s");
        assert_eq!(Span(3_723_000).readable(), "1h 2m 3s");
        assert_eq!(Span(-5).readable(), "0ms");
        assert_eq!(Span(3_723_000).aligned(), "1h02m03s");
        assert_eq!(Span(245_000).aligned(), "4m05s");
        assert_eq!(Span(12_999).aligned(), "12s");
    }

    #[test]
    fn timestamps_print_as_rfc3339() {
        let t = Timestamp::parse_rfc3339("2026-11-22T03:00:00Z").unwrap();
        assert_eq!(t.to_string(), "2026-11-22T03:00:00Z");
        assert_eq!(Timestamp(t.0 + 5).to_string(), "2026-11-22T03:00:00.005Z");
    }
}
