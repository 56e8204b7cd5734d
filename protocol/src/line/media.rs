//! A call's media as the line sees it: which port our SDP names (bound by
//! the driver, under the fleet's `sipfleet.sockets.max`) and the silent RTP
//! stream an established call sends, one packet every 20 ms, so SBCs and
//! media-timeout watchdogs see a live call. Media quality is not the goal;
//! nothing received is played.
//!
//! The packet is written here, by hand: an RTP header is twelve fixed bytes
//! (RFC 3550 5.1) and the payload is G.711 silence; the RTP crates on
//! crates.io bring sessions, jitter buffers and RTCP a silent sender does
//! not need. Sockets stay with the driver ([`MediaPorts`]).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::call::{Call, CallState};
use crate::resources::SocketsExhausted;
use crate::sdp::{Direction, PCMA, PCMU};

/// One packet's worth of audio: 20 ms at 8 kHz.
pub const PTIME: Duration = Duration::from_millis(20);
const SAMPLES: usize = 160;
const HEADER: usize = 12;
/// Bytes in one packet of silence.
pub const PACKET_LEN: usize = HEADER + SAMPLES;

/// Why a call got no media port.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// The fleet's `sipfleet.sockets.max` media sockets are all open.
    #[error(transparent)]
    Exhausted(#[from] SocketsExhausted),
    /// Binding the RTP socket failed.
    #[error("binding the media port: {0}")]
    Io(#[from] io::Error),
}

/// The driver's media sockets. The line decides when a call needs a port
/// and when it lets it go; binding one is the driver's (the only I/O a line
/// needs an answer to at once: the SDP names the port). A binding taken
/// here is the driver's until [`MediaPorts::release`].
pub trait MediaPorts {
    /// Binds a UDP port on `ip` for the call `call_id` and answers it.
    fn bind(&mut self, call_id: &str, ip: IpAddr) -> Result<SocketAddr, BindError>;
    /// The call `call_id` ended: its port closes.
    fn release(&mut self, call_id: &str);
    /// The fleet's socket ceiling and how many are open, for the
    /// `resource_exhausted` event.
    fn ceiling(&self) -> (usize, usize);
    /// Datagrams received on the call's port so far (for status).
    fn received(&self, call_id: &str) -> u64;
}

/// Media ports of a line that carries no calls: every bind is refused, so
/// a call says why instead of naming a port nobody listens on.
#[derive(Debug, Default)]
pub struct NoMedia;

impl MediaPorts for NoMedia {
    fn bind(&mut self, _: &str, _: IpAddr) -> Result<SocketAddr, BindError> {
        Err(BindError::Io(io::Error::new(
            io::ErrorKind::Unsupported,
            "this line has no media ports",
        )))
    }
    fn release(&mut self, _: &str) {}
    fn ceiling(&self) -> (usize, usize) {
        (0, 0)
    }
    fn received(&self, _: &str) -> u64 {
        0
    }
}

/// The sending side of one call's silent stream.
#[derive(Clone, Debug)]
pub struct RtpStream {
    ssrc: u32,
    seq: u16,
    timestamp: u32,
    sent: u64,
}

impl RtpStream {
    /// A stream with RTP source id `ssrc`; its first sequence number and timestamp derive from it.
    pub fn new(ssrc: u32) -> Self {
        RtpStream {
            ssrc,
            seq: (ssrc >> 16) as u16,
            timestamp: ssrc.rotate_left(7),
            sent: 0,
        }
    }

    /// Packets handed out so far.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// The next packet of silence with payload type `pt`.
    pub fn packet(&mut self, pt: u8) -> [u8; PACKET_LEN] {
        let mut p = [0u8; PACKET_LEN];
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
        self.sent += 1;
        p
    }
}

/// Where and with which payload type to send, while the call is
/// established and the peer's SDP asks for our audio.
pub fn destination(call: &Call) -> Option<(SocketAddr, u8)> {
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
        let mut rtp = RtpStream::new(0x1234_5678);
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
        assert_eq!(rtp.sent(), 3);
    }
}
