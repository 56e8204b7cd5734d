//! When a failed-over line goes back to its primary (design.md decisions 1 and
//! 9), and when a registration is refreshed.
//!
//! | effective mode  | failback is tried                                                 |
//! |-----------------|-------------------------------------------------------------------|
//! | `duration`      | `failBack.timeout` s after registering on a non-primary; 0: never |
//! | `DNSTTL`        | the current route's DNS TTL after registering on a non-primary    |
//! | `newRequests`   | at every refresh (every new request tries the primary first)      |
//! | `registration`  | at every refresh                                                  |
//!
//! `reRegisterOn=0` makes the mode `newRequests`. A line with an active call
//! (with enhanced failover: any line of the fleet, reported by the fleet's
//! coordinator) does not fail back; it refreshes on its current route and fails
//! back as soon as the calls end.

use std::time::Duration;

use rand::{Rng, RngCore};

use super::settings::{FailbackMode, RegistrationSettings};

/// Delay after registering on a non-primary route before failing back, for the
/// timer-driven modes; `None` when no timer applies.
pub(super) fn failback_delay(
    settings: &RegistrationSettings,
    dns_ttl: Option<Duration>,
) -> Option<Duration> {
    let timeout = (settings.failback_timeout_s > 0)
        .then(|| Duration::from_secs(settings.failback_timeout_s.into()));
    match settings.effective_failback_mode() {
        FailbackMode::Duration => timeout,
        // Without a known TTL (static literal routes) fall back to the
        // duration rule rather than never failing back.
        FailbackMode::DnsTtl => dns_ttl.or(timeout),
        FailbackMode::NewRequests | FailbackMode::Registration => None,
    }
}

/// Whether a refresh of a failed-over line goes to the primary first.
pub(super) fn refresh_tries_primary(settings: &RegistrationSettings) -> bool {
    matches!(
        settings.effective_failback_mode(),
        FailbackMode::NewRequests | FailbackMode::Registration
    )
}

/// When to refresh a binding granted for `granted`, under Poly's
/// `expires.overlap` (`reg.x.server.y.expires.overlap`, default 60 s):
/// `overlap` seconds before the binding lapses, or at half its life when
/// half of it is less than the overlap. Read this way the rule is continuous
/// (it never jumps from "half" to "almost at once" as the grant crosses the
/// overlap): the refresh comes at `max(granted - overlap, granted / 2)`.
pub fn refresh_after(granted: Duration, overlap: Duration) -> Duration {
    let half = granted / 2;
    if half < overlap {
        half
    } else {
        granted - overlap
    }
}

/// When to refresh a binding granted for `granted`, with a fleet's refresh
/// spread (`sipfleet.register.refreshSpread`, `spread_pct` percent of the
/// grant): Poly's point ([`refresh_after`]) moved *earlier* by a jitter drawn
/// uniformly, at millisecond resolution, from `[0, spread_pct% of granted]`,
/// and never before half of the grant. Lines registered in one burst then
/// refresh spread over that window, and because every refresh draws anew
/// they drift further apart at each one instead of keeping the burst
/// forever. Never later than Poly's point: the binding must not lapse
/// because a fleet is gentle. With a grant of at most twice the overlap
/// Poly's point is already half of it, so there is no room and the refresh
/// stays where Poly puts it. A spread of 0 draws nothing from `rng`.
pub(super) fn refresh_spread(
    granted: Duration,
    overlap: Duration,
    spread_pct: u32,
    rng: &mut dyn RngCore,
) -> Duration {
    let poly = refresh_after(granted, overlap);
    if spread_pct == 0 {
        return poly;
    }
    let room = poly
        .saturating_sub(granted / 2)
        .min(granted.mul_f64(f64::from(spread_pct.min(100)) / 100.0));
    let room_ms = u64::try_from(room.as_millis()).unwrap_or(u64::MAX);
    if room_ms == 0 {
        return poly;
    }
    poly.saturating_sub(Duration::from_millis(rng.random_range(0..=room_ms)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn without_spread_the_refresh_is_poly_point_and_draws_nothing() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut untouched = StdRng::seed_from_u64(1);
        for (granted, expect) in [(3600, 3540), (100, 50), (20, 10)] {
            assert_eq!(refresh_spread(S(granted), S(60), 0, &mut rng), S(expect));
        }
        assert_eq!(rng.next_u64(), untouched.next_u64());
    }

    #[test]
    fn a_spread_moves_the_refresh_earlier_within_its_window_never_before_half() {
        let mut rng = StdRng::seed_from_u64(2);
        let (mut min, mut max) = (S(3600), S(0));
        for _ in 0..10_000 {
            let at = refresh_spread(S(3600), S(60), 10, &mut rng);
            min = min.min(at);
            max = max.max(at);
        }
        // [3540 - 360, 3540], and the draws cover it.
        assert!(min >= S(3180) && min < S(3185), "{min:?}");
        assert!(max <= S(3540) && max > S(3535), "{max:?}");
        // Half of the grant bounds a wide spread: 50 % of 600 s is 300 s,
        // but not before 300 s.
        for _ in 0..1000 {
            let at = refresh_spread(S(600), S(60), 50, &mut rng);
            assert!(at >= S(300) && at <= S(540), "{at:?}");
        }
        // No room when Poly's point is half of the grant.
        assert_eq!(refresh_spread(S(100), S(60), 20, &mut rng), S(50));
    }
}
