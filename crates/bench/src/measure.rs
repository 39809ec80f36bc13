//! Measurements of function processes through the runtime API stand-in: cold start, warm cost per
//! event (CPU and AWS requests), and peak memory over a long run.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use baton_core::text::shorten;
use baton_core::RunStatus;
use serde_json::Value;

use crate::central::{
    fan_out_parent, firing_parents, idle_parent, sns_event, Bench, FIRING_CHILDREN,
};
use crate::counting_proxy::Tally;
use crate::process::{cpu_nanos, log_tail, peak_rss_bytes, stop, Launch};
use crate::runtime_api::{RuntimeApi, Waited};

/// How long one event may take before the measurement gives up.
const ANSWER_LIMIT: Duration = Duration::from_secs(120);

/// Cold starts of one function: process start to first event answered.
#[derive(Clone, Debug)]
pub struct ColdStart {
    pub name: String,
    pub samples: Vec<Duration>,
    /// Process start to its first `GET .../next`: the init phase alone, before any AWS call.
    pub init: Vec<Duration>,
    /// Of each sample, the time the emulator spent answering the process's AWS requests
    /// (overlapping requests counted once): what a faster or slower AWS would change.
    pub emulator: Vec<Duration>,
    /// AWS requests of each start (the first event's).
    pub requests: Vec<u64>,
    /// Why the measurement stopped short, if it did.
    pub failure: Option<String>,
}

impl ColdStart {
    /// The row of a launch that could not be started here, saying why.
    pub fn not_measured(name: &str, why: String) -> ColdStart {
        ColdStart {
            name: name.to_owned(),
            samples: Vec::new(),
            init: Vec::new(),
            emulator: Vec::new(),
            requests: Vec::new(),
            failure: Some(why),
        }
    }

    pub fn median(&self) -> Option<Duration> {
        let mut s = self.samples.clone();
        s.sort();
        s.get(s.len() / 2).copied()
    }

    pub fn max(&self) -> Option<Duration> {
        self.samples.iter().max().copied()
    }

    pub fn init_median(&self) -> Option<Duration> {
        median(&self.init)
    }

    pub fn emulator_median(&self) -> Option<Duration> {
        median(&self.emulator)
    }

    /// The process's own share of each start: the sample less the time spent waiting for the
    /// emulator; median.
    pub fn own_median(&self) -> Option<Duration> {
        let own: Vec<Duration> = self
            .samples
            .iter()
            .zip(&self.emulator)
            .map(|(total, emulator)| total.saturating_sub(*emulator))
            .collect();
        median(&own)
    }
}

/// AWS requests (every service, not the Slack or CloudFormation stand-in) since `before`.
fn aws_requests_since(now: &Tally, before: &Tally) -> u64 {
    now.iter()
        .filter(|(k, _)| !k.starts_with("http:"))
        .map(|(k, v)| v - before.get(k).copied().unwrap_or(0))
        .sum()
}

fn median(samples: &[Duration]) -> Option<Duration> {
    let mut s = samples.to_vec();
    s.sort();
    s.get(s.len() / 2).copied()
}

/// A scratch folder for process logs.
pub fn log_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("baton-bench-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    dir
}

fn log_path(name: &str, what: &str) -> PathBuf {
    log_dir().join(format!("{name}-{what}.log"))
}

/// Why a process did not answer, in words.
fn describe(waited: Waited, api: &mut RuntimeApi, log: &Path) -> String {
    match waited {
        Waited::Answered(a) => format!("answered with an error: {}", shorten(&a.body, 300)),
        Waited::Exited(status) if !api.has_polled() => format!(
            "exited ({status}) without asking for an event: not implemented yet? {}",
            shorten(&log_tail(log), 300)
        ),
        Waited::Exited(status) => format!("exited ({status}): {}", shorten(&log_tail(log), 300)),
        Waited::TimedOut => format!(
            "no answer within {ANSWER_LIMIT:?}: {}",
            shorten(&log_tail(log), 300)
        ),
    }
}

