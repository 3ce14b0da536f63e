//! The HTTP port: the live SLA board and a complaint's page for people, `/metrics` for
//! Prometheus, `/healthz` and `/readyz` for whatever runs the process.
//!
//! Pages are rendered on the server (maud, escaped by construction) from the same calls
//! the gRPC API answers: a page builds the request, puts the viewer's [`Principal`] in it
//! and calls [`Api`], so the figures, the filters' validation and the personal-data rules
//! are the API's own. The viewer is authenticated by the server's [`Authenticator`] and
//! checked against the roles of the gRPC methods a page shows ([`Page`]): operations see
//! no personal data, and in verified mode a page without a valid bearer token (header or
//! the cookie set by `/login`) is refused.
//!
//! Live: the board's page opens `/live` (server-sent events). The server follows the log
//! (the events `WatchSla` streams among them: every crossing to at risk or breached is an
//! event), and after each burst of events, once the board has applied them, sends the
//! board's live part rendered again; a small script swaps it in. Once a minute it is
//! sent anyway, for the time left on each clock. Nothing polls.
//!
//! Languages come from message catalogues ([`i18n`]); charts are inline SVG
//! ([`charts`]); the stylesheet and script are compiled in (no CDN).

pub mod charts;
pub mod i18n;
pub mod reports;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use complaints_domain::model::{ComplaintId, Role};
use complaints_events::stored::{complaint_stream, sla_stream};
use complaints_events::Stored;
use complaints_projections::board::{SlaBoard, AGE_BANDS};
use complaints_projections::Projection as _;
use complaints_proto::complaints::v1 as api;
use complaints_workflow::Principal;
use eventlog::{Clock, Direction, EventLog};
use futures::{FutureExt as _, StreamExt as _};
use maud::{html, Markup, DOCTYPE};
use serde::Deserialize;
use tonic::metadata::MetadataMap;

use crate::auth::{Authenticator, PRINCIPAL_HEADER, ROLES_HEADER};
use crate::authz::{allowed_roles, sees_personal_data, Access};
use crate::metrics::Gauges;
use crate::service::Api;
use charts::Bar;
use i18n::{Catalogues, Lang};

/// The cookie holding the bearer token given at `/login`.
pub const TOKEN_COOKIE: &str = "complaints_token";
/// Development mode: the roles the viewer chose to see the board as.
pub const DEV_ROLES_COOKIE: &str = "complaints_dev_roles";
/// The roles a development-mode viewer has until they choose (no personal data).
pub const DEV_DEFAULT_ROLES: &str = "operations";
/// The principal of a development-mode viewer.
pub const DEV_PRINCIPAL: &str = "web:developer";
/// Weeks the charts cover.
const CHART_WEEKS: usize = 8;
/// Clocks per page of the board.
const PAGE_SIZE: i32 = 50;
/// Queue items shown on the board (the first, in queue order); complaintctl lists them all.
const QUEUE_PAGE_SIZE: i32 = 200;
/// The live part is sent again at least this often (the time left on each clock moves).
const REFRESH: Duration = Duration::from_secs(60);

const CSS: &str = include_str!("../../web/static/board.css");
const JS: &str = include_str!("../../web/static/board.js");

/// What the HTTP port serves from.
pub struct Web {
    pub api: Api,
    pub reports: crate::reports::ReportApi,
    pub auth: Arc<dyn Authenticator>,
    /// Development authentication: a banner, and the viewer picks their roles.
    pub dev: bool,
    pub board: Arc<SlaBoard>,
    pub log: Arc<dyn EventLog>,
    pub clock: Arc<dyn Clock>,
    /// The business's time zone (IANA name), the default of every time shown.
    pub zone_name: String,
    pub gauges: Gauges,
    pub ready: tokio::sync::watch::Receiver<bool>,
    pub catalogues: Catalogues,
    /// Turns true when the server stops: live streams end.
    pub stopping: tokio::sync::watch::Receiver<bool>,
}

/// The routes of the HTTP port.
pub fn router(web: Arc<Web>) -> Router {
    Router::new()
        .route("/", get(board_page))
        .route("/live", get(live))
        .route("/complaints/{id}", get(complaint_page))
        .route("/reports", get(reports::page))
        .route("/reports/file", get(reports::file))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/dev/roles", post(dev_roles))
        .route("/static/board.css", get(css))
        .route("/static/board.js", get(js))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(web)
}

/// What a page shows, and so who may see it: the roles of the gRPC methods behind it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    /// The board (GetBoard and ListClocks).
    Board,
    /// The regulator-transfer queue on the board (ListRegulatorQueue): shown to those
    /// who may list it, left out for the others.
    Queue,
    /// A complaint's page (GetComplaintSla; personal fields as GetComplaint shows them
    /// to the viewer: withheld unless their roles allow them).
    Complaint,
    /// `/metrics`: operations and administrators (Prometheus scrapes with a token).
    Metrics,
    /// A complaint's details and timeline on its page (GetComplaint): left out for the
    /// others (operations see the clocks only).
    Details,
    /// The reports page and its files (ReportService.GetReport).
    Reports,
}

