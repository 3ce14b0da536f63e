//! Who is calling. One pluggable layer: every RPC asks the configured [`Authenticator`]
//! for the principal; the principal (never a field the client fills in) is stored on every
//! event.

use std::collections::BTreeSet;

use complaints_domain::model::Role;
use complaints_workflow::Principal;
use tonic::metadata::MetadataMap;
use tonic::Status;

/// Turns request metadata into a principal, or refuses.
pub trait Authenticator: Send + Sync + 'static {
    /// `extensions` carry what the connection knows (the client's TLS certificates).
    fn authenticate(
        &self,
        metadata: &MetadataMap,
        extensions: &http::Extensions,
    ) -> Result<Principal, Status>;
}

/// Development mode: trusts the `x-principal` and `x-roles` (comma-separated) headers.
/// For local use only; the server refuses it on a non-loopback address unless forced.
#[derive(Debug, Default, Clone, Copy)]
pub struct DevHeaders;

/// Header naming the principal in development mode.
pub const PRINCIPAL_HEADER: &str = "x-principal";
/// Longest principal name, in bytes (what the log keeps as an event's actor).
pub const MAX_PRINCIPAL: usize = 256;
/// Header listing the roles in development mode.
pub const ROLES_HEADER: &str = "x-roles";

impl Authenticator for DevHeaders {
    fn authenticate(
        &self,
        metadata: &MetadataMap,
        _extensions: &http::Extensions,
    ) -> Result<Principal, Status> {
        let id = match metadata.get(PRINCIPAL_HEADER).map(|v| v.to_str()) {
            None => return Err(Status::unauthenticated("missing x-principal header")),
            Some(Err(_)) => return Err(Status::unauthenticated("x-principal is not text")),
            Some(Ok(id)) => id.trim(),
        };
        if id.is_empty() {
            return Err(Status::unauthenticated("x-principal is empty"));
        }
        if id.len() > MAX_PRINCIPAL {
            return Err(Status::unauthenticated(format!(
                "x-principal is too long: at most {MAX_PRINCIPAL} bytes"
            )));
        }
        let mut roles = BTreeSet::new();
        if let Some(list) = metadata.get(ROLES_HEADER) {
            let list = list
                .to_str()
                .map_err(|_| Status::unauthenticated("x-roles is not text"))?;
            for role in list.split(',').map(str::trim).filter(|r| !r.is_empty()) {
                let role: Role = role.parse().map_err(|_| {
                    Status::unauthenticated(format!("unknown role {role:?} in x-roles"))
                })?;
                roles.insert(role);
            }
        }
        Ok(Principal {
            id: id.to_owned(),
            roles,
        })
    }
}

/// Production authentication: a bearer token (JWT) in `authorization`, or else the
/// client certificate of a mutual-TLS connection. Whichever is presented must verify.
pub struct Verified {
    pub jwt: Option<JwtVerifier>,
    pub certificates: Option<CertificateRoles>,
}

impl Authenticator for Verified {
    fn authenticate(
        &self,
        metadata: &MetadataMap,
        extensions: &http::Extensions,
    ) -> Result<Principal, Status> {
        if let Some(value) = metadata.get("authorization") {
            let jwt = self.jwt.as_ref().ok_or_else(|| {
                Status::unauthenticated("bearer tokens are not accepted by this server")
            })?;
            let value = value
                .to_str()
                .map_err(|_| Status::unauthenticated("the authorization header is not text"))?;
            let token = value.strip_prefix("Bearer ").ok_or_else(|| {
                Status::unauthenticated("authorization must be \"Bearer <token>\"")
            })?;
            return jwt.verify(token.trim());
        }
        if let Some(certificates) = &self.certificates {
            if let Some(principal) = certificates.principal(extensions)? {
                return Ok(principal);
            }
        }
        Err(Status::unauthenticated(
            "no credentials: present a bearer token or a client certificate",
        ))
    }
}

/// Verifies JWTs: signature by one of the configured keys, issuer, audience, expiry.
pub struct JwtVerifier {
    keys: Vec<(jsonwebtoken::DecodingKey, jsonwebtoken::Algorithm)>,
    issuer: String,
    audience: String,
}

