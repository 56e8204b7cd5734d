//! The parser's entry point and its careful path: start line, header lines
//! (indexed as spans of the shared buffer), validation of the headers a user
//! agent relies on, body. [`parse`] tries [`super::fast`] first; the careful
//! path here takes whatever that declines, reports errors in the order they
//! occur, and is the reference the fast path must match.

use bytes::Bytes;

use super::addr::NameAddr;
use super::error::ParseError;
use super::headers::{delta_seconds, validate_call_id, Entry, Headers, Summary, Text};
use super::lex::{trim, ListIter};
use super::received::Received;
use super::uri::{Scheme, Uri};
use super::values::{parse_retry_after, validate_date, CSeq, Method, StatusCode};
use super::via::Via;
use super::{HeaderName, Message, Request, Response};

/// What the start line said.
pub(super) enum StartLine {
    Request { method: Method, uri: Text },
    Response { status: StatusCode, reason: Text },
}

pub(crate) fn parse(buf: Bytes) -> Result<Message, ParseError> {
    if buf.len() > u32::MAX as usize {
        return Err(ParseError::Truncated("message larger than 4 GiB"));
    }
    // RFC 3261 7.5: CRLFs before the start line are ignored.
    let mut start = 0;
    while buf.get(start..start + 2) == Some(b"\r\n") {
        start += 2;
    }
    // The fast path takes well-formed messages; anything it does not accept
    // (folding, a bare CR or LF, non-ASCII bytes, a malformed or unusual
    // header, very many lines) goes through the careful path, which gives the
    // precise error and is the reference the fast path must agree with.
    if let Some((start_line, st, body_start)) = super::fast::parse(&buf, start) {
        // SAFETY: the fast path took the message only after checking that
        // every byte before the blank line is ASCII.
        let buf = unsafe { Received::new_unchecked(buf, body_start - 2) };
        return finish_message(buf, start_line, st, body_start);
    }
    parse_careful(buf, start)
}

/// The reference parser: every check in the order the errors are reported.
pub(super) fn parse_careful(buf: Bytes, start: usize) -> Result<Message, ParseError> {
    static BLANK_LINE: std::sync::OnceLock<memchr::memmem::Finder<'static>> =
        std::sync::OnceLock::new();
    let blank_line = BLANK_LINE.get_or_init(|| memchr::memmem::Finder::new(b"\r\n\r\n"));
    let (hdr_end, body_start) = match blank_line.find(&buf[start..]) {
        Some(blank) => (start + blank + 2, start + blank + 4),
        // A datagram that ends right after its last header line, without the
        // empty line: read it as having no body (lenient, as most stacks are).
        None if buf.len() > start + 2 && buf.ends_with(b"\r\n") => (buf.len(), buf.len()),
        None => {
            return Err(ParseError::Truncated(
                "no empty line after the header section",
            ))
        }
    };
    let section = std::str::from_utf8(&buf[start..hdr_end]).map_err(|_| ParseError::NotUtf8)?;

    let first_end = match memchr::memchr(b'\n', section.as_bytes()) {
        Some(lf) if lf > 0 && section.as_bytes()[lf - 1] == b'\r' => lf - 1,
        Some(_) => return Err(ParseError::StartLine("bare CR or LF")),
        None => section.len(),
    };
    let start_line = parse_start_line(&section[..first_end], start)?;
    let mut st = State::with_capacity(16);
    index_lines_careful(section, start, first_end + 2, &mut st)?;
    // SAFETY: `section` (`buf[start..hdr_end]`) passed `str::from_utf8`, and
    // the bytes before `start` are CR and LF.
    let buf = unsafe { Received::new_unchecked(buf, hdr_end) };
    finish_message(buf, start_line, st, body_start)
}

