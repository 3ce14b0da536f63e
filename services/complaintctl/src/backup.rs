//! `complaintctl admin backup | restore | erasures`: online backups of a running
//! complaintd, restores into a new data directory, and the erasures a restore must apply.
//!
//! A backup directory holds `log/` (a sled log with the records up to the head `H` when
//! the backup started, byte for byte, written by [`eventlog_sled::import`]), `keys/` (a
//! [`SledKeyStore`] with every person's key or erasure tombstone) and `backup.json`
//! ([`Manifest`]: `H`, its head hash, the server's digest of `H`, counts).
//!
//! **Erasures across restores.** An erasure destroys a person's key and records
//! `personal_data.erased` in the log. One made after a backup is in neither part of it,
//! so a restore takes the erasures of the live system (its `erasures` stream *and* its
//! key store's tombstones: an erasure whose log append failed after the key was destroyed
//! is only a tombstone) and tombstones those persons in the restored key store, before
//! anything is served. The keys are backed up *after* `H` is fixed: every event up to `H`
//! was sealed with a key made durable before it, so each is in the backup (or its
//! tombstone, if erased meanwhile).

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use complaints_events::personal::{KeyEntry, KeyStore};
use complaints_events::stored::{Stored, PERSONAL_DATA_ERASED};
use complaints_proto::complaints::admin::v1 as admin;
use complaints_proto::complaints::audit::v1 as audit;
use complaints_storage::SledKeyStore;
use eventlog::audit::{HeldDigest, Outcome, Verifier};
use eventlog::{ChainHash, Position, StoredRecord};
use eventlog_sled::OfflineLog;
use serde::{Deserialize, Serialize};

use crate::admin::copy_dir;
use crate::audit::{bar, log_dir};
use crate::connect::Target;

/// The manifest's file name in a backup directory.
pub const MANIFEST: &str = "backup.json";
/// Key store entries written per batch (each batch is synced once).
const KEY_BATCH: usize = 1024;

/// `backup.json`: what the backup holds and the digest it must match.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// 1.
    pub format: u32,
    /// The last position backed up (the server's head when the backup started).
    pub position: Position,
    /// Hexadecimal chain hash of the record at `position`.
    pub head_hash: String,
    /// The server's digest of `position` (its JSON form, signed when the server signs).
    pub digest: serde_json::Value,
    pub signed: bool,
    /// RFC 3339.
    pub created_at: String,
    /// The server backed up.
    pub server: String,
    /// Records in `log/` (= `position`).
    pub records: u64,
    /// Persons with a key, and persons erased (tombstones), in `keys/`.
    pub keys: u64,
    pub erased: u64,
    /// BLAKE3 over the key store's entries in order (see [`KeysSummary`]): damage to
    /// `keys/` is found before a restore uses it.
    pub keys_hash: String,
}

impl Manifest {
    /// Refuses `what` (its position and head hash) unless it is the manifest's own.
    fn ends_at(&self, what: &str, position: Position, head_hash: &str) -> anyhow::Result<()> {
        if position != self.position || head_hash != self.head_hash {
            bail!(
                "{what} position {position} ({head_hash}), not at the manifest's position {} ({})",
                self.position,
                self.head_hash
            );
        }
        Ok(())
    }
}

/// The file of `admin erasures`: every person a system has erased.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErasuresFile {
    /// 1.
    pub format: u32,
    /// The server or data directory they were read from.
    pub source: String,
    /// That log's head when they were read: they cover every erasure up to it.
    pub head_position: Position,
    pub head_hash: String,
    /// RFC 3339.
    pub created_at: String,
    pub persons: Vec<ErasedPerson>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErasedPerson {
    pub person_id: String,
    /// The position of the first `personal_data.erased` of the person; 0 when only the
    /// key store's tombstone tells.
    pub position: Position,
}

/// Where a restore takes the erasures made since the backup.
pub enum Later {
    /// A running server of the system the backup came from.
    Server(Target),
    /// An export of `admin erasures`.
    File(PathBuf),
    /// None: explicitly accepted.
    NoneAccepted,
}

