//! Configuration: the guide's parameters, typed, with their ranges, defaults
//! and scoping.
//!
//! Pure and sans-IO: this module parses text it is given and never reads files
//! or the environment. `sipfleet::config_files` reads files in order, collects
//! environment overrides with the `config` crate, and feeds everything here.
//!
//! ```
//! use sipfleet_protocol::config::{parse_auto, ConfigBuilder};
//! let mut b = ConfigBuilder::new();
//! b.add_source(parse_auto(
//!     "reg.1.address=\"5551239999\"\nvoIpProt.server.1.address=\"core.example.com\"\n",
//!     "a.cfg",
//! ));
//! let fleet = b.build().unwrap();
//! assert_eq!(*fleet.lines[0].registration.retry_max_count, 3); // the guide's default
//! ```
//!
//! # Scoping
//!
//! For each line `x` and server `y`, a field takes the first of:
//! `reg.x.server.y.<field>`, `voIpProt.server.y.<field>`, the guide's default;
//! for the outbound proxy: `reg.x.outboundProxy.<field>`,
//! `voIpProt.SIP.outboundProxy.<field>`, the default. A line has a server `y`
//! when either scope sets its address, and an outbound proxy likewise. The
//! line's effective failover settings are the outbound proxy's when it has
//! one, else its primary (lowest-index) server's. Every value is a
//! [`Sourced`] that says which key and file:line (or environment variable)
//! set it, or that it is the default.
//!
//! # Errors
//!
//! Loading never stops at the first problem: syntax errors, out-of-range
//! values (naming key, value, allowed range, file:line) and incomplete
//! settings all come back together in [`ConfigErrors`]; unknown keys are
//! [`ConfigWarning`]s.
//!
//! - `source`: `key="value"` lines and Poly XML into [`RawParam`]s with file:line.
//! - `schema`: the parameter table (canonical key, kind/range, default) and
//!   case-insensitive key matching.
//! - `build`: layering and scoping into the typed [`FleetConfig`].
//! - `model`: the typed result.
//! - `error`: [`Location`], [`ConfigError`], [`ConfigWarning`].

mod build;
mod error;
mod model;
pub mod schema;
mod source;

pub use build::{decode_escapes, ConfigBuilder};
pub use error::{ConfigError, ConfigErrors, ConfigWarning, Location};
pub use model::*;
pub use source::{parse_auto, parse_lines, parse_xml, ParsedSource, RawParam};
