//! URIs: `sip:`/`sips:` (RFC 3261 19.1), `tel:` (RFC 3966) and any other
//! absolute URI kept opaque.
//!
//! Hand-written: the `url`/`http` crates do not know SIP's userinfo rules
//! (`;` and `?` are legal in the user part) and they allocate.

use std::fmt;

use super::lex::{find_byte, is_host_byte, is_param_byte, is_uri_bad_byte, is_uri_bad_or_at};
use super::params::Params;

/// A URI scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme<'a> {
    /// `sip:` (RFC 3261).
    Sip,
    /// `sips:`: every hop over TLS.
    Sips,
    /// `tel:` (RFC 3966): a telephone number.
    Tel,
    /// Any other scheme (RFC 3261 `absoluteURI`), e.g. `http`, `urn`.
    Other(&'a str),
}

/// A parsed URI borrowing from the message.
///
/// For `sip`/`sips`: user, password, host (IPv6 references keep their
/// brackets), port, `;params` and `?headers`. For `tel`: the number is
/// [`Uri::user`] and its `;params` are [`Uri::params`]. Other schemes are opaque
/// ([`Uri::opaque`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Uri<'a> {
    raw: &'a str,
    scheme: Scheme<'a>,
    user: Option<&'a str>,
    password: Option<&'a str>,
    host: &'a str,
    port: Option<u16>,
    params: &'a str,
    headers: Option<&'a str>,
    opaque: &'a str,
}

impl<'a> Uri<'a> {
    /// Parses a URI. The whole input must be the URI (no surrounding spaces).
    pub fn parse(s: &'a str) -> Result<Uri<'a>, &'static str> {
        Self::parse_mode(s, true)
    }

    /// `strict == false` reads the structure of a URI that was validated
    /// before, skipping the character checks.
    pub(crate) fn parse_mode(s: &'a str, strict: bool) -> Result<Uri<'a>, &'static str> {
        // Fast path for the common case.
        if s.len() > 4 && s.as_bytes()[..4].eq_ignore_ascii_case(b"sip:") {
            let mut uri = Uri::empty(s, Scheme::Sip, &s[4..]);
            uri.parse_sip(&s[4..], strict)?;
            return Ok(uri);
        }
        let colon = find_byte(s, b':').ok_or("no scheme")?;
        let scheme_s = &s[..colon];
        let sb = scheme_s.as_bytes();
        if sb.is_empty()
            || !sb[0].is_ascii_alphabetic()
            || !sb
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        {
            return Err("bad scheme");
        }
        let rest = &s[colon + 1..];
        if rest.is_empty() {
            return Err("empty after scheme");
        }
        let scheme = if scheme_s.eq_ignore_ascii_case("sip") {
            Scheme::Sip
        } else if scheme_s.eq_ignore_ascii_case("sips") {
            Scheme::Sips
        } else if scheme_s.eq_ignore_ascii_case("tel") {
            Scheme::Tel
        } else {
            Scheme::Other(scheme_s)
        };
        let mut uri = Uri::empty(s, scheme, rest);
        if strict
            && !matches!(scheme, Scheme::Sip | Scheme::Sips)
            && rest.bytes().any(is_uri_bad_byte)
        {
            return Err("white space or delimiter inside URI");
        }
        match scheme {
            Scheme::Sip | Scheme::Sips => uri.parse_sip(rest, strict)?,
            Scheme::Tel => {
                let (num, params) = match find_byte(rest, b';') {
                    Some(i) => (&rest[..i], Some(&rest[i + 1..])),
                    None => (rest, None),
                };
                if num.is_empty() {
                    return Err("empty telephone number");
                }
                if let (true, Some(params)) = (strict, params) {
                    validate_uri_params(params)?;
                }
                uri.user = Some(num);
                uri.params = params.unwrap_or("");
            }
            Scheme::Other(_) => {}
        }
        Ok(uri)
    }

