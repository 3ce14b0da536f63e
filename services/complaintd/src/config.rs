//! complaintd's configuration: defaults, then an optional TOML file, then environment
//! variables; checked in one step that reports every problem at once.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// How callers are authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// Trust the x-principal and x-roles headers (development only).
    DevHeaders,
    /// Bearer tokens (JWT) verified against `jwt_keys`, and/or client certificates
    /// (mutual TLS) issued by `tls_client_ca`.
    Verified,
}

/// Where the event log lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogBackend {
    /// Embedded, in `data_dir/log`: one process, no server.
    Sled,
    /// On NATS JetStream (`jetstream_url`): replicated, several complaintd replicas.
    Jetstream,
}

/// How events are published to NATS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NatsMode {
    /// Into a JetStream stream, each publish acknowledged (and deduplicated by event id).
    Jetstream,
    /// On core NATS: no acknowledgement, no persistence in NATS.
    Core,
}

/// The body of the messages published to NATS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NatsPayload {
    /// The stored event as it is (`complaints.events.v1`).
    Protobuf,
    /// The stored event in protobuf's JSON mapping (personal fields still sealed).
    Json,
}

/// The server's settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address to listen on (`COMPLAINTD_LISTEN`).
    pub listen: SocketAddr,
    /// Address of the web board, `/metrics`, `/healthz` and `/readyz` (HTTP;
    /// `COMPLAINTD_HTTP_LISTEN`); empty: no HTTP port.
    pub http_listen: String,
    /// Directory of the sled event log (`COMPLAINTD_DATA_DIR`).
    pub data_dir: PathBuf,
    /// `text` or `json` (`COMPLAINTD_LOG_FORMAT`).
    pub log_format: LogFormat,
    /// How callers are authenticated (`COMPLAINTD_AUTH`).
    pub auth: AuthMode,
    /// Allow development authentication on a non-loopback address. Dangerous.
    pub allow_dev_auth_on_network: bool,
    /// Operator calendars (`*.toml`) that add to or override the built-in ones.
    pub calendars_dir: Option<PathBuf>,
    /// Operator policies (`*.toml`) besides the built-in regimes.
    pub policies_dir: Option<PathBuf>,
    /// Largest request message accepted, in bytes (`COMPLAINTD_MAX_MESSAGE_BYTES`).
    pub max_message_bytes: usize,
    /// Calls in flight per connection; more wait (`max_concurrent_streams` of HTTP/2).
    pub max_concurrent_calls_per_connection: u32,
    /// Longest a unary call (or the start of a stream) may take, in seconds; a client's
    /// shorter `grpc-timeout` wins.
    pub call_timeout_seconds: u64,
    /// The server's certificate chain and private key (PEM): serve TLS.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// CA certificate(s) (PEM) whose client certificates authenticate callers: mutual TLS.
    /// The principal is the certificate's common name.
    pub tls_client_ca: Option<PathBuf>,
    /// Roles of certificate principals, by common name, e.g.
    /// `"svc-gateway" = ["regulator_gateway"]`.
    pub certificate_roles: std::collections::BTreeMap<String, Vec<String>>,
    /// Public keys (PEM: RSA, EC P-256 or Ed25519) that verify bearer tokens; tokens must
    /// name `jwt_issuer` and `jwt_audience`, be unexpired, and carry `sub` and `roles`.
    pub jwt_keys: Vec<PathBuf>,
    pub jwt_issuer: Option<String>,
    pub jwt_audience: Option<String>,
    /// `sled` (default) or `jetstream` (`COMPLAINTD_LOG_BACKEND`).
    pub log_backend: LogBackend,
    /// The NATS server(s) of the JetStream backend (`COMPLAINTD_JETSTREAM_URL`), e.g.
    /// `nats://10.0.0.1:4222,nats://10.0.0.2:4222`.
    pub jetstream_url: Option<String>,
    /// The JetStream stream holding the log.
    pub jetstream_stream: String,
    /// Replicas of that stream when complaintd creates it (3 on a three-node cluster).
    pub jetstream_replicas: usize,
    /// Publish every event to NATS at this address (`COMPLAINTD_NATS_URL`), e.g.
    /// `nats://127.0.0.1:4222`; not at all when unset.
    pub nats_url: Option<String>,
    /// `jetstream` (default) or `core` (`COMPLAINTD_NATS_MODE`).
    pub nats_mode: NatsMode,
    /// `protobuf` (default) or `json` (`COMPLAINTD_NATS_PAYLOAD`): the messages' bodies.
    pub nats_payload: NatsPayload,
    /// The JetStream stream events go to (created if missing).
    pub nats_stream: String,
    /// First tokens of every subject: `<prefix>.<event type>.<stream>`.
    pub nats_subject_prefix: String,
    /// Steps recorded with an effective time further back than this many business days
    /// (on the complaint's calendar) need a `backdating_reason` and the supervisor role
    /// (`COMPLAINTD_BACKDATING_WINDOW_BUSINESS_DAYS`; default 5).
    pub backdating_window_business_days: u32,
    /// Where the per-person keys of personal data live (`COMPLAINTD_KEYS_DIR`); by
    /// default `<data_dir>/keys`. Keep it apart from the log's backups: erasing a person
    /// means their key is gone everywhere.
    pub keys_dir: Option<PathBuf>,
    /// Serve read-only (`complaintd --read-only`, `COMPLAINTD_READ_ONLY=true`): for
    /// auditors on a damaged or copied data directory. The log opens even when damaged,
    /// serving what is readable up to the damage (reported in the log and by
    /// `AuditService.Verify`); every command is refused and nothing is written (no SLA
    /// crossings, rules, digests, snapshots or publishing). sled backend only.
    pub read_only: bool,
    /// Ed25519 private key (PKCS#8 PEM) that signs the log's digests
    /// (`COMPLAINTD_AUDIT_SIGNING_KEY`); digests are unsigned without one.
    pub audit_signing_key: Option<PathBuf>,
    /// The reports mapping (TOML: our names -> the regulators' codes; see
    /// `deploy/reports/mapping.toml`), read at every report (`COMPLAINTD_REPORTS_MAPPING`).
    /// Without it, returns that need codes are refused with the list of names to map.
    pub reports_mapping: Option<PathBuf>,
    /// The repeated-cause rule: record `analysis.repeated_cause` when the same root cause
    /// is found on the same product and unit this many times (0: off, the default)
    /// within `repeated_cause_days` (`COMPLAINTD_REPEATED_CAUSE_COUNT`).
    pub repeated_cause_count: u32,
    /// The rule's window in days (`COMPLAINTD_REPEATED_CAUSE_DAYS`; default 30).
    pub repeated_cause_days: u32,
    /// How often a signed digest is recorded in the log, in seconds (0: never; one is
    /// also recorded at every shutdown) (`COMPLAINTD_AUDIT_SIGN_INTERVAL_SECONDS`).
    pub audit_sign_interval_seconds: u64,
    /// Save a snapshot of the projections (in `<data_dir>/projections`) every this many
    /// events applied, and at shutdown, so that a start reads only the log after it; 0:
    /// no snapshots, rebuild from the whole log at every start
    /// (`COMPLAINTD_PROJECTION_SNAPSHOT_EVERY`).
    pub projection_snapshot_every: u64,
    /// Keep a checkpoint of the board and the regulator queue (in
    /// `<data_dir>/projections/as-of`) every this many positions of the log, so that a
    /// board or queue as of a past moment replays only the events after the last one
    /// before it; 0: none, such views replay from position 1
    /// (`COMPLAINTD_AS_OF_CHECKPOINT_EVERY`). Each costs about the board's and queue's
    /// share of a snapshot taken there.
    pub as_of_checkpoint_every: u64,
    /// Write the sled log's index checkpoint (`<data_dir>/log/index-checkpoint`) every
    /// this many positions, and at every clean stop; a start loads the indexes from it
    /// and reads and checks only the records after it, so after a crash at most about
    /// this many (`COMPLAINTD_LOG_INDEX_CHECKPOINT_EVERY`; 0: only at a clean stop). The
    /// history before it is checked again in the background right after the start.
    pub log_index_checkpoint_every: u64,
    /// Read and check every record of the sled log before serving, as before index
    /// checkpoints: a start then takes time in proportion to the whole history
    /// (`COMPLAINTD_LOG_FULL_CHECK_AT_OPEN=true`).
    pub log_full_check_at_open: bool,
    /// The capacity of sled's cache of the log's pages, in MiB (`COMPLAINTD_LOG_CACHE_MIB`;
    /// default 32). Reads that miss it read the page from the file (through the operating
    /// system's cache); a larger one keeps more of the history's pages in the process (at
    /// ten years, 256 MiB made the process about 230 MiB larger than 64, and 64 about 38
    /// MiB larger than 32, with the views of the past as fast: docs/PERFORMANCE.md).
    pub log_cache_mib: u64,
    /// The business's time zone (IANA name, e.g. `Europe/London`): the day the board's
    /// `due_today` counts (`COMPLAINTD_BUSINESS_TIME_ZONE`). Due times themselves follow
    /// each policy's own time zone.
    pub business_time_zone: String,
    /// Export tracing spans over OTLP/gRPC to this collector, e.g. `http://127.0.0.1:4317`
    /// (`COMPLAINTD_OTLP_ENDPOINT`); needs complaintd built with the `otlp` feature.
    pub otlp_endpoint: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            http_listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("./data"),
            log_format: LogFormat::Text,
            auth: AuthMode::DevHeaders,
            allow_dev_auth_on_network: false,
            calendars_dir: None,
            policies_dir: None,
            max_message_bytes: 2 << 20,
            max_concurrent_calls_per_connection: 128,
            call_timeout_seconds: 30,
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            certificate_roles: Default::default(),
            jwt_keys: Vec::new(),
            jwt_issuer: None,
            jwt_audience: None,
            log_backend: LogBackend::Sled,
            jetstream_url: None,
            jetstream_stream: "EVENTLOG".into(),
            jetstream_replicas: 1,
            nats_url: None,
            nats_mode: NatsMode::Jetstream,
            nats_payload: NatsPayload::Protobuf,
            nats_stream: "COMPLAINTS_EVENTS".into(),
            nats_subject_prefix: "complaints.events".into(),
            keys_dir: None,
            backdating_window_business_days: complaints_workflow::DEFAULT_BACKDATING_DAYS,
            read_only: false,
            audit_signing_key: None,
            reports_mapping: None,
            repeated_cause_count: 0,
            repeated_cause_days: 30,
            audit_sign_interval_seconds: 3600,
            projection_snapshot_every: 250_000,
            as_of_checkpoint_every: 500_000,
            log_index_checkpoint_every: 500_000,
            log_full_check_at_open: false,
            log_cache_mib: 32,
            business_time_zone: "UTC".into(),
            otlp_endpoint: None,
        }
    }
}

