//! The `deadlines` block of a pipeline definition: by when a pipeline must have started
//! (`startBy`) and finished (`finishBy`) each day in its `timezone`, and how long one run may take
//! (`maxDuration`). Validation, and the calendar: which instant a local deadline is on a given
//! day, daylight saving included.
//!
//! A local time that does not exist on a day (02:30 on the night clocks spring forward) falls
//! after the gap (03:30), and one that happens twice (02:30 on the night they fall back) is the
//! first of the two: the "compatible" rule of RFC 5545 and of `jiff`, so a deadline is never
//! skipped and never checked twice.

use std::fmt;

use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

use crate::definition::Problem;
use crate::time::{Span, Timestamp};

/// A time of day, `HH:MM`, in the deadline's time zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LocalTime {
    pub hour: u8,
    pub minute: u8,
}

impl LocalTime {
    /// Reads `7:00`, `07:00` or `23:59`.
    pub fn parse(text: &str) -> Option<LocalTime> {
        let (h, m) = text.trim().split_once(':')?;
        if h.is_empty() || h.len() > 2 || m.len() != 2 {
            return None;
        }
        let hour: u8 = h.parse().ok()?;
        let minute: u8 = m.parse().ok()?;
        (hour < 24 && minute < 60).then_some(LocalTime { hour, minute })
    }

    fn civil(self) -> Time {
        // In range by construction (parse checks it).
        Time::constant(self.hour as i8, self.minute as i8, 0, 0)
    }
}

impl fmt::Display for LocalTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.hour, self.minute)
    }
}

impl Serialize for LocalTime {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for LocalTime {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<LocalTime, D::Error> {
        let text = String::deserialize(d)?;
        LocalTime::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("`{text}` is not a time HH:MM")))
    }
}

/// The `deadlines` block, validated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deadlines {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_by: Option<LocalTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_by: Option<LocalTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duration: Option<Span>,
    /// An IANA time zone name (`Europe/Berlin`); `UTC` when the block names none.
    pub timezone: String,
}

/// A deadline that cannot be placed on the calendar.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CalendarError {
    #[error("time zone `{0}` is not in the IANA time zone database baton was built with")]
    UnknownZone(String),
    #[error("instant {0} is outside the calendar baton can compute with")]
    OutOfRange(Timestamp),
}

/// Which promise a pipeline broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DeadlineKind {
    /// No run started by `startBy`.
    LateStart,
    /// No run succeeded by `finishBy`.
    LateFinish,
    /// A run has been running longer than `maxDuration`.
    TooLong,
}

impl DeadlineKind {
    /// The word used in keys and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            DeadlineKind::LateStart => "lateStart",
            DeadlineKind::LateFinish => "lateFinish",
            DeadlineKind::TooLong => "tooLong",
        }
    }

    /// Reads [`DeadlineKind::as_str`] back.
    pub fn parse(text: &str) -> Option<DeadlineKind> {
        [
            DeadlineKind::LateStart,
            DeadlineKind::LateFinish,
            DeadlineKind::TooLong,
        ]
        .into_iter()
        .find(|k| k.as_str() == text)
    }
}

/// A deadline of one local day: which kind, on which day, at which instant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DueDeadline {
    pub kind: DeadlineKind,
    /// The local day, `YYYY-MM-DD`.
    pub day: String,
    pub at: Timestamp,
}

impl Deadlines {
    /// The time zone, from the database compiled into baton.
    pub fn zone(&self) -> Result<TimeZone, CalendarError> {
        TimeZone::get(&self.timezone).map_err(|_| CalendarError::UnknownZone(self.timezone.clone()))
    }

    /// The local day `t` falls on, and when that day began.
    pub fn day_of(&self, t: Timestamp) -> Result<(Date, Timestamp), CalendarError> {
        let zone = self.zone()?;
        let date = to_jiff(t)?.to_zoned(zone.clone()).date();
        Ok((date, day_start(date, &zone, t)?))
    }

