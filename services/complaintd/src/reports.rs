//! `ReportService`: regulatory returns and complaint analysis
//! (`complaints_workflow::reports`) over gRPC, and for the web board's reports page.
//!
//! The mapping file (`reports_mapping`) is read on every call, so an operator's edit
//! takes effect at once; its hash goes into every report's provenance.

use std::path::PathBuf;
use std::sync::Arc;

use complaints_domain::FieldViolation;
use complaints_projections::reports::Reports;
use complaints_proto::complaints::reports::v1 as pb;
use complaints_workflow::reports::{
    Cell, Dimension, LoadedMapping, Period, RepeatRule, Report, ReportError, ReportKind,
    ReportRequest, Reporter, Section,
};
use eventlog::audit::Signer;
use eventlog::{Clock, EventLog};
use tonic::{Code, Request, Response, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::errors;

/// The longest repeat window a root-cause analysis may ask for (ten years).
const MAX_REPEAT_DAYS: u32 = 3653;

/// The reports API.
#[derive(Clone)]
pub struct ReportApi {
    log: Arc<dyn EventLog>,
    reports: Arc<Reports>,
    mapping: Option<PathBuf>,
    signer: Option<Arc<Signer>>,
    clock: Arc<dyn Clock>,
}

impl ReportApi {
    pub fn new(
        log: Arc<dyn EventLog>,
        reports: Arc<Reports>,
        mapping: Option<PathBuf>,
        signer: Option<Arc<Signer>>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            log,
            reports,
            mapping,
            signer,
            clock,
        }
    }

    /// The request checked: every bad field at once.
    pub fn request(r: &pb::GetReportRequest) -> Result<ReportRequest, Status> {
        let mut v = Vec::new();
        let mut bad = |field: &str, description: String| {
            v.push(FieldViolation {
                field: field.into(),
                description,
            });
        };
        let kind = ReportKind::parse(&r.kind);
        if kind.is_none() {
            let names: Vec<&str> = ReportKind::ALL.iter().map(|k| k.name()).collect();
            bad("kind", format!("must be one of {}", names.join(", ")));
        }
        let zone = if r.time_zone.is_empty() {
            kind.map_or("UTC", ReportKind::default_time_zone)
        } else {
            r.time_zone.as_str()
        };
        let zone_ok = jiff::tz::TimeZone::get(zone).is_ok();
        if !zone_ok {
            bad("time_zone", format!("{zone:?} is not an IANA time zone"));
        }
        let period = if r.period.is_empty() {
            bad(
                "period",
                "is required, e.g. 2026-H1, 2026-Q3, 2026-03 or 2026-01-01..2026-06-30".into(),
            );
            None
        } else if zone_ok {
            Period::parse(&r.period, zone)
                .map_err(|e| bad("period", e))
                .ok()
        } else {
            None
        };
        let by = if r.by.is_empty() {
            Some(Dimension::Unit)
        } else {
            Dimension::parse(&r.by)
        };
        if by.is_none() {
            bad("by", "must be unit, handler, product or category".into());
        }
        let defaults = RepeatRule::default();
        let repeat = RepeatRule {
            count: if r.repeat_count == 0 {
                defaults.count
            } else {
                r.repeat_count
            },
            days: if r.repeat_days == 0 {
                defaults.days
            } else {
                r.repeat_days
            },
        };
        if repeat.count > 1000 {
            bad("repeat_count", "must be at most 1000".into());
        }
        if repeat.days > MAX_REPEAT_DAYS {
            bad("repeat_days", format!("must be at most {MAX_REPEAT_DAYS}"));
        }
        match (kind, period, by, v.is_empty()) {
            (Some(kind), Some(period), Some(by), true) => Ok(ReportRequest {
                kind,
                period,
                by,
                repeat,
            }),
            _ => Err(errors::invalid(v)),
        }
    }

    /// The mapping, read now.
    fn mapping(&self) -> Result<LoadedMapping, Status> {
        let Some(path) = &self.mapping else {
            return Ok(LoadedMapping {
                source: "none (reports_mapping is not set)".into(),
                ..LoadedMapping::default()
            });
        };
        let text = std::fs::read_to_string(path).map_err(|e| {
            tracing::error!(path = %path.display(), error = %e, "the reports mapping cannot be read");
            Status::failed_precondition(format!(
                "the reports mapping {} cannot be read: an operator must fix it",
                path.display()
            ))
        })?;
        LoadedMapping::parse(&text, &path.display().to_string()).map_err(|e| {
            Status::failed_precondition(format!("the reports mapping is not valid: {e}"))
        })
    }

    /// Computes a checked request.
    pub async fn compute(&self, request: &ReportRequest) -> Result<Report, Status> {
        let mapping = self.mapping()?;
        let now = jiff::Timestamp::from_microsecond(self.clock.now().as_micros())
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        Reporter {
            log: &*self.log,
            reports: &self.reports,
            mapping: &mapping,
            signer: self.signer.as_deref(),
            now,
        }
        .report(request)
        .await
        .map_err(report_error)
    }
}

