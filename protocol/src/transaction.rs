//! Client transaction timing (RFC 3261 section 17.1) with the Poly guide's
//! failover overrides.
//!
//! This module decides *when* a request is (re)sent on one route and *when* that
//! route is given up; it never builds or parses a message. The caller sends the
//! first copy when it calls [`ClientTransaction::start`], then drives the
//! transaction with [`ClientTransaction::handle_timeout`] at
//! [`ClientTransaction::poll_timeout`] and with the responses it matched to it.
//!
//! Hand-written because no SIP crate exposes a sans-IO transaction whose timers
//! can be bent the way the guide bends them (`retryTimeOut`, `retryMaxCount`,
//! `tcpFastFailover`, the shared 32 s walk budget).
//!
//! # RFC 3261 figures
//!
//! INVITE client transaction (figure 5):
//!
//! ```text
//!                                |INVITE from TU
//!              Timer A fires     |INVITE sent
//!              Reset A,          V                      Timer B fires
//!              INVITE sent +-----------+                or Transport Err.
//!                +---------|           |---------------+inform TU
//!                |         |  Calling  |               |
//!                +-------->|           |-------------->|
//!                          +-----------+ 2xx           |
//!                             |  |       2xx to TU     |
//!                             |  |1xx                  |
//!     300-699 +---------------+  |1xx to TU            |
//!    ACK sent |                  |                     |
//! resp. to TU |  1xx             V                     |
//!             |  1xx to TU  -----------+               |
//!             |  +---------|           |               |
//!             |  |         |Proceeding |-------------->|
//!             |  +-------->|           | 2xx           |
//!             |            +-----------+ 2xx to TU     |
//!             |       300-699    |                     |
//!             |       ACK sent,  |                     |
//!             |       resp. to TU|                     |
//!             |                  |                     |      NOTE:
//!             |  300-699         V                     |
//!             |  ACK sent  +-----------+Transport Err. |  transitions
//!             |  +---------|           |Inform TU      |  labeled with
//!             |  |         | Completed |-------------->|  the event
//!             |  +-------->|           |               |  over the action
//!             |            +-----------+               |  to take
//!             |              ^   |                     |
//!             |              |   | Timer D fires       |
//!             +--------------+   | -                   |
//!                                |                     |
//!                                V                     |
//!                          +-----------+               |
//!                          |           |               |
//!                          | Terminated|<--------------+
//!                          |           |
//!                          +-----------+
//! ```
//!
//! Non-INVITE client transaction (figure 6):
//!
//! ```text
//!                                    |Request from TU
//!                                    |send request
//!                Timer E             V
//!                send request  +-----------+
//!                    +---------|           |-------------------+
//!                    |         |  Trying   |  Timer F          |
//!                    +-------->|           |  or Transport Err.|
//!                              +-----------+  inform TU        |
//!                 200-699         |  |                         |
//!                 resp. to TU     |  |1xx                      |
//!                 +---------------+  |resp. to TU              |
//!                 |                  |                         |
//!                 |   Timer E        V       Timer F           |
//!                 |   send req +-----------+ or Transport Err. |
//!                 |  +---------|           | inform TU         |
//!                 |  |         |Proceeding |------------------>|
//!                 |  +-------->|           |-----+             |
//!                 |            +-----------+     |1xx          |
//!                 |              |      ^        |resp to TU   |
//!                 | 200-699      |      +--------+             |
//!                 | resp. to TU  |                             |
//!                 |              |                             |
//!                 |              V                             |
//!                 |            +-----------+                   |
//!                 |            |           |                   |
//!                 |            | Completed |                   |
//!                 |            |           |                   |
//!                 |            +-----------+                   |
//!                 |              ^   |                         |
//!                 |              |   | Timer K                 |
//!                 +--------------+   | -                       |
//!                                    |                         |
//!                                    V                         |
//!              NOTE:           +-----------+                   |
//!                              |           |                   |
//!          transitions         | Terminated|<------------------+
//!          labeled with        |           |
//!          the event           +-----------+
//!          over the action
//!          to take
//! ```
//!
//! # The guide's overrides (design.md decisions 2 and 3)
//!
//! A *walk* is one request trying the routes of a route list in turn; its first
//! send starts the 32 s Timer B/F budget (`64 * T1`).
//!
//! | route            | transport | settings                              | sends at (from route start)         | route fails at          |
//! |------------------|-----------|---------------------------------------|-------------------------------------|-------------------------|
//! | not last         | UDP       | `retryTimeOut=0`                      | 0, 0.5, 1.5, 3.5 ... (`retryMaxCount` sends) | sum of the intervals |
//! | not last         | UDP       | `retryTimeOut=t>0`                    | 0, t, 2t ... (`retryMaxCount` sends) | `retryMaxCount * t`    |
//! | not last         | TCP/TLS   | `tcpFastFailover=1`, `retryTimeOut=0` | 0                                   | `tcpFastFailover.timeout` |
//! | not last         | TCP/TLS   | otherwise                             | 0                                   | Timer B/F: route start + 32 s |
//! | last             | UDP       | any                                   | RFC 3261 intervals                  | walk start + 32 s       |
//! | last             | TCP/TLS   | `tcpFastFailover=1`, `retryTimeOut=0` | 0                                   | walk start + 32 s       |
//! | last             | TCP/TLS   | otherwise                             | 0                                   | the later of walk start + 32 s and route start + 32 s |
//!
//! Without enhanced failover a UDP give-up, and a TCP/TLS one under
//! `tcpFastFailover`, is capped at walk start + 32 s: Timer B/F ends the walk
//! even if routes are left. A TCP/TLS route that waits for its own Timer B/F
//! is not capped: its expiry fails that route only and the walk goes on with
//! a fresh 32 s budget (design.md decision 3), so a primary that accepts the
//! connection and never answers cannot keep a line from the routes behind
//! it. With enhanced failover non-last routes are never capped, and a last
//! route reached after the budget ran out gets its own not-last schedule.
//!
//! RFC intervals: non-INVITE doubles from T1 up to T2 (0.5, 1, 2, 4, 4 ... s);
//! INVITE doubles without a cap (Timer A, RFC 3261 17.1.1.2). `retryMaxCount=0`
//! is read as one send: a request is always sent at least once.

