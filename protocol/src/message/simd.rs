//! Byte masks of 16-byte blocks, for the parser's searches.
//!
//! Why not `memchr`: the parser searches short spans (a header value, a
//! URI: mostly under 64 bytes), where `memchr`'s run-time choice of
//! implementation and set-up cost more than the search (about 140
//! instructions a call, measured with callgrind). One SSE2 compare per 16
//! bytes, inlined, costs a few. SSE2 is part of the x86_64 baseline; other
//! targets get the same masks a byte at a time.

/// Bit `k` set when `block[k]` is below SP or above DEL (a control byte or
/// a non-ASCII one).
#[inline(always)]
pub(super) fn special(block: &[u8; 16]) -> u32 {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{_mm_cmplt_epi8, _mm_movemask_epi8, _mm_set1_epi8};
        let v = load(block);
        // SAFETY: SSE2 is part of the x86_64 baseline.
        // As signed bytes, both "below SP" and "above DEL" are below 0x20.
        unsafe { _mm_movemask_epi8(_mm_cmplt_epi8(v, _mm_set1_epi8(0x20))) as u32 }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        mask(block, |b| !(b' '..0x80).contains(&b))
    }
}

/// Bit `k` set when `block[k]` is `x` or `y`.
#[inline(always)]
pub(super) fn either(block: &[u8; 16], x: u8, y: u8) -> u32 {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{_mm_cmpeq_epi8, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8};
        let v = load(block);
        // SAFETY: SSE2 is part of the x86_64 baseline.
        unsafe {
            let ex = _mm_cmpeq_epi8(v, _mm_set1_epi8(x as i8));
            let ey = _mm_cmpeq_epi8(v, _mm_set1_epi8(y as i8));
            _mm_movemask_epi8(_mm_or_si128(ex, ey)) as u32
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        mask(block, |b| b == x || b == y)
    }
}

/// The first index of `x` or `y` in `h`.
#[inline(always)]
pub(super) fn find2(h: &[u8], x: u8, y: u8) -> Option<usize> {
    let mut blocks = h.chunks_exact(16);
    let mut at = 0;
    for block in &mut blocks {
        let m = either(block.try_into().ok()?, x, y);
        if m != 0 {
            return Some(at + m.trailing_zeros() as usize);
        }
        at += 16;
    }
    blocks
        .remainder()
        .iter()
        .position(|&b| b == x || b == y)
        .map(|k| at + k)
}

/// The first index of `x` in `h`.
#[inline(always)]
pub(super) fn find(h: &[u8], x: u8) -> Option<usize> {
    find2(h, x, x)
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn load(block: &[u8; 16]) -> core::arch::x86_64::__m128i {
    // SAFETY: `block` is 16 bytes, so the unaligned 16-byte load stays
    // inside it; SSE2 is part of the x86_64 baseline.
    unsafe { core::arch::x86_64::_mm_loadu_si128(block.as_ptr().cast()) }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn mask(block: &[u8; 16], hit: impl Fn(u8) -> bool) -> u32 {
    let mut m = 0;
    for (k, &b) in block.iter().enumerate() {
        m |= u32::from(hit(b)) << k;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_and_searches_match_byte_loops() {
        for b in 0..=255u8 {
            for at in 0..16 {
                let mut block = [b'a'; 16];
                block[at] = b;
                let want = u32::from(!(0x20..0x80).contains(&b)) << at;
                assert_eq!(special(&block), want, "byte {b:#x} at {at}");
                assert_eq!(either(&block, b, b'!') >> at & 1, 1);
            }
        }
        for len in 0..70 {
            for at in 0..=len {
                let mut h = vec![b'x'; len];
                if at < len {
                    h[at] = b'>';
                }
                let want = (at < len).then_some(at);
                assert_eq!(find(&h, b'>'), want, "len {len} at {at}");
                assert_eq!(find2(&h, b'"', b'>'), want, "len {len} at {at}");
            }
        }
    }
}
