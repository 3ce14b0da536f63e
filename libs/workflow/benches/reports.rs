//! Reports benchmark (issue 16's target): a report for a period of 100,000 complaints
//! answers in under 1 s, from the reports projection (not a scan of the log).
//!
//! Writes 100,000 complaints received in 2026 (5 events each: registered, assigned,
//! findings, answered with redress, closed; every fourth left open after its findings),
//! across UK, CN and AU regimes, then measures in the same run:
//! - the baseline: replaying the log into a fresh reports projection (what computing a
//!   report by scanning the log would cost at least);
//! - each report for 2026: measures by unit and by handler, root causes, the FCA return,
//!   the NFRA statistics, the ASIC IDR file (median of 5 runs, and the slowest).
//!
//! Run: `cargo bench -p complaints-workflow --bench reports`. `BENCH_SCALE` scales the
//! count; `BENCH_DIR` picks where the log goes. Prints the figures, then one JSON line.
#![allow(clippy::unwrap_used)] // a failed unwrap in a benchmark is a failed benchmark

mod common;

use std::sync::Arc;
use std::time::Instant;

use common::{rss_mib, scaled};
use complaints_domain::model::*;
use complaints_domain::{Change, Event, Register};
use complaints_events::codec;
use complaints_projections::reports::Reports;
use complaints_projections::Projection;
use complaints_workflow::reports::{
    Dimension, LoadedMapping, Period, RepeatRule, ReportKind, ReportRequest, Reporter,
};
use eventlog::{EventLog, ExpectedVersion, ManualClock, NewEvent, StreamId, Timestamp as LogTime};
use eventlog_sled::{SledConfig, SledEventLog};
use jiff::{SignedDuration, Timestamp};
use uuid::Uuid;

const REGIMES: [(&str, &str, &str); 3] = [
    ("UK-FCA-DISP", "GB-ENG", "Europe/London"),
    ("CN-CBIRC", "CN", "Asia/Shanghai"),
    ("AU-ASIC-RG271", "AU", "Australia/Sydney"),
];
const PRODUCTS: [&str; 4] = ["current account", "credit card", "home loan", "savings"];
const CATEGORIES: [&str; 4] = ["fees", "service", "arrears", "fraud"];

fn mapping() -> LoadedMapping {
    let mut text = String::from("[asic.channel]\nweb = \"Online\"\n");
    let table = |name: &str, keys: &[&str], text: &mut String| {
        text.push_str(&format!("[{name}]\n"));
        for k in keys {
            text.push_str(&format!("{k:?} = \"{name}:{k}\"\n"));
        }
    };
    table("asic.product", &PRODUCTS, &mut text);
    table("asic.issue", &CATEGORIES, &mut text);
    table(
        "asic.outcome",
        &["upheld", "partly_upheld", "rejected", "withdrawn"],
        &mut text,
    );
    table("fca.product", &PRODUCTS, &mut text);
    table("fca.cause", &CATEGORIES, &mut text);
    table("nfra.business", &PRODUCTS, &mut text);
    table("nfra.cause", &CATEGORIES, &mut text);
    let units: Vec<String> = (0..20).map(|u| format!("unit-{u}")).collect();
    let units: Vec<&str> = units.iter().map(String::as_str).collect();
    table("nfra.province", &units, &mut text);
    LoadedMapping::parse(&text, "bench").unwrap()
}

/// One complaint's life, received in 2026 (spread over the year, on working-day
/// mornings), answered after 1-40 days.
fn life(n: usize) -> (StreamId, Vec<NewEvent>) {
    let id = ComplaintId::new(Uuid::from_u128(n as u128 + 1));
    let (regime, region, _) = REGIMES[n % REGIMES.len()];
    let day = (n * 7 % 300) as i64;
    let received = Timestamp::from_second(1_767_261_600) // 2026-01-01T10:00:00Z
        .unwrap()
        .checked_add(SignedDuration::from_hours(day * 24))
        .unwrap();
    let at = |days: i64| {
        received
            .checked_add(SignedDuration::from_hours(days * 24))
            .unwrap()
    };
    let register = Register {
        id,
        channel: Channel::Web,
        complainant: Complainant {
            person_id: format!("p{n}"),
            name: "Bench Person".into(),
            contact: "bench@example.org".into(),
            id_number: String::new(),
        },
        unit: format!("unit-{}", n % 20),
        employee: None,
        product: PRODUCTS[n / 3 % PRODUCTS.len()].into(),
        category: CATEGORIES[n / 12 % CATEGORIES.len()].into(),
        claim: "a refund".into(),
        facts: "x".repeat(120),
        received_at: received,
        regime: regime.into(),
        region: region.into(),
        regulator: None,
        variant: None,
    };
    let answer_after = 1 + (n % 40) as i64;
    let mut changes = vec![
        (0, Change::Registered(Box::new(register))),
        (
            0,
            Change::Assigned {
                unit: format!("unit-{}", n % 20),
                handler: format!("h{}", n % 300),
            },
        ),
        (
            answer_after - 1,
            Change::FindingsRecorded {
                findings: "f".repeat(80),
                root_cause: RootCause::ALL[n % RootCause::ALL.len()],
                evidence: vec![],
            },
        ),
    ];
    if n % 4 != 3 {
        changes.push((
            answer_after,
            Change::Answered {
                decision: Decision::ALL[n % 3],
                redress: vec![Redress {
                    kind: RedressKind::Refund,
                    amount: Money {
                        minor_units: 1_000 + (n % 100) as i64,
                        currency: iso_currency::Currency::GBP,
                    },
                }],
                delivery: DeliveryMethod::Email,
                summary: "s".into(),
            },
        ));
        changes.push((answer_after + 1, Change::Closed));
    }
    let events = changes
        .into_iter()
        .map(|(days, change)| {
            let (event_type, payload) = codec::encode(&Event {
                effective: None,
                at: at(days),
                actor: "user:bench".into(),
                change,
            });
            NewEvent::new(event_type, "user:bench", payload)
        })
        .collect();
    (StreamId::new(id.stream()).unwrap(), events)
}