/// Every erasure a system knows, by person (with the position that records it, 0 for a
/// tombstone alone), and how far its log reached.
struct Erasures {
    source: String,
    head: Position,
    head_hash: ChainHash,
    persons: BTreeMap<String, Position>,
}

impl Erasures {
    fn note(&mut self, person_id: String, position: Position) {
        let seen = self.persons.entry(person_id).or_insert(position);
        if *seen == 0 {
            *seen = position;
        }
    }

    fn to_file(&self) -> ErasuresFile {
        ErasuresFile {
            format: 1,
            source: self.source.clone(),
            head_position: self.head,
            head_hash: self.head_hash.to_hex(),
            created_at: jiff::Timestamp::now().to_string(),
            persons: self
                .persons
                .iter()
                .map(|(person_id, &position)| ErasedPerson {
                    person_id: person_id.clone(),
                    position,
                })
                .collect(),
        }
    }
}

/// Counts of a key store and a hash over its entries in order (length-prefixed person
/// id, then 0 for a tombstone or 1 and the key).
#[derive(Default)]
struct KeysSummary {
    keys: u64,
    erased: u64,
    hasher: blake3::Hasher,
}

impl KeysSummary {
    fn add(&mut self, entry: &KeyEntry) {
        self.hasher
            .update(&(entry.person_id.len() as u64).to_be_bytes());
        self.hasher.update(entry.person_id.as_bytes());
        match &entry.key {
            Some(key) => {
                self.keys += 1;
                self.hasher.update(&[1]);
                self.hasher.update(key);
            }
            None => {
                self.erased += 1;
                self.hasher.update(&[0]);
            }
        }
    }

    fn hash(&self) -> String {
        self.hasher.finalize().to_hex().to_string()
    }
}

fn entry_in(entry: admin::KeyEntry) -> anyhow::Result<KeyEntry> {
    let key = match entry.state {
        Some(admin::key_entry::State::Key(key)) => Some(
            <[u8; 32]>::try_from(key.as_ref())
                .map_err(|_| anyhow::anyhow!("the server sent a key that is not 32 bytes"))?,
        ),
        Some(admin::key_entry::State::Erased(_)) => None,
        None => bail!("the server sent a key store entry with neither a key nor a tombstone"),
    };
    Ok(KeyEntry {
        person_id: entry.person_id,
        key,
    })
}

/// Every entry of a key store, in order, to `each`.
fn each_entry(
    store: &dyn KeyStore,
    mut each: impl FnMut(KeyEntry) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut after: Option<String> = None;
    loop {
        let page = store.entries(after.as_deref(), KEY_BATCH)?;
        let Some(last) = page.last() else {
            return Ok(());
        };
        after = Some(last.person_id.clone());
        for entry in page {
            each(entry)?;
        }
    }
}

/// A scratch directory beside `near` (the same file system when possible).
fn scratch(near: &Path, what: &str) -> anyhow::Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix(&format!("complaintctl-{what}-"))
        .tempdir_in(
            near.parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new(".")),
        )
        .or_else(|_| tempfile::tempdir())
        .context("cannot make a scratch directory")
}

/// Removes what a failed backup or restore wrote (only paths it refused to find before).
fn remove(paths: &[PathBuf]) {
    for path in paths {
        let _ = if path.is_dir() {
            std::fs::remove_dir_all(path)
        } else {
            std::fs::remove_file(path)
        };
    }
}

fn write_new(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("cannot create {} (it must not exist)", path.display()))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// backup

/// `admin backup --out DIR`.
pub async fn backup(target: &Target, out: &Path) -> anyhow::Result<()> {
    let (log_path, keys_path, manifest_path) =
        (out.join("log"), out.join("keys"), out.join(MANIFEST));
    for path in [&log_path, &keys_path, &manifest_path] {
        if path.exists() {
            bail!(
                "{} already holds a backup ({} exists): a backup is written into a new directory",
                out.display(),
                path.display()
            );
        }
    }
    let written = [log_path.clone(), keys_path.clone(), manifest_path.clone()];
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let result = write_backup(target, out).await;
    if result.is_err() {
        remove(&written);
    }
    let manifest = result?;
    out!(
        "backed up positions 1 to {} (head hash {}, digest {}) and {} keys, {} erased persons into {}",
        manifest.position,
        manifest.head_hash,
        if manifest.signed { "signed" } else { "not signed" },
        manifest.keys,
        manifest.erased,
        out.display()
    );
    out!("checked: the written log opens with the full check and matches the server's digest");
    Ok(())
}

