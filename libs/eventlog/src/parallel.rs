//! Work on a batch of records spread over the machine's cores, results in order: what
//! verification and export do per record (hashing, decoding, rendering) needs nothing
//! from the records before it. Scoped threads borrow the batch; no pool to keep (a batch
//! of thousands of records dwarfs the cost of starting a thread).

/// `f` of every item, in the items' order, on up to all of the machine's cores (at most 8);
/// batches smaller than `parallel_from` stay on the calling thread.
pub fn map_in_order<T: Sync, R: Send>(
    items: &[T],
    parallel_from: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
    if threads < 2 || items.len() < parallel_from.max(2) {
        return items.iter().map(&f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|scope| {
        let mut parts = items.chunks(chunk);
        let own = parts.next().unwrap_or_default();
        let others: Vec<_> = parts
            .map(|part| scope.spawn(move || part.iter().map(f).collect::<Vec<_>>()))
            .collect();
        let mut out: Vec<R> = own.iter().map(f).collect();
        for other in others {
            match other.join() {
                Ok(done) => out.extend(done),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        out
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn results_come_back_in_order_whatever_the_split() {
        let items: Vec<u64> = (0..10_000).collect();
        for from in [1, 512, 20_000] {
            let out = super::map_in_order(&items, from, |n| n * 3);
            assert_eq!(out, items.iter().map(|n| n * 3).collect::<Vec<_>>());
        }
        assert!(super::map_in_order(&[] as &[u64], 1, |n| *n).is_empty());
    }
}
