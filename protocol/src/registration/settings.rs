//! The guide's registration parameters, one field per parameter, with the
//! guide's defaults. The config module maps `reg.x.*` / `voIpProt.*` keys onto
//! this struct; scoping and range checks live there, not here.

use std::time::Duration;

use crate::route::Route;
use crate::servers::server_of;
use crate::transaction::{RetryPolicy, Timers};

/// `failOver.failBack.mode`: the configuration's enum, so the two layers
/// cannot drift apart. How each mode behaves is implemented here.
pub use crate::config::FailbackMode;

/// Everything that shapes one line's registration, named after the guide.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistrationSettings {
    /// `server.y.retryTimeOut` in ms; 0 selects the RFC 3261 intervals.
    pub retry_timeout_ms: u32,
    /// `server.y.retryMaxCount`: sends per route before failing over.
    pub retry_max_count: u32,
    /// `voIpProt.SIP.tcpFastFailover`.
    pub tcp_fast_failover: bool,
    /// `voIpProt.SIP.tcpFastFailover.timeout` in ms (2000-5000).
    pub tcp_fast_failover_timeout_ms: u32,
    /// `voIpProt.SIP.failoverOn503Response`.
    pub failover_on_503: bool,
    /// `registerRetry.baseTimeOut` in seconds.
    pub register_retry_base_s: u32,
    /// `registerRetry.maxTimeOut` in seconds.
    pub register_retry_max_s: u32,
    /// `failOver.reRegisterOn`: gates every RROFO parameter below.
    pub re_register_on: bool,
    /// `failOver.onlySignalWithRegistered`.
    pub only_signal_with_registered: bool,
    /// `failOver.failRegistrationOn`.
    pub fail_registration_on: bool,
    /// `failOver.failBack.mode`.
    pub failback_mode: FailbackMode,
    /// `failOver.failBack.timeout` in seconds; 0 = never fail back until the
    /// current route fails.
    pub failback_timeout_s: u32,
    /// `failOver.unRegisterOnFailBack`.
    pub unregister_on_failback: bool,
    /// `voIpProt.SIP.authOptimizedInFailover`.
    pub auth_optimized_in_failover: bool,
    /// `voIpProt.SIP.newCallOnUnRegister`.
    pub new_call_on_unregister: bool,
    /// `voIpProt.SIP.outboundProxy.failOver.enhanced.enable`.
    pub enhanced_failover: bool,
    /// `reg.x.server.y.expires`: the expiry requested in REGISTER, seconds.
    /// With [`Self::per_server`], the floor under every server's own
    /// `expires` (a 423's Min-Expires raises it).
    pub expires_s: u32,
    /// Per-server `retryTimeOut`, `retryMaxCount` and `expires` of a line
    /// with several servers: entry `k` applies to the routes of the `k`-th
    /// configured server, those whose group is in `k * SERVER_GROUP_STRIDE ..
    /// (k + 1) * SERVER_GROUP_STRIDE` (see [`crate::servers`]). Empty: the
    /// line-wide fields above apply to every route.
    pub per_server: Vec<ServerTimers>,
    /// `reg.x.server.y.expires.overlap`: refresh this many seconds before the
    /// granted expiry (at half of it when half is less than this).
    pub expires_overlap_s: u32,
    /// Not a Poly parameter: whether a new REGISTER exchange waits for a
    /// grant from the fleet's pacer ([`Output::RequestSlot`]) instead of
    /// starting at once. A phone (and a line alone) has nothing to pace:
    /// `false` unless the fleet runs a pacer (`sipfleet.register.rate` or
    /// `sipfleet.register.window` set), see [`crate::line_setup`].
    ///
    /// [`Output::RequestSlot`]: super::Output::RequestSlot
    pub paced: bool,
    /// Not a Poly parameter: `sipfleet.register.refreshSpread`, percent of
    /// the granted expiry by which each refresh may come *earlier* than
    /// Poly's point (never later, never before half the expiry), drawn anew
    /// for every refresh from the line's random source, so lines registered
    /// in one burst do not refresh in one burst forever. 0: Poly's point
    /// exactly, as a phone does. The fleet sets it from its configuration
    /// ([`crate::line_setup`]); a line alone keeps 0.
    pub refresh_spread_pct: u32,
}

/// One server's own `reg.x.server.y.*` (over `voIpProt.server.y.*`) timers,
/// for requests sent to that server's routes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerTimers {
    /// `server.y.retryTimeOut` in ms.
    pub retry_timeout_ms: u32,
    /// `server.y.retryMaxCount`.
    pub retry_max_count: u32,
    /// `server.y.expires` in seconds.
    pub expires_s: u32,
}

// `Default` is read from the configuration schema's defaults, written once
// there: see `crate::line_setup`.

impl RegistrationSettings {
    /// Transaction timing for REGISTER under these settings.
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            retry_timeout: Duration::from_millis(self.retry_timeout_ms.into()),
            retry_max_count: self.retry_max_count,
            tcp_fast_failover: self
                .tcp_fast_failover
                .then(|| Duration::from_millis(self.tcp_fast_failover_timeout_ms.into())),
            enhanced_failover: self.enhanced_failover,
            timers: Timers::default(),
        }
    }

    /// The timers of the server `route` belongs to, if set per server.
    fn server_timers(&self, route: &Route) -> Option<&ServerTimers> {
        self.per_server.get(server_of(route.group))
    }

    /// `base` (the line's REGISTER policy) with the `retryTimeOut` and
    /// `retryMaxCount` of the server `route` belongs to.
    pub fn policy_for(&self, base: &RetryPolicy, route: &Route) -> RetryPolicy {
        match self.server_timers(route) {
            Some(t) => RetryPolicy {
                retry_timeout: Duration::from_millis(t.retry_timeout_ms.into()),
                retry_max_count: t.retry_max_count,
                ..*base
            },
            None => *base,
        }
    }

    /// The expiry to ask of `route`: its server's `expires`, but at least
    /// `floor` (the line's expiry, raised by a 423's Min-Expires).
    pub fn expires_for(&self, route: &Route, floor: u32) -> u32 {
        match self.server_timers(route) {
            Some(t) => t.expires_s.max(floor),
            None => floor,
        }
    }

    /// The failback mode in force. With `reRegisterOn=0` the RROFO parameters
    /// are ignored and a failed-over line behaves as `newRequests`
    /// (design.md decision 1).
    pub fn effective_failback_mode(&self) -> FailbackMode {
        if self.re_register_on {
            self.failback_mode
        } else {
            FailbackMode::NewRequests
        }
    }

    /// `failRegistrationOn`, which only counts with `reRegisterOn=1`.
    pub fn effective_fail_registration_on(&self) -> bool {
        self.re_register_on && self.fail_registration_on
    }

    /// `unRegisterOnFailBack`, which only counts with `reRegisterOn=1`.
    pub fn effective_unregister_on_failback(&self) -> bool {
        self.re_register_on && self.unregister_on_failback
    }

    /// `onlySignalWithRegistered`, which only counts with `reRegisterOn=1`.
    pub fn effective_only_signal_with_registered(&self) -> bool {
        self.re_register_on && self.only_signal_with_registered
    }
}