async fn write_backup(target: &Target, out: &Path) -> anyhow::Result<Manifest> {
    let mut audit = target.audit().await?;
    let digest = audit
        .get_digest(target.request(audit::GetDigestRequest {})?)
        .await
        .context("cannot get the log's digest (the backup needs the role auditor)")?
        .into_inner();
    let held = HeldDigest::from_json(&digest.json)
        .map_err(|e| anyhow::anyhow!("the server's digest is unreadable: {e}"))?;
    let head = held.digest();
    // The keys after the head is fixed: see the module's notes.
    let summary = backup_keys(target, &out.join("keys")).await?;
    let records = backup_log(target, &mut audit, head.position, &out.join("log")).await?;
    let manifest = Manifest {
        format: 1,
        position: head.position,
        head_hash: head.head.to_hex(),
        digest: serde_json::from_str(&digest.json).context("the server's digest")?,
        signed: digest.signed,
        created_at: jiff::Timestamp::now().to_string(),
        server: target.server().to_owned(),
        records,
        keys: summary.keys,
        erased: summary.erased,
        keys_hash: summary.hash(),
    };
    check_backup(&out.join("log"), &out.join("keys"), &manifest, &[])
        .context("the backup just written does not check")?;
    write_new(
        &out.join(MANIFEST),
        &(serde_json::to_string_pretty(&manifest)? + "\n"),
    )?;
    Ok(manifest)
}

async fn backup_keys(target: &Target, path: &Path) -> anyhow::Result<KeysSummary> {
    let store = SledKeyStore::open(path)?;
    let mut stream = target
        .admin()
        .await?
        .stream_keys(target.request(admin::StreamKeysRequest { erased_only: false })?)
        .await
        .context("cannot read the key store (the backup needs the role admin)")?
        .into_inner();
    let mut summary = KeysSummary::default();
    let mut batch = Vec::with_capacity(KEY_BATCH);
    while let Some(entry) = stream.message().await.context("reading the key store")? {
        let entry = entry_in(entry)?;
        summary.add(&entry);
        batch.push(entry);
        if batch.len() == KEY_BATCH {
            store.restore(batch.drain(..))?;
        }
    }
    store.restore(batch)?;
    Ok(summary)
}

/// Streams the stored records 1..=`head` into a new log at `path` (written as they come,
/// on a blocking thread); the number written.
async fn backup_log(
    target: &Target,
    audit: &mut audit::audit_service_client::AuditServiceClient<tonic::transport::Channel>,
    head: Position,
    path: &Path,
) -> anyhow::Result<u64> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<StoredRecord>(1024);
    let target_path = path.to_owned();
    let import = tokio::task::spawn_blocking(move || {
        eventlog_sled::import::import(&target_path, std::iter::from_fn(|| rx.blocking_recv()))
    });
    let bar = bar(head, "backing up");
    let streamed = async {
        let mut sent = 0u64;
        if head == 0 {
            return Ok(sent);
        }
        let mut stream = audit
            .stream_events(target.request(audit::StreamEventsRequest {
                from_position: 1,
                format: audit::EventFormat::Stored as i32,
                ..Default::default()
            })?)
            .await?
            .into_inner();
        while let Some(event) = stream.message().await? {
            if event.position > head {
                break;
            }
            let Some(audit::audit_event::Body::Stored(bytes)) = event.body else {
                bail!("the server sent an event without its stored bytes");
            };
            let position = event.position;
            if tx.send(StoredRecord { position, bytes }).await.is_err() {
                break; // the import stopped: its error says why
            }
            sent += 1;
            bar.set_position(position);
            if position == head {
                break;
            }
        }
        anyhow::Ok(sent)
    }
    .await;
    drop(tx);
    let imported = import.await.context("the import task")?;
    bar.finish_and_clear();
    let sent = streamed.context("streaming the log")?;
    let report = imported.context("writing the backup's log")?;
    if sent != head || report.events != head {
        bail!("the server's log ended at position {sent}, before the head {head} it gave");
    }
    Ok(sent)
}

