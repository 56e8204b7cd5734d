//! Header names: an enum for the headers sipfleet reads, compact forms included.

use std::fmt;

/// A header name. Known names (and their RFC 3261 / RFC 3265 compact forms) map
/// to a variant; anything else is [`HeaderName::Other`] and keeps its spelling in
/// the message (see [`super::Headers::get_other`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HeaderName {
    /// `Accept`.
    Accept,
    /// `Allow`.
    Allow,
    /// `Allow-Events`.
    AllowEvents,
    /// `Authorization`.
    Authorization,
    /// `Call-ID`.
    CallId,
    /// `Call-Info`.
    CallInfo,
    /// `Contact`.
    Contact,
    /// `Content-Disposition`.
    ContentDisposition,
    /// `Content-Encoding`.
    ContentEncoding,
    /// `Content-Length`.
    ContentLength,
    /// `Content-Type`.
    ContentType,
    /// `CSeq`.
    CSeq,
    /// `Date`.
    Date,
    /// `Event`.
    Event,
    /// `Expires`.
    Expires,
    /// `From`.
    From,
    /// `Max-Forwards`.
    MaxForwards,
    /// `Min-Expires`.
    MinExpires,
    /// `Path`.
    Path,
    /// `Proxy-Authenticate`.
    ProxyAuthenticate,
    /// `Proxy-Authorization`.
    ProxyAuthorization,
    /// `Proxy-Require`.
    ProxyRequire,
    /// `Record-Route`.
    RecordRoute,
    /// `Refer-To`.
    ReferTo,
    /// `Referred-By`.
    ReferredBy,
    /// `Require`.
    Require,
    /// `Retry-After`.
    RetryAfter,
    /// `Route`.
    Route,
    /// `Server`.
    Server,
    /// `Service-Route`.
    ServiceRoute,
    /// `Session-Expires`.
    SessionExpires,
    /// `Subject`.
    Subject,
    /// `Subscription-State`.
    SubscriptionState,
    /// `Supported`.
    Supported,
    /// `To`.
    To,
    /// `Unsupported`.
    Unsupported,
    /// `User-Agent`.
    UserAgent,
    /// `Via`.
    Via,
    /// `Warning`.
    Warning,
    /// `WWW-Authenticate`.
    WwwAuthenticate,
    /// Any other header; its name is kept verbatim.
    Other,
}

impl HeaderName {
    /// Maps a header name (any case, long or compact form) to its variant.
    /// Hot path: one match on length, then case-insensitive compares.
    pub fn parse(name: &[u8]) -> HeaderName {
        use HeaderName::*;
        if name.is_empty() {
            return Other;
        }
        if name.len() == 1 {
            return match name[0].to_ascii_lowercase() {
                b'i' => CallId,
                b'm' => Contact,
                b'e' => ContentEncoding,
                b'l' => ContentLength,
                b'c' => ContentType,
                b'f' => From,
                b't' => To,
                b'v' => Via,
                b'k' => Supported,
                b'o' => Event,
                b's' => Subject,
                b'u' => AllowEvents,
                b'r' => ReferTo,
                b'b' => ReferredBy,
                b'x' => SessionExpires,
                _ => Other,
            };
        }
        // One candidate per (length, first letter): a single compare.
        let (n, h) = match (name.len(), name[0].to_ascii_lowercase()) {
            (2, b't') => ("to", To),
            (3, b'v') => ("via", Via),
            (4, b'f') => ("from", From),
            (4, b'c') => ("cseq", CSeq),
            (4, b'd') => ("date", Date),
            (4, b'p') => ("path", Path),
            (5, b'a') => ("allow", Allow),
            (5, b'e') => ("event", Event),
            (5, b'r') => ("route", Route),
            (6, b'a') => ("accept", Accept),
            (6, b's') => ("server", Server),
            (7, b'c') => {
                if name[1].eq_ignore_ascii_case(&b'a') {
                    ("call-id", CallId)
                } else {
                    ("contact", Contact)
                }
            }
            (7, b'e') => ("expires", Expires),
            (7, b'r') => ("require", Require),
            (7, b's') => ("subject", Subject),
            (7, b'w') => ("warning", Warning),
            (8, b'r') => ("refer-to", ReferTo),
            (9, b'c') => ("call-info", CallInfo),
            (9, b's') => ("supported", Supported),
            (10, b'u') => ("user-agent", UserAgent),
            (11, b'm') => ("min-expires", MinExpires),
            (11, b'r') => {
                if name[2].eq_ignore_ascii_case(&b't') {
                    ("retry-after", RetryAfter)
                } else {
                    ("referred-by", ReferredBy)
                }
            }
            (11, b'u') => ("unsupported", Unsupported),
            (12, b'm') => ("max-forwards", MaxForwards),
            (12, b'r') => ("record-route", RecordRoute),
            (12, b'c') => ("content-type", ContentType),
            (12, b'a') => ("allow-events", AllowEvents),
            (13, b'a') => ("authorization", Authorization),
            (13, b'p') => ("proxy-require", ProxyRequire),
            (13, b's') => ("service-route", ServiceRoute),
            (14, b'c') => ("content-length", ContentLength),
            (15, b's') => ("session-expires", SessionExpires),
            (16, b'w') => ("www-authenticate", WwwAuthenticate),
            (16, b'c') => ("content-encoding", ContentEncoding),
            (18, b'p') => ("proxy-authenticate", ProxyAuthenticate),
            (18, b's') => ("subscription-state", SubscriptionState),
            (19, b'p') => ("proxy-authorization", ProxyAuthorization),
            (19, b'c') => ("content-disposition", ContentDisposition),
            _ => return Other,
        };
        if eq_lower(name, n.as_bytes()) {
            h
        } else {
            Other
        }
    }

