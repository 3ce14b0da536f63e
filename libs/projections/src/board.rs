//! The SLA board: every complaint's clocks, kept by a subscription to the log, for the
//! operations teams: what is due, at risk or breached, most urgent first, and the figures
//! by regime, unit and category.
//!
//! Per complaint it keeps only the SLA facts (no personal data) and the computed due
//! times; the state at a moment is worked out at query time, since it depends on "now".
//!
//! It is built for a million open complaints: names are interned, times are microseconds,
//! a clock keeps only its times and the index of its rule (names, titles and explanations
//! come from the policy when asked), and a complaint has one entry in the crossing index
//! (its next unrecorded crossing), not one per threshold. Events are applied in batches:
//! a complaint's clocks are recomputed once per batch, after its last event in the batch,
//! which gives exactly what recomputing after every event gives (the clocks are a function
//! of the facts, the recorded crossings and the rules; see the rebuild property tests).
//!
//! Most of a ten-year board is complaints that ended long ago. Once a complaint has ended
//! and its clocks have stopped (a window clock only opens and closes at its due time), it
//! is kept settled: without its clocks or index keys, its facts encoded, what the figures
//! count of it at hand (`Settled`); an event of it, or a change of rules, makes it a
//! slot again. A property test keeps a settling board answering as one that keeps every
//! complaint whole.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, PoisonError, RwLock};

use complaints_domain::model::{ComplaintId, Status};
use complaints_domain::{status_after, Change, Complaint, Event};
use complaints_events::stored::decode_rules;
pub use complaints_events::Crossing;
use complaints_events::{DecodeError, Stored};
use complaints_sla::{
    ClockRule, ClockState, ClockTimes, Due, Engine, Facts, Length, PauseFact, Policy, Stop, Timing,
};
use eventlog::Position;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use uuid::Uuid;

use crate::compact::{micros, micros_opt, time, time_opt, Micros, Names, RowIndex, Sym, NONE};
use crate::feed::{Decoded, Progress};
use crate::projection::{Kept, Projection, SaveError};

/// The SLA facts of a complaint from its full state (no personal data): what the board's
/// fold of its events must equal (a property test keeps them equal).
pub fn facts(c: &Complaint) -> Facts {
    let r = &c.registration;
    // A complaint withdrawn, declined or merged stops its clocks the day it ended.
    let ended_without_answer = match c.status {
        Status::Withdrawn | Status::Declined | Status::Merged => c.ended_at,
        _ => None,
    };
    Facts {
        received_at: r.received_at,
        region: r.region.clone(),
        category: r.category.clone(),
        variant: r.variant.clone().unwrap_or_default(),
        complex: c.complex,
        // The earliest sent (a holding response may be recorded after a later one).
        holding_response_at: c.holding_responses.iter().min().copied(),
        extensions: c.extensions.clone(),
        pauses: c
            .pauses
            .iter()
            .map(|p| PauseFact {
                reason: p.reason.as_str().to_owned(),
                from: p.from,
                until: p.until,
                recorded_from: p.recorded_from,
                recorded_until: p.recorded_until,
            })
            .collect(),
        new_facts_at: c.new_facts_at.clone(),
        acknowledged_at: c.acknowledged_at,
        answered_at: c.answered_at.or(ended_without_answer),
    }
}

/// A complaint on the board, as [`SlaBoard::entry`] shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub id: ComplaintId,
    pub regime: String,
    pub unit: String,
    pub category: String,
    pub status: Status,
    pub facts: Facts,
    /// The clocks that have started, with their due times (without explanations).
    pub dues: Vec<Due>,
    /// Why the due times could not be computed, if they could not.
    pub problem: Option<String>,
    /// The latest answer, and when the complaint ended (as the domain's state has them).
    pub answered_at: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
    /// Threshold crossings already recorded in the log: (clock, threshold, due time).
    pub recorded: BTreeSet<(String, u8, Timestamp)>,
}

/// Filters of a clock listing.
#[derive(Debug, Clone, Default)]
pub struct ClockQuery {
    /// Only clocks in these states (all when empty). Uses the `ClockState` kinds.
    pub states: Vec<StateKind>,
    pub regime: Option<String>,
    pub unit: Option<String>,
    pub category: Option<String>,
    pub page_size: usize,
    /// Start after this (due time, complaint, clock index): from the previous page.
    pub after: Option<(Timestamp, ComplaintId, usize)>,
}

/// A clock state without its data, for filters and counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StateKind {
    Running,
    Paused,
    AtRisk,
    Breached,
    Met,
    WindowOpen,
    WindowClosed,
}

impl StateKind {
    /// Every kind.
    pub const ALL: [StateKind; 7] = [
        StateKind::Running,
        StateKind::Paused,
        StateKind::AtRisk,
        StateKind::Breached,
        StateKind::Met,
        StateKind::WindowOpen,
        StateKind::WindowClosed,
    ];

    pub fn of(state: &ClockState) -> Self {
        match state {
            ClockState::Running => StateKind::Running,
            ClockState::Paused => StateKind::Paused,
            ClockState::AtRisk(_) => StateKind::AtRisk,
            ClockState::Breached { .. } => StateKind::Breached,
            ClockState::Met => StateKind::Met,
            ClockState::WindowOpen => StateKind::WindowOpen,
            ClockState::WindowClosed => StateKind::WindowClosed,
        }
    }

    /// Its name in the board's counts (`GetBoard`'s `clocks_by_state` keys, metrics).
    pub fn name(self) -> &'static str {
        match self {
            StateKind::Running => "running",
            StateKind::Paused => "paused",
            StateKind::AtRisk => "atrisk",
            StateKind::Breached => "breached",
            StateKind::Met => "met",
            StateKind::WindowOpen => "windowopen",
            StateKind::WindowClosed => "windowclosed",
        }
    }
}

/// One clock of one complaint, as listed.
#[derive(Debug, Clone, PartialEq)]
pub struct ClockItem {
    pub id: ComplaintId,
    pub regime: String,
    pub unit: String,
    pub category: String,
    pub due: Due,
    pub assessment: complaints_sla::Assessment,
}

/// One page of clocks, most urgent (earliest due) first.
#[derive(Debug, Clone, PartialEq)]
pub struct ClockPage {
    pub items: Vec<ClockItem>,
    pub next: Option<(Timestamp, ComplaintId, usize)>,
}

/// Slots a thread of [`SlaBoard::figures_in`] takes at the least.
const FIGURES_PER_THREAD: usize = 100_000;

/// The counts [`SlaBoard::figures_in`] makes of a share of the slots.
#[derive(Default)]
struct Tally {
    complaints: u64,
    open: u64,
    due_today: u64,
    /// Stopped clocks met or breached, and of them the breached.
    stopped: u64,
    late: u64,
    times_to_answer: Vec<SignedDuration>,
    by_state: BTreeMap<StateKind, u64>,
    by_regime_and_state: HashMap<(Sym, StateKind), u64>,
    by_regime: HashMap<Sym, u64>,
    by_unit: HashMap<Sym, u64>,
    by_category: HashMap<Sym, u64>,
}

impl Tally {
    /// Counts `slot` at `now`; `day` is today's start (excluded) and end (included).
    fn add(
        &mut self,
        inner: &Inner,
        engine: &Engine,
        slot: &Slot,
        now: Timestamp,
        day: (Micros, Micros),
    ) {
        self.complaints += 1;
        if !status_of(slot.status).is_ended() {
            self.open += 1;
        }
        let answered = slot.effective_answer();
        if answered != NONE {
            self.times_to_answer
                .push(SignedDuration::from_micros(answered - slot.received_at));
        }
        for c in &slot.clocks {
            let Some((rule, times)) = inner.times(engine, slot, c) else {
                continue;
            };
            let a = engine.assess_times(rule, &times, now);
            let kind = StateKind::of(&a.state);
            if c.stopped_at == NONE {
                *self.by_state.entry(kind).or_default() += 1;
                *self
                    .by_regime_and_state
                    .entry((slot.regime, kind))
                    .or_default() += 1;
                let window = matches!(kind, StateKind::WindowOpen | StateKind::WindowClosed);
                if c.due_at > day.0 && c.due_at <= day.1 && !window {
                    self.due_today += 1;
                }
            } else if matches!(kind, StateKind::Met | StateKind::Breached) {
                self.stopped += 1;
            }
            if kind == StateKind::Breached {
                if c.stopped_at != NONE {
                    self.late += 1;
                }
                *self.by_regime.entry(slot.regime).or_default() += 1;
                *self.by_unit.entry(slot.unit).or_default() += 1;
                *self.by_category.entry(slot.category).or_default() += 1;
            }
        }
    }

    /// Counts settled complaint `s` at `now`, which is past its clocks' stops: exactly
    /// what [`Tally::add`] counts of its slot then.
    fn add_settled(&mut self, s: &Settled, now: Timestamp) {
        self.complaints += 1;
        if s.answer != NONE {
            self.times_to_answer
                .push(SignedDuration::from_micros(s.answer - s.received_at));
        }
        for c in s.counted() {
            match c {
                Counted::Met => self.stopped += 1,
                Counted::Breached(_) => {
                    self.stopped += 1;
                    self.late += 1;
                    *self.by_regime.entry(s.regime).or_default() += 1;
                    *self.by_unit.entry(s.unit).or_default() += 1;
                    *self.by_category.entry(s.category).or_default() += 1;
                }
                Counted::Window(due) => {
                    let kind = match now < time(due) {
                        true => StateKind::WindowOpen,
                        false => StateKind::WindowClosed,
                    };
                    *self.by_state.entry(kind).or_default() += 1;
                    *self
                        .by_regime_and_state
                        .entry((s.regime, kind))
                        .or_default() += 1;
                }
            }
        }
    }

