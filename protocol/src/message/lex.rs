//! Byte-level helpers for the RFC 3261 grammar (tokens, LWS, lists, numbers).
//!
//! Hand-written because the parser works on borrowed slices of the received
//! buffer in one pass; a parser-combinator crate would add allocation or
//! per-call overhead on the hot path measured by the benchmark.

/// Byte classes, one bit each, looked up in [`CLASS`] (one load per byte on
/// the hot path instead of a chain of compares).
const TOKEN: u8 = 1;
const HOST: u8 = 2;
const PARAM: u8 = 4;
/// Bytes that may not appear unescaped in a URI: controls, space, `<>"`, DEL.
const URI_BAD: u8 = 8;
/// `@`, which ends the userinfo of a SIP URI.
const AT: u8 = 16;
/// Neither [`URI_BAD`] nor [`AT`]: the bytes a URI's userinfo runs over.
pub(crate) const URI_OK: u8 = 32;
/// Header parameter value bytes that need no quotes: token, `[`, `]`, `:`.
pub(crate) const PVALUE: u8 = 64;
/// Bytes of an unquoted display name: token, SP, HT.
pub(crate) const DNAME: u8 = 128;
/// Token bytes (for [`run_of`]).
pub(crate) const TOKEN_RUN: u8 = TOKEN;
/// Host name bytes (for [`run_of`]).
pub(crate) const HOST_RUN: u8 = HOST;
/// URI paramchar bytes (for [`run_of`]).
pub(crate) const PARAM_RUN: u8 = PARAM;

static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        let alnum = b.is_ascii_alphanumeric();
        let tok = alnum
            || matches!(
                b,
                b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
            );
        let mut c = 0;
        if tok {
            c |= TOKEN | PARAM;
        }
        if alnum || b == b'-' || b == b'.' {
            c |= HOST;
        }
        if matches!(b, b'[' | b']' | b'/' | b':' | b'&' | b'$' | b'(' | b')') {
            c |= PARAM;
        }
        if b <= b' ' || b == 0x7f || matches!(b, b'<' | b'>' | b'"') {
            c |= URI_BAD;
        }
        if b == b'@' {
            c |= AT;
        }
        if c & (URI_BAD | AT) == 0 {
            c |= URI_OK;
        }
        if tok || matches!(b, b'[' | b']' | b':') {
            c |= PVALUE;
        }
        if tok || b == b' ' || b == b'\t' {
            c |= DNAME;
        }
        t[i] = c;
        i += 1;
    }
    t
};

/// The end of the run of bytes of class `class` (one of the `*_RUN`,
/// [`URI_OK`], [`PVALUE`], [`DNAME`] bits) that starts at `j`. Four bytes
/// per step while they all belong: the runs the parser meets (host names,
/// tokens, parameters) are mostly longer than that, and one table load per
/// byte with a single branch per four is about half the work of a byte loop.
#[inline(always)]
pub(crate) fn run_of(b: &[u8], mut j: usize, class: u8) -> usize {
    while let Some(q) = b.get(j..j + 4) {
        let all = CLASS[q[0] as usize]
            & CLASS[q[1] as usize]
            & CLASS[q[2] as usize]
            & CLASS[q[3] as usize];
        if all & class == 0 {
            break;
        }
        j += 4;
    }
    while j < b.len() && CLASS[b[j] as usize] & class != 0 {
        j += 1;
    }
    j
}

/// RFC 3261 `token` characters: alphanum and `-.!%*_+`'~`.
#[inline]
pub(crate) fn is_token_byte(b: u8) -> bool {
    CLASS[b as usize] & TOKEN != 0
}

/// Host name characters (alphanum, `-`, `.`).
#[inline]
pub(crate) fn is_host_byte(b: u8) -> bool {
    CLASS[b as usize] & HOST != 0
}

/// URI `paramchar` (unreserved, escapes and `[]/:&+$`).
#[inline]
pub(crate) fn is_param_byte(b: u8) -> bool {
    CLASS[b as usize] & PARAM != 0
}

/// Bytes never allowed unescaped in a URI.
#[inline]
pub(crate) fn is_uri_bad_byte(b: u8) -> bool {
    CLASS[b as usize] & URI_BAD != 0
}

/// Bytes never allowed unescaped in a URI, and `@`.
#[inline]
pub(crate) fn is_uri_bad_or_at(b: u8) -> bool {
    CLASS[b as usize] & (URI_BAD | AT) != 0
}

/// True when `s` is a non-empty RFC 3261 token.
#[inline]
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_byte)
}

/// Linear white space inside an unfolded header value.
#[inline]
pub(crate) fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Trims spaces and tabs (and stray CR/LF of folded lines) on both sides.
#[inline]
pub(crate) fn trim(s: &str) -> &str {
    let b = s.as_bytes();
    let mut a = 0;
    let mut e = b.len();
    while a < e && is_ws(b[a]) {
        a += 1;
    }
    while e > a && is_ws(b[e - 1]) {
        e -= 1;
    }
    // White space is ASCII, so `a` and `e` are char boundaries.
    s.get(a..e).unwrap_or("")
}

