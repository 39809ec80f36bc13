//! The one table `cargo xtask bench` prints (Markdown, so it pastes into docs/performance.md),
//! with the DESIGN budget next to each figure, and the cost model derived from the figures.

use std::fmt::Write as _;
use std::time::Duration;

use crate::measure::{ColdStart, Memory, WarmCost};
use crate::scale::ScaleReport;

/// DESIGN "Budgets".
pub const COLD_START_BUDGET: Duration = Duration::from_millis(30);
pub const MEMORY_BUDGET: u64 = 48 * 1024 * 1024;
pub const ZIP_BUDGET: u64 = 5 * 1024 * 1024;

/// The baselines, doing the same minimal work (one conditional DynamoDB PutItem per status
/// change) behind the same runtime-API stand-in: Python/boto3, Node.js with the AWS SDK for
/// JavaScript v3, and the Rust floor (`crates/bench/floor`: lambda_runtime and the AWS SDK alone).
pub const PYTHON: &str = "python-boto3";
pub const NODE: &str = "node-sdk-v3";
pub const FLOOR: &str = "rust-floor";

/// Issue 18's aims: every function starts at least this many times sooner than Python and Node...
pub const COLD_START_RATIO_AIM: f64 = 10.0;
/// ...and run-log-writer within this factor of the Rust floor.
pub const FLOOR_RATIO_AIM: f64 = 1.5;

/// Everything one bench run measured.
#[derive(Default)]
pub struct Results {
    pub machine: String,
    pub cold: Vec<ColdStart>,
    /// The baselines' cold starts (`BASELINES`, those that could be started).
    pub baseline_cold: Vec<ColdStart>,
    pub warm: Vec<WarmCost>,
    pub memory: Vec<Memory>,
    pub baseline_memory: Vec<Memory>,
    /// The Rust floor run with 0, 1 and 5 requests per event, by the SDK and by a bare signed
    /// HTTP client (`FLOOR_VARIANTS`): what a request costs, apart from the runtime loop.
    pub request_cost: Vec<RequestCost>,
    /// (function, zip bytes or why there is none)
    pub zips: Vec<(String, Result<u64, String>)>,
    pub scale: Option<Result<ScaleReport, String>>,
}

/// Issue 18's aim of CPU per recorded event and per decision.
pub const CPU_PER_EVENT_AIM: Duration = Duration::from_micros(300);

/// How the floor sends its `PutItem`s (`BATON_FLOOR_CLIENT`).
pub const SDK: &str = "sdk";
pub const SIGNED_HTTP: &str = "signed-http";

/// The floor's runs of the request-cost section: (client, `PutItem`s per event).
pub const FLOOR_VARIANTS: [(&str, u32); 5] = [
    (SDK, 0),
    (SDK, 1),
    (SDK, 5),
    (SIGNED_HTTP, 1),
    (SIGNED_HTTP, 5),
];

/// How the table names a floor client.
fn client_label(client: &str) -> &'static str {
    if client == SDK {
        "the AWS SDK"
    } else {
        "signed HTTP"
    }
}

/// One run of the floor in the request-cost section: CPU per event over a memory run.
pub struct RequestCost {
    pub client: &'static str,
    pub requests: u32,
    pub memory: Memory,
}

/// What one more request adds to an event's CPU: the slope between a run with `fewer` and a run
/// with `more` requests per event (`None` unless `more > fewer` and it grew).
pub fn per_request(fewer: (u32, Duration), more: (u32, Duration)) -> Option<Duration> {
    let extra = more.0.checked_sub(fewer.0).filter(|n| *n > 0)?;
    more.1.checked_sub(fewer.1).map(|d| d / extra)
}

/// How many requests of `each` fit in `aim` beside an event's fixed cost `fixed`.
pub fn requests_within(aim: Duration, fixed: Duration, each: Duration) -> u32 {
    if each.is_zero() {
        return 0;
    }
    let room = aim.saturating_sub(fixed).as_nanos() / each.as_nanos();
    u32::try_from(room).unwrap_or(u32::MAX)
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "within"
    } else {
        "MISSED"
    }
}

/// The machine the figures come from: cores, memory, CPU model.
pub fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or_else(|| "unknown".to_owned(), |kb| mib(kb * 1024));
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|t| t.split_whitespace().next().map(str::to_owned))
        .unwrap_or_default();
    format!("{cores} cores ({cpu}), {memory} memory, load average {load} at start")
}