use std::time::{Duration, Instant};

use crate::route::Transport;

/// RFC 3261 timer base values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timers {
    /// RTT estimate; first retransmission interval.
    pub t1: Duration,
    /// Cap of the non-INVITE retransmission interval.
    pub t2: Duration,
    /// How long the network may hold a message (Timer K on UDP).
    pub t4: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

impl Timers {
    /// Timer B (INVITE) and Timer F (non-INVITE): `64 * T1`, 32 s by default.
    pub fn timer_b(&self) -> Duration {
        self.t1 * 64
    }
}

/// The guide's parameters that bend transaction timing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// `retryTimeOut`: zero selects the RFC 3261 intervals.
    pub retry_timeout: Duration,
    /// `retryMaxCount`: sends per non-last route (0 is read as 1).
    pub retry_max_count: u32,
    /// `tcpFastFailover.timeout` when `tcpFastFailover=1`, else `None`.
    pub tcp_fast_failover: Option<Duration>,
    /// `failOver.enhanced.enable`: the 32 s budget does not stop a walk.
    pub enhanced_failover: bool,
    /// RFC 3261 timer values (T1, T2, T4) the retransmissions use.
    pub timers: Timers,
}

impl Default for RetryPolicy {
    /// The guide's defaults: RFC intervals, 3 sends, no TCP fast failover.
    fn default() -> Self {
        RetryPolicy {
            retry_timeout: Duration::ZERO,
            retry_max_count: 3,
            tcp_fast_failover: None,
            enhanced_failover: false,
            timers: Timers::default(),
        }
    }
}

/// INVITE and non-INVITE transactions retransmit differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestKind {
    /// An INVITE client transaction (RFC 3261 17.1.1): Timer A and B.
    Invite,
    /// Any other request (RFC 3261 17.1.2): Timer E and F.
    NonInvite,
}

/// Where the route of this transaction stands in its walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalkPosition {
    /// The first send of the walk, which starts the 32 s budget.
    pub walk_started: Instant,
    /// No other route is left to fail over to.
    pub last_route: bool,
}

/// RFC 3261 client transaction states. `Calling` is also the non-INVITE
/// `Trying` state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Request sent, no response yet; retransmitting.
    Calling,
    /// A provisional response arrived.
    Proceeding,
    /// A final response arrived; absorbing retransmissions (Timer D or K).
    Completed,
    /// Done; the transaction can be dropped.
    Terminated,
}

