//! For tests (feature `testing`): a nats-server of the test's own: a free loopback port, JetStream in a temporary
//! directory. Never a shared server, and never a silent skip: without the binary the
//! test fails and says how to install it.
#![allow(clippy::unwrap_used)] // test support (feature `testing`): a failed unwrap is a failed test

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub struct NatsServer {
    child: Option<Child>,
    pub port: u16,
    pub store: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

/// The oldest nats-server the tests (and the product) accept: 2.10 brought
/// `sync_interval: always`, without which an acknowledgement is not durable.
pub const MIN_VERSION: (u32, u32) = (2, 10);

/// The nats-server the tests run, checked once: `NATS_SERVER_BIN`, else the project's
/// pinned one (`.tools/bin/nats-server`, from `scripts/install-nats-server`), else
/// `nats-server` on the PATH. One older than [`MIN_VERSION`] is refused.
pub fn binary() -> PathBuf {
    static FOUND: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    FOUND
        .get_or_init(find)
        .clone()
        .unwrap_or_else(|why| panic!("{why}"))
}

fn find() -> Result<PathBuf, String> {
    let pinned = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.tools/bin/nats-server");
    let candidates: Vec<PathBuf> = match std::env::var_os("NATS_SERVER_BIN") {
        Some(path) => vec![PathBuf::from(path)],
        None => vec![pinned, PathBuf::from("nats-server")],
    };
    let install = "run scripts/install-nats-server (it puts the pinned nats-server in .tools/bin), or set NATS_SERVER_BIN; these tests start their own servers and never skip";
    for candidate in &candidates {
        let Ok(out) = Command::new(candidate).arg("--version").output() else {
            continue;
        };
        if !out.status.success() {
            continue;
        }
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        return match version(&text) {
            Some(v) if v >= MIN_VERSION => Ok(candidate.clone()),
            _ => Err(format!(
                "{} is {:?}, older than nats-server {}.{} (needed for sync_interval: always): {install}",
                candidate.display(),
                text.trim(),
                MIN_VERSION.0,
                MIN_VERSION.1
            )),
        };
    }
    Err(format!("nats-server is not installed: {install}"))
}

/// (major, minor) of `nats-server --version`'s "nats-server: v2.15.1".
fn version(text: &str) -> Option<(u32, u32)> {
    let v = text.trim().rsplit('v').next()?;
    let mut parts = v.split('.');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The configuration of a node on loopback `port` with JetStream data in `store`, then
/// `more` (a config file, since max_payload has no command-line flag, and events go up
/// to 1 MiB). Every write is synced before it is acknowledged (`sync_interval: always`),
/// as in production.
fn node_config(port: u16, store: &Path, more: &str) -> String {
    format!(
        "listen: \"127.0.0.1:{port}\"\nmax_payload: 8388608\njetstream {{\n  store_dir: \"{}\"\n  sync_interval: always\n}}\n{more}",
        store.display()
    )
}

/// Writes `config` to the file `path` and starts a nats-server on it, its log on a pipe.
fn spawn(path: &Path, config: &str) -> Child {
    std::fs::write(path, config).unwrap();
    Command::new(binary())
        .arg("-c")
        .arg(path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start nats-server")
}

/// Kills a server (SIGKILL), if still running, and waits for it to go.
fn kill(child: &mut Option<Child>) {
    if let Some(mut child) = child.take() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

fn url_of(port: u16) -> String {
    format!("nats://127.0.0.1:{port}")
}

/// The `Complaints-Position` headers (set by the publisher) of the next `n` messages of
/// `messages`, each of which must arrive within 30 s.
pub async fn positions(messages: &mut async_nats::Subscriber, n: usize) -> Vec<u64> {
    use futures::StreamExt;
    let mut positions = Vec::with_capacity(n);
    while positions.len() < n {
        let m = tokio::time::timeout(std::time::Duration::from_secs(30), messages.next())
            .await
            .expect("published within 30 s")
            .expect("the subscription is open");
        positions.push(
            m.headers
                .expect("headers")
                .get("Complaints-Position")
                .expect("a Complaints-Position header")
                .as_str()
                .parse::<u64>()
                .expect("a position"),
        );
    }
    positions
}

impl NatsServer {
    /// A new server on a free port with fresh storage.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut server = Self::start_on(free_port(), dir.path());
        server._dir = Some(dir);
        server
    }

    /// A server on `port` keeping JetStream data in `store` (reused across restarts).
    pub fn start_on(port: u16, store: &Path) -> Self {
        std::fs::create_dir_all(store).unwrap();
        let mut child = spawn(
            &store.join(format!("nats-{port}.conf")),
            &node_config(port, store, ""),
        );
        // Ready when it says so (no sleeping and hoping).
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        let mut seen = Vec::new();
        loop {
            match lines.next() {
                Some(Ok(line)) => {
                    let ready = line.contains("Server is ready");
                    seen.push(line);
                    if ready {
                        break;
                    }
                }
                _ => panic!(
                    "nats-server exited before it was ready:\n{}",
                    seen.join("\n")
                ),
            }
        }
        // Keep draining its log so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Self {
            child: Some(child),
            port,
            store: store.to_path_buf(),
            _dir: None,
        }
    }

    pub fn url(&self) -> String {
        url_of(self.port)
    }

    /// Kills the server (SIGKILL) and waits for it to go.
    pub fn kill(&mut self) {
        kill(&mut self.child);
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A JetStream cluster of nats-server processes on loopback, for tests: each node has its
/// own client port, cluster port and storage.
pub struct NatsCluster {
    pub nodes: Vec<Option<Child>>,
    pub ports: Vec<u16>,
    /// Each node's configuration file and text, to restart it.
    configs: Vec<(PathBuf, String)>,
    _dir: tempfile::TempDir,
}

impl NatsCluster {
    /// Starts `size` nodes and returns once the cluster has elected its JetStream
    /// metadata leader (read from the nodes' logs).
    pub fn start(size: usize) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ports: Vec<u16> = (0..size).map(|_| free_port()).collect();
        let cluster_ports: Vec<u16> = (0..size).map(|_| free_port()).collect();
        let routes: Vec<String> = cluster_ports
            .iter()
            .map(|p| format!("\"nats-route://127.0.0.1:{p}\""))
            .collect();
        let (leader_tx, leader_rx) = std::sync::mpsc::channel::<()>();
        let mut nodes = Vec::new();
        let mut configs = Vec::new();
        for i in 0..size {
            let store = dir.path().join(format!("n{i}"));
            std::fs::create_dir_all(&store).unwrap();
            let cluster = format!(
                "server_name: n{i}\ncluster {{\n  name: complaints-test\n  listen: \"127.0.0.1:{}\"\n  routes: [{}]\n}}\n",
                cluster_ports[i],
                routes.join(", ")
            );
            let path = dir.path().join(format!("n{i}.conf"));
            let config = node_config(ports[i], &store, &cluster);
            let mut child = spawn(&path, &config);
            configs.push((path, config));
            let stderr = child.stderr.take().unwrap();
            let leader_tx = leader_tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if line.contains("new metadata leader")
                        || line.contains("JetStream cluster new")
                    {
                        let _ = leader_tx.send(());
                    }
                }
            });
            nodes.push(Some(child));
        }
        leader_rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("the cluster elected a JetStream leader within 60 s");
        Self {
            nodes,
            ports,
            configs,
            _dir: dir,
        }
    }

    /// Starts node `i` again on its storage (after [`NatsCluster::kill`]); clients find it
    /// once it has rejoined (open a log with retries).
    pub fn restart(&mut self, i: usize) {
        kill(&mut self.nodes[i]);
        let (path, config) = &self.configs[i];
        let mut child = spawn(path, config);
        // Its log is not watched: drain it so that the pipe never fills.
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(
            move || {
                for _ in BufReader::new(stderr).lines().map_while(Result::ok) {}
            },
        );
        self.nodes[i] = Some(child);
    }

    /// Every node's address, comma-separated (clients fail over among them).
    pub fn url(&self) -> String {
        self.ports
            .iter()
            .map(|p| url_of(*p))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The addresses of the nodes still running.
    pub fn live_url(&self) -> String {
        self.ports
            .iter()
            .zip(&self.nodes)
            .filter(|(_, n)| n.is_some())
            .map(|(p, _)| url_of(*p))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Kills node `i` (SIGKILL).
    pub fn kill(&mut self, i: usize) {
        kill(&mut self.nodes[i]);
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}
