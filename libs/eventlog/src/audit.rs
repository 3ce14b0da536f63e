//! Tamper evidence: the hash chain over the global log, digests, signatures, verification.
//!
//! Every stored record carries `prev_hash`, the BLAKE3 hash of the previous record's stored
//! bytes, so each record commits to all the records before it. A [`Digest`] (a position
//! and the hash of the record there) therefore stands for the whole log up to that
//! position: a digest handed to an auditor today proves tomorrow that nothing up to it was
//! altered, removed or reordered. A [`Signer`] signs digests with an Ed25519 key; the
//! service records them in the log itself ([`DIGEST_STREAM`]), so an export carries them.
//!
//! [`Verifier`] walks stored records in order and reports either "intact up to position N
//! with head H" or the first position where the log breaks, and how ([`BreakKind`]).
//!
//! What each check catches:
//! - a changed byte: the record's CRC-32, or (if the CRC was recomputed) the next record's
//!   `prev_hash`; the last record has no next one, so only a digest covering it catches a
//!   forged last record;
//! - a removed record: a gap in positions (a record says it is at position 7 where 5 was
//!   expected and no 5 follows);
//! - reordered records: a record stored where another belongs (and that one later on);
//! - history rewritten from some point on with every link recomputed: only a digest taken
//!   before the rewrite (held by an auditor, or signed and recorded in the log) catches it,
//!   at the digest's position ("at or before N");
//! - a tail cut off: a digest whose position is past the end of the log.

use std::collections::VecDeque;
use std::fmt;

use bytes::Bytes;
use complaints_proto::eventlog::v1 as pb;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
use prost::Message;
use serde::{Deserialize, Serialize};

use crate::types::{ChainHash, NewEvent, Position, StoredRecord, StreamId, Timestamp};
use crate::{Error, EventLog, ExpectedVersion, Result};

/// The stream the service records its signed digests in.
pub const DIGEST_STREAM: &str = "log-digests";
/// The event type of a recorded signed digest; its payload is `eventlog.v1.SignedDigest`.
pub const DIGEST_EVENT_TYPE: &str = "log.digest_signed";
const SIGNED_PREFIX: &[u8] = b"complaints-eventlog-digest-v1\n";
/// How far back (in positions) a digest recorded in the log may point and still be checked
/// against the chain while walking it. The service records a digest within milliseconds
/// of taking it, so this is ample.
const RECENT_HASHES: usize = 1 << 16;

/// The log up to `position`: the chain hash of the record there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digest {
    pub position: Position,
    /// The chain hash of the record at `position` ([`ChainHash::GENESIS`] for position 0).
    pub head: ChainHash,
}

impl Digest {
    /// The digest of an empty log.
    pub const EMPTY: Digest = Digest {
        position: 0,
        head: ChainHash::GENESIS,
    };

    /// The current digest of `log`: its durable head and that record's hash.
    pub async fn of_log(log: &(impl EventLog + ?Sized)) -> Result<Digest> {
        Ok(match last_record(log).await? {
            Some((position, record)) => Digest {
                position,
                head: record.hash(),
            },
            None => Digest::EMPTY,
        })
    }
}

/// The log's durable head and the record there, `None` if the log is empty.
async fn last_record(log: &(impl EventLog + ?Sized)) -> Result<Option<(Position, StoredRecord)>> {
    let position = log.head().await?;
    if position == 0 {
        return Ok(None);
    }
    let record = log
        .read_stored(position, 1)
        .await?
        .pop()
        .ok_or_else(|| Error::Corruption {
            position,
            reason: "missing record".into(),
        })?;
    Ok(Some((position, record)))
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "position {} head {}", self.position, self.head)
    }
}

/// A digest signed with an Ed25519 key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedDigest {
    pub digest: Digest,
    pub signed_at: Timestamp,
    pub public_key: [u8; 32],
    pub signature: [u8; 64],
}

fn signed_message(digest: &Digest, signed_at: Timestamp) -> Vec<u8> {
    let mut message = Vec::with_capacity(SIGNED_PREFIX.len() + 48);
    message.extend_from_slice(SIGNED_PREFIX);
    message.extend_from_slice(&digest.position.to_be_bytes());
    message.extend_from_slice(&digest.head.0);
    message.extend_from_slice(&signed_at.as_micros().to_be_bytes());
    message
}