impl Page {
    /// The roles that may see it.
    pub fn roles(self) -> &'static [Role] {
        let method = match self {
            Page::Board => "GetBoard",
            Page::Queue => "ListRegulatorQueue",
            Page::Complaint => "GetComplaintSla",
            Page::Details => "GetComplaint",
            Page::Metrics => return &[Role::Operations, Role::Admin],
            Page::Reports => {
                return match allowed_roles("/complaints.reports.v1.ReportService/GetReport") {
                    Access::Roles(roles) => roles,
                    Access::Public | Access::Unknown => &[],
                }
            }
        };
        match allowed_roles(&format!("/complaints.v1.ComplaintService/{method}")) {
            Access::Roles(roles) => roles,
            Access::Public | Access::Unknown => &[],
        }
    }

    fn allows(self, principal: &Principal) -> bool {
        self.roles().iter().any(|r| principal.roles.contains(r))
    }
}

/// The board's query string: filters, page, and the viewer's choices.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct BoardQuery {
    #[serde(default)]
    state: String,
    #[serde(default)]
    regime: String,
    #[serde(default)]
    unit: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    page: String,
    #[serde(default)]
    lang: String,
    #[serde(default)]
    tz: String,
}

impl BoardQuery {
    /// The filters and page as a query string (for links and the live stream).
    fn encoded(&self, page: &str) -> String {
        let mut parts = Vec::new();
        for (name, value) in [
            ("state", &self.state),
            ("regime", &self.regime),
            ("unit", &self.unit),
            ("category", &self.category),
        ] {
            if !value.is_empty() {
                parts.push(format!("{name}={}", encode(value)));
            }
        }
        if !page.is_empty() {
            parts.push(format!("page={}", encode(page)));
        }
        parts.join("&")
    }
}

/// Percent-encodes a query value.
fn encode(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char);
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Decodes `%XX` escapes (a cookie value written by [`encode`]); anything malformed is
/// kept as it is.
fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The clock states a filter may name, as the board's counts name them.
const STATES: &[(&str, api::ClockState)] = &[
    ("running", api::ClockState::ClockRunning),
    ("paused", api::ClockState::ClockPaused),
    ("atrisk", api::ClockState::ClockAtRisk),
    ("breached", api::ClockState::ClockBreached),
    ("met", api::ClockState::ClockMet),
    ("windowopen", api::ClockState::ClockWindowOpen),
    ("windowclosed", api::ClockState::ClockWindowClosed),
];

fn state_key(state: i32) -> &'static str {
    STATES
        .iter()
        .find(|(_, s)| *s as i32 == state)
        .map_or("running", |(k, _)| k)
}

/// A cookie's value from the request.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// A page refused, or failed: rendered in the viewer's language with the right status.
struct Refusal {
    status: tonic::Status,
}

impl From<tonic::Status> for Refusal {
    fn from(status: tonic::Status) -> Self {
        Self { status }
    }
}

/// The viewer of one request: who, in which language and time zone.
struct Viewer<'a> {
    web: &'a Web,
    principal: Principal,
    lang: Lang<'a>,
    zone: jiff::tz::TimeZone,
    /// The `tz` choice as given (`""`: the business's).
    zone_choice: String,
    /// Cookies to set (a language or time zone chosen in the query).
    set_cookies: Vec<String>,
}

impl Web {
    /// Authenticates the request's viewer as the gRPC API would, and checks `page`'s
    /// roles.
    fn principal(&self, headers: &HeaderMap, page: Page) -> Result<Principal, tonic::Status> {
        let mut forwarded = http::HeaderMap::new();
        let authorization = headers.get(header::AUTHORIZATION).cloned().or_else(|| {
            cookie(headers, TOKEN_COOKIE)
                .and_then(|t| HeaderValue::from_str(&format!("Bearer {t}")).ok())
        });
        if let Some(value) = authorization {
            forwarded.insert(header::AUTHORIZATION, value);
        }
        if self.dev {
            let principal = headers
                .get(PRINCIPAL_HEADER)
                .cloned()
                .unwrap_or(HeaderValue::from_static(DEV_PRINCIPAL));
            let roles = headers.get(ROLES_HEADER).cloned().unwrap_or_else(|| {
                cookie(headers, DEV_ROLES_COOKIE)
                    .map(|r| percent_decode(&r))
                    .and_then(|r| HeaderValue::from_str(&r).ok())
                    .unwrap_or(HeaderValue::from_static(DEV_DEFAULT_ROLES))
            });
            forwarded.insert(PRINCIPAL_HEADER, principal);
            forwarded.insert(ROLES_HEADER, roles);
        }
        let principal = self.auth.authenticate(
            &MetadataMap::from_headers(forwarded),
            &http::Extensions::new(),
        )?;
        if !page.allows(&principal) {
            let names: Vec<&str> = page.roles().iter().map(|r| r.as_str()).collect();
            return Err(tonic::Status::permission_denied(format!(
                "this page needs one of the roles {}",
                names.join(", ")
            )));
        }
        Ok(principal)
    }