    /// When `rest` (a header line and what follows it) starts with a known
    /// long name, ended by a byte that cannot continue a token, returns it and
    /// its length. The parser's hot path: a jump on the first letter, then
    /// each candidate compared eight bytes at a time (no byte-by-byte scan of
    /// the name). `None` means "scan and use [`HeaderName::parse`]".
    pub(crate) fn parse_at(rest: &[u8]) -> Option<(HeaderName, usize)> {
        let first = *rest.first()?;
        let cands: &[Cand] = match first | 0x20 {
            b'a' => &CANDS_A,
            b'c' => &CANDS_C,
            b'd' => &CANDS_D,
            b'e' => &CANDS_E,
            b'f' => &CANDS_F,
            b'm' => &CANDS_M,
            b'p' => &CANDS_P,
            b'r' => &CANDS_R,
            b's' => &CANDS_S,
            b't' => &CANDS_T,
            b'u' => &CANDS_U,
            b'v' => &CANDS_V,
            b'w' => &CANDS_W,
            _ => return None,
        };
        let word = |w: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&rest[8 * w..8 * w + 8]);
            u64::from_le_bytes(b)
        };
        if rest.len() < 8 {
            return None;
        }
        // The first eight bytes decide most candidates: loaded once.
        let w0 = word(0);
        'cands: for c in cands {
            if (w0 | c.case[0]) & c.keep[0] != c.pat[0] {
                continue;
            }
            let len = c.len as usize;
            if rest.len() < 8 * c.words as usize || rest.len() <= len {
                continue;
            }
            for w in 1..c.words as usize {
                if (word(w) | c.case[w]) & c.keep[w] != c.pat[w] {
                    continue 'cands;
                }
            }
            if !super::lex::is_token_byte(rest[len]) {
                return Some((c.name, len));
            }
        }
        None
    }

    /// The canonical (long) spelling; `""` for [`HeaderName::Other`].
    pub fn as_str(self) -> &'static str {
        use HeaderName::*;
        match self {
            Accept => "Accept",
            Allow => "Allow",
            AllowEvents => "Allow-Events",
            Authorization => "Authorization",
            CallId => "Call-ID",
            CallInfo => "Call-Info",
            Contact => "Contact",
            ContentDisposition => "Content-Disposition",
            ContentEncoding => "Content-Encoding",
            ContentLength => "Content-Length",
            ContentType => "Content-Type",
            CSeq => "CSeq",
            Date => "Date",
            Event => "Event",
            Expires => "Expires",
            From => "From",
            MaxForwards => "Max-Forwards",
            MinExpires => "Min-Expires",
            Path => "Path",
            ProxyAuthenticate => "Proxy-Authenticate",
            ProxyAuthorization => "Proxy-Authorization",
            ProxyRequire => "Proxy-Require",
            RecordRoute => "Record-Route",
            ReferTo => "Refer-To",
            ReferredBy => "Referred-By",
            Require => "Require",
            RetryAfter => "Retry-After",
            Route => "Route",
            Server => "Server",
            ServiceRoute => "Service-Route",
            SessionExpires => "Session-Expires",
            Subject => "Subject",
            SubscriptionState => "Subscription-State",
            Supported => "Supported",
            To => "To",
            Unsupported => "Unsupported",
            UserAgent => "User-Agent",
            Via => "Via",
            Warning => "Warning",
            WwwAuthenticate => "WWW-Authenticate",
            Other => "",
        }
    }

    /// Headers whose value is a comma-separated list that may be split into
    /// elements (RFC 3261 7.3.1). Authentication headers are *not* lists: their
    /// commas separate auth-params.
    pub fn is_list(self) -> bool {
        use HeaderName::*;
        matches!(
            self,
            Accept
                | Allow
                | AllowEvents
                | CallInfo
                | Contact
                | ContentEncoding
                | Path
                | ProxyRequire
                | RecordRoute
                | Require
                | Route
                | ServiceRoute
                | Supported
                | Unsupported
                | Via
                | Warning
        )
    }
}

