use jiff::civil::Date;

/// What the SLA engine cannot do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlaError {
    /// A date the calendar does not cover (or whose schedule is not published): the engine
    /// never treats it as a plain working day.
    #[error("calendar {calendar} does not cover {date}: {reason}")]
    OutOfRange {
        calendar: String,
        date: Date,
        reason: String,
    },
    #[error("unknown calendar {0}")]
    UnknownCalendar(String),
    #[error("unknown policy {0}")]
    UnknownPolicy(String),
    #[error("policy {policy} has no calendar for region {region}")]
    UnknownRegion { policy: String, region: String },
    /// A calendar or policy file that does not parse or does not make sense.
    #[error("invalid {what}: {reason}")]
    Invalid { what: String, reason: String },
    #[error("time zone {0}: {1}")]
    TimeZone(String, String),
}

/// The SLA engine's result type.
pub type Result<T, E = SlaError> = std::result::Result<T, E>;
