//! The regulator-transfer queue.
//!
//! Items come from complaint events: a referral to a regulator or ombudsman (outbound), and
//! a complaint transferred from a regulator (inbound: report back once answered, by the
//! regulator's deadline). A consumer (the regulator gateway) leases an item for a while,
//! then acknowledges it with the regulator's reference, or lets the lease run out. Each of
//! these is an event in the item's own stream `queue-{item uuid}`, appended with an exact
//! expected version: of two consumers racing for an item, one gets it, and an item is
//! never lost (an unacknowledged item comes back when its lease ends).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use complaints_domain::model::{Channel, ComplaintId};
use complaints_domain::Change;
use complaints_proto::complaints::events::v1 as pb;
use eventlog::{
    Direction as Read, EventLog, ExpectedVersion, NewEvent, Position, RecordedEvent, StreamId,
    Version,
};
use jiff::{SignedDuration, Timestamp};
use prost::Message;
use uuid::Uuid;

use crate::codec::DecodeError;
use crate::projection::{feed, Decoded, Progress};

const NAMESPACE: Uuid = Uuid::from_u128(0x7c3a_51e2_09d4_4f6b_a1c8_3e5f_7d9b_2c40);
const LEASED: &str = "queue.leased";
const EXPIRED: &str = "queue.lease_expired";
const ACKNOWLEDGED: &str = "queue.acknowledged";

/// Which way an item goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    /// To a regulator or ombudsman (the complainant referred it, or a rule requires it).
    Outbound,
    /// From a regulator: report back the outcome.
    Inbound,
}

/// Where an item stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemState {
    /// Inbound, the complaint not answered yet: nothing to report back.
    Waiting,
    Available,
    Leased {
        consumer: String,
        until: Timestamp,
    },
    Acknowledged {
        consumer: String,
        reference: String,
    },
}

/// One queue item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub id: Uuid,
    pub complaint: ComplaintId,
    pub direction: Direction,
    /// The regulator or ombudsman.
    pub body: String,
    /// Why (referral reason), or the regulator's own reference (inbound).
    pub detail: String,
    pub created_at: Timestamp,
    /// The regulator's deadline (inbound).
    pub deadline: Option<Timestamp>,
    pub state: ItemState,
    /// Version of the item's stream (its lease and acknowledgement events).
    pub version: Version,
}

impl Item {
    /// The item's state at `now`: a lease that has run out makes it available again.
    pub fn state_at(&self, now: Timestamp) -> ItemState {
        match &self.state {
            ItemState::Leased { until, .. } if *until <= now => ItemState::Available,
            other => other.clone(),
        }
    }
}

/// The stream of an item.
pub fn stream(item: Uuid) -> StreamId {
    StreamId::new(format!("queue-{item}")).expect("a uuid stream id is valid")
}

fn item_id(complaint: ComplaintId, direction: Direction, body: &str, created: Timestamp) -> Uuid {
    let mut name = Vec::with_capacity(64);
    name.extend_from_slice(complaint.uuid().as_bytes());
    name.push(direction as u8);
    name.extend_from_slice(body.as_bytes());
    name.extend_from_slice(&created.as_microsecond().to_be_bytes());
    Uuid::new_v5(&NAMESPACE, &name)
}

fn time(m: i64) -> Result<Timestamp, DecodeError> {
    Timestamp::from_microsecond(m).map_err(|_| DecodeError("time out of range".into()))
}

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

#[derive(Default)]
struct Inner {
    items: HashMap<Uuid, Item>,
    /// Inbound items by complaint, to make them available once it is answered.
    inbound: HashMap<ComplaintId, Vec<Uuid>>,
    /// Order of the queue: (deadline or creation time, item).
    order: BTreeMap<(Timestamp, Uuid), ()>,
}

/// The queue projection, fed by a log subscription.
#[derive(Default)]
pub struct RegulatorQueue {
    inner: RwLock<Inner>,
    progress: Progress,
}