// ---------------------------------------------------------------------------------------
// checking a backup

/// Checks a backup's log and keys against its manifest, before anything uses them: the
/// full check of every record (as `OpenCheck::Full` does), the log ending exactly at the manifest's
/// position with its head hash, the digest held (and its signature, by one of `trusted`
/// when given), and the key store's entries.
fn check_backup(
    log: &Path,
    keys: &Path,
    manifest: &Manifest,
    trusted: &[String],
) -> anyhow::Result<CheckedBackup> {
    if manifest.format != 1 {
        bail!(
            "backup format {} is not known to this build",
            manifest.format
        );
    }
    let mut trusted_keys = Vec::new();
    for key in trusted {
        trusted_keys.push(eventlog::audit::public_key_from_text(key).map_err(anyhow::Error::msg)?);
    }
    let held = HeldDigest::from_json(&manifest.digest.to_string())
        .map_err(|e| anyhow::anyhow!("the manifest's digest: {e}"))?;
    let digest = held.digest();
    manifest.ends_at(
        "the manifest's digest is at",
        digest.position,
        &digest.head.to_hex(),
    )?;
    let signed = matches!(held, HeldDigest::Signed(_));
    if !signed && !trusted_keys.is_empty() {
        bail!("the backup's digest is not signed: it cannot be checked against --public-key");
    }
    // The full check an open does: checksums, positions, versions, ids, the chain.
    let full = eventlog_sled::SledEventLog::verify(log)
        .map_err(|e| anyhow::anyhow!("the backup's log is damaged: {e}"))?;
    manifest.ends_at(
        "the backup's log ends at",
        full.events,
        &full.head_hash.to_hex(),
    )?;
    // The auditors' walk: the held digest (and its signature), signed digests in the log.
    let verifier = Verifier::new().trusting(trusted_keys).holding(held);
    let report = OfflineLog::open(log)?.verify(verifier, |_| {})?;
    if report.outcome != Outcome::Intact || report.held_digests_matched != 1 {
        bail!("the backup's log does not match its digest: {report}");
    }
    let store = SledKeyStore::open(keys)?;
    let mut summary = KeysSummary::default();
    each_entry(&store, |entry| {
        summary.add(&entry);
        Ok(())
    })?;
    if (summary.keys, summary.erased, summary.hash())
        != (manifest.keys, manifest.erased, manifest.keys_hash.clone())
    {
        bail!(
            "the backup's key store differs from its manifest ({} keys and {} erased found, {} and {} recorded, or their contents differ)",
            summary.keys,
            summary.erased,
            manifest.keys,
            manifest.erased
        );
    }
    Ok(CheckedBackup {
        signed,
        report: report.to_string(),
    })
}

struct CheckedBackup {
    signed: bool,
    report: String,
}

fn read_manifest(dir: &Path) -> anyhow::Result<Manifest> {
    let path = dir.join(MANIFEST);
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "cannot read {} (is {} a backup?)",
            path.display(),
            dir.display()
        )
    })?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a backup manifest", path.display()))
}

// ---------------------------------------------------------------------------------------
// restore

