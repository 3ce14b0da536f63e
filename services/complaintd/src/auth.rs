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
/// Header listing the roles in development mode.
pub const ROLES_HEADER: &str = "x-roles";

impl Authenticator for DevHeaders {
    fn authenticate(
        &self,
        metadata: &MetadataMap,
        _extensions: &http::Extensions,
    ) -> Result<Principal, Status> {
        let id = metadata
            .get(PRINCIPAL_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty() && v.len() <= 256)
            .ok_or_else(|| Status::unauthenticated("missing x-principal header"))?;
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
