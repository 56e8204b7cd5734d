//! The typed error every parser in this module returns.

use super::HeaderName;

/// What is wrong with a message (or a header value, or a URI).
///
/// Every variant says which part failed; the `&'static str` reasons name the
/// offending element (for example `"sent-by port out of range"`), so a UA can put
/// them in the reason phrase of a 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The input ends before the blank line that closes the header section.
    #[error("message truncated: {0}")]
    Truncated(&'static str),
    /// The header section is not UTF-8.
    #[error("header section is not valid UTF-8")]
    NotUtf8,
    /// The request-line or status-line is malformed.
    #[error("bad start line: {0}")]
    StartLine(&'static str),
    /// The SIP version is not `SIP/2.0`.
    #[error("unsupported SIP version")]
    Version,
    /// The status code is not three digits in 100..=699.
    #[error("bad status code: {0}")]
    StatusCode(&'static str),
    /// The Request-URI is malformed.
    #[error("bad Request-URI: {0}")]
    RequestUri(&'static str),
    /// A header line has no colon, or a bad name.
    #[error("bad header line {line}: {reason}")]
    HeaderLine {
        /// 1-based line number in the message.
        line: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A header's value is malformed.
    #[error("bad {header} header: {reason}")]
    Header {
        /// Which header.
        header: HeaderName,
        /// Which part of it is wrong.
        reason: &'static str,
    },
    /// A header that the caller asked for is absent.
    #[error("missing {0} header")]
    MissingHeader(HeaderName),
    /// The CSeq method differs from the request method (RFC 3261 8.1.1.5).
    #[error("CSeq method differs from the request method")]
    CSeqMethodMismatch,
    /// Content-Length announces more bytes than the datagram holds.
    #[error("Content-Length {declared} exceeds the {available} body bytes present")]
    BodyTruncated {
        /// The Content-Length value.
        declared: u32,
        /// How many body bytes there are.
        available: usize,
    },
    /// A value given to the building API is malformed.
    #[error("bad value for {what}: {reason}")]
    Build {
        /// Which input.
        what: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl ParseError {
    pub(crate) fn header(header: HeaderName, reason: &'static str) -> Self {
        ParseError::Header { header, reason }
    }
}