    /// The viewer's language (from `lang`, then the cookie, then the browser's) and time
    /// zone (from `tz`, then the cookie, else the business's).
    fn viewer(
        &self,
        headers: &HeaderMap,
        principal: Principal,
        lang: &str,
        tz: &str,
    ) -> Viewer<'_> {
        let mut set_cookies = Vec::new();
        let chosen_lang = if lang.is_empty() {
            cookie(headers, "lang")
        } else {
            Some(lang.to_owned())
        };
        let accept = headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok());
        let lang_found = self.catalogues.negotiate(chosen_lang.as_deref(), accept);
        if !lang.is_empty() {
            set_cookies.push(format!(
                "lang={}; Path=/; Max-Age=31536000; SameSite=Lax",
                lang_found.tag()
            ));
        }
        let chosen_tz = if tz.is_empty() {
            cookie(headers, "tz")
                .map(|t| percent_decode(&t))
                .unwrap_or_default()
        } else {
            tz.to_owned()
        };
        let (zone, zone_choice) = match jiff::tz::TimeZone::get(&chosen_tz) {
            Ok(zone) if !chosen_tz.is_empty() && chosen_tz != "business" => (zone, chosen_tz),
            _ => (
                jiff::tz::TimeZone::get(&self.zone_name).unwrap_or(jiff::tz::TimeZone::UTC),
                String::new(),
            ),
        };
        if !tz.is_empty() {
            set_cookies.push(format!(
                "tz={}; Path=/; Max-Age=31536000; SameSite=Lax",
                if zone_choice.is_empty() {
                    "business".to_owned()
                } else {
                    encode(&zone_choice)
                }
            ));
        }
        Viewer {
            web: self,
            principal,
            lang: lang_found,
            zone,
            zone_choice,
            set_cookies,
        }
    }

    /// A refusal as a page, in the language the request asks for.
    fn refused(&self, headers: &HeaderMap, refusal: Refusal) -> Response {
        let lang = self.catalogues.negotiate(
            cookie(headers, "lang").as_deref(),
            headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok()),
        );
        let status = refusal.status;
        let reason = status.message().to_owned();
        let (code, id) = match status.code() {
            tonic::Code::Unauthenticated => (StatusCode::UNAUTHORIZED, "refused-unauthenticated"),
            tonic::Code::PermissionDenied => (StatusCode::FORBIDDEN, "refused-forbidden"),
            tonic::Code::NotFound => (StatusCode::NOT_FOUND, "not-found"),
            tonic::Code::InvalidArgument => (StatusCode::BAD_REQUEST, "invalid"),
            tonic::Code::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "unavailable"),
        };
        let body = html! {
            p.refusal role="alert" { (lang.msg1(id, "reason", &reason)) }
            @if code == StatusCode::UNAUTHORIZED {
                p { a href="/login" { (lang.msg("nav-login")) } }
            }
        };
        let roles = cookie(headers, DEV_ROLES_COOKIE).map(|r| percent_decode(&r));
        let page = layout_as(self, &lang, &lang.msg("app-title"), None, roles, body);
        let mut response = (code, page).into_response();
        if code == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"complaintd\""),
            );
        }
        response
    }
}

impl Viewer<'_> {
    /// A gRPC request from this viewer.
    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.extensions_mut().insert(self.principal.clone());
        request
    }

    fn time(&self, t: Option<&prost_types::Timestamp>) -> String {
        match t.and_then(|t| jiff::Timestamp::new(t.seconds, t.nanos).ok()) {
            Some(at) => self.lang.datetime(at, &self.zone),
            None => "—".to_owned(),
        }
    }

    fn with_cookies(&self, mut response: Response) -> Response {
        for c in &self.set_cookies {
            if let Ok(v) = HeaderValue::from_str(c) {
                response.headers_mut().append(header::SET_COOKIE, v);
            }
        }
        response
    }
}

/// The page around `body`: head, navigation, the development banner.
fn layout(
    web: &Web,
    lang: &Lang<'_>,
    title: &str,
    viewer: Option<&Viewer<'_>>,
    body: Markup,
) -> Markup {
    layout_as(
        web,
        lang,
        title,
        viewer,
        viewer.map(|v| roles_text(&v.principal)),
        body,
    )
}

