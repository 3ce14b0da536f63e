//! Offline verification of a tampered copy of a store: each kind of tampering is reported
//! at the right position and with the right kind, including the ones the chain alone
//! cannot catch (a rewritten chain, a cut-off tail), given a digest taken before.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test
#![forbid(unsafe_code)]

use std::path::Path;

use bytes::Bytes;
use eventlog::audit::{BreakKind, Digest, HeldDigest, Outcome, Report, Signer, Verifier};
use eventlog::{codec, ChainHash, EventLog, RecordedEvent, StreamId, Timestamp};
use eventlog_sled::{OfflineLog, SledConfig, SledEventLog};

mod common;
use common::{append_event, chunk_key, one_record_chunk, only_record, tamper};

struct Made {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    signer: Signer,
    /// The digest after position 5, as an auditor would hold it.
    held: Digest,
}

/// 8 records, each alone in its chunk: 5 events, a signed digest of position 5 recorded at
/// 6, two more events.
async fn make_log() -> Made {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let log = SledEventLog::open(SledConfig::new(&path)).unwrap();
    let signer = Signer::generate();
    let (a, b) = (
        StreamId::new("complaint-a").unwrap(),
        StreamId::new("complaint-b").unwrap(),
    );
    let mut held = Digest::EMPTY;
    for (i, s) in [&a, &b, &a, &a, &b, &a, &b].into_iter().enumerate() {
        if i == 5 {
            held = Digest::of_log(&log).await.unwrap();
            let signed = signer
                .record(&log, "service:complaintd", Timestamp::from_micros(1))
                .await
                .unwrap()
                .expect("something to sign");
            assert_eq!(signed.digest, held);
            // Nothing new since: nothing to sign.
            assert!(signer
                .record(&log, "x", Timestamp::from_micros(2))
                .await
                .unwrap()
                .is_none());
        }
        append_event(&log, s, i, 100).await;
    }
    assert_eq!(log.head().await.unwrap(), 8);
    log.close().await.unwrap();
    Made {
        _dir: dir,
        path,
        signer,
        held,
    }
}

fn record_at(db: &sled::Db, position: u64) -> RecordedEvent {
    let value = db.get(chunk_key(position)).unwrap().unwrap();
    codec::decode(position, only_record(&value)).unwrap()
}

fn store(db: &sled::Db, record: &RecordedEvent) -> ChainHash {
    let (value, hash) = one_record_chunk(record);
    db.insert(chunk_key(record.position), value).unwrap();
    hash
}

fn verify(path: &Path, verifier: Verifier) -> Report {
    let mut progress = Vec::new();
    let report = OfflineLog::open(path)
        .unwrap()
        .verify(verifier, |p| progress.push(p))
        .unwrap();
    assert!(!progress.is_empty(), "progress is reported");
    report
}

fn broken(report: &Report) -> (u64, BreakKind) {
    match &report.outcome {
        Outcome::Broken(b) => (b.position, b.kind),
        Outcome::Intact => panic!("tampering not detected: {report}"),
    }
}

#[tokio::test]
async fn an_intact_log_verifies_against_its_signed_and_held_digests() {
    let made = make_log().await;
    let report = verify(
        &made.path,
        Verifier::new()
            .trusting([made.signer.verifying_key()])
            .holding(HeldDigest::Plain(made.held)),
    );
    assert_eq!(report.outcome, Outcome::Intact, "{report}");
    assert_eq!(report.records, 8);
    assert_eq!(report.signed_digests, 1);
    assert_eq!(report.held_digests_matched, 1);
    let online = SledEventLog::verify(&made.path).unwrap();
    assert_eq!(report.digest.head, online.head_hash);
    assert_eq!(report.digest.position, 8);
}

#[tokio::test]
async fn a_flipped_byte_is_altered_at_its_position() {
    let made = make_log().await;
    tamper(&made.path, |db| {
        let mut value = db.get(chunk_key(3)).unwrap().unwrap().to_vec();
        let at = value.len() - 20;
        value[at] ^= 0x40;
        db.insert(chunk_key(3), value).unwrap();
    });
    assert_eq!(
        broken(&verify(&made.path, Verifier::new())),
        (3, BreakKind::Altered)
    );
}

#[tokio::test]
async fn a_changed_record_with_a_recomputed_checksum_is_altered_at_its_position() {
    let made = make_log().await;
    tamper(&made.path, |db| {
        let mut record = record_at(db, 3);
        record.payload = Bytes::from_static(b"what really happened");
        store(db, &record);
    });
    let report = verify(&made.path, Verifier::new());
    assert_eq!(broken(&report), (3, BreakKind::Altered));
    assert_eq!(report.digest.position, 2, "intact up to the record before");
}

#[tokio::test]
async fn a_deleted_record_is_missing_at_its_position() {
    let made = make_log().await;
    tamper(&made.path, |db| {
        db.remove(chunk_key(4)).unwrap();
    });
    assert_eq!(
        broken(&verify(&made.path, Verifier::new())),
        (4, BreakKind::Missing)
    );
}

#[tokio::test]
async fn swapped_records_are_reordered_at_the_first_of_them() {
    let made = make_log().await;
    tamper(&made.path, |db| {
        let two = db.get(chunk_key(2)).unwrap().unwrap();
        let four = db.get(chunk_key(4)).unwrap().unwrap();
        db.insert(chunk_key(2), four).unwrap();
        db.insert(chunk_key(4), two).unwrap();
    });
    assert_eq!(
        broken(&verify(&made.path, Verifier::new())),
        (2, BreakKind::Reordered)
    );
}

