//! Deciding a command: fields first (every bad field is reported), then the state and the
//! rules. A refused command produces no event.

use jiff::Timestamp;

use crate::command::{Command, Context, Register};
use crate::error::{DomainError, FieldViolation, Result};
use crate::event::{Change, Event};
use crate::model::*;
use crate::state::Complaint;

/// Longest short text (names, units, ids, references), in characters.
pub const MAX_SHORT: usize = 200;
/// Longest free text (facts, findings, reasons), in characters.
pub const MAX_LONG: usize = 10_000;
/// Most redress items in one answer or proposal.
pub const MAX_REDRESS: usize = 20;
/// Most evidence references in one finding.
pub const MAX_EVIDENCE: usize = 50;
/// Longest extension one request may ask for, in days.
pub const MAX_EXTENSION_DAYS: u32 = 60;
/// The lowest and highest satisfaction rating.
pub const MIN_RATING: u8 = 1;
pub const MAX_RATING: u8 = 5;
/// Latest a regulator's deadline may be after the receipt, in days (about five years:
/// later is a data-entry error).
pub const MAX_REGULATOR_DEADLINE_DAYS: i64 = 5 * 366;

/// Decides what `command` does to the complaint in `state` (`None`: not registered).
pub fn decide(state: Option<&Complaint>, command: Command, ctx: &Context) -> Result<Vec<Event>> {
    if ctx.actor.trim().is_empty() {
        return Err(DomainError::NotPermitted("no authenticated actor".into()));
    }
    validate(&command, ctx)?;
    let change = match (state, command) {
        (None, Command::Register(register)) => Change::Registered(register),
        (None, command) => {
            return refuse(format!(
                "cannot {}: the complaint is not registered",
                command.name()
            ));
        }
        (Some(c), command) => {
            let follows = follows(c, &command);
            let change = decide_existing(c, command, ctx)?;
            check_effective(c, follows, ctx)?;
            change
        }
    };
    Ok(vec![Event {
        at: ctx.now,
        actor: ctx.actor.clone(),
        change,
        // Not in the past (within the clock skew): it happened now.
        effective: ctx.effective.clone().filter(|e| e.at < ctx.now),
    }])
}

/// The step a command's effective time may not precede (besides the receipt), with what
/// it is called in a refusal.
fn follows(c: &Complaint, command: &Command) -> Option<(Timestamp, &'static str)> {
    let last_pause_end = || {
        c.pauses.last().map(|p| match p.until {
            Some(until) => (until, "the last pause ended"),
            None => (p.from, "the pause started"),
        })
    };
    match command {
        Command::ResumeClock | Command::Withdraw { .. } => c
            .open_pause()
            .map(|p| (p.from, "the pause it ends started")),
        Command::PauseClock { .. } | Command::Answer { .. } => last_pause_end(),
        Command::RequestReview { .. } => c.answered_at.map(|t| (t, "the complaint was answered")),
        Command::RecordSatisfaction { .. } => c
            .latest_answer_at()
            .map(|t| (t, "the complaint was answered")),
        Command::AnswerReview { .. } => c
            .open_review()
            .map(|r| (r.requested_at, "the review was requested")),
        Command::RecordRegulatorOutcome { body, .. } => c
            .open_referral(body)
            .map(|r| (r.referred_at, "the complaint was referred")),
        _ => None,
    }
}

