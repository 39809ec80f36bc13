//! The Slack messages baton posts, rendered as Block Kit with a plain `text` fallback.
//!
//! Every value that comes from a user or an event (pipeline and execution names, error, cause,
//! trigger reason) goes through [`escape`], so a pipeline named `<!channel>` pings nobody. The
//! one exception is `mentionOnFailure`, whose purpose is to ping: its tokens are passed through
//! only when they are Slack mentions ([`mention`]).
//!
//! Limits respected here (Slack's): a section's text at most 3000 characters, a field's at most
//! 2000, at most 10 fields, 50 blocks, and a `text` fallback well under 40,000 characters.

use serde_json::{json, Value};

use crate::events::PipelineTrigger;
use crate::pipeline::{partition_of, PipelineId};
use crate::run::{Run, RunRef};
use crate::status::RunStatus;
use crate::time::{Span, Timestamp};

/// Slack's limit on a section block's text.
pub const SECTION_TEXT_LIMIT: usize = 3000;
/// Slack's limit on a field's or a context element's text.
pub const FIELD_TEXT_LIMIT: usize = 2000;
/// How much of a failure's cause is shown: a section minus the code fences and the heading.
pub const CAUSE_LIMIT: usize = SECTION_TEXT_LIMIT - 40;
/// How many downstream pipelines are named before "and N more".
pub const DOWNSTREAM_NAMED: usize = 5;
/// How many consumed runs a trigger notice lists before "and N more".
pub const CONSUMED_NAMED: usize = 10;
/// Limit on the plain `text` fallback (it is what notifications and screen readers show).
pub const FALLBACK_TEXT_LIMIT: usize = 1000;

/// A rendered message: Block Kit blocks and the plain-text fallback.
#[derive(Clone, Debug, PartialEq)]
pub struct SlackMessage {
    pub text: String,
    pub blocks: Vec<Value>,
}

impl SlackMessage {
    /// The `chat.postMessage` body, link unfurling off, optionally in a thread.
    pub fn post_body(&self, channel: &str, thread_ts: Option<&str>) -> Value {
        let mut body = json!({
            "channel": channel,
            "text": self.text,
            "unfurl_links": false,
            "unfurl_media": false,
        });
        if !self.blocks.is_empty() {
            body["blocks"] = Value::Array(self.blocks.clone());
        }
        if let Some(ts) = thread_ts {
            body["thread_ts"] = Value::String(ts.to_owned());
        }
        body
    }

    /// The `chat.update` body for the message `ts` in `channel_id`.
    pub fn update_body(&self, channel_id: &str, ts: &str) -> Value {
        json!({
            "channel": channel_id,
            "ts": ts,
            "text": self.text,
            "blocks": self.blocks,
        })
    }

    /// The message as seen in one baton environment: the fallback text starts with `[dev]` and
    /// a last context line names the environment, so a dev run never reads like a prod one.
    pub fn in_environment(mut self, environment: Option<&str>) -> SlackMessage {
        if let Some(env) = environment {
            // The text is escaped already (and may hold a mention): only the name is escaped.
            self.text = format!("[{}] {}", escape(env), self.text);
            if !self.blocks.is_empty() {
                self.blocks
                    .push(context(format!("baton environment *{}*", escape(env))));
            }
        }
        self
    }

    /// The same message without blocks, for when Slack refuses the blocks (`invalid_blocks`,
    /// `msg_too_long`): people still hear about the run.
    pub fn text_only(&self) -> SlackMessage {
        SlackMessage {
            text: self.text.clone(),
            blocks: Vec::new(),
        }
    }
}

/// Marks a status message as recovered: baton's watchdog found the status in Step Functions
/// because its status change event never arrived.
pub fn recovered(mut message: SlackMessage) -> SlackMessage {
    const NOTE: &str = "recovered by baton's watchdog: Step Functions reports this status, its status change event never reached baton";
    message.text = format!("{} ({NOTE})", message.text);
    if !message.blocks.is_empty() && message.blocks.len() < 50 {
        message.blocks.push(context(format!(":mag: {NOTE}")));
    }
    message
}

/// What a failure message adds: the owners' mention and what will now not start.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FailureContext {
    /// The pipeline's `mentionOnFailure`, as written in its definition.
    pub mention: Option<String>,
    /// Pipelines waiting on this one that will not start, nearest first.
    pub downstream: Vec<PipelineId>,
    /// Whether the list was cut short (the graph is larger than was read).
    pub downstream_truncated: bool,
}

