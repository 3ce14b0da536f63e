//! The `complaints.admin.v1.AdminService` implementation: what an online backup needs
//! besides the log. Every call needs the admin role ([`crate::authz`]).
//!
//! `StreamKeys` sends the keys of complainants' personal data: serve it only over TLS in
//! production. Nothing here logs a key (a [`KeyEntry`]'s `Debug` redacts it).

use std::sync::Arc;

use complaints_events::personal::{KeyEntry, KeyStore};
use complaints_proto::complaints::admin::v1 as admin;
use complaints_proto::complaints::admin::v1::admin_service_server::AdminService;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

/// Entries read from the key store per page.
const PAGE: usize = 1024;

/// The admin service.
#[derive(Clone)]
pub struct Admin {
    keys: Option<Arc<dyn KeyStore>>,
}

impl Admin {
    pub fn new(keys: Option<Arc<dyn KeyStore>>) -> Self {
        Self { keys }
    }
}

fn entry_out(entry: KeyEntry) -> admin::KeyEntry {
    admin::KeyEntry {
        person_id: entry.person_id,
        state: Some(match entry.key {
            Some(key) => admin::key_entry::State::Key(key.to_vec().into()),
            None => admin::key_entry::State::Erased(true),
        }),
    }
}

/// Pages through the key store on a blocking thread (the stores' I/O is synchronous),
/// sending each entry; waits on the channel when the client is slow.
fn pump(
    keys: &Arc<dyn KeyStore>,
    erased_only: bool,
    tx: &mpsc::Sender<Result<admin::KeyEntry, Status>>,
) {
    let mut after: Option<String> = None;
    loop {
        let page = match keys.entries(after.as_deref(), PAGE) {
            Ok(page) => page,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the key store for a backup");
                let _ = tx.blocking_send(Err(Status::unavailable("cannot read the key store")));
                return;
            }
        };
        let Some(last) = page.last() else {
            return;
        };
        after = Some(last.person_id.clone());
        for entry in page {
            if erased_only && entry.key.is_some() {
                continue;
            }
            if tx.blocking_send(Ok(entry_out(entry))).is_err() {
                return; // the client went away
            }
        }
    }
}

#[tonic::async_trait]
impl AdminService for Admin {
    type StreamKeysStream = ReceiverStream<Result<admin::KeyEntry, Status>>;

    async fn stream_keys(
        &self,
        request: Request<admin::StreamKeysRequest>,
    ) -> Result<Response<Self::StreamKeysStream>, Status> {
        let principal = crate::authz::principal(&request)?;
        let erased_only = request.into_inner().erased_only;
        let keys = self
            .keys
            .clone()
            .ok_or_else(|| Status::failed_precondition("no key store is configured"))?;
        tracing::info!(actor = %principal.id, erased_only, "key store streamed for a backup");
        let (tx, rx) = mpsc::channel(64);
        tokio::task::spawn_blocking(move || pump(&keys, erased_only, &tx));
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}
