//! SLA views: one complaint's clocks (`sla`), the running clocks of all complaints
//! (`clocks`) and the operations board (`board`).

use std::collections::HashMap;

use complaints_proto::complaints::v1 as api;

use crate::cli::ClocksArgs;
use crate::connect::Target;
use crate::display::{enum_name, next_page, timestamp};
use crate::parse::complaint_name;

/// Every clock of a complaint: due date and time, state, time used, and how the due
/// time was computed.
pub async fn complaint(target: &Target, complaint: &str) -> anyhow::Result<()> {
    let request = api::GetComplaintSlaRequest {
        name: complaint_name(complaint),
    };
    let sla = target
        .call(request, async |c, r| c.get_complaint_sla(r).await)
        .await?;
    out!(
        "{}  version {}  policy {} v{} ({})",
        sla.name,
        sla.version,
        sla.policy,
        sla.policy_version,
        sla.time_zone
    );
    for c in &sla.clocks {
        out!(
            "  {:<28} {:<18} due {} ({}), {:.0}% used{}",
            c.clock,
            enum_name::<api::ClockState>(c.state),
            c.due_date,
            timestamp(c.due_time.as_ref()).unwrap_or_default(),
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
    Ok(())
}

/// The running clocks of all complaints, most urgent first.
pub async fn clocks(target: &Target, args: ClocksArgs) -> anyhow::Result<()> {
    let ClocksArgs {
        state,
        regime,
        unit,
        category,
        page_size,
        page_token,
    } = args;
    let request = api::ListClocksRequest {
        page_size,
        page_token,
        states: state.into_iter().map(i32::from).collect(),
        regime,
        unit,
        category,
    };
    let page = target
        .call(request, async |c, r| c.list_clocks(r).await)
        .await?;
    for e in &page.clocks {
        let Some(c) = &e.clock else { continue };
        out!(
            "{}  {:<14} {:<18} due {}  {:<10} {:<10} {}",
            e.name,
            c.clock,
            enum_name::<api::ClockState>(c.state),
            c.due_date,
            e.unit,
            e.category,
            e.regime
        );
    }
    next_page(&page.next_page_token);
    Ok(())
}

/// The operations board: counts, breaches by regime, unit and category, clocks due
/// today, the breach rate and the median time to answer.
pub async fn board(target: &Target) -> anyhow::Result<()> {
    let b = target
        .call(api::GetBoardRequest {}, async |c, r| c.get_board(r).await)
        .await?;
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
    counts("running clocks by state", &b.clocks_by_state);
    counts("breached by regime", &b.breached_by_regime);
    counts("breached by unit", &b.breached_by_unit);
    counts("breached by category", &b.breached_by_category);
    Ok(())
}

/// `title: key n, key n, ...` in key order.
fn counts(title: &str, m: &HashMap<String, u64>) {
    let mut rows: Vec<_> = m.iter().collect();
    rows.sort();
    out!(
        "{title}: {}",
        rows.iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
}
