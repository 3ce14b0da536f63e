//! The key stores of complainants' personal data, one beside each backend: a sled
//! database beside (never inside) the sled log (`<data_dir>/keys` unless configured
//! elsewhere), and a JetStream key-value bucket beside a JetStream log.
//!
//! In sled, one entry per person: their 32-byte key, or an empty value once erased (so no new key
//! is ever made for them). Every change is durable before it is used: sled's flush, then
//! an fdatasync of its data file (sled's flush alone does not flush the disk cache). An
//! erased key is overwritten in sled's log and later compacted away; for a stronger
//! guarantee keep this directory on storage you can shred, or wrap the keys with a KMS.

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;
use std::sync::{Condvar, Mutex};

use complaints_events::personal::{KeyEntry, KeyStore, KeyStoreError};
use eventlog::ChainHash;
use eventlog_sled::witness::{self, Head, Witness};

/// The per-person keys in their own sled database.
pub struct SledKeyStore {
    db: sled::Db,
    data_file: File,
    /// Serialises changes (so two first events of one person get one key) and holds the
    /// witness of the store's contents.
    create: Mutex<Witnessed>,
    /// The log's durable head, recorded (as the highest seen) with every change: evidence
    /// of how far the log reached, checked against it at open ([`Self::log_head_seen`]).
    log_head: std::sync::OnceLock<tokio::sync::watch::Receiver<eventlog::Position>>,
    /// It held no entry when opened (new, or never given a key).
    fresh: bool,
    /// New keys waiting to be made durable together (see [`Creations`]).
    creations: Mutex<Creations>,
    created: Condvar,
}

/// Group commit of new keys. Making a key durable costs three syncs (the witness of the
/// pending change, sled's flush and fdatasync, the witness of the done change); under
/// concurrent registrations of new complainants one caller at a time paid them all, so
/// registrations queued behind each other. Now the keys asked for while a commit runs are
/// committed together by the next one: each caller adds its person to the open batch; the
/// first to find no commit running takes the batch and commits it (one sled batch, atomic
/// across crashes, so the store holds all of it or none of it, as the witness expects),
/// the others wait for their batch's outcome. Hand-written: a queue, a flag and a
/// condition variable are all it needs.
#[derive(Default)]
struct Creations {
    /// The open batch: person id -> the key made for them.
    queue: Vec<(String, [u8; 32])>,
    /// The number of the open batch, and how many callers wait for it.
    open: u64,
    callers: usize,
    /// A commit is running.
    committing: bool,
    /// Outcomes of committed batches not yet read by all their callers: each person's
    /// key (or `None`: erased), or why the commit failed; and how many have yet to read it.
    outcomes: HashMap<u64, (BatchOutcome, usize)>,
}

type BatchOutcome = Result<HashMap<String, Option<[u8; 32]>>, String>;

/// What the key store holds, in brief, and the witness that remembers it: sled's recovery
/// drops every entry after a damaged one silently (as it does for the log), and a lost key
/// would make personal data look erased. So, as for the log (`eventlog_sled::witness`),
/// every change is first witnessed as pending, then made durable, then witnessed as done;
/// at open the store must hold what the witness says (before or after the change pending
/// at a crash), or it does not open.
struct Witnessed {
    witness: Option<Witness>,
    state: Contents,
}

/// The count of entries and the XOR of a hash of each (person id and value): cheap to keep
/// up to date, and changed by any entry lost, added or altered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Contents {
    count: u64,
    sum: [u8; 32],
}

impl Contents {
    fn entry_hash(person_id: &[u8], value: &[u8]) -> [u8; 32] {
        let mut hasher = blake3::Hasher::new();
        hasher.update(&(person_id.len() as u64).to_le_bytes());
        hasher.update(person_id);
        hasher.update(value);
        *hasher.finalize().as_bytes()
    }