/// Starts `launch` `starts` times, each a fresh process fed one event, AWS calls going to the
/// emulator through the counting proxy (which times the emulator's share).
pub async fn cold_start(
    bench: &Bench,
    launch: &Launch,
    workload: &str,
    starts: usize,
) -> anyhow::Result<ColdStart> {
    let mut result = ColdStart {
        name: launch.name.clone(),
        samples: Vec::new(),
        init: Vec::new(),
        emulator: Vec::new(),
        requests: Vec::new(),
        failure: None,
    };
    let log = log_path(&launch.name, "cold");
    for _ in 0..starts {
        let mut api = RuntimeApi::start().await?;
        api.queue(bench.event_for(workload, bench.reserve(1))?);
        let tally_before = bench.proxy.tally();
        let emulator_before = bench.proxy.emulator_time();
        let started = Instant::now();
        let mut child = launch.spawn(api.address(), bench.proxy.endpoint(), &log)?;
        let waited = api.wait_answer(&mut child, ANSWER_LIMIT).await;
        let emulator = bench.proxy.emulator_time() - emulator_before;
        stop(child);
        match waited {
            Waited::Answered(a) if a.ok => {
                result.samples.push(a.at - started);
                result.emulator.push(emulator);
                result
                    .requests
                    .push(aws_requests_since(&bench.proxy.tally(), &tally_before));
                if let Some(polled) = api.first_poll() {
                    result.init.push(polled - started);
                }
            }
            other => {
                result.failure = Some(describe(other, &mut api, &log));
                break;
            }
        }
    }
    Ok(result)
}

/// A function process kept running, fed events one at a time, requests counted by the proxy.
struct Warm {
    api: RuntimeApi,
    child: std::process::Child,
    log: PathBuf,
}

