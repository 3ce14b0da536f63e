//! The outbox publisher: log -> NATS, in order, from a persisted cursor.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;
use eventlog::{EventLog, Position, RecordedEvent, StoredRecord};
use tokio::sync::watch;

/// Where events go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Into the JetStream stream `stream` (created if missing, capturing `<prefix>.>`),
    /// waiting for each acknowledgement before the cursor moves.
    JetStream {
        stream: String,
        /// The stream's duplicate window: a re-publish within it is dropped by the server.
        duplicate_window: Duration,
    },
    /// On core NATS: no acknowledgement; the cursor moves once the connection flushed.
    Core,
}

/// What a message's body is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Payload {
    /// The stored event as it is (`complaints.events.v1`, personal fields sealed).
    #[default]
    Protobuf,
    /// The stored event in protobuf's JSON mapping, personal fields still sealed (their
    /// ciphertext), for consumers that do not want protobuf. An event type this build does
    /// not know goes as protobuf.
    Json,
}

/// How to publish.
#[derive(Debug, Clone)]
pub struct PublisherConfig {
    /// e.g. `nats://127.0.0.1:4222`.
    pub url: String,
    pub mode: Mode,
    /// First subject tokens, e.g. `complaints.events`.
    pub subject_prefix: String,
    /// The file that keeps the last position published (written atomically).
    pub cursor_path: PathBuf,
    /// The messages' bodies.
    pub payload: Payload,
    /// Most events published before waiting for their acknowledgements (at most
    /// [`MAX_BATCH`]: the client holds up to 5,000 unacknowledged publishes).
    pub batch: usize,
}

impl PublisherConfig {
    pub fn new(url: impl Into<String>, cursor_path: impl Into<PathBuf>) -> Self {
        Self {
            url: url.into(),
            mode: Mode::JetStream {
                stream: "COMPLAINTS_EVENTS".into(),
                duplicate_window: Duration::from_secs(120),
            },
            subject_prefix: "complaints.events".into(),
            cursor_path: cursor_path.into(),
            payload: Payload::Protobuf,
            batch: 256,
        }
    }
}

/// The largest batch: below async-nats' limit of 5,000 publishes awaiting acknowledgement
/// (a batch past it would wait on itself).
pub const MAX_BATCH: usize = 4096;

/// What the publisher has done: observable while it runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    /// Last position published (and acknowledged, in JetStream mode).
    pub published: Position,
    /// The log's head as last seen.
    pub head: Position,
    /// The last failure, cleared by the next success.
    pub last_error: Option<String>,
}

impl Status {
    /// Events appended but not yet published.
    pub fn lag(&self) -> u64 {
        self.head.saturating_sub(self.published)
    }
}

