//! Minimal SDP offer/answer (RFC 3264) for one audio stream.
//!
//! A line only needs to say where it receives RTP, which of PCMU/PCMA it
//! speaks, and whether the stream is held (`a=sendonly` / `a=inactive`) or
//! not (`a=sendrecv`). Parsing and serializing use the `sdp-types` crate
//! (RFC 8866 grammar, small dependency tree); this module only adds the
//! offer/answer rules on top: codec choice, direction mirroring and the
//! `o=` version that must grow with every new offer (RFC 3264 8).

use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;
use sdp_types::{Attribute, Connection, Media, Origin, Session, Time};
use thiserror::Error;

/// Static RTP payload types a line offers (RFC 3551): PCMU then PCMA.
pub const PCMU: u8 = 0;
/// Static RTP payload type of G.711 A-law (RFC 3551).
pub const PCMA: u8 = 8;

/// The `Content-Type` of an SDP body.
pub const CONTENT_TYPE: &str = "application/sdp";

/// Media direction attribute (RFC 3264 5.1, 6.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// `a=sendrecv`: media both ways (the default).
    SendRecv,
    /// `a=sendonly`: we or the peer only send; puts the other side on hold.
    SendOnly,
    /// `a=recvonly`: only receive.
    RecvOnly,
    /// `a=inactive`: no media either way (hold).
    Inactive,
}

impl Direction {
    /// The attribute name without `a=`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    fn parse(s: &str) -> Option<Direction> {
        Some(match s {
            "sendrecv" => Direction::SendRecv,
            "sendonly" => Direction::SendOnly,
            "recvonly" => Direction::RecvOnly,
            "inactive" => Direction::Inactive,
            _ => return None,
        })
    }

    /// The direction an answer takes to an offer with this direction
    /// (RFC 3264 6.1): sendonly is answered recvonly and the reverse.
    pub fn answer(self) -> Direction {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            other => other,
        }
    }

    /// The peer has put us on hold: it does not want to receive.
    pub fn is_hold(self) -> bool {
        matches!(self, Direction::SendOnly | Direction::Inactive)
    }
}

/// Why a body is not a usable audio description.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SdpError {
    /// The body is not readable SDP; the text says where.
    #[error("malformed SDP: {0}")]
    Malformed(String),
    /// No `m=audio` line.
    #[error("SDP has no audio stream")]
    NoAudio,
    /// No `c=` line at session or media level.
    #[error("SDP audio stream has no connection address")]
    NoConnection,
    /// A `c=` address that cannot be parsed.
    #[error("SDP connection address {0:?} is not an IP address")]
    BadAddress(String),
    /// None of the offered payload types (listed) is one we support.
    #[error("no common codec (offered payload types {0:?})")]
    NoCommonCodec(Vec<u8>),
}

/// What we learn from the peer's SDP: where to send RTP and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteMedia {
    /// RTP destination; port 0 means the stream is rejected (RFC 3264 6).
    pub rtp: SocketAddr,
    /// Payload types of the `m=audio` line, in the peer's preference order.
    pub payloads: Vec<u8>,
    /// The stream's direction attribute (`sendrecv` when absent).
    pub direction: Direction,
    /// `o=` session version, to tell a new offer from a repeated one.
    pub version: u64,
}

impl RemoteMedia {
    /// Reads the first `m=audio` stream of `body`.
    pub fn parse(body: &[u8]) -> Result<RemoteMedia, SdpError> {
        let session = Session::parse(body).map_err(|e| SdpError::Malformed(e.to_string()))?;
        let media = session
            .medias
            .iter()
            .find(|m| m.media == "audio")
            .ok_or(SdpError::NoAudio)?;
        let conn = media
            .connections
            .first()
            .or(session.connection.as_ref())
            .ok_or(SdpError::NoConnection)?;
        let ip: IpAddr = conn
            .connection_address
            .split('/')
            .next()
            .unwrap_or_default()
            .parse()
            .map_err(|_| SdpError::BadAddress(conn.connection_address.clone()))?;
        let payloads = media
            .fmt
            .split_ascii_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        let attr_direction = |attrs: &[Attribute]| {
            attrs
                .iter()
                .find_map(|a| Direction::parse(&a.attribute.to_ascii_lowercase()))
        };
        let mut direction = attr_direction(&media.attributes)
            .or_else(|| attr_direction(&session.attributes))
            .unwrap_or(Direction::SendRecv);
        // RFC 3264 8.4 (and RFC 2543 practice): c=0.0.0.0 means hold.
        if ip.is_unspecified() && direction == Direction::SendRecv {
            direction = Direction::SendOnly;
        }
        Ok(RemoteMedia {
            rtp: SocketAddr::new(ip, media.port),
            payloads,
            direction,
            version: session.origin.sess_version,
        })
    }

    /// The first of our codecs the peer lists, in the peer's order.
    pub fn common_codec(&self) -> Result<u8, SdpError> {
        self.payloads
            .iter()
            .copied()
            .find(|p| *p == PCMU || *p == PCMA)
            .ok_or_else(|| SdpError::NoCommonCodec(self.payloads.clone()))
    }
}

/// Our side of the session: where we receive RTP, and the `o=` line that
/// stays for the whole call (its version grows with each new description).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalMedia {
    /// Our RTP address, written in `c=` and `m=`.
    pub rtp: SocketAddr,
    /// `o=` session id, fixed for the call.
    pub session_id: u64,
    /// `o=` session version: starts at 1 and grows with each new description.
    pub version: u64,
    /// A description was produced: the next one gets a new version.
    described: bool,
}

