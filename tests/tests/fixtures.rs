//! Every SNS payload in `events/` (the ones `sam local invoke -e` and `cargo lambda invoke
//! --data-file` use) is a Lambda SNS event carrying a RunEvent that baton reads back as it says.

use std::path::Path;

use aws_lambda_events::event::sns::SnsEvent;
use baton_core::events::{RunEvent, StatusEvent};

#[test]
fn every_run_event_fixture_is_an_sns_event_with_the_status_its_name_says() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../events");
    let mut seen = 0;
    for function in ["trigger-manager", "slack-notifier"] {
        for entry in std::fs::read_dir(root.join(function)).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).unwrap();
            let event: SnsEvent =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            for record in &event.records {
                let run_event = RunEvent::from_message(&record.sns.message)
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
                if let Some(status) = name.strip_prefix("run-event-") {
                    let RunEvent::Status(StatusEvent { execution, .. }) = &run_event else {
                        panic!("{name}: not a status event");
                    };
                    assert_eq!(
                        execution.status.as_str().to_lowercase().replace('_', "-"),
                        status,
                        "{name}"
                    );
                    assert_eq!(
                        record.sns.message_attributes["status"].value,
                        execution.status.as_str(),
                        "{name}"
                    );
                } else if name == "trigger-notice" {
                    let RunEvent::Trigger(notice) = &run_event else {
                        panic!("{name}: not a trigger notice");
                    };
                    assert_eq!(notice.trigger.consumed.len(), 2);
                }
                seen += 1;
            }
        }
    }
    assert!(seen >= 14, "{seen} fixtures read");
}