    fn merge(&mut self, other: Tally) {
        fn counts<K: std::hash::Hash + Eq>(into: &mut HashMap<K, u64>, from: HashMap<K, u64>) {
            for (k, n) in from {
                *into.entry(k).or_default() += n;
            }
        }
        self.complaints += other.complaints;
        self.open += other.open;
        self.due_today += other.due_today;
        self.stopped += other.stopped;
        self.late += other.late;
        self.times_to_answer.extend(other.times_to_answer);
        for (k, n) in other.by_state {
            *self.by_state.entry(k).or_default() += n;
        }
        counts(&mut self.by_regime_and_state, other.by_regime_and_state);
        counts(&mut self.by_regime, other.by_regime);
        counts(&mut self.by_unit, other.by_unit);
        counts(&mut self.by_category, other.by_category);
    }
}

/// The board's figures at a moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Figures {
    /// Running clocks by state, over all complaints.
    pub by_state: BTreeMap<String, u64>,
    /// Running clocks by (regime, state): the same counts split by regime.
    pub by_regime_and_state: BTreeMap<(String, String), u64>,
    /// Breached running or stopped clocks by regime, unit and category.
    pub breached_by_regime: BTreeMap<String, u64>,
    pub breached_by_unit: BTreeMap<String, u64>,
    pub breached_by_category: BTreeMap<String, u64>,
    /// Running clocks falling due within `now`'s day in the business time zone (UTC for
    /// [`SlaBoard::figures`]), not those already overdue; a deadline at the end of that day
    /// (the next local midnight) counts.
    pub due_today: u64,
    /// Stopped clocks that were late, over all stopped clocks.
    pub breach_rate: f64,
    /// Median time from receipt to answer, over answered complaints.
    pub median_time_to_answer: Option<SignedDuration>,
    pub complaints: u64,
    pub open_complaints: u64,
}

/// The upper bounds, in whole days since receipt, of the age bands of
/// [`Trends::open_by_age`] (the last band has none).
pub const AGE_BANDS: [i64; 4] = [7, 14, 28, 56];

/// One week of the board's history.
#[derive(Debug, Clone, PartialEq)]
pub struct Week {
    /// Its Monday.
    pub start: jiff::civil::Date,
    /// Clocks that fell due in the week and are breached.
    pub breaches: u64,
    /// Complaints answered in the week, and the median time from receipt to answer.
    pub answered: u64,
    pub median_time_to_answer: Option<SignedDuration>,
}

/// What the board's charts show ([`SlaBoard::trends`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Trends {
    /// Oldest first, the current week last.
    pub weeks: Vec<Week>,
    /// Open complaints by whole days since receipt, in the bands of [`AGE_BANDS`]
    /// (0-7, 8-14, 15-28, 29-56, over 56).
    pub open_by_age: Vec<u64>,
}

/// Everything the board holds, comparable: what a rebuild must reproduce exactly.
#[derive(Debug, Clone, PartialEq)]
pub struct BoardState {
    pub entries: BTreeMap<ComplaintId, Entry>,
    /// Running deadline clocks: (due time, complaint, clock index).
    pub urgent: BTreeSet<(Timestamp, ComplaintId, usize)>,
    /// Each complaint's next unrecorded crossing.
    pub crossings: BTreeSet<(Timestamp, ComplaintId)>,
}

/// A clock pause.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Pause {
    reason: Sym,
    from: Micros,
    until: Micros,
    /// When its start and end were recorded (for the explanation of a pause recorded
    /// after the fact).
    recorded_from: Micros,
    recorded_until: Micros,
}

/// What few complaints have: kept apart so that most complaints pay one pointer for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct More {
    holding_response_at: Micros,
    extensions: Vec<(u32, Micros)>,
    pauses: Vec<Pause>,
    new_facts: Vec<Micros>,
    /// Crossings recorded in the log: (clock name, threshold, due time).
    recorded: Vec<(Sym, u8, Micros)>,
    problem: Option<String>,
}

impl Default for More {
    fn default() -> Self {
        Self {
            holding_response_at: NONE,
            extensions: Vec::new(),
            pauses: Vec::new(),
            new_facts: Vec::new(),
            recorded: Vec::new(),
            problem: None,
        }
    }
}

/// A started clock: its times and the index of its rule in the policy version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Clock {
    version: u32,
    rule: u16,
    business_days: bool,
    due_date: Option<(i16, i8, i8)>,
    length: Length,
    started_at: Micros,
    due_at: Micros,
    stopped_at: Micros,
    paused_since: Micros,
}

impl Clock {
    fn of(version: u32, rule: usize, t: &Timing) -> Self {
        Clock {
            version,
            rule: rule as u16,
            business_days: t.business_days,
            due_date: t.due_date.map(|d| (d.year(), d.month(), d.day())),
            length: t.length,
            started_at: micros(t.started_at),
            due_at: micros(t.due_at),
            stopped_at: micros_opt(t.stopped_at),
            paused_since: micros_opt(t.paused_since),
        }
    }

    fn timing(&self) -> Timing {
        Timing {
            started_at: time(self.started_at),
            due_date: self.due_date(),
            due_at: time(self.due_at),
            length: self.length,
            business_days: self.business_days,
            stopped_at: time_opt(self.stopped_at),
            paused_since: time_opt(self.paused_since),
        }
    }

    fn due_date(&self) -> Option<jiff::civil::Date> {
        self.due_date
            .and_then(|(y, m, d)| jiff::civil::Date::new(y, m, d).ok())
    }

    fn running(&self, rule: &ClockRule) -> bool {
        self.stopped_at == NONE && rule.stops != Stop::WindowCloses
    }

    /// When the clock reaches `threshold` percent of its time (100: its due time).
    fn crossing_at(&self, threshold: u8) -> Micros {
        if threshold >= 100 {
            return self.due_at;
        }
        let total = i128::from(self.due_at) - i128::from(self.started_at);
        let at = i128::from(self.started_at) + total * i128::from(threshold) / 100;
        Micros::try_from(at).unwrap_or(self.due_at)
    }
}

/// One complaint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Slot {
    /// The complaint's uuid (bytes: no 16-byte alignment to pad for).
    id: [u8; 16],
    /// Its place in the order of registration: what the indexes key it by (a slot moves
    /// when another settles; the order of complaints with the same due time does not).
    ordinal: u32,
    regime: Sym,
    unit: Sym,
    category: Sym,
    /// The variant named at registration ("" when none).
    variant: Sym,
    region: Sym,
    status: u8,
    complex: bool,
    /// Waiting for its clocks to be recomputed at the end of the batch.
    #[serde(skip)]
    dirty: bool,
    received_at: Micros,
    acknowledged_at: Micros,
    /// The latest answer.
    answered_at: Micros,
    ended_at: Micros,
    /// Its key in the crossing index, if it has an unrecorded crossing.
    next_crossing: Micros,
    more: Option<Box<More>>,
    clocks: Box<[Clock]>,
}

fn status_of(code: u8) -> Status {
    Status::ALL
        .get(usize::from(code))
        .copied()
        .unwrap_or(Status::Received)
}

fn code_of(status: Status) -> u8 {
    Status::ALL.iter().position(|s| *s == status).unwrap_or(0) as u8
}

impl Slot {
    fn registered(r: &complaints_domain::Register, ordinal: u32, names: &mut Names) -> Self {
        Slot {
            id: *r.id.uuid().as_bytes(),
            ordinal,
            regime: names.intern(&r.regime),
            unit: names.intern(&r.unit),
            category: names.intern(&r.category),
            variant: names.intern(r.variant.as_deref().unwrap_or_default()),
            region: names.intern(&r.region),
            status: code_of(Status::Received),
            complex: false,
            dirty: false,
            received_at: micros(r.received_at),
            acknowledged_at: NONE,
            answered_at: NONE,
            ended_at: NONE,
            next_crossing: NONE,
            more: None,
            clocks: Box::new([]),
        }
    }

    fn id(&self) -> ComplaintId {
        ComplaintId::new(Uuid::from_bytes(self.id))
    }

    /// Applies `f` to every time it holds but its receipt and its clocks' (what
    /// [`Settled`] stores as offsets from the receipt). A time left out here is stored
    /// as it is: still exact, only longer.
    fn each_time(&mut self, mut f: impl FnMut(&mut Micros)) {
        f(&mut self.acknowledged_at);
        f(&mut self.answered_at);
        f(&mut self.ended_at);
        f(&mut self.next_crossing);
        if let Some(more) = self.more.as_deref_mut() {
            f(&mut more.holding_response_at);
            more.extensions.iter_mut().for_each(|(_, t)| f(t));
            for p in &mut more.pauses {
                f(&mut p.from);
                f(&mut p.until);
                f(&mut p.recorded_from);
                f(&mut p.recorded_until);
            }
            more.new_facts.iter_mut().for_each(&mut f);
            more.recorded.iter_mut().for_each(|(_, _, t)| f(t));
        }
    }