impl Results {
    fn is_baseline(&self, name: &str) -> bool {
        self.baseline_cold.iter().any(|b| b.name == name)
            || self.baseline_memory.iter().any(|b| b.name == name)
    }

    fn baseline_median(&self, name: &str) -> Option<Duration> {
        self.baseline_cold
            .iter()
            .find(|b| b.name == name && b.failure.is_none())
            .and_then(ColdStart::median)
    }

    /// A function's cold start against DESIGN's 30 ms and issue 18's aims: at least 10 times sooner
    /// than each of Python and Node (median against median), and the writer within 1.5 times the
    /// Rust floor.
    fn cold_verdicts(&self, cold: &ColdStart) -> String {
        let Some(median) = cold.median() else {
            return "< 30 ms".to_owned();
        };
        let mut out = format!(
            "< 30 ms: {} (own time, median: {})",
            verdict(cold.max().is_some_and(|m| m < COLD_START_BUDGET)),
            verdict(cold.own_median().is_some_and(|m| m < COLD_START_BUDGET))
        );
        let ratio = |base: Duration| base.as_secs_f64() / median.as_secs_f64().max(1e-9);
        for (name, label) in [(PYTHON, "Python/boto3"), (NODE, "Node.js")] {
            match self.baseline_median(name) {
                Some(base) => {
                    let r = ratio(base);
                    let _ = write!(
                        out,
                        "; {label} takes {r:.1}× (≥ {COLD_START_RATIO_AIM:.0}×: {})",
                        verdict(r >= COLD_START_RATIO_AIM)
                    );
                }
                None => {
                    let _ = write!(out, "; {label}: not measured");
                }
            }
        }
        if let Some(floor) = self.baseline_median(FLOOR) {
            let r = median.as_secs_f64() / floor.as_secs_f64().max(1e-9);
            let _ = write!(out, "; {r:.2}× the Rust floor");
            if cold.name == "run-log-writer" {
                let _ = write!(
                    out,
                    " (≤ {FLOOR_RATIO_AIM}×: {})",
                    verdict(r <= FLOOR_RATIO_AIM)
                );
            }
        }
        out
    }

    /// The request-cost section: a row per floor run, then what one request costs by each
    /// client and how many fit in issue 18's 0.3 ms beside the runtime loop.
    fn request_cost_rows(&self, row: &mut impl FnMut(&str, &str, String, String)) {
        let cpu = |client: &str, requests: u32| {
            self.request_cost
                .iter()
                .find(|r| r.client == client && r.requests == requests)
                .filter(|r| r.memory.failure.is_none())
                .map(|r| (requests, r.memory.cpu_per_event))
        };
        for r in &self.request_cost {
            let figure = match &r.memory.failure {
                None => format!(
                    "CPU {} per event over {} events ({} wall per event)",
                    us(r.memory.cpu_per_event),
                    r.memory.events,
                    ms(r.memory.wall / u32::try_from(r.memory.events.max(1)).unwrap_or(1)),
                ),
                Some(f) => format!("not measured: {f}"),
            };
            let subject = format!(
                "{FLOOR}, {} PutItem per event by {}",
                r.requests,
                client_label(r.client)
            );
            row("request cost", &subject, figure, "-".to_owned());
        }
        let Some(fixed) = cpu(SDK, 0) else {
            return;
        };
        let mut parts = vec![format!(
            "the runtime loop alone (next event, answer) {} per event",
            us(fixed.1)
        )];
        let mut fits = Vec::new();
        for client in [SDK, SIGNED_HTTP] {
            let label = client_label(client);
            if let Some(each) = cpu(client, 1)
                .zip(cpu(client, 5))
                .and_then(|(a, b)| per_request(a, b))
            {
                parts.push(format!("{label} {} per PutItem", us(each)));
                fits.push(format!(
                    "{} by {label}",
                    requests_within(CPU_PER_EVENT_AIM, fixed.1, each)
                ));
            }
        }
        if !fits.is_empty() {
            parts.push(format!(
                "requests that fit in {} per event beside the loop: {}",
                us(CPU_PER_EVENT_AIM),
                fits.join(", ")
            ));
        }
        row(
            "request cost",
            "one request (slope from 1 to 5 per event)",
            parts.join("; "),
            format!("issue 18: ≤ {} CPU per event", us(CPU_PER_EVENT_AIM)),
        );
    }

