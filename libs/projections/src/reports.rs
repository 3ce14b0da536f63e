//! The reports projection: what regulatory returns and complaint analysis need of every
//! complaint, each fact with the time it happened **and the time it was recorded**.
//!
//! A return for a period is computed from the log as it stood at the period's end
//! ([`Reports::cases_as_of`]): a complaint's facts are kept in log order, and `recorded_at`
//! never decreases along the log, so "as of T" is a prefix of each complaint's facts,
//! found by a binary search, not a replay. Facts recorded after T that happened before it
//! are not folded in: they come back as [`LateEntry`]s, for the return to show as such.
//! A rerun next year therefore gives the same figures.
//!
//! Only the facts a return or an analysis reads are kept (no personal data, no texts):
//! assignment, findings (the root cause), the answer (decision and redress), withdrawal,
//! decline, merge, close, reopen, reviews, regulator referrals and outcomes, satisfaction
//! ratings and SLA breaches, packed to about ten bytes a fact.

use std::sync::Arc;

use complaints_domain::model::*;
use complaints_domain::Change;
use complaints_events::{DecodeError, Stored};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::compact::{micros, time, Micros, Names, RowIndex, Sym, NO_SYM};
use crate::feed::Decoded;
use crate::projection::{Fold, Folding, Kept, SaveError};

/// The reports projection (see the module).
#[derive(Default)]
pub struct Reports {
    kept: Kept<Inner>,
}

impl Folding for Reports {
    type State = Inner;

    fn kept(&self) -> &Kept<Inner> {
        &self.kept
    }
}

/// One recorded fact of a complaint, as a query reads it (kept packed: [`Facts`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fact {
    recorded: Micros,
    effective: Micros,
    what: What,
}

/// What a fact says (names interned, enums by their index in `ALL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum What {
    Assigned {
        unit: Sym,
        handler: Sym,
    },
    Findings {
        cause: u8,
    },
    /// `redress`: `count` rows of the redress table from `from`.
    Answered {
        decision: u8,
        from: u32,
        count: u16,
    },
    Withdrawn,
    Declined,
    Merged,
    Closed,
    Reopened,
    ReviewRequested,
    ReviewAnswered {
        changed: bool,
    },
    Referred {
        body: Sym,
    },
    RegulatorOutcome {
        body: Sym,
        outcome: u8,
    },
    Satisfaction {
        rating: u8,
    },
    /// An SLA clock breached (`sla.clock_breached`), at the crossing's time.
    Breached {
        clock: Sym,
    },
}

/// A complaint's facts in log order, packed: each one a [`Packed`] in postcard (varints,
/// times as offsets), in an allocation of exactly their size. A fact as a [`Fact`] takes
/// 32 bytes, and a `Vec` of them keeps room to grow; packed it takes about ten, and most
/// complaints gain no fact once closed. A query unpacks a complaint's facts as it reads
/// them (a few a complaint: cheaper than the memory they would take unpacked).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Facts(#[serde(with = "crate::compact::boxed_bytes")] Box<[u8]>);

/// A fact as packed in [`Facts`]: offsets, not times, so that their varints are short.
#[derive(Serialize, Deserialize)]
struct Packed {
    what: What,
    /// Its recorded time after the complaint's registration was recorded.
    recorded: i64,
    /// Its effective time after its recorded time (negative: before it).
    effective: i64,
}

impl Facts {
    /// Adds `fact` at the end; `registered`: when the complaint's registration was
    /// recorded, the time the offsets count from.
    fn push(&mut self, registered: Micros, fact: Fact) {
        // Wrapping arithmetic: offsets of valid times never wrap, and reading them back
        // inverts it exactly whatever they are.
        let packed = Packed {
            what: fact.what,
            recorded: fact.recorded.wrapping_sub(registered),
            effective: fact.effective.wrapping_sub(fact.recorded),
        };
        // At most 31 bytes: a variant, two symbols and two times, each a varint.
        let mut buf = [0u8; 64];
        if let Ok(bytes) = postcard::to_slice(&packed, &mut buf) {
            let mut all = std::mem::take(&mut self.0).into_vec();
            all.reserve_exact(bytes.len());
            all.extend_from_slice(bytes);
            self.0 = all.into_boxed_slice();
        }
    }

