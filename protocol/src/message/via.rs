//! The Via header (RFC 3261 20.42): sent-protocol, sent-by, params.

use super::lex::{is_host_byte, is_token, is_token_byte, is_ws, parse_u32, trim, trim_start_sp};
use super::params::{header_params_lax, header_params_with, Params};

/// One Via value, borrowing from the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Via<'a> {
    transport: &'a str,
    host: &'a str,
    port: Option<u16>,
    params: Params<'a>,
}

/// The common `SIP/2.0/UDP host` spelling without white space inside
/// sent-protocol: returns the transport and the text after the white space
/// that follows it. `None` sends the value through the general parse (which
/// allows LWS around `/` and gives the errors).
fn sent_protocol_fast(s: &str) -> Option<(&str, &str)> {
    let b = s.as_bytes();
    if b.len() < 9 || !b[..4].eq_ignore_ascii_case(b"SIP/") || &b[4..8] != b"2.0/" {
        return None;
    }
    let end = 8 + b[8..].iter().position(|&c| !is_token_byte(c))?;
    if end == 8 || !matches!(b[end], b' ' | b'\t') {
        return None;
    }
    Some((&s[8..end], trim_start_sp(&s[end..])))
}

impl<'a> Via<'a> {
    /// Parses one `sent-protocol LWS sent-by *( SEMI via-params )` element.
    /// LWS is allowed around `/` and `:`, as RFC 4475 3.1.1.1 exercises.
    pub fn parse(s: &'a str) -> Result<Via<'a>, &'static str> {
        Self::parse_mode(s, true)
    }

    /// `strict == false` is for values [`super::Message::parse`] already
    /// validated: the structure is read, the character checks are skipped.
    pub(crate) fn parse_mode(s: &'a str, strict: bool) -> Result<Via<'a>, &'static str> {
        Self::parse_full(s, strict).map(|(via, _)| via)
    }

    /// Strict parse that also returns the `branch` found on the way (the
    /// parser records it without a second look at the parameters).
    pub(crate) fn parse_with_branch(
        s: &'a str,
    ) -> Result<(Via<'a>, Option<&'a str>), &'static str> {
        Self::parse_full(s, true)
    }

    fn parse_full(s: &'a str, strict: bool) -> Result<(Via<'a>, Option<&'a str>), &'static str> {
        let mut rest = trim(s);
        let (transport, rest) = match sent_protocol_fast(rest) {
            Some(tr) => tr,
            None => {
                let mut parts = [""; 3];
                for (i, part) in parts.iter_mut().enumerate() {
                    let end = rest
                        .bytes()
                        .position(|b| b == b'/' || is_ws(b))
                        .unwrap_or(rest.len());
                    *part = &rest[..end];
                    rest = trim_start_sp(&rest[end..]);
                    if i < 2 {
                        rest = rest
                            .strip_prefix('/')
                            .ok_or("sent-protocol is not name/version/transport")?
                            .trim_start_matches([' ', '\t']);
                    }
                }
                let [name, version, transport] = parts;
                if !name.eq_ignore_ascii_case("SIP") || version != "2.0" {
                    return Err("sent-protocol is not SIP/2.0");
                }
                if strict && !is_token(transport) {
                    return Err("bad transport token");
                }
                (transport, rest)
            }
        };
        // sent-by: host [ ":" port ], then params.
        let b = rest.as_bytes();
        // Host-name bytes up to a delimiter: found and checked in one scan.
        let name_end = b.iter().position(|&c| !is_host_byte(c)).unwrap_or(b.len());
        let plain = b
            .get(name_end)
            .is_none_or(|&c| c == b':' || c == b';' || is_ws(c));
        let host_end = if plain {
            name_end
        } else if b.first() == Some(&b'[') {
            super::lex::find_byte(rest, b']').ok_or("unterminated IPv6 reference in sent-by")? + 1
        } else {
            b.iter()
                .position(|&c| c == b':' || c == b';' || is_ws(c))
                .unwrap_or(b.len())
        };
        let host = &rest[..host_end];
        if host.is_empty()
            || strict
                && !plain
                && !host.bytes().all(|c| {
                    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'[' | b']' | b':')
                })
        {
            return Err("bad sent-by host");
        }
        let mut rest = trim_start_sp(&rest[host_end..]);
        let mut port = None;
        if let Some(p) = rest.strip_prefix(':') {
            let p = trim_start_sp(p);
            let end = p
                .bytes()
                .position(|c| !c.is_ascii_digit())
                .unwrap_or(p.len());
            let n = parse_u32(&p[..end]).ok_or("sent-by port is not a number")?;
            port = Some(u16::try_from(n).map_err(|_| "sent-by port out of range")?);
            rest = &p[end..];
        }
        if !strict {
            let via = Via {
                transport,
                host,
                port,
                params: Params::new(header_params_lax(rest)),
            };
            return Ok((via, None));
        }
        let mut branch = None;
        let params = Params::new(header_params_with(rest, |name, value| {
            if name.eq_ignore_ascii_case("branch") {
                if !value.is_some_and(is_token) {
                    return Err("branch parameter is not a token");
                }
                if branch.is_none() {
                    branch = value;
                }
            } else if name.eq_ignore_ascii_case("ttl") {
                value
                    .and_then(parse_u32)
                    .filter(|t| *t <= 255)
                    .ok_or("ttl parameter out of range")?;
            } else if name.eq_ignore_ascii_case("rport") {
                if let Some(rport) = value {
                    parse_u32(rport)
                        .filter(|p| *p <= 65535)
                        .ok_or("rport parameter is not a port")?;
                }
            }
            Ok(())
        })?);
        let via = Via {
            transport,
            host,
            port,
            params,
        };
        Ok((via, branch))
    }

    /// The transport token as written (`UDP`, `TCP`, `TLS`, `SCTP`, `WS`...).
    pub fn transport(&self) -> &'a str {
        self.transport
    }
    /// sent-by host (IPv6 references keep their brackets).
    pub fn host(&self) -> &'a str {
        self.host
    }
    /// sent-by port, if written.
    pub fn port(&self) -> Option<u16> {
        self.port
    }
    /// All via-params.
    pub fn params(&self) -> Params<'a> {
        self.params
    }
    /// The `branch` parameter.
    pub fn branch(&self) -> Option<&'a str> {
        self.params.value("branch")
    }
    /// The `received` parameter.
    pub fn received(&self) -> Option<&'a str> {
        self.params.value("received")
    }
    /// `None`: no `rport`; `Some(None)`: `;rport` without value (a request
    /// asking for it); `Some(Some(port))`: filled in by the server.
    pub fn rport(&self) -> Option<Option<u16>> {
        self.params
            .get("rport")
            .map(|v| v.and_then(|p| parse_u32(p).and_then(|n| u16::try_from(n).ok())))
    }
    /// The `maddr` parameter.
    pub fn maddr(&self) -> Option<&'a str> {
        self.params.value("maddr")
    }
    /// The `ttl` parameter.
    pub fn ttl(&self) -> Option<u8> {
        self.params
            .value("ttl")
            .and_then(parse_u32)
            .and_then(|t| u8::try_from(t).ok())
    }
}