/// `name` equals the lower-case pattern `pat` (letters and `-` only),
/// ignoring ASCII case. Compares eight bytes at a time: where the pattern
/// has a letter (bit 6 set) bit 5 of the name's byte is forced on, which
/// lower-cases an upper-case letter and maps no other byte onto a lower-case
/// letter; where it has `-` the bytes must be equal. Exact for any input.
#[inline]
fn eq_lower(name: &[u8], pat: &[u8]) -> bool {
    let n = name.len();
    if n != pat.len() {
        return false;
    }
    if n < 8 {
        return name
            .iter()
            .zip(pat)
            .all(|(&a, &p)| a == p || (p.is_ascii_lowercase() && a | 0x20 == p));
    }
    let word = |s: &[u8], i: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&s[i..i + 8]);
        u64::from_le_bytes(w)
    };
    let same = |i: usize| {
        let p = word(pat, i);
        let case = (p & 0x4040_4040_4040_4040) >> 1;
        word(name, i) | case == p
    };
    let mut i = 0;
    while i + 8 < n {
        if !same(i) {
            return false;
        }
        i += 8;
    }
    // The last (possibly overlapping) eight bytes.
    same(n - 8)
}

impl fmt::Display for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderName::Other => f.write_str("extension"),
            h => f.write_str(h.as_str()),
        }
    }
}

/// A long header name prepared for [`HeaderName::parse_at`]: its lower-case
/// bytes in little-endian words, which bytes count, and where a letter is
/// (bit 5 forced on in the input there).
struct Cand {
    name: HeaderName,
    len: u8,
    words: u8,
    pat: [u64; 3],
    keep: [u64; 3],
    case: [u64; 3],
}

const fn cand(lower: &str, name: HeaderName) -> Cand {
    let b = lower.as_bytes();
    let mut pat = [0u64; 3];
    let mut keep = [0u64; 3];
    let mut case = [0u64; 3];
    let mut i = 0;
    while i < b.len() {
        let shift = 8 * (i % 8);
        pat[i / 8] |= (b[i] as u64) << shift;
        keep[i / 8] |= 0xff << shift;
        if b[i].is_ascii_lowercase() {
            case[i / 8] |= 0x20 << shift;
        }
        i += 1;
    }
    Cand {
        name,
        len: b.len() as u8,
        words: b.len().div_ceil(8) as u8,
        pat,
        keep,
        case,
    }
}