fn main() {
    let complaints = scaled(100_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let base = std::env::var_os("BENCH_DIR").map_or_else(std::env::temp_dir, Into::into);
    let dir = tempfile::tempdir_in(base).unwrap();
    runtime.block_on(async {
        // Recorded on 1 January 2026; the report is asked for on 1 February 2027.
        let clock = Arc::new(ManualClock::new(LogTime::from_micros(1_767_225_600_000_000)));
        let log = Arc::new(
            SledEventLog::open_with_clock(SledConfig::new(dir.path().join("log")), clock)
                .unwrap(),
        );
        let writing = Instant::now();
        let tasks: Vec<_> = (0..64)
            .map(|w| {
                let log = log.clone();
                tokio::spawn(async move {
                    for n in (w..complaints).step_by(64) {
                        let (stream, events) = life(n);
                        log.append(&stream, ExpectedVersion::NoStream, events)
                            .await
                            .unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let head = log.head().await.unwrap();
        println!(
            "wrote {complaints} complaints, {head} events in {:.1} s",
            writing.elapsed().as_secs_f64()
        );

        // Baseline: replay the log into a fresh projection.
        let rss_before = rss_mib();
        let replay = Instant::now();
        let (reports, _task) = complaints_projections::spawn(Reports::default(), log.clone());
        reports.wait_for(head).await;
        let replay_s = replay.elapsed().as_secs_f64();
        let rss_growth = rss_mib() - rss_before;
        println!(
            "the reports projection of {complaints} complaints ({} facts kept): RSS grew {rss_growth:.1} MiB",
            head as usize - complaints
        );
        println!(
            "baseline: replay {head} events into the reports projection: {replay_s:.3} s ({:.0} events/s)",
            head as f64 / replay_s
        );

        let mapping = mapping();
        let now = Timestamp::from_second(1_801_440_000).unwrap(); // 2027-02-01
        let reporter = Reporter {
            log: &*log,
            reports: &reports,
            mapping: &mapping,
            signer: None,
            now,
        };
        let runs: [(&str, ReportKind, Dimension, &str); 6] = [
            ("measures by unit", ReportKind::Measures, Dimension::Unit, "UTC"),
            ("measures by handler", ReportKind::Measures, Dimension::Handler, "UTC"),
            ("root causes", ReportKind::RootCauses, Dimension::Unit, "UTC"),
            ("FCA return", ReportKind::FcaReturn, Dimension::Unit, "Europe/London"),
            ("NFRA statistics", ReportKind::NfraStatistics, Dimension::Unit, "Asia/Shanghai"),
            ("ASIC IDR file", ReportKind::AsicIdr, Dimension::Unit, "Australia/Sydney"),
        ];
        let mut json = vec![
            format!("\"complaints\":{complaints}"),
            format!("\"events\":{head}"),
            format!("\"replay_s\":{replay_s:.4}"),
            format!("\"rss_growth_mib\":{rss_growth:.1}"),
        ];
        for (name, kind, by, zone) in runs {
            let request = ReportRequest {
                kind,
                period: Period::parse("2026", zone).unwrap(),
                by,
                repeat: RepeatRule::default(),
            };
            let mut times = Vec::new();
            let mut rows = 0;
            for _ in 0..5 {
                let start = Instant::now();
                let report = reporter.report(&request).await.unwrap();
                times.push(start.elapsed().as_secs_f64());
                rows = report.sections.iter().map(|s| s.rows.len()).sum::<usize>();
            }
            times.sort_by(f64::total_cmp);
            let (median, slowest) = (times[2], times[4]);
            println!(
                "{name}: median {:.1} ms, slowest {:.1} ms ({rows} rows): {:.3}x the replay",
                median * 1e3,
                slowest * 1e3,
                median / replay_s
            );
            json.push(format!(
                "\"{}_ms\":{:.2}",
                kind.name().replace('-', "_") + if kind == ReportKind::Measures { by.name() } else { "" },
                median * 1e3
            ));
        }
        println!("{{{}}}", json.join(","));
    });
}
