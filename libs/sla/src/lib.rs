//! The SLA engine: what is due when, under which regime, and why. Pure: no I/O beyond
//! reading an operator's files when asked, and "now" is always an argument.
//!
//! - [`calendar`]: calendars as data (weekends, holidays, working-day swaps) per region
//!   and year; dates outside a calendar's known years are errors, never plain working days.
//! - [`policy`]: regimes as versioned policies in TOML; the built-in ones implement
//!   REGIMES.md, operators add their own in the same form.
//! - [`engine`]: due times with their explanation (policy and version, calendar, start,
//!   restarts, pauses, extensions) and the state of a clock at a moment (running, paused,
//!   at risk, breached with its tier, met).
//! - [`RuleSources`]: the texts the rules in force were built from, to record and rebuild
//!   them exactly.
#![forbid(unsafe_code)]

pub mod calendar;
pub mod engine;
mod error;
mod files;
pub mod policy;
mod sources;

pub use calendar::{Calendar, Calendars, YearStatus};
pub use engine::{Assessment, ClockState, ClockTimes, Due, Engine, Facts, PauseFact, Timing};
pub use error::{Result, SlaError};
pub use policy::{ClockRule, DueAt, Length, Policies, Policy, Start, Stop};
pub use sources::{RuleFile, RuleSources};
