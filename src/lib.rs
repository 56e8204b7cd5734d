//! sipfleet: a SIP client that keeps many lines registered and their calls up
//! while SBCs, networks and DNS fail, following the failover and route-redundancy
//! behaviour of Poly desk phones.
//!
//! This facade re-exports the layers so an embedding application (a softphone
//! backend, a PBX gateway) depends on one crate:
//! - [`protocol`]: the sans-IO core (messages, auth, config, DNS route lists,
//!   transactions, registration state machine);
//! - [`transport`]: UDP/TCP/TLS flows and DNS queries;
//! - [`actors`]: the actix actors that wire them together.

//!
//! The names an application uses most are re-exported here: the fleet and
//! its control API ([`Fleet`], [`FleetOptions`], [`ControlError`]), its
//! events ([`LineEvent`], [`EventSink`], [`EventStream`], [`Lagged`]), the
//! call actions ([`CallAction`]) and the configuration loader
//! ([`config_files::load`]). `examples/embed.rs` and `examples/gateway.rs`
//! show them at work.
#![warn(missing_docs)]

pub use sipfleet_actors as actors;
pub use sipfleet_protocol as protocol;
pub use sipfleet_transport as transport;

pub mod config_files;

/// The fleet's events: one typed event per state change of a line, where
/// they go, and the subscription stream with its overflow notice.
pub use sipfleet_actors::events::{event_json, event_text, EventSink, LineEvent, LineEventBody};
/// The running fleet and its control API.
pub use sipfleet_actors::fleet::{
    CallSummary, ControlError, Fleet, FleetError, FleetOptions, LineDetail, RouteRow, Routes,
};
/// The subscription stream of [`Fleet::subscribe`] and its overflow notice.
pub use sipfleet_actors::hub::{EventStream, Lagged, EVENT_BUFFER};
/// What a line's events tell of it (`GET /v1/lines/{n}`).
pub use sipfleet_actors::views::{Failure, LineState, LineView, SubscriptionView};
/// The configuration model an application may build lines from.
pub use sipfleet_protocol::config::{FleetConfig, LineConfig};
/// What to do to a call addressed by its Call-ID, and what a line shows.
pub use sipfleet_protocol::line::{CallAction, CallCommandError, CallInfo, LineStatus};
