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
        let candidates: &[(&str, HeaderName)] = match name.len() {
            2 => &[("to", To)],
            3 => &[("via", Via)],
            4 => &[
                ("from", From),
                ("cseq", CSeq),
                ("date", Date),
                ("path", Path),
            ],
            5 => &[("allow", Allow), ("event", Event), ("route", Route)],
            6 => &[("accept", Accept), ("server", Server)],
            7 => &[
                ("call-id", CallId),
                ("contact", Contact),
                ("expires", Expires),
                ("require", Require),
                ("subject", Subject),
                ("warning", Warning),
            ],
            8 => &[("refer-to", ReferTo)],
            9 => &[("call-info", CallInfo), ("supported", Supported)],
            10 => &[("user-agent", UserAgent)],
            11 => &[
                ("min-expires", MinExpires),
                ("retry-after", RetryAfter),
                ("unsupported", Unsupported),
                ("referred-by", ReferredBy),
            ],
            12 => &[
                ("max-forwards", MaxForwards),
                ("record-route", RecordRoute),
                ("content-type", ContentType),
                ("allow-events", AllowEvents),
            ],
            13 => &[
                ("authorization", Authorization),
                ("proxy-require", ProxyRequire),
                ("service-route", ServiceRoute),
            ],
            14 => &[("content-length", ContentLength)],
            15 => &[("session-expires", SessionExpires)],
            16 => &[
                ("www-authenticate", WwwAuthenticate),
                ("content-encoding", ContentEncoding),
            ],
            18 => &[
                ("proxy-authenticate", ProxyAuthenticate),
                ("subscription-state", SubscriptionState),
            ],
            19 => &[
                ("proxy-authorization", ProxyAuthorization),
                ("content-disposition", ContentDisposition),
            ],
            _ => &[],
        };
        for (n, h) in candidates {
            if name.eq_ignore_ascii_case(n.as_bytes()) {
                return *h;
            }
        }
        Other
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

impl fmt::Display for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderName::Other => f.write_str("extension"),
            h => f.write_str(h.as_str()),
        }
    }
}
