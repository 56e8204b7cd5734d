//! The resolver actor: one per process, shared by all lines.
//!
//! It owns the DNS cache (`protocol::dns::DnsCache`) and drives one sans-IO
//! `Resolution` per target, putting each question on the wire through
//! `transport::dns::DnsClient`. Why an actor: 10,000 lines configured with the
//! same domain must cause one query per record and TTL, not 10,000, so requests
//! for the same target wait on one resolution, and a question already in flight
//! for another target is not sent twice. Route sets are refreshed when their
//! first record expires; subscribers hear about a refresh that changed the
//! routes, so a registered line can apply the guide's sticky-route rule.
//!
//! Time is read with `tokio::time::Instant::now()` so a paused tokio clock
//! drives TTL expiry in tests.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use actix::prelude::*;
use rand::rngs::StdRng;
use rand::SeedableRng;
use sipfleet_protocol::dns::{
    self, DnsCache, DnsNote, Query, QueryFailure, Resolution, ResolveTarget, RestorePolicy,
    RouteSet, StaticCache,
};
use sipfleet_transport::dns::{DnsClient, DnsClientConfig, DnsConfigError};
use tokio::sync::oneshot;

/// How long after a failed refresh the resolver tries again (the old route set
/// stays in use meanwhile: lines keep their current route).
pub const REFRESH_RETRY: Duration = Duration::from_secs(30);

/// Everything the resolver needs from the configuration.
#[derive(Clone, Debug)]
pub struct ResolverConfig {
    /// `tcpIpApp.dns.server` / `altServer`, timeout and attempts.
    pub client: DnsClientConfig,
    /// `dns.cache.A/SRV/NAPTR.x.*` and `dns.cache.A.networkOverride`.
    pub statics: StaticCache,
    /// `dns.cache.dynamicRestore.*`.
    pub restore: RestorePolicy,
    /// Seed for the RFC 2782 weighted order; `None` seeds from the OS, so that
    /// two processes may order equal-priority routes differently (as two
    /// phones do in the guide).
    pub seed: Option<u64>,
}

/// Resolve a target into its ordered route list.
#[derive(Message, Clone, Debug)]
#[rtype(result = "Result<RouteSet, ResolveError>")]
pub struct Resolve {
    /// What to resolve.
    pub target: ResolveTarget,
}

/// Be told when a refresh changes a route set. With `target: None`, every
/// target's changes are sent.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Subscribe {
    /// The target, or `None` for every target.
    pub target: Option<ResolveTarget>,
    /// Where the changes go.
    pub recipient: Recipient<RouteSetChanged>,
}

/// A refresh produced routes different from the previous set (other
/// destinations, order or service records).
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub struct RouteSetChanged {
    /// The target.
    pub target: ResolveTarget,
    /// The set before the refresh.
    pub previous: RouteSet,
    /// The set now.
    pub current: RouteSet,
}

/// DNS trouble met while resolving `target` (see
/// `sipfleet_protocol::dns::note_for` for what is worth telling), sent to
/// the target's subscribers when its resolution ends: queries that failed
/// or were answered from a restored cache, and the resolution's own error
/// when it produced no route. `current` is the route set now in force
/// (restored routes carry `source: restored`).
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub struct DnsReport {
    /// The target.
    pub target: ResolveTarget,
    /// The queries worth telling.
    pub notes: Vec<DnsNote>,
    /// The resolution's error, when it gave no route.
    pub failed: Option<dns::ResolveError>,
    /// The route set in force.
    pub current: Option<RouteSet>,
}

/// Why `Resolve` failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error(transparent)]
    /// DNS failed.
    Dns(#[from] dns::ResolveError),
    #[error("the resolver stopped before answering")]
    /// The resolver actor is gone.
    Stopped,
}

type Reply = oneshot::Sender<Result<RouteSet, ResolveError>>;

#[derive(Default)]
struct TargetState {
    /// The last good route set.
    current: Option<RouteSet>,
    /// Until when `current` is served without a new resolution.
    fresh_until: Option<Instant>,
    waiters: Vec<Reply>,
    /// The resolution in progress, if any.
    plan: Option<Resolution>,
    refresh: Option<SpawnHandle>,
    /// DNS trouble met by the resolution in progress.
    notes: Vec<DnsNote>,
}