    fn toggled(mut self, person_id: &[u8], value: &[u8]) -> Self {
        for (s, h) in self.sum.iter_mut().zip(Self::entry_hash(person_id, value)) {
            *s ^= h;
        }
        self
    }

    /// After setting `person_id` to `value` (it held `old`, if anything).
    fn after(self, person_id: &[u8], old: Option<&[u8]>, value: &[u8]) -> Self {
        match old {
            Some(old) => self.toggled(person_id, old).toggled(person_id, value),
            None => Self {
                count: self.count + 1,
                ..self.toggled(person_id, value)
            },
        }
    }

    fn of(db: &sled::Db) -> Result<Self, KeyStoreError> {
        let mut contents = Contents {
            count: 0,
            sum: [0; 32],
        };
        for item in db.iter() {
            let (id, value) = item.map_err(failed)?;
            contents = contents.after(&id, None, &value);
        }
        Ok(contents)
    }

    fn head(self, pending: Option<Self>) -> Head {
        let pending = pending.unwrap_or(self);
        Head {
            durable: self.count,
            durable_hash: ChainHash(self.sum),
            pending: pending.count.max(self.count),
            pending_hash: ChainHash(pending.sum),
        }
    }
}

/// The sled tree that marks a store as witnessed (apart from the entries).
const META: &str = "meta";
const WITNESSED: &[u8] = b"witnessed";
/// The highest log head seen at a change (8 bytes, big-endian).
const LOG_HEAD: &[u8] = b"log_head";
/// This store's identity (16 random bytes, made at its creation): the log's directory
/// remembers it, so a log opened with another (or a new, empty) key store is refused
/// instead of showing every complainant as erased.
const IDENTITY: &[u8] = b"identity";

/// sled's page cache for the key store. sled's default is 1 GiB, and the open walks every
/// entry (to check the witness), which would keep the whole store in memory: hundreds of
/// MiB with a million complainants. A command reads one person's key at a time (and keeps
/// the complaint's state), so a small cache costs little.
const KEY_CACHE_BYTES: u64 = 16 << 20;

fn failed(e: impl std::fmt::Display) -> KeyStoreError {
    KeyStoreError::Failed(e.to_string())
}

