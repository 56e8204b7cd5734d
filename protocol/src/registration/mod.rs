//! The per-line registration state machine: Re-Registration On Failover
//! (RROFO), failback, randomized back-off and the Call-ID rules of the Poly
//! failover guide, as decided in design.md ("Decisions where the guide is
//! loose").
//!
//! Sans-IO: [`Registration`] takes `now` with every input and hands back
//! [`Output`]s (REGISTERs to send, [`Event`]s to report) and its next deadline
//! ([`Registration::poll_timeout`]). It never reads a clock; the back-off
//! random source and the Call-ID generator are injected. It knows nothing of
//! the SIP message model: the line actor builds the REGISTER from a
//! [`SendRegister`] and reports responses as [`RegisterResponse`].
//!
//! # Driving it
//!
//! ```
//! use std::time::{Duration, Instant};
//! use rand::{rngs::StdRng, SeedableRng};
//! use sipfleet_protocol::registration::{
//!     Output, RegisterResponse, Registration, RegistrationSettings,
//! };
//! use sipfleet_protocol::route::{Route, RouteSource, Transport};
//!
//! let route = Route {
//!     transport: Transport::Udp,
//!     host: "sbc1.example.com".into(),
//!     addr: "192.0.2.1:5060".parse().unwrap(),
//!     group: 0,
//!     priority: 10,
//!     weight: 0,
//!     source: RouteSource::Network,
//! };
//! let mut n = 0;
//! let mut line = Registration::new(
//!     RegistrationSettings::default(),
//!     Box::new(StdRng::seed_from_u64(1)),
//!     Box::new(move || { n += 1; format!("call-{n}@host") }),
//! );
//! let now = Instant::now();
//! line.handle_routes(now, vec![route], Some(Duration::from_secs(300)));
//! line.start(now);
//! let mut cseq = None;
//! while let Some(output) = line.poll_output() {
//!     match output {
//!         // Build the REGISTER with the message module and send it.
//!         Output::Send(send) => cseq = Some(send.cseq),
//!         // Log it, print it as JSON, feed metrics.
//!         Output::Event(event) => println!("{} {:?}", event.kind.name(), event.route),
//!         // Only lines of a fleet that paces (`settings.paced`) ask for slots.
//!         Output::RequestSlot(_) | Output::SlotDone => unreachable!(),
//!     }
//! }
//! // The registrar answers 200 OK, granting 600 s.
//! let ok = RegisterResponse {
//!     expires: Some(Duration::from_secs(600)),
//!     ..RegisterResponse::new(cseq.unwrap(), 200)
//! };
//! line.handle_response(now, ok);
//! assert!(line.registered_route().is_some());
//! // The next thing to do is the refresh, `expires.overlap` (60 s) before
//! // the binding lapses.
//! assert_eq!(line.poll_timeout(), Some(now + Duration::from_secs(540)));
//! ```
//!
//! Hand-written: the guide's behaviour (per-walk 32 s budget, service-record
//! walks, failback modes) exists in no reusable crate.
//!
//! # States of a line
//!
//! ```text
//!    +------------+   start, no routes   +------------------+
//!    | NotStarted |--------------------->| WaitingForRoutes |
//!    +------------+                      +------------------+
//!          | start                                | routes arrive
//!          v                                      v
//!    +--------------------------------------------------------+
//!    |                      Registering                       |<-----------+
//!    +--------------------------------------------------------+            |
//!       |   ^        |                         ^          |                |
//!       |   |        | 2xx                     |          | (c)            |
//!       +---+        v                         |          v                |
//!        (a) (b)  +------------+  refresh,     |    +------------+         |
//!                 | Registered |  failback,    |    | BackingOff |---------+
//!                 |            |  ICMP/refused,|    |            |  wait in [W/2, W]
//!                 |            |  DNS drop     |    |            |  (new Call-ID if
//!                 |            |---------------+    |            |  newCallOnUnRegister=1)
//!                 |            |------------------->|            |
//!                 +------------+  FIN/RST,          +------------+
//!                                 keep-alive loss
//!
//!    (a) ICMP, refused, no answer, 503 with failoverOn503Response=1: failover
//!        to the next route of the walk
//!    (b) 401/407: re-send with credentials, on the same route or at the walk's
//!        primary (authOptimizedInFailover)
//!    (c) walk exhausted (after the 32 s Timer B/F budget unless enhanced
//!        failover), 403 and other denials, FIN/RST, keep-alive loss
//!
//!    any state --shutdown--> Registering (Expires: 0) --> Stopped
//! ```
//!
//! # Walks
//!
//! Every REGISTER that may fail over belongs to a *walk* (see `walk.rs`): an
//! initial walk starts at the top of the route list; a refresh walk starts at
//! the current route; a failback walk starts at the primary. When a route
//! fails, the walk goes to the top of the anchor service record, skipping
//! routes failed in this walk, then to the following records. Without enhanced
//! failover the walk ends 32 s after its first request (Timer B/F); the last
//! route is retried with RFC 3261 intervals until then.
//!
//! # Pacing and refresh spread (a fleet's, not the guide's)
//!
//! A line of a fleet that paces ([`RegistrationSettings::paced`]) does not
//! start a new REGISTER exchange (initial, refresh, failover, failback,
//! un-REGISTER) at once: it asks the fleet's pacer
//! ([`crate::pacing`]) with [`Output::RequestSlot`], waits in
//! [`Phase::AwaitingSlot`], and sends when
//! [`Registration::handle_slot_granted`] says so. The guide's timers stay
//! exact: retransmissions and Timer E/F/B run from the moment the request
//! actually leaves, and a walk's 32 s budget counts the time its requests
//! were on the wire, not the time they waited for a slot. A
//! credentials follow-up to a 401/407 (and a 423 retry) is part of the
//! exchange and goes at once. The slot is given back ([`Output::SlotDone`])
//! when the exchange ends, whichever way, so the pacer's per-flow window
//! counts exchanges really in flight. A transport error on the route of an
//! exchange still waiting fails it as if it had been sent.
//!
//! [`RegistrationSettings::refresh_spread_pct`] moves each refresh earlier
//! than Poly's point by a fresh random amount (never later, never before half
//! the grant), so lines registered together drift apart.
//!
//! # Decisions taken here (beyond design.md)
//!
//! * Every route attempt is a new transaction: new branch and new CSeq;
//!   retransmissions keep both. The Call-ID stays across failover, failback
//!   and authentication; only the end of a back-off changes it, and only with
//!   `newCallOnUnRegister=1`.
//! * Back-off after an exhausted walk starts when the walk's 32 s budget ends
//!   (immediately with enhanced failover); after a denial, a 503 Retry-After or
//!   a lost flow it starts at once. A 503 Retry-After replaces the randomized
//!   wait but still counts as a consecutive failure.
//! * After a back-off the walk starts at the top of the whole list again.
//! * Refresh `expires.overlap` (default 60 s) before the granted expiry, or
//!   at half of it when half is less than the overlap (Poly's rule,
//!   design.md decision 10). The granted expiry is our Contact's, capped at
//!   what was asked.
//! * A 2xx granting 0 s or listing bindings without ours, and any final
//!   response other than 2xx, 401/407, a failover 503 and a 423 that raises
//!   the expiry, is a denial (3xx included), reported with a
//!   [`FailReason`]. A 423 is re-sent on the same route asking for its
//!   Min-Expires (RFC 3261 10.2.8), which the line keeps asking for; once
//!   per walk, so a second 423 is a denial.
//! * A 401/407 re-sent with credentials gets a fresh 32 s budget; a second
//!   challenge from the same route with `stale=false` is a denial, and so is
//!   a second `stale=true` in a row. A challenge the line cannot answer is
//!   a denial at once, and so is a request the line could not build
//!   ([`Registration::handle_send_failed`]): nothing waits for an answer to
//!   a request that never left.
//! * A TCP/TLS route without `tcpFastFailover` waits for its own Timer F;
//!   its expiry fails that route only, and the walk goes on with a fresh
//!   budget (design.md decision 3).
//! * The primary is fixed when a registration succeeds and survives DNS
//!   refreshes that still list it.
//! * Failback with RROFO on and `unRegisterOnFailBack=0` drops the binding
//!   silently when it starts ("the registration is terminated silently");
//!   without RROFO (`newRequests`) it is a refresh that tries the primary
//!   first, and the binding stands until another registrar accepts.
//! * A challenge met by a walk that has failed over goes back to the walk's
//!   primary unless `authOptimizedInFailover=1`; a first request or a refresh
//!   is answered where it was challenged.
//! * A failback that comes due while a call is active, or while a refresh is
//!   in flight, runs as soon as both are over; one that comes due during a
//!   failover walk is dropped if the walk lands on another route, which
//!   starts its own `failBack.timeout`.

mod backoff;
mod events;
mod failback;
pub use failback::refresh_after;
mod machine;
mod settings;
mod walk;

pub use backoff::Backoff;
pub use events::{
    Event, EventKind, FailReason, FailbackHeldReason, InvalidationReason, Output, Purpose,
    RegisterResponse, RouteFailReason, SendRegister, SlotRequest, TransportError, UnregisterReason,
};
pub use machine::{CallIdGenerator, Phase, Registration};
pub use settings::{FailbackMode, RegistrationSettings, ServerTimers};