/// Rewrites record 3 and re-links every record after it: a consistent chain.
fn rewrite_history_from_3(db: &sled::Db) {
    let mut prev = record_at(db, 3).prev_hash;
    for position in 3..=8 {
        let mut record = record_at(db, position);
        if position == 3 {
            record.payload = Bytes::from_static(b"rewritten");
        }
        record.prev_hash = prev;
        prev = store(db, &record);
    }
}

#[tokio::test]
async fn a_rewritten_chain_is_caught_by_the_signed_digest_in_the_log() {
    let made = make_log().await;
    tamper(&made.path, rewrite_history_from_3);
    let report = verify(
        &made.path,
        Verifier::new().trusting([made.signer.verifying_key()]),
    );
    // The digest signed at 6 covers position 5: the change is at or before 5.
    assert_eq!(broken(&report), (5, BreakKind::Altered), "{report}");
}

#[tokio::test]
async fn a_rewritten_chain_without_recorded_digests_is_caught_by_a_held_digest() {
    let made = make_log().await;
    tamper(&made.path, |db| {
        rewrite_history_from_3(db);
        // Also drop the recorded digest by turning it into an ordinary event.
        let mut six = record_at(db, 6);
        six.event_type = "test.happened".into();
        six.stream = StreamId::new("complaint-a").unwrap();
        let mut prev = store(db, &six);
        for position in 7..=8 {
            let mut record = record_at(db, position);
            record.prev_hash = prev;
            prev = store(db, &record);
        }
    });
    // The chain is consistent again: without a digest nothing shows (this is why
    // digests are handed out and signed) ...
    assert_eq!(verify(&made.path, Verifier::new()).outcome, Outcome::Intact);
    // ... but the auditor's digest of position 5 no longer matches.
    let report = verify(
        &made.path,
        Verifier::new().holding(HeldDigest::Plain(made.held)),
    );
    assert_eq!(broken(&report), (5, BreakKind::Altered), "{report}");
}

#[tokio::test]
async fn a_cut_off_tail_is_missing_after_the_new_end() {
    let made = make_log().await;
    let full = verify(&made.path, Verifier::new()).digest;
    tamper(&made.path, |db| {
        db.remove(chunk_key(8)).unwrap();
        db.remove(chunk_key(7)).unwrap();
    });
    // Cleanly cut, the log looks shorter but intact ...
    assert_eq!(verify(&made.path, Verifier::new()).outcome, Outcome::Intact);
    // ... until compared with a digest taken before: it only ever grows.
    let report = verify(&made.path, Verifier::new().holding(HeldDigest::Plain(full)));
    assert_eq!(broken(&report), (7, BreakKind::Missing), "{report}");
}

#[tokio::test]
async fn a_forged_signature_in_the_log_is_a_bad_signature_at_its_position() {
    let made = make_log().await;
    tamper(&made.path, |db| {
        use prost::Message;
        let mut six = record_at(db, 6);
        let mut signed =
            complaints_proto::eventlog::v1::SignedDigest::decode(six.payload.clone()).unwrap();
        let mut signature = signed.signature.to_vec();
        signature[10] ^= 1;
        signed.signature = Bytes::from(signature);
        six.payload = Bytes::from(signed.encode_to_vec());
        let mut prev = store(db, &six);
        for position in 7..=8 {
            let mut record = record_at(db, position);
            record.prev_hash = prev;
            prev = store(db, &record);
        }
    });
    let report = verify(&made.path, Verifier::new());
    assert_eq!(broken(&report), (6, BreakKind::BadSignature), "{report}");
}

#[tokio::test]
async fn digests_by_an_untrusted_key_are_refused() {
    let made = make_log().await;
    let stranger = Signer::generate();
    let report = verify(
        &made.path,
        Verifier::new().trusting([stranger.verifying_key()]),
    );
    assert_eq!(broken(&report), (6, BreakKind::BadSignature), "{report}");
    // A held digest signed by someone else.
    let forged = stranger.sign(made.held, Timestamp::from_micros(5));
    let report = verify(
        &made.path,
        Verifier::new()
            .trusting([made.signer.verifying_key()])
            .holding(HeldDigest::Signed(forged.clone())),
    );
    assert_eq!(broken(&report), (5, BreakKind::BadSignature), "{report}");
    // JSON round trip of a held signed digest.
    let genuine = made.signer.sign(made.held, Timestamp::from_micros(9));
    let parsed = HeldDigest::from_json(&genuine.to_json()).unwrap();
    assert_eq!(parsed, HeldDigest::Signed(genuine));
    let report = verify(
        &made.path,
        Verifier::new()
            .trusting([made.signer.verifying_key()])
            .holding(parsed),
    );
    assert_eq!(report.outcome, Outcome::Intact, "{report}");
    assert_eq!(report.held_digests_matched, 1);
}

#[test]
fn an_offline_open_never_creates_a_log() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing-here");
    assert!(OfflineLog::open(&missing).is_err());
    assert!(!missing.exists());
}

#[tokio::test]
async fn a_walk_from_a_digest_checks_only_what_came_after_and_the_digest_itself() {
    let made = make_log().await;
    let report = verify(&made.path, Verifier::starting_after(made.held));
    assert_eq!(report.outcome, Outcome::Intact, "{report}");
    assert_eq!((report.records, report.digest.position), (3, 8));

    // The start digest's own record changed: caught there.
    tamper(&made.path, |db| {
        let mut record = record_at(db, 5);
        record.payload = Bytes::from_static(b"changed");
        store(db, &record);
    });
    let report = verify(&made.path, Verifier::starting_after(made.held));
    assert_eq!(broken(&report), (5, BreakKind::Altered), "{report}");

    // A start digest past the end of the log.
    let beyond = Digest {
        position: 9,
        head: made.held.head,
    };
    let report = verify(&made.path, Verifier::starting_after(beyond));
    assert_eq!(broken(&report), (9, BreakKind::Missing), "{report}");
}
