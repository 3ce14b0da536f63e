//! The outbox publisher against real nats-server processes of the test's own: every event,
//! in order, once per event id, with its envelope; NATS down or restarted loses nothing.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test
#![forbid(unsafe_code)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use complaints_nats::testing::{self, free_port, NatsServer};
use complaints_nats::{Mode, Publisher, PublisherConfig, Status};
use eventlog::{EventLog, ExpectedVersion, NewEvent, RecordedEvent, StreamId};
use eventlog_sled::{SledConfig, SledEventLog};
use futures::StreamExt;

struct Setup {
    dir: tempfile::TempDir,
    log: Arc<SledEventLog>,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(SledEventLog::open(SledConfig::new(dir.path().join("log"))).unwrap());
    Setup { dir, log }
}

impl Setup {
    fn config(&self, url: String) -> PublisherConfig {
        PublisherConfig::new(url, self.dir.path().join("publisher.cursor"))
    }

    /// Appends `n` events over 5 complaint streams; labels continue from `start`.
    async fn append(&self, start: usize, n: usize) {
        for i in start..start + n {
            let stream = StreamId::new(format!("complaint-{}", i % 5)).unwrap();
            let event_type = if i < 5 {
                "complaint.registered"
            } else {
                "complaint.acknowledged"
            };
            let event = NewEvent::new(event_type, "user:t", Bytes::from(format!("event {i}")));
            self.log
                .append(&stream, ExpectedVersion::Any, vec![event])
                .await
                .unwrap();
        }
    }

    async fn all(&self) -> Vec<RecordedEvent> {
        self.log
            .read_all(1, eventlog::Direction::Forward, 10_000)
            .await
            .unwrap()
    }
}

/// Waits (on the status channel, not a timer) until `done` holds; fails after 30 s.
async fn until(publisher: &Publisher, done: impl Fn(&Status) -> bool) -> Status {
    let mut status = publisher.status();
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let now = status.borrow_and_update().clone();
            if done(&now) {
                return now;
            }
            status.changed().await.unwrap();
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out; status {:?}", publisher.status().borrow()))
}