/// The status for a report that could not be made.
pub fn report_error(error: ReportError) -> Status {
    match error {
        ReportError::Unmapped(list) => {
            let mut details = ErrorDetails::new();
            for u in list.iter().take(errors::MAX_VIOLATIONS) {
                details.add_precondition_failure_violation(
                    u.table,
                    u.complaint.name(),
                    format!("{:?} is not in the mapping's table {}", u.value, u.table),
                );
            }
            if list.len() > errors::MAX_VIOLATIONS {
                details.add_precondition_failure_violation(
                    "",
                    "",
                    format!(
                        "and {} more, not listed",
                        list.len() - errors::MAX_VIOLATIONS
                    ),
                );
            }
            Status::with_error_details(
                Code::FailedPrecondition,
                format!(
                    "{} name(s) of complaints in this return are not mapped to the regulator's codes: add them to the reports mapping",
                    list.len()
                ),
                details,
            )
        }
        ReportError::Calendar(reason) => {
            Status::failed_precondition(format!("a business-day count cannot be made: {reason}"))
        }
        ReportError::NotCaughtUp { at, needed } => {
            tracing::warn!(
                at,
                needed,
                "report refused: the reports projection is behind"
            );
            Status::unavailable("the reports are not up to date (the service is stopping?): retry")
        }
        ReportError::Log(e) => errors::status(e.into()),
        ReportError::AsOf(e) => {
            tracing::error!(error = %e, "report: the log could not be read");
            Status::internal("the report could not be computed")
        }
    }
}

fn timestamp(t: jiff::Timestamp) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.as_second(),
        nanos: t.subsec_nanosecond(),
    }
}

fn cell(c: &Cell) -> pb::Cell {
    use pb::cell::Value;
    pb::Cell {
        value: match c {
            Cell::Text(s) => Some(Value::Text(s.clone())),
            Cell::Int(n) => Some(Value::Integer(*n)),
            Cell::Num { value, .. } => Some(Value::Number(*value)),
            Cell::Empty => None,
        },
    }
}

fn section(report: &Report, s: &Section, with_csv: bool) -> pb::Section {
    pb::Section {
        name: s.name.to_owned(),
        columns: s.columns.iter().map(|c| (*c).to_owned()).collect(),
        rows: s
            .rows
            .iter()
            .map(|r| pb::Row {
                cells: r.iter().map(cell).collect(),
            })
            .collect(),
        csv: if with_csv {
            report.to_csv(s)
        } else {
            String::new()
        },
    }
}

/// A report as the API gives it, with the content asked for.
pub fn report_out(report: &Report, content: pb::Content) -> pb::Report {
    let p = &report.provenance;
    let (rows, csv, json) = match content {
        pb::Content::All => (true, true, true),
        pb::Content::Csv => (false, true, false),
        pb::Content::Json => (false, false, true),
        pb::Content::Rows => (true, false, false),
    };
    let table = |s: &Section| {
        let mut out = section(report, s, csv);
        if !rows {
            out.rows.clear();
        }
        out
    };
    pb::Report {
        provenance: Some(pb::Provenance {
            kind: p.kind.name().to_owned(),
            period: p.period.label.clone(),
            first_day: p.period.first.to_string(),
            last_day: p.period.last.to_string(),
            time_zone: p.period.time_zone.clone(),
            start: Some(timestamp(p.period.start)),
            end: Some(timestamp(p.period.end)),
            period_ended: p.period_ended,
            as_of_position: p.as_of_position,
            digest_json: p.digest_json.clone(),
            digest_signed: p.digest_signed,
            log_head: p.log_head,
            rules: p.rules.clone(),
            mapping_source: p.mapping_source.clone(),
            mapping_hash: p.mapping_hash.clone(),
            computed_at: Some(timestamp(p.computed_at)),
            build: p.build.clone(),
        }),
        sections: report.sections.iter().map(table).collect(),
        late_entries: Some(table(&report.late_section())),
        json: if json {
            report.to_json()
        } else {
            String::new()
        },
    }
}

#[tonic::async_trait]
impl pb::report_service_server::ReportService for ReportApi {
    async fn get_report(
        &self,
        request: Request<pb::GetReportRequest>,
    ) -> Result<Response<pb::Report>, Status> {
        let content = request.get_ref().content();
        let request = Self::request(request.get_ref())?;
        let report = self.compute(&request).await?;
        Ok(Response::new(report_out(&report, content)))
    }
}