impl Warm {
    async fn start(bench: &Bench, launch: &Launch, what: &str) -> anyhow::Result<Warm> {
        let api = RuntimeApi::start().await?;
        let log = log_path(&launch.name, what);
        let child = launch.spawn(api.address(), bench.proxy.endpoint(), &log)?;
        Ok(Warm { api, child, log })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Feeds one event and waits for its answer.
    async fn invoke(&mut self, event: Value) -> anyhow::Result<()> {
        self.api.queue(event);
        self.answer().await
    }

    async fn answer(&mut self) -> anyhow::Result<()> {
        match self.api.wait_answer(&mut self.child, ANSWER_LIMIT).await {
            Waited::Answered(a) if a.ok => Ok(()),
            other => Err(anyhow::anyhow!(describe(other, &mut self.api, &self.log))),
        }
    }

    fn finish(self) {
        stop(self.child);
    }
}

/// The warm cost of one kind of event.
#[derive(Clone, Debug)]
pub struct WarmCost {
    pub function: String,
    pub case: String,
    /// Children decided per event (trigger-manager), for CPU per decision.
    pub decisions_per_event: usize,
    pub events: usize,
    pub cpu_per_event: Duration,
    pub wall_per_event: Duration,
    pub dynamodb_per_event: f64,
    /// SNS and EventBridge requests per event.
    pub publishes_per_event: f64,
    /// Every AWS operation per event (`dynamodb:Query` -> 3.0).
    pub operations: std::collections::BTreeMap<String, f64>,
    /// Of the wall time, the emulator's answering time per event (overlaps counted once).
    pub emulator_per_event: Duration,
    /// The most AWS requests the process had in flight together.
    pub peak_in_flight: u32,
    /// AWS round trips per event on the critical path (requests in flight together count once).
    pub round_trips_per_event: f64,
    pub failure: Option<String>,
}

impl WarmCost {
    pub fn cpu_per_decision(&self) -> Option<Duration> {
        let d = u32::try_from(self.decisions_per_event).ok()?;
        (d > 0).then(|| self.cpu_per_event / d)
    }
}

/// Measures `events` invocations made by `next_event` after a warm-up, on a running process.
async fn warm_case<F, Fut>(
    bench: &Bench,
    warm: &mut Warm,
    function: &str,
    case: &str,
    decisions_per_event: usize,
    events: usize,
    mut next_event: F,
) -> WarmCost
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Value>>,
{
    let mut cost = WarmCost {
        function: function.to_owned(),
        case: case.to_owned(),
        decisions_per_event,
        events,
        cpu_per_event: Duration::ZERO,
        wall_per_event: Duration::ZERO,
        dynamodb_per_event: 0.0,
        publishes_per_event: 0.0,
        operations: Default::default(),
        emulator_per_event: Duration::ZERO,
        peak_in_flight: 0,
        round_trips_per_event: 0.0,
        failure: None,
    };
    let mut cpu = 0_u64;
    let mut wall = Duration::ZERO;
    let mut emulator = Duration::ZERO;
    let before: Tally = bench.proxy.tally();
    let round_trips_before = bench.proxy.round_trips();
    bench.proxy.reset_peak();
    for _ in 0..events {
        // Preparing the event (recording the runs it announces) is not the function's cost.
        let event = match next_event().await {
            Ok(e) => e,
            Err(e) => {
                cost.failure = Some(format!("preparing an event: {e:#}"));
                return cost;
            }
        };
        let (cpu0, t0) = (cpu_nanos(warm.pid()), Instant::now());
        let emulator0 = bench.proxy.emulator_time();
        if let Err(e) = warm.invoke(event).await {
            cost.failure = Some(format!("{e:#}"));
            return cost;
        }
        wall += t0.elapsed();
        emulator += bench.proxy.emulator_time() - emulator0;
        cpu += cpu_nanos(warm.pid()).saturating_sub(cpu0);
    }
    let n = events.max(1);
    cost.cpu_per_event = Duration::from_nanos(cpu / n as u64);
    cost.wall_per_event = wall / u32::try_from(n).unwrap_or(u32::MAX);
    cost.emulator_per_event = emulator / u32::try_from(n).unwrap_or(u32::MAX);
    cost.peak_in_flight = bench.proxy.peak_in_flight();
    cost.round_trips_per_event = (bench.proxy.round_trips() - round_trips_before) as f64 / n as f64;
    cost.dynamodb_per_event = bench.proxy.since(&before, "dynamodb") as f64 / n as f64;
    cost.publishes_per_event = (bench.proxy.since(&before, "sns")
        + bench.proxy.since(&before, "events")) as f64
        / n as f64;
    cost.operations = bench
        .proxy
        .tally()
        .into_iter()
        .map(|(op, count)| {
            let delta = count - before.get(&op).copied().unwrap_or(0);
            (op, delta as f64 / n as f64)
        })
        .filter(|(_, per_event)| *per_event > 0.0)
        .collect();
    cost
}

/// How many events each fan-out size is measured over (the emulator answers a few hundred
/// requests a second, and 1,000 children take 5,001 requests per event).
fn events_for_fan_out(n: usize, quick: bool) -> usize {
    let full = match n {
        0..=1 => 40,
        2..=10 => 20,
        11..=100 => 5,
        _ => 2,
    };
    if quick {
        (full / 4).max(1)
    } else {
        full
    }
}

/// trigger-manager: a parent run with 1, 10, 100, 1000 waiting children, then a run that fires
/// every one of 10 children.
pub async fn warm_trigger_manager(
    bench: &Bench,
    launch: &Launch,
    quick: bool,
) -> anyhow::Result<Vec<WarmCost>> {
    let mut warm = Warm::start(bench, launch, "warm").await?;
    let topic = bench.topic_arn.clone();
    let idle = idle_parent()?;
    let mut costs = Vec::new();
    // The first event pays for start-up (clients, connections); it is not measured.
    if let Err(e) = warm
        .invoke(sns_event(
            &topic,
            &baton_core::RunEvent::status(&bench.run(&idle, RunStatus::Succeeded)),
        ))
        .await
    {
        warm.finish();
        anyhow::bail!("warm-up: {e:#}");
    }
    for n in crate::central::FAN_OUTS {
        let parent = fan_out_parent(n)?;
        let events = events_for_fan_out(n, quick);
        let cost = warm_case(
            bench,
            &mut warm,
            "trigger-manager",
            &format!("parent run, {n} waiting children (3 parents each)"),
            n,
            events,
            || {
                let (parent, topic) = (&parent, &topic);
                async move {
                    let run = bench.run(parent, RunStatus::Succeeded);
                    bench.record(std::slice::from_ref(&run)).await?;
                    Ok(sns_event(topic, &baton_core::RunEvent::status(&run)))
                }
            },
        )
        .await;
        costs.push(cost);
    }
    let [parent, co_a, co_b] = firing_parents()?;
    let cost = warm_case(
        bench,
        &mut warm,
        "trigger-manager",
        &format!("parent run, {FIRING_CHILDREN} children that all fire"),
        FIRING_CHILDREN,
        if quick { 3 } else { 10 },
        || {
            let (parent, co_a, co_b, topic) = (&parent, &co_a, &co_b, &topic);
            async move {
                // Fresh runs of both co-parents first, so the parent's run completes every
                // condition.
                let a = bench.run(co_a, RunStatus::Succeeded);
                let b = bench.run(co_b, RunStatus::Succeeded);
                let run = bench.run(parent, RunStatus::Succeeded);
                bench.record(&[a, b, run.clone()]).await?;
                Ok(sns_event(topic, &baton_core::RunEvent::status(&run)))
            }
        },
    )
    .await;
    costs.push(cost);
    warm.finish();
    Ok(costs)
}

/// run-log-writer: new runs, then the same events delivered again.
pub async fn warm_writer(
    bench: &Bench,
    launch: &Launch,
    quick: bool,
) -> anyhow::Result<Vec<WarmCost>> {
    let mut warm = Warm::start(bench, launch, "warm").await?;
    let events = if quick { 10 } else { 50 };
    let base = bench.reserve(events as u64 + 1);
    let mut costs = Vec::new();
    if let Err(e) = warm
        .invoke(bench.event_for("run-log-writer", base + events as u64)?)
        .await
    {
        warm.finish();
        anyhow::bail!("warm-up: {e:#}");
    }
    let batch: Vec<Value> = (0..events as u64)
        .map(|i| bench.event_for("run-log-writer", base + i))
        .collect::<anyhow::Result<_>>()?;
    for label in ["new run (RUNNING or final)", "duplicate delivery"] {
        let mut queue = batch.clone().into_iter();
        let cost = warm_case(bench, &mut warm, "run-log-writer", label, 0, events, || {
            let next = queue.next();
            async move { next.ok_or_else(|| anyhow::anyhow!("ran out of events")) }
        })
        .await;
        costs.push(cost);
    }
    warm.finish();
    Ok(costs)
}

/// Peak memory of one function over a run of events.
#[derive(Clone, Debug)]
pub struct Memory {
    pub name: String,
    pub events: usize,
    pub peak_rss: Option<u64>,
    pub wall: Duration,
    /// The process's CPU time over the whole run (start-up included) per event.
    pub cpu_per_event: Duration,
    pub failure: Option<String>,
}

impl Memory {
    /// The row of a launch that could not be started here, saying why.
    pub fn not_measured(name: &str, why: String) -> Memory {
        Memory {
            name: name.to_owned(),
            events: 0,
            peak_rss: None,
            wall: Duration::ZERO,
            cpu_per_event: Duration::ZERO,
            failure: Some(why),
        }
    }
}

/// Feeds `events` events of `workload` to one process and reads its peak RSS at the end.
pub async fn memory(
    bench: &Bench,
    launch: &Launch,
    workload: &str,
    events: usize,
) -> anyhow::Result<Memory> {
    let mut warm = Warm::start(bench, launch, "memory").await?;
    let base = bench.reserve(events as u64);
    let mut result = Memory {
        name: launch.name.clone(),
        events,
        peak_rss: None,
        wall: Duration::ZERO,
        cpu_per_event: Duration::ZERO,
        failure: None,
    };
    let started = Instant::now();
    for i in 0..events as u64 {
        warm.api.queue(bench.event_for(workload, base + i)?);
    }
    for done in 0..events {
        if let Err(e) = warm.answer().await {
            result.failure = Some(format!("after {done} events: {e:#}"));
            break;
        }
    }
    result.wall = started.elapsed();
    result.peak_rss = peak_rss_bytes(warm.pid());
    result.cpu_per_event = Duration::from_nanos(cpu_nanos(warm.pid()) / events.max(1) as u64);
    warm.finish();
    Ok(result)
}
