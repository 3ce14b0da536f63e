//! Runs complaint commands against the event log: the application layer between the pure
//! domain and the transports (gRPC, CLI). No tonic here.
//!
//! - [`Workflow`]: load a complaint's stream, decide, append; request ids make retries
//!   return the first result; an expected version gives optimistic concurrency; erasure
//!   of personal data.
//! - [`queue`]: leasing and acknowledging regulator-queue items.
//! - [`transitions`]: the watcher that records clocks crossing their at-risk and breach
//!   thresholds.
//! - [`rules`]: the SLA rules in force, recorded in the log; [`sla`]: the regimes and
//!   regions registrations may name.
//! - [`as_of`]: views of a past moment (complaint, board, queue) for auditors.
//!
//! Stored events are read and written through `complaints-events`; the projections the
//! queue and the watcher read are in `complaints-projections`.
#![forbid(unsafe_code)]

pub mod analysis;
pub mod as_of;
pub mod backdated;
pub mod queue;
pub mod reports;
pub mod rules;
pub mod sla;
pub mod transitions;

use std::collections::BTreeSet;
use std::sync::Arc;

use complaints_domain::model::{ComplaintId, Role};
use complaints_domain::{
    decide, evolve, Command, Complaint, Context, DomainError, Effective, Event, Regimes, Rules,
};
use eventlog::{Clock, Direction, EventLog, ExpectedVersion, NewEvent, Version};
use uuid::Uuid;

use complaints_events::codec;
use complaints_events::personal::{KeyStore, KeyStoreError, PersonalState};
use complaints_events::stored::{
    complaint_stream, named_stream, Erasure, ERASURES_STREAM, PERSONAL_DATA_ERASED,
};
pub use complaints_events::DecodeError;

/// Who is acting: the authenticated principal and its roles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub id: String,
    pub roles: BTreeSet<Role>,
}

/// A command for one complaint, with its request id and optional expected version.
#[derive(Debug, Clone)]
pub struct CommandRequest {
    pub complaint: ComplaintId,
    pub command: Command,
    /// Retrying with the same request id returns the first result and appends nothing;
    /// another command under a request id used before is refused
    /// ([`WorkflowError::RequestIdReused`]).
    pub request_id: Uuid,
    /// If set, the complaint must be at exactly this version.
    pub expected_version: Option<Version>,
    pub principal: Principal,
    /// When the step happened, if before now (a step outside the system only).
    pub effective: Option<Effective>,
}

/// What a command did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The complaint after the command.
    pub complaint: Complaint,
    /// Its version after the command.
    pub version: Version,
    /// True when this was a retry of an earlier request: nothing new was recorded.
    pub replayed: bool,
    /// Whether the complainant's personal fields could be read.
    pub personal: PersonalState,
}

/// Why a command or read failed.
#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    /// The domain refused the command.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// No complaint has this id.
    #[error("{0} not found")]
    NotFound(ComplaintId),
    /// A merge named a complaint to merge into that does not exist.
    #[error("{0}, the complaint to merge into, not found")]
    MergeTargetNotFound(ComplaintId),
    /// The request id was used before, on this complaint, for a different request: a
    /// retry must repeat its request exactly (like a payment API's idempotency key).
    #[error("request_id {request_id} was used for a different request on {complaint}")]
    RequestIdReused {
        request_id: Uuid,
        complaint: ComplaintId,
    },
    /// A registration named a complaint that exists already.
    #[error("{0} already exists")]
    AlreadyExists(ComplaintId),
    /// The complaint is not at the version the caller expected.
    #[error("{complaint} is at version {actual}, expected {expected}")]
    Conflict {
        complaint: ComplaintId,
        expected: Version,
        actual: Version,
    },
    /// Other writers kept changing the complaint; try again.
    #[error("{0} changed concurrently too often; try again")]
    Contended(ComplaintId),
    /// A stored event could not be read.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The event log failed.
    #[error(transparent)]
    Log(#[from] eventlog::Error),
    /// The complainant's personal data was erased: nothing new is kept about them.
    #[error("the complainant's personal data was erased; nothing new can be recorded about them")]
    PersonalDataErased,
    /// The key store failed.
    #[error("{0}")]
    KeyStore(String),
}

