//! The `complaints.audit.v1.AuditService` implementation: replay, digests, verification
//! and views of past moments. Every call needs the auditor role ([`crate::authz`]).

use std::sync::Arc;

use complaints_events::export;
use complaints_events::personal::KeyStore;
use complaints_projections::board::SlaBoard;
use complaints_proto::complaints::audit::v1 as audit;
use complaints_proto::complaints::audit::v1::audit_service_server::AuditService;
use complaints_proto::complaints::v1 as api;
use complaints_workflow::as_of::{self, AsOfError, RulesAt, RulesChoice};
use complaints_workflow::Workflow;
use eventlog::audit::{Digest, HeldDigest, Outcome, Signer, Verifier};
use eventlog::{Direction, EventLog, Position, RecordedEvent, StoredRecord, StreamId, Timestamp};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::convert::{self, Violations};
use crate::errors;
use crate::service::{board_out, queue_out, sla_view, QueuePage};

/// Events a stream buffers ahead of a slow client; past this the server stops reading.
const STREAM_BUFFER: usize = 64;
/// Records read from the log per page.
const PAGE: usize = 1024;

/// The audit service.
#[derive(Clone)]
pub struct Audit {
    workflow: Workflow,
    /// The board, whose rules are today's (for "today's rules applied to the past").
    board: Arc<SlaBoard>,
    signer: Option<Arc<Signer>>,
    /// A log served read-only: the damage found when it was opened.
    damage: Option<Arc<eventlog::Error>>,
    /// The business's time zone: the day of a past board's `due_today`.
    zone: jiff::tz::TimeZone,
    /// Checkpoints of the board and queue along the log, where views of the past start.
    checkpoints: Option<complaints_projections::checkpoint::Checkpoints>,
}

fn log_error(e: eventlog::Error) -> Status {
    errors::status(e.into())
}

fn as_of_error(e: AsOfError) -> Status {
    match e {
        AsOfError::Log(e) => log_error(e),
        AsOfError::Decode(e) => errors::status(e.into()),
        rules @ AsOfError::Rules { .. } => Status::internal(rules.to_string()),
    }
}

fn micros(t: jiff::Timestamp) -> Timestamp {
    Timestamp::from_micros(t.as_microsecond())
}

impl Audit {
    pub fn new(workflow: Workflow, board: Arc<SlaBoard>, signer: Option<Arc<Signer>>) -> Self {
        Self {
            workflow,
            board,
            signer,
            damage: None,
            zone: jiff::tz::TimeZone::UTC,
            checkpoints: None,
        }
    }

    /// Views of the past start from these checkpoints (the projections write them).
    #[must_use]
    pub fn with_checkpoints(
        mut self,
        checkpoints: Option<complaints_projections::checkpoint::Checkpoints>,
    ) -> Self {
        self.checkpoints = checkpoints;
        self
    }

    /// Serving a log opened read-only with `damage`: verification reports it.
    #[must_use]
    pub fn with_damage(mut self, damage: Option<eventlog::Error>) -> Self {
        self.damage = damage.map(Arc::new);
        self
    }

    /// Counts a past board's `due_today` in `zone` (UTC by default).
    #[must_use]
    pub fn with_business_time_zone(mut self, zone: jiff::tz::TimeZone) -> Self {
        self.zone = zone;
        self
    }

    fn log(&self) -> &Arc<dyn EventLog> {
        self.workflow.log()
    }

    /// The rules a past view uses: those recorded as in force at `at`, or today's.
    async fn rules_at(&self, at: Timestamp, choice: i32) -> Result<RulesAt, Status> {
        let choice = match audit::RulesChoice::try_from(choice) {
            Ok(audit::RulesChoice::Current) => RulesChoice::Current,
            Ok(audit::RulesChoice::Unspecified | audit::RulesChoice::AsRecorded) => {
                RulesChoice::AsRecorded
            }
            Err(_) => {
                let mut v = Violations::default();
                v.add("rules", "must be one of the listed values");
                return Err(errors::invalid(v.0));
            }
        };
        as_of::rules_at(&**self.log(), at, choice, self.board.engine())
            .await
            .map_err(as_of_error)
    }

    fn as_of(v: &mut Violations, t: Option<prost_types::Timestamp>) -> Option<jiff::Timestamp> {
        if t.is_none() {
            v.add("as_of", "is required");
        }
        convert::timestamp(v, "as_of", t)
    }

