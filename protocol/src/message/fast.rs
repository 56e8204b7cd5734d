//! The parser's fast path: a well-formed message in one pass, with no
//! checks repeated.
//!
//! [`super::scan`] hands out the line ends, proving on the way that the
//! section is ASCII; the start line and each header are then read once,
//! with the address headers, CSeq and numbers checked here (the address
//! headers by [`super::fast_values`]) and the rare rest by the careful
//! validators themselves. Whatever this path does not take (folded lines,
//! non-ASCII text, any value it cannot vouch for that the careful validator
//! then refuses) returns `None`, and
//! [`super::parse`]'s careful path parses the message from scratch: it is the
//! reference, gives the errors, and must produce the same message for
//! everything this path accepts (`paths_tests.rs`).

use bytes::Bytes;

use super::fast_values;
use super::lex::{find_byte, parse_u32, run_of, TOKEN_RUN};
use super::parse::{
    parse_start_line, span, store, validate, validate_request_uri, StartLine, State,
};
use super::scan::{scan_lines, Lines};
use super::values::{CSeq, Method, StatusCode};
use super::HeaderName;

/// Parses the message in `buf` from `start` (its start line); returns the
/// start line, the headers and where the body starts.
pub(super) fn parse(buf: &Bytes, start: usize) -> Option<(StartLine, State, usize)> {
    let sb = &buf[start..];
    let mut lines = Lines::new();
    if !scan_lines(sb, &mut lines) {
        return None;
    }
    let crs = &lines.cr[..lines.n];
    let start_line = start_line(checked_text(sb, 0, crs[0] as usize), start)?;
    let mut st = State::with_capacity(crs.len() - 1);
    for w in crs.windows(2) {
        let pos = w[0] as usize + 2;
        let line = &sb[pos..w[1] as usize];
        if matches!(line.first(), None | Some(b' ' | b'\t')) {
            return None; // a folded line: the careful path unfolds
        }
        let (name, name_len) = match HeaderName::parse_at(&sb[pos..]) {
            Some(found) => found,
            None => {
                let len = run_of(line, 0, TOKEN_RUN);
                (HeaderName::parse(&line[..len]), len)
            }
        };
        // `Name: value` is by far the common spelling: one look each at the
        // colon, the space after it and the last byte.
        let (a, e) = match line.get(name_len..name_len + 3) {
            Some([b':', b' ', c]) if *c != b' ' && *c != b'\t' && name_len > 0 => {
                let last = line[line.len() - 1];
                if last != b' ' && last != b'\t' {
                    (name_len + 2, line.len())
                } else {
                    value_bounds(line, name_len)?
                }
            }
            _ => value_bounds(line, name_len)?,
        };
        let value = checked_text(sb, pos + a, pos + e);
        let fact = match name {
            // The address headers: a value the single-pass check does not
            // vouch for goes to the careful validator (which may still
            // accept it, e.g. an escaped quote in a display name).
            HeaderName::Via => match fast_values::via(value) {
                Some(branch) => Some(branch),
                None => validate(name, value, &mut st).ok()?,
            },
            HeaderName::From | HeaderName::To => match fast_values::from_to(value) {
                Some(tag) => Some(tag),
                None => validate(name, value, &mut st).ok()?,
            },
            HeaderName::Contact | HeaderName::Route | HeaderName::RecordRoute => {
                let fast = match name {
                    HeaderName::Contact => fast_values::contact(value),
                    _ => fast_values::route(value),
                };
                match fast {
                    Some(()) => None,
                    None => validate(name, value, &mut st).ok()?,
                }
            }
            HeaderName::CallId => Some(Some(fast_values::call_id(value)?)),
            HeaderName::CSeq => {
                let (seq, method) = fast_values::cseq(value)?;
                st.record_cseq(CSeq { seq, method });
                None
            }
            HeaderName::ContentLength => {
                let n = parse_u32(value)?;
                st.content_length.get_or_insert(n);
                None
            }
            HeaderName::Expires => {
                st.summary.record_expires(parse_u32(value)?);
                None
            }
            HeaderName::MaxForwards => {
                parse_u32(value).filter(|n| *n <= 255)?;
                None
            }
            name if careful_checks(name) => validate(name, value, &mut st).ok()?,
            _ => None,
        };
        store(
            &mut st,
            sb,
            start,
            name,
            span(start, pos, pos + name_len),
            span(start, pos + a, pos + e),
            fact.map(Some),
        );
    }
    Some((start_line, st, start + lines.hdr_end + 2))
}

/// Where the value of header line `line` starts and ends (white space
/// around it left out), given the length of its name; `None` when no colon
/// follows the name.
#[cold]
fn value_bounds(line: &[u8], name_len: usize) -> Option<(usize, usize)> {
    let is_ws = |b: &u8| *b == b' ' || *b == b'\t';
    let mut j = name_len;
    while line.get(j).is_some_and(is_ws) {
        j += 1;
    }
    if name_len == 0 || line.get(j) != Some(&b':') {
        return None;
    }
    let mut a = j + 1;
    while line.get(a).is_some_and(is_ws) {
        a += 1;
    }
    let mut e = line.len();
    while e > a && is_ws(&line[e - 1]) {
        e -= 1;
    }
    Some((a, e))
}

/// `sb[a..e]` as text: only for bytes before the blank line that
/// [`scan_lines`] found.
#[inline(always)]
fn checked_text(sb: &[u8], a: usize, e: usize) -> &str {
    let bytes = &sb[a..e];
    debug_assert!(bytes.is_ascii());
    // SAFETY: `scan_lines` succeeds only after checking that every byte
    // before the blank line is ASCII (printable, HT, CR or LF), and ASCII is
    // UTF-8; `parse` slices only within that range.
    unsafe { std::str::from_utf8_unchecked(bytes) }
}

/// The headers this path leaves to the careful validator: rare ones whose
/// values it does not read itself. Every header not listed here and not
/// handled in [`parse`] is one the careful validator does not check either
/// (tested in `paths_tests.rs`).
fn careful_checks(name: HeaderName) -> bool {
    matches!(
        name,
        HeaderName::MinExpires | HeaderName::RetryAfter | HeaderName::Date
    )
}

/// The start line, read the way [`parse_start_line`] reads it.
fn start_line(line: &str, base: usize) -> Option<StartLine> {
    let b = line.as_bytes();
    if b.starts_with(b"SIP/2.0 ") {
        // Status-Line: exactly three digits, then SP or the end.
        if b.len() < 11
            || !b[8..11].iter().all(u8::is_ascii_digit)
            || b.get(11).is_some_and(|&c| c != b' ')
        {
            return None;
        }
        let code = b[8..11]
            .iter()
            .fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
        return Some(StartLine::Response {
            status: StatusCode::new(code)?,
            reason: span(base, 12.min(b.len()), b.len()),
        });
    }
    // Request-Line: method SP Request-URI SP "SIP/2.0".
    let sp1 = find_byte(line, b' ')?;
    let sp2 = sp1 + 1 + find_byte(&line[sp1 + 1..], b' ')?;
    if &line[sp2 + 1..] != "SIP/2.0" || sp2 == sp1 + 1 {
        return None;
    }
    let method = Method::parse(&line[..sp1]).ok()?;
    let uri = &line[sp1 + 1..sp2];
    match fast_values::sip_uri(uri.as_bytes(), 0) {
        Some(end) if end == uri.len() => {}
        _ => validate_request_uri(uri).ok()?,
    }
    debug_assert!(parse_start_line(line, base).is_ok());
    Some(StartLine::Request {
        method,
        uri: span(base, sp1 + 1, sp2),
    })
}
