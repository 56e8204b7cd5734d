//! What a line shows status displays and the control API.

use crate::call::{CallDirection, CallState};
use crate::registration::Phase;
use crate::route::Route;

/// A snapshot of the line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineStatus {
    /// The line's `x` of `reg.x`.
    pub index: u32,
    /// Where the registration stands.
    pub phase: Phase,
    /// The route the line is registered on; `None` while not registered.
    pub registered_route: Option<Route>,
    /// The top route of the service record the line registered in; `None` while
    /// not registered.
    pub primary: Option<Route>,
    /// Call-ID of the registration's REGISTERs.
    pub call_id: String,
    /// Every route the line may use, in failover order.
    pub routes: Vec<Route>,
    /// The line's calls that have not ended.
    pub calls: Vec<CallInfo>,
    /// REGISTER retransmissions the line has sent (UDP Timer E), all its
    /// transactions together.
    pub register_retransmissions: u32,
}

/// A call of the line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallInfo {
    /// The call's Call-ID.
    pub call_id: String,
    /// Whether we placed or received it.
    pub direction: CallDirection,
    /// Its coarse state.
    pub state: CallState,
    /// Whether it is on hold.
    pub held: bool,
    /// The other party's URI (`To` of an outgoing call, `From` of an
    /// incoming one).
    pub remote: String,
    /// The SBC the call signals through.
    pub route: Route,
    /// RTP packets (20 ms of silence each) sent so far.
    pub rtp_sent: u64,
    /// Datagrams received on the call's media port so far.
    pub rtp_received: u64,
}