/// The effective time of a step, against the complaint: not before its receipt nor the
/// step it follows; back-dated beyond the window only with a reason and the supervisor
/// role. (That it is not in the future, and only on a step outside the system, is
/// checked with the other fields.)
fn check_effective(
    c: &Complaint,
    follows: Option<(Timestamp, &'static str)>,
    ctx: &Context,
) -> Result<()> {
    let Some(effective) = &ctx.effective else {
        return Ok(());
    };
    let mut violations = Vec::new();
    let mut bad = |field: &str, description: String| {
        violations.push(crate::FieldViolation {
            field: field.into(),
            description,
        });
    };
    let received = c.registration.received_at;
    if effective.at < received {
        bad(
            "effective_time",
            format!("is before the complaint was received ({received})"),
        );
    } else if let Some((before, what)) = follows.filter(|(t, _)| effective.at < *t) {
        bad("effective_time", format!("is before {what} ({before})"));
    }
    let beyond = ctx.backdating.as_ref().filter(|b| effective.at < b.limit);
    if let Some(b) = beyond {
        if effective.reason.is_none() {
            bad(
                "backdating_reason",
                format!(
                    "is required: effective_time {} is more than {} back",
                    effective.at, b.window
                ),
            );
        }
    }
    if !violations.is_empty() {
        return Err(DomainError::Invalid(violations));
    }
    if let Some(b) = beyond {
        if !ctx.roles.contains(&Role::Supervisor) {
            return Err(DomainError::NotPermitted(format!(
                "recording a step more than {} after it happened needs the supervisor role",
                b.window
            )));
        }
    }
    Ok(())
}

/// Whether a duplicate may be merged into `target` (the caller reads it; [`decide`]
/// refuses a merge into itself). The target must still be live: not merged itself (the
/// duplicate goes to the complaint it was merged into, so merges never chain or loop),
/// nor withdrawn, declined or closed (reopen it first, or handle the duplicate on its
/// own). An answered complaint, or one under review, may take a duplicate.
pub fn check_merge_target(target: &Complaint) -> Result<()> {
    let name = target.id().name();
    match target.status {
        Status::Received
        | Status::Acknowledged
        | Status::InProgress
        | Status::Answered
        | Status::UnderReview => Ok(()),
        Status::Merged => refuse(match target.merged_into {
            Some(into) => format!(
                "cannot merge into {name}: it is itself merged into {}; merge into that one",
                into.name()
            ),
            None => format!("cannot merge into {name}: it is itself merged"),
        }),
        status @ (Status::Withdrawn | Status::Declined | Status::Closed) => refuse(format!(
            "cannot merge into {name}: it is {status}; reopen it first, or handle this complaint on its own"
        )),
    }
}

fn refuse<T>(reason: impl Into<String>) -> Result<T> {
    Err(DomainError::WrongState(reason.into()))
}

fn require(ok: bool, reason: impl FnOnce() -> String) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(DomainError::WrongState(reason()))
    }
}

fn before_answer(c: &Complaint, step: &str) -> Result<()> {
    require(c.status.is_before_answer(), || {
        format!("cannot {step}: the complaint is {}", c.status)
    })
}

