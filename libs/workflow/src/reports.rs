//! Regulatory returns and complaint analysis for a period, from the log **as it stood at
//! the period's end**.
//!
//! The figures come from the reports projection ([`Reports::cases_as_of`]): every fact
//! recorded before the period's end, none after. A fact recorded later that happened
//! within the period is listed as a late entry, not folded in, so a rerun next year gives
//! the same figures. Each report carries its [`Provenance`]: the last log position the
//! figures include and the hash of the record there (signed when the service signs
//! digests), the rules in force then, and the hash of the mapping file that turned our
//! names into the regulator's codes.
//!
//! The returns:
//! - [`ReportKind::AsicIdr`]: ASIC's IDR data report (RG 271), one row per complaint
//!   received in the half-year or still open at its start.
//! - [`ReportKind::FcaReturn`]: the FCA complaints return's figures (DISP 1 Annex 1R) by
//!   product group: opened, closed (within 3 business days, within 8 weeks, later),
//!   upheld, redress by kind, and opened by cause.
//! - [`ReportKind::NfraStatistics`]: China's NFRA complaint statistics by business
//!   category, cause and province: received, handled on time and overdue, reviewed
//!   (核查), transferred by the regulator (监管转送).
//! - [`ReportKind::Measures`]: the source policy's measures by unit, handler, product or
//!   category: handled, time to answer, breach rate, valid-complaint rate (有效投诉率),
//!   satisfaction.
//! - [`ReportKind::RootCauses`]: the same root cause on the same product and unit at
//!   least N times within D days (溯源整改), with the complaints behind each.
//!
//! The regulators' codes are not ours to hard-code: an operator-editable [`Mapping`]
//! (TOML) maps our channels, products, categories and outcomes to them, and a return is
//! refused while any complaint in it is unmapped ([`ReportError::Unmapped`], listing them).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use complaints_domain::model::*;
use complaints_projections::reports::{Case, Finding, LateEntry, Reports, Resolution};
use complaints_projections::Projection;
use complaints_sla::Engine;
use eventlog::audit::{Digest, HeldDigest, Signer};
use eventlog::{EventLog, Position};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::{as_of, rules};

/// The report kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReportKind {
    AsicIdr,
    FcaReturn,
    NfraStatistics,
    Measures,
    RootCauses,
}

impl ReportKind {
    /// Every kind, in the order shown.
    pub const ALL: &'static [ReportKind] = &[
        ReportKind::AsicIdr,
        ReportKind::FcaReturn,
        ReportKind::NfraStatistics,
        ReportKind::Measures,
        ReportKind::RootCauses,
    ];

    /// Its name, as the CLI, the API and file names spell it.
    pub const fn name(self) -> &'static str {
        match self {
            ReportKind::AsicIdr => "asic-idr",
            ReportKind::FcaReturn => "fca-return",
            ReportKind::NfraStatistics => "nfra-statistics",
            ReportKind::Measures => "measures",
            ReportKind::RootCauses => "root-causes",
        }
    }

    /// The kind named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|k| k.name() == name)
    }

    /// The time zone its periods are cut in unless the caller names one: the regulator's.
    pub fn default_time_zone(self) -> &'static str {
        match self {
            ReportKind::AsicIdr => "Australia/Sydney",
            ReportKind::FcaReturn => "Europe/London",
            ReportKind::NfraStatistics => "Asia/Shanghai",
            ReportKind::Measures | ReportKind::RootCauses => "UTC",
        }
    }
}

/// A reporting period: whole days `first..=last` in a time zone, i.e. the instants
/// `[start, end)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Period {
    /// As given, e.g. `2026-H1`.
    pub label: String,
    pub first: Date,
    pub last: Date,
    pub time_zone: String,
    pub start: Timestamp,
    pub end: Timestamp,
}

impl Period {
    /// Parses `2026-H1`/`H2` (half-years), `2026-Q1`..`Q4`, `2026-03` (a month), `2026`
    /// (a year) or `2026-01-01..2026-06-30` (inclusive dates), in `time_zone`.
    pub fn parse(text: &str, time_zone: &str) -> Result<Self, String> {
        let zone =
            TimeZone::get(time_zone).map_err(|_| format!("unknown time zone {time_zone:?}"))?;
        let t = text.trim();
        let date =
            |y: i16, m: i8, d: i8| Date::new(y, m, d).map_err(|e| format!("period {t:?}: {e}"));
        let year = |s: &str| {
            s.parse::<i16>()
                .ok()
                .filter(|y| (1900..=9999).contains(y))
                .ok_or_else(|| format!("period {t:?}: {s:?} is not a year"))
        };
        let day = |d: &str| {
            Date::strptime("%Y-%m-%d", d.trim())
                .ok()
                .filter(|date| date.to_string() == d.trim())
                .ok_or_else(|| format!("period {t:?}: {d:?} is not a date (YYYY-MM-DD)"))
        };
        let (first, last) = if let Some((a, b)) = t.split_once("..") {
            (day(a)?, day(b)?)
        } else if let Some((y, rest)) = t.split_once('-') {
            let y = year(y)?;
            match rest {
                "H1" => (date(y, 1, 1)?, date(y, 6, 30)?),
                "H2" => (date(y, 7, 1)?, date(y, 12, 31)?),
                "Q1" => (date(y, 1, 1)?, date(y, 3, 31)?),
                "Q2" => (date(y, 4, 1)?, date(y, 6, 30)?),
                "Q3" => (date(y, 7, 1)?, date(y, 9, 30)?),
                "Q4" => (date(y, 10, 1)?, date(y, 12, 31)?),
                m => {
                    let m = m
                        .parse::<i8>()
                        .ok()
                        .filter(|m| (1..=12).contains(m))
                        .ok_or_else(|| {
                            format!("period {t:?}: expected H1, H2, Q1-Q4 or a month 01-12")
                        })?;
                    let first = date(y, m, 1)?;
                    (first, first.last_of_month())
                }
            }
        } else {
            let y = year(t)?;
            (date(y, 1, 1)?, date(y, 12, 31)?)
        };
        if last < first {
            return Err(format!("period {t:?} ends before it starts"));
        }
        let instant = |d: Date| {
            d.to_zoned(zone.clone())
                .map(|z| z.timestamp())
                .map_err(|e| format!("period {t:?}: {e}"))
        };
        let after = last.tomorrow().map_err(|e| format!("period {t:?}: {e}"))?;
        // A range is named by its days as parsed; the other forms as given.
        let label = if t.contains("..") {
            format!("{first}..{last}")
        } else {
            t.to_owned()
        };
        Ok(Period {
            label,
            first,
            last,
            time_zone: time_zone.to_owned(),
            start: instant(first)?,
            end: instant(after)?,
        })
    }

