//! The fault-injection matrix: on a stopped log directory of about 850 events, damage
//! every file in many ways (a byte flipped at offsets across its whole length, its last
//! pages included; cut at many lengths; a 4 KiB page zeroed; deleted) and open a copy.
//! Each case must either be refused with a position (by the open or by the history check
//! after it), or open to exactly the log of the undamaged copy; it must never open a log shorter than its witness, or one whose content
//! changed. Deterministic (seeded); each case is printed with what happened, and the
//! count of cases at the end.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test
#![forbid(unsafe_code)]

mod common;

use std::path::{Path, PathBuf};

use eventlog::{Direction, Error, EventLog, StoredRecord, StreamId};
use eventlog_sled::{SledConfig, SledEventLog};

/// Every stored record of `log`, in order.
async fn records(log: &SledEventLog) -> Vec<StoredRecord> {
    let mut out = Vec::new();
    let mut from = 1;
    loop {
        let page = log.read_stored(from, 512).await.unwrap();
        let Some(last) = page.last() else {
            return out;
        };
        from = last.position + 1;
        out.extend(page);
    }
}

fn files(dir: &Path, base: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(&path, base, out);
        } else {
            out.push(path.strip_prefix(base).unwrap().to_owned());
        }
    }
}

/// What was done to one file.
#[derive(Debug, Clone)]
enum Damage {
    Flip { offset: u64, mask: u8 },
    Truncate { len: u64 },
    ZeroPage { offset: u64 },
    Delete,
}

impl Damage {
    fn apply(&self, path: &Path) {
        match self {
            Damage::Flip { offset, mask } => {
                let mut bytes = std::fs::read(path).unwrap();
                bytes[*offset as usize] ^= mask;
                std::fs::write(path, bytes).unwrap();
            }
            Damage::Truncate { len } => {
                let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
                file.set_len(*len).unwrap();
            }
            Damage::ZeroPage { offset } => {
                let mut bytes = std::fs::read(path).unwrap();
                let end = (*offset as usize + 4096).min(bytes.len());
                bytes[*offset as usize..end].fill(0);
                std::fs::write(path, bytes).unwrap();
            }
            Damage::Delete => std::fs::remove_file(path).unwrap(),
        }
    }
}

/// A small deterministic generator (splitmix64), so every run tries the same cases.
struct Seeded(u64);

