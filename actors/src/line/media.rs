//! A silent RTP stream per established call: one 20 ms packet of PCMU or
//! PCMA silence (RFC 3551) to the address of the peer's SDP, so that SBCs
//! and media-timeout watchdogs see a live call. Media quality is not the
//! goal; nothing received is played.
//!
//! Hand-written: an RTP header is twelve fixed bytes (RFC 3550 5.1); the
//! RTP crates on crates.io bring sessions, jitter buffers and RTCP a silent
//! sender does not need.
//!
//! Each call's port is bound under the fleet's `sipfleet.sockets.max`
//! ([`SocketBudget`]): when the INVITE goes out, or when an incoming call
//! is answered ([`Line::answer_call`]); a ringing call holds none.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use sipfleet_protocol::call::{Call, CallDirection, CallError, CallState};
use sipfleet_protocol::resources::{SocketBudget, SocketPermit, SocketsExhausted};
use sipfleet_protocol::route::Route;
use sipfleet_protocol::sdp::{Direction, PCMA, PCMU};

use super::{now, CallCommandError, Line};
use crate::events::{LineEventBody, ResourceEvent};
use rand::Rng;

/// One packet's worth of audio: 20 ms at 8 kHz.
pub(super) const PTIME: Duration = Duration::from_millis(20);
const SAMPLES: usize = 160;
const HEADER: usize = 12;

