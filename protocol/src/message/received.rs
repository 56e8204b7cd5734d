//! The received buffer a parsed message borrows from, with the parser's
//! proof that its header section is UTF-8.
//!
//! Header values are spans of this buffer. Reading one as `&str` would
//! otherwise check its UTF-8 again on every read (a transaction lookup reads
//! the branch, tags and Call-ID of every message); the parser has already
//! checked the whole section once, so reads only check that a span falls on
//! character boundaries.

use bytes::Bytes;

/// A buffer whose first `text_len` bytes are valid UTF-8.
#[derive(Debug, Clone, Default)]
pub(crate) struct Received {
    buf: Bytes,
    /// A `u32`: messages over 4 GiB are refused by the parser, and
    /// [`super::Message`] is moved around a lot.
    text_len: u32,
}

impl Received {
    /// # Safety
    /// `buf[..text_len]` must be valid UTF-8 (the parser calls this only
    /// after `str::from_utf8` accepted that range, or after checking that
    /// every byte in it is ASCII).
    pub(crate) unsafe fn new_unchecked(buf: Bytes, text_len: usize) -> Received {
        debug_assert!(std::str::from_utf8(&buf[..text_len]).is_ok());
        // Over 4 GiB (refused earlier anyway): no text.
        let text_len = u32::try_from(text_len).unwrap_or(0);
        Received { buf, text_len }
    }

    /// The whole buffer (header section and body).
    pub(crate) fn bytes(&self) -> &Bytes {
        &self.buf
    }

    /// The text of `a..b` of the header section; `""` for a range outside
    /// it or not on character boundaries.
    #[inline]
    pub(crate) fn str(&self, a: u32, b: u32) -> &str {
        let section = self.buf.get(..self.text_len as usize).unwrap_or_default();
        // SAFETY: `new_unchecked`'s contract: these bytes are UTF-8.
        let section = unsafe { std::str::from_utf8_unchecked(section) };
        section.get(a as usize..b as usize).unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_outside_the_section_or_inside_a_character_read_as_empty() {
        let buf = Bytes::from_static(b"Subject: \xc3\xa9\r\n\r\n\xff");
        // SAFETY: the first 14 bytes are the UTF-8 text above.
        let r = unsafe { Received::new_unchecked(buf, 14) };
        assert_eq!(r.str(0, 7), "Subject");
        assert_eq!(r.str(9, 11), "é");
        assert_eq!(r.str(9, 10), "");
        assert_eq!(r.str(10, 20), "");
        assert_eq!(Received::default().str(0, 1), "");
    }
}
