//! Scale benchmark (issue 18): a firm's ten-year log, measured at 1M and at 10M events so
//! the growth with history is visible.
//!
//! **The history.** `complaints` complaints received evenly over ten years that end an
//! hour before the run, with lives drawn per complaint (seeded, so every run writes the
//! same history): registered, acknowledged, assigned, and then some of holding response,
//! complex, paused and resumed, new facts, findings, redress, answered (2% late),
//! satisfaction, review, referral to a regulator with its outcome, withdrawn, closed.
//! Those received in the last weeks are still open. The SLA watcher's crossings are part
//! of the history as a live service records them: the generator keeps the real SLA board
//! and records what it reports due at the end of every simulated hour. The records are
//! sealed and chained as the log does and written by `eventlog_sled::import` (then opened
//! and checked whole), with a key store bound to the log, so complaintd opens the data
//! directory as its own. Personal fields are in the clear (sealing needs one durable key
//! per complainant; its cost is not part of this benchmark).
//!
//! **The figures**, each at every scale, in one run:
//! - offline, on the stored log: a raw walk of the records (the baseline), verification,
//!   JSON export;
//! - the release complaintd (a child process, the system clock): the first start (no
//!   snapshot: the projections are rebuilt), a start after a clean stop (snapshot), and a
//!   start after SIGKILL; for each the time to SERVING, to ready (projections caught up, so
//!   the first board answer is complete) and the resident memory when ready;
//! - the first board answer after start, the 100 most urgent clocks (p99 of 100 calls over
//!   gRPC), an as-of board and regulator queue at four moments of the history;
//! - durable commands with 64 clients against the no-op gRPC call (health) on the same
//!   server, as `--bench load` does, but on top of the history.
//!
//! Run: `cargo bench -p complaintd --bench scale`. `BENCH_COMPLAINTS` (default
//! `100000,1000000`) lists the scales in complaints (about 11 events each); `BENCH_DIR`
//! picks where the data goes (default: the system temp dir; 10M events take about 5 GB).
//! `BENCH_KEEP=1` keeps the data directories. Prints the figures per scale, then one JSON
//! line per scale.
#![allow(clippy::unwrap_used)] // a failed unwrap in a bench is a failed bench

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use complaints_domain::model::*;
use complaints_domain::{Change, Event, Register};
use complaints_events::codec;
use complaints_events::stored::{
    encode_rules, named_stream, sla_stream, RULES_LOADED, RULES_STREAM,
};
use complaints_projections::board::SlaBoard;
use complaints_projections::{Decoded, Projection};
use complaints_proto::complaints::audit::v1 as audit;
use complaints_proto::complaints::v1 as api;
use complaints_sla::RuleSources;
use complaints_testkit::{one_life, percentile, req_as, ServerProcess};
use eventlog::seal::Tail;
use eventlog::{NewEvent, StoredRecord, StreamId};
use jiff::{SignedDuration, Timestamp};
use tonic::transport::Channel as GrpcChannel;
use uuid::Uuid;

const IN_FLIGHT: usize = 64;
const YEARS: i64 = 10;
const ACTOR: &str = "user:bench";

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Seeded draws (one generator per complaint): the same lives on every run.
struct Draw(rand::rngs::StdRng);

impl Draw {
    fn new(n: usize) -> Self {
        Self(rand::SeedableRng::seed_from_u64(n as u64))
    }
    fn next(&mut self) -> u64 {
        rand::RngCore::next_u64(&mut self.0)
    }
    /// True with `percent` percent.
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    /// A whole number of hours in `lo..=hi`.
    fn hours(&mut self, lo: i64, hi: i64) -> SignedDuration {
        SignedDuration::from_hours(rand::Rng::random_range(&mut self.0, lo..=hi))
    }
}