impl WorkflowError {
    /// A short name of what went wrong (a span's `outcome`, a bounded label).
    pub fn kind(&self) -> &'static str {
        match self {
            WorkflowError::Domain(_) => "refused",
            WorkflowError::NotFound(_) | WorkflowError::MergeTargetNotFound(_) => "not_found",
            WorkflowError::RequestIdReused { .. } => "request_id_reused",
            WorkflowError::AlreadyExists(_) => "already_exists",
            WorkflowError::Conflict { .. } | WorkflowError::Contended(_) => "conflict",
            WorkflowError::Decode(_) => "undecodable",
            WorkflowError::Log(_) => "log_failed",
            WorkflowError::PersonalDataErased => "personal_data_erased",
            WorkflowError::KeyStore(_) => "key_store_failed",
        }
    }
}

impl From<KeyStoreError> for WorkflowError {
    fn from(e: KeyStoreError) -> Self {
        match e {
            KeyStoreError::Erased(_) => WorkflowError::PersonalDataErased,
            KeyStoreError::Failed(reason) => WorkflowError::KeyStore(reason),
        }
    }
}

/// The workflow's result type.
pub type Result<T, E = WorkflowError> = std::result::Result<T, E>;

/// How often a command without an expected version is re-decided after losing a race.
const MAX_ATTEMPTS: usize = 8;

/// Namespace of the ids derived from request ids (UUID v5).
const REQUEST_NAMESPACE: Uuid = Uuid::from_u128(0x5b0c_7f4e_2d1a_4c3b_9e8f_6a5d_4c3b_2a19);

/// The id of the complaint a registration with `request_id` creates, when the caller
/// does not choose one: a retried registration finds the same complaint.
pub fn complaint_id_for(request_id: Uuid) -> ComplaintId {
    ComplaintId::new(Uuid::new_v5(&REQUEST_NAMESPACE, request_id.as_bytes()))
}

fn event_id(complaint: ComplaintId, request_id: Uuid, index: usize) -> Uuid {
    let mut name = Vec::with_capacity(40);
    name.extend_from_slice(complaint.uuid().as_bytes());
    name.extend_from_slice(request_id.as_bytes());
    name.extend_from_slice(&(index as u64).to_be_bytes());
    Uuid::new_v5(&REQUEST_NAMESPACE, &name)
}

/// One stored event of a complaint, decoded, with the request that caused it.
struct Loaded {
    version: Version,
    request_id: String,
    event: Event,
    personal: PersonalState,
}

/// A complaint as read: its state, version, and whether its personal fields could be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read {
    pub complaint: Complaint,
    pub version: Version,
    pub personal: PersonalState,
}

/// A complaint as the last command through this workflow left it, kept so that the next
/// command does not read and decode its whole stream again.
///
/// Only a hint, never an answer on its own: a command decided on it is appended at its
/// version, so the log refuses it if anything was recorded since (by another process, or
/// another workflow over the same log), and the command is decided again on a fresh read.
/// Every refusal (a version other than the caller expected, a step the state does not
/// allow) and every retried request id is confirmed on a fresh read before it is
/// answered. Personal fields read under a key that was erased since are not served: a
/// state is used only while its complainant's key still exists.
struct Current {
    version: Version,
    complaint: Option<Complaint>,
    personal: PersonalState,
    /// The request ids recorded in the stream, in order (one per command).
    requests: Vec<String>,
}

impl Current {
    fn of(loaded: &[Loaded]) -> Self {
        let mut requests: Vec<String> = Vec::new();
        for l in loaded {
            if requests.last() != Some(&l.request_id) {
                requests.push(l.request_id.clone());
            }
        }
        Current {
            version: loaded.last().map_or(0, |l| l.version),
            complaint: fold(loaded),
            personal: personal_of(loaded),
            requests,
        }
    }
}

/// How many complaints' states a workflow keeps between commands unless told otherwise
/// ([`Workflow::with_state_cache`]): well above the complaints a firm has open and
/// working at once (a few kilobytes each).
pub const DEFAULT_STATE_CACHE: usize = 8_192;

/// The kept states: quick_cache's bounded, sharded map (its eviction keeps the recently
/// and often used), so that concurrent commands on different complaints do not queue
/// on one lock.
type States = quick_cache::sync::Cache<ComplaintId, Arc<Current>>;

