//! The message trace: every SIP message a fleet sends or receives, as
//! operators read SIP (SIPp's `-trace_msg`, baresip's `sip_trace`), and
//! optionally as a pcap file that Wireshark opens.
//!
//! Connections hand each message to a [`Trace`] (cheap to clone: a channel
//! sender); one thread formats and writes, through a buffer flushed
//! whenever the queue runs dry, so a busy fleet does not pay one write(2)
//! per message and a quiet one shows each message at once.
//!
//! Nothing secret goes into a trace: SIP messages never carry the password
//! (Authorization holds the digest response, which is what a registrar
//! checks and what a capture on the wire shows anyway).
//!
//! pcap: each message is written as one IPv4 (or IPv6) packet with a UDP
//! header between the flow's real addresses and ports, whatever the flow's
//! transport (TCP and TLS segments would need sequence numbers and TLS the
//! plaintext, which a capture never has): Wireshark's SIP dissector reads
//! them, and the text trace says which transport carried each. The pcap
//! file format (a 24-byte file header, a 16-byte header per packet) and the
//! IP/UDP headers are written here by hand: the `pcap-file` crate (2.0)
//! would pull a second major version of `syn` and `thiserror` into a
//! 2-core build for 40 bytes of fixed headers.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use sipfleet_protocol::route::Transport;

use crate::output_thread::{Output, OutputThread, Render};

/// Which way a message went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// We sent it.
    Sent,
    /// We received it.
    Received,
}

/// One traced message.
#[derive(Clone, Debug)]
pub struct TraceRecord {
    /// Wall-clock time (the text form and pcap).
    pub wall: SystemTime,
    /// The actors' clock.
    pub at: Instant,
    /// Which way.
    pub direction: Direction,
    /// The flow's transport.
    pub transport: Transport,
    /// Our address.
    pub local: SocketAddr,
    /// The peer's address.
    pub remote: SocketAddr,
    /// The message's bytes.
    pub bytes: Bytes,
}

/// The form of a trace output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceFormat {
    /// Readable text, one block per message.
    Text,
    /// A pcap capture (LINKTYPE_RAW: IPv4/IPv6 packets).
    Pcap,
}

/// Where connections put messages. Cheap to clone: a channel sender.
#[derive(Clone)]
pub struct Trace {
    out: OutputThread<TraceRecord>,
}

impl std::fmt::Debug for Trace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Trace")
    }
}

/// Why a trace cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("cannot write the trace: {0}")]
    /// The trace file cannot be written.
    Io(#[from] std::io::Error),
}

/// pcap's LINKTYPE_RAW: each packet starts with its IPv4 or IPv6 header.
const LINKTYPE_RAW: u32 = 101;

/// The pcap file header (microsecond timestamps, snap length 65535).
fn pcap_file_header() -> [u8; 24] {
    let mut h = [0u8; 24];
    h[0..4].copy_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    h[4..6].copy_from_slice(&2u16.to_le_bytes());
    h[6..8].copy_from_slice(&4u16.to_le_bytes());
    h[16..20].copy_from_slice(&65_535u32.to_le_bytes());
    h[20..24].copy_from_slice(&LINKTYPE_RAW.to_le_bytes());
    h
}

impl Trace {
    /// A trace written to each of `outputs` by a thread of its own; `start`
    /// is time 0 of the `t=` offsets (the event stream's origin).
    pub fn spawn(
        outputs: Vec<(Box<dyn Write + Send>, TraceFormat)>,
        start: Instant,
    ) -> Result<Trace, TraceError> {
        let mut sinks = Vec::new();
        for (out, format) in outputs {
            let render: Render<TraceRecord> = match format {
                TraceFormat::Text => {
                    Box::new(move |r, w| w.write_all(text_block(r, start).as_bytes()))
                }
                TraceFormat::Pcap => Box::new(write_pcap_packet),
            };
            let mut output = Output::new(out, render);
            if format == TraceFormat::Pcap {
                output.writer.write_all(&pcap_file_header())?;
            }
            sinks.push(output);
        }
        Ok(Trace {
            out: OutputThread::spawn("sipfleet-trace", sinks)?,
        })
    }

