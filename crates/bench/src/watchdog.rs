//! A day of watchdog runs for a large organisation, over the in-memory store (which makes the
//! DynamoDB adapters' requests one for one): every pipeline runs once; a third have daily
//! deadlines (`startBy` spread over the day, `finishBy` 2 h 30 later, `maxDuration` 3 h, Berlin
//! time), a fifth of those start late, some runs take too long; half the pipelines wait on another.
//! Status events are recorded minute by minute and the watchdog runs once a simulated minute, as
//! its schedule does. Reported: requests and CPU per run.

use std::time::{Duration, Instant};

use baton_core::ports::RunLog;
use baton_core::registration::Registration;
use baton_core::trigger::{FlowSettings, Invocation};
use baton_core::watch::run::{watch_once, WatchSettings};
use baton_core::watch::{DeadlineWatch, DueCheck};
use baton_core::{PipelineDefinition, PipelineId, Run, RunStatus, Span, Timestamp};
use baton_testbed::memory::Memory;
use baton_testbed::rng::Rng;
use serde_json::json;

/// What a day of watchdog runs cost.
#[derive(Clone, Debug, Default)]
pub struct WatchdogReport {
    pub pipelines: usize,
    pub with_deadlines: usize,
    pub runs: usize,
    pub minutes: usize,
    pub requests: Vec<u64>,
    pub cpu: Vec<Duration>,
    pub checked: usize,
    pub raised: usize,
    pub resolved: usize,
}

impl WatchdogReport {
    fn percentile<T: Copy + Ord>(values: &[T], p: f64) -> Option<T> {
        let mut sorted = values.to_vec();
        sorted.sort();
        let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
        sorted.get(i).copied()
    }

    /// The figures, one per line.
    pub fn render(&self) -> String {
        let total: u64 = self.requests.iter().sum();
        let mean = total as f64 / self.minutes.max(1) as f64;
        let cpu_total: Duration = self.cpu.iter().sum();
        let cpu_mean = cpu_total / self.minutes.max(1) as u32;
        format!(
            "watchdog day: {} pipelines ({} with daily deadlines), {} runs, {} watchdog runs\n\
             requests per run: mean {mean:.0}, p50 {}, p99 {}, max {}; {total} in the day\n\
             CPU per run (in-memory store, this machine): mean {cpu_mean:?}, p99 {:?}, max {:?}\n\
             due checks judged {}, alerts raised {}, followed up {}\n\
             busiest run: minute {} of the day (UTC), {} requests",
            self.pipelines,
            self.with_deadlines,
            self.runs,
            self.minutes,
            Self::percentile(&self.requests, 0.5).unwrap_or_default(),
            Self::percentile(&self.requests, 0.99).unwrap_or_default(),
            self.requests.iter().max().copied().unwrap_or_default(),
            Self::percentile(&self.cpu, 0.99).unwrap_or_default(),
            self.cpu.iter().max().copied().unwrap_or_default(),
            self.checked,
            self.raised,
            self.resolved,
            self.requests
                .iter()
                .enumerate()
                .max_by_key(|(_, r)| **r)
                .map(|(m, _)| m)
                .unwrap_or_default(),
            self.requests.iter().max().copied().unwrap_or_default(),
        )
    }
}

fn pipeline(i: usize, accounts: usize) -> Result<PipelineId, baton_core::pipeline::IdentityError> {
    PipelineId::new(
        &format!("{:012}", 100_000_000_000 + i % accounts),
        "eu-west-1",
        &format!("p-{i}"),
    )
}