    pub async fn stream_events(
        &self,
        request: Request<audit::StreamEventsRequest>,
    ) -> Result<Response<ReceiverStream<Result<audit::AuditEvent, Status>>>, Status> {
        let principal = crate::authz::principal(&request)?;
        let r = request.into_inner();
        let mut v = Violations::default();
        let complaint = if r.complaint.is_empty() {
            None
        } else {
            convert::complaint_name(&mut v, "complaint", &r.complaint)
        };
        let from_time = convert::timestamp(&mut v, "from_time", r.from_time);
        let json = match audit::EventFormat::try_from(r.format) {
            Ok(audit::EventFormat::Json) => true,
            Ok(_) => false,
            Err(_) => {
                v.add("format", "must be one of the listed values");
                false
            }
        };
        if !v.is_empty() {
            return Err(errors::invalid(v.0));
        }
        let log = self.log().clone();
        let from = match from_time {
            Some(t) => as_of::first_position_at_or_after(&*log, micros(t))
                .await
                .map_err(log_error)?
                .max(r.from_position),
            None => r.from_position.max(1),
        };
        let filter = Filter {
            stream: complaint.map(|c| StreamId::new(c.stream()).expect("valid stream id")),
            types: r.event_types,
            json,
            // Personal fields in the clear only for the personal_data grant (JSON only:
            // the stored form is what the chain covers, sealed).
            keys: self
                .workflow
                .keys()
                .filter(|_| crate::authz::sees_personal_data(&principal))
                .cloned(),
        };
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        tokio::spawn(pump(log, from, r.follow, filter, tx));
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    pub async fn get_digest(
        &self,
        _request: Request<audit::GetDigestRequest>,
    ) -> Result<Response<audit::Digest>, Status> {
        let digest = Digest::of_log(&**self.log()).await.map_err(log_error)?;
        let held = match &self.signer {
            Some(signer) => {
                let now = self.workflow.clock().now();
                HeldDigest::Signed(signer.sign(digest, now))
            }
            None => HeldDigest::Plain(digest),
        };
        Ok(Response::new(audit::Digest {
            position: digest.position,
            head_hash: digest.head.to_hex(),
            signed: matches!(held, HeldDigest::Signed(_)),
            json: held.to_json(),
        }))
    }

    pub async fn verify(
        &self,
        request: Request<audit::VerifyRequest>,
    ) -> Result<Response<ReceiverStream<Result<audit::VerifyProgress, Status>>>, Status> {
        let r = request.into_inner();
        let mut v = Violations::default();
        let mut keys = Vec::new();
        for (i, text) in r.trusted_keys.iter().enumerate() {
            match eventlog::audit::public_key_from_text(text) {
                Ok(key) => keys.push(key),
                Err(e) => v.add(format!("trusted_keys[{i}]"), e),
            }
        }
        if keys.is_empty() {
            keys.extend(self.signer.as_ref().map(|s| s.verifying_key()));
        }
        let start = if r.start_after.is_empty() {
            eventlog::audit::Digest::EMPTY
        } else {
            match HeldDigest::from_json(&r.start_after) {
                Ok(d) => d.digest(),
                Err(e) => {
                    v.add("start_after", e);
                    eventlog::audit::Digest::EMPTY
                }
            }
        };
        let mut verifier = Verifier::starting_after(start).trusting(keys);
        for (i, text) in r.held_digests.iter().enumerate() {
            match HeldDigest::from_json(text) {
                Ok(d) => verifier = verifier.holding(d),
                Err(e) => v.add(format!("held_digests[{i}]"), e),
            }
        }
        if !v.is_empty() {
            return Err(errors::invalid(v.0));
        }
        let log = self.log().clone();
        let damage = self.damage.clone();
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(async move {
            let result = walk(&*log, verifier, &tx)
                .await
                .map(|report| with_damage(report, damage.as_deref()));
            let message = result.map(|report| audit::VerifyProgress {
                position: report.digest.position,
                head: report.digest.position,
                report: Some(report_out(&report)),
            });
            let _ = tx.send(message).await;
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    pub async fn get_complaint_as_of(
        &self,
        request: Request<audit::GetComplaintAsOfRequest>,
    ) -> Result<Response<audit::ComplaintAsOf>, Status> {
        let principal = crate::authz::principal(&request)?;
        let r = request.into_inner();
        let mut v = Violations::default();
        let id = convert::complaint_name(&mut v, "name", &r.name);
        let at = Self::as_of(&mut v, r.as_of);
        let (Some(id), Some(at), true) = (id, at, v.is_empty()) else {
            return Err(errors::invalid(v.0));
        };
        let rules = self.rules_at(micros(at), r.rules).await?;
        let read = self
            .workflow
            .get_as_of(id, micros(at))
            .await
            .map_err(errors::status)?;
        let (complaint, version) = (&read.complaint, read.version);
        let position = as_of::position_at(&**self.log(), micros(at))
            .await
            .map_err(log_error)?;
        Ok(Response::new(audit::ComplaintAsOf {
            complaint: Some(convert::complaint_for(
                complaint,
                version,
                read.personal,
                crate::authz::sees_personal_data(&principal),
            )),
            sla: Some(sla_view(&rules.engine, complaint, version, at)?),
            position,
            rules: rules.description,
        }))
    }

    pub async fn get_board_as_of(
        &self,
        request: Request<audit::GetBoardAsOfRequest>,
    ) -> Result<Response<api::Board>, Status> {
        let r = request.into_inner();
        let mut v = Violations::default();
        let Some(at) = Self::as_of(&mut v, r.as_of).filter(|_| v.is_empty()) else {
            return Err(errors::invalid(v.0));
        };
        // Replayed (from the last checkpoint before it, or the start) as the projection
        // saw it: recorded rules switch in as their events come by (from those in force
        // at the start).
        let rules = self.rules_at(Timestamp::from_micros(0), r.rules).await?;
        let board =
            as_of::board_as_of(&**self.log(), micros(at), &rules, self.checkpoints.as_ref())
                .await
                .map_err(as_of_error)?;
        let out = board_out(&board.view, at, &self.zone);
        // A whole board of the past (a million complaints at ten years) takes a while to
        // free: not on the caller's time.
        tokio::task::spawn_blocking(move || drop(board));
        Ok(Response::new(out))
    }

    pub async fn list_regulator_queue_as_of(
        &self,
        request: Request<audit::ListRegulatorQueueAsOfRequest>,
    ) -> Result<Response<api::ListRegulatorQueueResponse>, Status> {
        let r = request.into_inner();
        let mut v = Violations::default();
        let at = Self::as_of(&mut v, r.as_of);
        let page = QueuePage::parse(&mut v, r.page_size, &r.page_token);
        let Some(at) = at.filter(|_| v.is_empty()) else {
            return Err(errors::invalid(v.0));
        };
        let queue = as_of::queue_as_of(&**self.log(), micros(at), self.checkpoints.as_ref())
            .await
            .map_err(as_of_error)?;
        Ok(Response::new(queue_out(&queue.view, at, None, &[], page)))
    }

    pub async fn list_backdated_entries(
        &self,
        request: Request<audit::ListBackdatedEntriesRequest>,
    ) -> Result<Response<audit::ListBackdatedEntriesResponse>, Status> {
        use complaints_workflow::backdated;
        let r = request.into_inner();
        let mut v = Violations::default();
        let min_delay = match r.min_delay {
            None => jiff::SignedDuration::from_hours(24),
            Some(d) if d.seconds < 0 || d.nanos < 0 || d.nanos > 999_999_999 => {
                v.add("min_delay", "must be a duration of zero or more");
                jiff::SignedDuration::ZERO
            }
            Some(d) => jiff::SignedDuration::new(d.seconds, d.nanos),
        };
        let recorded_from = convert::timestamp(&mut v, "record_from", r.record_from);
        let recorded_to = convert::timestamp(&mut v, "record_to", r.record_to);
        if !v.is_empty() {
            return Err(errors::invalid(v.0));
        }
        let query = backdated::Query {
            min_delay,
            recorded_from,
            recorded_to,
            unit: Some(r.unit).filter(|u| !u.is_empty()),
        };
        let report = backdated::backdated(&**self.log(), &query)
            .await
            .map_err(as_of_error)?;
        let duration = |d: jiff::SignedDuration| prost_types::Duration {
            seconds: d.as_secs(),
            nanos: d.subsec_nanos(),
        };
        let totals = |t: &[backdated::Total]| {
            t.iter()
                .map(|t| audit::BackdatedTotal {
                    key: t.key.clone(),
                    entries: t.entries,
                    max_delay: Some(duration(t.max_delay)),
                })
                .collect()
        };
        Ok(Response::new(audit::ListBackdatedEntriesResponse {
            entries: report
                .entries
                .iter()
                .map(|e| audit::BackdatedEntry {
                    complaint: e.complaint.name(),
                    position: e.position,
                    event_type: e.event_type.to_owned(),
                    effective_time: Some(convert::to_timestamp(e.effective)),
                    record_time: Some(convert::to_timestamp(e.recorded)),
                    delay: Some(duration(e.delay())),
                    actor: e.actor.clone(),
                    unit: e.unit.clone(),
                    handler: e.handler.clone(),
                    backdating_reason: e.reason.clone().unwrap_or_default(),
                })
                .collect(),
            by_unit: totals(&report.by_unit),
            by_handler: totals(&report.by_handler),
            position: report.position,
        }))
    }
}

/// When a complaint event's step happened, if it says so (before it was recorded).
fn effective_time(record: &RecordedEvent) -> Option<prost_types::Timestamp> {
    if !record.event_type.starts_with("complaint.") {
        return None;
    }
    match complaints_events::Stored::decode(record).ok()? {
        complaints_events::Stored::Complaint { event, .. } => {
            event.effective.map(|e| convert::to_timestamp(e.at))
        }
        _ => None,
    }
}

struct Filter {
    stream: Option<StreamId>,
    types: Vec<String>,
    json: bool,
    keys: Option<Arc<dyn KeyStore>>,
}

impl Filter {
    fn admits(&self, record: &RecordedEvent) -> bool {
        self.stream.as_ref().is_none_or(|s| &record.stream == s)
            && (self.types.is_empty() || self.types.contains(&record.event_type))
    }

    fn render(&self, stored: &StoredRecord, record: &RecordedEvent) -> audit::AuditEvent {
        let hash = stored.hash();
        audit::AuditEvent {
            position: record.position,
            stream_id: record.stream.as_str().to_owned(),
            version: record.version,
            event_type: record.event_type.clone(),
            recorded_at: jiff::Timestamp::from_microsecond(record.recorded_at.as_micros())
                .ok()
                .map(convert::to_timestamp),
            actor: record.actor.clone(),
            hash: hash.0.to_vec().into(),
            prev_hash: record.prev_hash.0.to_vec().into(),
            effective_time: effective_time(record),
            body: Some(if self.json {
                audit::audit_event::Body::Json(export::event_line(
                    record,
                    hash,
                    self.keys.as_deref(),
                ))
            } else {
                audit::audit_event::Body::Stored(stored.bytes.clone())
            }),
        }
    }
}

/// Reads the log from `from` and sends what the filter admits; waits on the channel when
/// the client is slow (so nothing piles up), and for new events when following.
async fn pump(
    log: Arc<dyn EventLog>,
    mut from: Position,
    follow: bool,
    filter: Filter,
    tx: mpsc::Sender<Result<audit::AuditEvent, Status>>,
) {
    let mut heads = log.watch_head();
    loop {
        let page = match page_for(&*log, from, &filter).await {
            Ok(page) => page,
            Err(e) => {
                let _ = tx.send(Err(log_error(e))).await;
                return;
            }
        };
        match page {
            Page::Records { records, next } => {
                for (stored, record) in records {
                    if filter.admits(&record)
                        && tx.send(Ok(filter.render(&stored, &record))).await.is_err()
                    {
                        return; // the client went away
                    }
                }
                from = next;
            }
            Page::End => {
                if !follow {
                    return;
                }
                tokio::select! {
                    changed = heads.wait_for(|head| *head >= from) => {
                        if changed.is_err() { return; }
                    }
                    _ = tx.closed() => return,
                }
            }
        }
    }
}

enum Page {
    Records {
        records: Vec<(StoredRecord, RecordedEvent)>,
        next: Position,
    },
    End,
}

/// The next page of records from `from`: one complaint's stream positions when filtering
/// by complaint (no scan of the whole log), else the global log.
async fn page_for(log: &dyn EventLog, from: Position, filter: &Filter) -> eventlog::Result<Page> {
    if let Some(stream) = &filter.stream {
        // Versions of the stream at or after `from`, found through the stream index.
        let events = log
            .read_stream(stream, 1, Direction::Forward, usize::MAX)
            .await?;
        let mut records = Vec::new();
        for event in events.into_iter().filter(|e| e.position >= from).take(PAGE) {
            if let Some(stored) = log.read_stored(event.position, 1).await?.pop() {
                records.push((stored, event));
            }
        }
        return Ok(match records.last() {
            Some((_, last)) => {
                let next = last.position + 1;
                Page::Records { records, next }
            }
            None => Page::End,
        });
    }
    let stored = log.read_stored(from, PAGE).await?;
    let Some(next) = stored.last().map(|s| s.position + 1) else {
        return Ok(Page::End);
    };
    let records = stored
        .into_iter()
        .map(|s| {
            let record = s.decode()?;
            Ok((s, record))
        })
        .collect::<eventlog::Result<Vec<_>>>()?;
    Ok(Page::Records { records, next })
}

/// Walks the whole log through the verifier, sending progress after each page.
async fn walk(
    log: &dyn EventLog,
    mut verifier: Verifier,
    tx: &mpsc::Sender<Result<audit::VerifyProgress, Status>>,
) -> Result<eventlog::audit::Report, Status> {
    let head = log.head().await.map_err(log_error)?;
    let mut from = verifier.first_position();
    while from <= head {
        let page = log
            .read_stored(from, PAGE.min((head - from + 1) as usize))
            .await;
        match page {
            Ok(page) if page.is_empty() => break,
            Ok(page) => {
                from = page.last().map_or(from, |r| r.position + 1);
                verifier.check_all(&page);
            }
            Err(e) => {
                verifier.storage_error(&e);
                break;
            }
        }
        let progress = audit::VerifyProgress {
            position: from - 1,
            head,
            report: None,
        };
        if tx.send(Ok(progress)).await.is_err() {
            return Err(Status::cancelled("the client went away"));
        }
    }
    Ok(verifier.finish())
}

/// A walk of a log served read-only, which ends where the damage found at open starts:
/// not intact, whatever the walk saw of the records before it.
fn with_damage(
    mut report: eventlog::audit::Report,
    damage: Option<&eventlog::Error>,
) -> eventlog::audit::Report {
    use eventlog::audit::{Break, BreakKind};
    if let (Outcome::Intact, Some(eventlog::Error::Corruption { position, reason })) =
        (&report.outcome, damage)
    {
        let kind = if reason.starts_with("missing") {
            BreakKind::Missing
        } else {
            BreakKind::Altered
        };
        report.outcome = Outcome::Broken(Break {
            position: *position,
            kind,
            detail: format!("found when the log was opened: {reason}"),
        });
    }
    report
}

fn report_out(report: &eventlog::audit::Report) -> audit::VerifyReport {
    let mut out = audit::VerifyReport {
        intact: report.outcome == Outcome::Intact,
        position: report.digest.position,
        head_hash: report.digest.head.to_hex(),
        records: report.records,
        signed_digests: report.signed_digests,
        held_digests_matched: report.held_digests_matched,
        summary: report.to_string(),
        ..Default::default()
    };
    if let Outcome::Broken(b) = &report.outcome {
        out.break_position = b.position;
        out.break_kind = serde_json::to_value(b.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        out.break_detail = b.detail.clone();
    }
    out
}

#[tonic::async_trait]
impl AuditService for Audit {
    type StreamEventsStream = ReceiverStream<Result<audit::AuditEvent, Status>>;
    type VerifyStream = ReceiverStream<Result<audit::VerifyProgress, Status>>;

    async fn stream_events(
        &self,
        request: Request<audit::StreamEventsRequest>,
    ) -> Result<Response<Self::StreamEventsStream>, Status> {
        Audit::stream_events(self, request).await
    }

    async fn get_digest(
        &self,
        request: Request<audit::GetDigestRequest>,
    ) -> Result<Response<audit::Digest>, Status> {
        Audit::get_digest(self, request).await
    }

    async fn verify(
        &self,
        request: Request<audit::VerifyRequest>,
    ) -> Result<Response<Self::VerifyStream>, Status> {
        Audit::verify(self, request).await
    }

    async fn get_complaint_as_of(
        &self,
        request: Request<audit::GetComplaintAsOfRequest>,
    ) -> Result<Response<audit::ComplaintAsOf>, Status> {
        Audit::get_complaint_as_of(self, request).await
    }

    async fn get_board_as_of(
        &self,
        request: Request<audit::GetBoardAsOfRequest>,
    ) -> Result<Response<api::Board>, Status> {
        Audit::get_board_as_of(self, request).await
    }

    async fn list_regulator_queue_as_of(
        &self,
        request: Request<audit::ListRegulatorQueueAsOfRequest>,
    ) -> Result<Response<api::ListRegulatorQueueResponse>, Status> {
        Audit::list_regulator_queue_as_of(self, request).await
    }

    async fn list_backdated_entries(
        &self,
        request: Request<audit::ListBackdatedEntriesRequest>,
    ) -> Result<Response<audit::ListBackdatedEntriesResponse>, Status> {
        Audit::list_backdated_entries(self, request).await
    }
}
