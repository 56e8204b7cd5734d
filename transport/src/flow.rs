//! Flows: one transport connection per (transport, remote address), shared by
//! every line that uses that route.
//!
//! [`Flow::open`] connects (UDP: a `connect()`ed socket of its own on the
//! fleet's one local port, so an ICMP error names this exact destination;
//! TCP: our own connect timeout; TLS: the handshake with certificate
//! verification) and spawns one tokio task that owns
//! the socket, the stream framing and the [`Keepalive`] schedule. The task
//! reports everything as [`FlowEvent`]s on a channel; the connection actor
//! turns them into typed actor messages. Opening fails with a
//! [`RouteFailureKind`]; an open flow ends with exactly one
//! [`FlowEvent::Lost`] unless we closed it ourselves.
//!
//! The task reads the clock through `tokio::time`, so a paused tokio clock
//! drives keep-alives in tests.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use sipfleet_protocol::framing::{FramerConfig, KeepAliveRole};
use sipfleet_protocol::route::{Route, Transport};
use tokio::sync::mpsc;

use crate::codec::SipCodec;
use crate::error::{FlowLostKind, RouteFailureKind};
use crate::tls::TlsClient;
use crate::udp_port::UdpLocalPort;
use crate::{stream, tcp, udp};
use sipfleet_protocol::keepalive::KeepaliveSettings;

/// Default for [`FlowConfig::connect_timeout`]: long enough for a TLS
/// handshake over a slow link, far shorter than the 32 s Timer B/F.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub use sipfleet_protocol::route::FlowKey;

/// How flows are opened and kept alive.
#[derive(Clone)]
pub struct FlowConfig {
    /// Our own TCP connect (and TLS handshake) timeout: a full backlog drops
    /// SYNs for minutes, far longer than failover may wait.
    pub connect_timeout: Duration,
    /// `tcpIpApp.keepalive.*`: when a flow sends keep-alives, and how long
    /// it waits for their answers before the flow counts as lost.
    pub keepalive: KeepaliveSettings,
    /// The TLS client every TLS flow connects with (trusted CAs).
    pub tls: TlsClient,
    /// Stream framing limits (largest message). The keep-alive role is
    /// always `Client`: we send pings and read a lone CRLF as a pong.
    pub framing: FramerConfig,
    /// The local port every UDP flow binds (shared by clones of this
    /// configuration: one fleet, one SIP port).
    pub udp_port: UdpLocalPort,
}

impl FlowConfig {
    /// Defaults of the guide, with this TLS client.
    pub fn new(tls: TlsClient) -> Self {
        FlowConfig {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            keepalive: KeepaliveSettings::default(),
            tls,
            framing: FramerConfig::default(),
            udp_port: UdpLocalPort::ephemeral(),
        }
    }

    fn codec(&self) -> SipCodec {
        SipCodec::new(FramerConfig {
            role: KeepAliveRole::Client,
            ..self.framing
        })
    }
}

impl fmt::Debug for FlowConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlowConfig")
            .field("connect_timeout", &self.connect_timeout)
            .field("keepalive", &self.keepalive)
            .field("tls", &self.tls)
            .field("framing", &self.framing)
            .field("udp_port", &self.udp_port)
            .finish()
    }
}

/// What an open flow reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FlowEvent {
    /// One SIP message from the far end.
    Message(Bytes),
    /// The route failed while the flow stays usable (UDP: an ICMP error for a
    /// datagram we sent to this destination).
    RouteFailure(RouteFailureKind),
    /// The flow is gone; it is the last event.
    Lost(FlowLostKind),
}

/// Commands from the flow's owner to its task.
#[derive(Debug)]
pub(crate) enum Command {
    Send(Bytes),
    Close,
}

/// The flow's task is gone (lost or closed); nothing can be sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("flow is closed")]
pub struct FlowClosed;

/// Sending side of a flow; cheap to clone, shared by the lines on the flow.
#[derive(Clone, Debug)]
pub struct FlowSender {
    key: FlowKey,
    local: SocketAddr,
    commands: mpsc::UnboundedSender<Command>,
}

impl FlowSender {
    /// The flow this sender writes to: its transport and remote address.
    pub fn key(&self) -> FlowKey {
        self.key
    }

    /// The flow's real local address: what `Via` sent-by and `Contact` carry,
    /// so the far end reaches us over this same flow.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Queues one serialized SIP message for sending.
    pub fn send(&self, message: Bytes) -> Result<(), FlowClosed> {
        self.commands
            .send(Command::Send(message))
            .map_err(|_| FlowClosed)
    }

    /// Closes the flow from our side (TCP/TLS: FIN). No `Lost` event follows.
    pub fn close(&self) {
        let _ = self.commands.send(Command::Close);
    }
}

/// Receiving side of a flow.
#[derive(Debug)]
pub struct FlowEvents {
    events: mpsc::UnboundedReceiver<FlowEvent>,
}

impl FlowEvents {
    /// The next event; `None` once the flow's task ended and all events were read.
    pub async fn recv(&mut self) -> Option<FlowEvent> {
        self.events.recv().await
    }

    /// The underlying channel, e.g. to wrap as a stream.
    pub fn into_inner(self) -> mpsc::UnboundedReceiver<FlowEvent> {
        self.events
    }
}

/// An open flow. Dropping every [`FlowSender`] ends its task and closes the socket.
#[derive(Debug)]
pub struct Flow {
    /// Writes messages to the flow (clone it for every writer).
    pub sender: FlowSender,
    /// What the flow receives and what happens to it (messages, ICMP
    /// errors, close), in order.
    pub events: FlowEvents,
}

