//! The one place where failures become gRPC statuses. Messages are lowercase with no
//! trailing punctuation, carry no personal data, and internal details go to the log.

use complaints_domain::{DomainError, FieldViolation};
use complaints_workflow::WorkflowError;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::convert::api_field;

/// Most field violations one error lists: the details travel in a trailer, and clients
/// refuse trailers over 16 KiB (a request with 20,000 bad items must not produce 1.75 MB).
pub const MAX_VIOLATIONS: usize = 20;
/// Longest description of one violation, in characters.
const MAX_DESCRIPTION: usize = 300;

/// INVALID_ARGUMENT with a google.rpc.BadRequest listing every bad field: the first
/// [`MAX_VIOLATIONS`], then one more (with an empty field) saying how many were left out.
/// Every list a request carries is validated through here, so the cap holds everywhere.
pub fn invalid(violations: Vec<FieldViolation>) -> Status {
    bad_request(violations, None)
}

/// [`invalid`] with `message` instead of the list of fields.
fn bad_request(violations: Vec<FieldViolation>, message: Option<String>) -> Status {
    let total = violations.len();
    let mut details = ErrorDetails::new();
    let mut fields = Vec::with_capacity(total.min(MAX_VIOLATIONS));
    for v in violations.iter().take(MAX_VIOLATIONS) {
        let description = if v.description.chars().count() > MAX_DESCRIPTION {
            let cut: String = v.description.chars().take(MAX_DESCRIPTION).collect();
            format!("{cut}...")
        } else {
            v.description.clone()
        };
        details.add_bad_request_violation(v.field.clone(), description);
        fields.push(v.field.as_str());
    }
    let mut listed = format!("invalid fields: {}", fields.join(", "));
    if total > MAX_VIOLATIONS {
        let more = total - MAX_VIOLATIONS;
        details.add_bad_request_violation(
            "",
            format!("and {more} more invalid fields, not listed: correct these and retry"),
        );
        listed.push_str(&format!(" and {more} more"));
    }
    let message = message.unwrap_or(listed);
    Status::with_error_details(Code::InvalidArgument, message, details)
}

/// The status for a failed command or read.
pub fn status(error: WorkflowError) -> Status {
    match error {
        WorkflowError::Domain(DomainError::Invalid(violations)) => invalid(
            violations
                .into_iter()
                .map(|v| FieldViolation {
                    field: api_field(&v.field),
                    description: v.description,
                })
                .collect(),
        ),
        WorkflowError::Domain(DomainError::WrongState(reason)) => Status::failed_precondition(reason),
        WorkflowError::Domain(DomainError::NotPermitted(reason)) => Status::permission_denied(reason),
        WorkflowError::NotFound(id) => Status::not_found(format!("{id} not found")),
        WorkflowError::MergeTargetNotFound(id) => Status::with_error_details(
            Code::NotFound,
            format!("{id}, the complaint to merge into, not found"),
            ErrorDetails::with_resource_info(
                "complaints.v1.Complaint",
                id.name(),
                "",
                "the complaint to merge into (the request's `into`)",
            ),
        ),
        // A client's mistake in the request (like HTTP 422 for a reused idempotency key):
        // INVALID_ARGUMENT on the field, not FAILED_PRECONDITION, since no state of the
        // complaint would make it right.
        WorkflowError::RequestIdReused {
            request_id,
            complaint,
        } => bad_request(
            vec![FieldViolation {
                field: "request_id".into(),
                description: "was used for a different request: a retry must repeat the request exactly; use a new request_id for a new request".into(),
            }],
            Some(format!(
                "request_id {request_id} was used for a different request on {complaint}"
            )),
        ),
        WorkflowError::AlreadyExists(id) => Status::already_exists(format!("{id} already exists")),
        WorkflowError::Conflict { complaint, expected, actual } => Status::aborted(format!(
            "{complaint} is at version {actual}, not the expected {expected}: read it again and retry"
        )),
        WorkflowError::Contended(complaint) => {
            Status::aborted(format!("{complaint} is being changed by others: retry"))
        }
        WorkflowError::Decode(e) => {
            tracing::error!(error = %e, "stored event could not be read");
            Status::data_loss("a stored event could not be read")
        }
        WorkflowError::Log(e) => log_status(e),
        WorkflowError::PersonalDataErased => Status::failed_precondition(
            "the complainant's personal data was erased; nothing new can be recorded about them",
        ),
        WorkflowError::KeyStore(reason) => {
            tracing::error!(%reason, "key store failure");
            Status::unavailable("the key store is failing")
        }
    }
}

