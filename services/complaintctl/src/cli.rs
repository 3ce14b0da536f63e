//! The command line: global options, subcommands and their flags (clap derive). Values
//! with a fixed set of spellings are the enums of [`crate::parse`]; they are matched
//! ignoring case, as they always were.
//!
//! The doc comments here are the `--help` texts, written for a terminal (`<uuid>` is a
//! placeholder there, not HTML).
#![allow(rustdoc::invalid_html_tags)]

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use uuid::Uuid;

use crate::parse::{
    self, Channel, ClockState, Decision, Delivery, Direction, PauseReason, ReferralReason,
    RegulatorOutcome, ReviewOutcome, RootCause, Status,
};

#[derive(Parser)]
#[command(
    version,
    about = "Register complaints and walk them through their life"
)]
pub struct Cli {
    /// complaintd's address.
    #[arg(
        long,
        env = "COMPLAINTD_ADDR",
        default_value = "http://127.0.0.1:50051",
        global = true
    )]
    pub server: String,
    /// Who you are (development authentication).
    #[arg(
        long = "as",
        env = "COMPLAINTS_PRINCIPAL",
        default_value = "user:cli",
        global = true
    )]
    pub principal: String,
    /// Your roles, comma-separated: intake, handler, supervisor, regulator_gateway, auditor,
    /// compliance, operations, admin, personal_data.
    #[arg(
        long,
        env = "COMPLAINTS_ROLES",
        default_value = "intake,handler",
        global = true
    )]
    pub roles: String,
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Subcommand)]
pub enum Cmd {
    /// Register a complaint.
    Register(Box<RegisterArgs>),
    /// Show a complaint.
    Get { complaint: String },
    /// Show a complaint's SLA clocks: due times, states and how they were computed.
    Sla { complaint: String },
    /// Running clocks of all complaints, most urgent first.
    Clocks(ClocksArgs),
    /// The operations board's figures.
    Board,
    /// The regulator-transfer queue.
    #[command(subcommand)]
    Queue(QueueCmd),
    /// For auditors: export, verify, digests, timelines, views of past moments.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// For compliance and auditors: a regulatory return or an analysis for a period, from
    /// the log as it stood at the period's end (CSV or JSON, with the log position, the
    /// digest, the rules and the mapping the figures came from).
    Report(ReportArgs),
    /// For operators: back up, restore, export erasures, salvage a damaged data directory.
    #[command(subcommand)]
    Admin(AdminCmd),
    /// List complaints.
    List(ListArgs),
    #[command(flatten)]
    Step(StepCmd),
}

/// The fields of a registration.
#[derive(Args)]
pub struct RegisterArgs {
    #[arg(long, value_enum, ignore_case = true, default_value_t = Channel::Web)]
    pub channel: Channel,
    #[arg(long, default_value = "")]
    pub person_id: String,
    #[arg(long)]
    pub name: String,
    #[arg(long)]
    pub contact: String,
    #[arg(long, default_value = "")]
    pub id_number: String,
    /// The unit complained about.
    #[arg(long)]
    pub unit: String,
    /// The employee complained about, if any.
    #[arg(long, default_value = "")]
    pub employee: String,
    #[arg(long)]
    pub product: String,
    #[arg(long)]
    pub category: String,
    #[arg(long)]
    pub claim: String,
    #[arg(long)]
    pub facts: String,
    /// When it was received (RFC 3339); now by default.
    #[arg(long)]
    pub received: Option<String>,
    #[arg(long)]
    pub regime: String,
    #[arg(long)]
    pub region: String,
    /// For a regulator transfer: the regulator, its reference and deadline (RFC 3339).
    #[arg(long, requires_all = ["regulator_reference", "regulator_deadline"])]
    pub regulator: Option<String>,
    #[arg(long)]
    pub regulator_reference: Option<String>,
    #[arg(long)]
    pub regulator_deadline: Option<String>,
    /// The regime's variant whose deadlines apply (e.g. superannuation under
    /// AU-ASIC-RG271); by default the category selects one.
    #[arg(long, default_value = "")]
    pub variant: String,
    #[arg(long)]
    pub request_id: Option<Uuid>,
}