    /// The packed fact at the start of `rest`, taking it off; `None` at the end, or at
    /// bytes that do not read (then `rest` stays as it is).
    fn take(rest: &mut &[u8]) -> Option<Packed> {
        let (p, after) = postcard::take_from_bytes::<Packed>(rest).ok()?;
        *rest = after;
        Some(p)
    }

    /// The facts, in order (`registered` as for [`Facts::push`]).
    fn iter(&self, registered: Micros) -> impl Iterator<Item = Fact> + '_ {
        let mut rest: &[u8] = &self.0;
        std::iter::from_fn(move || {
            let p = Self::take(&mut rest)?;
            let recorded = registered.wrapping_add(p.recorded);
            Some(Fact {
                recorded,
                effective: recorded.wrapping_add(p.effective),
                what: p.what,
            })
        })
    }

    /// Whether every fact reads back (a restore checks it: a query stops at the first
    /// fact that does not, and must not see one missing).
    fn read_back_whole(&self) -> bool {
        let mut rest: &[u8] = &self.0;
        while Self::take(&mut rest).is_some() {}
        rest.is_empty()
    }

    /// The facts into `buf` (emptied first), for a query to read as a slice.
    fn unpack<'b>(&self, registered: Micros, buf: &'b mut Vec<Fact>) -> &'b [Fact] {
        buf.clear();
        buf.extend(self.iter(registered));
        buf
    }
}

/// One redress payment, compact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct RedressRow {
    kind: u8,
    minor_units: i64,
    currency: Sym,
}

/// A complaint as the projection keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Life {
    id: [u8; 16],
    regime: Sym,
    region: Sym,
    product: Sym,
    category: Sym,
    channel: u8,
    /// The unit complained about (the handling unit once assigned is a fact).
    unit: Sym,
    /// Whether the complaint names an employee or representative.
    about_employee: bool,
    /// The regulator it was transferred from, if it came that way.
    regulator: Sym,
    received_at: Micros,
    /// When the registration was recorded.
    registered: Micros,
    facts: Facts,
}

/// What a snapshot holds.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct ReportData {
    names: Names,
    lives: Vec<Life>,
    redress: Vec<RedressRow>,
}

/// The projection's state (see [`Reports`]).
#[derive(Default)]
pub struct Inner {
    data: ReportData,
    by_id: RowIndex,
}

fn index_of<T: PartialEq + Copy>(all: &[T], value: T) -> u8 {
    all.iter().position(|v| *v == value).unwrap_or(0) as u8
}

fn nth<T: Copy>(all: &[T], i: u8) -> T {
    all.get(usize::from(i)).copied().unwrap_or(all[0])
}

impl Inner {
    fn row_of(&self, id: &[u8; 16]) -> Option<usize> {
        let lives = &self.data.lives;
        self.by_id
            .get(id, |r| lives[r as usize].id)
            .map(|r| r as usize)
    }

    fn reindex(&mut self) {
        self.by_id.clear();
        let lives = &self.data.lives;
        self.by_id.reserve(lives.len(), |r| lives[r as usize].id);
        for (i, life) in lives.iter().enumerate() {
            self.by_id
                .insert(&life.id, i as u32, |r| lives[r as usize].id);
        }
    }

    fn push(&mut self, id: ComplaintId, recorded: Micros, effective: Micros, what: What) {
        if let Some(row) = self.row_of(id.uuid().as_bytes()) {
            let life = &mut self.data.lives[row];
            life.facts.push(
                life.registered,
                Fact {
                    recorded,
                    effective,
                    what,
                },
            );
        }
    }

