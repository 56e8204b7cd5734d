//! Typed failures of a flow, and what each means to a line.
//!
//! The guide treats each way a route fails differently, so each one has its own
//! variant and they are never folded into a generic I/O error:
//!
//! * [`RouteFailureKind`] — the route cannot carry a request at all (ICMP
//!   unreachable, refused connect, our connect timeout, a TLS handshake that
//!   failed). The line fails over at once.
//! * [`FlowLostKind`] — a stream that was up went away (far-end FIN or RST,
//!   keep-alive loss, our idle close, garbage on the stream). The line treats it
//!   as a registration loss with back-off, not as a failover.
//!
//! A request that gets no answer produces no event here: the transaction timers
//! of the line decide when silence is a failure.
//!
//! The kinds are plain data (the transport classifies `std::io` errors into
//! them); the guide's reading of each, failover or loss, is
//! [`registration_error_of_route_failure`] and
//! [`registration_error_of_flow_loss`].

use std::fmt;
use std::io;

use crate::registration::TransportError;

/// Which ICMP "destination unreachable" the kernel reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IcmpKind {
    /// ICMP port unreachable (`ECONNREFUSED` on a UDP socket).
    PortUnreachable,
    /// ICMP host unreachable (`EHOSTUNREACH`).
    HostUnreachable,
    /// ICMP network unreachable, or no route at all (`ENETUNREACH`).
    NetUnreachable,
}

impl IcmpKind {
    /// Maps an error of a UDP socket to the ICMP message that caused it, if any.
    pub fn from_io(err: &io::Error) -> Option<IcmpKind> {
        match err.kind() {
            io::ErrorKind::ConnectionRefused => Some(IcmpKind::PortUnreachable),
            io::ErrorKind::HostUnreachable => Some(IcmpKind::HostUnreachable),
            io::ErrorKind::NetworkUnreachable => Some(IcmpKind::NetUnreachable),
            _ => None,
        }
    }
}

impl fmt::Display for IcmpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IcmpKind::PortUnreachable => "port unreachable",
            IcmpKind::HostUnreachable => "host unreachable",
            IcmpKind::NetUnreachable => "network unreachable",
        })
    }
}

/// The route cannot carry requests: the guide's triggers for an immediate failover.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RouteFailureKind {
    /// An ICMP error came back for this exact destination.
    #[error("ICMP {0}")]
    Icmp(IcmpKind),
    /// The far end answered our SYN with RST.
    #[error("connection refused")]
    Refused,
    /// Our own connect timeout expired (no SYN-ACK, or no TLS handshake answer).
    #[error("connect timed out")]
    ConnectTimeout,
    /// The TLS handshake failed: bad or unknown certificate, wrong host name,
    /// protocol error. Never silently accepted.
    #[error("TLS handshake failed: {reason}")]
    TlsHandshake {
        /// The TLS library's error, as text.
        reason: String,
    },
    /// Any other error while opening the flow (no local address, ...).
    #[error("cannot open flow: {reason}")]
    Io {
        /// The OS error, as text.
        reason: String,
    },
}

/// A flow that was up is gone: the guide's registration loss, not a failover.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FlowLostKind {
    /// The far end closed the stream in order (FIN, or TLS close_notify).
    #[error("closed by the far end (FIN)")]
    Fin,
    /// The far end reset the stream (RST).
    #[error("reset by the far end (RST)")]
    Reset,
    /// Our keep-alives went unanswered for all attempts.
    #[error("keep-alive unanswered")]
    KeepaliveTimeout,
    /// We closed an idle stream (no persistent connection, no keep-alives).
    #[error("closed after inactivity")]
    Idle,
    /// The far end sent bytes that cannot be framed as SIP; the stream is
    /// unusable because message boundaries are lost.
    #[error("malformed stream input: {reason}")]
    Malformed {
        /// What the framer could not read.
        reason: String,
    },
    /// Any other I/O error on an established flow.
    #[error("I/O error: {reason}")]
    Io {
        /// The OS error, as text.
        reason: String,
    },
}

impl FlowLostKind {
    /// Classifies a read or write error on an established stream.
    pub fn from_io(err: &io::Error) -> FlowLostKind {
        match err.kind() {
            io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => {
                FlowLostKind::Reset
            }
            io::ErrorKind::UnexpectedEof => FlowLostKind::Fin,
            _ => {
                let text = err.to_string();
                // OpenSSL 3 reports a TCP FIN without TLS close_notify as an
                // "unexpected eof" protocol error; for the line it is a FIN.
                if text.contains("unexpected eof") || text.contains("UNEXPECTED_EOF") {
                    FlowLostKind::Fin
                } else {
                    FlowLostKind::Io { reason: text }
                }
            }
        }
    }
}

