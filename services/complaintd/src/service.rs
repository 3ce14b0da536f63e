//! The `complaints.v1.ComplaintService` implementation (callers already authenticated and
//! authorised by [`crate::authz`]): convert, run the
//! workflow, convert back. No business rules here.

use std::sync::Arc;
use std::time::Duration;

use complaints_domain::model::ComplaintId;
use complaints_events::{Kind, Stored};
use complaints_projections::board::{ClockQuery, SlaBoard, StateKind};
use complaints_projections::list::{ComplaintList, ListQuery};
use complaints_projections::queue::{Direction, RegulatorQueue};
use complaints_projections::{NotRegistered, Projection, Projections};
use complaints_proto::complaints::v1 as api;
use complaints_proto::complaints::v1::complaint_service_server::ComplaintService;
use complaints_sla::Engine;
use complaints_workflow::queue;
use complaints_workflow::{complaint_id_for, CommandRequest, Workflow};
use futures::StreamExt;
use tonic::{Request, Response, Status};

use crate::convert::{self, StepRequest, Violations};
use crate::errors;

/// Largest list page.
pub const MAX_PAGE_SIZE: usize = 500;
/// List page when the caller gives none.
pub const DEFAULT_PAGE_SIZE: usize = 50;
/// How long a list waits for the projection to reach the writes made before it.
const LIST_CATCH_UP: Duration = Duration::from_secs(5);

/// The stream of WatchSla.
pub type SlaTransitions =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<api::SlaTransition, Status>> + Send>>;

/// The gRPC service.
#[derive(Clone)]
pub struct Api {
    workflow: Workflow,
    list: Arc<ComplaintList>,
    board: Arc<SlaBoard>,
    queue: Arc<RegulatorQueue>,
    /// The NATS publisher's status, when this server publishes.
    publisher: Option<tokio::sync::watch::Receiver<complaints_nats::Status>>,
    /// The business's time zone: the day of the board's `due_today`.
    zone: jiff::tz::TimeZone,
}

/// Header set on a response that replays an earlier request's result.
pub const REPLAYED_HEADER: &str = "x-replayed";

/// What a step request asks for, converted.
struct Asked {
    command: complaints_domain::Command,
    effective: Option<complaints_domain::Effective>,
    expected_version: Option<u64>,
}

impl Api {
    /// The service over `workflow`, answering queries from `projections`.
    pub fn new(workflow: Workflow, projections: &Projections) -> Result<Self, NotRegistered> {
        Ok(Self {
            workflow,
            list: projections.get()?,
            board: projections.get()?,
            queue: projections.get()?,
            publisher: None,
            zone: jiff::tz::TimeZone::UTC,
        })
    }

    /// Counts the board's `due_today` in `zone` (UTC by default).
    pub fn with_business_time_zone(mut self, zone: jiff::tz::TimeZone) -> Self {
        self.zone = zone;
        self
    }

    /// Reports this publisher's status in GetPublisherStatus.
    pub fn with_publisher(
        mut self,
        status: tokio::sync::watch::Receiver<complaints_nats::Status>,
    ) -> Self {
        self.publisher = Some(status);
        self
    }

    fn now(&self) -> Result<jiff::Timestamp, Status> {
        jiff::Timestamp::from_microsecond(self.workflow.clock().now().as_micros())
            .map_err(|_| Status::internal("the server clock is out of range"))
    }

    /// Waits until a projection has seen every write acknowledged before this call.
    async fn catch_up(&self, wait: impl std::future::Future<Output = ()>) -> Result<(), Status> {
        tokio::time::timeout(LIST_CATCH_UP, wait)
            .await
            .map_err(|_| Status::unavailable("the projection is catching up: retry"))
    }

    async fn step<R: StepRequest>(
        &self,
        request: Request<R>,
    ) -> Result<Response<api::Complaint>, Status> {
        let principal = crate::authz::principal(&request)?;
        let r = request.into_inner();
        let mut v = Violations::default();
        let id = convert::complaint_name(&mut v, "name", r.name());
        let request_id = convert::request_id(&mut v, r.request_id());
        let expected_version = r.expected_version();
        let asked = Asked {
            effective: r.effective(&mut v),
            command: r.command(&mut v),
            expected_version,
        };
        self.run(v, id, request_id, asked, principal).await
    }

