//! The registration latency histogram: an HdrHistogram recorded in
//! milliseconds, carried in the summary as its V2 serialization in base64
//! so that shard summaries merge exactly (`merge` decodes, adds, encodes)
//! and the figures people read are taken from the merged histogram, not
//! averaged.
//!
//! Bounds: 1 ms .. 1 hour ([`LOWEST_MS`], [`HIGHEST_MS`]) at
//! [`SIGNIFICANT_DIGITS`] = 3 significant digits, i.e. a value is known to
//! 0.1 %: 1234 ms is told from 1235 ms, 1 h to within 3.6 s. A REGISTER
//! that takes longer than an hour has long been given up on by the line
//! (Timer F is 32 s), so the recorder clamps at the top with
//! `saturating_record`; 0 ms (a local answer) lands in the first bucket.
//! The counts array for those bounds is about 30 KB, and the V2
//! serialization run-length encodes empty buckets, so a summary carries a
//! few hundred bytes to a few KB per histogram.

use std::io::Cursor;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use hdrhistogram::Histogram;

use super::summary;

/// Smallest value told apart from 0: one millisecond.
pub const LOWEST_MS: u64 = 1;
/// Largest value recorded: one hour, in milliseconds.
pub const HIGHEST_MS: u64 = 3_600_000;
/// Precision: 3 significant digits (0.1 %).
pub const SIGNIFICANT_DIGITS: u8 = 3;

#[derive(Debug, thiserror::Error)]
pub enum HistogramError {
    #[error("latency histogram: not base64: {0}")]
    Base64(#[from] base64::DecodeError),
    #[error("latency histogram: not an HdrHistogram V2 serialization: {0:?}")]
    Deserialize(hdrhistogram::serialization::DeserializeError),
    #[error("latency histogram: {0}")]
    Header(String),
    #[error(
        "latency histogram: the summary says {figures} values but the histogram holds {histogram}"
    )]
    CountMismatch { figures: u64, histogram: u64 },
    #[error("latency histogram: could not add the histograms: {0}")]
    Add(#[from] hdrhistogram::AdditionError),
}

/// An empty histogram with the summary's bounds: what the recorder
/// records into (with `saturating_record`) and what `merge` adds into.
pub fn new_histogram() -> Histogram<u64> {
    // Constant, valid bounds: `new_with_bounds` only fails on low < 1,
    // high < 2 * low or sigfig > 5.
    Histogram::new_with_bounds(LOWEST_MS, HIGHEST_MS, SIGNIFICANT_DIGITS)
        .expect("constant histogram bounds are valid")
}

/// The summary form of `h`: the figures read from it and the histogram
/// itself (V2, base64).
pub fn encode(h: &Histogram<u64>) -> summary::Histogram {
    let mut bytes = Vec::new();
    // The V2 serializer writes into a Vec, which cannot fail; its only
    // other error is a histogram whose counts exceed i64 (impossible for
    // counts of REGISTERs). Should it ever fail, the figures are still
    // right and `decode` reports the empty blob for a non-empty count.
    let hdr_v2_base64 = match V2Serializer::new().serialize(h, &mut bytes) {
        Ok(_) => BASE64.encode(&bytes),
        Err(_) => String::new(),
    };
    let mean = if h.is_empty() { 0.0 } else { h.mean() };
    summary::Histogram {
        count: h.len(),
        min: h.min(),
        mean,
        p50: h.value_at_quantile(0.5),
        p90: h.value_at_quantile(0.9),
        p99: h.value_at_quantile(0.99),
        p999: h.value_at_quantile(0.999),
        max: h.max(),
        hdr_v2_base64,
    }
}

/// The histogram carried by `h`. An empty `hdr_v2_base64` with a count of
/// 0 is an empty histogram (a summary written before any REGISTER
/// completed, or a `Default` one); anything else must decode, and hold as
/// many values as `count` says.
pub fn decode(h: &summary::Histogram) -> Result<Histogram<u64>, HistogramError> {
    if h.hdr_v2_base64.is_empty() && h.count == 0 {
        return Ok(new_histogram());
    }
    let bytes = BASE64.decode(h.hdr_v2_base64.trim())?;
    check_header(&bytes)?;
    let histogram: Histogram<u64> = Deserializer::new()
        .deserialize(&mut Cursor::new(bytes))
        .map_err(HistogramError::Deserialize)?;
    if histogram.len() != h.count {
        return Err(HistogramError::CountMismatch {
            figures: h.count,
            histogram: histogram.len(),
        });
    }
    Ok(histogram)
}

/// Largest `highest_trackable_value` accepted from a summary: 2^40 ms
/// (35 years). The deserializer allocates the counts array from the
/// header's bounds before reading any count, so a corrupt header could
/// otherwise ask for gigabytes.
const MAX_HIGHEST: u64 = 1 << 40;

/// Checks the V2 header (big-endian: cookie, payload length, normalizing
/// offset, significant digits, lowest, highest, conversion ratio) before
/// the deserializer sizes its counts from it.
fn check_header(bytes: &[u8]) -> Result<(), HistogramError> {
    const HEADER: usize = 40;
    let bad = |what: String| Err(HistogramError::Header(what));
    if bytes.len() < HEADER {
        return bad(format!("{} bytes, shorter than a V2 header", bytes.len()));
    }
    let u32_at =
        |i: usize| u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    let u64_at = |i: usize| (u64::from(u32_at(i)) << 32) | u64::from(u32_at(i + 4));
    let payload = u32_at(4) as usize;
    let digits = u32_at(12);
    let (lowest, highest) = (u64_at(16), u64_at(24));
    if payload > bytes.len() - HEADER {
        return bad(format!(
            "payload of {payload} bytes announced, {} present",
            bytes.len() - HEADER
        ));
    }
    if digits > 5 || lowest == 0 || highest < lowest.saturating_mul(2) || highest > MAX_HIGHEST {
        return bad(format!(
            "implausible bounds {lowest}..{highest} at {digits} digits"
        ));
    }
    Ok(())
}

