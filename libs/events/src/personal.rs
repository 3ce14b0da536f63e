//! Complainants' personal data, sealed per person (crypto-shredding).
//!
//! The personal fields of an event (name, contact, id number, claim, facts, the comment
//! with a satisfaction rating) are stored encrypted with ChaCha20-Poly1305 under a key of
//! their own person, with the person id as associated data. Keys live in a [`KeyStore`]
//! kept apart from the log. Erasing a person destroys their key: every event stays as it
//! was (so the hash chain still verifies) but their personal fields can never be read
//! again, and reads show them as erased.

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::Bytes;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use complaints_proto::complaints::events::v1 as pb;
use prost::Message;

/// The algorithm name stored in `Sealed.algorithm`.
pub const ALGORITHM: &str = "chacha20poly1305";

/// Why personal data could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum KeyStoreError {
    /// The person's data was erased: nothing new is stored for them.
    #[error("the personal data of person {0} was erased; nothing new is kept about them")]
    Erased(String),
    /// The key store itself failed.
    #[error("key store: {0}")]
    Failed(String),
}

/// Where the per-person keys live: apart from the log, durable, and able to forget.
pub trait KeyStore: Send + Sync + 'static {
    /// The person's key, created (and made durable) if they have none yet and `create`.
    /// `None` when there is none (never created, or erased); creating a key for an erased
    /// person is [`KeyStoreError::Erased`].
    fn key(&self, person_id: &str, create: bool) -> Result<Option<[u8; 32]>, KeyStoreError>;

    /// Destroys the person's key, durably, and remembers the person as erased. Whether
    /// there was a key.
    fn erase(&self, person_id: &str) -> Result<bool, KeyStoreError>;

    /// Up to `limit` entries in order of person id, after `after` (from the first when
    /// `None`): for backups. Each is the person's key, or [`None`] once erased (a
    /// tombstone). Never log what this returns.
    fn entries(&self, after: Option<&str>, limit: usize) -> Result<Vec<KeyEntry>, KeyStoreError>;
}

/// One entry of a key store: a person's key, or the tombstone of their erasure. Its
/// `Debug` never shows the key.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyEntry {
    pub person_id: String,
    /// `None`: erased.
    pub key: Option<[u8; 32]>,
}

impl std::fmt::Debug for KeyEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyEntry")
            .field("person_id", &self.person_id)
            .field("key", &self.key.map(|_| "<redacted>"))
            .finish()
    }
}

/// Keys in memory (tests): `Some(key)`, or `None` once erased.
#[derive(Default)]
pub struct MemoryKeys(Mutex<HashMap<String, Option<[u8; 32]>>>);

impl KeyStore for MemoryKeys {
    fn key(&self, person_id: &str, create: bool) -> Result<Option<[u8; 32]>, KeyStoreError> {
        let mut keys = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match keys.get(person_id) {
            Some(Some(key)) => Ok(Some(*key)),
            Some(None) if create => Err(KeyStoreError::Erased(person_id.to_owned())),
            Some(None) => Ok(None),
            None if create => {
                let key = rand::random::<[u8; 32]>();
                keys.insert(person_id.to_owned(), Some(key));
                Ok(Some(key))
            }
            None => Ok(None),
        }
    }

    fn erase(&self, person_id: &str) -> Result<bool, KeyStoreError> {
        let mut keys = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(keys.insert(person_id.to_owned(), None).flatten().is_some())
    }

    fn entries(&self, after: Option<&str>, limit: usize) -> Result<Vec<KeyEntry>, KeyStoreError> {
        let keys = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut entries: Vec<KeyEntry> = keys
            .iter()
            .filter(|(id, _)| after.is_none_or(|a| id.as_str() > a))
            .map(|(id, key)| KeyEntry {
                person_id: id.clone(),
                key: *key,
            })
            .collect();
        entries.sort_by(|a, b| a.person_id.cmp(&b.person_id));
        entries.truncate(limit);
        Ok(entries)
    }
}

/// Whether personal fields could be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PersonalState {
    /// Read (or stored in the clear).
    #[default]
    Present,
    /// Sealed, and not opened for this reader (no key store at hand).
    Withheld,
    /// Sealed under a key that no longer exists.
    Erased,
}

impl PersonalState {
    /// The less readable of two states (a complaint with one erased event is erased).
    pub fn worst(self, other: PersonalState) -> PersonalState {
        use PersonalState::*;
        match (self, other) {
            (Erased, _) | (_, Erased) => Erased,
            (Withheld, _) | (_, Withheld) => Withheld,
            _ => Present,
        }
    }
}

/// Seals `fields` under the key of `person_id` (created if new).
pub fn seal(
    keys: &dyn KeyStore,
    person_id: &str,
    fields: &pb::PersonalFields,
) -> Result<pb::PersonalData, KeyStoreError> {
    let key = keys.key(person_id, true)?.ok_or_else(|| {
        KeyStoreError::Failed(format!("no key could be made for person {person_id}"))
    })?;
    let cipher = ChaCha20Poly1305::new(Key::from_slice(&key));
    let nonce: [u8; 12] = rand::random();
    let ciphertext = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: &fields.encode_to_vec(),
                aad: person_id.as_bytes(),
            },
        )
        .map_err(|_| KeyStoreError::Failed("encryption failed".into()))?;
    Ok(pb::PersonalData {
        person_id: person_id.to_owned(),
        form: Some(pb::personal_data::Form::Sealed(pb::Sealed {
            key_id: person_id.to_owned(),
            algorithm: ALGORITHM.to_owned(),
            nonce: Bytes::copy_from_slice(&nonce),
            ciphertext: Bytes::from(ciphertext),
        })),
    })
}

/// Opens sealed personal data with the person's key: the fields, or empty fields and
/// why they are not there. Plain data passes through.
pub fn open(
    keys: Option<&dyn KeyStore>,
    data: pb::PersonalData,
) -> Result<(pb::PersonalData, PersonalState), KeyStoreError> {
    let Some(pb::personal_data::Form::Sealed(sealed)) = data.form else {
        return Ok((data, PersonalState::Present));
    };
    let blank = |state| {
        (
            pb::PersonalData {
                person_id: data.person_id.clone(),
                form: Some(pb::personal_data::Form::Plain(pb::PersonalFields::default())),
            },
            state,
        )
    };
    let Some(keys) = keys else {
        return Ok(blank(PersonalState::Withheld));
    };
    let Some(key) = keys.key(&sealed.key_id, false)? else {
        return Ok(blank(PersonalState::Erased));
    };
    if sealed.algorithm != ALGORITHM || sealed.nonce.len() != 12 {
        return Err(KeyStoreError::Failed(format!(
            "unknown sealing {:?} for person {}",
            sealed.algorithm, data.person_id
        )));
    }
    let cipher = ChaCha20Poly1305::new(Key::from_slice(&key));
    let plain = cipher
        .decrypt(
            Nonce::from_slice(&sealed.nonce),
            Payload {
                msg: &sealed.ciphertext,
                aad: sealed.key_id.as_bytes(),
            },
        )
        .map_err(|_| {
            KeyStoreError::Failed(format!(
                "the sealed data of person {} does not open with their key",
                data.person_id
            ))
        })?;
    let fields = pb::PersonalFields::decode(plain.as_slice())
        .map_err(|e| KeyStoreError::Failed(format!("opened personal data is undecodable: {e}")))?;
    Ok((
        pb::PersonalData {
            person_id: data.person_id,
            form: Some(pb::personal_data::Form::Plain(fields)),
        },
        PersonalState::Present,
    ))
}
