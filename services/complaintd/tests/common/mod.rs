//! What several test files share: the in-process server and the request builders of
//! complaints-testkit (shared with complaintctl's and the end-to-end tests), and a
//! registration.
#![allow(dead_code, unused_imports)]

use complaints_proto::complaints::v1 as api;
use ed25519_dalek::pkcs8::{EncodePrivateKey, EncodePublicKey};

pub use complaints_testkit::{
    copy_dir, manual_clock, req, req_as, rid, ts, with_bearer, Clients, Stopped, TestServer, NOW,
};

/// A registration under `regime` from `region`, received at `received` (seconds).
pub fn register(regime: &str, region: &str, received: i64) -> api::RegisterComplaintRequest {
    api::RegisterComplaintRequest {
        request_id: rid(),
        complaint_id: String::new(),
        channel: api::Channel::Email as i32,
        complainant: Some(api::Complainant {
            person_id: "person-1".into(),
            name: "Ada Lovelace".into(),
            contact: "ada@example.org".into(),
            id_number: String::new(),
        }),
        unit: "cards".into(),
        employee: String::new(),
        product: "credit card".into(),
        category: "fees".into(),
        claim: "refund the fee".into(),
        facts: "charged twice".into(),
        receive_time: ts(received),
        regime: regime.into(),
        region: region.into(),
        regulator: None,
        variant: String::new(),
    }
}

/// An Ed25519 key: the private PEM (to sign tokens) and the public PEM (for the server).
pub fn ed25519_key() -> (String, String) {
    let key = ed25519_dalek::SigningKey::from_bytes(&rand::random::<[u8; 32]>());
    (
        key.to_pkcs8_pem(Default::default()).unwrap().to_string(),
        key.verifying_key()
            .to_public_key_pem(Default::default())
            .unwrap(),
    )
}

pub fn token(private_pem: &str, claims: serde_json::Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA),
        &claims,
        &jsonwebtoken::EncodingKey::from_ed_pem(private_pem.as_bytes()).unwrap(),
    )
    .unwrap()
}

pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Writes `text` to `dir/name`; its path.
pub fn write(dir: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// A server that verifies bearer tokens signed by the Ed25519 key whose public PEM is
/// `public` (issuer `https://idp.example`, audience `complaints`); the key's file goes in
/// `dir`. Tokens are checked against the real time; the log's clock is the test's.
pub async fn jwt_server(dir: &std::path::Path, public: &str) -> TestServer {
    let jwt_key = write(dir, "jwt.pub.pem", public);
    TestServer::start(|config| {
        config.auth = complaintd::config::AuthMode::Verified;
        config.jwt_keys = vec![jwt_key];
        config.jwt_issuer = Some("https://idp.example".into());
        config.jwt_audience = Some("complaints".into());
    })
    .await
}
