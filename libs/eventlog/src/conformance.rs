//! The conformance suite: what every backend of [`EventLog`] must do.
//!
//! A backend implements [`Backend`] (how to make empty storage and open a log on it) and
//! calls [`conformance_tests!`](crate::conformance_tests) in a test file; that generates
//! one `#[tokio::test]` per check below, plus the property test.
#![allow(clippy::unwrap_used)] // test support (feature `conformance`): a failed unwrap is a failed test

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use uuid::Uuid;

use crate::{
    AppendResult, Clock, Direction, Error, EventLog, ExpectedVersion, ManualClock, NewEvent,
    Position, RecordedEvent, StreamId, Timestamp, Version,
};

/// How the suite gets logs from a backend.
#[async_trait::async_trait]
pub trait Backend: Send + Sync + 'static {
    /// The log type.
    type Log: EventLog;
    /// Where a log lives (a temporary directory, a stream name on a server); dropping it
    /// removes the storage.
    type Storage: Send + Sync;

    /// New, empty storage.
    async fn storage(&self) -> Self::Storage;

    /// Opens a log on `storage` (again, after a close) with `clock`.
    async fn open(&self, storage: &Self::Storage, clock: Arc<dyn Clock>) -> Arc<Self::Log>;
}

/// 2026-01-01T00:00:00Z.
pub const T0: Timestamp = Timestamp::from_micros(1_767_225_600_000_000);

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(T0))
}

fn stream(name: &str) -> StreamId {
    StreamId::new(name).expect("valid stream id")
}

/// An event whose payload names it, so tests can tell events apart.
pub fn event(label: &str) -> NewEvent {
    NewEvent {
        id: Uuid::new_v4(),
        event_type: "test.happened".into(),
        schema_version: 1,
        actor: "user:tester".into(),
        correlation_id: format!("corr-{label}"),
        causation_id: String::new(),
        payload: Bytes::from(label.as_bytes().to_vec()),
    }
}

async fn read_everything<L: EventLog + ?Sized>(log: &L) -> Vec<RecordedEvent> {
    let mut out = Vec::new();
    let mut from = 1;
    loop {
        let page = log
            .read_all(from, Direction::Forward, 100)
            .await
            .expect("read_all");
        if page.is_empty() {
            return out;
        }
        from = page.last().map(|e| e.position + 1).unwrap_or(from);
        out.extend(page);
    }
}

fn labels(events: &[RecordedEvent]) -> Vec<String> {
    events
        .iter()
        .map(|e| String::from_utf8_lossy(&e.payload).into_owned())
        .collect()
}

async fn open_new<B: Backend>(b: &B) -> (B::Storage, Arc<B::Log>, Arc<ManualClock>) {
    let storage = b.storage().await;
    let clock = clock();
    let log = b.open(&storage, clock.clone()).await;
    (storage, log, clock)
}

async fn reopen<B: Backend>(
    b: &B,
    storage: &B::Storage,
    log: Arc<B::Log>,
    clock: Arc<ManualClock>,
) -> Arc<B::Log> {
    log.close().await.expect("close");
    drop(log);
    b.open(storage, clock).await
}

