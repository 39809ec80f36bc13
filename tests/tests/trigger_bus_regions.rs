//! A child in another Region than baton's central stack receives its trigger on its own Region's
//! pipeline bus (PipelineTrigger through the EventBridge adapter against the local emulator).

use aws_sdk_eventbridge::config::Region;
use baton_adapters::EventBridgeTriggerBus;
use baton_core::events::{PipelineRef, PipelineTrigger};
use baton_core::ports::TriggerBus;
use baton_core::{PipelineId, Timestamp, TriggerId};
use baton_testbed::{BusWatch, Moto};

const MEMBER: &str = "333333333333";

#[tokio::test]
async fn a_trigger_reaches_the_pipeline_bus_in_the_childs_region() {
    let central = Moto::shared().sdk_config().await;
    let oregon = central
        .to_builder()
        .region(Region::new("us-west-2"))
        .build();
    let watch = BusWatch::create(&oregon, MEMBER, "oregon-pipelines", "baton")
        .await
        .unwrap();
    assert!(watch.bus_arn.contains(":us-west-2:"), "{}", watch.bus_arn);

    let child = PipelineId::new(MEMBER, "us-west-2", "pipeline-west").unwrap();
    let trigger = PipelineTrigger {
        trigger_id: TriggerId("t-west-1".into()),
        target: PipelineRef::from(&child),
        consumed: Vec::new(),
        reason: "cross-Region delivery".into(),
        fired_at: Timestamp(1_764_000_000_000),
        environment: None,
    };
    // The adapter is built for the central Region (eu-west-1), as trigger-manager's is.
    let bus = EventBridgeTriggerBus::new(&central);
    bus.send(&watch.bus_arn, &trigger).await.unwrap();

    let received = watch.received().await.unwrap();
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(received[0]["detail"]["batonTriggerId"], "t-west-1");
    assert_eq!(received[0]["region"], "us-west-2");
}
