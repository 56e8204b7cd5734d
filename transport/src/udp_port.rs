//! One local UDP port per fleet: the SIP port of a phone.
//!
//! A phone keeps one SIP port; its Contact (`sip:user@ip:port`) is how a
//! registrar tells its bindings apart. If every UDP flow had its own
//! ephemeral port, each failover or failback would register a new Contact,
//! and the SBC the line left would keep the old binding until it lapsed
//! (stale bindings piling up, calls forked to ports nobody reads).
//!
//! So every UDP flow of a fleet binds the same port, per address family,
//! while keeping its own `connect()`ed socket: the sockets share the port
//! with `SO_REUSEPORT` (same user only), and Linux delivers each datagram
//! (and each ICMP error) to the socket connected to its source, so an ICMP
//! error still names the exact destination (see `udp.rs`).
//!
//! The port is chosen once (`--sip-port`, or an ephemeral one picked when
//! the fleet starts) and held for the life of the [`UdpLocalPort`] by a
//! *holder* socket, so it survives moments with no flow open (every line
//! between a failover and the next request). The holder is connected to
//! its own loopback address: it never takes a datagram from anyone else, so
//! a datagram from a source with no connected flow finds no socket and the
//! kernel answers ICMP port unreachable — exactly what such a datagram met
//! when every flow had a port of its own.
//!
//! IPv4 and IPv6 are bound separately (`IPV6_V6ONLY` on IPv6 sockets); the
//! IPv6 port is the IPv4 one when it is free, else an ephemeral one.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex, MutexGuard};

use socket2::{Domain, Protocol, Socket, Type};

/// The local UDP port shared by every UDP flow of one fleet. Cheap to clone;
/// clones share the port.
#[derive(Clone, Debug)]
pub struct UdpLocalPort {
    inner: Arc<Mutex<Ports>>,
}

#[derive(Debug)]
struct Ports {
    /// The configured port; 0 picks an ephemeral one at first bind.
    requested: u16,
    v4: Option<UdpSocket>,
    v6: Option<UdpSocket>,
}

impl Default for UdpLocalPort {
    fn default() -> Self {
        Self::ephemeral()
    }
}

impl UdpLocalPort {
    /// An ephemeral port, picked when the first flow binds (or by
    /// [`Self::reserve`]) and kept from then on.
    pub fn ephemeral() -> Self {
        UdpLocalPort {
            inner: Arc::new(Mutex::new(Ports {
                requested: 0,
                v4: None,
                v6: None,
            })),
        }
    }

    /// Binds the IPv4 port now (`0`: an ephemeral one), so that a port
    /// already taken is a start-up error rather than a failure of every
    /// route, and an ephemeral port is chosen once for the process.
    pub fn reserve(port: u16) -> io::Result<Self> {
        let ports = UdpLocalPort {
            inner: Arc::new(Mutex::new(Ports {
                requested: port,
                v4: None,
                v6: None,
            })),
        };
        ports.holder_port(false)?;
        Ok(ports)
    }

    fn lock(&self) -> MutexGuard<'_, Ports> {
        // The data stays consistent even if a holder panicked mid-way.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The IPv4 port when it is bound (else the configured one, 0 for
    /// ephemeral).
    pub fn port(&self) -> u16 {
        let ports = self.lock();
        ports
            .v4
            .as_ref()
            .and_then(|s| s.local_addr().ok())
            .map_or(ports.requested, |a| a.port())
    }

    /// The port of the family's holder, binding it first if needed.
    fn holder_port(&self, v6: bool) -> io::Result<u16> {
        let mut ports = self.lock();
        let requested = ports.requested;
        let other_port = |s: &Option<UdpSocket>| {
            s.as_ref()
                .and_then(|s| s.local_addr().ok())
                .map(|a| a.port())
        };
        let (slot, other) = if v6 {
            let other = other_port(&ports.v4);
            (&mut ports.v6, other)
        } else {
            let other = other_port(&ports.v6);
            (&mut ports.v4, other)
        };
        if let Some(holder) = slot {
            return holder.local_addr().map(|a| a.port());
        }
        let holder = match (requested, other) {
            (0, Some(port)) => bind_holder(v6, port).or_else(|_| bind_holder(v6, 0))?,
            (port, _) => bind_holder(v6, port)?,
        };
        let port = holder.local_addr()?.port();
        *slot = Some(holder);
        Ok(port)
    }

