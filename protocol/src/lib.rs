//! The sans-IO core of sipfleet.
//!
//! Nothing in this crate opens a socket, reads a clock or sleeps: every state
//! machine takes `now: Instant` and events as input and returns actions plus its
//! next deadline. That is what makes every timing in the Poly failover guide
//! testable to the millisecond. This crate must not depend on tokio or actix
//! (`.ci/run` checks `cargo tree`).

#![warn(missing_docs)]

pub mod auth;
pub mod call;
pub mod config;
pub mod dns;
pub mod flow_failure;
pub mod framing;
pub mod group_failback;
pub mod json_fields;
pub mod keepalive;
pub mod line;
pub mod line_seize;
pub mod line_setup;
pub mod message;
pub mod pacing;
pub mod register_request;
pub mod registration;
pub mod resources;
pub mod route;
pub mod router;
pub mod sdp;
pub mod servers;
pub mod subscription;
pub mod transaction;
