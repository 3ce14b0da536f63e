//! Operators' tools: salvaging the readable prefix of a damaged log (offline); backups,
//! restores and erasure exports are in [`crate::backup`].

use std::ops::ControlFlow;
use std::path::Path;

use anyhow::{bail, Context as _};
use eventlog::StoredRecord;
use eventlog_sled::OfflineLog;

use crate::audit::log_dir;
use crate::backup;
use crate::cli::AdminCmd;
use crate::connect::Target;

pub async fn run(target: &Target, cmd: AdminCmd) -> anyhow::Result<()> {
    match cmd {
        AdminCmd::Salvage { from, to } => salvage(&from, &to),
        AdminCmd::Backup { out } => backup::backup(target, &out).await,
        AdminCmd::Restore {
            from,
            data_dir,
            public_key,
            erasures_from,
            erasures_file,
            accept_no_later_erasures,
        } => {
            let later = match (erasures_from, erasures_file) {
                (Some(url), _) => backup::Later::Server(target.at(url)),
                (None, Some(file)) => backup::Later::File(file),
                (None, None) if accept_no_later_erasures => backup::Later::NoneAccepted,
                (None, None) => bail!(
                    "say where the erasures made since the backup are: --erasures-from or --erasures-file (or --accept-no-later-erasures)"
                ),
            };
            backup::restore(&from, &data_dir, &public_key, later).await
        }
        AdminCmd::Erase { person_id, reason } => {
            let request = complaints_proto::complaints::v1::ErasePersonalDataRequest {
                person_id,
                request_id: uuid::Uuid::new_v4().to_string(),
                reason,
            };
            let erased = target
                .call(request, async |c, r| c.erase_personal_data(r).await)
                .await?;
            if erased.erased {
                out!("the personal data of {} is erased", erased.person_id);
            } else {
                out!(
                    "{} had no key (nothing of theirs was stored, or already erased); recorded as erased",
                    erased.person_id
                );
            }
            Ok(())
        }
        AdminCmd::Erasures { out, data_dir } => {
            backup::erasures(target, &out, data_dir.as_deref()).await
        }
    }
}

/// Copies `from` aside (so the damaged original is never touched: opening a sled store
/// may rewrite its own torn tail), reads the copy up to the first record that is missing,
/// damaged or not linked to the one before, and writes those records as a new log in
/// `to/log`. Prints where the damage starts.
fn salvage(from: &Path, to: &Path) -> anyhow::Result<()> {
    let source = log_dir(from);
    if !source.join("db").is_file() {
        bail!("{} holds no sled event log", from.display());
    }
    let target = to.join("log");
    if target.join("db").exists() {
        bail!(
            "{} already holds a log: salvage writes a new one",
            to.display()
        );
    }
    let scratch = tempfile::Builder::new()
        .prefix("complaintctl-salvage-")
        .tempdir_in(
            to.parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new(".")),
        )
        .or_else(|_| tempfile::tempdir())
        .context("cannot make a scratch directory")?;
    let copy = scratch.path().join("log");
    copy_dir(&source, &copy).with_context(|| format!("cannot copy {}", source.display()))?;
    let log = OfflineLog::open(&copy)?;
    let mut records: Vec<StoredRecord> = Vec::new();
    let mut damage = None;
    let mut last_hash = eventlog::ChainHash::GENESIS;
    log.scan(1, |record| {
        let expected = records.len() as u64 + 1;
        let stop = |why: String| (expected, why);
        let verdict = match record {
            Err(e) => Err(stop(e.to_string())),
            Ok(r) if r.position != expected => Err(stop(format!(
                "missing: the next stored record is at {}",
                r.position
            ))),
            Ok(r) => match r.decode() {
                Err(e) => Err(stop(e.to_string())),
                Ok(decoded) if decoded.prev_hash != last_hash => Err(stop(
                    "altered: not linked to the record before it (hash chain)".into(),
                )),
                Ok(_) => Ok(r),
            },
        };
        match verdict {
            Ok(r) => {
                last_hash = r.hash();
                records.push(r);
                ControlFlow::Continue(())
            }
            Err(found) => {
                damage = Some(found);
                ControlFlow::Break(())
            }
        }
    })?;
    let stored_last = log.last_position()?;
    let witness = log.witness()?;
    drop(log);
    let count = records.len() as u64;
    let report = eventlog_sled::import::import(&target, records)
        .with_context(|| format!("cannot write the salvaged log in {}", target.display()))?;
    out!(
        "salvaged positions 1 to {count} into {} (head hash {})",
        target.display(),
        report.head_hash.to_hex()
    );
    let acknowledged = match &witness {
        eventlog_sled::witness::Read::Found(head) => Some(head.durable),
        _ => None,
    };
    match damage {
        Some((position, why)) => out!("damage starts at position {position}: {why}"),
        None if count < stored_last || acknowledged.is_some_and(|a| a > count) => out!(
            "damage starts at position {}: missing (the readable store ends at {count})",
            count + 1
        ),
        None => out!("no damage found in the stored records"),
    }
    match witness {
        eventlog_sled::witness::Read::Found(head) if head.durable > count => out!(
            "the witness says positions up to {} were acknowledged: {} are lost from this copy",
            head.durable,
            head.durable - count
        ),
        eventlog_sled::witness::Read::Found(head) => {
            out!(
                "the witness says positions up to {} were acknowledged: all are here",
                head.durable
            );
        }
        eventlog_sled::witness::Read::Missing => {
            out!("no witness: whether records after {count} were acknowledged cannot be told");
        }
        eventlog_sled::witness::Read::Damaged(why) => out!("the witness is damaged: {why}"),
    }
    Ok(())
}

pub(crate) fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}
