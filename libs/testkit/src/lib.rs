//! What the tests and benches of complaintd, complaintctl and the end-to-end crate share
//! (a dev-dependency only, never a dependency of a program):
//!
//! - [`TestServer`]: complaintd in process on `127.0.0.1:0` with a temporary directory,
//!   a test clock and ready clients; [`TestServer::shutdown`] gives a [`Stopped`] server
//!   whose data stays for inspection or a [`Stopped::restart`]. Dropped without a
//!   shutdown (a test that panics, or simply ends), the server is told to stop.
//! - Request builders with the development headers or a bearer token: [`req`],
//!   [`req_as`], [`with_bearer`]; and [`ts`], [`rid`].
//! - [`ChildGuard`]: a child process killed and reaped when dropped.
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
    pub async fn shutdown(mut self) -> Stopped {
        let running = self.running.take().expect("running until shut down");
        running.shutdown().await.expect("a clean shutdown");
        self.rest.take().expect("running until shut down")
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
    pub async fn restart(mut self, tweak: impl FnOnce(&mut Config)) -> TestServer {
        tweak(&mut self.config);
        let running = complaintd::server::start_with_clock(&self.config, self.clock.clone())
            .await
            .expect("complaintd starts");
        let addr = running.addr;
        let channel = Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect_lazy();
        TestServer {
            running: Some(running),
            channel,
            addr,
            rest: Some(self),
        }
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
