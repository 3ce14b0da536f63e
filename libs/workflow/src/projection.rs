//! The projections' plumbing, and the complaint list.
//!
//! Projections are fed by one reader: it reads the log in pages (decoding each complaint
//! event once, for every projection, while the previous page is being applied) and hands
//! each page to every projection as a batch. With a [`crate::snapshot::SnapshotStore`],
//! they start from their last snapshot (checked against the log) instead of position 1,
//! and are saved again every so many events and when the log closes. Readers can wait
//! until a projection has seen a position, so a query after a write reflects that write.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};

use complaints_domain::model::{ComplaintId, Status};
use complaints_domain::{status_after, Change, Event};
use eventlog::{EventLog, Position, RecordedEvent, Version};
use jiff::Timestamp;
use tokio::sync::{mpsc, watch};

use crate::codec::{self, DecodeError};
use crate::compact::{micros, time, Micros, Names, RowIndex, Sym, NO_SYM};

/// What the list shows of one complaint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub id: ComplaintId,
    pub status: Status,
    /// The unit handling it once assigned, before that the unit complained about.
    pub unit: String,
    pub handler: Option<String>,
    pub category: String,
    pub regime: String,
    pub region: String,
    pub received_at: Timestamp,
    pub updated_at: Timestamp,
    pub version: Version,
}

/// Filters and paging of a list query. Results are ordered by receipt time, then id.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub status: Option<Status>,
    pub unit: Option<String>,
    pub category: Option<String>,
    pub regime: Option<String>,
    pub page_size: usize,
    /// Start after this (receipt time, id): from the previous page's `next`.
    pub after: Option<(Timestamp, ComplaintId)>,
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub items: Vec<Summary>,
    /// Where the next page starts, if there is one.
    pub next: Option<(Timestamp, ComplaintId)>,
}

/// A complaint as the list keeps it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Row {
    /// The complaint's uuid (bytes: no 16-byte alignment to pad for).
    id: [u8; 16],
    status: u8,
    unit: Sym,
    handler: Sym,
    category: Sym,
    regime: Sym,
    region: Sym,
    received_at: Micros,
    updated_at: Micros,
    version: Version,
}

/// The serialisable part of the list: what a snapshot holds.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
struct ListData {
    names: Names,
    rows: Vec<Row>,
}

#[derive(Default)]
struct Inner {
    data: ListData,
    by_id: RowIndex,
    /// Receipt time and id (as two halves, in uuid order), for the list's order.
    order: BTreeSet<(Micros, u64, u64)>,
}

fn order_key(received_at: Micros, id: [u8; 16]) -> (Micros, u64, u64) {
    let (hi, lo) = uuid::Uuid::from_bytes(id).as_u64_pair();
    (received_at, hi, lo)
}

fn status_code(status: Status) -> u8 {
    Status::ALL.iter().position(|s| *s == status).unwrap_or(0) as u8
}

impl Inner {
    fn summary(&self, row: &Row) -> Summary {
        let names = &self.data.names;
        Summary {
            id: ComplaintId::new(uuid::Uuid::from_bytes(row.id)),
            status: Status::ALL
                .get(usize::from(row.status))
                .copied()
                .unwrap_or(Status::Received),
            unit: names.get(row.unit).to_owned(),
            handler: names.get_opt(row.handler).map(str::to_owned),
            category: names.get(row.category).to_owned(),
            regime: names.get(row.regime).to_owned(),
            region: names.get(row.region).to_owned(),
            received_at: time(row.received_at),
            updated_at: time(row.updated_at),
            version: row.version,
        }
    }

    fn row_of(&self, id: ComplaintId) -> Option<u32> {
        let rows = &self.data.rows;
        self.by_id
            .get(id.uuid().as_bytes(), |r| rows[r as usize].id)
    }

    fn reindex(&mut self) {
        self.by_id.clear();
        self.order.clear();
        let rows = &self.data.rows;
        for (i, row) in rows.iter().enumerate() {
            self.by_id
                .insert(&row.id, i as u32, |r| rows[r as usize].id);
            self.order.insert(order_key(row.received_at, row.id));
        }
    }