/// Versions and positions start at 1, are gapless, and the envelope carries every field.
pub async fn append_assigns_versions_positions_and_envelope<B: Backend>(b: &B) {
    let (_s, log, clock) = open_new(b).await;
    let (a, c) = (stream("complaint-a"), stream("complaint-c"));
    assert_eq!(log.head().await.unwrap(), 0);
    assert_eq!(log.stream_version(&a).await.unwrap(), 0);

    let mut first = event("a1");
    first.causation_id = "cmd-9".into();
    first.schema_version = 3;
    let r1 = log
        .append(
            &a,
            ExpectedVersion::NoStream,
            vec![first.clone(), event("a2")],
        )
        .await
        .unwrap();
    assert_eq!(
        r1,
        AppendResult {
            first_version: 1,
            last_version: 2,
            first_position: 1,
            last_position: 2,
            deduplicated: false
        }
    );
    clock.advance_micros(5);
    let r2 = log
        .append(&c, ExpectedVersion::NoStream, vec![event("c1")])
        .await
        .unwrap();
    assert_eq!((r2.first_version, r2.first_position), (1, 3));
    let r3 = log
        .append(&a, ExpectedVersion::Exact(2), vec![event("a3")])
        .await
        .unwrap();
    assert_eq!(
        (r3.first_version, r3.last_version, r3.first_position),
        (3, 3, 4)
    );

    assert_eq!(log.head().await.unwrap(), 4);
    assert_eq!(log.stream_version(&a).await.unwrap(), 3);
    assert_eq!(log.stream_version(&c).await.unwrap(), 1);

    let all = read_everything(&*log).await;
    assert_eq!(labels(&all), ["a1", "a2", "c1", "a3"]);
    assert_eq!(
        all.iter().map(|e| e.position).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    let e = &all[0];
    assert_eq!(e.id, first.id);
    assert_eq!(e.stream, a);
    assert_eq!(e.version, 1);
    assert_eq!(e.event_type, "test.happened");
    assert_eq!(e.schema_version, 3);
    assert_eq!(e.actor, "user:tester");
    assert_eq!(e.correlation_id, "corr-a1");
    assert_eq!(e.causation_id, "cmd-9");
    assert_eq!(e.recorded_at, T0);
    assert_ne!(e.checksum, 0);
    assert_eq!(
        all[2].recorded_at,
        Timestamp::from_micros(T0.as_micros() + 5)
    );
}

/// `NoStream`, `Exact` and `Any`, and a conflict reports the actual version.
pub async fn expected_version_is_enforced<B: Backend>(b: &B) {
    let (_s, log, _c) = open_new(b).await;
    let s = stream("complaint-ev");
    let conflict = log
        .append(&s, ExpectedVersion::Exact(1), vec![event("x")])
        .await
        .unwrap_err();
    assert!(
        matches!(conflict, Error::WrongExpectedVersion { actual: 0, .. }),
        "{conflict:?}"
    );
    log.append(&s, ExpectedVersion::NoStream, vec![event("1")])
        .await
        .unwrap();
    let again = log
        .append(&s, ExpectedVersion::NoStream, vec![event("x")])
        .await
        .unwrap_err();
    assert!(
        matches!(
            again,
            Error::WrongExpectedVersion {
                actual: 1,
                expected: ExpectedVersion::NoStream,
                ..
            }
        ),
        "{again:?}"
    );
    log.append(&s, ExpectedVersion::Exact(1), vec![event("2")])
        .await
        .unwrap();
    let stale = log
        .append(&s, ExpectedVersion::Exact(1), vec![event("x")])
        .await
        .unwrap_err();
    assert!(
        matches!(
            stale,
            Error::WrongExpectedVersion {
                actual: 2,
                expected: ExpectedVersion::Exact(1),
                ..
            }
        ),
        "{stale:?}"
    );
    log.append(&s, ExpectedVersion::Any, vec![event("3")])
        .await
        .unwrap();
    let events = log
        .read_stream(&s, 1, Direction::Forward, 10)
        .await
        .unwrap();
    assert_eq!(
        labels(&events),
        ["1", "2", "3"],
        "refused appends wrote nothing"
    );
    assert_eq!(log.head().await.unwrap(), 3);
}

/// A refused append writes none of its events.
pub async fn append_is_all_or_nothing<B: Backend>(b: &B) {
    let (_s, log, _c) = open_new(b).await;
    let s = stream("complaint-atomic");
    log.append(&s, ExpectedVersion::NoStream, vec![event("kept")])
        .await
        .unwrap();
    let mut big = event("big");
    big.payload = Bytes::from(vec![0u8; 2 << 20]);
    let err = log
        .append(&s, ExpectedVersion::Exact(1), vec![event("ok"), big])
        .await
        .unwrap_err();
    match err {
        Error::EventTooLarge { size, limit, .. } => assert!(size > limit && limit == 1 << 20),
        other => panic!("expected EventTooLarge, got {other:?}"),
    }
    let mut bad = event("bad");
    bad.event_type = String::new();
    let err = log
        .append(&s, ExpectedVersion::Any, vec![event("ok"), bad])
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidArgument { ref field, .. } if field == "events[1].event_type"),
        "{err:?}"
    );
    let conflict = log
        .append(&s, ExpectedVersion::NoStream, vec![event("a"), event("b")])
        .await
        .unwrap_err();
    assert!(matches!(conflict, Error::WrongExpectedVersion { .. }));
    assert_eq!(log.head().await.unwrap(), 1);
    assert_eq!(labels(&read_everything(&*log).await), ["kept"]);
}

