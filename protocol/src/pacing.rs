//! Fleet-wide pacing of new REGISTER exchanges: a rate (token bucket) and a
//! window of exchanges in flight per flow.
//!
//! Why: a fleet of thousands of lines that all start at once (process start,
//! a failover wave when an SBC dies, a failback wave when it returns, the
//! refreshes of lines that registered together) sends thousands of REGISTERs
//! in one burst. Over UDP the SBC's receive buffer overflows, requests are
//! lost, retransmitted and failed over: the burst costs more REGISTERs and
//! more time than a steady stream would (measured in issue 15: 2.2-5.6
//! REGISTERs per registration at 10,000 lines). A Poly phone never meets the
//! problem, it has a handful of lines; the guide's timers are per line and
//! stay exact here: pacing only decides when a new exchange may *start*.
//!
//! What counts as one exchange is the registration machine's business (see
//! [`crate::registration`]): a first REGISTER with its credentials follow-up
//! to a 401/407 is one exchange (one grant), and retransmissions are never
//! paced. This module only hands out grants:
//!
//! * **rate**: at most `rate` grants per second, fleet-wide, with a burst of
//!   `burst` grants (GCRA, the virtual-scheduling form of a token bucket).
//!   The burst lets a driver whose timer fires a millisecond late catch up
//!   instead of losing the rate for good; [`PacingSettings::new`] makes it
//!   [`BURST_SPAN`] worth of grants.
//! * **window**: at most `window` exchanges held at once per flow (one
//!   transport and destination): an SBC that answers slowly gets fewer new
//!   requests, whatever the rate says, and one slow SBC does not hold up the
//!   grants of another (each flow has its own queue; grants are first come,
//!   first served among the flows that have room).
//!
//! Sans-IO like the rest of the crate: the driver calls [`Pacer::request`]
//! and [`Pacer::release`] as lines ask and finish, drains
//! [`Pacer::poll_grant`] with the current time, and sleeps until
//! [`Pacer::poll_timeout`]. Nothing here sleeps or reads a clock.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use sipfleet_protocol::pacing::{Pacer, PacingSettings};
//!
//! // 4 exchanges per second, one at a time, no window.
//! let mut pacer = Pacer::new(PacingSettings { rate: 4, burst: 1, window: 0 });
//! let t0 = Instant::now();
//! for line in 1..=3u32 {
//!     pacer.request(line, "sbc1");
//! }
//! assert_eq!(pacer.poll_grant(t0).map(|g| g.id), Some(1));
//! assert!(pacer.poll_grant(t0).is_none());
//! assert_eq!(pacer.poll_timeout(), Some(t0 + Duration::from_millis(250)));
//! ```

use std::collections::VecDeque;
use std::hash::Hash;
use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;

/// The span of grants the default burst covers: at 2,000/s, 20 grants may go
/// together. Long enough to absorb a driver timer that fires a millisecond
/// or two late (tokio's timer wheel has a 1 ms resolution), short enough
/// that no SBC sees more than a few milliseconds' worth at once.
pub const BURST_SPAN: Duration = Duration::from_millis(10);

/// How grants are handed out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacingSettings {
    /// Grants per second, fleet-wide; 0: no rate limit.
    pub rate: u32,
    /// Grants that may go at once after an idle spell (at least 1).
    pub burst: u32,
    /// Grants held at once per flow; 0: no window.
    pub window: u32,
}

impl PacingSettings {
    /// `rate` and `window` with the default burst: [`BURST_SPAN`] worth of
    /// grants, at least two. With a burst of one, a grant handed out late
    /// (a driver timer firing a millisecond after the deadline) would push
    /// every later grant back by as much, and a slow rate would drift (100/s
    /// measured 15 % slow in the lab's end-to-end test); a tolerance of one
    /// interval keeps the schedule.
    pub fn new(rate: u32, window: u32) -> Self {
        let span_ms = BURST_SPAN.as_millis() as u64;
        let burst = (u64::from(rate) * span_ms / 1000).clamp(2, u64::from(u32::MAX)) as u32;
        PacingSettings {
            rate,
            burst,
            window,
        }
    }

