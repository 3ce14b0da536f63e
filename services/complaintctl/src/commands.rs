//! A complaint's life: register it, look it up, list complaints, and each step of the
//! workflow, as requests to complaintd. Every command but `list` prints the complaint
//! as it stands afterwards.

use complaints_proto::complaints::v1 as api;
use uuid::Uuid;

use crate::cli::{ListArgs, RegisterArgs, Step, StepCmd};
use crate::connect::Target;
use crate::display;
use crate::parse::{self, complaint_name};

pub async fn register(target: &Target, args: RegisterArgs) -> anyhow::Result<()> {
    let regulator = match args.regulator {
        // clap makes the reference and the deadline come with the regulator.
        Some(regulator) => Some(api::RegulatorTransfer {
            regulator,
            reference: args.regulator_reference.unwrap_or_default(),
            deadline: Some(parse::time(
                args.regulator_deadline.as_deref().unwrap_or_default(),
            )?),
        }),
        None => None,
    };
    let person_id = if args.person_id.is_empty() {
        format!("person-{}", Uuid::new_v4())
    } else {
        args.person_id
    };
    let receive_time = match args.received {
        Some(r) => parse::time(&r)?,
        None => parse::now(),
    };
    let message = api::RegisterComplaintRequest {
        request_id: args.request_id.unwrap_or_else(Uuid::new_v4).to_string(),
        complaint_id: String::new(),
        channel: args.channel.into(),
        complainant: Some(api::Complainant {
            person_id,
            name: args.name,
            contact: args.contact,
            id_number: args.id_number,
        }),
        unit: args.unit,
        employee: args.employee,
        product: args.product,
        category: args.category,
        claim: args.claim,
        facts: args.facts,
        receive_time: Some(receive_time),
        regime: args.regime,
        region: args.region,
        regulator,
        variant: args.variant,
    };
    let complaint = target
        .call(message, async |c, r| c.register_complaint(r).await)
        .await?;
    display::complaint(&complaint);
    Ok(())
}

pub async fn get(target: &Target, complaint: &str) -> anyhow::Result<()> {
    let message = api::GetComplaintRequest {
        name: complaint_name(complaint),
    };
    let complaint = target
        .call(message, async |c, r| c.get_complaint(r).await)
        .await?;
    display::complaint(&complaint);
    Ok(())
}

pub async fn list(target: &Target, args: ListArgs) -> anyhow::Result<()> {
    let ListArgs {
        status,
        unit,
        category,
        regime,
        page_size,
        page_token,
    } = args;
    let message = api::ListComplaintsRequest {
        page_size,
        page_token,
        status: status.map_or(0, i32::from),
        unit,
        category,
        regime,
    };
    let page = target
        .call(message, async |c, r| c.list_complaints(r).await)
        .await?;
    display::complaints(&page);
    Ok(())
}

