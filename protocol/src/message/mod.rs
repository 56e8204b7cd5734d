//! SIP messages (RFC 3261 7, 20, 25): parser, typed header access, building
//! API and serializer.
//!
//! # Parsing
//! [`Message::parse`] takes the received datagram or framed stream message as
//! [`Bytes`] and indexes it: header lines become spans of the shared buffer
//! (no copy, no `String` per header), folded lines (LWS continuation) are
//! joined (the only case that copies). The headers a user agent relies on
//! (Via, From, To, Call-ID, CSeq, Contact, Route, Record-Route, Max-Forwards,
//! Expires, Min-Expires, Content-Length, Retry-After, Date) are validated
//! while parsing, so malformed input is a [`ParseError`] naming the header and
//! the part that is wrong; the top Via branch, the From/To tags, Call-ID,
//! CSeq and Expires are recorded on the way, so reading them is O(1). Other
//! headers (authentication, Allow, Supported, Require...) are checked by
//! their typed accessors when read. A request whose CSeq method differs from
//! its method is rejected. `Content-Length` larger than the body is an error;
//! extra octets after the body are ignored; a message without
//! `Content-Length` takes the rest as body (datagram rules). Missing headers
//! are not a parse error (a UA answers those with 400 after asking
//! [`Headers::call_id`] and friends).
//!
//! Two paths give the same result: a fast path for well-formed messages (one
//! SSE2 pass for the line ends, one walk per value: `fast`, `scan`,
//! `fast_values`) and the careful parser (`parse`), which takes everything
//! the fast path declines, gives the errors, and is the reference the fast
//! path is tested against (`paths_tests`). Figures: `benches/parsers`.
//!
//! ```
//! use sipfleet_protocol::message::{Message, Method};
//! let raw = "REGISTER sip:example.com SIP/2.0\r\n\
//!            Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776;rport\r\n\
//!            From: <sip:alice@example.com>;tag=456248\r\n\
//!            To: <sip:alice@example.com>\r\n\
//!            Call-ID: 843817637684230@998sdasdh09\r\n\
//!            CSeq: 1826 REGISTER\r\n\
//!            Contact: <sip:alice@192.0.2.1:5060>;expires=3600\r\n\
//!            Content-Length: 0\r\n\r\n";
//! let msg = Message::parse(raw.as_bytes().to_vec()).unwrap();
//! let h = msg.headers();
//! assert_eq!(h.top_via().unwrap().branch(), Some("z9hG4bK776"));
//! assert_eq!(h.branch().unwrap(), Some("z9hG4bK776")); // O(1)
//! assert_eq!(h.from_tag().unwrap(), Some("456248"));
//! assert_eq!(h.to_tag().unwrap(), None);
//! assert_eq!(h.call_id().unwrap(), "843817637684230@998sdasdh09");
//! assert_eq!(h.cseq().unwrap().method, Method::Register);
//! assert_eq!(h.contacts().next().unwrap().unwrap().expires(), Some(3600));
//! ```
//!
//! Typed accessors live on [`Headers`] and return borrowed views ([`Via`],
//! [`NameAddr`], [`Uri`], [`Params`], [`AuthHeader`], [`ValueWithParams`]) that
//! parse on demand without allocating. Required headers return
//! `Result<T, ParseError>` ([`ParseError::MissingHeader`] when absent), optional
//! ones `Result<Option<T>, ParseError>`, lists an iterator of results.
//!
//! # Building
//! [`Request::new`] then [`Headers::push`] / [`Headers::prepend`] /
//! [`Headers::set`] / [`Headers::remove`], [`Request::set_body`], and
//! [`Request::to_bytes`]. [`Response::for_request`] copies Via, From, To,
//! Call-ID and CSeq as RFC 3261 8.2.6 says and adds a To tag when asked.
//! Serialization always writes a `Content-Length` computed from the body (in
//! place of the first one present, others dropped), and its output re-parses to
//! an equal message (`PartialEq` compares start line, headers other than
//! Content-Length, and body).
//!
//! The grammar code is hand-written rather than taken from a crate: `rsip`
//! and `rsipstack` copy every header into owned `String`s, accept several of
//! the RFC 4475 invalid messages, and report errors as strings; sipfleet needs
//! spans of the received buffer, typed errors naming the header and part, and
//! RFC 4475 behaviour (`protocol/tests/rfc4475.rs`). `benches/parsers`
//! compares the speed of the three on the same corpus.
//!
//! Performance notes: [`Message::parse`] has a fast path for well-formed
//! messages and falls back to the careful parser (the reference, which also
//! produces every error) whenever the fast path meets anything unusual, so
//! both accept the same messages with the same result. The fast path finds
//! the line ends with one SIMD LF search per line (recording them, so the
//! blank line needs no separate search), checks the whole header section
//! once for UTF-8 and once for a lone CR (as many CRs as lines), matches
//! known header names eight bytes at a time after a jump on the first letter
//! (no byte-by-byte scan of the name), and validates the UA headers in the
//! same pass (one-element lists skip the list splitter; URIs are checked for
//! bad bytes and `@` with one table lookup per byte). The parser records the
//! top Via branch, the From/To tags, the Call-ID, the CSeq and the Expires it
//! validated, so [`Headers::branch`], [`Headers::from_tag`],
//! [`Headers::to_tag`], [`Headers::call_id`], [`Headers::cseq`] and
//! [`Headers::expires`] are O(1) on a parsed message (any change to the
//! headers drops that record). Measured with callgrind
//! (`benches/parsers/examples/count.rs`) on the 658-byte REGISTER of the
//! bench: ~13.8k instructions to parse, ~2.2k more to read branch, tags,
//! Call-ID, CSeq, first Contact and Expires (it was ~18.8k + ~3.9k). Where
//! the rest goes: the From/To/Contact/Via validators (~6.2k; each value is
//! still walked several times: `<`/`>` search, URI scan, host, params), the
//! per-line work around them (~2.6k: trimming, entries, small validators,
//! dispatch), line ends, name matching, UTF-8 and lone-CR checks, the
//! entries allocation and moving the message out (~3.9k), the start line and
//! Request-URI (~0.9k); on the read side the Contact re-parse (~1.4k) and
//! the UTF-8 checks of the spans handed out.

