//! The records this process appended or read lately, by position, so that reading a
//! complaint's stream (what every command does before deciding) does not fetch each of
//! its events from the server again: a fetched message's records are kept together, and
//! this process's own appends are kept when acknowledged. Bounded by a number of records
//! (oldest out first: recent positions are the ones commands read), so memory does not
//! grow with the history. Hand-written: a map and a queue are all it needs.

use std::collections::{HashMap, VecDeque};

use eventlog::{Position, RecordedEvent, StoredRecord};

pub(crate) struct RecordCache {
    records: HashMap<Position, (StoredRecord, RecordedEvent)>,
    order: VecDeque<Position>,
    capacity: usize,
}

impl RecordCache {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            records: HashMap::new(),
            order: VecDeque::new(),
            capacity,
        }
    }

    pub(crate) fn get(&self, position: Position) -> Option<(StoredRecord, RecordedEvent)> {
        self.records.get(&position).cloned()
    }

    /// Keeps `records`, dropping the oldest kept beyond the capacity.
    pub(crate) fn keep(&mut self, records: &[(StoredRecord, RecordedEvent)]) {
        if self.capacity == 0 {
            return;
        }
        for (stored, record) in records {
            if self
                .records
                .insert(stored.position, (stored.clone(), record.clone()))
                .is_none()
            {
                self.order.push_back(stored.position);
            }
        }
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.records.remove(&old);
            }
        }
    }

    /// Forgets everything (the log is closed).
    pub(crate) fn clear(&mut self) {
        self.records.clear();
        self.order.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_keeps_the_most_recent_records_only() {
        let mut tail = eventlog::Tail::EMPTY;
        let stream = eventlog::StreamId::new("s").unwrap();
        let mut cache = RecordCache::new(3);
        for i in 0..5u64 {
            let e = eventlog::NewEvent::new("t", "a", bytes::Bytes::from(vec![b'x'; 3]));
            let sealed = tail.seal(&stream, i, eventlog::Timestamp::from_micros(1), &[e]);
            tail = sealed.tail;
            cache.keep(&sealed.records);
        }
        assert!(cache.get(1).is_none() && cache.get(2).is_none());
        for p in 3..=5 {
            assert_eq!(cache.get(p).unwrap().1.position, p);
        }
        cache.clear();
        assert!(cache.get(5).is_none());
    }
}
