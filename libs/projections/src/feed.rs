//! Feeding projections from the log: one reader reads it in pages, decoding each event
//! once ([`Decoded`]) while the previous page is being applied, and hands every page on
//! as a batch. [`Progress`] says how far a projection has applied the log, so a reader
//! can wait until a query reflects a write.

use std::sync::Arc;

use complaints_domain::model::ComplaintId;
use complaints_domain::Event;
use complaints_events::{DecodeError, Stored};
use eventlog::{EventLog, Position, RecordedEvent};
use tokio::sync::{mpsc, watch};

use crate::projection::Projection;

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

/// An event of the log, with its payload decoded once for every projection.
#[derive(Debug, Clone)]
pub struct Decoded {
    pub record: RecordedEvent,
    pub stored: Stored,
}

impl Decoded {
    /// Decodes `record`'s payload by its type.
    pub fn decode(record: RecordedEvent) -> Result<Self, DecodeError> {
        let stored = Stored::decode(&record)?;
        Ok(Self { record, stored })
    }

    /// The complaint event, with its complaint, if this is one.
    pub fn complaint_event(&self) -> Option<(ComplaintId, &Event)> {
        match &self.stored {
            Stored::Complaint { complaint, event } => Some((*complaint, event)),
            _ => None,
        }
    }
}

/// The largest batch the feeder reads and applies at once.
const PAGE: usize = 4096;

/// What the reader hands the applier: a decoded page, and the error that cut it short.
pub(crate) type Batch = (Vec<Decoded>, Option<DecodeError>);

/// Reads the log from `from` in pages, decoding them, until the log closes or an event
/// cannot be read; waits for the head to move when it has read everything.
pub(crate) async fn read_pages(
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
                    failed = Some(e.at(position));
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

/// Feeds `projection` alone every event of `log` from the start until the log closes; an
/// event it cannot read stops it, loudly (a projection never skips one). The service
/// feeds all its projections together instead ([`crate::Projections`]).
pub fn spawn<P: Projection>(
    projection: P,
    log: Arc<dyn EventLog>,
) -> (Arc<P>, tokio::task::JoinHandle<()>) {
    let projection = Arc::new(projection);
    let name = projection.name();
    let (tx, mut rx) = mpsc::channel::<Batch>(2);
    tokio::spawn(read_pages(log, 1, tx, name, None));
    let fed = projection.clone();
    // Applied on a runtime worker (a batch takes milliseconds), while the reader reads
    // and decodes the next page on another.
    let task = tokio::spawn(async move {
        while let Some((batch, failed)) = rx.recv().await {
            let result = fed.apply_batch(&batch);
            if let Some(e) = result.err().or(failed) {
                tracing::error!(projection = name, error = %e, "cannot read an event; the projection stops here");
                return;
            }
        }
    });
    (projection, task)
}