impl LocalMedia {
    /// Our session at `rtp`, with `o=` version 1.
    pub fn new(rtp: SocketAddr, session_id: u64) -> Self {
        LocalMedia {
            rtp,
            session_id,
            version: 1,
            described: false,
        }
    }

    /// An offer for PCMU and PCMA with `direction`; every description after
    /// the first gets a new version (RFC 3264 8).
    pub fn offer(&mut self, direction: Direction) -> Bytes {
        self.next_version();
        self.describe(&[PCMU, PCMA], direction)
    }

    fn next_version(&mut self) {
        if self.described {
            self.version += 1;
        }
        self.described = true;
    }

    /// An answer to `offer`: the first common codec, the mirrored direction
    /// (or `inactive` when we hold), a new version.
    pub fn answer(&mut self, offer: &RemoteMedia, hold: bool) -> Result<Bytes, SdpError> {
        let codec = offer.common_codec()?;
        let direction = match (hold, offer.direction.answer()) {
            (false, d) => d,
            (true, Direction::SendRecv | Direction::SendOnly) => Direction::SendOnly,
            (true, _) => Direction::Inactive,
        };
        self.next_version();
        Ok(self.describe(&[codec], direction))
    }

    fn describe(&self, codecs: &[u8], direction: Direction) -> Bytes {
        let ip = self.rtp.ip();
        let mut origin = Origin::with_ip_addr(self.session_id, self.version, ip);
        origin.set_username("sipfleet");
        let mut session = Session::new(origin, "sipfleet");
        session.connection = Some(Connection::from_ip_addr(ip));
        session.times.push(Time::new(0, 0));
        let fmt = codecs
            .iter()
            .map(u8::to_string)
            .collect::<Vec<_>>()
            .join(" ");
        let mut media = Media::new(
            sdp_types::MediaType::Audio,
            self.rtp.port(),
            sdp_types::TransportProto::RtpAvp,
            fmt,
        );
        for c in codecs {
            let name = if *c == PCMU { "PCMU/8000" } else { "PCMA/8000" };
            media.add_attribute_with_value("rtpmap", format!("{c} {name}"));
        }
        media.add_attribute_from_str(direction.as_str());
        session.medias.push(media);
        let mut out = Vec::with_capacity(256);
        // Writing into a Vec cannot fail.
        let _ = session.write(&mut out);
        Bytes::from(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> LocalMedia {
        LocalMedia::new("192.0.2.10:40000".parse().unwrap(), 42)
    }

    #[test]
    fn offer_parses_back_with_both_codecs() {
        let mut l = local();
        let offer = l.offer(Direction::SendRecv);
        let text = std::str::from_utf8(&offer).unwrap();
        assert!(text.contains("m=audio 40000 RTP/AVP 0 8\r\n"), "{text}");
        let r = RemoteMedia::parse(&offer).unwrap();
        assert_eq!(r.rtp, "192.0.2.10:40000".parse().unwrap());
        assert_eq!(r.payloads, vec![0, 8]);
        assert_eq!(r.direction, Direction::SendRecv);
        assert_eq!(r.version, 1);
    }

    #[test]
    fn hold_offer_bumps_version_and_says_sendonly() {
        let mut l = local();
        l.offer(Direction::SendRecv);
        let hold = RemoteMedia::parse(&l.offer(Direction::SendOnly)).unwrap();
        assert_eq!(hold.direction, Direction::SendOnly);
        assert_eq!(hold.version, 2);
        assert!(hold.direction.is_hold());
    }

    #[test]
    fn answer_picks_first_common_codec_and_mirrors_direction() {
        let body = "v=0\r\no=- 1 7 IN IP4 198.51.100.1\r\ns=-\r\nc=IN IP4 198.51.100.1\r\nt=0 0\r\nm=audio 5004 RTP/AVP 18 8 0\r\na=sendonly\r\n";
        let offer = RemoteMedia::parse(body.as_bytes()).unwrap();
        assert_eq!(offer.version, 7);
        let mut l = local();
        let ans = RemoteMedia::parse(&l.answer(&offer, false).unwrap()).unwrap();
        assert_eq!(ans.payloads, vec![PCMA]);
        assert_eq!(ans.direction, Direction::RecvOnly);
        let none = "v=0\r\no=- 1 1 IN IP4 198.51.100.1\r\ns=-\r\nc=IN IP4 198.51.100.1\r\nt=0 0\r\nm=audio 5004 RTP/AVP 18\r\n";
        let offer = RemoteMedia::parse(none.as_bytes()).unwrap();
        assert_eq!(
            l.answer(&offer, false),
            Err(SdpError::NoCommonCodec(vec![18]))
        );
    }

    #[test]
    fn zero_address_is_hold_and_garbage_is_an_error() {
        let body = "v=0\r\no=- 1 3 IN IP4 0.0.0.0\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\nm=audio 5004 RTP/AVP 0\r\n";
        let r = RemoteMedia::parse(body.as_bytes()).unwrap();
        assert_eq!(r.direction, Direction::SendOnly);
        assert!(RemoteMedia::parse(b"hello").is_err());
        let video = "v=0\r\no=- 1 3 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=video 5004 RTP/AVP 96\r\n";
        assert_eq!(RemoteMedia::parse(video.as_bytes()), Err(SdpError::NoAudio));
    }
}