    /// The instant of each daily deadline (`startBy`, `finishBy`) on local day `date`.
    pub fn on_day(&self, date: Date) -> Result<Vec<DueDeadline>, CalendarError> {
        let zone = self.zone()?;
        let mut out = Vec::new();
        for (kind, time) in [
            (DeadlineKind::LateStart, self.start_by),
            (DeadlineKind::LateFinish, self.finish_by),
        ] {
            let Some(time) = time else { continue };
            let at = zone
                .to_ambiguous_zoned(date.to_datetime(time.civil()))
                .compatible()
                .map_err(|_| CalendarError::UnknownZone(self.timezone.clone()))?;
            out.push(DueDeadline {
                kind,
                day: date.to_string(),
                at: Timestamp(at.timestamp().as_millisecond()),
            });
        }
        Ok(out)
    }

    /// The daily deadlines due at the first deadline instant strictly after `after` (several when
    /// `startBy` and `finishBy` fall at the same instant); empty without daily deadlines.
    pub fn next_due(&self, after: Timestamp) -> Result<Vec<DueDeadline>, CalendarError> {
        let (mut date, _) = self.day_of(after)?;
        // A deadline is at most a day and a DST shift away; three days always find the next.
        for _ in 0..3 {
            let mut due: Vec<DueDeadline> = self
                .on_day(date)?
                .into_iter()
                .filter(|d| d.at > after)
                .collect();
            if let Some(first) = due.iter().map(|d| d.at).min() {
                due.retain(|d| d.at == first);
                return Ok(due);
            }
            date = date
                .tomorrow()
                .map_err(|_| CalendarError::OutOfRange(after))?;
        }
        Ok(Vec::new())
    }

    /// `t` as a local wall-clock time, `HH:MM`, for messages.
    pub fn local_time(&self, t: Timestamp) -> String {
        match (self.zone(), to_jiff(t)) {
            (Ok(zone), Ok(ts)) => ts.to_zoned(zone).strftime("%H:%M").to_string(),
            _ => t.to_string(),
        }
    }
}

fn to_jiff(t: Timestamp) -> Result<jiff::Timestamp, CalendarError> {
    jiff::Timestamp::from_millisecond(t.0).map_err(|_| CalendarError::OutOfRange(t))
}

fn day_start(date: Date, zone: &TimeZone, t: Timestamp) -> Result<Timestamp, CalendarError> {
    let start = date
        .to_zoned(zone.clone())
        .map_err(|_| CalendarError::OutOfRange(t))?;
    Ok(Timestamp(start.timestamp().as_millisecond()))
}

/// Reads and checks a `deadlines` block at `path` (`deadlines`, or `Deadlines` in CloudFormation
/// properties, where every scalar is a string). Every problem is reported, each with its path.
pub fn read(path: &str, value: &Value) -> Result<Deadlines, Vec<Problem>> {
    let Value::Object(map) = value else {
        return Err(vec![Problem {
            path: path.to_owned(),
            message: "expected a mapping with startBy, finishBy, maxDuration and timezone".into(),
        }]);
    };
    let mut block = Block {
        path,
        map,
        problems: Vec::new(),
    };
    const ALLOWED: [&str; 4] = ["startBy", "finishBy", "maxDuration", "timezone"];
    for key in map.keys().filter(|k| !ALLOWED.contains(&k.as_str())) {
        block.problem(
            key,
            format!("unknown field; allowed here: {}", ALLOWED.join(", ")),
        );
    }
    let start_by = block.time("startBy");
    let finish_by = block.time("finishBy");
    let max_duration = block.max_duration();
    let timezone = block.timezone();
    if !map.contains_key("startBy")
        && !map.contains_key("finishBy")
        && !map.contains_key("maxDuration")
    {
        block.problem(
            "",
            "names no deadline; give startBy, finishBy or maxDuration".into(),
        );
    }
    if block.problems.is_empty() {
        Ok(Deadlines {
            start_by,
            finish_by,
            max_duration,
            timezone,
        })
    } else {
        Err(block.problems)
    }
}

