//! The call commands of the library API: one actix message per
//! [`Command`] of the protocol line, answered with the Call-ID concerned.

use actix::prelude::*;
use sipfleet_protocol::line::{CallAction, CallCommandError, Command};

use super::Line;
use crate::now;

/// Places a call to `target` (a SIP URI); answers its Call-ID.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<String, CallCommandError>")]
pub struct PlaceCall {
    /// The SIP URI to call.
    pub target: String,
}

/// Seizes the shared line, then calls `target` whatever the seize's
/// outcome (within 32 s); answers the emergency INVITE's Call-ID.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<String, CallCommandError>")]
pub struct Emergency {
    /// The emergency number's SIP URI.
    pub target: String,
}

/// Answers the oldest ringing incoming call.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "Result<String, CallCommandError>")]
pub struct Answer;

/// Holds the newest established call that is not on hold.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "Result<String, CallCommandError>")]
pub struct Hold;

/// Resumes the newest call on hold.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "Result<String, CallCommandError>")]
pub struct Resume;

/// Ends the newest call: CANCEL, 603 or BYE as its state requires.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "Result<String, CallCommandError>")]
pub struct Hangup;

/// Answers, holds, resumes or hangs up the call with this Call-ID (the
/// control API's form: the commands above pick "the newest" call).
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<String, CallCommandError>")]
pub struct OnCall {
    /// The call's Call-ID.
    pub call_id: String,
    /// What to do to it.
    pub action: CallAction,
}

/// Registers again at once (`Line::register_now` of the protocol line);
/// answers whether a REGISTER exchange started (`false`: one is under way,
/// or the line waits for routes or the pacer, or it stopped).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "bool")]
pub struct RegisterNow;

impl Handler<RegisterNow> for Line {
    type Result = bool;

    fn handle(&mut self, _: RegisterNow, ctx: &mut Self::Context) -> bool {
        let started = self.line.register_now(now());
        self.drain(ctx);
        started
    }
}

/// Each call message is one [`Command`] of the protocol line.
macro_rules! call_command {
    ($name:ident, |$msg:ident| $command:expr) => {
        impl Handler<$name> for Line {
            type Result = Result<String, CallCommandError>;

            fn handle(&mut self, $msg: $name, ctx: &mut Self::Context) -> Self::Result {
                let result = self.line.command(now(), $command);
                self.drain(ctx);
                result
            }
        }
    };
}

call_command!(PlaceCall, |msg| Command::Call { target: msg.target });
call_command!(Emergency, |msg| Command::Emergency { target: msg.target });
call_command!(Answer, |_msg| Command::Answer);
call_command!(Hold, |_msg| Command::Hold);
call_command!(Resume, |_msg| Command::Resume);
call_command!(Hangup, |_msg| Command::Hangup);
call_command!(OnCall, |msg| Command::OnCall {
    call_id: msg.call_id,
    action: msg.action
});
