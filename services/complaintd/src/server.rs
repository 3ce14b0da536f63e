//! Starting and stopping the server: open the log, start the projections, serve gRPC
//! (with health and reflection) until told to stop, then close the log.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use complaints_domain::Rules;
use complaints_projections::board::SlaBoard;
use complaints_projections::snapshot::{SnapshotError, SnapshotStore, Unanchored};
use complaints_projections::Projections;
use complaints_proto::complaints::admin::v1::admin_service_server::AdminServiceServer;
use complaints_proto::complaints::audit::v1::audit_service_server::AuditServiceServer;
use complaints_proto::complaints::reports::v1::report_service_server::ReportServiceServer;

use crate::reports::ReportApi;
use complaints_proto::complaints::v1::complaint_service_server::ComplaintServiceServer;
use complaints_sla::{Engine, RuleSources};
use complaints_storage::Backend;
use complaints_workflow::{rules, Workflow};
use eventlog::audit::Signer;
use eventlog::{Clock, EventLog, SystemClock};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::server::TcpIncoming;

use crate::admin::Admin;
use crate::audit::Audit;
use crate::auth::{Authenticator, CertificateRoles, DevHeaders, JwtVerifier, Verified};
use crate::authz::AuthLayer;
use crate::config::{AuthMode, Config, LogBackend, NatsMode, NatsPayload};
use crate::service::Api;

/// The actor of the events the service records on its own (rules, signed digests).
pub const SERVICE_ACTOR: &str = "service:complaintd";

/// A running server.
pub struct Running {
    /// The address it listens on (the real port when configured with port 0).
    pub addr: SocketAddr,
    /// The HTTP port's address (web board, metrics, health), if it has one.
    pub http_addr: Option<SocketAddr>,
    ready: tokio::sync::watch::Receiver<bool>,
    /// The log's history check: `None` while it runs, then the damage it found, if any.
    history: tokio::sync::watch::Receiver<Option<Option<eventlog::Error>>>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
    config: Config,
    log: Arc<dyn EventLog>,
    workflow: Workflow,
    projections: Arc<Projections>,
}

impl Running {
    /// Loads the calendar and policy files again (SIGHUP). If they changed, records them
    /// in the log: the SLA board recomputes every complaint when it reaches that event,
    /// and registrations accept the new regimes. Returns the position of the recorded
    /// change, if there was one. Invalid files change nothing and are reported.
    pub async fn reload_rules(&self) -> anyhow::Result<Option<eventlog::Position>> {
        let (sources, engine) = sla_rules(&self.config)?;
        let recorded = rules::record_if_changed(&*self.log, &sources, SERVICE_ACTOR)
            .await
            .context("recording the SLA rules in the log")?;
        self.workflow.set_engine(Arc::new(engine));
        match recorded {
            Some(position) => tracing::info!(position, "SLA rules reloaded: changed, recorded"),
            None => tracing::info!("SLA rules reloaded: unchanged"),
        }
        Ok(recorded)
    }

    /// Where the projections started reading the log: 1 if they rebuilt from it, the
    /// position after their snapshot if they restored one (`None` until decided).
    pub fn projections_started_from(&self) -> Option<eventlog::Position> {
        self.projections.started_from()
    }

    /// Waits until the server is ready: its projections have applied the log as it
    /// stood at start (what `/readyz` and gRPC health report).
    pub async fn ready(&self) {
        let mut ready = self.ready.clone();
        let _ = ready.wait_for(|r| *r).await;
    }

    /// Waits for the log's check of the history behind its index checkpoint (sled; at
    /// once for other backends, or when the server stops first): the damage it found.
    pub async fn history_checked(&self) -> Option<eventlog::Error> {
        let mut history = self.history.clone();
        let found = history.wait_for(Option::is_some).await;
        found.ok().and_then(|f| f.clone()).flatten()
    }

    /// Whether it is ready now.
    pub fn is_ready(&self) -> bool {
        *self.ready.borrow()
    }

