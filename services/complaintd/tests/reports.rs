//! ReportService and the reports page: a return over gRPC for compliance and auditors,
//! with its provenance (position, signed digest, rules, mapping), refusals (roles, bad
//! fields all at once, unmapped names listed), and the page with its CSV files.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use common::{manual_clock, register, req, rid, write, TestServer};
use complaints_proto::complaints::reports::v1 as pb;
use complaints_proto::complaints::reports::v1::report_service_client::ReportServiceClient;
use complaints_proto::complaints::v1 as api;
use eventlog::audit::{HeldDigest, Signer};
use tonic::Code;
use tonic_types::StatusExt;

/// 2026-02-02T12:00:00Z, a Monday.
const T0: i64 = 1_770_033_600;
const DAY: i64 = 86_400;

const MAPPING: &str = r#"
[asic.channel]
email = "Email"
[asic.product]
"credit card" = "Credit cards"
[asic.issue]
fees = "Fees"
[asic.outcome]
upheld = "U"
partly_upheld = "P"
rejected = "R"
withdrawn = "W"
[fca.product]
"credit card" = "Banking and credit cards: Credit cards"
[fca.cause]
fees = "Terms and disputed sums/charges"
"#;

fn request(kind: &str, period: &str) -> pb::GetReportRequest {
    pb::GetReportRequest {
        kind: kind.into(),
        period: period.into(),
        ..Default::default()
    }
}

fn text(cell: &pb::Cell) -> String {
    match &cell.value {
        Some(pb::cell::Value::Text(s)) => s.clone(),
        Some(pb::cell::Value::Integer(n)) => n.to_string(),
        Some(pb::cell::Value::Number(x)) => format!("{x:.1}"),
        None => String::new(),
    }
}

/// The log's head, from the auditors' digest.
async fn head(server: &TestServer) -> u64 {
    server
        .audit()
        .get_digest(req(
            complaints_proto::complaints::audit::v1::GetDigestRequest::default(),
            "auditor",
        ))
        .await
        .unwrap()
        .into_inner()
        .position
}

/// The last position recorded before `end` (seconds): what a report of a period ending
/// there must stand on, whatever the SLA watcher recorded after it.
async fn last_before(server: &TestServer, end: i64) -> u64 {
    use tokio_stream::StreamExt;
    let mut after = server
        .audit()
        .stream_events(req(
            complaints_proto::complaints::audit::v1::StreamEventsRequest {
                from_time: common::ts(end),
                ..Default::default()
            },
            "auditor",
        ))
        .await
        .unwrap()
        .into_inner();
    match after.next().await {
        Some(first) => first.unwrap().position - 1,
        None => head(server).await,
    }
}

/// 1 July 2026 in London.
const H1_END_LONDON: i64 = 1_782_860_400;

/// A UK complaint received at T0, assigned to emp-1 at cards: its name.
async fn registered_and_assigned(
    complaints: &mut complaints_proto::complaints::v1::complaint_service_client::ComplaintServiceClient<
        tonic::transport::Channel,
    >,
) -> String {
    let name = complaints
        .register_complaint(req(register("UK-FCA-DISP", "GB-ENG", T0), "intake"))
        .await
        .unwrap()
        .into_inner()
        .name;
    complaints
        .assign_complaint(req(
            api::AssignComplaintRequest {
                name: name.clone(),
                request_id: rid(),
                unit: "cards".into(),
                handler: "emp-1".into(),
                ..Default::default()
            },
            "intake",
        ))
        .await
        .unwrap();
    name
}

struct Setup {
    server: TestServer,
    clock: std::sync::Arc<eventlog::ManualClock>,
    _dir: tempfile::TempDir,
    signer: Signer,
}