/// Body (per Content-Length), CSeq method check, and the message.
fn finish_message(
    buf: Received,
    start_line: StartLine,
    st: State,
    body_start: usize,
) -> Result<Message, ParseError> {
    let State {
        entries,
        summary,
        content_length,
        cseq_method,
        ..
    } = st;
    let available = buf.bytes().len() - body_start;
    let body_len = match content_length {
        Some(cl) if cl as usize > available => {
            return Err(ParseError::BodyTruncated {
                declared: cl,
                available,
            })
        }
        Some(cl) => cl as usize,
        None => available,
    };
    let body = if body_len == 0 {
        Bytes::new()
    } else {
        buf.bytes().slice(body_start..body_start + body_len)
    };
    // The header spans index `buf` from its start; keeping the whole buffer
    // (rather than a slice up to the blank line) saves a reference count.
    if let StartLine::Request { method, .. } = &start_line {
        if cseq_method.is_some_and(|m| m != *method) {
            return Err(ParseError::CSeqMethodMismatch);
        }
    }
    let headers = Headers {
        buf,
        entries,
        summary,
    };
    Ok(match start_line {
        StartLine::Request { method, uri } => Message::Request(Request {
            method,
            uri,
            headers,
            body,
        }),
        StartLine::Response { status, reason } => Message::Response(Response {
            status,
            reason,
            headers,
            body,
        }),
    })
}

/// What the header pass accumulates.
pub(super) struct State {
    pub(super) entries: Vec<Entry>,
    pub(super) summary: Summary,
    pub(super) content_length: Option<u32>,
    /// The method of the first CSeq line (checked against the request's).
    pub(super) cseq_method: Option<Method>,
}

impl State {
    /// Keeps a validated CSeq (the first one counts).
    pub(super) fn record_cseq(&mut self, c: CSeq) {
        self.summary.record_cseq(&c);
        if self.cseq_method.is_none() {
            self.cseq_method = Some(c.method);
        }
    }

    pub(super) fn with_capacity(lines: usize) -> State {
        State {
            entries: Vec::with_capacity(lines),
            summary: Summary::default(),
            content_length: None,
            cseq_method: None,
        }
    }
}

fn bare(line: usize) -> ParseError {
    ParseError::HeaderLine {
        line,
        reason: "bare CR or LF",
    }
}

/// The careful line loop: checks each line's first CR or LF, so the error
/// names the line.
fn index_lines_careful(
    section: &str,
    base: usize,
    mut pos: usize,
    st: &mut State,
) -> Result<(), ParseError> {
    let sb = section.as_bytes();
    let mut cur: Option<Cur> = None;
    let mut line_no = 1;
    while pos < section.len() {
        line_no += 1;
        // The first CR or LF of the line must be the CR of its CRLF.
        let line_end = match memchr::memchr2(b'\r', b'\n', &sb[pos..]) {
            Some(rel) if sb.get(pos + rel..pos + rel + 2) == Some(b"\r\n") && rel > 0 => pos + rel,
            _ => return Err(bare(line_no)),
        };
        let end = line_end + 1; // index of '\n'
        if matches!(sb[pos], b' ' | b'\t') {
            match cur.as_mut() {
                Some(c) => {
                    c.4 = line_end;
                    c.5 = true;
                }
                None => {
                    return Err(ParseError::HeaderLine {
                        line: line_no,
                        reason: "continuation line before the first header",
                    })
                }
            }
        } else {
            if let Some(c) = cur.take() {
                finish(section, base, c, st)?;
            }
            let line = &sb[pos..line_end];
            let colon = memchr::memchr(b':', line).ok_or(ParseError::HeaderLine {
                line: line_no,
                reason: "no colon",
            })?;
            let mut name_end = colon;
            while name_end > 0 && matches!(line[name_end - 1], b' ' | b'\t') {
                name_end -= 1;
            }
            let name = &line[..name_end];
            if name.is_empty() || !name.iter().all(|&b| super::lex::is_token_byte(b)) {
                return Err(ParseError::HeaderLine {
                    line: line_no,
                    reason: "header name is not a token",
                });
            }
            cur = Some((
                HeaderName::parse(name),
                pos,
                pos + name_end,
                pos + colon + 1,
                line_end,
                false,
            ));
        }
        pos = end + 1;
    }
    if let Some(c) = cur.take() {
        finish(section, base, c, st)?;
    }
    Ok(())
}

pub(super) fn span(base: usize, a: usize, b: usize) -> Text {
    Text::Span((base + a) as u32, (base + b) as u32)
}

