//! rsipstack 0.7 doing the reads sipfleet's `parse+read` does, through its
//! typed header API: top Via branch, From and To tags, Call-ID, CSeq
//! number, first Contact's host, Expires. Its parser keeps header values as
//! strings, so these reads are where its header parsing happens; this is the
//! like-for-like figure next to sipfleet's parse+read.

use bytes::Bytes;
use rsipstack::sip::headers::untyped::ToTypedHeader;
use rsipstack::sip::uri::Host;
use rsipstack::sip::{HeadersExt, SipMessage};

fn reads(h: &impl HeadersExt) -> usize {
    let mut n = 0;
    if let Ok(via) = h.top_via_header().and_then(|v| v.typed()) {
        n += via.branch().map_or(0, |b| b.value().len());
    }
    if let Ok(from) = h.from_header().and_then(|f| f.typed()) {
        n += from.tag().map_or(0, |t| t.value().len());
    }
    if let Ok(to) = h.to_header().and_then(|t| t.typed()) {
        n += to.tag().map_or(0, |t| t.value().len());
    }
    n += h.call_id_header().map_or(0, |c| c.value().len());
    n += h
        .cseq_header()
        .and_then(|c| c.typed())
        .map_or(0, |c| c.seq as usize);
    if let Some(c) = h.contact_headers().first() {
        if let Ok(c) = c.typed() {
            // The host as parsed (an IP address is already binary there:
            // its checksum contribution differs from sipfleet's, not its work).
            n += match &c.uri.host_with_port.host {
                Host::Domain(d) => d.0.len(),
                Host::IpAddr(_) => 4,
            };
        }
    }
    n += h
        .expires_header()
        .and_then(|e| e.value().trim().parse::<usize>().ok())
        .unwrap_or(0);
    n
}

/// Parse, then the reads above.
pub fn parse_and_read(wire: &Bytes) -> usize {
    match rsipstack::sip::parser::parse_message(wire).expect("rsipstack parses the corpus") {
        SipMessage::Request(r) => reads(&r) + r.body.len(),
        SipMessage::Response(r) => reads(&r) + r.body.len(),
    }
}
