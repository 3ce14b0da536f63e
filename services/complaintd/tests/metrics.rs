//! `/metrics`: parsed as Prometheus text, its counters checked against the calls made, its
//! gauges against the server's state; and every metric the Grafana dashboard and the
//! alert rules in `deploy/monitoring` use exists. One test in this file: the metrics
//! recorder is global to the process, so no other server shares it.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use std::collections::BTreeSet;

use common::{register, req, rid, ts, TestServer, NOW};
use complaints_proto::complaints::v1 as api;
use prometheus_parse::{Sample, Scrape, Value};

/// The value of the sample of `name` whose labels include `labels`.
fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let matching: Vec<&Sample> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .collect();
    let sum: f64 = matching
        .iter()
        .map(|s| match &s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            Value::Histogram(buckets) => buckets.last().map_or(0.0, |b| b.count),
            Value::Summary(_) => f64::NAN,
        })
        .sum();
    (!matching.is_empty()).then_some(sum)
}

/// The metric names a dashboard or rules file uses: `complaints_*` words.
fn used_metrics(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("complaints_") {
        let word: String = rest[i..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        rest = &rest[i + word.len()..];
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| word.strip_suffix(s))
            .unwrap_or(&word);
        out.insert(base.to_owned());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_the_calls_and_show_the_state() {
    let server = TestServer::start(|_| {}).await;
    server.running().ready().await;
    let mut c = server.complaints();
    // Three registrations; one a hotline call 20 minutes old, past all four of its
    // thresholds (15 minutes, at risk at 50/75/90%).
    for _ in 0..2 {
        c.register_complaint(req(register("UK-FCA-DISP", "GB-ENG", NOW - 60), "intake"))
            .await
            .unwrap();
    }
    let mut hotline = register("INTERNAL-HOTLINE", "CN", NOW - 20 * 60);
    hotline.channel = api::Channel::Hotline as i32;
    let created = c
        .register_complaint(req(hotline, "intake"))
        .await
        .unwrap()
        .into_inner();
    // Refusals: an unknown complaint, an invalid request, a role that may not.
    let unknown = format!("complaints/{}", uuid::Uuid::new_v4());
    let e = c
        .get_complaint(req(api::GetComplaintRequest { name: unknown }, "handler"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
    let mut invalid = register("UK-FCA-DISP", "GB-ENG", NOW - 60);
    invalid.unit.clear();
    invalid.receive_time = ts(NOW + 86_400);
    let e = c
        .register_complaint(req(invalid, "intake"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    let e = c
        .acknowledge_complaint(req(
            api::AcknowledgeComplaintRequest {
                name: created.name.clone(),
                request_id: rid(),
                ..Default::default()
            },
            "operations",
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied);
    // Wait for the four crossings (the watcher records them), then for the board.
    let mut watch = c
        .watch_sla(req(
            api::WatchSlaRequest {
                after_position: Some(0),
                regime: String::new(),
            },
            "operations",
        ))
        .await
        .unwrap()
        .into_inner();
    for _ in 0..4 {
        watch.message().await.unwrap().unwrap();
    }
    drop(watch);
    let board = c
        .get_board(req(api::GetBoardRequest {}, "operations"))
        .await
        .unwrap()
        .into_inner();

    let text = reqwest::get(format!("{}/metrics", server.http_url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
    let calls = |method: &str, code: &str| {
        value(
            &scrape,
            "complaints_grpc_requests_total",
            &[
                ("service", "ComplaintService"),
                ("method", method),
                ("code", code),
            ],
        )
    };
    assert_eq!(calls("RegisterComplaint", "OK"), Some(3.0), "{text}");
    assert_eq!(calls("RegisterComplaint", "InvalidArgument"), Some(1.0));
    assert_eq!(calls("GetComplaint", "NotFound"), Some(1.0));
    assert_eq!(calls("AcknowledgeComplaint", "PermissionDenied"), Some(1.0));
    assert_eq!(calls("GetBoard", "OK"), Some(1.0));
    assert_eq!(calls("AcknowledgeComplaint", "OK"), None);
    // The stream ended when dropped: counted once, however it ended.
    let watched = value(
        &scrape,
        "complaints_grpc_requests_total",
        &[("method", "WatchSla")],
    );
    assert!(matches!(watched, None | Some(1.0)), "{watched:?}");
    // Latency: one observation per finished call.
    assert_eq!(
        value(
            &scrape,
            "complaints_grpc_request_duration_seconds",
            &[("method", "RegisterComplaint")]
        ),
        Some(4.0)
    );
    // Writes: every event this process appended (the rules, three registrations, four
    // crossings) is counted, and is the log's head.
    let head = value(&scrape, "complaints_log_head_position", &[]).unwrap();
    assert_eq!(head, 8.0, "{text}");
    assert_eq!(
        value(
            &scrape,
            "complaints_events_appended_total",
            &[("backend", "sled")]
        ),
        Some(head)
    );
    for histogram in [
        "complaints_log_append_seconds",
        "complaints_log_commit_seconds",
        "complaints_log_sled_flush_seconds",
        "complaints_log_fdatasync_seconds",
    ] {
        assert!(
            value(&scrape, histogram, &[]).unwrap() >= 1.0,
            "{histogram}"
        );
    }
    assert_eq!(
        value(
            &scrape,
            "complaints_sla_crossings_recorded_total",
            &[("regime", "INTERNAL-HOTLINE"), ("kind", "at_risk")]
        ),
        Some(3.0)
    );
    assert_eq!(
        value(
            &scrape,
            "complaints_sla_crossings_recorded_total",
            &[("kind", "breached")]
        ),
        Some(1.0)
    );
    // State: caught up, ready, the clocks as the board counts them.
    for projection in ["list", "board", "queue"] {
        let labels = [("projection", projection)];
        assert_eq!(
            value(&scrape, "complaints_projection_position", &labels),
            Some(head),
            "{projection}: {text}"
        );
        assert_eq!(
            value(&scrape, "complaints_projection_lag_events", &labels),
            Some(0.0)
        );
        assert_eq!(
            value(&scrape, "complaints_projection_lag_seconds", &labels),
            Some(0.0)
        );
    }
    assert_eq!(value(&scrape, "complaints_ready", &[]), Some(1.0));
    assert_eq!(
        value(&scrape, "complaints_sla_timer_backlog", &[]),
        Some(0.0)
    );
    let running: u64 = board.clocks_by_state.values().sum();
    assert_eq!(
        value(&scrape, "complaints_clocks", &[]),
        Some(running as f64)
    );
    assert_eq!(
        value(
            &scrape,
            "complaints_clocks",
            &[("regime", "INTERNAL-HOTLINE"), ("state", "breached")]
        ),
        Some(1.0)
    );
    // Every regime and state has its gauge, 0 where there is none (a count falling to 0
    // shows 0).
    assert_eq!(
        value(
            &scrape,
            "complaints_clocks",
            &[("regime", "US-CFPB"), ("state", "breached")]
        ),
        Some(0.0)
    );
    // No label carries a complaint id.
    let id = created.name.trim_start_matches("complaints/");
    assert!(!text.contains(id));

    // Every metric the dashboard and the alerts use is one the server exports.
    let exported: BTreeSet<String> = scrape.samples.iter().map(|s| s.metric.clone()).collect();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/monitoring");
    for file in ["grafana-dashboard.json", "alerts.yml"] {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        if file.ends_with(".json") {
            serde_json::from_str::<serde_json::Value>(&text).unwrap();
        }
        let used = used_metrics(&text);
        assert!(used.len() >= 5, "{file} uses {used:?}");
        // The snapshot's age appears once a snapshot exists; publisher lag with NATS.
        let optional = [
            "complaints_snapshot_age_seconds",
            "complaints_publisher_lag_events",
        ];
        let missing: Vec<&String> = used
            .iter()
            .filter(|m| !exported.contains(*m) && !optional.contains(&m.as_str()))
            .collect();
        assert!(
            missing.is_empty(),
            "{file} uses metrics not exported: {missing:?}"
        );
    }
}
