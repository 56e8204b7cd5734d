//! `sipfleet config ...` (work in progress)

use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum ConfigCommand {
    /// Validate configuration files and print each line's effective settings.
    Check {
        /// Configuration files, later ones override earlier ones.
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
    },
}

pub fn run(cmd: ConfigCommand) -> ExitCode {
    match cmd {
        ConfigCommand::Check { files } => {
            eprintln!("config check is not implemented yet ({} files)", files.len());
            ExitCode::FAILURE
        }
    }
}
