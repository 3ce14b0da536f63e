//! The regulator-transfer queue projection.
//!
//! Items come from complaint events: a referral to a regulator or ombudsman (outbound), a
//! complaint transferred from a regulator (inbound: report back once answered, by the
//! regulator's deadline), and a breach whose policy requires a referral. A consumer (the
//! regulator gateway) leases an item, then acknowledges it, or lets the lease run out:
//! events of the item's own stream (`complaints_workflow::queue` appends them), which
//! [`ItemState::after`] folds.

use std::collections::{BTreeMap, HashMap};

use complaints_domain::model::{Channel, ComplaintId};
use complaints_domain::{Change, Event};
use complaints_events::{Crossing, DecodeError, QueueChange, QueueEvent, Stored};
use eventlog::Version;
use jiff::Timestamp;
use uuid::Uuid;

use crate::feed::Decoded;
use crate::projection::{Fold, Folding, Kept, SaveError};

const NAMESPACE: Uuid = Uuid::from_u128(0x7c3a_51e2_09d4_4f6b_a1c8_3e5f_7d9b_2c40);

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

/// What [`RegulatorQueue::page`]'s caller did with an item offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    /// Not on the page (filtered out).
    Skipped,
    Taken,
    /// The page is full: the item goes on the next page.
    Full,
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

impl ItemState {
    /// The state an item's stream event leaves it in.
    #[must_use]
    pub fn after(self, change: &QueueChange) -> ItemState {
        match change {
            QueueChange::Leased { consumer, until } => ItemState::Leased {
                consumer: consumer.clone(),
                until: *until,
            },
            QueueChange::LeaseExpired { .. } => ItemState::Available,
            QueueChange::Acknowledged {
                consumer,
                reference,
            } => ItemState::Acknowledged {
                consumer: consumer.clone(),
                reference: reference.clone(),
            },
        }
    }
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

/// The queue's state (see [`RegulatorQueue`]).
#[derive(Default)]
pub struct Inner {
    items: HashMap<Uuid, Item>,
    /// Inbound items by complaint, to make them available once it is answered.
    inbound: HashMap<ComplaintId, Vec<Uuid>>,
    /// Order of the queue: (deadline or creation time, item).
    order: BTreeMap<(Timestamp, Uuid), ()>,
}

/// The queue projection, fed by a log subscription.
#[derive(Default)]
pub struct RegulatorQueue {
    kept: Kept<Inner>,
}

impl Folding for RegulatorQueue {
    type State = Inner;

    fn kept(&self) -> &Kept<Inner> {
        &self.kept
    }
}

impl Fold for Inner {
    const NAME: &'static str = "queue";

    fn apply(&mut self, d: &Decoded) {
        self.apply_one(d);
    }

    fn encode(&self) -> Result<Vec<u8>, SaveError> {
        let mut items: Vec<Saved> = self.items.values().map(Saved::of).collect();
        items.sort_by_key(|i| i.id);
        Ok(postcard::to_stdvec(&items)?)
    }

    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
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
            inner.add(item);
        }
        Ok(inner)
    }
}

impl Inner {
    fn add(&mut self, item: Item) {
        let key = item.deadline.unwrap_or(item.created_at);
        self.order.insert((key, item.id), ());
        self.items.insert(item.id, item);
    }

    fn apply_one(&mut self, d: &Decoded) {
        match &d.stored {
            Stored::Complaint { complaint, event } => self.complaint_event(*complaint, event),
            Stored::Crossing(crossing) => self.crossing(crossing),
            Stored::Queue(e) => self.queue_event(e, d.record.version),
            Stored::RulesLoaded(_)
            | Stored::Erasure(_)
            | Stored::DigestSigned
            | Stored::RepeatedCause(_)
            | Stored::Unknown => {}
        }
    }