/// A running publisher.
pub struct Publisher {
    status: watch::Receiver<Status>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Publisher {
    /// Starts publishing `log` as `config` says.
    pub fn spawn(log: Arc<dyn EventLog>, config: PublisherConfig) -> std::io::Result<Self> {
        let published = read_cursor(&config.cursor_path)?;
        let (status_tx, status) = watch::channel(Status {
            published,
            ..Status::default()
        });
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(run(log, config, status_tx, stopped));
        Ok(Self { status, stop, task })
    }

    /// The current status; `changed()` on it wakes at every change.
    pub fn status(&self) -> watch::Receiver<Status> {
        self.status.clone()
    }

    /// Stops after the batch in flight.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// The subject of an event.
pub fn subject(prefix: &str, event: &RecordedEvent) -> String {
    let token = |s: &str| -> String {
        s.chars()
            .map(|c| match c {
                '.' | '*' | '>' => '_',
                c if c.is_whitespace() || c.is_control() => '_',
                c => c,
            })
            .collect()
    };
    let mut parts = event.event_type.splitn(2, '.');
    let kind = token(parts.next().unwrap_or("event"));
    let name = token(parts.next().unwrap_or("unknown"));
    format!("{prefix}.{kind}.{name}.{}", token(event.stream.as_str()))
}

/// The body of `event`'s message, and its media type.
pub fn body(payload: Payload, event: &RecordedEvent) -> (bytes::Bytes, &'static str) {
    if payload == Payload::Json {
        let json = complaints_events::export::payload_json(&event.event_type, &event.payload)
            .and_then(|v| serde_json::to_vec(&v).ok());
        if let Some(json) = json {
            return (json.into(), "application/json");
        }
    }
    (event.payload.clone(), "application/protobuf")
}

/// The envelope as headers, with the event id as `Nats-Msg-Id`; `content_type` is the
/// body's media type.
pub fn headers(event: &RecordedEvent, stored: &StoredRecord, content_type: &str) -> HeaderMap {
    let clean = |s: &str| -> String { s.chars().filter(|c| !c.is_control()).collect() };
    let mut h = HeaderMap::new();
    h.insert(
        async_nats::header::NATS_MESSAGE_ID,
        event.id.to_string().as_str(),
    );
    h.insert("Complaints-Position", event.position.to_string().as_str());
    h.insert("Complaints-Stream", clean(event.stream.as_str()).as_str());
    h.insert("Complaints-Version", event.version.to_string().as_str());
    h.insert("Complaints-Event-Type", clean(&event.event_type).as_str());
    h.insert(
        "Complaints-Schema-Version",
        event.schema_version.to_string().as_str(),
    );
    h.insert(
        "Complaints-Recorded-At-Micros",
        event.recorded_at.as_micros().to_string().as_str(),
    );
    h.insert("Complaints-Actor", clean(&event.actor).as_str());
    h.insert(
        "Complaints-Correlation-Id",
        clean(&event.correlation_id).as_str(),
    );
    h.insert(
        "Complaints-Causation-Id",
        clean(&event.causation_id).as_str(),
    );
    h.insert("Complaints-Hash", stored.hash().to_hex().as_str());
    h.insert("Complaints-Prev-Hash", event.prev_hash.to_hex().as_str());
    cloudevent(&mut h, event, &clean);
    h.insert("content-type", content_type);
    h
}

/// The CloudEvents source of every published event.
pub const CE_SOURCE: &str = "urn:complaints:complaintd";

/// The CloudEvents attributes in binary content mode (each a `ce-` header, the data's
/// media type as `content-type`, as the HTTP binding and the CloudEvents SDKs' NATS
/// binary mode have them), so a consumer in any language reads the event with a
/// CloudEvents SDK (the body's `content-type` is set by [`headers`]): `id` the event id, `type` the event type, `subject` the complaint
/// (`complaints/<uuid>`) or the log stream, `time` when recorded, `dataschema` the
/// protobuf message of the payload (`urn:protobuf:<message>`).
fn cloudevent(h: &mut HeaderMap, event: &RecordedEvent, clean: &dyn Fn(&str) -> String) {
    h.insert("ce-specversion", "1.0");
    h.insert("ce-id", event.id.to_string().as_str());
    h.insert("ce-source", CE_SOURCE);
    h.insert("ce-type", clean(&event.event_type).as_str());
    let stream = event.stream.as_str();
    let complaint = stream
        .strip_prefix("complaint-")
        .filter(|id| uuid::Uuid::parse_str(id).is_ok());
    let subject = match complaint {
        Some(uuid) => format!("complaints/{uuid}"),
        None => clean(stream),
    };
    h.insert("ce-subject", subject.as_str());
    if let Ok(time) = jiff::Timestamp::from_microsecond(event.recorded_at.as_micros()) {
        h.insert("ce-time", time.to_string().as_str());
    }
    if let Some(message) = complaints_events::export::payload_message(&event.event_type) {
        h.insert("ce-dataschema", format!("urn:protobuf:{message}").as_str());
    }
}

/// The position the publisher's cursor in `path` says was published (0 without one):
/// evidence of how far the log reached, checked against it at start.
pub fn read_cursor(path: &Path) -> std::io::Result<Position> {
    match std::fs::read_to_string(path) {
        Ok(text) => text.trim().parse().map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{} does not hold a position", path.display()),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e),
    }
}

/// Writes the cursor durably: beside it, synced, renamed over it, the directory synced.
fn write_cursor(path: &Path, position: Position) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = atomic_write_file::AtomicWriteFile::open(path)?;
    writeln!(file, "{position}")?;
    file.commit()
}

enum Sink {
    JetStream(
        async_nats::jetstream::Context,
        // Boxed: a stream's cached info is large.
        Box<async_nats::jetstream::stream::Stream>,
    ),
    Core(async_nats::Client),
}

/// What the JetStream stream says about the log it was published from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Published {
    /// The stream holds what this log does not: the log lost records (or the stream was
    /// published from another log). Nothing more may be published on top.
    #[error("the event log is damaged: {0}")]
    Damaged(String),
    /// The stream could not be asked.
    #[error("{0}")]
    Unreachable(String),
}