impl SignedDigest {
    /// Checks the signature; with `trusted`, also that it was made by one of those keys.
    pub fn check_signature(&self, trusted: &[VerifyingKey]) -> std::result::Result<(), String> {
        let key = VerifyingKey::from_bytes(&self.public_key)
            .map_err(|_| "the public key is not a valid Ed25519 key".to_owned())?;
        if !trusted.is_empty() && !trusted.contains(&key) {
            return Err(format!(
                "signed by key {} which is not among the trusted keys",
                hex(&self.public_key)
            ));
        }
        key.verify_strict(
            &signed_message(&self.digest, self.signed_at),
            &Signature::from_bytes(&self.signature),
        )
        .map_err(|_| "the signature does not match the digest".to_owned())
    }

    /// The stored (protobuf) form.
    pub fn to_proto(&self) -> pb::SignedDigest {
        pb::SignedDigest {
            digest: Some(pb::Digest {
                position: self.digest.position,
                head_hash: Bytes::copy_from_slice(&self.digest.head.0),
            }),
            signed_at_micros: self.signed_at.as_micros(),
            public_key: Bytes::copy_from_slice(&self.public_key),
            signature: Bytes::copy_from_slice(&self.signature),
        }
    }

    /// From the stored form; `None` if a field has the wrong size.
    pub fn from_proto(proto: &pb::SignedDigest) -> Option<Self> {
        let digest = proto.digest.as_ref()?;
        Some(Self {
            digest: Digest {
                position: digest.position,
                head: ChainHash::from_slice(&digest.head_hash)?,
            },
            signed_at: Timestamp::from_micros(proto.signed_at_micros),
            public_key: proto.public_key.as_ref().try_into().ok()?,
            signature: proto.signature.as_ref().try_into().ok()?,
        })
    }

    /// The JSON form handed to auditors (hex hashes and keys, RFC 3339 time).
    pub fn to_json(&self) -> String {
        let json = DigestJson {
            position: self.digest.position,
            head_hash: self.digest.head.to_hex(),
            signed_at_micros: Some(self.signed_at.as_micros()),
            public_key: Some(hex(&self.public_key)),
            signature: Some(hex(&self.signature)),
        };
        serde_json::to_string_pretty(&json).unwrap_or_default()
    }
}

/// A digest as JSON: `{"position": 42, "head_hash": "ab12..."}`, plus `signed_at_micros`,
/// `public_key` and `signature` when signed.
#[derive(Debug, Serialize, Deserialize)]
pub struct DigestJson {
    pub position: Position,
    pub head_hash: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_at_micros: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

/// A digest read from JSON: signed or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeldDigest {
    Plain(Digest),
    Signed(SignedDigest),
}

impl HeldDigest {
    /// Parses the JSON form ([`DigestJson`]).
    pub fn from_json(text: &str) -> std::result::Result<Self, String> {
        let json: DigestJson =
            serde_json::from_str(text).map_err(|e| format!("not a digest: {e}"))?;
        let digest = Digest {
            position: json.position,
            head: ChainHash::from_hex(&json.head_hash)
                .ok_or("head_hash must be 64 hexadecimal characters")?,
        };
        match (json.signed_at_micros, json.public_key, json.signature) {
            (None, None, None) => Ok(HeldDigest::Plain(digest)),
            (Some(at), Some(key), Some(signature)) => Ok(HeldDigest::Signed(SignedDigest {
                digest,
                signed_at: Timestamp::from_micros(at),
                public_key: unhex(&key)
                    .and_then(|k| k.try_into().ok())
                    .ok_or("public_key must be 64 hexadecimal characters")?,
                signature: unhex(&signature)
                    .and_then(|s| s.try_into().ok())
                    .ok_or("signature must be 128 hexadecimal characters")?,
            })),
            _ => Err("a signed digest needs signed_at_micros, public_key and signature".into()),
        }
    }

    pub fn digest(&self) -> Digest {
        match self {
            HeldDigest::Plain(d) => *d,
            HeldDigest::Signed(s) => s.digest,
        }
    }

