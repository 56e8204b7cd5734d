//! Header storage: values are spans of the received buffer (no copy, no
//! allocation per header) or owned strings for headers set by the building API.

use bytes::Bytes;

use super::addr::NameAddr;
use super::error::ParseError;
use super::lex::{parse_u32, trim, ListIter};
use super::received::Received;
use super::values::{parse_retry_after, AuthHeader, CSeq, Method, ValueWithParams};
use super::via::Via;
use super::HeaderName;

/// Text that lives in the shared buffer (`Span`) or on its own.
#[derive(Debug, Clone)]
pub(crate) enum Text {
    Span(u32, u32),
    Static(&'static str),
    Owned(Box<str>),
}

/// One header field as stored.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) name: HeaderName,
    pub(crate) raw_name: Text,
    pub(crate) value: Text,
    /// Set by the parser once it validated this value: typed accessors then
    /// only read its structure. Values set through the building API are
    /// checked when read.
    pub(crate) checked: bool,
}

/// Where the parser found the top Via branch and the From/To tags (spans of
/// `Headers::buf`), so the reads every transaction and dialog lookup does are
/// O(1). `None`: not known (not parsed, folded, or headers changed since): the
/// accessors then parse. `Some(None)`: the header had no such parameter.
///
/// Also the first Call-ID, CSeq and Expires as validated, so reading them is
/// O(1) too. Packed (span starts, 16-bit lengths, bit sets) because it lives
/// in every [`super::Message`]; a longer span is simply not recorded.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Summary {
    /// Span starts of: top Via branch, From tag, To tag, Call-ID.
    starts: [u32; 4],
    /// Their lengths.
    lens: [u16; 4],
    /// The first CSeq number.
    cseq_seq: u32,
    /// The first Expires value.
    expires: u32,
    /// The first CSeq method (an index in [`METHODS`]).
    cseq_method: u8,
    /// Facts whose header line was seen (only the first line counts).
    seen: u8,
    /// Facts that are known (recorded by the parser).
    known: u8,
    /// Known facts that are present (the parameter exists).
    present: u8,
}

const BRANCH: usize = 0;
const FROM_TAG: usize = 1;
const TO_TAG: usize = 2;
const CALL_ID: usize = 3;
const CSEQ: usize = 4;
const EXPIRES: usize = 5;

/// The methods a CSeq fact can hold (extension methods are read lazily).
const METHODS: [Method; 14] = [
    Method::Invite,
    Method::Ack,
    Method::Bye,
    Method::Cancel,
    Method::Register,
    Method::Options,
    Method::Info,
    Method::Update,
    Method::Prack,
    Method::Subscribe,
    Method::Notify,
    Method::Refer,
    Method::Message,
    Method::Publish,
];

