//! Back-dated entries: steps recorded well after they happened (recorded time minus
//! effective time over a threshold), for auditors looking for where back-dating happens.
//! Read from the log itself (one pass, as the auditor's replay would), not kept in memory
//! by the service.

use std::collections::{BTreeMap, HashMap};

use complaints_domain::model::ComplaintId;
use complaints_domain::Change;
use complaints_events::Stored;
use eventlog::{Direction, EventLog, Position};
use jiff::{SignedDuration, Timestamp};

use crate::as_of::AsOfError;

const PAGE: usize = 4096;

/// Which entries to list.
#[derive(Debug, Clone)]
pub struct Query {
    /// Recorded at least this long after it happened.
    pub min_delay: SignedDuration,
    /// Recorded in `[from, to)`, where given.
    pub recorded_from: Option<Timestamp>,
    pub recorded_to: Option<Timestamp>,
    /// Only complaints of this unit (as they were when the entry was recorded).
    pub unit: Option<String>,
}

/// One back-dated entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub complaint: ComplaintId,
    pub position: Position,
    pub event_type: &'static str,
    pub effective: Timestamp,
    pub recorded: Timestamp,
    pub actor: String,
    /// The complaint's unit and handler when it was recorded (handler empty: unassigned).
    pub unit: String,
    pub handler: String,
    pub reason: Option<String>,
}

impl Entry {
    pub fn delay(&self) -> SignedDuration {
        self.recorded.duration_since(self.effective)
    }
}

/// How many entries, and the longest delay, for one unit or handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Total {
    pub key: String,
    pub entries: u64,
    pub max_delay: SignedDuration,
}

/// The entries in log order, with totals by unit and by handler (in name order), and the
/// log position the list was computed at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub entries: Vec<Entry>,
    pub by_unit: Vec<Total>,
    pub by_handler: Vec<Total>,
    pub position: Position,
}

/// Lists the back-dated entries of `log` that `query` asks for.
pub async fn backdated(log: &dyn EventLog, query: &Query) -> Result<Report, AsOfError> {
    // Each complaint's (unit, handler), as the log goes.
    let mut assigned: HashMap<ComplaintId, (String, String)> = HashMap::new();
    let mut entries = Vec::new();
    let mut from = 1;
    let mut position = 0;
    loop {
        let page = log.read_all(from, Direction::Forward, PAGE).await?;
        let Some(end) = page.last().map(|r| r.position) else {
            break;
        };
        for record in &page {
            let stored = Stored::decode(record).map_err(|e| e.at(record.position))?;
            let Stored::Complaint { complaint, event } = stored else {
                continue;
            };
            match &event.change {
                Change::Registered(r) => {
                    assigned.insert(complaint, (r.unit.clone(), String::new()));
                }
                Change::Assigned { unit, handler } => {
                    assigned.insert(complaint, (unit.clone(), handler.clone()));
                }
                _ => {}
            }
            let Some(effective) = &event.effective else {
                continue;
            };
            let (unit, handler) = assigned.get(&complaint).cloned().unwrap_or_default();
            let entry = Entry {
                complaint,
                position: record.position,
                event_type: event.change.event_type(),
                effective: effective.at,
                recorded: event.at,
                actor: event.actor.clone(),
                unit,
                handler,
                reason: effective.reason.clone(),
            };
            let wanted = entry.delay() >= query.min_delay
                && query.recorded_from.is_none_or(|t| entry.recorded >= t)
                && query.recorded_to.is_none_or(|t| entry.recorded < t)
                && query.unit.as_ref().is_none_or(|u| &entry.unit == u);
            if wanted {
                entries.push(entry);
            }
        }
        position = end;
        from = end + 1;
    }
    let totals = |key: fn(&Entry) -> &str| {
        let mut by: BTreeMap<String, Total> = BTreeMap::new();
        for e in &entries {
            let k = key(e).to_owned();
            let t = by.entry(k.clone()).or_insert(Total {
                key: k,
                entries: 0,
                max_delay: SignedDuration::ZERO,
            });
            t.entries += 1;
            t.max_delay = t.max_delay.max(e.delay());
        }
        by.into_values().collect::<Vec<_>>()
    };
    let by_unit = totals(|e| &e.unit);
    let by_handler = totals(|e| &e.handler);
    Ok(Report {
        entries,
        by_unit,
        by_handler,
        position,
    })
}
