//! Small typed values: methods, status codes, CSeq, authentication headers,
//! Event / Subscription-State, Retry-After, Date.

use std::fmt;

use super::lex::{is_token, parse_u32, quoted_end, trim, unquote, ListIter, SemiIter};
use super::params::{header_params, Params};

/// A SIP method; extension methods keep their token.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    /// `INVITE`: starts a call (RFC 3261).
    Invite,
    /// `ACK`: confirms a final response to INVITE.
    Ack,
    /// `BYE`: ends a call.
    Bye,
    /// `CANCEL`: cancels a pending INVITE.
    Cancel,
    /// `REGISTER`: binds the line's address to its contact.
    Register,
    /// `OPTIONS`: asks capabilities; also used as a keep-alive.
    Options,
    /// `INFO`: mid-call information (RFC 6086).
    Info,
    /// `UPDATE`: changes session parameters before the answer (RFC 3311).
    Update,
    /// `PRACK`: acknowledges a reliable provisional response (RFC 3262).
    Prack,
    /// `SUBSCRIBE`: asks for event notifications (RFC 6665).
    Subscribe,
    /// `NOTIFY`: carries an event notification (RFC 6665).
    Notify,
    /// `REFER`: asks the peer to call a third party (RFC 3515).
    Refer,
    /// `MESSAGE`: instant message (RFC 3428).
    Message,
    /// `PUBLISH`: publishes event state (RFC 3903).
    Publish,
    /// Any other method token (case-sensitive, as RFC 3261 7.1 says).
    Extension(Box<str>),
}

impl Method {
    /// Parses a method token. Method names are case-sensitive.
    pub fn parse(s: &str) -> Result<Method, &'static str> {
        Ok(match s {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "REGISTER" => Method::Register,
            "OPTIONS" => Method::Options,
            "INFO" => Method::Info,
            "UPDATE" => Method::Update,
            "PRACK" => Method::Prack,
            "SUBSCRIBE" => Method::Subscribe,
            "NOTIFY" => Method::Notify,
            "REFER" => Method::Refer,
            "MESSAGE" => Method::Message,
            "PUBLISH" => Method::Publish,
            other if is_token(other) => Method::Extension(other.into()),
            _ => return Err("method is not a token"),
        })
    }

    /// The method token.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Register => "REGISTER",
            Method::Options => "OPTIONS",
            Method::Info => "INFO",
            Method::Update => "UPDATE",
            Method::Prack => "PRACK",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Refer => "REFER",
            Method::Message => "MESSAGE",
            Method::Publish => "PUBLISH",
            Method::Extension(s) => s,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A response status code, 100..=699.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StatusCode(u16);

impl StatusCode {
    /// 100 Trying.
    pub const TRYING: StatusCode = StatusCode(100);
    /// 180 Ringing.
    pub const RINGING: StatusCode = StatusCode(180);
    /// 183 Session Progress.
    pub const SESSION_PROGRESS: StatusCode = StatusCode(183);
    /// 200 OK.
    pub const OK: StatusCode = StatusCode(200);
    /// 202 Accepted.
    pub const ACCEPTED: StatusCode = StatusCode(202);
    /// 400 Bad Request.
    pub const BAD_REQUEST: StatusCode = StatusCode(400);
    /// 401 Unauthorized: a `WWW-Authenticate` challenge.
    pub const UNAUTHORIZED: StatusCode = StatusCode(401);
    /// 403 Forbidden.
    pub const FORBIDDEN: StatusCode = StatusCode(403);
    /// 404 Not Found.
    pub const NOT_FOUND: StatusCode = StatusCode(404);
    /// 405 Method Not Allowed.
    pub const METHOD_NOT_ALLOWED: StatusCode = StatusCode(405);
    /// 407 Proxy Authentication Required: a `Proxy-Authenticate` challenge.
    pub const PROXY_AUTHENTICATION_REQUIRED: StatusCode = StatusCode(407);
    /// 408 Request Timeout.
    pub const REQUEST_TIMEOUT: StatusCode = StatusCode(408);
    /// 415 Unsupported Media Type.
    pub const UNSUPPORTED_MEDIA_TYPE: StatusCode = StatusCode(415);
    /// 416 Unsupported URI Scheme.
    pub const UNSUPPORTED_URI_SCHEME: StatusCode = StatusCode(416);
    /// 420 Bad Extension.
    pub const BAD_EXTENSION: StatusCode = StatusCode(420);
    /// 423 Interval Too Brief: the Expires asked is below the server's `Min-Expires`.
    pub const INTERVAL_TOO_BRIEF: StatusCode = StatusCode(423);
    /// 480 Temporarily Unavailable.
    pub const TEMPORARILY_UNAVAILABLE: StatusCode = StatusCode(480);
    /// 481 Call/Transaction Does Not Exist.
    pub const CALL_DOES_NOT_EXIST: StatusCode = StatusCode(481);
    /// 483 Too Many Hops.
    pub const TOO_MANY_HOPS: StatusCode = StatusCode(483);
    /// 486 Busy Here.
    pub const BUSY_HERE: StatusCode = StatusCode(486);
    /// 487 Request Terminated: the INVITE was cancelled.
    pub const REQUEST_TERMINATED: StatusCode = StatusCode(487);
    /// 500 Server Internal Error.
    pub const SERVER_INTERNAL_ERROR: StatusCode = StatusCode(500);
    /// 503 Service Unavailable.
    pub const SERVICE_UNAVAILABLE: StatusCode = StatusCode(503);
    /// 504 Server Time-out.
    pub const SERVER_TIMEOUT: StatusCode = StatusCode(504);
    /// 600 Busy Everywhere.
    pub const BUSY_EVERYWHERE: StatusCode = StatusCode(600);
    /// 603 Decline.
    pub const DECLINE: StatusCode = StatusCode(603);