impl SledKeyStore {
    /// Opens (or creates) the key store in `path`.
    pub fn open(path: &Path) -> Result<Self, KeyStoreError> {
        let damaged = |why: String| {
            failed(format!(
                "the key store in {} is damaged: {why}; refusing to open it (restore it from a backup)",
                path.display()
            ))
        };
        // sled 0.34 panics on some damaged stores: a refusal, never a crash.
        let opened = std::panic::catch_unwind(|| {
            sled::Config::new()
                .path(path)
                .cache_capacity(KEY_CACHE_BYTES)
                .flush_every_ms(None)
                .open()
        })
        .map_err(|_| damaged("sled cannot read it".into()))?;
        let db = opened.map_err(|e| {
            failed(format!(
                "cannot open the key store in {}: {e}",
                path.display()
            ))
        })?;
        let data_file = File::open(path.join("db")).map_err(failed)?;
        let state = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| Contents::of(&db)))
            .map_err(|_| damaged("sled cannot read it".into()))??;
        let meta = db.open_tree(META).map_err(failed)?;
        let marked = meta.get(WITNESSED).map_err(failed)?.is_some();
        match witness::read(path).map_err(failed)? {
            witness::Read::Found(head) => {
                let durable = (head.durable, head.durable_hash.0);
                let pending = (head.pending, head.pending_hash.0);
                if (state.count, state.sum) != durable && (state.count, state.sum) != pending {
                    return Err(damaged(format!(
                        "it holds {} entries, not the {} its witness recorded, or their contents changed (entries were lost or altered)",
                        state.count, head.durable
                    )));
                }
            }
            witness::Read::Missing if marked => {
                return Err(damaged("its witness is missing".into()));
            }
            witness::Read::Missing => {}
            witness::Read::Damaged(why) => return Err(damaged(format!("its witness: {why}"))),
        }
        if !marked {
            meta.insert(WITNESSED, &[][..]).map_err(failed)?;
        }
        if meta.get(IDENTITY).map_err(failed)?.is_none() {
            meta.insert(IDENTITY, &rand::random::<[u8; 16]>()[..])
                .map_err(failed)?;
        }
        let store = Self {
            db,
            data_file,
            create: Mutex::new(Witnessed {
                witness: None,
                state,
            }),
            log_head: std::sync::OnceLock::new(),
            fresh: state.count == 0,
            creations: Mutex::new(Creations::default()),
            created: Condvar::new(),
        };
        store.sync()?;
        let witness = Witness::create(path, &state.head(None))
            .map_err(|e| failed(format!("cannot write the key store's witness: {e}")))?;
        store.lock().witness = Some(witness);
        Ok(store)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Witnessed> {
        self.create
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sets `person_id` to `value`, durably and witnessed; what it held before.
    fn set(
        &self,
        guard: &mut Witnessed,
        person_id: &[u8],
        value: &[u8],
    ) -> Result<Option<sled::IVec>, KeyStoreError> {
        let old = self.db.get(person_id).map_err(failed)?;
        let next = guard.state.after(person_id, old.as_deref(), value);
        self.witnessed(guard, next, || {
            self.db.insert(person_id, value).map_err(failed).map(drop)
        })?;
        Ok(old)
    }

    /// Records the log's head (from `head`, the log's [`eventlog::EventLog::watch_head`])
    /// with every later change. Set once; later calls are ignored.
    pub fn observe_log(&self, head: tokio::sync::watch::Receiver<eventlog::Position>) {
        let _ = self.log_head.set(head);
    }

    /// The highest durable head of the log seen at a change of this store (0 if none was
    /// recorded): a log whose head is lower lost records it once held.
    pub fn log_head_seen(&self) -> Result<eventlog::Position, KeyStoreError> {
        let meta = self.db.open_tree(META).map_err(failed)?;
        Ok(match meta.get(LOG_HEAD).map_err(failed)? {
            Some(bytes) => u64::from_be_bytes(
                bytes
                    .as_ref()
                    .try_into()
                    .map_err(|_| failed("the log head recorded in the key store is damaged"))?,
            ),
            None => 0,
        })
    }

    /// Whether the store held no entry when opened (new, or never given a key): beside a
    /// log with records and without the log's record of its key store, it is not the
    /// log's own (a refused start may have made it).
    pub fn is_fresh(&self) -> bool {
        self.fresh
    }

    /// This store's identity, in hex.
    pub fn identity(&self) -> Result<String, KeyStoreError> {
        let meta = self.db.open_tree(META).map_err(failed)?;
        let id = meta
            .get(IDENTITY)
            .map_err(failed)?
            .ok_or_else(|| failed("the key store has no identity"))?;
        Ok(eventlog::audit::hex(&id))
    }

    fn creations(&self) -> std::sync::MutexGuard<'_, Creations> {
        self.creations
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Makes a key for `person_id` durable, committed with the others asked for at the
    /// same time (see [`Creations`]): their key, or `None` if they were erased meanwhile.
    fn create(&self, person_id: &str) -> Result<Option<[u8; 32]>, KeyStoreError> {
        let mut c = self.creations();
        if !c.queue.iter().any(|(p, _)| p == person_id) {
            c.queue.push((person_id.to_owned(), rand::random()));
        }
        c.callers += 1;
        let batch = c.open;
        loop {
            if let Some((outcome, unread)) = c.outcomes.get_mut(&batch) {
                *unread -= 1;
                let outcome = if *unread == 0 {
                    c.outcomes
                        .remove(&batch)
                        .map(|(o, _)| o)
                        .unwrap_or_else(|| Err(String::new()))
                } else {
                    outcome.clone()
                };
                return match &outcome {
                    Ok(keys) => keys
                        .get(person_id)
                        .copied()
                        .ok_or_else(|| failed("a new key went missing from its batch")),
                    Err(why) => Err(failed(why)),
                };
            }
            if !c.committing && c.open == batch {
                c.committing = true;
                let entries = std::mem::take(&mut c.queue);
                let callers = std::mem::take(&mut c.callers);
                c.open += 1;
                drop(c);
                // A panic (sled 0.34 panics on some damaged stores) must still end the
                // commit, or its callers would wait for ever.
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    self.commit_new(&entries)
                }))
                .unwrap_or_else(|_| Err(failed("sled failed while writing new keys")))
                .map_err(|e| e.to_string());
                c = self.creations();
                c.committing = false;
                c.outcomes.insert(batch, (outcome, callers));
                self.created.notify_all();
                continue;
            }
            c = self
                .created
                .wait(c)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }

    /// Writes the new keys of `entries` (those not in the store yet) durably and
    /// witnessed, in one sled batch; each person's key as the store holds it after.
    fn commit_new(
        &self,
        entries: &[(String, [u8; 32])],
    ) -> Result<HashMap<String, Option<[u8; 32]>>, KeyStoreError> {
        let mut locked = self.lock();
        let guard: &mut Witnessed = &mut locked;
        let mut next = guard.state;
        let mut batch = sled::Batch::default();
        let mut keys = HashMap::with_capacity(entries.len());
        for (person_id, key) in entries {
            let held =
                match self.db.get(person_id).map_err(failed)? {
                    Some(v) if v.is_empty() => None,
                    Some(v) => Some(v.as_ref().try_into().map_err(|_| {
                        failed(format!("the key of person {person_id} is damaged"))
                    })?),
                    None => {
                        next = next.after(person_id.as_bytes(), None, key);
                        batch.insert(person_id.as_bytes(), &key[..]);
                        Some(*key)
                    }
                };
            keys.insert(person_id.clone(), held);
        }
        if next != guard.state {
            self.witnessed(guard, next, || self.db.apply_batch(batch).map_err(failed))?;
        }
        Ok(keys)
    }

    /// Makes the change `write` (which brings the store to `next`) durable and
    /// witnessed: the witness says it is pending, the change is written with the log's
    /// head and synced, then the witness says it is done.
    fn witnessed(
        &self,
        guard: &mut Witnessed,
        next: Contents,
        write: impl FnOnce() -> Result<(), KeyStoreError>,
    ) -> Result<(), KeyStoreError> {
        let witness = guard
            .witness
            .as_mut()
            .ok_or_else(|| failed("the key store has no witness"))?;
        let written =
            |e: std::io::Error| failed(format!("cannot write the key store's witness: {e}"));
        witness
            .write(&guard.state.head(Some(next)))
            .map_err(written)?;
        write()?;
        self.record_log_head()?;
        self.sync()?;
        witness.write(&next.head(None)).map_err(written)?;
        guard.state = next;
        Ok(())
    }

    /// Records the log's durable head, if it moved past the one recorded.
    fn record_log_head(&self) -> Result<(), KeyStoreError> {
        if let Some(head) = self.log_head.get() {
            let head = *head.borrow();
            if head > self.log_head_seen()? {
                self.db
                    .open_tree(META)
                    .and_then(|meta| meta.insert(LOG_HEAD, &head.to_be_bytes()[..]))
                    .map_err(failed)?;
            }
        }
        Ok(())
    }

    fn sync(&self) -> Result<(), KeyStoreError> {
        self.db.flush().map_err(failed)?;
        self.data_file.sync_data().map_err(failed)
    }

    /// Writes `entries` as they are (keys and tombstones from a backup), durably, and
    /// returns how many were written. Erased stays erased: a tombstone here is never
    /// replaced by a key. For writing a restored store only; a running service never
    /// calls this.
    ///
    /// The entries given are written together: one sled batch, witnessed once (three syncs
    /// for the batch, not three for each entry: a million complainants were three million
    /// syncs); the store holds all of them or none after a crash.
    pub fn restore(
        &self,
        entries: impl IntoIterator<Item = KeyEntry>,
    ) -> Result<u64, KeyStoreError> {
        let mut guard = self.lock();
        let mut next = guard.state;
        let mut batch = sled::Batch::default();
        // What this batch has set so far: a person given twice is counted from their
        // first value, not from what the store held before it.
        let mut set: HashMap<String, Vec<u8>> = HashMap::new();
        let mut written = 0;
        for entry in entries {
            let old = match set.get(&entry.person_id) {
                Some(value) => Some(value.clone()),
                None => self
                    .db
                    .get(&entry.person_id)
                    .map_err(failed)?
                    .map(|v| v.to_vec()),
            };
            if old.as_ref().is_some_and(Vec::is_empty) {
                continue;
            }
            let value = entry.key.map_or_else(Vec::new, |k| k.to_vec());
            next = next.after(entry.person_id.as_bytes(), old.as_deref(), &value);
            batch.insert(entry.person_id.as_bytes(), &value[..]);
            set.insert(entry.person_id, value);
            written += 1;
        }
        if written > 0 {
            self.witnessed(&mut guard, next, || {
                self.db.apply_batch(batch).map_err(failed)
            })?;
        }
        Ok(written)
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
        self.create(person_id)?
            .ok_or_else(|| KeyStoreError::Erased(person_id.to_owned()))
            .map(Some)
    }

    fn erase(&self, person_id: &str) -> Result<bool, KeyStoreError> {
        let mut guard = self.lock();
        let previous = self.set(&mut guard, person_id.as_bytes(), &[][..])?;
        Ok(previous.is_some_and(|v| !v.is_empty()))
    }

    fn entries(&self, after: Option<&str>, limit: usize) -> Result<Vec<KeyEntry>, KeyStoreError> {
        use std::ops::Bound;
        let start = after.map_or(Bound::Unbounded, |a| Bound::Excluded(a.as_bytes().to_vec()));
        let mut entries = Vec::new();
        for item in self
            .db
            .range::<Vec<u8>, _>((start, Bound::Unbounded))
            .take(limit)
        {
            let (id, value) = item.map_err(failed)?;
            let person_id = String::from_utf8(id.to_vec())
                .map_err(|_| failed("a person id in the key store is not UTF-8"))?;
            let key = if value.is_empty() {
                None
            } else {
                Some(
                    value
                        .as_ref()
                        .try_into()
                        .map_err(|_| failed(format!("the key of person {person_id} is damaged")))?,
                )
            };
            entries.push(KeyEntry { person_id, key });
        }
        Ok(entries)
    }
}

