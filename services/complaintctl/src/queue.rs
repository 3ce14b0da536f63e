//! `complaintctl queue ...`: the regulator-transfer queue, as operations see it and the
//! regulator gateway works it (lease an item, acknowledge it with the regulator's
//! reference).

use complaints_proto::complaints::v1 as api;

use crate::cli::QueueCmd;
use crate::connect::Target;
use crate::display::enum_name;

pub async fn run(target: &Target, cmd: QueueCmd) -> anyhow::Result<()> {
    match cmd {
        QueueCmd::List { direction } => {
            // Every page, in queue order.
            let mut page_token = String::new();
            loop {
                let request = api::ListRegulatorQueueRequest {
                    direction: direction.map_or(0, i32::from),
                    states: vec![],
                    page_size: 0,
                    page_token,
                };
                let queue = target
                    .call(request, async |c, r| c.list_regulator_queue(r).await)
                    .await?;
                for item in &queue.items {
                    show_item(item);
                }
                if queue.next_page_token.is_empty() {
                    break;
                }
                page_token = queue.next_page_token;
            }
        }
        QueueCmd::Lease {
            item,
            direction,
            seconds,
        } => {
            let request = api::LeaseRegulatorQueueItemRequest {
                name: item.unwrap_or_default(),
                direction: direction.map_or(0, i32::from),
                lease_seconds: seconds,
            };
            let item = target
                .call(request, async |c, r| c.lease_regulator_queue_item(r).await)
                .await?;
            show_item(&item);
        }
        QueueCmd::Ack { item, reference } => {
            let request = api::AcknowledgeRegulatorQueueItemRequest {
                name: item,
                reference,
            };
            let item = target
                .call(request, async |c, r| {
                    c.acknowledge_regulator_queue_item(r).await
                })
                .await?;
            show_item(&item);
        }
    }
    Ok(())
}

fn show_item(i: &api::QueueItem) {
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
        enum_name::<api::QueueDirection>(i.direction),
        enum_name::<api::QueueItemState>(i.state),
        i.body,
        i.complaint,
        extra
    );
}
