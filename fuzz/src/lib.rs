//! The bodies of sipfleet's fuzz targets, as plain functions.
//!
//! Each `fuzz_targets/<name>.rs` (libFuzzer, nightly, `scripts/fuzz`) calls the
//! function of the same name here, and `tests/replay.rs` (stable, `cargo test`,
//! CI) calls it on every file of `corpus/<name>/`, so a crash found by fuzzing
//! and added to the corpus is replayed by every CI run.
//!
//! A target fails by panicking: either sipfleet panicked on the input, or an
//! oracle below (an `assert!`) found two things that should agree and do not.

use std::net::SocketAddr;

use bytes::Bytes;
use sipfleet_protocol::auth::{Challenge, DigestClient, RequestInfo, Secret};
use sipfleet_protocol::call::{authorize, read_challenge, IdGen};
use sipfleet_protocol::config::{
    parse_auto, parse_lines, parse_xml, ConfigBuilder, Location, ParsedSource, RawParam,
};
use sipfleet_protocol::framing::{Frame, FramerConfig, FramingError, KeepAliveRole, StreamFramer};
use sipfleet_protocol::message::{HeaderName, Message, Method, Request, Response};
use sipfleet_protocol::sdp::{Direction, LocalMedia, RemoteMedia};

/// A target's body: panics when the input shows a bug.
pub type Target = fn(&[u8]);

/// Every target, by name (the directory of its corpus and its libFuzzer binary).
pub const TARGETS: &[(&str, Target)] = &[
    ("message", message),
    ("framing", framing),
    ("config_cfg", config_cfg),
    ("config_xml", config_xml),
    ("challenge", challenge),
    ("sdp", sdp),
];

// ---------------------------------------------------------------------------
// SIP messages

/// One datagram through [`Message::parse`]. When it is accepted:
///
/// - `to_bytes` re-parses to an equal message (`PartialEq`: start line,
///   headers other than Content-Length, body), and serializing that gives
///   the same bytes again (a fixed point);
/// - the serialized message, sent on a stream, is framed back as exactly
///   itself (the stream framer and the serializer agree on Content-Length
///   and the end of the header section);
/// - every typed accessor runs without panicking, the O(1) reads (branch,
///   tags) agree with parsing the header, URIs are equivalent to themselves;
/// - a 401/407 goes through the UA's challenge path (see [`challenge`]);
///   an SDP body through [`sdp`].
pub fn message(data: &[u8]) {
    let Ok(m) = Message::parse(data.to_vec()) else {
        return;
    };
    let wire = m.to_bytes();
    let again = Message::parse(wire.clone())
        .unwrap_or_else(|e| panic!("serialized message does not parse: {e}\n{wire:?}"));
    assert_eq!(again, m, "re-parsed message differs\n{wire:?}");
    assert_eq!(again.to_bytes(), wire, "serialization is not a fixed point");

    let mut framer = StreamFramer::new(FramerConfig {
        max_message_size: usize::MAX,
        role: KeepAliveRole::Server,
        ..FramerConfig::default()
    });
    framer.push(&wire);
    assert_eq!(
        framer.poll(),
        Ok(Some(Frame::Message(wire.clone()))),
        "the serialized message is not framed as itself\n{wire:?}"
    );
    assert_eq!(framer.buffered(), 0);

    read_everything(&m);
    let h = m.headers();
    assert_eq!(h.branch().ok(), h.top_via().ok().map(|v| v.branch()));
    assert_eq!(h.from_tag().ok(), h.from().ok().map(|a| a.tag()));
    assert_eq!(h.to_tag().ok(), h.to().ok().map(|a| a.tag()));
    assert_eq!(again.headers().branch().ok(), h.branch().ok());

    if let Some(resp) = m.as_response() {
        answer_challenge(resp);
    }
    let is_sdp = h
        .content_type()
        .ok()
        .flatten()
        .is_some_and(|ct| ct.value().eq_ignore_ascii_case("application/sdp"));
    if is_sdp {
        sdp(m.body());
    }
}