    fn apply_one(&mut self, d: &Decoded) {
        let recorded: Micros = d.record.recorded_at.as_micros();
        match &d.stored {
            Stored::Complaint { complaint, event } => {
                let effective = micros(event.effective_at());
                if let Change::Registered(r) = &event.change {
                    if self.row_of(r.id.uuid().as_bytes()).is_some() {
                        return;
                    }
                }
                let names = &mut self.data.names;
                let what = match &event.change {
                    Change::Registered(r) => {
                        let life = Life {
                            id: *r.id.uuid().as_bytes(),
                            regime: names.intern(&r.regime),
                            region: names.intern(&r.region),
                            product: names.intern(&r.product),
                            category: names.intern(&r.category),
                            channel: index_of(Channel::ALL, r.channel),
                            unit: names.intern(&r.unit),
                            about_employee: r.employee.as_deref().is_some_and(|e| !e.is_empty()),
                            regulator: r
                                .regulator
                                .as_ref()
                                .map_or(NO_SYM, |t| names.intern(&t.regulator)),
                            received_at: micros(r.received_at),
                            registered: recorded,
                            facts: Facts::default(),
                        };
                        let row = self.data.lives.len() as u32;
                        self.data.lives.push(life);
                        let lives = &self.data.lives;
                        self.by_id
                            .insert(r.id.uuid().as_bytes(), row, |r| lives[r as usize].id);
                        return;
                    }
                    Change::Assigned { unit, handler } => What::Assigned {
                        unit: names.intern(unit),
                        handler: names.intern(handler),
                    },
                    Change::FindingsRecorded { root_cause, .. } => What::Findings {
                        cause: index_of(RootCause::ALL, *root_cause),
                    },
                    Change::Answered {
                        decision, redress, ..
                    } => {
                        let from = self.data.redress.len() as u32;
                        for r in redress {
                            self.data.redress.push(RedressRow {
                                kind: index_of(RedressKind::ALL, r.kind),
                                minor_units: r.amount.minor_units,
                                currency: names.intern(r.amount.currency.code()),
                            });
                        }
                        What::Answered {
                            decision: index_of(Decision::ALL, *decision),
                            from,
                            count: redress.len().min(usize::from(u16::MAX)) as u16,
                        }
                    }
                    Change::Withdrawn { .. } => What::Withdrawn,
                    Change::Declined { .. } => What::Declined,
                    Change::Merged { .. } => What::Merged,
                    Change::Closed => What::Closed,
                    Change::Reopened { .. } => What::Reopened,
                    Change::ReviewRequested { .. } => What::ReviewRequested,
                    Change::ReviewAnswered { outcome, .. } => What::ReviewAnswered {
                        changed: *outcome == ReviewOutcome::Changed,
                    },
                    Change::ReferredToRegulator { body, .. } => What::Referred {
                        body: names.intern(body),
                    },
                    Change::RegulatorOutcomeRecorded { body, outcome, .. } => {
                        What::RegulatorOutcome {
                            body: names.intern(body),
                            outcome: index_of(RegulatorOutcome::ALL, *outcome),
                        }
                    }
                    Change::SatisfactionRecorded { rating, .. } => {
                        What::Satisfaction { rating: *rating }
                    }
                    // Steps no return or analysis reads.
                    Change::Acknowledged
                    | Change::ClassifiedComplex { .. }
                    | Change::RedressProposed { .. }
                    | Change::HoldingResponseSent { .. }
                    | Change::ExtensionRequested { .. }
                    | Change::ExtensionApproved { .. }
                    | Change::ClockPaused { .. }
                    | Change::ClockResumed { .. }
                    | Change::NewFactsAdded { .. } => return,
                };
                self.push(*complaint, recorded, effective, what);
            }
            Stored::Crossing(c) if c.threshold >= 100 => {
                let clock = self.data.names.intern(&c.clock);
                self.push(c.id, recorded, micros(c.at), What::Breached { clock });
            }
            Stored::Crossing(_)
            | Stored::Queue(_)
            | Stored::RulesLoaded(_)
            | Stored::Erasure(_)
            | Stored::DigestSigned
            | Stored::RepeatedCause(_)
            | Stored::Unknown => {}
        }
    }
}

impl Fold for Inner {
    const NAME: &'static str = "reports";

    fn apply(&mut self, d: &Decoded) {
        self.apply_one(d);
    }

