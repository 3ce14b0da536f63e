//! Who may call what: the one place where every call is authenticated and checked against
//! its method's roles, before any service code runs.
//!
//! [`AuthLayer`] wraps the whole gRPC server: it authenticates the caller with the
//! configured [`Authenticator`], looks the method up in [`allowed_roles`] and either
//! refuses (`UNAUTHENTICATED`, `PERMISSION_DENIED`, `UNIMPLEMENTED` for a method it does not
//! have) or passes the call on with the
//! [`Principal`] in the request's extensions, where the services take it from
//! ([`principal`]). Health checks and reflection need no credentials.

use std::sync::Arc;
use std::task::{Context, Poll};

use complaints_domain::model::Role;
use complaints_workflow::Principal;
use futures::future::BoxFuture;
use tonic::metadata::MetadataMap;
use tonic::Status;

use crate::auth::Authenticator;

use Role::*;

/// Roles that see the complainant's personal data where a method returns it (besides the
/// roles that handle complaints). Auditors and compliance see it only with the
/// `personal_data` grant.
pub const HANDLES_COMPLAINTS: &[Role] = &[Intake, Handler, Supervisor, RegulatorGateway];

/// Who may call a method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without credentials (health checks, reflection).
    Public,
    /// An authenticated caller with one of these roles.
    Roles(&'static [Role]),
    /// Not a method this server has: UNIMPLEMENTED, whoever asks. A new RPC missing from
    /// [`allowed_roles`] is refused this way too (the role-matrix test catches it).
    Unknown,
}

/// Who may call `path` (`/package.Service/Method`).
pub fn allowed_roles(path: &str) -> Access {
    if path.starts_with("/grpc.health.v1.Health/") || path.starts_with("/grpc.reflection.") {
        return Access::Public;
    }
    let method = path.rsplit('/').next().unwrap_or_default();
    let roles: &'static [Role] =
        if let Some(method) = path.strip_prefix("/complaints.audit.v1.AuditService/") {
            match method {
                "StreamEvents"
                | "GetDigest"
                | "Verify"
                | "GetComplaintAsOf"
                | "GetBoardAsOf"
                | "ListRegulatorQueueAsOf"
                | "ListBackdatedEntries" => &[Auditor],
                _ => return Access::Unknown,
            }
        } else if let Some(method) = path.strip_prefix("/complaints.reports.v1.ReportService/") {
            match method {
                // Returns and analysis carry no personal data.
                "GetReport" => &[Auditor, Compliance],
                _ => return Access::Unknown,
            }
        } else if let Some(method) = path.strip_prefix("/complaints.admin.v1.AdminService/") {
            match method {
                // The key store's entries, for backups: keys of personal data.
                "StreamKeys" => &[Admin],
                _ => return Access::Unknown,
            }
        } else if path.starts_with("/complaints.v1.ComplaintService/") {
            match method {
                // Intake: receive and acknowledge; the gateway receives transfers in.
                "RegisterComplaint" => &[Intake, RegulatorGateway],
                "AcknowledgeComplaint" => &[Intake, Handler, Supervisor],
                "DeclineComplaint" | "MergeComplaint" => &[Intake, Handler, Supervisor],
                // Reading a complaint shows personal data: people who handle complaints, and
                // auditors and compliance (personal fields hidden without the personal_data
                // grant).
                "GetComplaint" => &[
                    Intake,
                    Handler,
                    Supervisor,
                    RegulatorGateway,
                    Auditor,
                    Compliance,
                ],
                // Lists and SLA views carry no personal data: operations too.
                "ListComplaints" | "GetComplaintSla" | "ListClocks" | "GetBoard" | "WatchSla" => {
                    &[Intake, Handler, Supervisor, Operations, Auditor, Compliance]
                }
                // Handlers investigate, answer and ask for more time.
                "ClassifyComplex"
                | "RecordFindings"
                | "ProposeRedress"
                | "AnswerComplaint"
                | "SendHoldingResponse"
                | "RequestExtension"
                | "PauseClock"
                | "ResumeClock"
                | "AddNewFacts"
                | "WithdrawComplaint"
                | "RequestReview"
                | "RecordSatisfaction"
                | "AnswerReview"
                | "ReferToRegulator"
                | "CloseComplaint" => &[Handler, Supervisor],
                // Assignment: intake routes a new complaint; supervisors reassign.
                "AssignComplaint" => &[Intake, Supervisor],
                // Supervisors approve extensions and reopen.
                "ApproveExtension" | "ReopenComplaint" => &[Supervisor],
                // The regulator gateway works the transfer queue and records outcomes.
                "ListRegulatorQueue" => &[RegulatorGateway, Supervisor, Operations, Compliance],
                "LeaseRegulatorQueueItem" | "AcknowledgeRegulatorQueueItem" => &[RegulatorGateway],
                "RecordRegulatorOutcome" => &[RegulatorGateway, Supervisor],
                "ErasePersonalData" => &[Admin],
                "GetPublisherStatus" => &[Operations, Supervisor, Admin],
                _ => return Access::Unknown,
            }
        } else {
            return Access::Unknown;
        };
    Access::Roles(roles)
}

/// Authenticates and authorises a call to `path`: the principal, or the refusal.
pub fn check(
    auth: &dyn Authenticator,
    path: &str,
    metadata: &MetadataMap,
    extensions: &http::Extensions,
) -> Result<Option<Principal>, Status> {
    let allowed = match allowed_roles(path) {
        Access::Public => return Ok(None),
        Access::Unknown => {
            return Err(Status::unimplemented(format!(
                "{path} is not a method of this server"
            )))
        }
        Access::Roles(allowed) => allowed,
    };
    let principal = auth.authenticate(metadata, extensions)?;
    if !allowed.iter().any(|r| principal.roles.contains(r)) {
        let names: Vec<&str> = allowed.iter().map(|r| r.as_str()).collect();
        let method = path.rsplit('/').next().unwrap_or_default();
        return Err(Status::permission_denied(format!(
            "{method} needs one of the roles {}",
            names.join(", ")
        )));
    }
    Ok(Some(principal))
}

/// The authenticated caller of a call that went through [`AuthLayer`].
pub fn principal<T>(request: &tonic::Request<T>) -> Result<Principal, Status> {
    request
        .extensions()
        .get::<Principal>()
        .cloned()
        .ok_or_else(|| Status::unauthenticated("no authenticated principal"))
}

/// Whether the caller may see complainants' personal data.
pub fn sees_personal_data(principal: &Principal) -> bool {
    HANDLES_COMPLAINTS
        .iter()
        .chain([&PersonalData])
        .any(|r| principal.roles.contains(r))
}

/// The tower layer that puts [`check`] in front of every service.
#[derive(Clone)]
pub struct AuthLayer {
    auth: Arc<dyn Authenticator>,
}

impl AuthLayer {
    pub fn new(auth: Arc<dyn Authenticator>) -> Self {
        Self { auth }
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            auth: self.auth.clone(),
        }
    }
}

#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    auth: Arc<dyn Authenticator>,
}

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for AuthService<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<ReqBody>) -> Self::Future {
        let metadata = MetadataMap::from_headers(request.headers().clone());
        let checked = check(
            &*self.auth,
            request.uri().path(),
            &metadata,
            request.extensions(),
        );
        match checked {
            Ok(principal) => {
                if let Some(principal) = principal {
                    request.extensions_mut().insert(principal);
                }
                // The clone is the ready one's twin (tower's usual pattern).
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                Box::pin(inner.call(request))
            }
            Err(status) => Box::pin(async move { Ok(status.into_http()) }),
        }
    }
}