    fn zone(&self) -> TimeZone {
        TimeZone::get(&self.time_zone).unwrap_or(TimeZone::UTC)
    }

    fn contains(&self, t: Timestamp) -> bool {
        self.start <= t && t < self.end
    }
}

/// What a root-cause analysis looks for: the same cause on the same product and unit at
/// least `count` times within `days` days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RepeatRule {
    pub count: u32,
    pub days: u32,
}

impl Default for RepeatRule {
    fn default() -> Self {
        Self { count: 3, days: 30 }
    }
}

/// What the measures are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dimension {
    Unit,
    Handler,
    Product,
    Category,
}

impl Dimension {
    pub const ALL: &'static [Dimension] = &[
        Dimension::Unit,
        Dimension::Handler,
        Dimension::Product,
        Dimension::Category,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Dimension::Unit => "unit",
            Dimension::Handler => "handler",
            Dimension::Product => "product",
            Dimension::Category => "category",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|d| d.name() == name)
    }
}

/// A report to compute.
#[derive(Debug, Clone)]
pub struct ReportRequest {
    pub kind: ReportKind,
    pub period: Period,
    /// For [`ReportKind::Measures`].
    pub by: Dimension,
    /// For [`ReportKind::RootCauses`].
    pub repeat: RepeatRule,
}

/// The operator's mapping of our names to a regulator's codes (TOML; see
/// `deploy/reports/mapping.toml`). Each table maps one of our names to a code.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    #[serde(default)]
    pub asic: AsicMapping,
    #[serde(default)]
    pub fca: FcaMapping,
    #[serde(default)]
    pub nfra: NfraMapping,
}

/// ASIC's codes.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AsicMapping {
    /// The regimes whose complaints ASIC's report holds (default: every `AU-` regime).
    pub regimes: Option<Vec<String>>,
    /// How dates are written (strftime; default `%Y-%m-%d`).
    pub date_format: Option<String>,
    /// Our channel (`hotline`, `web`, ...) -> ASIC's complaint received method.
    #[serde(default)]
    pub channel: BTreeMap<String, String>,
    /// Our product -> ASIC's product or service code.
    #[serde(default)]
    pub product: BTreeMap<String, String>,
    /// Our category -> ASIC's complaint issue code.
    #[serde(default)]
    pub issue: BTreeMap<String, String>,
    /// Our outcome (`upheld`, `partly_upheld`, `rejected`, `withdrawn`) -> ASIC's code.
    #[serde(default)]
    pub outcome: BTreeMap<String, String>,
    /// ASIC's codes for an open and a closed complaint (default `Open`, `Closed`).
    pub status_open: Option<String>,
    pub status_closed: Option<String>,
}

/// The FCA's groups.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FcaMapping {
    /// Default: every `UK-` regime.
    pub regimes: Option<Vec<String>>,
    /// Our product -> the return's product (e.g. `Banking and credit cards: Current accounts`).
    #[serde(default)]
    pub product: BTreeMap<String, String>,
    /// Our category -> the return's main cause (e.g. `General admin/customer service`).
    #[serde(default)]
    pub cause: BTreeMap<String, String>,
}

/// NFRA's categories.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NfraMapping {
    /// Default: every `CN-` regime.
    pub regimes: Option<Vec<String>>,
    /// Our product -> 业务类别 (business category).
    #[serde(default)]
    pub business: BTreeMap<String, String>,
    /// Our category -> 投诉原因 (cause).
    #[serde(default)]
    pub cause: BTreeMap<String, String>,
    /// The unit complained about -> its province (省份).
    #[serde(default)]
    pub province: BTreeMap<String, String>,
}

impl Mapping {
    /// Parses a mapping file's text.
    pub fn from_toml(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }
}

/// A mapping with the hash of the text it was read from (for provenance).
#[derive(Debug, Clone, Default)]
pub struct LoadedMapping {
    pub mapping: Mapping,
    /// BLAKE3 of the file's bytes, hexadecimal; empty when there is no file.
    pub hash: String,
    /// Where it was read from, for people.
    pub source: String,
}

impl LoadedMapping {
    /// Parses `text`, read from `source`.
    pub fn parse(text: &str, source: &str) -> Result<Self, String> {
        Ok(Self {
            mapping: Mapping::from_toml(text).map_err(|e| format!("{source}: {e}"))?,
            hash: blake3::hash(text.as_bytes()).to_hex().to_string(),
            source: source.to_owned(),
        })
    }
}

/// One complaint's name that a mapping lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmapped {
    pub complaint: ComplaintId,
    /// The mapping table, e.g. `asic.product`.
    pub table: &'static str,
    /// Our name that is missing from it.
    pub value: String,
}