    fn more(&mut self) -> &mut More {
        self.more.get_or_insert_with(Box::default)
    }

    /// When the clocks stop for an answer: the answer, or the end of a complaint
    /// withdrawn, declined or merged (the day it ended).
    fn effective_answer(&self) -> Micros {
        if self.answered_at != NONE {
            return self.answered_at;
        }
        match status_of(self.status) {
            Status::Withdrawn | Status::Declined | Status::Merged => self.ended_at,
            _ => NONE,
        }
    }

    /// Folds one event in; says whether the SLA facts changed (the clocks need
    /// recomputing). Kept equal to [`facts`] of the full state (see the tests). Every
    /// change is named: a new lifecycle step does not compile until it is decided here
    /// whether it moves an SLA fact.
    fn fold(&mut self, event: &Event, names: &mut Names) -> bool {
        // The time the step happened: what the SLA counts.
        let at = micros(event.effective_at());
        let recorded = micros(event.at);
        let answer_before = self.effective_answer();
        let close_pause = |slot: &mut Slot| match slot
            .more
            .as_mut()
            .and_then(|m| m.pauses.last_mut())
            .filter(|p| p.until == NONE)
        {
            Some(p) => {
                p.until = at;
                p.recorded_until = recorded;
                true
            }
            None => false,
        };
        let mut changed = false;
        match &event.change {
            Change::Acknowledged => {
                if self.acknowledged_at == NONE {
                    self.acknowledged_at = at;
                    changed = true;
                }
            }
            Change::Assigned { unit, .. } => self.unit = names.intern(unit),
            Change::ClassifiedComplex { .. } => {
                changed = !self.complex;
                self.complex = true;
            }
            Change::HoldingResponseSent { .. } => {
                if self
                    .more
                    .as_ref()
                    .is_none_or(|m| m.holding_response_at == NONE || at < m.holding_response_at)
                {
                    self.more().holding_response_at = at;
                    changed = true;
                }
            }
            Change::ExtensionApproved { days, .. } => {
                self.more().extensions.push((*days, at));
                changed = true;
            }
            Change::ClockPaused { reason, .. } => {
                let reason = names.intern(reason.as_str());
                self.more().pauses.push(Pause {
                    reason,
                    from: at,
                    until: NONE,
                    recorded_from: recorded,
                    recorded_until: NONE,
                });
                changed = true;
            }
            Change::ClockResumed { .. } | Change::Withdrawn { .. } => changed = close_pause(self),
            Change::NewFactsAdded { .. } => {
                self.more().new_facts.push(at);
                changed = true;
            }
            Change::Answered { .. } => {
                self.answered_at = at;
                close_pause(self);
                changed = true;
            }
            // The facts of registration are taken when the slot is made; these steps move
            // no SLA fact (a status they change is followed below).
            Change::Registered(_)
            | Change::Declined { .. }
            | Change::Merged { .. }
            | Change::FindingsRecorded { .. }
            | Change::RedressProposed { .. }
            | Change::ExtensionRequested { .. }
            | Change::ReviewRequested { .. }
            | Change::ReviewAnswered { .. }
            | Change::ReferredToRegulator { .. }
            | Change::RegulatorOutcomeRecorded { .. }
            | Change::SatisfactionRecorded { .. }
            | Change::Closed
            | Change::Reopened { .. } => {}
        }
        // Status and end time exactly as the domain's evolve keeps them.
        let status = status_after(status_of(self.status), &event.change);
        self.status = code_of(status);
        match (status.is_ended(), self.ended_at) {
            (true, NONE) => self.ended_at = at,
            (false, e) if e != NONE => self.ended_at = NONE,
            _ => {}
        }
        changed || answer_before != self.effective_answer()
    }

    fn facts(&self, names: &Names) -> Facts {
        let more = self.more.as_deref();
        Facts {
            received_at: time(self.received_at),
            region: names.get(self.region).to_owned(),
            category: names.get(self.category).to_owned(),
            variant: names.get(self.variant).to_owned(),
            complex: self.complex,
            holding_response_at: more.and_then(|m| time_opt(m.holding_response_at)),
            extensions: more.map_or_else(Vec::new, |m| {
                m.extensions.iter().map(|(d, at)| (*d, time(*at))).collect()
            }),
            pauses: more.map_or_else(Vec::new, |m| {
                m.pauses
                    .iter()
                    .map(|p| PauseFact {
                        reason: names.get(p.reason).to_owned(),
                        from: time(p.from),
                        until: time_opt(p.until),
                        recorded_from: time(p.recorded_from),
                        recorded_until: time_opt(p.recorded_until),
                    })
                    .collect()
            }),
            new_facts_at: more
                .map_or_else(Vec::new, |m| m.new_facts.iter().map(|t| time(*t)).collect()),
            acknowledged_at: time_opt(self.acknowledged_at),
            answered_at: time_opt(self.effective_answer()),
        }
    }

    fn is_recorded(&self, names: &Names, clock: &str, threshold: u8, due_at: Micros) -> bool {
        let Some(more) = self.more.as_deref() else {
            return false;
        };
        let Some(clock) = names.find(clock) else {
            return false;
        };
        more.recorded.contains(&(clock, threshold, due_at))
    }
}

/// How a settled complaint's clock counts in the figures (see [`Settled`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Counted {
    /// Stopped before its due time.
    Met,
    /// Stopped at or after its due time, which was this.
    Breached(Micros),
    /// A window (not stopped), open until this.
    Window(Micros),
}

const MET: u8 = 0;
const BREACHED: u8 = 1;
const WINDOW: u8 = 2;

/// A settled complaint: ended, and every clock stopped or a window (which only opens and
/// closes at its due time), so that what it adds to the figures and the charts no longer
/// changes with "now" (once now is past its clocks' stops: [`Data::settled_from`]). Most
/// of a ten-year board is such complaints. Each is kept in well under a slot's room
/// (measured at ten years: 226 bytes a complaint, against 361): no clocks, no index keys,
/// what the figures count of it in the fields and the head of `bytes`, and its facts
/// encoded after them, for the day an event touches it again (a reopen, a late rating)
/// or someone asks for its entry. Its clocks are not
/// kept: they are a function of its facts and the rules, recomputed then (a change of
/// rules unsettles every complaint first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Settled {
    id: [u8; 16],
    ordinal: u32,
    regime: Sym,
    unit: Sym,
    category: Sym,
    received_at: Micros,
    /// When its clocks stopped for an answer ([`Slot::effective_answer`]; `NONE`: never).
    answer: Micros,
    /// The clocks as counted (`u8` count, then per clock a kind and, but for `MET`, a
    /// due time, little-endian), then the slot without its clocks (postcard).
    #[serde(with = "crate::compact::boxed_bytes")]
    bytes: Box<[u8]>,
}

impl Settled {
    /// `slot`, whose clocks are `clocks` (taken out of it, so that it is encoded without
    /// them), settled, with the latest stop of its clocks; `None` if it is not settled
    /// (open, a clock still running, or a clock whose rule is unknown).
    fn of(
        slot: &Slot,
        clocks: &[Clock],
        engine: &Engine,
        names: &Names,
    ) -> Option<(Settled, Micros)> {
        if !status_of(slot.status).is_ended() || slot.dirty {
            return None;
        }
        let regime = names.get(slot.regime);
        let mut bytes = vec![0u8];
        let mut counted = 0u8;
        let mut stopped = NONE;
        for c in clocks {
            let (_, rule) = rule_of(engine, regime, c)?;
            if rule.stops == Stop::WindowCloses {
                // A stopped window is counted nowhere (as `Tally::add` does).
                if c.stopped_at != NONE {
                    continue;
                }
                bytes.push(WINDOW);
                bytes.extend(c.due_at.to_le_bytes());
            } else if c.stopped_at == NONE {
                return None;
            } else if c.stopped_at < c.due_at {
                bytes.push(MET);
                stopped = stopped.max(c.stopped_at);
            } else {
                bytes.push(BREACHED);
                bytes.extend(c.due_at.to_le_bytes());
                stopped = stopped.max(c.stopped_at);
            }
            counted = counted.checked_add(1)?;
        }
        bytes[0] = counted;
        // Its times as offsets from its receipt (short varints: most are days after it,
        // and "none" is one byte, where an absolute time takes eight or nine and "none"
        // ten), its receipt in the fields.
        let mut body = slot.clone();
        body.each_time(|t| *t = offset(*t, slot.received_at));
        body.received_at = 0;
        postcard::to_extend(&body, bytes).ok().map(|bytes| {
            let settled = Settled {
                id: slot.id,
                ordinal: slot.ordinal,
                regime: slot.regime,
                unit: slot.unit,
                category: slot.category,
                received_at: slot.received_at,
                answer: slot.effective_answer(),
                bytes: bytes.into_boxed_slice(),
            };
            (settled, stopped)
        })
    }