impl Flow {
    /// Connects to `route` and starts the flow's task. TLS verifies the server
    /// certificate against `route.host`.
    pub async fn open(route: &Route, config: &FlowConfig) -> Result<Flow, RouteFailureKind> {
        let key = FlowKey::of(route);
        let (commands_tx, commands_rx) = mpsc::unbounded_channel();
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let io = TaskIo {
            key,
            commands: commands_rx,
            events: events_tx,
            keepalive: config.keepalive.clone(),
        };
        let local = match route.transport {
            Transport::Udp => {
                let socket = udp::connect(route.addr, &config.udp_port).await?;
                let local = local_addr(socket.local_addr())?;
                tokio::spawn(udp::run(socket, io));
                local
            }
            Transport::Tcp => {
                let tcp = tcp::connect(route.addr, config.connect_timeout).await?;
                let local = local_addr(tcp.local_addr())?;
                tokio::spawn(stream::run(tcp, config.codec(), io));
                local
            }
            Transport::Tls => {
                let tcp = tcp::connect(route.addr, config.connect_timeout).await?;
                let local = local_addr(tcp.local_addr())?;
                let tls = tokio::time::timeout(
                    config.connect_timeout,
                    config.tls.handshake(&route.host, tcp),
                )
                .await
                .map_err(|_| RouteFailureKind::ConnectTimeout)??;
                tokio::spawn(stream::run(tls, config.codec(), io));
                local
            }
        };
        Ok(Flow {
            sender: FlowSender {
                key,
                local,
                commands: commands_tx,
            },
            events: FlowEvents { events: events_rx },
        })
    }
}

fn local_addr(addr: io::Result<SocketAddr>) -> Result<SocketAddr, RouteFailureKind> {
    addr.map_err(|e| RouteFailureKind::Io {
        reason: format!("no local address: {e}"),
    })
}

/// What a flow task needs besides its socket.
pub(crate) struct TaskIo {
    pub key: FlowKey,
    pub commands: mpsc::UnboundedReceiver<Command>,
    pub events: mpsc::UnboundedSender<FlowEvent>,
    pub keepalive: KeepaliveSettings,
}

impl TaskIo {
    /// Reports an event; a gone receiver only means nobody listens any more.
    pub fn emit(&self, event: FlowEvent) {
        let _ = self.events.send(event);
    }
}

/// The `Via` header value for a request sent over a flow (RFC 3261 18.1.1 with
/// RFC 3581 `rport`): the flow's real local address as sent-by, so responses
/// come back over the same flow even through a NAT.
pub fn via_value(transport: Transport, local: SocketAddr, branch: &str) -> String {
    let transport = match transport {
        Transport::Udp => "UDP",
        Transport::Tcp => "TCP",
        Transport::Tls => "TLS",
    };
    format!("SIP/2.0/{transport} {local};rport;branch={branch}")
}

/// Current time of the tokio clock as a `std` instant, for the sans-IO machines.
pub(crate) fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

/// Sleeps until a sans-IO deadline (forever when there is none).
/// A flow task's timer: one `Sleep`, reset only when its deadline moves,
/// instead of a new timer entry on every pass of the loop (every datagram).
pub(crate) struct FlowTimer {
    sleep: std::pin::Pin<Box<tokio::time::Sleep>>,
    armed: Option<std::time::Instant>,
}

impl FlowTimer {
    pub fn new() -> Self {
        FlowTimer {
            sleep: Box::pin(tokio::time::sleep(std::time::Duration::ZERO)),
            armed: None,
        }
    }

    /// Arms the timer for `deadline` (`None`: never fires).
    pub fn set(&mut self, deadline: Option<std::time::Instant>) {
        if deadline != self.armed {
            self.armed = deadline;
            if let Some(at) = deadline {
                self.sleep
                    .as_mut()
                    .reset(tokio::time::Instant::from_std(at));
            }
        }
    }

    /// Resolves when the armed deadline passes; pending while unarmed.
    pub async fn wait(&mut self) {
        if self.armed.is_none() {
            return std::future::pending().await;
        }
        self.sleep.as_mut().await;
        // Fired: the next `set` re-arms even for the same instant.
        self.armed = None;
    }
}

#[cfg(test)]
mod tests {
    use super::FlowTimer;
    use std::time::Duration;

    /// The timer fires at its deadline, stays quiet while unarmed, and is
    /// re-armed by the next `set` after firing, even for the same instant.
    #[tokio::test(start_paused = true)]
    async fn a_flow_timer_fires_at_its_deadline_and_only_when_armed() {
        let start = tokio::time::Instant::now().into_std();
        let mut timer = FlowTimer::new();
        let unarmed = tokio::time::timeout(Duration::from_secs(60), timer.wait()).await;
        assert!(unarmed.is_err(), "an unarmed timer never fires");
        let at = start + Duration::from_secs(61);
        timer.set(Some(at + Duration::from_secs(10)));
        timer.set(Some(at));
        timer.wait().await;
        assert_eq!(tokio::time::Instant::now().into_std(), at);
        timer.set(Some(at));
        tokio::time::timeout(Duration::from_millis(1), timer.wait())
            .await
            .expect("re-armed for a passed instant: fires at once");
        timer.set(None);
        let quiet = tokio::time::timeout(Duration::from_secs(60), timer.wait()).await;
        assert!(quiet.is_err());
    }
}
