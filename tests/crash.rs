//! Crash test of the event logs: a writer process appending under load is killed with
//! SIGKILL at random moments, again and again on the same directory. After each kill the
//! log must open cleanly (every record checked), hold every acknowledged event intact at
//! its acknowledged stream version and global position, and keep positions gapless. On
//! sled the directory holds the log; on JetStream the writer's local index of the log,
//! which must open again however the kill left it.
//!
//! The seed is printed; set CRASH_SEED to replay a failing run.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use complaints_testkit::ChildGuard;
use eventlog::{Direction, EventLog, StreamId};
use eventlog_sled::{SledConfig, SledEventLog};
use rand::{Rng, SeedableRng};
use uuid::Uuid;

const ROUNDS: usize = 12;
const WRITERS: &str = "16";

#[derive(Debug, Clone, PartialEq, Eq)]
struct Acked {
    stream: String,
    version: u64,
    position: u64,
}

fn parse(line: &str, acked: &mut HashMap<Uuid, Acked>) {
    let mut parts = line.split(' ');
    assert_eq!(parts.next(), Some("ack"), "unexpected line {line:?}");
    let stream = parts.next().expect("stream").to_owned();
    let version: u64 = parts
        .next()
        .expect("version")
        .parse()
        .expect("version number");
    let position: u64 = parts
        .next()
        .expect("position")
        .parse()
        .expect("position number");
    for (i, id) in parts.enumerate() {
        let id = Uuid::parse_str(id).expect("event id");
        let at = Acked {
            stream: stream.clone(),
            version: version + i as u64,
            position: position + i as u64,
        };
        assert!(
            acked.insert(id, at).is_none(),
            "event {id} acknowledged twice"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_events_survive_sigkill() {
    let seed: u64 = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    println!("CRASH_SEED={seed}");
    let dir = tempfile_dir();
    let path = dir.join("log");
    let reopen = || {
        let path = path.clone();
        async move {
            let log = SledEventLog::open(SledConfig::new(&path))
                .unwrap_or_else(|e| panic!("seed {seed}: reopen failed: {e}"));
            Box::new(log) as Box<dyn EventLog>
        }
    };
    let acked = rounds(&path, &[], ROUNDS, seed, reopen).await;
    assert!(acked > 1000, "the writer made real progress ({acked} acks)");
    std::fs::remove_dir_all(&dir).ok();
}

/// Checks that `log` holds every `acked` event where it was acknowledged, gapless, each
/// stream's versions in order; returns its head.
async fn check(log: &dyn EventLog, acked: &HashMap<Uuid, Acked>, round: &str) -> u64 {
    let head = log.head().await.unwrap();
    let mut by_position = HashMap::with_capacity(head as usize);
    let mut from = 1;
    loop {
        let page = log.read_all(from, Direction::Forward, 4096).await.unwrap();
        let Some(last) = page.last() else { break };
        from = last.position + 1;
        for e in page {
            by_position.insert(e.position, e);
        }
    }
    assert_eq!(
        by_position.len() as u64,
        head,
        "positions are gapless up to the head"
    );
    for (id, at) in acked {
        let e = by_position.get(&at.position).unwrap_or_else(|| {
            panic!(
                "{round}: acknowledged event {id} at {} is lost (head {head})",
                at.position
            )
        });
        assert_eq!(
            &e.id, id,
            "{round}: position {} holds another event",
            at.position
        );
        assert_eq!(
            (e.stream.as_str(), e.version),
            (at.stream.as_str(), at.version)
        );
    }
    // Stream versions are gapless too.
    for w in 0..16 {
        let s = StreamId::new(format!("complaint-{w}")).unwrap();
        let events = log
            .read_stream(&s, 1, Direction::Forward, usize::MAX)
            .await
            .unwrap();
        assert!(events
            .iter()
            .enumerate()
            .all(|(i, e)| e.version == i as u64 + 1));
    }
    head
}

/// Runs `rounds` of the writer (`extra` arguments after the directory and writer count),
/// killing it at random moments; after each, `reopen` opens the log for [`check`].
/// Returns the events acknowledged in all.
async fn rounds<F, Fut>(
    dir: &std::path::Path,
    extra: &[&str],
    rounds: usize,
    seed: u64,
    mut reopen: F,
) -> usize
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Box<dyn EventLog>>,
{
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut acked: HashMap<Uuid, Acked> = HashMap::new();
    let mut kills_under_load = 0;
    for round in 0..rounds {
        // Killed and reaped on drop too, should an assertion below fail mid-round.
        let mut child = ChildGuard::new(
            Command::new(env!("CARGO_BIN_EXE_crash-writer"))
                .arg(dir)
                .arg(WRITERS)
                .args(extra)
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("start crash-writer"),
        );
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        // Kill at a random moment: sometimes while it opens, mostly after a random number
        // of acknowledgements, while the other writers are mid-append.
        let kill_after: usize = if round % 6 == 0 {
            0
        } else {
            rng.random_range(1..3000)
        };
        let mut seen = 0;
        if kill_after > 0 {
            let ready = lines
                .next()
                .expect("writer exited before it was ready")
                .expect("read");
            assert_eq!(ready, "ready");
            while seen < kill_after {
                let line = lines.next().expect("writer exited early").expect("read");
                parse(&line, &mut acked);
                seen += 1;
            }
            kills_under_load += 1;
        }
        child.kill().expect("SIGKILL");
        let status = child.wait().expect("wait");
        assert!(!status.success(), "the writer must die by the signal");
        // Lines already in the pipe were acknowledged before the kill: count them too.
        for line in lines {
            let line = line.expect("read");
            if line != "ready" {
                parse(&line, &mut acked);
            }
        }
        let log = reopen().await;
        let head = check(&*log, &acked, &format!("round {round} (seed {seed})")).await;
        log.close().await.unwrap();
        println!(
            "round {round}: killed after {seen} acks, {} acknowledged in all, head {head}",
            acked.len()
        );
    }
    assert!(kills_under_load >= rounds / 2);
    acked.len()
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "crash-test-{}-{}",
        std::process::id(),
        Uuid::new_v4()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jetstream_index_survives_sigkill() {
    let seed: u64 = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    println!("CRASH_SEED={seed}");
    let nats = complaints_nats::testing::NatsServer::start();
    let url = nats.url();
    let dir = tempfile_dir();
    let index = dir.join("index");
    // The head the last reopen left the index at (closed cleanly, so on disk).
    let indexed = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let reopen = || {
        let (url, index) = (url.clone(), index.clone());
        let indexed = indexed.clone();
        async move {
            let mut config = eventlog_jetstream::JetStreamConfig::new(url, "EVENTLOG");
            config.checkpoint = Some(index);
            let log = eventlog_jetstream::JetStreamEventLog::open(
                config,
                std::sync::Arc::new(eventlog::SystemClock),
            )
            .await
            .unwrap_or_else(|e| panic!("seed {seed}: reopen with the index left failed: {e}"));
            // The killed writer started from that index: whatever the kill left of it
            // (sled writes it out every second) reaches at least as far, and is used, not
            // set aside.
            let before = indexed.load(std::sync::atomic::Ordering::SeqCst);
            if before > 0 {
                let from = log.opened_from_checkpoint();
                assert!(
                    from.is_some_and(|p| p >= before),
                    "seed {seed}: the index the killed writer left was not used ({from:?}, {before} before)"
                );
            }
            indexed.store(
                log.head().await.unwrap(),
                std::sync::atomic::Ordering::SeqCst,
            );
            Box::new(log) as Box<dyn EventLog>
        }
    };
    let acked = rounds(&index, &[url.as_str()], 6, seed, reopen).await;
    assert!(acked > 500, "the writer made real progress ({acked} acks)");
    std::fs::remove_dir_all(&dir).ok();
}
