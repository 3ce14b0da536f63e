//! The sled key store under concurrent first keys: new keys asked for at the same time are
//! committed together, and each person still gets exactly one key, the one every caller
//! sees, durable and witnessed (a reopen finds the store as its witness says).
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

use std::collections::HashMap;
use std::sync::{Arc, Barrier};

use complaints_events::personal::{KeyStore, KeyStoreError};
use complaints_storage::SledKeyStore;

#[test]
fn concurrent_first_keys_give_each_person_one_durable_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SledKeyStore::open(dir.path()).unwrap());
    let threads = 16;
    let start = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (store, start) = (store.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                let mut got = Vec::new();
                for i in 0..40 {
                    // Each person is asked for by four threads at about the same time.
                    let person = format!("person-{}", (t / 4) * 1000 + i);
                    got.push((person.clone(), store.key(&person, true).unwrap().unwrap()));
                }
                got
            })
        })
        .collect();
    let mut keys: HashMap<String, [u8; 32]> = HashMap::new();
    for handle in handles {
        for (person, key) in handle.join().unwrap() {
            let first = *keys.entry(person.clone()).or_insert(key);
            assert_eq!(first, key, "{person} was given two keys");
        }
    }
    assert_eq!(keys.len(), 4 * 40);
    drop(store);
    // Reopened: every key is there (the witness accepts the store), unchanged.
    let store = SledKeyStore::open(dir.path()).unwrap();
    for (person, key) in &keys {
        assert_eq!(store.key(person, false).unwrap(), Some(*key), "{person}");
    }
    assert_eq!(store.entries(None, 1000).unwrap().len(), keys.len());
}

#[test]
fn an_erased_person_gets_no_new_key_even_when_asked_for_with_others() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SledKeyStore::open(dir.path()).unwrap());
    store.key("ada", true).unwrap();
    assert!(store.erase("ada").unwrap());
    let start = Arc::new(Barrier::new(8));
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let (store, start) = (store.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                let person = if t % 2 == 0 {
                    "ada".to_owned()
                } else {
                    format!("p{t}")
                };
                (person.clone(), store.key(&person, true))
            })
        })
        .collect();
    for handle in handles {
        match handle.join().unwrap() {
            (p, Err(KeyStoreError::Erased(who))) if p == "ada" => assert_eq!(who, "ada"),
            (p, Ok(Some(_))) if p != "ada" => {}
            (p, other) => panic!("{p}: {other:?}"),
        }
    }
    assert_eq!(store.key("ada", false).unwrap(), None);
}

#[test]
fn a_restored_batch_is_written_whole_and_keeps_erased_persons_erased() {
    use complaints_events::personal::KeyEntry;
    let dir = tempfile::tempdir().unwrap();
    let store = SledKeyStore::open(dir.path()).unwrap();
    let kept = store.key("kept", true).unwrap().unwrap();
    store.key("gone", true).unwrap();
    assert!(store.erase("gone").unwrap());
    let entry = |person: &str, key: Option<u8>| KeyEntry {
        person_id: person.to_owned(),
        key: key.map(|b| [b; 32]),
    };
    let written = store
        .restore([
            entry("new", Some(1)),
            // Given twice in one batch: the last value holds.
            entry("twice", Some(2)),
            entry("twice", Some(3)),
            // A tombstone from the backup, then a key for the same person: erased stays
            // erased, within the batch too.
            entry("erased-in-backup", None),
            entry("erased-in-backup", Some(4)),
            // Erased here already: never given a key again.
            entry("gone", Some(5)),
            // Replaces the key the store held.
            entry("kept", Some(6)),
        ])
        .unwrap();
    assert_eq!(
        written, 5,
        "the key after a tombstone and the erased person's are skipped"
    );
    drop(store);
    // Reopened: the witness accepts what the batch left, entry by entry.
    let store = SledKeyStore::open(dir.path()).unwrap();
    assert_eq!(store.key("new", false).unwrap(), Some([1; 32]));
    assert_eq!(store.key("twice", false).unwrap(), Some([3; 32]));
    assert_eq!(store.key("erased-in-backup", false).unwrap(), None);
    assert!(matches!(
        store.key("erased-in-backup", true),
        Err(KeyStoreError::Erased(_))
    ));
    assert!(matches!(
        store.key("gone", true),
        Err(KeyStoreError::Erased(_))
    ));
    assert_ne!(kept, [6; 32]);
    assert_eq!(store.key("kept", false).unwrap(), Some([6; 32]));
    assert_eq!(store.entries(None, 100).unwrap().len(), 5);
}