/// `admin restore --from DIR --data-dir NEW`.
pub async fn restore(
    from: &Path,
    data_dir: &Path,
    public_keys: &[PathBuf],
    later: Later,
) -> anyhow::Result<()> {
    let manifest = read_manifest(from)?;
    let (log_path, keys_path) = (data_dir.join("log"), data_dir.join("keys"));
    if log_path.join("db").exists() || log_path.exists() {
        bail!(
            "{} already holds a log: a restore writes a new data directory",
            data_dir.display()
        );
    }
    if keys_path.exists() {
        bail!(
            "{} already holds a key store: a restore writes a new data directory",
            data_dir.display()
        );
    }
    let trusted = public_keys
        .iter()
        .map(|p| std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display())))
        .collect::<anyhow::Result<Vec<_>>>()?;

    // Checked on a copy: opening a sled store may rewrite it, and a backup stays as it is.
    let work = scratch(data_dir, "restore")?;
    let (copy_log, copy_keys) = (work.path().join("log"), work.path().join("keys"));
    copy_dir(&from.join("log"), &copy_log)
        .with_context(|| format!("cannot copy {}", from.join("log").display()))?;
    copy_dir(&from.join("keys"), &copy_keys)
        .with_context(|| format!("cannot copy {}", from.join("keys").display()))?;
    let checked = check_backup(&copy_log, &copy_keys, &manifest, &trusted)
        .context("the backup does not check; nothing was restored")?;
    eprintln!("backup checked: {}", checked.report);
    if checked.signed && trusted.is_empty() {
        eprintln!(
            "note: the backup's digest is signed, but only by the key it names; pass --public-key to check it is the service's"
        );
    }

    // The erasures made since the backup, before anything is written.
    let erasures = match &later {
        Later::Server(live) => Some(live_erasures(live, Some(&manifest)).await?),
        Later::File(path) => Some(file_erasures(path, &manifest)?),
        Later::NoneAccepted => None,
    };

    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let result = write_restore(
        &copy_log,
        &copy_keys,
        &log_path,
        &keys_path,
        &manifest,
        erasures.as_ref(),
    );
    if result.is_err() {
        remove(&[log_path.clone(), keys_path.clone()]);
    }
    let (keys, tombstoned) = result?;
    out!(
        "restored positions 1 to {} (head hash {}) into {}, and {keys} key store entries into {}",
        manifest.position,
        manifest.head_hash,
        log_path.display(),
        keys_path.display()
    );
    match erasures {
        Some(e) => out!(
            "applied {} erasures known to {} (up to its position {}): {tombstoned} keys destroyed in the restored store",
            e.persons.len(),
            e.source,
            e.head
        ),
        None => eprintln!(
            "WARNING: no erasures were applied (--accept-no-later-erasures). Anyone whose personal data was erased after this backup was taken ({}, position {}) has it readable again in {}. Restore with --erasures-from or --erasures-file unless you know that no erasure happened since.",
            manifest.created_at,
            manifest.position,
            data_dir.display()
        ),
    }
    Ok(())
}

/// Writes the checked copy's log and keys into the new data directory and tombstones
/// every erased person there: the entries written, and the keys destroyed.
fn write_restore(
    copy_log: &Path,
    copy_keys: &Path,
    log_path: &Path,
    keys_path: &Path,
    manifest: &Manifest,
    erasures: Option<&Erasures>,
) -> anyhow::Result<(u64, u64)> {
    let source = OfflineLog::open(copy_log)?;
    let bar = bar(manifest.position, "restoring");
    let report = std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<StoredRecord>(1024);
        let reader = scope.spawn(move || {
            let mut failure = None;
            source.scan(1, |record| match record {
                Ok(record) => {
                    bar.set_position(record.position);
                    if tx.send(record).is_err() {
                        return ControlFlow::Break(());
                    }
                    ControlFlow::Continue(())
                }
                Err(e) => {
                    failure = Some(e);
                    ControlFlow::Break(())
                }
            })?;
            bar.finish_and_clear();
            failure.map_or(Ok(()), Err)
        });
        let imported = eventlog_sled::import::import(log_path, rx);
        let read = reader
            .join()
            .map_err(|_| anyhow::anyhow!("the reader of the backup's log panicked"))?;
        read.context("reading the backup's log")?;
        imported.context("writing the restored log")
    })?;
    if report.events != manifest.position || report.head_hash.to_hex() != manifest.head_hash {
        bail!(
            "the restored log ends at position {}, not at the backup's {}",
            report.events,
            manifest.position
        );
    }
    let backup_keys = SledKeyStore::open(copy_keys)?;
    let restored = SledKeyStore::open(keys_path)?;
    let mut written = 0;
    let mut batch = Vec::with_capacity(KEY_BATCH);
    each_entry(&backup_keys, |entry| {
        batch.push(entry);
        if batch.len() == KEY_BATCH {
            written += restored.restore(batch.drain(..))?;
        }
        Ok(())
    })?;
    written += restored.restore(batch)?;
    let mut destroyed = 0;
    for person in erasures.iter().flat_map(|e| e.persons.keys()) {
        if restored.erase(person)? {
            destroyed += 1;
        }
    }
    // The restored log's own key store, from now on.
    if let Some(data_dir) = keys_path.parent() {
        complaints_storage::bind_key_store(data_dir, &restored)
            .context("recording the restored key store beside the log")?;
    }
    Ok((written, destroyed))
}

