//! The auditors' gRPC API, in process on port 0, over a real sled log: replay (stored and
//! JSON, filtered, following), digests and verification, and views of past moments with
//! the rules in force then.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use std::sync::Arc;

use common::{register, req, ts, Clients, TestServer};
use complaints_proto::complaints::audit::v1 as audit;
use complaints_proto::complaints::audit::v1::audit_service_client::AuditServiceClient;
use complaints_proto::complaints::v1 as api;
use eventlog::audit::{HeldDigest, Outcome, Signer, Verifier};
use eventlog::{ChainHash, ManualClock, Timestamp as LogTime};
use futures::StreamExt;
use tonic::transport::Channel;
use tonic::Code;
use uuid::Uuid;

/// 2026-02-05T02:00:00Z.
const T0: i64 = 1_770_256_800;
const HOUR: i64 = 3600;

struct Env {
    dir: tempfile::TempDir,
    clock: Arc<ManualClock>,
    signer: Signer,
}

impl Env {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let signer = Signer::generate();
        std::fs::write(dir.path().join("audit-key.pem"), signer.to_pem()).unwrap();
        Self {
            dir,
            clock: common::manual_clock(T0),
            signer,
        }
    }

    fn set_time(&self, seconds: i64) {
        self.clock.set(LogTime::from_micros(seconds * 1_000_000));
    }

    /// The server signing with the key in the directory, only at shutdown.
    async fn start(&self, policies_dir: Option<std::path::PathBuf>) -> (TestServer, Clients) {
        let key = self.dir.path().join("audit-key.pem");
        let server = TestServer::start_with_clock(self.clock.clone(), |config| {
            config.audit_signing_key = Some(key);
            config.audit_sign_interval_seconds = 0;
            config.policies_dir = policies_dir;
        })
        .await;
        let clients = server.clients();
        (server, clients)
    }
}

async fn events(
    audit: &mut AuditServiceClient<Channel>,
    request: audit::StreamEventsRequest,
) -> Vec<audit::AuditEvent> {
    let mut stream = audit
        .stream_events(req(request, "auditor"))
        .await
        .unwrap()
        .into_inner();
    let mut out = Vec::new();
    while let Some(event) = stream.next().await {
        out.push(event.unwrap());
    }
    out
}

