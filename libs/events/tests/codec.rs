//! The stored schema of a satisfaction rating: its comment is the complainant's personal
//! data, sealed with their key and gone once they are erased; a stored rating outside 1
//! to 5 is an error, not a guess.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

use complaints_domain::{Change, Event};
use complaints_events::codec::{self, Sealing};
use complaints_events::personal::{KeyStore, MemoryKeys, PersonalState};
use complaints_proto::complaints::events::v1 as pb;
use prost::Message;

fn rated(rating: u8, comment: &str) -> Event {
    Event {
        at: "2026-03-02T12:00:00.123456Z".parse().unwrap(),
        actor: "user:x".into(),
        change: Change::SatisfactionRecorded {
            rating,
            comment: comment.into(),
        },
        effective: Some(complaints_domain::Effective {
            at: "2026-03-01T09:00:00Z".parse().unwrap(),
            reason: None,
        }),
    }
}

#[test]
fn a_rating_round_trips_in_the_clear() {
    let event = rated(4, "quick refund, thank you");
    let (event_type, bytes) = codec::encode(&event);
    assert_eq!(event_type, "complaint.satisfaction_recorded");
    assert_eq!(codec::decode(event_type, &bytes).unwrap(), event);
}

#[test]
fn the_comment_is_sealed_under_the_complainants_key_and_gone_once_they_are_erased() {
    let keys = MemoryKeys::default();
    let event = rated(2, "slow and unhelpful");
    let (event_type, bytes) = codec::encode_with(
        &event,
        Sealing::Sealed {
            keys: &keys,
            person_id: "person-7",
        },
    )
    .unwrap();
    assert!(
        !bytes.windows(4).any(|w| w == b"slow"),
        "the comment is not stored in the clear"
    );
    let stored = pb::ComplaintEvent::decode(bytes.as_ref()).unwrap();
    let Some(pb::complaint_event::Change::SatisfactionRecorded(s)) = stored.change else {
        panic!("{stored:?}");
    };
    assert_eq!(s.rating, 2);
    let personal = s.personal.unwrap();
    assert_eq!(personal.person_id, "person-7", "the stream's complainant");
    assert!(matches!(
        personal.form,
        Some(pb::personal_data::Form::Sealed(_))
    ));

    // Opened with the keys: as it was.
    let (opened, state) = codec::decode_with(event_type, &bytes, Some(&keys)).unwrap();
    assert_eq!((opened, state), (event.clone(), PersonalState::Present));
    // Without them: the rating, no comment.
    let (withheld, state) = codec::decode_with(event_type, &bytes, None).unwrap();
    assert_eq!(state, PersonalState::Withheld);
    assert_eq!(withheld, rated(2, ""));
    // The export's opened payload holds the comment in the clear.
    let opened = codec::opened_payload(&bytes, &keys).unwrap();
    assert!(opened.windows(4).any(|w| w == b"slow"));

    // Erased: the rating stays, the comment is gone for good.
    assert!(keys.erase("person-7").unwrap());
    let (erased, state) = codec::decode_with(event_type, &bytes, Some(&keys)).unwrap();
    assert_eq!(state, PersonalState::Erased);
    assert_eq!(erased, rated(2, ""));
    let opened = codec::opened_payload(&bytes, &keys).unwrap();
    assert!(!opened.windows(4).any(|w| w == b"slow"));
}

#[test]
fn a_stored_rating_outside_1_to_5_does_not_decode() {
    let (event_type, bytes) = codec::encode(&rated(3, ""));
    for rating in [0, 6, 256, 259, u32::MAX] {
        let mut stored = pb::ComplaintEvent::decode(bytes.as_ref()).unwrap();
        let Some(pb::complaint_event::Change::SatisfactionRecorded(s)) = stored.change.as_mut()
        else {
            panic!("{stored:?}");
        };
        s.rating = rating;
        let err = codec::decode(event_type, &stored.encode_to_vec()).unwrap_err();
        assert!(err.to_string().contains("rating"), "{rating}: {err}");
    }
}