    /// Runs a converted command, unless the conversion found bad fields: then the domain
    /// checks the command too (bad fields replaced by stand-ins), so that one
    /// INVALID_ARGUMENT lists every bad field, the request's own and the command's.
    async fn run(
        &self,
        violations: Violations,
        complaint: Option<ComplaintId>,
        request_id: Option<uuid::Uuid>,
        asked: Asked,
        principal: complaints_workflow::Principal,
    ) -> Result<Response<api::Complaint>, Status> {
        let Asked {
            command,
            effective,
            expected_version,
        } = asked;
        let (Some(complaint), Some(request_id), true) =
            (complaint, request_id, violations.is_empty())
        else {
            let domain = self
                .workflow
                .field_violations(&command, effective.as_ref(), &principal);
            return Err(errors::invalid(convert::merge_violations(
                violations, domain,
            )));
        };
        crate::metrics::record_complaint(&complaint.name());
        let sees = crate::authz::sees_personal_data(&principal);
        let request = CommandRequest {
            complaint,
            command,
            request_id,
            expected_version,
            principal,
            effective,
        };
        let outcome = self
            .workflow
            .execute(request)
            .await
            .map_err(errors::status)?;
        let mut response = Response::new(convert::complaint_for(
            &outcome.complaint,
            outcome.version,
            outcome.personal,
            sees,
        ));
        if outcome.replayed {
            response
                .metadata_mut()
                .insert(REPLAYED_HEADER, "true".parse().expect("ascii"));
        }
        Ok(response)
    }
}

/// A complaint's SLA view at `now`, computed with `engine` (what GetComplaintSla shows).
pub(crate) fn sla_view(
    engine: &Engine,
    complaint: &complaints_domain::Complaint,
    version: u64,
    now: jiff::Timestamp,
) -> Result<api::ComplaintSla, Status> {
    let regime = &complaint.registration.regime;
    let policy = engine.policies.latest(regime).map_err(|_| {
        Status::failed_precondition(format!("no SLA policy is loaded for regime {regime}"))
    })?;
    let facts = complaints_projections::board::facts(complaint);
    let mut clocks = Vec::new();
    for rule in &policy.clocks {
        match engine.due(policy, rule, &facts) {
            Ok(Some(due)) => {
                let assessment = engine.assess(rule, &due, now);
                clocks.push(convert::clock_out(&due, &assessment));
            }
            Ok(None) => {}
            Err(e) => return Err(errors::sla(e)),
        }
    }
    Ok(api::ComplaintSla {
        name: complaint.id().name(),
        version,
        policy: policy.id.clone(),
        policy_version: policy.version,
        time_zone: policy.time_zone.clone(),
        evaluate_time: Some(convert::to_timestamp(now)),
        clocks,
    })
}

/// The board's figures at `now`, "today" in `zone` (what GetBoard shows).
pub(crate) fn board_out(
    board: &SlaBoard,
    now: jiff::Timestamp,
    zone: &jiff::tz::TimeZone,
) -> api::Board {
    let f = board.figures_in(now, zone);
    let map = |m: std::collections::BTreeMap<String, u64>| m.into_iter().collect();
    api::Board {
        evaluate_time: Some(convert::to_timestamp(now)),
        complaints: f.complaints,
        open_complaints: f.open_complaints,
        due_today: f.due_today,
        clocks_by_state: map(f.by_state),
        breached_by_regime: map(f.breached_by_regime),
        breached_by_unit: map(f.breached_by_unit),
        breached_by_category: map(f.breached_by_category),
        breach_rate: f.breach_rate,
        median_seconds_to_answer: f.median_time_to_answer.map(|d| d.as_secs()),
    }
}

/// Largest page of the regulator queue, in items.
pub const MAX_QUEUE_PAGE_SIZE: usize = 10_000;
/// Page of the regulator queue when the caller gives none.
pub const DEFAULT_QUEUE_PAGE_SIZE: usize = 1_000;
/// A page of the regulator queue ends before its items reach this many bytes (the items'
/// texts are the callers'), so that any client's default limit of 4 MiB a message holds.
pub const QUEUE_PAGE_BYTES: usize = 2 << 20;

/// Which page of the regulator queue a call asks for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct QueuePage {
    size: usize,
    after: Option<(jiff::Timestamp, uuid::Uuid)>,
}

