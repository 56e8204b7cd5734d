//! The fleet's failback coordinator: one per fleet, used by the lines that
//! have enhanced failover on. It applies [`GroupFailback`]: a call on any
//! line holds failback on every line, and the first line to fail back takes
//! the others with it. Lines report their calls and failbacks with
//! [`LineCalls`] and [`LineFailedBack`]; the coordinator answers with
//! [`Group`] commands.

use std::collections::HashMap;

use actix::prelude::*;
use sipfleet_protocol::group_failback::{GroupCommand, GroupFailback};

/// A command for one line.
#[derive(Message, Clone, Copy, Debug, PartialEq, Eq)]
#[rtype(result = "()")]
pub struct Group(pub GroupCommand);

/// A line joins the group.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Join {
    /// `reg.x` of the line.
    pub line: u32,
    /// Where the coordinator's commands reach it.
    pub recipient: Recipient<Group>,
}

/// A line leaves the group (it stopped).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Leave {
    /// `reg.x` of the line.
    pub line: u32,
}

/// A line's calls started or all ended.
#[derive(Message)]
#[rtype(result = "()")]
pub struct LineCalls {
    /// `reg.x` of the line.
    pub line: u32,
    /// Whether any of its calls is up.
    pub active: bool,
}

/// A line failed back to its primary.
#[derive(Message)]
#[rtype(result = "()")]
pub struct LineFailedBack {
    /// `reg.x` of the line.
    pub line: u32,
}
/// The fleet's failback coordinator (enhanced failover): drives
/// [`GroupFailback`] with the lines' calls and failbacks, and tells every
/// line of the group when calls are active and when to fail back.

#[derive(Default)]
pub struct FailbackCoordinator {
    group: GroupFailback,
    lines: HashMap<u32, Recipient<Group>>,
}

impl FailbackCoordinator {
    /// A coordinator with no line yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn dispatch(&self, commands: Vec<GroupCommand>) {
        for command in commands {
            let line = match command {
                GroupCommand::CallsActive { line, .. } | GroupCommand::Failback { line } => line,
            };
            if let Some(recipient) = self.lines.get(&line) {
                recipient.do_send(Group(command));
            }
        }
    }
}

impl Actor for FailbackCoordinator {
    type Context = Context<Self>;
}

impl Handler<Join> for FailbackCoordinator {
    type Result = ();

    fn handle(&mut self, msg: Join, _: &mut Self::Context) {
        self.lines.insert(msg.line, msg.recipient);
        let commands = self.group.add_line(msg.line);
        self.dispatch(commands);
    }
}

impl Handler<Leave> for FailbackCoordinator {
    type Result = ();

    fn handle(&mut self, msg: Leave, _: &mut Self::Context) {
        self.lines.remove(&msg.line);
        let commands = self.group.remove_line(msg.line);
        self.dispatch(commands);
    }
}

impl Handler<LineCalls> for FailbackCoordinator {
    type Result = ();

    fn handle(&mut self, msg: LineCalls, _: &mut Self::Context) {
        let commands = self.group.handle_calls(msg.line, msg.active);
        self.dispatch(commands);
    }
}

impl Handler<LineFailedBack> for FailbackCoordinator {
    type Result = ();

    fn handle(&mut self, msg: LineFailedBack, _: &mut Self::Context) {
        let now = tokio::time::Instant::now().into_std();
        let commands = self.group.handle_failed_back(now, msg.line);
        self.dispatch(commands);
    }
}