    /// The JSON form.
    pub fn to_json(&self) -> String {
        match self {
            HeldDigest::Plain(d) => serde_json::to_string_pretty(&DigestJson {
                position: d.position,
                head_hash: d.head.to_hex(),
                signed_at_micros: None,
                public_key: None,
                signature: None,
            })
            .unwrap_or_default(),
            HeldDigest::Signed(s) => s.to_json(),
        }
    }
}

/// Lower-case hexadecimal.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

/// Signs digests with an Ed25519 key.
pub struct Signer {
    key: SigningKey,
}

impl Signer {
    /// A new random key.
    pub fn generate() -> Self {
        Self {
            key: SigningKey::from_bytes(&rand::random::<[u8; 32]>()),
        }
    }

    /// From a PKCS#8 PEM private key (as `openssl genpkey -algorithm ed25519` writes).
    pub fn from_pem(pem: &str) -> std::result::Result<Self, String> {
        SigningKey::from_pkcs8_pem(pem)
            .map(|key| Self { key })
            .map_err(|e| format!("not an Ed25519 PKCS#8 PEM private key: {e}"))
    }

    /// The private key as PKCS#8 PEM.
    pub fn to_pem(&self) -> String {
        self.key
            .to_pkcs8_pem(Default::default())
            .map(|pem| pem.to_string())
            .unwrap_or_default()
    }

    /// The public key as SubjectPublicKeyInfo PEM (what auditors are given).
    pub fn public_key_pem(&self) -> String {
        self.key
            .verifying_key()
            .to_public_key_pem(Default::default())
            .unwrap_or_default()
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// Signs `digest` as of `signed_at`.
    pub fn sign(&self, digest: Digest, signed_at: Timestamp) -> SignedDigest {
        use ed25519_dalek::Signer as _;
        let signature = self.key.sign(&signed_message(&digest, signed_at));
        SignedDigest {
            digest,
            signed_at,
            public_key: self.key.verifying_key().to_bytes(),
            signature: signature.to_bytes(),
        }
    }

    /// Signs the log's current digest and records it in [`DIGEST_STREAM`]. Returns `None`
    /// (and records nothing) when nothing but earlier signed digests was appended since
    /// the last one, so an idle log does not grow.
    pub async fn record(
        &self,
        log: &(impl EventLog + ?Sized),
        actor: &str,
        now: Timestamp,
    ) -> Result<Option<SignedDigest>> {
        let Some((position, stored)) = last_record(log).await? else {
            return Ok(None);
        };
        if stored.decode()?.event_type == DIGEST_EVENT_TYPE {
            return Ok(None);
        }
        let digest = Digest {
            position,
            head: stored.hash(),
        };
        let signed = self.sign(digest, now);
        let event = NewEvent::new(
            DIGEST_EVENT_TYPE,
            actor,
            Bytes::from(signed.to_proto().encode_to_vec()),
        );
        let stream = StreamId::new(DIGEST_STREAM)?;
        log.append(&stream, ExpectedVersion::Any, vec![event])
            .await?;
        Ok(Some(signed))
    }
}

/// Reads a public key: SubjectPublicKeyInfo PEM, or 64 hexadecimal characters.
pub fn public_key_from_text(text: &str) -> std::result::Result<VerifyingKey, String> {
    if let Ok(key) = VerifyingKey::from_public_key_pem(text) {
        return Ok(key);
    }
    unhex(text)
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .and_then(|b| VerifyingKey::from_bytes(&b).ok())
        .ok_or_else(|| "not an Ed25519 public key (PEM or 64 hexadecimal characters)".into())
}

/// How the log breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakKind {
    /// The record's bytes are not what they were.
    Altered,
    /// The record is not there.
    Missing,
    /// Another record is stored where this one belongs.
    Reordered,
    /// A signed digest's signature does not verify (or is by an untrusted key).
    BadSignature,
}

impl fmt::Display for BreakKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BreakKind::Altered => "altered",
            BreakKind::Missing => "missing",
            BreakKind::Reordered => "reordered",
            BreakKind::BadSignature => "bad signature",
        })
    }
}

/// The first place the log breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    pub position: Position,
    pub kind: BreakKind,
    pub detail: String,
}

