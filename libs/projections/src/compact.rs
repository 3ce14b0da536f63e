//! Compact storage for projections that hold a million complaints: repeated names
//! (regimes, units, categories, regions, clocks) become 4-byte symbols, and times are
//! microseconds since the epoch with a sentinel for "none".

use std::collections::HashMap;
use std::sync::Arc;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// A name, as an index into [`Names`].
pub type Sym = u32;

/// "No name" for an optional [`Sym`].
pub const NO_SYM: Sym = Sym::MAX;

/// Interned names. Serialised as the list; the lookup table is rebuilt on load.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(from = "Vec<String>", into = "Vec<String>")]
pub struct Names {
    names: Vec<Arc<str>>,
    index: HashMap<Arc<str>, Sym>,
}

impl From<Vec<String>> for Names {
    fn from(list: Vec<String>) -> Self {
        let mut names = Names::default();
        for n in list {
            let sym = names.names.len() as Sym;
            let n: Arc<str> = Arc::from(n);
            names.names.push(n.clone());
            names.index.entry(n).or_insert(sym);
        }
        names
    }
}

impl From<Names> for Vec<String> {
    fn from(n: Names) -> Self {
        n.names
            .iter()
            .map(std::string::ToString::to_string)
            .collect()
    }
}

impl Names {
    /// The symbol of `name`, adding it if new.
    pub fn intern(&mut self, name: &str) -> Sym {
        if let Some(s) = self.index.get(name) {
            return *s;
        }
        let sym = self.names.len() as Sym;
        let name: Arc<str> = Arc::from(name);
        self.names.push(name.clone());
        self.index.insert(name, sym);
        sym
    }

    /// The symbol of `name` if it is known.
    pub fn find(&self, name: &str) -> Option<Sym> {
        self.index.get(name).copied()
    }

    /// A query's filter by name as a symbol: `Ok(None)` for no filter, `Err` for a name
    /// never seen (nothing can match it).
    pub(crate) fn filter(&self, wanted: &Option<String>) -> Result<Option<Sym>, ()> {
        match wanted {
            None => Ok(None),
            Some(name) => self.find(name).map(Some).ok_or(()),
        }
    }

    /// The name of `sym` ("" for [`NO_SYM`] or an unknown symbol).
    pub fn get(&self, sym: Sym) -> &str {
        self.names.get(sym as usize).map_or("", |n| n)
    }

    /// The name of an optional symbol.
    pub fn get_opt(&self, sym: Sym) -> Option<&str> {
        (sym != NO_SYM).then(|| self.get(sym))
    }
}

/// A time in microseconds since the epoch; [`NONE`] is "no time".
pub type Micros = i64;

/// "No time" for a [`Micros`].
pub const NONE: Micros = i64::MIN;

/// Microseconds of a timestamp (event and due times are whole microseconds).
pub fn micros(t: Timestamp) -> Micros {
    t.as_microsecond()
}

/// Microseconds of an optional timestamp.
pub fn micros_opt(t: Option<Timestamp>) -> Micros {
    t.map_or(NONE, micros)
}

/// The timestamp of stored microseconds (only ever stored from a valid timestamp).
pub fn time(m: Micros) -> Timestamp {
    Timestamp::from_microsecond(m).unwrap_or(Timestamp::MIN)
}

/// The timestamp of optional stored microseconds.
pub fn time_opt(m: Micros) -> Option<Timestamp> {
    (m != NONE).then(|| time(m))
}

/// Complaint id -> row number, for projections that keep each complaint's id in its row:
/// a bucket holds only the row number (4 bytes, where a map from id to row takes 20), and
/// the id is compared on the row itself.
#[derive(Default)]
pub struct RowIndex {
    table: hashbrown::HashTable<u32>,
    hasher: std::hash::RandomState,
}

impl RowIndex {
    fn hash(&self, id: &[u8; 16]) -> u64 {
        use std::hash::BuildHasher;
        self.hasher.hash_one(id)
    }

    /// The row of `id`; `id_of` gives the id of a row.
    pub fn get(&self, id: &[u8; 16], id_of: impl Fn(u32) -> [u8; 16]) -> Option<u32> {
        self.table
            .find(self.hash(id), |row| id_of(*row) == *id)
            .copied()
    }

    /// Adds `row` as the row of `id`, which has none yet.
    pub fn insert(&mut self, id: &[u8; 16], row: u32, id_of: impl Fn(u32) -> [u8; 16]) {
        let hash = self.hash(id);
        let hasher = self.hasher.clone();
        self.table.insert_unique(hash, row, move |row| {
            use std::hash::BuildHasher;
            hasher.hash_one(id_of(*row))
        });
    }

    /// Makes room for `additional` more rows without rehashing on the way (a restore
    /// inserts every row at once).
    pub fn reserve(&mut self, additional: usize, id_of: impl Fn(u32) -> [u8; 16]) {
        let hasher = self.hasher.clone();
        self.table.reserve(additional, move |row| {
            use std::hash::BuildHasher;
            hasher.hash_one(id_of(*row))
        });
    }

    /// Takes `id` out (its row is about to go); says whether it was in.
    pub fn remove(&mut self, id: &[u8; 16], id_of: impl Fn(u32) -> [u8; 16]) -> bool {
        match self
            .table
            .find_entry(self.hash(id), |row| id_of(*row) == *id)
        {
            Ok(entry) => {
                entry.remove();
                true
            }
            Err(_) => false,
        }
    }

    /// Gives `id`, which is in, the row `row` instead of its own (its row is about to
    /// move); `id_of` still gives the ids of the rows as they are.
    pub fn set(&mut self, id: &[u8; 16], row: u32, id_of: impl Fn(u32) -> [u8; 16]) {
        if let Some(r) = self.table.find_mut(self.hash(id), |r| id_of(*r) == *id) {
            *r = row;
        }
    }

    pub fn clear(&mut self) {
        self.table.clear();
    }
}

/// `Box<[u8]>` as one run of bytes (postcard's `bytes`, the same on the wire as a
/// sequence of `u8`), read back in one copy instead of byte by byte.
pub(crate) mod boxed_bytes {
    pub fn serialize<S: serde::Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(b)
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Box<[u8]>, D::Error> {
        struct Bytes;
        impl serde::de::Visitor<'_> for Bytes {
            type Value = Box<[u8]>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Box<[u8]>, E> {
                Ok(v.into())
            }
        }
        d.deserialize_bytes(Bytes)
    }
}