const REGIMES: [(&str, &str, &str); 4] = [
    ("UK-FCA-DISP", "GB-ENG", "Financial Ombudsman Service"),
    ("UK-FCA-PSD", "GB-SCT", "Financial Ombudsman Service"),
    ("CN-CBIRC", "CN", "NFRA"),
    ("US-CFPB", "US", "CFPB"),
];

/// The steps of complaint `n`, received at `received`, in time order.
fn life(n: usize, received: Timestamp) -> Vec<(Timestamp, Change)> {
    let mut d = Draw::new(n);
    let id = ComplaintId::new(Uuid::from_u128(n as u128 + 1));
    let (regime, region, body) = REGIMES[n % REGIMES.len()];
    let mut steps = Vec::with_capacity(16);
    let mut t = received;
    let at = |t: &mut Timestamp, after: SignedDuration| {
        *t = t.checked_add(after).unwrap();
        *t
    };
    steps.push((
        t,
        Change::Registered(Box::new(Register {
            id,
            channel: [
                Channel::Web,
                Channel::Hotline,
                Channel::Email,
                Channel::Letter,
            ][n % 4],
            complainant: Complainant {
                person_id: format!("person-{}", n * 7 / 10),
                name: "Bench Person".into(),
                contact: "bench@example.org".into(),
                id_number: String::new(),
            },
            unit: format!("unit-{}", n % 20),
            employee: None,
            product: ["current account", "credit card", "mortgage", "insurance"][n % 4].into(),
            category: format!("category-{}", n % 8),
            claim: "a refund of the fees charged".into(),
            facts: "x".repeat(120),
            received_at: received,
            regime: regime.into(),
            region: region.into(),
            regulator: None,
            variant: None,
        })),
    ));
    steps.push((at(&mut t, d.hours(1, 20)), Change::Acknowledged));
    steps.push((
        at(&mut t, d.hours(1, 24)),
        Change::Assigned {
            unit: format!("unit-{}", n % 20),
            handler: format!("handler-{}", n % 300),
        },
    ));
    if d.chance(50) {
        let delivery = DeliveryMethod::Email;
        steps.push((
            at(&mut t, d.hours(24, 72)),
            Change::HoldingResponseSent {
                reason: "investigating".into(),
                delivery,
            },
        ));
    }
    if d.chance(35) {
        steps.push((
            at(&mut t, d.hours(1, 24)),
            Change::ClassifiedComplex {
                reason: "several products".into(),
            },
        ));
    }
    if d.chance(20) {
        let paused = at(&mut t, d.hours(2, 48));
        steps.push((
            paused,
            Change::ClockPaused {
                reason: PauseReason::AwaitingCustomer,
                complainant_notified_at: Some(paused),
            },
        ));
        steps.push((
            at(&mut t, d.hours(24, 120)),
            Change::ClockResumed {
                reason: PauseReason::AwaitingCustomer,
            },
        ));
    }
    if d.chance(70) {
        steps.push((
            at(&mut t, d.hours(2, 72)),
            Change::NewFactsAdded {
                facts: "the statement of May".into(),
            },
        ));
    }
    if d.chance(5) {
        steps.push((
            at(&mut t, d.hours(24, 240)),
            Change::Withdrawn {
                reason: "resolved with the branch".into(),
            },
        ));
        steps.push((at(&mut t, d.hours(1, 48)), Change::Closed));
        return steps;
    }
    let root_cause = [
        RootCause::ProcessFailure,
        RootCause::Communication,
        RootCause::SystemError,
        RootCause::NoFault,
        RootCause::StaffConduct,
    ][(d.next() % 5) as usize];
    steps.push((
        at(&mut t, d.hours(24, 200)),
        Change::FindingsRecorded {
            findings: "f".repeat(80),
            root_cause,
            evidence: vec![],
        },
    ));
    if d.chance(60) {
        steps.push((
            at(&mut t, d.hours(2, 24)),
            Change::RedressProposed {
                redress: vec![],
                rationale: "fees refunded".into(),
            },
        ));
    }
    // 2% answered late, past every regime's deadline.
    let answer_after = if d.chance(2) {
        d.hours(1_500, 2_000)
    } else {
        d.hours(2, 72)
    };
    let decision =
        [Decision::Upheld, Decision::PartlyUpheld, Decision::Rejected][(d.next() % 3) as usize];
    steps.push((
        at(&mut t, answer_after),
        Change::Answered {
            decision,
            redress: vec![],
            delivery: DeliveryMethod::Letter,
            summary: "our answer".into(),
        },
    ));
    if d.chance(40) {
        steps.push((
            at(&mut t, d.hours(24, 240)),
            Change::SatisfactionRecorded {
                rating: (1 + d.next() % 5) as u8,
                comment: String::new(),
            },
        ));
    }
    if d.chance(4) {
        steps.push((
            at(&mut t, d.hours(24, 300)),
            Change::ReviewRequested {
                reason: "disagrees".into(),
            },
        ));
        steps.push((
            at(&mut t, d.hours(48, 300)),
            Change::ReviewAnswered {
                outcome: ReviewOutcome::Confirmed,
                summary: "confirmed".into(),
            },
        ));
    }
    if d.chance(3) {
        let reference = format!("REF-{n}");
        steps.push((
            at(&mut t, d.hours(100, 800)),
            Change::ReferredToRegulator {
                body: body.into(),
                reason: ReferralReason::ComplainantReferred,
                reference: reference.clone(),
            },
        ));
        steps.push((
            at(&mut t, d.hours(500, 2_000)),
            Change::RegulatorOutcomeRecorded {
                body: body.into(),
                outcome: RegulatorOutcome::UpheldForFirm,
                reference,
            },
        ));
    }
    steps.push((at(&mut t, d.hours(24, 400)), Change::Closed));
    steps
}

