//! What several test files share: the in-process server and the request builders of
//! complaints-testkit (shared with complaintctl's and the end-to-end tests), and a
//! registration.
#![allow(dead_code, unused_imports)]

use complaints_proto::complaints::v1 as api;

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