fn log_status(error: eventlog::Error) -> Status {
    match error {
        eventlog::Error::InvalidArgument { field, reason } => invalid(vec![FieldViolation {
            field,
            description: reason,
        }]),
        eventlog::Error::EventTooLarge { size, limit, .. } => Status::invalid_argument(format!(
            "the change is {size} bytes, over the limit of {limit} bytes"
        )),
        eventlog::Error::WrongExpectedVersion { .. }
        | eventlog::Error::IdempotencyConflict { .. } => {
            Status::aborted("the complaint changed concurrently: retry")
        }
        eventlog::Error::Corruption { position, reason } => {
            tracing::error!(position, %reason, "event log corruption");
            Status::data_loss("the event log is damaged")
        }
        eventlog::Error::Storage(reason) => {
            tracing::error!(%reason, "event log storage failure");
            Status::unavailable("storage is failing")
        }
        eventlog::Error::Closed => Status::unavailable("the server is shutting down"),
        eventlog::Error::ReadOnly(reason) => {
            Status::failed_precondition(format!("the server is read-only: {reason}"))
        }
    }
}

/// The status for an SLA computation that cannot be done.
pub fn sla(error: complaints_sla::SlaError) -> Status {
    use complaints_sla::SlaError;
    match error {
        SlaError::OutOfRange {
            calendar,
            date,
            reason,
        } => Status::failed_precondition(format!(
            "calendar {calendar} does not cover {date} ({reason}): an operator must add it"
        )),
        SlaError::UnknownCalendar(id) => {
            Status::failed_precondition(format!("calendar {id} is not loaded"))
        }
        SlaError::UnknownPolicy(id) => {
            Status::failed_precondition(format!("policy {id} is not loaded"))
        }
        SlaError::UnknownRegion { policy, region } => Status::failed_precondition(format!(
            "policy {policy} has no calendar for region {region}"
        )),
        SlaError::Invalid { what, reason } => {
            tracing::error!(%what, %reason, "SLA computation failed");
            Status::internal("the SLA could not be computed")
        }
        SlaError::TimeZone(zone, reason) => {
            tracing::error!(%zone, %reason, "time zone failure");
            Status::internal("the SLA could not be computed")
        }
    }
}

/// The status for a refused or failed queue operation.
pub fn queue(error: complaints_workflow::queue::QueueError) -> Status {
    use complaints_workflow::queue::QueueError;
    match error {
        QueueError::NotFound(id) => Status::not_found(format!("regulatorQueue/{id} not found")),
        QueueError::Empty => Status::not_found("no queue item is available"),
        QueueError::Refused(reason) => Status::failed_precondition(reason),
        QueueError::Conflict(id) => {
            Status::aborted(format!("regulatorQueue/{id} changed concurrently: retry"))
        }
        QueueError::Decode(e) => status(e.into()),
        QueueError::Log(e) => status(e.into()),
    }
}

/// The code gRPC specifies for a status tonic itself produced while reading a request,
/// where tonic's own choice misleads: an undecodable body is the caller's mistake
/// (INVALID_ARGUMENT, not INTERNAL), and a message over the size limit is
/// RESOURCE_EXHAUSTED (not OUT_OF_RANGE). `None`: the status stands as it is.
pub fn transport(status: &Status) -> Option<Status> {
    let message = status.message();
    match status.code() {
        Code::Internal if message.starts_with("failed to decode Protobuf message") => {
            Some(Status::invalid_argument(format!(
                "the request body is not a valid message of this method ({message})"
            )))
        }
        Code::OutOfRange if message.starts_with("Error, decoded message length too large") => Some(
            Status::resource_exhausted(format!("the request message is too large ({message})")),
        ),
        _ => None,
    }
}
