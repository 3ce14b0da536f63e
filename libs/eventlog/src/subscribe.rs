//! Catch-up-then-follow subscriptions over any [`EventLog`], built from `read_all` and the
//! head watch: the subscriber reads stored pages until it reaches the head, then waits for
//! the head to move. It holds one page at a time, so a slow subscriber costs no memory.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;

use crate::error::{Error, Result};
use crate::types::{Direction, Position, RecordedEvent};
use crate::EventLog;

/// A subscription: events in global order, or an error after which it ends.
pub type EventStream = Pin<Box<dyn Stream<Item = Result<RecordedEvent>> + Send>>;

const PAGE: usize = 512;

struct State<L: ?Sized> {
    log: Arc<L>,
    next: Position,
    buffer: VecDeque<RecordedEvent>,
    head: tokio::sync::watch::Receiver<Position>,
    done: bool,
}

pub(crate) fn catch_up_then_follow<L: EventLog + ?Sized>(
    log: Arc<L>,
    from: Position,
) -> EventStream {
    let head = log.watch_head();
    let state = State {
        log,
        next: from.max(1),
        buffer: VecDeque::new(),
        head,
        done: false,
    };
    Box::pin(futures::stream::unfold(state, |mut s| async move {
        if s.done {
            return None;
        }
        loop {
            if let Some(event) = s.buffer.pop_front() {
                return Some((Ok(event), s));
            }
            // Mark the watch seen before asking for the head, so no move is missed.
            s.head.borrow_and_update();
            let head = match s.log.head().await {
                Ok(head) => head,
                Err(e) => {
                    s.done = true;
                    return Some((Err(e), s));
                }
            };
            if head >= s.next {
                match s.log.read_all(s.next, Direction::Forward, PAGE).await {
                    Ok(page) => {
                        for event in page {
                            if event.position != s.next {
                                s.done = true;
                                let reason = format!(
                                    "subscription expected position {}, read {}",
                                    s.next, event.position
                                );
                                return Some((
                                    Err(Error::Corruption {
                                        position: s.next,
                                        reason,
                                    }),
                                    s,
                                ));
                            }
                            s.next += 1;
                            s.buffer.push_back(event);
                        }
                        if s.buffer.is_empty() {
                            // The head said there was more, yet nothing came: a gap.
                            s.done = true;
                            let reason = "head is past a missing record".to_owned();
                            return Some((
                                Err(Error::Corruption {
                                    position: s.next,
                                    reason,
                                }),
                                s,
                            ));
                        }
                    }
                    Err(e) => {
                        s.done = true;
                        return Some((Err(e), s));
                    }
                }
            } else if s.head.changed().await.is_err() {
                s.done = true;
                return Some((Err(Error::Closed), s));
            }
        }
    }))
}