fn micros(t: Timestamp) -> eventlog::Timestamp {
    eventlog::Timestamp::from_micros(t.as_microsecond())
}

/// Writes the history of `complaints` complaints ending at `end` into `data_dir` (a new
/// complaintd data directory); returns the number of records and where the history starts.
fn generate(data_dir: &Path, complaints: usize, end: Timestamp) -> (u64, Timestamp) {
    let start = end
        .checked_sub(SignedDuration::from_hours(24 * 365 * YEARS))
        .unwrap();
    let span = end.duration_since(start).as_micros() as i64;
    let received = |n: usize| {
        Timestamp::from_microsecond(start.as_microsecond() + span / complaints as i64 * n as i64)
            .unwrap()
    };
    let (tx, rx) = std::sync::mpsc::sync_channel::<StoredRecord>(1 << 16);
    let log_path = data_dir.join("log");
    let writer = std::thread::spawn(move || eventlog_sled::import::import(&log_path, rx).unwrap());

    let sources = RuleSources::built_in();
    let board = SlaBoard::new(Arc::new(sources.engine().unwrap()));
    let mut tail = Tail::EMPTY;
    let mut versions: HashMap<StreamId, u64> = HashMap::new();
    let mut seal = |stream: StreamId, at: Timestamp, event: NewEvent, batch: &mut Vec<Decoded>| {
        let version = versions.entry(stream.clone()).or_insert(0);
        let sealed = tail.seal(&stream, *version, micros(at), std::slice::from_ref(&event));
        *version += 1;
        tail = sealed.tail;
        for (stored, record) in sealed.records {
            tx.send(stored).unwrap();
            batch.push(Decoded::decode(record).unwrap());
        }
    };
    let mut batch = Vec::new();
    seal(
        named_stream(RULES_STREAM),
        start,
        NewEvent::new(RULES_LOADED, "service:complaintd", encode_rules(&sources)),
        &mut batch,
    );

    // Lives waiting for their next step, and the next steps by time.
    let mut lives: HashMap<usize, VecDeque<(Timestamp, Change)>> = HashMap::new();
    let mut next: BinaryHeap<Reverse<(Timestamp, usize)>> = BinaryHeap::new();
    let mut admitted = 0;
    let mut hour = start;
    while hour < end {
        hour = hour
            .checked_add(SignedDuration::from_hours(1))
            .unwrap()
            .min(end);
        while admitted < complaints && received(admitted) < hour {
            let steps: VecDeque<_> = life(admitted, received(admitted)).into();
            next.push(Reverse((steps[0].0, admitted)));
            lives.insert(admitted, steps);
            admitted += 1;
        }
        while let Some(Reverse((at, n))) = next.peek().copied() {
            if at >= hour {
                break;
            }
            next.pop();
            let steps = lives.get_mut(&n).unwrap();
            let (at, change) = steps.pop_front().unwrap();
            let stream =
                StreamId::new(ComplaintId::new(Uuid::from_u128(n as u128 + 1)).stream()).unwrap();
            let (event_type, payload) = codec::encode(&Event {
                effective: None,
                at,
                actor: ACTOR.into(),
                change,
            });
            seal(
                stream,
                at,
                NewEvent::new(event_type, ACTOR, payload),
                &mut batch,
            );
            match steps.front() {
                Some((at, _)) => next.push(Reverse((*at, n))),
                None => {
                    lives.remove(&n);
                }
            }
        }
        // The SLA watcher at the end of the hour: what the board has due, recorded then.
        board.apply_batch(&batch).unwrap();
        batch.clear();
        for crossing in board.crossings_due(hour) {
            seal(
                sla_stream(crossing.id),
                hour,
                complaints_workflow::transitions::event(&crossing),
                &mut batch,
            );
        }
        board.apply_batch(&batch).unwrap();
        batch.clear();
    }
    drop(tx);
    let report = writer.join().unwrap();
    // complaintd's key store, bound to this log, with one key per complainant of the
    // history (as sealing would have made them), so that what the store costs at a start
    // is measured with the rest.
    let keys = complaints_storage::SledKeyStore::open(&data_dir.join("keys")).unwrap();
    complaints_storage::bind_key_store(data_dir, &keys).unwrap();
    let persons = complaints * 7 / 10 + 1;
    for from in (0..persons).step_by(10_000) {
        keys.restore((from..persons.min(from + 10_000)).map(|p| {
            complaints_events::personal::KeyEntry {
                person_id: format!("person-{p}"),
                key: Some(rand::random()),
            }
        }))
        .unwrap();
    }
    drop(keys);
    (report.events, start)
}