/// Why a report could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Complaints whose names the mapping does not map (every one, at once).
    #[error("{} complaint field(s) are not mapped: {}", .0.len(), list_unmapped(.0))]
    Unmapped(Vec<Unmapped>),
    /// The reports projection has not applied the log as far as the figures need (it
    /// stopped: the service is shutting down or the log failed).
    #[error("the reports projection stands at position {at}, the figures need {needed}")]
    NotCaughtUp { at: Position, needed: Position },
    /// A business-day count needs a calendar year the rules do not have.
    #[error("{0}")]
    Calendar(String),
    #[error(transparent)]
    Log(#[from] eventlog::Error),
    #[error(transparent)]
    AsOf(#[from] as_of::AsOfError),
}

fn list_unmapped(list: &[Unmapped]) -> String {
    let mut out = String::new();
    for (i, u) in list.iter().enumerate().take(20) {
        if i > 0 {
            out.push_str("; ");
        }
        let _ = write!(out, "{} {} {:?}", u.complaint, u.table, u.value);
    }
    if list.len() > 20 {
        let _ = write!(out, "; and {} more", list.len() - 20);
    }
    out
}

/// Where a report's figures come from.
#[derive(Debug, Clone, PartialEq)]
pub struct Provenance {
    pub kind: ReportKind,
    pub period: Period,
    /// The last log position the figures include (the last event recorded before the
    /// period's end, or the head when it has not ended).
    pub as_of_position: Position,
    /// The digest of the log at that position (JSON; signed when the service signs).
    pub digest_json: String,
    pub digest_signed: bool,
    /// The log's head when computed: events after `as_of_position` are not in the figures.
    pub log_head: Position,
    /// Whether the period had ended when computed (if not, the figures are provisional).
    pub period_ended: bool,
    /// The SLA rules in force at the period's end.
    pub rules: String,
    pub mapping_hash: String,
    pub mapping_source: String,
    /// BLAKE3 of the figures (every section's columns and cells, canonically): a rerun
    /// that gives the same hash gave the same figures.
    pub figures_hash: String,
    pub computed_at: Timestamp,
    /// This build, e.g. `complaints-workflow 0.1.0`.
    pub build: String,
}

/// A value in a report table.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    Int(i64),
    /// A decimal shown with `places` digits.
    Num {
        value: f64,
        places: u8,
    },
    Empty,
}

impl Cell {
    fn text(s: impl Into<String>) -> Self {
        Cell::Text(s.into())
    }

    fn count(n: usize) -> Self {
        Cell::Int(n as i64)
    }

    fn rate(part: usize, whole: usize) -> Self {
        if whole == 0 {
            Cell::Empty
        } else {
            Cell::Num {
                value: 100.0 * part as f64 / whole as f64,
                places: 1,
            }
        }
    }

    /// As written in CSV. Text that a spreadsheet would run as a formula (starting with
    /// `=`, `+`, `-`, `@`, a tab or a carriage return: names are free text) gets a
    /// leading `'`, as OWASP advises; JSON keeps the text as it is.
    pub fn to_csv(&self) -> String {
        let mut out = String::new();
        self.write_csv(&mut out);
        out
    }

    /// [`Cell::to_csv`], appended to `out`.
    pub fn write_csv(&self, out: &mut String) {
        match self {
            Cell::Text(s) => {
                if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
                    out.push('\'');
                }
                out.push_str(s);
            }
            Cell::Int(n) => {
                let _ = write!(out, "{n}");
            }
            Cell::Num { value, places } => {
                let _ = write!(out, "{value:.*}", usize::from(*places));
            }
            Cell::Empty => {}
        }
    }

    fn to_json(&self) -> Value {
        match self {
            Cell::Text(s) => Value::String(s.clone()),
            Cell::Int(n) => json!(n),
            Cell::Num { value, places } => {
                let scale = 10f64.powi(i32::from(*places));
                json!((value * scale).round() / scale)
            }
            Cell::Empty => Value::Null,
        }
    }

    /// The number in it, if any (for charts).
    pub fn number(&self) -> Option<f64> {
        match self {
            Cell::Int(n) => Some(*n as f64),
            Cell::Num { value, .. } => Some(*value),
            Cell::Text(_) | Cell::Empty => None,
        }
    }
}

/// One table of a report.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    /// Its name, e.g. `complaints`, `products`; also its CSV file's suffix.
    pub name: &'static str,
    pub columns: Vec<&'static str>,
    pub rows: Vec<Vec<Cell>>,
}

impl Section {
    fn new(name: &'static str, columns: &[&'static str]) -> Self {
        Self {
            name,
            columns: columns.to_vec(),
            rows: Vec::new(),
        }
    }
}

/// A computed report.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub provenance: Provenance,
    pub sections: Vec<Section>,
    /// Facts recorded after the period's end that happened within it: not in the figures.
    pub late: Vec<LateEntry>,
}

impl Report {
    /// The provenance as `# key: value` lines (the head of every CSV file).
    fn provenance_lines(&self) -> Vec<(&'static str, String)> {
        let p = &self.provenance;
        vec![
            ("report", p.kind.name().to_owned()),
            ("period", p.period.label.clone()),
            (
                "period_days",
                format!(
                    "{}..{} ({})",
                    p.period.first, p.period.last, p.period.time_zone
                ),
            ),
            ("period_ended", p.period_ended.to_string()),
            ("as_of_position", p.as_of_position.to_string()),
            ("log_head", p.log_head.to_string()),
            ("late_entries", self.late.len().to_string()),
            ("rules", p.rules.clone()),
            (
                "mapping",
                format!("{} (blake3 {})", p.mapping_source, p.mapping_hash),
            ),
            ("figures_hash", p.figures_hash.clone()),
            ("digest_signed", p.digest_signed.to_string()),
            ("computed_at", p.computed_at.to_string()),
            ("build", p.build.clone()),
        ]
    }

    /// One section as CSV: provenance as `#` comment lines, then the header and rows.
    pub fn to_csv(&self, section: &Section) -> String {
        let mut out = String::new();
        for (k, v) in self.provenance_lines() {
            let _ = writeln!(out, "# {k}: {v}");
        }
        let mut writer = csv::Writer::from_writer(Vec::new());
        let _ = writer.write_record(&section.columns);
        for row in &section.rows {
            let _ = writer.write_record(row.iter().map(Cell::to_csv));
        }
        out.push_str(&String::from_utf8_lossy(
            &writer.into_inner().unwrap_or_default(),
        ));
        out
    }

