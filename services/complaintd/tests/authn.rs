//! Production authentication: bearer tokens (JWT: signature, issuer, audience, expiry) and
//! client certificates (mutual TLS), the principal each yields, and the development
//! headers ignored once verified authentication is on.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use std::collections::BTreeMap;

use common::{ed25519_key, req_as, token, unix_now, with_bearer, write, TestServer, NOW};
use complaintd::config::{AuthMode, Config};
use complaints_proto::complaints::v1 as api;
use complaints_proto::complaints::v1::complaint_service_client::ComplaintServiceClient;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tonic::{Code, Request};
use uuid::Uuid;

fn register() -> api::RegisterComplaintRequest {
    common::register("UK-FCA-DISP", "GB-ENG", NOW - 60)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_tokens_are_verified_and_name_the_principal() {
    let dir = tempfile::tempdir().unwrap();
    let (private, public) = ed25519_key();
    let (stranger, _) = ed25519_key();
    let server = common::jwt_server(dir.path(), &public).await;
    let mut c = server.complaints();
    let claims = |sub: &str, roles: &[&str], iss: &str, aud: &str, exp: i64| serde_json::json!({"sub": sub, "roles": roles, "iss": iss, "aud": aud, "exp": exp});
    let good = |sub: &str, roles: &[&str]| {
        token(
            &private,
            claims(
                sub,
                roles,
                "https://idp.example",
                "complaints",
                unix_now() + 600,
            ),
        )
    };

    let created = c
        .register_complaint(with_bearer(register(), &good("alice@bank", &["intake"])))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.version, 1);

    let code = |r: Result<tonic::Response<api::Complaint>, tonic::Status>| {
        r.map(|_| Code::Ok).unwrap_or_else(|s| s.code())
    };
    for (bad, why) in [
        (
            token(
                &private,
                claims(
                    "a",
                    &["intake"],
                    "https://idp.example",
                    "complaints",
                    unix_now() - 3600,
                ),
            ),
            "expired",
        ),
        (
            token(
                &private,
                claims(
                    "a",
                    &["intake"],
                    "https://evil.example",
                    "complaints",
                    unix_now() + 600,
                ),
            ),
            "wrong issuer",
        ),
        (
            token(
                &private,
                claims(
                    "a",
                    &["intake"],
                    "https://idp.example",
                    "other",
                    unix_now() + 600,
                ),
            ),
            "wrong audience",
        ),
        (
            token(
                &stranger,
                claims(
                    "a",
                    &["intake"],
                    "https://idp.example",
                    "complaints",
                    unix_now() + 600,
                ),
            ),
            "bad signature",
        ),
        ("not.a.token".to_owned(), "malformed"),
    ] {
        let status = c
            .register_complaint(with_bearer(register(), &bad))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{why}");
        assert!(
            status.message().contains(why),
            "{why}: {}",
            status.message()
        );
    }
    // Development headers mean nothing here.
    let dev = req_as(register(), "user:me", "intake");
    assert_eq!(code(c.register_complaint(dev).await), Code::Unauthenticated);
    // A valid token without the role.
    assert_eq!(
        code(
            c.register_complaint(with_bearer(register(), &good("ops@bank", &["operations"])))
                .await
        ),
        Code::PermissionDenied
    );
    let stopped = server.shutdown().await;

    // The stored actor is the token's subject.
    let log = eventlog_sled::SledEventLog::open(eventlog_sled::SledConfig::new(
        stopped.data_dir().join("log"),
    ))
    .unwrap();
    use eventlog::EventLog;
    let events = log
        .read_all(1, eventlog::Direction::Forward, 10)
        .await
        .unwrap();
    let registered = events
        .iter()
        .find(|e| e.event_type == "complaint.registered")
        .unwrap();
    assert_eq!(registered.actor, "alice@bank");
    log.close().await.unwrap();
}

struct Pki {
    ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Pki {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        let ca_pem = params.self_signed(&key).unwrap().pem();
        Self {
            ca_pem,
            issuer: Issuer::new(params, key),
        }
    }

    /// A certificate for `common_name` (valid for localhost): (cert PEM, key PEM).
    fn issue(&self, common_name: &str) -> (String, String) {
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_authenticate_services_over_mutual_tls() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new("Complaints test CA");
    let (server_cert, server_key) = pki.issue("complaintd");
    let (cert, key, ca) = (
        write(dir.path(), "server.pem", &server_cert),
        write(dir.path(), "server.key", &server_key),
        write(dir.path(), "ca.pem", &pki.ca_pem),
    );
    let server = TestServer::start(|config| {
        config.auth = AuthMode::Verified;
        config.tls_cert = Some(cert);
        config.tls_key = Some(key);
        config.tls_client_ca = Some(ca);
        config.certificate_roles = BTreeMap::from([(
            "svc-gateway".to_owned(),
            vec!["regulator_gateway".to_owned()],
        )]);
    })
    .await;
    let url = format!("https://localhost:{}", server.addr().port());
    let connect = |identity: Option<(String, String)>, ca: String| {
        let url = url.clone();
        async move {
            let mut tls = ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(ca))
                .domain_name("localhost");
            if let Some((cert, key)) = identity {
                tls = tls.identity(Identity::from_pem(cert, key));
            }
            Channel::from_shared(url)
                .unwrap()
                .tls_config(tls)
                .unwrap()
                .connect()
                .await
        }
    };

    // The gateway's certificate: its common name is the principal, with its roles.
    let channel = connect(Some(pki.issue("svc-gateway")), pki.ca_pem.clone())
        .await
        .unwrap();
    let mut gateway = ComplaintServiceClient::new(channel);
    let created = gateway
        .register_complaint(Request::new(register()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.version, 1, "transfers in: the gateway may register");
    let denied = gateway
        .acknowledge_complaint(Request::new(api::AcknowledgeComplaintRequest {
            name: created.name.clone(),
            request_id: Uuid::new_v4().to_string(),
            expected_version: None,
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);

    // A certificate of the CA for a name with no roles: known, but may do nothing.
    let channel = connect(Some(pki.issue("svc-unknown")), pki.ca_pem.clone())
        .await
        .unwrap();
    let refused = ComplaintServiceClient::new(channel)
        .register_complaint(Request::new(register()))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);

    // No certificate, or one from another CA: the handshake fails, nothing is served.
    let stranger = Pki::new("Someone else's CA");
    for identity in [None, Some(stranger.issue("svc-gateway"))] {
        let outcome = match connect(identity, pki.ca_pem.clone()).await {
            Err(_) => Code::Unavailable,
            Ok(channel) => ComplaintServiceClient::new(channel)
                .register_complaint(Request::new(register()))
                .await
                .map(|_| Code::Ok)
                .unwrap_or_else(|s| s.code()),
        };
        assert_ne!(outcome, Code::Ok);
        assert_ne!(outcome, Code::PermissionDenied, "refused before any call");
    }
    server.shutdown().await;
}

#[test]
fn verified_authentication_needs_keys_or_a_client_ca() {
    let err = Config::load(None, |k| match k {
        "COMPLAINTD_AUTH" => Some("verified".into()),
        _ => None,
    })
    .unwrap_err();
    assert!(err.to_string().contains("needs jwt_keys"), "{err}");
}