mod addr;
mod error;
mod fast;
mod fast_values;
mod headers;
mod lex;
mod name;
mod params;
mod parse;
mod received;
mod scan;
mod simd;
mod uri;
mod values;
mod via;

use std::fmt::Write as _;

use bytes::{BufMut, Bytes, BytesMut};

pub use addr::NameAddr;
pub use error::ParseError;
pub use headers::{HeaderField, Headers};
pub use name::HeaderName;
pub use params::Params;
pub use uri::{Scheme, Uri};
pub use values::{AuthHeader, CSeq, Method, StatusCode, ValueWithParams};
pub use via::Via;

use headers::{Entry, Text};

/// Removes the surrounding quotes of a quoted-string (escapes are kept).
pub fn unquote(s: &str) -> &str {
    lex::unquote(s)
}

/// Splits a comma-separated header value into elements, not splitting inside
/// quoted strings or `<...>`.
pub fn split_list(s: &str) -> impl Iterator<Item = &str> {
    lex::ListIter::new(s).filter(|e| !e.is_empty())
}

/// A SIP request or response.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// A request: it has a method and a Request-URI.
    Request(Request),
    /// A response: it has a status code.
    Response(Response),
}

impl Message {
    /// Parses one message (a datagram, or one item from
    /// [`crate::framing`]). The returned message borrows `buf`'s storage.
    pub fn parse(buf: impl Into<Bytes>) -> Result<Message, ParseError> {
        parse::parse(buf.into())
    }
    /// The headers.
    pub fn headers(&self) -> &Headers {
        match self {
            Message::Request(r) => &r.headers,
            Message::Response(r) => &r.headers,
        }
    }
    /// The headers, to change them.
    pub fn headers_mut(&mut self) -> &mut Headers {
        match self {
            Message::Request(r) => &mut r.headers,
            Message::Response(r) => &mut r.headers,
        }
    }
    /// The body (a slice of the received buffer).
    pub fn body(&self) -> &Bytes {
        match self {
            Message::Request(r) => &r.body,
            Message::Response(r) => &r.body,
        }
    }
    /// The request, if this is one.
    pub fn as_request(&self) -> Option<&Request> {
        match self {
            Message::Request(r) => Some(r),
            Message::Response(_) => None,
        }
    }
    /// The response, if this is one.
    pub fn as_response(&self) -> Option<&Response> {
        match self {
            Message::Response(r) => Some(r),
            Message::Request(_) => None,
        }
    }
    /// Serializes (Content-Length computed from the body).
    pub fn to_bytes(&self) -> Bytes {
        match self {
            Message::Request(r) => r.to_bytes(),
            Message::Response(r) => r.to_bytes(),
        }
    }
}

