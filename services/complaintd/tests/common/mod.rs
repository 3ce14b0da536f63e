//! What several test files share: request helpers.
#![allow(dead_code)]

use complaints_proto::complaints::v1 as api;
use tonic::Request;
use uuid::Uuid;

/// A protobuf timestamp `seconds` after the epoch.
pub fn ts(seconds: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds, nanos: 0 })
}

/// `message` from user:tester with `roles` (development headers).
pub fn req<T>(message: T, roles: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("x-principal", "user:tester".parse().unwrap());
    request
        .metadata_mut()
        .insert("x-roles", roles.parse().unwrap());
    request
}

/// A registration under `regime` from `region`, received at `received` (seconds).
pub fn register(regime: &str, region: &str, received: i64) -> api::RegisterComplaintRequest {
    api::RegisterComplaintRequest {
        request_id: Uuid::new_v4().to_string(),
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
    }
}