impl RegulatorQueue {
    /// Starts a queue fed by `log` from its first event.
    pub fn spawn(log: Arc<dyn EventLog>) -> (Arc<Self>, tokio::task::JoinHandle<()>) {
        let queue = Arc::new(Self::default());
        let task = feed("regulator queue", log, queue.clone(), Self::apply_batch);
        (queue, task)
    }

    /// Every item, by id: what a rebuild must reproduce exactly.
    pub fn state(&self) -> BTreeMap<Uuid, Item> {
        let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
        inner.items.iter().map(|(k, v)| (*k, v.clone())).collect()
    }

    /// Waits until the queue has applied `position`.
    pub async fn wait_for(&self, position: Position) {
        self.progress.wait_for(position).await
    }

    fn add(inner: &mut Inner, item: Item) {
        let key = item.deadline.unwrap_or(item.created_at);
        inner.order.insert((key, item.id), ());
        inner.items.insert(item.id, item);
    }

    /// Applies one event of the log.
    pub fn apply(&self, record: &RecordedEvent) -> Result<(), DecodeError> {
        self.apply_batch(&[Decoded::decode(record.clone())?])
    }

    /// Applies a batch of consecutive events. On an event it cannot read, it applies those
    /// before it and says so.
    pub fn apply_batch(&self, batch: &[Decoded]) -> Result<(), DecodeError> {
        let mut inner = self.inner.write().unwrap_or_else(|p| p.into_inner());
        let mut applied = None;
        let mut failed = None;
        for d in batch {
            if let Err(e) = Self::apply_one(&mut inner, d) {
                failed = Some(e);
                break;
            }
            applied = Some(d.record.position);
        }
        drop(inner);
        if let Some(position) = applied {
            self.progress.advance(position);
        }
        failed.map_or(Ok(()), Err)
    }

    fn apply_one(inner: &mut Inner, d: &Decoded) -> Result<(), DecodeError> {
        let record = &d.record;
        if let Some(event) = &d.event {
            match &event.change {
                Change::Registered(r) if r.channel == Channel::RegulatorTransfer => {
                    if let Some(t) = &r.regulator {
                        let id = item_id(r.id, Direction::Inbound, &t.regulator, event.at);
                        inner.inbound.entry(r.id).or_default().push(id);
                        Self::add(
                            inner,
                            Item {
                                id,
                                complaint: r.id,
                                direction: Direction::Inbound,
                                body: t.regulator.clone(),
                                detail: t.reference.clone(),
                                created_at: event.at,
                                deadline: Some(t.deadline),
                                state: ItemState::Waiting,
                                version: 0,
                            },
                        );
                    }
                }
                Change::ReferredToRegulator { body, reason, .. } => {
                    if let Some(complaint) = d.complaint {
                        let id = item_id(complaint, Direction::Outbound, body, event.at);
                        Self::add(
                            inner,
                            Item {
                                id,
                                complaint,
                                direction: Direction::Outbound,
                                body: body.clone(),
                                detail: reason.as_str().to_owned(),
                                created_at: event.at,
                                deadline: None,
                                state: ItemState::Available,
                                version: 0,
                            },
                        );
                    }
                }
                Change::Answered { .. } => {
                    if let Some(complaint) = d.complaint {
                        let ids = inner.inbound.get(&complaint).cloned().unwrap_or_default();
                        for id in ids {
                            if let Some(item) = inner.items.get_mut(&id) {
                                if item.state == ItemState::Waiting {
                                    item.state = ItemState::Available;
                                }
                            }
                        }
                    }
                }
                _ => {}
            }
        } else if record.event_type == crate::transitions::BREACHED {
            // A rule-required referral: the policy sends a breached complaint onwards.
            let t = crate::transitions::decode(&record.payload)?;
            if let Some(body) = t.refer_to {
                let id = item_id(t.id, Direction::Outbound, &body, t.at);
                if !inner.items.contains_key(&id) {
                    Self::add(
                        inner,
                        Item {
                            id,
                            complaint: t.id,
                            direction: Direction::Outbound,
                            body,
                            detail: format!("required: the {} clock breached", t.clock),
                            created_at: t.at,
                            deadline: None,
                            state: ItemState::Available,
                            version: 0,
                        },
                    );
                }
            }
        } else if record.event_type.starts_with("queue.") {
            let (id, state) = decode(&record.event_type, &record.payload)?;
            if let Some(item) = inner.items.get_mut(&id) {
                item.version = record.version;
                if let Some(state) = state {
                    item.state = state;
                }
            }
        }
        Ok(())
    }

