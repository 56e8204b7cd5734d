//! Digest authentication for SIP (RFC 3261 section 22, RFC 2617, RFC 7616).
//!
//! A line that receives a 401 (`WWW-Authenticate`) or 407 (`Proxy-Authenticate`)
//! parses the challenge with [`Challenge::parse`], then asks a [`DigestClient`]
//! for the matching `Authorization` / `Proxy-Authorization` header value.
//!
//! Why hand-written: the design fixes the RustCrypto hashes (`md-5`, `sha2`); the
//! `digest_auth` crate targets HTTP, draws its own client nonce and keeps the
//! nonce count inside the parsed header, whereas a SIP line needs the cnonce
//! injected (deterministic tests, a seeded RNG in load tests) and one nonce count
//! per nonce that survives re-parsing the same challenge on every refresh. The
//! challenge grammar (RFC 7235 auth-params) is small enough to parse here.
//!
//! Passwords never appear in `Debug` output: [`Secret`] prints as `***`.

use std::fmt;

use md5::Md5;
use sha2::{Digest, Sha256};

/// A password or other credential whose value must never be printed or logged.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps a credential; from here on it only prints as `***`.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The cleartext, for hashing only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether no credential was configured (e.g. `reg.x.auth.password` left empty).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Why a challenge could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The challenge uses another scheme (e.g. `Basic`); only Digest is answered.
    #[error("authentication scheme {0:?} is not Digest")]
    NotDigest(String),
    /// A parameter the Digest challenge must carry (`realm`, `nonce`) is missing.
    #[error("digest challenge is missing the {0} parameter")]
    MissingParam(&'static str),
    /// An `algorithm=` other than MD5, MD5-sess, SHA-256 or SHA-256-sess.
    #[error("digest algorithm {0:?} is not supported (MD5, MD5-sess, SHA-256, SHA-256-sess)")]
    UnsupportedAlgorithm(String),
    /// The challenge offers only `qop` values we do not implement.
    #[error("digest challenge offers no supported qop (auth, auth-int): {0:?}")]
    UnsupportedQop(String),
    /// The challenge header cannot be parsed.
    #[error("malformed digest challenge at byte {at}: {reason}")]
    Malformed {
        /// Byte offset in the header value where parsing stopped.
        at: usize,
        /// What was expected there.
        reason: &'static str,
    },
}

/// The hash algorithm of a challenge (RFC 7616 section 3.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    /// `MD5` (RFC 2617), the default when a challenge names none.
    Md5,
    /// `MD5-sess`: HA1 also hashes the nonce and cnonce.
    Md5Sess,
    /// `SHA-256` (RFC 7616).
    Sha256,
    /// `SHA-256-sess` (RFC 7616): session variant of SHA-256.
    Sha256Sess,
}

impl Algorithm {
    fn parse(token: &str) -> Result<Self, AuthError> {
        match token.to_ascii_uppercase().as_str() {
            "MD5" => Ok(Algorithm::Md5),
            "MD5-SESS" => Ok(Algorithm::Md5Sess),
            "SHA-256" => Ok(Algorithm::Sha256),
            "SHA-256-SESS" => Ok(Algorithm::Sha256Sess),
            _ => Err(AuthError::UnsupportedAlgorithm(token.to_string())),
        }
    }

    /// The token as written in the `algorithm=` parameter.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
        }
    }

    fn is_session(self) -> bool {
        matches!(self, Algorithm::Md5Sess | Algorithm::Sha256Sess)
    }

    /// Lower-case hex digest of `data`.
    fn hash(self, data: &[u8]) -> String {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => hex::encode(Md5::digest(data)),
            Algorithm::Sha256 | Algorithm::Sha256Sess => hex::encode(Sha256::digest(data)),
        }
    }
}

/// Quality of protection (RFC 7616 section 3.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Qop {
    /// `qop=auth`: the response covers method and URI only.
    Auth,
    /// `qop=auth-int`: the response also covers the message body.
    AuthInt,
}

impl Qop {
    /// The token as written in `qop=`.
    pub fn as_str(self) -> &'static str {
        match self {
            Qop::Auth => "auth",
            Qop::AuthInt => "auth-int",
        }
    }
}