    fn encode(&self) -> Result<Vec<u8>, SaveError> {
        Ok(postcard::to_stdvec(&self.data)?)
    }

    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut data: ReportData = postcard::from_bytes(bytes)
            .map_err(|e| DecodeError(format!("reports snapshot: {e}")))?;
        // Read back, a `Vec` grows by doubling from a cautious start (serde does not trust
        // a length it reads): the room left over was a third of the lives' size at ten
        // years (docs/PERFORMANCE.md).
        data.lives.shrink_to_fit();
        data.redress.shrink_to_fit();
        if let Some(life) = data.lives.iter().find(|l| !l.facts.read_back_whole()) {
            return Err(DecodeError(format!(
                "reports snapshot: the facts of complaint {} do not read back",
                uuid::Uuid::from_bytes(life.id)
            )));
        }
        let mut inner = Inner {
            data,
            by_id: RowIndex::default(),
        };
        inner.reindex();
        Ok(inner)
    }
}

/// How a complaint stood resolved at the cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// Answered with this decision (the latest answer).
    Answered(Decision),
    Withdrawn,
}

/// Why a complaint does not count as a complaint in returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Excluded {
    /// Declined: not a complaint.
    Declined,
    /// A duplicate merged into another.
    Merged,
}

/// A complaint as the log knew it at the cut (see [`Reports::cases_as_of`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    pub id: ComplaintId,
    pub regime: Arc<str>,
    pub region: Arc<str>,
    pub product: Arc<str>,
    pub category: Arc<str>,
    pub channel: Channel,
    /// The unit complained about.
    pub complained_unit: Arc<str>,
    /// The handling unit (the latest assignment), before any the unit complained about.
    pub unit: Arc<str>,
    pub handler: Option<Arc<str>>,
    pub about_employee: bool,
    pub from_regulator: Option<Arc<str>>,
    pub received_at: Timestamp,
    /// The first answer (effective): the time to answer counts to it.
    pub first_answered_at: Option<Timestamp>,
    /// Resolved, and since when (effective); `None`: open at the cut (a reopen undoes
    /// a resolution).
    pub resolved: Option<(Resolution, Timestamp)>,
    /// The resolution as it was known at the earlier cut (the period's start): what the
    /// previous period's return reported. A resolution recorded later (a late answer)
    /// is not in it.
    pub resolved_known_at_start: Option<(Resolution, Timestamp)>,
    /// When it was reopened (effective).
    pub reopened: Vec<Timestamp>,
    /// The latest answer's redress.
    pub redress: Vec<Redress>,
    /// Closed administratively (after the answer), when.
    pub closed_at: Option<Timestamp>,
    pub excluded: Option<Excluded>,
    /// The latest findings' root cause, and when it was recorded as found (effective).
    pub root_cause: Option<(RootCause, Timestamp)>,
    /// Reviews (核查) asked for, when (effective).
    pub reviews: Vec<Timestamp>,
    /// Whether a review changed the answer.
    pub review_changed: bool,
    /// Referrals to a regulator or ombudsman: body, when.
    pub referrals: Vec<(Arc<str>, Timestamp)>,
    /// Outcomes recorded from a regulator or ombudsman.
    pub regulator_outcomes: Vec<(Arc<str>, RegulatorOutcome, Timestamp)>,
    /// SLA breaches recorded: clock, crossing time.
    pub breaches: Vec<(Arc<str>, Timestamp)>,
    /// The latest satisfaction rating (1-5), when given.
    pub satisfaction: Option<(u8, Timestamp)>,
}

/// A complaint's latest root cause, as the repeated-cause analysis reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub id: ComplaintId,
    pub product: Arc<str>,
    /// The unit complained about.
    pub unit: Arc<str>,
    pub cause: RootCause,
    /// When the findings were made.
    pub at: Timestamp,
}

/// A fact recorded after the cut that happened at or before it: not in the figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LateEntry {
    pub id: ComplaintId,
    /// What it records, e.g. `answered`, `registered`.
    pub what: &'static str,
    pub happened_at: Timestamp,
    pub recorded_at: Timestamp,
}

