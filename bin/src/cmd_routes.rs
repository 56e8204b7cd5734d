//! `sipfleet routes NAME` (work in progress)

use std::process::ExitCode;

#[derive(clap::Args)]
pub struct RoutesArgs {
    /// The name to resolve (a domain, a host name or an IP address).
    pub name: String,
}

pub fn run(args: RoutesArgs) -> ExitCode {
    eprintln!("routes is not implemented yet ({})", args.name);
    ExitCode::FAILURE
}