/// Maps an error of a TCP `connect()` to the route failure it means.
pub fn connect_failure(err: &io::Error) -> RouteFailureKind {
    match err.kind() {
        io::ErrorKind::ConnectionRefused => RouteFailureKind::Refused,
        io::ErrorKind::TimedOut => RouteFailureKind::ConnectTimeout,
        _ => match IcmpKind::from_io(err) {
            Some(icmp) => RouteFailureKind::Icmp(icmp),
            None => RouteFailureKind::Io {
                reason: err.to_string(),
            },
        },
    }
}

/// The keep-alive schedule's verdict, as the flow's loss.
impl From<crate::keepalive::KeepaliveLoss> for FlowLostKind {
    fn from(loss: crate::keepalive::KeepaliveLoss) -> Self {
        match loss {
            crate::keepalive::KeepaliveLoss::Unanswered => FlowLostKind::KeepaliveTimeout,
            crate::keepalive::KeepaliveLoss::Idle => FlowLostKind::Idle,
        }
    }
}

/// What a route failure means to the registration: each one fails the route
/// at once (the guide's immediate failover); a failed TLS handshake keeps its
/// verification error for the event.
pub fn registration_error_of_route_failure(kind: &RouteFailureKind) -> TransportError {
    match kind {
        RouteFailureKind::Icmp(_) => TransportError::Icmp,
        RouteFailureKind::TlsHandshake { reason } => TransportError::Tls {
            detail: reason.clone(),
        },
        // A refused or unanswered SYN: the route cannot carry the request.
        RouteFailureKind::Refused
        | RouteFailureKind::ConnectTimeout
        | RouteFailureKind::Io { .. } => TransportError::Refused,
    }
}

/// What the loss of a flow that was up means to the registration: a
/// registration loss (back-off, not failover), or nothing when we closed an
/// idle stream ourselves (the next request opens a new flow).
pub fn registration_error_of_flow_loss(kind: &FlowLostKind) -> Option<TransportError> {
    match kind {
        FlowLostKind::Idle => None,
        FlowLostKind::KeepaliveTimeout => Some(TransportError::KeepAliveLost),
        FlowLostKind::Fin
        | FlowLostKind::Reset
        | FlowLostKind::Malformed { .. }
        | FlowLostKind::Io { .. } => Some(TransportError::FlowLost),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_map_to_their_kinds() {
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(connect_failure(&refused), RouteFailureKind::Refused);
        assert_eq!(IcmpKind::from_io(&refused), Some(IcmpKind::PortUnreachable));
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        assert_eq!(FlowLostKind::from_io(&reset), FlowLostKind::Reset);
        let eof = io::Error::other("error:0A000126:SSL routines::unexpected eof while reading");
        assert_eq!(FlowLostKind::from_io(&eof), FlowLostKind::Fin);
        let other = io::Error::other("boom");
        assert!(matches!(
            FlowLostKind::from_io(&other),
            FlowLostKind::Io { .. }
        ));
    }

    #[test]
    fn each_failure_means_failover_or_loss_as_the_guide_says() {
        use RouteFailureKind as R;
        for kind in [R::Refused, R::ConnectTimeout, R::Io { reason: "x".into() }] {
            assert_eq!(
                registration_error_of_route_failure(&kind),
                TransportError::Refused
            );
        }
        assert_eq!(
            registration_error_of_route_failure(&R::Icmp(IcmpKind::PortUnreachable)),
            TransportError::Icmp
        );
        assert_eq!(
            registration_error_of_route_failure(&R::TlsHandshake {
                reason: "certificate verify failed".into()
            }),
            TransportError::Tls {
                detail: "certificate verify failed".into()
            }
        );
        assert_eq!(registration_error_of_flow_loss(&FlowLostKind::Idle), None);
        assert_eq!(
            registration_error_of_flow_loss(&FlowLostKind::KeepaliveTimeout),
            Some(TransportError::KeepAliveLost)
        );
        for kind in [
            FlowLostKind::Fin,
            FlowLostKind::Reset,
            FlowLostKind::Malformed { reason: "x".into() },
        ] {
            assert_eq!(
                registration_error_of_flow_loss(&kind),
                Some(TransportError::FlowLost)
            );
        }
    }
}