/// Every message of the JetStream stream, in stream order.
async fn stream_messages(url: &str, filter: &str) -> Vec<async_nats::jetstream::Message> {
    use async_nats::jetstream::consumer::pull;
    let client = async_nats::connect(url).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let stream = js.get_stream("COMPLAINTS_EVENTS").await.unwrap();
    let total = stream.cached_info().state.messages;
    let consumer = stream
        .create_consumer(pull::Config {
            filter_subject: filter.to_owned(),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut out = Vec::new();
    let mut batch = consumer
        .fetch()
        .max_messages(total as usize + 10)
        .expires(Duration::from_millis(500))
        .messages()
        .await
        .unwrap();
    while let Some(message) = batch.next().await {
        out.push(message.unwrap());
    }
    out
}

fn header<'a>(m: &'a async_nats::jetstream::Message, name: &str) -> &'a str {
    let headers = m.headers.as_ref();
    // Nats-Msg-Id is a standard header name: look it up as one.
    let value = if name == "Nats-Msg-Id" {
        headers.and_then(|h| h.get(async_nats::header::NATS_MESSAGE_ID))
    } else {
        headers.and_then(|h| h.get(name))
    };
    value
        .map(async_nats::HeaderValue::as_str)
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_is_published_in_order_with_its_envelope() {
    let nats = NatsServer::start();
    let s = setup();
    s.append(0, 40).await;
    let publisher = Publisher::spawn(s.log.clone(), s.config(nats.url())).unwrap();
    until(&publisher, |st| st.published == 40).await;
    s.append(40, 10).await;
    let status = until(&publisher, |st| st.published == 50).await;
    assert_eq!((status.lag(), status.last_error), (0, None));

    let events = s.all().await;
    let messages = stream_messages(&nats.url(), "complaints.events.>").await;
    assert_eq!(messages.len(), 50);
    for (m, e) in messages.iter().zip(&events) {
        assert_eq!(header(m, "Nats-Msg-Id"), e.id.to_string());
        assert_eq!(header(m, "Complaints-Position"), e.position.to_string());
        assert_eq!(header(m, "Complaints-Stream"), e.stream.as_str());
        assert_eq!(header(m, "Complaints-Version"), e.version.to_string());
        assert_eq!(header(m, "Complaints-Event-Type"), e.event_type);
        assert_eq!(header(m, "Complaints-Prev-Hash"), e.prev_hash.to_hex());
        // CloudEvents, binary content mode.
        assert_eq!(header(m, "ce-specversion"), "1.0");
        assert_eq!(header(m, "ce-id"), e.id.to_string());
        assert_eq!(header(m, "ce-type"), e.event_type);
        assert_eq!(header(m, "ce-source"), complaints_nats::CE_SOURCE);
        assert_eq!(header(m, "ce-subject"), e.stream.as_str());
        assert_eq!(header(m, "content-type"), "application/protobuf");
        let time = jiff::Timestamp::from_microsecond(e.recorded_at.as_micros()).unwrap();
        assert_eq!(header(m, "ce-time"), time.to_string());
        assert_eq!(
            m.subject.as_str(),
            format!("complaints.events.{}.{}", e.event_type, e.stream)
        );
        assert_eq!(m.payload, e.payload);
    }
    // Consumers filter by complaint, or by type.
    let one = stream_messages(&nats.url(), "complaints.events.*.*.complaint-3").await;
    assert_eq!(one.len(), 10);
    assert!(one
        .iter()
        .all(|m| header(m, "Complaints-Stream") == "complaint-3"));
    let versions: Vec<&str> = one
        .iter()
        .map(|m| header(m, "Complaints-Version"))
        .collect();
    assert_eq!(
        versions,
        ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10"]
    );
    let registered = stream_messages(&nats.url(), "complaints.events.complaint.registered.>").await;
    assert_eq!(registered.len(), 5);
    publisher.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_nats_down_appends_go_on_and_publishing_catches_up() {
    let port = free_port();
    let store = tempfile::tempdir().unwrap();
    let s = setup();
    s.append(0, 10).await;
    let url = format!("nats://127.0.0.1:{port}");
    let publisher = Publisher::spawn(s.log.clone(), s.config(url.clone())).unwrap();
    // Nothing listens: the failure is visible, and so is the lag.
    let down = until(&publisher, |st| st.last_error.is_some() && st.head == 10).await;
    assert_eq!(down.lag(), 10);
    s.append(10, 15).await;
    assert_eq!(s.log.head().await.unwrap(), 25, "appends go on");

    let mut nats = NatsServer::start_on(port, store.path());
    let up = until(&publisher, |st| st.published == 25).await;
    assert_eq!(up.last_error, None);

    // Killed mid-way and restarted on its storage: nothing lost, nothing twice.
    nats.kill();
    s.append(25, 10).await;
    until(&publisher, |st| {
        st.last_error.is_some() || st.published == 35
    })
    .await;
    let nats = NatsServer::start_on(port, store.path());
    until(&publisher, |st| st.published == 35).await;
    let messages = stream_messages(&nats.url(), "complaints.events.>").await;
    let ids: Vec<String> = messages
        .iter()
        .map(|m| header(m, "Nats-Msg-Id").to_owned())
        .collect();
    let expected: Vec<String> = s.all().await.iter().map(|e| e.id.to_string()).collect();
    assert_eq!(ids, expected);
    publisher.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_resumes_from_what_the_stream_holds_even_behind_a_stale_cursor() {
    let nats = NatsServer::start();
    let s = setup();
    s.append(0, 20).await;
    let publisher = Publisher::spawn(s.log.clone(), s.config(nats.url())).unwrap();
    until(&publisher, |st| st.published == 20).await;
    publisher.stop().await;
    let cursor = s.dir.path().join("publisher.cursor");
    assert_eq!(std::fs::read_to_string(&cursor).unwrap().trim(), "20");

    // Every publish, as a core subscriber sees it (the stream would drop a repeat within
    // its duplicate window, silently: this sees it).
    let client = async_nats::connect(nats.url()).await.unwrap();
    let mut published = client.subscribe("complaints.events.>").await.unwrap();
    client.flush().await.unwrap();

    // A crash after publishing 11-20 but before the cursor moved past 10.
    std::fs::write(&cursor, "10\n").unwrap();
    s.append(20, 10).await;
    let publisher = Publisher::spawn(s.log.clone(), s.config(nats.url())).unwrap();
    until(&publisher, |st| st.published == 30).await;
    publisher.stop().await;
    // No cursor at all: the same.
    std::fs::remove_file(&cursor).unwrap();
    s.append(30, 5).await;
    let publisher = Publisher::spawn(s.log.clone(), s.config(nats.url())).unwrap();
    until(&publisher, |st| st.published == 35).await;
    publisher.stop().await;

    assert_eq!(
        testing::positions(&mut published, 15).await,
        (21..=35).collect::<Vec<_>>(),
        "what the stream held was not published again"
    );
    assert_eq!(
        stream_messages(&nats.url(), "complaints.events.>")
            .await
            .len(),
        35
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_that_lost_what_the_stream_holds_is_never_published_on_top_of() {
    let nats = NatsServer::start();
    let published = setup();
    published.append(0, 20).await;
    let publisher = Publisher::spawn(published.log.clone(), published.config(nats.url())).unwrap();
    until(&publisher, |st| st.published == 20).await;
    publisher.stop().await;

    // The same log cut short (its tail lost with its cursor): positions 11.. would be
    // published again, as other events.
    let shorter = setup();
    shorter.append(0, 10).await;
    let e = complaints_nats::check_published(&*shorter.log, &shorter.config(nats.url()))
        .await
        .unwrap_err();
    let complaints_nats::Published::Damaged(why) = &e else {
        panic!("{e:?}")
    };
    assert!(
        why.contains("position 20") && why.contains("first missing position is 11"),
        "{why}"
    );
    let publisher = Publisher::spawn(shorter.log.clone(), shorter.config(nats.url())).unwrap();
    let refused = until(&publisher, |st| st.last_error.is_some()).await;
    let error = refused.last_error.unwrap();
    assert!(
        error.starts_with("refusing to publish: the event log is damaged"),
        "{error}"
    );
    shorter.append(10, 15).await;
    publisher.stop().await;

    // As long, but another history: refused too.
    let other = setup();
    other.append(0, 25).await;
    let e = complaints_nats::check_published(&*other.log, &other.config(nats.url()))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, complaints_nats::Published::Damaged(why) if why.contains("differs")),
        "{e:?}"
    );
    let publisher = Publisher::spawn(other.log.clone(), other.config(nats.url())).unwrap();
    until(&publisher, |st| st.last_error.is_some()).await;
    publisher.stop().await;

    // Nothing was published on top of the stream.
    let messages = stream_messages(&nats.url(), "complaints.events.>").await;
    let ids: Vec<String> = messages
        .iter()
        .map(|m| header(m, "Nats-Msg-Id").to_owned())
        .collect();
    let expected: Vec<String> = published
        .all()
        .await
        .iter()
        .map(|e| e.id.to_string())
        .collect();
    assert_eq!(ids, expected);
    // The log that was published goes on.
    assert_eq!(
        complaints_nats::check_published(&*published.log, &published.config(nats.url())).await,
        Ok(20)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_nats_mode_delivers_in_order() {
    let nats = NatsServer::start();
    let s = setup();
    let client = async_nats::connect(nats.url()).await.unwrap();
    let mut subscription = client.subscribe("complaints.events.>").await.unwrap();
    client.flush().await.unwrap();
    s.append(0, 30).await;
    let mut config = s.config(nats.url());
    config.mode = Mode::Core;
    let publisher = Publisher::spawn(s.log.clone(), config).unwrap();
    let positions = testing::positions(&mut subscription, 30).await;
    assert_eq!(positions, (1..=30).collect::<Vec<_>>());
    until(&publisher, |st| st.published == 30).await;
    publisher.stop().await;
}