/// Every complaint of the selected regimes as known at a cut, with the late entries.
#[derive(Debug, Clone, Default)]
pub struct Cases {
    pub cases: Vec<Case>,
    pub late: Vec<LateEntry>,
}

fn what_name(what: &What) -> &'static str {
    match what {
        What::Assigned { .. } => "assigned",
        What::Findings { .. } => "findings_recorded",
        What::Answered { .. } => "answered",
        What::Withdrawn => "withdrawn",
        What::Declined => "declined",
        What::Merged => "merged",
        What::Closed => "closed",
        What::Reopened => "reopened",
        What::ReviewRequested => "review_requested",
        What::ReviewAnswered { .. } => "review_answered",
        What::Referred { .. } => "referred_to_regulator",
        What::RegulatorOutcome { .. } => "regulator_outcome_recorded",
        What::Satisfaction { .. } => "satisfaction_recorded",
        What::Breached { .. } => "sla_breached",
    }
}

/// Names resolved to shared strings once per query.
struct Shared<'a> {
    names: &'a Names,
    cache: Vec<Option<Arc<str>>>,
}

impl Shared<'_> {
    fn get(&mut self, sym: Sym) -> Arc<str> {
        let i = sym as usize;
        if i >= self.cache.len() {
            self.cache.resize(i + 1, None);
        }
        self.cache[i]
            .get_or_insert_with(|| Arc::from(self.names.get(sym)))
            .clone()
    }

    fn opt(&mut self, sym: Sym) -> Option<Arc<str>> {
        (sym != NO_SYM).then(|| self.get(sym))
    }
}

impl Reports {
    /// Every complaint whose regime `regime` selects, as the log stood at `cut` (facts
    /// recorded strictly before it), with the facts recorded at or after `cut` that
    /// happened before it, and each one's resolution as it was known at `start` (an
    /// earlier cut). Complaints registered at or after `cut` are not cases; a
    /// registration recorded late but received before `cut` is a late entry.
    pub fn cases_as_of(
        &self,
        cut: Timestamp,
        start: Timestamp,
        regime: impl Fn(&str) -> bool,
    ) -> Cases {
        let (cut, start) = (micros(cut), micros(start));
        let state = self.kept.read();
        let data = &state.data;
        let mut selected: Vec<Option<bool>> = Vec::new();
        let mut selects = |sym: Sym| {
            let i = sym as usize;
            if i >= selected.len() {
                selected.resize(i + 1, None);
            }
            *selected[i].get_or_insert_with(|| regime(data.names.get(sym)))
        };
        let mut shared = Shared {
            names: &data.names,
            cache: Vec::new(),
        };
        let mut out = Cases::default();
        let mut unpacked = Vec::new();
        for life in &data.lives {
            if !selects(life.regime) {
                continue;
            }
            let id = ComplaintId::new(uuid::Uuid::from_bytes(life.id));
            if life.registered >= cut {
                if life.received_at < cut {
                    out.late.push(LateEntry {
                        id,
                        what: "registered",
                        happened_at: time(life.received_at),
                        recorded_at: time(life.registered),
                    });
                }
                continue;
            }
            let facts = life.facts.unpack(life.registered, &mut unpacked);
            let known = facts.partition_point(|f| f.recorded < cut);
            for f in &facts[known..] {
                if f.effective < cut {
                    out.late.push(LateEntry {
                        id,
                        what: what_name(&f.what),
                        happened_at: time(f.effective),
                        recorded_at: time(f.recorded),
                    });
                }
            }
            let mut case = fold(id, life, &facts[..known], data, &mut shared);
            let known_at_start = facts[..known].partition_point(|f| f.recorded < start);
            case.resolved_known_at_start = resolution(&facts[..known_at_start]);
            out.cases.push(case);
        }
        out
    }