impl fmt::Display for Break {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at position {}: {}",
            self.kind, self.position, self.detail
        )
    }
}

/// The verdict of a verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Intact,
    Broken(Break),
}

/// What a verification found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub outcome: Outcome,
    /// The last intact position and its hash: the log is intact up to here.
    pub digest: Digest,
    /// Records checked.
    pub records: u64,
    /// Signed digests found in the log and checked (signature and chain).
    pub signed_digests: u64,
    /// Digests given by the caller that the log matched.
    pub held_digests_matched: u64,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.outcome {
            Outcome::Intact => write!(
                f,
                "intact up to position {} with head {} ({} records, {} signed digests in the log, {} held digests matched)",
                self.digest.position, self.digest.head, self.records, self.signed_digests,
                self.held_digests_matched
            ),
            Outcome::Broken(b) => write!(
                f,
                "BROKEN: {b} (intact up to position {} with head {})",
                self.digest.position, self.digest.head
            ),
        }
    }
}

/// What checking a record needs that does not depend on the records before it: its decode
/// (checksum, envelope, position) and its chain hash: worked out for a batch on every core,
/// then checked in order ([`Verifier::check_all`]).
struct Prepared {
    decoded: Result<Link>,
    hash: ChainHash,
}

/// What the checks in order need of a record that reads intact.
struct Link {
    prev_hash: ChainHash,
    /// A signed digest's payload, for records that hold one.
    digest: Option<Bytes>,
}

impl Prepared {
    fn of(record: &StoredRecord) -> Self {
        let decoded = crate::codec::view(record.position, &record.bytes).map(|view| Link {
            prev_hash: view.prev_hash,
            digest: (view.event_type == DIGEST_EVENT_TYPE && view.stream == DIGEST_STREAM)
                .then(|| record.bytes.slice_ref(view.payload)),
        });
        Self {
            decoded,
            hash: record.hash(),
        }
    }
}

/// Records below this many are prepared on the calling thread (a thread costs more).
const PARALLEL_FROM: usize = 512;

/// [`Prepared::of`] each record, on every core, in order.
fn prepare_all(records: &[StoredRecord]) -> Vec<Prepared> {
    crate::parallel::map_in_order(records, PARALLEL_FROM, Prepared::of)
}

/// A position problem waiting for the rest of the log to tell "missing" from "reordered".
struct Pending {
    position: Position,
    /// What was found in its place.
    found: String,
}

/// Walks stored records in order, checking the chain, positions, signed digests recorded
/// in the log and digests the caller holds.
pub struct Verifier {
    /// The last intact record (as far as can be told: the next record's link checks it).
    last: Digest,
    /// The record before `last`.
    before_last: Digest,
    records: u64,
    trusted: Vec<VerifyingKey>,
    /// Digests the caller holds, by position, not yet reached.
    held: Vec<HeldDigest>,
    held_matched: u64,
    signed_in_log: u64,
    recent: VecDeque<ChainHash>,
    broken: Option<Break>,
    pending: Option<Pending>,
    /// Whether the record of the start digest was seen (walks from position 1 have none).
    start_seen: bool,
}

impl Default for Verifier {
    fn default() -> Self {
        Self::new()
    }
}

impl Verifier {
    /// A verifier for a walk from position 1.
    pub fn new() -> Self {
        Self::starting_after(Digest::EMPTY)
    }

    /// A verifier for a walk that starts after `digest` (trusted as the chain's start).
    pub fn starting_after(digest: Digest) -> Self {
        Self {
            last: digest,
            before_last: digest,
            records: 0,
            trusted: Vec::new(),
            held: Vec::new(),
            held_matched: 0,
            signed_in_log: 0,
            recent: VecDeque::new(),
            broken: None,
            pending: None,
            start_seen: digest.position == 0,
        }
    }

    /// Signed digests (held or in the log) must be signed by one of these keys. Without
    /// any, signatures are checked against the key each digest names.
    pub fn trusting(mut self, keys: impl IntoIterator<Item = VerifyingKey>) -> Self {
        self.trusted.extend(keys);
        self
    }