    /// Each projection's name and the last log position it applied.
    pub fn projection_positions(&self) -> Vec<(&'static str, eventlog::Position)> {
        self.projections.positions()
    }

    /// Stops accepting calls, lets the ones in flight finish, and closes the log.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.task.await.context("server task")?
    }
}

/// The built-in calendars and regimes with the operator's files, and the engine they make.
fn sla_rules(config: &Config) -> anyhow::Result<(RuleSources, Engine)> {
    let sources = RuleSources::with_operator_dirs(
        config.calendars_dir.as_deref(),
        config.policies_dir.as_deref(),
    )
    .context("SLA rules files")?;
    let engine = sources.engine().context("SLA rules")?;
    tracing::info!(policies = ?engine.policies.ids(), "SLA policies loaded");
    Ok((sources, engine))
}

fn read(path: &std::path::Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// The configured authentication.
fn authenticator(config: &Config) -> anyhow::Result<Arc<dyn Authenticator>> {
    Ok(match config.auth {
        AuthMode::DevHeaders => {
            tracing::warn!(
                "DEVELOPMENT AUTHENTICATION: callers are trusted to name themselves in x-principal and x-roles; never use this in production"
            );
            Arc::new(DevHeaders)
        }
        AuthMode::Verified => {
            let jwt = if config.jwt_keys.is_empty() {
                None
            } else {
                let pems = config
                    .jwt_keys
                    .iter()
                    .map(|p| read(p))
                    .collect::<anyhow::Result<Vec<_>>>()?;
                Some(
                    JwtVerifier::new(
                        &pems,
                        config.jwt_issuer.as_deref().unwrap_or_default(),
                        config.jwt_audience.as_deref().unwrap_or_default(),
                    )
                    .map_err(anyhow::Error::msg)?,
                )
            };
            let certificates = config.tls_client_ca.as_ref().map(|_| CertificateRoles {
                roles: config.certificate_roles.clone(),
            });
            tracing::info!(
                bearer_tokens = jwt.is_some(),
                client_certificates = certificates.is_some(),
                "authentication: verified callers only"
            );
            Arc::new(Verified { jwt, certificates })
        }
    })
}

/// TLS for the listener, if configured: the server's identity, and the CA of client
/// certificates (optional per connection when bearer tokens are also accepted).
fn tls(config: &Config) -> anyhow::Result<Option<tonic::transport::ServerTlsConfig>> {
    use tonic::transport::{Certificate, Identity, ServerTlsConfig};
    let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) else {
        return Ok(None);
    };
    let mut tls = ServerTlsConfig::new().identity(Identity::from_pem(read(cert)?, read(key)?));
    if let Some(ca) = &config.tls_client_ca {
        tls = tls
            .client_ca_root(Certificate::from_pem(read(ca)?))
            .client_auth_optional(!config.jwt_keys.is_empty());
    }
    Ok(Some(tls))
}

/// Records a signed digest every `interval_seconds` (if anything was appended since the
/// last), and a last one when told to stop.
async fn sign_periodically(
    signer: Arc<Signer>,
    log: Arc<dyn EventLog>,
    clock: Arc<dyn Clock>,
    interval_seconds: u64,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let record = || async {
        match signer.record(&*log, SERVICE_ACTOR, clock.now()).await {
            Ok(Some(signed)) => {
                tracing::info!(position = signed.digest.position, head = %signed.digest.head, "signed digest recorded");
            }
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, "could not record a signed digest"),
        }
    };
    loop {
        let tick = async {
            if interval_seconds == 0 {
                std::future::pending::<()>().await;
            } else {
                tokio::time::sleep(std::time::Duration::from_secs(interval_seconds)).await;
            }
        };
        tokio::select! {
            _ = tick => record().await,
            _ = stop.changed() => {
                record().await;
                return;
            }
        }
    }
}