/// A `deadlines` mapping being read, and the problems found so far.
struct Block<'a> {
    path: &'a str,
    map: &'a serde_json::Map<String, Value>,
    problems: Vec<Problem>,
}

impl Block<'_> {
    fn problem(&mut self, field: &str, message: String) {
        self.problems.push(Problem {
            path: if field.is_empty() {
                self.path.to_owned()
            } else {
                format!("{}.{field}", self.path)
            },
            message,
        })
    }

    /// `None`: absent; `Some(None)`: not a scalar.
    fn text(&self, key: &str) -> Option<Option<String>> {
        self.map.get(key).map(scalar)
    }

    fn time(&mut self, key: &str) -> Option<LocalTime> {
        match self.text(key) {
            None => None,
            Some(Some(t)) => match LocalTime::parse(&t) {
                Some(time) => Some(time),
                None if self.map.get(key).is_some_and(Value::is_number) => {
                    self.problem(
                        key,
                        format!("the number {t} is not a time of day; quote the time (\"10:30\"): a YAML 1.1 reader such as CloudFormation's reads an unquoted 10:30 as the number 630"),
                    );
                    None
                }
                None => {
                    self.problem(
                        key,
                        format!("\"{t}\" is not a time of day; write it as HH:MM, e.g. 07:00"),
                    );
                    None
                }
            },
            Some(None) => {
                self.problem(key, "expected a time of day such as \"07:00\"".into());
                None
            }
        }
    }

    fn max_duration(&mut self) -> Option<Span> {
        let t = self.text("maxDuration")?;
        match t.as_deref().and_then(Span::parse) {
            Some(span) if span >= Span::MINUTE => Some(span),
            _ => {
                self.problem(
                    "maxDuration",
                    format!(
                        "{} is not a duration of at least a minute; write it like 2h, 90m or 1h30m",
                        t.map_or("this".to_owned(), |t| format!("\"{t}\""))
                    ),
                );
                None
            }
        }
    }

    fn timezone(&mut self) -> String {
        match self.text("timezone") {
            None => "UTC".to_owned(),
            Some(Some(zone)) if TimeZone::get(&zone).is_ok() => zone,
            Some(zone) => {
                self.problem(
                    "timezone",
                    format!(
                        "{} is not an IANA time zone; write it like Europe/Berlin or UTC",
                        zone.map_or("this".to_owned(), |z| format!("\"{z}\""))
                    ),
                );
                String::new()
            }
        }
    }
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn berlin(start_by: &str) -> Deadlines {
        read(
            "deadlines",
            &json!({"startBy": start_by, "finishBy": "09:30", "timezone": "Europe/Berlin"}),
        )
        .unwrap()
    }

    fn at(text: &str) -> Timestamp {
        Timestamp::parse_rfc3339(text).unwrap()
    }

    #[test]
    fn a_local_deadline_moves_in_utc_with_daylight_saving() {
        let d = berlin("07:00");
        // Winter (CET, UTC+1) and summer (CEST, UTC+2).
        let winter = d.next_due(at("2026-11-26T00:00:00Z")).unwrap();
        assert_eq!(winter[0].at, at("2026-11-26T06:00:00Z"));
        assert_eq!(winter[0].day, "2026-11-26");
        let summer = d.next_due(at("2026-07-01T00:00:00Z")).unwrap();
        assert_eq!(summer[0].at, at("2026-07-01T05:00:00Z"));
        // The night of the change to summer time (29 March 2026): 07:00 is already CEST.
        let spring = d.next_due(at("2026-03-29T00:30:00Z")).unwrap();
        assert_eq!(spring[0].at, at("2026-03-29T05:00:00Z"));
        // And back to winter time (25 October 2026).
        let autumn = d.next_due(at("2026-10-25T00:30:00Z")).unwrap();
        assert_eq!(autumn[0].at, at("2026-10-25T06:00:00Z"));
    }

    #[test]
    fn a_deadline_in_the_gap_or_the_fold_is_checked_once() {
        let d = berlin("02:30");
        // 02:30 does not exist on 29 March 2026 in Berlin: it falls after the gap, 03:30 CEST.
        let spring = d.next_due(at("2026-03-28T23:00:00Z")).unwrap();
        assert_eq!(spring[0].at, at("2026-03-29T01:30:00Z"));
        // 02:30 happens twice on 25 October 2026: the first (CEST) one, and only once that day.
        let first = d.next_due(at("2026-10-24T23:00:00Z")).unwrap();
        assert_eq!(first[0].at, at("2026-10-25T00:30:00Z"));
        let next = d.next_due(first[0].at).unwrap();
        assert_eq!(next[0].kind, DeadlineKind::LateFinish);
        assert_eq!(next[0].day, "2026-10-25");
        let after = d.next_due(next[0].at).unwrap();
        assert_eq!(after[0].day, "2026-10-26");
    }

    #[test]
    fn the_local_day_starts_at_local_midnight() {
        let d = berlin("07:00");
        let (date, start) = d.day_of(at("2026-11-25T23:30:00Z")).unwrap();
        assert_eq!(date.to_string(), "2026-11-26");
        assert_eq!(start, at("2026-11-25T23:00:00Z"));
        assert_eq!(d.local_time(at("2026-11-26T04:18:00Z")), "05:18");
    }

    #[test]
    fn cloudformation_properties_carry_deadlines_as_strings_and_problems_with_their_path() {
        use crate::definition::PipelineDefinition;
        let ok = PipelineDefinition::from_cfn_properties(&json!({
            "Deadlines": {"startBy": "07:00", "maxDuration": "2h", "timezone": "Europe/Berlin"}
        }))
        .unwrap();
        let deadlines = ok.deadlines.clone().unwrap();
        assert_eq!(deadlines.start_by, LocalTime::parse("7:00"));
        assert_eq!(deadlines.max_duration, Some(Span::hours(2)));
        // Problems of every block come together.
        let bad = PipelineDefinition::from_cfn_properties(&json!({
            "Notifications": {"type": "SOMETIMES", "targets": [{"channel": "SLACK", "addresses": ["a"]}]},
            "Deadlines": {"finishBy": "9.30"}
        }))
        .unwrap_err();
        let paths: Vec<&str> = bad.problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["Notifications.type", "Deadlines.finishBy"]);
        // The block survives the registry's JSON round trip.
        let text = serde_json::to_string(&ok).unwrap();
        assert!(text.contains(r#""deadlines":{"startBy":"07:00","maxDuration":7200000,"timezone":"Europe/Berlin"}"#), "{text}");
        let back: PipelineDefinition = serde_json::from_str(&text).unwrap();
        assert_eq!(back, ok);
    }

    #[test]
    fn every_problem_is_named_with_its_path() {
        let problems = read(
            "Deadlines",
            &json!({"startBy": "7am", "finishBy": "24:00", "maxDuration": "2 hours",
                    "timezone": "Europe/Berlim", "grace": "5m"}),
        )
        .unwrap_err();
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "Deadlines.grace",
                "Deadlines.startBy",
                "Deadlines.finishBy",
                "Deadlines.maxDuration",
                "Deadlines.timezone"
            ]
        );
        assert!(problems[4].message.contains("Europe/Berlim"));
        assert_eq!(
            read("deadlines", &json!({})).unwrap_err()[0].message,
            "names no deadline; give startBy, finishBy or maxDuration"
        );
        let sexagesimal = read("Deadlines", &json!({"startBy": 630})).unwrap_err();
        assert!(
            sexagesimal[0].message.contains("quote the time"),
            "{sexagesimal:?}"
        );
        let only = read("deadlines", &json!({"maxDuration": "2h"})).unwrap();
        assert_eq!(only.timezone, "UTC");
        assert_eq!(only.max_duration, Some(Span::hours(2)));
        assert!(only
            .next_due(at("2026-11-26T00:00:00Z"))
            .unwrap()
            .is_empty());
    }
}