    /// The log must match `digest` (an auditor's earlier digest): proves it only grew.
    pub fn holding(mut self, digest: HeldDigest) -> Self {
        if let HeldDigest::Signed(signed) = &digest {
            if let Err(reason) = signed.check_signature(&self.trusted) {
                self.broken.get_or_insert(Break {
                    position: signed.digest.position,
                    kind: BreakKind::BadSignature,
                    detail: format!("the held digest: {reason}"),
                });
            }
        }
        if digest.digest().position == self.last.position && digest.digest() != self.last {
            self.broken.get_or_insert(Break {
                position: digest.digest().position,
                kind: BreakKind::Altered,
                detail: "the held digest differs from the starting digest".into(),
            });
        }
        self.held.push(digest);
        self.held.sort_by_key(|d| d.digest().position);
        self
    }

    /// Whether a break has been found (later records are then only scanned for positions).
    pub fn is_broken(&self) -> bool {
        self.broken.is_some()
    }

    /// The last record checked intact so far (the start digest before any).
    pub fn last_digest(&self) -> Digest {
        self.last
    }

    /// Where a walk should start: the start digest's own record (to check it), or 1.
    pub fn first_position(&self) -> Position {
        self.last.position.max(1)
    }

    /// The next position expected.
    pub fn next_position(&self) -> Position {
        self.last.position + 1
    }

    fn fail(&mut self, position: Position, kind: BreakKind, detail: String) {
        self.broken.get_or_insert(Break {
            position,
            kind,
            detail,
        });
    }

    /// Checks the next stored record (as the storage gives it, with the position the
    /// storage holds it at). A walk that starts after a digest may begin with the record
    /// at the digest's position: it must hash to the digest.
    pub fn check(&mut self, record: &StoredRecord) {
        if self.broken.is_some() {
            return;
        }
        if self.pending.is_some() {
            // Only the record's own position is read now: no need to decode and hash it.
            self.check_pending(record);
            return;
        }
        let prepared = Prepared::of(record);
        self.check_prepared(record, prepared);
    }

    /// Checks `records` in order, exactly as [`Verifier::check`] one by one does; the
    /// work of each record alone (checksum, envelope, hash) is done on every core first.
    pub fn check_all(&mut self, records: &[StoredRecord]) {
        if self.broken.is_some() || self.pending.is_some() {
            for record in records {
                self.check(record);
            }
            return;
        }
        for (record, prepared) in records.iter().zip(prepare_all(records)) {
            self.check_prepared(record, prepared);
        }
    }

    /// With a position problem pending: only looking for the record that belongs there.
    fn check_pending(&mut self, record: &StoredRecord) {
        let Some(pending) = &self.pending else {
            return;
        };
        // Only looking for the record that belongs at the pending position.
        if let Ok(event) = record.decode_unchecked_position() {
            if event == pending.position {
                let pending = self.pending.take().expect("pending");
                self.fail(
                    pending.position,
                    BreakKind::Reordered,
                    format!(
                        "{}; the record that belongs here is stored at position {}",
                        pending.found, record.position
                    ),
                );
            }
        }
    }