/// Everything wrong with a configuration.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  {}", .0.join("\n  "))]
pub struct ConfigError(pub Vec<String>);

impl Config {
    /// The HTTP port's address, `None` when it is off (`http_listen` empty).
    #[allow(clippy::result_unit_err)]
    pub fn http_addr(&self) -> Result<Option<SocketAddr>, ()> {
        let text = self.http_listen.trim();
        if text.is_empty() {
            return Ok(None);
        }
        text.parse().map(Some).map_err(|_| ())
    }

    /// Defaults, overridden by the file at `path` (if any), then by `env`.
    pub fn load(
        path: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut problems = Vec::new();
        let mut config = match path {
            None => Config::default(),
            Some(path) => match std::fs::read_to_string(path) {
                Ok(text) => match toml::from_str(&text) {
                    Ok(config) => config,
                    Err(e) => return Err(ConfigError(vec![format!("{}: {e}", path.display())])),
                },
                Err(e) => return Err(ConfigError(vec![format!("{}: {e}", path.display())])),
            },
        };
        let mut o = Overrides {
            env: &env,
            problems: &mut problems,
        };
        o.parsed(
            "COMPLAINTD_LISTEN",
            "an address like 127.0.0.1:50051",
            &mut config.listen,
        );
        if let Some(http) = o.text("COMPLAINTD_HTTP_LISTEN") {
            config.http_listen = http;
        }
        if let Some(dir) = o.text("COMPLAINTD_DATA_DIR") {
            if dir.is_empty() {
                o.problems.push("COMPLAINTD_DATA_DIR is empty".to_owned());
            }
            config.data_dir = PathBuf::from(dir);
        }
        let (text, json) = (LogFormat::Text, LogFormat::Json);
        o.choice(
            "COMPLAINTD_LOG_FORMAT",
            &[("text", text), ("json", json)],
            &mut config.log_format,
        );
        o.path("COMPLAINTD_CALENDARS_DIR", &mut config.calendars_dir);
        o.path("COMPLAINTD_POLICIES_DIR", &mut config.policies_dir);
        o.parsed(
            "COMPLAINTD_MAX_MESSAGE_BYTES",
            "a number of bytes",
            &mut config.max_message_bytes,
        );
        let (sled, jetstream) = (LogBackend::Sled, LogBackend::Jetstream);
        o.choice(
            "COMPLAINTD_LOG_BACKEND",
            &[("sled", sled), ("jetstream", jetstream)],
            &mut config.log_backend,
        );
        o.url("COMPLAINTD_JETSTREAM_URL", &mut config.jetstream_url);
        o.url("COMPLAINTD_NATS_URL", &mut config.nats_url);
        let (jetstream, core) = (NatsMode::Jetstream, NatsMode::Core);
        o.choice(
            "COMPLAINTD_NATS_MODE",
            &[("jetstream", jetstream), ("core", core)],
            &mut config.nats_mode,
        );
        let (protobuf, json) = (NatsPayload::Protobuf, NatsPayload::Json);
        o.choice(
            "COMPLAINTD_NATS_PAYLOAD",
            &[("protobuf", protobuf), ("json", json)],
            &mut config.nats_payload,
        );
        o.path("COMPLAINTD_KEYS_DIR", &mut config.keys_dir);
        o.parsed(
            "COMPLAINTD_BACKDATING_WINDOW_BUSINESS_DAYS",
            "a number of business days",
            &mut config.backdating_window_business_days,
        );
        o.choice(
            "COMPLAINTD_READ_ONLY",
            &[
                ("true", true),
                ("false", false),
                ("1", true),
                ("0", false),
                ("", false),
            ],
            &mut config.read_only,
        );
        o.path(
            "COMPLAINTD_AUDIT_SIGNING_KEY",
            &mut config.audit_signing_key,
        );
        o.path("COMPLAINTD_REPORTS_MAPPING", &mut config.reports_mapping);
        o.parsed(
            "COMPLAINTD_REPEATED_CAUSE_COUNT",
            "a number of findings",
            &mut config.repeated_cause_count,
        );
        o.parsed(
            "COMPLAINTD_REPEATED_CAUSE_DAYS",
            "a number of days",
            &mut config.repeated_cause_days,
        );
        o.parsed(
            "COMPLAINTD_AUDIT_SIGN_INTERVAL_SECONDS",
            "a number of seconds",
            &mut config.audit_sign_interval_seconds,
        );
        o.parsed(
            "COMPLAINTD_PROJECTION_SNAPSHOT_EVERY",
            "a number of events",
            &mut config.projection_snapshot_every,
        );
        o.parsed(
            "COMPLAINTD_AS_OF_CHECKPOINT_EVERY",
            "a number of positions",
            &mut config.as_of_checkpoint_every,
        );
        o.parsed(
            "COMPLAINTD_LOG_INDEX_CHECKPOINT_EVERY",
            "a number of positions",
            &mut config.log_index_checkpoint_every,
        );
        o.parsed(
            "COMPLAINTD_LOG_CACHE_MIB",
            "a number of MiB",
            &mut config.log_cache_mib,
        );
        o.choice(
            "COMPLAINTD_LOG_FULL_CHECK_AT_OPEN",
            &[("true", true), ("false", false), ("1", true), ("0", false)],
            &mut config.log_full_check_at_open,
        );
        o.url("COMPLAINTD_OTLP_ENDPOINT", &mut config.otlp_endpoint);
        if let Some(zone) = o.text("COMPLAINTD_BUSINESS_TIME_ZONE") {
            config.business_time_zone = zone;
        }
        let (dev, verified) = (AuthMode::DevHeaders, AuthMode::Verified);
        o.choice(
            "COMPLAINTD_AUTH",
            &[("dev_headers", dev), ("verified", verified)],
            &mut config.auth,
        );
        if config.auth == AuthMode::DevHeaders
            && !config.listen.ip().is_loopback()
            && !config.allow_dev_auth_on_network
        {
            problems.push(format!(
                "development authentication trusts headers; refusing to listen on {} (a non-loopback address) unless allow_dev_auth_on_network = true",
                config.listen
            ));
        }
        match config.http_addr() {
            Err(()) => problems.push(format!(
                "http_listen {:?} is not an address like 127.0.0.1:8080 (empty: no HTTP port)",
                config.http_listen
            )),
            Ok(Some(http))
                if config.auth == AuthMode::DevHeaders
                    && !http.ip().is_loopback()
                    && !config.allow_dev_auth_on_network =>
            {
                problems.push(format!(
                    "development authentication trusts headers; refusing to serve the web board on {http} (a non-loopback address) unless allow_dev_auth_on_network = true"
                ));
            }
            Ok(_) => {}
        }
        for (name, dir) in [
            ("calendars_dir", &config.calendars_dir),
            ("policies_dir", &config.policies_dir),
        ] {
            if let Some(dir) = dir {
                if !dir.is_dir() {
                    problems.push(format!("{name} {} is not a directory", dir.display()));
                }
            }
        }
        if config.read_only && config.log_backend == LogBackend::Jetstream {
            problems.push(
                "read_only is for the sled backend (a JetStream log is read through a replica)"
                    .to_owned(),
            );
        }
        if config.log_backend == LogBackend::Jetstream && config.jetstream_url.is_none() {
            problems.push("log_backend = \"jetstream\" needs jetstream_url".to_owned());
        }
        if config.business_time_zone.is_empty()
            || jiff::tz::TimeZone::get(&config.business_time_zone).is_err()
        {
            problems.push(format!(
                "business_time_zone {:?} is not a time zone (an IANA name like Europe/London, or UTC)",
                config.business_time_zone
            ));
        }
        if !(1..=5).contains(&config.jetstream_replicas) {
            problems.push("jetstream_replicas must be 1 to 5".to_owned());
        }
        let token_ok = |t: &str| {
            !t.is_empty()
                && t.split('.').all(|p| {
                    !p.is_empty() && !p.contains(['*', '>']) && !p.chars().any(char::is_whitespace)
                })
        };
        if !token_ok(&config.nats_subject_prefix) {
            problems.push(format!(
                "nats_subject_prefix {:?} is not a subject like complaints.events",
                config.nats_subject_prefix
            ));
        }
        if config.nats_stream.is_empty() || config.nats_stream.contains(['.', '*', '>', ' ']) {
            problems.push(format!(
                "nats_stream {:?} is not a stream name",
                config.nats_stream
            ));
        }
        if !(1024..=64 << 20).contains(&config.max_message_bytes) {
            problems.push("max_message_bytes must be between 1 KiB and 64 MiB".to_owned());
        }
        if config.max_concurrent_calls_per_connection == 0 {
            problems.push("max_concurrent_calls_per_connection must be at least 1".to_owned());
        }
        if config.call_timeout_seconds == 0 {
            problems.push("call_timeout_seconds must be at least 1".to_owned());
        }
        let readable = |problems: &mut Vec<String>, name: &str, path: &Path| {
            if let Err(e) = std::fs::read(path) {
                problems.push(format!("{name} {}: {e}", path.display()));
            }
        };
        match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => {
                readable(&mut problems, "tls_cert", cert);
                readable(&mut problems, "tls_key", key);
            }
            (None, None) => {}
            _ => problems.push("tls_cert and tls_key go together".to_owned()),
        }
        if let Some(ca) = &config.tls_client_ca {
            readable(&mut problems, "tls_client_ca", ca);
            if config.tls_cert.is_none() {
                problems.push("tls_client_ca (mutual TLS) needs tls_cert and tls_key".to_owned());
            }
        }
        for path in &config.jwt_keys {
            readable(&mut problems, "jwt_keys", path);
        }
        if !config.jwt_keys.is_empty()
            && (config.jwt_issuer.is_none() || config.jwt_audience.is_none())
        {
            problems.push("jwt_keys need jwt_issuer and jwt_audience".to_owned());
        }
        for (name, roles) in &config.certificate_roles {
            for role in roles {
                if role.parse::<complaints_domain::model::Role>().is_err() {
                    problems.push(format!("certificate_roles.{name}: unknown role {role:?}"));
                }
            }
        }
        if config.auth == AuthMode::Verified {
            if config.jwt_keys.is_empty() && config.tls_client_ca.is_none() {
                problems.push(
                    "auth = \"verified\" needs jwt_keys (bearer tokens) or tls_client_ca (client certificates)"
                        .to_owned(),
                );
            }
            if config.tls_cert.is_none() && !config.listen.ip().is_loopback() {
                problems.push(format!(
                    "bearer tokens over plain TCP: refusing to listen on {} without tls_cert and tls_key",
                    config.listen
                ));
            }
        }
        if config.repeated_cause_count == 1 {
            problems.push(
                "repeated_cause_count 1 would raise every finding: use 0 (off) or 2 or more".into(),
            );
        }
        if config.repeated_cause_count > 0 && !(1..=3653).contains(&config.repeated_cause_days) {
            problems.push("repeated_cause_days must be between 1 and 3653".into());
        }
        if let Some(path) = &config.reports_mapping {
            match std::fs::read_to_string(path) {
                Ok(text) => {
                    if let Err(e) = complaints_workflow::reports::LoadedMapping::parse(
                        &text,
                        &path.display().to_string(),
                    ) {
                        problems.push(format!("reports_mapping {e}"));
                    }
                }
                Err(e) => problems.push(format!("reports_mapping {}: {e}", path.display())),
            }
        }
        if let Some(path) = &config.audit_signing_key {
            match std::fs::read_to_string(path) {
                Ok(pem) => {
                    if let Err(e) = eventlog::audit::Signer::from_pem(&pem) {
                        problems.push(format!("audit_signing_key {}: {e}", path.display()));
                    }
                }
                Err(e) => problems.push(format!("audit_signing_key {}: {e}", path.display())),
            }
        }
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError(problems))
        }
    }
}

