//! The demo reads the trigger-manager's decisions from its own structured log events (the same
//! `evaluated` / `trigger delivered` events it writes to CloudWatch in Lambda), so what is printed
//! is what the handler did.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

/// One captured log event: its message and fields.
#[derive(Clone, Debug)]
pub struct Logged {
    pub message: String,
    pub fields: BTreeMap<String, String>,
}

impl Logged {
    pub fn field(&self, name: &str) -> &str {
        self.fields.get(name).map(String::as_str).unwrap_or("")
    }
}

/// A layer keeping every event of the functions' crates, to be drained by the demo.
#[derive(Clone, Default)]
pub struct Captured {
    events: Arc<Mutex<Vec<Logged>>>,
}

impl Captured {
    /// Everything logged since the last call.
    pub fn drain(&self) -> Vec<Logged> {
        match self.events.lock() {
            Ok(mut e) => std::mem::take(&mut *e),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        }
    }
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl<S: Subscriber> Layer<S> for Captured {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let target = event.metadata().target();
        let ours = [
            "trigger_manager",
            "run_log_writer",
            "slack_notifier",
            "cfn_responder",
            "baton",
        ];
        if !ours.iter().any(|t| target.starts_with(t)) {
            return;
        }
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        let message = fields.remove("message").unwrap_or_default();
        if let Ok(mut events) = self.events.lock() {
            events.push(Logged { message, fields });
        }
    }
}