/// Runs the day for `pipelines` over `accounts`, from `seed`.
pub fn run(pipelines: usize, accounts: usize, seed: u64) -> anyhow::Result<WatchdogReport> {
    let mem = Memory::new(None);
    let mut rng = Rng::new(seed);
    let day = Timestamp::parse_rfc3339("2026-11-26T00:00:00Z").unwrap_or_default();
    let mut report = WatchdogReport {
        pipelines,
        ..WatchdogReport::default()
    };
    let mut events: Vec<(Timestamp, Run)> = Vec::new();
    for i in 0..pipelines {
        let id = pipeline(i, accounts)?;
        let start_by = rng.below(20 * 60) as i64 + 120; // 02:00 to 22:00 Berlin
        let mut doc = json!({});
        if i % 3 == 0 {
            let finish_by = (start_by + 150).min(23 * 60 + 59);
            doc["deadlines"] = json!({
                "startBy": format!("{:02}:{:02}", start_by / 60, start_by % 60),
                "finishBy": format!("{:02}:{:02}", finish_by / 60, finish_by % 60),
                "maxDuration": "3h", "timezone": "Europe/Berlin"});
            report.with_deadlines += 1;
        }
        if i > 0 && i % 2 == 0 {
            let parent = pipeline(rng.below(i as u64) as usize, accounts)?;
            doc["trigger"] = json!({"executions": {"allOf": [
                {"name": parent.name, "account": parent.account, "region": parent.region, "status": ["SUCCEEDED"]}]}});
        }
        let definition =
            PipelineDefinition::from_document(&doc).map_err(|e| anyhow::anyhow!("{e}"))?;
        if let Some(deadlines) = &definition.deadlines {
            for due in deadlines.next_due(day.minus(Span::HOUR))? {
                let check = DueCheck {
                    at: due.at,
                    pipeline: id.clone(),
                    execution_arn: None,
                };
                futures::executor::block_on(mem.watch.schedule(&check))?;
            }
        }
        mem.registry.load(Registration {
            pipeline: id.clone(),
            owner_stack_id: "bench".into(),
            definition,
            bus_arn: None,
            registered_at: day.minus(Span::DAY),
            trigger_floor: day.minus(Span::DAY),
        });
        // Berlin is UTC+1 in November: local minute m is UTC minute m - 60.
        let late = rng.below(5) == 0;
        let start_minute = if i % 3 == 0 {
            start_by - 60
                + if late {
                    rng.below(90) as i64 + 1
                } else {
                    -(rng.below(60) as i64) - 1
                }
        } else {
            rng.below(22 * 60) as i64
        };
        let started = day.plus(Span::minutes(start_minute.max(1)));
        let minutes = if rng.below(50) == 0 {
            200
        } else {
            rng.below(115) as i64 + 5
        };
        let stopped = started.plus(Span::minutes(minutes));
        let status = if rng.below(20) == 0 {
            RunStatus::Failed
        } else {
            RunStatus::Succeeded
        };
        let run = |status, stopped_at| Run {
            pipeline: id.clone(),
            execution_arn: format!(
                "arn:aws:states:eu-west-1:{}:execution:{}:r-{i}",
                id.account, id.name
            ),
            execution_name: format!("r-{i}"),
            status,
            started_at: started,
            stopped_at,
            error: None,
            cause: None,
            trigger_id: None,
            run_key: None,
        };
        events.push((started, run(RunStatus::Running, None)));
        events.push((stopped, run(status, Some(stopped))));
        report.runs += 1;
    }
    events.sort_by_key(|(t, run)| (*t, run.execution_arn.clone()));
    let settings = WatchSettings::new(FlowSettings::with_default_bus("baton-pipelines"));
    let mut next = events.into_iter().peekable();
    for minute in 0..(26 * 60) {
        let now = day.plus(Span::minutes(minute));
        while let Some((_, run)) = next.next_if(|(t, _)| *t <= now) {
            futures::executor::block_on(mem.run_log.record(&run))?;
        }
        let invocation = Invocation::new("bench", now, now.plus(Span::MINUTE), &settings.flow);
        let before = mem.requests.count();
        let clock = Instant::now();
        let watched =
            futures::executor::block_on(watch_once(&mem.watch_ports(), &invocation, &settings));
        report.cpu.push(clock.elapsed());
        report.requests.push(mem.requests.count() - before);
        if let Some(error) = watched.errors.first() {
            anyhow::bail!("watchdog run at {now} failed: {error}");
        }
        report.checked += watched.checked;
        report.raised += watched.raised.len();
        report.resolved += watched.resolved.len();
        report.minutes += 1;
        // The topic is read by slack-notifier in production; here it would only grow.
        mem.topic.take_published();
    }
    Ok(report)
}
