//! One line (`reg.x`) as one sans-IO machine, in the shape str0m gives a
//! whole peer connection: the driver feeds [`Input`]s with the time, drains
//! [`Output`]s, and wakes the line at its deadline. The line owns the
//! registration, the REGISTER builder, the calls, line seizes and
//! subscriptions, and the rules that sit between them and the wire: the
//! INVITE's next route and `onlySignalWithRegistered` ([`routes`]), how a
//! request no dialog claimed is answered ([`incoming`]), which dialogs each
//! flow's router must know ([`dialogs`]), what a transport failure means
//! for the guide ([`crate::flow_failure`]), DNS retries and the DNS events.
//!
//! ```text
//!                        +-------------------------------------------+
//!  Received{flow,msg} -->|  Line (reg.x)                             |--> OpenFlow{route}
//!  FlowOpened{flow,  --> |                                           |--> Transmit{flow,msg}
//!    local}              |   Registration --events--> Subscriptions  |--> AnnounceDialog /
//!  FlowUnavailable   --> |     |  (walk, back-off,       (re-created |      ForgetDialog /
//!  RouteFailed{kind} --> |     |   failback)              on the new |      TransactionDone
//!  FlowLost{kind}    --> |     v                          registrar) |--> ReleaseFlow / DetachFlow
//!  Resolved /        --> |   Calls & line seizes <-- registrar,      |--> Resolve{target}
//!   ResolveFailed /      |     (next route, same        calls hold   |--> Media{call,to,packet}
//!   RouteSetChanged /    |      Call-ID; 20 ms RTP)     failback     |--> Event(LineEventBody)
//!   DnsReport            |                                           |--> Diagnostic
//!  ExternalCalls,    --> |   ServerRoutes (server 1's routes first)  |--> GroupCallsActive /
//!   Group(cmd)           |   DialogBook (routers' dialogs, branches) |      GroupFailedBack
//!  Shutdown[TimedOut]--> |                                           |--> Timeout(Instant)
//!  Timeout           --> +-------------------------------------------+
//!  command(Command) -> Result<Call-ID, CallCommandError>     status() -> LineStatus
//! ```
//!
//! The contract, as quinn's: inputs may come in any order and at any time;
//! a [`Input::Timeout`] before the deadline is a no-op; [`Output::Timeout`]
//! is emitted only when the earliest deadline moves, so a driver keeps one
//! timer and re-arms it only then. Flows are the driver's (shared by many
//! lines); the line names them by [`FlowKey`](crate::route::FlowKey), asks
//! to open one when it needs it and holds what must go on it until the
//! driver says it is open (our local address goes into Via and Contact).
//! The one answer a line needs at once, a media port for an SDP, comes from
//! the driver's [`MediaPorts`].

mod calls;
mod control;
mod dialogs;
pub mod events;
pub mod incoming;
mod io;
mod machine;
pub mod media;
pub mod routes;
pub mod setup;
mod status;

pub use calls::{CallAction, CallCommandError, Command};
pub use io::{Diagnostic, Input, Output};
pub use machine::{Line, RESOLVE_RETRY_MAX, RESOLVE_RETRY_MIN};
pub use media::{BindError, MediaPorts, NoMedia};
pub use setup::{LineConfigError, LineFeatures, LineSetup};
pub use status::{CallInfo, LineStatus};
