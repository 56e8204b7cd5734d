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

/// When to refresh a binding granted for `granted`, under Poly's
/// `expires.overlap` (`reg.x.server.y.expires.overlap`, default 60 s):
/// `overlap` seconds before the binding lapses, or at half its life when
/// half of it is less than the overlap. Read this way the rule is continuous
/// (it never jumps from "half" to "almost at once" as the grant crosses the
/// overlap): the refresh comes at `max(granted - overlap, granted / 2)`.
pub(super) fn refresh_after(granted: Duration, overlap: Duration) -> Duration {
    let half = granted / 2;
    if half < overlap {
        half
    } else {
        granted - overlap
    }
}