    /// The queue as bytes, with the position it stands at: for a snapshot.
    pub(crate) fn save(&self) -> Result<(Position, Vec<u8>), postcard::Error> {
        let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
        let mut items: Vec<Saved> = inner.items.values().map(Saved::of).collect();
        items.sort_by_key(|i| i.id);
        Ok((self.progress.position(), postcard::to_stdvec(&items)?))
    }

    /// Replaces the queue with a saved one standing at `position`.
    pub(crate) fn restore(&self, position: Position, bytes: &[u8]) -> Result<(), DecodeError> {
        let saved: Vec<Saved> = postcard::from_bytes(bytes)
            .map_err(|e| DecodeError(format!("undecodable queue snapshot: {e}")))?;
        let mut inner = Inner::default();
        for s in saved {
            let item = s.item()?;
            if item.direction == Direction::Inbound {
                inner
                    .inbound
                    .entry(item.complaint)
                    .or_default()
                    .push(item.id);
            }
            Self::add(&mut inner, item);
        }
        *self.inner.write().unwrap_or_else(|p| p.into_inner()) = inner;
        self.progress.advance(position);
        Ok(())
    }

    /// Empties the queue (back to position 0).
    pub(crate) fn reset(&self) {
        *self.inner.write().unwrap_or_else(|p| p.into_inner()) = Inner::default();
        self.progress.advance(0);
    }

    /// The last log position applied.
    pub fn position(&self) -> Position {
        self.progress.position()
    }

    /// Items, in queue order (deadline, else creation), as they stand at `now`.
    pub fn items(&self, now: Timestamp, direction: Option<Direction>) -> Vec<(Item, ItemState)> {
        let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
        inner
            .order
            .keys()
            .filter_map(|(_, id)| inner.items.get(id))
            .filter(|i| direction.is_none_or(|d| i.direction == d))
            .map(|i| (i.clone(), i.state_at(now)))
            .collect()
    }

    /// One item.
    pub fn item(&self, id: Uuid) -> Option<Item> {
        let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
        inner.items.get(&id).cloned()
    }
}

/// An item as a snapshot stores it.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Saved {
    id: u128,
    complaint: u128,
    inbound: bool,
    body: String,
    detail: String,
    created_at: i64,
    deadline: Option<i64>,
    /// 0 waiting, 1 available, 2 leased, 3 acknowledged.
    state: u8,
    consumer: String,
    /// Lease end, or the regulator's reference.
    until: i64,
    reference: String,
    version: u64,
}

impl Saved {
    fn of(i: &Item) -> Self {
        let (state, consumer, until, reference) = match &i.state {
            ItemState::Waiting => (0, "", 0, ""),
            ItemState::Available => (1, "", 0, ""),
            ItemState::Leased { consumer, until } => {
                (2, consumer.as_str(), until.as_microsecond(), "")
            }
            ItemState::Acknowledged {
                consumer,
                reference,
            } => (3, consumer.as_str(), 0, reference.as_str()),
        };
        Saved {
            id: i.id.as_u128(),
            complaint: i.complaint.uuid().as_u128(),
            inbound: i.direction == Direction::Inbound,
            body: i.body.clone(),
            detail: i.detail.clone(),
            created_at: i.created_at.as_microsecond(),
            deadline: i.deadline.map(|d| d.as_microsecond()),
            state,
            consumer: consumer.to_owned(),
            until,
            reference: reference.to_owned(),
            version: i.version,
        }
    }

