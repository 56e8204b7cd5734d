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

/// Margin kept before a binding lapses: one whole Timer B/F walk.
const REFRESH_MARGIN: Duration = Duration::from_secs(32);

/// When to refresh a binding granted for `granted`: 32 s (a full Timer B/F
/// transaction) before it lapses, or at half its life when it is shorter than
/// 64 s, so a refresh always has time to fail over before the binding lapses.
pub(super) fn refresh_after(granted: Duration) -> Duration {
    if granted >= REFRESH_MARGIN * 2 {
        granted - REFRESH_MARGIN
    } else {
        granted / 2
    }
}
