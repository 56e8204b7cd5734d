//! A line's route list from several configured servers (`reg.x.server.y`,
//! `y = 1, 2, ...`): each server's routes after the earlier servers' routes.
//!
//! # Why
//!
//! A Poly configuration with a primary and a secondary server
//! (`reg.1.server.1.address`, `reg.1.server.2.address`) expects the phone to
//! move to server 2 when server 1 cannot be reached. The registration walk
//! (`registration/walk.rs`) already finishes one service record (route
//! `group`) before it goes on to the next, and never goes back to an earlier
//! one. So the servers need no walk of their own: server `y`'s routes simply
//! get route groups after server `y-1`'s, and a walk that ran out of server
//! 1's routes goes on to server 2's.
//!
//! # Decisions
//!
//! * **Fixed group ranges.** Server at position `k` (0 for the first
//!   configured server) owns the groups `k * SERVER_GROUP_STRIDE ..
//!   (k + 1) * SERVER_GROUP_STRIDE`; its own service records (NAPTR entries,
//!   `TCPpreferred`'s TCP and UDP records) keep their order inside that
//!   range. A range that does not move when a DNS refresh changes how many
//!   records server 1 has lets per-server settings
//!   ([`crate::registration::RegistrationSettings::per_server`]) be keyed by
//!   group once, at configuration time, and [`server_of`] tell which server a
//!   route belongs to without a field on every `Route`.
//! * **Primary across servers.** The guide's primary is the top route of the
//!   service record the line registered in. A line registered on a later
//!   server is failed over all the same: its primary is the first server's
//!   top route (the top of the whole list), so failback goes back to server
//!   1 (see `primary_of` in `registration/walk.rs`).
//! * **First delivery waits for every server.** The combined list is handed
//!   to the registration only once every server's resolution has finished
//!   (with routes or without), so a fast answer for server 2 cannot start the
//!   line there while server 1's answer is on its way. Afterwards, any
//!   server's new route set (a DNS refresh) rebuilds the list at once, and
//!   the registration's sticky-route rule applies to the whole list.
//! * **Duplicates.** A destination listed by two servers stays in the first
//!   one's range only.
//!
//! Sans-IO: the caller (the line actor) resolves each target and feeds the
//! outcomes here.

use std::time::Instant;

use crate::dns::{ResolveTarget, RouteSet};
use crate::route::Route;

/// Route groups reserved for each configured server: far more than the
/// service records one DNS name can yield.
pub const SERVER_GROUP_STRIDE: usize = 1000;

/// The position (0-based, in `y` order) of the server a route group belongs
/// to.
pub fn server_of(group: usize) -> usize {
    group / SERVER_GROUP_STRIDE
}

/// What is known of one server's routes.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Slot {
    /// Not resolved yet.
    Pending,
    /// Resolution found no route (yet).
    Failed,
    Resolved(RouteSet),
}

/// The combined route list of a line's servers.
#[derive(Clone, Debug)]
pub struct ServerRoutes {
    targets: Vec<ResolveTarget>,
    slots: Vec<Slot>,
}

impl ServerRoutes {
    /// One target per configured server, in `y` order.
    pub fn new(targets: Vec<ResolveTarget>) -> Self {
        let slots = vec![Slot::Pending; targets.len()];
        ServerRoutes { targets, slots }
    }

    /// The servers, in walk order.
    pub fn targets(&self) -> &[ResolveTarget] {
        &self.targets
    }

    /// Whether `target` is one of the line's servers.
    pub fn contains(&self, target: &ResolveTarget) -> bool {
        self.targets.contains(target)
    }

    /// `target` resolved to `set` (first resolution or a refresh). Returns
    /// whether the combined list is ready to be (re)applied.
    pub fn resolved(&mut self, target: &ResolveTarget, set: &RouteSet) -> bool {
        self.update(target, Slot::Resolved(set.clone()))
    }

    /// `target` gave no route. A server that had routes keeps them (the
    /// resolver keeps serving a route set whose refresh failed). Returns
    /// whether the combined list is ready to be (re)applied.
    pub fn failed(&mut self, target: &ResolveTarget) -> bool {
        self.update(target, Slot::Failed)
    }

    fn update(&mut self, target: &ResolveTarget, slot: Slot) -> bool {
        let mut matched = false;
        for (t, s) in self.targets.iter().zip(&mut self.slots) {
            if t == target {
                matched = true;
                if !(slot == Slot::Failed && matches!(s, Slot::Resolved(_))) {
                    *s = slot.clone();
                }
            }
        }
        matched && self.is_settled()
    }

    /// Every server's first resolution has finished.
    pub fn is_settled(&self) -> bool {
        !self.slots.contains(&Slot::Pending)
    }

    /// The combined list: server 1's routes, then server 2's, ..., each
    /// server's groups moved into its own range.
    pub fn routes(&self) -> Vec<Route> {
        let mut out: Vec<Route> = Vec::new();
        for (k, slot) in self.slots.iter().enumerate() {
            let Slot::Resolved(set) = slot else {
                continue;
            };
            for entry in &set.entries {
                if out.iter().any(|r| r.same_destination(&entry.route)) {
                    continue;
                }
                let inner = entry.route.group.min(SERVER_GROUP_STRIDE - 1);
                out.push(Route {
                    group: k * SERVER_GROUP_STRIDE + inner,
                    ..entry.route.clone()
                });
            }
        }
        out
    }