    /// No rate and no window: every request is granted at once.
    pub fn is_unlimited(&self) -> bool {
        self.rate == 0 && self.window == 0
    }
}

/// Refresh exchanges per second a fleet needs at steady state: each line
/// refreshes once per [`refresh_after`] of the expiry it asks for
/// (`(expires_s, overlap_s)` per line; a registrar that grants less makes
/// it more). A rate below this cannot keep every line registered: refreshes
/// queue behind the pacer past their bindings' expiry. Measured: 100,000
/// lines with Expires 20 need 10,000/s, and at 2,000/s about 60 % of them
/// were unregistered at any moment.
///
/// [`refresh_after`]: crate::registration::refresh_after
pub fn refresh_demand_per_s(lines: impl IntoIterator<Item = (u32, u32)>) -> f64 {
    lines
        .into_iter()
        .map(|(expires, overlap)| {
            let every = crate::registration::refresh_after(
                Duration::from_secs(u64::from(expires)),
                Duration::from_secs(u64::from(overlap)),
            );
            if every.is_zero() {
                0.0
            } else {
                1.0 / every.as_secs_f64()
            }
        })
        .sum()
}

/// A grant: `id` may start its exchange on `flow` now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant<K, F> {
    /// The exchange allowed to start.
    pub id: K,
    /// The flow it may use.
    pub flow: F,
}

/// A request waiting for its grant.
#[derive(Clone, Debug)]
struct Waiting<F> {
    flow: F,
    /// Arrival order: grants go first come, first served.
    seq: u64,
}

/// The rate: GCRA's theoretical arrival time.
#[derive(Debug)]
struct Rate {
    /// Time between grants at the configured rate (rounded up: never faster).
    interval: Duration,
    /// How far ahead of its time a grant may go: `(burst - 1) * interval`.
    tolerance: Duration,
    /// When the next grant is due at the steady rate; `None` before the
    /// first grant.
    tat: Option<Instant>,
}

impl Rate {
    fn new(settings: &PacingSettings) -> Option<Self> {
        if settings.rate == 0 {
            return None;
        }
        let rate = u64::from(settings.rate);
        let interval = Duration::from_nanos(1_000_000_000u64.div_ceil(rate));
        Some(Rate {
            interval,
            tolerance: interval * settings.burst.max(1).saturating_sub(1),
            tat: None,
        })
    }

    fn allows(&self, now: Instant) -> bool {
        self.tat.is_none_or(|tat| tat <= now + self.tolerance)
    }

    fn take(&mut self, now: Instant) {
        let base = self.tat.map_or(now, |tat| tat.max(now));
        self.tat = Some(base + self.interval);
    }

    /// When the next grant may go.
    fn next_allowed(&self) -> Option<Instant> {
        self.tat
            .map(|tat| tat.checked_sub(self.tolerance).unwrap_or(tat))
    }
}

/// Hands out grants to start exchanges, under a rate and a per-flow window.
///
/// `K` names a requester (a line), `F` a flow. A requester has at most one
/// request waiting or one grant held: asking again replaces both (the
/// registration machine asks anew for each exchange).
#[derive(Debug)]
pub struct Pacer<K, F> {
    settings: PacingSettings,
    rate: Option<Rate>,
    next_seq: u64,
    waiting: FxHashMap<K, Waiting<F>>,
    /// Per flow, the requests in arrival order. Entries whose requester
    /// asked again or let go are skipped when they reach the head.
    queues: FxHashMap<F, VecDeque<(u64, K)>>,
    /// Live waiting requests per flow (the queues may hold stale entries).
    live: FxHashMap<F, u32>,
    held: FxHashMap<K, F>,
    in_flight: FxHashMap<F, u32>,
}

