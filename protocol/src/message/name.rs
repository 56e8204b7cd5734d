//! Header names: an enum for the headers sipfleet reads, compact forms included.

use std::fmt;

/// A header name. Known names (and their RFC 3261 / RFC 3265 compact forms) map
/// to a variant; anything else is [`HeaderName::Other`] and keeps its spelling in
/// the message (see [`super::Headers::get_other`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HeaderName {
    Accept,
    Allow,
    AllowEvents,
    Authorization,
    CallId,
    CallInfo,
    Contact,
    ContentDisposition,
    ContentEncoding,
    ContentLength,
    ContentType,
    CSeq,
    Date,
    Event,
    Expires,
    From,
    MaxForwards,
    MinExpires,
    Path,
    ProxyAuthenticate,
    ProxyAuthorization,
    ProxyRequire,
    RecordRoute,
    ReferTo,
    ReferredBy,
    Require,
    RetryAfter,
    Route,
    Server,
    ServiceRoute,
    SessionExpires,
    Subject,
    SubscriptionState,
    Supported,
    To,
    Unsupported,
    UserAgent,
    Via,
    Warning,
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
