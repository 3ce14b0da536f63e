//! What the tests and benches of complaintd, complaintctl and the end-to-end crate share
//! (a dev-dependency only, never a dependency of a program):
//!
//! - [`TestServer`]: complaintd in process on `127.0.0.1:0` with a temporary directory,
//!   a test clock and ready clients; [`TestServer::shutdown`] gives a [`Stopped`] server
//!   whose data stays for inspection or a [`Stopped::restart`]. Dropped without a
//!   shutdown (a test that panics, or simply ends), the server is told to stop.
//! - Request builders with the development headers or a bearer token: [`req`],
//!   [`req_as`], [`with_bearer`]; and [`ts`], [`rid`].
//! - [`ChildGuard`]: a child process killed and reaped when dropped; [`ServerProcess`]:
//!   complaintd as a child process, ready when its log says so.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::Arc;

use complaintd::config::Config;
use complaintd::server::Running;
use complaints_proto::complaints::audit::v1::audit_service_client::AuditServiceClient;
use complaints_proto::complaints::v1::complaint_service_client::ComplaintServiceClient;
use eventlog::{Clock, ManualClock, Timestamp};
use tempfile::TempDir;
use tonic::transport::{Channel, Endpoint};
use tonic::Request;

/// 2026-03-02T12:00:00Z: where [`TestServer::start`] sets the server's clock.
pub const NOW: i64 = 1_772_452_800;

/// The principal of [`req`].
pub const TESTER: &str = "user:tester";

/// A protobuf timestamp `seconds` after the epoch.
pub fn ts(seconds: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds, nanos: 0 })
}

/// A fresh request id.
pub fn rid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A manual clock at `seconds` after the epoch.
pub fn manual_clock(seconds: i64) -> Arc<ManualClock> {
    Arc::new(ManualClock::new(Timestamp::from_micros(
        seconds * 1_000_000,
    )))
}

/// `message` from [`TESTER`] with `roles` (development headers).
pub fn req<T>(message: T, roles: &str) -> Request<T> {
    req_as(message, TESTER, roles)
}

/// `message` from `principal` with `roles` (development headers); an empty `principal`
/// sends no `x-principal` header at all (an anonymous caller).
pub fn req_as<T>(message: T, principal: &str, roles: &str) -> Request<T> {
    let mut request = Request::new(message);
    if !principal.is_empty() {
        request
            .metadata_mut()
            .insert("x-principal", principal.parse().unwrap());
    }
    request
        .metadata_mut()
        .insert("x-roles", roles.parse().unwrap());
    request
}

/// `message` with `authorization: Bearer <token>`.
pub fn with_bearer<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

/// A client of each service, on the server's channel.
#[derive(Clone)]
pub struct Clients {
    pub api: ComplaintServiceClient<Channel>,
    pub audit: AuditServiceClient<Channel>,
}

/// complaintd running in process: listening on a free loopback port, its data in
/// `data/` of a temporary directory that lives as long as this (and its [`Stopped`]).
pub struct TestServer {
    running: Option<Running>,
    channel: Channel,
    addr: SocketAddr,
    /// Its directory, configuration and clock (`None` once shut down).
    rest: Option<Stopped>,
}

impl TestServer {
    /// Starts a server with the clock at [`NOW`] and the default configuration, changed
    /// by `tweak` (which sees `listen` and `http_listen` = 127.0.0.1:0 and `data_dir` already set).
    pub async fn start(tweak: impl FnOnce(&mut Config)) -> Self {
        Self::start_with_clock(manual_clock(NOW), tweak).await
    }

    /// [`start`](Self::start) with the clock given.
    pub async fn start_with_clock(clock: Arc<dyn Clock>, tweak: impl FnOnce(&mut Config)) -> Self {
        Self::start_in(tempfile::tempdir().unwrap(), clock, tweak).await
    }

    /// [`start_with_clock`](Self::start_with_clock) in the temporary directory given.
    pub async fn start_in(
        dir: TempDir,
        clock: Arc<dyn Clock>,
        tweak: impl FnOnce(&mut Config),
    ) -> Self {
        let mut config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            http_listen: "127.0.0.1:0".into(),
            data_dir: dir.path().join("data"),
            ..Config::default()
        };
        tweak(&mut config);
        Stopped { dir, config, clock }.restart(|_| {}).await
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://` and the address.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://` and the HTTP port's address (web board, metrics, health).
    pub fn http_url(&self) -> String {
        let addr = self
            .running()
            .http_addr
            .expect("the HTTP port is on (http_listen)");
        format!("http://{addr}")
    }

    /// The temporary directory (the data is in `data/` unless the tweak moved it).
    pub fn dir(&self) -> &Path {
        self.rest().dir()
    }

    /// The configuration it was started with.
    pub fn config(&self) -> &Config {
        &self.rest().config
    }