    /// The late entries as a section.
    pub fn late_section(&self) -> Section {
        let mut s = Section::new(
            "late_entries",
            &["complaint_id", "what", "happened_at", "recorded_at"],
        );
        for l in &self.late {
            s.rows.push(vec![
                Cell::text(l.id.uuid().to_string()),
                Cell::text(l.what),
                Cell::text(l.happened_at.to_string()),
                Cell::text(l.recorded_at.to_string()),
            ]);
        }
        s
    }

    /// The whole report as one JSON document.
    pub fn to_json(&self) -> String {
        let p = &self.provenance;
        let digest: Value = serde_json::from_str(&p.digest_json).unwrap_or(Value::Null);
        let section = |s: &Section| {
            json!({
                "name": s.name,
                "columns": s.columns,
                "rows": s.rows.iter().map(|r| {
                    Value::Object(s.columns.iter().zip(r).map(|(c, v)| ((*c).to_owned(), v.to_json())).collect())
                }).collect::<Vec<_>>(),
            })
        };
        let doc = json!({
            "provenance": {
                "report": p.kind.name(),
                "period": p.period.label,
                "first_day": p.period.first.to_string(),
                "last_day": p.period.last.to_string(),
                "time_zone": p.period.time_zone,
                "start": p.period.start.to_string(),
                "end": p.period.end.to_string(),
                "period_ended": p.period_ended,
                "as_of_position": p.as_of_position,
                "log_head": p.log_head,
                "digest": digest,
                "digest_signed": p.digest_signed,
                "rules": p.rules,
                "mapping_source": p.mapping_source,
                "mapping_hash": p.mapping_hash,
                "figures_hash": p.figures_hash,
                "computed_at": p.computed_at.to_string(),
                "build": p.build,
            },
            "sections": self.sections.iter().map(section).collect::<Vec<_>>(),
            "late_entries": section(&self.late_section()),
        });
        serde_json::to_string_pretty(&doc).unwrap_or_default()
    }
}

/// How long a report waits for the reports projection to reach the position it needs.
const CATCH_UP: std::time::Duration = std::time::Duration::from_secs(30);

/// What a report is computed with.
pub struct Reporter<'a> {
    pub log: &'a dyn EventLog,
    pub reports: &'a Reports,
    pub mapping: &'a LoadedMapping,
    pub signer: Option<&'a Signer>,
    pub now: Timestamp,
}

impl Reporter<'_> {
    /// Computes `request` from the log as it stood at the period's end.
    pub async fn report(&self, request: &ReportRequest) -> Result<Report, ReportError> {
        let period = &request.period;
        let log_head = self.log.head().await?;
        let head_recorded = match log_head {
            0 => None,
            head => self
                .log
                .read_all(head, eventlog::Direction::Forward, 1)
                .await?
                .first()
                .map(|r| r.recorded_at.as_micros()),
        };
        // The figures hold every fact recorded before the cut: the period's end once it
        // is over; while it runs, just after the head's time (what the log held when
        // asked). A provisional report may then include an event appended in the head's
        // own microsecond after it was read; a report of an ended period is exact.
        let period_ended = period.end <= self.now
            || head_recorded.is_some_and(|h| h >= period.end.as_microsecond());
        let cut = if period_ended {
            period.end
        } else {
            head_recorded
                .and_then(|h| Timestamp::from_microsecond(h.saturating_add(1)).ok())
                .unwrap_or(period.start)
                .clamp(period.start, period.end)
        };
        let before_cut = eventlog::Timestamp::from_micros(cut.as_microsecond() - 1);
        // The last event recorded before the cut (recorded times never decrease).
        let as_of_position = as_of::position_at(self.log, before_cut).await?;
        // The projection must have applied everything the figures include; one that
        // stopped (the service stopping, an event it cannot read) never will.
        let _ = tokio::time::timeout(CATCH_UP, self.reports.wait_for(as_of_position)).await;
        if self.reports.position() < as_of_position {
            return Err(ReportError::NotCaughtUp {
                at: self.reports.position(),
                needed: as_of_position,
            });
        }
        let (rules, engine) = match rules::in_force_at(self.log, before_cut).await? {
            Some((position, sources)) => (
                format!("recorded at position {position}"),
                sources
                    .engine()
                    .map_err(|e| ReportError::Calendar(e.to_string()))?,
            ),
            None => (
                "built-in (none recorded then)".to_owned(),
                Engine::built_in(),
            ),
        };
        let held = self.digest(as_of_position).await?;
        let m = &self.mapping.mapping;
        let select = |list: &Option<Vec<String>>, prefix: &'static str| {
            let list = list.clone();
            move |regime: &str| match &list {
                Some(l) => l.iter().any(|r| r == regime),
                None => regime.starts_with(prefix),
            }
        };
        let start = period.start;
        let cases = match request.kind {
            ReportKind::AsicIdr => {
                self.reports
                    .cases_as_of(cut, start, select(&m.asic.regimes, "AU-"))
            }
            ReportKind::FcaReturn => {
                self.reports
                    .cases_as_of(cut, start, select(&m.fca.regimes, "UK-"))
            }
            ReportKind::NfraStatistics => {
                self.reports
                    .cases_as_of(cut, start, select(&m.nfra.regimes, "CN-"))
            }
            ReportKind::Measures | ReportKind::RootCauses => {
                self.reports.cases_as_of(cut, start, |_| true)
            }
        };
        let counted: Vec<&Case> = cases
            .cases
            .iter()
            .filter(|c| c.excluded.is_none())
            .collect();
        let sections = match request.kind {
            ReportKind::AsicIdr => asic(&counted, period, &m.asic)?,
            ReportKind::FcaReturn => fca(&counted, period, &m.fca, &engine)?,
            ReportKind::NfraStatistics => nfra(&counted, period, &m.nfra)?,
            ReportKind::Measures => vec![measures(&counted, period, request.by)],
            ReportKind::RootCauses => vec![root_causes(&counted, period, request.repeat)],
        };
        let figures_hash = figures_hash(&sections);
        Ok(Report {
            provenance: Provenance {
                kind: request.kind,
                period: period.clone(),
                as_of_position,
                digest_signed: matches!(held, HeldDigest::Signed(_)),
                digest_json: held.to_json(),
                log_head,
                period_ended,
                rules,
                mapping_hash: self.mapping.hash.clone(),
                mapping_source: self.mapping.source.clone(),
                figures_hash,
                computed_at: self.now,
                build: concat!(env!("CARGO_PKG_NAME"), " ", env!("CARGO_PKG_VERSION")).into(),
            },
            sections,
            late: cases.late,
        })
    }

    /// The digest of the log at `position`, signed when a signer is given.
    async fn digest(&self, position: Position) -> Result<HeldDigest, ReportError> {
        let digest = if position == 0 {
            Digest::EMPTY
        } else {
            let record = self.log.read_stored(position, 1).await?.pop().ok_or(
                eventlog::Error::Corruption {
                    position,
                    reason: "missing record".into(),
                },
            )?;
            Digest {
                position,
                head: record.hash(),
            }
        };
        Ok(match self.signer {
            Some(signer) => HeldDigest::Signed(signer.sign(
                digest,
                eventlog::Timestamp::from_micros(self.now.as_microsecond()),
            )),
            None => HeldDigest::Plain(digest),
        })
    }
}