    fn complaint_event(&mut self, complaint: ComplaintId, event: &Event) {
        match &event.change {
            Change::Registered(r) if r.channel == Channel::RegulatorTransfer => {
                if let Some(t) = &r.regulator {
                    let id = item_id(r.id, Direction::Inbound, &t.regulator, event.at);
                    self.inbound.entry(r.id).or_default().push(id);
                    self.add(Item {
                        id,
                        complaint: r.id,
                        direction: Direction::Inbound,
                        body: t.regulator.clone(),
                        detail: t.reference.clone(),
                        created_at: event.at,
                        deadline: Some(t.deadline),
                        state: ItemState::Waiting,
                        version: 0,
                    });
                }
            }
            Change::ReferredToRegulator { body, reason, .. } => {
                let id = item_id(complaint, Direction::Outbound, body, event.at);
                self.add(Item {
                    id,
                    complaint,
                    direction: Direction::Outbound,
                    body: body.clone(),
                    detail: reason.as_str().to_owned(),
                    created_at: event.at,
                    deadline: None,
                    state: ItemState::Available,
                    version: 0,
                });
            }
            Change::Answered { .. } => {
                let ids = self.inbound.get(&complaint).cloned().unwrap_or_default();
                for id in ids {
                    if let Some(item) = self.items.get_mut(&id) {
                        if item.state == ItemState::Waiting {
                            item.state = ItemState::Available;
                        }
                    }
                }
            }
            // Nothing to send to or report back to a regulator.
            Change::Registered(_)
            | Change::Acknowledged
            | Change::Declined { .. }
            | Change::Merged { .. }
            | Change::Assigned { .. }
            | Change::ClassifiedComplex { .. }
            | Change::FindingsRecorded { .. }
            | Change::RedressProposed { .. }
            | Change::HoldingResponseSent { .. }
            | Change::ExtensionRequested { .. }
            | Change::ExtensionApproved { .. }
            | Change::ClockPaused { .. }
            | Change::ClockResumed { .. }
            | Change::NewFactsAdded { .. }
            | Change::Withdrawn { .. }
            | Change::ReviewRequested { .. }
            | Change::ReviewAnswered { .. }
            | Change::RegulatorOutcomeRecorded { .. }
            | Change::SatisfactionRecorded { .. }
            | Change::Closed
            | Change::Reopened { .. } => {}
        }
    }

    /// A breach whose policy requires a referral sends the complaint onwards.
    fn crossing(&mut self, t: &Crossing) {
        let (true, Some(body)) = (t.threshold >= 100, &t.refer_to) else {
            return;
        };
        let id = item_id(t.id, Direction::Outbound, body, t.at);
        if !self.items.contains_key(&id) {
            self.add(Item {
                id,
                complaint: t.id,
                direction: Direction::Outbound,
                body: body.clone(),
                detail: format!("required: the {} clock breached", t.clock),
                created_at: t.at,
                deadline: None,
                state: ItemState::Available,
                version: 0,
            });
        }
    }

    fn queue_event(&mut self, e: &QueueEvent, version: Version) {
        if let Some(item) = self.items.get_mut(&e.item) {
            item.version = version;
            item.state = std::mem::replace(&mut item.state, ItemState::Available).after(&e.change);
        }
    }
}

impl RegulatorQueue {
    /// Every item, by id: what a rebuild must reproduce exactly.
    pub fn state(&self) -> BTreeMap<Uuid, Item> {
        let inner = self.kept.read();
        inner.items.iter().map(|(k, v)| (*k, v.clone())).collect()
    }

    /// Items, in queue order (deadline, else creation), as they stand at `now`.
    pub fn items(&self, now: Timestamp, direction: Option<Direction>) -> Vec<(Item, ItemState)> {
        let mut items = Vec::new();
        self.page(now, None, |item, state| {
            if direction.is_none_or(|d| item.direction == d) {
                items.push((item.clone(), state));
                Taken::Taken
            } else {
                Taken::Skipped
            }
        });
        items
    }

    /// Offers `take` the items in queue order after the key `after` (from the start when
    /// `None`), each with its state at `now`, until it answers [`Taken::Full`]; returns the
    /// key of the last item taken when one was refused as `Full` (the `after` of the next
    /// page), `None` when every item was offered.
    pub fn page(
        &self,
        now: Timestamp,
        after: Option<(Timestamp, Uuid)>,
        mut take: impl FnMut(&Item, ItemState) -> Taken,
    ) -> Option<(Timestamp, Uuid)> {
        use std::ops::Bound;
        let inner = self.kept.read();
        let from = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut last = after;
        for key in inner.order.range((from, Bound::Unbounded)).map(|(k, ())| k) {
            let Some(item) = inner.items.get(&key.1) else {
                continue;
            };
            match take(item, item.state_at(now)) {
                Taken::Skipped => {}
                Taken::Taken => last = Some(*key),
                Taken::Full => return last,
            }
        }
        None
    }

    /// One item.
    pub fn item(&self, id: Uuid) -> Option<Item> {
        let inner = self.kept.read();
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
            deadline: i.deadline.map(jiff::Timestamp::as_microsecond),
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