    /// Every complaint's latest root cause found in `[from, until)` (by when the findings
    /// were made), with its product and the unit complained about; declined and merged
    /// complaints left out. What the repeated-cause rule scans: no fold of whole cases.
    pub fn findings(&self, from: Timestamp, until: Timestamp) -> Vec<Finding> {
        let (from, until) = (micros(from), micros(until));
        let state = self.kept.read();
        let data = &state.data;
        let mut shared = Shared {
            names: &data.names,
            cache: Vec::new(),
        };
        let mut out = Vec::new();
        for life in &data.lives {
            let mut latest = None;
            let mut excluded = false;
            for f in life.facts.iter(life.registered) {
                match f.what {
                    What::Findings { cause } => latest = Some((cause, f.effective)),
                    What::Declined | What::Merged => excluded = true,
                    What::Reopened => excluded = false,
                    _ => {}
                }
            }
            if let (Some((cause, at)), false) = (latest, excluded) {
                if from <= at && at < until {
                    out.push(Finding {
                        id: ComplaintId::new(uuid::Uuid::from_bytes(life.id)),
                        product: shared.get(life.product),
                        unit: shared.get(life.unit),
                        cause: nth(RootCause::ALL, cause),
                        at: time(at),
                    });
                }
            }
        }
        out
    }