#[derive(Args)]
pub struct ClocksArgs {
    /// Only clocks in these states (repeatable).
    #[arg(long, ignore_case = true)]
    pub state: Vec<ClockState>,
    #[arg(long, default_value = "")]
    pub regime: String,
    #[arg(long, default_value = "")]
    pub unit: String,
    #[arg(long, default_value = "")]
    pub category: String,
    #[arg(long, default_value_t = 50)]
    pub page_size: i32,
    #[arg(long, default_value = "")]
    pub page_token: String,
}

#[derive(Args)]
pub struct ListArgs {
    #[arg(long, ignore_case = true)]
    pub status: Option<Status>,
    #[arg(long, default_value = "")]
    pub unit: String,
    #[arg(long, default_value = "")]
    pub category: String,
    #[arg(long, default_value = "")]
    pub regime: String,
    #[arg(long, default_value_t = 50)]
    pub page_size: i32,
    #[arg(long, default_value = "")]
    pub page_token: String,
}

#[derive(Subcommand)]
pub enum QueueCmd {
    /// List the items (outbound referrals, inbound transfers to report back).
    List {
        /// Both directions by default.
        #[arg(long, ignore_case = true)]
        direction: Option<Direction>,
    },
    /// Lease an item (or the first available) to yourself.
    Lease {
        /// regulatorQueue/<uuid>; the first available when absent.
        item: Option<String>,
        #[arg(long, ignore_case = true)]
        direction: Option<Direction>,
        #[arg(long, default_value_t = 300)]
        seconds: u32,
    },
    /// Acknowledge a leased item with the regulator's reference.
    Ack {
        item: String,
        #[arg(long)]
        reference: String,
    },
}