fn decide_existing(c: &Complaint, command: Command, ctx: &Context) -> Result<Change> {
    let status = c.status;
    Ok(match command {
        Command::Register(_) => return refuse(format!("{} is already registered", c.id())),
        Command::Acknowledge => {
            require(status == Status::Received, || {
                format!("cannot acknowledge: the complaint is {status}")
            })?;
            Change::Acknowledged
        }
        Command::Decline { reason } => {
            require(
                matches!(status, Status::Received | Status::Acknowledged),
                || {
                    format!("cannot decline: the complaint is {status}; only a complaint not yet assigned can be declined")
                },
            )?;
            Change::Declined { reason }
        }
        Command::Merge { into, reason } => {
            before_answer(c, "merge")?;
            require(into != c.id(), || {
                "cannot merge a complaint into itself".into()
            })?;
            Change::Merged { into, reason }
        }
        Command::Assign { unit, handler } => {
            before_answer(c, "assign")?;
            if let Some(employee) = &c.registration.employee {
                require(!same_person(employee, &handler), || {
                    "the handler is the employee complained about and may not handle it".into()
                })?;
            }
            Change::Assigned { unit, handler }
        }
        Command::ClassifyComplex { reason } => {
            before_answer(c, "classify as complex")?;
            require(!c.complex, || {
                "the complaint is already classified as complex".into()
            })?;
            Change::ClassifiedComplex { reason }
        }
        Command::RecordFindings {
            findings,
            root_cause,
            evidence,
        } => {
            require(status == Status::InProgress, || {
                format!("cannot record findings: the complaint is {status}; assign it first")
            })?;
            Change::FindingsRecorded {
                findings,
                root_cause,
                evidence,
            }
        }
        Command::ProposeRedress { redress, rationale } => {
            require(status == Status::InProgress, || {
                format!("cannot propose redress: the complaint is {status}; assign it first")
            })?;
            Change::RedressProposed { redress, rationale }
        }
        Command::Answer {
            decision,
            redress,
            delivery,
            summary,
        } => {
            require(status == Status::InProgress, || {
                format!("cannot answer: the complaint is {status}; it must be assigned and not yet answered")
            })?;
            Change::Answered {
                decision,
                redress,
                delivery,
                summary,
            }
        }
        Command::SendHoldingResponse { reason, delivery } => {
            before_answer(c, "send a holding response")?;
            Change::HoldingResponseSent { reason, delivery }
        }
        Command::RequestExtension { days, reason } => {
            before_answer(c, "request an extension")?;
            require(c.pending_extension.is_none(), || {
                "an extension request is already waiting for approval".into()
            })?;
            Change::ExtensionRequested { days, reason }
        }
        Command::ApproveExtension {
            complainant_notified_at,
        } => {
            before_answer(c, "approve an extension")?;
            let pending = c.pending_extension.as_ref().ok_or_else(|| {
                DomainError::WrongState("no extension request is waiting for approval".into())
            })?;
            if !ctx.roles.contains(&Role::Supervisor) {
                return Err(DomainError::NotPermitted(
                    "only a supervisor may approve an extension".into(),
                ));
            }
            let notified = complainant_notified_at.ok_or_else(|| {
                DomainError::WrongState(
                    "the complainant must be told of the extension, with its reason and new date, before it is approved".into(),
                )
            })?;
            if notified < pending.requested_at {
                return Err(invalid(
                    "complainant_notified_at",
                    "is before the extension was requested",
                ));
            }
            Change::ExtensionApproved {
                days: pending.days,
                complainant_notified_at: notified,
            }
        }
        Command::PauseClock {
            reason,
            complainant_notified_at,
        } => {
            before_answer(c, "pause the clock")?;
            require(c.open_pause().is_none(), || {
                "the clock is already paused".into()
            })?;
            let statutory = reason != PauseReason::AwaitingCustomer;
            require(!statutory || complainant_notified_at.is_some(), || {
                format!("the complainant must be told before the clock pauses for {reason}")
            })?;
            Change::ClockPaused {
                reason,
                complainant_notified_at,
            }
        }
        Command::ResumeClock => {
            let pause = c
                .open_pause()
                .ok_or_else(|| DomainError::WrongState("the clock is not paused".into()))?;
            Change::ClockResumed {
                reason: pause.reason,
            }
        }
        Command::AddNewFacts { facts } => {
            before_answer(c, "add new facts")?;
            Change::NewFactsAdded { facts }
        }
        Command::Withdraw { reason } => {
            require(!status.is_ended(), || {
                format!("cannot withdraw: the complaint is {status}")
            })?;
            Change::Withdrawn { reason }
        }
        Command::RequestReview { reason } => {
            require(status == Status::Answered, || {
                format!("cannot request a review: the complaint is {status}; only an answered complaint can be reviewed")
            })?;
            let answered = c.answered_at.unwrap_or(c.updated_at);
            let window_end = answered
                .saturating_add(ctx.rules.review_window)
                .unwrap_or(answered);
            require(ctx.now <= window_end, || {
                format!("the review window closed at {window_end}")
            })?;
            Change::ReviewRequested { reason }
        }
        Command::AnswerReview { outcome, summary } => {
            require(c.open_review().is_some(), || {
                "no review is in progress".into()
            })?;
            Change::ReviewAnswered { outcome, summary }
        }
        Command::ReferToRegulator {
            body,
            reason,
            reference,
        } => {
            require(status != Status::Merged, || {
                "cannot refer a merged complaint; refer the one it was merged into".into()
            })?;
            require(c.open_referral(&body).is_none(), || {
                format!("the complaint is already referred to {body}")
            })?;
            Change::ReferredToRegulator {
                body,
                reason,
                reference,
            }
        }
        Command::RecordRegulatorOutcome {
            body,
            outcome,
            reference,
        } => {
            require(c.open_referral(&body).is_some(), || {
                format!("the complaint has no open referral to {body}")
            })?;
            Change::RegulatorOutcomeRecorded {
                body,
                outcome,
                reference,
            }
        }
        Command::RecordSatisfaction { rating, comment } => {
            let Some(answered) = c.latest_answer_at() else {
                return refuse(format!(
                    "cannot record satisfaction: the complaint is {status} and has not been answered"
                ));
            };
            require(
                matches!(
                    status,
                    Status::Answered | Status::UnderReview | Status::Closed
                ),
                || format!("cannot record satisfaction: the complaint is {status}"),
            )?;
            // One rating per answer: a new answer (or a review that changed it) may be
            // rated again.
            if let Some(s) = c.satisfaction.as_ref().filter(|s| s.at >= answered) {
                return refuse(format!(
                    "the complainant's satisfaction with the answer of {answered} was already recorded ({})",
                    s.at
                ));
            }
            Change::SatisfactionRecorded { rating, comment }
        }
        Command::Close => {
            require(status == Status::Answered, || {
                format!(
                    "cannot close: the complaint is {status}; only an answered complaint is closed"
                )
            })?;
            Change::Closed
        }
        Command::Reopen { reason } => {
            require(
                matches!(
                    status,
                    Status::Closed | Status::Withdrawn | Status::Declined
                ),
                || format!("cannot reopen: the complaint is {status}"),
            )?;
            if !ctx.roles.contains(&Role::Supervisor) {
                return Err(DomainError::NotPermitted(
                    "only a supervisor may reopen a complaint".into(),
                ));
            }
            Change::Reopened { reason }
        }
    })
}

