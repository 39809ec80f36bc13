//! Member account C: pipeline-x's state machine in the emulator's Step Functions (created with
//! credentials of account C), and pipeline-starter's real handler, which the rule on C's pipeline
//! bus invokes for every Pipeline Trigger.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use baton_adapters::StepFunctionsStarter;
use baton_core::start::HomeAccount;
use baton_testbed::{MemberAccount, Moto, REGION};
use pipeline_starter::TriggerEvent;
use serde_json::Value;

pub struct AccountC {
    member: MemberAccount,
    starter: StepFunctionsStarter,
    config: pipeline_starter::Config,
    pub pipeline_x_arn: String,
    /// The execution each trigger id first started, to say when a redelivery got the same one.
    first_execution: Mutex<BTreeMap<String, String>>,
}

impl AccountC {
    pub async fn create(moto: &Moto, account: &str) -> anyhow::Result<AccountC> {
        let member = MemberAccount::enter(moto, account).await?;
        let pipeline_x_arn = member.create_pipeline("pipeline-x").await?;
        Ok(AccountC {
            starter: StepFunctionsStarter::new(member.sfn.clone()),
            config: pipeline_starter::Config {
                home: HomeAccount {
                    account: account.to_owned(),
                    region: REGION.to_owned(),
                },
                first_backoff: Duration::from_millis(200),
                max_backoff: Duration::from_secs(5),
            },
            member,
            pipeline_x_arn,
            first_execution: Mutex::new(BTreeMap::new()),
        })
    }

    /// The e-mail topic pipeline-x's stack creates in account C (its e-mail subscription stands as
    /// a queue here: the mailbox the demo reads at the end).
    pub async fn email_topic(&self) -> anyhow::Result<baton_testbed::observe::TopicWatch> {
        baton_testbed::observe::TopicWatch::create(&self.member.config, "baton-notify-pipeline-x")
            .await
    }

    /// Delivers a Pipeline Trigger event, as it arrived on C's bus, to pipeline-starter and prints
    /// what it did.
    pub async fn deliver(&self, arrived: &Value) -> anyhow::Result<()> {
        let event: TriggerEvent = serde_json::from_value(arrived.clone())?;
        let deadline = Instant::now() + Duration::from_secs(30);
        let starter = pipeline_starter::PipelineStarter {
            starter: &self.starter,
            config: &self.config,
        };
        match starter.handle(event, deadline).await {
            Ok(done) if done.already_started => println!(
                "       pipeline-starter: trigger {} already started (ExecutionAlreadyExists)",
                done.trigger_id
            ),
            Ok(done) => {
                let arn = done.execution_arn.unwrap_or_default();
                let mut first = self
                    .first_execution
                    .lock()
                    .map_err(|_| anyhow::anyhow!("a demo thread panicked"))?;
                match first.get(&done.trigger_id) {
                    Some(earlier) if *earlier == arn => println!(
                        "       pipeline-starter: trigger {} already started: Step Functions answered with the running execution {arn}",
                        done.trigger_id
                    ),
                    _ => {
                        println!(
                            "       pipeline-starter: StartExecution(name = trigger id, input = the trigger) started {arn}"
                        );
                        first.insert(done.trigger_id, arn);
                    }
                }
            }
            Err(e) => println!("       pipeline-starter refused or failed ({e})"),
        }
        Ok(())
    }

    /// pipeline-x's executions in account C: (name, input).
    pub async fn executions(&self) -> anyhow::Result<Vec<(String, String)>> {
        self.member.executions(&self.pipeline_x_arn).await
    }
}