impl Summary {
    /// Records fact `i` if this is the first line of its header.
    fn set(&mut self, i: usize, fact: Option<Option<(u32, u32)>>) {
        let bit = 1 << i;
        if self.seen & bit != 0 {
            return;
        }
        self.seen |= bit;
        let fact = match fact {
            Some(Some((a, b))) if i < self.starts.len() => match u16::try_from(b - a) {
                Ok(len) => {
                    self.starts[i] = a;
                    self.lens[i] = len;
                    Some(true)
                }
                Err(_) => None,
            },
            Some(Some(_)) => Some(true),
            Some(None) => Some(false),
            None => None,
        };
        if let Some(present) = fact {
            self.known |= bit;
            if present {
                self.present |= bit;
            }
        }
    }
    /// `None`: not known; `Some(None)`: known absent.
    fn get(&self, i: usize) -> Option<Option<(u32, u32)>> {
        let bit = 1 << i;
        let (a, len) = match (self.starts.get(i), self.lens.get(i)) {
            (Some(a), Some(len)) => (*a, u32::from(*len)),
            _ => (0, 0),
        };
        (self.known & bit != 0).then(|| (self.present & bit != 0).then_some((a, a + len)))
    }
    /// Records the fact of the first Via / From / To line.
    pub(crate) fn record(&mut self, name: HeaderName, fact: Option<Option<(u32, u32)>>) {
        let i = match name {
            HeaderName::Via => BRANCH,
            HeaderName::From => FROM_TAG,
            HeaderName::To => TO_TAG,
            _ => return,
        };
        self.set(i, fact);
    }
    /// Records the span of a validated Call-ID (`None` when folded).
    pub(crate) fn record_call_id(&mut self, span: Option<(u32, u32)>) {
        self.set(CALL_ID, span.map(Some));
    }
    /// Records a parsed CSeq (extension methods stay unknown).
    pub(crate) fn record_cseq(&mut self, c: &CSeq) {
        let id = METHODS.iter().position(|m| *m == c.method);
        if self.seen & (1 << CSEQ) == 0 {
            self.cseq_seq = c.seq;
            self.cseq_method = id.unwrap_or(0) as u8;
        }
        self.set(CSEQ, id.map(|_| Some((0, 0))));
    }
    /// Records a parsed Expires.
    pub(crate) fn record_expires(&mut self, n: u32) {
        if self.seen & (1 << EXPIRES) == 0 {
            self.expires = n;
        }
        self.set(EXPIRES, Some(None));
    }
}

/// A header field as seen by callers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderField<'a> {
    /// The name as an enum.
    pub name: HeaderName,
    /// The name as written (compact forms and odd capitalisation kept).
    pub raw_name: &'a str,
    /// The value: leading/trailing white space removed, folded lines joined
    /// with a single space.
    pub value: &'a str,
}

/// The header fields of a message, in order.
///
/// Typed accessors parse on demand from borrowed text; they are cheap (no
/// allocation) and return `Err` for malformed or missing values rather than
/// panicking. [`super::Message::parse`] already validated the headers it knows,
/// so on a parsed message they only fail for headers changed since.
#[derive(Debug, Clone, Default)]
pub struct Headers {
    /// The received buffer (the whole message; its header section is UTF-8
    /// checked); `Span`s index into it.
    pub(crate) buf: Received,
    pub(crate) entries: Vec<Entry>,
    pub(crate) summary: Summary,
}

impl Headers {
    pub(crate) fn text<'a>(&'a self, t: &'a Text) -> &'a str {
        match t {
            Text::Span(a, b) => self.buf.str(*a, *b),
            Text::Static(s) => s,
            Text::Owned(s) => s,
        }
    }

    fn field<'a>(&'a self, e: &'a Entry) -> HeaderField<'a> {
        HeaderField {
            name: e.name,
            raw_name: self.text(&e.raw_name),
            value: self.text(&e.value),
        }
    }

