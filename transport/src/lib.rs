//! Async I/O for sipfleet: flows per (transport, remote address), the stream
//! codec built on `protocol::framing`, the sockets that carry keep-alives and
//! DNS queries. No actors and no policy live here: when to send a keep-alive
//! (`protocol::keepalive`), which line a message belongs to
//! (`protocol::router`) and what a failure means are the protocol core's
//! job.

#![warn(missing_docs)]

pub mod codec;
pub mod dns;
pub mod error;
pub mod flow;
pub mod media;
mod stream;
mod tcp;
pub mod tls;
mod udp;
pub mod udp_port;