async fn verify(
    audit: &mut AuditServiceClient<Channel>,
    held: Vec<String>,
) -> (Vec<audit::VerifyProgress>, audit::VerifyReport) {
    let mut stream = audit
        .verify(req(
            audit::VerifyRequest {
                held_digests: held,
                ..Default::default()
            },
            "auditor",
        ))
        .await
        .unwrap()
        .into_inner();
    let mut progress = Vec::new();
    while let Some(message) = stream.next().await {
        progress.push(message.unwrap());
    }
    let report = progress
        .last()
        .and_then(|p| p.report.clone())
        .expect("a final report");
    (progress, report)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auditors_replay_the_log_verify_it_and_see_past_moments() {
    let env = Env::new();
    let (server, mut c) = env.start(None).await;

    // Only auditors.
    let denied = c
        .audit
        .get_digest(req(audit::GetDigestRequest {}, "handler,operations"))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);

    let registered = c
        .api
        .register_complaint(req(register("UK-FCA-DISP", "GB-ENG", T0), "intake"))
        .await
        .unwrap()
        .into_inner();
    env.set_time(T0 + 2 * HOUR);
    c.api
        .acknowledge_complaint(req(
            api::AcknowledgeComplaintRequest {
                name: registered.name.clone(),
                request_id: Uuid::new_v4().to_string(),
                expected_version: None,
                ..Default::default()
            },
            "intake",
        ))
        .await
        .unwrap();
    let other = c
        .api
        .register_complaint(req(register("UK-FCA-DISP", "GB-ENG", T0), "intake"))
        .await
        .unwrap()
        .into_inner();

    // Everything, as stored: the rules at 1, then the complaints; the chain links up.
    let all = events(&mut c.audit, audit::StreamEventsRequest::default()).await;
    let types: Vec<&str> = all.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        [
            "rules.loaded",
            "complaint.registered",
            "complaint.acknowledged",
            "complaint.registered"
        ]
    );
    let mut prev = ChainHash::GENESIS;
    for e in &all {
        let Some(audit::audit_event::Body::Stored(bytes)) = &e.body else {
            panic!("stored form expected")
        };
        assert_eq!(e.prev_hash.as_ref(), prev.0.as_slice());
        assert_eq!(ChainHash::of_record(bytes).0.as_slice(), e.hash.as_ref());
        prev = ChainHash::of_record(bytes);
    }

    // One complaint, as JSON.
    let mine = events(
        &mut c.audit,
        audit::StreamEventsRequest {
            complaint: registered.name.clone(),
            format: audit::EventFormat::Json as i32,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(mine.len(), 2);
    let Some(audit::audit_event::Body::Json(json)) = &mine[0].body else {
        panic!("json form expected")
    };
    let json: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(json["event_type"], "complaint.registered");
    assert_eq!(json["position"], 2);
    assert_eq!(
        json["payload"]["registered"]["regime"], "UK-FCA-DISP",
        "{json}"
    );

    // By type, and from a time.
    let registrations = events(
        &mut c.audit,
        audit::StreamEventsRequest {
            event_types: vec!["complaint.registered".into()],
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        registrations.iter().map(|e| e.position).collect::<Vec<_>>(),
        [2, 4]
    );
    let later = events(
        &mut c.audit,
        audit::StreamEventsRequest {
            from_time: ts(T0 + HOUR),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(later.iter().map(|e| e.position).collect::<Vec<_>>(), [3, 4]);

    // Following: the stream waits at the head and delivers what comes next.
    let mut follow = c
        .audit
        .stream_events(req(
            audit::StreamEventsRequest {
                from_position: 4,
                follow: true,
                ..Default::default()
            },
            "auditor",
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(follow.next().await.unwrap().unwrap().position, 4);
    c.api
        .acknowledge_complaint(req(
            api::AcknowledgeComplaintRequest {
                name: other.name.clone(),
                request_id: Uuid::new_v4().to_string(),
                expected_version: None,
                ..Default::default()
            },
            "intake",
        ))
        .await
        .unwrap();
    let next = follow.next().await.unwrap().unwrap();
    assert_eq!(
        (next.position, next.event_type.as_str()),
        (5, "complaint.acknowledged")
    );
    drop(follow);

    // The digest, signed by the service's key, verifies and matches the log.
    let digest = c
        .audit
        .get_digest(req(audit::GetDigestRequest {}, "auditor"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(digest.position, 5);
    assert!(digest.signed);
    let HeldDigest::Signed(signed) = HeldDigest::from_json(&digest.json).unwrap() else {
        panic!("signed digest expected")
    };
    signed
        .check_signature(&[env.signer.verifying_key()])
        .unwrap();
    let (progress, report) = verify(&mut c.audit, vec![digest.json.clone()]).await;
    assert!(report.intact, "{}", report.summary);
    assert_eq!((report.position, report.held_digests_matched), (5, 1));
    assert!(progress.len() >= 2, "progress, then the report");

    // A digest the log does not match (another history) is reported where it applies.
    let mut forged: serde_json::Value = serde_json::from_str(&digest.json).unwrap();
    forged["head_hash"] = serde_json::Value::String("00".repeat(32));
    let (_, report) = verify(&mut c.audit, vec![forged.to_string()]).await;
    assert!(!report.intact);
    assert_eq!(report.break_kind, "bad_signature", "{}", report.summary);
    forged.as_object_mut().unwrap().remove("signature");
    forged.as_object_mut().unwrap().remove("public_key");
    forged.as_object_mut().unwrap().remove("signed_at_micros");
    let (_, report) = verify(&mut c.audit, vec![forged.to_string()]).await;
    assert_eq!(
        (
            report.intact,
            report.break_position,
            report.break_kind.as_str()
        ),
        (false, 5, "altered"),
        "{}",
        report.summary
    );
    let bad = c
        .audit
        .verify(req(
            audit::VerifyRequest {
                held_digests: vec!["{}".into()],
                trusted_keys: vec!["not a key".into()],
                start_after: String::new(),
            },
            "auditor",
        ))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);

    // Only what came after a digest verified before: the log grew by one event since.
    let earlier = c
        .audit
        .get_digest(req(audit::GetDigestRequest {}, "auditor"))
        .await
        .unwrap()
        .into_inner();
    c.api
        .add_new_facts(req(
            api::AddNewFactsRequest {
                name: other.name.clone(),
                request_id: Uuid::new_v4().to_string(),
                expected_version: None,
                facts: "a second charge".into(),
                ..Default::default()
            },
            "handler",
        ))
        .await
        .unwrap();
    let mut stream = c
        .audit
        .verify(req(
            audit::VerifyRequest {
                start_after: earlier.json.clone(),
                ..Default::default()
            },
            "auditor",
        ))
        .await
        .unwrap()
        .into_inner();
    let mut last = None;
    while let Some(m) = stream.next().await {
        last = m.unwrap().report;
    }
    let report = last.expect("a report");
    assert!(report.intact, "{}", report.summary);
    assert_eq!((report.records, report.position), (1, 6));

    // The complaint as it stood between its registration and its acknowledgement.
    let as_of = |at: i64| audit::GetComplaintAsOfRequest {
        name: registered.name.clone(),
        as_of: ts(at),
        rules: audit::RulesChoice::Unspecified as i32,
    };
    let then = c
        .audit
        .get_complaint_as_of(req(as_of(T0 + HOUR), "auditor"))
        .await
        .unwrap()
        .into_inner();
    let complaint = then.complaint.unwrap();
    assert_eq!(complaint.status, api::Status::Received as i32);
    assert_eq!(complaint.version, 1);
    assert_eq!(
        then.position, 2,
        "positions 1-2 were recorded at T0, 3-4 two hours later"
    );
    assert_eq!(then.rules, "recorded at position 1");
    let sla = then.sla.unwrap();
    assert_eq!(sla.evaluate_time, ts(T0 + HOUR));
    assert_eq!(sla.clocks[0].state, api::ClockState::ClockRunning as i32);
    let now = c
        .audit
        .get_complaint_as_of(req(as_of(T0 + 3 * HOUR), "auditor"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        now.complaint.unwrap().status,
        api::Status::Acknowledged as i32
    );
    let before = c
        .audit
        .get_complaint_as_of(req(as_of(T0 - 1), "auditor"))
        .await
        .unwrap_err();
    assert_eq!(before.code(), Code::NotFound);
    let missing = c
        .audit
        .get_complaint_as_of(req(
            audit::GetComplaintAsOfRequest {
                name: registered.name.clone(),
                as_of: None,
                rules: 0,
            },
            "auditor",
        ))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::InvalidArgument);

    // The board then and before anything happened.
    let board = c
        .audit
        .get_board_as_of(req(
            audit::GetBoardAsOfRequest {
                as_of: ts(T0 + HOUR),
                rules: 0,
            },
            "auditor",
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((board.complaints, board.open_complaints), (1, 1));
    let empty = c
        .audit
        .get_board_as_of(req(
            audit::GetBoardAsOfRequest {
                as_of: ts(T0 - HOUR),
                rules: 0,
            },
            "auditor",
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(empty.complaints, 0);
    let queue = c
        .audit
        .list_regulator_queue_as_of(req(
            audit::ListRegulatorQueueAsOfRequest {
                as_of: ts(T0),
                ..Default::default()
            },
            "auditor",
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(queue.items.is_empty());
    // Paged as the live queue; bad paging is refused with the missing moment, all at once.
    let refused = c
        .audit
        .list_regulator_queue_as_of(req(
            audit::ListRegulatorQueueAsOfRequest {
                as_of: None,
                page_size: -5,
                page_token: "v2.x".into(),
            },
            "auditor",
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(
        violations(&refused),
        "as_of: is required; page_size: must not be negative; page_token: is not a token this service returned"
    );

    // Shutting down records a last signed digest; the stored log verifies offline.
    let stopped = server.shutdown().await;
    let offline = eventlog_sled::OfflineLog::open(&stopped.data_dir().join("log"))
        .unwrap()
        .verify(
            Verifier::new()
                .trusting([env.signer.verifying_key()])
                .holding(HeldDigest::Signed(signed)),
            |_| {},
        )
        .unwrap();
    assert_eq!(offline.outcome, Outcome::Intact, "{offline}");
    assert_eq!(offline.signed_digests, 1);
    assert_eq!(
        offline.digest.position, 7,
        "six events and the shutdown's digest"
    );
}

/// CN-CBIRC version 2: ten days instead of fifteen (shared test policy).
const CN_TEN_DAYS: &str = include_str!("../../../libs/workflow/tests/policies/cn-ten-days.toml");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_views_use_the_rules_in_force_then_unless_asked_for_todays() {
    let env = Env::new();
    let (server, mut c) = env.start(None).await;
    let registered = c
        .api
        .register_complaint(req(register("CN-CBIRC", "CN", T0), "intake"))
        .await
        .unwrap()
        .into_inner();
    let stopped = server.shutdown().await;

    // A day later the operator adds a stricter policy version and restarts.
    env.set_time(T0 + 24 * HOUR);
    let policies = env.dir.path().join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    std::fs::write(policies.join("cn.toml"), CN_TEN_DAYS).unwrap();
    let server = stopped
        .restart(|config| config.policies_dir = Some(policies))
        .await;
    let mut c2 = server.clients();
    drop(c);

    let due = |sla: &api::ComplaintSla| sla.clocks[0].due_date.clone();
    // Today's view is recomputed with the new rules.
    let current = c2
        .api
        .get_complaint_sla(req(
            api::GetComplaintSlaRequest {
                name: registered.name.clone(),
            },
            "operations",
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (due(&current), current.policy_version),
        ("2026-02-15".into(), 2)
    );

    // The past as it was: the rules recorded then ...
    let as_of = |rules: audit::RulesChoice| audit::GetComplaintAsOfRequest {
        name: registered.name.clone(),
        as_of: ts(T0 + HOUR),
        rules: rules as i32,
    };
    let then = c2
        .audit
        .get_complaint_as_of(req(as_of(audit::RulesChoice::AsRecorded), "auditor"))
        .await
        .unwrap()
        .into_inner();
    let sla = then.sla.unwrap();
    assert_eq!((due(&sla), sla.policy_version), ("2026-02-20".into(), 1));
    assert_eq!(then.rules, "recorded at position 1");
    // ... or today's rules applied to it, when asked.
    let today = c2
        .audit
        .get_complaint_as_of(req(as_of(audit::RulesChoice::Current), "auditor"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(due(&today.sla.unwrap()), "2026-02-15");
    assert_eq!(today.rules, "current");

    // The board as of day 12: under the rules recorded since day 1 (ten days) the clock
    // has breached; under the first rules (fifteen days) it would not have.
    let board = c2
        .audit
        .get_board_as_of(req(
            audit::GetBoardAsOfRequest {
                as_of: ts(T0 + 12 * 24 * HOUR),
                rules: 0,
            },
            "auditor",
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(board.clocks_by_state.get("breached"), Some(&1), "{board:?}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloading_the_rules_recomputes_open_complaints_without_a_restart() {
    let env = Env::new();
    let policies = env.dir.path().join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    let (server, mut c) = env.start(Some(policies.clone())).await;
    let registered = c
        .api
        .register_complaint(req(register("CN-CBIRC", "CN", T0), "intake"))
        .await
        .unwrap()
        .into_inner();
    let sla = |c: &mut Clients| {
        let mut api = c.api.clone();
        let name = registered.name.clone();
        async move {
            api.get_complaint_sla(req(api::GetComplaintSlaRequest { name }, "operations"))
                .await
                .unwrap()
                .into_inner()
        }
    };
    assert_eq!(sla(&mut c).await.clocks[0].due_date, "2026-02-20");
    assert!(
        server.running().reload_rules().await.unwrap().is_none(),
        "nothing changed"
    );

    // A broken file is refused and changes nothing.
    std::fs::write(policies.join("broken.toml"), "[[policy]]\nid = 3\n").unwrap();
    assert!(server.running().reload_rules().await.is_err());
    std::fs::remove_file(policies.join("broken.toml")).unwrap();
    assert_eq!(sla(&mut c).await.clocks[0].due_date, "2026-02-20");

    // The operator adds a stricter version: recorded, and the open complaint recomputed.
    std::fs::write(policies.join("cn.toml"), CN_TEN_DAYS).unwrap();
    assert!(server.running().reload_rules().await.unwrap().is_some());
    let now = sla(&mut c).await;
    assert_eq!(
        (now.clocks[0].due_date.as_str(), now.policy_version),
        ("2026-02-15", 2)
    );
    server.shutdown().await;
}

/// The field violations of an INVALID_ARGUMENT, as "field: description".
fn violations(status: &tonic::Status) -> String {
    use tonic_types::StatusExt;
    let details = status.get_error_details();
    let bad = details.bad_request().expect("BadRequest details");
    bad.field_violations
        .iter()
        .map(|v| format!("{}: {}", v.field, v.description))
        .collect::<Vec<_>>()
        .join("; ")
}

/// REGIMES example 4 with the appraisal recorded after the fact: received 2026-02-05
/// (15-day due 2026-02-20); an external appraisal ran from the 8th to the 18th and is
/// entered on the 19th, when the lab's letter arrives. The due date moves ten days, the
/// explanation says the period was recorded later, the past as of the 18th does not know
/// it, and the auditor finds both entries among the back-dated ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_recorded_after_the_fact_counts_from_when_it_happened() {
    const DAY: i64 = 24 * HOUR;
    let env = Env::new();
    let (server, mut c) = env.start(None).await;
    let name = c
        .api
        .register_complaint(req(register("CN-CBIRC", "CN", T0), "intake"))
        .await
        .unwrap()
        .into_inner()
        .name;
    c.api
        .assign_complaint(req(
            api::AssignComplaintRequest {
                name: name.clone(),
                request_id: Uuid::new_v4().to_string(),
                unit: "cards".into(),
                handler: "emp-3".into(),
                ..Default::default()
            },
            "intake",
        ))
        .await
        .unwrap();
    env.set_time(T0 + 14 * DAY);
    let pause = |effective: i64, reason: &str| api::PauseClockRequest {
        name: name.clone(),
        request_id: Uuid::new_v4().to_string(),
        reason: api::PauseReason::ExternalAppraisal as i32,
        complainant_notify_time: ts(T0 + 3 * DAY),
        effective_time: ts(effective),
        backdating_reason: reason.into(),
        ..Default::default()
    };
    // In the future, and before the receipt: each a field violation.
    let e = c
        .api
        .pause_clock(req(pause(T0 + 15 * DAY, ""), "handler"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(
        violations(&e).contains("effective_time: is in the future"),
        "{}",
        violations(&e)
    );
    let e = c
        .api
        .pause_clock(req(pause(T0 - DAY, ""), "handler"))
        .await
        .unwrap_err();
    assert!(
        violations(&e).contains("effective_time: is before the complaint was received"),
        "{}",
        violations(&e)
    );
    // Eleven days back is beyond the 5-business-day window: a reason, and a supervisor.
    let e = c
        .api
        .pause_clock(req(pause(T0 + 3 * DAY, ""), "handler"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(
        violations(&e).contains("backdating_reason: is required"),
        "{}",
        violations(&e)
    );
    let late = "the lab's letter arrived on the 19th";
    let e = c
        .api
        .pause_clock(req(pause(T0 + 3 * DAY, late), "handler"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    c.api
        .pause_clock(req(pause(T0 + 3 * DAY, late), "handler,supervisor"))
        .await
        .unwrap();
    let done = c
        .api
        .resume_clock(req(
            api::ResumeClockRequest {
                name: name.clone(),
                request_id: Uuid::new_v4().to_string(),
                effective_time: ts(T0 + 13 * DAY),
                backdating_reason: late.into(),
                ..Default::default()
            },
            "handler,supervisor",
        ))
        .await
        .unwrap()
        .into_inner();

    // GetComplaint: the pause as it happened, and each step with both times.
    assert_eq!(done.pauses[0].start_time, ts(T0 + 3 * DAY));
    assert_eq!(done.pauses[0].end_time, ts(T0 + 13 * DAY));
    let steps: Vec<_> = done
        .steps
        .iter()
        .map(|s| (s.event_type.as_str(), s.effective_time, s.record_time))
        .collect();
    assert_eq!(
        steps,
        [
            (
                "complaint.clock_paused",
                ts(T0 + 3 * DAY),
                ts(T0 + 14 * DAY)
            ),
            (
                "complaint.clock_resumed",
                ts(T0 + 13 * DAY),
                ts(T0 + 14 * DAY)
            ),
        ]
    );
    assert_eq!(done.steps[0].backdating_reason, late);

    // The SLA: ten days not counted, and the explanation says it was recorded later.
    let sla = c
        .api
        .get_complaint_sla(req(
            api::GetComplaintSlaRequest { name: name.clone() },
            "operations",
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(sla.clocks[0].due_date, "2026-03-02");
    let line = sla.clocks[0]
        .explanation
        .iter()
        .find(|l| l.contains("paused for external_appraisal"))
        .unwrap_or_else(|| panic!("{:#?}", sla.clocks[0].explanation));
    assert!(
        line.contains("(not counted) (recorded after the fact: its start on 2026-02-19"),
        "{line}"
    );

    // As of the 18th the firm did not know of the pause: recorded time decides.
    let then = c
        .audit
        .get_complaint_as_of(req(
            audit::GetComplaintAsOfRequest {
                name: name.clone(),
                as_of: ts(T0 + 13 * DAY + HOUR),
                rules: 0,
            },
            "auditor",
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(then.complaint.unwrap().pauses.is_empty());
    assert_eq!(then.sla.unwrap().clocks[0].due_date, "2026-02-20");

    // The auditor's list of back-dated entries, with totals by unit and handler.
    let list = c
        .audit
        .list_backdated_entries(req(
            audit::ListBackdatedEntriesRequest::default(),
            "auditor",
        ))
        .await
        .unwrap()
        .into_inner();
    let entries: Vec<_> = list
        .entries
        .iter()
        .map(|e| {
            (
                e.event_type.as_str(),
                e.delay.map(|d| d.seconds),
                e.unit.as_str(),
                e.handler.as_str(),
            )
        })
        .collect();
    assert_eq!(
        entries,
        [
            ("complaint.clock_paused", Some(11 * DAY), "cards", "emp-3"),
            ("complaint.clock_resumed", Some(DAY), "cards", "emp-3"),
        ]
    );
    assert_eq!(list.entries[0].backdating_reason, late);
    assert_eq!(list.by_unit.len(), 1);
    assert_eq!(
        (list.by_unit[0].key.as_str(), list.by_unit[0].entries),
        ("cards", 2)
    );
    assert_eq!(list.by_unit[0].max_delay.unwrap().seconds, 11 * DAY);
    assert_eq!(list.by_handler[0].key, "emp-3");
    // Over two days late: only the pause.
    let longer = c
        .audit
        .list_backdated_entries(req(
            audit::ListBackdatedEntriesRequest {
                min_delay: Some(prost_types::Duration {
                    seconds: 2 * DAY,
                    nanos: 0,
                }),
                ..Default::default()
            },
            "auditor",
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(longer.entries.len(), 1);
    // The log's own record says when it happened too.
    let recorded = events(
        &mut c.audit,
        audit::StreamEventsRequest {
            event_types: vec!["complaint.clock_paused".into()],
            ..Default::default()
        },
    )
    .await;
    assert_eq!(recorded[0].effective_time, ts(T0 + 3 * DAY));
    server.shutdown().await;
}