/// Events near the size limit (large enough for a storage engine's large-value path)
/// are stored and read back intact.
pub async fn large_events_round_trip<B: Backend>(b: &B) {
    let (storage, log, clock) = open_new(b).await;
    let s = stream("complaint-large");
    let mut big = event("big");
    big.payload = Bytes::from(
        (0..(1 << 20) - 4096)
            .map(|i| (i % 251) as u8)
            .collect::<Vec<u8>>(),
    );
    log.append(
        &s,
        ExpectedVersion::NoStream,
        vec![big.clone(), event("small")],
    )
    .await
    .unwrap();
    let log = reopen(b, &storage, log, clock).await;
    let back = log
        .read_stream(&s, 1, Direction::Forward, 10)
        .await
        .unwrap();
    assert_eq!(back.len(), 2);
    assert_eq!(back[0].payload, big.payload);
}

/// A retry with the same ids and content returns the original result and writes nothing,
/// even with a stale expected version and after a reopen.
pub async fn idempotent_retry_returns_the_original_result<B: Backend>(b: &B) {
    let (storage, log, clock) = open_new(b).await;
    let s = stream("complaint-idem");
    let batch = vec![event("1"), event("2")];
    let original = log
        .append(&s, ExpectedVersion::NoStream, batch.clone())
        .await
        .unwrap();
    log.append(&s, ExpectedVersion::Exact(2), vec![event("3")])
        .await
        .unwrap();
    let retry = log
        .append(&s, ExpectedVersion::NoStream, batch.clone())
        .await
        .unwrap();
    assert_eq!(
        retry,
        AppendResult {
            deduplicated: true,
            ..original
        }
    );
    assert_eq!(log.head().await.unwrap(), 3);

    let log = reopen(b, &storage, log, clock.clone()).await;
    clock.advance_micros(86_400_000_000 * 400);
    let later = log.append(&s, ExpectedVersion::Any, batch).await.unwrap();
    assert_eq!(
        later,
        AppendResult {
            deduplicated: true,
            ..original
        },
        "idempotency has no time window"
    );
    assert_eq!(log.head().await.unwrap(), 3);
    assert_eq!(labels(&read_everything(&*log).await), ["1", "2", "3"]);
}

/// The same id with other content, or an append that repeats only some ids, is refused.
pub async fn reused_ids_with_other_content_are_refused<B: Backend>(b: &B) {
    let (_s, log, _c) = open_new(b).await;
    let (s, other) = (stream("complaint-x"), stream("complaint-y"));
    let original = event("original");
    log.append(&s, ExpectedVersion::Any, vec![original.clone()])
        .await
        .unwrap();

    let mut changed = original.clone();
    changed.payload = Bytes::from_static(b"changed");
    let err = log
        .append(&s, ExpectedVersion::Any, vec![changed])
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::IdempotencyConflict { event_id, .. } if event_id == original.id),
        "{err:?}"
    );

    let err = log
        .append(&other, ExpectedVersion::Any, vec![original.clone()])
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::IdempotencyConflict { .. }),
        "same id on another stream: {err:?}"
    );

    let fresh = event("fresh");
    let err = log
        .append(
            &s,
            ExpectedVersion::Any,
            vec![original.clone(), fresh.clone()],
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::IdempotencyConflict { .. }),
        "partial repeat: {err:?}"
    );
    let err = log
        .append(&s, ExpectedVersion::Any, vec![fresh, original])
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::IdempotencyConflict { .. }),
        "partial repeat: {err:?}"
    );
    assert_eq!(labels(&read_everything(&*log).await), ["original"]);
}