    /// A new socket on the fleet's port, of `remote`'s family, ready to be
    /// connected to `remote`.
    pub(crate) fn socket_for(&self, remote: SocketAddr) -> io::Result<UdpSocket> {
        let port = self.holder_port(remote.is_ipv6())?;
        let socket = shared_socket(remote.is_ipv6())?;
        socket.bind(&unspecified(remote.is_ipv6(), port).into())?;
        socket.set_nonblocking(true)?;
        Ok(socket.into())
    }
}

fn unspecified(v6: bool, port: u16) -> SocketAddr {
    if v6 {
        (Ipv6Addr::UNSPECIFIED, port).into()
    } else {
        (Ipv4Addr::UNSPECIFIED, port).into()
    }
}

/// A UDP socket that may share its port with the fleet's other sockets.
fn shared_socket(v6: bool) -> io::Result<Socket> {
    let domain = if v6 { Domain::IPV6 } else { Domain::IPV4 };
    let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    if v6 {
        socket.set_only_v6(true)?;
    }
    // SO_REUSEPORT alone: Linux lets only sockets of the same user share the
    // port (SO_REUSEADDR would let any user's socket that sets it join).
    socket.set_reuse_port(true)?;
    Ok(socket)
}

/// `port` (0: a fresh ephemeral one) if no other socket holds it, checked
/// with a bind that does not share.
fn exclusive_port(v6: bool, port: u16) -> io::Result<u16> {
    let domain = if v6 { Domain::IPV6 } else { Domain::IPV4 };
    let probe = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    if v6 {
        probe.set_only_v6(true)?;
    }
    probe.bind(&unspecified(v6, port).into())?;
    let bound = probe.local_addr()?.as_socket().map_or(port, |a| a.port());
    Ok(bound)
}

/// Binds the holder of `port` (0: ephemeral) and connects it to its own
/// loopback address, so it holds the port without receiving anything. A
/// host without that loopback keeps it unconnected: it then absorbs stray
/// datagrams (never read) instead of answering them with ICMP.
fn bind_holder(v6: bool, port: u16) -> io::Result<UdpSocket> {
    // SO_REUSEPORT would let a second sipfleet of the same user join a port
    // this one holds, and the kernel would hand it our SBCs' replies. A
    // socket without it must get the port to itself first: bound by any
    // other process (with or without SO_REUSEPORT), the port is taken.
    let port = exclusive_port(v6, port)?;
    let socket = shared_socket(v6)?;
    socket.bind(&unspecified(v6, port).into())?;
    let socket: UdpSocket = socket.into();
    let bound = socket.local_addr()?.port();
    let own: SocketAddr = if v6 {
        (Ipv6Addr::LOCALHOST, bound).into()
    } else {
        (Ipv4Addr::LOCALHOST, bound).into()
    };
    let _ = socket.connect(own);
    Ok(socket)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_holder_receives_nothing_from_strangers() {
        let port = UdpLocalPort::reserve(0).unwrap();
        let p = port.port();
        assert_ne!(p, 0);
        // Nobody is connected to this stranger: the datagram finds no
        // socket (ICMP port unreachable), as before the port was shared.
        let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
        stranger.connect(("127.0.0.1", p)).unwrap();
        stranger.send(b"OPTIONS").unwrap();
        stranger
            .set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        let mut buf = [0u8; 16];
        let err = stranger.recv(&mut buf).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
    }

    #[test]
    fn a_taken_port_is_an_error_at_reserve() {
        // A socket without SO_REUSEPORT owns its port alone.
        let other = UdpSocket::bind("0.0.0.0:0").unwrap();
        let taken = other.local_addr().unwrap().port();
        assert!(UdpLocalPort::reserve(taken).is_err());
    }

    /// A second fleet (another process of the same user would set
    /// SO_REUSEPORT too) cannot take a port a fleet holds: it would steal
    /// the first one's replies.
    #[test]
    fn a_port_held_by_another_fleet_is_taken() {
        let first = UdpLocalPort::reserve(0).unwrap();
        let flow = first.socket_for("127.0.0.1:9".parse().unwrap()).unwrap();
        assert!(UdpLocalPort::reserve(first.port()).is_err());
        drop(flow);
        assert!(
            UdpLocalPort::reserve(first.port()).is_err(),
            "the holder keeps it"
        );
    }

    #[test]
    fn flows_of_each_family_bind_the_port() {
        let port = UdpLocalPort::reserve(0).unwrap();
        let s = port.socket_for("127.0.0.1:9".parse().unwrap()).unwrap();
        assert_eq!(s.local_addr().unwrap().port(), port.port());
        if let Ok(s6) = port.socket_for("[::1]:9".parse().unwrap()) {
            // Same number when it is free for IPv6 too (it usually is).
            assert!(s6.local_addr().unwrap().is_ipv6());
        }
    }
}
