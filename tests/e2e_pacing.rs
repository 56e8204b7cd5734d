//! End to end, over UDP, against the real lab: `sipfleet.register.rate`
//! paces the fleet's new REGISTER exchanges, as the SBC sees them.
//!
//! 200 lines at 100 exchanges per second: the first REGISTER of each line
//! reaches SBC 1 spread over about 2 s (10 per 100 ms, not 200 at once),
//! each line's credentials follow-up to the 401 goes at once (it belongs to
//! the exchange its grant started), every line registers with exactly two
//! REGISTERs, and the shutdown's un-REGISTERs are paced the same way.

mod e2e_support;

use std::collections::HashMap;
use std::time::Duration;

use e2e_support::{kind, scenario, t_ms};
use sipfleet::actors::pacer::{GetPacerStatus, PacerStatus};

const LINES: usize = 200;
const RATE: i64 = 100;

/// The largest number of `times` (ms, sorted) within any `window` ms.
fn densest(times: &[i64], window: i64) -> usize {
    let mut best = 0;
    let mut start = 0;
    for end in 0..times.len() {
        while times[end] - times[start] >= window {
            start += 1;
        }
        best = best.max(end - start + 1);
    }
    best
}

#[test]
fn two_hundred_lines_at_100_per_second_reach_the_sbc_paced() {
    let mut scenario = scenario!().config(format!("sipfleet.register.rate=\"{RATE}\"\n"));
    for i in 0..LINES {
        scenario = scenario.line(&(20_000 + i).to_string());
    }
    let mut h = scenario.start();
    h.run(async |h, fleet| {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let registered = loop {
            let registered: HashMap<u64, u64> = h
                .events()
                .iter()
                .filter(|e| kind(e) == "registered")
                .filter_map(|e| Some((e["line"].as_u64()?, t_ms(e))))
                .collect();
            if registered.len() == LINES || std::time::Instant::now() > deadline {
                break registered;
            }
            h.sleep_ms(50).await;
        };
        let story = h.story();
        assert_eq!(registered.len(), LINES, "{story}");
        let last = registered.values().copied().max().unwrap_or(0);
        // 200 grants at 100/s (2 at once): the last one 1.98 s after the
        // first.
        assert!(
            last >= 1900,
            "all registered after {last} ms: not paced\n{story}"
        );

        // What SBC 1 saw: each line's first REGISTER, paced.
        let seen: Vec<_> = h
            .received(1)
            .into_iter()
            .filter(|s| s.method == "REGISTER" && s.t_ms >= 0)
            .collect();
        let mut first: HashMap<String, i64> = HashMap::new();
        for s in &seen {
            if let Some(user) = &s.user {
                first.entry(user.clone()).or_insert(s.t_ms);
            }
        }
        assert_eq!(first.len(), LINES, "{story}");
        let mut starts: Vec<i64> = first.values().copied().collect();
        starts.sort_unstable();
        let span = starts[LINES - 1] - starts[0];
        let busiest = densest(&starts, 100);
        eprintln!(
            "first REGISTERs at SBC 1: span {span} ms, at most {busiest} in 100 ms; \
             all registered after {last} ms; {} REGISTERs",
            seen.len()
        );
        assert!(
            span >= (LINES as i64 - 2) * 1000 / RATE - 80,
            "first REGISTERs within {span} ms"
        );
        // 10 per 100 ms at 100/s; a little slack for a late timer.
        assert!(busiest <= 20, "{busiest} first REGISTERs within 100 ms");
        // A quiet lab: REGISTER, 401, REGISTER with credentials, 200.
        assert_eq!(seen.len(), 2 * LINES, "{story}");

        // The credentials follow-up is not paced: it leaves as soon as the
        // 401 is in, not behind the other lines' grants.
        let mut gaps: Vec<u64> = Vec::new();
        let mut initial: HashMap<u64, u64> = HashMap::new();
        for e in h.events().iter().filter(|e| kind(e) == "registering") {
            let Some(line) = e["line"].as_u64() else {
                continue;
            };
            match e["purpose"].as_str() {
                Some("initial") => {
                    initial.insert(line, t_ms(e));
                }
                Some("authenticate") => {
                    if let Some(at) = initial.get(&line) {
                        gaps.push(t_ms(e) - at);
                    }
                }
                _ => {}
            }
        }
        gaps.sort_unstable();
        assert_eq!(gaps.len(), LINES);
        let median = gaps[LINES / 2];
        eprintln!(
            "initial -> authenticate: median {median} ms, max {} ms",
            gaps[LINES - 1]
        );
        assert!(
            median <= 100,
            "median follow-up after {median} ms\n{gaps:?}"
        );

        // Every exchange gave its slot back: nothing held, nothing waits.
        let pacer = fleet.pacer.clone().expect("the fleet paces");
        let status = pacer.send(GetPacerStatus).await.expect("pacer status");
        assert_eq!(
            status,
            PacerStatus {
                waiting: 0,
                held: 0
            }
        );

        // The shutdown's un-REGISTERs go through the pacer too.
        let stop = h.now_ms() as i64;
        fleet.shutdown(Duration::from_secs(10)).await;
        let unregistered = h
            .events()
            .iter()
            .filter(|e| kind(e) == "unregistered" && e["reason"] == "shutdown")
            .count();
        assert_eq!(unregistered, LINES, "{}", h.story());
        let mut zeros: Vec<i64> = h
            .received(1)
            .into_iter()
            .filter(|s| s.method == "REGISTER" && s.expires == Some(0) && s.t_ms >= stop)
            .map(|s| s.t_ms)
            .collect();
        zeros.sort_unstable();
        assert!(zeros.len() >= LINES, "{} un-REGISTERs", zeros.len());
        let span = zeros[zeros.len() - 1] - zeros[0];
        eprintln!(
            "un-REGISTERs at SBC 1: span {span} ms, at most {} in 100 ms",
            densest(&zeros, 100)
        );
        assert!(span >= 1800, "un-REGISTERs within {span} ms: not paced");
        h.sleep_ms(100).await;
        let status = pacer.send(GetPacerStatus).await.expect("pacer status");
        assert_eq!(
            status,
            PacerStatus {
                waiting: 0,
                held: 0
            },
            "stopped lines hold nothing"
        );
    });
    h.finish();
}