/// How `config` publishes to NATS at `url`.
fn publisher_config(config: &Config, url: &str) -> complaints_nats::PublisherConfig {
    let mut nats =
        complaints_nats::PublisherConfig::new(url, config.data_dir.join("publisher.cursor"));
    nats.subject_prefix = config.nats_subject_prefix.clone();
    nats.mode = match config.nats_mode {
        NatsMode::Jetstream => complaints_nats::Mode::JetStream {
            stream: config.nats_stream.clone(),
            duplicate_window: std::time::Duration::from_secs(120),
        },
        NatsMode::Core => complaints_nats::Mode::Core,
    };
    nats.payload = match config.nats_payload {
        NatsPayload::Protobuf => complaints_nats::Payload::Protobuf,
        NatsPayload::Json => complaints_nats::Payload::Json,
    };
    nats
}

/// Other evidence of how far the log reached, beside its own witness (the key store's is
/// checked by `complaints_storage::open`): a snapshot of the projections taken past the
/// head, a publisher cursor past it, or a JetStream stream holding a later event (or
/// another one at the same position) means the log lost records it once held. Never
/// serve or write on such a log: refuse to start.
///
/// Returns the projections' snapshot when it is usable (loaded once: the projections start
/// from it without reading the file again).
async fn refuse_if_the_log_lost_records(
    config: &Config,
    log: &dyn EventLog,
    snapshot: Result<Option<Unanchored>, SnapshotError>,
) -> anyhow::Result<Option<complaints_projections::snapshot::Snapshot>> {
    let head = log.head().await.context("reading the log's head")?;
    let store = SnapshotStore::new(config.data_dir.join("projections"));
    let anchored = match snapshot {
        Ok(read) => store.anchor(read, log).await,
        Err(e) => Err(e),
    };
    let snapshot = match anchored {
        Err(e @ SnapshotError::PastHead { .. }) => {
            anyhow::bail!("the event log is damaged: {e}; refusing to start (restore the log from a backup, or run `complaintctl admin salvage` to see what is left)");
        }
        Ok(snapshot) => snapshot,
        // Unusable: the projections' own load says why, and they rebuild.
        Err(_) => None,
    };
    let cursor = config.data_dir.join("publisher.cursor");
    let published = complaints_nats::read_cursor(&cursor)
        .with_context(|| format!("reading the publisher's cursor {}", cursor.display()))?;
    if published > head {
        anyhow::bail!(
            "the event log is damaged: the publisher's cursor {} says position {published} was published, past the log's head {head}; the first missing position is {}; refusing to start",
            cursor.display(),
            head + 1
        );
    }
    if let Some(url) = &config.nats_url {
        match complaints_nats::check_published(log, &publisher_config(config, url)).await {
            Ok(_) => {}
            Err(e @ complaints_nats::Published::Damaged(_)) => {
                anyhow::bail!("{e}; refusing to start")
            }
            // The publisher checks again whenever it connects, before publishing anything.
            Err(complaints_nats::Published::Unreachable(e)) => {
                tracing::warn!(error = %e, "cannot check what was published to NATS (the publisher checks when it connects)");
            }
        }
    }
    Ok(snapshot)
}

/// The services whose gRPC health is readiness: SERVING once the projections caught up.
async fn set_ready_services(health: &tonic_health::server::HealthReporter, ready: bool) {
    if ready {
        health.set_serving::<ComplaintServiceServer<Api>>().await;
        health.set_serving::<AuditServiceServer<Audit>>().await;
        health.set_serving::<ReportServiceServer<ReportApi>>().await;
    } else {
        health
            .set_not_serving::<ComplaintServiceServer<Api>>()
            .await;
        health.set_not_serving::<AuditServiceServer<Audit>>().await;
        health
            .set_not_serving::<ReportServiceServer<ReportApi>>()
            .await;
    }
}

/// The descriptors reflection serves: the API, health, and `google.rpc` (`Status`,
/// `BadRequest` and the other error details), so that a client with no compiled protos
/// can decode the details of an error. Both `grpc.reflection.v1` and `v1alpha` are served
/// from it: many tools (Python's grpcio-reflection, Postman, older grpcurl) speak only
/// `v1alpha`.
fn reflection_builder() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(complaints_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
}