#[derive(Subcommand)]
pub enum AuditCmd {
    /// Export events as JSON Lines (one object per event, with its hashes).
    Export {
        /// Only this complaint's events.
        #[arg(long)]
        complaint: Option<String>,
        /// Only these event types (repeatable), e.g. complaint.answered.
        #[arg(long = "type")]
        types: Vec<String>,
        /// Start at this position.
        #[arg(long)]
        from_position: Option<u64>,
        /// Start at the first event recorded at or after this time (RFC 3339; online only).
        #[arg(long)]
        from_time: Option<String>,
        /// Write here instead of standard output.
        #[arg(long, short)]
        out: Option<PathBuf>,
        /// Read a copy of a data directory instead of asking the server.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Verify the hash chain and the signed digests, and that the log still matches the
    /// digests you hold: prints "intact up to N" or where and how it breaks (exit 1).
    Verify {
        /// A digest you kept (JSON from `audit digest`); repeatable.
        #[arg(long)]
        digest: Vec<PathBuf>,
        /// The service's public key (PEM or hex); repeatable. Signed digests by any
        /// other key are refused.
        #[arg(long)]
        public_key: Vec<PathBuf>,
        /// Check only what was appended after this digest (one you verified before).
        #[arg(long)]
        after_digest: Option<PathBuf>,
        /// Verify a copy of a data directory instead of asking the server.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Print the log's current digest (signed when the service has a key) to keep.
    Digest {
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
    /// A complaint's history in readable form.
    Timeline { complaint: String },
    /// Entries recorded well after they happened (back-dated), with totals by unit and
    /// by handler.
    Backdated {
        /// Only entries recorded at least this many hours after they happened.
        #[arg(long, default_value_t = 24)]
        min_delay_hours: u32,
        /// Only complaints of this unit.
        #[arg(long)]
        unit: Option<String>,
    },
    /// A complaint, the board or the regulator queue as it stood at a past time.
    #[command(subcommand)]
    AsOf(AsOfCmd),
    /// Make an Ed25519 key pair for complaintd's `audit_signing_key`.
    Keygen {
        /// Where to write the private key (PKCS#8 PEM; keep it secret).
        #[arg(long)]
        private: PathBuf,
        /// Where to write the public key (PEM) to hand to auditors.
        #[arg(long)]
        public: PathBuf,
    },
}

#[derive(Subcommand)]
pub enum AsOfCmd {
    Complaint {
        complaint: String,
        /// RFC 3339, e.g. 2026-03-01T12:00:00Z.
        #[arg(long)]
        at: String,
        /// Apply today's SLA rules instead of those in force at the time.
        #[arg(long)]
        current_rules: bool,
    },
    Board {
        #[arg(long)]
        at: String,
        #[arg(long)]
        current_rules: bool,
    },
    Queue {
        #[arg(long)]
        at: String,
    },
}

/// What every step takes besides its own fields.
#[derive(Args)]
pub struct Step {
    /// The complaint: complaints/<uuid> (or the bare uuid).
    complaint: String,
    /// Reuse to retry safely; a new one by default.
    #[arg(long)]
    request_id: Option<Uuid>,
    /// Fail with ABORTED unless the complaint is at this version.
    #[arg(long)]
    pub expected_version: Option<u64>,
    /// When it happened, if before now (RFC 3339, e.g. 2026-03-06T16:00:00Z): for steps
    /// outside the system (ack, answer, hold, pause, resume, add-facts, withdraw,
    /// request-review, answer-review, refer, regulator-outcome, record-satisfaction). The
    /// SLA counts from it.
    #[arg(long)]
    pub effective_time: Option<String>,
    /// Why it is recorded late: needed (with the supervisor role) beyond the back-dating
    /// window.
    #[arg(long, requires = "effective_time")]
    pub backdating_reason: Option<String>,
}

impl Step {
    pub fn name(&self) -> String {
        parse::complaint_name(&self.complaint)
    }

    pub fn request_id(&self) -> String {
        self.request_id.unwrap_or_else(Uuid::new_v4).to_string()
    }
}

/// The steps of a complaint's life; each prints the complaint afterwards.
#[derive(Subcommand)]
pub enum StepCmd {
    /// Acknowledge receipt.
    Ack(Step),
    /// Decline: not a complaint.
    Decline {
        #[command(flatten)]
        step: Step,
        #[arg(long)]
        reason: String,
    },
    /// Merge into an open duplicate.
    Merge {
        #[command(flatten)]
        step: Step,
        #[arg(long)]
        into: String,
        #[arg(long)]
        reason: String,
    },
    /// Assign to a unit and handler.
    Assign {
        #[command(flatten)]
        step: Step,
        #[arg(long)]
        unit: String,
        #[arg(long)]
        handler: String,
    },
    /// Classify as complex.
    Complex {
        #[command(flatten)]
        step: Step,
        #[arg(long)]
        reason: String,
    },
    /// Record investigation findings.
    Findings {
        #[command(flatten)]
        step: Step,
        #[arg(long)]
        findings: String,
        #[arg(long, ignore_case = true)]
        root_cause: RootCause,
        #[arg(long)]
        evidence: Vec<String>,
    },
    /// Propose redress: --redress kind:minor_units:CURRENCY (repeatable).
    ProposeRedress {
        #[command(flatten)]
        step: Step,
        #[arg(long, required = true)]
        redress: Vec<String>,
        #[arg(long)]
        rationale: String,
    },
    /// Send the final answer.
    Answer {
        #[command(flatten)]
        step: Step,
        #[arg(long, ignore_case = true)]
        decision: Decision,
        /// kind:minor_units:CURRENCY, e.g. refund:3000:GBP (repeatable).
        #[arg(long)]
        redress: Vec<String>,
        #[arg(long, value_enum, ignore_case = true, default_value_t = Delivery::Letter)]
        delivery: Delivery,
        #[arg(long)]
        summary: String,
    },
    /// Send a holding response.
    Hold {
        #[command(flatten)]
        step: Step,
        #[arg(long)]
        reason: String,
        #[arg(long, value_enum, ignore_case = true, default_value_t = Delivery::Letter)]
        delivery: Delivery,
    },
    /// Ask for a deadline extension.
    RequestExtension {
        #[command(flatten)]
        step: Step,
        #[arg(long)]
        days: u32,
        #[arg(long)]
        reason: String,
    },
    /// Approve the pending extension (supervisor), once the complainant was told.
    ApproveExtension {
        #[command(flatten)]
        step: Step,
        /// When the complainant was told (RFC 3339).
        #[arg(long)]
        notified: Option<String>,
    },
    /// Pause the clock: external_appraisal, external_testing, external_assessment,
    /// awaiting_customer.
    Pause {
        #[command(flatten)]
        step: Step,
        #[arg(long, ignore_case = true)]
        reason: PauseReason,
        #[arg(long)]
        notified: Option<String>,
    },
    /// Resume the clock.
    Resume(Step),
    /// Add new facts.
    AddFacts {
        #[command(flatten)]
        step: Step,
        #[arg(long)]
        facts: String,
    },
    /// Withdraw the complaint.
    Withdraw {
        #[command(flatten)]
        step: Step,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// The complainant asks for a review.
    RequestReview {
        #[command(flatten)]
        step: Step,
        #[arg(long)]
        reason: String,
    },
    /// The complainant's satisfaction with the answer: a rating from 1 to 5 and an
    /// optional comment (personal data). Once per answer.
    RecordSatisfaction {
        #[command(flatten)]
        step: Step,
        #[arg(long)]
        rating: u32,
        #[arg(long, default_value = "")]
        comment: String,
    },
    /// Answer the review: confirmed or changed.
    AnswerReview {
        #[command(flatten)]
        step: Step,
        #[arg(long, ignore_case = true)]
        outcome: ReviewOutcome,
        #[arg(long)]
        summary: String,
    },
    /// Refer to a regulator or ombudsman: complainant_referred or rule_required.
    Refer {
        #[command(flatten)]
        step: Step,
        #[arg(long)]
        body: String,
        #[arg(
            long,
            value_enum,
            ignore_case = true,
            default_value_t = ReferralReason::ComplainantReferred
        )]
        reason: ReferralReason,
        #[arg(long, default_value = "")]
        reference: String,
    },
    /// Record the regulator's outcome: upheld_for_complainant, upheld_for_firm, settled,
    /// dismissed.
    RegulatorOutcome {
        #[command(flatten)]
        step: Step,
        #[arg(long)]
        body: String,
        #[arg(long, ignore_case = true)]
        outcome: RegulatorOutcome,
        #[arg(long, default_value = "")]
        reference: String,
    },
    /// Close an answered complaint.
    Close(Step),
    /// Reopen (supervisor).
    Reopen {
        #[command(flatten)]
        step: Step,
        #[arg(long)]
        reason: String,
    },
}

/// Operators' tools: online backups of a running complaintd (roles admin and auditor),
/// and offline work on stopped data directories.
#[derive(Subcommand)]
pub enum AdminCmd {
    /// Back up a running complaintd while it serves (roles admin and auditor).
    ///
    /// Its log up to the head when the backup starts (with the digest of that head, signed
    /// when the server signs) and its key store of personal data. Use TLS in production
    /// (the keys travel). The backup is checked once written.
    Backup {
        /// A directory for the backup (it must not hold one yet): log/, keys/, backup.json.
        #[arg(long)]
        out: PathBuf,
    },
    /// Restore a backup into a new data directory, applying the erasures made since.
    ///
    /// The backup is checked first (hash chain, its digest and, with --public-key, the
    /// signature). The erasures made since the backup
    /// are applied: from a running server (--erasures-from) or an export of them
    /// (--erasures-file); without either, only with --accept-no-later-erasures.
    #[command(group(
        clap::ArgGroup::new("later_erasures")
            .required(true)
            .args(["erasures_from", "erasures_file", "accept_no_later_erasures"])
    ))]
    Restore {
        /// The backup directory (from `admin backup`).
        #[arg(long)]
        from: PathBuf,
        /// The new data directory (must not hold a log or keys yet).
        #[arg(long)]
        data_dir: PathBuf,
        /// The service's public key (PEM or hex); repeatable. The backup's digest must be
        /// signed by one of them.
        #[arg(long)]
        public_key: Vec<PathBuf>,
        /// The running system the backup was taken from (e.g. http://10.0.0.5:50051):
        /// every erasure it knows (its `erasures` stream and its key store's tombstones)
        /// is applied. Needs the roles admin and auditor there.
        #[arg(long)]
        erasures_from: Option<String>,
        /// Erasures exported with `admin erasures` after the backup was taken.
        #[arg(long)]
        erasures_file: Option<PathBuf>,
        /// Restore without applying any erasure made after the backup: the personal data
        /// of anyone erased since then comes back. Only when no such erasure can exist.
        #[arg(long)]
        accept_no_later_erasures: bool,
    },
    /// Erase a person's personal data for good (right to erasure; role admin).
    ///
    /// Destroys their key: their events stay, the fields read as erased, and nothing new
    /// is recorded about them.
    Erase {
        /// The person (the complainant's person id).
        #[arg(long)]
        person_id: String,
        /// Why, e.g. the request's reference (recorded; must not be personal data).
        #[arg(long)]
        reason: String,
    },
    /// Export every erasure of personal data a system knows, for `restore --erasures-file`.
    ///
    /// From a running complaintd (roles admin and auditor), or from a copy of a stopped
    /// data directory (--data-dir). The file names persons: keep it as safe as the keys.
    Erasures {
        /// Where to write the JSON (it must not exist).
        #[arg(long)]
        out: PathBuf,
        /// A copy of a data directory instead of asking the server.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Copy the readable prefix of a damaged log into a new data directory.
    ///
    /// For comparison with a backup or a replica, or to serve what is left. The damaged directory is
    /// never modified: it is copied first and the copy is read.
    Salvage {
        /// The damaged data directory (or its `log` directory).
        #[arg(long)]
        from: PathBuf,
        /// A new data directory to write (must not hold a log yet).
        #[arg(long)]
        to: PathBuf,
    },
}

