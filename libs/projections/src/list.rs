//! The complaint list: every complaint's summary, pageable in receipt order and
//! filterable by status, unit, category and regime. The example of a projection: one
//! file implementing [`crate::Projection`] (through [`crate::Fold`]), registered in
//! [`crate::Projections::new`].

use std::collections::{BTreeMap, BTreeSet};

use complaints_domain::model::{ComplaintId, Status};
use complaints_domain::{status_after, Change};
use complaints_events::DecodeError;
use eventlog::Version;
use jiff::Timestamp;

use crate::compact::{micros, time, Micros, Names, RowIndex, Sym, NO_SYM};
use crate::feed::Decoded;
use crate::projection::{Fold, Folding, Kept, SaveError};

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

/// The list's state (see [`ComplaintList`]).
#[derive(Default)]
pub struct Inner {
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
        self.by_id.reserve(rows.len(), |r| rows[r as usize].id);
        for (i, row) in rows.iter().enumerate() {
            self.by_id
                .insert(&row.id, i as u32, |r| rows[r as usize].id);
            self.order.insert(order_key(row.received_at, row.id));
        }
    }

    fn apply_one(&mut self, d: &Decoded) {
        let Some((id, event)) = d.complaint_event() else {
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
    kept: Kept<Inner>,
}

impl Folding for ComplaintList {
    type State = Inner;

    fn kept(&self) -> &Kept<Inner> {
        &self.kept
    }
}

impl Fold for Inner {
    const NAME: &'static str = "list";

    fn apply(&mut self, d: &Decoded) {
        self.apply_one(d);
    }

    fn encode(&self) -> Result<Vec<u8>, SaveError> {
        Ok(postcard::to_stdvec(&self.data)?)
    }

    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let data: ListData = postcard::from_bytes(bytes)
            .map_err(|e| DecodeError(format!("undecodable list snapshot: {e}")))?;
        let mut inner = Inner {
            data,
            ..Inner::default()
        };
        inner.reindex();
        Ok(inner)
    }
}

impl ComplaintList {
    /// Every complaint's summary, by id: what a rebuild must reproduce exactly.
    pub fn state(&self) -> BTreeMap<ComplaintId, Summary> {
        let inner = self.kept.read();
        let mut out: BTreeMap<ComplaintId, Summary> = BTreeMap::new();
        for row in &inner.data.rows {
            let s = inner.summary(row);
            out.insert(s.id, s);
        }
        out
    }

    /// One page of complaints matching `query`.
    pub fn query(&self, query: &ListQuery) -> Page {
        let inner = self.kept.read();
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
        let inner = self.kept.read();
        let i = inner.row_of(id)?;
        Some(inner.summary(&inner.data.rows[i as usize]))
    }
}