/// The process-wide resolver actor.
pub struct Resolver {
    client: DnsClient,
    cache: DnsCache,
    rng: StdRng,
    targets: HashMap<ResolveTarget, TargetState>,
    /// Questions on the wire, with the targets waiting for each.
    in_flight: HashMap<Query, Vec<ResolveTarget>>,
    subscribers: Vec<(Option<ResolveTarget>, Recipient<RouteSetChanged>)>,
    reports: Vec<(Option<ResolveTarget>, Recipient<DnsReport>)>,
    stats: DnsStats,
}

/// What the resolver did since it started, by record type (`NAPTR`, `SRV`,
/// `A`): the control API's `sipfleet_dns_*` metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DnsStats {
    /// Questions sent to a DNS server (one per question however many
    /// targets wait for it).
    pub queries: std::collections::BTreeMap<&'static str, u64>,
    /// Questions answered from the cache: a live record, a static entry
    /// (`dns.cache.*`) or a restored one.
    pub cache_hits: std::collections::BTreeMap<&'static str, u64>,
    /// Questions the network answered with an error, no answer or no record.
    pub failures: std::collections::BTreeMap<&'static str, u64>,
}

/// Asks the resolver for its [`DnsStats`].
#[derive(Message)]
#[rtype(result = "DnsStats")]
pub struct GetDnsStats;

impl Handler<GetDnsStats> for Resolver {
    type Result = MessageResult<GetDnsStats>;

    fn handle(&mut self, _: GetDnsStats, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.stats.clone())
    }
}

fn bump(map: &mut std::collections::BTreeMap<&'static str, u64>, query: &Query) {
    *map.entry(query.rtype.as_str()).or_default() += 1;
}

fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

