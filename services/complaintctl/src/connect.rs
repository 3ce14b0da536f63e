//! Where complaintd is and who is calling: the gRPC clients, and the development
//! authentication headers (`--as`, `--roles`) that every request carries.

use anyhow::Context;
use complaints_proto::complaints::admin::v1::admin_service_client::AdminServiceClient;
use complaints_proto::complaints::audit::v1::audit_service_client::AuditServiceClient;
use complaints_proto::complaints::reports::v1::report_service_client::ReportServiceClient;
use complaints_proto::complaints::v1::complaint_service_client::ComplaintServiceClient;
use tonic::transport::Channel;
use tonic::{Request, Response};

/// The global options: the server's address and the caller.
pub struct Target {
    server: String,
    principal: String,
    roles: String,
}

impl Target {
    pub fn new(server: String, principal: String, roles: String) -> Self {
        Self {
            server,
            principal,
            roles,
        }
    }

    /// The same caller, at another server.
    pub fn at(&self, server: String) -> Self {
        Self::new(server, self.principal.clone(), self.roles.clone())
    }

    /// The server's address.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// A request naming the caller.
    pub fn request<T>(&self, message: T) -> anyhow::Result<Request<T>> {
        let mut request = Request::new(message);
        request
            .metadata_mut()
            .insert("x-principal", self.principal.parse().context("--as")?);
        request
            .metadata_mut()
            .insert("x-roles", self.roles.parse().context("--roles")?);
        Ok(request)
    }

    /// Calls one method of complaintd's `ComplaintService` with `message`, as the caller:
    /// `target.call(message, async |c, r| c.get_complaint(r).await)`.
    pub async fn call<M, R>(
        &self,
        message: M,
        method: impl AsyncFnOnce(
            &mut ComplaintServiceClient<Channel>,
            Request<M>,
        ) -> Result<Response<R>, tonic::Status>,
    ) -> anyhow::Result<R> {
        let mut client = self.complaints().await?;
        Ok(method(&mut client, self.request(message)?)
            .await?
            .into_inner())
    }

    /// Past tonic's default limit of 4 MiB: answers of an older server may be larger (its
    /// regulator queue was answered whole: 4.4 MB for 28,236 items, measured).
    async fn complaints(&self) -> anyhow::Result<ComplaintServiceClient<Channel>> {
        Ok(ComplaintServiceClient::connect(self.server.clone())
            .await
            .with_context(|| self.cannot_reach())?
            .max_decoding_message_size(1 << 30))
    }

    /// Past tonic's default limit of 4 MiB, as for [`Target::complaints`]: an older
    /// server answers the queue as of a past moment whole too.
    pub async fn audit(&self) -> anyhow::Result<AuditServiceClient<Channel>> {
        Ok(AuditServiceClient::connect(self.server.clone())
            .await
            .with_context(|| self.cannot_reach())?
            .max_decoding_message_size(1 << 30))
    }

    /// The reports client: a return of every complaint of a half-year can be tens of
    /// megabytes, over tonic's default limit of 4 MiB.
    pub async fn reports(&self) -> anyhow::Result<ReportServiceClient<Channel>> {
        Ok(ReportServiceClient::connect(self.server.clone())
            .await
            .with_context(|| self.cannot_reach())?
            .max_decoding_message_size(1 << 30))
    }

    pub async fn admin(&self) -> anyhow::Result<AdminServiceClient<Channel>> {
        AdminServiceClient::connect(self.server.clone())
            .await
            .with_context(|| self.cannot_reach())
    }

    fn cannot_reach(&self) -> String {
        format!("cannot reach complaintd at {}", self.server)
    }
}
