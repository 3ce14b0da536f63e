//! The fault matrix at the level of a whole data directory: every file of a stopped
//! server's data (the log, its witness, the key store, the projections' snapshot) is
//! damaged in many ways (seeded), and complaintd started on the copy. Each case must be
//! refused — naming a position when the log itself is damaged — or start and answer
//! exactly as on the undamaged copy (the snapshot is derived data: damage to it means a
//! rebuild, never a different answer). Each case is printed, and the count at the end.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use std::path::{Path, PathBuf};

use common::{copy_dir, manual_clock, req, TestServer, NOW};
use complaints_proto::complaints::v1 as api;
use complaints_proto::complaints::v1::complaint_service_client::ComplaintServiceClient;
use uuid::Uuid;

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

fn registration(i: usize) -> api::RegisterComplaintRequest {
    api::RegisterComplaintRequest {
        request_id: Uuid::from_u128(0x1000 + i as u128).to_string(),
        channel: api::Channel::Email as i32,
        complainant: Some(api::Complainant {
            person_id: format!("person-{i}"),
            name: format!("Person {i}"),
            contact: format!("p{i}@example.org"),
            id_number: String::new(),
        }),
        unit: "cards".into(),
        product: "card".into(),
        category: "fees".into(),
        claim: "refund".into(),
        facts: format!("charged twice ({i})"),
        receive_time: Some(prost_types::Timestamp {
            seconds: NOW - 3600,
            nanos: 0,
        }),
        regime: "UK-FCA-DISP".into(),
        region: "GB-ENG".into(),
        ..Default::default()
    }
}

/// What callers see: every complaint with its personal data (as a handler), the list and
/// the board.
async fn views(c: &mut ComplaintServiceClient<tonic::transport::Channel>) -> String {
    let list = c
        .list_complaints(req(
            api::ListComplaintsRequest {
                page_size: 500,
                ..Default::default()
            },
            "operations",
        ))
        .await
        .unwrap()
        .into_inner();
    let mut out = format!("{list:?}\n");
    for item in &list.complaints {
        let complaint = c
            .get_complaint(req(
                api::GetComplaintRequest {
                    name: item.name.clone(),
                },
                "handler",
            ))
            .await
            .unwrap()
            .into_inner();
        out.push_str(&format!("{complaint:?}\n"));
    }
    let board = c
        .get_board(req(api::GetBoardRequest::default(), "operations"))
        .await
        .unwrap()
        .into_inner();
    out.push_str(&format!("{board:?}\n"));
    out
}

#[derive(Debug, Clone)]
enum Damage {
    Flip(u64),
    Truncate(u64),
    ZeroPage(u64),
    Delete,
}

fn apply(damage: &Damage, path: &Path) {
    match damage {
        Damage::Flip(offset) => {
            let mut bytes = std::fs::read(path).unwrap();
            bytes[*offset as usize] ^= 0x10;
            std::fs::write(path, bytes).unwrap();
        }
        Damage::Truncate(len) => std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .unwrap()
            .set_len(*len)
            .unwrap(),
        Damage::ZeroPage(offset) => {
            let mut bytes = std::fs::read(path).unwrap();
            let end = (*offset as usize + 4096).min(bytes.len());
            bytes[*offset as usize..end].fill(0);
            std::fs::write(path, bytes).unwrap();
        }
        Damage::Delete => std::fs::remove_file(path).unwrap(),
    }
}

fn damages(len: u64) -> Vec<Damage> {
    let mut out = Vec::new();
    if len > 0 {
        for i in 0..10 {
            out.push(Damage::Flip(len * i / 10 + (len / 10) / 2));
        }
        out.push(Damage::Flip(len - 1));
        out.push(Damage::Truncate(0));
        out.push(Damage::Truncate(len / 2));
        out.push(Damage::Truncate(len - 1));
        out.push(Damage::ZeroPage(0));
        out.push(Damage::ZeroPage(len.saturating_sub(4096) & !4095));
    }
    out.push(Damage::Delete);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_damage_to_a_data_directory_is_refused_or_changes_no_answer() {
    let server = TestServer::start(|_| {}).await;
    let mut c = server.complaints();
    for i in 0..40 {
        c.register_complaint(req(registration(i), "intake"))
            .await
            .unwrap();
    }
    let expected = views(&mut c).await;
    let stopped = server.shutdown().await;
    let pristine = stopped.data_dir();
    let mut names = Vec::new();
    files(&pristine, &pristine, &mut names);
    names.sort();
    assert!(
        names.iter().any(|n| n.starts_with("projections")),
        "{names:?}"
    );
    let scratch = tempfile::tempdir().unwrap();
    let (mut cases, mut refused, mut same) = (0, 0, 0);
    for name in &names {
        let len = std::fs::metadata(pristine.join(name)).unwrap().len();
        for damage in damages(len) {
            cases += 1;
            let data = scratch.path().join(format!("case-{cases}"));
            copy_dir(&pristine, &data);
            apply(&damage, &data.join(name));
            let config = complaintd::config::Config {
                listen: "127.0.0.1:0".parse().unwrap(),
                data_dir: data.clone(),
                ..complaintd::config::Config::default()
            };
            let outcome = match complaintd::server::start_with_clock(&config, manual_clock(NOW))
                .await
            {
                Err(e) => {
                    let e = format!("{e:#}");
                    let in_log = name.starts_with("log");
                    assert!(
                        !in_log || e.contains("position"),
                        "case {cases}: {} {damage:?}: refused without a position: {e}",
                        name.display()
                    );
                    assert!(
                        !name.starts_with("projections"),
                        "case {cases}: {} {damage:?}: a damaged snapshot must mean a rebuild, not a refusal: {e}",
                        name.display()
                    );
                    refused += 1;
                    format!("refused: {e}")
                }
                Ok(running) => {
                    let channel =
                        tonic::transport::Endpoint::from_shared(format!("http://{}", running.addr))
                            .unwrap()
                            .connect()
                            .await
                            .unwrap();
                    let got = views(&mut ComplaintServiceClient::new(channel)).await;
                    running.shutdown().await.unwrap();
                    assert!(
                        got == expected,
                        "case {cases}: {} {damage:?}: started and answered differently",
                        name.display()
                    );
                    same += 1;
                    "started, every answer as before".to_owned()
                }
            };
            println!("case {cases}: {} {damage:?}: {outcome}", name.display());
            std::fs::remove_dir_all(&data).unwrap();
        }
    }
    println!(
        "data directory fault matrix: {cases} cases over {} files: {refused} refused, {same} started with the same answers",
        names.len()
    );
    assert!(
        cases >= 60 && refused > 0 && same > 0,
        "{cases} {refused} {same}"
    );
}
