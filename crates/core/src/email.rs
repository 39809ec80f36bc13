//! A run's status change as an e-mail: the facts of its Slack message as a subject and a plain
//! text body, published to the pipeline's own SNS topic (its e-mail subscriptions deliver it).

use crate::definition::{Notifications, Problem};
use crate::pipeline::{check_account, check_region};
use crate::run::Run;
use crate::slack::message::{console_url, status_look, FailureContext};
use crate::time::Span;

/// Where e-mail goes: a pipeline's own SNS topic, whose e-mail subscriptions deliver it.
pub trait EmailTopics {
    /// Publishes `email` to `topic_arn` (any account and Region the topic's policy admits from).
    fn publish_email(
        &self,
        topic_arn: &str,
        email: &EmailMessage,
    ) -> impl std::future::Future<Output = Result<(), crate::ports::PublishError>> + Send;
}

/// The registration property naming the pipeline's e-mail topic.
pub const TOPIC_PROPERTY: &str = "NotificationTopicArn";

/// Checks a registration's e-mail topic against its notifications: EMAIL targets need a topic
/// (baton cannot send e-mail otherwise), a topic needs EMAIL targets (it would never be used), and
/// the topic is an SNS topic in the pipeline's own account (a stack names only its own topics).
/// Returns the notifications with the topic attached.
pub fn check_topic(
    notifications: Option<Notifications>,
    topic: Option<&str>,
    pipeline_account: &str,
) -> Result<Option<Notifications>, Problem> {
    let problem = |message: String| Problem {
        path: TOPIC_PROPERTY.to_owned(),
        message,
    };
    let wants_email = notifications
        .as_ref()
        .is_some_and(|n| !n.email_addresses().is_empty());
    match (notifications, topic) {
        (_, None) if wants_email => Err(problem(format!(
            "missing: EMAIL targets are published to the pipeline's own SNS topic; create one with the e-mail subscriptions and a policy letting baton's central account publish (`baton synth` does), and give its ARN as {TOPIC_PROPERTY}"
        ))),
        (n, None) => Ok(n),
        (Some(mut n), Some(arn)) if wants_email => {
            let parts: Vec<&str> = arn.split(':').collect();
            let shaped = parts.len() == 6
                && parts[0] == "arn"
                && parts[2] == "sns"
                && check_region(parts[3]).is_ok()
                && check_account(parts[4]).is_ok()
                && !parts[5].is_empty();
            if !shaped {
                return Err(problem(format!(
                    "`{arn}` is not an SNS topic ARN (arn:aws:sns:<region>:<account>:<name>)"
                )));
            }
            if parts[4] != pipeline_account {
                return Err(problem(format!(
                    "the topic is in account {} but the pipeline is in account {pipeline_account}; a pipeline's e-mail goes through a topic of its own account",
                    parts[4]
                )));
            }
            n.email_topic_arn = Some(arn.to_owned());
            Ok(Some(n))
        }
        (_, Some(_)) => Err(problem(format!(
            "given, but there is no EMAIL target: add {{channel: EMAIL, addresses: [...]}} to Notifications.targets or remove {TOPIC_PROPERTY}"
        ))),
    }
}

/// SNS allows a subject of under 100 ASCII characters, without line breaks.
pub const SUBJECT_LIMIT: usize = 99;
/// Lines of a cause kept in the body (a stack trace can be long; the console has it all).
pub const CAUSE_LINES: usize = 40;

/// An e-mail's subject and plain-text body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmailMessage {
    pub subject: String,
    pub body: String,
}

/// The e-mail for `run` reaching its status; `failure` adds the mention's team and what will
/// not start, as the Slack message does; `environment` prefixes the subject.
pub fn email(
    run: &Run,
    failure: Option<&FailureContext>,
    environment: Option<&str>,
) -> EmailMessage {
    let (_, verb) = status_look(run.status);
    let prefix = environment.map(|e| format!("[{e}] ")).unwrap_or_default();
    let subject = subject(&format!(
        "{prefix}{} {verb} ({}): {}",
        run.pipeline.name, run.status, run.execution_name
    ));
    let mut lines = vec![
        format!("{} {verb} ({}).", run.pipeline.name, run.status),
        String::new(),
        format!(
            "Account:   {} ({})",
            run.pipeline.account, run.pipeline.region
        ),
        format!("Execution: {}", run.execution_name),
        format!(
            "           {}",
            console_url(&run.execution_arn, &run.pipeline.region)
        ),
        format!("Started:   {}", run.started_at),
    ];
    if let Some(ms) = run.duration_ms() {
        lines.push(format!("Duration:  {}", Span(ms).readable()));
    }
    if let Some(key) = &run.run_key {
        lines.push(format!("Run key:   {}", key.0));
    }
    if let Some(id) = &run.trigger_id {
        lines.push(format!("Started by baton trigger {id}"));
    }
    if let Some(error) = &run.error {
        lines.push(String::new());
        lines.push(format!("Error: {error}"));
    }
    if let Some(cause) = run.cause.as_deref().filter(|c| !c.trim().is_empty()) {
        lines.push("Cause:".to_owned());
        let all: Vec<&str> = cause.lines().collect();
        lines.extend(all.iter().take(CAUSE_LINES).map(|l| format!("  {l}")));
        if all.len() > CAUSE_LINES {
            lines.push(format!(
                "  ... {} more lines in the console",
                all.len() - CAUSE_LINES
            ));
        }
    }
    if let Some(f) = failure {
        if !f.downstream.is_empty() {
            let names: Vec<String> = f
                .downstream
                .iter()
                .map(|p| format!("{} ({})", p.name, p.account))
                .collect();
            lines.push(String::new());
            lines.push(format!(
                "Will not start{}: {}",
                if f.downstream_truncated {
                    " (and more)"
                } else {
                    ""
                },
                names.join(", ")
            ));
        }
    }
    lines.push(String::new());
    match environment {
        Some(env) => lines.push(format!("-- baton ({env})")),
        None => lines.push("-- baton".to_owned()),
    }
    EmailMessage {
        subject,
        body: lines.join("\n") + "\n",
    }
}

