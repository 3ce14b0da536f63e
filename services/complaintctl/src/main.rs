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
//!
//! Modules: [`cli`] defines the command line; [`commands`] (registration, lookups and
//! the workflow's steps), [`sla`] (clocks and the board), [`queue`] (the
//! regulator-transfer queue), [`audit`] (what auditors run), [`admin`] (salvage) and
//! [`backup`] (backup, restore, erasures) carry the subcommands
//! out, using [`connect`] (reaching complaintd as the caller), [`parse`] (from what was
//! typed to API values) and [`display`] (printing). Dependencies go that one way; `run`
//! only dispatches.
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

mod admin;
mod audit;
mod backup;
mod cli;
mod commands;
mod connect;
mod display;
mod parse;
mod queue;
mod report;
mod sla;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Cmd};
use connect::Target;

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            display::error(&e);
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let target = Target::new(cli.server, cli.principal, cli.roles);
    match cli.command {
        Cmd::Register(args) => commands::register(&target, *args).await,
        Cmd::Get { complaint } => commands::get(&target, &complaint).await,
        Cmd::List(args) => commands::list(&target, args).await,
        Cmd::Step(step) => commands::step(&target, step).await,
        Cmd::Sla { complaint } => sla::complaint(&target, &complaint).await,
        Cmd::Clocks(args) => sla::clocks(&target, args).await,
        Cmd::Board => sla::board(&target).await,
        Cmd::Queue(cmd) => queue::run(&target, cmd).await,
        Cmd::Audit(cmd) => audit::run(&target, cmd).await,
        Cmd::Report(args) => report::run(&target, args).await,
        Cmd::Admin(cmd) => admin::run(&target, cmd).await,
    }
}
