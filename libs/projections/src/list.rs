//! The complaint list: every complaint's summary, pageable in receipt order and
//! filterable by status, unit, category and regime. The example of a projection: one
//! file implementing [`crate::Projection`] (through [`crate::Fold`]), registered in
//! [`crate::Projections::new`].

use std::collections::BTreeMap;

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

/// [`ListData`] as saved: the same bytes, the rows borrowed.
#[derive(serde::Serialize)]
struct Saved<'a> {
    names: &'a Names,
    rows: Vec<&'a Row>,
}

/// The list's state (see [`ComplaintList`]).
#[derive(Default)]
pub struct Inner {
    data: ListData,
    by_id: RowIndex,
    /// The rows in the list's order.
    order: Order,
}

/// Where a row stands in the list's order: receipt time, then id (its bytes, which is
/// the uuid's order).
type Key = (Micros, [u8; 16]);

fn key_of(row: &Row) -> Key {
    (row.received_at, row.id)
}

/// How many of the latest rows [`Order`] keeps apart before merging them in.
const RECENT: usize = 4096;

/// The rows in the list's order, as row numbers: 4 bytes a complaint, where a
/// `BTreeSet` of the keys took about 47 (a key is 24 bytes, and nodes filled at the end
/// are left half full). Our own structure because the order is the rows' keys, which
/// live in the rows: the sets and maps of std and of the crates we use keep their keys.
///
/// Two sorted runs: every row but the latest, and the latest (at most [`RECENT`]). An
/// insertion moves at most the short run; it is merged into the long one when full,
/// from where its first key falls (registrations come mostly in receipt order, so that
/// is near the end).
#[derive(Default)]
struct Order {
    long: Vec<u32>,
    recent: Vec<u32>,
}

impl Order {
    /// Adds `row`; `key` gives the key of a row.
    fn insert(&mut self, row: u32, key: impl Fn(u32) -> Key) {
        let k = key(row);
        let at = match self.recent.last() {
            Some(&last) if key(last) > k => self.recent.partition_point(|r| key(*r) < k),
            _ => self.recent.len(),
        };
        self.recent.insert(at, row);
        if self.recent.len() >= RECENT {
            self.merge(key);
        }
    }

    fn merge(&mut self, key: impl Fn(u32) -> Key) {
        let recent = std::mem::take(&mut self.recent);
        let Some(&first) = recent.first() else {
            return;
        };
        let first = key(first);
        let from = self.long.partition_point(|r| key(*r) < first);
        let tail = self.long.split_off(from);
        self.long.reserve(tail.len() + recent.len());
        let (mut a, mut b) = (tail.into_iter().peekable(), recent.into_iter().peekable());
        while let (Some(&x), Some(&y)) = (a.peek(), b.peek()) {
            let next = if key(x) < key(y) { a.next() } else { b.next() };
            self.long.extend(next);
        }
        self.long.extend(a);
        self.long.extend(b);
    }

    /// Takes `row` out; `key(row)` must still be the key it was inserted with.
    fn remove(&mut self, row: u32, key: impl Fn(u32) -> Key) {
        let k = key(row);
        for run in [&mut self.long, &mut self.recent] {
            let at = run.partition_point(|r| key(*r) < k);
            if run.get(at) == Some(&row) {
                run.remove(at);
                return;
            }
        }
    }