/// The figures' hash (see [`Provenance::figures_hash`]): each section's name, columns and
/// cells as their CSV text, NUL-separated.
fn figures_hash(sections: &[Section]) -> String {
    // Written into a buffer hashed in large pieces: one hasher call per cell would cost
    // more than computing the report.
    let mut h = blake3::Hasher::new();
    let mut buf = String::with_capacity(1 << 16);
    for s in sections {
        buf.push_str(s.name);
        buf.push('\0');
        for c in &s.columns {
            buf.push_str(c);
            buf.push('\0');
        }
        for row in &s.rows {
            for c in row {
                c.write_csv(&mut buf);
                buf.push('\0');
            }
            buf.push('\u{1}');
            if buf.len() >= 1 << 16 {
                h.update(buf.as_bytes());
                buf.clear();
            }
        }
    }
    h.update(buf.as_bytes());
    h.finalize().to_hex().to_string()
}

/// The decision or withdrawal as the mappings name it.
fn outcome_name(resolution: Resolution) -> &'static str {
    match resolution {
        Resolution::Answered(d) => d.as_str(),
        Resolution::Withdrawn => "withdrawn",
    }
}

/// Resolved before `before` (as known at the cut): when, how.
fn resolved_before(case: &Case, before: Timestamp) -> Option<(Resolution, Timestamp)> {
    case.resolved.filter(|(_, at)| *at < before)
}

/// Open at the period's start, as the previous period's return saw it: received before
/// the start and not resolved by then as the log stood then. A complaint registered, or
/// answered, late (recorded after the start) was still open for the returns already sent.
fn open_at_start(case: &Case, period: &Period) -> bool {
    case.received_at < period.start
        && case
            .resolved_known_at_start
            .is_none_or(|(_, at)| at >= period.start)
}

/// Closed in the period: resolved within it, or resolved before it but recorded only
/// after the previous period's cut (a prior-period closure: the previous return still
/// showed it open, so this one reports its closure, at its true date).
fn closed_in(case: &Case, period: &Period) -> Option<(Resolution, Timestamp)> {
    let (how, at) = resolved_before(case, period.end)?;
    (at >= period.start || open_at_start(case, period)).then_some((how, at))
}

fn upheld(resolution: Resolution) -> bool {
    matches!(
        resolution,
        Resolution::Answered(Decision::Upheld | Decision::PartlyUpheld)
    )
}

/// Redress amounts in major units, e.g. `123.45` (sums of many payments: 128 bits, no
/// overflow).
fn money(minor_units: i128, currency: iso_currency::Currency) -> String {
    let places = currency.exponent().unwrap_or(2);
    if places == 0 {
        return minor_units.to_string();
    }
    let scale = 10u128.pow(u32::from(places));
    let sign = if minor_units < 0 { "-" } else { "" };
    let m = minor_units.unsigned_abs();
    format!(
        "{sign}{}.{:0width$}",
        m / scale,
        m % scale,
        width = usize::from(places)
    )
}

/// Looks names up in a mapping, noting every miss (all are reported at once).
struct Lookup {
    missing: Vec<Unmapped>,
    seen: std::collections::HashSet<(ComplaintId, &'static str)>,
}

impl Lookup {
    fn new() -> Self {
        Self {
            missing: Vec::new(),
            seen: std::collections::HashSet::new(),
        }
    }

    /// `value` through `table`; a miss is noted (and shown as "").
    fn get<'m>(
        &mut self,
        map: &'m BTreeMap<String, String>,
        table: &'static str,
        case: &Case,
        value: &str,
    ) -> &'m str {
        match map.get(value) {
            Some(code) => code,
            None => {
                let miss = Unmapped {
                    complaint: case.id,
                    table,
                    value: value.to_owned(),
                };
                if self.seen.insert((case.id, table)) {
                    self.missing.push(miss);
                }
                ""
            }
        }
    }

    fn finish(self) -> Result<(), ReportError> {
        if self.missing.is_empty() {
            Ok(())
        } else {
            Err(ReportError::Unmapped(self.missing))
        }
    }
}

fn date_of(t: Timestamp, zone: &TimeZone) -> Date {
    t.to_zoned(zone.clone()).date()
}