    /// A status code from a number; `None` outside 100..=699.
    pub fn new(code: u16) -> Option<StatusCode> {
        (100..=699).contains(&code).then_some(StatusCode(code))
    }
    /// The number.
    pub fn as_u16(self) -> u16 {
        self.0
    }
    /// 1xx.
    pub fn is_provisional(self) -> bool {
        self.0 < 200
    }
    /// 2xx.
    pub fn is_success(self) -> bool {
        (200..300).contains(&self.0)
    }
    /// 200..=699.
    pub fn is_final(self) -> bool {
        self.0 >= 200
    }
    /// The RFC's reason phrase, or `""` for codes without one.
    pub fn canonical_reason(self) -> &'static str {
        match self.0 {
            100 => "Trying",
            180 => "Ringing",
            181 => "Call Is Being Forwarded",
            182 => "Queued",
            183 => "Session Progress",
            200 => "OK",
            202 => "Accepted",
            300 => "Multiple Choices",
            301 => "Moved Permanently",
            302 => "Moved Temporarily",
            305 => "Use Proxy",
            380 => "Alternative Service",
            400 => "Bad Request",
            401 => "Unauthorized",
            402 => "Payment Required",
            403 => "Forbidden",
            404 => "Not Found",
            405 => "Method Not Allowed",
            406 => "Not Acceptable",
            407 => "Proxy Authentication Required",
            408 => "Request Timeout",
            410 => "Gone",
            413 => "Request Entity Too Large",
            414 => "Request-URI Too Long",
            415 => "Unsupported Media Type",
            416 => "Unsupported URI Scheme",
            420 => "Bad Extension",
            421 => "Extension Required",
            423 => "Interval Too Brief",
            480 => "Temporarily Unavailable",
            481 => "Call/Transaction Does Not Exist",
            482 => "Loop Detected",
            483 => "Too Many Hops",
            484 => "Address Incomplete",
            485 => "Ambiguous",
            486 => "Busy Here",
            487 => "Request Terminated",
            488 => "Not Acceptable Here",
            489 => "Bad Event",
            491 => "Request Pending",
            493 => "Undecipherable",
            500 => "Server Internal Error",
            501 => "Not Implemented",
            502 => "Bad Gateway",
            503 => "Service Unavailable",
            504 => "Server Time-out",
            505 => "Version Not Supported",
            513 => "Message Too Large",
            600 => "Busy Everywhere",
            603 => "Decline",
            604 => "Does Not Exist Anywhere",
            606 => "Not Acceptable",
            _ => "",
        }
    }
}

impl fmt::Display for StatusCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The CSeq header: sequence number and method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    /// Sequence number (less than 2^31, RFC 3261 8.1.1.5).
    pub seq: u32,
    /// Method.
    pub method: Method,
}

impl CSeq {
    /// Parses `1*DIGIT LWS Method`.
    pub fn parse(s: &str) -> Result<CSeq, &'static str> {
        let s = trim(s);
        let end = s
            .bytes()
            .position(|b| !b.is_ascii_digit())
            .ok_or("no method")?;
        let seq = parse_u32(&s[..end])
            .filter(|n| *n < 1 << 31)
            .ok_or("sequence number is not a number below 2^31")?;
        let method = trim(&s[end..]);
        if end == 0 || method.len() == s.len() - end {
            return Err("no white space between number and method");
        }
        Ok(CSeq {
            seq,
            method: Method::parse(method)?,
        })
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

/// A challenge (WWW-/Proxy-Authenticate) or credentials (Authorization /
/// Proxy-Authorization): `scheme` then comma-separated auth-params. Values are
/// returned without their quotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthHeader<'a> {
    scheme: &'a str,
    params: &'a str,
}

