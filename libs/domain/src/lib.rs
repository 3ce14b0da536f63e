//! The complaint lifecycle as pure functions, with no I/O and no clock.
//!
//! - [`decide`]: `(state, command, context) -> events | refusal`. Fields are checked first
//!   (every bad field reported at once), then the state and the rules.
//! - [`evolve`]: `(state, event) -> state`; a complaint's state is the fold of its events.
//! - [`model`]: the values (ids, channels, statuses, money, roles...).
//! - [`Command`] and [`Context`] (time, actor, roles and rules are inputs), [`Event`] and
//!   [`Change`], [`DomainError`].
//!
//! The lifecycle, from `LIFECYCLE.md`: register -> acknowledge (or decline, or merge into a
//! duplicate) -> assign (never to the employee complained about) -> findings and redress
//! -> answer (holding responses, complex classification, extensions approved by a
//! supervisor once the complainant is told, clock pauses for permitted reasons and new
//! facts on the way) -> review within the window -> close; withdraw at any time; refer to
//! a regulator or ombudsman and record its outcome; reopen (supervisor); once answered,
//! the complainant's satisfaction (a rating from 1 to 5, once per answer).
#![forbid(unsafe_code)]

mod command;
mod decide;
mod error;
mod event;
pub mod model;
mod state;
#[cfg(feature = "testing")]
pub mod testing;

pub use command::{Backdating, Command, Context, Regimes, Register, Rules, Variants};
pub use decide::{
    check_merge_target, decide, field_violations, MAX_EXTENSION_DAYS, MAX_LONG, MAX_RATING,
    MAX_REDRESS, MAX_REGULATOR_DEADLINE_DAYS, MAX_SHORT, MIN_RATING,
};
pub use error::{DomainError, FieldViolation, Result};
pub use event::{Change, Effective, Event};
pub use state::{
    evolve, status_after, Complaint, Pause, PendingExtension, Referral, Review, Satisfaction, Step,
};

/// Folds a whole history into a state.
pub fn replay<'a>(events: impl IntoIterator<Item = &'a Event>) -> Option<Complaint> {
    events.into_iter().fold(None, evolve)
}
