//! What several test files share.

use complaints_domain::model::*;
use complaints_domain::Register;

/// A complaint registered over the web at `received_at` under `regime`, from `region`.
pub fn register(
    id: ComplaintId,
    regime: &str,
    region: &str,
    received_at: jiff::Timestamp,
) -> Register {
    Register {
        id,
        channel: Channel::Web,
        complainant: Complainant {
            person_id: format!("p-{}", id.uuid()),
            name: "n".into(),
            contact: "c".into(),
            id_number: String::new(),
        },
        unit: "cards".into(),
        employee: None,
        product: "p".into(),
        category: "fees".into(),
        claim: "c".into(),
        facts: "f".into(),
        received_at,
        regime: regime.into(),
        region: region.into(),
        regulator: None,
        variant: None,
    }
}

/// A complaint under CN-CBIRC (15 calendar days, Shanghai time).
#[allow(dead_code)]
pub fn registration(id: ComplaintId, received_at: jiff::Timestamp) -> Register {
    register(id, "CN-CBIRC", "CN", received_at)
}