    /// Its clocks as counted.
    fn counted(&self) -> impl Iterator<Item = Counted> + '_ {
        let mut left = self.bytes.first().copied().unwrap_or(0);
        let mut i = 1;
        std::iter::from_fn(move || {
            left = left.checked_sub(1)?;
            let kind = *self.bytes.get(i)?;
            if kind == MET {
                i += 1;
                return Some(Counted::Met);
            }
            let due = Micros::from_le_bytes(self.bytes.get(i + 1..i + 9)?.try_into().ok()?);
            i += 9;
            Some(match kind {
                BREACHED => Counted::Breached(due),
                _ => Counted::Window(due),
            })
        })
    }

    /// Where its slot's bytes start (after the clocks as counted).
    fn slot_start(&self) -> usize {
        let n = self.bytes.first().copied().unwrap_or(0);
        (0..n).fold(1, |at, _| match self.bytes.get(at) {
            Some(&MET) => at + 1,
            _ => at + 9,
        })
    }

    /// Its slot, without clocks (recompute them before use).
    fn slot(&self) -> Result<Slot, DecodeError> {
        let mut slot: Slot =
            postcard::from_bytes(self.bytes.get(self.slot_start()..).unwrap_or_default())
                .map_err(|e| DecodeError(format!("a settled complaint of the board: {e}")))?;
        slot.received_at = self.received_at;
        slot.each_time(|t| *t = from_offset(*t, self.received_at));
        Ok(slot)
    }
}

/// `t` as [`Settled`] stores it, relative to `base`: `NONE` is 0, a time at or after
/// `base` is one more than its distance, one before it its (negative) distance. Exact
/// for every valid time (their distances are far from wrapping).
fn offset(t: Micros, base: Micros) -> Micros {
    if t == NONE {
        return 0;
    }
    let d = t.wrapping_sub(base);
    if d >= 0 {
        d.wrapping_add(1)
    } else {
        d
    }
}

/// The time of an [`offset`] from `base`.
fn from_offset(v: Micros, base: Micros) -> Micros {
    match v {
        0 => NONE,
        v if v > 0 => base.wrapping_add(v - 1),
        v => base.wrapping_add(v),
    }
}

/// The board's state (its indexes are rebuilt from it).
#[derive(Debug, Clone)]
struct Data {
    names: Names,
    /// Complaints not settled.
    slots: Vec<Slot>,
    /// Settled complaints (see [`Settled`]).
    settled: Vec<Settled>,
    /// The latest stop of a settled complaint's clock (`NONE`: none yet): at a "now"
    /// before it, the figures count settled complaints from their recomputed clocks.
    settled_from: Micros,
    /// Complaints registered: the next one's ordinal.
    registered: u32,
    /// The payload of the last `rules.loaded` event applied, if any.
    rules: Option<Vec<u8>>,
}

impl Default for Data {
    fn default() -> Self {
        Self {
            names: Names::default(),
            slots: Vec::new(),
            settled: Vec::new(),
            settled_from: NONE,
            registered: 0,
            rules: None,
        }
    }
}

/// The row in [`Inner::ids`] of settled complaint `k` is `SETTLED | k`.
const SETTLED: u32 = 1 << 31;

/// No slot: in [`Inner::slot_at`], a settled complaint.
const NO_SLOT: u32 = u32::MAX;

/// Which complaint `row` of [`Inner::ids`] is.
fn row_id(data: &Data, row: u32) -> [u8; 16] {
    let found = match row & SETTLED {
        0 => data.slots.get(row as usize).map(|s| s.id),
        _ => data.settled.get((row & !SETTLED) as usize).map(|s| s.id),
    };
    found.unwrap_or_default()
}

/// Slots a part of a saved board holds at most.
const SLOTS_PER_PART: usize = 65_536;

/// What a snapshot of the board holds: the names, the rules last recorded, and the slots
/// in parts, each encoded on its own, so that saving and restoring a board of a million
/// complaints (the snapshot at a restart, every checkpoint for views of the past, every
/// view of the past) is spread over the cores instead of being one long decode.
#[derive(Serialize)]
struct Saved<'a> {
    names: &'a Names,
    rules: Option<&'a [u8]>,
    slots: u64,
    parts: Vec<&'a [u8]>,
    settled_from: Micros,
    settled: u64,
    settled_parts: Vec<&'a [u8]>,
    registered: u32,
}

/// [`Saved`], read back (the parts borrowed from the snapshot's bytes).
#[derive(Deserialize)]
struct Restored<'a> {
    names: Names,
    #[serde(borrow)]
    rules: Option<&'a [u8]>,
    slots: u64,
    #[serde(borrow)]
    parts: Vec<&'a [u8]>,
    settled_from: Micros,
    settled: u64,
    #[serde(borrow)]
    settled_parts: Vec<&'a [u8]>,
    registered: u32,
}

/// A part of a saved board's slots, decoded into a vector of the part's length at once:
/// serde's own `Vec` reserves at most about a megabyte ahead, so a part of 65,536 slots
/// grew by doubling (copied three times over, each time into fresh pages: a tenth of an
/// as-of board's time at ten years). The length is trusted up to what the part's bytes
/// can hold.
struct PartOf<T> {
    at_most: usize,
    of: std::marker::PhantomData<T>,
}

impl<'de, T: Deserialize<'de>> serde::de::DeserializeSeed<'de> for PartOf<T> {
    type Value = Vec<T>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Vec<T>, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for PartOf<T> {
    type Value = Vec<T>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a part of the board's complaints")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(self.at_most));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(items)
    }
}

/// `items` encoded in parts of `per_part`, on every core.
fn encode_in_parts<T: Serialize + Sync>(
    items: &[T],
    per_part: usize,
) -> Result<Vec<Vec<u8>>, postcard::Error> {
    let parts = items.len().div_ceil(per_part);
    on_every_core(parts, |i| {
        let part = items
            .get(i * per_part..items.len().min((i + 1) * per_part))
            .unwrap_or_default();
        postcard::to_stdvec(part)
    })
    .into_iter()
    .collect()
}