/// Printable ASCII on one line, under SNS's limit.
fn subject(text: &str) -> String {
    let clean: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    if clean.len() <= SUBJECT_LIMIT {
        clean
    } else {
        format!("{}...", &clean[..SUBJECT_LIMIT - 3])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{PipelineId, RunStatus, Timestamp};

    fn run(status: RunStatus) -> Run {
        let pipeline = PipelineId::new("333333333333", "eu-west-1", "pipeline-x").unwrap();
        Run {
            execution_arn: "arn:aws:states:eu-west-1:333333333333:execution:pipeline-x:2026-11-26"
                .into(),
            pipeline,
            execution_name: "2026-11-26".into(),
            status,
            started_at: Timestamp(1_764_000_000_000),
            stopped_at: Some(Timestamp(1_764_000_600_000)),
            error: Some("States.TaskFailed".into()),
            cause: Some("line\n".repeat(50)),
            trigger_id: Some("t-1".into()),
            run_key: None,
        }
    }

    #[test]
    fn has_the_facts_of_the_slack_message() {
        let failure = FailureContext {
            mention: None,
            downstream: vec![PipelineId::new("444444444444", "eu-west-1", "report").unwrap()],
            downstream_truncated: false,
        };
        let e = email(&run(RunStatus::Failed), Some(&failure), Some("prod"));
        assert_eq!(e.subject, "[prod] pipeline-x failed (FAILED): 2026-11-26");
        for fact in [
            "333333333333 (eu-west-1)",
            "Duration:  10m",
            "Error: States.TaskFailed",
            "Will not start: report (444444444444)",
            "trigger t-1",
            "... 10 more lines",
            "-- baton (prod)",
            "/states/home?region=eu-west-1",
        ] {
            assert!(e.body.contains(fact), "{fact} missing in:\n{}", e.body);
        }
    }

    #[test]
    fn a_topic_goes_with_email_targets_in_the_pipelines_account() {
        let with_email = crate::PipelineDefinition::from_json(
            r#"{"notifications": {"targets": [{"channel": "EMAIL", "addresses": ["a@example.com"]}]}}"#,
        )
        .unwrap()
        .notifications;
        let slack_only = crate::PipelineDefinition::from_json(
            r#"{"notifications": {"targets": [{"channel": "SLACK", "addresses": ["c"]}]}}"#,
        )
        .unwrap()
        .notifications;
        let topic = "arn:aws:sns:eu-west-1:333333333333:baton-notify-x";
        let ok = check_topic(with_email.clone(), Some(topic), "333333333333").unwrap();
        assert_eq!(ok.unwrap().email_topic_arn.as_deref(), Some(topic));
        let missing = check_topic(with_email.clone(), None, "333333333333").unwrap_err();
        assert!(
            missing.message.starts_with("missing: EMAIL targets"),
            "{missing}"
        );
        let other = check_topic(with_email.clone(), Some(topic), "444444444444").unwrap_err();
        assert!(other
            .message
            .contains("in account 333333333333 but the pipeline is in account 444444444444"));
        assert!(check_topic(
            with_email,
            Some("arn:aws:sqs:eu-west-1:333333333333:q"),
            "333333333333"
        )
        .is_err());
        assert!(check_topic(slack_only.clone(), Some(topic), "333333333333")
            .unwrap_err()
            .message
            .contains("no EMAIL target"));
        assert!(check_topic(None, Some(topic), "333333333333").is_err());
        assert!(check_topic(slack_only, None, "333333333333").is_ok());
    }

    #[test]
    fn subject_is_ascii_on_one_line_under_the_limit() {
        let mut r = run(RunStatus::Succeeded);
        r.execution_name = format!("ü\n{}", "x".repeat(200));
        let e = email(&r, None, None);
        assert!(e.subject.len() <= SUBJECT_LIMIT, "{}", e.subject.len());
        assert!(e.subject.chars().all(|c| c.is_ascii_graphic() || c == ' '));
        assert!(e.subject.ends_with("..."));
    }
}
