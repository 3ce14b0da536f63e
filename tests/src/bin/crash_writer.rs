//! Helper of the crash test: appends to an event log under load, forever, and prints one
//! line per acknowledged append, flushed before the next:
//! `ack <stream> <first_version> <first_position> <event_id>...`.
//! The test kills it with SIGKILL and checks every acknowledged event after reopening.
//!
//! Usage: `crash-writer <dir> <writers>` (a sled log in `dir`), or
//! `crash-writer <dir> <writers> <nats url>` (the JetStream log at that server, with its
//! local index in `dir`).
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

use std::io::Write;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use bytes::Bytes;
use eventlog::{EventLog, ExpectedVersion, NewEvent, StreamId};
use eventlog_sled::{SledConfig, SledEventLog};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().context("usage: crash-writer <dir> <writers>")?;
    let writers: usize = args
        .next()
        .context("usage: crash-writer <dir> <writers>")?
        .parse()?;
    let log: Arc<dyn EventLog> = match args.next() {
        None => Arc::new(SledEventLog::open(SledConfig::new(dir))?),
        Some(url) => {
            let mut config = eventlog_jetstream::JetStreamConfig::new(url, "EVENTLOG");
            config.checkpoint = Some(dir.into());
            Arc::new(
                eventlog_jetstream::JetStreamEventLog::open(
                    config,
                    Arc::new(eventlog::SystemClock),
                )
                .await?,
            )
        }
    };
    let out = Arc::new(Mutex::new(std::io::stdout()));
    println!("ready");
    let mut tasks = Vec::new();
    for w in 0..writers {
        let (log, out) = (log.clone(), out.clone());
        tasks.push(tokio::spawn(async move {
            let stream = StreamId::new(format!("complaint-{w}"))?;
            let mut n = 0u64;
            loop {
                n += 1;
                // Mostly single events, sometimes several, sometimes a large one.
                let count = if n.is_multiple_of(5) { 3 } else { 1 };
                let size = if n.is_multiple_of(97) { 200_000 } else { 300 };
                let events: Vec<NewEvent> = (0..count)
                    .map(|_| {
                        NewEvent::new("test.happened", "user:crash", Bytes::from(vec![b'x'; size]))
                    })
                    .collect();
                let ids: Vec<String> = events.iter().map(|e| e.id.to_string()).collect();
                let r = log.append(&stream, ExpectedVersion::Any, events).await?;
                let line = format!(
                    "ack {stream} {} {} {}\n",
                    r.first_version,
                    r.first_position,
                    ids.join(" ")
                );
                let mut out = out.lock().expect("stdout lock");
                out.write_all(line.as_bytes())?;
                out.flush()?;
            }
            #[allow(unreachable_code)]
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(())
}
