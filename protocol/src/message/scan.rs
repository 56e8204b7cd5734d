//! The first step of the fast path: one pass over the bytes of a header
//! section that finds every line end and the blank line, and proves that the
//! section is printable ASCII (plus HT and CRLF line ends).
//!
//! Why by hand: the pass looks at 16 bytes per step for "anything below SP or
//! above DEL" (one SSE2 compare on x86_64, a word trick elsewhere) and only
//! stops at those bytes, which in a well-formed section are the CRLFs. A
//! general search crate (`memchr`) finds one byte value at a time, so the
//! same result took three passes (LF search per line, CR count, UTF-8 check).
//! Anything unusual (a bare CR or LF, a control byte, a non-ASCII byte, very
//! many lines) makes the scan give up; the careful parser then takes the
//! message and gives the precise error or accepts it.

/// Header sections with more lines than this take the careful path.
pub(super) const MAX_LINES: usize = 64;

/// Where the lines of a header section end.
pub(super) struct Lines {
    /// Offset of the CR of the start line and of each header line, in order.
    pub(super) cr: [u32; MAX_LINES],
    /// How many entries of `cr` are used.
    pub(super) n: usize,
    /// Offset just past the CRLF of the last header line (where the blank
    /// line starts).
    pub(super) hdr_end: usize,
}

/// What one special byte means for the scan.
enum Seen {
    /// A line end (or an HT): keep going.
    More,
    /// The blank line: done.
    End,
    /// Not for the fast path.
    GiveUp,
}

impl Lines {
    /// A special byte at `i` (below SP or above DEL). `after_cr` is the offset
    /// past the last CRLF seen, so the LF of a CRLF is not taken for a bare
    /// one.
    #[inline(always)]
    fn seen(&mut self, sb: &[u8], i: usize, after_cr: &mut usize) -> Seen {
        if i < *after_cr {
            return Seen::More; // the LF of the CRLF just recorded
        }
        match sb[i] {
            b'\t' => Seen::More,
            b'\r' if sb.get(i + 1) == Some(&b'\n') && i > 0 && self.n < MAX_LINES => {
                // A line may not be empty before the blank line: an empty
                // first line is the careful path's business.
                self.cr[self.n] = i as u32;
                self.n += 1;
                *after_cr = i + 2;
                if sb.get(i + 2..i + 4) == Some(b"\r\n") {
                    self.hdr_end = i + 2;
                    Seen::End
                } else {
                    Seen::More
                }
            }
            _ => Seen::GiveUp,
        }
    }
}

impl Lines {
    pub(super) fn new() -> Lines {
        Lines {
            cr: [0; MAX_LINES],
            n: 0,
            hdr_end: 0,
        }
    }
}

/// Scans `sb` (a message from its start line on) into `lines` (filled in
/// place: it is too large to return cheaply). `false` when the fast path
/// cannot take the message.
pub(super) fn scan_lines(sb: &[u8], lines: &mut Lines) -> bool {
    let mut after_cr = 0;
    let mut base = 0;
    let blocks = sb.chunks_exact(16);
    let tail = blocks.remainder();
    for block in blocks {
        let mut mask = special_mask(block);
        while mask != 0 {
            let i = base + mask.trailing_zeros() as usize;
            match lines.seen(sb, i, &mut after_cr) {
                Seen::More => {}
                Seen::End => return true,
                Seen::GiveUp => return false,
            }
            mask &= mask - 1;
        }
        base += 16;
    }
    for (k, &b) in tail.iter().enumerate() {
        if !(b' '..0x80).contains(&b) {
            match lines.seen(sb, base + k, &mut after_cr) {
                Seen::More => {}
                Seen::End => return true,
                Seen::GiveUp => return false,
            }
        }
    }
    false
}

/// Bit `k` set when `block[k]` is below SP or above DEL.
#[inline(always)]
fn special_mask(block: &[u8]) -> u32 {
    match block.try_into() {
        Ok(b) => super::simd::special(b),
        Err(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_line_ends_and_the_blank_line() {
        let m = b"INVITE sip:a@b SIP/2.0\r\nVia: x\r\nTo:\tb\r\n\r\nbody\x80";
        let mut l = Lines::new();
        assert!(scan_lines(m, &mut l));
        assert_eq!(&l.cr[..l.n], &[22, 30, 37]);
        assert_eq!(l.hdr_end, 39);
    }

    #[test]
    fn gives_up_on_what_the_careful_path_must_judge() {
        for bad in [
            &b"A sip:a SIP/2.0\nVia: x\r\n\r\n"[..],
            b"A sip:a SIP/2.0\r\nVia: x\ry\r\n\r\n",
            b"A sip:a SIP/2.0\r\nVia: \x01\r\n\r\n",
            b"A sip:a SIP/2.0\r\nTo: \xc3\xa9\r\n\r\n",
            b"A sip:a SIP/2.0\r\nVia: x\r\n",
            b"\r\nA sip:a SIP/2.0\r\n\r\n",
        ] {
            let mut l = Lines::new();
            assert!(
                !scan_lines(bad, &mut l),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn the_mask_matches_a_byte_loop_for_every_byte_value() {
        for b in 0..=255u8 {
            for at in 0..16 {
                let mut block = [b'a'; 16];
                block[at] = b;
                let want = if !(0x20..0x80).contains(&b) {
                    1 << at
                } else {
                    0
                };
                assert_eq!(special_mask(&block), want, "byte {b:#x} at {at}");
            }
        }
    }

    #[test]
    fn lines_crossing_block_edges_are_found() {
        for pad in 0..40 {
            let mut m = b"OPTIONS sip:a SIP/2.0\r\nX: ".to_vec();
            m.extend(std::iter::repeat_n(b'y', pad));
            m.extend_from_slice(b"\r\n\r\n");
            let mut l = Lines::new();
            assert!(scan_lines(&m, &mut l));
            assert_eq!(l.n, 2);
            assert_eq!(l.cr[1] as usize, 26 + pad);
            assert_eq!(l.hdr_end, 28 + pad);
        }
    }
}
