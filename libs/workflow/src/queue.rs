//! Leasing and acknowledging items of the regulator-transfer queue.
//!
//! A consumer (the regulator gateway) leases an item for a while, then acknowledges it
//! with the regulator's reference, or lets the lease run out. Each of these is an event in
//! the item's own stream `queue-{item uuid}`, appended with an exact expected version: of
//! two consumers racing for an item, one gets it, and an item is never lost (an
//! unacknowledged item comes back when its lease ends). The items themselves come from the
//! projection [`RegulatorQueue`].

use complaints_events::stored::queue_stream;
use complaints_events::{DecodeError, QueueChange, QueueEvent, Stored};
use complaints_projections::queue::{Direction, Item, ItemState, RegulatorQueue, Taken};
use eventlog::{Direction as Read, EventLog, ExpectedVersion, NewEvent, Version};
use jiff::{SignedDuration, Timestamp};
use uuid::Uuid;

/// Why a lease or acknowledgement was refused.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("queue item {0} not found")]
    NotFound(Uuid),
    #[error("no queue item is available")]
    Empty,
    #[error("{0}")]
    Refused(String),
    /// Another consumer changed the item at the same time.
    #[error("queue item {0} changed concurrently: retry")]
    Conflict(Uuid),
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error(transparent)]
    Log(#[from] eventlog::Error),
}

fn new_event(consumer: &str, event: &QueueEvent) -> NewEvent {
    NewEvent {
        id: Uuid::new_v4(),
        event_type: event.event_type().to_owned(),
        schema_version: 1,
        actor: consumer.to_owned(),
        correlation_id: String::new(),
        causation_id: String::new(),
        payload: event.encode(),
    }
}

/// The item's state from its own stream (the source of truth for leases).
async fn current(log: &dyn EventLog, item: &Item) -> Result<(ItemState, Version), QueueError> {
    let mut state = item.state.clone();
    if matches!(
        state,
        ItemState::Leased { .. } | ItemState::Acknowledged { .. }
    ) {
        // The projection may lag; the stream decides below.
        state = ItemState::Available;
    }
    let events = log
        .read_stream(&queue_stream(item.id), 1, Read::Forward, usize::MAX)
        .await?;
    let mut version = 0;
    for e in &events {
        version = e.version;
        if let Stored::Queue(q) = Stored::decode(e).map_err(|d| d.at(e.position))? {
            state = state.after(&q.change);
        }
    }
    Ok((state, version))
}

/// Leases `item` (or, without one, the first available item of `direction`, in queue order)
/// to `consumer` for `lease`, as of `now`.
pub async fn lease(
    log: &dyn EventLog,
    queue: &RegulatorQueue,
    item: Option<Uuid>,
    direction: Option<Direction>,
    consumer: &str,
    lease: SignedDuration,
    now: Timestamp,
) -> Result<Item, QueueError> {
    let candidates: Vec<Item> = match item {
        Some(id) => vec![queue.item(id).ok_or(QueueError::NotFound(id))?],
        None => {
            // Only the available items are copied out (most of a long-lived queue is
            // acknowledged).
            let mut available = Vec::new();
            queue.page(now, None, |item, state| {
                if state == ItemState::Available && direction.is_none_or(|d| item.direction == d) {
                    available.push(item.clone());
                    Taken::Taken
                } else {
                    Taken::Skipped
                }
            });
            available
        }
    };
    for candidate in candidates {
        if candidate.state == ItemState::Waiting {
            return Err(QueueError::Refused(
                "the complaint is not answered yet: nothing to report back".into(),
            ));
        }
        let (state, version) = current(log, &candidate).await?;
        let mut events = Vec::new();
        match &state {
            ItemState::Available => {}
            ItemState::Leased {
                consumer: holder,
                until,
            } if *until <= now => {
                let expired = QueueEvent {
                    item: candidate.id,
                    complaint: candidate.complaint,
                    change: QueueChange::LeaseExpired {
                        consumer: holder.clone(),
                        until: *until,
                    },
                };
                events.push(new_event(consumer, &expired));
            }
            ItemState::Leased {
                consumer: holder,
                until,
            } => {
                if item.is_some() {
                    return Err(QueueError::Refused(format!(
                        "leased by {holder} until {until}"
                    )));
                }
                continue;
            }
            ItemState::Acknowledged { .. } | ItemState::Waiting => {
                if item.is_some() {
                    return Err(QueueError::Refused(
                        "the item is already acknowledged".into(),
                    ));
                }
                continue;
            }
        }
        let until = now
            .checked_add(lease)
            .map_err(|_| QueueError::Refused("lease too long".into()))?;
        let leased = QueueEvent {
            item: candidate.id,
            complaint: candidate.complaint,
            change: QueueChange::Leased {
                consumer: consumer.to_owned(),
                until,
            },
        };
        events.push(new_event(consumer, &leased));
        let expected = if version == 0 {
            ExpectedVersion::NoStream
        } else {
            ExpectedVersion::Exact(version)
        };
        match log
            .append(&queue_stream(candidate.id), expected, events)
            .await
        {
            Ok(r) => {
                return Ok(Item {
                    state: ItemState::Leased {
                        consumer: consumer.to_owned(),
                        until,
                    },
                    version: r.last_version,
                    ..candidate
                })
            }
            Err(eventlog::Error::WrongExpectedVersion { .. }) if item.is_none() => continue,
            Err(eventlog::Error::WrongExpectedVersion { .. }) => {
                return Err(QueueError::Conflict(candidate.id))
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(QueueError::Empty)
}

/// Acknowledges `item`, leased by `consumer`, with the regulator's `reference`.
pub async fn acknowledge(
    log: &dyn EventLog,
    queue: &RegulatorQueue,
    item: Uuid,
    consumer: &str,
    reference: &str,
    now: Timestamp,
) -> Result<Item, QueueError> {
    let candidate = queue.item(item).ok_or(QueueError::NotFound(item))?;
    let (state, version) = current(log, &candidate).await?;
    match &state {
        ItemState::Leased {
            consumer: holder,
            until,
        } if holder == consumer && *until > now => {}
        ItemState::Leased {
            consumer: holder,
            until,
        } if holder == consumer => {
            return Err(QueueError::Refused(format!(
                "your lease ended at {until}: lease the item again"
            )))
        }
        ItemState::Leased { .. } => {
            return Err(QueueError::Refused(
                "the item is leased by another consumer".into(),
            ))
        }
        ItemState::Acknowledged { reference: r, .. } => {
            return Err(QueueError::Refused(format!(
                "the item is already acknowledged ({r})"
            )))
        }
        ItemState::Available | ItemState::Waiting => {
            return Err(QueueError::Refused(
                "lease the item before acknowledging it".into(),
            ))
        }
    }
    let ack = QueueEvent {
        item,
        complaint: candidate.complaint,
        change: QueueChange::Acknowledged {
            consumer: consumer.to_owned(),
            reference: reference.to_owned(),
        },
    };
    match log
        .append(
            &queue_stream(item),
            ExpectedVersion::Exact(version),
            vec![new_event(consumer, &ack)],
        )
        .await
    {
        Ok(r) => Ok(Item {
            state: ItemState::Acknowledged {
                consumer: consumer.to_owned(),
                reference: reference.to_owned(),
            },
            version: r.last_version,
            ..candidate
        }),
        Err(eventlog::Error::WrongExpectedVersion { .. }) => Err(QueueError::Conflict(item)),
        Err(e) => Err(e.into()),
    }
}
