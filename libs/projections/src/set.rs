//! The projections a service keeps, registered in one place and fed together by one
//! reader, with their snapshot.
//!
//! With a [`SnapshotStore`], they start from their last snapshot (checked against the
//! log) instead of position 1, and are saved again every so many events and when they
//! stop.

use std::any::Any;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use complaints_events::DecodeError;
use eventlog::{EventLog, Position};
use tokio::sync::{mpsc, watch};

use crate::board::SlaBoard;
use crate::checkpoint::{self, Checkpoints};
use crate::feed::{read_pages, Batch, Decoded};
use crate::list::ComplaintList;
use crate::projection::Projection;
use crate::queue::RegulatorQueue;
use crate::reports::Reports;
use crate::snapshot::{Anchor, Snapshot, SnapshotStore};

/// A registered projection, as the feeder drives it and as callers look it up.
struct Member {
    projection: Arc<dyn Projection>,
    typed: Arc<dyn Any + Send + Sync>,
}

/// A projection was asked for that is not registered.
#[derive(Debug, thiserror::Error)]
#[error("no projection {0} is registered")]
pub struct NotRegistered(&'static str);

/// The projections a service keeps, fed together by one reader.
pub struct Projections {
    members: Vec<Member>,
    /// The first position read from the log once started (1: no snapshot used).
    started_from: AtomicU64,
    /// Where checkpoints for views of the past are written as the log is applied.
    checkpoints: Option<Checkpoints>,
}

impl Projections {
    /// The service's projections, empty; the board computes with `engine` until the log
    /// records rules. **A new projection is registered here, with one line.**
    pub fn new(engine: Arc<complaints_sla::Engine>) -> Self {
        Self::empty()
            .with(ComplaintList::default())
            .with(SlaBoard::new(engine))
            .with(RegulatorQueue::default())
            .with(Reports::default())
    }

    /// No projections.
    pub fn empty() -> Self {
        Self {
            members: Vec::new(),
            started_from: AtomicU64::new(0),
            checkpoints: None,
        }
    }

    /// These, writing `checkpoints` of the board and queue along the log once spawned.
    #[must_use]
    pub fn with_checkpoints(mut self, checkpoints: Checkpoints) -> Self {
        self.checkpoints = Some(checkpoints);
        self
    }

    /// These and `projection`.
    #[must_use]
    pub fn with<P: Projection>(mut self, projection: P) -> Self {
        let projection = Arc::new(projection);
        self.members.push(Member {
            projection: projection.clone(),
            typed: projection,
        });
        self
    }

    /// The registered projection of type `P`.
    pub fn get<P: Projection>(&self) -> Result<Arc<P>, NotRegistered> {
        self.members
            .iter()
            .find_map(|m| m.typed.clone().downcast::<P>().ok())
            .ok_or(NotRegistered(std::any::type_name::<P>()))
    }

    fn each(&self) -> impl Iterator<Item = &Arc<dyn Projection>> {
        self.members.iter().map(|m| &m.projection)
    }

    /// The first position they read from the log once started: 1 if they rebuilt from
    /// scratch, the position after their snapshot if they restored one (`None` until the
    /// started task has decided).
    pub fn started_from(&self) -> Option<Position> {
        match self.started_from.load(Ordering::Acquire) {
            0 => None,
            p => Some(p),
        }
    }

    /// Each projection's name and the last log position it applied.
    pub fn positions(&self) -> Vec<(&'static str, Position)> {
        self.each().map(|p| (p.name(), p.position())).collect()
    }

    /// Waits until every projection has applied `position`.
    pub async fn wait_for(&self, position: Position) {
        for p in self.each() {
            p.progress().wait_for(position).await;
        }
    }

    fn apply_batch(&self, batch: &[Decoded]) -> Result<(), DecodeError> {
        self.each().try_for_each(|p| p.apply_batch(batch))
    }

    /// Starts feeding them from `log`: from their snapshot in `store` if it has a valid
    /// one, else from position 1; saving a snapshot every `every` events applied (never if
    /// 0) and when they stop. The task ends, after that last snapshot, when `stop` turns
    /// true or the log closes.
    pub fn spawn(
        self: &Arc<Self>,
        log: Arc<dyn EventLog>,
        store: Option<SnapshotStore>,
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
                            .store(snapshot.position + 1, Ordering::Release);
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
                        tracing::warn!(error = %e, "no usable snapshot of the projections; rebuilding from the log");
                    }
                }
            }
            projections.started_from.store(from, Ordering::Release);
            let (tx, mut rx) = mpsc::channel::<Batch>(2);
            tokio::spawn(read_pages(log, from, tx, "projections", Some(stop)));
            let mut since_snapshot = 0u64;
            let mut anchor = None;
            // The snapshot being written, if one is.
            let mut writing: Option<tokio::task::JoinHandle<()>> = None;
            // Checkpoints: one due (a multiple of `every` passed), the one being written.
            let (mut checkpoint_due, mut checkpointing) = (false, None);
            let mut applied = from - 1;
            while let Some((batch, failed)) = rx.recv().await {
                let result = projections.apply_batch(&batch);
                if let Some(last) = batch.last() {
                    since_snapshot += batch.len() as u64;
                    anchor = Some(Anchor::of(&last.record));
                }
                if let Some(e) = result.err().or(failed) {
                    tracing::error!(error = %e, "cannot read an event; the projections stop here");
                    return;
                }
                if let (Some(checkpoints), Some(at)) = (&projections.checkpoints, anchor) {
                    checkpoint_due |= checkpoints.due(applied, at.position);
                    applied = at.position;
                    let idle = checkpointing
                        .as_ref()
                        .is_none_or(tokio::task::JoinHandle::is_finished);
                    if checkpoint_due && idle {
                        if let Some(captured) =
                            capture(&projections, at, Some(&checkpoint::SECTIONS)).await
                        {
                            checkpointing = Some(write(
                                &checkpoints.store(at.position),
                                at,
                                captured,
                                CHECKPOINT,
                            ));
                            checkpoint_due = false;
                        }
                    }
                }
                let (Some(store), Some(at)) = (&store, anchor) else {
                    continue;
                };
                let idle = writing
                    .as_ref()
                    .is_none_or(tokio::task::JoinHandle::is_finished);
                if every > 0 && since_snapshot >= every && idle {
                    if let Some(captured) = capture(&projections, at, None).await {
                        writing = Some(write(store, at, captured, SNAPSHOT));
                        since_snapshot = 0;
                    }
                }
            }
            // Stopped (or the log closed): save where they stand, for the next start.
            for w in [writing, checkpointing].into_iter().flatten() {
                let _ = w.await;
            }
            if let (Some(store), Some(at), true) = (&store, anchor, since_snapshot > 0) {
                if let Some(captured) = capture(&projections, at, None).await {
                    let _ = write(store, at, captured, SNAPSHOT).await;
                }
            }
        })
    }

    fn restore(&self, snapshot: &Snapshot) -> Result<(), DecodeError> {
        let work = self
            .each()
            .map(|p| {
                let name = p.name();
                let section = snapshot
                    .section(name)
                    .ok_or_else(|| DecodeError(format!("the snapshot has no {name}")))?;
                Ok((p, section))
            })
            .collect::<Result<Vec<_>, DecodeError>>()?;
        // The sections are independent: the largest sets the time (a start after ten
        // years of history waits for this).
        each_on_its_own_thread(&work, |(p, section)| p.restore(snapshot.position, section))
            .into_iter()
            .collect::<Result<Vec<()>, DecodeError>>()?;
        Ok(())
    }

    fn clear(&self) {
        self.each().for_each(|p| p.reset());
    }

    /// Every projection (or those named in `only`) as a snapshot section, if they all
    /// stand at `anchor`.
    fn capture(&self, anchor: &Anchor, only: Option<&[&str]>) -> Result<Option<Sections>, String> {
        let chosen: Vec<_> = self
            .each()
            .filter(|p| only.is_none_or(|names| names.contains(&p.name())))
            .collect();
        // Applying waits while the sections are encoded (they must stand at one position),
        // and so does every read that waits for the projections to catch up: the largest
        // sets the pause, not their sum.
        let saved = each_on_its_own_thread(&chosen, |p| p.save());
        let mut sections = Vec::with_capacity(chosen.len());
        for (p, saved) in chosen.iter().zip(saved) {
            let (position, bytes) = saved.map_err(|e| format!("{}: {e}", p.name()))?;
            if position != anchor.position {
                return Ok(None);
            }
            sections.push((p.name().to_owned(), bytes));
        }
        Ok(Some(sections))
    }
}

