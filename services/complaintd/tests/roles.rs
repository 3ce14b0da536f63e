//! The role matrix: every RPC of every service, called under every role (and with no
//! credentials), is allowed or denied exactly as the table below says. The RPCs are read
//! from the compiled descriptors, so a new RPC missing from the table fails this test.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use std::collections::{BTreeMap, BTreeSet};

use bytes::{Buf, BufMut};
use common::{req_as, TestServer};
use complaints_domain::model::Role;
use prost_reflect::DescriptorPool;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;
use tonic::{Code, Status};

/// Who may call what, as the security design states it (issue 7): intake registers and
/// acknowledges; handlers investigate, answer and ask for extensions; supervisors approve
/// extensions, reopen and reassign (and may do what handlers do); the regulator gateway
/// works the regulator queue and brings transfers in; auditors read history and digests
/// and verify; auditors and compliance produce regulatory returns; compliance reads complaints (personal fields withheld without the
/// personal_data grant), lists, SLA views, boards and the regulator queue; operations see
/// SLA views and boards (no personal data); admin erases.
const MATRIX: &[(&str, &[&str])] = &[
    (
        "ComplaintService/RegisterComplaint",
        &["intake", "regulator_gateway"],
    ),
    (
        "ComplaintService/GetComplaint",
        &[
            "intake",
            "handler",
            "supervisor",
            "regulator_gateway",
            "auditor",
            "compliance",
        ],
    ),
    (
        "ComplaintService/ListComplaints",
        &[
            "intake",
            "handler",
            "supervisor",
            "operations",
            "auditor",
            "compliance",
        ],
    ),
    (
        "ComplaintService/GetComplaintSla",
        &[
            "intake",
            "handler",
            "supervisor",
            "operations",
            "auditor",
            "compliance",
        ],
    ),
    (
        "ComplaintService/ListClocks",
        &[
            "intake",
            "handler",
            "supervisor",
            "operations",
            "auditor",
            "compliance",
        ],
    ),
    (
        "ComplaintService/GetBoard",
        &[
            "intake",
            "handler",
            "supervisor",
            "operations",
            "auditor",
            "compliance",
        ],
    ),
    (
        "ComplaintService/WatchSla",
        &[
            "intake",
            "handler",
            "supervisor",
            "operations",
            "auditor",
            "compliance",
        ],
    ),
    (
        "ComplaintService/ListRegulatorQueue",
        &[
            "regulator_gateway",
            "supervisor",
            "operations",
            "compliance",
        ],
    ),
    (
        "ComplaintService/LeaseRegulatorQueueItem",
        &["regulator_gateway"],
    ),
    (
        "ComplaintService/AcknowledgeRegulatorQueueItem",
        &["regulator_gateway"],
    ),
    (
        "ComplaintService/AcknowledgeComplaint",
        &["intake", "handler", "supervisor"],
    ),
    (
        "ComplaintService/DeclineComplaint",
        &["intake", "handler", "supervisor"],
    ),
    (
        "ComplaintService/MergeComplaint",
        &["intake", "handler", "supervisor"],
    ),
    (
        "ComplaintService/AssignComplaint",
        &["intake", "supervisor"],
    ),
    (
        "ComplaintService/ClassifyComplex",
        &["handler", "supervisor"],
    ),
    (
        "ComplaintService/RecordFindings",
        &["handler", "supervisor"],
    ),
    (
        "ComplaintService/ProposeRedress",
        &["handler", "supervisor"],
    ),
    (
        "ComplaintService/AnswerComplaint",
        &["handler", "supervisor"],
    ),
    (
        "ComplaintService/SendHoldingResponse",
        &["handler", "supervisor"],
    ),
    (
        "ComplaintService/RequestExtension",
        &["handler", "supervisor"],
    ),
    ("ComplaintService/ApproveExtension", &["supervisor"]),
    ("ComplaintService/PauseClock", &["handler", "supervisor"]),
    ("ComplaintService/ResumeClock", &["handler", "supervisor"]),
    ("ComplaintService/AddNewFacts", &["handler", "supervisor"]),
    (
        "ComplaintService/WithdrawComplaint",
        &["handler", "supervisor"],
    ),
    ("ComplaintService/RequestReview", &["handler", "supervisor"]),
    (
        "ComplaintService/RecordSatisfaction",
        &["handler", "supervisor"],
    ),
    ("ComplaintService/AnswerReview", &["handler", "supervisor"]),
    (
        "ComplaintService/ReferToRegulator",
        &["handler", "supervisor"],
    ),
    (
        "ComplaintService/RecordRegulatorOutcome",
        &["regulator_gateway", "supervisor"],
    ),
    (
        "ComplaintService/CloseComplaint",
        &["handler", "supervisor"],
    ),
    ("ComplaintService/ReopenComplaint", &["supervisor"]),
    ("ComplaintService/ErasePersonalData", &["admin"]),
    (
        "ComplaintService/GetPublisherStatus",
        &["operations", "supervisor", "admin"],
    ),
    ("AuditService/StreamEvents", &["auditor"]),
    ("AuditService/GetDigest", &["auditor"]),
    ("AuditService/Verify", &["auditor"]),
    ("AuditService/GetComplaintAsOf", &["auditor"]),
    ("AuditService/GetBoardAsOf", &["auditor"]),
    ("AuditService/ListRegulatorQueueAsOf", &["auditor"]),
    ("AuditService/ListBackdatedEntries", &["auditor"]),
    ("AdminService/StreamKeys", &["admin"]),
    ("ReportService/GetReport", &["auditor", "compliance"]),
];