/// How long after the log's open its history check starts at the latest, if the server
/// is not ready by then (a rebuild of the projections).
const HISTORY_CHECK_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Where `config` keeps the log and its keys.
fn backend(config: &Config) -> Backend {
    match config.log_backend {
        LogBackend::Sled => Backend::Sled {
            data_dir: config.data_dir.clone(),
            keys_dir: config.keys_dir.clone(),
            read_only: config.read_only,
            index_checkpoint_every: config.log_index_checkpoint_every,
            full_check_at_open: config.log_full_check_at_open,
            cache_bytes: config.log_cache_mib.saturating_mul(1 << 20),
            // Started once ready (see `start_with_clock`).
            defer_history_check: true,
        },
        LogBackend::Jetstream => Backend::JetStream {
            url: config.jetstream_url.clone().unwrap_or_default(),
            stream: config.jetstream_stream.clone(),
            replicas: config.jetstream_replicas,
            checkpoint: Some(config.data_dir.join("jetstream-index")),
        },
    }
}

/// Starts the server described by `config`, with the system clock.
pub async fn start(config: &Config) -> anyhow::Result<Running> {
    start_with_clock(config, Arc::new(SystemClock)).await
}

/// Starts the server with an injected clock (for tests).
pub async fn start_with_clock(config: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<Running> {
    // Installed before anything is written, so that every append is counted.
    crate::metrics::handle();
    // Checked by Config::load too; a Config built in code is checked before anything opens.
    let zone = jiff::tz::TimeZone::get(&config.business_time_zone)
        .with_context(|| format!("business_time_zone {:?}", config.business_time_zone))?;
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create {}", config.data_dir.display()))?;
    // The projections' snapshot is read and hashed beside the log's open (they are
    // independent until it is checked against the log): the two longest steps before
    // SERVING, side by side.
    let snapshot_store = SnapshotStore::new(config.data_dir.join("projections"));
    let snapshot_read = tokio::task::spawn_blocking(move || snapshot_store.read());
    let storage = complaints_storage::open(&backend(config), clock.clone()).await?;
    let snapshot_read = snapshot_read
        .await
        .context("reading the projections' snapshot")?;
    let (log, keys, damage) = (storage.log, storage.keys, storage.damage);
    let history_check = storage.history_check;
    let read_only = config.read_only;
    if read_only {
        tracing::warn!("read-only: every command is refused and nothing is written");
    }
    let snapshot = match refuse_if_the_log_lost_records(config, &*log, snapshot_read).await {
        Err(e) if read_only => {
            tracing::error!(error = %format!("{e:#}"), "serving read-only all the same");
            None
        }
        other => other?,
    };
    let auth = authenticator(config)?;
    let (sources, engine) = sla_rules(config)?;
    // Recorded before the projections start, so they compute with exactly these rules.
    let recorded = if read_only {
        None
    } else {
        rules::record_if_changed(&*log, &sources, SERVICE_ACTOR)
            .await
            .context("recording the SLA rules in the log")?
    };
    if let Some(position) = recorded {
        tracing::info!(
            position,
            "SLA rules changed since the last start: recorded; open complaints are recomputed"
        );
    }
    let engine = Arc::new(engine);
    let checkpoints = (config.as_of_checkpoint_every > 0).then(|| {
        complaints_projections::checkpoint::Checkpoints::new(
            config.data_dir.join("projections").join("as-of"),
            config.as_of_checkpoint_every,
        )
    });
    let mut projections = Projections::new(engine.clone());
    // Read-only: the checkpoints there are used, none is written.
    if let Some(checkpoints) = checkpoints.clone().filter(|_| !read_only) {
        projections = projections.with_checkpoints(checkpoints);
    }
    let projections = Arc::new(projections);
    // Read-only: rebuilt from the log, never saved (nothing is written).
    let snapshots = (config.projection_snapshot_every > 0 && !read_only)
        .then(|| SnapshotStore::new(config.data_dir.join("projections")).with_loaded(snapshot));
    let (stop_projections, projections_stopped) = tokio::sync::watch::channel(false);
    let projections_task = projections.spawn(
        log.clone(),
        snapshots,
        config.projection_snapshot_every,
        projections_stopped,
    );
    let running_projections = projections.clone();
    let board = projections.get::<SlaBoard>()?;
    let (stop_watcher, watcher_stopped) = tokio::sync::watch::channel(false);
    // The watcher records SLA crossings: not on a read-only log.
    let watcher_task = (!read_only).then(|| {
        tokio::spawn(complaints_workflow::transitions::run(
            board.clone(),
            log.clone(),
            clock.clone(),
            watcher_stopped.clone(),
        ))
    });
    let reports_projection = projections.get::<complaints_projections::reports::Reports>()?;
    // The repeated-cause rule, when configured: not on a read-only log.
    let analysis_task = (!read_only && config.repeated_cause_count > 0).then(|| {
        tokio::spawn(complaints_workflow::analysis::run(
            reports_projection.clone(),
            log.clone(),
            clock.clone(),
            complaints_workflow::reports::RepeatRule {
                count: config.repeated_cause_count,
                days: config.repeated_cause_days,
            },
            watcher_stopped.clone(),
        ))
    });
    let mut workflow = Workflow::new(log.clone(), clock.clone(), Rules::default())
        .with_keys(keys)
        .with_engine(engine.clone())
        .with_backdating_window(config.backdating_window_business_days);
    if read_only {
        workflow = workflow.read_only(match &damage {
            Some(e) => format!("the log is damaged ({e}); it is served for reading and audit only"),
            None => "it serves reading and audit only".to_owned(),
        });
    }
    let signer = match &config.audit_signing_key {
        Some(path) => {
            let pem = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let signer = Signer::from_pem(&pem).map_err(anyhow::Error::msg)?;
            tracing::info!(public_key = %eventlog::audit::hex(signer.verifying_key().as_bytes()), "signing the log's digests");
            Some(Arc::new(signer))
        }
        None => {
            tracing::warn!("no audit_signing_key: digests are not signed");
            None
        }
    };
    let (stop_signing, signing_stopped) = tokio::sync::watch::channel(false);
    let signing_task = signer.clone().filter(|_| !read_only).map(|signer| {
        tokio::spawn(sign_periodically(
            signer,
            log.clone(),
            clock.clone(),
            config.audit_sign_interval_seconds,
            signing_stopped,
        ))
    });
    let (reload_log, reload_workflow) = (log.clone(), workflow.clone());
    let reports = crate::reports::ReportApi::new(
        log.clone(),
        reports_projection,
        config.reports_mapping.clone(),
        signer.clone(),
        clock.clone(),
    );
    let audit = Audit::new(workflow.clone(), board.clone(), signer)
        .with_damage(damage)
        .with_checkpoints(checkpoints)
        .with_business_time_zone(zone.clone());
    let admin = Admin::new(workflow.keys().cloned());
    let mut api = Api::new(workflow, &projections)?.with_business_time_zone(zone);
    let publisher = match &config.nats_url {
        Some(url) if read_only => {
            tracing::warn!(%url, "read-only: not publishing to NATS");
            None
        }
        Some(url) => {
            let nats = publisher_config(config, url);
            let publisher = complaints_nats::Publisher::spawn(log.clone(), nats)
                .context("starting the NATS publisher")?;
            api = api.with_publisher(publisher.status());
            tracing::info!(%url, mode = ?config.nats_mode, "publishing events to NATS");
            Some(publisher)
        }
        None => None,
    };

    // Liveness is the server itself ("" in gRPC health, `/healthz`). Readiness (the
    // services in gRPC health, `/readyz`) waits until the projections have applied the
    // log as it stands now, so that the board's first answer is complete.
    let (health, health_service) = tonic_health::server::health_reporter();
    set_ready_services(&health, false).await;
    let (set_ready, ready) = tokio::sync::watch::channel(false);
    let set_ready = Arc::new(set_ready);
    let start_head = log.head().await.context("reading the log's head")?;
    // Set once the log's history check found damage: never ready again. The two tasks
    // below change readiness only while holding it, so neither overtakes the other.
    let damaged = Arc::new(tokio::sync::Mutex::new(false));
    let readiness = {
        let (health, projections, set_ready, damaged) = (
            health.clone(),
            projections.clone(),
            set_ready.clone(),
            damaged.clone(),
        );
        tokio::spawn(async move {
            projections.wait_for(start_head).await;
            let damaged = damaged.lock().await;
            if *damaged {
                return;
            }
            set_ready_services(&health, true).await;
            let _ = set_ready.send(true);
            tracing::info!(
                position = start_head,
                "ready: the projections have caught up"
            );
        })
    };
    // The log checks the history behind its index checkpoint after the open; damage it
    // finds makes the log refuse every call, and the server stops reporting ready.
    // The check starts once the server is ready, or HISTORY_CHECK_GRACE after this at the
    // latest: restoring the projections' snapshot, the longest step of a start, then has
    // the cores to itself (measured in docs/PERFORMANCE.md).
    let (history_found, history_seen) = tokio::sync::watch::channel(None);
    if history_check.is_none() {
        history_found.send_replace(Some(None));
    }
    let history = history_check.map(|check| {
        let mut ready = ready.clone();
        let start = check.start;
        tokio::spawn(async move {
            let _ = tokio::time::timeout(HISTORY_CHECK_GRACE, ready.wait_for(|r| *r)).await;
            start();
        });
        let (health, set_ready, damaged) = (health.clone(), set_ready.clone(), damaged.clone());
        tokio::spawn(async move {
            let outcome = check.outcome.await;
            match &outcome {
                Ok(()) => {}
                Err(e @ eventlog::Error::Corruption { .. }) => {
                    let mut damaged = damaged.lock().await;
                    *damaged = true;
                    tracing::error!(damage = %e, "the event log's history is damaged: every call is refused; not ready (restore the log from a backup, or run `complaintctl admin salvage` to see what is left)");
                    set_ready_services(&health, false).await;
                    let _ = set_ready.send(false);
                }
                Err(e) => tracing::debug!(error = %e, "the history check did not finish"),
            }
            history_found.send_replace(Some(outcome.err()));
        })
    });
    let gauges = crate::metrics::Gauges {
        log: log.clone(),
        clock: clock.clone(),
        projections: projections.clone(),
        board: board.clone(),
        publisher: publisher.as_ref().map(complaints_nats::Publisher::status),
        snapshot_file: (config.projection_snapshot_every > 0)
            .then(|| SnapshotStore::new(config.data_dir.join("projections")).path()),
        ready: ready.clone(),
    };
    let (stop_http, http_stopped) = tokio::sync::watch::channel(false);
    let http = match config.http_addr() {
        Ok(Some(http_addr)) => {
            let web = Arc::new(crate::web::Web {
                api: api.clone(),
                reports: reports.clone(),
                auth: auth.clone(),
                dev: config.auth == AuthMode::DevHeaders,
                board: board.clone(),
                log: log.clone(),
                clock: clock.clone(),
                zone_name: config.business_time_zone.clone(),
                gauges,
                ready: ready.clone(),
                catalogues: crate::web::i18n::Catalogues::load(),
                stopping: http_stopped.clone(),
            });
            let listener = tokio::net::TcpListener::bind(http_addr)
                .await
                .with_context(|| format!("cannot listen on {http_addr} (http_listen)"))?;
            let http_addr = listener.local_addr()?;
            let mut stopped = http_stopped;
            let task = tokio::spawn(async move {
                axum::serve(listener, crate::web::router(web))
                    .with_graceful_shutdown(async move {
                        let _ = stopped.wait_for(|s| *s).await;
                    })
                    .await
            });
            tracing::info!(%http_addr, "web board, /metrics, /healthz and /readyz");
            Some((http_addr, task))
        }
        Ok(None) => None,
        Err(()) => anyhow::bail!("http_listen {:?} is not an address", config.http_listen),
    };
    let http_addr = http.as_ref().map(|(addr, _)| *addr);
    let reflection = reflection_builder()
        .build_v1()
        .context("reflection service")?;
    let reflection_v1alpha = reflection_builder()
        .build_v1alpha()
        .context("reflection service (v1alpha)")?;

    let tls = tls(config)?;
    let limits = config.clone();
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let mut builder = tonic::transport::Server::builder()
            // Hostile or broken clients: bounded calls per connection, bounded call time.
            .max_concurrent_streams(limits.max_concurrent_calls_per_connection)
            .timeout(std::time::Duration::from_secs(limits.call_timeout_seconds))
            .http2_keepalive_interval(Some(std::time::Duration::from_secs(60)))
            .tcp_keepalive(Some(std::time::Duration::from_secs(60)));
        if let Some(tls) = tls {
            builder = builder.tls_config(tls).context("TLS configuration")?;
        }
        let served = builder
            // Every call counted, timed and traced, refusals included.
            .layer(crate::metrics::GrpcMetricsLayer)
            // tonic's own statuses (undecodable, over-size requests) with gRPC's codes.
            .layer(crate::transport::CodecStatusLayer)
            // Every call is authenticated and authorised here, before any service.
            .layer(AuthLayer::new(auth))
            .add_service(health_service)
            .add_service(reflection)
            .add_service(reflection_v1alpha)
            .add_service(
                ComplaintServiceServer::new(api)
                    .max_decoding_message_size(limits.max_message_bytes)
                    .max_encoding_message_size(limits.max_message_bytes.max(16 << 20)),
            )
            .add_service(
                AuditServiceServer::new(audit)
                    .max_decoding_message_size(limits.max_message_bytes)
                    .max_encoding_message_size(limits.max_message_bytes.max(16 << 20)),
            )
            .add_service(ReportServiceServer::new(reports.clone()))
            .add_service(AdminServiceServer::new(admin))
            // No Nagle: small replies must not wait for the peer's delayed ACK (~40 ms).
            .serve_with_incoming_shutdown(TcpIncoming::from(listener).with_nodelay(Some(true)), {
                let health = health.clone();
                async move {
                    let _ = stopped.await;
                    // Not ready from the moment it is told to stop, while calls in
                    // flight finish: load balancers send no more.
                    readiness.abort();
                    if let Some(history) = &history {
                        history.abort();
                    }
                    let _ = set_ready.send(false);
                    set_ready_services(&health, false).await;
                }
            })
            .await;
        // The web port: live streams end, requests in flight finish.
        let _ = stop_http.send(true);
        if let Some((_, mut task)) = http {
            // Requests in flight get a few seconds; then the port is closed regardless.
            match tokio::time::timeout(std::time::Duration::from_secs(10), &mut task).await {
                Ok(Ok(Err(e))) => tracing::error!(error = %e, "the HTTP port failed"),
                Ok(Err(e)) => tracing::error!(error = %e, "the HTTP port's task failed"),
                Ok(Ok(Ok(()))) => {}
                Err(_) => {
                    tracing::warn!("HTTP requests still running after 10 s: closed");
                    task.abort();
                }
            }
        }
        let _ = stop_watcher.send(true);
        if let Some(task) = watcher_task {
            let _ = task.await;
        }
        if let Some(task) = analysis_task {
            let _ = task.await;
        }
        // The periodic signer records a last digest covering everything before it stops.
        let _ = stop_signing.send(true);
        if let Some(task) = signing_task {
            let _ = task.await;
        }
        if let Some(publisher) = publisher {
            publisher.stop().await;
        }
        // The projections apply what they have read and save a snapshot for the next start.
        let _ = stop_projections.send(true);
        let _ = projections_task.await;
        let closed = log.close().await;
        served.context("grpc server")?;
        closed.context("closing the event log")?;
        tracing::info!("stopped; every acknowledged event is on disk");
        Ok(())
    });
    tracing::info!(%addr, data_dir = %config.data_dir.display(), "complaintd ready");
    Ok(Running {
        addr,
        http_addr,
        ready,
        history: history_seen,
        stop,
        task,
        config: config.clone(),
        log: reload_log,
        workflow: reload_workflow,
        projections: running_projections,
    })
}