fn file_erasures(path: &Path, manifest: &Manifest) -> anyhow::Result<Erasures> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let file: ErasuresFile = serde_json::from_str(&text)
        .with_context(|| format!("{} is not an erasures export", path.display()))?;
    if file.format != 1 {
        bail!("erasures format {} is not known to this build", file.format);
    }
    if file.head_position < manifest.position {
        bail!(
            "{} was exported at position {}, before the backup's {}: it cannot hold the erasures made since the backup; export them again (`admin erasures`)",
            path.display(),
            file.head_position,
            manifest.position
        );
    }
    let head_hash = ChainHash::from_hex(&file.head_hash)
        .with_context(|| format!("{}: head_hash is not a chain hash", path.display()))?;
    let mut erasures = Erasures {
        source: format!("{} ({})", file.source, path.display()),
        head: file.head_position,
        head_hash,
        persons: BTreeMap::new(),
    };
    for person in file.persons {
        if person.person_id.is_empty() {
            bail!("{}: an erasure without a person id", path.display());
        }
        erasures.note(person.person_id, person.position);
    }
    Ok(erasures)
}

/// Every erasure the running server knows: its `personal_data.erased` events and its key
/// store's tombstones. With `backup`, first checks the server is the system the backup
/// came from (its record at the backup's position is the backup's head).
async fn live_erasures(target: &Target, backup: Option<&Manifest>) -> anyhow::Result<Erasures> {
    let mut audit = target.audit().await?;
    let digest = audit
        .get_digest(target.request(audit::GetDigestRequest {})?)
        .await
        .with_context(|| {
            format!(
                "cannot get the digest of {} (the role auditor is needed)",
                target.server()
            )
        })?
        .into_inner();
    let head_hash = ChainHash::from_hex(&digest.head_hash)
        .context("the server's head hash is not a chain hash")?;
    if let Some(manifest) = backup.filter(|m| m.position > 0) {
        if digest.position < manifest.position {
            bail!(
                "{} ends at position {}, before the backup's {}: it is not the system the backup was taken from",
                target.server(),
                digest.position,
                manifest.position
            );
        }
        let mut at = audit
            .stream_events(target.request(audit::StreamEventsRequest {
                from_position: manifest.position,
                format: audit::EventFormat::Stored as i32,
                ..Default::default()
            })?)
            .await?
            .into_inner();
        let record = at.message().await?;
        if record
            .as_ref()
            .map(|r| (r.position, eventlog::audit::hex(&r.hash)))
            != Some((manifest.position, manifest.head_hash.clone()))
        {
            bail!(
                "{}'s record at position {} is not the backup's head {}: it is not the system the backup was taken from",
                target.server(),
                manifest.position,
                manifest.head_hash
            );
        }
    }
    let mut erasures = Erasures {
        source: target.server().to_owned(),
        head: digest.position,
        head_hash,
        persons: BTreeMap::new(),
    };
    let mut stream = audit
        .stream_events(target.request(audit::StreamEventsRequest {
            from_position: 1,
            event_types: vec![PERSONAL_DATA_ERASED.to_owned()],
            format: audit::EventFormat::Stored as i32,
            ..Default::default()
        })?)
        .await?
        .into_inner();
    while let Some(event) = stream.message().await.context("reading the erasures")? {
        let Some(audit::audit_event::Body::Stored(bytes)) = event.body else {
            bail!("the server sent an event without its stored bytes");
        };
        let record = StoredRecord {
            position: event.position,
            bytes,
        };
        note_erasure(&mut erasures, &record)?;
    }
    let mut tombstones = target
        .admin()
        .await?
        .stream_keys(target.request(admin::StreamKeysRequest { erased_only: true })?)
        .await
        .with_context(|| {
            format!(
                "cannot read the erased persons of {} (the role admin is needed)",
                target.server()
            )
        })?
        .into_inner();
    while let Some(entry) = tombstones
        .message()
        .await
        .context("reading the key store")?
    {
        let entry = entry_in(entry)?;
        if entry.key.is_none() {
            erasures.note(entry.person_id, 0);
        }
    }
    Ok(erasures)
}

