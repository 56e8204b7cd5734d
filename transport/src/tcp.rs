//! TCP connect with our own timeout.
//!
//! The kernel retries an unanswered SYN for about two minutes (and a full
//! listen backlog drops SYNs silently), far longer than failover may wait, so
//! the connect is bounded by `FlowConfig::connect_timeout`. A RST in answer
//! to the SYN is `Refused`; an ICMP error during the handshake is `Icmp`.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpStream;

use crate::error::{connect_failure, RouteFailureKind};

/// Connects to `remote` within `timeout`, with Nagle off (SIP messages are
/// written whole and should leave at once).
pub(crate) async fn connect(
    remote: SocketAddr,
    timeout: Duration,
) -> Result<TcpStream, RouteFailureKind> {
    let stream = tokio::time::timeout(timeout, TcpStream::connect(remote))
        .await
        .map_err(|_| RouteFailureKind::ConnectTimeout)?
        .map_err(|e| connect_failure(&e))?;
    stream.set_nodelay(true).map_err(|e| RouteFailureKind::Io {
        reason: e.to_string(),
    })?;
    Ok(stream)
}
