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
        n.names.iter().map(|s| s.to_string()).collect()
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