/// Checks that `log` holds the last event the stream of `config` holds, with the same
/// hash; the position up to which the stream holds every event (0 for an empty stream,
/// in core mode, or when the stream has gaps or other messages: then nothing is assumed
/// published past the cursor).
pub async fn check_published(
    log: &dyn EventLog,
    config: &PublisherConfig,
) -> Result<Position, Published> {
    match connect(config).await.map_err(Published::Unreachable)? {
        Sink::JetStream(_, stream) => last_published(log, &stream).await,
        Sink::Core(_) => Ok(0),
    }
}

/// The stream's last event (its `Complaints-Position` and `Complaints-Hash`) against the
/// log: a position past the log's head, or another hash there, means the log lost or
/// changed records that were published.
async fn last_published(
    log: &dyn EventLog,
    stream: &async_nats::jetstream::stream::Stream,
) -> Result<Position, Published> {
    let unreachable = |e: &dyn std::fmt::Display| Published::Unreachable(e.to_string());
    let name = stream.cached_info().config.name.clone();
    let info = stream.get_info().await.map_err(|e| unreachable(&e))?;
    if info.state.messages == 0 {
        return Ok(0);
    }
    let message = stream
        .get_raw_message(info.state.last_sequence)
        .await
        .map_err(|e| unreachable(&e))?;
    let header = |name: &str| {
        message
            .headers
            .get(name)
            .map(|v| v.as_str().to_owned())
            .unwrap_or_default()
    };
    let position: Position = header("Complaints-Position").parse().map_err(|_| {
        Published::Damaged(format!(
            "message {} of the stream {name} has no Complaints-Position: the stream holds messages that were not published from this log",
            info.state.last_sequence
        ))
    })?;
    let mut head = log.head().await.map_err(|e| unreachable(&e))?;
    if position > head {
        // Another replica of a shared (JetStream) log may have published what this one
        // has not read yet: give it a moment to catch up before calling it a loss.
        let mut heads = log.watch_head();
        let _ =
            tokio::time::timeout(Duration::from_secs(3), heads.wait_for(|h| *h >= position)).await;
        head = log.head().await.map_err(|e| unreachable(&e))?;
    }
    if position > head {
        return Err(Published::Damaged(format!(
            "the stream {name} holds position {position}, published from this log, past its head {head}: the log lost records it held; the first missing position is {}",
            head + 1
        )));
    }
    let stored = log
        .read_stored(position, 1)
        .await
        .map_err(|e| unreachable(&e))?;
    let hash = stored
        .first()
        .map(|s| s.hash().to_hex())
        .unwrap_or_default();
    if hash != header("Complaints-Hash") {
        return Err(Published::Damaged(format!(
            "position {position} in the log (hash {hash}) is not the event the stream {name} holds there (hash {}): the log's history differs from what was published",
            header("Complaints-Hash")
        )));
    }
    // Resume after it only if the stream holds every position up to it (one message
    // each): an acknowledgement that failed mid-batch may have left a gap before it.
    Ok(if info.state.messages == position {
        position
    } else {
        0
    })
}