/// The per-person keys in a JetStream key-value bucket: the key store of complaintd
/// replicas sharing a JetStream log (each replica must open every person's data). Apart
/// from the log's stream; one revision kept per key, so an erased key's bytes are gone
/// from the bucket once overwritten by its tombstone (an empty value).
pub struct KvKeyStore {
    kv: async_nats::jetstream::kv::Store,
    runtime: tokio::runtime::Handle,
}

impl KvKeyStore {
    /// Opens (or creates) `bucket` on the NATS servers at `url` (comma-separated).
    pub async fn open(url: &str, bucket: &str, replicas: usize) -> Result<Self, KeyStoreError> {
        let client = async_nats::connect(url.split(',').map(str::trim).collect::<Vec<_>>())
            .await
            .map_err(|e| failed(format!("cannot connect to {url}: {e}")))?;
        let js = async_nats::jetstream::new(client);
        let kv = match js.get_key_value(bucket).await {
            Ok(kv) => kv,
            Err(_) => js
                .create_key_value(async_nats::jetstream::kv::Config {
                    bucket: bucket.to_owned(),
                    history: 1,
                    num_replicas: replicas,
                    storage: async_nats::jetstream::stream::StorageType::File,
                    ..Default::default()
                })
                .await
                .map_err(|e| failed(format!("cannot create key bucket {bucket}: {e}")))?,
        };
        Ok(Self {
            kv,
            runtime: tokio::runtime::Handle::current(),
        })
    }

