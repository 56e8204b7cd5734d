//! Async I/O for sipfleet: flows per (transport, remote address), the stream
//! codec built on `protocol::framing`, keep-alive senders and DNS queries. No
//! actors and no policy live here: deciding what a failure means is the
//! protocol core's job.

pub mod codec;
pub mod dns;
pub mod error;
pub mod flow;
pub mod keepalive;
pub mod router;
mod stream;
mod tcp;
pub mod tls;
mod udp;
pub mod udp_port;