    /// How many complaints it holds.
    pub fn len(&self) -> usize {
        self.kept.read().data.lives.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The resolution these facts leave (the latest answer or withdrawal, undone by a reopen).
fn resolution(facts: &[Fact]) -> Option<(Resolution, Timestamp)> {
    let mut resolved = None;
    for f in facts {
        match f.what {
            What::Answered { decision, .. } => {
                resolved = Some((
                    Resolution::Answered(nth(Decision::ALL, decision)),
                    time(f.effective),
                ));
            }
            What::Withdrawn => resolved = Some((Resolution::Withdrawn, time(f.effective))),
            What::Reopened => resolved = None,
            _ => {}
        }
    }
    resolved
}

fn fold(
    id: ComplaintId,
    life: &Life,
    facts: &[Fact],
    data: &ReportData,
    shared: &mut Shared<'_>,
) -> Case {
    let mut case = Case {
        id,
        regime: shared.get(life.regime),
        region: shared.get(life.region),
        product: shared.get(life.product),
        category: shared.get(life.category),
        channel: nth(Channel::ALL, life.channel),
        complained_unit: shared.get(life.unit),
        unit: shared.get(life.unit),
        handler: None,
        about_employee: life.about_employee,
        from_regulator: shared.opt(life.regulator),
        received_at: time(life.received_at),
        first_answered_at: None,
        resolved: None,
        resolved_known_at_start: None,
        reopened: Vec::new(),
        redress: Vec::new(),
        closed_at: None,
        excluded: None,
        root_cause: None,
        reviews: Vec::new(),
        review_changed: false,
        referrals: Vec::new(),
        regulator_outcomes: Vec::new(),
        breaches: Vec::new(),
        satisfaction: None,
    };
    for f in facts {
        let at = time(f.effective);
        match f.what {
            What::Assigned { unit, handler } => {
                case.unit = shared.get(unit);
                case.handler = shared.opt(handler);
            }
            What::Findings { cause } => case.root_cause = Some((nth(RootCause::ALL, cause), at)),
            What::Answered {
                decision,
                from,
                count,
            } => {
                case.first_answered_at.get_or_insert(at);
                case.resolved = Some((Resolution::Answered(nth(Decision::ALL, decision)), at));
                let from = from as usize;
                case.redress = data
                    .redress
                    .get(from..from + usize::from(count))
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|r| {
                        Some(Redress {
                            kind: nth(RedressKind::ALL, r.kind),
                            amount: Money {
                                minor_units: r.minor_units,
                                currency: iso_currency::Currency::from_code(
                                    data.names.get(r.currency),
                                )?,
                            },
                        })
                    })
                    .collect();
            }
            What::Withdrawn => case.resolved = Some((Resolution::Withdrawn, at)),
            What::Declined => case.excluded = Some(Excluded::Declined),
            What::Merged => case.excluded = Some(Excluded::Merged),
            What::Closed => case.closed_at = Some(at),
            What::Reopened => {
                case.reopened.push(at);
                case.resolved = None;
                case.closed_at = None;
                case.excluded = None;
            }
            What::ReviewRequested => case.reviews.push(at),
            What::ReviewAnswered { changed } => case.review_changed |= changed,
            What::Referred { body } => case.referrals.push((shared.get(body), at)),
            What::RegulatorOutcome { body, outcome } => case.regulator_outcomes.push((
                shared.get(body),
                nth(RegulatorOutcome::ALL, outcome),
                at,
            )),
            What::Satisfaction { rating } => case.satisfaction = Some((rating, at)),
            What::Breached { clock } => case.breaches.push((shared.get(clock), at)),
        }
    }
    case
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind of fact, with times far apart, before and after the registration,
    /// effective before, at and after recorded, and symbols small and large.
    fn facts() -> Vec<Fact> {
        let whats = [
            What::Assigned {
                unit: 0,
                handler: NO_SYM,
            },
            What::Findings { cause: 3 },
            What::Answered {
                decision: 2,
                from: u32::MAX - 1,
                count: u16::MAX,
            },
            What::Withdrawn,
            What::Declined,
            What::Merged,
            What::Closed,
            What::Reopened,
            What::ReviewRequested,
            What::ReviewAnswered { changed: true },
            What::Referred { body: 70_000 },
            What::RegulatorOutcome {
                body: 1,
                outcome: 4,
            },
            What::Satisfaction { rating: 5 },
            What::Breached { clock: 12 },
        ];
        let (min, max) = (micros(Timestamp::MIN), micros(Timestamp::MAX));
        let times = [
            (0, 0),
            (1, -1),
            (86_400_000_000, 86_400_000_000 + 7),
            (max, min),
            (min, max),
            (1_733_000_000_123_456, 1_733_000_000_000_000),
        ];
        whats
            .iter()
            .zip(times.iter().cycle())
            .map(|(what, (recorded, effective))| Fact {
                recorded: *recorded,
                effective: *effective,
                what: *what,
            })
            .collect()
    }

    #[test]
    fn packed_facts_read_back_as_they_were_pushed() {
        for registered in [0, 1_733_000_000_000_000, micros(Timestamp::MAX)] {
            let mut packed = Facts::default();
            let mut pushed = Vec::new();
            for f in facts() {
                packed.push(registered, f);
                pushed.push(f);
                assert_eq!(packed.unpack(registered, &mut Vec::new()), pushed);
            }
            // Through a snapshot's encoding too.
            let bytes = postcard::to_stdvec(&packed).unwrap();
            let back: Facts = postcard::from_bytes(&bytes).unwrap();
            assert_eq!(back.iter(registered).collect::<Vec<_>>(), pushed);
        }
    }

    #[test]
    fn a_fact_packs_into_a_few_bytes() {
        let registered = 1_733_000_000_000_000;
        let mut packed = Facts::default();
        packed.push(
            registered,
            Fact {
                recorded: registered + 3 * 86_400_000_000,
                effective: registered + 3 * 86_400_000_000,
                what: What::Closed,
            },
        );
        assert!(packed.0.len() <= 8, "{} bytes", packed.0.len());
    }

    #[test]
    fn a_restore_refuses_facts_that_do_not_read_back() {
        let mut inner = Inner::default();
        let mut facts = Facts::default();
        facts.push(
            0,
            Fact {
                recorded: 5,
                effective: 5,
                what: What::Closed,
            },
        );
        assert!(facts.read_back_whole());
        inner.data.lives.push(Life {
            id: [7; 16],
            regime: 0,
            region: 0,
            product: 0,
            category: 0,
            channel: 0,
            unit: 0,
            about_employee: false,
            regulator: NO_SYM,
            received_at: 0,
            registered: 0,
            facts: facts.clone(),
        });
        assert!(Inner::decode(&inner.encode().unwrap()).is_ok());
        // A variant no fact has, where the fact starts.
        let mut cut = facts.0.to_vec();
        cut[0] = 0x7f;
        inner.data.lives[0].facts = Facts(cut.into_boxed_slice());
        let refused = Inner::decode(&inner.encode().unwrap()).err().unwrap();
        assert!(refused.0.contains("do not read back"), "{}", refused.0);
    }
}
