//! What an auditor does from the README, with the real binary: keep a digest, export the
//! history, verify online and offline against the digest and the public key, reconstruct a
//! complaint and the board as of a past time; tampering with a copy is caught.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

use std::process::{Command, Output};

use complaints_proto::complaints::v1 as api;
use complaints_testkit::{copy_dir, manual_clock, req_as, rid, ts, TestServer};
use eventlog::Timestamp;

/// 2026-03-02T09:00:00Z.
const T0: i64 = 1_772_442_000;
/// No server listens here: offline commands must not need one.
const NOWHERE: &str = "http://127.0.0.1:1";

fn ctl(server: &str, args: &[&str]) -> Output {
    ctl_as("auditor", server, args)
}

fn ctl_as(roles: &str, server: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_complaintctl"))
        .args(["--server", server, "--as", "user:auditor", "--roles", roles])
        .args(args)
        .output()
        .expect("complaintctl runs")
}

fn ok(output: Output) -> String {
    assert!(
        output.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auditor_exports_verifies_and_reconstructs_the_past() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("audit-key.pem");
    let public = dir.path().join("audit-key.pub.pem");
    let (key_s, public_s) = (key.to_str().unwrap(), public.to_str().unwrap());
    ok(ctl(
        NOWHERE,
        &["audit", "keygen", "--private", key_s, "--public", public_s],
    ));
    // Never overwrites a key.
    assert!(!ctl(
        NOWHERE,
        &["audit", "keygen", "--private", key_s, "--public", public_s]
    )
    .status
    .success());

    let clock = manual_clock(T0);
    let daemon = TestServer::start_with_clock(clock.clone(), |config| {
        config.audit_signing_key = Some(key.clone());
        config.audit_sign_interval_seconds = 0;
    })
    .await;
    let server = daemon.url();
    let mut grpc = daemon.complaints();
    let register = api::RegisterComplaintRequest {
        request_id: rid(),
        channel: api::Channel::Email as i32,
        complainant: Some(api::Complainant {
            person_id: "p-1".into(),
            name: "Grace Hopper".into(),
            contact: "grace@example.org".into(),
            id_number: String::new(),
        }),
        unit: "cards".into(),
        product: "card".into(),
        category: "fees".into(),
        claim: "refund".into(),
        facts: "charged twice".into(),
        receive_time: ts(T0),
        regime: "UK-FCA-DISP".into(),
        region: "GB-ENG".into(),
        ..Default::default()
    };
    let complaint = grpc
        .register_complaint(req_as(register, "user:intake", "intake"))
        .await
        .unwrap()
        .into_inner();
    clock.set(Timestamp::from_micros((T0 + 86_400) * 1_000_000));

    // Keep a digest; export; verify online against it.
    let digest = dir.path().join("digest.json");
    let digest_s = digest.to_str().unwrap();
    ok(ctl(&server, &["audit", "digest", "--out", digest_s]));
    let export = dir.path().join("export.jsonl");
    ok(ctl(
        &server,
        &["audit", "export", "--out", export.to_str().unwrap()],
    ));
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&export)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "the rules, then the registration");
    assert_eq!(lines[1]["event_type"], "complaint.registered");
    assert_eq!(lines[1]["prev_hash"], lines[0]["hash"]);
    let verified = ok(ctl(
        &server,
        &[
            "audit",
            "verify",
            "--digest",
            digest_s,
            "--public-key",
            public_s,
        ],
    ));
    assert!(
        verified.starts_with("intact up to position 2"),
        "{verified}"
    );
    assert!(verified.contains("1 held digests matched"), "{verified}");

    let timeline = ok(ctl(&server, &["audit", "timeline", &complaint.name]));
    assert!(timeline.contains("registered"), "{timeline}");
    assert!(
        timeline.contains(r#""regime":"UK-FCA-DISP""#),
        "the change itself is shown: {timeline}"
    );
    assert!(
        !timeline.contains("Grace Hopper"),
        "no personal data: {timeline}"
    );
    let then = ok(ctl(
        &server,
        &[
            "audit",
            "as-of",
            "complaint",
            &complaint.name,
            "--at",
            "2026-03-02T10:00:00Z",
        ],
    ));
    assert!(then.contains("Received"), "{then}");
    assert!(then.contains("recorded at position 1"), "{then}");
    let board = ok(ctl(
        &server,
        &["audit", "as-of", "board", "--at", "2026-03-02T10:00:00Z"],
    ));
    assert!(board.contains("complaints 1, open 1"), "{board}");
    let denied = ctl_as("operations", &server, &["audit", "digest"]);
    assert!(!denied.status.success());
    let stderr = String::from_utf8_lossy(&denied.stderr);
    assert!(stderr.contains("PermissionDenied"), "{stderr}");

    let stopped = daemon.shutdown().await;

    // Offline, on a copy: the same history (plus the digest signed at shutdown).
    let copy = dir.path().join("copy");
    let copy_s = copy.to_str().unwrap();
    copy_dir(&stopped.data_dir(), &copy);
    let offline_export = dir.path().join("offline.jsonl");
    ok(ctl(
        NOWHERE,
        &[
            "audit",
            "export",
            "--data-dir",
            copy_s,
            "--out",
            offline_export.to_str().unwrap(),
        ],
    ));
    let offline: Vec<serde_json::Value> = std::fs::read_to_string(&offline_export)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(offline.len(), 3);
    assert_eq!(offline[..2], lines[..]);
    assert_eq!(offline[2]["event_type"], "log.digest_signed");
    let verified = ok(ctl(
        NOWHERE,
        &[
            "audit",
            "verify",
            "--data-dir",
            copy_s,
            "--digest",
            digest_s,
            "--public-key",
            public_s,
        ],
    ));
    assert!(verified.contains("intact up to position 3"), "{verified}");
    assert!(
        verified.contains("1 signed digests in the log"),
        "{verified}"
    );

    // Tamper with the copy: change a byte of the registration's record.
    {
        let db = sled::open(copy.join("log")).unwrap();
        let (key, value) = db
            .scan_prefix(b"c")
            .map(Result::unwrap)
            .find(|(k, _)| k[1..] == 2u64.to_be_bytes())
            .expect("the chunk of position 2");
        let mut value = value.to_vec();
        let at = value.len() / 2;
        value[at] ^= 0x20;
        db.insert(key, value).unwrap();
        db.flush().unwrap();
    }
    let broken = ctl(
        NOWHERE,
        &[
            "audit",
            "verify",
            "--data-dir",
            copy_s,
            "--digest",
            digest_s,
        ],
    );
    assert!(!broken.status.success());
    let stdout = String::from_utf8_lossy(&broken.stdout);
    assert!(stdout.contains("BROKEN: altered at position 2"), "{stdout}");
}