    fn apply(&mut self, d: &Decoded) {
        let (Some(event), Some(id)) = (&d.event, d.complaint) else {
            return;
        };
        let version = d.record.version;
        let names = &mut self.data.names;
        match &event.change {
            Change::Registered(r) => {
                let row = Row {
                    id: *r.id.uuid().as_bytes(),
                    status: status_code(Status::Received),
                    unit: names.intern(&r.unit),
                    handler: NO_SYM,
                    category: names.intern(&r.category),
                    regime: names.intern(&r.regime),
                    region: names.intern(&r.region),
                    received_at: micros(r.received_at),
                    updated_at: micros(event.at),
                    version,
                };
                let key = order_key(row.received_at, row.id);
                match self.row_of(id) {
                    // Registered twice (never, by the domain's rules): start over.
                    Some(i) => {
                        let old = &self.data.rows[i as usize];
                        self.order.remove(&order_key(old.received_at, old.id));
                        self.order.insert(key);
                        self.data.rows[i as usize] = row;
                    }
                    None => {
                        let i = self.data.rows.len() as u32;
                        self.data.rows.push(row);
                        let rows = &self.data.rows;
                        self.by_id
                            .insert(&rows[i as usize].id, i, |r| rows[r as usize].id);
                        self.order.insert(key);
                    }
                }
            }
            change => {
                let Some(i) = self.row_of(id) else {
                    return;
                };
                let names = &mut self.data.names;
                let row = &mut self.data.rows[i as usize];
                let status = Status::ALL
                    .get(usize::from(row.status))
                    .copied()
                    .unwrap_or(Status::Received);
                row.status = status_code(status_after(status, change));
                row.updated_at = micros(event.at);
                row.version = version;
                if let Change::Assigned { unit, handler } = change {
                    row.unit = names.intern(unit);
                    row.handler = names.intern(handler);
                }
            }
        }
    }
}

/// The complaint list projection.
#[derive(Default)]
pub struct ComplaintList {
    inner: RwLock<Inner>,
    progress: Progress,
}

impl ComplaintList {
    /// Starts a list fed by `log` from its first event. The task ends with the log.
    pub fn spawn(log: Arc<dyn EventLog>) -> (Arc<Self>, tokio::task::JoinHandle<()>) {
        let list = Arc::new(Self::default());
        let task = feed("complaint list", log, list.clone(), Self::apply_batch);
        (list, task)
    }

    /// Applies one event of the log (events of other streams are skipped).
    pub fn apply(&self, record: &RecordedEvent) -> Result<(), DecodeError> {
        self.apply_batch(&[Decoded::decode(record.clone())?])
    }

    /// Applies a batch of consecutive events.
    pub fn apply_batch(&self, batch: &[Decoded]) -> Result<(), DecodeError> {
        let Some(last) = batch.last() else {
            return Ok(());
        };
        let mut inner = self.inner.write().unwrap_or_else(|p| p.into_inner());
        for d in batch {
            inner.apply(d);
        }
        drop(inner);
        self.progress.advance(last.record.position);
        Ok(())
    }

    /// The list as bytes, with the position it stands at: for a snapshot.
    pub(crate) fn save(&self) -> Result<(Position, Vec<u8>), postcard::Error> {
        let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
        Ok((self.progress.position(), postcard::to_stdvec(&inner.data)?))
    }

    /// Replaces the list with a saved one standing at `position`.
    pub(crate) fn restore(&self, position: Position, bytes: &[u8]) -> Result<(), DecodeError> {
        let data: ListData = postcard::from_bytes(bytes)
            .map_err(|e| DecodeError(format!("undecodable list snapshot: {e}")))?;
        let mut inner = Inner {
            data,
            ..Inner::default()
        };
        inner.reindex();
        *self.inner.write().unwrap_or_else(|p| p.into_inner()) = inner;
        self.progress.advance(position);
        Ok(())
    }

    /// Empties the list (back to position 0).
    pub(crate) fn reset(&self) {
        *self.inner.write().unwrap_or_else(|p| p.into_inner()) = Inner::default();
        self.progress.advance(0);
    }

    /// Every complaint's summary, by id: what a rebuild must reproduce exactly.
    pub fn state(&self) -> BTreeMap<ComplaintId, Summary> {
        let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
        let mut out: BTreeMap<ComplaintId, Summary> = BTreeMap::new();
        for row in &inner.data.rows {
            let s = inner.summary(row);
            out.insert(s.id, s);
        }
        out
    }

    /// The last log position applied.
    pub fn position(&self) -> Position {
        self.progress.position()
    }

    /// Waits until the list has applied `position`.
    pub async fn wait_for(&self, position: Position) {
        self.progress.wait_for(position).await
    }