pub(super) fn parse_start_line(line: &str, base: usize) -> Result<StartLine, ParseError> {
    use super::lex::find_byte;
    if let Some(rest) = line.strip_prefix("SIP/") {
        // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase
        let sp = find_byte(rest, b' ').ok_or(ParseError::StartLine("no status code"))?;
        if &rest[..sp] != "2.0" {
            return Err(ParseError::Version);
        }
        let rest = &rest[sp + 1..];
        let code_end = find_byte(rest, b' ').unwrap_or(rest.len());
        let code = &rest[..code_end];
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseError::StatusCode("not three digits"));
        }
        let status = code
            .parse::<u16>()
            .ok()
            .and_then(StatusCode::new)
            .ok_or(ParseError::StatusCode("outside 100..=699"))?;
        let reason_start = (line.len() - rest.len() + code_end + 1).min(line.len());
        return Ok(StartLine::Response {
            status,
            reason: span(base, reason_start, line.len()),
        });
    }
    // Request-Line = Method SP Request-URI SP SIP-Version
    let sp1 = find_byte(line, b' ');
    let sp2 = sp1.and_then(|a| find_byte(&line[a + 1..], b' ').map(|b| a + 1 + b));
    let (Some(sp1), Some(sp2)) = (sp1, sp2) else {
        return Err(ParseError::StartLine(
            "request-line is not method, URI and version",
        ));
    };
    let (uri, version) = (&line[sp1 + 1..sp2], &line[sp2 + 1..]);
    let method = Method::parse(&line[..sp1]).map_err(ParseError::StartLine)?;
    if uri.is_empty() || version.as_bytes().contains(&b' ') {
        return Err(ParseError::StartLine(
            "extra white space in the request-line (or inside the Request-URI)",
        ));
    }
    if !version.eq_ignore_ascii_case("SIP/2.0") {
        return Err(ParseError::Version);
    }
    validate_request_uri(uri)?;
    Ok(StartLine::Request {
        method,
        uri: span(base, sp1 + 1, sp2),
    })
}

pub(crate) fn validate_request_uri(uri: &str) -> Result<(), ParseError> {
    if uri.starts_with('<') {
        return Err(ParseError::RequestUri("enclosed in <>"));
    }
    let u = Uri::parse(uri).map_err(ParseError::RequestUri)?;
    if matches!(u.scheme(), Scheme::Sip | Scheme::Sips) && u.headers().is_some() {
        return Err(ParseError::RequestUri(
            "headers are not allowed in a Request-URI",
        ));
    }
    Ok(())
}

type Cur = (HeaderName, usize, usize, usize, usize, bool);

/// Stores one header and validates it if it is one a UA relies on.
fn finish(
    section: &str,
    base: usize,
    (name, name_start, name_end, vstart, vend, folded): Cur,
    st: &mut State,
) -> Result<(), ParseError> {
    let raw = &section[vstart..vend];
    let (value_text, value): (Text, std::borrow::Cow<'_, str>) = if folded {
        let unfolded = unfold(raw);
        (Text::Owned(unfolded.clone().into()), unfolded.into())
    } else {
        // One line, so only SP and HT can surround the value.
        let rb = raw.as_bytes();
        let mut a = 0;
        while a < rb.len() && matches!(rb[a], b' ' | b'\t') {
            a += 1;
        }
        let mut e = rb.len();
        while e > a && matches!(rb[e - 1], b' ' | b'\t') {
            e -= 1;
        }
        (span(base, vstart + a, vstart + e), raw[a..e].into())
    };
    let fact = validate(name, &value, st).map_err(|reason| ParseError::Header {
        header: name,
        reason,
    })?;
    // A folded value lives outside the buffer, so its fact stays unknown
    // (read lazily).
    let fact = fact.map(|f| (!folded).then_some(f));
    store(
        st,
        section.as_bytes(),
        base,
        name,
        span(base, name_start, name_end),
        value_text,
        fact,
    );
    Ok(())
}