/// Adds the erasure `record` holds, if it is one.
fn note_erasure(erasures: &mut Erasures, record: &StoredRecord) -> anyhow::Result<()> {
    let event = record.decode()?;
    if event.event_type != PERSONAL_DATA_ERASED {
        return Ok(());
    }
    match Stored::decode(&event) {
        Ok(Stored::Erasure(e)) => {
            erasures.note(e.person_id, event.position);
            Ok(())
        }
        Ok(_) => Ok(()),
        Err(e) => bail!(
            "the erasure at position {} is undecodable: {e}",
            event.position
        ),
    }
}

// ---------------------------------------------------------------------------------------
// erasures

/// `admin erasures --out FILE [--data-dir DIR]`.
pub async fn erasures(target: &Target, out: &Path, data_dir: Option<&Path>) -> anyhow::Result<()> {
    if out.exists() {
        bail!("{} exists: the export writes a new file", out.display());
    }
    let erasures = match data_dir {
        Some(dir) => offline_erasures(dir)?,
        None => live_erasures(target, None).await?,
    };
    write_new(
        out,
        &(serde_json::to_string_pretty(&erasures.to_file())? + "\n"),
    )?;
    out!(
        "{} erased persons known to {} (up to its position {}) written to {}",
        erasures.persons.len(),
        erasures.source,
        erasures.head,
        out.display()
    );
    Ok(())
}

/// The erasures in a copy of a stopped data directory: its log's erasure events and, when
/// it has one, its key store's tombstones. Read from a scratch copy; a damaged log is an
/// error (erasures past the damage would be missed).
fn offline_erasures(dir: &Path) -> anyhow::Result<Erasures> {
    let source = log_dir(dir);
    if !source.join("db").is_file() {
        bail!("{} holds no sled event log", dir.display());
    }
    let work = scratch(dir, "erasures")?;
    let copy = work.path().join("log");
    copy_dir(&source, &copy).with_context(|| format!("cannot copy {}", source.display()))?;
    let log = OfflineLog::open(&copy)?;
    let mut erasures = Erasures {
        source: dir.display().to_string(),
        head: 0,
        head_hash: ChainHash::GENESIS,
        persons: BTreeMap::new(),
    };
    let mut failure = None;
    log.scan(1, |record| {
        let step = record.map_err(anyhow::Error::from).and_then(|record| {
            if record.position != erasures.head + 1 {
                bail!("position {} is missing", erasures.head + 1);
            }
            note_erasure(&mut erasures, &record)?;
            erasures.head = record.position;
            erasures.head_hash = record.hash();
            Ok(())
        });
        match step {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => {
                failure = Some(e);
                ControlFlow::Break(())
            }
        }
    })?;
    if let Some(e) = failure {
        return Err(e.context(format!(
            "the log in {} is damaged; erasures after the damage cannot be read",
            dir.display()
        )));
    }
    let keys = dir.join("keys");
    if keys.join("db").is_file() {
        let copy = work.path().join("keys");
        copy_dir(&keys, &copy).with_context(|| format!("cannot copy {}", keys.display()))?;
        let store = SledKeyStore::open(&copy)?;
        each_entry(&store, |entry| {
            if entry.key.is_none() {
                erasures.note(entry.person_id, 0);
            }
            Ok(())
        })?;
    } else {
        eprintln!(
            "note: {} has no key store: only the erasures recorded in the log are exported",
            dir.display()
        );
    }
    Ok(erasures)
}
