//! For tests (feature `testing`): a nats-server of the test's own: a free loopback port, JetStream in a temporary
//! directory. Never a shared server, and never a silent skip: without the binary the
//! test fails and says how to install it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub struct NatsServer {
    child: Option<Child>,
    pub port: u16,
    pub store: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

fn binary() -> PathBuf {
    for candidate in [
        "nats-server",
        "/usr/sbin/nats-server",
        "/usr/bin/nats-server",
    ] {
        if Command::new(candidate)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return PathBuf::from(candidate);
        }
    }
    panic!(
        "nats-server is not installed: these tests start their own (apt-get install -y nats-server); they never skip"
    );
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
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
        // A config file: max_payload has no command-line flag, and events go up to 1 MiB.
        std::fs::create_dir_all(store).unwrap();
        let config = store.join(format!("nats-{port}.conf"));
        std::fs::write(
            &config,
            format!(
                "listen: \"127.0.0.1:{port}\"\nmax_payload: 8388608\njetstream {{\n  store_dir: \"{}\"\n}}\n",
                store.display()
            ),
        )
        .unwrap();
        let mut child = Command::new(binary())
            .arg("-c")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start nats-server");
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
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL) and waits for it to go.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
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
        for i in 0..size {
            let store = dir.path().join(format!("n{i}"));
            std::fs::create_dir_all(&store).unwrap();
            let config = dir.path().join(format!("n{i}.conf"));
            std::fs::write(
                &config,
                format!(
                    "server_name: n{i}\nlisten: \"127.0.0.1:{}\"\nmax_payload: 8388608\njetstream {{\n  store_dir: \"{}\"\n}}\ncluster {{\n  name: complaints-test\n  listen: \"127.0.0.1:{}\"\n  routes: [{}]\n}}\n",
                    ports[i],
                    store.display(),
                    cluster_ports[i],
                    routes.join(", ")
                ),
            )
            .unwrap();
            let mut child = Command::new(binary())
                .arg("-c")
                .arg(&config)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start nats-server");
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
            _dir: dir,
        }
    }

    /// Every node's address, comma-separated (clients fail over among them).
    pub fn url(&self) -> String {
        self.ports
            .iter()
            .map(|p| format!("nats://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The addresses of the nodes still running.
    pub fn live_url(&self) -> String {
        self.ports
            .iter()
            .zip(&self.nodes)
            .filter(|(_, n)| n.is_some())
            .map(|(p, _)| format!("nats://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Kills node `i` (SIGKILL).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}