use HeaderName as H;
static CANDS_A: [Cand; 4] = [
    cand("allow", H::Allow),
    cand("accept", H::Accept),
    cand("authorization", H::Authorization),
    cand("allow-events", H::AllowEvents),
];
static CANDS_C: [Cand; 8] = [
    cand("call-id", H::CallId),
    cand("cseq", H::CSeq),
    cand("contact", H::Contact),
    cand("content-length", H::ContentLength),
    cand("content-type", H::ContentType),
    cand("call-info", H::CallInfo),
    cand("content-disposition", H::ContentDisposition),
    cand("content-encoding", H::ContentEncoding),
];
static CANDS_D: [Cand; 1] = [cand("date", H::Date)];
static CANDS_E: [Cand; 2] = [cand("expires", H::Expires), cand("event", H::Event)];
static CANDS_F: [Cand; 1] = [cand("from", H::From)];
static CANDS_M: [Cand; 2] = [
    cand("max-forwards", H::MaxForwards),
    cand("min-expires", H::MinExpires),
];
static CANDS_P: [Cand; 4] = [
    cand("path", H::Path),
    cand("proxy-authenticate", H::ProxyAuthenticate),
    cand("proxy-authorization", H::ProxyAuthorization),
    cand("proxy-require", H::ProxyRequire),
];
static CANDS_R: [Cand; 6] = [
    cand("route", H::Route),
    cand("record-route", H::RecordRoute),
    cand("require", H::Require),
    cand("retry-after", H::RetryAfter),
    cand("refer-to", H::ReferTo),
    cand("referred-by", H::ReferredBy),
];
static CANDS_S: [Cand; 6] = [
    cand("supported", H::Supported),
    cand("server", H::Server),
    cand("subscription-state", H::SubscriptionState),
    cand("service-route", H::ServiceRoute),
    cand("session-expires", H::SessionExpires),
    cand("subject", H::Subject),
];
static CANDS_T: [Cand; 1] = [cand("to", H::To)];
static CANDS_U: [Cand; 2] = [
    cand("user-agent", H::UserAgent),
    cand("unsupported", H::Unsupported),
];
static CANDS_V: [Cand; 1] = [cand("via", H::Via)];
static CANDS_W: [Cand; 2] = [
    cand("www-authenticate", H::WwwAuthenticate),
    cand("warning", H::Warning),
];

#[cfg(test)]
mod tests {
    use super::HeaderName;

    /// Every long name is found by the fast matcher, in any case, and agrees
    /// with [`HeaderName::parse`]; near misses are left to the slow path.
    #[test]
    fn parse_at_agrees_with_parse() {
        let all = [
            "Accept",
            "Allow",
            "Allow-Events",
            "Authorization",
            "Call-ID",
            "Call-Info",
            "Contact",
            "Content-Disposition",
            "Content-Encoding",
            "Content-Length",
            "Content-Type",
            "CSeq",
            "Date",
            "Event",
            "Expires",
            "From",
            "Max-Forwards",
            "Min-Expires",
            "Path",
            "Proxy-Authenticate",
            "Proxy-Authorization",
            "Proxy-Require",
            "Record-Route",
            "Refer-To",
            "Referred-By",
            "Require",
            "Retry-After",
            "Route",
            "Server",
            "Service-Route",
            "Session-Expires",
            "Subject",
            "Subscription-State",
            "Supported",
            "To",
            "Unsupported",
            "User-Agent",
            "Via",
            "Warning",
            "WWW-Authenticate",
        ];
        for n in all {
            for name in [n.to_owned(), n.to_uppercase(), n.to_lowercase()] {
                let line = format!("{name}: x\r\nNext: y\r\n\r\n");
                let got = HeaderName::parse_at(line.as_bytes());
                assert_eq!(
                    got,
                    Some((HeaderName::parse(name.as_bytes()), n.len())),
                    "{name}"
                );
                assert_ne!(got.map(|g| g.0), Some(HeaderName::Other));
            }
            // A longer token, or a CR where a '-' belongs, is not this name.
            let longer = format!("{n}x: v\r\nNext: y\r\n\r\n");
            assert!(
                HeaderName::parse_at(longer.as_bytes()).is_none_or(|g| g.1 != n.len()),
                "{n}x"
            );
            if let Some(d) = n.find('-') {
                let mut bad = n.as_bytes().to_vec();
                bad[d] = b'\r';
                bad.extend_from_slice(b": v\r\nNext: y\r\n\r\n");
                assert!(
                    HeaderName::parse_at(&bad).is_none_or(|g| g.1 != n.len()),
                    "{n} with CR"
                );
            }
        }
    }
}