/// The parts [`encode_in_parts`] wrote, decoded on every core into one vector of about
/// `len` items (a part's item takes 16 bytes at least: its id).
fn decode_parts<'de, T: Deserialize<'de> + Send>(
    parts: &[&'de [u8]],
    len: u64,
) -> Result<Vec<T>, postcard::Error> {
    let total = parts.iter().map(|p| p.len()).sum::<usize>();
    let mut items = Vec::with_capacity(usize::try_from(len).unwrap_or(0).min(total / 16));
    for part in on_every_core(parts.len(), |i| {
        let mut part = postcard::Deserializer::from_bytes(parts[i]);
        serde::de::DeserializeSeed::deserialize(
            PartOf {
                at_most: parts[i].len() / 16,
                of: std::marker::PhantomData,
            },
            &mut part,
        )
    }) {
        items.extend(part?);
    }
    Ok(items)
}

/// `f(0)`, ..., `f(n - 1)` in that order, computed on as many threads as there are cores
/// (at most `n`), each taking every so many.
fn on_every_core<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .clamp(1, n.max(1));
    if threads == 1 {
        return (0..n).map(f).collect();
    }
    let f = &f;
    let mut done: Vec<(usize, T)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    (t..n)
                        .step_by(threads)
                        .map(|i| (i, f(i)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            // A panic in a worker is a bug; it is the caller's, as it would be here.
            .flat_map(|w| {
                w.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    done.sort_unstable_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, t)| t).collect()
}

/// The tally of `items`, counted in `parts` shares on as many threads.
fn in_parts<T: Sync>(items: &[T], parts: usize, add: impl Fn(&mut Tally, &T) + Sync) -> Tally {
    let chunk = items.len().div_ceil(parts.max(1)).max(1);
    let tally = |items: &[T]| {
        let mut t = Tally::default();
        for item in items {
            add(&mut t, item);
        }
        t
    };
    if items.len() <= chunk {
        return tally(items);
    }
    let tally = &tally;
    std::thread::scope(|scope| {
        let others: Vec<_> = items
            .chunks(chunk)
            .skip(1)
            .map(|part| scope.spawn(move || tally(part)))
            .collect();
        let mut t = tally(items.get(..chunk).unwrap_or(items));
        for other in others {
            // A panic in a part is a bug; it is the caller's, as it would be here.
            match other.join() {
                Ok(other) => t.merge(other),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        t
    })
}

#[derive(Default)]
struct Inner {
    data: Data,
    ids: RowIndex,
    /// Running (not stopped) deadline clocks by due time: (due, ordinal, clock index).
    urgent: BTreeSet<(Micros, u32, u16)>,
    /// Each complaint's next unrecorded crossing: (when, ordinal).
    crossings: BTreeSet<(Micros, u32)>,
    /// The slot of each ordinal (`NO_SLOT`: settled).
    slot_at: Vec<u32>,
    /// Slots waiting for their clocks to be recomputed.
    dirty: Vec<u32>,
}

/// Slot `s`'s index keys (its clocks as they are): its running clocks' go into `urgent`;
/// its next unrecorded crossing is returned (`NONE` if none).
fn keys(
    data: &Data,
    engine: &Engine,
    s: u32,
    urgent: &mut impl Extend<(Micros, u32, u16)>,
) -> Micros {
    let Some(slot) = data.slots.get(s as usize) else {
        return NONE;
    };
    let regime = data.names.get(slot.regime);
    urgent.extend(
        slot.clocks
            .iter()
            .enumerate()
            .filter(|(_, c)| rule_of(engine, regime, c).is_some_and(|(_, rule)| c.running(rule)))
            .map(|(i, c)| (c.due_at, slot.ordinal, i as u16)),
    );
    unrecorded(engine, &data.names, slot)
        .map(|(at, ..)| at)
        .min()
        .unwrap_or(NONE)
}

/// The rule of a clock of a complaint under `regime`.
fn rule_of<'e>(
    engine: &'e Engine,
    regime: &str,
    clock: &Clock,
) -> Option<(&'e Policy, &'e ClockRule)> {
    let policy = engine.policies.version(regime, clock.version).ok()?;
    let rule = policy.clocks.get(usize::from(clock.rule))?;
    Some((policy, rule))
}

impl Inner {
    /// The row of complaint `id`: a slot, or `SETTLED | k` for settled complaint `k`.
    fn row_of(&self, id: ComplaintId) -> Option<u32> {
        self.ids
            .get(id.uuid().as_bytes(), |r| row_id(&self.data, r))
    }

    /// The ordinal of complaint `id`, settled or not.
    fn ordinal_of(&self, id: ComplaintId) -> Option<u32> {
        match self.row_of(id)? {
            r if r & SETTLED != 0 => self.data.settled.get((r & !SETTLED) as usize),
            s => return self.data.slots.get(s as usize).map(|slot| slot.ordinal),
        }
        .map(|settled| settled.ordinal)
    }

    /// The slot of complaint `id`, unsettling it first if it is settled (an event of it
    /// is about to be applied: it is marked for its clocks to be recomputed).
    fn hot_slot_of(&mut self, id: ComplaintId) -> Result<Option<u32>, DecodeError> {
        match self.row_of(id) {
            Some(r) if r & SETTLED != 0 => self.unsettle(r & !SETTLED).map(Some),
            other => Ok(other),
        }
    }

    /// Settles slot `s` if its complaint is settled (see [`Settled`]); says whether.
    /// Moves the last slot into `s`.
    fn settle(&mut self, engine: &Engine, s: u32) -> bool {
        let Some(slot) = self.data.slots.get_mut(s as usize) else {
            return false;
        };
        // Taken out to be encoded without them. A settled complaint has no index keys:
        // its clocks are not running and it has no crossing to come.
        let clocks = std::mem::take(&mut slot.clocks);
        let next = std::mem::replace(&mut slot.next_crossing, NONE);
        let Some((settled, stopped)) = Settled::of(slot, &clocks, engine, &self.data.names) else {
            slot.clocks = clocks;
            slot.next_crossing = next;
            return false;
        };
        let (id, ordinal) = (slot.id, slot.ordinal);
        if next != NONE {
            self.crossings.remove(&(next, ordinal));
        }
        self.ids.remove(&id, |r| row_id(&self.data, r));
        let last = self.data.slots.len() as u32 - 1;
        if s != last {
            let moved = &self.data.slots[last as usize];
            let (moved, moved_ordinal) = (moved.id, moved.ordinal);
            self.ids.set(&moved, s, |r| row_id(&self.data, r));
            self.set_slot_at(moved_ordinal, s);
        }
        self.data.slots.swap_remove(s as usize);
        self.set_slot_at(ordinal, NO_SLOT);
        let k = self.data.settled.len() as u32;
        self.data.settled.push(settled);
        self.data.settled_from = self.data.settled_from.max(stopped);
        let Inner { data, ids, .. } = self;
        ids.insert(&id, SETTLED | k, |r| row_id(data, r));
        true
    }

    /// Makes settled complaint `k` a slot again, marked for its clocks to be
    /// recomputed; returns the slot. Moves the last settled complaint into `k`.
    fn unsettle(&mut self, k: u32) -> Result<u32, DecodeError> {
        let Some(settled) = self.data.settled.get(k as usize) else {
            return Err(DecodeError(format!(
                "no settled complaint {k} on the board"
            )));
        };
        let slot = settled.slot()?;
        let (id, ordinal) = (settled.id, settled.ordinal);
        self.ids.remove(&id, |r| row_id(&self.data, r));
        let last = self.data.settled.len() as u32 - 1;
        if k != last {
            let moved = self.data.settled[last as usize].id;
            self.ids.set(&moved, SETTLED | k, |r| row_id(&self.data, r));
        }
        self.data.settled.swap_remove(k as usize);
        let s = self.data.slots.len() as u32;
        self.data.slots.push(slot);
        self.set_slot_at(ordinal, s);
        let Inner { data, ids, .. } = &mut *self;
        ids.insert(&id, s, |r| row_id(data, r));
        self.mark(s);
        Ok(s)
    }

    /// Notes that complaint `ordinal` is in slot `s` (`NO_SLOT`: settled).
    fn set_slot_at(&mut self, ordinal: u32, s: u32) {
        let o = ordinal as usize;
        if o >= self.slot_at.len() {
            self.slot_at.resize(o + 1, NO_SLOT);
        }
        self.slot_at[o] = s;
    }

    /// The slot of complaint `ordinal`, if it is not settled.
    fn slot_by_ordinal(&self, ordinal: u32) -> Option<&Slot> {
        let s = *self.slot_at.get(ordinal as usize)?;
        self.data.slots.get(s as usize)
    }

    /// Settled complaint `k` as a slot with its clocks (for reading; the board keeps it
    /// settled).
    fn settled_slot(&self, engine: &Engine, k: usize) -> Option<Slot> {
        self.settled_slot_of(engine, self.data.settled.get(k)?)
    }

    /// [`Inner::settled_slot`] of `settled`.
    fn settled_slot_of(&self, engine: &Engine, settled: &Settled) -> Option<Slot> {
        let mut slot = settled.slot().ok()?;
        let (clocks, problem) = clocks_of(engine, &self.data.names, &slot);
        slot.clocks = clocks;
        set_problem(&mut slot, problem);
        Some(slot)
    }

    fn mark(&mut self, s: u32) {
        if let Some(slot) = self.data.slots.get_mut(s as usize) {
            if !slot.dirty {
                slot.dirty = true;
                self.dirty.push(s);
            }
        }
    }

    /// Whether at `now` the settled complaints count as [`Tally::add_settled`] counts
    /// them: now is past every stop of their clocks (a view of a moment before the board's
    /// last events is not: they are counted from their clocks then).
    fn settled_counts_at(&self, now: Timestamp) -> bool {
        self.data.settled_from == NONE || time(self.data.settled_from) <= now
    }

    /// Marks every complaint for its clocks to be recomputed (unsettling those settled:
    /// they are settled under the rules they were computed with).
    fn mark_all(&mut self) -> Result<(), DecodeError> {
        while let Some(k) = self.data.settled.len().checked_sub(1) {
            self.unsettle(k as u32)?;
        }
        self.data.settled_from = NONE;
        for s in 0..self.data.slots.len() as u32 {
            self.mark(s);
        }
        Ok(())
    }

    /// Removes a slot's keys from the indexes.
    fn unindex(&mut self, s: u32) {
        let Some(slot) = self.data.slots.get(s as usize) else {
            return;
        };
        for (i, c) in slot.clocks.iter().enumerate() {
            self.urgent.remove(&(c.due_at, slot.ordinal, i as u16));
        }
        if slot.next_crossing != NONE {
            self.crossings.remove(&(slot.next_crossing, slot.ordinal));
        }
    }

    /// Adds a slot's keys to the indexes (its clocks as they are).
    fn index(&mut self, engine: &Engine, s: u32) {
        let next = keys(&self.data, engine, s, &mut self.urgent);
        if let (true, Some(slot)) = (next != NONE, self.data.slots.get(s as usize)) {
            self.crossings.insert((next, slot.ordinal));
        }
        if let Some(slot) = self.data.slots.get_mut(s as usize) {
            slot.next_crossing = next;
        }
    }

    /// Recomputes a slot's clocks from its facts and re-indexes it.
    fn recompute(&mut self, engine: &Engine, s: u32) {
        self.unindex(s);
        let Some(slot) = self.data.slots.get(s as usize) else {
            return;
        };
        let (clocks, problem) = clocks_of(engine, &self.data.names, slot);
        let slot = &mut self.data.slots[s as usize];
        slot.clocks = clocks;
        slot.dirty = false;
        set_problem(slot, problem);
        self.index(engine, s);
    }

    /// Recomputes every slot marked since the last flush, and settles those that are
    /// settled after it (if `settle`).
    fn flush(&mut self, engine: &Engine, settle: bool) {
        let dirty = std::mem::take(&mut self.dirty);
        for s in &dirty {
            self.recompute(engine, *s);
        }
        if settle {
            // Highest first: settling slot `s` moves the last slot into it, and every
            // slot after `s` has been looked at by then.
            let mut dirty = dirty;
            dirty.sort_unstable_by(|a, b| b.cmp(a));
            dirty.dedup();
            for s in dirty {
                self.settle(engine, s);
            }
        }
    }

    /// Rebuilds the id table and indexes from the slots (after a restore).
    fn reindex(&mut self, engine: &Engine) {
        self.ids.clear();
        let Inner { data, ids, .. } = self;
        ids.reserve(data.slots.len() + data.settled.len(), |r| row_id(data, r));
        for (i, slot) in data.slots.iter().enumerate() {
            ids.insert(&slot.id, i as u32, |r| row_id(data, r));
        }
        for (k, settled) in data.settled.iter().enumerate() {
            ids.insert(&settled.id, SETTLED | k as u32, |r| row_id(data, r));
        }
        // Every slot's keys first, then each index built at once from them (sorted and
        // built in bulk, rather than a million inserts into the trees).
        let mut urgent = Vec::with_capacity(self.data.slots.len());
        let mut crossings = Vec::new();
        self.slot_at = vec![NO_SLOT; self.data.registered as usize];
        for s in 0..self.data.slots.len() as u32 {
            let ordinal = self.data.slots[s as usize].ordinal;
            self.set_slot_at(ordinal, s);
            let next = keys(&self.data, engine, s, &mut urgent);
            if next != NONE {
                crossings.push((next, ordinal));
            }
            self.data.slots[s as usize].next_crossing = next;
        }
        self.urgent = urgent.into_iter().collect();
        self.crossings = crossings.into_iter().collect();
    }

    fn times<'a>(
        &'a self,
        engine: &'a Engine,
        slot: &Slot,
        c: &Clock,
    ) -> Option<(&'a ClockRule, ClockTimes<'a>)> {
        let (policy, rule) = rule_of(engine, self.data.names.get(slot.regime), c)?;
        let calendar = match c.business_days {
            true => policy.calendar_for(self.data.names.get(slot.region)).ok(),
            false => None,
        };
        Some((
            rule,
            ClockTimes {
                started_at: time(c.started_at),
                due_date: c.due_date(),
                due_at: time(c.due_at),
                calendar,
                stopped_at: time_opt(c.stopped_at),
                paused_since: time_opt(c.paused_since),
            },
        ))
    }

    /// A clock as a [`Due`] (without its explanation).
    fn due(&self, engine: &Engine, slot: &Slot, c: &Clock) -> Option<Due> {
        let (policy, rule) = rule_of(engine, self.data.names.get(slot.regime), c)?;
        Some(
            c.timing()
                .due(policy, rule, self.data.names.get(slot.region), Vec::new()),
        )
    }

    /// The entry of complaint `id`.
    fn entry_of(&self, engine: &Engine, id: ComplaintId) -> Option<Entry> {
        match self.row_of(id)? {
            r if r & SETTLED != 0 => {
                let slot = self.settled_slot(engine, (r & !SETTLED) as usize)?;
                Some(self.entry(engine, &slot))
            }
            s => Some(self.entry(engine, self.data.slots.get(s as usize)?)),
        }
    }

    fn entry(&self, engine: &Engine, slot: &Slot) -> Entry {
        let names = &self.data.names;
        let more = slot.more.as_deref();
        Entry {
            id: slot.id(),
            regime: names.get(slot.regime).to_owned(),
            unit: names.get(slot.unit).to_owned(),
            category: names.get(slot.category).to_owned(),
            status: status_of(slot.status),
            facts: slot.facts(names),
            dues: slot
                .clocks
                .iter()
                .filter_map(|c| self.due(engine, slot, c))
                .collect(),
            problem: more.and_then(|m| m.problem.clone()),
            answered_at: time_opt(slot.answered_at),
            ended_at: time_opt(slot.ended_at),
            recorded: more.map_or_else(BTreeSet::new, |m| {
                m.recorded
                    .iter()
                    .map(|(c, t, d)| (names.get(*c).to_owned(), *t, time(*d)))
                    .collect()
            }),
        }
    }
}

/// A slot's clocks computed from its facts with the latest rules of its regime, or why
/// they cannot be.
fn clocks_of(engine: &Engine, names: &Names, slot: &Slot) -> (Box<[Clock]>, Option<String>) {
    let facts = slot.facts(names);
    match engine.policies.latest(names.get(slot.regime)) {
        Ok(policy) => match engine.timings(policy, &facts) {
            Ok(t) => (
                t.iter()
                    .map(|(rule, t)| Clock::of(policy.version, *rule, t))
                    .collect(),
                None,
            ),
            Err(e) => (Box::default(), Some(e.to_string())),
        },
        Err(e) => (Box::default(), Some(e.to_string())),
    }
}

/// Keeps why a slot's clocks cannot be computed (or that they can).
fn set_problem(slot: &mut Slot, problem: Option<String>) {
    match (problem, slot.more.as_deref_mut()) {
        (Some(p), _) => slot.more().problem = Some(p),
        (None, Some(more)) => more.problem = None,
        (None, None) => {}
    }
}

/// A slot's unrecorded crossings: (when, clock index, threshold). A paused clock has
/// none (its due time moves while paused).
fn unrecorded<'a>(
    engine: &'a Engine,
    names: &'a Names,
    slot: &'a Slot,
) -> impl Iterator<Item = (Micros, u16, u8)> + 'a {
    let regime = names.get(slot.regime);
    slot.clocks.iter().enumerate().flat_map(move |(i, c)| {
        let rule = rule_of(engine, regime, c)
            .map(|(_, rule)| rule)
            .filter(|rule| c.running(rule) && c.paused_since == NONE);
        let thresholds = rule.into_iter().flat_map(|rule| {
            rule.at_risk
                .iter()
                .copied()
                .chain(std::iter::once(100))
                .map(move |t| (rule, t))
        });
        thresholds.filter_map(move |(rule, threshold)| {
            let recorded = slot.is_recorded(names, &rule.id, threshold, c.due_at);
            (!recorded).then(|| (c.crossing_at(threshold), i as u16, threshold))
        })
    })
}