/// How a report is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Csv,
    Json,
}

#[derive(Args)]
pub struct ReportArgs {
    /// asic-idr, fca-return, nfra-statistics, measures or root-causes.
    pub kind: String,
    /// 2026-H1, 2026-Q3, 2026-03, 2026, or 2026-01-01..2026-06-30 (inclusive).
    #[arg(long)]
    pub period: String,
    /// The zone the period's days are cut in (default: the regulator's; UTC for measures
    /// and root causes).
    #[arg(long)]
    pub time_zone: Option<String>,
    /// For measures: unit (default), handler, product or category.
    #[arg(long)]
    pub by: Option<String>,
    /// For root causes: the same cause at least this many times (default 3)...
    #[arg(long)]
    pub repeat_count: Option<u32>,
    /// ...within this many days (default 30).
    #[arg(long)]
    pub repeat_days: Option<u32>,
    #[arg(long, value_enum, default_value = "csv")]
    pub format: ReportFormat,
    /// Write the files into this directory (one CSV per table, or one JSON file, and the
    /// digest of the log position the figures come from) instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// With --out and CSV: the tables without the provenance lines (e.g. for a
    /// regulator's upload), the provenance in its own `-provenance.txt`.
    #[arg(long, requires = "out")]
    pub plain: bool,
}