async fn connect(config: &PublisherConfig) -> Result<Sink, String> {
    let client = async_nats::ConnectOptions::new()
        .name("complaints-publisher")
        .connection_timeout(Duration::from_secs(2))
        .connect(config.url.split(',').map(str::trim).collect::<Vec<_>>())
        .await
        .map_err(|e| format!("cannot connect to {}: {e}", config.url))?;
    match &config.mode {
        Mode::Core => Ok(Sink::Core(client)),
        Mode::JetStream {
            stream,
            duplicate_window,
        } => {
            let js = async_nats::jetstream::new(client);
            let stream = js
                .get_or_create_stream(async_nats::jetstream::stream::Config {
                    name: stream.clone(),
                    subjects: vec![format!("{}.>", config.subject_prefix)],
                    duplicate_window: *duplicate_window,
                    storage: async_nats::jetstream::stream::StorageType::File,
                    ..Default::default()
                })
                .await
                .map_err(|e| format!("cannot create or find stream {stream}: {e}"))?;
            Ok(Sink::JetStream(js, Box::new(stream)))
        }
    }
}

/// Publishes `batch` in order; returns the last position known to be published and the
/// error that stopped it, if any.
async fn publish(
    sink: &Sink,
    prefix: &str,
    payload: Payload,
    batch: &[(StoredRecord, RecordedEvent)],
) -> (Option<Position>, Option<String>) {
    match sink {
        Sink::JetStream(js, _) => {
            let mut acks = Vec::with_capacity(batch.len());
            for (stored, event) in batch {
                let (body, content_type) = body(payload, event);
                let sent = js
                    .publish_with_headers(
                        subject(prefix, event),
                        headers(event, stored, content_type),
                        body,
                    )
                    .await;
                match sent {
                    Ok(ack) => acks.push((event.position, ack)),
                    Err(e) => {
                        // Wait for what was sent before, in order.
                        let (done, _) = await_acks(acks).await;
                        return (done, Some(format!("publish failed: {e}")));
                    }
                }
            }
            let (acked, error) = await_acks(acks).await;
            (acked, error)
        }
        Sink::Core(client) => {
            for (stored, event) in batch {
                let (body, content_type) = body(payload, event);
                if let Err(e) = client
                    .publish_with_headers(
                        subject(prefix, event),
                        headers(event, stored, content_type),
                        body,
                    )
                    .await
                {
                    return (None, Some(format!("publish failed: {e}")));
                }
            }
            match client.flush().await {
                Ok(()) => (batch.last().map(|(_, e)| e.position), None),
                Err(e) => (None, Some(format!("flush failed: {e}"))),
            }
        }
    }
}

async fn await_acks(
    acks: Vec<(Position, async_nats::jetstream::context::PublishAckFuture)>,
) -> (Option<Position>, Option<String>) {
    let mut done = None;
    for (position, ack) in acks {
        match ack.await {
            Ok(_) => done = Some(position),
            Err(e) => return (done, Some(format!("not acknowledged: {e}"))),
        }
    }
    (done, None)
}