#[derive(serde::Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    roles: Vec<String>,
}

impl JwtVerifier {
    /// From PEM public keys (RSA: RS256, EC P-256: ES256, Ed25519: EdDSA).
    pub fn new(pems: &[String], issuer: &str, audience: &str) -> Result<Self, String> {
        use jsonwebtoken::{Algorithm, DecodingKey};
        let mut keys = Vec::new();
        for (i, pem) in pems.iter().enumerate() {
            let bytes = pem.as_bytes();
            let key = if let Ok(k) = DecodingKey::from_ed_pem(bytes) {
                (k, Algorithm::EdDSA)
            } else if let Ok(k) = DecodingKey::from_ec_pem(bytes) {
                (k, Algorithm::ES256)
            } else if let Ok(k) = DecodingKey::from_rsa_pem(bytes) {
                (k, Algorithm::RS256)
            } else {
                return Err(format!(
                    "key {i} is not a PEM public key (RSA, EC P-256 or Ed25519)"
                ));
            };
            keys.push(key);
        }
        if keys.is_empty() {
            return Err("no keys to verify tokens with".into());
        }
        Ok(Self {
            keys,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
        })
    }

    pub fn verify(&self, token: &str) -> Result<Principal, Status> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| Status::unauthenticated("the bearer token is malformed"))?;
        let mut last = "no key for the token's algorithm".to_owned();
        for (key, algorithm) in self.keys.iter().filter(|(_, a)| *a == header.alg) {
            let mut validation = jsonwebtoken::Validation::new(*algorithm);
            validation.set_issuer(&[&self.issuer]);
            validation.set_audience(&[&self.audience]);
            validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
            match jsonwebtoken::decode::<Claims>(token, key, &validation) {
                Ok(data) => return principal_with_roles(data.claims.sub, &data.claims.roles),
                Err(e) => last = token_problem(&e),
            }
        }
        Err(Status::unauthenticated(format!(
            "the bearer token is not valid: {last}"
        )))
    }
}

fn token_problem(e: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind::*;
    match e.kind() {
        ExpiredSignature => "expired".into(),
        ImmatureSignature => "not valid yet".into(),
        InvalidIssuer => "wrong issuer".into(),
        InvalidAudience => "wrong audience".into(),
        InvalidSignature => "bad signature".into(),
        MissingRequiredClaim(c) => format!("missing claim {c}"),
        _ => "unreadable".into(),
    }
}

fn principal_with_roles(id: String, roles: &[String]) -> Result<Principal, Status> {
    if id.is_empty() {
        return Err(Status::unauthenticated("the principal name is empty"));
    }
    if id.len() > MAX_PRINCIPAL {
        return Err(Status::unauthenticated(format!(
            "the principal name is too long: at most {MAX_PRINCIPAL} bytes"
        )));
    }
    let mut set = BTreeSet::new();
    for role in roles {
        let role: Role = role
            .parse()
            .map_err(|_| Status::unauthenticated(format!("unknown role {role:?}")))?;
        set.insert(role);
    }
    Ok(Principal { id, roles: set })
}

/// Principals of client certificates: the subject's common name, with the roles the
/// configuration gives that name (none if it gives none: such a caller is authenticated
/// but may do nothing).
pub struct CertificateRoles {
    pub roles: std::collections::BTreeMap<String, Vec<String>>,
}

impl CertificateRoles {
    fn principal(&self, extensions: &http::Extensions) -> Result<Option<Principal>, Status> {
        use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
        let Some(info) = extensions.get::<TlsConnectInfo<TcpConnectInfo>>() else {
            return Ok(None);
        };
        let Some(chain) = info.peer_certs() else {
            return Ok(None);
        };
        let Some(leaf) = chain.first() else {
            return Ok(None);
        };
        let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref())
            .map_err(|_| Status::unauthenticated("the client certificate is unreadable"))?;
        let name = cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .ok_or_else(|| Status::unauthenticated("the client certificate has no common name"))?
            .to_owned();
        let roles = self.roles.get(&name).cloned().unwrap_or_default();
        principal_with_roles(name, &roles).map(Some)
    }
}