/// Why a call got no media port.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error(transparent)]
    Exhausted(#[from] SocketsExhausted),
    #[error("binding the media port: {0}")]
    Io(#[from] std::io::Error),
}

/// The sending side of one call's media.
pub(super) struct SilentRtp {
    socket: UdpSocket,
    /// Its place under `sipfleet.sockets.max`, given back with the socket.
    _permit: SocketPermit,
    ssrc: u32,
    seq: u16,
    timestamp: u32,
    sent: u64,
    received: u64,
}

impl SilentRtp {
    /// Binds a UDP port on the flow's local IP, under the fleet's socket
    /// ceiling; it is the port our SDP names, held until the call ends.
    pub(super) fn bind(
        local: SocketAddr,
        ssrc: u32,
        budget: &SocketBudget,
    ) -> Result<(SilentRtp, SocketAddr), BindError> {
        let permit = budget.try_acquire()?;
        let socket = UdpSocket::bind(SocketAddr::new(local.ip(), 0))?;
        socket.set_nonblocking(true)?;
        let addr = socket.local_addr()?;
        let rtp = SilentRtp {
            socket,
            _permit: permit,
            ssrc,
            seq: (ssrc >> 16) as u16,
            timestamp: ssrc.rotate_left(7),
            sent: 0,
            received: 0,
        };
        Ok((rtp, addr))
    }

    /// Packets sent so far.
    pub(super) fn sent(&self) -> u64 {
        self.sent
    }

    /// Datagrams received (and dropped) so far.
    pub(super) fn received(&self) -> u64 {
        self.received
    }

    /// The next packet of silence with payload type `pt`.
    pub(super) fn packet(&mut self, pt: u8) -> [u8; HEADER + SAMPLES] {
        let mut p = [0u8; HEADER + SAMPLES];
        p[0] = 0x80; // V=2, no padding, no extension, no CSRC
        p[1] = pt & 0x7f;
        p[2..4].copy_from_slice(&self.seq.to_be_bytes());
        p[4..8].copy_from_slice(&self.timestamp.to_be_bytes());
        p[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        // G.711 silence: 0xFF in mu-law, 0xD5 in A-law.
        let silence = if pt == PCMA { 0xd5 } else { 0xff };
        p[HEADER..].fill(silence);
        self.seq = self.seq.wrapping_add(1);
        self.timestamp = self.timestamp.wrapping_add(SAMPLES as u32);
        p
    }

    /// Sends one packet if `call` is up and the peer wants our audio.
    /// A send error (ICMP from a peer that does not listen) is not the
    /// call's business: signalling decides whether the call lives.
    pub(super) fn tick(&mut self, call: &Call) {
        // Whatever the peer sends is read, counted and dropped, so the
        // socket's buffer never fills.
        let mut buf = [0u8; 2048];
        while self.socket.recv_from(&mut buf).is_ok() {
            self.received += 1;
        }
        let Some((to, pt)) = destination(call) else {
            return;
        };
        let packet = self.packet(pt);
        if self.socket.send_to(&packet, to).is_ok() {
            self.sent += 1;
        }
    }
}

/// Media ports for the line's calls, under the fleet's socket ceiling.
impl Line {
    /// Binds the media port of the call `call_id` on the flow whose local
    /// address is `local`, under the fleet's socket ceiling. When none can
    /// be had, reports `resource_exhausted` and answers the error.
    pub(super) fn bind_rtp(
        &mut self,
        local: SocketAddr,
        call_id: &str,
        route: &Route,
        direction: CallDirection,
    ) -> Result<(SilentRtp, SocketAddr), CallCommandError> {
        let ssrc = self.ids.random();
        let budget = self.services.sockets.clone();
        SilentRtp::bind(local, ssrc, &budget).map_err(|e| {
            let open = match &e {
                BindError::Exhausted(x) => x.open,
                BindError::Io(_) => budget.open(),
            };
            let event = ResourceEvent {
                resource: "sockets",
                max: budget.max(),
                open,
                refused: match direction {
                    CallDirection::Incoming => "incoming_call",
                    CallDirection::Outgoing => "outgoing_call",
                },
                error: e.to_string(),
                call_id: call_id.to_owned(),
                route: route.clone(),
            };
            slog::warn!(self.services.log, "call refused: no media socket";
                "line" => self.setup.index, "call_id" => call_id, "error" => e.to_string());
            self.emit(LineEventBody::from(event));
            CallCommandError::Media(e)
        })
    }

    /// Answers the ringing call `i` (the `answer` command or auto-answer):
    /// its media port is bound now; without one the call gets 503.
    pub(super) fn answer_call(&mut self, i: usize) -> Result<String, CallCommandError> {
        let Some(slot) = self.calls.calls.get(i) else {
            return Err(CallCommandError::NoCall("answer"));
        };
        let call = &slot.call;
        if call.state() != CallState::Incoming {
            return Err(call_wrong_state(call, "answer"));
        }
        let (id, route, local) = (
            call.call_id().to_owned(),
            call.route().clone(),
            call.dialog().local,
        );
        let bound = self.bind_rtp(local, &id, &route, CallDirection::Incoming);
        let Some(slot) = self.calls.calls.get_mut(i) else {
            return Err(CallCommandError::NoCall("answer"));
        };
        match bound {
            Ok((socket, rtp)) => {
                slot.call.answer(now(), rtp)?;
                slot.rtp = Some(socket);
                Ok(id)
            }
            Err(e) => {
                slot.call.refuse_no_media(now())?;
                Err(e)
            }
        }
    }
}

fn call_wrong_state(call: &Call, command: &'static str) -> CallCommandError {
    CallCommandError::Call(CallError::WrongState {
        command,
        state: call.state(),
    })
}

/// Where and with which payload type to send, while the call is
/// established and the peer's SDP asks for our audio.
pub(super) fn destination(call: &Call) -> Option<(SocketAddr, u8)> {
    if call.state() != CallState::Established {
        return None;
    }
    let media = call.remote_media()?;
    let wants = matches!(media.direction, Direction::SendRecv | Direction::RecvOnly);
    if !wants || media.rtp.port() == 0 || media.rtp.ip().is_unspecified() {
        return None;
    }
    let pt = media.common_codec().unwrap_or(PCMU);
    Some((media.rtp, pt))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_are_rtp_v2_silence_with_growing_sequence_and_timestamp() {
        let budget = SocketBudget::new(1);
        let (mut rtp, addr) =
            SilentRtp::bind("127.0.0.1:0".parse().unwrap(), 0x1234_5678, &budget).unwrap();
        assert!(matches!(
            SilentRtp::bind("127.0.0.1:0".parse().unwrap(), 1, &budget),
            Err(BindError::Exhausted(_))
        ));
        assert_ne!(addr.port(), 0);
        let a = rtp.packet(PCMU);
        let b = rtp.packet(PCMU);
        assert_eq!(a.len(), 172);
        assert_eq!(a[0], 0x80);
        assert_eq!(a[1], 0);
        let seq = |p: &[u8]| u16::from_be_bytes([p[2], p[3]]);
        let ts = |p: &[u8]| u32::from_be_bytes([p[4], p[5], p[6], p[7]]);
        assert_eq!(seq(&b), seq(&a).wrapping_add(1));
        assert_eq!(ts(&b), ts(&a).wrapping_add(160));
        assert_eq!(&a[8..12], &0x1234_5678u32.to_be_bytes());
        assert!(a[12..].iter().all(|x| *x == 0xff));
        let c = rtp.packet(PCMA);
        assert_eq!(c[1], 8);
        assert!(c[12..].iter().all(|x| *x == 0xd5));
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