    fn check_prepared(&mut self, record: &StoredRecord, prepared: Prepared) {
        if self.broken.is_some() {
            return;
        }
        if self.records == 0
            && self.pending.is_none()
            && self.last.position > 0
            && record.position == self.last.position
        {
            self.start_seen = true;
            if prepared.hash != self.last.head {
                self.fail(
                    record.position,
                    BreakKind::Altered,
                    "the record at the start digest's position does not hash to it: verify from the beginning to see where the log changed".into(),
                );
            }
            return;
        }
        if self.pending.is_some() {
            self.check_pending(record);
            return;
        }
        let expected = self.next_position();
        if record.position != expected {
            self.pending = Some(Pending {
                position: expected,
                found: format!("the storage holds position {} next", record.position),
            });
            return;
        }
        let decoded = match prepared.decoded {
            Ok(decoded) => decoded,
            Err(e) => {
                let reason = match e {
                    Error::Corruption { reason, .. } => reason,
                    other => other.to_string(),
                };
                match record.decode_unchecked_position() {
                    Ok(said) if said < expected => self.fail(
                        expected,
                        BreakKind::Reordered,
                        format!("the record of position {said} is stored here"),
                    ),
                    Ok(said) if said > expected => {
                        self.pending = Some(Pending {
                            position: expected,
                            found: format!("the record of position {said} is stored here"),
                        });
                    }
                    _ => self.fail(expected, BreakKind::Altered, reason),
                }
                return;
            }
        };
        if decoded.prev_hash != self.last.head {
            let altered = self.last.position;
            // Intact only up to the record before the altered one.
            self.last = self.before_last;
            self.records = self.records.saturating_sub(1);
            self.fail(
                altered,
                BreakKind::Altered,
                format!(
                    "record {expected} commits to a previous record with hash {}, but the record stored at {altered} hashes to something else",
                    decoded.prev_hash
                ),
            );
            return;
        }
        let hash = prepared.hash;
        if self.recent.len() == RECENT_HASHES {
            self.recent.pop_front();
        }
        self.recent.push_back(self.last.head);
        if let Some(digest) = &decoded.digest {
            self.check_recorded_digest(expected, digest);
            if self.broken.is_some() {
                return;
            }
        }
        self.before_last = self.last;
        self.last = Digest {
            position: expected,
            head: hash,
        };
        self.records += 1;
        self.check_held();
    }

    /// Checks a signed digest recorded at `position` against the chain walked so far.
    fn check_recorded_digest(&mut self, position: Position, payload: &[u8]) {
        let Some(signed) = pb::SignedDigest::decode(payload)
            .ok()
            .and_then(|p| SignedDigest::from_proto(&p))
        else {
            return self.fail(
                position,
                BreakKind::BadSignature,
                "a recorded signed digest cannot be read".into(),
            );
        };
        if let Err(reason) = signed.check_signature(&self.trusted) {
            return self.fail(position, BreakKind::BadSignature, reason);
        }
        let at = signed.digest.position;
        // `recent` ends with the hash of `last.position`, the newest checked record.
        let newest = self.last.position;
        let hash_at = newest
            .checked_sub(at)
            .filter(|back| (*back as usize) < self.recent.len())
            .map(|back| self.recent[self.recent.len() - 1 - back as usize]);
        match hash_at {
            Some(hash) if hash == signed.digest.head => self.signed_in_log += 1,
            Some(_) => self.fail(
                at,
                BreakKind::Altered,
                format!(
                    "the log up to {at} differs from the digest signed at {} and recorded at position {position}: a record at or before {at} was changed",
                    signed.signed_at.as_micros()
                ),
            ),
            None if at > newest => self.fail(
                position,
                BreakKind::Reordered,
                format!("a digest for position {at} is recorded before it"),
            ),
            // Too far back to check while walking: not counted.
            None => {}
        }
    }

    fn check_held(&mut self) {
        while let Some(first) = self.held.first() {
            let digest = first.digest();
            if digest.position > self.last.position {
                return;
            }
            self.held.remove(0);
            if digest.position < self.last.position {
                continue; // before the start of a ranged walk: checked in `holding`
            }
            if digest.head == self.last.head {
                self.held_matched += 1;
            } else {
                self.fail(
                    digest.position,
                    BreakKind::Altered,
                    format!(
                        "the log up to {} differs from the held digest (head {} now, {} then): a record at or before {} was changed",
                        digest.position, self.last.head, digest.head, digest.position
                    ),
                );
            }
        }
    }

    /// The storage could not give the next record (its framing is damaged): the first
    /// break, unless one was found already.
    pub fn storage_error(&mut self, error: &Error) {
        if self.broken.is_some() || self.pending.is_some() {
            return;
        }
        let (position, detail) = match error {
            Error::Corruption { position, reason } => (*position, reason.clone()),
            other => (self.next_position(), other.to_string()),
        };
        self.fail(position, BreakKind::Altered, detail);
    }

