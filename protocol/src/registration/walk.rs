//! Route selection for one failover walk (design.md decisions 7 and 8).
//!
//! A walk starts in an *anchor* service record (route `group`) and never goes
//! back to better-ranked records: it tries the anchor record from its top,
//! skipping routes that already failed in this walk, then the following
//! records in selection order. Candidates are computed from the route list in
//! force at each step, so a failover after a DNS refresh walks the new order.
//! Failures are remembered per walk only: the guide's example tries SBCs 3 and
//! 4 again after 5 fails although they failed during the walk that found 5.
//!
//! With enhanced failover (`failOver.enhanced.enable=1`) the walk tries every
//! candidate that uses the anchor record's transport before any route of
//! another transport (the guide's Enhanced Failover, point 2); the order
//! within each transport stays the selection order.

use std::time::Instant;

use crate::route::Route;
use crate::servers::server_of;

#[derive(Clone, Debug)]
pub(super) struct Walk {
    anchor_group: usize,
    failed: Vec<Route>,
    /// First send of the walk: the start of the 32 s Timer B/F budget.
    pub(super) started: Instant,
    /// The route whose 401/407 the walk's requests answer, if any.
    pub(super) challenged_by: Option<Route>,
    /// Enhanced failover: finish the anchor's transport before another one.
    same_transport_first: bool,
    /// The last challenge was answered because it said `stale=true`: one
    /// more stale challenge in a row is a denial, not another retry.
    pub(super) stale_retried: bool,
    /// A 423 was answered in this walk: RFC 3261 10.2.8 asks for one retry,
    /// so a second 423 is a denial (a rising Min-Expires cannot loop).
    pub(super) interval_retried: bool,
}

impl Walk {
    pub(super) fn new(anchor_group: usize, now: Instant, same_transport_first: bool) -> Self {
        Walk {
            anchor_group,
            failed: Vec::new(),
            started: now,
            challenged_by: None,
            same_transport_first,
            stale_retried: false,
            interval_retried: false,
        }
    }

    /// The top route of the anchor record: the primary of this walk.
    pub(super) fn head<'a>(&self, routes: &'a [Route]) -> Option<&'a Route> {
        routes.iter().find(|r| r.group >= self.anchor_group)
    }

    /// The next route to try, if any is left.
    pub(super) fn next<'a>(&self, routes: &'a [Route]) -> Option<&'a Route> {
        if self.same_transport_first {
            if let Some(transport) = self.head(routes).map(|h| h.transport) {
                let same = routes
                    .iter()
                    .find(|r| r.transport == transport && self.is_candidate(r));
                if same.is_some() {
                    return same;
                }
            }
        }
        routes.iter().find(|r| self.is_candidate(r))
    }

    /// Whether `route` is the only candidate left, so failing it ends the walk.
    pub(super) fn is_last(&self, routes: &[Route], route: &Route) -> bool {
        !routes
            .iter()
            .any(|r| self.is_candidate(r) && !r.same_destination(route))
    }

    pub(super) fn mark_failed(&mut self, route: &Route) {
        if !self.has_failed(route) {
            self.failed.push(route.clone());
        }
    }

    /// Whether the walk has failed over at least once.
    pub(super) fn has_failures(&self) -> bool {
        !self.failed.is_empty()
    }

    /// Forgets the failures, keeping the anchor: the walk starts over.
    pub(super) fn restart(&mut self, now: Instant) {
        self.failed.clear();
        self.started = now;
    }

    fn has_failed(&self, route: &Route) -> bool {
        self.failed.iter().any(|f| f.same_destination(route))
    }

    fn is_candidate(&self, route: &Route) -> bool {
        route.group >= self.anchor_group && !self.has_failed(route)
    }
}

/// The primary for a line registered on `route`: the top route of the same
/// service record in `routes` (the guide's "Primary SBC"). On a later
/// configured server (`reg.x.server.2`, ...) the line is failed over: its
/// primary is the first server's top route (see [`crate::servers`]).
pub(super) fn primary_of(routes: &[Route], route: &Route) -> Option<Route> {
    let group = find(routes, route).map_or(route.group, |r| r.group);
    if let Some(top) = routes.first() {
        if server_of(group) > server_of(top.group) {
            return Some(top.clone());
        }
    }
    routes.iter().find(|r| r.group == group).cloned()
}

/// `route` as listed in `routes`, matched by destination.
pub(super) fn find<'a>(routes: &'a [Route], route: &Route) -> Option<&'a Route> {
    routes.iter().find(|r| r.same_destination(route))
}
