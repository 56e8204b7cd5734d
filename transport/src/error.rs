//! Typed failures of a flow: the kinds live in the protocol core
//! (`sipfleet_protocol::flow_failure`), next to what each means to a line;
//! the transport classifies its I/O errors into them.

pub use sipfleet_protocol::flow_failure::{
    connect_failure, FlowLostKind, IcmpKind, RouteFailureKind,
};
