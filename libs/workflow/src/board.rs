//! The SLA board: every complaint's clocks, kept by a subscription to the log, for the
//! operations teams: what is due, at risk or breached, most urgent first, and the figures
//! by regime, unit and category.
//!
//! Per complaint it keeps only the SLA facts (no personal data) and the computed due
//! times; the state at a moment is worked out at query time, since it depends on "now".

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, RwLock};

use complaints_domain::model::{ComplaintId, Status};
use complaints_domain::{status_after, Change, Event};
use complaints_sla::{ClockState, Due, Engine, Facts, PauseFact, Stop};
use eventlog::{EventLog, Position, RecordedEvent};
use jiff::{SignedDuration, Timestamp};
use tokio::sync::watch;

use crate::codec::{self, DecodeError};
use crate::projection::{feed, Progress};

/// What the board keeps of one complaint.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub id: ComplaintId,
    pub regime: String,
    pub unit: String,
    pub category: String,
    pub status: Status,
    pub facts: Facts,
    /// The clocks that have started, with their due times.
    pub dues: Vec<Due>,
    /// Why the due times could not be computed, if they could not.
    pub problem: Option<String>,
    /// The latest answer, and when the complaint ended (as the domain's state has them).
    pub answered_at: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
    /// Threshold crossings already recorded in the log: (clock, threshold, due time).
    pub recorded: BTreeSet<(String, u8, Timestamp)>,
    /// Crossings still to come, as keys of the board's crossing index.
    scheduled: Vec<(Timestamp, usize, u8)>,
}

/// A clock reaching one of its thresholds: an at-risk percentage, or 100 for the breach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crossing {
    pub id: ComplaintId,
    pub policy: String,
    pub policy_version: u32,
    pub clock: String,
    pub threshold: u8,
    pub at: Timestamp,
    pub due_at: Timestamp,
    /// For a breach: where the policy says the complaint must go now, if anywhere.
    pub refer_to: Option<String>,
}

impl Entry {
    /// The entry of a just-registered complaint.
    pub fn registered(r: &complaints_domain::Register) -> Self {
        Entry {
            id: r.id,
            regime: r.regime.clone(),
            unit: r.unit.clone(),
            category: r.category.clone(),
            status: Status::Received,
            facts: Facts {
                category: r.category.clone(),
                ..Facts::received(r.received_at, &r.region)
            },
            dues: Vec::new(),
            problem: None,
            answered_at: None,
            ended_at: None,
            recorded: BTreeSet::new(),
            scheduled: Vec::new(),
        }
    }
}

/// Folds one event into an entry: the board's own fold, kept equal to
/// [`crate::sla::facts`] of the full state (see the tests).
pub fn fold(entry: &mut Entry, event: &Event) {
    let at = event.at;
    let facts = &mut entry.facts;
    let close_pause = |facts: &mut Facts| {
        if let Some(p) = facts.pauses.last_mut().filter(|p| p.until.is_none()) {
            p.until = Some(at);
        }
    };
    match &event.change {
        Change::Acknowledged => {
            facts.acknowledged_at.get_or_insert(at);
        }
        Change::Assigned { unit, .. } => entry.unit = unit.clone(),
        Change::ClassifiedComplex { .. } => facts.complex = true,
        Change::HoldingResponseSent { .. } => {
            facts.holding_response_at.get_or_insert(at);
        }
        Change::ExtensionApproved { days, .. } => facts.extensions.push((*days, at)),
        Change::ClockPaused { reason, .. } => facts.pauses.push(PauseFact {
            reason: reason.as_str().to_owned(),
            from: at,
            until: None,
        }),
        Change::ClockResumed { .. } | Change::Withdrawn { .. } => close_pause(facts),
        Change::NewFactsAdded { .. } => facts.new_facts_at.push(at),
        Change::Answered { .. } => {
            entry.answered_at = Some(at);
            close_pause(facts);
        }
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
        | Change::Closed
        | Change::Reopened { .. } => {}
    }
    // Status and end time exactly as the domain's evolve keeps them.
    entry.status = status_after(entry.status, &event.change);
    match (entry.status.is_ended(), entry.ended_at) {
        (true, None) => entry.ended_at = Some(at),
        (false, Some(_)) => entry.ended_at = None,
        _ => {}
    }
    // A complaint withdrawn, declined or merged stops its clocks the day it ended.
    let ended_without_answer = match entry.status {
        Status::Withdrawn | Status::Declined | Status::Merged => entry.ended_at,
        _ => None,
    };
    entry.facts.answered_at = entry.answered_at.or(ended_without_answer);
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

/// The board's figures at a moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Figures {
    /// Running clocks by state, over all complaints.
    pub by_state: BTreeMap<String, u64>,
    /// Breached running or stopped clocks by regime, unit and category.
    pub breached_by_regime: BTreeMap<String, u64>,
    pub breached_by_unit: BTreeMap<String, u64>,
    pub breached_by_category: BTreeMap<String, u64>,
    /// Running clocks falling due within `now`'s UTC day (not those already overdue).
    pub due_today: u64,
    /// Stopped clocks that were late, over all stopped clocks.
    pub breach_rate: f64,
    /// Median time from receipt to answer, over answered complaints.
    pub median_time_to_answer: Option<SignedDuration>,
    pub complaints: u64,
    pub open_complaints: u64,
}