impl QueuePage {
    /// Reads `page_size` and `page_token`, adding what is wrong with them to `v`.
    pub(crate) fn parse(v: &mut Violations, page_size: i32, page_token: &str) -> Self {
        if page_size < 0 {
            v.add("page_size", "must not be negative");
        }
        let size = match page_size {
            n if n <= 0 => DEFAULT_QUEUE_PAGE_SIZE,
            n => (n as usize).min(MAX_QUEUE_PAGE_SIZE),
        };
        let after = convert::queue_token(v, page_token);
        Self { size, after }
    }

    /// Whether a page holding `items` items of `bytes` bytes is full before one more of
    /// `next` bytes: at `size` items, or past [`QUEUE_PAGE_BYTES`] (one item always goes).
    fn full(&self, items: usize, bytes: usize, next: usize) -> bool {
        items >= self.size || (items > 0 && bytes + next > QUEUE_PAGE_BYTES)
    }
}

/// A page of the queue's items at `now` (what ListRegulatorQueue shows), of `direction`
/// and in `states` (all when empty).
pub(crate) fn queue_out(
    queue: &RegulatorQueue,
    now: jiff::Timestamp,
    direction: Option<Direction>,
    states: &[i32],
    page: QueuePage,
) -> api::ListRegulatorQueueResponse {
    use complaints_projections::queue::Taken;
    use prost::Message;
    let mut items = Vec::new();
    let mut bytes = 0;
    let next = queue.page(now, page.after, |item, state| {
        let wanted = direction.is_none_or(|d| item.direction == d)
            && (states.is_empty() || states.contains(&(convert::queue_state(&state) as i32)));
        if !wanted {
            return Taken::Skipped;
        }
        let out = convert::queue_item_in_state(item, state);
        // The item's bytes in the answer, with its tag and length (at most 8 bytes).
        let size = out.encoded_len() + 8;
        if page.full(items.len(), bytes, size) {
            return Taken::Full;
        }
        bytes += size;
        items.push(out);
        Taken::Taken
    });
    api::ListRegulatorQueueResponse {
        items,
        next_page_token: next.map(convert::queue_token_out).unwrap_or_default(),
    }
}

impl Api {
    pub async fn register_complaint(
        &self,
        request: Request<api::RegisterComplaintRequest>,
    ) -> Result<Response<api::Complaint>, Status> {
        let principal = crate::authz::principal(&request)?;
        let r = request.into_inner();
        let mut v = Violations::default();
        let request_id = convert::request_id(&mut v, &r.request_id);
        let chosen = if r.complaint_id.is_empty() {
            None
        } else {
            convert::complaint_id(&mut v, "complaint_id", &r.complaint_id)
        };
        let complaint = chosen.or(request_id.map(complaint_id_for));
        // Check every field even when the id is unusable, so one reply lists them all.
        let placeholder = ComplaintId::new(uuid::Uuid::max());
        let command = convert::register(&mut v, complaint.unwrap_or(placeholder), r);
        let asked = Asked {
            command,
            effective: None,
            expected_version: None,
        };
        self.run(v, complaint, request_id, asked, principal).await
    }

    pub async fn get_complaint(
        &self,
        request: Request<api::GetComplaintRequest>,
    ) -> Result<Response<api::Complaint>, Status> {
        let principal = crate::authz::principal(&request)?;
        let mut v = Violations::default();
        let Some(id) = convert::complaint_name(&mut v, "name", &request.get_ref().name) else {
            return Err(errors::invalid(v.0));
        };
        let read = self.workflow.read(id).await.map_err(errors::status)?;
        Ok(Response::new(convert::complaint_for(
            &read.complaint,
            read.version,
            read.personal,
            crate::authz::sees_personal_data(&principal),
        )))
    }

    pub async fn get_publisher_status(
        &self,
        _request: Request<api::GetPublisherStatusRequest>,
    ) -> Result<Response<api::PublisherStatus>, Status> {
        let Some(status) = &self.publisher else {
            return Ok(Response::new(api::PublisherStatus::default()));
        };
        let s = status.borrow().clone();
        Ok(Response::new(api::PublisherStatus {
            enabled: true,
            published_position: s.published,
            head_position: s.head,
            lag: s.lag(),
            last_error: s.last_error.unwrap_or_default(),
        }))
    }