async fn run(
    log: Arc<dyn EventLog>,
    config: PublisherConfig,
    status: watch::Sender<Status>,
    mut stop: watch::Receiver<bool>,
) {
    let mut heads = log.watch_head();
    let mut sink: Option<Sink> = None;
    let mut backoff = Duration::from_millis(50);
    let fail = |status: &watch::Sender<Status>, error: String| {
        tracing::warn!(%error, "publisher: will retry");
        status.send_modify(|s| s.last_error = Some(error));
    };
    loop {
        if *stop.borrow() {
            return;
        }
        let head = *heads.borrow_and_update();
        status.send_if_modified(|s| {
            let moved = s.head != head;
            s.head = head;
            moved
        });
        let published = status.borrow().published;
        if published >= head {
            tokio::select! {
                changed = heads.changed() => if changed.is_err() { return },
                _ = stop.changed() => return,
            }
            continue;
        }
        if sink.is_none() {
            match connect(&config).await {
                Ok(s) => {
                    let checked = match &s {
                        Sink::JetStream(_, stream) => last_published(&*log, stream).await,
                        Sink::Core(_) => Ok(0),
                    };
                    match checked {
                        Err(Published::Damaged(e)) => {
                            let e = format!("refusing to publish: the event log is damaged: {e}");
                            tracing::error!(error = %e, "publisher stopped");
                            status.send_modify(|s| s.last_error = Some(e));
                            let _ = stop.changed().await;
                            return;
                        }
                        Err(Published::Unreachable(e)) => {
                            fail(&status, e);
                            wait(&mut stop, &mut backoff).await;
                            continue;
                        }
                        // The stream got further than the cursor (a cursor lost, or not
                        // written after the acknowledgements): go on from there, rather
                        // than publish again what is past the duplicate window.
                        Ok(reached) if reached > published => {
                            if let Err(e) = write_cursor(&config.cursor_path, reached) {
                                fail(&status, format!("cannot write the cursor: {e}"));
                                wait(&mut stop, &mut backoff).await;
                                continue;
                            }
                            status.send_modify(|s| s.published = reached);
                            sink = Some(s);
                            continue;
                        }
                        Ok(_) => sink = Some(s),
                    }
                }
                Err(e) => {
                    fail(&status, e);
                    wait(&mut stop, &mut backoff).await;
                    continue;
                }
            }
        }
        let batch = match read_batch(&*log, published + 1, config.batch.clamp(1, MAX_BATCH)).await {
            Ok(batch) => batch,
            Err(e) => {
                fail(&status, format!("cannot read the log: {e}"));
                wait(&mut stop, &mut backoff).await;
                continue;
            }
        };
        if let Some((_, last)) = batch.last() {
            // The batch may reach past the head last seen.
            status.send_if_modified(|s| {
                let moved = last.position > s.head;
                s.head = s.head.max(last.position);
                moved
            });
        }
        let Some(sink_ref) = sink.as_ref() else {
            continue;
        };
        let (done, error) = publish(sink_ref, &config.subject_prefix, config.payload, &batch).await;
        if let Some(done) = done {
            if let Err(e) = write_cursor(&config.cursor_path, done) {
                fail(&status, format!("cannot write the cursor: {e}"));
                wait(&mut stop, &mut backoff).await;
                continue;
            }
            status.send_modify(|s| {
                s.published = done;
                if error.is_none() {
                    s.last_error = None;
                }
            });
            backoff = Duration::from_millis(50);
        }
        if let Some(error) = error {
            fail(&status, error);
            // Reconnect from scratch next time (the stream may have to be created again).
            sink = None;
            wait(&mut stop, &mut backoff).await;
        }
    }
}

async fn read_batch(
    log: &dyn EventLog,
    from: Position,
    limit: usize,
) -> eventlog::Result<Vec<(StoredRecord, RecordedEvent)>> {
    log.read_stored(from, limit)
        .await?
        .into_iter()
        .map(|stored| {
            let event = stored.decode()?;
            Ok((stored, event))
        })
        .collect()
}

/// Waits out the backoff (doubling it, up to 5 s), or until told to stop.
async fn wait(stop: &mut watch::Receiver<bool>, backoff: &mut Duration) {
    tokio::select! {
        _ = tokio::time::sleep(*backoff) => {}
        _ = stop.changed() => {}
    }
    *backoff = (*backoff * 2).min(Duration::from_secs(5));
}
