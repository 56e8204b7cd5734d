//! Stream framing for SIP over TCP/TLS (RFC 3261 18.3, RFC 5626 3.5.1).
//!
//! A push-bytes / pull-items state machine: feed whatever the socket returned
//! (partial or coalesced reads), then pull [`Frame`]s until `Ok(None)`.
//!
//! - A message ends after its header section plus `Content-Length` body bytes;
//!   on a stream a missing `Content-Length` is an error (RFC 3261 18.3), since
//!   nothing else says where the message ends.
//! - A message (or header section still without its end) larger than
//!   [`FramerConfig::max_message_size`] is an error, not unbounded buffering.
//! - Between messages, RFC 5626 keep-alives: a double CRLF (`\r\n\r\n`) is a
//!   [`Frame::Ping`], a single CRLF is a [`Frame::Pong`]. A lone CRLF is
//!   ambiguous until the next bytes arrive (pong, or the first half of a ping);
//!   [`KeepAliveRole`] decides: a client (which sends pings and waits for
//!   pongs) reports it as a pong at once; a server waits to see whether a second
//!   CRLF follows. CRLFs before a start line are thereby consumed as RFC 3261
//!   7.5 asks.
//!
//! After an error the stream has lost its framing and must be closed: every
//! later call returns the same error.
//!
//! Hand-written because the one crate for this (`sip-codec`) targets tokio 0.1;
//! this one stays sans-IO so `transport::codec` only wraps it.

use bytes::{Buf, Bytes, BytesMut};

/// What the stream carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// One complete SIP message (parse it with
    /// [`crate::message::Message::parse`]).
    Message(Bytes),
    /// RFC 5626 keep-alive ping (`\r\n\r\n`); answer with a pong.
    Ping,
    /// RFC 5626 keep-alive pong (`\r\n`).
    Pong,
}

impl Frame {
    /// The bytes to send for this frame.
    pub fn wire_bytes(&self) -> Bytes {
        match self {
            Frame::Message(b) => b.clone(),
            Frame::Ping => Bytes::from_static(b"\r\n\r\n"),
            Frame::Pong => Bytes::from_static(b"\r\n"),
        }
    }
}

/// Why the stream cannot be framed any more.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    /// The message (or its header section so far) exceeds the configured limit.
    #[error("message of at least {size} bytes exceeds the {limit}-byte limit")]
    TooLarge {
        /// Bytes known to belong to the message.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A message on a stream without Content-Length.
    #[error("message on a stream has no Content-Length header")]
    MissingContentLength,
    /// Content-Length is not a decimal number.
    #[error("Content-Length is not a decimal number")]
    BadContentLength,
    /// Two Content-Length headers disagree.
    #[error("Content-Length headers disagree")]
    ConflictingContentLength,
}

/// How to read a lone CRLF between messages (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeepAliveRole {
    /// We send pings and expect pongs: a lone CRLF is a pong at once.
    #[default]
    Client,
    /// We answer pings: a lone CRLF waits for a possible second one.
    Server,
}

/// Framer settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FramerConfig {
    /// Largest message accepted (header section plus body), in bytes.
    pub max_message_size: usize,
    /// How a lone CRLF is read.
    pub role: KeepAliveRole,
    /// How long a stream may hold part of a message: past it the stream is
    /// lost (see [`PARTIAL_MESSAGE_TIMEOUT`]).
    pub partial_message_timeout: std::time::Duration,
}

/// A stream that has held the start of a message this long without its end
/// is broken: garbage without the blank line that ends a header section, or
/// a peer trickling bytes (slowloris). Timer F (64*T1, 32 s) is the longest
/// any transaction waits for a response, so no answer can still be on its
/// way in those bytes; the stream is closed as lost and the next request
/// opens a new one, instead of sending requests into a stream whose
/// message boundaries are gone.
pub const PARTIAL_MESSAGE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(32);

impl Default for FramerConfig {
    fn default() -> Self {
        FramerConfig {
            max_message_size: 64 * 1024,
            role: KeepAliveRole::Client,
            partial_message_timeout: PARTIAL_MESSAGE_TIMEOUT,
        }
    }
}