/// Why a transaction gave up its route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimedOut {
    /// The route used up its own schedule (`retryMaxCount`, `tcpFastFailover`,
    /// or a per-route Timer B/F): fail over if a route is left.
    Route,
    /// The walk's 32 s Timer B/F budget ran out: the walk is over.
    Budget,
}

/// What a timeout asks of the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeoutAction {
    /// Send the same request again (same branch, same CSeq).
    Retransmit,
    /// No answer in time: the route failed.
    TimedOut(TimedOut),
}

/// How retransmissions are spaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Spacing {
    /// Reliable transport: the transport retransmits, SIP does not.
    None,
    /// RFC 3261 doubling from T1, capped at `cap` when present.
    Doubling {
        next: Duration,
        cap: Option<Duration>,
    },
    Fixed(Duration),
}

/// Timing state of one request on one route.
#[derive(Clone, Debug)]
pub struct ClientTransaction {
    kind: RequestKind,
    reliable: bool,
    timers: Timers,
    state: State,
    started: Instant,
    spacing: Spacing,
    /// Next retransmission, if one fits before `give_up`.
    next_send: Option<Instant>,
    give_up: Option<Instant>,
    /// What `give_up` means when it fires.
    give_up_reason: TimedOut,
    /// Timer D / Timer K once `Completed`.
    completed_until: Option<Instant>,
    sends: u32,
}

impl ClientTransaction {
    /// Starts a transaction whose first copy the caller sends at `now`.
    pub fn start(
        kind: RequestKind,
        transport: Transport,
        policy: &RetryPolicy,
        position: WalkPosition,
        now: Instant,
    ) -> Self {
        let timers = policy.timers;
        let budget_end = position.walk_started + timers.timer_b();
        let rfc = Spacing::Doubling {
            next: timers.t1,
            cap: (kind == RequestKind::NonInvite).then_some(timers.t2),
        };
        let budget_left = budget_end > now;
        let sends = policy.retry_max_count.max(1);
        let fast_failover = policy
            .tcp_fast_failover
            .filter(|_| policy.retry_timeout.is_zero());
        // A reliable route waiting out its own Timer B/F is not capped by the
        // walk's budget (design.md decision 3): a silent TCP primary must not
        // end the walk while healthy routes wait behind it.
        let own_timer_b = transport.is_reliable() && fast_failover.is_none();
        let (spacing, own_end) =
            if position.last_route && (budget_left || !policy.enhanced_failover) {
                if transport.is_reliable() {
                    let end = if own_timer_b {
                        budget_end.max(now + timers.timer_b())
                    } else {
                        budget_end
                    };
                    (Spacing::None, end)
                } else {
                    (rfc, budget_end)
                }
            } else if transport.is_reliable() {
                let wait = fast_failover.unwrap_or(timers.timer_b());
                (Spacing::None, now + wait)
            } else if policy.retry_timeout.is_zero() {
                (rfc, now + schedule_length(rfc, sends))
            } else {
                let fixed = Spacing::Fixed(policy.retry_timeout);
                (fixed, now + schedule_length(fixed, sends))
            };
        let capped = !policy.enhanced_failover && !own_timer_b && own_end >= budget_end;
        let (give_up, give_up_reason) = if capped {
            (budget_end, TimedOut::Budget)
        } else if position.last_route && !policy.enhanced_failover {
            (own_end, TimedOut::Budget)
        } else {
            (own_end, TimedOut::Route)
        };
        let mut tx = ClientTransaction {
            kind,
            reliable: transport.is_reliable(),
            timers,
            state: State::Calling,
            started: now,
            spacing,
            next_send: None,
            give_up: Some(give_up),
            give_up_reason,
            completed_until: None,
            sends: 1,
        };
        tx.schedule_send(now);
        tx
    }

    /// Where the transaction stands.
    pub fn state(&self) -> State {
        self.state
    }

    /// Copies sent so far, the first included.
    pub fn sends(&self) -> u32 {
        self.sends
    }

    /// When the route is given up if nothing is heard.
    pub fn give_up_at(&self) -> Option<Instant> {
        self.give_up
    }

