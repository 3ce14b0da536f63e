//! What a compliance officer does from the README, with the real binary and the shipped
//! example mapping: produce each return for a period as CSV files and JSON, trace it to
//! the log (the digest written beside the files verifies against the history), and see a
//! refusal that lists the complaints to map.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

use std::process::{Command, Output};

use complaints_proto::complaints::v1 as api;
use complaints_testkit::{manual_clock, req_as, rid, ts, TestServer};

/// 2026-02-02T12:00:00Z, a Monday.
const T0: i64 = 1_770_033_600;
const DAY: i64 = 86_400;

fn ctl(roles: &str, server: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_complaintctl"))
        .args(["--server", server, "--as", "user:officer", "--roles", roles])
        .args(args)
        .output()
        .expect("complaintctl runs")
}

fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn registration(regime: &str, region: &str, product: &str) -> api::RegisterComplaintRequest {
    api::RegisterComplaintRequest {
        request_id: rid(),
        channel: api::Channel::Email as i32,
        complainant: Some(api::Complainant {
            person_id: "person-1".into(),
            name: "Ada Lovelace".into(),
            contact: "ada@example.org".into(),
            id_number: String::new(),
        }),
        unit: "cards".into(),
        product: product.into(),
        category: "fees".into(),
        claim: "refund the fee".into(),
        facts: "charged twice".into(),
        receive_time: ts(T0),
        regime: regime.into(),
        region: region.into(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compliance_officer_produces_the_returns_of_a_half_year_and_traces_them() {
    let mapping =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/reports/mapping.toml");
    let clock = manual_clock(T0);
    let server = TestServer::start_with_clock(clock.clone(), |c| {
        c.reports_mapping = Some(mapping.clone());
    })
    .await;
    server.running().ready().await;
    let mut complaints = server.complaints();
    let mut ids = Vec::new();
    for (regime, region, product) in [
        ("UK-FCA-DISP", "GB-ENG", "credit card"),
        ("CN-CBIRC", "CN", "credit card"),
        ("AU-ASIC-RG271", "AU", "widget"),
    ] {
        let c = complaints
            .register_complaint(req_as(
                registration(regime, region, product),
                "user:intake",
                "intake",
            ))
            .await
            .unwrap()
            .into_inner();
        complaints
            .assign_complaint(req_as(
                api::AssignComplaintRequest {
                    name: c.name.clone(),
                    request_id: rid(),
                    unit: "cards".into(),
                    handler: "emp-1".into(),
                    ..Default::default()
                },
                "user:intake",
                "intake",
            ))
            .await
            .unwrap();
        ids.push(c.name);
    }
    clock.set(eventlog::Timestamp::from_micros(
        (T0 + 10 * DAY) * 1_000_000,
    ));
    complaints
        .answer_complaint(req_as(
            api::AnswerComplaintRequest {
                name: ids[0].clone(),
                request_id: rid(),
                decision: api::Decision::PartlyUpheld as i32,
                delivery: api::DeliveryMethod::DeliveryEmail as i32,
                summary: "part refunded".into(),
                ..Default::default()
            },
            "user:handler",
            "handler",
        ))
        .await
        .unwrap();
    clock.set(eventlog::Timestamp::from_micros(
        (T0 + 160 * DAY) * 1_000_000,
    ));
    let url = server.url();
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().to_str().unwrap();

    // The FCA return as CSV files, and the digest of the log position they stand on.
    let run = ctl(
        "compliance",
        &url,
        &["report", "fca-return", "--period", "2026-H1", "--out", dir],
    );
    let listed = ok(&run);
    for file in [
        "fca-return-2026-H1-products.csv",
        "fca-return-2026-H1-causes.csv",
        "fca-return-2026-H1-redress.csv",
        "fca-return-2026-H1-late_entries.csv",
        "fca-return-2026-H1-digest.json",
    ] {
        assert!(listed.contains(file), "{listed}");
    }
    let products =
        std::fs::read_to_string(out.path().join("fca-return-2026-H1-products.csv")).unwrap();
    assert!(products.starts_with("# report: fca-return\n"), "{products}");
    // Opened 1, closed 1 after 10 days (after the 3rd business day, within 8 weeks),
    // partly upheld (counts as upheld), none open at the end.
    assert!(
        products.contains("\nBanking and credit cards: Credit cards,0,1,1,0,1,0,1,100.0,0\n"),
        "{products}"
    );
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("as of log position"), "{stderr}");

    // For an upload: the tables alone, the provenance beside them.
    let plain = tempfile::tempdir().unwrap();
    ok(&ctl(
        "compliance",
        &url,
        &[
            "report",
            "fca-return",
            "--period",
            "2026-H1",
            "--out",
            plain.path().to_str().unwrap(),
            "--plain",
        ],
    ));
    let table =
        std::fs::read_to_string(plain.path().join("fca-return-2026-H1-products.csv")).unwrap();
    assert!(table.starts_with("product,open_at_start,"), "{table}");
    let provenance =
        std::fs::read_to_string(plain.path().join("fca-return-2026-H1-provenance.txt")).unwrap();
    assert!(provenance.contains("as_of_position: "), "{provenance}");

    // The digest verifies against the history: the figures came from this log.
    let digest = out.path().join("fca-return-2026-H1-digest.json");
    let verified = ok(&ctl(
        "auditor",
        &url,
        &["audit", "verify", "--digest", digest.to_str().unwrap()],
    ));
    assert!(verified.contains("intact"), "{verified}");

    // NFRA's statistics for the quarter, as JSON on standard output.
    let json = ok(&ctl(
        "auditor",
        &url,
        &[
            "report",
            "nfra-statistics",
            "--period",
            "2026-Q1",
            "--format",
            "json",
        ],
    ));
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    let row = &json["sections"][0]["rows"][0];
    assert_eq!(row["business_category"], "银行卡");
    assert_eq!(row["province"], "北京");
    assert_eq!(row["received"], 1);
    assert_eq!(json["provenance"]["period"], "2026-Q1");

    // The example mapping has no "widget": the ASIC file is refused, naming the complaint.
    let refused = ctl(
        "compliance",
        &url,
        &["report", "asic-idr", "--period", "2026-H1", "--out", dir],
    );
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("FailedPrecondition"), "{stderr}");
    assert!(
        stderr.contains(&format!("{} asic.product", ids[2])),
        "{stderr}"
    );
    assert!(!out.path().join("asic-idr-2026-H1-complaints.csv").exists());
    // Operations may not.
    assert!(!ctl(
        "operations",
        &url,
        &["report", "measures", "--period", "2026"]
    )
    .status
    .success());
}