    /// Number of header fields (lines, after unfolding).
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    /// True when there is no header.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    /// All fields in order.
    pub fn iter(&self) -> impl Iterator<Item = HeaderField<'_>> + '_ {
        self.entries.iter().map(|e| self.field(e))
    }
    /// The first value of a known header.
    pub fn get(&self, name: HeaderName) -> Option<&str> {
        self.entries
            .iter()
            .find(|e| e.name == name)
            .map(|e| self.text(&e.value))
    }
    /// The first value of a header, as a zero-copy slice of the received
    /// buffer when possible.
    pub fn get_bytes(&self, name: HeaderName) -> Option<Bytes> {
        let e = self.entries.iter().find(|e| e.name == name)?;
        Some(match &e.value {
            Text::Span(a, b) => self.buf.bytes().slice(*a as usize..*b as usize),
            Text::Static(s) => Bytes::from_static(s.as_bytes()),
            Text::Owned(s) => Bytes::copy_from_slice(s.as_bytes()),
        })
    }
    /// Every line of a known header, in order.
    pub fn get_all(&self, name: HeaderName) -> impl Iterator<Item = &str> + '_ {
        self.entries
            .iter()
            .filter(move |e| e.name == name)
            .map(|e| self.text(&e.value))
    }
    /// The first value of a header looked up by its written name (case-
    /// insensitive; works for extension headers and compact forms alike).
    pub fn get_other(&self, name: &str) -> Option<&str> {
        let known = HeaderName::parse(name.as_bytes());
        self.iter()
            .find(|f| {
                f.name == known
                    && (known != HeaderName::Other || f.raw_name.eq_ignore_ascii_case(name))
            })
            .map(|f| f.value)
    }
    /// How many lines of this header there are.
    pub fn count(&self, name: HeaderName) -> usize {
        self.entries.iter().filter(|e| e.name == name).count()
    }
    /// All values of a header across its lines. List headers (see
    /// [`HeaderName::is_list`]; extension headers count as lists) are split at
    /// commas outside quotes and `<...>`; others (WWW-Authenticate, Date...)
    /// yield one value per line.
    pub fn values(&self, name: HeaderName) -> impl Iterator<Item = &str> + '_ {
        let split = name.is_list() || name == HeaderName::Other;
        self.get_all(name)
            .flat_map(move |v| {
                if split {
                    ListIter::new(v)
                } else {
                    ListIter::whole(v)
                }
            })
            .filter(|v| !v.is_empty())
    }

    // ---- building -------------------------------------------------------

    fn entry(name: HeaderName, value: String) -> Entry {
        // A value that needs no trimming keeps its allocation (the usual
        // case: values built with `format!`), instead of being copied.
        let value: Box<str> = if trim(&value).len() == value.len() {
            value.into_boxed_str()
        } else {
            trim(&value).into()
        };
        Entry {
            name,
            raw_name: Text::Static(name.as_str()),
            value: Text::Owned(value),
            checked: false,
        }
    }

    /// Appends a known header whose value is a constant: nothing allocated.
    pub fn push_static(&mut self, name: HeaderName, value: &'static str) {
        self.summary = Summary::default();
        if name == HeaderName::Other {
            return;
        }
        self.entries.push(Entry {
            name,
            raw_name: Text::Static(name.as_str()),
            value: Text::Static(trim(value)),
            checked: false,
        });
    }
    /// Appends a known header. `name` must not be [`HeaderName::Other`]
    /// (use [`Headers::push_other`]).
    pub fn push(&mut self, name: HeaderName, value: impl Into<String>) {
        self.summary = Summary::default();
        if name == HeaderName::Other {
            return;
        }
        self.entries.push(Self::entry(name, value.into()));
    }
    /// Appends a header by name (extension headers); known names map to their
    /// variant. Errors when `name` is not a token.
    pub fn push_other(&mut self, name: &str, value: impl Into<String>) -> Result<(), ParseError> {
        self.summary = Summary::default();
        if !super::lex::is_token(name) {
            return Err(ParseError::Build {
                what: "header name",
                reason: "not a token",
            });
        }
        let v: String = value.into();
        self.entries.push(Entry {
            name: HeaderName::parse(name.as_bytes()),
            raw_name: Text::Owned(name.into()),
            value: Text::Owned(trim(&v).into()),
            checked: false,
        });
        Ok(())
    }
    /// Inserts a known header before the first line of the same header, or at
    /// the top (how a Via is added, RFC 3261 8.1.1.7).
    pub fn prepend(&mut self, name: HeaderName, value: impl Into<String>) {
        self.summary = Summary::default();
        let at = self
            .entries
            .iter()
            .position(|e| e.name == name)
            .unwrap_or(0);
        self.entries.insert(at, Self::entry(name, value.into()));
    }
    /// Replaces every line of a known header by one value, kept at the place of
    /// the first line (appended when absent).
    pub fn set(&mut self, name: HeaderName, value: impl Into<String>) {
        self.summary = Summary::default();
        let new = Self::entry(name, value.into());
        match self.entries.iter().position(|e| e.name == name) {
            Some(i) => {
                self.entries[i] = new;
                let mut idx = 0;
                self.entries.retain(|e| {
                    let keep = idx <= i || e.name != name;
                    idx += 1;
                    keep
                });
            }
            None => self.entries.push(new),
        }
    }
    /// Removes every line of a known header; returns how many were removed.
    pub fn remove(&mut self, name: HeaderName) -> usize {
        self.summary = Summary::default();
        let before = self.entries.len();
        self.entries.retain(|e| e.name != name);
        before - self.entries.len()
    }
    /// Removes every line of a header by written name (extension headers).
    pub fn remove_other(&mut self, name: &str) -> usize {
        self.summary = Summary::default();
        let known = HeaderName::parse(name.as_bytes());
        if known != HeaderName::Other {
            return self.remove(known);
        }
        let before = self.entries.len();
        let buf = self.buf.bytes();
        self.entries.retain(|e| {
            let raw = match &e.raw_name {
                Text::Span(a, b) => buf.get(*a as usize..*b as usize).unwrap_or(b""),
                Text::Static(s) => s.as_bytes(),
                Text::Owned(s) => s.as_bytes(),
            };
            e.name != HeaderName::Other || !raw.eq_ignore_ascii_case(name.as_bytes())
        });
        before - self.entries.len()
    }

    // ---- typed accessors -----------------------------------------------

    fn first(&self, name: HeaderName) -> Result<(&str, bool), ParseError> {
        self.entries
            .iter()
            .find(|e| e.name == name)
            .map(|e| (self.text(&e.value), e.checked))
            .ok_or(ParseError::MissingHeader(name))
    }
    fn typed<'a, T>(
        &'a self,
        name: HeaderName,
        f: impl FnOnce(&'a str, bool) -> Result<T, &'static str>,
    ) -> Result<T, ParseError> {
        let (v, checked) = self.first(name)?;
        f(v, !checked).map_err(|r| ParseError::header(name, r))
    }
    fn optional<'a, T>(
        &'a self,
        name: HeaderName,
        f: impl FnOnce(&'a str) -> Result<T, &'static str>,
    ) -> Result<Option<T>, ParseError> {
        self.get(name)
            .map(|v| f(v).map_err(|r| ParseError::header(name, r)))
            .transpose()
    }
    fn list<'a, T: 'a>(
        &'a self,
        name: HeaderName,
        f: impl Fn(&'a str, bool) -> Result<T, &'static str> + 'a,
    ) -> impl Iterator<Item = Result<T, ParseError>> + 'a {
        self.entries
            .iter()
            .filter(move |e| e.name == name)
            .flat_map(move |e| ListIter::new(self.text(&e.value)).map(move |v| (v, !e.checked)))
            .map(move |(v, strict)| f(v, strict).map_err(|r| ParseError::header(name, r)))
    }

    /// The topmost Via value.
    pub fn top_via(&self) -> Result<Via<'_>, ParseError> {
        let (first, checked) = self.first(HeaderName::Via)?;
        let v = ListIter::new(first).next().unwrap_or("");
        Via::parse_mode(v, !checked).map_err(|r| ParseError::header(HeaderName::Via, r))
    }
    fn span_str(&self, (a, b): (u32, u32)) -> &str {
        self.buf.str(a, b)
    }

    /// The `branch` of the topmost Via: O(1) on a parsed message (the
    /// transaction key, RFC 3261 17.2.3).
    pub fn branch(&self) -> Result<Option<&str>, ParseError> {
        match self.summary.get(BRANCH) {
            Some(b) => Ok(b.map(|s| self.span_str(s))),
            None => Ok(self.top_via()?.branch()),
        }
    }
    /// The From tag: O(1) on a parsed message.
    pub fn from_tag(&self) -> Result<Option<&str>, ParseError> {
        match self.summary.get(FROM_TAG) {
            Some(t) => Ok(t.map(|s| self.span_str(s))),
            None => Ok(self.from()?.tag()),
        }
    }
    /// The To tag: O(1) on a parsed message.
    pub fn to_tag(&self) -> Result<Option<&str>, ParseError> {
        match self.summary.get(TO_TAG) {
            Some(t) => Ok(t.map(|s| self.span_str(s))),
            None => Ok(self.to()?.tag()),
        }
    }

    /// Every Via value, top first, across lines and commas.
    pub fn vias(&self) -> impl Iterator<Item = Result<Via<'_>, ParseError>> + '_ {
        self.list(HeaderName::Via, Via::parse_mode)
    }
    /// From.
    pub fn from(&self) -> Result<NameAddr<'_>, ParseError> {
        self.typed(HeaderName::From, NameAddr::parse_mode)
    }
    /// To.
    pub fn to(&self) -> Result<NameAddr<'_>, ParseError> {
        self.typed(HeaderName::To, NameAddr::parse_mode)
    }
    /// Call-ID (validated: non-empty, no white space). O(1) on a parsed
    /// message.
    pub fn call_id(&self) -> Result<&str, ParseError> {
        match self.summary.get(CALL_ID) {
            Some(Some(s)) => Ok(self.span_str(s)),
            _ => self.typed(HeaderName::CallId, |v, _| validate_call_id(v)),
        }
    }
    /// CSeq. O(1) on a parsed message.
    pub fn cseq(&self) -> Result<CSeq, ParseError> {
        match (
            self.summary.get(CSEQ),
            METHODS.get(self.summary.cseq_method as usize),
        ) {
            (Some(_), Some(m)) => Ok(CSeq {
                seq: self.summary.cseq_seq,
                method: m.clone(),
            }),
            _ => self.typed(HeaderName::CSeq, |v, _| CSeq::parse(v)),
        }
    }
    /// True when the Contact is `*` (a REGISTER removing all bindings).
    pub fn contact_is_star(&self) -> bool {
        // On the bytes: a long Contact need not be UTF-8 checked again.
        let Some(e) = self.entries.iter().find(|e| e.name == HeaderName::Contact) else {
            return false;
        };
        let v = match &e.value {
            Text::Span(a, b) => self
                .buf
                .bytes()
                .get(*a as usize..*b as usize)
                .unwrap_or(b""),
            Text::Static(s) => s.as_bytes(),
            Text::Owned(s) => s.as_bytes(),
        };
        let ws = |c: &u8| super::lex::is_ws(*c);
        let start = v.iter().position(|c| !ws(c)).unwrap_or(v.len());
        let end = v.iter().rposition(|c| !ws(c)).map_or(start, |e| e + 1);
        v.get(start..end) == Some(b"*")
    }
    /// Every Contact address across lines and commas (none for `*`).
    pub fn contacts(&self) -> impl Iterator<Item = Result<NameAddr<'_>, ParseError>> + '_ {
        let star = self.contact_is_star();
        self.list(HeaderName::Contact, NameAddr::parse_contact)
            .filter(move |_| !star)
    }
    /// Route set, in order.
    pub fn routes(&self) -> impl Iterator<Item = Result<NameAddr<'_>, ParseError>> + '_ {
        self.list(HeaderName::Route, NameAddr::parse_mode)
    }
    /// Record-Route values, in order.
    pub fn record_routes(&self) -> impl Iterator<Item = Result<NameAddr<'_>, ParseError>> + '_ {
        self.list(HeaderName::RecordRoute, NameAddr::parse_mode)
    }
    /// Call-Info values (`<uri>;purpose=...`).
    pub fn call_info(&self) -> impl Iterator<Item = Result<NameAddr<'_>, ParseError>> + '_ {
        self.list(HeaderName::CallInfo, NameAddr::parse_mode)
    }
    /// Expires, in seconds. O(1) on a parsed message that has one.
    pub fn expires(&self) -> Result<Option<u32>, ParseError> {
        match self.summary.get(EXPIRES) {
            Some(_) => Ok(Some(self.summary.expires)),
            None => self.optional(HeaderName::Expires, delta_seconds),
        }
    }
    /// Min-Expires, in seconds.
    pub fn min_expires(&self) -> Result<Option<u32>, ParseError> {
        self.optional(HeaderName::MinExpires, delta_seconds)
    }
    /// Max-Forwards.
    pub fn max_forwards(&self) -> Result<Option<u8>, ParseError> {
        self.optional(HeaderName::MaxForwards, |v| {
            parse_u32(trim(v))
                .and_then(|n| u8::try_from(n).ok())
                .ok_or("not a number in 0..=255")
        })
    }
    /// Content-Length.
    pub fn content_length(&self) -> Result<Option<u32>, ParseError> {
        self.optional(HeaderName::ContentLength, delta_seconds)
    }
    /// Retry-After, in seconds.
    pub fn retry_after(&self) -> Result<Option<u32>, ParseError> {
        self.optional(HeaderName::RetryAfter, parse_retry_after)
    }
    /// Content-Type (media type and params).
    pub fn content_type(&self) -> Result<Option<ValueWithParams<'_>>, ParseError> {
        self.optional(HeaderName::ContentType, |v| ValueWithParams::parse(v, true))
    }
    /// Event (package and params such as `id`).
    pub fn event(&self) -> Result<Option<ValueWithParams<'_>>, ParseError> {
        self.optional(HeaderName::Event, |v| ValueWithParams::parse(v, false))
    }
    /// Subscription-State (state and params such as `expires`, `reason`).
    pub fn subscription_state(&self) -> Result<Option<ValueWithParams<'_>>, ParseError> {
        self.optional(HeaderName::SubscriptionState, |v| {
            ValueWithParams::parse(v, false)
        })
    }
    /// Every WWW-Authenticate challenge (one per line).
    pub fn www_authenticate(&self) -> impl Iterator<Item = Result<AuthHeader<'_>, ParseError>> {
        self.auth(HeaderName::WwwAuthenticate)
    }
    /// Every Proxy-Authenticate challenge.
    pub fn proxy_authenticate(&self) -> impl Iterator<Item = Result<AuthHeader<'_>, ParseError>> {
        self.auth(HeaderName::ProxyAuthenticate)
    }
    /// Every Authorization header.
    pub fn authorization(&self) -> impl Iterator<Item = Result<AuthHeader<'_>, ParseError>> {
        self.auth(HeaderName::Authorization)
    }
    /// Every Proxy-Authorization header.
    pub fn proxy_authorization(&self) -> impl Iterator<Item = Result<AuthHeader<'_>, ParseError>> {
        self.auth(HeaderName::ProxyAuthorization)
    }
    fn auth(
        &self,
        name: HeaderName,
    ) -> impl Iterator<Item = Result<AuthHeader<'_>, ParseError>> + '_ {
        self.get_all(name)
            .map(move |v| AuthHeader::parse(v).map_err(|r| ParseError::header(name, r)))
    }
    /// Allow: method tokens.
    pub fn allow(&self) -> impl Iterator<Item = &str> + '_ {
        self.values(HeaderName::Allow)
    }
    /// Supported: option tags.
    pub fn supported(&self) -> impl Iterator<Item = &str> + '_ {
        self.values(HeaderName::Supported)
    }
    /// Require: option tags.
    pub fn require(&self) -> impl Iterator<Item = &str> + '_ {
        self.values(HeaderName::Require)
    }
    /// User-Agent, verbatim.
    pub fn user_agent(&self) -> Option<&str> {
        self.get(HeaderName::UserAgent)
    }
}

pub(crate) fn validate_call_id(v: &str) -> Result<&str, &'static str> {
    let v = trim(v);
    if v.is_empty() || v.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err("empty or contains white space");
    }
    Ok(v)
}

pub(crate) fn delta_seconds(v: &str) -> Result<u32, &'static str> {
    parse_u32(trim(v)).ok_or("not a 32-bit decimal number")
}
