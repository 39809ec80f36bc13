//! The `notifications` block of a definition: its type, targets and `mentionOnFailure`, read by
//! the same validator as the rest of the definition.

use serde_json::Value;

use super::validate::shorten;
use super::{describe, Channel, NotificationType, Notifications, Target, Validator};

impl Validator {
    pub(super) fn notifications(&mut self, path: &str, value: &Value) -> Option<Notifications> {
        let map = self.object(path, value)?;
        self.unknown_keys(path, map, &["type", "targets", "mentionOnFailure"]);
        let kind = match map.get("type") {
            None => Some(NotificationType::default()),
            Some(t) => {
                let p = format!("{path}.type");
                self.scalar(&p, t, "a notification type").and_then(|word| match word.as_str() {
                    "FULL_EXECUTION" => Some(NotificationType::FullExecution),
                    "TERMINAL" => Some(NotificationType::Terminal),
                    "FAILURES" => Some(NotificationType::Failures),
                    _ => {
                        self.problem(&p, format!("\"{}\" is not a notification type; allowed: FULL_EXECUTION, TERMINAL, FAILURES", shorten(&word, 80)));
                        None
                    }
                })
            }
        };
        let targets = match map.get("targets") {
            None => {
                self.problem(&format!("{path}.targets"), "missing; list at least one target such as {channel: SLACK, addresses: [my-channel]}");
                None
            }
            Some(t) => self.targets(&format!("{path}.targets"), t),
        };
        let mention_on_failure = match map.get("mentionOnFailure") {
            None => Some(None),
            Some(m) => self
                .scalar(
                    &format!("{path}.mentionOnFailure"),
                    m,
                    "a Slack mention such as <!subteam^S0123> or <@U0123>",
                )
                .map(|m| Some(m).filter(|m| !m.is_empty())),
        };
        Some(Notifications {
            kind: kind?,
            targets: targets?,
            mention_on_failure: mention_on_failure?,
            email_topic_arn: None,
        })
    }

    fn targets(&mut self, path: &str, value: &Value) -> Option<Vec<Target>> {
        let Value::Array(items) = value else {
            self.problem(
                path,
                format!("expected a list of targets, got {}", describe(value)),
            );
            return None;
        };
        let mut out = Vec::new();
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            match self.target(&format!("{path}[{i}]"), item) {
                Some(t) => out.push(t),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn target(&mut self, path: &str, value: &Value) -> Option<Target> {
        let map = self.object(path, value)?;
        self.unknown_keys(path, map, &["channel", "addresses"]);
        let channel = match map.get("channel") {
            None => {
                self.problem(&format!("{path}.channel"), "missing; allowed: SLACK, EMAIL");
                None
            }
            Some(c) => {
                let p = format!("{path}.channel");
                self.scalar(&p, c, "SLACK or EMAIL").and_then(|word| {
                    match word.to_ascii_uppercase().as_str() {
                        "SLACK" => Some(Channel::Slack),
                        "EMAIL" => Some(Channel::Email),
                        _ => {
                            self.problem(
                                &p,
                                format!(
                                    "\"{}\" is not a channel; allowed: SLACK, EMAIL",
                                    shorten(&word, 80)
                                ),
                            );
                            None
                        }
                    }
                })
            }
        };
        let addresses = match map.get("addresses") {
            None => {
                self.problem(
                    &format!("{path}.addresses"),
                    "missing; list the Slack channels or email addresses",
                );
                None
            }
            Some(a) => {
                let p = format!("{path}.addresses");
                let items = self.list(&p, a);
                items.and_then(|items| {
                    let mut out = Vec::new();
                    let mut ok = true;
                    for (i, item) in items.into_iter().enumerate() {
                        let ip = if a.is_array() {
                            format!("{p}[{i}]")
                        } else {
                            p.clone()
                        };
                        match self.scalar(&ip, item, "an address") {
                            Some(addr) => match self.address(&ip, channel, addr) {
                                Some(addr) => out.push(addr),
                                None => ok = false,
                            },
                            None => ok = false,
                        }
                    }
                    ok.then_some(out)
                })
            }
        };
        Some(Target {
            channel: channel?,
            addresses: addresses?,
        })
    }

    fn address(&mut self, path: &str, channel: Option<Channel>, addr: String) -> Option<String> {
        match channel {
            // Slack accepts a channel id (C0123...) or name; `#name` is how people write names.
            Some(Channel::Slack) => {
                let name = addr.trim_start_matches('#').to_owned();
                let ok = !name.is_empty()
                    && name.len() <= 80
                    && name
                        .chars()
                        .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'));
                if !ok {
                    self.problem(path, format!("\"{}\" is not a Slack channel name or id (letters, digits, - _ .; at most 80)", shorten(&addr, 80)));
                    return None;
                }
                Some(name)
            }
            Some(Channel::Email) => {
                let ok = addr.split_once('@').is_some_and(|(user, domain)| {
                    !user.is_empty() && domain.contains('.') && !addr.contains(char::is_whitespace)
                });
                if !ok {
                    self.problem(
                        path,
                        format!("\"{}\" is not an email address", shorten(&addr, 80)),
                    );
                    return None;
                }
                Some(addr)
            }
            None => Some(addr),
        }
    }
}
