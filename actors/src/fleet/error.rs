//! Why a run-time operation on a fleet (the control API) did not apply.
//! Each error names what was at fault: the line, the Call-ID, the
//! configuration key (through the configuration's own errors).

use sipfleet_protocol::config::ConfigErrors;
use sipfleet_protocol::line::CallCommandError;

use super::FleetError;

/// Why a control operation failed; nothing changed in the fleet.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// No line `reg.x` with this index is in the fleet.
    #[error("no line {0} (reg.{0}) in the fleet")]
    UnknownLine(u32),
    /// A line with this index is in the fleet already.
    #[error("line {0} (reg.{0}) is in the fleet already")]
    LineExists(u32),
    /// No call of any line has this Call-ID (never had, or it ended).
    #[error("no call with Call-ID {0:?} in the fleet")]
    UnknownCall(String),
    /// The line refused the call command (not registered, busy, wrong
    /// state for the action, ...).
    #[error("line {line}: {source}")]
    Call {
        /// `reg.x` of the line.
        line: u32,
        /// What the line said.
        #[source]
        source: CallCommandError,
    },
    /// The line's actor is gone (it was being removed, or the fleet shut
    /// down).
    #[error("line {0} (reg.{0}) is not running")]
    LineStopped(u32),
    /// The configuration text did not build: every error, with its key
    /// and place.
    #[error("configuration: {0}")]
    Config(#[from] ConfigErrors),
    /// The configuration text configures no line, or more than one.
    #[error(
        "the configuration text configures {found} lines; exactly one reg.x block is expected"
    )]
    LineCount {
        /// How many lines it configures.
        found: usize,
    },
    /// The line's configuration cannot make a line (no registrar, ...).
    #[error(transparent)]
    Setup(#[from] FleetError),
    /// Resolving a name for `routes` failed.
    #[error("routes of {name}: {error}")]
    Routes {
        /// The name resolved.
        name: String,
        /// What the resolver said.
        error: String,
    },
}