    /// Bucket keys allow few characters: the person id in hexadecimal.
    fn name(person_id: &str) -> String {
        person_id.bytes().map(|b| format!("{b:02x}")).collect()
    }

    /// The key store is called from synchronous code inside the server's multi-threaded
    /// runtime: run the bucket's I/O to completion there.
    fn block<F: std::future::Future>(&self, f: F) -> F::Output {
        tokio::task::block_in_place(|| self.runtime.block_on(f))
    }

    fn read(&self, name: &str) -> Result<Option<Option<[u8; 32]>>, KeyStoreError> {
        let value = self.block(self.kv.get(name)).map_err(failed)?;
        Ok(match value {
            None => None,
            Some(v) if v.is_empty() => Some(None),
            Some(v) => Some(Some(
                v.as_ref()
                    .try_into()
                    .map_err(|_| failed("a stored key is damaged"))?,
            )),
        })
    }
}

impl KeyStore for KvKeyStore {
    fn key(&self, person_id: &str, create: bool) -> Result<Option<[u8; 32]>, KeyStoreError> {
        let name = Self::name(person_id);
        match self.read(&name)? {
            Some(Some(key)) => return Ok(Some(key)),
            Some(None) if create => return Err(KeyStoreError::Erased(person_id.to_owned())),
            Some(None) => return Ok(None),
            None if !create => return Ok(None),
            None => {}
        }
        let key: [u8; 32] = rand::random();
        // create() refuses if another replica made one first: then use theirs.
        match self.block(self.kv.create(&name, key.to_vec().into())) {
            Ok(_) => Ok(Some(key)),
            Err(e) if e.kind() == async_nats::jetstream::kv::CreateErrorKind::AlreadyExists => {
                match self.read(&name)? {
                    Some(Some(key)) => Ok(Some(key)),
                    Some(None) => Err(KeyStoreError::Erased(person_id.to_owned())),
                    None => Err(failed("the key vanished while being created")),
                }
            }
            Err(e) => Err(failed(e)),
        }
    }