/// Employee and handler ids are compared without regard to case or surrounding spaces.
fn same_person(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
}

fn invalid(field: &str, description: &str) -> DomainError {
    DomainError::Invalid(vec![FieldViolation {
        field: field.into(),
        description: description.into(),
    }])
}

/// Collects every bad field of a command.
struct Check<'a> {
    ctx: &'a Context,
    violations: Vec<FieldViolation>,
}

impl Check<'_> {
    fn bad(&mut self, field: &str, description: impl Into<String>) {
        self.violations.push(FieldViolation {
            field: field.into(),
            description: description.into(),
        });
    }

    fn text(&mut self, field: &str, value: &str, max: usize, required: bool) {
        if value.trim().is_empty() {
            if required {
                self.bad(field, "must not be empty");
            }
            return;
        }
        if value.chars().count() > max {
            self.bad(field, format!("must be at most {max} characters"));
        }
        let multiline = max == MAX_LONG;
        if value
            .chars()
            .any(|ch| ch.is_control() && !(multiline && (ch == '\n' || ch == '\t' || ch == '\r')))
        {
            self.bad(field, "must not contain control characters");
        }
    }

    fn short(&mut self, field: &str, value: &str) {
        self.text(field, value, MAX_SHORT, true);
    }

    fn long(&mut self, field: &str, value: &str) {
        self.text(field, value, MAX_LONG, true);
    }

    /// Checks a code like UK-FCA-DISP; true when it is well formed.
    fn code(&mut self, field: &str, value: &str) -> bool {
        let well_formed = value.len() <= 64
            && value
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if value.is_empty() {
            self.bad(field, "must not be empty");
        } else if !well_formed {
            self.bad(
                field,
                "must be an uppercase code like UK-FCA-DISP (A-Z, 0-9, '-', '_')",
            );
        }
        !value.is_empty() && well_formed
    }

    fn not_future(&mut self, field: &str, at: Timestamp) {
        let limit = self
            .ctx
            .now
            .saturating_add(self.ctx.rules.clock_skew)
            .unwrap_or(self.ctx.now);
        if at > limit {
            self.bad(field, "must not be in the future");
        }
    }

    fn redress(&mut self, field: &str, items: &[Redress], required: bool) {
        if items.is_empty() && required {
            self.bad(field, "must list at least one redress item");
        }
        if items.len() > MAX_REDRESS {
            self.bad(field, format!("must have at most {MAX_REDRESS} items"));
        }
        let mut totals: Vec<(iso_currency::Currency, i64)> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let amount = item.amount.minor_units;
            if amount <= 0 {
                self.bad(
                    &format!("{field}[{i}].amount"),
                    "must be a positive amount in minor units",
                );
                continue;
            }
            match totals.iter_mut().find(|(c, _)| *c == item.amount.currency) {
                Some((_, total)) => match total.checked_add(amount) {
                    Some(sum) => *total = sum,
                    None => self.bad(&format!("{field}[{i}].amount"), "the total overflows"),
                },
                None => totals.push((item.amount.currency, amount)),
            }
        }
    }

    fn finish(self) -> Result<()> {
        if self.violations.is_empty() {
            Ok(())
        } else {
            Err(DomainError::Invalid(self.violations))
        }
    }
}