impl<K, F> Pacer<K, F>
where
    K: Clone + Eq + Hash,
    F: Clone + Eq + Hash,
{
    /// A pacer with `settings` and nothing queued.
    pub fn new(settings: PacingSettings) -> Self {
        Pacer {
            rate: Rate::new(&settings),
            settings,
            next_seq: 0,
            waiting: FxHashMap::default(),
            queues: FxHashMap::default(),
            live: FxHashMap::default(),
            held: FxHashMap::default(),
            in_flight: FxHashMap::default(),
        }
    }

    // ----- getters -----

    /// The settings it paces with.
    pub fn settings(&self) -> &PacingSettings {
        &self.settings
    }

    /// Requests waiting for a grant.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// Grants held on `flow` (exchanges in flight there).
    pub fn in_flight(&self, flow: &F) -> u32 {
        self.in_flight.get(flow).copied().unwrap_or(0)
    }

    /// Grants held, every flow together.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    // ----- inputs -----

    /// `id` asks to start an exchange on `flow`. Whatever it waited for or
    /// held before is given up first.
    pub fn request(&mut self, id: K, flow: F) {
        self.release(&id);
        let seq = self.next_seq;
        self.next_seq += 1;
        *self.live.entry(flow.clone()).or_insert(0) += 1;
        self.queues
            .entry(flow.clone())
            .or_default()
            .push_back((seq, id.clone()));
        self.waiting.insert(id, Waiting { flow, seq });
    }

    /// `id`'s exchange is over (or it no longer wants one): its grant goes
    /// back to its flow's window, or its request leaves the queue.
    pub fn release(&mut self, id: &K) {
        if let Some(flow) = self.held.remove(id) {
            if let Some(n) = self.in_flight.get_mut(&flow) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.in_flight.remove(&flow);
                }
            }
        }
        if let Some(w) = self.waiting.remove(id) {
            self.unlive(&w.flow);
        }
    }

    // ----- outputs -----

    /// The next grant due at `now`, if any: the oldest request among the
    /// flows with room in their window, when the rate allows one. Call until
    /// it returns `None`.
    pub fn poll_grant(&mut self, now: Instant) -> Option<Grant<K, F>> {
        if self.rate.as_ref().is_some_and(|r| !r.allows(now)) {
            return None;
        }
        let flow = self.oldest_with_room()?;
        let (_, id) = self.queues.get_mut(&flow)?.pop_front()?;
        if self.queues.get(&flow).is_some_and(VecDeque::is_empty) {
            self.queues.remove(&flow);
        }
        self.waiting.remove(&id);
        self.unlive(&flow);
        if let Some(rate) = &mut self.rate {
            rate.take(now);
        }
        *self.in_flight.entry(flow.clone()).or_insert(0) += 1;
        self.held.insert(id.clone(), flow.clone());
        Some(Grant { id, flow })
    }

    /// When [`Self::poll_grant`] may give something that it did not give
    /// last time: the rate's next slot, when a request waits on a flow with
    /// room. `None` when nothing waits, or every waiting request waits for
    /// its window (a [`Self::release`] wakes those). Drain `poll_grant`
    /// first: the time may be in the past when it was not drained.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let rate = self.rate.as_ref()?;
        let eligible = self
            .live
            .iter()
            .any(|(flow, &n)| n > 0 && self.has_room(flow));
        if eligible {
            rate.next_allowed()
        } else {
            None
        }
    }

    // ----- internals -----

    fn has_room(&self, flow: &F) -> bool {
        self.settings.window == 0 || self.in_flight(flow) < self.settings.window
    }

    fn unlive(&mut self, flow: &F) {
        if let Some(n) = self.live.get_mut(flow) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                // Nothing live is left: the queue holds only stale entries.
                self.live.remove(flow);
                self.queues.remove(flow);
            }
        }
    }

    /// The flow whose live head request is the oldest among the flows with
    /// room, after dropping stale heads.
    fn oldest_with_room(&mut self) -> Option<F> {
        let mut best: Option<(u64, F)> = None;
        let flows: Vec<F> = self
            .live
            .keys()
            .filter(|f| self.has_room(f))
            .cloned()
            .collect();
        for flow in flows {
            let Some(queue) = self.queues.get_mut(&flow) else {
                continue;
            };
            while let Some((seq, id)) = queue.front() {
                let live = self
                    .waiting
                    .get(id)
                    .is_some_and(|w| w.seq == *seq && w.flow == flow);
                if live {
                    break;
                }
                queue.pop_front();
            }
            if let Some(&(seq, _)) = queue.front() {
                if best.as_ref().is_none_or(|(s, _)| seq < *s) {
                    best = Some((seq, flow));
                }
            }
        }
        best.map(|(_, flow)| flow)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "sbc-a";
    const B: &str = "sbc-b";

    #[test]
    fn refresh_demand_follows_polys_refresh_point() {
        // Expires 3600, overlap 60: a refresh every 3,540 s.
        let d = refresh_demand_per_s(std::iter::repeat_n((3600, 60), 3540));
        assert!((d - 1.0).abs() < 1e-9, "{d}");
        // Expires 20: at half of it (10 s), the overlap being larger.
        let d = refresh_demand_per_s(std::iter::repeat_n((20, 60), 100_000));
        assert!((d - 10_000.0).abs() < 1e-6, "{d}");
        assert_eq!(refresh_demand_per_s(std::iter::empty()), 0.0);
    }

    /// Virtual time: grants every grant at the earliest moment the pacer
    /// allows, releasing each exchange `hold` after its grant (`None`: never),
    /// up to `until_ms`. Returns (ms, line) of every grant.
    fn run(
        pacer: &mut Pacer<u32, &'static str>,
        hold: Option<Duration>,
        until_ms: u64,
    ) -> Vec<(u64, u32)> {
        let t0 = Instant::now();
        let end = t0 + Duration::from_millis(until_ms);
        let mut now = t0;
        let mut grants = Vec::new();
        let mut releases: Vec<(Instant, u32)> = Vec::new();
        loop {
            releases.sort();
            while releases.first().is_some_and(|(at, _)| *at <= now) {
                let (_, id) = releases.remove(0);
                pacer.release(&id);
            }
            while let Some(g) = pacer.poll_grant(now) {
                grants.push(((now - t0).as_millis() as u64, g.id));
                if let Some(hold) = hold {
                    releases.push((now + hold, g.id));
                }
            }
            let next = [pacer.poll_timeout(), releases.iter().map(|r| r.0).min()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) if t <= end => now = now.max(t),
                _ => return grants,
            }
        }
    }

    fn ms(grants: &[(u64, u32)]) -> Vec<u64> {
        grants.iter().map(|g| g.0).collect()
    }

    #[test]
    fn a_rate_of_4_per_second_grants_every_250_ms_in_arrival_order() {
        let mut pacer = Pacer::new(PacingSettings {
            rate: 4,
            burst: 1,
            window: 0,
        });
        for line in 1..=10 {
            pacer.request(line, A);
        }
        let grants = run(&mut pacer, None, 10_000);
        assert_eq!(
            ms(&grants),
            [0, 250, 500, 750, 1000, 1250, 1500, 1750, 2000, 2250]
        );
        assert_eq!(
            grants.iter().map(|g| g.1).collect::<Vec<_>>(),
            (1..=10).collect::<Vec<_>>()
        );
        assert_eq!(pacer.held(), 10);
        assert_eq!(pacer.waiting(), 0);
        assert_eq!(pacer.poll_timeout(), None, "nothing waits");
    }

    #[test]
    fn a_window_of_2_holds_the_third_until_one_completes() {
        let mut pacer = Pacer::new(PacingSettings::new(0, 2));
        let t0 = Instant::now();
        for line in 1..=3 {
            pacer.request(line, A);
        }
        assert_eq!(pacer.poll_grant(t0).map(|g| g.id), Some(1));
        assert_eq!(pacer.poll_grant(t0).map(|g| g.id), Some(2));
        assert_eq!(pacer.poll_grant(t0), None);
        assert_eq!(pacer.poll_timeout(), None, "only a release wakes it");
        assert_eq!(pacer.in_flight(&A), 2);
        pacer.release(&2);
        assert_eq!(
            pacer.poll_grant(t0 + Duration::from_millis(40)),
            Some(Grant { id: 3, flow: A })
        );
        assert_eq!(pacer.in_flight(&A), 2);
    }

    #[test]
    fn rate_and_window_together_each_exchange_held_300_ms() {
        // 10/s, window 2, each exchange answered 300 ms after its grant:
        // the window, not the rate, sets the pace (2 per 300 ms).
        let mut pacer = Pacer::new(PacingSettings {
            rate: 10,
            burst: 1,
            window: 2,
        });
        for line in 1..=6 {
            pacer.request(line, A);
        }
        let grants = run(&mut pacer, Some(Duration::from_millis(300)), 10_000);
        assert_eq!(ms(&grants), [0, 100, 300, 400, 600, 700]);
    }

    #[test]
    fn a_full_window_does_not_hold_up_another_flow() {
        let mut pacer = Pacer::new(PacingSettings::new(0, 1));
        let t0 = Instant::now();
        pacer.request(1, A);
        pacer.request(2, A);
        pacer.request(3, B);
        let granted: Vec<u32> = std::iter::from_fn(|| pacer.poll_grant(t0))
            .map(|g| g.id)
            .collect();
        assert_eq!(granted, [1, 3]);
        pacer.release(&1);
        assert_eq!(pacer.poll_grant(t0).map(|g| g.id), Some(2));
    }

    #[test]
    fn grants_go_first_come_first_served_across_flows() {
        let mut pacer = Pacer::new(PacingSettings {
            rate: 1000,
            burst: 1,
            window: 0,
        });
        for (line, flow) in [(1, B), (2, A), (3, B), (4, A)] {
            pacer.request(line, flow);
        }
        let grants = run(&mut pacer, None, 1_000);
        assert_eq!(grants, [(0, 1), (1, 2), (2, 3), (3, 4)]);
    }

    #[test]
    fn the_burst_goes_at_once_then_the_steady_rate() {
        // 1000/s with the default burst: 10 ms worth, 10 grants.
        let settings = PacingSettings::new(1000, 0);
        assert_eq!(settings.burst, 10);
        let mut pacer = Pacer::new(settings);
        for line in 1..=14 {
            pacer.request(line, A);
        }
        let grants = run(&mut pacer, None, 1_000);
        assert_eq!(ms(&grants), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]);
    }

    #[test]
    fn a_late_wake_up_catches_up_within_the_burst_and_no_further() {
        let mut pacer = Pacer::new(PacingSettings::new(1000, 0));
        let t0 = Instant::now();
        for line in 1..=40 {
            pacer.request(line, A);
        }
        let first = std::iter::from_fn(|| pacer.poll_grant(t0)).count();
        assert_eq!(first, 10);
        // The driver wakes 5 ms late: the 5 grants due by then go, and the
        // burst's credit does not grow past the 10 ms span.
        let late = t0 + Duration::from_millis(5);
        assert_eq!(std::iter::from_fn(|| pacer.poll_grant(late)).count(), 5);
        // After a long idle spell only the burst is available.
        let idle = t0 + Duration::from_secs(10);
        assert_eq!(std::iter::from_fn(|| pacer.poll_grant(idle)).count(), 10);
    }

    /// A driver whose timer always fires 2 ms late keeps the rate: 100/s
    /// gives 101 grants within about a second (2 at once, then every 10 ms),
    /// not in 1.2 s as it would with a burst of one.
    #[test]
    fn a_timer_that_always_fires_late_does_not_slow_the_rate() {
        let mut pacer = Pacer::new(PacingSettings::new(100, 0));
        let t0 = Instant::now();
        for line in 0..200 {
            pacer.request(line, A);
        }
        let mut now = t0;
        let mut grants = Vec::new();
        while grants.len() < 101 {
            while let Some(g) = pacer.poll_grant(now) {
                grants.push(((now - t0).as_millis() as u64, g.id));
            }
            let due = pacer.poll_timeout().expect("lines wait");
            now = due.max(now) + Duration::from_millis(2);
        }
        let last = grants[100].0;
        assert!((990..=1010).contains(&last), "101st grant at {last} ms");
    }

    #[test]
    fn rates_are_never_exceeded_over_a_second() {
        for rate in [1u32, 3, 7, 100, 2000, 7919] {
            let mut pacer = Pacer::new(PacingSettings::new(rate, 0));
            let burst = pacer.settings().burst as usize;
            for line in 0..(rate * 3) {
                pacer.request(line, A);
            }
            let grants = run(&mut pacer, None, 2_999);
            // Over any second: the rate plus the burst (a burst is the
            // credit of an idle spell).
            for w in 0..2000u64 {
                let n = grants.iter().filter(|g| g.0 >= w && g.0 < w + 1000).count();
                assert!(
                    n <= rate as usize + burst,
                    "rate {rate}: {n} in [{w}, +1 s)"
                );
            }
            let last_s = grants.iter().filter(|g| g.0 >= 1000 && g.0 < 2000).count();
            assert!(
                last_s + 1 >= rate as usize,
                "rate {rate}: only {last_s} in the second second"
            );
        }
    }

    #[test]
    fn asking_again_replaces_the_request_and_releasing_while_waiting_leaves_the_queue() {
        let mut pacer = Pacer::new(PacingSettings {
            rate: 1,
            burst: 1,
            window: 1,
        });
        let t0 = Instant::now();
        pacer.request(1, A);
        assert_eq!(pacer.poll_grant(t0).map(|g| g.id), Some(1));
        pacer.request(2, A);
        pacer.request(3, B);
        // Line 2 changes its mind (failover to B) before its grant.
        pacer.request(2, B);
        // Line 3 shuts down while waiting.
        pacer.release(&3);
        assert_eq!(pacer.waiting(), 1);
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(pacer.poll_grant(t1), Some(Grant { id: 2, flow: B }));
        // Line 1 asks again while holding its grant on A: the grant goes
        // back first, so its new request fits the window of 1.
        pacer.request(1, A);
        assert_eq!(pacer.in_flight(&A), 0);
        let t2 = t0 + Duration::from_secs(2);
        assert_eq!(pacer.poll_grant(t2), Some(Grant { id: 1, flow: A }));
        pacer.release(&1);
        pacer.release(&2);
        pacer.release(&2);
        assert_eq!((pacer.held(), pacer.waiting()), (0, 0));
        assert_eq!(pacer.in_flight(&A) + pacer.in_flight(&B), 0);
        assert!(pacer.queues.is_empty() && pacer.live.is_empty());
    }

    #[test]
    fn unlimited_grants_everything_at_once_and_never_sleeps() {
        let settings = PacingSettings::new(0, 0);
        assert!(settings.is_unlimited());
        let mut pacer = Pacer::new(settings);
        let t0 = Instant::now();
        for line in 0..1000 {
            pacer.request(line, if line % 2 == 0 { A } else { B });
        }
        assert_eq!(pacer.poll_timeout(), None);
        assert_eq!(std::iter::from_fn(|| pacer.poll_grant(t0)).count(), 1000);
    }

    #[test]
    fn a_hundred_thousand_lines_asking_again_stays_linear() {
        // Every line asks, then asks again on another flow (a failover
        // wave before any grant), then lets go: stale queue entries are
        // skipped, never scanned once per grant.
        let mut pacer = Pacer::new(PacingSettings::new(0, 100));
        let t0 = Instant::now();
        for line in 0..100_000u32 {
            pacer.request(line, A);
        }
        for line in 0..100_000u32 {
            pacer.request(line, B);
        }
        let mut granted = 0;
        while let Some(g) = pacer.poll_grant(t0) {
            granted += 1;
            pacer.release(&g.id);
        }
        assert_eq!(granted, 100_000);
        assert_eq!((pacer.held(), pacer.waiting()), (0, 0));
    }
}