    fn erase(&self, person_id: &str) -> Result<bool, KeyStoreError> {
        let name = Self::name(person_id);
        let had = matches!(self.read(&name)?, Some(Some(_)));
        self.block(self.kv.put(&name, bytes::Bytes::new()))
            .map_err(failed)?;
        Ok(had)
    }

    /// Lists the bucket's names (hexadecimal, so they sort as the person ids do) and reads
    /// the page asked for.
    fn entries(&self, after: Option<&str>, limit: usize) -> Result<Vec<KeyEntry>, KeyStoreError> {
        use futures::TryStreamExt as _;
        let mut names: Vec<String> = self.block(async {
            let keys = self.kv.keys().await.map_err(failed)?;
            keys.try_collect::<Vec<String>>().await.map_err(failed)
        })?;
        let after = after.map(Self::name);
        names.retain(|n| after.as_ref().is_none_or(|a| n > a));
        names.sort();
        names.truncate(limit);
        let mut entries = Vec::with_capacity(names.len());
        for name in names {
            let bytes = (0..name.len())
                .step_by(2)
                .map(|i| {
                    name.get(i..i + 2)
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                })
                .collect::<Option<Vec<u8>>>()
                .ok_or_else(|| failed("a name in the key bucket is not hexadecimal"))?;
            let person_id = String::from_utf8(bytes)
                .map_err(|_| failed("a person id in the key bucket is not UTF-8"))?;
            // Gone between the listing and the read: nothing to back up.
            if let Some(key) = self.read(&name)? {
                entries.push(KeyEntry { person_id, key });
            }
        }
        Ok(entries)
    }
}