impl From<Request> for Message {
    fn from(r: Request) -> Self {
        Message::Request(r)
    }
}
impl From<Response> for Message {
    fn from(r: Response) -> Self {
        Message::Response(r)
    }
}

/// A SIP request.
#[derive(Debug, Clone)]
pub struct Request {
    method: Method,
    uri: Text,
    headers: Headers,
    body: Bytes,
}

impl Request {
    /// A request with no headers and no body. Errors when `uri` is not a valid
    /// Request-URI.
    pub fn new(method: Method, uri: &str) -> Result<Request, ParseError> {
        parse::validate_request_uri(uri)?;
        Ok(Request {
            method,
            uri: Text::Owned(uri.into()),
            headers: Headers::default(),
            body: Bytes::new(),
        })
    }
    /// The method.
    pub fn method(&self) -> &Method {
        &self.method
    }
    /// The Request-URI as written.
    pub fn uri_str(&self) -> &str {
        self.headers.text(&self.uri)
    }
    /// The Request-URI, parsed (it was validated when parsed or set).
    pub fn uri(&self) -> Result<Uri<'_>, ParseError> {
        Uri::parse(self.uri_str()).map_err(ParseError::RequestUri)
    }
    /// Replaces the Request-URI.
    pub fn set_uri(&mut self, uri: &str) -> Result<(), ParseError> {
        parse::validate_request_uri(uri)?;
        self.uri = Text::Owned(uri.into());
        Ok(())
    }
    /// The headers.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }
    /// The headers, to change them.
    pub fn headers_mut(&mut self) -> &mut Headers {
        &mut self.headers
    }
    /// The body.
    pub fn body(&self) -> &Bytes {
        &self.body
    }
    /// Sets the body (Content-Length follows when serialized; set
    /// Content-Type yourself).
    pub fn set_body(&mut self, body: impl Into<Bytes>) {
        self.body = body.into();
    }
    /// Serializes into `out`.
    pub fn write_to(&self, out: &mut BytesMut) {
        out.reserve(self.headers.buf.bytes().len() + self.body.len() + 64);
        out.put_slice(self.method.as_str().as_bytes());
        out.put_u8(b' ');
        out.put_slice(self.uri_str().as_bytes());
        out.put_slice(b" SIP/2.0\r\n");
        write_headers_and_body(&self.headers, &self.body, out);
    }
    /// Serializes to bytes.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::new();
        self.write_to(&mut out);
        out.freeze()
    }
}

impl PartialEq for Request {
    fn eq(&self, o: &Self) -> bool {
        self.method == o.method
            && self.uri_str() == o.uri_str()
            && same_headers(&self.headers, &o.headers)
            && self.body == o.body
    }
}

/// A SIP response.
#[derive(Debug, Clone)]
pub struct Response {
    status: StatusCode,
    reason: Text,
    headers: Headers,
    body: Bytes,
}

impl Response {
    /// A response with the code's canonical reason phrase, no headers.
    pub fn new(status: StatusCode) -> Response {
        Response {
            status,
            reason: Text::Static(status.canonical_reason()),
            headers: Headers::default(),
            body: Bytes::new(),
        }
    }