    /// Traces one message. Never blocks on I/O.
    pub fn record(&self, record: TraceRecord) {
        self.out.send(record);
    }

    /// Why outputs stopped, if any did: a trace that could not be written
    /// must not go unnoticed.
    pub fn failures(&self) -> Vec<String> {
        self.out.failures()
    }

    /// Waits until everything recorded so far is written and flushed.
    pub fn flush(&self) {
        self.out.flush();
    }
}

/// One pcap record: its 16-byte header and the message as an IP/UDP packet.
fn write_pcap_packet(r: &TraceRecord, w: &mut dyn Write) -> std::io::Result<()> {
    let ts = r.wall.duration_since(UNIX_EPOCH).unwrap_or_default();
    let packet = ip_udp_packet(r);
    let len = packet.len() as u32;
    let mut h = [0u8; 16];
    h[0..4].copy_from_slice(&(ts.as_secs() as u32).to_le_bytes());
    h[4..8].copy_from_slice(&ts.subsec_micros().to_le_bytes());
    h[8..12].copy_from_slice(&len.to_le_bytes());
    h[12..16].copy_from_slice(&len.to_le_bytes());
    w.write_all(&h)?;
    w.write_all(&packet)
}

/// The text form: a header line with the wall-clock time (UTC), the offset
/// since the fleet started (the `t_ms` of the event stream), direction,
/// transport, size and addresses, then the message as it went on the wire.
pub fn text_block(r: &TraceRecord, start: Instant) -> String {
    let t = r.at.saturating_duration_since(start).as_millis();
    let (verb, arrow) = match r.direction {
        Direction::Sent => ("sent", "->"),
        Direction::Received => ("received", "<-"),
    };
    let body = String::from_utf8_lossy(&r.bytes);
    let mut block = format!(
        "----- {} t={t}ms\n{} {verb} ({} bytes) {} {arrow} {}\n\n{}",
        utc(r.wall),
        r.transport.as_str().to_ascii_uppercase(),
        r.bytes.len(),
        r.local,
        r.remote,
        body
    );
    if !block.ends_with('\n') {
        block.push('\n');
    }
    block.push('\n');
    block
}

/// `2026-12-03 15:50:00.123456` (UTC), without a date crate: days to a
/// civil date by Howard Hinnant's algorithm.
fn utc(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{:06}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_micros()
    )
}

/// The message as one IP packet with a UDP header, source and destination
/// as on the wire.
fn ip_udp_packet(r: &TraceRecord) -> Vec<u8> {
    let (src, dst) = match r.direction {
        Direction::Sent => (r.local, r.remote),
        Direction::Received => (r.remote, r.local),
    };
    let payload = &r.bytes[..r.bytes.len().min(65_000)];
    let udp_len = (8 + payload.len()) as u16;
    let mut udp = Vec::with_capacity(udp_len as usize);
    udp.extend_from_slice(&src.port().to_be_bytes());
    udp.extend_from_slice(&dst.port().to_be_bytes());
    udp.extend_from_slice(&udp_len.to_be_bytes());
    udp.extend_from_slice(&[0, 0]); // checksum 0: not computed (IPv4 allows it)
    udp.extend_from_slice(payload);
    match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let total = (20 + udp.len()) as u16;
            let mut ip = vec![0x45, 0];
            ip.extend_from_slice(&total.to_be_bytes());
            ip.extend_from_slice(&[0, 0, 0x40, 0, 64, 17, 0, 0]);
            ip.extend_from_slice(&s.octets());
            ip.extend_from_slice(&d.octets());
            let sum = checksum(&ip);
            ip[10..12].copy_from_slice(&sum.to_be_bytes());
            ip.extend_from_slice(&udp);
            ip
        }
        (s, d) => {
            let to16 = |ip: IpAddr| match ip {
                IpAddr::V6(v6) => v6.octets(),
                IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
            };
            let mut ip = vec![0x60, 0, 0, 0];
            ip.extend_from_slice(&(udp.len() as u16).to_be_bytes());
            ip.extend_from_slice(&[17, 64]);
            ip.extend_from_slice(&to16(s));
            ip.extend_from_slice(&to16(d));
            ip.extend_from_slice(&udp);
            ip
        }
    }
}