/// Calls every typed accessor (they parse on demand and must not panic).
fn read_everything(m: &Message) {
    let h = m.headers();
    for f in h.iter() {
        let _ = (f.name, f.raw_name.len());
    }
    for v in h.vias().flatten() {
        let _ = (v.transport(), v.host(), v.port(), v.branch(), v.received());
        let _ = (v.rport(), v.maddr(), v.ttl(), v.params().iter().count());
    }
    for a in [h.from(), h.to()].into_iter().flatten() {
        let _ = (a.display_name(), a.tag(), a.expires(), a.q());
        self_equivalent(a.uri());
    }
    let name_addrs = h
        .contacts()
        .chain(h.routes())
        .chain(h.record_routes())
        .chain(h.call_info());
    for a in name_addrs.flatten() {
        let _ = (a.display_name(), a.tag(), a.expires(), a.q());
        let _ = a.params().iter().count();
        self_equivalent(a.uri());
    }
    let _ = h.contact_is_star();
    let _ = (h.call_id(), h.cseq(), h.expires(), h.min_expires());
    let _ = (h.max_forwards(), h.content_length(), h.retry_after());
    for v in [h.content_type(), h.event(), h.subscription_state()]
        .into_iter()
        .flatten()
        .flatten()
    {
        let _ = (v.value(), v.params().iter().count());
    }
    let auth = h
        .www_authenticate()
        .chain(h.proxy_authenticate())
        .chain(h.authorization())
        .chain(h.proxy_authorization());
    for a in auth.flatten() {
        let _ = (a.scheme(), a.params().count(), a.param("nonce"));
    }
    for name in [HeaderName::WwwAuthenticate, HeaderName::ProxyAuthenticate] {
        for v in h.get_all(name) {
            let _ = Challenge::parse(v);
        }
    }
    let _ = (
        h.allow().count(),
        h.supported().count(),
        h.require().count(),
    );
    let _ = h.user_agent();
    if let Some(r) = m.as_request() {
        let _ = r.method().as_str();
        if let Ok(u) = r.uri() {
            self_equivalent(&u);
        }
    }
    if let Some(r) = m.as_response() {
        let s = r.status();
        let _ = (s.is_provisional(), s.is_success(), s.is_final(), r.reason());
    }
}

/// RFC 3261 19.1.4 URI comparison is reflexive.
fn self_equivalent(u: &sipfleet_protocol::message::Uri<'_>) {
    let _ = (u.scheme(), u.user(), u.password(), u.host(), u.port());
    let _ = (u.params().iter().count(), u.headers(), u.opaque());
    assert!(
        u.equivalent(u),
        "URI not equivalent to itself: {:?}",
        u.as_str()
    );
}

// ---------------------------------------------------------------------------
// Stream framing

/// Stream framing with arbitrary chunking. Input: byte 0 picks the framer
/// settings (bit 0: keep-alive role, bits 1-3: size limit, 64 KiB or
/// 64..4096 bytes), byte 1 the number of chunk sizes (0-15), then that many
/// chunk sizes (1-256 bytes each, cycled; none: one byte at a time), then
/// the stream.
///
/// The stream is framed twice, pushed whole and pushed in those chunks:
/// both give the same frames (a client's ping may arrive as two pongs when
/// cut between its CRLFs: the same bytes) and end the same way (as many
/// bytes left over, or the same error; only which error comes first may
/// differ when one is "too large"). What was framed plus what is left is
/// the input, and every framed message goes through [`Message::parse`].
pub fn framing(data: &[u8]) {
    let [settings, ncuts, rest @ ..] = data else {
        return;
    };
    let ncuts = usize::from(ncuts % 16);
    if rest.len() < ncuts {
        return;
    }
    let (cuts, stream) = rest.split_at(ncuts);
    let config = FramerConfig {
        role: if settings & 1 == 0 {
            KeepAliveRole::Client
        } else {
            KeepAliveRole::Server
        },
        max_message_size: [65536, 64, 128, 256, 512, 1024, 2048, 4096]
            [usize::from((settings >> 1) & 7)],
        ..FramerConfig::default()
    };

    let whole = frame(config, std::iter::once(stream));
    let chunked = frame(config, chunks(stream, cuts));
    for out in [&whole, &chunked] {
        if let Ok(left) = out.end {
            let framed: Vec<u8> = out.frames.iter().flat_map(|f| f.wire_bytes()).collect();
            assert_eq!(framed.len() + left, stream.len(), "bytes lost");
            assert_eq!(&framed[..], &stream[..framed.len()], "bytes changed");
        }
    }
    assert_eq!(
        normalized(&whole.frames, config.role),
        normalized(&chunked.frames, config.role),
        "frames depend on the chunking {cuts:?}"
    );
    match (&whole.end, &chunked.end) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "left-over bytes depend on the chunking"),
        (Err(a), Err(b)) => assert!(
            std::mem::discriminant(a) == std::mem::discriminant(b)
                || matches!(a, FramingError::TooLarge { .. })
                || matches!(b, FramingError::TooLarge { .. }),
            "whole: {a:?}, chunked: {b:?}"
        ),
        (a, b) => panic!("outcome depends on the chunking: whole {a:?}, chunked {b:?}"),
    }
    for f in &whole.frames {
        if let Frame::Message(b) = f {
            if let Ok(m) = Message::parse(b.clone()) {
                read_everything(&m);
            }
        }
    }
}

