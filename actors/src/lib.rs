//! The actix actors that wire the sans-IO core to the transports: one resolver
//! per process, one connection actor per flow, one line actor per `reg.x`, one
//! failback coordinator and one REGISTER pacer per fleet. They exchange plain typed messages.
//!
//! An application starts a [`fleet::Fleet`] and drives it through its
//! control API (lines added and removed at run time, calls by Call-ID,
//! status, routes, metrics, readiness: [`fleet`]); it follows the events
//! with [`fleet::Fleet::subscribe`] ([`hub`]).
#![warn(missing_docs)]
pub mod connection;
pub mod coordinator;
pub mod events;
pub mod fleet;
pub mod hub;
pub mod line;
pub mod metrics;
pub mod output_thread;
pub mod pacer;
pub mod resolver;
pub mod trace;
pub mod views;

/// The actors' clock: tokio's, so a paused tokio clock drives them in tests,
/// and every event and trace record is on one time axis.
pub(crate) fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}