    fn empty(raw: &'a str, scheme: Scheme<'a>, rest: &'a str) -> Uri<'a> {
        Uri {
            raw,
            scheme,
            user: None,
            password: None,
            host: "",
            port: None,
            params: "",
            headers: None,
            opaque: rest,
        }
    }

    fn parse_sip(&mut self, rest: &'a str, strict: bool) -> Result<(), &'static str> {
        if rest.is_empty() {
            return Err("empty after scheme");
        }
        // The userinfo ends at the first '@': '@' is legal neither in the host,
        // nor in params or headers, while ';', '?' and ',' are legal in the user.
        // One pass finds it and, when strict, rejects bytes no URI may hold.
        let at = if strict {
            let b = rest.as_bytes();
            let mut at = None;
            let mut i = 0;
            while let Some(n) = b[i..].iter().position(|&c| is_uri_bad_or_at(c)) {
                i += n;
                if b[i] != b'@' {
                    return Err("white space or delimiter inside URI");
                }
                at = at.or(Some(i));
                i += 1;
            }
            at
        } else {
            find_byte(rest, b'@')
        };
        let hostpart = match at {
            Some(at) => {
                let userinfo = &rest[..at];
                let (user, password) = match find_byte(userinfo, b':') {
                    Some(c) => (&userinfo[..c], Some(&userinfo[c + 1..])),
                    None => (userinfo, None),
                };
                if user.is_empty() {
                    return Err("empty user part");
                }
                self.user = Some(user);
                self.password = password;
                &rest[at + 1..]
            }
            None => rest,
        };
        let hb = hostpart.as_bytes();
        let host_end = if hb.first() == Some(&b'[') {
            let close = find_byte(hostpart, b']').ok_or("unterminated IPv6 reference")?;
            let inner = &hostpart[1..close];
            if inner.is_empty()
                || !inner
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
            {
                return Err("bad IPv6 reference");
            }
            close + 1
        } else {
            // Host name characters up to ':', ';', '?' or the end.
            let end = hb
                .iter()
                .position(|&b| !is_host_byte(b))
                .unwrap_or(hb.len());
            if strict && end < hb.len() && !matches!(hb[end], b':' | b';' | b'?') {
                return Err("bad host");
            }
            end
        };
        let host = &hostpart[..host_end];
        if host.is_empty() {
            return Err("empty host");
        }
        self.host = host;
        let mut after = &hostpart[host_end..];
        if let Some(p) = after.strip_prefix(':') {
            let end = p
                .bytes()
                .position(|b| matches!(b, b';' | b'?'))
                .unwrap_or(p.len());
            let port = super::lex::parse_u32(&p[..end]).ok_or("bad port")?;
            self.port = Some(u16::try_from(port).map_err(|_| "port out of range")?);
            after = &p[end..];
        }
        let (params, headers) = match find_byte(after, b'?') {
            Some(q) => (&after[..q], Some(&after[q + 1..])),
            None => (after, None),
        };
        if let Some(p) = params.strip_prefix(';') {
            if strict {
                validate_uri_params(p)?;
            }
            self.params = p;
        } else if !params.is_empty() {
            return Err("junk after host");
        }
        if let Some(h) = headers.filter(|_| strict) {
            if h.is_empty() || h.split('&').any(|kv| kv.is_empty() || kv.starts_with('=')) {
                return Err("bad URI headers");
            }
        }
        self.headers = headers;
        Ok(())
    }

    /// The URI exactly as written.
    pub fn as_str(&self) -> &'a str {
        self.raw
    }
    /// Its scheme.
    pub fn scheme(&self) -> Scheme<'a> {
        self.scheme
    }
    /// The user part (still percent-escaped), or the number of a `tel:` URI.
    pub fn user(&self) -> Option<&'a str> {
        self.user
    }
    /// The password of `sip:user:password@host` (deprecated, but parsed).
    pub fn password(&self) -> Option<&'a str> {
        self.password
    }
    /// The host; IPv6 references keep their brackets (`[2001:db8::1]`).
    /// Empty for `tel:` and other schemes.
    pub fn host(&self) -> &'a str {
        self.host
    }
    /// The explicit port, if any.
    pub fn port(&self) -> Option<u16> {
        self.port
    }
    /// The `;uri-parameters` (`transport`, `lr`, `maddr`, `user`...).
    pub fn params(&self) -> Params<'a> {
        Params::new(self.params)
    }
    /// The `?headers` part, without the `?`.
    pub fn headers(&self) -> Option<&'a str> {
        self.headers
    }
    /// Everything after `scheme:` (the whole content for opaque schemes).
    pub fn opaque(&self) -> &'a str {
        self.opaque
    }

    /// Whether two SIP URIs name the same resource under the comparison
    /// rules of RFC 3261 19.1.4: user and password compared exactly after
    /// unescaping, host case-insensitively, ports only equal when both are
    /// written the same way (an absent port never equals an explicit 5060),
    /// a parameter present in both must match case-insensitively, and
    /// `user`, `ttl`, `method` and `maddr` must be present in both or in
    /// neither. Registrars echo Contacts with reordered parameters and
    /// changed case, so a byte comparison would miss our own binding.
    /// Headers (`?...`) are not compared: no Contact of ours carries any.
    /// Other schemes compare case-insensitively as written.
    pub fn equivalent(&self, other: &Uri<'_>) -> bool {
        let sip = |s: Scheme<'_>| matches!(s, Scheme::Sip | Scheme::Sips);
        if !sip(self.scheme) || !sip(other.scheme) {
            return self.raw.eq_ignore_ascii_case(other.raw);
        }
        if self.scheme != other.scheme
            || !same_escaped(self.user, other.user)
            || !same_escaped(self.password, other.password)
            || !self.host.eq_ignore_ascii_case(other.host)
            || self.port != other.port
        {
            return false;
        }
        let (mine, theirs) = (self.params(), other.params());
        let one_sided = ["user", "ttl", "method", "maddr"]
            .iter()
            .any(|name| mine.contains(name) != theirs.contains(name));
        !one_sided
            && mine.iter().all(|(name, value)| match theirs.get(name) {
                None => true,
                Some(other) => match (value, other) {
                    (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
                    (None, None) => true,
                    _ => false,
                },
            })
    }
}

