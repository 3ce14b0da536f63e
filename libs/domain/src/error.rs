use std::fmt;

/// One bad field of a command: its path (e.g. `complainant.name`, `redress[1].currency`)
/// and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

impl fmt::Display for FieldViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.description)
    }
}

/// Why a command was refused. Nothing is recorded for a refused command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// Fields of the command are invalid; every bad field is listed.
    #[error("invalid fields: {}", list(.0))]
    Invalid(Vec<FieldViolation>),
    /// The complaint is not in a state that allows the step.
    #[error("{0}")]
    WrongState(String),
    /// The actor's role does not allow the step (e.g. approving an extension).
    #[error("{0}")]
    NotPermitted(String),
}

fn list(violations: &[FieldViolation]) -> String {
    violations
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// The domain's result type.
pub type Result<T, E = DomainError> = std::result::Result<T, E>;
