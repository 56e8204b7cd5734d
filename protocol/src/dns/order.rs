//! Ranking of DNS answers: NAPTR by order then preference (RFC 3403), SRV by
//! priority then RFC 2782 weighted random selection within a priority.
//!
//! The random source is passed in, so a seeded RNG makes an order reproducible
//! in tests while two phones (two seeds) may still differ where weights tie,
//! as the guide describes.

use rand::{Rng, RngCore};

use crate::route::Transport;

use super::records::{NaptrRecord, SrvRecord};

/// The SIP transport of a NAPTR service field (RFC 3263 section 4.1), or `None`
/// for services sipfleet does not use. Case-insensitive.
pub fn naptr_transport(services: &str) -> Option<Transport> {
    match services.to_ascii_uppercase().as_str() {
        "SIP+D2U" => Some(Transport::Udp),
        "SIP+D2T" => Some(Transport::Tcp),
        "SIPS+D2T" => Some(Transport::Tls),
        _ => None,
    }
}

/// NAPTR records usable for SIP (flag `s`, a known service, a replacement),
/// sorted by order then preference. The sort is stable, so records that tie keep
/// the server's order.
pub fn order_naptr(records: &[NaptrRecord]) -> Vec<(NaptrRecord, Transport)> {
    let mut usable: Vec<(NaptrRecord, Transport)> = records
        .iter()
        .filter(|r| r.flags.eq_ignore_ascii_case("s") && !r.replacement.is_empty())
        .filter_map(|r| naptr_transport(&r.services).map(|t| (r.clone(), t)))
        .collect();
    usable.sort_by_key(|(r, _)| (r.order, r.preference));
    usable
}

/// SRV records in the order to try them: ascending priority and, within one
/// priority, the RFC 2782 weighted random selection. A target of "." (empty
/// here) means the service is not offered and is dropped.
///
/// RFC 2782: put the weight-0 records first, draw a number in `0..=sum` of the
/// remaining weights, take the first record whose running sum reaches it,
/// repeat with the rest.
pub fn order_srv(records: &[SrvRecord], rng: &mut dyn RngCore) -> Vec<SrvRecord> {
    let mut sorted: Vec<SrvRecord> = records
        .iter()
        .filter(|r| !r.target.is_empty())
        .cloned()
        .collect();
    sorted.sort_by_key(|r| r.priority);
    let mut out = Vec::with_capacity(sorted.len());
    let mut rest = sorted.as_slice();
    while let Some(first) = rest.first() {
        let len = rest
            .iter()
            .take_while(|r| r.priority == first.priority)
            .count();
        let (same, tail) = rest.split_at(len);
        out.extend(weighted_order(same, rng));
        rest = tail;
    }
    out
}

fn weighted_order(records: &[SrvRecord], rng: &mut dyn RngCore) -> Vec<SrvRecord> {
    let mut remaining: Vec<SrvRecord> = records
        .iter()
        .filter(|r| r.weight == 0)
        .chain(records.iter().filter(|r| r.weight != 0))
        .cloned()
        .collect();
    let mut out = Vec::with_capacity(remaining.len());
    while !remaining.is_empty() {
        let sum: u32 = remaining.iter().map(|r| u32::from(r.weight)).sum();
        let pick = rng.random_range(0..=sum);
        let mut running = 0u32;
        let mut index = remaining.len() - 1;
        for (i, r) in remaining.iter().enumerate() {
            running += u32::from(r.weight);
            if running >= pick {
                index = i;
                break;
            }
        }
        out.push(remaining.remove(index));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn srv(priority: u16, weight: u16, target: &str) -> SrvRecord {
        SrvRecord {
            priority,
            weight,
            port: 5060,
            target: target.to_string(),
            ttl_s: 60,
        }
    }

    #[test]
    fn priority_orders_before_weight() {
        let records = [srv(30, 0, "c"), srv(10, 0, "a"), srv(20, 0, "b")];
        let mut rng = StdRng::seed_from_u64(1);
        let order: Vec<_> = order_srv(&records, &mut rng)
            .into_iter()
            .map(|r| r.target)
            .collect();
        assert_eq!(order, ["a", "b", "c"]);
    }

    #[test]
    fn zero_weights_keep_server_order_and_dot_target_dropped() {
        let records = [srv(10, 0, "x"), srv(10, 0, ""), srv(10, 0, "y")];
        for seed in 0..20 {
            let mut rng = StdRng::seed_from_u64(seed);
            let order: Vec<_> = order_srv(&records, &mut rng)
                .into_iter()
                .map(|r| r.target)
                .collect();
            assert_eq!(order, ["x", "y"]);
        }
    }

    #[test]
    fn weights_bias_the_first_pick() {
        // 90/10 weights: the heavy record comes first about 90 % of the time.
        let records = [srv(10, 10, "light"), srv(10, 90, "heavy")];
        let mut rng = StdRng::seed_from_u64(7);
        let heavy_first = (0..10_000)
            .filter(|_| order_srv(&records, &mut rng)[0].target == "heavy")
            .count();
        assert!((8_700..9_300).contains(&heavy_first), "{heavy_first}");
    }

    #[test]
    fn naptr_filters_and_sorts() {
        let n = |order, preference, flags: &str, services: &str| NaptrRecord {
            order,
            preference,
            flags: flags.into(),
            services: services.into(),
            regexp: String::new(),
            replacement: format!("r{order}{preference}"),
            ttl_s: 60,
        };
        let records = [
            n(100, 20, "s", "SIP+D2U"),
            n(100, 10, "S", "sips+d2t"),
            n(50, 10, "s", "E2U+sip"),
            n(60, 10, "u", "SIP+D2T"),
            n(70, 10, "s", "SIP+D2T"),
        ];
        let got: Vec<_> = order_naptr(&records)
            .into_iter()
            .map(|(r, t)| (r.order, r.preference, t))
            .collect();
        assert_eq!(
            got,
            [
                (70, 10, Transport::Tcp),
                (100, 10, Transport::Tls),
                (100, 20, Transport::Udp)
            ]
        );
    }
}