/// Two UK complaints received on 2 Feb 2026: one answered (upheld, GBP 30.00) on the
/// 3rd business day, one open; an AU complaint about a product the mapping lacks for
/// ASIC. The clock then stands at 10 July 2026.
async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let mapping = write(dir.path(), "mapping.toml", MAPPING);
    let signer = Signer::generate();
    let key = write(dir.path(), "audit.pem", &signer.to_pem());
    let clock = manual_clock(T0);
    let server = TestServer::start_with_clock(clock.clone(), |c| {
        c.reports_mapping = Some(mapping);
        c.audit_signing_key = Some(key);
        c.audit_sign_interval_seconds = 0;
    })
    .await;
    server.running().ready().await;
    let mut complaints = server.complaints();
    let mut names = Vec::new();
    for _ in 0..2 {
        names.push(registered_and_assigned(&mut complaints).await);
    }
    clock.set(eventlog::Timestamp::from_micros((T0 + 3 * DAY) * 1_000_000));
    complaints
        .answer_complaint(req(
            api::AnswerComplaintRequest {
                name: names[0].clone(),
                request_id: rid(),
                decision: api::Decision::Upheld as i32,
                redress: vec![api::Redress {
                    kind: api::RedressKind::Refund as i32,
                    amount: Some(api::Money {
                        minor_units: 3_000,
                        currency_code: "GBP".into(),
                    }),
                }],
                delivery: api::DeliveryMethod::DeliveryLetter as i32,
                summary: "refunded".into(),
                ..Default::default()
            },
            "handler",
        ))
        .await
        .unwrap();
    complaints
        .record_satisfaction(req(
            api::RecordSatisfactionRequest {
                name: names[0].clone(),
                request_id: rid(),
                rating: 5,
                comment: "SECRET-COMMENT of the complainant".into(),
                ..Default::default()
            },
            "handler",
        ))
        .await
        .unwrap();
    let mut au = register("AU-ASIC-RG271", "AU", T0 + 3 * DAY);
    au.product = "savings".into();
    complaints
        .register_complaint(req(au, "intake"))
        .await
        .unwrap();
    clock.set(eventlog::Timestamp::from_micros(
        (T0 + 158 * DAY) * 1_000_000,
    ));
    Setup {
        server,
        clock,
        _dir: dir,
        signer,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compliance_gets_a_return_traced_to_a_signed_digest_of_the_log() {
    let s = setup().await;
    let mut reports = ReportServiceClient::new(s.server.channel());
    let head = head(&s.server).await;

    let report = reports
        .get_report(req(request("fca-return", "2026-H1"), "compliance"))
        .await
        .unwrap()
        .into_inner();
    let products = &report.sections[0];
    assert_eq!(products.name, "products");
    let row: Vec<String> = products.rows[0].cells.iter().map(text).collect();
    // open at start, opened, closed, within 3 business days, within 8 weeks, later,
    // upheld, upheld %, open at the end.
    assert_eq!(
        row,
        [
            "Banking and credit cards: Credit cards",
            "0",
            "2",
            "1",
            "1",
            "0",
            "0",
            "1",
            "100.0",
            "1"
        ]
    );
    let p = report.provenance.clone().unwrap();
    assert!(p.period_ended);
    let as_of = last_before(&s.server, H1_END_LONDON).await;
    assert_eq!(p.as_of_position, as_of, "the last event recorded in H1");
    assert!(p.log_head >= as_of && p.log_head >= head);
    assert!(p.mapping_source.ends_with("mapping.toml"));
    assert_eq!(
        p.mapping_hash,
        complaints_workflow::reports::LoadedMapping::parse(MAPPING, "")
            .unwrap()
            .hash
    );
    // The digest is signed by the service's key and names the position.
    assert!(p.digest_signed);
    let HeldDigest::Signed(signed) = HeldDigest::from_json(&p.digest_json).unwrap() else {
        panic!("a signed digest: {}", p.digest_json);
    };
    assert_eq!(signed.digest.position, as_of);
    signed.check_signature(&[s.signer.verifying_key()]).unwrap();
    // The CSV carries the provenance and the same figures.
    assert!(
        products.csv.starts_with("# report: fca-return\n"),
        "{}",
        products.csv
    );
    assert!(products
        .csv
        .contains(&format!("# as_of_position: {as_of}\n")));
    assert!(products
        .csv
        .contains("\nBanking and credit cards: Credit cards,0,2,1,1,0,0,1,100.0,1\n"));
    let redress = &report.sections[2];
    assert_eq!(
        redress.rows[0].cells.iter().map(text).collect::<Vec<_>>(),
        [
            "Banking and credit cards: Credit cards",
            "refund",
            "GBP",
            "30.00"
        ]
    );
    let json: serde_json::Value = serde_json::from_str(&report.json).unwrap();
    assert_eq!(
        json["sections"][0]["rows"][0]["closed_within_3_business_days"],
        1
    );
    assert_eq!(json["provenance"]["as_of_position"], as_of);

    // No personal data: the rating counts, the comment is nowhere.
    let measures = reports
        .get_report(req(request("measures", "2026-H1"), "auditor"))
        .await
        .unwrap()
        .into_inner();
    assert!(
        measures.json.contains("\"average_rating\": 5.0"),
        "{}",
        measures.json
    );
    for r in [&report, &measures] {
        assert!(!r.json.contains("SECRET-COMMENT"));
        assert!(r.sections.iter().all(|s| !s.csv.contains("SECRET-COMMENT")));
    }
    // Only the content asked for: CSV without rows or JSON; JSON without the tables.
    let only = |content: pb::Content| {
        let mut reports = reports.clone();
        async move {
            reports
                .get_report(req(
                    pb::GetReportRequest {
                        content: content as i32,
                        ..request("fca-return", "2026-H1")
                    },
                    "auditor",
                ))
                .await
                .unwrap()
                .into_inner()
        }
    };
    let csv_only = only(pb::Content::Csv).await;
    assert!(csv_only.json.is_empty());
    assert!(csv_only.sections[0].rows.is_empty());
    // The same table (the provenance may differ: the SLA watcher records crossings as the
    // clock moves, so the head and the late entries can grow between the two calls).
    let table = |csv: &str| -> Vec<String> {
        csv.lines()
            .filter(|l| !l.starts_with('#'))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(table(&csv_only.sections[0].csv), table(&products.csv));
    let json_only = only(pb::Content::Json).await;
    assert!(json_only.sections[0].rows.is_empty() && json_only.sections[0].csv.is_empty());
    assert!(json_only
        .json
        .contains("\"closed_within_3_business_days\": 1"));
    // An auditor may too (above); operations may not.
    let e = reports
        .get_report(req(request("fca-return", "2026-H1"), "operations"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    drop(s.clock);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_fields_are_listed_at_once_and_unmapped_names_refuse_the_return() {
    let s = setup().await;
    let mut reports = ReportServiceClient::new(s.server.channel());
    let e = reports
        .get_report(req(
            pb::GetReportRequest {
                kind: "returns".into(),
                period: "2026-H3".into(),
                by: "colour".into(),
                repeat_days: 100_000,
                ..Default::default()
            },
            "compliance",
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let fields: Vec<String> = e
        .get_error_details()
        .bad_request()
        .unwrap()
        .field_violations
        .iter()
        .map(|v| v.field.clone())
        .collect();
    assert_eq!(fields, ["kind", "period", "by", "repeat_days"]);
    let e = reports
        .get_report(req(
            pb::GetReportRequest {
                time_zone: "Mars/Olympus".into(),
                ..request("measures", "2026")
            },
            "compliance",
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");

    // The AU complaint's product is not in the mapping: the ASIC file is refused, naming it.
    let e = reports
        .get_report(req(request("asic-idr", "2026-H1"), "compliance"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    let details = e.get_error_details();
    let failure = details.precondition_failure().unwrap();
    assert_eq!(failure.violations.len(), 1, "{failure:?}");
    let v = &failure.violations[0];
    assert_eq!(v.r#type, "asic.product");
    assert!(v.subject.starts_with("complaints/"), "{v:?}");
    assert!(v.description.contains("\"savings\""), "{v:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reports_page_shows_a_return_and_offers_its_files() {
    let s = setup().await;
    let http = reqwest::Client::new();
    let get = |path: &str, roles: &str| {
        http.get(format!("{}{path}", s.server.http_url()))
            .header("x-roles", roles.to_owned())
            .send()
    };
    // The SLA watcher may record a crossing while the page is computed (the clock stands
    // before the period's end, so it would count): read again until the log stood still.
    let (body, as_of) = loop {
        let before = head(&s.server).await;
        let page = get("/reports?kind=fca-return&period=2026-H1", "compliance")
            .await
            .unwrap();
        assert_eq!(page.status(), 200);
        let body = page.text().await.unwrap();
        let as_of = last_before(&s.server, H1_END_LONDON).await;
        if head(&s.server).await == before {
            break (body, as_of);
        }
    };
    assert!(
        body.contains(&format!("id=\"as-of-position\">{as_of}<")),
        "{body}"
    );
    assert!(body.contains("Banking and credit cards: Credit cards"));
    assert!(body.contains("<svg"), "a chart");
    assert!(body.contains("/reports/file?kind=fca-return&amp;period=2026-H1&amp;file=products"));

    let csv = get(
        "/reports/file?kind=fca-return&period=2026-H1&file=products",
        "auditor",
    )
    .await
    .unwrap();
    assert_eq!(csv.status(), 200);
    assert_eq!(
        csv.headers()["content-disposition"],
        "attachment; filename=\"fca-return-2026-H1-products.csv\""
    );
    let csv = csv.text().await.unwrap();
    assert!(
        csv.contains("\nBanking and credit cards: Credit cards,0,2,1,1,0,0,1,100.0,1\n"),
        "{csv}"
    );
    let json = get(
        "/reports/file?kind=fca-return&period=2026-H1&file=json",
        "auditor",
    )
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    serde_json::from_str::<serde_json::Value>(&json).unwrap();

    // The unmapped AU complaint is listed on the page, in Chinese too.
    let refused = get(
        "/reports?kind=asic-idr&period=2026-H1&lang=zh-CN",
        "compliance",
    )
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    assert!(refused.contains("无法生成该报表"), "{refused}");
    assert!(refused.contains("asic.product"));
    // Operations have no reports; the board links to them only for those who do.
    assert_eq!(get("/reports", "operations").await.unwrap().status(), 403);
    let board = get("/", "operations").await.unwrap().text().await.unwrap();
    assert!(!board.contains("href=\"/reports\""));
    let board = get("/", "compliance").await.unwrap().text().await.unwrap();
    assert!(board.contains("href=\"/reports\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_rule_configured_a_repeated_root_cause_is_recorded_as_an_event() {
    use tokio_stream::StreamExt;
    let server = TestServer::start_with_clock(manual_clock(T0), |c| {
        c.repeated_cause_count = 3;
        c.repeated_cause_days = 30;
    })
    .await;
    server.running().ready().await;
    // Followed from the start: the event arrives when the rule has recorded it.
    let mut events = server
        .audit()
        .stream_events(req(
            complaints_proto::complaints::audit::v1::StreamEventsRequest {
                event_types: vec!["analysis.repeated_cause".into()],
                follow: true,
                format: complaints_proto::complaints::audit::v1::EventFormat::Json as i32,
                ..Default::default()
            },
            "auditor",
        ))
        .await
        .unwrap()
        .into_inner();
    let mut complaints = server.complaints();
    let mut names = Vec::new();
    for _ in 0..3 {
        let name = registered_and_assigned(&mut complaints).await;
        complaints
            .record_findings(req(
                api::RecordFindingsRequest {
                    name: name.clone(),
                    request_id: rid(),
                    findings: "the fee table was wrong".into(),
                    root_cause: api::RootCause::ProcessFailure as i32,
                    ..Default::default()
                },
                "handler",
            ))
            .await
            .unwrap();
        names.push(name);
    }
    let event = tokio::time::timeout(std::time::Duration::from_secs(60), events.next())
        .await
        .expect("the rule records the repeat")
        .unwrap()
        .unwrap();
    assert_eq!(event.event_type, "analysis.repeated_cause");
    assert_eq!(event.stream_id, "analysis");
    let Some(complaints_proto::complaints::audit::v1::audit_event::Body::Json(json)) = event.body
    else {
        panic!("a JSON body");
    };
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    // All found at the same instant: listed in id order.
    let mut ids: Vec<String> = names
        .iter()
        .map(|n| n.trim_start_matches("complaints/").to_owned())
        .collect();
    ids.sort();
    assert_eq!(
        json["payload"]["complaintIds"],
        serde_json::json!(ids),
        "{json}"
    );
    assert_eq!(json["payload"]["rootCause"], "process_failure");
}