/// One step: its request names the complaint, carries a request id and, if given, the
/// version the complaint must be at.
pub async fn step(target: &Target, cmd: StepCmd) -> anyhow::Result<()> {
    // A step outside the system carries when it happened; another refuses the flags.
    macro_rules! call {
        (outside $method:ident, $step:expr, $message:ident { $($field:ident $(: $value:expr)?),* $(,)? }) => {{
            let step: Step = $step;
            let message = api::$message {
                name: step.name(),
                request_id: step.request_id(),
                expected_version: step.expected_version,
                effective_time: step.effective_time.as_deref().map(parse::time).transpose()?,
                backdating_reason: step.backdating_reason.clone().unwrap_or_default(),
                $($field $(: $value)?),*
            };
            target.call(message, async |c, r| c.$method(r).await).await?
        }};
        ($method:ident, $step:expr, $message:ident { $($field:ident $(: $value:expr)?),* $(,)? }) => {{
            let step: Step = $step;
            if step.effective_time.is_some() {
                anyhow::bail!("--effective-time is only for a step that happens outside the system (this one happens when it is recorded)");
            }
            let message = api::$message {
                name: step.name(),
                request_id: step.request_id(),
                expected_version: step.expected_version,
                $($field $(: $value)?),*
            };
            target.call(message, async |c, r| c.$method(r).await).await?
        }};
    }
    let complaint = match cmd {
        StepCmd::Ack(step) => {
            call!(outside acknowledge_complaint, step, AcknowledgeComplaintRequest {})
        }
        StepCmd::Decline { step, reason } => {
            call!(decline_complaint, step, DeclineComplaintRequest { reason })
        }
        StepCmd::Merge { step, into, reason } => {
            call!(
                merge_complaint,
                step,
                MergeComplaintRequest { into, reason }
            )
        }
        StepCmd::Assign {
            step,
            unit,
            handler,
        } => call!(
            assign_complaint,
            step,
            AssignComplaintRequest { unit, handler }
        ),
        StepCmd::Complex { step, reason } => {
            call!(classify_complex, step, ClassifyComplexRequest { reason })
        }
        StepCmd::Findings {
            step,
            findings,
            root_cause,
            evidence,
        } => call!(
            record_findings,
            step,
            RecordFindingsRequest {
                findings,
                root_cause: root_cause.into(),
                evidence,
            }
        ),
        StepCmd::ProposeRedress {
            step,
            redress,
            rationale,
        } => call!(
            propose_redress,
            step,
            ProposeRedressRequest {
                redress: parse::redress(&redress)?,
                rationale,
            }
        ),
        StepCmd::Answer {
            step,
            decision,
            redress,
            delivery,
            summary,
        } => call!(
            outside answer_complaint,
            step,
            AnswerComplaintRequest {
                decision: decision.into(),
                redress: parse::redress(&redress)?,
                delivery: delivery.into(),
                summary,
            }
        ),
        StepCmd::Hold {
            step,
            reason,
            delivery,
        } => call!(
            outside send_holding_response,
            step,
            SendHoldingResponseRequest {
                reason,
                delivery: delivery.into(),
            }
        ),
        StepCmd::RequestExtension { step, days, reason } => {
            call!(
                request_extension,
                step,
                RequestExtensionRequest { days, reason }
            )
        }
        StepCmd::ApproveExtension { step, notified } => call!(
            approve_extension,
            step,
            ApproveExtensionRequest {
                complainant_notify_time: notified.as_deref().map(parse::time).transpose()?,
            }
        ),
        StepCmd::Pause {
            step,
            reason,
            notified,
        } => call!(
            outside pause_clock,
            step,
            PauseClockRequest {
                reason: reason.into(),
                complainant_notify_time: notified.as_deref().map(parse::time).transpose()?,
            }
        ),
        StepCmd::Resume(step) => call!(outside resume_clock, step, ResumeClockRequest {}),
        StepCmd::AddFacts { step, facts } => {
            call!(outside add_new_facts, step, AddNewFactsRequest { facts })
        }
        StepCmd::Withdraw { step, reason } => {
            call!(
                outside withdraw_complaint,
                step,
                WithdrawComplaintRequest { reason }
            )
        }
        StepCmd::RequestReview { step, reason } => {
            call!(outside request_review, step, RequestReviewRequest { reason })
        }
        StepCmd::RecordSatisfaction {
            step,
            rating,
            comment,
        } => call!(
            outside record_satisfaction,
            step,
            RecordSatisfactionRequest { rating, comment }
        ),
        StepCmd::AnswerReview {
            step,
            outcome,
            summary,
        } => call!(
            outside answer_review,
            step,
            AnswerReviewRequest {
                outcome: outcome.into(),
                summary,
            }
        ),
        StepCmd::Refer {
            step,
            body,
            reason,
            reference,
        } => call!(
            outside refer_to_regulator,
            step,
            ReferToRegulatorRequest {
                body,
                reason: reason.into(),
                reference,
            }
        ),
        StepCmd::RegulatorOutcome {
            step,
            body,
            outcome,
            reference,
        } => call!(
            outside record_regulator_outcome,
            step,
            RecordRegulatorOutcomeRequest {
                body,
                outcome: outcome.into(),
                reference,
            }
        ),
        StepCmd::Close(step) => call!(close_complaint, step, CloseComplaintRequest {}),
        StepCmd::Reopen { step, reason } => {
            call!(reopen_complaint, step, ReopenComplaintRequest { reason })
        }
    };
    display::complaint(&complaint);
    Ok(())
}
