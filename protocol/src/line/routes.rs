//! Which routes a line's other requests may use: the guide's
//! `onlySignalWithRegistered` and the INVITE's walk to the next route.
//!
//! * An INVITE that gets no answer on its route moves to the next route of
//!   the registration's route list, with the same Call-ID (the guide: "new
//!   requests" follow the failover order) — unless `reRegisterOn=1` and
//!   `onlySignalWithRegistered=1` (the default there), which keep every
//!   request on the route holding the registration: then there is no next
//!   route.
//! * With the same setting, a request that arrives on a flow other than the
//!   registration's is ignored: an SBC that no longer holds the line's
//!   registration cannot reach it (not even with a 4xx, which would tell a
//!   stale SBC the line is there).

use crate::registration::RegistrationSettings;
use crate::route::Route;

/// The route an INVITE that got no answer on `current` tries next, if any.
pub fn next_invite_route<'a>(
    settings: &RegistrationSettings,
    routes: &'a [Route],
    current: &Route,
) -> Option<&'a Route> {
    if settings.effective_only_signal_with_registered() {
        return None;
    }
    routes
        .iter()
        .position(|r| r.same_destination(current))
        .and_then(|p| routes.get(p + 1))
}

/// Whether an INVITE on `route` has no route after it.
pub fn is_last_invite_route(
    settings: &RegistrationSettings,
    routes: &[Route],
    route: &Route,
) -> bool {
    next_invite_route(settings, routes, route).is_none()
}

/// Whether a request that arrived on `arrived_on` (the route of its flow,
/// `None` when the flow is none of the line's routes) may reach the line,
/// whose registration is on `registered`.
pub fn accepts_request_from(
    settings: &RegistrationSettings,
    registered: Option<&Route>,
    arrived_on: Option<&Route>,
) -> bool {
    if !settings.effective_only_signal_with_registered() {
        return true;
    }
    matches!((registered, arrived_on), (Some(r), Some(a)) if r.same_destination(a))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::{RouteSource, Transport};

    fn route(last: u8) -> Route {
        Route {
            transport: Transport::Udp,
            host: format!("sbc{last}"),
            addr: std::net::SocketAddr::from(([127, 0, 0, last], 5060)),
            group: 0,
            priority: 0,
            weight: 0,
            source: RouteSource::Network,
        }
    }

    fn settings(only_registered: bool) -> RegistrationSettings {
        RegistrationSettings {
            re_register_on: true,
            only_signal_with_registered: only_registered,
            ..RegistrationSettings::default()
        }
    }

    #[test]
    fn an_invite_walks_the_route_list_unless_only_the_registered_route_may_signal() {
        let routes = [route(1), route(2), route(3)];
        let free = settings(false);
        assert_eq!(
            next_invite_route(&free, &routes, &routes[0]),
            Some(&routes[1])
        );
        assert_eq!(next_invite_route(&free, &routes, &routes[2]), None);
        assert!(is_last_invite_route(&free, &routes, &routes[2]));
        assert!(!is_last_invite_route(&free, &routes, &routes[1]));
        assert_eq!(
            next_invite_route(&free, &routes, &route(9)),
            None,
            "not listed"
        );
        let pinned = settings(true);
        assert_eq!(next_invite_route(&pinned, &routes, &routes[0]), None);
        // reRegisterOn=0: the RROFO parameter does not count.
        let off = RegistrationSettings {
            only_signal_with_registered: true,
            ..RegistrationSettings::default()
        };
        assert_eq!(
            next_invite_route(&off, &routes, &routes[0]),
            Some(&routes[1])
        );
    }

    #[test]
    fn only_the_registrars_flow_reaches_a_pinned_line() {
        let (a, b) = (route(1), route(2));
        let pinned = settings(true);
        assert!(accepts_request_from(&pinned, Some(&a), Some(&a)));
        assert!(!accepts_request_from(&pinned, Some(&a), Some(&b)));
        assert!(!accepts_request_from(&pinned, None, Some(&a)));
        assert!(!accepts_request_from(&pinned, Some(&a), None));
        assert!(accepts_request_from(&settings(false), None, None));
    }
}