    pub async fn erase_personal_data(
        &self,
        request: Request<api::ErasePersonalDataRequest>,
    ) -> Result<Response<api::ErasePersonalDataResponse>, Status> {
        let principal = crate::authz::principal(&request)?;
        let r = request.into_inner();
        let mut v = Violations::default();
        let request_id = convert::request_id(&mut v, &r.request_id);
        if r.person_id.trim().is_empty() || r.person_id.len() > 200 {
            v.add("person_id", "must be 1 to 200 characters");
        }
        if r.reason.len() > 1000 {
            v.add("reason", "must be at most 1000 characters");
        }
        let (Some(request_id), true) = (request_id, v.is_empty()) else {
            return Err(errors::invalid(v.0));
        };
        let erased = self
            .workflow
            .erase_personal_data(&r.person_id, &r.reason, request_id, &principal)
            .await
            .map_err(errors::status)?;
        // Ids only: no personal data in the log.
        tracing::info!(person_id = %r.person_id, erased, by = %principal.id, "personal data erased");
        Ok(Response::new(api::ErasePersonalDataResponse {
            person_id: r.person_id,
            erased,
        }))
    }

    pub async fn get_complaint_sla(
        &self,
        request: Request<api::GetComplaintSlaRequest>,
    ) -> Result<Response<api::ComplaintSla>, Status> {
        crate::authz::principal(&request)?;
        let mut v = Violations::default();
        let Some(id) = convert::complaint_name(&mut v, "name", &request.get_ref().name) else {
            return Err(errors::invalid(v.0));
        };
        let (complaint, version) = self.workflow.get(id).await.map_err(errors::status)?;
        // The rules in force are the last ones the log records, as the board follows them:
        // wait until the board has seen everything written before this call.
        self.board_caught_up().await?;
        let now = self.now()?;
        Ok(Response::new(sla_view(
            &self.board.engine(),
            &complaint,
            version,
            now,
        )?))
    }

    pub async fn list_clocks(
        &self,
        request: Request<api::ListClocksRequest>,
    ) -> Result<Response<api::ListClocksResponse>, Status> {
        crate::authz::principal(&request)?;
        let r = request.into_inner();
        let mut v = Violations::default();
        if r.page_size < 0 {
            v.add("page_size", "must not be negative");
        }
        let mut states = Vec::new();
        for (i, s) in r.states.iter().enumerate() {
            match api::ClockState::try_from(*s) {
                Ok(api::ClockState::ClockRunning) => states.push(StateKind::Running),
                Ok(api::ClockState::ClockPaused) => states.push(StateKind::Paused),
                Ok(api::ClockState::ClockAtRisk) => states.push(StateKind::AtRisk),
                Ok(api::ClockState::ClockBreached) => states.push(StateKind::Breached),
                Ok(api::ClockState::ClockMet) => states.push(StateKind::Met),
                Ok(api::ClockState::ClockWindowOpen) => states.push(StateKind::WindowOpen),
                Ok(api::ClockState::ClockWindowClosed) => states.push(StateKind::WindowClosed),
                _ => v.add(
                    format!("states[{i}]"),
                    "must be one of the listed values (not unspecified)",
                ),
            }
        }
        let after = convert::clock_token(&mut v, &r.page_token);
        if !v.is_empty() {
            return Err(errors::invalid(v.0));
        }
        self.board_caught_up().await?;
        let now = self.now()?;
        let filter = |s: String| Some(s).filter(|s| !s.is_empty());
        let page = self.board.clocks(
            now,
            &ClockQuery {
                states,
                regime: filter(r.regime),
                unit: filter(r.unit),
                category: filter(r.category),
                page_size: match r.page_size {
                    0 => DEFAULT_PAGE_SIZE,
                    n => (n as usize).min(MAX_PAGE_SIZE),
                },
                after,
            },
        );
        Ok(Response::new(api::ListClocksResponse {
            clocks: page
                .items
                .iter()
                .map(|i| api::ClockEntry {
                    name: i.id.name(),
                    regime: i.regime.clone(),
                    unit: i.unit.clone(),
                    category: i.category.clone(),
                    clock: Some(convert::clock_out(&i.due, &i.assessment)),
                })
                .collect(),
            next_page_token: page.next.map(convert::clock_token_out).unwrap_or_default(),
            evaluate_time: Some(convert::to_timestamp(now)),
        }))
    }