/// Everything the board holds, comparable: what a rebuild must reproduce exactly.
#[derive(Debug, Clone, PartialEq)]
pub struct BoardState {
    pub entries: BTreeMap<ComplaintId, Entry>,
    pub urgent: BTreeSet<(Timestamp, ComplaintId, usize)>,
    pub crossings: BTreeSet<(Timestamp, ComplaintId, usize, u8)>,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<ComplaintId, Entry>,
    /// Running (not stopped) deadline clocks by due time: (due, complaint, clock index).
    urgent: BTreeSet<(Timestamp, ComplaintId, usize)>,
    /// Threshold crossings not yet recorded: (when, complaint, clock index, threshold).
    crossings: BTreeSet<(Timestamp, ComplaintId, usize, u8)>,
}

/// The SLA board projection.
pub struct SlaBoard {
    /// The rules computing due times: the last recorded in the log (see [`crate::rules`]),
    /// or fixed ones when asked.
    engine: RwLock<Arc<Engine>>,
    follow_recorded_rules: bool,
    inner: RwLock<Inner>,
    progress: Progress,
}

impl SlaBoard {
    /// An empty board computing with `engine` until the log records other rules, then
    /// with those.
    pub fn new(engine: Arc<Engine>) -> Self {
        Self {
            engine: RwLock::new(engine),
            follow_recorded_rules: true,
            inner: RwLock::default(),
            progress: Progress::default(),
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
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Starts a board fed by `log` from its first event. The task ends with the log.
    pub fn spawn(
        engine: Arc<Engine>,
        log: Arc<dyn EventLog>,
    ) -> (Arc<Self>, tokio::task::JoinHandle<()>) {
        let board = Arc::new(Self::new(engine));
        let task = feed("SLA board", log, board.clone(), Self::apply);
        (board, task)
    }

    /// Its whole state, for comparing a rebuilt board with a live one.
    pub fn state(&self) -> BoardState {
        let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
        BoardState {
            entries: inner.entries.iter().map(|(k, v)| (*k, v.clone())).collect(),
            urgent: inner.urgent.clone(),
            crossings: inner.crossings.clone(),
        }
    }

    /// The last log position applied.
    pub fn position(&self) -> Position {
        self.progress.position()
    }

    /// Waits until the board has applied `position`.
    pub async fn wait_for(&self, position: Position) {
        self.progress.wait_for(position).await
    }

    /// Applies one event of the log (events of other streams are skipped).
    pub fn apply(&self, record: &RecordedEvent) -> Result<(), DecodeError> {
        if record.event_type == crate::rules::EVENT_TYPE {
            if self.follow_recorded_rules {
                self.switch_rules(record)?;
            }
        } else if record.event_type.starts_with("sla.") {
            let t = crate::transitions::decode(&record.payload)?;
            let mut inner = self.inner.write().unwrap_or_else(|p| p.into_inner());
            let Inner {
                entries, crossings, ..
            } = &mut *inner;
            if let Some(entry) = entries.get_mut(&t.id) {
                entry
                    .recorded
                    .insert((t.clock.clone(), t.threshold, t.due_at));
                if let Some(index) = entry
                    .dues
                    .iter()
                    .position(|d| d.clock == t.clock && d.due_at == t.due_at)
                {
                    crossings.remove(&(t.at, t.id, index, t.threshold));
                    entry.scheduled.retain(|k| *k != (t.at, index, t.threshold));
                }
            }
        } else if record.event_type.starts_with("complaint.") {
            let event = codec::decode(&record.event_type, &record.payload)?;
            let mut inner = self.inner.write().unwrap_or_else(|p| p.into_inner());
            let id = match &event.change {
                Change::Registered(r) => {
                    inner.entries.insert(r.id, Entry::registered(r));
                    Some(r.id)
                }
                _ => record
                    .stream
                    .as_str()
                    .strip_prefix("complaint-")
                    .and_then(ComplaintId::parse_name),
            };
            if let Some(id) = id {
                self.update(&mut inner, id, &event);
            }
        }
        self.progress.advance(record.position);
        Ok(())
    }

    /// Switches to the rules recorded in `record` and recomputes every complaint.
    fn switch_rules(&self, record: &RecordedEvent) -> Result<(), DecodeError> {
        let sources = crate::rules::decode(&record.payload)?;
        let engine = match sources.engine() {
            Ok(engine) => engine,
            Err(e) => {
                // The service checked them before recording them, so this is a log
                // written by another build; keep computing with the rules before.
                tracing::error!(position = record.position, error = %e, "recorded SLA rules are invalid; keeping the previous ones");
                return Ok(());
            }
        };
        *self.engine.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(engine);
        let mut inner = self.inner.write().unwrap_or_else(|p| p.into_inner());
        let ids: Vec<ComplaintId> = inner.entries.keys().copied().collect();
        for id in ids {
            self.recompute(&mut inner, id, None);
        }
        Ok(())
    }

    fn update(&self, inner: &mut Inner, id: ComplaintId, event: &Event) {
        self.recompute(inner, id, Some(event))
    }

    /// Folds `event` (if any) into the complaint's entry and recomputes its clocks.
    fn recompute(&self, inner: &mut Inner, id: ComplaintId, event: Option<&Event>) {
        let engine = self.engine();
        let Some(mut entry) = inner.entries.remove(&id) else {
            return;
        };
        for (i, due) in entry.dues.iter().enumerate() {
            inner.urgent.remove(&(due.due_at, id, i));
        }
        for (at, i, threshold) in entry.scheduled.drain(..) {
            inner.crossings.remove(&(at, id, i, threshold));
        }
        if let Some(event) = event {
            fold(&mut entry, event);
        }
        (entry.dues, entry.problem) = match engine.policies.latest(&entry.regime) {
            Ok(policy) => match engine.due_dates_unexplained(policy, &entry.facts) {
                Ok(dues) => (dues, None),
                Err(e) => (Vec::new(), Some(e.to_string())),
            },
            Err(e) => (Vec::new(), Some(e.to_string())),
        };
        if let Ok(policy) = engine.policies.latest(&entry.regime) {
            for (i, due) in entry.dues.iter().enumerate() {
                let Some(rule) = policy.clocks.iter().find(|c| c.id == due.clock) else {
                    continue;
                };
                if due.stopped_at.is_some() || rule.stops == Stop::WindowCloses {
                    continue;
                }
                inner.urgent.insert((due.due_at, id, i));
                if due.paused_since.is_some() {
                    continue; // the due time moves while paused: nothing to schedule
                }
                let total = due.due_at.duration_since(due.started_at);
                let thresholds = rule.at_risk.iter().map(|p| {
                    let at = due
                        .started_at
                        .checked_add(total * i32::from(*p) / 100)
                        .unwrap_or(due.due_at);
                    (*p, at)
                });
                for (threshold, at) in thresholds.chain(std::iter::once((100, due.due_at))) {
                    if !entry
                        .recorded
                        .contains(&(due.clock.clone(), threshold, due.due_at))
                    {
                        inner.crossings.insert((at, id, i, threshold));
                        entry.scheduled.push((at, i, threshold));
                    }
                }
            }
        }
        inner.entries.insert(id, entry);
    }

    fn assess(&self, due: &Due, now: Timestamp) -> Option<complaints_sla::Assessment> {
        let engine = self.engine();
        let policy = engine
            .policies
            .version(&due.policy, due.policy_version)
            .ok()?;
        let rule = policy.clocks.iter().find(|c| c.id == due.clock)?;
        Some(engine.assess(rule, due, now))
    }

    /// Running clocks, earliest due first, as they stand at `now`.
    pub fn clocks(&self, now: Timestamp, query: &ClockQuery) -> ClockPage {
        let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
        let size = query.page_size.max(1);
        let mut items = Vec::with_capacity(size.min(1024));
        let mut next = None;
        let range = match query.after {
            Some(after) => inner
                .urgent
                .range((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded)),
            None => inner.urgent.range(..),
        };
        let mut last = None;
        for key in range {
            let (_, id, index) = key;
            let Some(entry) = inner.entries.get(id) else {
                continue;
            };
            let Some(due) = entry.dues.get(*index) else {
                continue;
            };
            if query.regime.as_ref().is_some_and(|r| &entry.regime != r)
                || query.unit.as_ref().is_some_and(|u| &entry.unit != u)
                || query
                    .category
                    .as_ref()
                    .is_some_and(|c| &entry.category != c)
            {
                continue;
            }
            let Some(assessment) = self.assess(due, now) else {
                continue;
            };
            if !query.states.is_empty() && !query.states.contains(&StateKind::of(&assessment.state))
            {
                continue;
            }
            if items.len() == size {
                next = last;
                break;
            }
            last = Some(*key);
            items.push(ClockItem {
                id: *id,
                regime: entry.regime.clone(),
                unit: entry.unit.clone(),
                category: entry.category.clone(),
                due: due.clone(),
                assessment,
            });
        }
        ClockPage { items, next }
    }

    /// The board's figures as they stand at `now`.
    pub fn figures(&self, now: Timestamp) -> Figures {
        let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
        let mut f = Figures::default();
        let today = now.to_zoned(jiff::tz::TimeZone::UTC).date();
        let instant = |d: jiff::civil::Date| {
            d.to_zoned(jiff::tz::TimeZone::UTC)
                .ok()
                .map(|z| z.timestamp())
        };
        let start_of_today = instant(today).unwrap_or(now);
        let end_of_today = today.tomorrow().ok().and_then(instant).unwrap_or(now);
        let (mut stopped, mut late) = (0u64, 0u64);
        let mut times_to_answer = Vec::new();
        for entry in inner.entries.values() {
            f.complaints += 1;
            if !entry.status.is_ended() {
                f.open_complaints += 1;
            }
            if let Some(answered) = entry.facts.answered_at {
                times_to_answer.push(answered.duration_since(entry.facts.received_at));
            }
            for due in &entry.dues {
                let Some(a) = self.assess(due, now) else {
                    continue;
                };
                let kind = StateKind::of(&a.state);
                if due.stopped_at.is_none() {
                    *f.by_state
                        .entry(format!("{kind:?}").to_lowercase())
                        .or_default() += 1;
                    let window = matches!(kind, StateKind::WindowOpen | StateKind::WindowClosed);
                    if due.due_at > start_of_today && due.due_at <= end_of_today && !window {
                        f.due_today += 1;
                    }
                } else if matches!(kind, StateKind::Met | StateKind::Breached) {
                    stopped += 1;
                }
                if kind == StateKind::Breached {
                    if due.stopped_at.is_some() {
                        late += 1;
                    }
                    *f.breached_by_regime
                        .entry(entry.regime.clone())
                        .or_default() += 1;
                    *f.breached_by_unit.entry(entry.unit.clone()).or_default() += 1;
                    *f.breached_by_category
                        .entry(entry.category.clone())
                        .or_default() += 1;
                }
            }
        }
        f.breach_rate = if stopped == 0 {
            0.0
        } else {
            late as f64 / stopped as f64
        };
        times_to_answer.sort();
        f.median_time_to_answer = times_to_answer.get(times_to_answer.len() / 2).copied();
        f
    }

    /// Crossings due by `now` that are not recorded yet, earliest first.
    pub fn crossings_due(&self, now: Timestamp) -> Vec<Crossing> {
        let engine = self.engine();
        let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
        inner
            .crossings
            .iter()
            .take_while(|(at, ..)| *at <= now)
            .filter_map(|(at, id, index, threshold)| {
                let due = inner.entries.get(id)?.dues.get(*index)?;
                let refer_to = if *threshold >= 100 {
                    engine
                        .policies
                        .version(&due.policy, due.policy_version)
                        .ok()
                        .and_then(|p| p.clocks.iter().find(|c| c.id == due.clock))
                        .and_then(|c| c.on_breach_refer_to.clone())
                } else {
                    None
                };
                Some(Crossing {
                    id: *id,
                    policy: due.policy.clone(),
                    policy_version: due.policy_version,
                    clock: due.clock.clone(),
                    threshold: *threshold,
                    at: *at,
                    due_at: due.due_at,
                    refer_to,
                })
            })
            .collect()
    }

    /// When the next unrecorded crossing happens.
    pub fn next_crossing(&self) -> Option<Timestamp> {
        let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
        inner.crossings.first().map(|(at, ..)| *at)
    }

    /// A receiver that changes whenever the board applies an event.
    pub fn changes(&self) -> watch::Receiver<Position> {
        self.progress.changes()
    }

    /// A complaint's entry.
    pub fn entry(&self, id: ComplaintId) -> Option<Entry> {
        let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
        inner.entries.get(&id).cloned()
    }
}