/// Which response carried the challenge; it decides the header names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChallengeKind {
    /// 401 with `WWW-Authenticate`, answered with `Authorization`.
    Www,
    /// 407 with `Proxy-Authenticate`, answered with `Proxy-Authorization`.
    Proxy,
}

impl ChallengeKind {
    /// The kind a response status asks for, if it is a challenge.
    pub fn from_status(status: u16) -> Option<Self> {
        match status {
            401 => Some(ChallengeKind::Www),
            407 => Some(ChallengeKind::Proxy),
            _ => None,
        }
    }

    /// The header carrying this kind of challenge (`WWW-Authenticate` or `Proxy-Authenticate`).
    pub fn challenge_header(self) -> &'static str {
        match self {
            ChallengeKind::Www => "WWW-Authenticate",
            ChallengeKind::Proxy => "Proxy-Authenticate",
        }
    }

    /// The header our answer goes in (`Authorization` or `Proxy-Authorization`).
    pub fn authorization_header(self) -> &'static str {
        match self {
            ChallengeKind::Www => "Authorization",
            ChallengeKind::Proxy => "Proxy-Authorization",
        }
    }
}

/// A parsed `Digest` challenge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    /// The protection space; the credentials are chosen and hashed for it.
    pub realm: String,
    /// Server nonce, echoed in the answer; a `stale` challenge brings a new one.
    pub nonce: String,
    /// Opaque server data, returned unchanged when present.
    pub opaque: Option<String>,
    /// `MD5` when the challenge names none (RFC 2617).
    pub algorithm: Algorithm,
    /// Supported qop values offered, in the server's order; empty when the
    /// challenge has no `qop` (RFC 2069 compatibility: no cnonce, no nc).
    pub qop: Vec<Qop>,
    /// `stale=TRUE`: the nonce expired but the credentials were right, so retry
    /// with the new nonce without asking the user again.
    pub stale: bool,
    /// `domain=`: the URIs the credentials apply to; `None` when not given.
    pub domain: Option<String>,
}

impl Challenge {
    /// Parses a `WWW-Authenticate` / `Proxy-Authenticate` header value such as
    /// `Digest realm="a", nonce="b", qop="auth,auth-int", algorithm=MD5`.
    pub fn parse(value: &str) -> Result<Self, AuthError> {
        let value = value.trim_start();
        let scheme_end = value
            .find(|c: char| c.is_ascii_whitespace())
            .unwrap_or(value.len());
        let scheme = &value[..scheme_end];
        if !scheme.eq_ignore_ascii_case("Digest") {
            return Err(AuthError::NotDigest(scheme.to_string()));
        }
        let offset = value.len() - value[scheme_end..].len();
        let params = parse_params(&value[scheme_end..], offset)?;

        let mut realm = None;
        let mut nonce = None;
        let mut opaque = None;
        let mut algorithm = Algorithm::Md5;
        let mut qop = None;
        let mut stale = false;
        let mut domain = None;
        for (name, val) in params {
            match name.to_ascii_lowercase().as_str() {
                "realm" => realm = Some(val),
                "nonce" => nonce = Some(val),
                "opaque" => opaque = Some(val),
                "algorithm" => algorithm = Algorithm::parse(&val)?,
                "qop" => qop = Some(val),
                "stale" => stale = val.eq_ignore_ascii_case("true"),
                "domain" => domain = Some(val),
                _ => {} // unknown auth-params are ignored (RFC 7616 section 3.3)
            }
        }
        let qop = match qop {
            None => Vec::new(),
            Some(list) => {
                let offered: Vec<Qop> = list
                    .split(',')
                    .filter_map(|q| match q.trim().to_ascii_lowercase().as_str() {
                        "auth" => Some(Qop::Auth),
                        "auth-int" => Some(Qop::AuthInt),
                        _ => None,
                    })
                    .collect();
                if offered.is_empty() {
                    return Err(AuthError::UnsupportedQop(list));
                }
                offered
            }
        };
        Ok(Challenge {
            realm: realm.ok_or(AuthError::MissingParam("realm"))?,
            nonce: nonce.ok_or(AuthError::MissingParam("nonce"))?,
            opaque,
            algorithm,
            qop,
            stale,
            domain,
        })
    }

