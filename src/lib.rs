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

pub use sipfleet_actors as actors;
pub use sipfleet_protocol as protocol;
pub use sipfleet_transport as transport;

pub mod config_files;
