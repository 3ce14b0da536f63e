//! End-to-end tests live in tests/*.rs; this crate also builds their helper programs.