    /// The qop a client answers with: `auth` when offered (no body hashing),
    /// else `auth-int`, else none.
    pub fn preferred_qop(&self) -> Option<Qop> {
        if self.qop.contains(&Qop::Auth) {
            Some(Qop::Auth)
        } else {
            self.qop.first().copied()
        }
    }
}

/// Splits `name=token, name="quoted"` pairs; `offset` makes error positions
/// relative to the whole header value.
fn parse_params(input: &str, offset: usize) -> Result<Vec<(String, String)>, AuthError> {
    let bytes = input.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let err = |at: usize, reason| AuthError::Malformed {
        at: offset + at,
        reason,
    };
    loop {
        while i < bytes.len() && (bytes[i].is_ascii_whitespace() || bytes[i] == b',') {
            i += 1;
        }
        if i == bytes.len() {
            return Ok(out);
        }
        let start = i;
        while i < bytes.len() && is_token_char(bytes[i]) {
            i += 1;
        }
        if i == start {
            return Err(err(i, "expected a parameter name"));
        }
        let name = &input[start..i];
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i == bytes.len() || bytes[i] != b'=' {
            return Err(err(i, "expected '=' after a parameter name"));
        }
        i += 1;
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let value = if i < bytes.len() && bytes[i] == b'"' {
            i += 1;
            let mut value = String::new();
            loop {
                let Some(c) = input[i..].chars().next() else {
                    return Err(err(i, "unterminated quoted string"));
                };
                i += c.len_utf8();
                match c {
                    '"' => break,
                    '\\' => {
                        let Some(escaped) = input[i..].chars().next() else {
                            return Err(err(i, "unterminated quoted string"));
                        };
                        i += escaped.len_utf8();
                        value.push(escaped);
                    }
                    _ => value.push(c),
                }
            }
            value
        } else {
            let vstart = i;
            while i < bytes.len() && is_token_char(bytes[i]) {
                i += 1;
            }
            if i == vstart {
                return Err(err(i, "expected a token or quoted string"));
            }
            input[vstart..i].to_string()
        };
        out.push((name.to_string(), value));
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i < bytes.len() && bytes[i] != b',' {
            return Err(err(i, "expected ',' between parameters"));
        }
    }
}

/// RFC 7230 tchar, plus '/' which real servers put in unquoted nonces.
fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~/:".contains(&b)
}

/// What a request needs to answer a challenge.
#[derive(Clone, Copy, Debug)]
pub struct RequestInfo<'a> {
    /// The SIP method of the request (`REGISTER`, `INVITE`, ...), hashed into HA2.
    pub method: &'a str,
    /// The Request-URI, written as-is into `uri=`.
    pub uri: &'a str,
    /// The message body; hashed only for `qop=auth-int`.
    pub body: &'a [u8],
}

/// A computed answer; `Display` writes the header value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authorization {
    /// Whether it answers a 401 or a 407, which picks the header name.
    pub kind: ChallengeKind,
    /// `username=`: the line's authentication user id.
    pub username: String,
    /// `realm=`, copied from the challenge.
    pub realm: String,
    /// `nonce=`, copied from the challenge.
    pub nonce: String,
    /// `uri=`: the Request-URI as sent.
    pub uri: String,
    /// `response=`: the hex digest proving knowledge of the password.
    pub response: String,
    /// `algorithm=`, the challenge's.
    pub algorithm: Algorithm,
    /// `opaque=`, echoed from the challenge when it had one.
    pub opaque: Option<String>,
    /// `(qop, cnonce, nc)` when the challenge offered a qop.
    pub qop: Option<(Qop, String, u32)>,
}

impl Authorization {
    /// `Authorization` or `Proxy-Authorization`.
    pub fn header_name(&self) -> &'static str {
        self.kind.authorization_header()
    }
}

impl fmt::Display for Authorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{}\", response=\"{}\", algorithm={}",
            quote_escape(&self.username),
            quote_escape(&self.realm),
            quote_escape(&self.nonce),
            quote_escape(&self.uri),
            self.response,
            self.algorithm.as_str()
        )?;
        if let Some((_, cnonce, _)) = &self.qop {
            write!(f, ", cnonce=\"{}\"", quote_escape(cnonce))?;
        }
        if let Some(opaque) = &self.opaque {
            write!(f, ", opaque=\"{}\"", quote_escape(opaque))?;
        }
        if let Some((qop, _, nc)) = &self.qop {
            write!(f, ", qop={}, nc={:08x}", qop.as_str(), nc)?;
        }
        Ok(())
    }
}

