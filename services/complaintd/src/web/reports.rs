//! The reports page (`/reports`): a return or an analysis for a period, with where its
//! figures came from, a chart per table, and the CSV and JSON files to download
//! (`/reports/file`). The figures are `ReportService`'s own ([`ReportApi`]), for the same
//! roles (auditor, compliance).

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use complaints_proto::complaints::reports::v1 as pb;
use complaints_workflow::reports::{Cell, Dimension, Report, ReportKind, Section};
use maud::{html, Markup};
use serde::Deserialize;

use super::charts::{bars, Bar};
use super::{encode, layout, Page, Refusal, Viewer, Web};
use crate::reports::ReportApi;
use std::sync::Arc;

/// The reports page's query.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ReportQuery {
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub period: String,
    #[serde(default)]
    pub time_zone: String,
    #[serde(default)]
    pub by: String,
    #[serde(default)]
    pub repeat_count: Option<u32>,
    #[serde(default)]
    pub repeat_days: Option<u32>,
    /// For `/reports/file`: `json`, or the name of a section (its CSV).
    #[serde(default)]
    pub file: String,
    #[serde(default)]
    pub lang: String,
    #[serde(default)]
    pub tz: String,
}

impl ReportQuery {
    fn request(&self) -> pb::GetReportRequest {
        pb::GetReportRequest {
            kind: self.kind.clone(),
            period: self.period.clone(),
            time_zone: self.time_zone.clone(),
            by: self.by.clone(),
            repeat_count: self.repeat_count.unwrap_or(0),
            repeat_days: self.repeat_days.unwrap_or(0),
            content: pb::Content::All as i32,
        }
    }

    /// The query string of this report (for its files' links).
    fn encoded(&self) -> String {
        let mut q = format!(
            "kind={}&period={}",
            encode(&self.kind),
            encode(&self.period)
        );
        for (k, v) in [("time_zone", &self.time_zone), ("by", &self.by)] {
            if !v.is_empty() {
                q.push_str(&format!("&{k}={}", encode(v)));
            }
        }
        for (k, v) in [
            ("repeat_count", self.repeat_count),
            ("repeat_days", self.repeat_days),
        ] {
            if let Some(v) = v {
                q.push_str(&format!("&{k}={v}"));
            }
        }
        q
    }
}

async fn compute(api: &ReportApi, q: &ReportQuery) -> Result<Report, Refusal> {
    let request = ReportApi::request(&q.request())?;
    Ok(api.compute(&request).await?)
}

pub async fn page(
    State(web): State<Arc<Web>>,
    Query(q): Query<ReportQuery>,
    headers: HeaderMap,
) -> Response {
    let principal = match web.principal(&headers, Page::Reports) {
        Ok(p) => p,
        Err(status) => return web.refused(&headers, status.into()),
    };
    let viewer = web.viewer(&headers, principal, &q.lang, &q.tz);
    let report = if q.kind.is_empty() {
        None
    } else {
        match compute(&web.reports, &q).await {
            Ok(r) => Some(Ok(r)),
            Err(refusal) if refusal.status.code() == tonic::Code::FailedPrecondition => {
                Some(Err(refusal.status))
            }
            Err(refusal) => return web.refused(&headers, refusal),
        }
    };
    let lang = &viewer.lang;
    let body = html! {
        h2 { (lang.msg("reports-title")) }
        (form(&viewer, &q))
        @match &report {
            None => {}
            Some(Err(status)) => (unmapped(&viewer, status)),
            Some(Ok(report)) => (shown(&viewer, &q, report)),
        }
    };
    let page = layout(&web, lang, &lang.msg("reports-title"), Some(&viewer), body);
    viewer.with_cookies(page.into_response())
}

/// A file of a report: `file=json`, or a section's CSV by name.
pub async fn file(
    State(web): State<Arc<Web>>,
    Query(q): Query<ReportQuery>,
    headers: HeaderMap,
) -> Response {
    if let Err(status) = web.principal(&headers, Page::Reports) {
        return web.refused(&headers, status.into());
    }
    let report = match compute(&web.reports, &q).await {
        Ok(r) => r,
        Err(refusal) => return web.refused(&headers, refusal),
    };
    let stem = format!(
        "{}-{}",
        report.provenance.kind.name(),
        report.provenance.period.label.replace("..", "_")
    );
    let (body, content_type, name) = if q.file == "json" {
        (report.to_json(), "application/json", format!("{stem}.json"))
    } else {
        let late = report.late_section();
        let Some(section) = report
            .sections
            .iter()
            .chain(std::iter::once(&late))
            .find(|s| s.name == q.file)
        else {
            return web.refused(
                &headers,
                tonic::Status::invalid_argument("file: no such section in this report").into(),
            );
        };
        (
            report.to_csv(section),
            "text/csv; charset=utf-8",
            format!("{stem}-{}.csv", section.name),
        )
    };
    let mut response = body.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    response
}