/// The IPv4 header checksum (RFC 791).
fn checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = header
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn record(direction: Direction) -> TraceRecord {
        TraceRecord {
            wall: UNIX_EPOCH + Duration::from_micros(1_796_311_800_123_456),
            at: Instant::now(),
            direction,
            transport: Transport::Tcp,
            local: "127.0.0.1:5070".parse().unwrap(),
            remote: "127.0.21.11:5060".parse().unwrap(),
            bytes: Bytes::from_static(b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 0\r\n\r\n"),
        }
    }

    #[test]
    fn text_blocks_say_when_which_way_and_what() {
        let r = record(Direction::Sent);
        let block = text_block(&r, r.at);
        assert!(
            block.starts_with("----- 2026-12-03 15:30:00.123456 t=0ms\n"),
            "{block}"
        );
        assert!(
            block.contains("TCP sent (46 bytes) 127.0.0.1:5070 -> 127.0.21.11:5060\n\nOPTIONS"),
            "{block}"
        );
        let r = record(Direction::Received);
        assert!(text_block(&r, r.at)
            .contains("TCP received (46 bytes) 127.0.0.1:5070 <- 127.0.21.11:5060"));
    }

    #[test]
    fn pcap_packets_are_valid_ipv4_udp() {
        let r = record(Direction::Received);
        let p = ip_udp_packet(&r);
        assert_eq!(p[0], 0x45);
        assert_eq!(u16::from_be_bytes([p[2], p[3]]) as usize, p.len());
        assert_eq!(checksum(&p[..20]), 0, "header checksum verifies");
        assert_eq!(
            &p[12..16],
            &[127, 0, 21, 11],
            "received: the SBC is the source"
        );
        assert_eq!(u16::from_be_bytes([p[20], p[21]]), 5060);
        assert_eq!(u16::from_be_bytes([p[22], p[23]]), 5070);
        assert_eq!(&p[28..], &r.bytes[..]);
    }

    #[test]
    fn a_trace_writes_text_and_pcap_and_flushes_on_demand() {
        let dir = tempfile::tempdir().unwrap();
        let text = dir.path().join("t.txt");
        let pcap = dir.path().join("t.pcap");
        let start = Instant::now();
        let trace = Trace::spawn(
            vec![
                (
                    Box::new(std::fs::File::create(&text).unwrap()),
                    TraceFormat::Text,
                ),
                (
                    Box::new(std::fs::File::create(&pcap).unwrap()),
                    TraceFormat::Pcap,
                ),
            ],
            start,
        )
        .unwrap();
        trace.record(record(Direction::Sent));
        trace.record(record(Direction::Received));
        trace.flush();
        let t = std::fs::read_to_string(&text).unwrap();
        assert_eq!(t.matches("OPTIONS sip:a@b").count(), 2, "{t}");
        let bytes = std::fs::read(&pcap).unwrap();
        let u32_at = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().unwrap());
        assert_eq!(u32_at(0), 0xa1b2_c3d4, "pcap magic, microseconds");
        assert_eq!(u32_at(20), LINKTYPE_RAW);
        let mut at = 24;
        let mut n = 0;
        while at < bytes.len() {
            let len = u32_at(at + 8) as usize;
            assert_eq!(u32_at(at), 1_796_311_800, "seconds of the wall clock");
            assert_eq!(u32_at(at + 4), 123_456);
            assert_eq!(bytes[at + 16], 0x45, "an IPv4 packet");
            at += 16 + len;
            n += 1;
        }
        assert_eq!((n, at), (2, bytes.len()));
    }

    #[test]
    fn an_output_that_fails_says_why() {
        let full = std::fs::OpenOptions::new().write(true).open("/dev/full");
        let Ok(full) = full else {
            return; // no /dev/full here
        };
        let r = record(Direction::Sent);
        let trace = Trace::spawn(vec![(Box::new(full), TraceFormat::Text)], r.at).unwrap();
        trace.record(r);
        trace.flush();
        let failures = trace.failures();
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert!(failures[0].contains("No space"), "{failures:?}");
    }
}