fn quote_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Computes the digest `response` (RFC 7616 section 3.4.1); `nc` and `cnonce`
/// are only used when `qop` is `Some`.
pub fn compute_response(
    challenge: &Challenge,
    username: &str,
    password: &Secret,
    request: &RequestInfo<'_>,
    qop: Option<Qop>,
    cnonce: &str,
    nc: u32,
) -> String {
    let alg = challenge.algorithm;
    let mut ha1 =
        alg.hash(format!("{username}:{}:{}", challenge.realm, password.expose()).as_bytes());
    if alg.is_session() {
        ha1 = alg.hash(format!("{ha1}:{}:{cnonce}", challenge.nonce).as_bytes());
    }
    let ha2 = match qop {
        Some(Qop::AuthInt) => alg.hash(
            format!(
                "{}:{}:{}",
                request.method,
                request.uri,
                alg.hash(request.body)
            )
            .as_bytes(),
        ),
        _ => alg.hash(format!("{}:{}", request.method, request.uri).as_bytes()),
    };
    match qop {
        Some(q) => alg.hash(
            format!(
                "{ha1}:{}:{nc:08x}:{cnonce}:{}:{ha2}",
                challenge.nonce,
                q.as_str()
            )
            .as_bytes(),
        ),
        None => alg.hash(format!("{ha1}:{}:{ha2}", challenge.nonce).as_bytes()),
    }
}

/// The credentials of one line plus its nonce counts.
///
/// `nc` counts the requests sent with one nonce (RFC 7616 section 3.4): it starts
/// at 1 for a fresh nonce and increments for each reuse, separately for each
/// realm's latest nonce, so a 407 from the proxy and a 401 from the registrar do
/// not reset each other.
#[derive(Clone)]
pub struct DigestClient {
    username: String,
    password: Secret,
    /// (realm, nonce, last nc used) per realm seen.
    counts: Vec<(String, String, u32)>,
}

impl fmt::Debug for DigestClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DigestClient")
            .field("username", &self.username)
            .field("password", &self.password)
            .field("realms", &self.counts.len())
            .finish()
    }
}

impl DigestClient {
    /// Credentials of one line (`reg.x.auth.userId`, `reg.x.auth.password`).
    pub fn new(username: impl Into<String>, password: Secret) -> Self {
        DigestClient {
            username: username.into(),
            password,
            counts: Vec::new(),
        }
    }

    /// The user id sent as `username=`.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// Answers `challenge` for `request`, with the caller's fresh `cnonce`
    /// (ignored when the challenge has no qop). Increments the nonce count.
    pub fn authorize(
        &mut self,
        kind: ChallengeKind,
        challenge: &Challenge,
        request: &RequestInfo<'_>,
        cnonce: &str,
    ) -> Authorization {
        let qop = challenge.preferred_qop();
        let nc = match qop {
            Some(_) => self.next_nc(&challenge.realm, &challenge.nonce),
            None => 0,
        };
        let response = compute_response(
            challenge,
            &self.username,
            &self.password,
            request,
            qop,
            cnonce,
            nc,
        );
        Authorization {
            kind,
            username: self.username.clone(),
            realm: challenge.realm.clone(),
            nonce: challenge.nonce.clone(),
            uri: request.uri.to_string(),
            response,
            algorithm: challenge.algorithm,
            opaque: challenge.opaque.clone(),
            qop: qop.map(|q| (q, cnonce.to_string(), nc)),
        }
    }

    fn next_nc(&mut self, realm: &str, nonce: &str) -> u32 {
        match self.counts.iter_mut().find(|(r, _, _)| r == realm) {
            Some(entry) if entry.1 == nonce => {
                entry.2 = entry.2.wrapping_add(1);
                entry.2
            }
            Some(entry) => {
                entry.1 = nonce.to_string();
                entry.2 = 1;
                1
            }
            None => {
                self.counts.push((realm.to_string(), nonce.to_string(), 1));
                1
            }
        }
    }
}