    /// The table, one row per figure.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let mut row = |section: &str, subject: &str, figure: String, budget: String| {
            let _ = writeln!(out, "| {section} | {subject} | {figure} | {budget} |");
        };
        row(
            "Section",
            "Subject",
            "Figure".to_owned(),
            "Budget (DESIGN)".to_owned(),
        );
        row("---", "---", "---".to_owned(), "---".to_owned());
        for cold in self.cold.iter().chain(&self.baseline_cold) {
            let figure = match (cold.median(), cold.max(), &cold.failure) {
                (Some(median), Some(max), None) => {
                    let init = cold
                        .init_median()
                        .map(|i| format!(" (init alone, start to first poll: median {})", ms(i)))
                        .unwrap_or_default();
                    let share = match (cold.emulator_median(), cold.own_median()) {
                        (Some(emulator), Some(own)) => format!(
                            "; of it waiting for the emulator: median {} ({} AWS requests), the process's own time: median {}",
                            ms(emulator),
                            cold.requests.iter().max().copied().unwrap_or(0),
                            ms(own)
                        ),
                        _ => String::new(),
                    };
                    format!(
                        "median {}, max {} over {} starts{init}{share}",
                        ms(median),
                        ms(max),
                        cold.samples.len()
                    )
                }
                (_, _, Some(failure)) => format!("not measured: {failure}"),
                _ => "not measured".to_owned(),
            };
            let budget = if self.is_baseline(&cold.name) {
                "baseline".to_owned()
            } else {
                self.cold_verdicts(cold)
            };
            row("cold start", &cold.name, figure, budget);
        }
        for warm in &self.warm {
            let subject = format!("{}: {}", warm.function, warm.case);
            let figure = match &warm.failure {
                Some(f) => format!("not measured: {f}"),
                None => {
                    let per_decision = warm
                        .cpu_per_decision()
                        .map(|d| format!(" ({} per decision)", us(d)))
                        .unwrap_or_default();
                    format!(
                        "CPU {}/event{per_decision}; DynamoDB {:.1} requests/event; SNS+EventBridge {:.1}/event; {} wall/event against the emulator, {} of it the emulator answering; {:.1} round trips/event, up to {} requests in flight together (over {} events)",
                        us(warm.cpu_per_event),
                        warm.dynamodb_per_event,
                        warm.publishes_per_event,
                        ms(warm.wall_per_event),
                        ms(warm.emulator_per_event),
                        warm.round_trips_per_event,
                        warm.peak_in_flight,
                        warm.events
                    )
                }
            };
            let budget = if warm.function == "run-log-writer" {
                "constant requests per event"
            } else {
                "requests linear in direct children"
            };
            row("warm", &subject, figure, budget.to_owned());
        }
        for memory in self.memory.iter().chain(&self.baseline_memory) {
            let figure = match (&memory.failure, memory.peak_rss) {
                (None, Some(rss)) => format!(
                    "peak RSS {} over {} events ({} wall, CPU {} per event)",
                    mib(rss),
                    memory.events,
                    ms(memory.wall / u32::try_from(memory.events.max(1)).unwrap_or(1)),
                    us(memory.cpu_per_event)
                ),
                (Some(f), _) => format!("not measured: {f}"),
                (None, None) => "not measured: no /proc status".to_owned(),
            };
            let budget = if self.is_baseline(&memory.name) {
                "baseline".to_owned()
            } else {
                format!(
                    "< 48 MB: {}",
                    verdict(memory.peak_rss.is_some_and(|r| r < MEMORY_BUDGET))
                )
            };
            row("memory", &memory.name, figure, budget);
        }
        self.request_cost_rows(&mut row);
        for (name, zip) in &self.zips {
            let (figure, budget) = match zip {
                Ok(bytes) => (
                    format!("{} ({bytes} bytes) bootstrap.zip, arm64", mib(*bytes)),
                    format!("< 5 MB: {}", verdict(*bytes < ZIP_BUDGET)),
                ),
                Err(why) => (format!("not measured: {why}"), "< 5 MB".to_owned()),
            };
            row("zip", name, figure, budget);
        }
        match &self.scale {
            Some(Ok(s)) => {
                row(
                    "scale",
                    "organisation",
                    format!(
                        "{} pipelines over {} accounts, {} with a trigger, {} edges (max {} children of one parent); generated, cycle-checked and registered in {}",
                        s.pipelines,
                        s.accounts,
                        s.registrations,
                        s.edges,
                        s.max_children,
                        ms(s.build)
                    ),
                    "100,000 over 1,000 accounts".to_owned(),
                );
                row(
                    "scale",
                    "one day replayed",
                    format!(
                        "{} status events ({} runs, {} failed, {} re-runs, {} duplicate deliveries) in {}: {:.0} events/s; {} decisions, {} triggers fired; {:.1} store requests/event",
                        s.events,
                        s.runs,
                        s.failures,
                        s.reruns,
                        s.duplicates,
                        ms(s.replay),
                        s.events_per_second(),
                        s.decisions,
                        s.triggers,
                        s.store_requests_per_event
                    ),
                    "without a design change".to_owned(),
                );
                row(
                    "scale",
                    "decision time",
                    format!(
                        "p50 {}, p99 {}, max {} (one child: registry, ledger, run log, evaluator, claim, send)",
                        us(s.decision_p50),
                        us(s.decision_p99),
                        us(s.decision_max)
                    ),
                    "-".to_owned(),
                );
                row(
                    "scale",
                    "brute-force check",
                    if s.mismatches.is_empty() {
                        format!(
                            "{} sampled children, {} decision points, {} firings ({} of them per run key, by aligned children): every child fired exactly when its condition held",
                            s.checked_children, s.checked_points, s.checked_firings, s.checked_key_firings
                        )
                    } else {
                        format!(
                            "{} MISMATCHES over {} children: {}",
                            s.mismatches.len(),
                            s.checked_children,
                            s.mismatches.join("; ")
                        )
                    },
                    "no mismatch".to_owned(),
                );
            }
            Some(Err(e)) => row("scale", "replay", format!("failed: {e}"), "-".to_owned()),
            None => {}
        }
        out
    }

    /// Lambda GB-seconds and DynamoDB request units per million run events, from the figures.
    ///
    /// Billed duration is modelled as the CPU time measured per event plus the requests measured
    /// per event times an assumed in-region service latency ([`DYNAMODB_LATENCY`],
    /// [`PUBLISH_LATENCY`]): wall time against the emulator measures the emulator, not AWS.
    pub fn cost_model(&self) -> String {
        let mut out = String::new();
        let warm = |function: &str, case_starts: &str| {
            self.warm
                .iter()
                .find(|w| w.function == function && w.case.starts_with(case_starts))
                .filter(|w| w.failure.is_none())
        };
        let (Some(writer), Some(manager)) = (
            warm("run-log-writer", "new run"),
            warm("trigger-manager", "parent run, 1 waiting"),
        ) else {
            return "cost model: needs the warm figures of run-log-writer and trigger-manager\n"
                .to_owned();
        };
        // Waiting: each round trip on the critical path at the DynamoDB latency, publishes at
        // theirs (they never overlap anything). A synchronous port (boto3) waits for every
        // request in turn.
        let waiting = |w: &WarmCost, round_trips: f64| {
            (round_trips - w.publishes_per_event).max(0.0) * DYNAMODB_LATENCY.as_secs_f64()
                + w.publishes_per_event * PUBLISH_LATENCY.as_secs_f64()
        };
        // Lambda gives a function CPU in proportion to its memory: one vCPU at 1,769 MB, so the
        // CPU time measured here (one whole core) stretches by 1769/MB below that.
        let stretch = |mb: f64| (FULL_VCPU_MB / mb).max(1.0);
        let billed = |cpu: f64, waiting: f64, mb: f64| ((cpu * stretch(mb) + waiting) * 1e3).ceil();
        let gbs = |ms: f64, mb: f64| ms / 1e3 * (mb / 1024.0) * 1e6;
        let rust_cpu_per_request = (writer.cpu_per_event.as_secs_f64()
            + manager.cpu_per_event.as_secs_f64())
            / (writer.dynamodb_per_event
                + writer.publishes_per_event
                + manager.dynamodb_per_event
                + manager.publishes_per_event)
                .max(1.0);
        let _ = writeln!(
            out,
            "Assumptions: {} per DynamoDB round trip and {} per SNS Publish or EventBridge PutEvents in the region; Lambda's CPU share is memory / {FULL_VCPU_MB:.0} MB of one vCPU, so CPU time measured on a whole core is stretched by that factor; Lambda bills each invocation's duration rounded up to 1 ms at the configured memory; cold starts left out (see the table).",
            ms(DYNAMODB_LATENCY),
            ms(PUBLISH_LATENCY),
        );
        let mut rust_128 = 0.0;
        for mb in [128.0, 256.0, 512.0] {
            let writer_ms = billed(
                writer.cpu_per_event.as_secs_f64(),
                waiting(writer, writer.round_trips_per_event),
                mb,
            );
            let manager_ms = billed(
                manager.cpu_per_event.as_secs_f64(),
                waiting(manager, manager.round_trips_per_event),
                mb,
            );
            let total = gbs(writer_ms + manager_ms, mb);
            if mb == 128.0 {
                rust_128 = total;
            }
            let _ = writeln!(
                out,
                "Rust at {mb:.0} MB: writer {writer_ms:.0} ms ({} CPU ×{:.1}, {:.1} round trips) + trigger-manager, one waiting child, {manager_ms:.0} ms ({} CPU ×{:.1}, {:.1} round trips) billed per run event = {total:.0} GB-s per million run events",
                us(writer.cpu_per_event),
                stretch(mb),
                writer.round_trips_per_event,
                us(manager.cpu_per_event),
                stretch(mb),
                manager.round_trips_per_event,
            );
        }
        if let Some(py) = self
            .baseline_memory
            .iter()
            .find(|m| m.name == PYTHON && m.failure.is_none())
        {
            // The baseline makes one request per event: its CPU per event is its CPU per request.
            let py_cpu_per_request = py.cpu_per_event.as_secs_f64();
            let scale = py_cpu_per_request / rust_cpu_per_request.max(1e-9);
            let mb = 128.0;
            let requests = |w: &WarmCost| w.dynamodb_per_event + w.publishes_per_event;
            let py_writer_ms = billed(
                writer.cpu_per_event.as_secs_f64() * scale,
                waiting(writer, requests(writer)),
                mb,
            );
            let py_manager_ms = billed(
                manager.cpu_per_event.as_secs_f64() * scale,
                waiting(manager, requests(manager)),
                mb,
            );
            let py_gbs = gbs(py_writer_ms + py_manager_ms, mb);
            let _ = writeln!(
                out,
                "Python/boto3 port of the same design at 128 MB (peak RSS {} fits): the same requests, one after another (boto3 is synchronous), CPU {} per request as its baseline handler measured vs {} for Rust ({scale:.1}×): writer {py_writer_ms:.0} ms + trigger-manager {py_manager_ms:.0} ms billed = {py_gbs:.0} GB-s per million run events ({:.1}× Rust at 128 MB)",
                py.peak_rss.map(mib).unwrap_or_else(|| "unknown".to_owned()),
                us(Duration::from_secs_f64(py_cpu_per_request)),
                us(Duration::from_secs_f64(rust_cpu_per_request)),
                py_gbs / rust_128.max(1e-9)
            );
        }
        let units = |w: &WarmCost| {
            let mut reads = 0.0;
            let mut writes = 0.0;
            for (op, n) in &w.operations {
                match op.as_str() {
                    "dynamodb:GetItem" | "dynamodb:Query" => reads += n,
                    // Two items (claim and cursor), each written transactionally at 2 WRU.
                    "dynamodb:TransactWriteItems" => writes += n * 4.0,
                    o if o.starts_with("dynamodb:") => writes += n,
                    _ => {}
                }
            }
            (reads, writes)
        };
        let (wr, ww) = units(writer);
        let (mr, mw) = units(manager);
        let _ = writeln!(
            out,
            "DynamoDB per run event (items under 1 KB / 4 KB, strongly consistent reads): writer {wr:.1} RRU + {ww:.1} WRU, trigger-manager (1 child) {mr:.1} RRU + {mw:.1} WRU; per million run events {:.1} M RRU + {:.1} M WRU, the same for a Python port of the same design",
            wr + mr,
            ww + mw
        );
        out
    }
}

/// The memory size at which Lambda gives a function one full vCPU (AWS Lambda docs).
pub const FULL_VCPU_MB: f64 = 1769.0;
/// Assumed in-region latency of one DynamoDB request, for the cost model.
pub const DYNAMODB_LATENCY: Duration = Duration::from_millis(5);
/// Assumed in-region latency of one SNS Publish or EventBridge PutEvents, for the cost model.
pub const PUBLISH_LATENCY: Duration = Duration::from_millis(15);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_costs_the_slope_between_the_runs_and_the_aim_holds_what_fits_beside_the_loop() {
        let us = Duration::from_micros;
        assert_eq!(per_request((1, us(200)), (5, us(920))), Some(us(180)));
        assert_eq!(per_request((5, us(920)), (1, us(200))), None);
        assert_eq!(per_request((1, us(300)), (5, us(250))), None);
        assert_eq!(requests_within(us(300), us(60), us(80)), 3);
        assert_eq!(requests_within(us(300), us(60), us(180)), 1);
        assert_eq!(requests_within(us(300), us(400), us(80)), 0);
        assert_eq!(requests_within(us(300), us(60), Duration::ZERO), 0);
    }
}
