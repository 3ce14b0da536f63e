//! The one error of reading a stored event back.

/// A stored event that cannot be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("undecodable stored event: {0}")]
pub struct DecodeError(pub String);

impl DecodeError {
    /// The same error, saying where in the log it was found.
    #[must_use]
    pub fn at(self, position: eventlog::Position) -> Self {
        Self(format!("position {position}: {}", self.0))
    }
}