/// Watches how long a stream's buffer has held part of a message. Sans-IO:
/// told what the buffer holds after each read, asked for its deadline.
#[derive(Debug, Clone, Default)]
pub struct PartialMessageGuard {
    since: Option<std::time::Instant>,
}

impl PartialMessageGuard {
    /// After a read: `pending` holds the bytes left over once every complete
    /// frame was taken. CRLFs between messages do not count.
    pub fn observe(&mut self, now: std::time::Instant, pending: &[u8]) {
        if pending.iter().all(|b| matches!(b, b'\r' | b'\n')) {
            self.since = None;
        } else if self.since.is_none() {
            self.since = Some(now);
        }
    }

    /// When the partial message held now becomes a broken stream.
    pub fn poll_timeout(&self, timeout: std::time::Duration) -> Option<std::time::Instant> {
        self.since.map(|s| s + timeout)
    }

    /// Whether the partial message has been held past `timeout` at `now`.
    pub fn expired(&self, now: std::time::Instant, timeout: std::time::Duration) -> bool {
        self.poll_timeout(timeout).is_some_and(|t| now >= t)
    }
}

/// The framing state machine. It owns no buffer: [`Framer::decode`] works on
/// the caller's `BytesMut` (what `tokio_util`'s codec hands over);
/// [`StreamFramer`] bundles one for callers that push byte slices.
#[derive(Debug, Clone)]
pub struct Framer {
    config: FramerConfig,
    /// How far the search for the end of the header section has got, so
    /// byte-by-byte input is not rescanned from the start each time.
    scanned: usize,
    /// Once the header section is complete: total message length.
    total: Option<usize>,
    failed: Option<FramingError>,
}

impl Framer {
    /// A framer with these settings.
    pub fn new(config: FramerConfig) -> Self {
        Framer {
            config,
            scanned: 0,
            total: None,
            failed: None,
        }
    }

    /// The settings.
    pub fn config(&self) -> &FramerConfig {
        &self.config
    }

    /// Takes the next frame off the front of `buf`, or `Ok(None)` when more
    /// bytes are needed.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, FramingError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let r = self.decode_inner(buf);
        if let Err(e) = &r {
            self.failed = Some(e.clone());
        }
        r
    }

    fn decode_inner(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, FramingError> {
        if self.total.is_none() && self.scanned == 0 {
            // At a message boundary: keep-alives.
            match (buf.first(), buf.get(1)) {
                (Some(b'\r'), Some(b'\n')) => {
                    if buf.get(2..4) == Some(b"\r\n") {
                        buf.advance(4);
                        return Ok(Some(Frame::Ping));
                    }
                    let decided = match buf.get(2) {
                        Some(b'\r') => buf.len() >= 4, // "\r\n\rX": X is not '\n'
                        Some(_) => true,
                        None => self.config.role == KeepAliveRole::Client,
                    };
                    if decided {
                        buf.advance(2);
                        return Ok(Some(Frame::Pong));
                    }
                    return Ok(None);
                }
                (Some(b'\r'), None) | (None, _) => return Ok(None),
                _ => {}
            }
        }
        let total = match self.total {
            Some(t) => t,
            None => {
                // Resume the search a few bytes back: the "\r\n\r\n" may straddle reads.
                let from = self.scanned.saturating_sub(3);
                match memchr::memmem::find(&buf[from..], b"\r\n\r\n") {
                    Some(i) => {
                        let header_len = from + i + 4;
                        let cl = content_length(&buf[..header_len])?;
                        // Summed in u64: a 10-digit Content-Length must not
                        // wrap a 32-bit usize into a small, accepted size.
                        let total = (header_len as u64).saturating_add(cl);
                        let limit = self.config.max_message_size;
                        let total = match usize::try_from(total) {
                            Ok(t) if t <= limit => t,
                            _ => {
                                return Err(FramingError::TooLarge {
                                    size: usize::try_from(total).unwrap_or(usize::MAX),
                                    limit,
                                })
                            }
                        };
                        self.total = Some(total);
                        total
                    }
                    None => {
                        if buf.len() > self.config.max_message_size {
                            return Err(FramingError::TooLarge {
                                size: buf.len(),
                                limit: self.config.max_message_size,
                            });
                        }
                        self.scanned = buf.len();
                        return Ok(None);
                    }
                }
            }
        };
        if buf.len() < total {
            buf.reserve(total - buf.len());
            return Ok(None);
        }
        self.total = None;
        self.scanned = 0;
        Ok(Some(Frame::Message(buf.split_to(total).freeze())))
    }
}