    pub async fn get_board(
        &self,
        request: Request<api::GetBoardRequest>,
    ) -> Result<Response<api::Board>, Status> {
        crate::authz::principal(&request)?;
        self.board_caught_up().await?;
        let now = self.now()?;
        Ok(Response::new(board_out(&self.board, now, &self.zone)))
    }

    pub async fn watch_sla(
        &self,
        request: Request<api::WatchSlaRequest>,
    ) -> Result<Response<SlaTransitions>, Status> {
        crate::authz::principal(&request)?;
        let r = request.into_inner();
        let log = self.workflow.log().clone();
        let from = match r.after_position {
            Some(position) => position.saturating_add(1),
            None => log.head().await.map_err(|e| errors::status(e.into()))? + 1,
        };
        let regime = Some(r.regime).filter(|r| !r.is_empty());
        // Pulled from the log as the client reads: a slow client costs no memory.
        let stream = log.subscribe(from).filter_map(move |item| {
            let regime = regime.clone();
            async move {
                match item {
                    Ok(e)
                        if matches!(
                            Kind::of(&e.event_type),
                            Some(Kind::SlaAtRisk | Kind::SlaBreached)
                        ) =>
                    {
                        let t = match Stored::decode(&e) {
                            Ok(Stored::Crossing(t)) => t,
                            Ok(_) => return None,
                            Err(err) => {
                                return Some(Err(errors::status(err.at(e.position).into())))
                            }
                        };
                        if regime.as_ref().is_some_and(|r| r != &t.policy) {
                            return None;
                        }
                        let state = if t.threshold >= 100 {
                            api::ClockState::ClockBreached
                        } else {
                            api::ClockState::ClockAtRisk
                        };
                        Some(Ok(api::SlaTransition {
                            name: t.id.name(),
                            regime: t.policy,
                            policy_version: t.policy_version,
                            clock: t.clock,
                            state: state as i32,
                            threshold: u32::from(t.threshold),
                            cross_time: Some(convert::to_timestamp(t.at)),
                            due_time: Some(convert::to_timestamp(t.due_at)),
                            position: e.position,
                        }))
                    }
                    Ok(_) => None,
                    Err(e) => Some(Err(errors::status(e.into()))),
                }
            }
        });
        Ok(Response::new(Box::pin(stream)))
    }

    /// The log's head now: what a projection must have seen to answer this call.
    async fn head(&self) -> Result<eventlog::Position, Status> {
        self.workflow
            .log()
            .head()
            .await
            .map_err(|e| errors::status(e.into()))
    }

    async fn queue_caught_up(&self) -> Result<(), Status> {
        let head = self.head().await?;
        self.catch_up(self.queue.wait_for(head)).await
    }

    async fn board_caught_up(&self) -> Result<(), Status> {
        let head = self.head().await?;
        self.catch_up(self.board.wait_for(head)).await
    }

    pub async fn list_regulator_queue(
        &self,
        request: Request<api::ListRegulatorQueueRequest>,
    ) -> Result<Response<api::ListRegulatorQueueResponse>, Status> {
        crate::authz::principal(&request)?;
        let r = request.into_inner();
        let mut v = Violations::default();
        let direction = convert::queue_direction(&mut v, "direction", r.direction);
        let mut states = Vec::new();
        for (i, s) in r.states.iter().enumerate() {
            match api::QueueItemState::try_from(*s) {
                Ok(api::QueueItemState::Unspecified) | Err(_) => v.add(
                    format!("states[{i}]"),
                    "must be one of the listed values (not unspecified)",
                ),
                Ok(state) => states.push(state as i32),
            }
        }
        let page = QueuePage::parse(&mut v, r.page_size, &r.page_token);
        if !v.is_empty() {
            return Err(errors::invalid(v.0));
        }
        self.queue_caught_up().await?;
        let now = self.now()?;
        Ok(Response::new(queue_out(
            &self.queue,
            now,
            direction,
            &states,
            page,
        )))
    }