type Sections = Vec<(String, Vec<u8>)>;

/// `f` of each of `items`, each on a thread of its own, in their order.
fn each_on_its_own_thread<I: Sync, R: Send>(items: &[I], f: impl Fn(&I) -> R + Sync) -> Vec<R> {
    let f = &f;
    std::thread::scope(|scope| {
        let running: Vec<_> = items.iter().map(|i| scope.spawn(move || f(i))).collect();
        running
            .into_iter()
            // A panic in one is a bug; it is the caller's, as it would be here.
            .map(|r| {
                r.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

/// What the log calls the two kinds of saved state ("... saved").
const SNAPSHOT: &str = "projections";
const CHECKPOINT: &str = "checkpoint for views of the past";

/// Sections taken at one position, and how long applying waited for them.
struct Captured {
    sections: Sections,
    took: std::time::Duration,
}

/// Takes the projections' sections at `anchor` (applying pauses meanwhile: they must not
/// move), off the runtime's workers.
async fn capture(
    projections: &Arc<Projections>,
    anchor: Anchor,
    only: Option<&'static [&'static str]>,
) -> Option<Captured> {
    let projections = projections.clone();
    let started = std::time::Instant::now();
    let captured = tokio::task::spawn_blocking(move || projections.capture(&anchor, only)).await;
    match captured {
        Ok(Ok(sections)) => sections.map(|sections| Captured {
            sections,
            took: started.elapsed(),
        }),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "cannot encode the projections; no snapshot this time");
            None
        }
        Err(_) => None,
    }
}

/// Writes a snapshot (a file written and synced) on a blocking thread; applying goes on.
/// `what` names it in the log: the projections' snapshot or a checkpoint.
fn write(
    store: &SnapshotStore,
    anchor: Anchor,
    captured: Captured,
    what: &'static str,
) -> tokio::task::JoinHandle<()> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || {
        let started = std::time::Instant::now();
        match store.save(&anchor, captured.sections) {
            Ok(()) => tracing::info!(
                position = anchor.position,
                millis = started.elapsed().as_millis() as u64,
                // How long applying (and reads waiting for it) paused while it was taken.
                capture_millis = captured.took.as_millis() as u64,
                "{what} saved"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "cannot save the {what}; a later start or view of the past reads more of the log");
            }
        }
    })
}
