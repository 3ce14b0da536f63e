//! `complaintctl admin backup | restore | erasures` with the real binary against complaintd
//! in process: a restore never brings back the personal data of someone erased after the
//! backup (unless told, loudly, to apply no later erasures, which shows the test can
//! fail); a tampered backup is refused before anything is written.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

use std::path::{Path, PathBuf};
use std::process::Output;

use complaints_proto::complaints::v1 as api;
use complaints_testkit::{copy_dir, manual_clock, req, rid, TestServer, NOW};

const ADA: &str = "Ada Quintessa Lovelace";
const BOB: &str = "Bob Unerased";

async fn ctl(server: &str, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_complaintctl"))
        .args([
            "--server",
            server,
            "--as",
            "user:ops",
            "--roles",
            "admin,auditor",
        ])
        .args(args)
        .output()
        .await
        .expect("complaintctl runs")
}

fn said(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn ok(output: &Output) -> String {
    assert!(output.status.success(), "failed: {}", said(output));
    said(output)
}

fn refused(output: &Output) -> String {
    assert!(!output.status.success(), "succeeded: {}", said(output));
    said(output)
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn register(person: &str, name: &str) -> api::RegisterComplaintRequest {
    api::RegisterComplaintRequest {
        request_id: rid(),
        channel: api::Channel::Email as i32,
        complainant: Some(api::Complainant {
            person_id: person.into(),
            name: name.into(),
            contact: "someone@example.org".into(),
            id_number: "ID-1234".into(),
        }),
        unit: "cards".into(),
        product: "Zylophone Card".into(),
        category: "fees".into(),
        claim: "refund".into(),
        facts: format!("{name} was charged twice"),
        receive_time: Some(prost_types::Timestamp {
            seconds: NOW - 3600,
            nanos: 0,
        }),
        regime: "UK-FCA-DISP".into(),
        region: "GB-ENG".into(),
        ..Default::default()
    }
}

async fn registered(server: &TestServer, person: &str, name: &str) -> String {
    server
        .complaints()
        .register_complaint(req(register(person, name), "intake"))
        .await
        .unwrap()
        .into_inner()
        .name
}

/// A server on `data_dir` (a restored one), in a directory of its own.
async fn serve(data_dir: PathBuf) -> TestServer {
    TestServer::start_in(tempfile::tempdir().unwrap(), manual_clock(NOW), |c| {
        c.data_dir = data_dir;
    })
    .await
}

async fn get(server: &TestServer, name: &str) -> api::Complaint {
    server
        .complaints()
        .get_complaint(req(
            api::GetComplaintRequest { name: name.into() },
            "handler",
        ))
        .await
        .unwrap()
        .into_inner()
}

fn erased(c: &api::Complaint) -> bool {
    c.personal_data == api::PersonalDataState::PersonalDataErased as i32
        && c.complainant.as_ref().unwrap().name.is_empty()
        && c.facts.is_empty()
}

fn present(c: &api::Complaint, name: &str) -> bool {
    c.personal_data == api::PersonalDataState::PersonalDataPresent as i32
        && c.complainant.as_ref().unwrap().name == name
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erasure_after_the_backup_survives_the_restore() {
    let dir = tempfile::tempdir().unwrap();
    let live = TestServer::start(|_| {}).await;
    let url = live.url();
    let ada = registered(&live, "p-ada", ADA).await;
    let bob = registered(&live, "p-bob", BOB).await;
    let backup = dir.path().join("backup");
    let out = ok(&ctl(&url, &["admin", "backup", "--out", s(&backup)]).await);
    assert!(out.contains("checked"), "{out}");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(backup.join("backup.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["keys"], 2, "{manifest}");
    // A second backup into the same directory is refused.
    refused(&ctl(&url, &["admin", "backup", "--out", s(&backup)]).await);

    // After the backup: Ada is erased on the live system, and more happens.
    let erasure = live
        .complaints()
        .erase_personal_data(req(
            api::ErasePersonalDataRequest {
                person_id: "p-ada".into(),
                request_id: rid(),
                reason: "ticket-42".into(),
            },
            "admin",
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(erasure.erased);
    registered(&live, "p-carol", "Carol Later").await;
    assert!(erased(&get(&live, &ada).await));

    // Restored with the live system's erasures: Ada stays erased, Bob is there.
    let with_live = dir.path().join("with-live");
    let out = ok(&ctl(
        &url,
        &[
            "admin",
            "restore",
            "--from",
            s(&backup),
            "--data-dir",
            s(&with_live),
            "--erasures-from",
            &url,
        ],
    )
    .await);
    assert!(out.contains("1 keys destroyed"), "{out}");
    let restored = serve(with_live.clone()).await;
    assert!(erased(&get(&restored, &ada).await));
    assert!(present(&get(&restored, &bob).await, BOB));
    // Nothing new can be recorded about Ada on the restored system either.
    let again = restored
        .complaints()
        .register_complaint(req(register("p-ada", ADA), "intake"))
        .await;
    assert!(again.is_err(), "{again:?}");
    restored.shutdown().await;

    // Restoring onto a data directory that holds a log is refused.
    let out = refused(
        &ctl(
            &url,
            &[
                "admin",
                "restore",
                "--from",
                s(&backup),
                "--data-dir",
                s(&with_live),
                "--erasures-from",
                &url,
            ],
        )
        .await,
    );
    assert!(out.contains("already holds a log"), "{out}");
    // Without saying where the later erasures are, a restore is refused.
    let nowhere = dir.path().join("nowhere");
    refused(
        &ctl(
            &url,
            &[
                "admin",
                "restore",
                "--from",
                s(&backup),
                "--data-dir",
                s(&nowhere),
            ],
        )
        .await,
    );
    assert!(!nowhere.exists());

    // With an export of the erasures (online): the same.
    let file = dir.path().join("erasures.json");
    ok(&ctl(&url, &["admin", "erasures", "--out", s(&file)]).await);
    let with_file = dir.path().join("with-file");
    ok(&ctl(
        &url,
        &[
            "admin",
            "restore",
            "--from",
            s(&backup),
            "--data-dir",
            s(&with_file),
            "--erasures-file",
            s(&file),
        ],
    )
    .await);
    let restored = serve(with_file).await;
    assert!(erased(&get(&restored, &ada).await));
    assert!(present(&get(&restored, &bob).await, BOB));
    restored.shutdown().await;

    // An export older than the backup cannot hold the later erasures: refused.
    let mut old: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    old["head_position"] = serde_json::json!(1);
    let old_file = dir.path().join("old-erasures.json");
    std::fs::write(&old_file, old.to_string()).unwrap();
    let too_old = dir.path().join("too-old");
    let out = refused(
        &ctl(
            &url,
            &[
                "admin",
                "restore",
                "--from",
                s(&backup),
                "--data-dir",
                s(&too_old),
                "--erasures-file",
                s(&old_file),
            ],
        )
        .await,
    );
    assert!(out.contains("before the backup"), "{out}");
    assert!(!too_old.exists());

    // Without any later erasure (explicitly accepted, and warned about): Ada is back.
    // This is what the restores above prevent, and shows the test can fail.
    let without = dir.path().join("without");
    let out = ok(&ctl(
        &url,
        &[
            "admin",
            "restore",
            "--from",
            s(&backup),
            "--data-dir",
            s(&without),
            "--accept-no-later-erasures",
        ],
    )
    .await);
    assert!(
        out.contains("WARNING") && out.contains("readable again"),
        "{out}"
    );
    let restored = serve(without).await;
    assert!(present(&get(&restored, &ada).await, ADA));
    restored.shutdown().await;

    // The erasures of a stopped data directory, offline.
    let stopped = live.shutdown().await;
    let offline = dir.path().join("offline-erasures.json");
    let out = ok(&ctl(
        "http://127.0.0.1:1",
        &[
            "admin",
            "erasures",
            "--data-dir",
            s(&stopped.data_dir()),
            "--out",
            s(&offline),
        ],
    )
    .await);
    assert!(out.contains("1 erased persons"), "{out}");
    let text = std::fs::read_to_string(&offline).unwrap();
    assert!(
        text.contains("\"p-ada\"") && !text.contains("p-bob"),
        "{text}"
    );
}

fn flip_in(file: &Path, needle: &[u8]) {
    let mut bytes = std::fs::read(file).unwrap();
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("the needle is in the file");
    bytes[at] ^= 0x01;
    std::fs::write(file, bytes).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_backup_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let signer = eventlog::audit::Signer::generate();
    let key = dir.path().join("key.pem");
    let public = dir.path().join("key.pub.pem");
    let other = dir.path().join("other.pub.pem");
    std::fs::write(&key, signer.to_pem()).unwrap();
    std::fs::write(&public, signer.public_key_pem()).unwrap();
    std::fs::write(&other, eventlog::audit::Signer::generate().public_key_pem()).unwrap();
    let live = TestServer::start(|c| c.audit_signing_key = Some(key.clone())).await;
    let url = live.url();
    for i in 0..5 {
        registered(&live, &format!("p-{i}"), &format!("Person {i}")).await;
    }
    let backup = dir.path().join("backup");
    let out = ok(&ctl(&url, &["admin", "backup", "--out", s(&backup)]).await);
    assert!(out.contains("digest signed"), "{out}");
    let restore = |from: PathBuf, to: PathBuf, public: PathBuf| {
        let url = url.clone();
        async move {
            ctl(
                &url,
                &[
                    "admin",
                    "restore",
                    "--from",
                    s(&from),
                    "--data-dir",
                    s(&to),
                    "--public-key",
                    s(&public),
                    "--accept-no-later-erasures",
                ],
            )
            .await
        }
    };

    // A byte of a record flipped in the backup's log.
    let flipped = dir.path().join("flipped");
    copy_dir(&backup, &flipped);
    flip_in(&flipped.join("log").join("db"), b"Zylophone Card");
    let target = dir.path().join("new-flipped");
    let out = refused(&restore(flipped, target.clone(), public.clone()).await);
    assert!(out.contains("the backup does not check"), "{out}");
    assert!(!target.exists(), "{out}");

    // A manifest whose digest is not the log's (edited consistently, as a forger would).
    let forged = dir.path().join("forged");
    copy_dir(&backup, &forged);
    let path = forged.join("backup.json");
    let mut manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let fake = "ab".repeat(32);
    manifest["head_hash"] = serde_json::json!(fake);
    manifest["digest"]["head_hash"] = serde_json::json!(fake);
    std::fs::write(&path, manifest.to_string()).unwrap();
    let target = dir.path().join("new-forged");
    let out = refused(&restore(forged, target.clone(), public.clone()).await);
    assert!(out.contains("the backup does not check"), "{out}");
    assert!(!target.exists(), "{out}");

    // A manifest whose head hash is not its digest's (edited alone).
    let edited = dir.path().join("edited");
    copy_dir(&backup, &edited);
    let path = edited.join("backup.json");
    let mut manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    manifest["head_hash"] = serde_json::json!(fake);
    std::fs::write(&path, manifest.to_string()).unwrap();
    let target = dir.path().join("new-edited");
    let out = refused(&restore(edited, target.clone(), public.clone()).await);
    assert!(
        out.contains("the manifest's digest is at position") && out.contains(&fake),
        "{out}"
    );
    assert!(!target.exists(), "{out}");

    // A key store that differs from its manifest.
    let keys = dir.path().join("keys-changed");
    copy_dir(&backup, &keys);
    {
        let store = complaints_storage::SledKeyStore::open(&keys.join("keys")).unwrap();
        complaints_events::personal::KeyStore::erase(&store, "p-3").unwrap();
    }
    let target = dir.path().join("new-keys");
    let out = refused(&restore(keys, target.clone(), public.clone()).await);
    assert!(out.contains("key store differs"), "{out}");
    assert!(!target.exists(), "{out}");

    // Signed by another key than the one trusted.
    let target = dir.path().join("new-other-key");
    let out = refused(&restore(backup.clone(), target.clone(), other).await);
    assert!(out.contains("does not match its digest"), "{out}");
    assert!(!target.exists(), "{out}");

    // The untouched backup, with the right key, restores; the backup itself is unchanged.
    let before = std::fs::read(backup.join("log").join("db")).unwrap();
    let target = dir.path().join("new");
    ok(&restore(backup.clone(), target.clone(), public).await);
    assert_eq!(
        std::fs::read(backup.join("log").join("db")).unwrap(),
        before
    );
    let restored = serve(target).await;
    let list = restored
        .complaints()
        .list_complaints(req(api::ListComplaintsRequest::default(), "handler"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.complaints.len(), 5);
    restored.shutdown().await;
    live.shutdown().await;
}