/// `a` and `b` equal after `%XX` unescaping (RFC 3261 19.1.4: `%61lice`
/// is `alice`).
fn same_escaped(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => a == b || unescaped(a).eq(unescaped(b)),
        _ => false,
    }
}

fn unescaped(s: &str) -> impl Iterator<Item = u8> + '_ {
    let b = s.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        let c = *b.get(i)?;
        let hex = |j: usize| b.get(j).and_then(|h| (*h as char).to_digit(16));
        if c == b'%' {
            if let (Some(h), Some(l)) = (hex(i + 1), hex(i + 2)) {
                i += 3;
                return Some((h * 16 + l) as u8);
            }
        }
        i += 1;
        Some(c)
    })
}

impl fmt::Display for Uri<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.raw)
    }
}

/// URI parameters: non-empty names of paramchars, optional `=value`.
fn validate_uri_params(p: &str) -> Result<(), &'static str> {
    // One pass: `name[=value]` segments separated by `;`, both non-empty
    // runs of paramchars.
    let b = p.as_bytes();
    let run = |mut i: usize| {
        while i < b.len() && is_param_byte(b[i]) {
            i += 1;
        }
        i
    };
    let mut i = 0;
    loop {
        let name_start = i;
        i = run(i);
        if i == name_start {
            return Err("bad URI parameter name");
        }
        let mut in_value = false;
        if i < b.len() && b[i] == b'=' {
            let value_start = i + 1;
            i = run(value_start);
            if i == value_start {
                return Err("bad URI parameter value");
            }
            in_value = true;
        }
        if i == b.len() {
            return Ok(());
        }
        if b[i] != b';' {
            return Err(if in_value {
                "bad URI parameter value"
            } else {
                "bad URI parameter name"
            });
        }
        i += 1;
    }
}
