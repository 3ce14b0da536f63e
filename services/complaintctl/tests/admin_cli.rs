//! `complaintctl admin salvage` with the real binary: a log cut short by damage is salvaged
//! up to where the damage starts, into a new directory that opens; the damaged original is
//! left exactly as it was.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

use std::path::Path;
use std::process::Command;

use bytes::Bytes;
use eventlog::{EventLog, ExpectedVersion, NewEvent, StreamId};
use eventlog_sled::{SledConfig, SledEventLog};

fn tree_bytes(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(tree_bytes(&path));
        } else {
            out.push((path.display().to_string(), std::fs::read(&path).unwrap()));
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn salvage_copies_the_readable_prefix_and_never_touches_the_original() {
    let dir = tempfile::tempdir().unwrap();
    let damaged = dir.path().join("damaged");
    let log = SledEventLog::open(SledConfig::new(damaged.join("log"))).unwrap();
    for i in 0..850 {
        let stream = StreamId::new(format!("s-{}", i % 37)).unwrap();
        let payload = Bytes::from(format!("event {i} {}", "x".repeat(200)));
        log.append(
            &stream,
            ExpectedVersion::Any,
            vec![NewEvent::new("test.happened", "user:t", payload)],
        )
        .await
        .unwrap();
    }
    let original = log.read_stored(1, 1000).await.unwrap();
    log.close().await.unwrap();
    drop(log);
    // Damage: the data file cut in half (sled then recovers only a prefix).
    let db = damaged.join("log").join("db");
    let len = std::fs::metadata(&db).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&db)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    // The server would refuse it, naming where the damage starts.
    let refused = SledEventLog::open(SledConfig::new(damaged.join("log")))
        .err()
        .unwrap()
        .to_string();
    assert!(refused.contains("missing"), "{refused}");
    let before = tree_bytes(&damaged);

    // Offline verification of a copy, without any held digest: the copy's witness tells
    // the cut-off tail from a shorter, intact log.
    let copy = dir.path().join("copy");
    std::fs::create_dir_all(copy.join("log")).unwrap();
    for (name, bytes) in tree_bytes(&damaged.join("log")) {
        let name = Path::new(&name).file_name().unwrap().to_owned();
        std::fs::write(copy.join("log").join(name), bytes).unwrap();
    }
    let verify = Command::new(env!("CARGO_BIN_EXE_complaintctl"))
        .args(["audit", "verify", "--data-dir"])
        .arg(&copy)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&verify.stdout).to_string()
        + &String::from_utf8_lossy(&verify.stderr);
    assert!(!verify.status.success(), "{said}");
    assert!(said.contains("BROKEN: missing at position"), "{said}");
    assert!(!said.starts_with("intact"), "{said}");
    assert!(
        said.contains("witness: acknowledged up to position 850"),
        "{said}"
    );

    let salvaged = dir.path().join("salvaged");
    let run = Command::new(env!("CARGO_BIN_EXE_complaintctl"))
        .args(["admin", "salvage", "--from"])
        .arg(&damaged)
        .arg("--to")
        .arg(&salvaged)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let count: u64 = stdout
        .split_whitespace()
        .nth(4)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(count > 0 && count < 850, "{stdout}");
    assert!(
        stdout.contains(&format!("damage starts at position {}", count + 1)),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "positions up to 850 were acknowledged: {} are lost",
            850 - count
        )),
        "{stdout}"
    );
    assert_eq!(
        tree_bytes(&damaged),
        before,
        "the damaged original was modified"
    );

    // The salvaged log opens (it has its own witness) and holds exactly the prefix.
    let log = SledEventLog::open(SledConfig::new(salvaged.join("log"))).unwrap();
    assert_eq!(log.head().await.unwrap(), count);
    let got = log.read_stored(1, 1000).await.unwrap();
    assert_eq!(got.len() as u64, count);
    assert!(got.iter().zip(&original).all(|(a, b)| a.bytes == b.bytes));
    log.close().await.unwrap();

    // Salvaging onto a log that exists is refused.
    let again = Command::new(env!("CARGO_BIN_EXE_complaintctl"))
        .args(["admin", "salvage", "--from"])
        .arg(&damaged)
        .arg("--to")
        .arg(&salvaged)
        .output()
        .unwrap();
    assert!(!again.status.success());
}