/// Sends and receives raw message bytes, so any method can be called with an empty request.
#[derive(Default, Clone)]
struct Raw;

impl Codec for Raw {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Raw;
    type Decoder = Raw;
    fn encoder(&mut self) -> Raw {
        Raw
    }
    fn decoder(&mut self) -> Raw {
        Raw
    }
}

impl Encoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let mut out = vec![0; src.remaining()];
        src.copy_to_slice(&mut out);
        Ok(Some(out))
    }
}

/// Calls `path` with an empty request as `roles` (no credentials when `None`): the code.
async fn call(channel: &Channel, path: &str, streaming: bool, roles: Option<&str>) -> Code {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.unwrap();
    let request = match roles {
        Some(roles) => req_as(Vec::new(), "user:matrix", roles),
        None => tonic::Request::new(Vec::new()),
    };
    let path = path.parse().unwrap();
    if streaming {
        // A refusal comes back at once (trailers only); a stream let through may wait
        // for events indefinitely (WatchSla), so its first message is not awaited.
        match grpc.server_streaming(request, path, Raw).await {
            Ok(_) => Code::Ok,
            Err(status) => status.code(),
        }
    } else {
        match grpc.unary(request, path, Raw).await {
            Ok(_) => Code::Ok,
            Err(status) => status.code(),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_under_every_role_is_allowed_or_denied_as_the_matrix_says() {
    let server = TestServer::start(|_| {}).await;
    let channel = server.channel();

    let pool = DescriptorPool::decode(complaints_proto::FILE_DESCRIPTOR_SET).unwrap();
    let matrix: BTreeMap<&str, BTreeSet<&str>> = MATRIX
        .iter()
        .map(|(m, roles)| (*m, roles.iter().copied().collect()))
        .collect();
    let mut seen = BTreeSet::new();
    let mut wrong = Vec::new();
    // Every service of ours: a new one missing from the matrix fails here.
    for service in pool
        .services()
        .filter(|s| s.full_name().starts_with("complaints."))
    {
        for method in service.methods() {
            let key = format!("{}/{}", service.name(), method.name());
            let Some(allowed) = matrix.get(key.as_str()) else {
                wrong.push(format!("{key}: not in the matrix"));
                continue;
            };
            seen.insert(key.clone());
            let path = format!("/{}/{}", service.full_name(), method.name());
            let streaming = method.is_server_streaming();
            let anonymous = call(&channel, &path, streaming, None).await;
            if anonymous != Code::Unauthenticated {
                wrong.push(format!("{key} without credentials: {anonymous:?}"));
            }
            for role in Role::ALL {
                let code = call(&channel, &path, streaming, Some(role.as_str())).await;
                let denied = code == Code::PermissionDenied;
                let should_deny = !allowed.contains(role.as_str());
                if denied != should_deny {
                    wrong.push(format!(
                        "{key} as {role}: {code:?}, expected {}",
                        if should_deny {
                            "PermissionDenied"
                        } else {
                            "to be let through"
                        }
                    ));
                }
            }
        }
    }
    for key in matrix.keys() {
        if !seen.contains(*key) {
            wrong.push(format!("{key}: in the matrix but not an RPC"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    server.shutdown().await;
}