    pub async fn lease_regulator_queue_item(
        &self,
        request: Request<api::LeaseRegulatorQueueItemRequest>,
    ) -> Result<Response<api::QueueItem>, Status> {
        let principal = crate::authz::principal(&request)?;
        let r = request.into_inner();
        let mut v = Violations::default();
        let item = if r.name.is_empty() {
            None
        } else {
            convert::queue_item_name(&mut v, &r.name)
        };
        let direction = convert::queue_direction(&mut v, "direction", r.direction);
        if r.lease_seconds > 3600 {
            v.add("lease_seconds", "must be at most 3600");
        }
        if !v.is_empty() {
            return Err(errors::invalid(v.0));
        }
        let lease = jiff::SignedDuration::from_secs(i64::from(if r.lease_seconds == 0 {
            300
        } else {
            r.lease_seconds
        }));
        self.queue_caught_up().await?;
        let now = self.now()?;
        let leased = queue::lease(
            &**self.workflow.log(),
            &self.queue,
            item,
            direction,
            &principal.id,
            lease,
            now,
        )
        .await
        .map_err(errors::queue)?;
        Ok(Response::new(convert::queue_item_out(&leased, now)))
    }

    pub async fn acknowledge_regulator_queue_item(
        &self,
        request: Request<api::AcknowledgeRegulatorQueueItemRequest>,
    ) -> Result<Response<api::QueueItem>, Status> {
        let principal = crate::authz::principal(&request)?;
        let r = request.into_inner();
        let mut v = Violations::default();
        let item = convert::queue_item_name(&mut v, &r.name);
        if r.reference.trim().is_empty() {
            v.add("reference", "must not be empty");
        } else if r.reference.chars().count() > complaints_domain::MAX_SHORT {
            v.add(
                "reference",
                format!(
                    "must be at most {} characters",
                    complaints_domain::MAX_SHORT
                ),
            );
        }
        let (Some(item), true) = (item, v.is_empty()) else {
            return Err(errors::invalid(v.0));
        };
        self.queue_caught_up().await?;
        let now = self.now()?;
        let done = queue::acknowledge(
            &**self.workflow.log(),
            &self.queue,
            item,
            &principal.id,
            &r.reference,
            now,
        )
        .await
        .map_err(errors::queue)?;
        Ok(Response::new(convert::queue_item_out(&done, now)))
    }

    pub async fn list_complaints(
        &self,
        request: Request<api::ListComplaintsRequest>,
    ) -> Result<Response<api::ListComplaintsResponse>, Status> {
        crate::authz::principal(&request)?;
        let r = request.into_inner();
        let mut v = Violations::default();
        if r.page_size < 0 {
            v.add("page_size", "must not be negative");
        }
        let status = (r.status != 0)
            .then(|| convert::status(&mut v, "status", r.status))
            .flatten();
        let after = convert::page_token(&mut v, &r.page_token);
        if !v.is_empty() {
            return Err(errors::invalid(v.0));
        }
        let page_size = match r.page_size {
            0 => DEFAULT_PAGE_SIZE,
            n => (n as usize).min(MAX_PAGE_SIZE),
        };
        // Show every write acknowledged before this call.
        let head = self
            .workflow
            .log()
            .head()
            .await
            .map_err(|e| errors::status(e.into()))?;
        self.catch_up(self.list.wait_for(head)).await?;
        let filter = |s: String| Some(s).filter(|s| !s.is_empty());
        let page = self.list.query(&ListQuery {
            status,
            unit: filter(r.unit),
            category: filter(r.category),
            regime: filter(r.regime),
            page_size,
            after,
        });
        Ok(Response::new(api::ListComplaintsResponse {
            complaints: page.items.iter().map(convert::summary_out).collect(),
            next_page_token: page.next.map(convert::page_token_out).unwrap_or_default(),
        }))
    }
}