impl Seeded {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// The damages tried on a file of `len` bytes: flips spread over its whole length (each
/// 1/48th of it, and its last 8 KiB byte by byte in steps), cuts, zeroed pages, deletion.
fn damages(len: u64, seed: &mut Seeded) -> Vec<Damage> {
    let mut out = Vec::new();
    if len == 0 {
        out.push(Damage::Delete);
        return out;
    }
    let slices = 48;
    for i in 0..slices {
        let start = len * i / slices;
        let end = (len * (i + 1) / slices).max(start + 1);
        let offset = start + seed.below(end - start);
        let mask = 1 << seed.below(8);
        out.push(Damage::Flip { offset, mask });
    }
    for back in [1u64, 2, 17, 100, 1000, 4096, 8191] {
        if back <= len {
            out.push(Damage::Flip {
                offset: len - back,
                mask: 0x80,
            });
        }
    }
    for i in 0..12 {
        out.push(Damage::Truncate { len: len * i / 12 });
    }
    out.push(Damage::Truncate { len: len - 1 });
    for i in 0..6 {
        out.push(Damage::ZeroPage {
            offset: (len * i / 6) & !4095,
        });
    }
    out.push(Damage::ZeroPage {
        offset: len.saturating_sub(4096) & !4095,
    });
    out.push(Damage::Delete);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_damage_to_every_file_is_refused_with_a_position_or_changes_nothing() {
    let seed = std::env::var("FAULTS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_261_201u64);
    println!("FAULTS_SEED={seed}");
    let dir = tempfile::tempdir().unwrap();
    let pristine = dir.path().join("pristine");
    let log = SledEventLog::open(SledConfig::new(&pristine)).unwrap();
    // About 850 events in many commits, some large enough for sled's blob files.
    for i in 0..850 {
        let stream = StreamId::new(format!("s-{}", i % 37)).unwrap();
        let pad = if i % 200 == 7 { 70_000 } else { 200 };
        common::append_event(&log, &stream, i, pad).await;
    }
    let expected = records(&log).await;
    let head = log.head().await.unwrap();
    assert_eq!(head, 850);
    log.close().await.unwrap();
    drop(log);

    let mut names = Vec::new();
    files(&pristine, &pristine, &mut names);
    names.sort();
    assert!(
        names.iter().any(|n| n.as_os_str() == "witness"),
        "{names:?}"
    );
    let mut seeded = Seeded(seed);
    let (mut cases, mut refused, mut unchanged) = (0u64, 0u64, 0u64);
    for name in &names {
        let len = std::fs::metadata(pristine.join(name)).unwrap().len();
        for damage in damages(len, &mut seeded) {
            cases += 1;
            let copy = dir.path().join(format!("case-{cases}"));
            common::copy_dir(&pristine, &copy);
            damage.apply(&copy.join(name));
            // Opened the default way: damage the open does not see (records the index
            // checkpoint covers) must be found by the history check that follows it.
            let opened = match SledEventLog::open(SledConfig::new(&copy)) {
                Ok(log) => match log.history_checked().await {
                    Ok(()) => Ok(log),
                    Err(found) => {
                        log.close().await.ok();
                        Err(found)
                    }
                },
                Err(e) => Err(e),
            };
            let outcome = match opened {
                Err(Error::Corruption { position, reason }) => {
                    refused += 1;
                    assert!(position >= 1 && position <= head + 1, "{position}");
                    format!("refused at position {position}: {reason}")
                }
                Err(other) => panic!(
                    "case {cases}: {} {damage:?}: refused without a position: {other}",
                    name.display()
                ),
                Ok(log) => {
                    let got = records(&log).await;
                    let got_head = log.head().await.unwrap();
                    log.close().await.unwrap();
                    assert_eq!(
                        got_head, head,
                        "case {cases}: {} {damage:?}: opened a log of {got_head} records, not {head}",
                        name.display()
                    );
                    assert!(
                        got.len() == expected.len()
                            && got.iter().zip(&expected).all(|(a, b)| a.bytes == b.bytes),
                        "case {cases}: {} {damage:?}: opened a log whose content changed",
                        name.display()
                    );
                    unchanged += 1;
                    "opened, every record as before".to_owned()
                }
            };
            println!("case {cases}: {} {damage:?}: {outcome}", name.display());
            std::fs::remove_dir_all(&copy).unwrap();
        }
    }
    println!(
        "fault matrix: {cases} cases over {} files: {refused} refused with a position, {unchanged} opened unchanged",
        names.len()
    );
    assert!(cases >= 200, "{cases}");
    assert!(refused > 0 && unchanged > 0);
    // Reading the log's history after all that: the pristine copy is untouched.
    let log = SledEventLog::open(SledConfig::new(&pristine)).unwrap();
    assert_eq!(
        log.read_all(1, Direction::Forward, 1).await.unwrap().len(),
        1
    );
    log.close().await.unwrap();
}

#[tokio::test]
async fn a_damaged_log_opens_read_only_serving_what_is_before_the_damage_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let log = SledEventLog::open(SledConfig::new(&path)).unwrap();
    for i in 0..850 {
        let stream = StreamId::new(format!("s-{}", i % 37)).unwrap();
        common::append_event(&log, &stream, i, 200).await;
    }
    let expected = records(&log).await;
    log.close().await.unwrap();
    drop(log);
    let db = path.join("db");
    let len = std::fs::metadata(&db).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&db)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let refused = SledEventLog::open(SledConfig::new(&path)).err().unwrap();
    let Error::Corruption { position, .. } = refused else {
        panic!("{refused}");
    };
    let witness = std::fs::read(path.join("witness")).unwrap();

    let mut config = SledConfig::new(&path);
    config.read_only = true;
    let log = SledEventLog::open(config).unwrap();
    let head = log.head().await.unwrap();
    assert_eq!(head, position - 1, "serves up to the damage");
    assert!(head > 0 && head < 850);
    match log.damage() {
        Some(Error::Corruption {
            position: p,
            reason,
        }) => {
            assert_eq!(*p, position);
            assert!(reason.starts_with("missing"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    let got = records(&log).await;
    assert_eq!(got.len() as u64, head);
    assert!(got.iter().zip(&expected).all(|(a, b)| a.bytes == b.bytes));
    let stream = StreamId::new("s-1").unwrap();
    let refused = common::try_append(&log, &stream).await.unwrap_err();
    assert!(matches!(refused, Error::ReadOnly(_)), "{refused}");
    log.close().await.unwrap();
    drop(log);
    assert_eq!(
        std::fs::read(path.join("witness")).unwrap(),
        witness,
        "the witness was rewritten"
    );
    // Still refused for writing afterwards: read-only changed nothing.
    assert!(SledEventLog::open(SledConfig::new(&path)).is_err());
}