/// Runs commands and reads complaints.
#[derive(Clone)]
pub struct Workflow {
    log: Arc<dyn EventLog>,
    clock: Arc<dyn Clock>,
    rules: Rules,
    /// The regimes and regions registrations may use; replaced when the rules reload.
    regimes: Arc<std::sync::RwLock<Arc<Regimes>>>,
    /// Seals personal data per person when set (the service always sets it).
    keys: Option<Arc<dyn KeyStore>>,
    /// Why commands are refused, when the service is read-only.
    read_only: Option<Arc<str>>,
    /// The SLA rules whose calendars the back-dating window counts on (none: no window).
    engine: Arc<std::sync::RwLock<Option<Arc<complaints_sla::Engine>>>>,
    /// How many business days back an effective time may go without a reason and the
    /// supervisor role.
    backdating_days: u32,
    /// Complaint states kept between commands (see [`Current`]); none when disabled.
    states: Option<Arc<States>>,
}

/// The back-dating window unless configured: 5 business days.
pub const DEFAULT_BACKDATING_DAYS: u32 = 5;

impl Workflow {
    /// A workflow over `log`, taking "now" from `clock`.
    pub fn new(log: Arc<dyn EventLog>, clock: Arc<dyn Clock>, rules: Rules) -> Self {
        Self {
            log,
            clock,
            rules,
            regimes: Arc::default(),
            keys: None,
            read_only: None,
            engine: Arc::default(),
            backdating_days: DEFAULT_BACKDATING_DAYS,
            states: Some(Arc::new(States::new(DEFAULT_STATE_CACHE))),
        }
    }

    /// Keeps the states of up to `complaints` complaints between commands (0: none; every
    /// command reads its complaint's stream). Answers are the same either way.
    pub fn with_state_cache(mut self, complaints: usize) -> Self {
        self.states = (complaints > 0).then(|| Arc::new(States::new(complaints)));
        self
    }

    /// The kept state of `id`, if there is one that may still be used: its complainant's
    /// key still exists (an erasure anywhere destroys the key; the kept state would still
    /// hold what it sealed).
    fn kept(&self, id: ComplaintId) -> Option<Arc<Current>> {
        let current = self.states.as_ref()?.get(&id)?;
        let person = current
            .complaint
            .as_ref()
            .map(|c| c.registration.complainant.person_id.as_str())
            .unwrap_or_default();
        let readable = match (&self.keys, current.personal) {
            (Some(keys), PersonalState::Present) if !person.is_empty() => {
                matches!(keys.key(person, false), Ok(Some(_)))
            }
            _ => true,
        };
        if readable {
            Some(current)
        } else {
            self.forget(id);
            None
        }
    }

    fn keep(&self, id: ComplaintId, current: Current) {
        if let Some(states) = &self.states {
            states.insert(id, Arc::new(current));
        }
    }

    fn forget(&self, id: ComplaintId) {
        if let Some(states) = &self.states {
            states.remove(&id);
        }
    }

    /// The SLA rules in force: the regimes and regions registrations may use, and the
    /// calendars the back-dating window counts business days on.
    pub fn with_engine(self, engine: Arc<complaints_sla::Engine>) -> Self {
        self.set_engine(engine);
        self
    }

    /// Replaces the SLA rules (rules reloaded); every clone of this workflow sees it.
    pub fn set_engine(&self, engine: Arc<complaints_sla::Engine>) {
        self.set_regimes(sla::regimes(&engine));
        *self
            .engine
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(engine);
    }

    /// Effective times further back than `days` business days need a reason and the
    /// supervisor role (default [`DEFAULT_BACKDATING_DAYS`]).
    pub fn with_backdating_window(mut self, days: u32) -> Self {
        self.backdating_days = days;
        self
    }

    /// Refuse every command and erasure, saying `why` (a read-only service): nothing is
    /// decided, sealed or appended, so no key is made either.
    #[must_use]
    pub fn read_only(mut self, why: impl Into<String>) -> Self {
        self.read_only = Some(why.into().into());
        self
    }

    fn writable(&self) -> Result<()> {
        match &self.read_only {
            Some(why) => Err(WorkflowError::Log(eventlog::Error::ReadOnly(
                why.to_string(),
            ))),
            None => Ok(()),
        }
    }

    /// Store personal data sealed under per-person keys from `keys`, and open it on read.
    pub fn with_keys(mut self, keys: Arc<dyn KeyStore>) -> Self {
        self.keys = Some(keys);
        self
    }

    /// Only accept registrations under these regimes and regions.
    pub fn with_regimes(self, regimes: Regimes) -> Self {
        self.set_regimes(regimes);
        self
    }

    /// Replaces the regimes and regions registrations may use (rules reloaded); every
    /// clone of this workflow sees the change.
    pub fn set_regimes(&self, regimes: Regimes) {
        *self
            .regimes
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(regimes);
    }