/// The SLA board projection.
pub struct SlaBoard {
    /// The rules computing due times: the last recorded in the log (`rules.loaded`),
    /// or fixed ones when asked.
    engine: RwLock<Arc<Engine>>,
    /// The rules it was given, before any recorded in the log.
    initial: Arc<Engine>,
    follow_recorded_rules: bool,
    /// Whether settled complaints are kept settled (see [`Settled`]); off only in tests,
    /// to compare with.
    settle: bool,
    kept: Kept<Inner>,
}

impl SlaBoard {
    /// An empty board computing with `engine` until the log records other rules, then
    /// with those.
    pub fn new(engine: Arc<Engine>) -> Self {
        Self {
            engine: RwLock::new(engine.clone()),
            initial: engine,
            follow_recorded_rules: true,
            settle: true,
            kept: Kept::default(),
        }
    }

    /// This board keeping every complaint as a slot, settled or not: what a settling
    /// board must answer exactly as (for tests).
    #[doc(hidden)]
    #[must_use]
    pub fn never_settling(self) -> Self {
        Self {
            settle: false,
            ..self
        }
    }

    /// An empty board computing with `engine` whatever rules the log records (for "what
    /// would today's rules say about the past").
    pub fn with_fixed_rules(engine: Arc<Engine>) -> Self {
        Self {
            follow_recorded_rules: false,
            ..Self::new(engine)
        }
    }

