//! `trigger.schedule`: when a pipeline runs on the clock. `{hour: 3}` (daily at 03:00 UTC,
//! `minute` optional) or `{cron: "0 3 * * ? *"}` in EventBridge's six-field cron form. It becomes
//! the state machine's schedule in the pipeline's own stack; baton's tables never see it.

use serde_json::Value;

use crate::problems::{describe, join, Collector};

/// A checked schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Schedule {
    Daily { hour: u8, minute: u8 },
    Cron(String),
}

impl Schedule {
    /// EventBridge's schedule expression, e.g. `cron(0 3 * * ? *)`.
    pub fn expression(&self) -> String {
        match self {
            Schedule::Daily { hour, minute } => format!("cron({minute} {hour} * * ? *)"),
            Schedule::Cron(fields) => format!("cron({fields})"),
        }
    }

    pub(crate) fn parse(c: &mut Collector, path: &str, value: &Value) -> Option<Schedule> {
        let map = c.mapping(path, value)?;
        if map.contains_key("cron") {
            c.unknown_keys(path, map, &["cron"]);
            let p = join(path, "cron");
            let text = c.scalar(
                &p,
                &map["cron"],
                "a cron expression such as \"0 3 * * ? *\"",
            )?;
            return check_cron(c, &p, &text).then_some(Schedule::Cron(text));
        }
        c.unknown_keys(path, map, &["hour", "minute", "cron"]);
        let hour = match map.get("hour") {
            None => {
                c.add(
                    &join(path, "hour"),
                    "missing; give `hour` (0 to 23, UTC) or `cron`",
                );
                None
            }
            Some(h) => number(c, &join(path, "hour"), h, 23),
        };
        let minute = match map.get("minute") {
            None => Some(0),
            Some(m) => number(c, &join(path, "minute"), m, 59),
        };
        Some(Schedule::Daily {
            hour: hour?,
            minute: minute?,
        })
    }
}

fn number(c: &mut Collector, path: &str, value: &Value, max: u8) -> Option<u8> {
    let n = match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    match n {
        Some(n) if n <= u64::from(max) => u8::try_from(n).ok(),
        _ => {
            c.add(
                path,
                format!(
                    "expected a whole number from 0 to {max}, got {}",
                    describe(value)
                ),
            );
            None
        }
    }
}

/// EventBridge cron: minutes hours day-of-month month day-of-week year, and exactly one of
/// day-of-month and day-of-week is `?`.
fn check_cron(c: &mut Collector, path: &str, text: &str) -> bool {
    let fields: Vec<&str> = text.split_whitespace().collect();
    if fields.len() != 6 {
        c.add(
            path,
            format!("\"{text}\" has {} fields; EventBridge cron has six: minutes hours day-of-month month day-of-week year, e.g. \"0 3 * * ? *\"", fields.len()),
        );
        return false;
    }
    if (fields[2] == "?") == (fields[4] == "?") {
        c.add(
            path,
            format!("\"{text}\": exactly one of day-of-month (third field) and day-of-week (fifth) must be `?`"),
        );
        return false;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<Schedule, Vec<String>> {
        let mut c = Collector::new("pipeline.yaml");
        let s = Schedule::parse(&mut c, "trigger.schedule", &v);
        c.finish(()).map_err(|e| {
            e.items
                .iter()
                .map(|l| l.problem.to_string())
                .collect::<Vec<_>>()
        })?;
        s.ok_or_else(Vec::new)
    }

    #[test]
    fn daily_and_cron() {
        assert_eq!(
            parse(json!({"hour": 3})).unwrap().expression(),
            "cron(0 3 * * ? *)"
        );
        assert_eq!(
            parse(json!({"hour": "5", "minute": 30}))
                .unwrap()
                .expression(),
            "cron(30 5 * * ? *)"
        );
        assert_eq!(
            parse(json!({"cron": "15 2 ? * MON-FRI *"}))
                .unwrap()
                .expression(),
            "cron(15 2 ? * MON-FRI *)"
        );
    }

    #[test]
    fn refuses_with_the_path() {
        let e = parse(json!({"hour": 24, "minute": -1})).unwrap_err();
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(e[0].starts_with("trigger.schedule.hour: expected a whole number from 0 to 23"));
        let e = parse(json!({"cron": "0 3 * * *"})).unwrap_err();
        assert!(e[0].contains("has 5 fields"), "{e:?}");
        let e = parse(json!({"cron": "0 3 * * * *"})).unwrap_err();
        assert!(e[0].contains("exactly one of day-of-month"), "{e:?}");
        let e = parse(json!({"every": "day"})).unwrap_err();
        assert!(
            e.iter()
                .any(|m| m.starts_with("trigger.schedule.every: unknown field")),
            "{e:?}"
        );
    }
}