    /// The clock "now" comes from.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The key store of personal data, if personal data is sealed.
    pub fn keys(&self) -> Option<&Arc<dyn KeyStore>> {
        self.keys.as_ref()
    }

    /// The event log.
    pub fn log(&self) -> &Arc<dyn EventLog> {
        &self.log
    }

    async fn load(&self, id: ComplaintId) -> Result<Vec<Loaded>> {
        self.load_until(id, None).await
    }

    /// The complaint's events, up to those recorded at `until` (all when `None`).
    async fn load_until(
        &self,
        id: ComplaintId,
        until: Option<eventlog::Timestamp>,
    ) -> Result<Vec<Loaded>> {
        let stream = complaint_stream(id);
        let mut out = Vec::new();
        let mut from = 1;
        loop {
            let page = self
                .log
                .read_stream(&stream, from, Direction::Forward, 512)
                .await?;
            let Some(last) = page.last() else { break };
            from = last.version + 1;
            for record in page {
                if until.is_some_and(|t| record.recorded_at > t) {
                    return Ok(out);
                }
                let (event, personal) =
                    codec::decode_with(&record.event_type, &record.payload, self.keys.as_deref())?;
                out.push(Loaded {
                    version: record.version,
                    request_id: record.correlation_id,
                    event,
                    personal,
                });
            }
        }
        Ok(out)
    }

    /// The complaint and its version.
    pub async fn get(&self, id: ComplaintId) -> Result<(Complaint, Version)> {
        let read = self.read(id).await?;
        Ok((read.complaint, read.version))
    }

    /// The complaint, its version, and whether its personal fields could be read.
    pub async fn read(&self, id: ComplaintId) -> Result<Read> {
        read_of(id, &self.load(id).await?)
    }

    /// The complaint and its version as they stood at `at`: only the events recorded at or
    /// before it. `NotFound` if it was not registered yet.
    pub async fn get_as_of(&self, id: ComplaintId, at: eventlog::Timestamp) -> Result<Read> {
        read_of(id, &self.load_until(id, Some(at)).await?)
    }

    /// Erases a person's personal data (crypto-shredding): destroys their key, so every
    /// event that holds their data keeps its bytes (the hash chain stays intact) but can
    /// never be opened again; records the erasure in the stream `erasures`. Retrying with
    /// the same request id records nothing new. Whether a key was destroyed.
    pub async fn erase_personal_data(
        &self,
        person_id: &str,
        reason: &str,
        request_id: Uuid,
        principal: &Principal,
    ) -> Result<bool> {
        self.writable()?;
        let keys = self
            .keys
            .as_ref()
            .ok_or_else(|| WorkflowError::KeyStore("no key store is configured".into()))?;
        let destroyed = keys.erase(person_id)?;
        // Kept states would be refused by their key check anyway; drop them all at once.
        if let Some(states) = &self.states {
            states.clear();
        }
        let erasure = Erasure {
            person_id: person_id.to_owned(),
            reason: reason.to_owned(),
            key_destroyed: destroyed,
        };
        let event = NewEvent {
            id: Uuid::new_v5(&REQUEST_NAMESPACE, request_id.as_bytes()),
            event_type: PERSONAL_DATA_ERASED.to_owned(),
            schema_version: 1,
            actor: principal.id.clone(),
            correlation_id: request_id.to_string(),
            causation_id: String::new(),
            payload: erasure.encode(),
        };
        let stream = named_stream(ERASURES_STREAM);
        match self
            .log
            .append(&stream, ExpectedVersion::Any, vec![event])
            .await
        {
            Ok(_) => Ok(destroyed),
            // The same request recorded before with the key then destroyed: same answer.
            Err(eventlog::Error::IdempotencyConflict { .. }) => Ok(true),
            Err(e) => Err(e.into()),
        }
    }

    /// The complaint's events, in order, with their versions.
    pub async fn history(&self, id: ComplaintId) -> Result<Vec<(Version, Event)>> {
        let loaded = self.load(id).await?;
        if loaded.is_empty() {
            return Err(WorkflowError::NotFound(id));
        }
        Ok(loaded.into_iter().map(|l| (l.version, l.event)).collect())
    }