    /// A response to `req` (RFC 3261 8.2.6.2): Via lines (same order), From,
    /// To, Call-ID and CSeq copied; when `to_tag` is given and the request's To
    /// has no tag, `;tag=to_tag` is added to To (give one for every response but
    /// 100 Trying). Record-Route is copied for 101..=299 answers to INVITE and
    /// SUBSCRIBE (RFC 3261 12.1.1).
    pub fn for_request(req: &Request, status: StatusCode, to_tag: Option<&str>) -> Response {
        let mut resp = Response::new(status);
        let h = &req.headers;
        for e in &h.entries {
            let copy = match e.name {
                HeaderName::Via | HeaderName::From | HeaderName::CallId | HeaderName::CSeq => true,
                HeaderName::RecordRoute => {
                    (101..=299).contains(&status.as_u16())
                        && matches!(req.method, Method::Invite | Method::Subscribe)
                }
                HeaderName::To => {
                    let value = h.text(&e.value);
                    let mut v = value.to_owned();
                    if let Some(tag) = to_tag {
                        let has_tag = NameAddr::parse(value).is_ok_and(|a| a.tag().is_some());
                        if !has_tag {
                            let _ = write!(v, ";tag={tag}");
                        }
                    }
                    resp.headers.push(HeaderName::To, v);
                    false
                }
                _ => false,
            };
            if copy {
                resp.headers.push(e.name, h.text(&e.value));
            }
        }
        resp
    }
    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }
    /// The reason phrase.
    pub fn reason(&self) -> &str {
        self.headers.text(&self.reason)
    }
    /// Replaces the reason phrase; errors on CR or LF.
    pub fn set_reason(&mut self, reason: &str) -> Result<(), ParseError> {
        if reason.contains(['\r', '\n']) {
            return Err(ParseError::Build {
                what: "reason phrase",
                reason: "contains CR or LF",
            });
        }
        self.reason = Text::Owned(reason.into());
        Ok(())
    }
    /// The headers.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }
    /// The headers, to change them.
    pub fn headers_mut(&mut self) -> &mut Headers {
        &mut self.headers
    }
    /// The body.
    pub fn body(&self) -> &Bytes {
        &self.body
    }
    /// Sets the body.
    pub fn set_body(&mut self, body: impl Into<Bytes>) {
        self.body = body.into();
    }
    /// Serializes into `out`.
    pub fn write_to(&self, out: &mut BytesMut) {
        out.reserve(self.headers.buf.bytes().len() + self.body.len() + 64);
        let mut line = String::with_capacity(16);
        let _ = write!(line, "SIP/2.0 {} ", self.status);
        out.put_slice(line.as_bytes());
        out.put_slice(self.reason().as_bytes());
        out.put_slice(b"\r\n");
        write_headers_and_body(&self.headers, &self.body, out);
    }
    /// Serializes to bytes.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::new();
        self.write_to(&mut out);
        out.freeze()
    }
}

impl PartialEq for Response {
    fn eq(&self, o: &Self) -> bool {
        self.status == o.status
            && self.reason() == o.reason()
            && same_headers(&self.headers, &o.headers)
            && self.body == o.body
    }
}

fn same_headers(a: &Headers, b: &Headers) -> bool {
    let a = a.iter().filter(|f| f.name != HeaderName::ContentLength);
    let b = b.iter().filter(|f| f.name != HeaderName::ContentLength);
    a.eq(b)
}

fn write_headers_and_body(h: &Headers, body: &Bytes, out: &mut BytesMut) {
    let mut cl_written = false;
    let num = body.len().to_string();
    for Entry {
        name,
        raw_name,
        value,
        ..
    } in &h.entries
    {
        let value = if *name == HeaderName::ContentLength {
            if cl_written {
                continue;
            }
            cl_written = true;
            num.as_str()
        } else {
            h.text(value)
        };
        let raw_name = h.text(raw_name);
        out.put_slice(
            if raw_name.is_empty() {
                name.as_str()
            } else {
                raw_name
            }
            .as_bytes(),
        );
        out.put_slice(b": ");
        out.put_slice(value.as_bytes());
        out.put_slice(b"\r\n");
    }
    if !cl_written {
        out.put_slice(b"Content-Length: ");
        out.put_slice(num.as_bytes());
        out.put_slice(b"\r\n");
    }
    out.put_slice(b"\r\n");
    out.put_slice(body);
}

#[cfg(test)]
mod paths_tests;
#[cfg(test)]
mod tests;