struct Framed {
    frames: Vec<Frame>,
    /// Bytes still buffered at the end, or the error that stopped framing.
    end: Result<usize, FramingError>,
}

fn frame<'a>(config: FramerConfig, pieces: impl Iterator<Item = &'a [u8]>) -> Framed {
    let mut framer = StreamFramer::new(config);
    let mut frames = Vec::new();
    for piece in pieces {
        framer.push(piece);
        loop {
            match framer.poll() {
                Ok(Some(f)) => frames.push(f),
                Ok(None) => break,
                Err(e) => {
                    // The error sticks.
                    assert_eq!(framer.poll(), Err(e.clone()));
                    return Framed {
                        frames,
                        end: Err(e),
                    };
                }
            }
        }
    }
    Framed {
        end: Ok(framer.buffered()),
        frames,
    }
}

/// `stream` cut into pieces of the sizes `cuts` (cycled; 1 byte each when empty).
fn chunks<'a>(stream: &'a [u8], cuts: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
    let mut sizes = cuts.iter().map(|&c| usize::from(c) + 1).cycle();
    let mut pos = 0;
    std::iter::from_fn(move || {
        if pos >= stream.len() {
            return None;
        }
        let end = (pos + sizes.next().unwrap_or(1)).min(stream.len());
        let piece = &stream[pos..end];
        pos = end;
        Some(piece)
    })
}