    /// The back-dating window of `c` at `now`, if the workflow knows the SLA rules.
    fn backdating(
        &self,
        c: &Complaint,
        now: jiff::Timestamp,
    ) -> Option<complaints_domain::Backdating> {
        let engine = self
            .engine
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()?;
        let r = &c.registration;
        Some(sla::backdating(
            &engine,
            &r.regime,
            &r.region,
            now,
            self.backdating_days,
        ))
    }

    /// The context `principal`'s command is decided in now.
    fn context(&self, principal: &Principal) -> Context {
        Context {
            now: jiff::Timestamp::from_microsecond(self.clock.now().as_micros())
                .unwrap_or(jiff::Timestamp::UNIX_EPOCH),
            actor: principal.id.clone(),
            roles: principal.roles.clone(),
            rules: self.rules,
            regimes: self
                .regimes
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
            effective: None,
            backdating: None,
        }
    }

    /// The bad fields of `command` as [`Workflow::execute`] would find them, without
    /// reading or recording anything: for a transport that found bad fields of its own,
    /// so that one reply lists them all.
    pub fn field_violations(
        &self,
        command: &Command,
        effective: Option<&Effective>,
        principal: &Principal,
    ) -> Vec<complaints_domain::FieldViolation> {
        let mut ctx = self.context(principal);
        ctx.effective = effective.cloned();
        complaints_domain::field_violations(command, &ctx)
    }

    /// Runs a command: decides on the current state and appends the events, durably.
    #[tracing::instrument(skip_all, fields(complaint_id = %request.complaint, command = request.command.name(), outcome = tracing::field::Empty))]
    pub async fn execute(&self, request: CommandRequest) -> Result<Outcome> {
        let result = self.execute_once_decided(request).await;
        let outcome = match &result {
            Ok(o) if o.replayed => "replayed",
            Ok(_) => "recorded",
            Err(e) => e.kind(),
        };
        tracing::Span::current().record("outcome", outcome);
        result
    }