/// Adds `from` into `into`; `into` grows if `from` was recorded with wider
/// bounds, so shards written by another version still merge.
pub fn add(into: &mut Histogram<u64>, from: &Histogram<u64>) -> Result<(), HistogramError> {
    into.auto(true);
    into.add(from)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Histogram<u64> {
        let mut h = new_histogram();
        for v in 1..=1000u64 {
            h.saturating_record(v * 3);
        }
        h.saturating_record(0);
        h.saturating_record(10 * HIGHEST_MS);
        h
    }

    #[test]
    fn encode_decode_round_trip_keeps_every_count() {
        let h = sample();
        let s = encode(&h);
        assert_eq!(s.count, 1002);
        assert_eq!(s.min, 0);
        assert!(s.max >= HIGHEST_MS && s.max <= HIGHEST_MS + HIGHEST_MS / 1000);
        assert!((1495..=1505).contains(&s.p50), "p50 {}", s.p50);
        assert!((2690..=2710).contains(&s.p90), "p90 {}", s.p90);
        assert!((2960..=2980).contains(&s.p99), "p99 {}", s.p99);
        assert!(s.mean > 1500.0);
        let back = decode(&s).unwrap();
        assert_eq!(back, h);
        assert_eq!(encode(&back), s);
    }

    #[test]
    fn empty_histogram_has_zero_figures_and_round_trips() {
        let s = encode(&new_histogram());
        assert_eq!((s.count, s.min, s.max, s.p50, s.p999), (0, 0, 0, 0, 0));
        assert_eq!(s.mean, 0.0);
        assert!(!s.hdr_v2_base64.is_empty());
        assert!(decode(&s).unwrap().is_empty());
        assert!(decode(&summary::Histogram::default()).unwrap().is_empty());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let valid = encode(&sample());
        let bytes = BASE64.decode(&valid.hdr_v2_base64).unwrap();
        let mut cases = vec![
            "not base64 at all!".to_string(),
            BASE64.encode(b"hello, this is not a histogram"),
            BASE64.encode([]),
            BASE64.encode(&bytes[..bytes.len() / 2]),
            BASE64.encode(&bytes[..7]),
            BASE64.encode(&bytes[..41]),
        ];
        // Every single-byte corruption of the header and of the payload.
        for i in 0..bytes.len().min(64) {
            let mut b = bytes.clone();
            b[i] ^= 0xa5;
            cases.push(BASE64.encode(&b));
        }
        let mut errors = 0;
        for case in cases {
            let h = summary::Histogram {
                hdr_v2_base64: case,
                ..valid.clone()
            };
            if decode(&h).is_err() {
                errors += 1;
            }
        }
        // Corrupting a payload byte may still decode to a histogram, but
        // then its count rarely matches: most cases must be caught.
        assert!(errors >= 40, "only {errors} corruptions detected");
    }

    #[test]
    fn garbage_base64_reports_base64() {
        let h = summary::Histogram {
            count: 1,
            hdr_v2_base64: "@@@".into(),
            ..Default::default()
        };
        assert!(matches!(decode(&h), Err(HistogramError::Base64(_))));
        let h = summary::Histogram {
            count: 3,
            ..Default::default()
        };
        assert!(
            decode(&h).is_err(),
            "a count without a histogram is an error"
        );
    }

    #[test]
    fn implausible_headers_are_refused_before_allocating() {
        let valid = encode(&sample());
        let bytes = BASE64.decode(&valid.hdr_v2_base64).unwrap();
        // highest_trackable_value (bytes 24..32) = u64::MAX >> 1.
        let mut huge = bytes.clone();
        huge[24..32].copy_from_slice(&(u64::MAX >> 1).to_be_bytes());
        let h = summary::Histogram {
            hdr_v2_base64: BASE64.encode(&huge),
            ..valid.clone()
        };
        assert!(matches!(decode(&h), Err(HistogramError::Header(_))));
        let mut long = bytes;
        long[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
        let h = summary::Histogram {
            hdr_v2_base64: BASE64.encode(&long),
            ..valid
        };
        assert!(matches!(decode(&h), Err(HistogramError::Header(_))));
    }

    #[test]
    fn count_mismatch_is_an_error() {
        let mut s = encode(&sample());
        s.count += 1;
        assert!(matches!(
            decode(&s),
            Err(HistogramError::CountMismatch {
                figures: 1003,
                histogram: 1002
            })
        ));
    }

    #[test]
    fn add_sums_exactly() {
        let mut a = sample();
        let b = sample();
        add(&mut a, &b).unwrap();
        assert_eq!(a.len(), 2004);
        assert_eq!(encode(&a).p50, encode(&b).p50);
        let mut wide = Histogram::<u64>::new_with_bounds(1, 100 * HIGHEST_MS, 3).unwrap();
        wide.record(50 * HIGHEST_MS).unwrap();
        add(&mut a, &wide).unwrap();
        assert_eq!(a.len(), 2005);
    }
}