    /// One page of complaints matching `query`.
    pub fn query(&self, query: &ListQuery) -> Page {
        let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
        let size = query.page_size.max(1);
        let mut items = Vec::with_capacity(size.min(1024));
        let names = &inner.data.names;
        let (Ok(unit), Ok(category), Ok(regime)) = (
            names.filter(&query.unit),
            names.filter(&query.category),
            names.filter(&query.regime),
        ) else {
            return Page { items, next: None }; // a name the list has never seen
        };
        let status = query.status.map(status_code);
        let mut next = None;
        let range = match query.after {
            Some((at, id)) => inner.order.range((
                std::ops::Bound::Excluded(order_key(micros(at), *id.uuid().as_bytes())),
                std::ops::Bound::Unbounded,
            )),
            None => inner.order.range(..),
        };
        for (_, hi, lo) in range {
            let id = ComplaintId::new(uuid::Uuid::from_u64_pair(*hi, *lo));
            let Some(i) = inner.row_of(id) else {
                continue;
            };
            let row = &inner.data.rows[i as usize];
            let matches = status.is_none_or(|st| row.status == st)
                && unit.is_none_or(|u| row.unit == u)
                && category.is_none_or(|c| row.category == c)
                && regime.is_none_or(|r| row.regime == r);
            if !matches {
                continue;
            }
            if items.len() == size {
                next = items
                    .last()
                    .map(|last: &Summary| (last.received_at, last.id));
                break;
            }
            items.push(inner.summary(row));
        }
        Page { items, next }
    }

    /// A complaint's summary.
    pub fn get(&self, id: ComplaintId) -> Option<Summary> {
        let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
        let i = inner.row_of(id)?;
        Some(inner.summary(&inner.data.rows[i as usize]))
    }
}

/// How far a projection has read the log, for readers that must see recent writes.
pub struct Progress(watch::Sender<Position>);

impl Default for Progress {
    fn default() -> Self {
        Self(watch::channel(0).0)
    }
}

impl Progress {
    /// Records that everything up to `position` is applied.
    pub fn advance(&self, position: Position) {
        self.0.send_replace(position);
    }

    /// The last position applied.
    pub fn position(&self) -> Position {
        *self.0.borrow()
    }

    /// Waits until `position` is applied.
    pub async fn wait_for(&self, position: Position) {
        let mut seen = self.0.subscribe();
        // An error means the projection is gone: nothing more to wait for.
        let _ = seen.wait_for(|p| *p >= position).await;
    }

    /// A receiver that changes whenever the projection applies an event.
    pub fn changes(&self) -> watch::Receiver<Position> {
        self.0.subscribe()
    }
}

/// An event of the log, with its complaint event decoded once for every projection.
#[derive(Debug, Clone)]
pub struct Decoded {
    pub record: RecordedEvent,
    /// The complaint event, for `complaint.*` events.
    pub event: Option<Event>,
    /// The complaint it belongs to, for `complaint.*` events.
    pub complaint: Option<ComplaintId>,
}

impl Decoded {
    /// Decodes the complaint event of `record`, if it holds one.
    pub fn decode(record: RecordedEvent) -> Result<Self, DecodeError> {
        if !record.event_type.starts_with("complaint.") {
            return Ok(Self {
                record,
                event: None,
                complaint: None,
            });
        }
        let event = codec::decode(&record.event_type, &record.payload)?;
        let complaint = match &event.change {
            Change::Registered(r) => Some(r.id),
            _ => record
                .stream
                .as_str()
                .strip_prefix("complaint-")
                .and_then(ComplaintId::parse_name),
        };
        Ok(Self {
            record,
            event: Some(event),
            complaint,
        })
    }
}

/// The largest batch the feeder reads and applies at once.
const PAGE: usize = 4096;

/// What the reader hands the applier: a decoded page, and the error that cut it short.
type Batch = (Vec<Decoded>, Option<DecodeError>);