/// A holding response sent by phone on Monday and entered on Thursday, from the command
/// line: `--effective-time`, the supervisor's `--backdating-reason` beyond the window,
/// both times in `get` and the timeline, and the auditor's `audit backdated`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_entered_late_from_the_command_line_shows_both_times() {
    let clock = manual_clock(T0);
    let daemon = TestServer::start_with_clock(clock.clone(), |_| {}).await;
    let server = daemon.url();
    let mut grpc = daemon.complaints();
    let complaint = grpc
        .register_complaint(req_as(
            api::RegisterComplaintRequest {
                request_id: rid(),
                channel: api::Channel::Hotline as i32,
                complainant: Some(api::Complainant {
                    person_id: "p-2".into(),
                    name: "Ada".into(),
                    contact: "ada@example.org".into(),
                    id_number: String::new(),
                }),
                unit: "loans".into(),
                product: "loan".into(),
                category: "fees".into(),
                claim: "refund".into(),
                facts: "charged twice".into(),
                receive_time: ts(T0),
                regime: "UK-FCA-DISP".into(),
                region: "GB-ENG".into(),
                ..Default::default()
            },
            "user:intake",
            "intake",
        ))
        .await
        .unwrap()
        .into_inner();
    // Thursday 2026-03-12: the call was on Monday the 2nd, eight business days back.
    clock.set(Timestamp::from_micros((T0 + 10 * 86_400) * 1_000_000));
    let hold = |roles: &str, extra: &[&str]| {
        let mut args = vec![
            "hold",
            &complaint.name,
            "--reason",
            "investigating",
            "--delivery",
            "phone",
            "--effective-time",
            "2026-03-02T15:00:00Z",
        ];
        args.extend_from_slice(extra);
        ctl_as(roles, &server, &args)
    };
    let refused = hold("handler", &[]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("backdating_reason: is required"),
        "{stderr}"
    );
    let done = ok(hold(
        "handler,supervisor",
        &[
            "--backdating-reason",
            "call note found in the handler's log",
        ],
    ));
    assert!(
        done.contains(
            "holding_response_sent happened 2026-03-02T15:00:00Z, recorded 2026-03-12T09:00:00Z"
        ),
        "{done}"
    );
    // An internal step takes no effective time.
    let assign = ctl_as(
        "supervisor",
        &server,
        &[
            "assign",
            &complaint.name,
            "--unit",
            "loans",
            "--handler",
            "emp-1",
            "--effective-time",
            "2026-03-02T15:00:00Z",
        ],
    );
    assert!(!assign.status.success());
    let timeline = ok(ctl(&server, &["audit", "timeline", &complaint.name]));
    assert!(
        timeline.contains("(happened 2026-03-02T15:00:00Z)"),
        "{timeline}"
    );
    let export = ok(ctl(
        &server,
        &["audit", "export", "--complaint", &complaint.name],
    ));
    let line = export
        .lines()
        .find(|l| l.contains("complaint.holding_response_sent"))
        .unwrap();
    assert!(
        line.contains(r#""effective_at":"2026-03-02T15:00:00Z""#),
        "{line}"
    );
    assert!(
        line.contains(r#""recorded_at":"2026-03-12T09:00:00Z""#),
        "{line}"
    );
    let listed = ok(ctl(&server, &["audit", "backdated"]));
    assert!(
        listed.starts_with("1 entry recorded 24 h or more"),
        "{listed}"
    );
    assert!(listed.contains("holding_response_sent"), "{listed}");
    assert!(listed.contains("(234.0 h late)"), "{listed}");
    assert!(
        listed.contains("call note found in the handler's log"),
        "{listed}"
    );
    assert!(
        listed.contains("loans") && listed.contains("1 entry, longest 234.0 h late"),
        "{listed}"
    );
    daemon.shutdown().await;
}