/// [`layout`], showing `dev_roles` in the development banner's role form.
fn layout_as(
    web: &Web,
    lang: &Lang<'_>,
    title: &str,
    viewer: Option<&Viewer<'_>>,
    dev_roles: Option<String>,
    body: Markup,
) -> Markup {
    let dev_roles = dev_roles.as_deref();
    html! {
        (DOCTYPE)
        html lang=(lang.tag()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                link rel="stylesheet" href="/static/board.css";
                script src="/static/board.js" defer {}
            }
            body {
                @if web.dev {
                    div.dev-banner role="note" {
                        strong { (lang.msg("dev-banner")) }
                        // Also on a refusal: the roles can always be changed back.
                        form method="post" action="/dev/roles" {
                            label { (lang.msg("dev-viewing-as")) " "
                                input name="roles" value=(dev_roles.unwrap_or(DEV_DEFAULT_ROLES)) size="30";
                            }
                            " " button type="submit" { (lang.msg("dev-switch")) }
                        }
                    }
                }
                header.top {
                    h1 { a href="/" { (lang.msg("app-title")) } }
                    nav aria-label=(lang.msg("lang-label")) {
                        a href="?lang=en" lang="en" hreflang="en" { "English" }
                        " · "
                        a href="?lang=zh-CN" lang="zh-CN" hreflang="zh-CN" { "中文" }
                        @if viewer.is_some_and(|v| Page::Reports.allows(&v.principal)) {
                            " · " a href="/reports" { (lang.msg("nav-reports")) }
                        }
                        @if !web.dev {
                            @if viewer.is_some() {
                                form.inline method="post" action="/logout" {
                                    button type="submit" { (lang.msg("nav-logout")) }
                                }
                            } @else {
                                " · " a href="/login" { (lang.msg("nav-login")) }
                            }
                        }
                    }
                    @if let Some(v) = viewer {
                        form.tz method="get" action="" {
                            label { (lang.msg("tz-label")) " "
                                select name="tz" {
                                    option value="business" selected[v.zone_choice.is_empty()] {
                                        (lang.msg1("tz-business", "zone", &web.zone_name))
                                    }
                                    option value="browser" data-browser-tz="" { (lang.msg("tz-browser")) }
                                    @for z in ["UTC", "Asia/Shanghai", "Europe/London", "America/New_York", "Australia/Sydney"] {
                                        @if z != web.zone_name {
                                            option value=(z) selected[v.zone_choice == z] { (z) }
                                        }
                                    }
                                    @if !v.zone_choice.is_empty() && !["UTC", "Asia/Shanghai", "Europe/London", "America/New_York", "Australia/Sydney"].contains(&v.zone_choice.as_str()) {
                                        option value=(v.zone_choice) selected { (v.zone_choice) }
                                    }
                                }
                            }
                            " " button type="submit" { (lang.msg("tz-apply")) }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// A table's header row of the messages `ids` ("#" as it is).
fn header(lang: &Lang<'_>, ids: &[&str]) -> Markup {
    html! {
        thead { tr {
            @for id in ids {
                th scope="col" { @if *id == "#" { "#" } @else { (lang.msg(id)) } }
            }
        } }
    }
}

/// How long a clock has left, or how far over it is.
fn time_left(lang: &Lang<'_>, clock: &api::Clock) -> String {
    if clock.overdue_seconds > 0 || clock.state == api::ClockState::ClockBreached as i32 {
        lang.msg1(
            "remaining-over",
            "duration",
            lang.duration(clock.overdue_seconds),
        )
    } else {
        lang.msg1(
            "remaining-left",
            "duration",
            lang.duration(clock.remaining_seconds),
        )
    }
}

fn roles_text(p: &Principal) -> String {
    p.roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

async fn board_page(
    State(web): State<Arc<Web>>,
    Query(q): Query<BoardQuery>,
    headers: HeaderMap,
) -> Response {
    let principal = match web.principal(&headers, Page::Board) {
        Ok(p) => p,
        Err(status) => return web.refused(&headers, status.into()),
    };
    let viewer = web.viewer(&headers, principal, &q.lang, &q.tz);
    let live = match live_part(&viewer, &q).await {
        Ok(markup) => markup,
        Err(refusal) => return web.refused(&headers, refusal),
    };
    let lang = &viewer.lang;
    let body = html! {
        (filters(&viewer, &q))
        p.live-status aria-live="polite" data-connected=(lang.msg("live-connected")) data-disconnected=(lang.msg("live-disconnected")) {}
        div #live data-src={ "/live?" (q.encoded(&q.page)) } { (live) }
    };
    let page = layout(&web, lang, &lang.msg("app-title"), Some(&viewer), body);
    viewer.with_cookies(page.into_response())
}

/// The filter form (outside the live part: typing is not interrupted by updates).
fn filters(v: &Viewer<'_>, q: &BoardQuery) -> Markup {
    let lang = &v.lang;
    html! {
        form.filters method="get" action="/" aria-label=(lang.msg("filters")) {
            label { (lang.msg("filter-state")) " "
                select name="state" {
                    option value="" { (lang.msg("filter-any")) }
                    @for (key, _) in STATES {
                        option value=(key) selected[q.state == *key] { (lang.label("state-", key)) }
                    }
                }
            }
            label { (lang.msg("filter-regime")) " " input name="regime" value=(q.regime) size="14"; }
            label { (lang.msg("filter-unit")) " " input name="unit" value=(q.unit) size="12"; }
            label { (lang.msg("filter-category")) " " input name="category" value=(q.category) size="12"; }
            button type="submit" { (lang.msg("filter-apply")) }
            " " a href="/" { (lang.msg("filter-clear")) }
        }
    }
}

/// The board's live part: figures, charts, the clocks and the queue, as they are now.
async fn live_part(v: &Viewer<'_>, q: &BoardQuery) -> Result<Markup, Refusal> {
    let web = v.web;
    let lang = &v.lang;
    let board = web
        .api
        .get_board(v.request(api::GetBoardRequest {}))
        .await?
        .into_inner();
    let mut states = Vec::new();
    if !q.state.is_empty() {
        match STATES.iter().find(|(k, _)| *k == q.state) {
            Some((_, s)) => states.push(*s as i32),
            None => {
                return Err(tonic::Status::invalid_argument(format!(
                    "state {:?} is not one of {}",
                    q.state,
                    STATES
                        .iter()
                        .map(|(k, _)| *k)
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
                .into())
            }
        }
    }
    let clocks = web
        .api
        .list_clocks(v.request(api::ListClocksRequest {
            page_size: PAGE_SIZE,
            page_token: q.page.clone(),
            states,
            regime: q.regime.clone(),
            unit: q.unit.clone(),
            category: q.category.clone(),
        }))
        .await?
        .into_inner();
    let queue = if Page::Queue.allows(&v.principal) {
        Some(
            web.api
                .list_regulator_queue(v.request(api::ListRegulatorQueueRequest {
                    page_size: QUEUE_PAGE_SIZE,
                    ..Default::default()
                }))
                .await?
                .into_inner(),
        )
    } else {
        None
    };
    let now = board
        .evaluate_time
        .as_ref()
        .and_then(|t| jiff::Timestamp::new(t.seconds, t.nanos).ok())
        .unwrap_or_else(jiff::Timestamp::now);
    let trends = web.board.trends(now, &v.zone, CHART_WEEKS);
    let count = |key: &str| board.clocks_by_state.get(key).copied().unwrap_or(0);
    let breakdown = |title: &str, map: &std::collections::HashMap<String, u64>| {
        let mut rows: Vec<(&String, &u64)> = map.iter().collect();
        rows.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        html! {
            section.breakdown {
                h3 { (title) }
                @if rows.is_empty() { p.none { (lang.msg("none")) } }
                @else {
                    table { tbody {
                        @for (name, n) in rows { tr { th scope="row" { (name) } td.num { (n) } } }
                    } }
                }
            }
        }
    };
    let breach_bars: Vec<Bar> = trends
        .weeks
        .iter()
        .map(|w| Bar {
            label: lang.short_date(w.start),
            value: w.breaches as f64,
            shown: w.breaches.to_string(),
        })
        .collect();
    let median_bars: Vec<Bar> = trends
        .weeks
        .iter()
        .map(|w| {
            let days = w
                .median_time_to_answer
                .map_or(0.0, |d| d.as_secs_f64() / 86_400.0);
            Bar {
                label: lang.short_date(w.start),
                value: days,
                shown: match w.median_time_to_answer {
                    Some(_) => format!("{days:.1}"),
                    None => "—".to_owned(),
                },
            }
        })
        .collect();
    let age_bars: Vec<Bar> = trends
        .open_by_age
        .iter()
        .enumerate()
        .map(|(i, n)| Bar {
            label: lang.msg(&format!("age-band-{i}")),
            value: *n as f64,
            shown: n.to_string(),
        })
        .collect();
    debug_assert_eq!(trends.open_by_age.len(), AGE_BANDS.len() + 1);
    Ok(html! {
        p.updated { (lang.msg1("updated-at", "time", v.time(board.evaluate_time.as_ref()))) }
        section.figures aria-label=(lang.msg("figures")) {
            div.figure #count-complaints { span.n { (board.complaints) } span.l { (lang.msg("count-complaints")) } }
            div.figure #count-open { span.n { (board.open_complaints) } span.l { (lang.msg("count-open")) } }
            div.figure #count-due-today { span.n { (board.due_today) } span.l { (lang.msg("count-due-today")) } }
            div.figure.atrisk #count-atrisk { span.n { (count("atrisk")) } span.l { (lang.msg("state-atrisk")) } }
            div.figure.breached #count-breached { span.n { (count("breached")) } span.l { (lang.msg("state-breached")) } }
            div.figure #breach-rate { span.n { (lang.percent(board.breach_rate)) } span.l { (lang.msg("breach-rate")) } }
            div.figure #median-answer {
                span.n { (board.median_seconds_to_answer.map_or("—".to_owned(), |s| lang.duration(s))) }
                span.l { (lang.msg("median-answer")) }
            }
        }
        section.states aria-label=(lang.msg("clocks-by-state")) {
            h2 { (lang.msg("clocks-by-state")) }
            ul.states {
                @for (key, _) in STATES {
                    li.(key) { span.l { (lang.label("state-", key)) } " " span.n data-state=(key) { (count(key)) } }
                }
            }
        }
        div.breakdowns {
            (breakdown(&lang.msg("breaches-by-regime"), &board.breached_by_regime))
            (breakdown(&lang.msg("breaches-by-unit"), &board.breached_by_unit))
            (breakdown(&lang.msg("breaches-by-category"), &board.breached_by_category))
        }
        section.charts aria-label=(lang.msg("charts")) {
            h2 { (lang.msg("charts")) }
            div.chart-row {
                (charts::bars("chart-breaches", &lang.msg("chart-breaches"), &breach_bars))
                (charts::bars("chart-median", &lang.msg("chart-median"), &median_bars))
                (charts::bars("chart-age", &lang.msg("chart-age"), &age_bars))
            }
        }
        section.clocks {
            h2 { (lang.msg("clocks")) }
            @if clocks.clocks.is_empty() {
                p.none { (lang.msg("no-clocks")) }
            } @else {
                table #clocks {
                    (header(lang, &["col-complaint", "col-regime", "col-unit", "col-category", "col-clock", "col-state", "col-due", "col-remaining", "col-used"]))
                    tbody {
                        @for entry in &clocks.clocks {
                            @if let Some(clock) = &entry.clock {
                                @let key = state_key(clock.state);
                                @let id = entry.name.trim_start_matches("complaints/");
                                tr.clock.(key) data-complaint=(entry.name) data-clock=(clock.clock) data-state=(key) data-due=(clock.due_time.as_ref().map_or(0, |t| t.seconds)) {
                                    td { a href={ "/complaints/" (id) } { (id.get(..8).unwrap_or(id)) "…" } }
                                    td { (entry.regime) }
                                    td { (entry.unit) }
                                    td { (entry.category) }
                                    td { (clock.title) }
                                    td { span.badge.(key) { (lang.label("state-", key)) } }
                                    td { (v.time(clock.due_time.as_ref())) }
                                    td.num { (time_left(lang, clock)) }
                                    td.num { (format!("{:.0}%", clock.percent_used)) }
                                }
                            }
                        }
                    }
                }
            }
            nav.paging {
                @if !q.page.is_empty() {
                    a href={ "/?" (q.encoded("")) } { (lang.msg("first-page")) } " "
                }
                @if !clocks.next_page_token.is_empty() {
                    a rel="next" href={ "/?" (q.encoded(&clocks.next_page_token)) } { (lang.msg("next-page")) }
                }
            }
        }
        section.queue {
            h2 { (lang.msg("queue")) }
            @match &queue {
                None => p.none { (lang.msg("queue-not-allowed")) },
                Some(queue) if queue.items.is_empty() => p.none { (lang.msg("queue-empty")) },
                Some(queue) => table #queue {
                    (header(lang, &["col-complaint", "col-direction", "col-body", "col-state", "col-since", "col-deadline", "col-reference"]))
                    tbody {
                        @for item in &queue.items {
                            @let id = item.complaint.trim_start_matches("complaints/");
                            tr {
                                td { a href={ "/complaints/" (id) } { (id.get(..8).unwrap_or(id)) "…" } }
                                td { (lang.label("direction-", &api::QueueDirection::try_from(item.direction).map(|d| d.as_str_name().to_lowercase()).unwrap_or_default())) }
                                td { (item.body) }
                                td { (lang.label("queue-state-", api::QueueItemState::try_from(item.state).map(|s| s.as_str_name().trim_start_matches("QUEUE_").to_lowercase()).unwrap_or_default().as_str())) }
                                td { (v.time(item.create_time.as_ref())) }
                                td { (v.time(item.deadline.as_ref())) }
                                td { (item.reference) }
                            }
                        }
                    }
                },
            }
            @if queue.as_ref().is_some_and(|q| !q.next_page_token.is_empty()) {
                p.more { (lang.msg("queue-more")) }
            }
        }
    })
}

/// `/live`: the board's live part, pushed as server-sent events (`event: board`).
async fn live(
    State(web): State<Arc<Web>>,
    Query(q): Query<BoardQuery>,
    headers: HeaderMap,
) -> Response {
    if let Err(status) = web.principal(&headers, Page::Board) {
        return web.refused(&headers, status.into());
    }
    let head = match web.log.head().await {
        Ok(head) => head,
        Err(e) => return web.refused(&headers, crate::errors::status(e.into()).into()),
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<SseEvent>(4);
    let events = web.log.clone().subscribe(head + 1);
    tokio::spawn(follow(web.clone(), q, headers, events, tx));
    let stream =
        tokio_stream::wrappers::ReceiverStream::new(rx).map(Ok::<_, std::convert::Infallible>);
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// Follows the log for one live viewer: after each burst of events (and once a minute),
/// the live part again, rendered once the board has applied them. Ends when the viewer
/// goes, their credentials stop being valid, or the log closes.
async fn follow(
    web: Arc<Web>,
    q: BoardQuery,
    headers: HeaderMap,
    mut events: eventlog::EventStream,
    tx: tokio::sync::mpsc::Sender<SseEvent>,
) {
    let mut stopping = web.stopping.clone();
    let stop_or_gone = async {
        tokio::select! {
            _ = stopping.wait_for(|s| *s) => {}
            () = tx.closed() => {}
        }
    };
    // Everything (waiting for the board, rendering, sending to a slow reader) gives way
    // when the server stops or the viewer goes.
    tokio::select! {
        () = stop_or_gone => {}
        () = push(&web, &q, &headers, &mut events, &tx) => {}
    }
}

/// The pushing of [`follow`]: the board now (events may have come between the page and
/// this stream), then after each burst, and once a minute.
async fn push(
    web: &Web,
    q: &BoardQuery,
    headers: &HeaderMap,
    events: &mut eventlog::EventStream,
    tx: &tokio::sync::mpsc::Sender<SseEvent>,
) {
    let mut first = true;
    loop {
        let mut last = None;
        if !std::mem::take(&mut first) {
            tokio::select! {
                next = events.next() => match next {
                    Some(Ok(e)) => last = Some(e.position),
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "live board: the log subscription failed");
                        return;
                    }
                    None => return,
                },
                () = tokio::time::sleep(REFRESH) => {}
            }
        }
        // The rest of the burst: one render for all of it.
        while let Some(Some(Ok(e))) = events.next().now_or_never() {
            last = Some(e.position);
        }
        if let Some(position) = last {
            web.board.wait_for(position).await;
        }
        // Checked again on every push: an expired token ends the stream.
        let Ok(principal) = web.principal(headers, Page::Board) else {
            return;
        };
        let viewer = web.viewer(headers, principal, "", "");
        let html = match live_part(&viewer, q).await {
            Ok(markup) => markup.into_string(),
            Err(refusal) => {
                tracing::debug!(status = %refusal.status, "live board: not rendered");
                continue;
            }
        };
        if tx
            .send(SseEvent::default().event("board").data(html))
            .await
            .is_err()
        {
            return;
        }
    }
}

async fn complaint_page(
    State(web): State<Arc<Web>>,
    Path(id): Path<String>,
    Query(q): Query<BoardQuery>,
    headers: HeaderMap,
) -> Response {
    let principal = match web.principal(&headers, Page::Complaint) {
        Ok(p) => p,
        Err(status) => return web.refused(&headers, status.into()),
    };
    let viewer = web.viewer(&headers, principal, &q.lang, &q.tz);
    match complaint_body(&viewer, &id).await {
        Ok((title, body)) => {
            let page = layout(&web, &viewer.lang, &title, Some(&viewer), body);
            viewer.with_cookies(page.into_response())
        }
        Err(refusal) => web.refused(&headers, refusal),
    }
}

/// A complaint's page: details, clocks with their explanations, timeline.
async fn complaint_body(v: &Viewer<'_>, id: &str) -> Result<(String, Markup), Refusal> {
    let lang = &v.lang;
    let name = format!("complaints/{id}");
    let Some(complaint_id) = ComplaintId::parse_name(&name) else {
        return Err(tonic::Status::invalid_argument(format!(
            "{id:?} is not a complaint id (a UUID)"
        ))
        .into());
    };
    let sla = v
        .web
        .api
        .get_complaint_sla(v.request(api::GetComplaintSlaRequest { name: name.clone() }))
        .await?
        .into_inner();
    // Details and timeline only for those who may call GetComplaint, as it shows them to
    // this viewer (personal fields withheld unless allowed).
    let detailed = if Page::Details.allows(&v.principal) {
        let c = v
            .web
            .api
            .get_complaint(v.request(api::GetComplaintRequest { name: name.clone() }))
            .await?
            .into_inner();
        Some((c, timeline(&*v.web.log, complaint_id).await?))
    } else {
        None
    };
    let sees = sees_personal_data(&v.principal);
    let title = lang.msg1("complaint", "name", id);
    let body = html! {
        p { a href="/" { "← " (lang.msg("back-to-board")) } }
        h2 { (title) }
        @if let Some((c, _)) = &detailed {
        (details(v, c, sees))
        } @else {
            p.none #details-not-allowed { (lang.msg("details-not-allowed")) }
        }
        section.sla {
            h3 { (lang.msg("sla")) }
            p { (lang.msg_with("sla-policy", &[
                ("policy", sla.policy.clone().into()),
                ("version", sla.policy_version.to_string().into()),
                ("zone", sla.time_zone.clone().into()),
            ])) }
            @for clock in &sla.clocks {
                @let key = state_key(clock.state);
                article.clock.(key) data-clock=(clock.clock) data-state=(key) {
                    h4 { (clock.title) " " span.badge.(key) { (lang.label("state-", key)) } }
                    p {
                        (lang.msg("col-due")) ": " (v.time(clock.due_time.as_ref()))
                        @if !clock.due_date.is_empty() {
                            " (" (lang.msg1("clock-due-date", "date", &clock.due_date)) ")"
                        }
                        " · "
                        (time_left(lang, clock))
                    }
                    details open {
                        summary { (lang.msg("explanation")) }
                        ol.explanation {
                            @for line in &clock.explanation { li { (line) } }
                        }
                    }
                }
            }
        }
        @if let Some((_, timeline)) = &detailed {
        section.timeline {
            h3 { (lang.msg("timeline")) }
            table #timeline {
                (header(lang, &["#", "col-step", "col-effective", "col-recorded", "col-actor", "col-reason"]))
                tbody {
                    @for step in timeline {
                        tr data-type=(step.event_type) {
                            td.num { (step.position) }
                            td { (lang.label("step-", &step.event_type.replace('.', "-"))) }
                            td { (lang.datetime(step.effective, &v.zone)) }
                            td { (lang.datetime(step.recorded, &v.zone)) }
                            td { (step.actor) }
                            td { (step.reason) }
                        }
                    }
                }
            }
        }
        }
    };
    Ok((title, body))
}

/// A complaint's details, as GetComplaint shows them to the viewer (personal fields
/// withheld unless `sees`).
fn details(v: &Viewer<'_>, c: &api::Complaint, sees: bool) -> Markup {
    let lang = &v.lang;
    let status = api::Status::try_from(c.status)
        .map(|s| s.as_str_name().to_lowercase())
        .unwrap_or_default();
    let channel = api::Channel::try_from(c.channel)
        .map(|s| s.as_str_name().to_lowercase())
        .unwrap_or_default();
    let personal = api::PersonalDataState::try_from(c.personal_data)
        .unwrap_or(api::PersonalDataState::Unspecified);
    html! {
        section.details {
            h3 { (lang.msg("details")) }
            dl {
                dt { (lang.msg("field-status")) } dd #status { (lang.label("status-", &status)) }
                dt { (lang.msg("field-regime")) } dd { (c.regime) }
                dt { (lang.msg("field-region")) } dd { (c.region) }
                dt { (lang.msg("field-unit")) } dd { (c.unit) }
                dt { (lang.msg("field-product")) } dd { (c.product) }
                dt { (lang.msg("field-category")) } dd { (c.category) }
                dt { (lang.msg("field-channel")) } dd { (lang.label("channel-", &channel)) }
                dt { (lang.msg("field-received")) } dd { (v.time(c.receive_time.as_ref())) }
                @if c.answer_time.is_some() {
                    dt { (lang.msg("field-answered")) } dd { (v.time(c.answer_time.as_ref())) }
                }
                @if c.end_time.is_some() {
                    dt { (lang.msg("field-ended")) } dd { (v.time(c.end_time.as_ref())) }
                }
                @if let Some(a) = &c.assignment {
                    dt { (lang.msg("field-handler")) } dd { (a.handler) }
                }
                @if let Some(satisfaction) = &c.satisfaction {
                    dt { (lang.msg("field-satisfaction")) }
                    dd #satisfaction data-rating=(satisfaction.rating) {
                        (lang.msg_with("satisfaction-rating", &[
                            ("rating", satisfaction.rating.into()),
                            ("time", v.time(satisfaction.at.as_ref()).into()),
                        ]))
                    }
                }
            }
            @match (sees, personal) {
                (_, api::PersonalDataState::PersonalDataErased) => p.personal #personal { (lang.msg("personal-erased")) },
                (true, api::PersonalDataState::PersonalDataPresent) => dl.personal #personal {
                    @if let Some(p) = &c.complainant {
                        dt { (lang.msg("field-complainant")) } dd { (p.name) }
                        dt { (lang.msg("field-contact")) } dd { (p.contact) }
                    }
                    dt { (lang.msg("field-claim")) } dd { (c.claim) }
                    dt { (lang.msg("field-facts")) } dd { (c.facts) }
                    @if let Some(comment) = c.satisfaction.as_ref().map(|s| &s.comment).filter(|s| !s.is_empty()) {
                        dt { (lang.msg("field-satisfaction-comment")) } dd #satisfaction-comment { (comment) }
                    }
                },
                _ => p.personal #personal { (lang.msg("personal-withheld")) },
            }
        }
    }
}

/// One row of a complaint's timeline.
struct Step {
    position: eventlog::Position,
    event_type: String,
    effective: jiff::Timestamp,
    recorded: jiff::Timestamp,
    actor: String,
    reason: String,
}

/// The complaint's events and its SLA crossings, in log order.
async fn timeline(log: &dyn EventLog, id: ComplaintId) -> Result<Vec<Step>, Refusal> {
    let mut steps = Vec::new();
    for stream in [complaint_stream(id), sla_stream(id)] {
        let events = log
            .read_stream(&stream, 1, Direction::Forward, usize::MAX)
            .await
            .map_err(|e| crate::errors::status(e.into()))?;
        for e in events {
            let recorded = jiff::Timestamp::from_microsecond(e.recorded_at.as_micros())
                .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
            let (effective, reason) = match Stored::decode(&e) {
                // A registration happened when the complaint was received.
                Ok(Stored::Complaint { event, .. }) => (
                    match &event.change {
                        complaints_domain::Change::Registered(r) => r.received_at,
                        _ => event.effective_at(),
                    },
                    event
                        .effective
                        .and_then(|eff| eff.reason)
                        .unwrap_or_default(),
                ),
                Ok(Stored::Crossing(t)) => (t.at, String::new()),
                _ => (recorded, String::new()),
            };
            steps.push(Step {
                position: e.position,
                event_type: e.event_type.clone(),
                effective,
                recorded,
                actor: e.actor.clone(),
                reason,
            });
        }
    }
    steps.sort_by_key(|s| s.position);
    Ok(steps)
}

async fn login_page(State(web): State<Arc<Web>>, headers: HeaderMap) -> Response {
    let lang = web.catalogues.negotiate(
        cookie(&headers, "lang").as_deref(),
        headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
    );
    let body = html! {
        h2 { (lang.msg("login-title")) }
        p { (lang.msg("login-help")) }
        form.login method="post" action="/login" {
            label { (lang.msg("login-token")) br;
                textarea name="token" rows="6" cols="60" required autocomplete="off" spellcheck="false" {}
            }
            br;
            button type="submit" { (lang.msg("login-submit")) }
        }
    };
    layout(&web, &lang, &lang.msg("login-title"), None, body).into_response()
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
}

/// Keeps a valid token in an HttpOnly cookie; refuses an invalid one (nothing kept).
async fn login(
    State(web): State<Arc<Web>>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let token = form.token.trim().to_owned();
    let mut check = headers.clone();
    check.remove(header::COOKIE);
    match HeaderValue::from_str(&format!("Bearer {token}")) {
        Ok(v) => {
            check.insert(header::AUTHORIZATION, v);
        }
        Err(_) => {
            return web.refused(
                &headers,
                tonic::Status::unauthenticated("the token has characters a token cannot have")
                    .into(),
            )
        }
    }
    if let Err(status) = web.principal(&check, Page::Board) {
        return web.refused(&headers, status.into());
    }
    to_board_keeping(&format!(
        "{TOKEN_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict"
    ))
}

/// A redirect to the board that sets `cookie` (a `Set-Cookie` value).
fn to_board_keeping(cookie: &str) -> Response {
    let mut response = Redirect::to("/").into_response();
    if let Ok(v) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

async fn logout() -> Response {
    let mut response = Redirect::to("/login").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_static("complaints_token=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    response
}

#[derive(Deserialize)]
struct RolesForm {
    roles: String,
}

/// Development mode only: the roles to see the board as.
async fn dev_roles(State(web): State<Arc<Web>>, Form(form): Form<RolesForm>) -> Response {
    if !web.dev {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    }
    let mut roles = Vec::new();
    for name in form
        .roles
        .split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
    {
        match name.parse::<Role>() {
            Ok(role) => roles.push(role.as_str()),
            Err(()) => {
                let known: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
                return (
                    StatusCode::BAD_REQUEST,
                    format!(
                        "{name:?} is not a role; the roles are {}\n",
                        known.join(", ")
                    ),
                )
                    .into_response();
            }
        }
    }
    if roles.is_empty() {
        return (StatusCode::BAD_REQUEST, "name at least one role\n").into_response();
    }
    let roles = roles.join(",");
    to_board_keeping(&format!(
        "{DEV_ROLES_COOKIE}={roles}; Path=/; SameSite=Strict"
    ))
}

async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        CSS,
    )
        .into_response()
}

async fn js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        JS,
    )
        .into_response()
}

async fn metrics(State(web): State<Arc<Web>>, headers: HeaderMap) -> Response {
    if let Err(status) = web.principal(&headers, Page::Metrics) {
        let code = match status.code() {
            tonic::Code::PermissionDenied => StatusCode::FORBIDDEN,
            _ => StatusCode::UNAUTHORIZED,
        };
        return (code, format!("{}\n", status.message())).into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        web.gauges.render().await,
    )
        .into_response()
}

/// Liveness: the process answers.
async fn healthz() -> Response {
    (StatusCode::OK, "ok\n").into_response()
}

/// Readiness: the projections have caught up with the log as it was at start, so the
/// board's first answer is complete.
async fn readyz(State(web): State<Arc<Web>>) -> Response {
    if *web.ready.borrow() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        let positions: Vec<String> = web
            .gauges
            .projections
            .positions()
            .into_iter()
            .map(|(name, p)| format!("{name} at {p}"))
            .collect();
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "not ready: projections catching up ({})\n",
                positions.join(", ")
            ),
        )
            .into_response()
    }
}
