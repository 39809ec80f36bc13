//! The Slack messages of deadline alerts: the alert (with why and the owners' mention), the note
//! in a blocking parent's channels, and the follow-up in the alert's thread. User text is escaped
//! as in [`crate::slack::message`].

use serde_json::{json, Value};

use super::{AlertEvent, AlertNews, DeadlineAlert};
use crate::deadlines::DeadlineKind;
use crate::slack::message::{escape, mention, SlackMessage, SECTION_TEXT_LIMIT};
use crate::time::Span;

/// How many reasons an alert lists before "and N more".
pub const REASONS_NAMED: usize = 10;

/// The message for an alert event. `mention`: the late pipeline's `mentionOnFailure`, used in
/// its own channels only.
pub fn alert_message(event: &AlertEvent, mention_text: Option<&str>) -> SlackMessage {
    let alert = &event.alert;
    match &event.news {
        AlertNews::Raised => raised(alert, mention_text),
        AlertNews::WaitingOnYou { parent } => {
            let text = format!(
                "{} ({}) is waiting on {}: it was due to {} by {} on {}",
                alert.pipeline.name,
                alert.pipeline.account,
                parent.name,
                verb(alert.kind),
                alert.due_local,
                alert.day
            );
            let blocks = vec![section(format!(
                ":hourglass: *{}* ({}) is waiting on this pipeline: it was due to {} by {} on {}",
                escape(&alert.pipeline.name),
                escape(&alert.pipeline.account),
                verb(alert.kind),
                escape(&alert.due_local),
                escape(&alert.day)
            ))];
            SlackMessage { text, blocks }
        }
        AlertNews::Resolved {
            late_by,
            execution_name,
            ..
        } => {
            let what = match alert.kind {
                DeadlineKind::LateStart => "started",
                DeadlineKind::LateFinish => "finished",
                DeadlineKind::TooLong => "stopped",
            };
            let run = execution_name
                .as_deref()
                .map(|n| format!(" (run {n})"))
                .unwrap_or_default();
            let when = if late_by.0 == 0 {
                "on time after all (its status reached baton late)".to_owned()
            } else {
                format!("{} late", late(*late_by))
            };
            if alert.kind == DeadlineKind::TooLong {
                let text = format!(
                    "{}{run} stopped {} after its maxDuration",
                    alert.pipeline.name,
                    late(*late_by)
                );
                let blocks = vec![section(format!(":white_check_mark: {}", escape(&text)))];
                return SlackMessage { text, blocks };
            }
            let text = format!("{} {what} {when}{run}", alert.pipeline.name);
            let blocks = vec![section(format!(
                ":white_check_mark: *{}* {what} {when}{}",
                escape(&alert.pipeline.name),
                escape(&run)
            ))];
            SlackMessage { text, blocks }
        }
    }
}

fn raised(alert: &DeadlineAlert, mention_text: Option<&str>) -> SlackMessage {
    let headline = format!(
        "{} has not {} by {} on {}",
        alert.pipeline.name,
        participle(alert.kind),
        alert.due_local,
        alert.day
    );
    let mut blocks = vec![section(format!(
        ":alarm_clock: *{}* has not {} by {} on {}",
        escape(&alert.pipeline.name),
        participle(alert.kind),
        escape(&alert.due_local),
        escape(&alert.day)
    ))];
    let mut lines: Vec<String> = alert
        .reasons
        .iter()
        .take(REASONS_NAMED)
        .map(|r| format!("• {}", escape(r)))
        .collect();
    if alert.reasons.len() > REASONS_NAMED {
        lines.push(format!("and {} more", alert.reasons.len() - REASONS_NAMED));
    }
    if !lines.is_empty() {
        let why = format!("why:\n{}", lines.join("\n"));
        blocks.push(section(escape_within_lines(&why)));
    }
    if let Some(m) = mention_text {
        blocks.push(section(mention(m)));
    }
    let text = match alert.reasons.first() {
        Some(first) => format!("{headline}: {first}"),
        None => headline,
    };
    SlackMessage { text, blocks }
}

/// Keeps an already-escaped section under Slack's limit.
fn escape_within_lines(text: &str) -> String {
    if text.chars().count() <= SECTION_TEXT_LIMIT {
        text.to_owned()
    } else {
        let cut: String = text.chars().take(SECTION_TEXT_LIMIT - 1).collect();
        format!("{cut}…")
    }
}

fn participle(kind: DeadlineKind) -> &'static str {
    match kind {
        DeadlineKind::LateStart => "started",
        DeadlineKind::LateFinish => "finished",
        DeadlineKind::TooLong => "stopped",
    }
}

fn verb(kind: DeadlineKind) -> &'static str {
    match kind {
        DeadlineKind::LateStart => "start",
        DeadlineKind::LateFinish => "finish",
        DeadlineKind::TooLong => "stop",
    }
}

/// Lateness as people say it: `35 min`, `2 h 5 min`, `40 s`.
pub fn late(span: Span) -> String {
    let minutes = span.0 / Span::MINUTE.0;
    match minutes {
        0 => format!("{} s", span.0 / Span::SECOND.0),
        m if m < 60 => format!("{m} min"),
        m if m % 60 == 0 => format!("{} h", m / 60),
        m => format!("{} h {} min", m / 60, m % 60),
    }
}

fn section(text: String) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": text}})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::PipelineId;
    use crate::time::Timestamp;

    fn alert() -> DeadlineAlert {
        DeadlineAlert {
            pipeline: PipelineId::new("333333333333", "eu-west-1", "pipeline-x").unwrap(),
            kind: DeadlineKind::LateStart,
            day: "2026-11-26".into(),
            due: Timestamp(0),
            due_local: "07:00 Europe/Berlin".into(),
            raised_at: Timestamp(0),
            reasons: vec![
                "waiting on searches (222222222222): latest run <b> FAILED at 05:18".into(),
            ],
            waiting_on: Vec::new(),
            execution_arn: None,
        }
    }

    #[test]
    fn an_alert_says_why_escaped_and_mentions_the_owners() {
        let event = AlertEvent {
            alert: alert(),
            news: AlertNews::Raised,
        };
        let m = alert_message(&event, Some("<!subteam^S0123> <!channel-not>"));
        assert_eq!(
            m.text,
            "pipeline-x has not started by 07:00 Europe/Berlin on 2026-11-26: waiting on searches (222222222222): latest run <b> FAILED at 05:18"
        );
        let blocks = serde_json::to_string(&m.blocks).unwrap();
        assert!(
            blocks.contains("latest run &lt;b&gt; FAILED at 05:18"),
            "{blocks}"
        );
        assert!(blocks.contains("<!subteam^S0123>"), "{blocks}");
        assert!(!blocks.contains("<!channel-not>"), "{blocks}");
    }

    #[test]
    fn the_follow_up_says_how_late() {
        let event = AlertEvent {
            alert: alert(),
            news: AlertNews::Resolved {
                at: Timestamp(0),
                late_by: Span::minutes(35),
                execution_name: Some("run-1".into()),
            },
        };
        assert_eq!(
            alert_message(&event, None).text,
            "pipeline-x started 35 min late (run run-1)"
        );
        assert_eq!(late(Span::minutes(125)), "2 h 5 min");
        assert_eq!(late(Span::hours(2)), "2 h");
        assert_eq!(late(Span(40_000)), "40 s");
    }
}
