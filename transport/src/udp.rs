//! UDP flows: one `connect()`ed socket per remote address, all on the
//! fleet's one local port ([`UdpLocalPort`]).
//!
//! Linux reports ICMP port/host/network unreachable to a connected UDP socket
//! as `ECONNREFUSED` / `EHOSTUNREACH` / `ENETUNREACH` on its next `recv` or
//! `send` (about 0.1 ms after the send on loopback). Because the socket talks
//! to one destination only, the error names that exact destination with no
//! need for `IP_RECVERR` and `MSG_ERRQUEUE`. The sockets share one local port
//! (`SO_REUSEPORT`): the kernel still hands each datagram and each ICMP error
//! to the socket connected to its source, while the line's Contact keeps one
//! port across failover and failback, like a phone. An ICMP error does
//! not end the flow: it is reported as a route failure and the socket stays
//! usable (the far end may come back, and failback probes reuse it).

use std::net::SocketAddr;

use bytes::Bytes;
use tokio::net::UdpSocket;

use crate::error::{FlowLostKind, IcmpKind, RouteFailureKind};
use crate::flow::{now, Command, FlowEvent, FlowTimer, TaskIo};
use crate::udp_port::UdpLocalPort;
use sipfleet_protocol::keepalive::{Keepalive, KeepaliveAction, PONG};

/// Largest datagram we accept (the UDP maximum).
const MAX_DATAGRAM: usize = 65_535;

/// Binds the fleet's local port in the remote's family and connects to `remote`.
pub(crate) async fn connect(
    remote: SocketAddr,
    port: &UdpLocalPort,
) -> Result<UdpSocket, RouteFailureKind> {
    let io = |e: std::io::Error| match IcmpKind::from_io(&e) {
        Some(icmp) => RouteFailureKind::Icmp(icmp),
        None => RouteFailureKind::Io {
            reason: e.to_string(),
        },
    };
    let socket = UdpSocket::from_std(port.socket_for(remote).map_err(io)?).map_err(io)?;
    socket.connect(remote).await.map_err(io)?;
    Ok(socket)
}

/// The flow task: datagrams in and out, ICMP errors, NAT keep-alives.
/// Each wake-up drains what is ready (queued sends, received datagrams)
/// before sleeping again.
pub(crate) async fn run(socket: UdpSocket, mut io: TaskIo) {
    let mut keepalive = Keepalive::new(io.key.transport, &io.keepalive, now());
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut timer = FlowTimer::new();
    loop {
        while let Some(action) = keepalive.poll_action() {
            let bytes = match action {
                KeepaliveAction::Send(bytes) => bytes,
                KeepaliveAction::SendPong => Bytes::from_static(PONG),
                KeepaliveAction::Lost(kind) => {
                    io.emit(FlowEvent::Lost(kind.into()));
                    return;
                }
            };
            if let Err(e) = socket.send(&bytes).await {
                if !report(&io, &e) {
                    return;
                }
            }
        }
        timer.set(keepalive.poll_timeout());
        tokio::select! {
            command = io.commands.recv() => {
                let mut next = command;
                loop {
                    match next {
                        Some(Command::Send(bytes)) => match socket.send(&bytes).await {
                            Ok(_) => keepalive.handle_sent_message(now()),
                            Err(e) => {
                                if !report(&io, &e) {
                                    return;
                                }
                            }
                        },
                        Some(Command::Close) | None => return,
                    }
                    match io.commands.try_recv() {
                        Ok(command) => next = Some(command),
                        Err(_) => break,
                    }
                }
            }
            received = socket.recv(&mut buf) => {
                let mut next = received;
                loop {
                    match next {
                        Ok(n) => deliver(&buf[..n], &mut keepalive, &io),
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                        Err(e) => {
                            if !report(&io, &e) {
                                return;
                            }
                            break;
                        }
                    }
                    next = socket.try_recv(&mut buf);
                }
            }
            () = timer.wait() => keepalive.handle_timeout(now()),
        }
    }
}

/// One datagram: a keep-alive (CRLF CRLF, CRLF or empty) answers the
/// keep-alive schedule; anything else goes to the flow's users.
fn deliver(datagram: &[u8], keepalive: &mut Keepalive, io: &TaskIo) {
    if datagram
        .iter()
        .all(|b| matches!(b, b'\r' | b'\n' | b' ' | b'\t'))
    {
        keepalive.handle_pong(now());
    } else {
        keepalive.handle_received_message(now());
        io.emit(FlowEvent::Message(Bytes::copy_from_slice(datagram)));
    }
}

/// Reports a socket error; returns whether the flow stays up. ICMP errors are
/// route failures of this destination and leave the socket usable; anything
/// else ends the flow.
fn report(io: &TaskIo, err: &std::io::Error) -> bool {
    match IcmpKind::from_io(err) {
        Some(icmp) => {
            io.emit(FlowEvent::RouteFailure(RouteFailureKind::Icmp(icmp)));
            true
        }
        None => {
            io.emit(FlowEvent::Lost(FlowLostKind::Io {
                reason: err.to_string(),
            }));
            false
        }
    }
}