/// Emits the service impl: the read and register methods delegate to [`Api`]'s own, and
/// every step goes through [`Api::step`].
macro_rules! service {
    ($($method:ident($request:ty)),* $(,)?) => {
        #[tonic::async_trait]
        impl ComplaintService for Api {
            async fn register_complaint(
                &self,
                request: Request<api::RegisterComplaintRequest>,
            ) -> Result<Response<api::Complaint>, Status> {
                Api::register_complaint(self, request).await
            }

            async fn get_complaint(
                &self,
                request: Request<api::GetComplaintRequest>,
            ) -> Result<Response<api::Complaint>, Status> {
                Api::get_complaint(self, request).await
            }

            async fn get_publisher_status(
                &self,
                request: Request<api::GetPublisherStatusRequest>,
            ) -> Result<Response<api::PublisherStatus>, Status> {
                Api::get_publisher_status(self, request).await
            }

            async fn erase_personal_data(
                &self,
                request: Request<api::ErasePersonalDataRequest>,
            ) -> Result<Response<api::ErasePersonalDataResponse>, Status> {
                Api::erase_personal_data(self, request).await
            }

            async fn list_complaints(
                &self,
                request: Request<api::ListComplaintsRequest>,
            ) -> Result<Response<api::ListComplaintsResponse>, Status> {
                Api::list_complaints(self, request).await
            }

            async fn get_complaint_sla(
                &self,
                request: Request<api::GetComplaintSlaRequest>,
            ) -> Result<Response<api::ComplaintSla>, Status> {
                Api::get_complaint_sla(self, request).await
            }

            async fn list_clocks(
                &self,
                request: Request<api::ListClocksRequest>,
            ) -> Result<Response<api::ListClocksResponse>, Status> {
                Api::list_clocks(self, request).await
            }

            async fn get_board(
                &self,
                request: Request<api::GetBoardRequest>,
            ) -> Result<Response<api::Board>, Status> {
                Api::get_board(self, request).await
            }

            async fn list_regulator_queue(
                &self,
                request: Request<api::ListRegulatorQueueRequest>,
            ) -> Result<Response<api::ListRegulatorQueueResponse>, Status> {
                Api::list_regulator_queue(self, request).await
            }

            async fn lease_regulator_queue_item(
                &self,
                request: Request<api::LeaseRegulatorQueueItemRequest>,
            ) -> Result<Response<api::QueueItem>, Status> {
                Api::lease_regulator_queue_item(self, request).await
            }

            async fn acknowledge_regulator_queue_item(
                &self,
                request: Request<api::AcknowledgeRegulatorQueueItemRequest>,
            ) -> Result<Response<api::QueueItem>, Status> {
                Api::acknowledge_regulator_queue_item(self, request).await
            }

            type WatchSlaStream = SlaTransitions;

            async fn watch_sla(
                &self,
                request: Request<api::WatchSlaRequest>,
            ) -> Result<Response<SlaTransitions>, Status> {
                Api::watch_sla(self, request).await
            }

            $(
                async fn $method(&self, request: Request<$request>) -> Result<Response<api::Complaint>, Status> {
                    self.step(request).await
                }
            )*
        }
    };
}

service! {
    acknowledge_complaint(api::AcknowledgeComplaintRequest),
    decline_complaint(api::DeclineComplaintRequest),
    merge_complaint(api::MergeComplaintRequest),
    assign_complaint(api::AssignComplaintRequest),
    classify_complex(api::ClassifyComplexRequest),
    record_findings(api::RecordFindingsRequest),
    propose_redress(api::ProposeRedressRequest),
    answer_complaint(api::AnswerComplaintRequest),
    send_holding_response(api::SendHoldingResponseRequest),
    request_extension(api::RequestExtensionRequest),
    approve_extension(api::ApproveExtensionRequest),
    pause_clock(api::PauseClockRequest),
    resume_clock(api::ResumeClockRequest),
    add_new_facts(api::AddNewFactsRequest),
    withdraw_complaint(api::WithdrawComplaintRequest),
    request_review(api::RequestReviewRequest),
    record_satisfaction(api::RecordSatisfactionRequest),
    answer_review(api::AnswerReviewRequest),
    refer_to_regulator(api::ReferToRegulatorRequest),
    record_regulator_outcome(api::RecordRegulatorOutcomeRequest),
    close_complaint(api::CloseComplaintRequest),
    reopen_complaint(api::ReopenComplaintRequest),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_page_ends_at_its_size_or_before_its_byte_budget() {
        let mut v = Violations::default();
        let page = QueuePage::parse(&mut v, 3, "");
        assert!(v.is_empty());
        assert!(!page.full(2, 300, 100));
        assert!(page.full(3, 300, 100), "three items of three");
        let large = QueuePage::parse(&mut v, 0, "");
        assert_eq!(large.size, DEFAULT_QUEUE_PAGE_SIZE);
        assert!(
            !large.full(10, QUEUE_PAGE_BYTES - 100, 100),
            "exactly the budget"
        );
        assert!(large.full(10, QUEUE_PAGE_BYTES - 100, 101), "one byte over");
        assert!(
            !large.full(0, 0, QUEUE_PAGE_BYTES * 2),
            "one item always goes"
        );
        let most = QueuePage::parse(&mut v, i32::MAX, "");
        assert_eq!(most.size, MAX_QUEUE_PAGE_SIZE);
        assert!(v.is_empty());
    }
}