    fn rest(&self) -> &Stopped {
        self.rest.as_ref().expect("running until shut down")
    }

    /// The running server (to reload its rules, ask where its projections started...).
    pub fn running(&self) -> &Running {
        self.running.as_ref().expect("running until shut down")
    }

    /// A channel to it, plain HTTP/2 (one connection, shared by the clients below; it
    /// connects at the first call).
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// A client of the complaint service.
    pub fn complaints(&self) -> ComplaintServiceClient<Channel> {
        ComplaintServiceClient::new(self.channel())
    }

    /// A client of the audit service.
    pub fn audit(&self) -> AuditServiceClient<Channel> {
        AuditServiceClient::new(self.channel())
    }

    /// A client of each service.
    pub fn clients(&self) -> Clients {
        Clients {
            api: self.complaints(),
            audit: self.audit(),
        }
    }

    /// Stops the server (the calls in flight finish, the log is closed) and checks that it
    /// stopped cleanly. The directory stays while the [`Stopped`] lives.
    pub async fn shutdown(self) -> Stopped {
        let (stopped, rest) = self.stop().await;
        stopped.expect("a clean shutdown");
        rest
    }

    /// Stops the server, clean or not: how the stop went, and the directory.
    pub async fn stop(mut self) -> (Result<(), String>, Stopped) {
        let running = self.running.take().expect("running until shut down");
        let stopped = running.shutdown().await.map_err(|e| format!("{e:#}"));
        (stopped, self.rest.take().expect("running until shut down"))
    }
}

impl Drop for TestServer {
    /// Not shut down (the test panicked, or did not need to): tells the server to stop,
    /// by dropping the handle; it stops on the test's runtime, or with it.
    fn drop(&mut self) {
        drop(self.running.take());
    }
}

/// A stopped [`TestServer`]: its directory, configuration and clock.
pub struct Stopped {
    dir: TempDir,
    config: Config,
    clock: Arc<dyn Clock>,
}

impl Stopped {
    /// The temporary directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Where the server kept its data.
    pub fn data_dir(&self) -> PathBuf {
        self.config.data_dir.clone()
    }

    /// Tries to start the server again on the same data and clock, with the configuration
    /// changed by `tweak`: the error, for tests of a start that must be refused.
    pub async fn start_refused(&mut self, tweak: impl FnOnce(&mut Config)) -> String {
        tweak(&mut self.config);
        match complaintd::server::start_with_clock(&self.config, self.clock.clone()).await {
            Ok(running) => {
                let _ = running.shutdown().await;
                panic!("complaintd started, but it should have refused");
            }
            Err(e) => format!("{e:#}"),
        }
    }

    /// Starts the server again on the same data and clock, with the configuration changed
    /// by `tweak`.
    pub async fn restart(self, tweak: impl FnOnce(&mut Config)) -> TestServer {
        match self.try_restart(tweak).await {
            Ok(server) => server,
            Err((e, _)) => panic!("complaintd starts: {e}"),
        }
    }

    /// [`restart`](Self::restart), or the error of a refused start (with this again).
    pub async fn try_restart(
        mut self,
        tweak: impl FnOnce(&mut Config),
    ) -> Result<TestServer, (String, Stopped)> {
        tweak(&mut self.config);
        let running =
            match complaintd::server::start_with_clock(&self.config, self.clock.clone()).await {
                Ok(running) => running,
                Err(e) => return Err((format!("{e:#}"), self)),
            };
        let addr = running.addr;
        let channel = Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect_lazy();
        Ok(TestServer {
            running: Some(running),
            channel,
            addr,
            rest: Some(self),
        })
    }
}

/// Copies the directory `from` (a data directory, say) to `to`, recursively.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A child process that is killed (SIGKILL) and reaped when dropped, so a test that
/// panics leaves none behind. Use it as the [`Child`] it holds.
pub struct ChildGuard(Child);

impl ChildGuard {
    pub fn new(child: Child) -> Self {
        Self(child)
    }
}

impl std::ops::Deref for ChildGuard {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for ChildGuard {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        // Both do nothing once the child has been waited for.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// complaintd (or a binary that runs it) as a child process on free ports, with JSON
/// logs: killed and reaped if dropped before [`ServerProcess::terminate`].
pub struct ServerProcess {
    child: ChildGuard,
    /// Its gRPC address.
    pub addr: String,
    /// Every log line after "ready", collected until the process ends.
    rest: tokio::task::JoinHandle<Vec<String>>,
    /// The log lines up to "ready".
    pub before: Vec<String>,
    /// Its HTTP port's address (web board, `/metrics`), if it has one.
    pub http_addr: Option<String>,
}

impl ServerProcess {
    /// Starts `program` with `data_dir` and the settings `env` (`COMPLAINTD_*`,
    /// `RUST_LOG`) on free ports; returns once its log says it is ready (no waiting on
    /// timers), with how long that took.
    pub async fn start(
        program: &Path,
        data_dir: &Path,
        env: &[(&str, &str)],
    ) -> (Self, std::time::Duration) {
        let (server, serving, _) = Self::start_waiting(program, data_dir, env, false).await;
        (server, serving)
    }