/// A variant must be a name like `default_notice`, and one the regime defines (when the
/// regimes are known).
fn check_variant(check: &mut Check<'_>, regime: &str, variant: &str, regime_ok: bool) {
    let well_formed = !variant.is_empty()
        && variant.chars().count() <= 64
        && !variant.chars().any(|c| c.is_whitespace() || c.is_control());
    if !well_formed {
        check.bad(
            "variant",
            "must be a name like default_notice (at most 64 characters, no spaces), or empty",
        );
        return;
    }
    if check.ctx.regimes.0.is_empty() || !regime_ok || !check.ctx.regimes.0.contains_key(regime) {
        return;
    }
    match check.ctx.regimes.1 .0.get(regime) {
        Some(known) if known.contains(variant) => {}
        Some(known) if !known.is_empty() => {
            let names: Vec<&str> = known.iter().map(String::as_str).collect();
            check.bad(
                "variant",
                format!(
                    "is not a variant of {regime} (its variants: {})",
                    names.join(", ")
                ),
            );
        }
        _ => check.bad(
            "variant",
            format!("{regime} has no variants: leave it empty"),
        ),
    }
}

/// The earliest acceptable receipt time: older records are data-entry errors.
fn earliest() -> Timestamp {
    Timestamp::from_second(946_684_800).unwrap_or(Timestamp::UNIX_EPOCH) // 2000-01-01T00:00:00Z
}

/// Every bad field of `command` in `ctx` (the checks [`decide`] makes first), without
/// looking at any state: for a transport that found bad fields of its own and reports
/// them all in one reply.
pub fn field_violations(command: &Command, ctx: &Context) -> Vec<FieldViolation> {
    match validate(command, ctx) {
        Ok(()) => Vec::new(),
        Err(DomainError::Invalid(violations)) => violations,
        Err(DomainError::WrongState(_) | DomainError::NotPermitted(_)) => Vec::new(),
    }
}

fn validate(command: &Command, ctx: &Context) -> Result<()> {
    let mut check = Check {
        ctx,
        violations: Vec::new(),
    };
    match command {
        Command::Register(r) => validate_register(&mut check, r),
        Command::Acknowledge | Command::ResumeClock | Command::Close => {}
        Command::Decline { reason }
        | Command::ClassifyComplex { reason }
        | Command::Reopen { reason } => check.long("reason", reason),
        Command::Merge { reason, .. } => check.long("reason", reason),
        Command::Assign { unit, handler } => {
            check.short("unit", unit);
            check.short("handler", handler);
        }
        Command::RecordFindings {
            findings, evidence, ..
        } => {
            check.long("findings", findings);
            if evidence.len() > MAX_EVIDENCE {
                check.bad(
                    "evidence",
                    format!("must have at most {MAX_EVIDENCE} references"),
                );
            }
            for (i, reference) in evidence.iter().enumerate() {
                check.short(&format!("evidence[{i}]"), reference);
            }
        }
        Command::ProposeRedress { redress, rationale } => {
            check.redress("redress", redress, true);
            check.long("rationale", rationale);
        }
        Command::Answer {
            redress,
            summary,
            decision,
            ..
        } => {
            check.redress("redress", redress, false);
            check.long("summary", summary);
            if *decision == Decision::Upheld && redress.is_empty() && summary.trim().is_empty() {
                check.bad(
                    "redress",
                    "an upheld complaint needs redress or an explanation",
                );
            }
        }
        Command::SendHoldingResponse { reason, .. } => check.long("reason", reason),
        Command::RequestExtension { days, reason } => {
            if *days == 0 || *days > MAX_EXTENSION_DAYS {
                check.bad("days", format!("must be from 1 to {MAX_EXTENSION_DAYS}"));
            }
            check.long("reason", reason);
        }
        Command::ApproveExtension {
            complainant_notified_at,
        } => {
            if let Some(at) = complainant_notified_at {
                check.not_future("complainant_notified_at", *at);
            }
        }
        Command::PauseClock {
            complainant_notified_at,
            ..
        } => {
            if let Some(at) = complainant_notified_at {
                check.not_future("complainant_notified_at", *at);
            }
        }
        Command::AddNewFacts { facts } => check.long("facts", facts),
        Command::Withdraw { reason } => check.text("reason", reason, MAX_LONG, false),
        Command::RequestReview { reason } => check.long("reason", reason),
        Command::RecordSatisfaction { rating, comment } => {
            if !(MIN_RATING..=MAX_RATING).contains(rating) {
                check.bad(
                    "rating",
                    format!("must be from {MIN_RATING} to {MAX_RATING}"),
                );
            }
            check.text("comment", comment, MAX_LONG, false);
        }
        Command::AnswerReview { summary, .. } => check.long("summary", summary),
        Command::ReferToRegulator {
            body, reference, ..
        } => {
            check.short("body", body);
            check.text("reference", reference, MAX_SHORT, false);
        }
        Command::RecordRegulatorOutcome {
            body, reference, ..
        } => {
            check.short("body", body);
            check.text("reference", reference, MAX_SHORT, false);
        }
    }
    if let Some(effective) = &ctx.effective {
        if !command.happens_outside() {
            check.bad(
                "effective_time",
                format!(
                    "is not accepted for {}: it happens in the system, when it is recorded",
                    command.name()
                ),
            );
        } else if effective.at
            > ctx
                .now
                .checked_add(ctx.rules.clock_skew)
                .unwrap_or(Timestamp::MAX)
        {
            check.bad(
                "effective_time",
                format!(
                    "is in the future ({}; now {}): record a step once it has happened",
                    effective.at, ctx.now
                ),
            );
        }
        if let Some(reason) = &effective.reason {
            check.long("backdating_reason", reason);
        }
    }
    check.finish()
}