impl Resolver {
    /// Must be called inside a tokio runtime (an actix system).
    pub fn new(config: ResolverConfig) -> Result<Self, DnsConfigError> {
        let rng = match config.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_os_rng(),
        };
        Ok(Resolver {
            client: DnsClient::new(&config.client)?,
            cache: DnsCache::new(config.statics, config.restore),
            rng,
            targets: HashMap::new(),
            in_flight: HashMap::new(),
            subscribers: Vec::new(),
            reports: Vec::new(),
            stats: DnsStats::default(),
        })
    }

    fn start(&mut self, target: &ResolveTarget, ctx: &mut Context<Self>) {
        let state = self.targets.entry(target.clone()).or_default();
        if state.plan.is_some() {
            return;
        }
        state.plan = Some(Resolution::new(target.clone()));
        self.pump(target, ctx);
    }

    /// Feed the plan from the cache until it needs the network or is done.
    fn pump(&mut self, target: &ResolveTarget, ctx: &mut Context<Self>) {
        loop {
            let Some(plan) = self.targets.get_mut(target).and_then(|s| s.plan.as_mut()) else {
                return;
            };
            if plan.is_done() {
                self.finish(target, ctx);
                return;
            }
            let Some(query) = plan.poll_query() else {
                return;
            };
            if let Some(hit) = self.cache.lookup(&query, now()) {
                bump(&mut self.stats.cache_hits, &query);
                plan.handle_result(&query, Ok(hit), &mut self.rng);
                continue;
            }
            let waiting = self.in_flight.entry(query.clone()).or_default();
            waiting.push(target.clone());
            if waiting.len() == 1 {
                self.send(query, ctx);
            }
        }
    }

    fn send(&mut self, query: Query, ctx: &mut Context<Self>) {
        bump(&mut self.stats.queries, &query);
        let client = self.client.clone();
        let fut = async move {
            let result = client.query(&query).await;
            (query, result)
        };
        ctx.spawn(fut.into_actor(self).map(|(query, result), act, ctx| {
            act.answered(query, result, ctx);
        }));
    }

    fn answered(
        &mut self,
        query: Query,
        result: Result<dns::Answer, QueryFailure>,
        ctx: &mut Context<Self>,
    ) {
        let at = now();
        let failure = match &result {
            Ok(answer) if answer.is_empty() => Some(QueryFailure::NoRecords),
            Ok(_) => None,
            Err(e) => Some(e.clone()),
        };
        if failure.is_some() {
            bump(&mut self.stats.failures, &query);
        }
        let resolved = self.cache.store(&query, result, at);
        let note = dns::note_for(&query, failure.as_ref(), &resolved, at);
        for target in self.in_flight.remove(&query).unwrap_or_default() {
            if let Some(state) = self.targets.get_mut(&target) {
                if let Some(note) = &note {
                    state.notes.push(note.clone());
                }
                if let Some(plan) = state.plan.as_mut() {
                    plan.handle_result(&query, resolved.clone(), &mut self.rng);
                }
            }
            self.pump(&target, ctx);
        }
    }

    fn finish(&mut self, target: &ResolveTarget, ctx: &mut Context<Self>) {
        let Some(state) = self.targets.get_mut(target) else {
            return;
        };
        let Some(plan) = state.plan.take() else {
            return;
        };
        let at = now();
        let result = plan.finish();
        let waiters = std::mem::take(&mut state.waiters);
        let notes = std::mem::take(&mut state.notes);
        let (refresh_at, changed) = match &result {
            Ok(set) => {
                let previous = state.current.replace(set.clone());
                state.fresh_until = set.expires;
                let changed = previous.filter(|p| !p.same_routes(set));
                (set.expires, changed)
            }
            Err(_) => {
                // Keep serving the previous set to nobody new: the next Resolve
                // asks again; a refresh is retried later.
                state.fresh_until = Some(at);
                (state.current.as_ref().map(|_| at + REFRESH_RETRY), None)
            }
        };
        if let Some(handle) = state.refresh.take() {
            ctx.cancel_future(handle);
        }
        if let Some(when) = refresh_at {
            let delay = when.saturating_duration_since(at);
            let target = target.clone();
            let handle = ctx.run_later(delay, move |act, ctx| {
                if let Some(state) = act.targets.get_mut(&target) {
                    state.refresh = None;
                }
                act.start(&target, ctx);
            });
            state.refresh = Some(handle);
        }
        for waiter in waiters {
            let _ = waiter.send(result.clone().map_err(ResolveError::from));
        }
        let failed = result.as_ref().err().cloned();
        if !notes.is_empty() || failed.is_some() {
            let current = self.targets.get(target).and_then(|s| s.current.clone());
            let report = DnsReport {
                target: target.clone(),
                notes,
                failed,
                current,
            };
            self.reports.retain(|(_, r)| r.connected());
            for (filter, recipient) in &self.reports {
                if filter.as_ref().is_none() || filter.as_ref() == Some(target) {
                    recipient.do_send(report.clone());
                }
            }
        }
        if let (Some(previous), Ok(current)) = (changed, result) {
            self.subscribers.retain(|(_, r)| r.connected());
            for (filter, recipient) in &self.subscribers {
                if filter.as_ref().is_none() || filter.as_ref() == Some(target) {
                    recipient.do_send(RouteSetChanged {
                        target: target.clone(),
                        previous: previous.clone(),
                        current: current.clone(),
                    });
                }
            }
        }
    }
}

impl Actor for Resolver {
    type Context = Context<Self>;
}

impl Handler<Resolve> for Resolver {
    type Result = ResponseFuture<Result<RouteSet, ResolveError>>;

    fn handle(&mut self, msg: Resolve, ctx: &mut Context<Self>) -> Self::Result {
        let at = now();
        let state = self.targets.entry(msg.target.clone()).or_default();
        if let Some(set) = &state.current {
            if !matches!(state.fresh_until, Some(t) if t <= at) {
                let set = set.clone();
                return Box::pin(async move { Ok(set) });
            }
        }
        let (tx, rx) = oneshot::channel();
        state.waiters.push(tx);
        self.start(&msg.target, ctx);
        Box::pin(async move { rx.await.unwrap_or(Err(ResolveError::Stopped)) })
    }
}

/// Be told of DNS trouble for `target` (every target with `None`).
#[derive(Message)]
#[rtype(result = "()")]
pub struct SubscribeReports {
    /// The target, or `None` for every target.
    pub target: Option<ResolveTarget>,
    /// Where the reports go.
    pub recipient: Recipient<DnsReport>,
}

impl Handler<SubscribeReports> for Resolver {
    type Result = ();

    fn handle(&mut self, msg: SubscribeReports, _: &mut Context<Self>) {
        self.reports.push((msg.target, msg.recipient));
    }
}

impl Handler<Subscribe> for Resolver {
    type Result = ();

    fn handle(&mut self, msg: Subscribe, _: &mut Context<Self>) {
        self.subscribers.push((msg.target, msg.recipient));
    }
}