/// Keeps one validated header: its fact (top branch, tag, Call-ID; a slice
/// of `origin`, which starts at `base` in the buffer) in the summary for
/// O(1) reads, and its entry.
/// `fact`: `None` for headers without one; `Some(None)` when it could not
/// be recorded; `Some(Some(f))` the fact as found.
#[inline(always)]
pub(super) fn store(
    st: &mut State,
    origin: &[u8],
    base: usize,
    name: HeaderName,
    raw_name: Text,
    value: Text,
    fact: Option<Option<Option<&str>>>,
) {
    if let Some(fact) = fact {
        let span = fact.map(|f| {
            f.map(|f| {
                let at = base + (f.as_ptr() as usize - origin.as_ptr() as usize);
                (at as u32, (at + f.len()) as u32)
            })
        });
        if name == HeaderName::CallId {
            st.summary.record_call_id(span.flatten());
        } else {
            st.summary.record(name, span);
        }
    }
    st.entries.push(Entry {
        name,
        raw_name,
        value,
        checked: is_validated(name),
    });
}

/// Joins folded lines: each CRLF and the white space around it become one SP.
fn unfold(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for (i, piece) in raw.split("\r\n").enumerate() {
        let piece = if i == 0 {
            piece.trim_end_matches([' ', '\t'])
        } else {
            piece.trim_matches([' ', '\t'])
        };
        if piece.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(piece);
    }
    trim(&out).to_owned()
}

/// The headers [`validate`] checks fully (their typed accessors may then
/// skip the character checks).
fn is_validated(name: HeaderName) -> bool {
    use HeaderName::*;
    matches!(
        name,
        Via | From | To | Contact | Route | RecordRoute | CallId | CSeq
    )
}

/// Checks a header; for Via, From, To and Call-ID returns the fact the
/// summary keeps (top branch, tag, the Call-ID), `Some(None)` when absent.
/// A delta-seconds value: `Some` when it fits 32 bits, `None` when it is
/// all digits but longer, an error when it is not a number.
fn digits(v: &str) -> Result<Option<u32>, &'static str> {
    let t = trim(v);
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err("not a decimal number");
    }
    Ok(super::lex::parse_u32(t))
}

/// Parsed CSeq, Expires and Content-Length go to `st`.
pub(super) fn validate<'v>(
    name: HeaderName,
    v: &'v str,
    st: &mut State,
) -> Result<Option<Option<&'v str>>, &'static str> {
    match name {
        HeaderName::Via => {
            let mut top = None;
            for e in ListIter::new(v) {
                let (_, branch) = Via::parse_with_branch(e)?;
                if top.is_none() {
                    top = Some(branch);
                }
            }
            return Ok(top);
        }
        HeaderName::From | HeaderName::To => {
            return Ok(Some(NameAddr::parse_with_tag(v)?.1));
        }
        HeaderName::Contact if trim(v) != "*" => {
            for e in ListIter::new(v) {
                NameAddr::parse_contact(e, true)?;
            }
        }
        HeaderName::Route | HeaderName::RecordRoute => {
            for e in ListIter::new(v) {
                NameAddr::parse(e)?;
            }
        }
        HeaderName::CallId => {
            return Ok(Some(Some(validate_call_id(v)?)));
        }
        HeaderName::CSeq => {
            st.record_cseq(CSeq::parse(v)?);
        }
        HeaderName::ContentLength => {
            let n = delta_seconds(v)?;
            if st.content_length.is_none() {
                st.content_length = Some(n);
            }
        }
        // delta-seconds is 1*DIGIT: a value past 2^32-1 is well-formed, so it
        // does not cost the whole message; reading the header reports it.
        HeaderName::Expires => {
            if let Some(n) = digits(v)? {
                st.summary.record_expires(n);
            }
        }
        HeaderName::MinExpires => {
            digits(v)?;
        }
        HeaderName::MaxForwards => {
            super::lex::parse_u32(trim(v))
                .filter(|n| *n <= 255)
                .ok_or("not a number in 0..=255")?;
        }
        HeaderName::RetryAfter => {
            parse_retry_after(v)?;
        }
        HeaderName::Date => validate_date(v)?,
        // Authentication headers, Allow, Supported, Require and the rest are
        // checked when read (their accessors return errors): keeping them out
        // of the parse pass keeps long Authorization lines off the hot path.
        _ => {}
    }
    Ok(None)
}