/// Escapes the three characters Slack gives meaning to: `&`, `<`, `>`. Nothing else.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes `text` and keeps the result within `max_chars` characters (Slack counts characters),
/// never cutting an entity in half; a cut is marked with `…`.
pub fn escape_within(text: &str, max_chars: usize) -> String {
    let escaped_len = |c: char| match c {
        '&' => 5,
        '<' | '>' => 4,
        _ => 1,
    };
    let total: usize = text.chars().map(escaped_len).sum();
    if total <= max_chars {
        return escape(text);
    }
    let budget = max_chars.saturating_sub(1);
    let mut used = 0;
    let mut kept = String::new();
    for c in text.chars() {
        let n = escaped_len(c);
        if used + n > budget {
            break;
        }
        used += n;
        kept.push(c);
    }
    let mut out = escape(&kept);
    out.push('…');
    out
}

/// `mentionOnFailure` made safe: tokens that are Slack mentions (`<@U…>`, `<!subteam^S…>`,
/// `<!here>`, `<!channel>`, `<#C…>`) pass through so they ping; anything else is escaped.
pub fn mention(text: &str) -> String {
    text.split_whitespace()
        .map(|token| {
            if is_slack_mention(token) {
                token.to_owned()
            } else {
                escape(token)
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn is_slack_mention(token: &str) -> bool {
    let Some(inner) = token.strip_prefix('<').and_then(|t| t.strip_suffix('>')) else {
        return false;
    };
    if inner.contains(['<', '>', '&']) {
        return false;
    }
    // An optional `|label` follows the id.
    let id = inner.split('|').next().unwrap_or_default();
    let is_id = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric());
    if let Some(user) = id.strip_prefix('@') {
        return is_id(user);
    }
    if let Some(channel) = id.strip_prefix('#') {
        return is_id(channel);
    }
    if let Some(group) = id.strip_prefix("!subteam^") {
        return is_id(group);
    }
    matches!(id, "!here" | "!channel" | "!everyone")
}

/// The execution's page in the Step Functions console of its region (and partition).
pub fn console_url(execution_arn: &str, region: &str) -> String {
    let host = match partition_of(region) {
        "aws-cn" => format!("{region}.console.amazonaws.cn"),
        "aws-us-gov" => format!("{region}.console.amazonaws-us-gov.com"),
        _ => format!("{region}.console.aws.amazon.com"),
    };
    format!("https://{host}/states/home?region={region}#/v2/executions/details/{execution_arn}")
}

/// A Slack link; the URL and the label are escaped.
fn link(url: &str, label: &str) -> String {
    format!("<{}|{}>", escape(url), escape(label))
}

/// A Slack date token: shown in the reader's time zone, with the UTC instant as fallback.
fn date(t: Timestamp) -> String {
    format!(
        "<!date^{}^{{date_short_pretty}} {{time_secs}}|{}>",
        t.millis().div_euclid(1000),
        t
    )
}

pub(crate) fn status_look(status: RunStatus) -> (&'static str, &'static str) {
    match status {
        RunStatus::Running => (":arrow_forward:", "is running"),
        RunStatus::Succeeded => (":white_check_mark:", "succeeded"),
        RunStatus::Failed => (":x:", "failed"),
        RunStatus::TimedOut => (":hourglass:", "timed out"),
        RunStatus::Aborted => (":no_entry_sign:", "was aborted"),
        RunStatus::PendingRedrive => (":repeat:", "is pending redrive"),
    }
}

fn section(text: String) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": text}})
}

fn context(text: String) -> Value {
    json!({"type": "context", "elements": [{"type": "mrkdwn", "text": text}]})
}

fn headline(run: &Run) -> String {
    let (emoji, verb) = status_look(run.status);
    format!(
        "{emoji} *{}* {verb} ({})",
        escape(&run.pipeline.name),
        run.status
    )
}

fn fallback(run: &Run, failure: Option<&FailureContext>) -> String {
    let (_, verb) = status_look(run.status);
    let mut text = format!(
        "{} {verb}: {} ({} in {}, {})",
        run.pipeline.name,
        run.execution_name,
        run.pipeline.account,
        run.pipeline.region,
        run.status
    );
    if let Some(ms) = run.duration_ms() {
        text.push_str(&format!(" after {}", Span(ms).readable()));
    }
    if let Some(error) = &run.error {
        text.push_str(&format!(": {error}"));
    }
    let mut text = escape_within(&text, FALLBACK_TEXT_LIMIT);
    if let Some(m) = failure.and_then(|f| f.mention.as_deref()) {
        text.push(' ');
        text.push_str(&mention(m));
    }
    text
}

/// The facts of a run, as fields: account and region, execution (linked), start, duration.
fn facts(run: &Run) -> Value {
    let url = console_url(&run.execution_arn, &run.pipeline.region);
    let mut fields = vec![
        format!(
            "*Account*\n{} ({})",
            escape(&run.pipeline.account),
            escape(&run.pipeline.region)
        ),
        format!("*Execution*\n{}", link(&url, &run.execution_name)),
        format!("*Started*\n{}", date(run.started_at)),
    ];
    if let Some(ms) = run.duration_ms() {
        fields.push(format!("*Duration*\n{}", Span(ms).readable()));
    }
    let fields: Vec<Value> = fields
        .into_iter()
        .map(|text| json!({"type": "mrkdwn", "text": text}))
        .collect();
    json!({"type": "section", "fields": fields})
}

fn failure_blocks(run: &Run, failure: &FailureContext) -> Vec<Value> {
    let mut blocks = Vec::new();
    if let Some(error) = &run.error {
        blocks.push(section(format!(
            "*Error*\n{}",
            escape_within(error, SECTION_TEXT_LIMIT - 20)
        )));
    }
    if let Some(cause) = run.cause.as_deref().filter(|c| !c.trim().is_empty()) {
        // A ``` inside the cause would close the code block early; a zero-width space keeps it open.
        let fenced = cause.replace("```", "`\u{200b}``");
        blocks.push(section(format!(
            "*Cause*\n```{}```",
            escape_within(&fenced, CAUSE_LIMIT)
        )));
    }
    if !failure.downstream.is_empty() {
        let n = failure.downstream.len();
        let count = if failure.downstream_truncated {
            format!("{n}+ downstream pipelines")
        } else if n == 1 {
            "1 downstream pipeline".to_owned()
        } else {
            format!("{n} downstream pipelines")
        };
        let mut names: Vec<String> = failure
            .downstream
            .iter()
            .take(DOWNSTREAM_NAMED)
            .map(|p| format!("*{}* ({})", escape(&p.name), escape(&p.account)))
            .collect();
        if n > DOWNSTREAM_NAMED {
            names.push(format!("and {} more", n - DOWNSTREAM_NAMED));
        }
        blocks.push(section(format!(
            ":warning: {count} will not start: {}",
            names.join(", ")
        )));
    }
    if let Some(m) = failure.mention.as_deref().filter(|m| !m.trim().is_empty()) {
        blocks.push(section(format!("cc {}", mention(m))));
    }
    blocks
}

fn trigger_note(run: &Run) -> Option<Value> {
    run.trigger_id
        .as_deref()
        .map(|id| context(format!("Started by baton trigger `{}`", escape(id))))
}

/// The root of a run's thread: headline and facts; when `failure` is given (the run's first
/// message in the channel is a failure) also error, cause, downstream impact and mention.
/// Rendered again with the final status (and no failure details) to edit the root.
pub fn root(run: &Run, failure: Option<&FailureContext>) -> SlackMessage {
    let mut blocks = vec![section(headline(run)), facts(run)];
    blocks.extend(trigger_note(run));
    if let Some(f) = failure {
        blocks.extend(failure_blocks(run, f));
    }
    SlackMessage {
        text: fallback(run, failure),
        blocks,
    }
}

/// A later status of the run, as a reply in its thread; failures carry their details.
pub fn reply(run: &Run, failure: Option<&FailureContext>) -> SlackMessage {
    let mut line = headline(run);
    if let Some(ms) = run.duration_ms() {
        line.push_str(&format!(" after {}", Span(ms).readable()));
    }
    let mut blocks = vec![section(line)];
    if let Some(f) = failure {
        blocks.extend(failure_blocks(run, f));
    }
    SlackMessage {
        text: fallback(run, failure),
        blocks,
    }
}

fn consumed_line(r: &RunRef) -> String {
    let url = console_url(&r.execution_arn, &r.pipeline.region);
    format!(
        "• *{}* ({}) {} {} at {}",
        escape(&r.pipeline.name),
        escape(&r.pipeline.account),
        link(&url, r.execution_name()),
        r.status,
        date(r.status_time)
    )
}

/// A trigger notice: baton started `trigger.target`, and which parent runs made it start.
pub fn trigger_notice(trigger: &PipelineTrigger) -> SlackMessage {
    let target = &trigger.target;
    // Aligned triggers say which run key (e.g. which day) they started the pipeline for.
    let for_key = trigger
        .run_key
        .as_ref()
        .map(|k| format!(" for run key {k}"))
        .unwrap_or_default();
    let mut blocks = vec![section(format!(
        ":rocket: baton started *{}* ({} in {}){}",
        escape(&target.name),
        escape(&target.account),
        escape(&target.region),
        escape(&for_key)
    ))];
    if !trigger.consumed.is_empty() {
        let mut lines: Vec<String> = trigger
            .consumed
            .iter()
            .take(CONSUMED_NAMED)
            .map(consumed_line)
            .collect();
        if trigger.consumed.len() > CONSUMED_NAMED {
            lines.push(format!(
                "and {} more",
                trigger.consumed.len() - CONSUMED_NAMED
            ));
        }
        blocks.push(section(format!("after these runs:\n{}", lines.join("\n"))));
    }
    blocks.push(context(format!(
        "{} · trigger `{}`",
        escape_within(&trigger.reason, FIELD_TEXT_LIMIT - 100),
        escape(&trigger.trigger_id.0)
    )));
    let parents: Vec<String> = trigger
        .consumed
        .iter()
        .map(|r| format!("{} {} {}", r.pipeline.name, r.execution_name(), r.status))
        .collect();
    let text = format!(
        "baton started {} ({} in {}){for_key} after {}",
        target.name,
        target.account,
        target.region,
        if parents.is_empty() {
            "no parent runs".to_owned()
        } else {
            parents.join(", ")
        }
    );
    SlackMessage {
        text: escape_within(&text, FALLBACK_TEXT_LIMIT),
        blocks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_environment_prefixes_the_text_and_closes_the_blocks() {
        let message = SlackMessage {
            text: "x failed <!subteam^S0X>".into(),
            blocks: vec![section("x".into())],
        }
        .in_environment(Some("prod"));
        assert_eq!(message.text, "[prod] x failed <!subteam^S0X>");
        assert_eq!(message.blocks.len(), 2);
        assert!(message.blocks[1]
            .to_string()
            .contains("baton environment *prod*"));
        let unchanged = SlackMessage {
            text: "t".into(),
            blocks: vec![],
        }
        .in_environment(None);
        assert_eq!(unchanged.text, "t");
    }

    #[test]
    fn escapes_only_the_three_characters() {
        assert_eq!(
            escape("<!channel> & \"quotes\" *bold*"),
            "&lt;!channel&gt; &amp; \"quotes\" *bold*"
        );
    }

    #[test]
    fn truncation_keeps_entities_whole_and_stays_within_the_limit() {
        let text = "&".repeat(100);
        let out = escape_within(&text, 23);
        assert!(out.chars().count() <= 23, "{out}");
        assert_eq!(out, format!("{}…", "&amp;".repeat(4)));
        assert_eq!(escape_within("short", 10), "short");
        let long: String = "é".repeat(5000);
        assert_eq!(escape_within(&long, 3000).chars().count(), 3000);
    }

    #[test]
    fn mentions_pass_only_when_they_are_slack_mentions() {
        assert_eq!(
            mention("<!subteam^S0123|data-team> <@U42>"),
            "<!subteam^S0123|data-team> <@U42>"
        );
        assert_eq!(mention("@data-team"), "@data-team");
        assert_eq!(
            mention("<https://evil.example|click>"),
            "&lt;https://evil.example|click&gt;"
        );
        assert_eq!(mention("<@U1><!channel>"), "&lt;@U1&gt;&lt;!channel&gt;");
    }

    #[test]
    fn console_links_follow_the_region_and_partition() {
        let arn = "arn:aws:states:us-east-2:111111111111:execution:x:run-1";
        assert_eq!(
            console_url(arn, "us-east-2"),
            "https://us-east-2.console.aws.amazon.com/states/home?region=us-east-2#/v2/executions/details/arn:aws:states:us-east-2:111111111111:execution:x:run-1"
        );
        assert!(
            console_url(arn, "cn-north-1").starts_with("https://cn-north-1.console.amazonaws.cn/")
        );
    }

    #[test]
    fn a_trigger_notice_names_the_run_key_it_started_the_pipeline_for() {
        let trigger: PipelineTrigger = serde_json::from_value(serde_json::json!({
            "batonTriggerId": "t1", "runKey": "2026-11-24",
            "target": {"account": "333333333333", "region": "eu-west-1", "name": "pipeline-x",
                       "stateMachineArn": "arn:aws:states:eu-west-1:333333333333:stateMachine:pipeline-x"},
            "consumed": [], "reason": "run key 2026-11-24: listings SUCCEEDED", "firedAt": 1000
        }))
        .unwrap();
        let message = trigger_notice(&trigger);
        assert!(
            message.text.starts_with(
                "baton started pipeline-x (333333333333 in eu-west-1) for run key 2026-11-24 after"
            ),
            "{}",
            message.text
        );
        let unaligned = PipelineTrigger {
            run_key: None,
            ..trigger
        };
        assert!(!trigger_notice(&unaligned).text.contains("run key"));
    }
}
