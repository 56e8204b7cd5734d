//! `name-addr` / `addr-spec` values (From, To, Contact, Route, Record-Route,
//! Call-Info...) with their header parameters.

use super::lex::{find_byte, is_token_byte, is_ws, quoted_end, trim};
use super::params::{header_params_lax, header_params_with, Params};
use super::uri::Uri;

/// An address: optional display name, URI, header parameters (`tag`, `q`,
/// `expires`...). Borrows from the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameAddr<'a> {
    display_name: Option<&'a str>,
    uri: Uri<'a>,
    params: Params<'a>,
    angle: bool,
}

impl<'a> NameAddr<'a> {
    /// Parses one `(name-addr / addr-spec) *(SEMI param)` element.
    pub fn parse(s: &'a str) -> Result<NameAddr<'a>, &'static str> {
        Self::parse_with(s, |_, _| Ok(()), true)
    }

    /// For values [`super::Message::parse`] already validated: structure only.
    pub(crate) fn parse_mode(s: &'a str, strict: bool) -> Result<NameAddr<'a>, &'static str> {
        Self::parse_with(s, |_, _| Ok(()), strict)
    }

    /// Parses a Contact element: also checks `expires` (delta-seconds) and `q`
    /// (qvalue).
    /// Strict parse that also returns the `tag` found on the way.
    pub(crate) fn parse_with_tag(
        s: &'a str,
    ) -> Result<(NameAddr<'a>, Option<&'a str>), &'static str> {
        // The first `tag` parameter counts, as in [`Params::value`].
        let mut tag: Option<Option<&'a str>> = None;
        let addr = Self::parse_with(
            s,
            |name, value| {
                if tag.is_none() && name.eq_ignore_ascii_case("tag") {
                    tag = Some(value);
                }
                Ok(())
            },
            true,
        )?;
        Ok((addr, tag.flatten()))
    }

    pub(crate) fn parse_contact(s: &'a str, strict: bool) -> Result<NameAddr<'a>, &'static str> {
        Self::parse_with(s, check_contact_param, strict)
    }

    fn parse_with(
        s: &'a str,
        check: impl FnMut(&'a str, Option<&'a str>) -> Result<(), &'static str>,
        strict: bool,
    ) -> Result<NameAddr<'a>, &'static str> {
        let s = trim(s);
        let b = s.as_bytes();
        if b.is_empty() {
            return Err("empty address");
        }
        let (display_name, lt) = if b[0] == b'"' {
            let end = quoted_end(b).ok_or("unterminated quoted display name")?;
            let after = &s[end..];
            let skip = after.len() - after.trim_start_matches([' ', '\t']).len();
            if !s[end + skip..].starts_with('<') {
                return Err("quoted display name not followed by <URI>");
            }
            (Some(&s[..end]), Some(end + skip))
        } else {
            // The display name before `<` is short or absent: a plain loop
            // beats a SIMD search's set-up here.
            match b.iter().position(|&c| c == b'<') {
                Some(lt) => {
                    let dn = trim(&s[..lt]);
                    if strict
                        && !dn
                            .bytes()
                            .all(|c| is_token_byte(c) || c == b' ' || c == b'\t')
                    {
                        return Err("display name has characters that need quoting");
                    }
                    ((!dn.is_empty()).then_some(dn), Some(lt))
                }
                None => (None, None),
            }
        };
        match lt {
            Some(lt) => {
                let inner_and_rest = &s[lt + 1..];
                let gt = find_byte(inner_and_rest, b'>').ok_or("missing '>'")?;
                let inner = &inner_and_rest[..gt];
                if inner.bytes().next().is_some_and(is_ws)
                    || inner.bytes().last().is_some_and(is_ws)
                {
                    return Err("white space inside <URI>");
                }
                let uri = Uri::parse_mode(inner, strict)?;
                let after = &inner_and_rest[gt + 1..];
                let params = Params::new(if strict {
                    header_params_with(after, check)?
                } else {
                    header_params_lax(after)
                });
                Ok(NameAddr {
                    display_name,
                    uri,
                    params,
                    angle: true,
                })
            }
            None => {
                // addr-spec: the URI ends at the first ';' or white space; it may
                // then carry no URI params or headers (RFC 3261 20).
                let end = b
                    .iter()
                    .position(|&c| c == b';' || is_ws(c))
                    .unwrap_or(b.len());
                let uri_s = &s[..end];
                if uri_s.contains(['?', ',']) {
                    return Err("URI with headers or commas must be enclosed in <>");
                }
                let uri = Uri::parse_mode(uri_s, strict)?;
                let params = Params::new(if strict {
                    header_params_with(&s[end..], check)?
                } else {
                    header_params_lax(&s[end..])
                });
                Ok(NameAddr {
                    display_name: None,
                    uri,
                    params,
                    angle: false,
                })
            }
        }
    }

    /// The display name as written (a quoted one keeps its quotes and escapes).
    pub fn display_name(&self) -> Option<&'a str> {
        self.display_name
    }
    /// The URI.
    pub fn uri(&self) -> &Uri<'a> {
        &self.uri
    }
    /// The header parameters after the address.
    pub fn params(&self) -> Params<'a> {
        self.params
    }
    /// The `tag` parameter (From/To).
    pub fn tag(&self) -> Option<&'a str> {
        self.params.value("tag")
    }
    /// The `expires` parameter of a Contact, if it is a number.
    pub fn expires(&self) -> Option<u32> {
        self.params.value("expires").and_then(super::lex::parse_u32)
    }
    /// The `q` parameter as written.
    pub fn q(&self) -> Option<&'a str> {
        self.params.value("q")
    }
    /// Whether the URI was enclosed in `<>`.
    pub fn has_angle_brackets(&self) -> bool {
        self.angle
    }
}

/// Contact parameters with a meaning: `expires` is delta-seconds, `q` a qvalue.
pub(super) fn check_contact_param(name: &str, value: Option<&str>) -> Result<(), &'static str> {
    if name.eq_ignore_ascii_case("expires") {
        // 1*DIGIT is the grammar; a value beyond 2^32-1 is kept and reads as
        // no expiry (`NameAddr::expires` is `None`): the message stands.
        value
            .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
            .ok_or("expires parameter is not a decimal number")?;
    } else if name.eq_ignore_ascii_case("q") {
        let q = value.ok_or("q parameter without value")?;
        let ok = match q.split_once('.') {
            Some((i, f)) => {
                (i == "0" || (i == "1" && f.bytes().all(|c| c == b'0')))
                    && f.len() <= 3
                    && f.bytes().all(|c| c.is_ascii_digit())
            }
            None => q == "0" || q == "1",
        };
        if !ok {
            return Err("q parameter is not a qvalue");
        }
    }
    Ok(())
}
