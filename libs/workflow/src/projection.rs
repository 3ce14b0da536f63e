//! The complaint list: a summary per complaint, kept in memory, fed by a subscription to
//! the event log from the start (rebuilt on every start; persisted projections come with
//! the SLA views). Readers can wait until it has seen a position, so a list taken after a
//! write reflects that write.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};

use complaints_domain::model::{ComplaintId, Status};
use complaints_domain::{status_after, Change};
use eventlog::{EventLog, Position, RecordedEvent, Version};
use futures::StreamExt;
use jiff::Timestamp;
use tokio::sync::watch;

use crate::codec::{self, DecodeError};

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

#[derive(Default)]
struct Inner {
    by_id: HashMap<ComplaintId, Summary>,
    order: BTreeSet<(Timestamp, ComplaintId)>,
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
        let task = feed("complaint list", log, list.clone(), Self::apply);
        (list, task)
    }

    /// Applies one event of the log (events of other streams are skipped).
    pub fn apply(&self, record: &RecordedEvent) -> Result<(), DecodeError> {
        if record.event_type.starts_with("complaint.") {
            let event = codec::decode(&record.event_type, &record.payload)?;
            let mut inner = self.inner.write().unwrap_or_else(|p| p.into_inner());
            match &event.change {
                Change::Registered(r) => {
                    let summary = Summary {
                        id: r.id,
                        status: Status::Received,
                        unit: r.unit.clone(),
                        handler: None,
                        category: r.category.clone(),
                        regime: r.regime.clone(),
                        region: r.region.clone(),
                        received_at: r.received_at,
                        updated_at: event.at,
                        version: record.version,
                    };
                    inner.order.insert((r.received_at, r.id));
                    inner.by_id.insert(r.id, summary);
                }
                change => {
                    let id = record
                        .stream
                        .as_str()
                        .strip_prefix("complaint-")
                        .and_then(ComplaintId::parse_name);
                    if let Some(summary) = id.and_then(|id| inner.by_id.get_mut(&id)) {
                        summary.status = status_after(summary.status, change);
                        summary.updated_at = event.at;
                        summary.version = record.version;
                        if let Change::Assigned { unit, handler } = change {
                            summary.unit = unit.clone();
                            summary.handler = Some(handler.clone());
                        }
                    }
                }
            }
        }
        self.progress.advance(record.position);
        Ok(())
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
        let mut next = None;
        let range = match query.after {
            Some(after) => inner
                .order
                .range((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded)),
            None => inner.order.range(..),
        };
        for key in range {
            let Some(s) = inner.by_id.get(&key.1) else {
                continue;
            };
            let matches = query.status.is_none_or(|st| s.status == st)
                && query.unit.as_ref().is_none_or(|u| &s.unit == u)
                && query.category.as_ref().is_none_or(|c| &s.category == c)
                && query.regime.as_ref().is_none_or(|r| &s.regime == r);
            if !matches {
                continue;
            }
            if items.len() == size {
                next = items
                    .last()
                    .map(|last: &Summary| (last.received_at, last.id));
                break;
            }
            items.push(s.clone());
        }
        Page { items, next }
    }

    /// A complaint's summary.
    pub fn get(&self, id: ComplaintId) -> Option<Summary> {
        let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
        inner.by_id.get(&id).cloned()
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

/// Feeds `projection` every event of `log` from the start, with `apply`, until the log
/// closes; an event it cannot read stops it, loudly (a projection never skips one).
pub(crate) fn feed<P: Send + Sync + 'static>(
    name: &'static str,
    log: Arc<dyn EventLog>,
    projection: Arc<P>,
    apply: fn(&P, &RecordedEvent) -> Result<(), DecodeError>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut events = log.subscribe(1);
        while let Some(item) = events.next().await {
            match item {
                Ok(record) => {
                    if let Err(e) = apply(&projection, &record) {
                        tracing::error!(projection = name, position = record.position, error = %e, "cannot read an event; the projection stops here");
                        return;
                    }
                }
                Err(eventlog::Error::Closed) => return,
                Err(e) => {
                    tracing::error!(projection = name, error = %e, "subscription failed");
                    return;
                }
            }
        }
    })
}