    /// [`ServerProcess::start`], returning once it is also ready (its log says the
    /// projections have caught up), with how long it took to serve and to be ready.
    pub async fn start_ready(
        program: &Path,
        data_dir: &Path,
        env: &[(&str, &str)],
    ) -> (Self, std::time::Duration, std::time::Duration) {
        let (server, serving, ready) = Self::start_waiting(program, data_dir, env, true).await;
        (server, serving, ready.unwrap_or(serving))
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    async fn start_waiting(
        program: &Path,
        data_dir: &Path,
        env: &[(&str, &str)],
        until_ready: bool,
    ) -> (Self, std::time::Duration, Option<std::time::Duration>) {
        use tokio::io::AsyncBufReadExt as _;
        let started = std::time::Instant::now();
        let mut command = std::process::Command::new(program);
        command
            .env("COMPLAINTD_LISTEN", "127.0.0.1:0")
            .env("COMPLAINTD_HTTP_LISTEN", "127.0.0.1:0")
            .env("COMPLAINTD_DATA_DIR", data_dir)
            .env("COMPLAINTD_LOG_FORMAT", "json")
            .env("RUST_LOG", "info");
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = ChildGuard::new(
            command
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::inherit())
                .spawn()
                .expect("start complaintd"),
        );
        let stdout = tokio::process::ChildStdout::from_std(child.stdout.take().unwrap()).unwrap();
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let mut before = Vec::new();
        let mut http_addr = None;
        let (mut addr, mut serving, mut ready) = (None, None, None);
        // The projections may catch up before the server listens, or after.
        while addr.is_none() || (until_ready && ready.is_none()) {
            let line = lines
                .next_line()
                .await
                .unwrap()
                .expect("complaintd exited before it was ready");
            let record: serde_json::Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
            if let Some(http) = record["fields"]["http_addr"].as_str() {
                http_addr = Some(http.to_owned());
            }
            match record["fields"]["message"].as_str() {
                Some("complaintd ready") => {
                    addr = record["fields"]["addr"].as_str().map(str::to_owned);
                    serving = Some(started.elapsed());
                }
                Some("ready: the projections have caught up") => ready = Some(started.elapsed()),
                _ => {}
            }
            before.push(line);
        }
        let addr = addr.unwrap_or_default();
        let serving = serving.unwrap_or_default();
        let rest = tokio::spawn(async move {
            let mut rest = Vec::new();
            while let Ok(Some(line)) = lines.next_line().await {
                rest.push(line);
            }
            rest
        });
        (
            Self {
                child,
                addr,
                rest,
                before,
                http_addr,
            },
            serving,
            ready,
        )
    }

    /// A client of its complaint service.
    pub async fn client(&self) -> ComplaintServiceClient<Channel> {
        ComplaintServiceClient::connect(format!("http://{}", self.addr))
            .await
            .unwrap()
    }

