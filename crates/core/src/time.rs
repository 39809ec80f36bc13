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
    fn timestamps_print_as_rfc3339() {
        let t = Timestamp::parse_rfc3339("2026-11-22T03:00:00Z").unwrap();
        assert_eq!(t.to_string(), "2026-11-22T03:00:00Z");
        assert_eq!(Timestamp(t.0 + 5).to_string(), "2026-11-22T03:00:00.005Z");
    }
}