impl<'a> AuthHeader<'a> {
    /// Parses `auth-scheme LWS auth-param *(COMMA auth-param)`; unknown schemes
    /// are kept (RFC 4475 3.3.7) as long as the params are well-formed or the
    /// rest is a single token68-like blob.
    pub fn parse(s: &'a str) -> Result<AuthHeader<'a>, &'static str> {
        let s = trim(s);
        let end = s.bytes().position(super::lex::is_ws).unwrap_or(s.len());
        let scheme = &s[..end];
        if !is_token(scheme) {
            return Err("bad auth scheme");
        }
        let params = trim(&s[end..]);
        for p in ListIter::new(params) {
            if p.is_empty() {
                continue;
            }
            let bare = p.trim_end_matches('=');
            let ok = match p.split_once('=') {
                // token68 blob (`abc==`) or a lone token.
                _ if is_token(bare) => true,
                Some((n, v)) => {
                    let v = trim(v);
                    is_token(trim(n))
                        && (is_token(v)
                            || (v.starts_with('"') && quoted_end(v.as_bytes()) == Some(v.len())))
                }
                None => false,
            };
            if !ok {
                return Err("bad auth-param");
            }
        }
        Ok(AuthHeader { scheme, params })
    }
    /// The scheme (`Digest`).
    pub fn scheme(&self) -> &'a str {
        self.scheme
    }
    /// The raw parameter text.
    pub fn params_str(&self) -> &'a str {
        self.params
    }
    /// Iterates `(name, value)` with quotes removed (escapes untouched).
    pub fn params(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        ListIter::new(self.params).filter_map(|p| {
            let (n, v) = p.split_once('=')?;
            Some((trim(n), unquote(trim(v))))
        })
    }
    /// One parameter's value (name compared case-insensitively).
    pub fn param(&self, name: &str) -> Option<&'a str> {
        self.params()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }
}

/// A value with parameters: Event (`presence;id=1`), Subscription-State
/// (`active;expires=60`), Content-Type (`application/sdp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValueWithParams<'a> {
    value: &'a str,
    params: Params<'a>,
}

impl<'a> ValueWithParams<'a> {
    pub(crate) fn parse(s: &'a str, slash_ok: bool) -> Result<Self, &'static str> {
        let s = trim(s);
        let mut it = SemiIter::new(s);
        let value = trim(it.next().unwrap_or(""));
        let ok = match value.split_once('/') {
            Some((a, b)) if slash_ok => is_token(trim(a)) && is_token(trim(b)),
            _ => is_token(value),
        };
        if !ok {
            return Err("bad value token");
        }
        let params = header_params(&s[value.len()..])?;
        Ok(ValueWithParams {
            value,
            params: Params::new(params),
        })
    }
    /// The main value (event package, subscription state, media type).
    pub fn value(&self) -> &'a str {
        self.value
    }
    /// The parameters.
    pub fn params(&self) -> Params<'a> {
        self.params
    }
}

/// Retry-After: `delta-seconds [comment] *(; params)`; returns the seconds.
pub(crate) fn parse_retry_after(s: &str) -> Result<u32, &'static str> {
    let s = trim(s);
    let end = s
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(s.len());
    let secs = parse_u32(&s[..end]).ok_or("delta-seconds is not a 32-bit number")?;
    let mut rest = trim(&s[end..]);
    if rest.starts_with('(') {
        let close = rest.rfind(')').ok_or("unterminated comment")?;
        rest = &rest[close + 1..];
    }
    header_params(rest)?;
    Ok(secs)
}

/// Checks an RFC 1123 date in GMT (`Sat, 13 Nov 2010 23:29:00 GMT`).
pub(crate) fn validate_date(s: &str) -> Result<(), &'static str> {
    let s = trim(s);
    let b = s.as_bytes();
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let ok = b.len() == 29
        && s.is_ascii()
        && DAYS.contains(&&s[..3])
        && &s[3..5] == ", "
        && digits(5..7)
        && b[7] == b' '
        && MONTHS.contains(&&s[8..11])
        && b[11] == b' '
        && digits(12..16)
        && b[16] == b' '
        && digits(17..19)
        && b[19] == b':'
        && digits(20..22)
        && b[22] == b':'
        && digits(23..25)
        && &s[25..] == " GMT";
    if ok {
        Ok(())
    } else {
        Err("not an RFC 1123 date in GMT")
    }
}
