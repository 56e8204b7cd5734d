//! A line's media sockets: one UDP port per call, bound when the line
//! asks ([`MediaPorts::bind`]) under the fleet's `sipfleet.sockets.max`
//! ([`SocketBudget`]) and closed when it lets go. The packets come from the
//! protocol line ([`sipfleet_protocol::line::Output::Media`]); whatever the
//! peer sends is read, counted and dropped, so the socket's buffer never
//! fills.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::rc::Rc;

use sipfleet_protocol::line::{BindError, MediaPorts};
use sipfleet_protocol::resources::{SocketBudget, SocketPermit};

struct Port {
    socket: UdpSocket,
    /// Its place under `sipfleet.sockets.max`, given back with the socket.
    _permit: SocketPermit,
    received: u64,
}

/// The ports of one line's calls, shared by the protocol line (which binds
/// and releases, through [`MediaPorts`]) and its driver (which sends).
/// Not `Send`: a line and its driver live on one thread.
#[derive(Clone)]
pub struct MediaSockets {
    budget: SocketBudget,
    ports: Rc<RefCell<HashMap<String, Port>>>,
}

impl MediaSockets {
    /// No socket yet; each one bound takes from `budget`
    /// (`sipfleet.sockets.max`, shared with the fleet's other sockets).
    pub fn new(budget: SocketBudget) -> Self {
        MediaSockets {
            budget,
            ports: Rc::default(),
        }
    }

    /// Sends `packet` from the call's port. A send error (ICMP from a peer
    /// that does not listen) is not the call's business: signalling decides
    /// whether the call lives.
    pub fn send(&self, call_id: &str, to: SocketAddr, packet: &[u8]) {
        let mut ports = self.ports.borrow_mut();
        let Some(port) = ports.get_mut(call_id) else {
            return;
        };
        let mut buf = [0u8; 2048];
        while port.socket.recv_from(&mut buf).is_ok() {
            port.received += 1;
        }
        let _ = port.socket.send_to(packet, to);
    }
}

impl MediaPorts for MediaSockets {
    fn bind(&mut self, call_id: &str, ip: IpAddr) -> Result<SocketAddr, BindError> {
        let permit = self.budget.try_acquire()?;
        let socket = UdpSocket::bind(SocketAddr::new(ip, 0))?;
        socket.set_nonblocking(true)?;
        let addr = socket.local_addr()?;
        self.ports.borrow_mut().insert(
            call_id.to_owned(),
            Port {
                socket,
                _permit: permit,
                received: 0,
            },
        );
        Ok(addr)
    }

    fn release(&mut self, call_id: &str) {
        self.ports.borrow_mut().remove(call_id);
    }

    fn ceiling(&self) -> (usize, usize) {
        (self.budget.max(), self.budget.open())
    }

    fn received(&self, call_id: &str) -> u64 {
        self.ports.borrow().get(call_id).map_or(0, |p| p.received)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sipfleet_protocol::line::CallCommandError;
    use sipfleet_protocol::resources::SocketsExhausted;

    #[test]
    fn ports_are_bound_under_the_ceiling_and_given_back() {
        let mut sockets = MediaSockets::new(SocketBudget::new(1));
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let addr = sockets.bind("a", ip).unwrap();
        assert_ne!(addr.port(), 0);
        assert!(matches!(
            sockets.bind("b", ip),
            Err(BindError::Exhausted(_))
        ));
        assert_eq!(sockets.ceiling(), (1, 1));
        sockets.release("a");
        assert_eq!(sockets.ceiling(), (1, 0));
        assert!(sockets.bind("b", ip).is_ok());
    }

    /// The command's error keeps the bind error as its source, and says
    /// it in its message.
    #[test]
    fn a_refused_media_port_is_the_command_error_source() {
        use std::error::Error;
        let err =
            CallCommandError::Media(BindError::Exhausted(SocketsExhausted { max: 8, open: 8 }));
        assert_eq!(
            err.to_string(),
            "no local UDP port for media: the fleet's media sockets are exhausted (8 of sipfleet.sockets.max=8 open)"
        );
        let source = err.source().expect("a source");
        assert!(matches!(
            source.downcast_ref::<BindError>(),
            Some(BindError::Exhausted(SocketsExhausted { max: 8, open: 8 }))
        ));
    }
}
