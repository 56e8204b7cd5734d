//! The `sipfleet` command line. Each subcommand lives in its own module with its
//! own `clap::Args`; this file only dispatches.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod api;
mod cmd_config;
mod cmd_routes;
mod cmd_run;
mod load;
mod logging;
mod output;
mod run_commands;

#[derive(Parser)]
#[command(
    name = "sipfleet",
    version,
    about = "A SIP client that survives SBC, network and DNS failures"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Work with Poly-style configuration files.
    #[command(subcommand)]
    Config(cmd_config::ConfigCommand),
    /// Resolve a name the way a line would and print its route list in selection order.
    Routes(cmd_routes::RoutesArgs),
    /// Keep every configured line registered until SIGINT/SIGTERM/SIGHUP, then un-register.
    Run(cmd_run::RunArgs),
    /// Run N generated lines as a load (progress, stats, summary, report,
    /// thresholds), or merge the summaries of its shards.
    Load(Box<load::LoadArgs>),
}

/// mimalloc rather than glibc's malloc: a fleet allocates and frees many
/// small objects per message, where glibc spent 20-30 % of the CPU
/// (consolidation, chunk unlinking); measured with `scripts/bench-vs-sipp`.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Config(cmd) => cmd_config::run(cmd),
        Command::Routes(args) => cmd_routes::run(args),
        Command::Run(args) => cmd_run::run(args),
        Command::Load(args) => load::run(*args),
    }
}