impl Default for Framer {
    fn default() -> Self {
        Framer::new(FramerConfig::default())
    }
}

/// Finds Content-Length (or its compact form `l`) in a complete header
/// section. Folded Content-Length lines are not supported (no sender folds a
/// number).
fn content_length(head: &[u8]) -> Result<u64, FramingError> {
    let mut found: Option<u64> = None;
    // Skip the start line.
    let mut pos = match memchr::memmem::find(head, b"\r\n") {
        Some(i) => i + 2,
        None => return Err(FramingError::MissingContentLength),
    };
    while pos < head.len() {
        let end = memchr::memmem::find(&head[pos..], b"\r\n").map_or(head.len(), |i| pos + i);
        let line = &head[pos..end];
        pos = end + 2;
        let Some(colon) = memchr::memchr(b':', line) else {
            continue;
        };
        let name = trim_ws(&line[..colon]);
        if !(name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l")) {
            continue;
        }
        let value = trim_ws(&line[colon + 1..]);
        if value.is_empty() || value.len() > 10 || !value.iter().all(u8::is_ascii_digit) {
            return Err(FramingError::BadContentLength);
        }
        let n = value.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
        match found {
            Some(prev) if prev != n => return Err(FramingError::ConflictingContentLength),
            _ => found = Some(n),
        }
    }
    found.ok_or(FramingError::MissingContentLength)
}