/// Removes leading spaces and tabs (a byte loop: `trim_start_matches` with a
/// char pattern costs several times more on these short strings).
#[inline]
pub(crate) fn trim_start_sp(s: &str) -> &str {
    let n = s
        .bytes()
        .position(|b| b != b' ' && b != b'\t')
        .unwrap_or(s.len());
    // SP and HT are ASCII, so `n` is a char boundary.
    s.get(n..).unwrap_or("")
}

/// Parses `1*DIGIT` into a `u32`; `None` when empty, not digits or too large.
#[inline]
pub(crate) fn parse_u32(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 20 {
        // Leading zeros are legal ("0009"), but anything this long overflows anyway
        // unless it is zeros; handle that case in the slow path below.
        if s.is_empty() {
            return None;
        }
    }
    let mut v: u64 = 0;
    for b in s.bytes() {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u64::from(b - b'0');
        if v > u64::from(u32::MAX) {
            return None;
        }
    }
    u32::try_from(v).ok()
}

/// Finds the end of a quoted string that starts at `s[0] == '"'`; returns the
/// index just past the closing quote, or `None` when it is unterminated.
pub(crate) fn quoted_end(s: &[u8]) -> Option<usize> {
    let mut i = 1;
    while i < s.len() {
        i += super::simd::find2(s.get(i..)?, b'\\', b'"')?;
        match s[i] {
            b'\\' => i += 2,
            _ => return Some(i + 1),
        }
    }
    None
}

/// Splits a comma-separated header value into its elements, not splitting inside
/// quoted strings or `<...>`. Elements are trimmed; empty elements are yielded
/// (as `""`) so that validators can reject them.
pub(crate) struct ListIter<'a> {
    rest: Option<&'a str>,
    split: bool,
}

impl<'a> ListIter<'a> {
    pub(crate) fn new(s: &'a str) -> Self {
        ListIter {
            rest: Some(s),
            split: true,
        }
    }
    /// Yields `s` (trimmed) as one element: for headers that are not lists.
    pub(crate) fn whole(s: &'a str) -> Self {
        ListIter {
            rest: Some(s),
            split: false,
        }
    }
}

impl<'a> Iterator for ListIter<'a> {
    type Item = &'a str;
    fn next(&mut self) -> Option<&'a str> {
        let s = self.rest?;
        if !self.split {
            self.rest = None;
            return Some(trim(s));
        }
        let b = s.as_bytes();
        // Most values are one element: one SIMD search says so.
        if super::simd::find(b, b',').is_none() {
            self.rest = None;
            return Some(trim(s));
        }
        let mut i = 0;
        let mut in_angle = false;
        while i < b.len() {
            match memchr::memchr3(b',', b'"', if in_angle { b'>' } else { b'<' }, &b[i..]) {
                Some(n) => i += n,
                None => break,
            }
            match b[i] {
                b'"' => match quoted_end(&b[i..]) {
                    Some(n) => {
                        i += n;
                        continue;
                    }
                    None => break,
                },
                b'<' => in_angle = true,
                b'>' => in_angle = false,
                b',' if !in_angle => {
                    self.rest = Some(&s[i + 1..]);
                    return Some(trim(&s[..i]));
                }
                _ => {}
            }
            i += 1;
        }
        self.rest = None;
        Some(trim(s))
    }
}

/// Splits `s` at each `;` that is outside a quoted string.
pub(crate) struct SemiIter<'a> {
    rest: Option<&'a str>,
}

impl<'a> SemiIter<'a> {
    pub(crate) fn new(s: &'a str) -> Self {
        SemiIter { rest: Some(s) }
    }
}

impl<'a> Iterator for SemiIter<'a> {
    type Item = &'a str;
    fn next(&mut self) -> Option<&'a str> {
        let s = self.rest?;
        let b = s.as_bytes();
        let mut i = 0;
        while i < b.len() {
            match b[i..].iter().position(|&c| c == b';' || c == b'"') {
                Some(n) => i += n,
                None => break,
            }
            match b[i] {
                b'"' => match quoted_end(&b[i..]) {
                    Some(n) => {
                        i += n;
                        continue;
                    }
                    None => break,
                },
                b';' => {
                    self.rest = Some(&s[i + 1..]);
                    return Some(&s[..i]);
                }
                _ => {}
            }
            i += 1;
        }
        self.rest = None;
        Some(s)
    }
}

/// Removes surrounding double quotes, if any (escapes are left as they are).
pub(crate) fn unquote(s: &str) -> &str {
    if s.len() >= 2 && s.starts_with('"') && s.ends_with('"') {
        &s[1..s.len() - 1]
    } else {
        s
    }
}

/// Index of the first `b` in `s` (16 bytes per step, see [`super::simd`]).
#[inline]
pub(crate) fn find_byte(s: &str, b: u8) -> Option<usize> {
    super::simd::find(s.as_bytes(), b)
}