/// ASIC's IDR data report: one row per complaint received in the period or open at its
/// start (RG 271 and the IDR data reporting handbook).
fn asic(cases: &[&Case], period: &Period, m: &AsicMapping) -> Result<Vec<Section>, ReportError> {
    let zone = period.zone();
    let format = m.date_format.as_deref().unwrap_or("%Y-%m-%d");
    let fmt = |d: Date| d.strftime(format).to_string();
    let mut lookup = Lookup::new();
    let mut s = Section::new(
        "complaints",
        &[
            "Complaint unique identifier",
            "Date complaint received",
            "Complaint received method",
            "Product or service",
            "Complaint issue",
            "Complaint status",
            "Date complaint closed",
            "Days to close",
            "Complaint outcome",
            "Financial compensation amount",
            "Complaint about a representative",
        ],
    );
    let mut rows: Vec<(&Case, Vec<Cell>)> = Vec::new();
    for case in cases {
        // Received in the period, open at its start, or reopened in it.
        let in_scope = case.received_at < period.end
            && (case.received_at >= period.start
                || open_at_start(case, period)
                || case.reopened.iter().any(|at| period.contains(*at)));
        if !in_scope {
            continue;
        }
        let closed = resolved_before(case, period.end);
        let channel = lookup.get(&m.channel, "asic.channel", case, case.channel.as_str());
        let product = lookup.get(&m.product, "asic.product", case, &case.product);
        let issue = lookup.get(&m.issue, "asic.issue", case, &case.category);
        let (outcome, closed_date, days) = match closed {
            Some((how, at)) => {
                let outcome = lookup.get(&m.outcome, "asic.outcome", case, outcome_name(how));
                let received = date_of(case.received_at, &zone);
                let closed = date_of(at, &zone);
                let days = (closed - received).get_days();
                (
                    Cell::text(outcome),
                    Cell::text(fmt(closed)),
                    Cell::Int(i64::from(days)),
                )
            }
            None => (Cell::Empty, Cell::Empty, Cell::Empty),
        };
        let compensation = match closed {
            Some(_) if !case.redress.is_empty() => {
                let mut by_currency: BTreeMap<&str, (i128, iso_currency::Currency)> =
                    BTreeMap::new();
                for r in &case.redress {
                    by_currency
                        .entry(r.amount.currency.code())
                        .or_insert((0, r.amount.currency))
                        .0 += i128::from(r.amount.minor_units);
                }
                Cell::text(
                    by_currency
                        .values()
                        .map(|(n, c)| {
                            if c.code() == "AUD" {
                                money(*n, *c)
                            } else {
                                format!("{} {}", money(*n, *c), c.code())
                            }
                        })
                        .collect::<Vec<_>>()
                        .join(" "),
                )
            }
            Some(_) => Cell::text("0.00"),
            None => Cell::Empty,
        };
        let status = if closed.is_some() {
            m.status_closed.as_deref().unwrap_or("Closed")
        } else {
            m.status_open.as_deref().unwrap_or("Open")
        };
        rows.push((
            case,
            vec![
                Cell::text(case.id.uuid().to_string()),
                Cell::text(fmt(date_of(case.received_at, &zone))),
                Cell::text(channel),
                Cell::text(product),
                Cell::text(issue),
                Cell::text(status),
                closed_date,
                days,
                outcome,
                compensation,
                Cell::text(if case.about_employee { "Yes" } else { "No" }),
            ],
        ));
    }
    lookup.finish()?;
    rows.sort_by_key(|(c, _)| (c.received_at, c.id));
    s.rows = rows.into_iter().map(|(_, r)| r).collect();
    Ok(vec![s])
}

/// The FCA complaints return's figures, by product and by cause.
fn fca(
    cases: &[&Case],
    period: &Period,
    m: &FcaMapping,
    engine: &Engine,
) -> Result<Vec<Section>, ReportError> {
    #[derive(Default)]
    struct Row {
        open_at_start: usize,
        opened: usize,
        closed: usize,
        within_3_days: usize,
        within_8_weeks: usize,
        later: usize,
        upheld: usize,
        open_at_end: usize,
    }
    let mut lookup = Lookup::new();
    let mut products: BTreeMap<&str, Row> = BTreeMap::new();
    let mut causes: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    let mut redress: BTreeMap<(&str, &'static str, &'static str), (i128, iso_currency::Currency)> =
        BTreeMap::new();
    for case in cases {
        if case.received_at >= period.end {
            continue;
        }
        let resolved_end = resolved_before(case, period.end);
        let open_at_start = open_at_start(case, period);
        let opened = period.contains(case.received_at);
        let closed = closed_in(case, period);
        if !open_at_start && !opened && closed.is_none() {
            continue;
        }
        let product = lookup.get(&m.product, "fca.product", case, &case.product);
        let row = products.entry(product).or_default();
        row.open_at_start += usize::from(open_at_start);
        row.open_at_end += usize::from(resolved_end.is_none());
        if opened {
            row.opened += 1;
            let cause = lookup.get(&m.cause, "fca.cause", case, &case.category);
            *causes.entry((product, cause)).or_default() += 1;
        }
        if let Some((how, at)) = closed {
            row.closed += 1;
            // The return's columns are DISP's own clocks, as the rules in force at the
            // period's end compute them for this receipt and region: close of business on
            // the 3rd business day after receipt, and 8 weeks (on time: strictly before).
            let (summary_due, final_due) = fca_dues(engine, case)?;
            if at < summary_due {
                row.within_3_days += 1;
            } else if at < final_due {
                row.within_8_weeks += 1;
            } else {
                row.later += 1;
            }
            if upheld(how) {
                row.upheld += 1;
            }
            for r in &case.redress {
                redress
                    .entry((product, r.kind.as_str(), r.amount.currency.code()))
                    .or_insert((0, r.amount.currency))
                    .0 += i128::from(r.amount.minor_units);
            }
        }
    }
    lookup.finish()?;
    let mut by_product = Section::new(
        "products",
        &[
            "product",
            "open_at_start",
            "opened",
            "closed",
            "closed_within_3_business_days",
            "closed_after_3_business_days_within_8_weeks",
            "closed_after_8_weeks",
            "upheld",
            "upheld_percent",
            "open_at_end",
        ],
    );
    for (product, r) in &products {
        by_product.rows.push(vec![
            Cell::text(*product),
            Cell::count(r.open_at_start),
            Cell::count(r.opened),
            Cell::count(r.closed),
            Cell::count(r.within_3_days),
            Cell::count(r.within_8_weeks),
            Cell::count(r.later),
            Cell::count(r.upheld),
            Cell::rate(r.upheld, r.closed),
            Cell::count(r.open_at_end),
        ]);
    }
    let mut by_cause = Section::new("causes", &["product", "cause", "opened"]);
    for ((product, cause), n) in &causes {
        by_cause.rows.push(vec![
            Cell::text(*product),
            Cell::text(*cause),
            Cell::count(*n),
        ]);
    }
    let mut paid = Section::new("redress", &["product", "kind", "currency", "amount"]);
    for ((product, kind, currency), (n, c)) in &redress {
        paid.rows.push(vec![
            Cell::text(*product),
            Cell::text(*kind),
            Cell::text(*currency),
            Cell::text(money(*n, *c)),
        ]);
    }
    Ok(vec![by_product, by_cause, paid])
}

