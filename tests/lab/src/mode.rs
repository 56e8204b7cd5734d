//! Fault modes of an SBC and the lab's transport names.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How an SBC treats what it receives. Switchable at run time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    /// Normal registrar and proxy.
    Ok,
    /// Every request answered with 503, with `Retry-After` when given.
    Error503 { retry_after: Option<u32> },
    /// No answer at all: the process group is stopped (SIGSTOP). TCP
    /// handshakes still complete (the kernel does them) but nothing answers.
    Silent,
    /// Not running: UDP gets ICMP port unreachable, TCP gets RST.
    Dead,
    /// REGISTER answered with 403; other requests as in `Ok`.
    Reject,
}

impl Mode {
    /// The value of the SBC script's `$shv(mode)` for this mode.
    pub(crate) fn shv(self) -> i32 {
        match self {
            Mode::Error503 { .. } => 1,
            Mode::Reject => 2,
            Mode::Ok | Mode::Silent | Mode::Dead => 0,
        }
    }

    /// The value of `$shv(retry_after)` (0 = no header).
    pub(crate) fn retry_after(self) -> u32 {
        match self {
            Mode::Error503 {
                retry_after: Some(s),
            } => s,
            _ => 0,
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mode::Ok => f.write_str("ok"),
            Mode::Error503 { retry_after: None } => f.write_str("503"),
            Mode::Error503 {
                retry_after: Some(s),
            } => write!(f, "503:{s}"),
            Mode::Silent => f.write_str("silent"),
            Mode::Dead => f.write_str("dead"),
            Mode::Reject => f.write_str("reject"),
        }
    }
}

/// Parses `ok`, `503`, `503:SECONDS` (with Retry-After), `silent`, `dead`,
/// `reject` (the spelling of `scripts/lab sbc N MODE`).
impl FromStr for Mode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ok" => Ok(Mode::Ok),
            "503" => Ok(Mode::Error503 { retry_after: None }),
            "silent" => Ok(Mode::Silent),
            "dead" => Ok(Mode::Dead),
            "reject" | "403" => Ok(Mode::Reject),
            other => match other.strip_prefix("503:") {
                Some(secs) => secs
                    .parse::<u32>()
                    .map(|s| Mode::Error503 {
                        retry_after: Some(s),
                    })
                    .map_err(|_| format!("bad Retry-After seconds in {other:?}")),
                None => Err(format!(
                    "unknown mode {other:?} (ok, 503, 503:SECONDS, silent, dead, reject)"
                )),
            },
        }
    }
}

/// The SIP transports an SBC listens on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

impl Transport {
    /// The SBC's port for this transport.
    pub fn port(self) -> u16 {
        match self {
            Transport::Udp | Transport::Tcp => 5060,
            Transport::Tls => 5061,
        }
    }

    /// Lower-case name as Kamailio's `$pr` prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Transport {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "udp" => Ok(Transport::Udp),
            "tcp" => Ok(Transport::Tcp),
            "tls" => Ok(Transport::Tls),
            other => Err(format!("unknown transport {other:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_round_trip_through_their_names() {
        for m in [
            Mode::Ok,
            Mode::Error503 { retry_after: None },
            Mode::Error503 {
                retry_after: Some(30),
            },
            Mode::Silent,
            Mode::Dead,
            Mode::Reject,
        ] {
            assert_eq!(m.to_string().parse::<Mode>(), Ok(m));
        }
        assert!("503:x".parse::<Mode>().is_err());
        assert!("sleepy".parse::<Mode>().is_err());
    }
}