/// A client reports a lone CRLF as a pong at once, so the two halves of a
/// ping cut between reads are two pongs: compare them as such.
fn normalized(frames: &[Frame], role: KeepAliveRole) -> Vec<Frame> {
    let mut out = Vec::with_capacity(frames.len());
    for f in frames {
        match f {
            Frame::Ping if role == KeepAliveRole::Client => {
                out.push(Frame::Pong);
                out.push(Frame::Pong);
            }
            other => out.push(other.clone()),
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Configuration

/// Poly `key="value"` configuration text (invalid UTF-8 replaced, as a file
/// read by a tolerant editor would be). Parsing never panics; every
/// assignment written back as `key="value"` (quotes and backslashes escaped)
/// parses to the same key and value; building never panics, and a source
/// with syntax errors never builds (errors are errors).
pub fn config_cfg(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let source = parse_lines(&text, "fuzz.cfg");
    check_locations(&source, &text);
    let rendered: String = source
        .params
        .iter()
        .map(|p| {
            let v = p.value.replace('\\', "\\\\").replace('"', "\\\"");
            format!("{}=\"{v}\"\n", p.key)
        })
        .collect();
    let again = parse_lines(&rendered, "rendered.cfg");
    assert!(
        again.errors.is_empty(),
        "written-back assignments do not parse: {:?}",
        again.errors
    );
    assert_eq!(
        key_values(&again.params),
        key_values(&source.params),
        "assignments do not survive being written back"
    );
    build(source);
}

/// Poly XML configuration (`<polycomConfig>` attributes). Parsing never
/// panics (the format sniffing of `parse_auto` neither); building never
/// panics, and a document with errors never builds.
pub fn config_xml(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let source = parse_xml(&text, "fuzz.xml");
    check_locations(&source, &text);
    let _ = parse_auto(&text, "fuzz.auto");
    build(source);
}

fn key_values(params: &[RawParam]) -> Vec<(&str, &str)> {
    params
        .iter()
        .map(|p| (p.key.as_str(), p.value.as_str()))
        .collect()
}

/// Errors and parameters name a line of the text.
fn check_locations(source: &ParsedSource, text: &str) {
    let lines = text.split('\n').count() as u32;
    let locations = source
        .params
        .iter()
        .map(|p| &p.location)
        .chain(source.errors.iter().filter_map(error_location));
    for l in locations {
        if let Location::File { line, .. } = l {
            assert!(
                (1..=lines).contains(line),
                "line {line} of a {lines}-line text"
            );
        }
    }
    for e in &source.errors {
        let _ = e.to_string();
    }
}

fn error_location(e: &sipfleet_protocol::config::ConfigError) -> Option<&Location> {
    use sipfleet_protocol::config::ConfigError as E;
    match e {
        E::Syntax { location, .. } => Some(location),
        _ => None,
    }
}

/// Builds the configuration and checks what the model documents.
fn build(source: ParsedSource) {
    let had_errors = !source.errors.is_empty();
    let mut builder = ConfigBuilder::new();
    builder.add_source(source);
    match builder.build() {
        Ok(cfg) => {
            assert!(!had_errors, "a source with errors was accepted");
            let _ = format!("{cfg:?}");
            for w in cfg.lines.windows(2) {
                assert!(w[0].index < w[1].index, "lines out of order");
            }
            for l in &cfg.lines {
                assert!(
                    !l.address.value.is_empty(),
                    "line {} has no address",
                    l.index
                );
                assert!(!l.servers.is_empty(), "line {} has no server", l.index);
                assert!(cfg.line(l.index).is_some());
                assert!(!l.first_hops().is_empty());
                let _ = (l.auth_username(), l.digest_client());
            }
            for w in &cfg.warnings {
                let _ = w.to_string();
            }
        }
        Err(e) => {
            assert!(!e.errors.is_empty(), "refused without an error");
            let _ = e.to_string();
        }
    }
}

// ---------------------------------------------------------------------------
// Digest challenges

/// A `WWW-Authenticate` / `Proxy-Authenticate` value. [`Challenge::parse`]
/// never panics; an accepted challenge is answered, and the answer's realm,
/// nonce, opaque and algorithm parse back as they were (quoting round
/// trip). Without line breaks, the value also goes the UA's whole way: a 401
/// carrying it is parsed, its challenge read and answered on a REGISTER,
/// and that REGISTER re-parses with one Authorization echoing the challenge.
pub fn challenge(data: &[u8]) {
    let value = String::from_utf8_lossy(data);
    if let Ok(c) = Challenge::parse(&value) {
        let _ = c.preferred_qop();
        let mut digest = DigestClient::new("1001", Secret::new("pw1001"));
        let info = RequestInfo {
            method: "REGISTER",
            uri: "sip:lab.sipfleet.test",
            body: b"",
        };
        let kind = sipfleet_protocol::auth::ChallengeKind::Www;
        let answer = digest.authorize(kind, &c, &info, "0a4f113b");
        let echoed = Challenge::parse(&answer.to_string())
            .unwrap_or_else(|e| panic!("our Authorization does not parse: {e}\n{answer}"));
        assert_eq!(echoed.realm, c.realm);
        assert_eq!(echoed.nonce, c.nonce);
        assert_eq!(echoed.opaque, c.opaque);
        assert_eq!(echoed.algorithm, c.algorithm);
        assert_eq!(
            echoed.qop,
            c.preferred_qop().into_iter().collect::<Vec<_>>()
        );
    }
    if value.contains(['\r', '\n']) {
        return;
    }
    let raw = format!(
        "SIP/2.0 401 Unauthorized\r\n\
         Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1\r\n\
         From: <sip:1001@lab.sipfleet.test>;tag=a\r\n\
         To: <sip:1001@lab.sipfleet.test>;tag=b\r\n\
         Call-ID: fuzz@sipfleet\r\n\
         CSeq: 1 REGISTER\r\n\
         WWW-Authenticate: {value}\r\n\
         Content-Length: 0\r\n\r\n"
    );
    if let Ok(Message::Response(resp)) = Message::parse(raw.into_bytes()) {
        answer_challenge(&resp);
    }
}

/// What a line does with a 401/407: read the first usable challenge, answer
/// it on a request, send that. The request must parse and carry exactly one
/// answer that echoes the challenge.
fn answer_challenge(resp: &Response) {
    let Some(held) = read_challenge(resp) else {
        return;
    };
    let mut req = Request::new(Method::Register, "sip:lab.sipfleet.test").expect("valid URI");
    let h = req.headers_mut();
    h.push(
        HeaderName::Via,
        "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK2",
    );
    h.push(HeaderName::From, "<sip:1001@lab.sipfleet.test>;tag=a");
    h.push(HeaderName::To, "<sip:1001@lab.sipfleet.test>");
    h.push(HeaderName::CallId, "fuzz@sipfleet");
    h.push(HeaderName::CSeq, "2 REGISTER");
    let mut digest = DigestClient::new("1001", Secret::new("pw1001"));
    authorize(&mut req, &mut digest, &held, &mut IdGen::new(7));
    let wire = req.to_bytes();
    let back = Message::parse(wire.clone())
        .unwrap_or_else(|e| panic!("REGISTER answering a challenge does not parse: {e}\n{wire:?}"));
    let name = match held.0 {
        sipfleet_protocol::auth::ChallengeKind::Www => HeaderName::Authorization,
        sipfleet_protocol::auth::ChallengeKind::Proxy => HeaderName::ProxyAuthorization,
    };
    let answers: Vec<&str> = back.headers().get_all(name).collect();
    assert_eq!(answers.len(), 1, "{wire:?}");
    let echoed = Challenge::parse(answers[0])
        .unwrap_or_else(|e| panic!("sent Authorization does not parse: {e}\n{wire:?}"));
    assert_eq!(echoed.realm, held.1.realm);
    assert_eq!(echoed.nonce, held.1.nonce);
    assert_eq!(echoed.opaque, held.1.opaque);
}

// ---------------------------------------------------------------------------
// SDP

/// An SDP body from the peer. [`RemoteMedia::parse`] never panics; when it
/// names a codec we speak, our answer (held or not) and a new offer parse
/// back with our address, the chosen codec and the direction RFC 3264 asks.
pub fn sdp(data: &[u8]) {
    let Ok(remote) = RemoteMedia::parse(data) else {
        return;
    };
    let _ = remote.direction.is_hold();
    let local_addr: SocketAddr = "192.0.2.10:40000".parse().expect("address");
    let mut local = LocalMedia::new(local_addr, 42);
    let codec = remote.common_codec().ok();
    for hold in [false, true] {
        let answer = local.answer(&remote, hold);
        let Some(codec) = codec else {
            assert!(answer.is_err(), "answered without a common codec");
            continue;
        };
        let answer: Bytes = answer.expect("common codec, so an answer");
        let back = RemoteMedia::parse(&answer)
            .unwrap_or_else(|e| panic!("our answer does not parse: {e}\n{answer:?}"));
        let expected = match (hold, remote.direction.answer()) {
            (false, d) => d,
            (true, Direction::SendRecv | Direction::SendOnly) => Direction::SendOnly,
            (true, _) => Direction::Inactive,
        };
        assert_eq!(back.rtp, local_addr);
        assert_eq!(back.payloads, vec![codec]);
        assert_eq!(back.direction, expected);
        assert_eq!(back.version, local.version);
    }
    let offer = local.offer(remote.direction);
    let back = RemoteMedia::parse(&offer).expect("our offer parses");
    assert_eq!(back.direction, remote.direction);
    assert_eq!(back.rtp, local_addr);
}