fn validate_register(check: &mut Check<'_>, r: &Register) {
    check.short("complainant.person_id", &r.complainant.person_id);
    check.short("complainant.name", &r.complainant.name);
    check.short("complainant.contact", &r.complainant.contact);
    check.text(
        "complainant.id_number",
        &r.complainant.id_number,
        MAX_SHORT,
        false,
    );
    check.short("unit", &r.unit);
    if let Some(employee) = &r.employee {
        check.short("employee", employee);
    }
    check.short("product", &r.product);
    check.short("category", &r.category);
    check.long("claim", &r.claim);
    check.long("facts", &r.facts);
    let regime_ok = check.code("regime", &r.regime);
    let region_ok = check.code("region", &r.region);
    let known = &check.ctx.regimes.0;
    if !known.is_empty() && regime_ok {
        match known.get(&r.regime) {
            None => {
                let names: Vec<&str> = known.keys().map(String::as_str).collect();
                check.bad(
                    "regime",
                    format!("is not a known regime (known: {})", names.join(", ")),
                );
            }
            Some(Some(regions)) if region_ok && !regions.contains(&r.region) => {
                let names: Vec<&str> = regions.iter().map(String::as_str).collect();
                check.bad(
                    "region",
                    format!(
                        "has no calendar under {} (known: {})",
                        r.regime,
                        names.join(", ")
                    ),
                );
            }
            Some(_) => {}
        }
    }
    if let Some(variant) = &r.variant {
        check_variant(check, &r.regime, variant, regime_ok);
    }
    check.not_future("received_at", r.received_at);
    if r.received_at < earliest() {
        check.bad("received_at", "must not be before 2000-01-01");
    }
    match (&r.regulator, r.channel == Channel::RegulatorTransfer) {
        (Some(t), true) => {
            check.short("regulator.regulator", &t.regulator);
            check.short("regulator.reference", &t.reference);
            if t.deadline <= r.received_at {
                check.bad("regulator.deadline", "must be after received_at");
            } else if r
                .received_at
                .checked_add(jiff::SignedDuration::from_hours(MAX_REGULATOR_DEADLINE_DAYS * 24))
                .is_ok_and(|latest| t.deadline > latest)
            {
                check.bad(
                    "regulator.deadline",
                    format!("must be at most {MAX_REGULATOR_DEADLINE_DAYS} days after received_at"),
                );
            }
        }
        (None, true) => check.bad("regulator", "a complaint transferred by a regulator needs the regulator, its reference and its deadline"),
        (Some(_), false) => check.bad("regulator", "only a complaint on the regulator_transfer channel carries a regulator transfer"),
        (None, false) => {}
    }
}