/// Streams read forward and backward from any version, in pages.
pub async fn streams_read_forward_and_backward<B: Backend>(b: &B) {
    let (_s, log, _c) = open_new(b).await;
    let (s, noise) = (stream("complaint-r"), stream("complaint-noise"));
    for i in 1..=10 {
        log.append(&s, ExpectedVersion::Any, vec![event(&format!("s{i}"))])
            .await
            .unwrap();
        log.append(&noise, ExpectedVersion::Any, vec![event(&format!("n{i}"))])
            .await
            .unwrap();
    }
    let page = log.read_stream(&s, 4, Direction::Forward, 3).await.unwrap();
    assert_eq!(labels(&page), ["s4", "s5", "s6"]);
    assert_eq!(
        page.iter().map(|e| e.version).collect::<Vec<_>>(),
        [4, 5, 6]
    );
    let tail = log
        .read_stream(&s, 9, Direction::Forward, 100)
        .await
        .unwrap();
    assert_eq!(labels(&tail), ["s9", "s10"]);
    let back = log
        .read_stream(&s, 5, Direction::Backward, 2)
        .await
        .unwrap();
    assert_eq!(labels(&back), ["s5", "s4"]);
    let last = log
        .read_stream(&s, Version::MAX, Direction::Backward, 1)
        .await
        .unwrap();
    assert_eq!(labels(&last), ["s10"]);
    assert!(log
        .read_stream(&s, 11, Direction::Forward, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(log
        .read_stream(&stream("complaint-none"), 1, Direction::Forward, 10)
        .await
        .unwrap()
        .is_empty());
}

/// The global log reads in pages, forward and backward.
pub async fn global_log_reads_in_pages<B: Backend>(b: &B) {
    let (_s, log, _c) = open_new(b).await;
    for i in 1..=25 {
        let s = stream(&format!("complaint-{}", i % 4));
        log.append(&s, ExpectedVersion::Any, vec![event(&i.to_string())])
            .await
            .unwrap();
    }
    let all = read_everything(&*log).await;
    assert_eq!(all.len(), 25);
    assert!(all
        .iter()
        .enumerate()
        .all(|(i, e)| e.position == i as Position + 1));
    let page = log.read_all(10, Direction::Forward, 5).await.unwrap();
    assert_eq!(
        page.iter().map(|e| e.position).collect::<Vec<_>>(),
        [10, 11, 12, 13, 14]
    );
    let back = log
        .read_all(Position::MAX, Direction::Backward, 3)
        .await
        .unwrap();
    assert_eq!(
        back.iter().map(|e| e.position).collect::<Vec<_>>(),
        [25, 24, 23]
    );
    let start = log.read_all(2, Direction::Backward, 10).await.unwrap();
    assert_eq!(start.iter().map(|e| e.position).collect::<Vec<_>>(), [2, 1]);
    assert!(log
        .read_all(26, Direction::Forward, 10)
        .await
        .unwrap()
        .is_empty());
}

/// `recorded_at` comes from the injected clock and never goes backwards.
pub async fn recorded_at_is_from_the_clock_and_never_decreases<B: Backend>(b: &B) {
    let (_s, log, clock) = open_new(b).await;
    let s = stream("complaint-time");
    clock.set(Timestamp::from_micros(T0.as_micros() + 1_000));
    log.append(&s, ExpectedVersion::Any, vec![event("1")])
        .await
        .unwrap();
    clock.set(Timestamp::from_micros(T0.as_micros() - 50_000));
    log.append(&s, ExpectedVersion::Any, vec![event("2")])
        .await
        .unwrap();
    clock.set(Timestamp::from_micros(T0.as_micros() + 9_000));
    log.append(&s, ExpectedVersion::Any, vec![event("3")])
        .await
        .unwrap();
    let at: Vec<i64> = read_everything(&*log)
        .await
        .iter()
        .map(|e| e.recorded_at.as_micros() - T0.as_micros())
        .collect();
    assert_eq!(at, [1_000, 1_000, 9_000]);
}

/// Many tasks race on one stream with expected versions: exactly one wins each version,
/// and nothing is lost or duplicated.
pub async fn concurrent_writers_on_one_stream<B: Backend>(b: &B) {
    let (_s, log, _c) = open_new(b).await;
    let s = stream("complaint-race");
    let (tasks, per_task) = (16usize, 25usize);
    let mut handles = Vec::new();
    for t in 0..tasks {
        let (log, s) = (log.clone(), s.clone());
        handles.push(tokio::spawn(async move {
            let mut won = Vec::new();
            let mut conflicts = 0usize;
            while won.len() < per_task {
                let current = log.stream_version(&s).await.unwrap();
                let label = format!("t{t}-{}", won.len());
                match log
                    .append(&s, ExpectedVersion::Exact(current), vec![event(&label)])
                    .await
                {
                    Ok(r) => {
                        assert_eq!(r.first_version, current + 1);
                        won.push((r.first_version, label));
                    }
                    Err(Error::WrongExpectedVersion { actual, .. }) => {
                        assert!(actual > current, "a conflict reports a newer version");
                        conflicts += 1;
                    }
                    Err(e) => panic!("unexpected error {e:?}"),
                }
            }
            (won, conflicts)
        }));
    }
    let mut by_version: HashMap<Version, String> = HashMap::new();
    for h in handles {
        let (won, _) = h.await.unwrap();
        for (version, label) in won {
            assert!(
                by_version.insert(version, label).is_none(),
                "version {version} won twice"
            );
        }
    }
    let total = (tasks * per_task) as Version;
    assert_eq!(by_version.len() as Version, total);
    let stored = log
        .read_stream(&s, 1, Direction::Forward, usize::MAX)
        .await
        .unwrap();
    assert_eq!(stored.len() as Version, total);
    for e in &stored {
        assert_eq!(
            by_version[&e.version],
            String::from_utf8_lossy(&e.payload),
            "version {}",
            e.version
        );
    }
    assert_eq!(log.head().await.unwrap(), total);
}

/// Many tasks on many streams: global positions stay gapless and every event is there once.
pub async fn concurrent_writers_on_many_streams<B: Backend>(b: &B) {
    let (_s, log, _c) = open_new(b).await;
    let mut handles = Vec::new();
    for t in 0..32 {
        let log = log.clone();
        handles.push(tokio::spawn(async move {
            let s = stream(&format!("complaint-{t}"));
            for i in 0..20 {
                let n = 1 + (i % 3);
                let batch = (0..n).map(|k| event(&format!("{t}-{i}-{k}"))).collect();
                log.append(&s, ExpectedVersion::Any, batch).await.unwrap();
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let all = read_everything(&*log).await;
    let expected_total: usize = 32 * (0..20).map(|i| 1 + (i % 3)).sum::<usize>();
    assert_eq!(all.len(), expected_total);
    assert!(all
        .iter()
        .enumerate()
        .all(|(i, e)| e.position == i as Position + 1));
    let unique: BTreeSet<_> = labels(&all).into_iter().collect();
    assert_eq!(unique.len(), expected_total);
    let mut versions: HashMap<&StreamId, Version> = HashMap::new();
    for e in &all {
        let v = versions.entry(&e.stream).or_insert(0);
        assert_eq!(e.version, *v + 1, "stream versions follow global order");
        *v = e.version;
    }
}

/// A subscription delivers the stored events, then new ones, with no gap and no duplicate.
pub async fn subscription_catches_up_then_follows<B: Backend>(b: &B) {
    let (_s, log, _c) = open_new(b).await;
    let s = stream("complaint-sub");
    for i in 1..=700 {
        log.append(&s, ExpectedVersion::Any, vec![event(&i.to_string())])
            .await
            .unwrap();
    }
    let mut sub = log.clone().subscribe(3);
    let writer = {
        let (log, s) = (log.clone(), s.clone());
        tokio::spawn(async move {
            for i in 701..=900 {
                log.append(&s, ExpectedVersion::Any, vec![event(&i.to_string())])
                    .await
                    .unwrap();
            }
        })
    };
    let mut seen = Vec::new();
    while seen.len() < 898 {
        let e = sub
            .next()
            .await
            .expect("subscription ended early")
            .expect("event");
        seen.push(e.position);
    }
    writer.await.unwrap();
    assert_eq!(seen, (3..=900).collect::<Vec<_>>());
    // The subscription waits for more, and delivers it.
    log.append(&s, ExpectedVersion::Any, vec![event("901")])
        .await
        .unwrap();
    let next = sub.next().await.unwrap().unwrap();
    assert_eq!((next.position, &next.payload[..]), (901, &b"901"[..]));
}

/// A subscription resumes from a caller-held checkpoint after the log is reopened, and
/// ends with `Closed` when the log closes.
pub async fn subscription_resumes_across_reopen<B: Backend>(b: &B) {
    let (storage, log, clock) = open_new(b).await;
    let s = stream("complaint-resume");
    for i in 1..=10 {
        log.append(&s, ExpectedVersion::Any, vec![event(&i.to_string())])
            .await
            .unwrap();
    }
    let mut sub = log.clone().subscribe(1);
    let mut checkpoint = 0;
    for _ in 0..6 {
        checkpoint = sub.next().await.unwrap().unwrap().position;
    }
    let waiting = tokio::spawn(async move {
        while let Some(item) = sub.next().await {
            if let Err(e) = item {
                return Some(e);
            }
        }
        None
    });
    log.close().await.unwrap();
    let ended = waiting.await.unwrap();
    assert!(
        matches!(ended, Some(Error::Closed)),
        "a subscription ends with Closed: {ended:?}"
    );
    drop(log);

    let log = b.open(&storage, clock).await;
    log.append(
        &s,
        ExpectedVersion::Exact(10),
        vec![event("11"), event("12")],
    )
    .await
    .unwrap();
    let mut sub = log.clone().subscribe(checkpoint + 1);
    let mut rest = Vec::new();
    for _ in 0..6 {
        rest.push(sub.next().await.unwrap().unwrap());
    }
    assert_eq!(labels(&rest), ["7", "8", "9", "10", "11", "12"]);
}

/// Everything appended is there, identical, after close and reopen; appends continue the
/// sequence; a closed log refuses calls.
pub async fn close_and_reopen_keep_everything<B: Backend>(b: &B) {
    let (storage, log, clock) = open_new(b).await;
    for i in 0..50 {
        let s = stream(&format!("complaint-{}", i % 7));
        log.append(
            &s,
            ExpectedVersion::Any,
            vec![event(&i.to_string()), event(&format!("{i}b"))],
        )
        .await
        .unwrap();
    }
    let before = read_everything(&*log).await;
    log.close().await.unwrap();
    let refused = log
        .append(
            &stream("complaint-0"),
            ExpectedVersion::Any,
            vec![event("late")],
        )
        .await
        .unwrap_err();
    assert!(matches!(refused, Error::Closed), "{refused:?}");
    assert!(matches!(log.head().await, Err(Error::Closed)));
    drop(log);

    let log = b.open(&storage, clock).await;
    assert_eq!(read_everything(&*log).await, before);
    assert_eq!(
        log.stream_version(&stream("complaint-3")).await.unwrap(),
        14
    );
    let r = log
        .append(
            &stream("complaint-3"),
            ExpectedVersion::Exact(14),
            vec![event("after")],
        )
        .await
        .unwrap();
    assert_eq!((r.first_version, r.first_position), (15, 101));
}

/// Every record commits to the one before it (the hash chain), across concurrent appends
/// and a reopen; `read_stored` returns the same records as `read_all`, as stored, and the
/// audit verifier finds the log intact with the head hash of the last record.
pub async fn records_form_a_hash_chain<B: Backend>(b: &B) {
    let (storage, log, clock) = open_new(b).await;
    let mut tasks = Vec::new();
    for w in 0..8 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..10 {
                let s = stream(&format!("complaint-{w}"));
                let events = vec![event(&format!("{w}-{i}")), event(&format!("{w}-{i}b"))];
                log.append(&s, ExpectedVersion::Any, events).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let log = reopen(b, &storage, log, clock).await;
    log.append(
        &stream("complaint-x"),
        ExpectedVersion::Any,
        vec![event("after")],
    )
    .await
    .unwrap();

    let decoded = read_everything(&*log).await;
    let mut stored = Vec::new();
    let mut from = 1;
    loop {
        let page = log.read_stored(from, 37).await.unwrap();
        let Some(last) = page.last() else { break };
        from = last.position + 1;
        stored.extend(page);
    }
    assert_eq!(stored.len(), 161);
    assert_eq!(stored.len(), decoded.len());
    let mut prev = crate::ChainHash::GENESIS;
    for (raw, event) in stored.iter().zip(&decoded) {
        assert_eq!(
            &raw.decode().unwrap(),
            event,
            "read_stored agrees with read_all"
        );
        assert_eq!(event.prev_hash, prev, "position {}", event.position);
        prev = raw.hash();
    }
    let mut verifier = crate::audit::Verifier::new();
    for raw in &stored {
        verifier.check(raw);
    }
    let report = verifier.finish();
    assert_eq!(report.outcome, crate::audit::Outcome::Intact);
    assert_eq!(report.digest.position, 161);
    assert_eq!(report.digest.head, prev);
    assert_eq!(log.read_stored(162, 10).await.unwrap(), Vec::new());
}

/// One step of the property test.
#[derive(Debug, Clone)]
pub enum Op {
    /// Append `count` events to stream `stream`, expecting `expected`.
    Append {
        stream: u8,
        count: u8,
        expected: ExpectedChoice,
    },
    /// Repeat an earlier append (by index, modulo how many succeeded), with `Any`.
    Retry { index: usize },
    /// Close and reopen the log.
    Reopen,
}

/// How a generated append picks its expected version.
#[derive(Debug, Clone, Copy)]
pub enum ExpectedChoice {
    Any,
    NoStream,
    Current,
    Stale,
}

/// Strategy for random interleavings of appends, retries and reopens on a few streams.
pub fn ops() -> impl proptest::strategy::Strategy<Value = Vec<Op>> {
    use proptest::prelude::*;
    let expected = prop_oneof![
        Just(ExpectedChoice::Any),
        Just(ExpectedChoice::NoStream),
        Just(ExpectedChoice::Current),
        Just(ExpectedChoice::Stale),
    ];
    let op = prop_oneof![
        6 => (0u8..4, 1u8..4, expected).prop_map(|(stream, count, expected)| Op::Append { stream, count, expected }),
        2 => any::<usize>().prop_map(|index| Op::Retry { index }),
        1 => Just(Op::Reopen),
    ];
    proptest::collection::vec(op, 1..40)
}

/// Runs `ops` against the backend and a model; every answer and the final log must match.
pub async fn run_against_model<B: Backend>(b: &B, ops: Vec<Op>) {
    let (storage, mut log, clock) = open_new(b).await;
    let mut model: Vec<(StreamId, NewEvent)> = Vec::new();
    let mut versions: HashMap<StreamId, Version> = HashMap::new();
    let mut done: Vec<(StreamId, Vec<NewEvent>, AppendResult)> = Vec::new();
    for (n, op) in ops.into_iter().enumerate() {
        match op {
            Op::Append {
                stream: k,
                count,
                expected,
            } => {
                let s = stream(&format!("complaint-{k}"));
                let current = versions.get(&s).copied().unwrap_or(0);
                let expected = match expected {
                    ExpectedChoice::Any => ExpectedVersion::Any,
                    ExpectedChoice::NoStream => ExpectedVersion::NoStream,
                    ExpectedChoice::Current => ExpectedVersion::Exact(current),
                    ExpectedChoice::Stale => ExpectedVersion::Exact(current + 1),
                };
                let batch: Vec<NewEvent> = (0..count).map(|i| event(&format!("{n}-{i}"))).collect();
                let result = log.append(&s, expected, batch.clone()).await;
                if expected.admits(current) {
                    let r = result.expect("an admitted append succeeds");
                    let first_position = model.len() as Position + 1;
                    assert_eq!(
                        r,
                        AppendResult {
                            first_version: current + 1,
                            last_version: current + count as Version,
                            first_position,
                            last_position: first_position + count as Position - 1,
                            deduplicated: false,
                        }
                    );
                    versions.insert(s.clone(), current + count as Version);
                    model.extend(batch.iter().cloned().map(|e| (s.clone(), e)));
                    done.push((s, batch, r));
                } else {
                    match result {
                        Err(Error::WrongExpectedVersion { actual, .. }) => {
                            assert_eq!(actual, current);
                        }
                        other => panic!("expected a version conflict, got {other:?}"),
                    }
                }
            }
            Op::Retry { index } => {
                if done.is_empty() {
                    continue;
                }
                let (s, batch, original) = done[index % done.len()].clone();
                let r = log
                    .append(&s, ExpectedVersion::Any, batch)
                    .await
                    .expect("retry");
                assert_eq!(
                    r,
                    AppendResult {
                        deduplicated: true,
                        ..original
                    }
                );
            }
            Op::Reopen => {
                log = reopen(b, &storage, log, clock.clone()).await;
            }
        }
        clock.advance_micros(1);
    }
    let check = |stored: Vec<RecordedEvent>| {
        assert_eq!(stored.len(), model.len());
        for (i, (e, (s, new))) in stored.iter().zip(&model).enumerate() {
            assert_eq!(e.position, i as Position + 1);
            assert!(e.same_content(s, new), "position {} differs", e.position);
        }
    };
    check(read_everything(&*log).await);
    let log = reopen(b, &storage, log, clock).await;
    check(read_everything(&*log).await);
    for (s, v) in &versions {
        assert_eq!(log.stream_version(s).await.unwrap(), *v);
    }
    log.close().await.unwrap();
}

/// Generates the conformance tests for a backend. `$backend` is an expression building a
/// [`Backend`]; call it in an integration test file of the backend's crate.
#[macro_export]
macro_rules! conformance_tests {
    ($backend:expr) => {
        $crate::conformance_tests!(@tests $backend;
            append_assigns_versions_positions_and_envelope,
            expected_version_is_enforced,
            append_is_all_or_nothing,
            large_events_round_trip,
            idempotent_retry_returns_the_original_result,
            reused_ids_with_other_content_are_refused,
            streams_read_forward_and_backward,
            global_log_reads_in_pages,
            recorded_at_is_from_the_clock_and_never_decreases,
            concurrent_writers_on_one_stream,
            concurrent_writers_on_many_streams,
            subscription_catches_up_then_follows,
            subscription_resumes_across_reopen,
            close_and_reopen_keep_everything,
            records_form_a_hash_chain,
        );

        mod conformance_property {
            use super::*;
            use $crate::conformance::proptest::prelude::*;

            $crate::conformance::proptest::proptest! {
                #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
                #[test]
                fn random_interleavings_match_the_model(ops in $crate::conformance::ops()) {
                    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
                    rt.block_on($crate::conformance::run_against_model(&$backend, ops));
                }
            }
        }
    };
    (@tests $backend:expr; $($name:ident),* $(,)?) => {
        mod conformance {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    $crate::conformance::$name(&$backend).await;
                }
            )*
        }
    };
}

pub use proptest;
