//! End-to-end tests live in tests/*.rs; this crate also builds their helper programs.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test