/// The policy whose clocks define the FCA return's time columns (DISP 1.5 and 1.6).
const FCA_DISP: &str = "UK-FCA-DISP";

/// When DISP's summary-resolution and final-response clocks (of [`FCA_DISP`]) fell due
/// for `case`'s receipt in its region (computed without explanations).
fn fca_dues(engine: &Engine, case: &Case) -> Result<(Timestamp, Timestamp), ReportError> {
    let failed = |e: String| ReportError::Calendar(format!("{} ({FCA_DISP}): {e}", case.id));
    let policy = engine
        .policies
        .latest(FCA_DISP)
        .map_err(|e| failed(e.to_string()))?;
    let index = |clock: &str| {
        policy
            .clocks
            .iter()
            .position(|c| c.id == clock)
            .ok_or_else(|| failed(format!("no clock {clock}")))
    };
    let (summary, final_response) = (index("summary_resolution")?, index("final_response")?);
    let facts = complaints_sla::Facts::received(case.received_at, &case.region);
    let due = |i: usize, timings: &[(usize, complaints_sla::Timing)]| {
        timings
            .iter()
            .find(|(k, _)| *k == i)
            .map(|(_, t)| t.due_at)
            .ok_or_else(|| failed("the clock does not run".into()))
    };
    match engine.timings(policy, &facts) {
        // All of the policy's clocks at once, without explanations (the fast way)...
        Ok(timings) => Ok((due(summary, &timings)?, due(final_response, &timings)?)),
        // ...or, when another of its clocks cannot be computed, just the two.
        Err(_) => {
            let one = |i: usize| {
                engine
                    .due(policy, &policy.clocks[i], &facts)
                    .map_err(|e| failed(e.to_string()))?
                    .map(|d| d.due_at)
                    .ok_or_else(|| failed("the clock does not run".into()))
            };
            Ok((one(summary)?, one(final_response)?))
        }
    }
}

/// NFRA's complaint statistics by business category, cause and province.
fn nfra(cases: &[&Case], period: &Period, m: &NfraMapping) -> Result<Vec<Section>, ReportError> {
    #[derive(Default)]
    struct Row {
        received: usize,
        handled: usize,
        on_time: usize,
        overdue: usize,
        open_overdue: usize,
        reviewed: usize,
        transferred: usize,
    }
    let mut lookup = Lookup::new();
    let mut rows: BTreeMap<(&str, &str, &str), Row> = BTreeMap::new();
    for case in cases {
        if case.received_at >= period.end {
            continue;
        }
        let received = period.contains(case.received_at);
        let resolved_end = resolved_before(case, period.end);
        let handled = closed_in(case, period);
        let breached = case.breaches.iter().any(|(_, at)| *at < period.end);
        let reviewed = case
            .reviews
            .iter()
            .filter(|at| period.contains(**at))
            .count();
        let open_overdue = resolved_end.is_none() && breached;
        if !received && handled.is_none() && reviewed == 0 && !open_overdue {
            continue;
        }
        let business = lookup.get(&m.business, "nfra.business", case, &case.product);
        let cause = lookup.get(&m.cause, "nfra.cause", case, &case.category);
        let province = lookup.get(&m.province, "nfra.province", case, &case.complained_unit);
        let row = rows.entry((business, cause, province)).or_default();
        if received {
            row.received += 1;
            row.transferred += usize::from(case.from_regulator.is_some());
        }
        if handled.is_some() {
            row.handled += 1;
            if breached {
                row.overdue += 1;
            } else {
                row.on_time += 1;
            }
        }
        row.open_overdue += usize::from(open_overdue);
        row.reviewed += reviewed;
    }
    lookup.finish()?;
    let mut s = Section::new(
        "statistics",
        &[
            "business_category",
            "cause",
            "province",
            "received",
            "handled",
            "handled_on_time",
            "handled_overdue",
            "open_overdue",
            "reviewed",
            "transferred_by_regulator",
        ],
    );
    for ((business, cause, province), r) in &rows {
        s.rows.push(vec![
            Cell::text(*business),
            Cell::text(*cause),
            Cell::text(*province),
            Cell::count(r.received),
            Cell::count(r.handled),
            Cell::count(r.on_time),
            Cell::count(r.overdue),
            Cell::count(r.open_overdue),
            Cell::count(r.reviewed),
            Cell::count(r.transferred),
        ]);
    }
    Ok(vec![s])
}

fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    Some(if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    })
}

