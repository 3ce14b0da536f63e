//! complaintctl: a command-line client of complaintd.
//!
//! ```sh
//! complaintctl register --name "Ada Lovelace" --contact ada@example.org --unit cards \
//!     --product "credit card" --category fees --claim "refund" --facts "charged twice" \
//!     --regime UK-FCA-DISP --region GB-ENG
//! complaintctl ack complaints/<uuid>
//! complaintctl assign complaints/<uuid> --unit cards --handler emp-3
//! ```
//!
//! Every step prints the complaint afterwards. Failures print the gRPC code, the message
//! and each bad field, and exit with status 1.
#![forbid(unsafe_code)]

/// `println!` that stops quietly when the reader has gone (e.g. `complaintctl list | head`)
/// instead of panicking on the broken pipe.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if writeln!(std::io::stdout(), $($arg)*).is_err() {
            std::process::exit(0);
        }
    }};
}

mod audit;

use anyhow::{anyhow, Context};
use clap::{Args, Parser, Subcommand};
use complaints_proto::complaints::v1 as api;
use complaints_proto::complaints::v1::complaint_service_client::ComplaintServiceClient;
use tonic::transport::Channel;
use tonic::Request;
use tonic_types::StatusExt;
use uuid::Uuid;

#[derive(Parser)]
#[command(
    version,
    about = "Register complaints and walk them through their life"
)]
struct Cli {
    /// complaintd's address.
    #[arg(
        long,
        env = "COMPLAINTD_ADDR",
        default_value = "http://127.0.0.1:50051",
        global = true
    )]
    server: String,
    /// Who you are (development authentication).
    #[arg(
        long = "as",
        env = "COMPLAINTS_PRINCIPAL",
        default_value = "user:cli",
        global = true
    )]
    principal: String,
    /// Your roles, comma-separated: intake, handler, supervisor, regulator_gateway, auditor,
    /// operations, admin.
    #[arg(
        long,
        env = "COMPLAINTS_ROLES",
        default_value = "intake,handler",
        global = true
    )]
    roles: String,
    #[command(subcommand)]
    command: Cmd,
}

/// What every step takes besides its own fields.
#[derive(Args)]
struct Step {
    /// The complaint: complaints/<uuid> (or the bare uuid).
    complaint: String,
    /// Reuse to retry safely; a new one by default.
    #[arg(long)]
    request_id: Option<Uuid>,
    /// Fail with ABORTED unless the complaint is at this version.
    #[arg(long)]
    expected_version: Option<u64>,
}

impl Step {
    fn name(&self) -> String {
        if self.complaint.starts_with("complaints/") {
            self.complaint.clone()
        } else {
            format!("complaints/{}", self.complaint)
        }
    }

    fn request_id(&self) -> String {
        self.request_id.unwrap_or_else(Uuid::new_v4).to_string()
    }
}