fn trim_ws(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// A [`Framer`] with its own buffer: push what the socket returned, pull
/// frames.
#[derive(Debug, Clone, Default)]
pub struct StreamFramer {
    framer: Framer,
    buf: BytesMut,
}

impl StreamFramer {
    /// A framer with these settings.
    pub fn new(config: FramerConfig) -> Self {
        StreamFramer {
            framer: Framer::new(config),
            buf: BytesMut::new(),
        }
    }
    /// Appends received bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }
    /// The next complete frame, `Ok(None)` when more bytes are needed.
    pub fn poll(&mut self) -> Result<Option<Frame>, FramingError> {
        self.framer.decode(&mut self.buf)
    }
    /// Bytes buffered and not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"OPTIONS sip:a@example.com SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nl: 5\r\n\r\nhello";
    const MSG2: &[u8] = b"SIP/2.0 200 OK\r\nContent-Length  :  0\r\nCall-ID: x\r\n\r\n";

    fn drain(f: &mut StreamFramer) -> Vec<Frame> {
        let mut out = vec![];
        while let Some(fr) = f.poll().unwrap() {
            out.push(fr);
        }
        out
    }

    #[test]
    fn byte_by_byte() {
        let mut f = StreamFramer::default();
        let mut frames = vec![];
        for b in MSG.iter().chain(MSG2) {
            f.push(&[*b]);
            frames.extend(drain(&mut f));
        }
        assert_eq!(
            frames,
            [
                Frame::Message(Bytes::from_static(MSG)),
                Frame::Message(Bytes::from_static(MSG2))
            ]
        );
        assert_eq!(f.buffered(), 0);
    }

    #[test]
    fn coalesced_with_keepalives() {
        let mut f = StreamFramer::default();
        let mut all = Vec::new();
        all.extend_from_slice(b"\r\n\r\n");
        all.extend_from_slice(MSG);
        all.extend_from_slice(b"\r\n");
        all.extend_from_slice(MSG2);
        all.extend_from_slice(MSG);
        all.extend_from_slice(b"\r\n\r\n\r\n");
        f.push(&all);
        assert_eq!(
            drain(&mut f),
            [
                Frame::Ping,
                Frame::Message(Bytes::from_static(MSG)),
                Frame::Pong,
                Frame::Message(Bytes::from_static(MSG2)),
                Frame::Message(Bytes::from_static(MSG)),
                Frame::Ping,
                Frame::Pong,
            ]
        );
    }

    #[test]
    fn ping_byte_by_byte_as_server_and_pong_as_client() {
        let mut server = StreamFramer::new(FramerConfig {
            role: KeepAliveRole::Server,
            ..FramerConfig::default()
        });
        let mut frames = vec![];
        for b in b"\r\n\r\n" {
            server.push(&[*b]);
            frames.extend(drain(&mut server));
        }
        assert_eq!(frames, [Frame::Ping]);
        // A lone CRLF followed by a message: pong, then the message.
        server.push(b"\r\n");
        assert_eq!(drain(&mut server), []);
        server.push(MSG);
        assert_eq!(
            drain(&mut server),
            [Frame::Pong, Frame::Message(Bytes::from_static(MSG))]
        );

        let mut client = StreamFramer::default();
        client.push(b"\r");
        assert_eq!(drain(&mut client), []);
        client.push(b"\n");
        assert_eq!(drain(&mut client), [Frame::Pong]);
    }

    /// A 10-digit Content-Length is summed in 64 bits: on a 32-bit target it
    /// must not wrap into a small size that passes the limit.
    #[test]
    fn a_huge_content_length_is_too_large_not_wrapped() {
        let mut f = StreamFramer::default();
        f.push(b"SIP/2.0 200 OK\r\nContent-Length: 4294967290\r\n\r\n");
        assert!(matches!(
            f.poll(),
            Err(FramingError::TooLarge { limit: 65536, .. })
        ));
        let mut f = StreamFramer::default();
        f.push(b"SIP/2.0 200 OK\r\nl: 9999999999\r\n\r\n");
        assert!(matches!(f.poll(), Err(FramingError::TooLarge { .. })));
    }

    #[test]
    fn the_partial_message_guard_counts_from_the_first_unfinished_byte() {
        let t0 = std::time::Instant::now();
        let ms = |n| t0 + std::time::Duration::from_millis(n);
        let timeout = PARTIAL_MESSAGE_TIMEOUT;
        let mut g = PartialMessageGuard::default();
        g.observe(ms(0), b"\r\n");
        assert_eq!(g.poll_timeout(timeout), None);
        g.observe(ms(10), b"SIP/2.0 200");
        g.observe(ms(5_000), b"SIP/2.0 200 OK\r\nVia");
        assert_eq!(g.poll_timeout(timeout), Some(ms(32_010)));
        assert!(!g.expired(ms(32_009), timeout));
        assert!(g.expired(ms(32_010), timeout));
        g.observe(ms(20_000), b"");
        assert_eq!(g.poll_timeout(timeout), None);
    }

    #[test]
    fn oversize_is_an_error_not_buffering() {
        let cfg = FramerConfig {
            max_message_size: 64,
            ..FramerConfig::default()
        };
        let mut f = StreamFramer::new(cfg);
        f.push(&[b'A'; 65]);
        assert_eq!(
            f.poll(),
            Err(FramingError::TooLarge {
                size: 65,
                limit: 64
            })
        );
        // Sticky: the stream is unusable.
        f.push(MSG);
        assert!(f.poll().is_err());

        let mut f = StreamFramer::new(cfg);
        f.push(b"INVITE sip:a@b SIP/2.0\r\nl: 100\r\n\r\n");
        assert_eq!(
            f.poll(),
            Err(FramingError::TooLarge {
                size: 134,
                limit: 64
            })
        );
    }

    #[test]
    fn missing_and_bad_content_length() {
        let mut f = StreamFramer::default();
        f.push(b"INVITE sip:a@b SIP/2.0\r\nVia: x\r\n\r\n");
        assert_eq!(f.poll(), Err(FramingError::MissingContentLength));
        let mut f = StreamFramer::default();
        f.push(b"INVITE sip:a@b SIP/2.0\r\nContent-Length: -1\r\n\r\n");
        assert_eq!(f.poll(), Err(FramingError::BadContentLength));
        let mut f = StreamFramer::default();
        f.push(b"INVITE sip:a@b SIP/2.0\r\nl: 1\r\nContent-Length: 2\r\n\r\n");
        assert_eq!(f.poll(), Err(FramingError::ConflictingContentLength));
    }

    #[test]
    fn body_split_across_reads() {
        let mut f = StreamFramer::default();
        let (a, b) = MSG.split_at(MSG.len() - 3);
        f.push(a);
        assert_eq!(f.poll(), Ok(None));
        f.push(b);
        assert_eq!(f.poll(), Ok(Some(Frame::Message(Bytes::from_static(MSG)))));
    }
}
