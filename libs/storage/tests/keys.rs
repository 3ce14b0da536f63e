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