    /// The next instant [`Self::handle_timeout`] must be called at.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Calling | State::Proceeding => {
                [self.next_send, self.give_up].into_iter().flatten().min()
            }
            State::Completed => self.completed_until,
            State::Terminated => None,
        }
    }

    /// Advances timers to `now`. Returns what the caller must do, if anything.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<TimeoutAction> {
        match self.state {
            State::Calling | State::Proceeding => {
                if self.give_up.is_some_and(|t| now >= t) {
                    self.state = State::Terminated;
                    return Some(TimeoutAction::TimedOut(self.give_up_reason));
                }
                if self.next_send.is_some_and(|t| now >= t) {
                    self.sends += 1;
                    self.schedule_send(now);
                    return Some(TimeoutAction::Retransmit);
                }
                None
            }
            State::Completed => {
                if self.completed_until.is_some_and(|t| now >= t) {
                    self.state = State::Terminated;
                }
                None
            }
            State::Terminated => None,
        }
    }

    /// A provisional response: the server is alive, so the route is no longer
    /// given up on the guide's short schedule, only on Timer B/F (non-INVITE)
    /// or never (INVITE waits for its final response).
    pub fn handle_provisional(&mut self, now: Instant) {
        if !matches!(self.state, State::Calling | State::Proceeding) {
            return;
        }
        self.state = State::Proceeding;
        self.give_up_reason = TimedOut::Route;
        match self.kind {
            RequestKind::Invite => {
                self.next_send = None;
                self.give_up = None;
            }
            RequestKind::NonInvite => {
                self.give_up = Some(self.started + self.timers.timer_b());
                if !self.reliable {
                    self.spacing = Spacing::Fixed(self.timers.t2);
                    self.next_send = Some(now + self.timers.t2).filter(|&t| Some(t) < self.give_up);
                }
            }
        }
    }

    /// A final response: `Completed` absorbs retransmitted responses for Timer
    /// D (INVITE 300-699 over UDP) or Timer K (non-INVITE over UDP).
    pub fn handle_final(&mut self, now: Instant, status: u16) {
        if !matches!(self.state, State::Calling | State::Proceeding) {
            return;
        }
        let linger = match (self.kind, self.reliable) {
            (_, true) => Duration::ZERO,
            (RequestKind::Invite, false) if status < 300 => Duration::ZERO,
            (RequestKind::Invite, false) => self.timers.timer_b(),
            (RequestKind::NonInvite, false) => self.timers.t4,
        };
        self.next_send = None;
        self.give_up = None;
        if linger.is_zero() {
            self.state = State::Terminated;
        } else {
            self.state = State::Completed;
            self.completed_until = Some(now + linger);
        }
    }

    /// Plans the retransmission after the send made at `now`.
    fn schedule_send(&mut self, now: Instant) {
        let interval = match &mut self.spacing {
            Spacing::None => None,
            Spacing::Fixed(interval) => Some(*interval),
            Spacing::Doubling { next, cap } => {
                let interval = *next;
                *next = double(interval, *cap);
                Some(interval)
            }
        };
        self.next_send = interval
            .map(|i| now + i)
            .filter(|&t| self.give_up.is_some_and(|g| t < g));
    }
}

/// Time covered by `sends` copies spaced by `spacing`: the last copy also waits
/// one interval before the route is given up.
/// Capped at [`LONGEST_SCHEDULE`] so `now + length` cannot overflow.
fn schedule_length(spacing: Spacing, sends: u32) -> Duration {
    let length = match spacing {
        Spacing::None => Duration::ZERO,
        Spacing::Fixed(interval) => interval.saturating_mul(sends),
        Spacing::Doubling { next, cap } => {
            let mut total = Duration::ZERO;
            let mut interval = next;
            for _ in 0..sends {
                total = total.saturating_add(interval);
                if total >= LONGEST_SCHEDULE {
                    break;
                }
                interval = double(interval, cap);
            }
            total
        }
    };
    length.min(LONGEST_SCHEDULE)
}

/// Longer than any schedule the guide's ranges allow (65535 sends of 65.5 s is
/// about 50 days), short enough to add to any `Instant`.
const LONGEST_SCHEDULE: Duration = Duration::from_secs(1 << 32);

/// The next RFC 3261 interval: doubled, capped at T2 for non-INVITE.
fn double(interval: Duration, cap: Option<Duration>) -> Duration {
    let doubled = interval.saturating_mul(2).min(LONGEST_SCHEDULE);
    cap.map_or(doubled, |cap| doubled.min(cap))
}
