//! `complaintctl audit ...`: what auditors run. Online over gRPC (the auditor role), or
//! offline on a copy of a data directory (`--data-dir`), with no server at all.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use complaints_proto::complaints::audit::v1 as audit;
use eventlog::audit::{HeldDigest, Outcome, Signer, Verifier};
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::{AsOfCmd, AuditCmd};
use crate::connect::Target;
use crate::display::timestamp;
use crate::parse::{complaint_name, complaint_stream, time};

/// A progress bar with rate and ETA on standard error (hidden when it is not a terminal).
pub(crate) fn bar(total: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} events ({per_sec}, ETA {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(what.to_owned());
    bar
}

/// The log directory inside a data directory (or the directory itself if it is one).
pub(crate) fn log_dir(data_dir: &Path) -> PathBuf {
    let inner = data_dir.join("log");
    if inner.join("db").is_file() {
        inner
    } else {
        data_dir.to_path_buf()
    }
}

fn output(out: Option<&Path>) -> anyhow::Result<Box<dyn Write>> {
    Ok(match out {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    })
}

pub async fn run(target: &Target, cmd: AuditCmd) -> anyhow::Result<()> {
    match cmd {
        AuditCmd::Export {
            complaint,
            types,
            from_position,
            from_time,
            out,
            data_dir,
        } => {
            let mut out = output(out.as_deref())?;
            let written = match data_dir {
                Some(dir) => {
                    if from_time.is_some() {
                        bail!("--from-time is for online exports; use --from-position offline");
                    }
                    export_offline(&dir, complaint, types, from_position.unwrap_or(1), &mut out)?
                }
                None => {
                    let request = audit::StreamEventsRequest {
                        from_position: from_position.unwrap_or(0),
                        from_time: from_time.as_deref().map(time).transpose()?,
                        complaint: complaint.as_deref().map(complaint_name).unwrap_or_default(),
                        event_types: types,
                        format: audit::EventFormat::Json as i32,
                        follow: false,
                    };
                    export_online(target, request, &mut out).await?
                }
            };
            out.flush()?;
            eprintln!("exported {written} events");
        }
        AuditCmd::Verify {
            digest,
            public_key,
            after_digest,
            data_dir,
        } => {
            let after = after_digest.as_deref().map(read).transpose()?;
            let digests = digest
                .iter()
                .map(|p| read(p))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let keys = public_key
                .iter()
                .map(|p| read(p))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let (intact, summary) = match data_dir {
                Some(dir) => verify_offline(&dir, &digests, &keys, after.as_deref())?,
                None => verify_online(target, digests, keys, after.unwrap_or_default()).await?,
            };
            out!("{summary}");
            if !intact {
                bail!("the log is not intact");
            }
        }
        AuditCmd::Digest { out } => {
            let digest = target
                .audit()
                .await?
                .get_digest(target.request(audit::GetDigestRequest {})?)
                .await?
                .into_inner();
            match out {
                Some(path) => {
                    std::fs::write(&path, format!("{}\n", digest.json))
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    eprintln!(
                        "digest of position {} ({}) saved to {}",
                        digest.position,
                        if digest.signed {
                            "signed"
                        } else {
                            "not signed"
                        },
                        path.display()
                    );
                }
                None => out!("{}", digest.json),
            }
        }
        AuditCmd::Timeline { complaint } => timeline(target, &complaint_name(&complaint)).await?,
        AuditCmd::AsOf(what) => as_of(target, what).await?,
        AuditCmd::Backdated {
            min_delay_hours,
            unit,
        } => backdated(target, min_delay_hours, unit).await?,
        AuditCmd::Keygen { private, public } => {
            let signer = Signer::generate();
            write_new(&private, &signer.to_pem())?;
            write_new(&public, &signer.public_key_pem())?;
            eprintln!(
                "private key in {} (set audit_signing_key to it), public key in {}",
                private.display(),
                public.display()
            );
        }
    }
    Ok(())
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Writes a file that must not exist yet (never overwrite a key).
fn write_new(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create {} (it must not exist)", path.display()))?;
    file.write_all(text.as_bytes())?;
    Ok(())
}

async fn export_online(
    target: &Target,
    request: audit::StreamEventsRequest,
    out: &mut dyn Write,
) -> anyhow::Result<u64> {
    let mut client = target.audit().await?;
    let head = client
        .get_digest(target.request(audit::GetDigestRequest {})?)
        .await?
        .into_inner()
        .position;
    let bar = bar(head, "exporting");
    let mut stream = client
        .stream_events(target.request(request)?)
        .await?
        .into_inner();
    let mut written = 0;
    while let Some(event) = stream.message().await? {
        let Some(audit::audit_event::Body::Json(json)) = event.body else {
            bail!("the server sent an event without its JSON form");
        };
        writeln!(out, "{json}")?;
        written += 1;
        bar.set_position(event.position.min(head));
    }
    bar.finish_and_clear();
    Ok(written)
}

fn export_offline(
    dir: &Path,
    complaint: Option<String>,
    types: Vec<String>,
    from: u64,
    out: &mut dyn Write,
) -> anyhow::Result<u64> {
    let log = eventlog_sled::OfflineLog::open(&log_dir(dir))?;
    let bar = bar(log.last_position()?, "exporting");
    let stream = complaint.as_deref().map(complaint_stream);
    let mut written = 0u64;
    let mut failure = None;
    // Rendered in batches on every core (rendering is most of the time), written in order.
    const BATCH: usize = 4096;
    let mut batch = Vec::with_capacity(BATCH);
    // A failed write ends the export: nothing is written twice.
    let write_failed = std::cell::Cell::new(false);
    let mut flush = |batch: &mut Vec<_>, out: &mut dyn Write| -> anyhow::Result<()> {
        let batch = std::mem::take(batch);
        for line in complaints_events::export::lines(&batch) {
            let wrote = out
                .write_all(line.as_bytes())
                .and_then(|()| out.write_all(b"\n"));
            if let Err(e) = wrote {
                write_failed.set(true);
                return Err(e.into());
            }
            written += 1;
        }
        Ok(())
    };
    let scanned = log.scan(from, |record| {
        let step = (|| -> anyhow::Result<()> {
            let stored = record?;
            let event = stored.decode()?;
            bar.set_position(event.position);
            if stream.as_ref().is_some_and(|s| event.stream.as_str() != s)
                || (!types.is_empty() && !types.contains(&event.event_type))
            {
                return Ok(());
            }
            let hash = stored.hash();
            batch.push((event, hash));
            if batch.len() == BATCH {
                flush(&mut batch, &mut *out)?;
            }
            Ok(())
        })();
        match step {
            Ok(()) => std::ops::ControlFlow::Continue(()),
            Err(e) => {
                failure = Some(e);
                std::ops::ControlFlow::Break(())
            }
        }
    });
    // What was read before a failure (a damaged record, or the store failing) is written
    // too, in order: the export stops at the damage. Not after a failed write.
    if !write_failed.get() {
        if let Err(e) = flush(&mut batch, out) {
            failure.get_or_insert(e);
        }
    }
    if let Err(e) = scanned {
        failure.get_or_insert(e.into());
    }
    bar.finish_and_clear();
    match failure {
        Some(e) => Err(e.context(
            "the export stopped; run `audit verify --data-dir` to see where the log breaks",
        )),
        None => Ok(written),
    }
}

fn verify_offline(
    dir: &Path,
    digests: &[String],
    keys: &[String],
    after: Option<&str>,
) -> anyhow::Result<(bool, String)> {
    let mut trusted = Vec::new();
    for key in keys {
        trusted.push(eventlog::audit::public_key_from_text(key).map_err(anyhow::Error::msg)?);
    }
    let start = match after {
        Some(text) => HeldDigest::from_json(text)
            .map_err(anyhow::Error::msg)?
            .digest(),
        None => eventlog::audit::Digest::EMPTY,
    };
    let mut verifier = Verifier::starting_after(start).trusting(trusted);
    for digest in digests {
        verifier = verifier.holding(HeldDigest::from_json(digest).map_err(anyhow::Error::msg)?);
    }
    let log = eventlog_sled::OfflineLog::open(&log_dir(dir))?;
    // The witness of the durable head, when the copy has one, is a digest the log must
    // reach: without it a cut-off tail looks like a shorter, intact log.
    use eventlog_sled::witness::Read as Witness;
    let (witnessed, note) = match log.witness()? {
        Witness::Found(head) if head.durable > 0 => {
            verifier = verifier.holding(HeldDigest::Plain(eventlog::audit::Digest {
                position: head.durable,
                head: head.durable_hash,
            }));
            (true, format!("; the copy's witness: acknowledged up to position {}, checked", head.durable))
        }
        Witness::Found(_) => (true, String::new()),
        Witness::Missing => (
            true,
            "; this copy has no witness of its durable head: a cut-off tail cannot be ruled out without a held digest (--digest)".to_owned(),
        ),
        Witness::Damaged(why) => (
            false,
            format!("; the copy's witness is damaged ({why}): a cut-off tail cannot be ruled out without a held digest (--digest)"),
        ),
    };
    let bar = bar(log.last_position()?, "verifying");
    let report = log.verify(verifier, |position| bar.set_position(position))?;
    bar.finish_and_clear();
    Ok((
        report.outcome == Outcome::Intact && witnessed,
        format!("{report}{note}"),
    ))
}

async fn verify_online(
    target: &Target,
    held_digests: Vec<String>,
    trusted_keys: Vec<String>,
    start_after: String,
) -> anyhow::Result<(bool, String)> {
    let mut stream = target
        .audit()
        .await?
        .verify(target.request(audit::VerifyRequest {
            held_digests,
            trusted_keys,
            start_after,
        })?)
        .await?
        .into_inner();
    let bar = bar(0, "verifying");
    while let Some(progress) = stream.message().await? {
        bar.set_length(progress.head);
        bar.set_position(progress.position);
        if let Some(report) = progress.report {
            bar.finish_and_clear();
            return Ok((report.intact, report.summary));
        }
    }
    bail!("the server ended the verification without a report")
}

async fn timeline(target: &Target, name: &str) -> anyhow::Result<()> {
    let request = audit::StreamEventsRequest {
        complaint: name.to_owned(),
        format: audit::EventFormat::Json as i32,
        ..Default::default()
    };
    let mut stream = target
        .audit()
        .await?
        .stream_events(target.request(request)?)
        .await?
        .into_inner();
    out!("{name}");
    let mut any = false;
    while let Some(event) = stream.message().await? {
        any = true;
        let Some(audit::audit_event::Body::Json(json)) = event.body else {
            continue;
        };
        let json: serde_json::Value = serde_json::from_str(&json)?;
        let at = json["recorded_at"].as_str().unwrap_or("?");
        let what = event.event_type.trim_start_matches("complaint.");
        // The payload's change (its one field besides actor and time), compactly.
        let detail = json["payload"]
            .as_object()
            .and_then(|o| {
                o.iter()
                    .find(|(k, _)| *k != "actor" && !k.ends_with("Micros"))
            })
            .map(|(_, v)| {
                // Personal data stays out of a timeline; the export has everything.
                let mut v = v.clone();
                if let Some(o) = v.as_object_mut() {
                    o.remove("personal");
                    o.remove("complaintId");
                }
                v.to_string()
            })
            .unwrap_or_default();
        let detail: String = detail.chars().take(200).collect();
        // A step recorded after it happened says when it happened.
        let happened = event
            .effective_time
            .and_then(|t| timestamp(Some(&t)))
            .map(|t| format!(" (happened {t})"))
            .unwrap_or_default();
        out!(
            "  {at}  v{:<3} {what:<24} by {:<20} {detail}{happened}",
            event.version,
            event.actor
        );
    }
    if !any {
        bail!("no events for {name}");
    }
    Ok(())
}

/// The entries recorded at least `min_delay_hours` after they happened, and the totals.
async fn backdated(
    target: &Target,
    min_delay_hours: u32,
    unit: Option<String>,
) -> anyhow::Result<()> {
    let request = audit::ListBackdatedEntriesRequest {
        min_delay: Some(prost_types::Duration {
            seconds: i64::from(min_delay_hours) * 3600,
            nanos: 0,
        }),
        unit: unit.unwrap_or_default(),
        ..Default::default()
    };
    let list = target
        .audit()
        .await?
        .list_backdated_entries(target.request(request)?)
        .await?
        .into_inner();
    let hours = |d: Option<prost_types::Duration>| d.map_or(0, |d| d.seconds) as f64 / 3600.0;
    let entries = |n: u64| {
        if n == 1 {
            "1 entry".to_owned()
        } else {
            format!("{n} entries")
        }
    };
    out!(
        "{} recorded {min_delay_hours} h or more after they happened (log position {})",
        entries(list.entries.len() as u64),
        list.position
    );
    for e in &list.entries {
        let time = |t: &Option<prost_types::Timestamp>| timestamp(t.as_ref()).unwrap_or_default();
        out!(
            "  {} {:<28} happened {} recorded {} ({:.1} h late) by {} unit {} handler {}{}",
            e.complaint,
            e.event_type.trim_start_matches("complaint."),
            time(&e.effective_time),
            time(&e.record_time),
            hours(e.delay),
            e.actor,
            e.unit,
            if e.handler.is_empty() {
                "-"
            } else {
                &e.handler
            },
            if e.backdating_reason.is_empty() {
                String::new()
            } else {
                format!(": {}", e.backdating_reason)
            }
        );
    }
    for (title, totals) in [("by unit", &list.by_unit), ("by handler", &list.by_handler)] {
        out!("{title}:");
        for t in totals {
            let key = if t.key.is_empty() {
                "(unassigned)"
            } else {
                &t.key
            };
            out!(
                "  {key:<24} {:>11}, longest {:.1} h late",
                entries(t.entries),
                hours(t.max_delay)
            );
        }
    }
    Ok(())
}

async fn as_of(target: &Target, what: AsOfCmd) -> anyhow::Result<()> {
    let rules = |current: bool| {
        if current {
            audit::RulesChoice::Current as i32
        } else {
            audit::RulesChoice::AsRecorded as i32
        }
    };
    let mut client = target.audit().await?;
    match what {
        AsOfCmd::Complaint {
            complaint,
            at,
            current_rules,
        } => {
            let r = client
                .get_complaint_as_of(target.request(audit::GetComplaintAsOfRequest {
                    name: complaint_name(&complaint),
                    as_of: Some(time(&at)?),
                    rules: rules(current_rules),
                })?)
                .await?
                .into_inner();
            let c = r.complaint.unwrap_or_default();
            out!(
                "{} as of {at} (log position {}; SLA rules {})",
                c.name,
                r.position,
                r.rules
            );
            out!("  status {:?}, version {}", c.status(), c.version);
            if let Some(sla) = r.sla {
                out!(
                    "  policy {} v{} ({})",
                    sla.policy,
                    sla.policy_version,
                    sla.time_zone
                );
                for clock in sla.clocks {
                    out!(
                        "  {:<24} {:?}  due {} {}  used {:.0}%",
                        clock.clock,
                        clock.state(),
                        clock.due_date,
                        timestamp(clock.due_time.as_ref()).unwrap_or_default(),
                        clock.percent_used
                    );
                }
            }
        }
        AsOfCmd::Board { at, current_rules } => {
            let b = client
                .get_board_as_of(target.request(audit::GetBoardAsOfRequest {
                    as_of: Some(time(&at)?),
                    rules: rules(current_rules),
                })?)
                .await?
                .into_inner();
            out!("board as of {at}");
            out!(
                "  complaints {}, open {}, due today {}, breach rate {:.1}%",
                b.complaints,
                b.open_complaints,
                b.due_today,
                b.breach_rate * 100.0
            );
            for (state, n) in &b.clocks_by_state {
                out!("  clocks {state}: {n}");
            }
            for (regime, n) in &b.breached_by_regime {
                out!("  breached under {regime}: {n}");
            }
        }
        AsOfCmd::Queue { at } => {
            // Every page: each is computed again from the log, so the largest pages.
            let mut items = Vec::new();
            let mut page_token = String::new();
            loop {
                let q = client
                    .list_regulator_queue_as_of(target.request(
                        audit::ListRegulatorQueueAsOfRequest {
                            as_of: Some(time(&at)?),
                            page_size: 10_000,
                            page_token,
                        },
                    )?)
                    .await?
                    .into_inner();
                items.extend(q.items);
                if q.next_page_token.is_empty() {
                    break;
                }
                page_token = q.next_page_token;
            }
            out!("regulator queue as of {at}: {} items", items.len());
            for i in &items {
                out!("  {}  {}  {}", i.name, i.complaint, i.body);
            }
        }
    }
    Ok(())
}