/// The environment's overrides of the file's settings: each variable's text turned into
/// its setting, or a problem naming the variable and what it should be.
struct Overrides<'a, E> {
    env: &'a E,
    problems: &'a mut Vec<String>,
}

impl<E: Fn(&str) -> Option<String>> Overrides<'_, E> {
    fn text(&mut self, var: &str) -> Option<String> {
        (self.env)(var)
    }

    /// A value with a textual form (an address, a number).
    fn parsed<T: std::str::FromStr>(&mut self, var: &str, expected: &str, slot: &mut T) {
        if let Some(text) = self.text(var) {
            match text.parse() {
                Ok(value) => *slot = value,
                Err(_) => self
                    .problems
                    .push(format!("{var}={text:?} is not {expected}")),
            }
        }
    }

    /// One of a few names; the problem names the first two choices.
    fn choice<T: Copy>(&mut self, var: &str, choices: &[(&str, T)], slot: &mut T) {
        if let Some(text) = self.text(var) {
            match choices.iter().find(|(name, _)| *name == text) {
                Some((_, value)) => *slot = *value,
                None => {
                    let names: Vec<&str> = choices.iter().take(2).map(|(n, _)| *n).collect();
                    self.problems
                        .push(format!("{var}={text:?} is not {}", names.join(" or ")));
                }
            }
        }
    }

    fn path(&mut self, var: &str, slot: &mut Option<PathBuf>) {
        if let Some(text) = self.text(var) {
            *slot = Some(PathBuf::from(text));
        }
    }

    /// A URL; empty unsets it.
    fn url(&mut self, var: &str, slot: &mut Option<String>) {
        if let Some(text) = self.text(var) {
            *slot = Some(text).filter(|u| !u.is_empty());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |key| vars.get(key).cloned()
    }

    #[test]
    fn with_nothing_set_the_defaults_apply() {
        let config = Config::load(None, env(&[])).unwrap();
        assert_eq!(config.listen, "127.0.0.1:50051".parse().unwrap());
        assert_eq!(config.data_dir, PathBuf::from("./data"));
        assert_eq!(config.log_format, LogFormat::Text);
    }

    #[test]
    fn the_file_then_the_environment_override() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("complaintd.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:6000\"\ndata_dir = \"/var/lib/complaints\"\nlog_format = \"json\"\n").unwrap();
        let config =
            Config::load(Some(&path), env(&[("COMPLAINTD_LISTEN", "127.0.0.1:7000")])).unwrap();
        assert_eq!(config.listen, "127.0.0.1:7000".parse().unwrap());
        assert_eq!(config.data_dir, PathBuf::from("/var/lib/complaints"));
        assert_eq!(config.log_format, LogFormat::Json);
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let err = Config::load(
            None,
            env(&[
                ("COMPLAINTD_LISTEN", "nowhere"),
                ("COMPLAINTD_LOG_FORMAT", "xml"),
                ("COMPLAINTD_AUTH", "magic"),
            ]),
        )
        .unwrap_err();
        assert_eq!(err.0.len(), 3, "{err}");
    }

    #[test]
    fn the_business_time_zone_is_checked_and_defaults_to_utc() {
        assert_eq!(
            Config::load(None, env(&[])).unwrap().business_time_zone,
            "UTC"
        );
        let config = Config::load(
            None,
            env(&[("COMPLAINTD_BUSINESS_TIME_ZONE", "Asia/Shanghai")]),
        )
        .unwrap();
        assert_eq!(config.business_time_zone, "Asia/Shanghai");
        let err = Config::load(
            None,
            env(&[("COMPLAINTD_BUSINESS_TIME_ZONE", "Mars/Olympus_Mons")]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("business_time_zone"), "{err}");
    }

    #[test]
    fn unknown_keys_in_the_file_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("complaintd.toml");
        std::fs::write(&path, "listen_address = \"127.0.0.1:6000\"\n").unwrap();
        let err = Config::load(Some(&path), env(&[])).unwrap_err();
        assert!(err.to_string().contains("listen_address"), "{err}");
    }

    #[test]
    fn development_authentication_stays_on_loopback_unless_forced() {
        let err = Config::load(None, env(&[("COMPLAINTD_LISTEN", "0.0.0.0:50051")])).unwrap_err();
        assert!(err.to_string().contains("non-loopback"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("complaintd.toml");
        std::fs::write(
            &path,
            "listen = \"0.0.0.0:50051\"\nallow_dev_auth_on_network = true\n",
        )
        .unwrap();
        assert!(Config::load(Some(&path), env(&[])).is_ok());
    }
}
