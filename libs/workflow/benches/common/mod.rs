//! What the benchmarks share: scaling, memory readings, and a log of realistic complaint
//! lives written by 32 concurrent writers.
#![allow(dead_code)]

use std::sync::Arc;

use complaints_domain::model::*;
use complaints_domain::{Change, Event, Register};
use complaints_events::codec;
use eventlog::{EventLog, ExpectedVersion, NewEvent, StreamId};
use eventlog_sled::SledEventLog;
use jiff::{SignedDuration, Timestamp};
use uuid::Uuid;

pub fn scaled(n: usize) -> usize {
    let scale: f64 = std::env::var("BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    ((n as f64 * scale) as usize).max(1)
}

pub fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

const REGIMES: [(&str, &str); 4] = [
    ("UK-FCA-DISP", "GB-ENG"),
    ("UK-FCA-PSD", "GB-SCT"),
    ("CN-CBIRC", "CN"),
    ("US-CFPB", "US"),
];

/// The events of one complaint: registered, then up to 9 more steps.
pub fn life(n: usize, steps: usize, base: Timestamp) -> (StreamId, Vec<NewEvent>) {
    let id = ComplaintId::new(Uuid::from_u128(n as u128 + 1));
    let (regime, region) = REGIMES[n % REGIMES.len()];
    let received = base
        .checked_add(SignedDuration::from_mins((n % 40_000) as i64))
        .unwrap();
    let at = |k: i64| received.checked_add(SignedDuration::from_hours(k)).unwrap();
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
        product: "current account".into(),
        category: format!("category-{}", n % 8),
        claim: "a refund".into(),
        facts: "x".repeat(120),
        received_at: received,
        regime: regime.into(),
        region: region.into(),
        regulator: None,
        variant: None,
    };
    let changes = [
        Change::Registered(Box::new(register)),
        Change::Acknowledged,
        Change::Assigned {
            unit: format!("unit-{}", n % 20),
            handler: format!("h{}", n % 300),
        },
        Change::ClassifiedComplex {
            reason: "several products".into(),
        },
        Change::HoldingResponseSent {
            reason: "waiting".into(),
            delivery: DeliveryMethod::Email,
        },
        Change::ClockPaused {
            reason: PauseReason::ExternalAppraisal,
            complainant_notified_at: Some(at(5)),
        },
        Change::ClockResumed {
            reason: PauseReason::ExternalAppraisal,
        },
        Change::NewFactsAdded {
            facts: "more".into(),
        },
        Change::FindingsRecorded {
            findings: "f".repeat(80),
            root_cause: RootCause::ProcessFailure,
            evidence: vec![],
        },
        Change::RedressProposed {
            redress: vec![],
            rationale: "r".into(),
        },
    ];
    let events = changes
        .into_iter()
        .take(steps)
        .enumerate()
        .map(|(k, change)| {
            let (event_type, payload) = codec::encode(&Event {
                effective: None,
                at: at(k as i64),
                actor: "user:bench".into(),
                change,
            });
            NewEvent::new(event_type, "user:bench", payload)
        })
        .collect();
    (StreamId::new(id.stream()).unwrap(), events)
}

pub async fn write_log(log: Arc<SledEventLog>, complaints: usize, steps: usize, base: Timestamp) {
    let tasks: Vec<_> = (0..32)
        .map(|w| {
            let log = log.clone();
            tokio::spawn(async move {
                for n in (w..complaints).step_by(32) {
                    let (stream, events) = life(n, steps, base);
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
}
