//! The lab's error type.

use std::path::PathBuf;

/// Why a lab operation failed. Every variant names what the lab was doing, so
/// a failing test says which server or tool misbehaved.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// A binary the lab needs is not installed. CI installs it with
    /// `scripts/lab-install`; tests must fail, not skip, when it is missing.
    #[error("`{binary}` is not installed (run scripts/lab-install as root): {source}")]
    MissingBinary {
        binary: String,
        #[source]
        source: std::io::Error,
    },
    /// An I/O error while doing `what`.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// A tool (openssl, kamcmd, ...) ran but reported failure.
    #[error("{tool} failed: {detail}")]
    Tool { tool: String, detail: String },
    /// A server did not come up in time; `log` is the tail of its log.
    #[error("{what} did not become ready within {waited_ms} ms; log tail:\n{log}")]
    NotReady {
        what: String,
        waited_ms: u64,
        log: String,
    },
    /// A server process exited while starting; `log` is the tail of its log.
    #[error("{what} exited while starting ({status}); log tail:\n{log}")]
    Exited {
        what: String,
        status: String,
        log: String,
    },
    /// No free lab instance number (all lock files are held).
    #[error("no free lab instance between {first} and {last}")]
    NoFreeInstance { first: u32, last: u32 },
    /// An SBC index outside `1..=sbc_count`.
    #[error("no SBC number {0} in this lab")]
    NoSuchSbc(usize),
    /// The state file of a persistent lab is missing or unreadable.
    #[error("lab state {path}: {detail}")]
    State { path: PathBuf, detail: String },
    /// A configuration value the lab cannot serve.
    #[error("invalid lab configuration: {0}")]
    Config(String),
}

impl LabError {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        LabError::Io {
            what: what.into(),
            source,
        }
    }
}

/// Result alias for lab operations.
pub type Result<T> = std::result::Result<T, LabError>;