#[derive(Subcommand)]
enum QueueCmd {
    /// List the items (outbound referrals, inbound transfers to report back).
    List {
        /// outbound or inbound; both by default.
        #[arg(long)]
        direction: Option<String>,
    },
    /// Lease an item (or the first available) to yourself.
    Lease {
        /// regulatorQueue/<uuid>; the first available when absent.
        item: Option<String>,
        #[arg(long)]
        direction: Option<String>,
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

fn queue_direction(d: Option<String>) -> anyhow::Result<i32> {
    match d {
        None => Ok(0),
        Some(d) => pick("direction", &d, "", |s| {
            api::QueueDirection::from_str_name(s).map(|e| e as i32)
        }),
    }
}

fn show_item(i: &api::QueueItem) {
    let state = name_of(i.state, |v| api::QueueItemState::try_from(v).ok());
    let direction = name_of(i.direction, |v| api::QueueDirection::try_from(v).ok());
    let extra = if !i.reference.is_empty() {
        format!(" ref {}", i.reference)
    } else if !i.consumer.is_empty() {
        format!(" by {}", i.consumer)
    } else {
        String::new()
    };
    out!(
        "{}  {:<8} {:<18} {:<8} {}{}",
        i.name,
        direction,
        state,
        i.body,
        i.complaint,
        extra
    );
}

/// The fields of a registration.
#[derive(Args)]
struct RegisterArgs {
    #[arg(long, default_value = "web")]
    channel: String,
    #[arg(long, default_value = "")]
    person_id: String,
    #[arg(long)]
    name: String,
    #[arg(long)]
    contact: String,
    #[arg(long, default_value = "")]
    id_number: String,
    /// The unit complained about.
    #[arg(long)]
    unit: String,
    /// The employee complained about, if any.
    #[arg(long, default_value = "")]
    employee: String,
    #[arg(long)]
    product: String,
    #[arg(long)]
    category: String,
    #[arg(long)]
    claim: String,
    #[arg(long)]
    facts: String,
    /// When it was received (RFC 3339); now by default.
    #[arg(long)]
    received: Option<String>,
    #[arg(long)]
    regime: String,
    #[arg(long)]
    region: String,
    /// For a regulator transfer: the regulator, its reference and deadline (RFC 3339).
    #[arg(long, requires_all = ["regulator_reference", "regulator_deadline"])]
    regulator: Option<String>,
    #[arg(long)]
    regulator_reference: Option<String>,
    #[arg(long)]
    regulator_deadline: Option<String>,
    #[arg(long)]
    request_id: Option<Uuid>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Register a complaint.
    Register(Box<RegisterArgs>),
    /// Show a complaint.
    Get { complaint: String },
    /// Show a complaint's SLA clocks: due times, states and how they were computed.
    Sla { complaint: String },
    /// Running clocks of all complaints, most urgent first.
    Clocks {
        /// Only these states: running, paused, at_risk, breached (repeatable).
        #[arg(long)]
        state: Vec<String>,
        #[arg(long, default_value = "")]
        regime: String,
        #[arg(long, default_value = "")]
        unit: String,
        #[arg(long, default_value = "")]
        category: String,
        #[arg(long, default_value_t = 50)]
        page_size: i32,
        #[arg(long, default_value = "")]
        page_token: String,
    },
    /// The operations board's figures.
    Board,
    /// The regulator-transfer queue.
    #[command(subcommand)]
    Queue(QueueCmd),
    /// For auditors: export, verify, digests, timelines, views of past moments.
    #[command(subcommand)]
    Audit(audit::AuditCmd),
    /// List complaints.
    List {
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value = "")]
        unit: String,
        #[arg(long, default_value = "")]
        category: String,
        #[arg(long, default_value = "")]
        regime: String,
        #[arg(long, default_value_t = 50)]
        page_size: i32,
        #[arg(long, default_value = "")]
        page_token: String,
    },
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
        /// product_design, process_failure, staff_conduct, system_error, communication,
        /// third_party, pricing, no_fault, other.
        #[arg(long)]
        root_cause: String,
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
        /// upheld, partly_upheld, rejected.
        #[arg(long)]
        decision: String,
        /// kind:minor_units:CURRENCY, e.g. refund:3000:GBP (repeatable).
        #[arg(long)]
        redress: Vec<String>,
        /// letter, email, phone, in_person, app.
        #[arg(long, default_value = "letter")]
        delivery: String,
        #[arg(long)]
        summary: String,
    },
    /// Send a holding response.
    Hold {
        #[command(flatten)]
        step: Step,
        #[arg(long)]
        reason: String,
        #[arg(long, default_value = "letter")]
        delivery: String,
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
        #[arg(long)]
        reason: String,
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
    /// Answer the review: confirmed or changed.
    AnswerReview {
        #[command(flatten)]
        step: Step,
        #[arg(long)]
        outcome: String,
        #[arg(long)]
        summary: String,
    },
    /// Refer to a regulator or ombudsman: complainant_referred or rule_required.
    Refer {
        #[command(flatten)]
        step: Step,
        #[arg(long)]
        body: String,
        #[arg(long, default_value = "complainant_referred")]
        reason: String,
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
        #[arg(long)]
        outcome: String,
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

fn time(s: &str) -> anyhow::Result<prost_types::Timestamp> {
    let t: jiff::Timestamp = s
        .parse()
        .with_context(|| format!("{s:?} is not an RFC 3339 time"))?;
    Ok(prost_types::Timestamp {
        seconds: t.as_second(),
        nanos: t.subsec_nanosecond(),
    })
}

fn now() -> prost_types::Timestamp {
    let t = jiff::Timestamp::now();
    prost_types::Timestamp {
        seconds: t.as_second(),
        nanos: t.subsec_nanosecond(),
    }
}

/// Looks a lowercase name up in a proto enum by its generated `from_str_name`.
fn pick(
    kind: &str,
    value: &str,
    prefix: &str,
    from: fn(&str) -> Option<i32>,
) -> anyhow::Result<i32> {
    let upper = format!("{prefix}{}", value.to_uppercase());
    from(&upper).ok_or_else(|| anyhow!("unknown {kind} {value:?}"))
}

fn channel(v: &str) -> anyhow::Result<i32> {
    pick("channel", v, "", |s| {
        api::Channel::from_str_name(s).map(|e| e as i32)
    })
}
fn decision(v: &str) -> anyhow::Result<i32> {
    pick("decision", v, "", |s| {
        api::Decision::from_str_name(s).map(|e| e as i32)
    })
}
fn delivery(v: &str) -> anyhow::Result<i32> {
    pick("delivery", v, "DELIVERY_", |s| {
        api::DeliveryMethod::from_str_name(s).map(|e| e as i32)
    })
}
fn root_cause(v: &str) -> anyhow::Result<i32> {
    pick("root cause", v, "", |s| {
        api::RootCause::from_str_name(s).map(|e| e as i32)
    })
}
fn pause_reason(v: &str) -> anyhow::Result<i32> {
    pick("pause reason", v, "", |s| {
        api::PauseReason::from_str_name(s).map(|e| e as i32)
    })
}
fn referral_reason(v: &str) -> anyhow::Result<i32> {
    pick("referral reason", v, "", |s| {
        api::ReferralReason::from_str_name(s).map(|e| e as i32)
    })
}
fn review_outcome(v: &str) -> anyhow::Result<i32> {
    pick("review outcome", v, "", |s| {
        api::ReviewOutcome::from_str_name(s).map(|e| e as i32)
    })
}
fn regulator_outcome(v: &str) -> anyhow::Result<i32> {
    pick("regulator outcome", v, "", |s| {
        api::RegulatorOutcome::from_str_name(s).map(|e| e as i32)
    })
}
fn status(v: &str) -> anyhow::Result<i32> {
    pick("status", v, "", |s| {
        api::Status::from_str_name(s).map(|e| e as i32)
    })
}

fn redress(items: &[String]) -> anyhow::Result<Vec<api::Redress>> {
    items
        .iter()
        .map(|item| {
            let mut parts = item.split(':');
            let (Some(kind), Some(amount), Some(currency), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return Err(anyhow!("redress {item:?} is not kind:minor_units:CURRENCY"));
            };
            Ok(api::Redress {
                kind: pick("redress kind", kind, "", |s| {
                    api::RedressKind::from_str_name(s).map(|e| e as i32)
                })?,
                amount: Some(api::Money {
                    minor_units: amount
                        .parse()
                        .with_context(|| format!("{amount:?} is not an integer amount"))?,
                    currency_code: currency.to_owned(),
                }),
            })
        })
        .collect()
}

fn name_of<T: std::fmt::Debug>(value: i32, from: fn(i32) -> Option<T>) -> String {
    from(value)
        .map(|v| format!("{v:?}"))
        .unwrap_or_else(|| "-".into())
}

fn show(c: &api::Complaint) {
    let time = |t: &Option<prost_types::Timestamp>| {
        t.as_ref()
            .and_then(|t| jiff::Timestamp::new(t.seconds, t.nanos).ok())
            .map(|t| t.to_string())
            .unwrap_or_else(|| "-".into())
    };
    out!(
        "{}  version {}  {}",
        c.name,
        c.version,
        name_of(c.status, |v| api::Status::try_from(v).ok())
    );
    out!(
        "  regime {} ({}), channel {}, received {}",
        c.regime,
        c.region,
        name_of(c.channel, |v| api::Channel::try_from(v).ok()),
        time(&c.receive_time)
    );
    out!(
        "  unit {}, product {}, category {}",
        c.unit,
        c.product,
        c.category
    );
    if let Some(a) = &c.assignment {
        out!("  assigned to {} / {}", a.unit, a.handler);
    }
    if c.decision != 0 {
        out!(
            "  decision {} at {}",
            name_of(c.decision, |v| api::Decision::try_from(v).ok()),
            time(&c.answer_time)
        );
    }
    if let Some(p) = &c.pending_extension {
        out!("  extension of {} days waiting for approval", p.days);
    }
    for e in &c.extensions {
        out!(
            "  extension of {} days approved at {}",
            e.days,
            time(&e.approved_time)
        );
    }
    for r in &c.referrals {
        out!(
            "  referred to {} at {} ({})",
            r.body,
            time(&r.referral_time),
            name_of(r.outcome, |v| api::RegulatorOutcome::try_from(v).ok())
        );
    }
}

struct Client {
    grpc: ComplaintServiceClient<Channel>,
    principal: String,
    roles: String,
}

impl Client {
    fn req<T>(&self, message: T) -> anyhow::Result<Request<T>> {
        identified(message, &self.principal, &self.roles)
    }
}

/// A request naming the caller (development authentication: `--as`, `--roles`).
fn identified<T>(message: T, principal: &str, roles: &str) -> anyhow::Result<Request<T>> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("x-principal", principal.parse().context("--as")?);
    request
        .metadata_mut()
        .insert("x-roles", roles.parse().context("--roles")?);
    Ok(request)
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            match e.downcast_ref::<tonic::Status>() {
                Some(status) => {
                    eprintln!("error: {:?}: {}", status.code(), status.message());
                    if let Some(bad) = status.get_error_details().bad_request() {
                        for v in &bad.field_violations {
                            eprintln!("  {}: {}", v.field, v.description);
                        }
                    }
                }
                None => eprintln!("error: {e:#}"),
            }
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let cli = match cli.command {
        Cmd::Audit(cmd) => {
            let ctx = audit::Ctx {
                server: cli.server,
                principal: cli.principal,
                roles: cli.roles,
            };
            return audit::run(ctx, cmd).await;
        }
        _ => cli,
    };
    let grpc = ComplaintServiceClient::connect(cli.server.clone())
        .await
        .with_context(|| format!("cannot reach complaintd at {}", cli.server))?;
    let client = Client {
        grpc,
        principal: cli.principal,
        roles: cli.roles,
    };
    let mut g = client.grpc.clone();
    macro_rules! step {
        ($method:ident, $step:expr, $message:ident { $($field:ident: $value:expr),* $(,)? }) => {{
            let step = $step;
            let message = api::$message { name: step.name(), request_id: step.request_id(), expected_version: step.expected_version, $($field: $value),* };
            g.$method(client.req(message)?).await?.into_inner()
        }};
    }
    let complaint = match cli.command {
        Cmd::Register(args) => {
            let RegisterArgs {
                channel: ch,
                person_id,
                name,
                contact,
                id_number,
                unit,
                employee,
                product,
                category,
                claim,
                facts,
                received,
                regime,
                region,
                regulator,
                regulator_reference,
                regulator_deadline,
                request_id,
            } = *args;
            let regulator = match regulator {
                Some(regulator) => Some(api::RegulatorTransfer {
                    regulator,
                    reference: regulator_reference.unwrap_or_default(),
                    deadline: Some(time(&regulator_deadline.unwrap_or_default())?),
                }),
                None => None,
            };
            let person_id = if person_id.is_empty() {
                format!("person-{}", Uuid::new_v4())
            } else {
                person_id
            };
            let message = api::RegisterComplaintRequest {
                request_id: request_id.unwrap_or_else(Uuid::new_v4).to_string(),
                complaint_id: String::new(),
                channel: channel(&ch)?,
                complainant: Some(api::Complainant {
                    person_id,
                    name,
                    contact,
                    id_number,
                }),
                unit,
                employee,
                product,
                category,
                claim,
                facts,
                receive_time: Some(match received {
                    Some(r) => time(&r)?,
                    None => now(),
                }),
                regime,
                region,
                regulator,
            };
            g.register_complaint(client.req(message)?)
                .await?
                .into_inner()
        }
        Cmd::Get { complaint } => {
            let name = if complaint.starts_with("complaints/") {
                complaint
            } else {
                format!("complaints/{complaint}")
            };
            g.get_complaint(client.req(api::GetComplaintRequest { name })?)
                .await?
                .into_inner()
        }
        Cmd::Clocks {
            state,
            regime,
            unit,
            category,
            page_size,
            page_token,
        } => {
            let states = state
                .iter()
                .map(|s| {
                    pick("clock state", s, "CLOCK_", |n| {
                        api::ClockState::from_str_name(n).map(|e| e as i32)
                    })
                })
                .collect::<anyhow::Result<Vec<i32>>>()?;
            let page = g
                .list_clocks(client.req(api::ListClocksRequest {
                    page_size,
                    page_token,
                    states,
                    regime,
                    unit,
                    category,
                })?)
                .await?
                .into_inner();
            for e in &page.clocks {
                let Some(c) = &e.clock else { continue };
                let state = name_of(c.state, |v| api::ClockState::try_from(v).ok());
                out!(
                    "{}  {:<14} {:<18} due {}  {:<10} {:<10} {}",
                    e.name,
                    c.clock,
                    state,
                    c.due_date,
                    e.unit,
                    e.category,
                    e.regime
                );
            }
            if !page.next_page_token.is_empty() {
                out!("next page: --page-token {}", page.next_page_token);
            }
            return Ok(());
        }
        Cmd::Audit(_) => unreachable!("handled before connecting"),
        Cmd::Queue(q) => {
            match q {
                QueueCmd::List { direction } => {
                    let request = api::ListRegulatorQueueRequest {
                        direction: queue_direction(direction)?,
                        states: vec![],
                    };
                    for item in g
                        .list_regulator_queue(client.req(request)?)
                        .await?
                        .into_inner()
                        .items
                    {
                        show_item(&item);
                    }
                }
                QueueCmd::Lease {
                    item,
                    direction,
                    seconds,
                } => {
                    let request = api::LeaseRegulatorQueueItemRequest {
                        name: item.unwrap_or_default(),
                        direction: queue_direction(direction)?,
                        lease_seconds: seconds,
                    };
                    show_item(
                        &g.lease_regulator_queue_item(client.req(request)?)
                            .await?
                            .into_inner(),
                    );
                }
                QueueCmd::Ack { item, reference } => {
                    let request = api::AcknowledgeRegulatorQueueItemRequest {
                        name: item,
                        reference,
                    };
                    show_item(
                        &g.acknowledge_regulator_queue_item(client.req(request)?)
                            .await?
                            .into_inner(),
                    );
                }
            }
            return Ok(());
        }
        Cmd::Board => {
            let b = g
                .get_board(client.req(api::GetBoardRequest {})?)
                .await?
                .into_inner();
            out!(
                "complaints {} (open {}), clocks due today {}, breach rate {:.1}%",
                b.complaints,
                b.open_complaints,
                b.due_today,
                b.breach_rate * 100.0
            );
            if let Some(s) = b.median_seconds_to_answer {
                out!("median time to answer: {:.1} days", s as f64 / 86_400.0);
            }
            let show_map = |title: &str, m: &std::collections::HashMap<String, u64>| {
                let mut rows: Vec<_> = m.iter().collect();
                rows.sort();
                out!(
                    "{title}: {}",
                    rows.iter()
                        .map(|(k, v)| format!("{k} {v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            };
            show_map("running clocks by state", &b.clocks_by_state);
            show_map("breached by regime", &b.breached_by_regime);
            show_map("breached by unit", &b.breached_by_unit);
            show_map("breached by category", &b.breached_by_category);
            return Ok(());
        }
        Cmd::Sla { complaint } => {
            let name = if complaint.starts_with("complaints/") {
                complaint
            } else {
                format!("complaints/{complaint}")
            };
            let sla = g
                .get_complaint_sla(client.req(api::GetComplaintSlaRequest { name })?)
                .await?
                .into_inner();
            out!(
                "{}  version {}  policy {} v{} ({})",
                sla.name,
                sla.version,
                sla.policy,
                sla.policy_version,
                sla.time_zone
            );
            for c in &sla.clocks {
                let state = name_of(c.state, |v| api::ClockState::try_from(v).ok());
                let due = c
                    .due_time
                    .as_ref()
                    .and_then(|t| jiff::Timestamp::new(t.seconds, t.nanos).ok())
                    .map(|t| t.to_string())
                    .unwrap_or_default();
                out!(
                    "  {:<28} {:<18} due {} ({}), {:.0}% used{}",
                    c.clock,
                    state,
                    c.due_date,
                    due,
                    c.percent_used,
                    if c.breach_tier.is_empty() {
                        String::new()
                    } else {
                        format!(", {}", c.breach_tier)
                    }
                );
                for line in &c.explanation {
                    out!("      {line}");
                }
            }
            return Ok(());
        }
        Cmd::List {
            status: st,
            unit,
            category,
            regime,
            page_size,
            page_token,
        } => {
            let status = match st {
                Some(s) => status(&s)?,
                None => 0,
            };
            let page = g
                .list_complaints(client.req(api::ListComplaintsRequest {
                    page_size,
                    page_token,
                    status,
                    unit,
                    category,
                    regime,
                })?)
                .await?
                .into_inner();
            for s in &page.complaints {
                out!(
                    "{}  v{}  {:<13} {:<12} {:<10} {}",
                    s.name,
                    s.version,
                    name_of(s.status, |v| api::Status::try_from(v).ok()),
                    s.unit,
                    s.category,
                    s.regime
                );
            }
            if !page.next_page_token.is_empty() {
                out!("next page: --page-token {}", page.next_page_token);
            }
            return Ok(());
        }
        Cmd::Ack(s) => step!(acknowledge_complaint, s, AcknowledgeComplaintRequest {}),
        Cmd::Decline { step: s, reason } => step!(
            decline_complaint,
            s,
            DeclineComplaintRequest { reason: reason }
        ),
        Cmd::Merge {
            step: s,
            into,
            reason,
        } => step!(
            merge_complaint,
            s,
            MergeComplaintRequest {
                into: into,
                reason: reason
            }
        ),
        Cmd::Assign {
            step: s,
            unit,
            handler,
        } => step!(
            assign_complaint,
            s,
            AssignComplaintRequest {
                unit: unit,
                handler: handler
            }
        ),
        Cmd::Complex { step: s, reason } => step!(
            classify_complex,
            s,
            ClassifyComplexRequest { reason: reason }
        ),
        Cmd::Findings {
            step: s,
            findings,
            root_cause: rc,
            evidence,
        } => step!(
            record_findings,
            s,
            RecordFindingsRequest {
                findings: findings,
                root_cause: root_cause(&rc)?,
                evidence: evidence
            }
        ),
        Cmd::ProposeRedress {
            step: s,
            redress: r,
            rationale,
        } => step!(
            propose_redress,
            s,
            ProposeRedressRequest {
                redress: redress(&r)?,
                rationale: rationale
            }
        ),
        Cmd::Answer {
            step: s,
            decision: d,
            redress: r,
            delivery: dl,
            summary,
        } => step!(
            answer_complaint,
            s,
            AnswerComplaintRequest {
                decision: decision(&d)?,
                redress: redress(&r)?,
                delivery: delivery(&dl)?,
                summary: summary
            }
        ),
        Cmd::Hold {
            step: s,
            reason,
            delivery: dl,
        } => step!(
            send_holding_response,
            s,
            SendHoldingResponseRequest {
                reason: reason,
                delivery: delivery(&dl)?
            }
        ),
        Cmd::RequestExtension {
            step: s,
            days,
            reason,
        } => step!(
            request_extension,
            s,
            RequestExtensionRequest {
                days: days,
                reason: reason
            }
        ),
        Cmd::ApproveExtension { step: s, notified } => step!(
            approve_extension,
            s,
            ApproveExtensionRequest {
                complainant_notify_time: notified.map(|n| time(&n)).transpose()?
            }
        ),
        Cmd::Pause {
            step: s,
            reason,
            notified,
        } => step!(
            pause_clock,
            s,
            PauseClockRequest {
                reason: pause_reason(&reason)?,
                complainant_notify_time: notified.map(|n| time(&n)).transpose()?
            }
        ),
        Cmd::Resume(s) => step!(resume_clock, s, ResumeClockRequest {}),
        Cmd::AddFacts { step: s, facts } => {
            step!(add_new_facts, s, AddNewFactsRequest { facts: facts })
        }
        Cmd::Withdraw { step: s, reason } => step!(
            withdraw_complaint,
            s,
            WithdrawComplaintRequest { reason: reason }
        ),
        Cmd::RequestReview { step: s, reason } => {
            step!(request_review, s, RequestReviewRequest { reason: reason })
        }
        Cmd::AnswerReview {
            step: s,
            outcome,
            summary,
        } => step!(
            answer_review,
            s,
            AnswerReviewRequest {
                outcome: review_outcome(&outcome)?,
                summary: summary
            }
        ),
        Cmd::Refer {
            step: s,
            body,
            reason,
            reference,
        } => step!(
            refer_to_regulator,
            s,
            ReferToRegulatorRequest {
                body: body,
                reason: referral_reason(&reason)?,
                reference: reference
            }
        ),
        Cmd::RegulatorOutcome {
            step: s,
            body,
            outcome,
            reference,
        } => step!(
            record_regulator_outcome,
            s,
            RecordRegulatorOutcomeRequest {
                body: body,
                outcome: regulator_outcome(&outcome)?,
                reference: reference
            }
        ),
        Cmd::Close(s) => step!(close_complaint, s, CloseComplaintRequest {}),
        Cmd::Reopen { step: s, reason } => step!(
            reopen_complaint,
            s,
            ReopenComplaintRequest { reason: reason }
        ),
    };
    show(&complaint);
    Ok(())
}