    /// The rules the board computes with now.
    pub fn engine(&self) -> Arc<Engine> {
        self.engine
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Its whole state, for comparing a rebuilt board with a live one.
    pub fn state(&self) -> BoardState {
        let engine = self.engine();
        let inner = self.kept.read();
        let id = |o: u32| inner.slot_by_ordinal(o).map(Slot::id);
        let settled = (0..inner.data.settled.len()).filter_map(|k| inner.settled_slot(&engine, k));
        BoardState {
            entries: settled
                .map(|slot| inner.entry(&engine, &slot))
                .chain(
                    inner
                        .data
                        .slots
                        .iter()
                        .map(|slot| inner.entry(&engine, slot)),
                )
                .map(|e| (e.id, e))
                .collect(),
            urgent: inner
                .urgent
                .iter()
                .filter_map(|(at, o, i)| Some((time(*at), id(*o)?, usize::from(*i))))
                .collect(),
            crossings: inner
                .crossings
                .iter()
                .filter_map(|(at, o)| Some((time(*at), id(*o)?)))
                .collect(),
        }
    }

    fn apply_one(
        &self,
        inner: &mut Inner,
        engine: &mut Arc<Engine>,
        d: &Decoded,
    ) -> Result<(), DecodeError> {
        match &d.stored {
            Stored::RulesLoaded(sources) => {
                if self.follow_recorded_rules {
                    match sources.engine() {
                        Ok(new) => {
                            *engine = Arc::new(new);
                            *self.engine.write().unwrap_or_else(PoisonError::into_inner) =
                                engine.clone();
                            inner.data.rules = Some(d.record.payload.to_vec());
                            inner.mark_all()?;
                        }
                        // The service checked them before recording them, so this is a log
                        // written by another build; keep computing with the rules before.
                        Err(e) => {
                            tracing::error!(position = d.record.position, error = %e, "recorded SLA rules are invalid; keeping the previous ones");
                        }
                    }
                }
            }
            Stored::Crossing(t) => {
                if let Some(s) = inner.hot_slot_of(t.id)? {
                    let clock = inner.data.names.intern(&t.clock);
                    let key = (clock, t.threshold, micros(t.due_at));
                    let slot = &mut inner.data.slots[s as usize];
                    if !slot.more().recorded.contains(&key) {
                        slot.more().recorded.push(key);
                        inner.unindex(s);
                        inner.index(engine, s);
                    }
                }
            }
            Stored::Complaint { complaint, event } => {
                let s = match &event.change {
                    Change::Registered(r) => {
                        match inner.hot_slot_of(r.id)? {
                            // Registered twice (never, by the domain's rules): start over.
                            Some(s) => {
                                inner.unindex(s);
                                let ordinal = inner.data.slots[s as usize].ordinal;
                                let slot = Slot::registered(r, ordinal, &mut inner.data.names);
                                inner.data.slots[s as usize] = slot;
                                s
                            }
                            None => {
                                let ordinal = inner.data.registered;
                                inner.data.registered = ordinal.saturating_add(1);
                                let slot = Slot::registered(r, ordinal, &mut inner.data.names);
                                let s = inner.data.slots.len() as u32;
                                inner.data.slots.push(slot);
                                inner.set_slot_at(ordinal, s);
                                let Inner { data, ids, .. } = &mut *inner;
                                ids.insert(r.id.uuid().as_bytes(), s, |r| row_id(data, r));
                                s
                            }
                        }
                    }
                    _ => match inner.hot_slot_of(*complaint)? {
                        Some(s) => s,
                        None => return Ok(()),
                    },
                };
                let Inner { data, .. } = &mut *inner;
                let slot = &mut data.slots[s as usize];
                let was_ended = status_of(slot.status).is_ended();
                // An end moves no SLA fact, but may settle the complaint: it is looked at
                // again at the end of the batch.
                let changed = slot.fold(event, &mut data.names)
                    || matches!(event.change, Change::Registered(_))
                    || was_ended != status_of(slot.status).is_ended();
                if changed {
                    inner.mark(s);
                }
            }
            Stored::Queue(_)
            | Stored::Erasure(_)
            | Stored::DigestSigned
            | Stored::RepeatedCause(_)
            | Stored::Unknown => {}
        }
        Ok(())
    }

    /// Running clocks, earliest due first, as they stand at `now`.
    pub fn clocks(&self, now: Timestamp, query: &ClockQuery) -> ClockPage {
        let engine = self.engine();
        let inner = self.kept.read();
        let size = query.page_size.max(1);
        let mut items = Vec::with_capacity(size.min(1024));
        let mut next = None;
        let names = &inner.data.names;
        let (Ok(regime), Ok(unit), Ok(category)) = (
            names.filter(&query.regime),
            names.filter(&query.unit),
            names.filter(&query.category),
        ) else {
            return ClockPage { items, next }; // a name the board has never seen
        };
        let start = query.after.map(|(at, id, i)| {
            let o = inner.ordinal_of(id).unwrap_or(u32::MAX);
            (micros(at), o, u16::try_from(i).unwrap_or(u16::MAX))
        });
        let range = match start {
            Some(after) => inner
                .urgent
                .range((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded)),
            None => inner.urgent.range(..),
        };
        let mut last = None;
        for (_, o, i) in range {
            let Some(slot) = inner.slot_by_ordinal(*o) else {
                continue;
            };
            let Some(c) = slot.clocks.get(usize::from(*i)) else {
                continue;
            };
            if regime.is_some_and(|r| slot.regime != r)
                || unit.is_some_and(|u| slot.unit != u)
                || category.is_some_and(|c| slot.category != c)
            {
                continue;
            }
            let Some((rule, times)) = inner.times(&engine, slot, c) else {
                continue;
            };
            let assessment = engine.assess_times(rule, &times, now);
            if !query.states.is_empty() && !query.states.contains(&StateKind::of(&assessment.state))
            {
                continue;
            }
            if items.len() == size {
                next = last;
                break;
            }
            let Some(due) = inner.due(&engine, slot, c) else {
                continue;
            };
            last = Some((due.due_at, slot.id(), usize::from(*i)));
            items.push(ClockItem {
                id: slot.id(),
                regime: names.get(slot.regime).to_owned(),
                unit: names.get(slot.unit).to_owned(),
                category: names.get(slot.category).to_owned(),
                due,
                assessment,
            });
        }
        ClockPage { items, next }
    }

    /// The board's figures as they stand at `now`, "today" being `now`'s UTC day.
    pub fn figures(&self, now: Timestamp) -> Figures {
        self.figures_in(now, &jiff::tz::TimeZone::UTC)
    }

    /// The board's figures as they stand at `now`, "today" being `now`'s day in `zone`
    /// (the business's time zone).
    pub fn figures_in(&self, now: Timestamp, zone: &jiff::tz::TimeZone) -> Figures {
        // Every clock is assessed: on a large board, a share of the slots per core.
        let slots = {
            let inner = self.kept.read();
            inner.data.slots.len().max(inner.data.settled.len())
        };
        let parts = match slots {
            n if n >= FIGURES_PER_THREAD * 2 => std::thread::available_parallelism()
                .map_or(1, std::num::NonZero::get)
                .clamp(1, n / FIGURES_PER_THREAD),
            _ => 1,
        };
        self.figures_in_parts(now, zone, parts)
    }

    /// [`SlaBoard::figures_in`], counted in `parts` shares of the slots on as many threads
    /// (the same figures whatever `parts`: for tests).
    #[doc(hidden)]
    pub fn figures_in_parts(
        &self,
        now: Timestamp,
        zone: &jiff::tz::TimeZone,
        parts: usize,
    ) -> Figures {
        let engine = self.engine();
        let inner = self.kept.read();
        let names = &inner.data.names;
        let today = now.to_zoned(zone.clone()).date();
        let instant = |d: jiff::civil::Date| d.to_zoned(zone.clone()).ok().map(|z| z.timestamp());
        let day = (
            micros(instant(today).unwrap_or(now)),
            micros(today.tomorrow().ok().and_then(instant).unwrap_or(now)),
        );
        let mut t = in_parts(&inner.data.slots, parts, |t, slot| {
            t.add(&inner, &engine, slot, now, day);
        });
        let settled = match inner.settled_counts_at(now) {
            // What a settled complaint adds does not depend on now, but for its windows.
            true => in_parts(&inner.data.settled, parts, |t, settled| {
                t.add_settled(settled, now);
            }),
            false => in_parts(&inner.data.settled, parts, |t, settled| {
                if let Some(slot) = inner.settled_slot_of(&engine, settled) {
                    t.add(&inner, &engine, &slot, now, day);
                }
            }),
        };
        t.merge(settled);
        let mut f = Figures {
            complaints: t.complaints,
            open_complaints: t.open,
            due_today: t.due_today,
            ..Figures::default()
        };
        f.by_state = t
            .by_state
            .into_iter()
            .map(|(k, n)| (k.name().to_owned(), n))
            .collect();
        for ((regime, kind), n) in t.by_regime_and_state {
            *f.by_regime_and_state
                .entry((names.get(regime).to_owned(), kind.name().to_owned()))
                .or_default() += n;
        }
        let named = |m: HashMap<Sym, u64>| -> BTreeMap<String, u64> {
            let mut out = BTreeMap::new();
            for (s, n) in m {
                *out.entry(names.get(s).to_owned()).or_default() += n;
            }
            out
        };
        f.breached_by_regime = named(t.by_regime);
        f.breached_by_unit = named(t.by_unit);
        f.breached_by_category = named(t.by_category);
        f.breach_rate = if t.stopped == 0 {
            0.0
        } else {
            t.late as f64 / t.stopped as f64
        };
        // The element a sort would put in the middle, without sorting the rest.
        let middle = t.times_to_answer.len() / 2;
        f.median_time_to_answer = (middle < t.times_to_answer.len())
            .then(|| *t.times_to_answer.select_nth_unstable(middle).1);
        f
    }

    /// The board's last `weeks` weeks (Monday to Sunday in `zone`, the current one last)
    /// and its open complaints by age at `now`: what the charts show. A breach counts in
    /// the week its clock fell due; an answer in the week it was given.
    pub fn trends(&self, now: Timestamp, zone: &jiff::tz::TimeZone, weeks: usize) -> Trends {
        let engine = self.engine();
        let inner = self.kept.read();
        let today = now.to_zoned(zone.clone()).date();
        let monday = today
            .checked_sub(jiff::Span::new().days(i64::from(today.weekday().to_monday_zero_offset())))
            .unwrap_or(today);
        let starts: Vec<jiff::civil::Date> = (0..weeks)
            .rev()
            .filter_map(|back| {
                monday
                    .checked_sub(jiff::Span::new().weeks(back as i64))
                    .ok()
            })
            .collect();
        let instant = |d: jiff::civil::Date| {
            d.to_zoned(zone.clone())
                .map(|z| micros(z.timestamp()))
                .unwrap_or(Micros::MIN)
        };
        let bounds: Vec<Micros> = starts.iter().map(|d| instant(*d)).collect();
        let end = monday
            .checked_add(jiff::Span::new().weeks(1))
            .map(instant)
            .unwrap_or(Micros::MAX);
        // The week of instant `at`, if within the range.
        let week = |at: Micros| -> Option<usize> {
            if at == NONE || at >= end || bounds.first().is_none_or(|first| at < *first) {
                return None;
            }
            Some(bounds.partition_point(|b| *b <= at) - 1)
        };
        let mut breaches = vec![0u64; starts.len()];
        let mut answers: Vec<Vec<SignedDuration>> = vec![Vec::new(); starts.len()];
        let mut open_by_age = vec![0u64; AGE_BANDS.len() + 1];
        let now_micros = micros(now);
        let mut count = |slot: &Slot| {
            if !status_of(slot.status).is_ended() {
                let age_days = (now_micros - slot.received_at).max(0) / 86_400_000_000;
                let band = AGE_BANDS.partition_point(|max| *max < age_days);
                open_by_age[band] += 1;
            }
            let answered = slot.effective_answer();
            if let Some(w) = week(answered) {
                answers[w].push(SignedDuration::from_micros(answered - slot.received_at));
            }
            for c in &slot.clocks {
                let Some(w) = week(c.due_at) else {
                    continue;
                };
                let Some((rule, times)) = inner.times(&engine, slot, c) else {
                    continue;
                };
                if StateKind::of(&engine.assess_times(rule, &times, now).state)
                    == StateKind::Breached
                {
                    breaches[w] += 1;
                }
            }
        };
        for slot in &inner.data.slots {
            count(slot);
        }
        if inner.settled_counts_at(now) {
            // Settled: ended (not open), and of their clocks only those stopped late are
            // breached, whatever now.
            for settled in &inner.data.settled {
                if let Some(w) = week(settled.answer) {
                    answers[w].push(SignedDuration::from_micros(
                        settled.answer - settled.received_at,
                    ));
                }
                for c in settled.counted() {
                    if let Some(w) = match c {
                        Counted::Breached(due) => week(due),
                        Counted::Met | Counted::Window(_) => None,
                    } {
                        breaches[w] += 1;
                    }
                }
            }
        } else {
            for settled in &inner.data.settled {
                if let Some(slot) = inner.settled_slot_of(&engine, settled) {
                    count(&slot);
                }
            }
        }
        let weeks = starts
            .into_iter()
            .zip(breaches)
            .zip(answers)
            .map(|((start, breaches), mut answers)| {
                answers.sort();
                Week {
                    start,
                    breaches,
                    answered: answers.len() as u64,
                    median_time_to_answer: answers.get(answers.len() / 2).copied(),
                }
            })
            .collect();
        Trends { weeks, open_by_age }
    }

    /// Crossings due by `now` that are not recorded yet, earliest first.
    pub fn crossings_due(&self, now: Timestamp) -> Vec<Crossing> {
        let engine = self.engine();
        let inner = self.kept.read();
        let names = &inner.data.names;
        let now = micros(now);
        let mut out = Vec::new();
        for (_, o) in inner.crossings.iter().take_while(|(at, _)| *at <= now) {
            let Some(slot) = inner.slot_by_ordinal(*o) else {
                continue;
            };
            let regime = names.get(slot.regime);
            for (at, i, threshold) in unrecorded(&engine, names, slot).filter(|(at, ..)| *at <= now)
            {
                let Some(c) = slot.clocks.get(usize::from(i)) else {
                    continue;
                };
                let Some((policy, rule)) = rule_of(&engine, regime, c) else {
                    continue;
                };
                let refer_to = match threshold >= 100 {
                    true => rule.on_breach_refer_to.clone(),
                    false => None,
                };
                out.push((
                    (at, slot.id, i, threshold),
                    Crossing {
                        id: slot.id(),
                        policy: policy.id.clone(),
                        policy_version: policy.version,
                        clock: rule.id.clone(),
                        threshold,
                        at: time(at),
                        due_at: time(c.due_at),
                        refer_to,
                    },
                ));
            }
        }
        out.sort_by_key(|(key, _)| *key);
        out.into_iter().map(|(_, c)| c).collect()
    }

    /// When the next unrecorded crossing happens.
    pub fn next_crossing(&self) -> Option<Timestamp> {
        let inner = self.kept.read();
        inner.crossings.first().map(|(at, _)| time(*at))
    }

    /// A receiver that changes whenever the board applies an event.
    pub fn changes(&self) -> watch::Receiver<Position> {
        self.kept.progress().changes()
    }

    /// How many complaints it keeps settled: ended, their clocks stopped (see the module).
    pub fn settled(&self) -> usize {
        self.kept.read().data.settled.len()
    }

    /// A complaint's entry.
    pub fn entry(&self, id: ComplaintId) -> Option<Entry> {
        let engine = self.engine();
        let inner = self.kept.read();
        inner.entry_of(&engine, id)
    }

    /// [`Projection::save`] with parts of `slots_per_part` slots (any size restores to
    /// the same board: for tests).
    #[doc(hidden)]
    pub fn save_in_parts(&self, slots_per_part: usize) -> Result<(Position, Vec<u8>), SaveError> {
        let per_part = slots_per_part.max(1);
        self.kept.save(|inner| {
            // In the order of registration, whatever order settling left them in: the
            // same board saves to the same bytes, whichever batches built it.
            let mut hot: Vec<&Slot> = inner.data.slots.iter().collect();
            hot.sort_unstable_by_key(|slot| slot.ordinal);
            let mut cold: Vec<&Settled> = inner.data.settled.iter().collect();
            cold.sort_unstable_by_key(|settled| settled.ordinal);
            let slots = encode_in_parts(&hot, per_part)?;
            let settled = encode_in_parts(&cold, per_part)?;
            let saved = Saved {
                names: &inner.data.names,
                rules: inner.data.rules.as_deref(),
                slots: inner.data.slots.len() as u64,
                parts: slots.iter().map(Vec::as_slice).collect(),
                settled_from: inner.data.settled_from,
                settled: inner.data.settled.len() as u64,
                settled_parts: settled.iter().map(Vec::as_slice).collect(),
                registered: inner.data.registered,
            };
            // Written into a buffer of about its size at once (a growing one would copy
            // the parts a few times over).
            let size = slots
                .iter()
                .chain(&settled)
                .map(|p| p.len() + 10)
                .sum::<usize>()
                + saved.rules.map_or(0, <[u8]>::len)
                + (1 << 16);
            Ok(postcard::to_extend(&saved, Vec::with_capacity(size))?)
        })
    }
}

impl Projection for SlaBoard {
    fn name(&self) -> &'static str {
        "board"
    }