    /// When the first record behind any server's routes expires.
    pub fn expires(&self) -> Option<Instant> {
        self.slots
            .iter()
            .filter_map(|s| match s {
                Slot::Resolved(set) => set.expires,
                _ => None,
            })
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TransportSetting;
    use crate::dns::RouteEntry;
    use crate::route::{RouteSource, Transport};
    use std::time::Duration;

    fn target(name: &str) -> ResolveTarget {
        ResolveTarget::new(name, TransportSetting::UdpOnly, 0)
    }

    fn set(name: &str, routes: &[(usize, &str)], expires: Option<Instant>) -> RouteSet {
        let entries = routes
            .iter()
            .enumerate()
            .map(|(i, &(group, addr))| RouteEntry {
                route: Route {
                    transport: Transport::Udp,
                    host: format!("h{i}.{name}"),
                    addr: addr.parse().unwrap(),
                    group,
                    priority: 0,
                    weight: 0,
                    source: RouteSource::Network,
                },
                selection_order: i + 1,
                naptr: None,
                srv_name: None,
                expires,
            })
            .collect();
        RouteSet {
            target: target(name),
            entries,
            expires,
        }
    }

    fn summary(s: &ServerRoutes) -> Vec<(usize, String)> {
        s.routes()
            .iter()
            .map(|r| (r.group, r.addr.to_string()))
            .collect()
    }

    #[test]
    fn servers_follow_each_other_in_their_own_group_ranges() {
        let now = Instant::now();
        let mut s = ServerRoutes::new(vec![target("one"), target("two")]);
        let two = set("two", &[(0, "10.0.2.1:5060")], Some(now));
        // Server 2 answers first: not ready until server 1 has answered.
        assert!(!s.resolved(&target("two"), &two));
        let one = set(
            "one",
            &[
                (0, "10.0.1.1:5060"),
                (0, "10.0.1.2:5060"),
                (1, "10.0.1.3:5060"),
            ],
            Some(now + Duration::from_secs(5)),
        );
        assert!(s.resolved(&target("one"), &one));
        assert_eq!(
            summary(&s),
            [
                (0, "10.0.1.1:5060".to_string()),
                (0, "10.0.1.2:5060".to_string()),
                (1, "10.0.1.3:5060".to_string()),
                (1000, "10.0.2.1:5060".to_string()),
            ]
        );
        assert_eq!(server_of(1), 0);
        assert_eq!(server_of(1000), 1);
        assert_eq!(s.expires(), Some(now));
    }

    #[test]
    fn a_failed_server_leaves_a_gap_and_a_refresh_rebuilds_the_list() {
        let mut s = ServerRoutes::new(vec![target("one"), target("two"), target("three")]);
        assert!(!s.failed(&target("one")));
        assert!(!s.resolved(&target("two"), &set("two", &[(0, "10.0.2.1:5060")], None)));
        assert!(s.resolved(
            &target("three"),
            &set("three", &[(0, "10.0.3.1:5060")], None)
        ));
        assert_eq!(
            summary(&s),
            [
                (1000, "10.0.2.1:5060".to_string()),
                (2000, "10.0.3.1:5060".to_string()),
            ]
        );
        // Server 1 comes back with a later resolution; server 2's refresh
        // replaces its routes; a failed refresh keeps the old ones.
        assert!(s.resolved(&target("one"), &set("one", &[(0, "10.0.1.1:5060")], None)));
        assert!(s.resolved(&target("two"), &set("two", &[(0, "10.0.2.9:5060")], None)));
        assert!(s.failed(&target("three")));
        assert_eq!(
            summary(&s),
            [
                (0, "10.0.1.1:5060".to_string()),
                (1000, "10.0.2.9:5060".to_string()),
                (2000, "10.0.3.1:5060".to_string()),
            ]
        );
        assert!(!s.resolved(&target("other"), &set("other", &[], None)));
    }

    #[test]
    fn a_destination_of_two_servers_stays_with_the_first() {
        let mut s = ServerRoutes::new(vec![target("one"), target("two")]);
        s.resolved(&target("one"), &set("one", &[(0, "10.0.0.1:5060")], None));
        s.resolved(
            &target("two"),
            &set("two", &[(0, "10.0.0.1:5060"), (0, "10.0.0.2:5060")], None),
        );
        assert_eq!(
            summary(&s),
            [
                (0, "10.0.0.1:5060".to_string()),
                (1000, "10.0.0.2:5060".to_string()),
            ]
        );
    }

    #[test]
    fn the_same_target_for_two_servers_fills_both() {
        let mut s = ServerRoutes::new(vec![target("one"), target("one")]);
        assert!(s.resolved(&target("one"), &set("one", &[(0, "10.0.0.1:5060")], None)));
        assert_eq!(summary(&s), [(0, "10.0.0.1:5060".to_string())]);
    }
}