/// Reads the log from `from` in pages, decoding them, until the log closes or an event
/// cannot be read; waits for the head to move when it has read everything.
async fn read_pages(
    log: Arc<dyn EventLog>,
    from: Position,
    pages: mpsc::Sender<Batch>,
    name: &'static str,
    mut stop: Option<watch::Receiver<bool>>,
) {
    let mut next = from.max(1);
    let mut head_moved = log.watch_head();
    let stopped = |stop: &Option<watch::Receiver<bool>>| stop.as_ref().is_some_and(|s| *s.borrow());
    loop {
        if stopped(&stop) {
            return;
        }
        head_moved.borrow_and_update();
        let head = match log.head().await {
            Ok(head) => head,
            Err(eventlog::Error::Closed) => return,
            Err(e) => {
                tracing::error!(projection = name, error = %e, "cannot read the log's head; the projections stop here");
                return;
            }
        };
        if head < next {
            let stop_asked = async {
                match stop.as_mut() {
                    Some(s) => {
                        let _ = s.wait_for(|stop| *stop).await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                moved = head_moved.changed() => if moved.is_err() {
                    return; // the log is gone
                },
                () = stop_asked => return,
            }
            continue;
        }
        let page = match log.read_all(next, eventlog::Direction::Forward, PAGE).await {
            Ok(page) => page,
            Err(eventlog::Error::Closed) => return,
            Err(e) => {
                tracing::error!(projection = name, error = %e, "cannot read the log; the projections stop here");
                return;
            }
        };
        let mut batch = Vec::with_capacity(page.len());
        let mut failed = None;
        for record in page {
            if record.position != next {
                failed = Some(DecodeError(format!(
                    "expected position {next}, read {}",
                    record.position
                )));
                break;
            }
            let position = record.position;
            match Decoded::decode(record) {
                Ok(d) => batch.push(d),
                Err(e) => {
                    failed = Some(DecodeError(format!("position {position}: {}", e.0)));
                    break;
                }
            }
            next += 1;
        }
        if batch.is_empty() && failed.is_none() {
            failed = Some(DecodeError(format!(
                "the head is {head}, yet nothing was read from {next}"
            )));
        }
        let stop = failed.is_some();
        if pages.send((batch, failed)).await.is_err() || stop {
            return;
        }
    }
}

/// Feeds `projection` every event of `log` from the start, with `apply`, until the log
/// closes; an event it cannot read stops it, loudly (a projection never skips one).
pub(crate) fn feed<P: Send + Sync + 'static>(
    name: &'static str,
    log: Arc<dyn EventLog>,
    projection: Arc<P>,
    apply: fn(&P, &[Decoded]) -> Result<(), DecodeError>,
) -> tokio::task::JoinHandle<()> {
    let (tx, mut rx) = mpsc::channel::<Batch>(2);
    tokio::spawn(read_pages(log, 1, tx, name, None));
    // Applied on a runtime worker (a batch takes milliseconds), while the reader reads
    // and decodes the next page on another.
    tokio::spawn(async move {
        while let Some((batch, failed)) = rx.recv().await {
            let result = apply(&projection, &batch);
            if let Some(e) = result.err().or(failed) {
                tracing::error!(projection = name, error = %e, "cannot read an event; the projection stops here");
                return;
            }
        }
    })
}

/// The projections a service keeps, fed together by one reader.
pub struct Projections {
    pub list: Arc<ComplaintList>,
    pub board: Arc<crate::board::SlaBoard>,
    pub queue: Arc<crate::queue::RegulatorQueue>,
    /// The first position read from the log once started (1: no snapshot used).
    started_from: std::sync::atomic::AtomicU64,
}

impl Projections {
    /// Empty projections; the board computes with `engine` until the log records rules.
    pub fn new(engine: Arc<complaints_sla::Engine>) -> Self {
        Self {
            list: Arc::new(ComplaintList::default()),
            board: Arc::new(crate::board::SlaBoard::new(engine)),
            queue: Arc::new(crate::queue::RegulatorQueue::default()),
            started_from: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The first position they read from the log once started: 1 if they rebuilt from
    /// scratch, the position after their snapshot if they restored one (`None` until the
    /// started task has decided).
    pub fn started_from(&self) -> Option<Position> {
        match self.started_from.load(std::sync::atomic::Ordering::Acquire) {
            0 => None,
            p => Some(p),
        }
    }

    fn apply_batch(&self, batch: &[Decoded]) -> Result<(), DecodeError> {
        self.list.apply_batch(batch)?;
        self.board.apply_batch(batch)?;
        self.queue.apply_batch(batch)
    }

    /// Starts feeding them from `log`: from their snapshot in `store` if it has a valid
    /// one, else from position 1; saving a snapshot every `every` events applied (never if
    /// 0) and when they stop. The task ends, after that last snapshot, when `stop` turns
    /// true or the log closes.
    pub fn spawn(
        self: &Arc<Self>,
        log: Arc<dyn EventLog>,
        store: Option<crate::snapshot::SnapshotStore>,
        every: u64,
        stop: watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let projections = self.clone();
        tokio::spawn(async move {
            let mut from = 1;
            if let Some(store) = &store {
                match store.load(&*log).await {
                    Ok(Some(snapshot)) => {
                        // Set before restoring: whoever the restored positions wake
                        // sees where the projections started.
                        projections
                            .started_from
                            .store(snapshot.position + 1, std::sync::atomic::Ordering::Release);
                        let restored = projections.restore(&snapshot);
                        match restored {
                            Ok(()) => {
                                tracing::info!(
                                    position = snapshot.position,
                                    "projections restored from their snapshot"
                                );
                                from = snapshot.position + 1;
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "the projections' snapshot cannot be restored; rebuilding from the log");
                                projections.clear();
                            }
                        }
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "no usable snapshot of the projections; rebuilding from the log")
                    }
                }
            }
            projections
                .started_from
                .store(from, std::sync::atomic::Ordering::Release);
            let (tx, mut rx) = mpsc::channel::<Batch>(2);
            tokio::spawn(read_pages(log, from, tx, "projections", Some(stop)));
            let mut since_snapshot = 0u64;
            let mut anchor = None;
            // The snapshot being written, if one is.
            let mut writing: Option<tokio::task::JoinHandle<()>> = None;
            while let Some((batch, failed)) = rx.recv().await {
                let result = projections.apply_batch(&batch);
                if let Some(last) = batch.last() {
                    since_snapshot += batch.len() as u64;
                    anchor = Some(crate::snapshot::Anchor::of(&last.record));
                }
                if let Some(e) = result.err().or(failed) {
                    tracing::error!(error = %e, "cannot read an event; the projections stop here");
                    return;
                }
                let (Some(store), Some(at)) = (&store, anchor) else {
                    continue;
                };
                let idle = writing.as_ref().is_none_or(|w| w.is_finished());
                if every > 0 && since_snapshot >= every && idle {
                    if let Some(sections) = capture(&projections, at).await {
                        writing = Some(write(store, at, sections));
                        since_snapshot = 0;
                    }
                }
            }
            // Stopped (or the log closed): save where they stand, for the next start.
            if let Some(w) = writing {
                let _ = w.await;
            }
            if let (Some(store), Some(at), true) = (&store, anchor, since_snapshot > 0) {
                if let Some(sections) = capture(&projections, at).await {
                    let _ = write(store, at, sections).await;
                }
            }
        })
    }

    fn restore(&self, snapshot: &crate::snapshot::Snapshot) -> Result<(), DecodeError> {
        let section = |name: &str| {
            snapshot
                .section(name)
                .ok_or_else(|| DecodeError(format!("the snapshot has no {name}")))
        };
        self.list.restore(snapshot.position, section("list")?)?;
        self.board.restore(snapshot.position, section("board")?)?;
        self.queue.restore(snapshot.position, section("queue")?)
    }

    fn clear(&self) {
        self.list.reset();
        self.board.reset();
        self.queue.reset();
    }

    /// The three as snapshot sections, if they all stand at `anchor`.
    fn capture(&self, anchor: &crate::snapshot::Anchor) -> Result<Option<Sections>, String> {
        let (p1, list) = self.list.save().map_err(|e| e.to_string())?;
        let (p2, board) = self.board.save().map_err(|e| e.to_string())?;
        let (p3, queue) = self.queue.save().map_err(|e| e.to_string())?;
        if [p1, p2, p3] != [anchor.position; 3] {
            return Ok(None);
        }
        Ok(Some(vec![
            ("list".to_owned(), list),
            ("board".to_owned(), board),
            ("queue".to_owned(), queue),
        ]))
    }
}

type Sections = Vec<(String, Vec<u8>)>;

/// Takes the projections' sections at `anchor` (applying pauses meanwhile: they must not
/// move), off the runtime's workers.
async fn capture(
    projections: &Arc<Projections>,
    anchor: crate::snapshot::Anchor,
) -> Option<Sections> {
    let projections = projections.clone();
    let captured = tokio::task::spawn_blocking(move || projections.capture(&anchor)).await;
    match captured {
        Ok(Ok(sections)) => sections,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "cannot encode the projections; no snapshot this time");
            None
        }
        Err(_) => None,
    }
}

/// Writes a snapshot (a file written and synced) on a blocking thread; applying goes on.
fn write(
    store: &crate::snapshot::SnapshotStore,
    anchor: crate::snapshot::Anchor,
    sections: Sections,
) -> tokio::task::JoinHandle<()> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || {
        let started = std::time::Instant::now();
        match store.save(&anchor, sections) {
            Ok(()) => tracing::info!(
                position = anchor.position,
                millis = started.elapsed().as_millis() as u64,
                "projections saved"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "cannot save the projections; the next start reads more of the log")
            }
        }
    })
}