    fn progress(&self) -> &Progress {
        self.kept.progress()
    }

    /// Applies a batch of consecutive events: each complaint's clocks are recomputed once,
    /// at the end. On an event it cannot read, it applies those before it and says so.
    fn apply_batch(&self, batch: &[Decoded]) -> Result<(), DecodeError> {
        let mut engine = self.engine();
        let mut inner = self.kept.write();
        let mut applied = None;
        let mut failed = None;
        for d in batch {
            if let Err(e) = self.apply_one(&mut inner, &mut engine, d) {
                failed = Some(e);
                break;
            }
            applied = Some(d.record.position);
        }
        inner.flush(&engine, self.settle);
        drop(inner);
        if let Some(position) = applied {
            self.kept.progress().advance(position);
        }
        failed.map_or(Ok(()), Err)
    }

    /// Empties the board (back to position 0 and the rules it was given).
    fn reset(&self) {
        *self.engine.write().unwrap_or_else(PoisonError::into_inner) = self.initial.clone();
        self.kept.reset();
    }

    /// The board as bytes, with the position it stands at: for a snapshot. The slots are
    /// encoded in parts of their own (see `Saved`), on every core.
    fn save(&self) -> Result<(Position, Vec<u8>), SaveError> {
        self.save_in_parts(SLOTS_PER_PART)
    }

    /// Replaces the board with a saved one standing at `position`.
    fn restore(&self, position: Position, bytes: &[u8]) -> Result<(), DecodeError> {
        let undecodable =
            |e: postcard::Error| DecodeError(format!("undecodable board snapshot: {e}"));
        let saved: Restored<'_> = postcard::from_bytes(bytes).map_err(undecodable)?;
        let mut data = Data {
            names: saved.names,
            slots: decode_parts(&saved.parts, saved.slots).map_err(undecodable)?,
            settled: decode_parts(&saved.settled_parts, saved.settled).map_err(undecodable)?,
            settled_from: saved.settled_from,
            registered: saved.registered,
            rules: saved.rules.map(<[u8]>::to_vec),
        };
        if !self.follow_recorded_rules {
            // Recomputed below with the rules given, as a board that ignores recorded
            // rules keeps none.
            data.rules = None;
        }
        let mut engine = self.initial.clone();
        let recompute = match (&data.rules, self.follow_recorded_rules) {
            (Some(payload), true) => {
                let sources = decode_rules(payload)?;
                engine = Arc::new(sources.engine().map_err(|e| DecodeError(e.to_string()))?);
                false
            }
            // Computed with rules given at start, not recorded: perhaps not today's.
            _ => true,
        };
        let mut inner = Inner {
            data,
            ..Inner::default()
        };
        inner.reindex(&engine);
        if recompute || !self.settle {
            inner.mark_all()?;
            inner.flush(&engine, self.settle);
        }
        *self.engine.write().unwrap_or_else(PoisonError::into_inner) = engine;
        self.kept.replace(position, inner);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_settled_complaints_times_read_back_from_their_offsets() {
        let (min, max) = (micros(Timestamp::MIN), micros(Timestamp::MAX));
        for base in [0, 1_733_000_000_000_000, min, max] {
            for t in [NONE, base, base + 1, base - 1, 0, min, max, 86_400_000_000] {
                assert_eq!(from_offset(offset(t, base), base), t, "{t} from {base}");
            }
            assert_eq!(offset(NONE, base), 0);
        }
    }
}
