//! What a line shows status displays and the control API.

use crate::call::{CallDirection, CallState};
use crate::registration::Phase;
use crate::route::Route;

/// A snapshot of the line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineStatus {
    pub index: u32,
    pub phase: Phase,
    pub registered_route: Option<Route>,
    pub primary: Option<Route>,
    pub call_id: String,
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
    pub call_id: String,
    pub direction: CallDirection,
    pub state: CallState,
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
