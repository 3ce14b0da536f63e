//! The per-person keys of complainants' personal data, in their own sled database beside
//! (never inside) the event log: `<data_dir>/keys` unless configured elsewhere.
//!
//! One entry per person: their 32-byte key, or an empty value once erased (so no new key
//! is ever made for them). Every change is durable before it is used: sled's flush, then
//! an fdatasync of its data file (sled's flush alone does not flush the disk cache). An
//! erased key is overwritten in sled's log and later compacted away; for a stronger
//! guarantee keep this directory on storage you can shred, or wrap the keys with a KMS.

use std::fs::File;
use std::path::Path;
use std::sync::Mutex;

use complaints_workflow::personal::{KeyStore, KeyStoreError};

pub struct SledKeyStore {
    db: sled::Db,
    data_file: File,
    /// Serialises creation so two first events of one person get one key.
    create: Mutex<()>,
}

fn failed(e: impl std::fmt::Display) -> KeyStoreError {
    KeyStoreError::Failed(e.to_string())
}

impl SledKeyStore {
    pub fn open(path: &Path) -> Result<Self, KeyStoreError> {
        let db = sled::Config::new()
            .path(path)
            .flush_every_ms(None)
            .open()
            .map_err(|e| {
                failed(format!(
                    "cannot open the key store in {}: {e}",
                    path.display()
                ))
            })?;
        let data_file = File::open(path.join("db")).map_err(failed)?;
        Ok(Self {
            db,
            data_file,
            create: Mutex::new(()),
        })
    }

    fn sync(&self) -> Result<(), KeyStoreError> {
        self.db.flush().map_err(failed)?;
        self.data_file.sync_data().map_err(failed)
    }
}

impl KeyStore for SledKeyStore {
    fn key(&self, person_id: &str, create: bool) -> Result<Option<[u8; 32]>, KeyStoreError> {
        let read = |db: &sled::Db| -> Result<Option<Option<[u8; 32]>>, KeyStoreError> {
            Ok(match db.get(person_id).map_err(failed)? {
                None => None,
                Some(v) if v.is_empty() => Some(None),
                Some(v) => Some(Some(v.as_ref().try_into().map_err(|_| {
                    failed(format!("the key of person {person_id} is damaged"))
                })?)),
            })
        };
        match read(&self.db)? {
            Some(Some(key)) => return Ok(Some(key)),
            Some(None) if create => return Err(KeyStoreError::Erased(person_id.to_owned())),
            Some(None) => return Ok(None),
            None if !create => return Ok(None),
            None => {}
        }
        let _guard = self.create.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(found) = read(&self.db)? {
            return found
                .ok_or_else(|| KeyStoreError::Erased(person_id.to_owned()))
                .map(Some);
        }
        let key: [u8; 32] = rand::random();
        self.db.insert(person_id, &key[..]).map_err(failed)?;
        self.sync()?;
        Ok(Some(key))
    }

    fn erase(&self, person_id: &str) -> Result<bool, KeyStoreError> {
        let _guard = self.create.lock().unwrap_or_else(|p| p.into_inner());
        let previous = self.db.insert(person_id, &[][..]).map_err(failed)?;
        self.sync()?;
        Ok(previous.is_some_and(|v| !v.is_empty()))
    }
}