    /// The verdict after the last record.
    pub fn finish(mut self) -> Report {
        if let Some(pending) = self.pending.take() {
            self.fail(
                pending.position,
                BreakKind::Missing,
                format!("no record for this position ({})", pending.found),
            );
        }
        if self.broken.is_none() && !self.start_seen && self.records == 0 {
            self.fail(
                self.last.position,
                BreakKind::Missing,
                "the log has no record at the start digest's position".into(),
            );
        }
        if self.broken.is_none() {
            if let Some(beyond) = self.held.first().map(HeldDigest::digest) {
                self.fail(
                    self.last.position + 1,
                    BreakKind::Missing,
                    format!(
                        "the log ends at {} but a held digest covers up to {}: the records after {} were removed",
                        self.last.position, beyond.position, self.last.position
                    ),
                );
            }
        }
        Report {
            outcome: match self.broken {
                Some(b) => Outcome::Broken(b),
                None => Outcome::Intact,
            },
            digest: self.last,
            records: self.records,
            signed_digests: self.signed_in_log,
            held_digests_matched: self.held_matched,
        }
    }
}

impl StoredRecord {
    /// The position the record itself says it is at, without checking where it was found.
    fn decode_unchecked_position(&self) -> std::result::Result<Position, ()> {
        crate::codec::verify(0, &self.bytes).map_err(|_| ())?;
        pb::Envelope::decode(&self.bytes[5..])
            .map(|e| e.position)
            .map_err(|_| ())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test
mod tests {
    use super::*;
    use crate::{codec, RecordedEvent, StreamId};

    /// A chain of `n` stored records, as a backend would hold them.
    fn chain(n: u64) -> Vec<StoredRecord> {
        let stream = StreamId::new("complaint-a").unwrap();
        let mut prev = ChainHash::GENESIS;
        (1..=n)
            .map(|position| {
                let record = RecordedEvent {
                    id: uuid::Uuid::from_u128(u128::from(position)),
                    stream: stream.clone(),
                    version: position,
                    position,
                    event_type: "test.happened".into(),
                    schema_version: 1,
                    recorded_at: Timestamp::from_micros(position as i64),
                    actor: "user:t".into(),
                    correlation_id: String::new(),
                    causation_id: String::new(),
                    payload: bytes::Bytes::from(format!("event {position}")),
                    checksum: 0,
                    prev_hash: prev,
                };
                let (bytes, _) = codec::encode(&record);
                prev = ChainHash::of_record(&bytes);
                StoredRecord {
                    position,
                    bytes: bytes.into(),
                }
            })
            .collect()
    }

    fn one_by_one(records: &[StoredRecord]) -> Report {
        let mut v = Verifier::new();
        for r in records {
            v.check(r);
        }
        v.finish()
    }

    fn in_batches(records: &[StoredRecord], batch: usize) -> Report {
        let mut v = Verifier::new();
        for part in records.chunks(batch) {
            v.check_all(part);
        }
        v.finish()
    }

    /// Checking in batches, each record's own work spread over the cores, finds exactly
    /// what checking one record after another finds: intact, or the same break at the
    /// same position (in the later half of a batch, where another thread prepared it).
    #[test]
    fn checking_in_batches_on_every_core_finds_what_one_by_one_finds() {
        let intact = chain(3000);
        let flipped = {
            let mut c = intact.clone();
            let mut bytes = c[2499].bytes.to_vec();
            let at = bytes.len() - 3;
            bytes[at] ^= 0x40;
            c[2499].bytes = bytes.into();
            c
        };
        let missing = {
            let mut c = intact.clone();
            c.remove(2699);
            c
        };
        let swapped = {
            let mut c = intact.clone();
            let (a, b) = (c[1799].bytes.clone(), c[2599].bytes.clone());
            c[1799].bytes = b;
            c[2599].bytes = a;
            c
        };
        let cases = [
            ("intact", intact, None),
            ("flipped", flipped, Some((2500, BreakKind::Altered))),
            ("missing", missing, Some((2700, BreakKind::Missing))),
            ("swapped", swapped, Some((1800, BreakKind::Reordered))),
        ];
        for (name, records, expected) in cases {
            let reference = one_by_one(&records);
            let found = match &reference.outcome {
                Outcome::Intact => None,
                Outcome::Broken(b) => Some((b.position, b.kind)),
            };
            assert_eq!(found, expected, "{name}: {reference}");
            for batch in [PARALLEL_FROM, 1024, 3000] {
                assert_eq!(
                    in_batches(&records, batch),
                    reference,
                    "{name}, batches of {batch}"
                );
            }
        }
    }
}