    fn item(self) -> Result<Item, DecodeError> {
        let state = match self.state {
            0 => ItemState::Waiting,
            1 => ItemState::Available,
            2 => ItemState::Leased {
                consumer: self.consumer,
                until: time(self.until)?,
            },
            3 => ItemState::Acknowledged {
                consumer: self.consumer,
                reference: self.reference,
            },
            other => return Err(DecodeError(format!("unknown saved item state {other}"))),
        };
        Ok(Item {
            id: Uuid::from_u128(self.id),
            complaint: ComplaintId::new(Uuid::from_u128(self.complaint)),
            direction: match self.inbound {
                true => Direction::Inbound,
                false => Direction::Outbound,
            },
            body: self.body,
            detail: self.detail,
            created_at: time(self.created_at)?,
            deadline: self.deadline.map(time).transpose()?,
            state,
            version: self.version,
        })
    }
}

/// A queue event's item and the state it leaves the item in (`None`: unchanged).
fn decode(event_type: &str, payload: &[u8]) -> Result<(Uuid, Option<ItemState>), DecodeError> {
    let uuid =
        |s: &str| Uuid::parse_str(s).map_err(|_| DecodeError("item id is not a uuid".into()));
    let bad = |e: prost::DecodeError| DecodeError(e.to_string());
    Ok(match event_type {
        LEASED => {
            let e = pb::QueueLeased::decode(payload).map_err(bad)?;
            (
                uuid(&e.item_id)?,
                Some(ItemState::Leased {
                    consumer: e.consumer,
                    until: time(e.lease_until_micros)?,
                }),
            )
        }
        EXPIRED => {
            let e = pb::QueueLeaseExpired::decode(payload).map_err(bad)?;
            (uuid(&e.item_id)?, Some(ItemState::Available))
        }
        ACKNOWLEDGED => {
            let e = pb::QueueAcknowledged::decode(payload).map_err(bad)?;
            (
                uuid(&e.item_id)?,
                Some(ItemState::Acknowledged {
                    consumer: e.consumer,
                    reference: e.reference,
                }),
            )
        }
        other => return Err(DecodeError(format!("unknown queue event {other}"))),
    })
}

fn new_event(event_type: &str, consumer: &str, payload: Vec<u8>) -> NewEvent {
    NewEvent {
        id: Uuid::new_v4(),
        event_type: event_type.to_owned(),
        schema_version: 1,
        actor: consumer.to_owned(),
        correlation_id: String::new(),
        causation_id: String::new(),
        payload: Bytes::from(payload),
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
        .read_stream(&stream(item.id), 1, Read::Forward, usize::MAX)
        .await?;
    let mut version = 0;
    for e in &events {
        version = e.version;
        if let (_, Some(s)) = decode(&e.event_type, &e.payload)? {
            state = s;
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
        None => queue
            .items(now, direction)
            .into_iter()
            .filter(|(_, s)| *s == ItemState::Available)
            .map(|(i, _)| i)
            .collect(),
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
                let expired = pb::QueueLeaseExpired {
                    item_id: candidate.id.to_string(),
                    complaint_id: candidate.complaint.uuid().to_string(),
                    consumer: holder.clone(),
                    lease_until_micros: until.as_microsecond(),
                };
                events.push(new_event(EXPIRED, consumer, expired.encode_to_vec()));
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
        let leased = pb::QueueLeased {
            item_id: candidate.id.to_string(),
            complaint_id: candidate.complaint.uuid().to_string(),
            consumer: consumer.to_owned(),
            lease_until_micros: until.as_microsecond(),
        };
        events.push(new_event(LEASED, consumer, leased.encode_to_vec()));
        let expected = if version == 0 {
            ExpectedVersion::NoStream
        } else {
            ExpectedVersion::Exact(version)
        };
        match log.append(&stream(candidate.id), expected, events).await {
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
    let ack = pb::QueueAcknowledged {
        item_id: item.to_string(),
        complaint_id: candidate.complaint.uuid().to_string(),
        consumer: consumer.to_owned(),
        reference: reference.to_owned(),
    };
    match log
        .append(
            &stream(item),
            ExpectedVersion::Exact(version),
            vec![new_event(ACKNOWLEDGED, consumer, ack.encode_to_vec())],
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