    /// The rows after the key `after` (all with `None`), in order.
    fn after<'a>(
        &'a self,
        after: Option<Key>,
        key: impl Fn(u32) -> Key + 'a,
    ) -> impl Iterator<Item = u32> + 'a {
        let start = |run: &[u32]| after.map_or(0, |k| run.partition_point(|r| key(*r) <= k));
        let mut a = self.long[start(&self.long)..].iter().copied().peekable();
        let mut b = self.recent[start(&self.recent)..]
            .iter()
            .copied()
            .peekable();
        std::iter::from_fn(move || match (a.peek(), b.peek()) {
            (Some(&x), Some(&y)) if key(y) < key(x) => b.next(),
            (Some(_), _) => a.next(),
            (None, _) => b.next(),
        })
    }

    /// Every row (`0..n`) in order: as they stand if a snapshot saved them in order
    /// (checked), else sorted.
    fn of_all(n: u32, key: impl Fn(u32) -> Key) -> Order {
        let mut long: Vec<u32> = (0..n).collect();
        if !long.windows(2).all(|w| key(w[0]) < key(w[1])) {
            long.sort_unstable_by_key(|r| key(*r));
        }
        Order {
            long,
            recent: Vec::new(),
        }
    }
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
        let rows = &self.data.rows;
        self.by_id.reserve(rows.len(), |r| rows[r as usize].id);
        for (i, row) in rows.iter().enumerate() {
            self.by_id
                .insert(&row.id, i as u32, |r| rows[r as usize].id);
        }
        self.order = Order::of_all(rows.len() as u32, |r| key_of(&rows[r as usize]));
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
                let i = match self.row_of(id) {
                    // Registered twice (never, by the domain's rules): start over.
                    Some(i) => {
                        let rows = &self.data.rows;
                        self.order.remove(i, |r| key_of(&rows[r as usize]));
                        self.data.rows[i as usize] = row;
                        i
                    }
                    None => {
                        let i = self.data.rows.len() as u32;
                        self.data.rows.push(row);
                        let rows = &self.data.rows;
                        self.by_id
                            .insert(&rows[i as usize].id, i, |r| rows[r as usize].id);
                        i
                    }
                };
                let rows = &self.data.rows;
                self.order.insert(i, |r| key_of(&rows[r as usize]));
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

    /// The rows in the list's order (the same bytes whatever order they were registered
    /// in; a restore then finds them sorted).
    fn encode(&self) -> Result<Vec<u8>, SaveError> {
        let rows = &self.data.rows;
        let saved = Saved {
            names: &self.data.names,
            rows: self
                .order
                .after(None, |r| key_of(&rows[r as usize]))
                .map(|r| &rows[r as usize])
                .collect(),
        };
        Ok(postcard::to_stdvec(&saved)?)
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
        let rows = &inner.data.rows;
        let after = query
            .after
            .map(|(at, id)| (micros(at), *id.uuid().as_bytes()));
        for i in inner.order.after(after, |r| key_of(&rows[r as usize])) {
            let row = &rows[i as usize];
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys mostly in receipt order, a fifth of them received up to ten days earlier,
    /// some at the very same microsecond (told apart by id): an xorshift, no crate.
    fn keys(n: usize) -> Vec<Key> {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        (0..n)
            .map(|i| {
                let r = next();
                let day = 86_400_000_000i64;
                let at = match r % 10 {
                    0 | 1 => i as i64 * 1_000 - (r >> 8) as i64 % (10 * day),
                    2 => 0, // one crowded moment
                    _ => i as i64 * 1_000,
                };
                let mut id = [0u8; 16];
                id[..8].copy_from_slice(&next().to_be_bytes());
                id[8..].copy_from_slice(&(i as u64).to_be_bytes());
                (at, id)
            })
            .collect()
    }

    fn in_order(order: &Order, keys: &[Key], after: Option<Key>) -> Vec<Key> {
        order
            .after(after, |r| keys[r as usize])
            .map(|r| keys[r as usize])
            .collect()
    }

    #[test]
    fn the_order_is_the_keys_sorted_through_merges_removals_and_cursors() {
        let keys = keys(3 * RECENT + 123);
        let key = |r: u32| keys[r as usize];
        let mut order = Order::default();
        let mut sorted: Vec<Key> = Vec::new();
        for (i, k) in keys.iter().enumerate() {
            order.insert(i as u32, key);
            let at = sorted.partition_point(|s| s < k);
            sorted.insert(at, *k);
            if i % 1_000 == 999 {
                assert_eq!(
                    in_order(&order, &keys, None),
                    sorted,
                    "after {} rows",
                    i + 1
                );
            }
        }
        assert!(!order.long.is_empty(), "no merge happened");
        assert_eq!(in_order(&order, &keys, None), sorted);
        for cut in [0, 1, RECENT, sorted.len() / 2, sorted.len() - 1] {
            let k = sorted[cut];
            assert_eq!(in_order(&order, &keys, Some(k)), sorted[cut + 1..]);
        }
        // A row from each run taken out.
        let (a, b) = (order.long[17], *order.recent.last().unwrap());
        order.remove(a, key);
        order.remove(b, key);
        sorted.retain(|k| *k != keys[a as usize] && *k != keys[b as usize]);
        assert_eq!(in_order(&order, &keys, None), sorted);
        // All rows at once, as a restore does, in any order.
        let all = Order::of_all(keys.len() as u32, key);
        let mut every: Vec<Key> = keys.clone();
        every.sort_unstable();
        assert_eq!(in_order(&all, &keys, None), every);
    }
}