    /// SIGTERM, then the exit status and the log lines written on the way out.
    pub async fn terminate(mut self) -> (std::process::ExitStatus, Vec<String>) {
        let pid = self.child.id();
        // kill(1) rather than libc::kill, which would need unsafe code.
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        let status = tokio::task::block_in_place(|| self.child.wait()).unwrap();
        (status, self.rest.await.unwrap())
    }
}

/// A request of the load: intake and handler roles.
fn load_req<T>(message: T) -> Request<T> {
    req_as(message, "user:load", "intake,handler")
}

/// Takes one complaint through its life (register, acknowledge, assign, findings, answer,
/// close: six durable commands, each at the version the previous one left); returns its
/// name and each command's latency. `n` varies the person, unit and category.
pub async fn one_life(
    c: &mut ComplaintServiceClient<Channel>,
    now: i64,
    n: usize,
) -> (String, Vec<std::time::Duration>) {
    use complaints_proto::complaints::v1 as api;
    use std::time::Instant;
    let mut lat = Vec::with_capacity(6);
    let t = Instant::now();
    let created = c
        .register_complaint(load_req(api::RegisterComplaintRequest {
            request_id: rid(),
            complaint_id: String::new(),
            channel: api::Channel::Web as i32,
            complainant: Some(api::Complainant {
                person_id: format!("person-{n}"),
                name: "Load Tester".into(),
                contact: "load@example.org".into(),
                id_number: String::new(),
            }),
            unit: format!("unit-{}", n % 7),
            employee: String::new(),
            product: "current account".into(),
            category: format!("category-{}", n % 5),
            claim: "a refund of the charge".into(),
            facts: "x".repeat(200),
            receive_time: ts(now - 60),
            regime: "UK-FCA-DISP".into(),
            region: "GB-ENG".into(),
            regulator: None,
            variant: String::new(),
        }))
        .await
        .expect("register")
        .into_inner();
    lat.push(t.elapsed());
    let name = created.name;
    let kept = name.clone();
    macro_rules! timed {
        ($call:expr) => {{
            let t = Instant::now();
            $call.await.expect(stringify!($call));
            lat.push(t.elapsed());
        }};
    }
    timed!(
        c.acknowledge_complaint(load_req(api::AcknowledgeComplaintRequest {
            name: name.clone(),
            request_id: rid(),
            expected_version: Some(1),
            ..Default::default()
        }))
    );
    timed!(c.assign_complaint(load_req(api::AssignComplaintRequest {
        name: name.clone(),
        request_id: rid(),
        expected_version: Some(2),
        unit: "u".into(),
        handler: "h".into()
    })));
    timed!(c.record_findings(load_req(api::RecordFindingsRequest {
        name: name.clone(),
        request_id: rid(),
        expected_version: Some(3),
        findings: "f".repeat(100),
        root_cause: api::RootCause::ProcessFailure as i32,
        evidence: vec![]
    })));
    timed!(c.answer_complaint(load_req(api::AnswerComplaintRequest {
        name: name.clone(),
        request_id: rid(),
        expected_version: Some(4),
        decision: api::Decision::Upheld as i32,
        redress: vec![api::Redress {
            kind: api::RedressKind::Refund as i32,
            amount: Some(api::Money {
                minor_units: 1000,
                currency_code: "GBP".into()
            })
        }],
        delivery: api::DeliveryMethod::DeliveryEmail as i32,
        summary: "refunded".into(),
        ..Default::default()
    })));
    timed!(c.close_complaint(load_req(api::CloseComplaintRequest {
        name,
        request_id: rid(),
        expected_version: Some(5)
    })));
    (kept, lat)
}

/// What a JetStream log holds, read back by a fresh open (no checkpoint), as another
/// replica starting would: the open itself checks that positions are gapless, the hash
/// chain unbroken, each stream's versions consecutive and every event id unique, and
/// fails otherwise.
pub struct LogReadBack {
    /// The last position.
    pub head: u64,
    /// Each stream's event types in version order.
    pub streams: std::collections::BTreeMap<String, Vec<String>>,
}

/// Reads back the log in the JetStream stream `stream` at `url` (see [`LogReadBack`]).
pub async fn read_back_jetstream(url: &str, stream: &str) -> LogReadBack {
    use eventlog::{Direction, EventLog as _};
    let log = eventlog_jetstream::JetStreamEventLog::open(
        eventlog_jetstream::JetStreamConfig::new(url, stream),
        Arc::new(eventlog::SystemClock),
    )
    .await
    .expect("the log reads back whole: gapless, chained, versions in order, ids unique");
    let head = log.head().await.unwrap();
    let mut streams: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    let mut from = 1;
    while from <= head {
        let page = log.read_all(from, Direction::Forward, 4096).await.unwrap();
        for e in &page {
            let types = streams.entry(e.stream.as_str().to_owned()).or_default();
            assert_eq!(
                e.version as usize,
                types.len() + 1,
                "stream {} in order",
                e.stream
            );
            types.push(e.event_type.clone());
        }
        from += page.len() as u64;
    }
    log.close().await.unwrap();
    LogReadBack { head, streams }
}

/// `n` scaled by `BENCH_SCALE` (default 1.0), at least 1: how much work a bench does.
pub fn bench_scaled(n: usize) -> usize {
    let scale: f64 = std::env::var("BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    ((n as f64 * scale) as usize).max(1)
}

/// The `p` quantile (0..=1) of `sorted`, which is not empty.
pub fn percentile(sorted: &[std::time::Duration], p: f64) -> std::time::Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

/// `count` processes of `program` on the JetStream log at `url` (the default stream),
/// each with a data directory of its own (returned with them: keep it while they run),
/// with `env` besides.
pub async fn start_replicas(
    program: &Path,
    url: &str,
    count: usize,
    env: &[(&str, &str)],
) -> (Vec<ServerProcess>, Vec<TempDir>) {
    let mut all = vec![
        ("COMPLAINTD_LOG_BACKEND", "jetstream"),
        ("COMPLAINTD_JETSTREAM_URL", url),
    ];
    all.extend_from_slice(env);
    let dirs: Vec<TempDir> = (0..count).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut servers = Vec::new();
    for dir in &dirs {
        servers.push(ServerProcess::start(program, dir.path(), &all).await.0);
    }
    (servers, dirs)
}