    async fn execute_once_decided(&self, request: CommandRequest) -> Result<Outcome> {
        self.writable()?;
        let id = request.complaint;
        let request_key = request.request_id.to_string();
        let mut kept = self.kept(id);
        for _ in 0..MAX_ATTEMPTS {
            // The kept state, or the stream read now (`loaded`). What the kept state alone
            // would refuse or replay is read again first (see `Current`).
            let (current, loaded) = match kept.take() {
                Some(current) => (current, None),
                None => {
                    let loaded = self.load(id).await?;
                    (Arc::new(Current::of(&loaded)), Some(loaded))
                }
            };
            let version = current.version;
            if loaded.is_none() && current.requests.contains(&request_key) {
                continue;
            }
            // A retry: answer with the state as the first attempt left it, if it is the
            // same request. Compared on what was recorded (no fingerprint is stored: a
            // hash of personal fields would outlive their erasure); personal fields that
            // can no longer be read cannot be compared, and such a retry is accepted.
            let done = loaded.as_ref().and_then(|loaded| {
                loaded
                    .iter()
                    .rposition(|l| l.request_id == request_key)
                    .map(|done| (loaded, done))
            });
            if let Some((loaded, done)) = done {
                let recorded = loaded.iter().filter(|l| l.request_id == request_key);
                let mut same = true;
                for l in recorded {
                    same &= l.personal != PersonalState::Present
                        || request.command.is_recorded_as(&l.event.change);
                    same &= match &request.effective {
                        None => l.event.effective.is_none(),
                        // A time not before the recording was recorded as "now".
                        Some(e) => l.event.effective_at() == e.at.min(l.event.at),
                    };
                }
                if !same {
                    return Err(WorkflowError::RequestIdReused {
                        request_id: request.request_id,
                        complaint: id,
                    });
                }
                let read = read_of(id, &loaded[..=done])?;
                return Ok(Outcome {
                    complaint: read.complaint,
                    version: read.version,
                    replayed: true,
                    personal: read.personal,
                });
            }
            if let Some(expected) = request.expected_version {
                if expected != version {
                    if loaded.is_none() {
                        continue;
                    }
                    return Err(WorkflowError::Conflict {
                        complaint: id,
                        expected,
                        actual: version,
                    });
                }
            }
            let state = current.complaint.clone();
            match (&state, &request.command) {
                (None, command) if !matches!(command, Command::Register(_)) => {
                    return Err(WorkflowError::NotFound(id));
                }
                (Some(_), Command::Register(_)) => return Err(WorkflowError::AlreadyExists(id)),
                _ => {}
            }
            let mut ctx = self.context(&request.principal);
            ctx.effective = request.effective.clone();
            if let (Some(_), Some(c)) = (&ctx.effective, &state) {
                ctx.backdating = self.backdating(c, ctx.now);
            }
            let events = match decide(state.as_ref(), request.command.clone(), &ctx) {
                Ok(events) => events,
                Err(_) if loaded.is_none() => continue,
                Err(e) => return Err(e.into()),
            };
            if let Command::Merge { into, .. } = &request.command {
                // Checked when the merge is decided: the target may change afterwards
                // (a later merge of it is refused by the same rule the other way round).
                let target = fold(&self.load(*into).await?)
                    .ok_or(WorkflowError::MergeTargetNotFound(*into))?;
                complaints_domain::check_merge_target(&target)?;
            }
            if let (Some(keys), Command::Register(r)) = (&self.keys, &request.command) {
                let person = r.complainant.person_id.clone();
                if !person.is_empty() {
                    // A person's first key is made durable (three syncs): off the async
                    // workers, where the key store commits it together with the others
                    // asked for meanwhile. Sealing below then finds it.
                    let keys = keys.clone();
                    tokio::task::spawn_blocking(move || keys.key(&person, true))
                        .await
                        .map_err(|e| WorkflowError::KeyStore(format!("making a key: {e}")))??;
                }
            }
            let complainant = state
                .as_ref()
                .map(|c| c.registration.complainant.person_id.clone())
                .unwrap_or_default();
            let sealing = match &self.keys {
                Some(keys) => codec::Sealing::Sealed {
                    keys: &**keys,
                    person_id: &complainant,
                },
                None => codec::Sealing::Plain,
            };
            let new: Vec<NewEvent> = events
                .iter()
                .enumerate()
                .map(|(i, event)| {
                    let (event_type, payload) = codec::encode_with(event, sealing)?;
                    Ok(NewEvent {
                        id: event_id(id, request.request_id, i),
                        event_type: event_type.to_owned(),
                        schema_version: codec::SCHEMA_VERSION,
                        actor: request.principal.id.clone(),
                        correlation_id: request_key.clone(),
                        causation_id: String::new(),
                        payload,
                    })
                })
                .collect::<Result<_>>()?;
            let expected = if version == 0 {
                ExpectedVersion::NoStream
            } else {
                ExpectedVersion::Exact(version)
            };
            match self.log.append(&complaint_stream(id), expected, new).await {
                // Recorded before under the same event ids, unseen by the kept state: the
                // read of the stream answers it as a retry.
                Ok(result) if result.deduplicated && loaded.is_none() => {
                    self.forget(id);
                    continue;
                }
                Ok(result) => {
                    let complaint = events
                        .iter()
                        .fold(state, evolve)
                        .ok_or(WorkflowError::NotFound(id))?;
                    // What the new events sealed is readable: their key was at hand.
                    let personal = current.personal;
                    if result.deduplicated {
                        self.forget(id);
                    } else {
                        let mut requests = current.requests.clone();
                        requests.push(request_key.clone());
                        self.keep(
                            id,
                            Current {
                                version: result.last_version,
                                complaint: Some(complaint.clone()),
                                personal,
                                requests,
                            },
                        );
                    }
                    return Ok(Outcome {
                        complaint,
                        version: result.last_version,
                        replayed: result.deduplicated,
                        personal,
                    });
                }
                // Someone else changed the complaint (or the same request raced itself):
                // load again; the checks above settle it.
                Err(eventlog::Error::WrongExpectedVersion { .. })
                | Err(eventlog::Error::IdempotencyConflict { .. }) => {
                    self.forget(id);
                    continue;
                }
                Err(e) => {
                    self.forget(id);
                    return Err(e.into());
                }
            }
        }
        Err(WorkflowError::Contended(id))
    }
}

fn read_of(id: ComplaintId, loaded: &[Loaded]) -> Result<Read> {
    let version = loaded.last().map_or(0, |l| l.version);
    let complaint = fold(loaded).ok_or(WorkflowError::NotFound(id))?;
    Ok(Read {
        complaint,
        version,
        personal: personal_of(loaded),
    })
}

/// Whether the personal fields of a complaint's events could all be read.
fn personal_of(loaded: &[Loaded]) -> PersonalState {
    loaded
        .iter()
        .fold(PersonalState::Present, |s, l| s.worst(l.personal))
}

fn fold(loaded: &[Loaded]) -> Option<Complaint> {
    loaded.iter().map(|l| &l.event).fold(None, evolve)
}