fn memory_mib(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn req<T>(message: T) -> tonic::Request<T> {
    req_as(message, ACTOR, "operations,auditor,intake,handler")
}

#[derive(Debug, Clone, Copy, serde::Serialize)]
struct Start {
    serving_s: f64,
    ready_s: f64,
    rss_mib: f64,
    peak_rss_mib: f64,
}

async fn start(program: &Path, data_dir: &Path, what: &str) -> (ServerProcess, Start) {
    let (server, serving, ready) = ServerProcess::start_ready(program, data_dir, &[]).await;
    let start = Start {
        serving_s: serving.as_secs_f64(),
        ready_s: ready.as_secs_f64(),
        rss_mib: memory_mib(server.pid(), "VmRSS:"),
        peak_rss_mib: memory_mib(server.pid(), "VmHWM:"),
    };
    println!(
        "  start {what}: SERVING after {:.2} s, ready after {:.2} s; resident {:.0} MiB (peak {:.0} MiB)",
        start.serving_s, start.ready_s, start.rss_mib, start.peak_rss_mib
    );
    (server, start)
}

fn ts(t: Timestamp) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.as_second(),
        nanos: 0,
    }
}

async fn run(program: &Path, base: &Path, complaints: usize) -> serde_json::Value {
    let dir = tempfile::Builder::new()
        .prefix("complaintd-scale-")
        .tempdir_in(base)
        .unwrap();
    let data_dir = dir.path();
    let end = Timestamp::now()
        .checked_sub(SignedDuration::from_hours(1))
        .unwrap();
    let t = Instant::now();
    let (events, history_start) =
        tokio::task::block_in_place(|| generate(data_dir, complaints, end));
    let generated_s = t.elapsed().as_secs_f64();
    let log_bytes: u64 = walkdir(&data_dir.join("log"));
    println!(
        "{complaints} complaints over {YEARS} years: {events} events ({:.1} per complaint), generated, written and checked in {generated_s:.1} s; the log takes {:.0} MiB",
        events as f64 / complaints as f64,
        log_bytes as f64 / (1 << 20) as f64
    );

    // Offline, on the stored log.
    let (walk_rate, verify_rate, export_rate, opens) =
        tokio::task::block_in_place(|| offline(&data_dir.join("log"), events));
    println!(
        "  offline: raw walk {walk_rate:.0} records/s; verify {verify_rate:.0} events/s ({:.2}x the walk; target >= 2,000,000); JSON export {export_rate:.0} events/s ({:.2}x; target >= 500,000)",
        verify_rate / walk_rate,
        export_rate / walk_rate
    );
    println!(
        "  opening the log (in this process): from its index checkpoint {:.2} s, resident memory +{:.0} MiB, the history check done after {:.2} s; with the full check {:.2} s ({:.0} events/s), +{:.0} MiB ({:.3}x the time)",
        opens.quick,
        opens.quick_mib,
        opens.history,
        opens.full,
        events as f64 / opens.full,
        opens.full_mib,
        opens.quick / opens.full
    );

    // The first start: no snapshot, every projection rebuilt from the log.
    let (server, first) = start(program, data_dir, "1 (no snapshot, rebuild)").await;
    let channel = GrpcChannel::from_shared(format!("http://{}", server.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut complaints_api =
        api::complaint_service_client::ComplaintServiceClient::new(channel.clone());
    let t = Instant::now();
    let board = complaints_api
        .get_board(req(api::GetBoardRequest {}))
        .await
        .unwrap()
        .into_inner();
    let first_board = t.elapsed();
    println!(
        "  first board answer: {:.1} ms ({} complaints, {} open)",
        ms(first_board),
        board.complaints,
        board.open_complaints
    );
    assert_eq!(
        board.complaints as usize, complaints,
        "the board counts every complaint"
    );
    let mut urgent = Vec::new();
    for _ in 0..100 {
        let t = Instant::now();
        complaints_api
            .list_clocks(req(api::ListClocksRequest {
                page_size: 100,
                ..Default::default()
            }))
            .await
            .unwrap();
        urgent.push(t.elapsed());
    }
    urgent.sort();
    println!(
        "  100 most urgent clocks over gRPC: p50 {:.2} ms, p99 {:.2} ms",
        ms(percentile(&urgent, 0.5)),
        ms(percentile(&urgent, 0.99))
    );
    // The regulator queue's answer is not paged: after ten years of history it holds
    // tens of thousands of items, past gRPC's default 4 MiB.
    let mut audit_api = audit::audit_service_client::AuditServiceClient::new(channel.clone())
        .max_decoding_message_size(256 << 20);
    // What the service appended on top of the history at start (the watcher's crossings
    // due between the history's end and now): the history is what a live service leaves.
    let head = audit_api
        .get_digest(req(audit::GetDigestRequest {}))
        .await
        .unwrap()
        .into_inner()
        .position;
    let mut appended = std::collections::BTreeMap::<String, u64>::new();
    if head > events {
        let mut stream = audit_api
            .stream_events(req(audit::StreamEventsRequest {
                from_position: events + 1,
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        while let Some(e) = stream.message().await.unwrap() {
            if e.position > head {
                break;
            }
            *appended.entry(e.event_type).or_default() += 1;
        }
    }
    println!("  appended at start: {} events {appended:?}", head - events);
    // Views of the past at a quarter, half and three quarters of the history, and a day
    // before its end.
    let span = end.duration_since(history_start).as_micros() as i64;
    let mut as_of = Vec::new();
    for (what, at) in [
        ("a quarter", history_start.as_microsecond() + span / 4),
        ("the middle", history_start.as_microsecond() + span / 2),
        (
            "three quarters",
            history_start.as_microsecond() + span / 4 * 3,
        ),
        (
            "a day before the end",
            end.as_microsecond() - 86_400_000_000,
        ),
    ] {
        let at = Timestamp::from_microsecond(at).unwrap();
        let t = Instant::now();
        let past = audit_api
            .get_board_as_of(req(audit::GetBoardAsOfRequest {
                as_of: Some(ts(at)),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        let board_s = t.elapsed().as_secs_f64();
        // The whole queue, in the largest pages (each computed again); and the first page.
        let t = Instant::now();
        let (mut items, mut pages, mut first_page_s) = (0, 0, 0.0);
        let mut page_token = String::new();
        loop {
            let queue = audit_api
                .list_regulator_queue_as_of(req(audit::ListRegulatorQueueAsOfRequest {
                    as_of: Some(ts(at)),
                    page_size: 10_000,
                    page_token,
                }))
                .await
                .unwrap()
                .into_inner();
            if pages == 0 {
                first_page_s = t.elapsed().as_secs_f64();
            }
            pages += 1;
            items += queue.items.len();
            if queue.next_page_token.is_empty() {
                break;
            }
            page_token = queue.next_page_token;
        }
        let queue_s = t.elapsed().as_secs_f64();
        println!(
            "  as of {what} of the history ({at}): board {board_s:.2} s ({} complaints then), regulator queue {queue_s:.2} s ({items} items, {pages} pages; the first {first_page_s:.2} s); target < 1 s",
            past.complaints,
        );
        as_of.push(serde_json::json!({"at": what, "board_s": board_s, "queue_s": queue_s, "queue_first_page_s": first_page_s, "queue_pages": pages}));
    }

    // Durable commands on top of the history, against the no-op call on the same server.
    let (noop_rate, rate, p99) = commands(&channel).await;
    println!(
        "  durable commands, {IN_FLIGHT} clients: {rate:.0}/s, p99 {:.1} ms; {:.0}% of the no-op call's {noop_rate:.0}/s (target >= 70%, p99 <= 10 ms)",
        ms(p99),
        rate / noop_rate * 100.0
    );

    // A clean stop (it saves the projections), then a start from the snapshot.
    let t = Instant::now();
    let (status, lines) = server.terminate().await;
    assert!(status.success(), "complaintd stopped with {status}");
    let stop_s = t.elapsed().as_secs_f64();
    // Of which the last snapshot and the log's index checkpoint at its close took (the
    // server's log says how long writing each took).
    let saving_ms = last_logged(&lines, "projections saved", "millis");
    let index_s = last_logged(&lines, "wrote the index checkpoint", "seconds");
    let index_bytes = walkdir(&data_dir.join("log").join("index-checkpoint"));
    let snapshot_bytes = walkdir(&data_dir.join("projections").join("projections.snap"));
    let checkpoint_bytes = walkdir(&data_dir.join("projections").join("as-of"));
    println!(
        "  clean stop: {stop_s:.2} s, of which writing the last snapshot ({:.0} MiB) {:.2} s and the log's index checkpoint ({:.0} MiB) {index_s:.2} s; as-of checkpoints on disk: {:.0} MiB",
        snapshot_bytes as f64 / (1 << 20) as f64,
        saving_ms / 1e3,
        index_bytes as f64 / (1 << 20) as f64,
        checkpoint_bytes as f64 / (1 << 20) as f64,
    );
    let (server, clean) = start(program, data_dir, "2 (after a clean stop)").await;

    // SIGKILL, then a start.
    drop(server);
    let (server, killed) = start(program, data_dir, "3 (after SIGKILL)").await;
    let (status, _) = server.terminate().await;
    assert!(status.success(), "complaintd stopped with {status}");
    if std::env::var_os("BENCH_KEEP").is_some() {
        println!("  kept: {}", dir.keep().display());
    }

    serde_json::json!({
        "complaints": complaints,
        "events": events,
        "log_mib": log_bytes as f64 / (1 << 20) as f64,
        "generated_s": generated_s,
        "offline_walk_per_s": walk_rate,
        "log_open_s": opens.quick,
        "log_open_rss_mib": opens.quick_mib,
        "log_history_check_s": opens.history,
        "log_open_full_check_s": opens.full,
        "log_open_full_check_rss_mib": opens.full_mib,
        "offline_verify_per_s": verify_rate,
        "offline_export_per_s": export_rate,
        "start_rebuild": first,
        "start_after_clean_stop": clean,
        "start_after_sigkill": killed,
        "first_board_ms": ms(first_board),
        "open_complaints": board.open_complaints,
        "urgent_100_p99_ms": ms(percentile(&urgent, 0.99)),
        "as_of": as_of,
        "noop_per_s": noop_rate,
        "commands_per_s": rate,
        "command_p99_ms": ms(p99),
        "clean_stop_s": stop_s,
        "snapshot_mib": snapshot_bytes as f64 / (1 << 20) as f64,
        "index_checkpoint_s": index_s,
        "index_checkpoint_mib": index_bytes as f64 / (1 << 20) as f64,
        "snapshot_write_s": saving_ms / 1e3,
        "checkpoints_mib": checkpoint_bytes as f64 / (1 << 20) as f64,
    })
}

/// The bytes of the file `dir`, or of the files below it.
fn walkdir(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return std::fs::metadata(dir).map_or(0, |m| m.len());
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => walkdir(&e.path()),
            _ => e.metadata().map_or(0, |m| m.len()),
        })
        .sum()
}

/// (raw walk records/s, verification events/s, JSON export events/s, (seconds, MiB) to
/// open it with the full check) of the stored log.
fn offline(path: &Path, events: u64) -> (f64, f64, f64, Opens) {
    let log = eventlog_sled::OfflineLog::open(path).unwrap();
    let rate = |n: u64, t: Instant| n as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut walked = 0u64;
    log.scan(1, |r| {
        r.unwrap();
        walked += 1;
        ControlFlow::Continue(())
    })
    .unwrap();
    assert_eq!(walked, events);
    let walk = rate(walked, t);
    let t = Instant::now();
    let report = log
        .verify(eventlog::audit::Verifier::new(), |_| {})
        .unwrap();
    assert_eq!(report.outcome, eventlog::audit::Outcome::Intact);
    let verify = rate(report.records, t);
    // As `complaintctl audit export --data-dir` does: batches rendered on every core.
    let t = Instant::now();
    let mut out = std::io::BufWriter::new(std::io::sink());
    let mut batch = Vec::with_capacity(4096);
    let mut exported = 0u64;
    let mut flush = |batch: &mut Vec<_>| {
        complaints_events::export::write_lines(batch, &mut out).unwrap();
        exported += batch.len() as u64;
        batch.clear();
    };
    log.scan(1, |r| {
        let stored = r.unwrap();
        batch.push((stored.decode().unwrap(), stored.hash()));
        if batch.len() == 4096 {
            flush(&mut batch);
        }
        ControlFlow::Continue(())
    })
    .unwrap();
    flush(&mut batch);
    assert_eq!(exported, events);
    let export = rate(exported, t);
    drop(log);
    // Opening the log as complaintd does (the indexes from the checkpoint the import
    // wrote, the records after it checked; the history behind it checked in the
    // background), then with the full check (every record read and checked, the indexes
    // built from them): their share of the start and of the resident memory.
    let runtime = tokio::runtime::Handle::current();
    let before = self_rss_mib();
    let t = Instant::now();
    let log = eventlog_sled::SledEventLog::open(eventlog_sled::SledConfig::new(path)).unwrap();
    let quick = t.elapsed().as_secs_f64();
    let quick_mib = self_rss_mib() - before;
    runtime.block_on(log.history_checked()).unwrap();
    let history = t.elapsed().as_secs_f64();
    runtime.block_on(eventlog::EventLog::close(&log)).unwrap();
    drop(log);
    let before = self_rss_mib();
    let t = Instant::now();
    let mut config = eventlog_sled::SledConfig::new(path);
    config.check_at_open = eventlog_sled::OpenCheck::Full;
    let log = eventlog_sled::SledEventLog::open(config).unwrap();
    let full = t.elapsed().as_secs_f64();
    let full_mib = self_rss_mib() - before;
    runtime.block_on(eventlog::EventLog::close(&log)).unwrap();
    let open = Opens {
        quick,
        quick_mib,
        history,
        full,
        full_mib,
    };
    (walk, verify, export, open)
}

/// The log's own open, in this process: from its index checkpoint (and the background
/// history check's end), and with the full check, in seconds and resident MiB.
struct Opens {
    quick: f64,
    quick_mib: f64,
    history: f64,
    full: f64,
    full_mib: f64,
}

/// The field `field` of the last line of the server's (JSON) log with `message`; 0 if none.
fn last_logged(lines: &[String], message: &str, field: &str) -> f64 {
    lines
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["fields"]["message"] == message)
        .filter_map(|l| l["fields"][field].as_f64())
        .next_back()
        .unwrap_or(0.0)
}

fn self_rss_mib() -> f64 {
    memory_mib(std::process::id(), "VmRSS:")
}

/// (no-op calls/s, durable commands/s, command p99) with 64 clients.
async fn commands(channel: &GrpcChannel) -> (f64, f64, Duration) {
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;
    let calls = 1_000;
    let start = Instant::now();
    let tasks: Vec<_> = (0..IN_FLIGHT)
        .map(|_| {
            let mut health = HealthClient::new(channel.clone());
            tokio::spawn(async move {
                for _ in 0..calls {
                    health
                        .check(HealthCheckRequest {
                            service: String::new(),
                        })
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let noop_rate = (IN_FLIGHT * calls) as f64 / start.elapsed().as_secs_f64();
    let lives = 15;
    let now = Timestamp::now().as_second();
    let start = Instant::now();
    let tasks: Vec<_> = (0..IN_FLIGHT)
        .map(|w| {
            let mut client =
                api::complaint_service_client::ComplaintServiceClient::new(channel.clone());
            tokio::spawn(async move {
                let mut lat = Vec::new();
                for i in 0..lives {
                    lat.extend(
                        one_life(&mut client, now, 10_000_000 + w * lives + i)
                            .await
                            .1,
                    );
                }
                lat
            })
        })
        .collect();
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.unwrap());
    }
    let rate = lat.len() as f64 / start.elapsed().as_secs_f64();
    lat.sort();
    (noop_rate, rate, percentile(&lat, 0.99))
}

fn main() {
    let base = std::env::var_os("BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let scales: Vec<usize> = std::env::var("BENCH_COMPLAINTS")
        .unwrap_or_else(|_| "100000,1000000".into())
        .split(',')
        .map(|s| {
            s.trim()
                .parse()
                .expect("BENCH_COMPLAINTS: complaints per scale, comma-separated")
        })
        .collect();
    let program = Path::new(env!("CARGO_BIN_EXE_complaintd"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let rows: Vec<_> = scales
        .iter()
        .map(|&n| runtime.block_on(run(program, &base, n)))
        .collect();
    for row in rows {
        println!("{row}");
    }
}