fn form(v: &Viewer<'_>, q: &ReportQuery) -> Markup {
    let lang = &v.lang;
    html! {
        form.filters method="get" action="/reports" aria-label=(lang.msg("reports-title")) {
            label { (lang.msg("reports-kind")) " "
                select name="kind" {
                    @for k in ReportKind::ALL {
                        option value=(k.name()) selected[q.kind == k.name()] { (lang.msg(&format!("report-{}", k.name()))) }
                    }
                }
            }
            " "
            label { (lang.msg("reports-period")) " "
                input name="period" value=(q.period) placeholder="2026-H1" size="24" required;
            }
            " "
            label { (lang.msg("reports-by")) " "
                select name="by" {
                    @for d in Dimension::ALL {
                        option value=(d.name()) selected[q.by == d.name()] { (lang.msg(&format!("reports-by-{}", d.name()))) }
                    }
                }
            }
            " "
            button type="submit" { (lang.msg("reports-show")) }
        }
    }
}

fn unmapped(v: &Viewer<'_>, status: &tonic::Status) -> Markup {
    use tonic_types::StatusExt;
    let lang = &v.lang;
    let list = status
        .get_error_details()
        .precondition_failure()
        .map(|p| p.violations.clone())
        .unwrap_or_default();
    html! {
        div.refusal role="alert" {
            p { (lang.msg1("reports-refused", "reason", status.message())) }
            @if !list.is_empty() {
                table {
                    (super::header(lang, &["reports-complaint", "reports-table", "reports-name"]))
                    tbody {
                        @for p in &list {
                            tr {
                                td { @if let Some(id) = p.subject.strip_prefix("complaints/") { a href={ "/complaints/" (id) } { (p.subject) } } @else { (p.subject) } }
                                td { code { (p.r#type) } }
                                td { (p.description) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The column of a section its chart shows (the first of the counts people look at first)
/// and the label column (the first with text); `None`: nothing worth a chart.
fn chart_columns(s: &Section) -> Option<(usize, usize)> {
    let first_row = s.rows.first()?;
    let label = first_row.iter().position(|c| matches!(c, Cell::Text(_)))?;
    let value = ["opened", "received", "complaints", "handled"]
        .iter()
        .find_map(|name| s.columns.iter().position(|c| c == name))?;
    Some((label, value))
}

/// A bar's label: the last part of a long name ("Banking and credit cards: Credit cards"
/// -> "Credit cards"), at most 16 characters (the whole name is in the table).
fn short(label: &str) -> String {
    let last = label.rsplit(": ").next().unwrap_or(label);
    if last.chars().count() > 16 {
        let cut: String = last.chars().take(15).collect();
        format!("{cut}…")
    } else {
        last.to_owned()
    }
}

fn shown(v: &Viewer<'_>, q: &ReportQuery, report: &Report) -> Markup {
    let lang = &v.lang;
    let p = &report.provenance;
    let query = q.encoded();
    let late = report.late_section();
    html! {
        section.provenance aria-label=(lang.msg("reports-provenance")) {
            h3 { (lang.msg(&format!("report-{}", p.kind.name()))) " · " (p.period.label) }
            @if !p.period_ended {
                p.refusal role="note" { (lang.msg("reports-provisional")) }
            }
            dl {
                dt { (lang.msg("reports-days")) } dd { (p.period.first) " – " (p.period.last) " (" (p.period.time_zone) ")" }
                dt { (lang.msg("reports-as-of")) } dd #as-of-position { (p.as_of_position) }
                dt { (lang.msg("reports-head")) } dd { (p.log_head) }
                dt { (lang.msg("reports-rules")) } dd { (p.rules) }
                dt { (lang.msg("reports-mapping")) } dd { (p.mapping_source) " " code { (p.mapping_hash) } }
                dt { (lang.msg("reports-digest")) } dd { pre { (p.digest_json) } }
                dt { (lang.msg("reports-computed")) } dd { (lang.datetime(p.computed_at, &v.zone)) }
            }
            p {
                a href={ "/reports/file?" (query) "&file=json" } download { (lang.msg("reports-download-json")) }
                @for s in report.sections.iter().chain(std::iter::once(&late)) {
                    " · "
                    a href={ "/reports/file?" (query) "&file=" (s.name) } download { (lang.msg1("reports-download-csv", "section", s.name)) }
                }
            }
        }
        @for s in &report.sections {
            section.report-section {
                h3 { (s.name) }
                @if let Some((label, value)) = chart_columns(s) {
                    @let chart: Vec<Bar> = s.rows.iter().take(24).map(|r| Bar {
                        label: short(&r[label].to_csv()),
                        value: r[value].number().unwrap_or(0.0),
                        shown: r[value].to_csv(),
                    }).collect();
                    (bars(&format!("chart-{}", s.name), &format!("{} · {}", s.name, s.columns[value]), &chart))
                }
                (table(lang, s))
            }
        }
        section.report-section {
            h3 { (lang.msg1("reports-late", "count", report.late.len())) }
            @if report.late.is_empty() {
                p { (lang.msg("reports-none")) }
            } @else {
                (table(lang, &late))
            }
        }
    }
}

fn table(lang: &super::i18n::Lang<'_>, s: &Section) -> Markup {
    html! {
        @if s.rows.is_empty() {
            p { (lang.msg("reports-none")) }
        } @else {
            div.table-scroll {
                table.report {
                    thead { tr { @for c in &s.columns { th scope="col" { (c) } } } }
                    tbody {
                        @for r in &s.rows {
                            tr { @for c in r { td { (c.to_csv()) } } }
                        }
                    }
                }
            }
        }
    }
}