/// The source policy's measures, grouped by `by`.
fn measures(cases: &[&Case], period: &Period, by: Dimension) -> Section {
    #[derive(Default)]
    struct Row {
        received: usize,
        handled: usize,
        days_to_answer: Vec<f64>,
        breached: usize,
        decided: usize,
        valid: usize,
        ratings: usize,
        rating_sum: u32,
        satisfied: usize,
    }
    let mut rows: BTreeMap<Arc<str>, Row> = BTreeMap::new();
    for case in cases {
        let key = match by {
            Dimension::Unit => case.unit.clone(),
            Dimension::Handler => case
                .handler
                .clone()
                .unwrap_or_else(|| Arc::from("(unassigned)")),
            Dimension::Product => case.product.clone(),
            Dimension::Category => case.category.clone(),
        };
        let received = period.contains(case.received_at);
        let handled = closed_in(case, period);
        let answered = case.first_answered_at.filter(|at| period.contains(*at));
        let rated = case.satisfaction.filter(|(_, at)| period.contains(*at));
        if !received && handled.is_none() && answered.is_none() && rated.is_none() {
            continue;
        }
        let row = rows.entry(key).or_default();
        row.received += usize::from(received);
        if let Some((how, _)) = handled {
            row.handled += 1;
            row.breached += usize::from(case.breaches.iter().any(|(_, at)| *at < period.end));
            if let Resolution::Answered(_) = how {
                row.decided += 1;
                row.valid += usize::from(upheld(how));
            }
        }
        if let Some(at) = answered {
            let seconds = at.duration_since(case.received_at).as_secs_f64();
            row.days_to_answer.push(seconds / 86_400.0);
        }
        if let Some((rating, _)) = rated {
            row.ratings += 1;
            row.rating_sum += u32::from(rating);
            row.satisfied += usize::from(rating >= 4);
        }
    }
    let mut s = Section::new(
        "measures",
        &[
            by.name(),
            "received",
            "handled",
            "median_days_to_answer",
            "breached",
            "breach_rate_percent",
            "decided",
            "valid",
            "valid_rate_percent",
            "ratings",
            "average_rating",
            "satisfied_percent",
        ],
    );
    for (key, mut r) in rows {
        s.rows.push(vec![
            Cell::text(&*key),
            Cell::count(r.received),
            Cell::count(r.handled),
            median(&mut r.days_to_answer)
                .map_or(Cell::Empty, |value| Cell::Num { value, places: 1 }),
            Cell::count(r.breached),
            Cell::rate(r.breached, r.handled),
            Cell::count(r.decided),
            Cell::count(r.valid),
            Cell::rate(r.valid, r.decided),
            Cell::count(r.ratings),
            if r.ratings == 0 {
                Cell::Empty
            } else {
                Cell::Num {
                    value: f64::from(r.rating_sum) / r.ratings as f64,
                    places: 2,
                }
            },
            Cell::rate(r.satisfied, r.ratings),
        ]);
    }
    s
}

/// Findings of one cause: when, of which complaint.
type Found = Vec<(Timestamp, ComplaintId)>;

/// A run of the same root cause on the same product and unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repeat {
    pub product: Arc<str>,
    pub unit: Arc<str>,
    pub cause: RootCause,
    pub first: Timestamp,
    pub last: Timestamp,
    /// The complaints, in the order their findings were made.
    pub complaints: Vec<ComplaintId>,
    /// When each one's findings were made.
    pub found_at: Vec<Timestamp>,
}

/// Every run of at least `rule.count` findings of the same cause on the same product and
/// unit (the unit complained about) with each `rule.count` consecutive ones within
/// `rule.days`, among the complaints' latest findings made in `[from, until)`.
/// Overlapping windows are one run. `no_fault` is not a cause to fix and is left out.
pub fn repeats(
    cases: &[&Case],
    from: Timestamp,
    until: Timestamp,
    rule: RepeatRule,
) -> Vec<Repeat> {
    repeats_of(
        cases.iter().filter_map(|case| {
            let (cause, at) = case.root_cause?;
            (from <= at && at < until).then(|| Finding {
                id: case.id,
                product: case.product.clone(),
                unit: case.complained_unit.clone(),
                cause,
                at,
            })
        }),
        rule,
    )
}

/// [`repeats`] of these findings.
pub fn repeats_of(findings: impl IntoIterator<Item = Finding>, rule: RepeatRule) -> Vec<Repeat> {
    // (product, unit, cause) -> when each finding was made, and of which complaint.
    let mut groups: BTreeMap<(Arc<str>, Arc<str>, RootCause), Found> = BTreeMap::new();
    for f in findings {
        if f.cause != RootCause::NoFault {
            groups
                .entry((f.product, f.unit, f.cause))
                .or_default()
                .push((f.at, f.id));
        }
    }
    let window = SignedDuration::from_hours(i64::from(rule.days) * 24);
    let need = rule.count.max(1) as usize;
    let mut out = Vec::new();
    for ((product, unit, cause), mut found) in groups {
        found.sort();
        // Mark every member of a window of `need` findings within `window`, then cut the
        // marked stretches into runs where consecutive windows overlap.
        let mut runs: Vec<(usize, usize)> = Vec::new();
        for i in 0..found.len() {
            let j = i + need - 1;
            if j < found.len() && found[j].0.duration_since(found[i].0) <= window {
                match runs.last_mut() {
                    Some((_, end)) if *end >= i => *end = j,
                    _ => runs.push((i, j)),
                }
            }
        }
        for (a, b) in runs {
            out.push(Repeat {
                product: product.clone(),
                unit: unit.clone(),
                cause,
                first: found[a].0,
                last: found[b].0,
                complaints: found[a..=b].iter().map(|(_, id)| *id).collect(),
                found_at: found[a..=b].iter().map(|(at, _)| *at).collect(),
            });
        }
    }
    out.sort_by(|a, b| {
        b.complaints
            .len()
            .cmp(&a.complaints.len())
            .then(a.first.cmp(&b.first))
    });
    out
}

fn root_causes(cases: &[&Case], period: &Period, rule: RepeatRule) -> Section {
    let mut s = Section::new(
        "repeats",
        &[
            "product",
            "unit",
            "root_cause",
            "complaints",
            "first_found",
            "last_found",
            "complaint_ids",
        ],
    );
    for r in repeats(cases, period.start, period.end, rule) {
        s.rows.push(vec![
            Cell::text(&*r.product),
            Cell::text(&*r.unit),
            Cell::text(r.cause.as_str()),
            Cell::count(r.complaints.len()),
            Cell::text(r.first.to_string()),
            Cell::text(r.last.to_string()),
            Cell::text(
                r.complaints
                    .iter()
                    .map(|c| c.uuid().to_string())
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
        ]);
    }
    s
}
