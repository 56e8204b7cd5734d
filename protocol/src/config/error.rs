//! Where a parameter was written, and what can be wrong with it.
//!
//! Every error and warning carries a [`Location`] (file and line, or the
//! environment variable) so `sipfleet config check` can point at the exact line;
//! loading collects all of them instead of stopping at the first.

use std::fmt;
use std::sync::Arc;

/// Where a parameter value was written.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Location {
    /// A line of a configuration file (1-based).
    /// The path is shared by every parameter of the file.
    File {
        /// The file's path as given.
        path: Arc<str>,
        /// 1-based line number.
        line: u32,
    },
    /// An environment variable (see `sipfleet::config_files` for the naming scheme).
    Env {
        /// The variable's name.
        var: String,
    },
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::File { path, line } => write!(f, "{path}:{line}"),
            Location::Env { var } => write!(f, "environment {var}"),
        }
    }
}

/// A configuration problem that prevents using the configuration.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The file itself could not be read or parsed (bad line, bad XML).
    #[error("{location}: {message}")]
    Syntax {
        /// Where the bad input is.
        location: Location,
        /// What is wrong with it.
        message: String,
    },
    /// A known key with a value outside its range or of the wrong form.
    #[error("{location}: {key}=\"{value}\" is not allowed; allowed: {allowed}")]
    Value {
        /// The parameter as written (e.g. `reg.1.server.1.expires`).
        key: String,
        /// The value as written (`***` for secrets).
        value: String,
        /// The values the parameter accepts, for the message.
        allowed: String,
        /// Where the value was written.
        location: Location,
    },
    /// A known key whose line, server or cache-entry index is out of range.
    #[error("{location}: {key}: index {index} is out of range; allowed: {allowed}")]
    Index {
        /// The parameter as written.
        key: String,
        /// The out-of-range `x` or `y` index.
        index: u64,
        /// The indices the parameter accepts, e.g. `1..=34`.
        allowed: String,
        /// Where the key was written.
        location: Location,
    },
    /// Settings that are valid one by one but do not make a usable whole
    /// (a line without a registrar, a static A entry without an address).
    #[error("{}{key}: {message}", location.as_ref().map(|l| format!("{l}: ")).unwrap_or_default())]
    Incomplete {
        /// The parameter the problem is reported against.
        key: String,
        /// What is missing or inconsistent.
        message: String,
        /// Where the key was written; `None` when the problem is an absent key.
        location: Option<Location>,
    },
    /// A configuration file that could not be read.
    #[error("{path}: cannot read: {reason}")]
    Unreadable {
        /// The file's path.
        path: String,
        /// The I/O error, as text.
        reason: String,
    },
}

/// Something suspicious that does not stop the configuration from working.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigWarning {
    /// The parameter concerned, as written.
    pub key: String,
    /// What is suspicious about it.
    pub message: String,
    /// Where it was written.
    pub location: Location,
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.location, self.key, self.message)
    }
}

/// Everything wrong with a configuration, plus the warnings seen on the way.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigErrors {
    /// Problems that make the configuration unusable; empty when it can be used.
    pub errors: Vec<ConfigError>,
    /// Problems that were tolerated (unknown keys, ignored values).
    pub warnings: Vec<ConfigWarning>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} configuration error(s)", self.errors.len())?;
        for e in &self.errors {
            write!(f, "\n  error: {e}")?;
        }
        for w in &self.warnings {
            write!(f, "\n  warning: {w}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}
