//! The call commands `sipfleet run` reads on stdin, one per line:
//!
//! | command              | does                                              |
//! |----------------------|---------------------------------------------------|
//! | `call LINE URI`      | places a call from `reg.LINE` to `URI`             |
//! | `emergency LINE URI` | seizes the shared line, then calls `URI` (≤ 32 s) |
//! | `answer LINE`        | answers the oldest ringing incoming call           |
//! | `hold LINE`          | holds the newest established call                  |
//! | `resume LINE`        | resumes the newest held call                       |
//! | `hangup LINE`        | ends the newest call (CANCEL, 603 or BYE)          |
//!
//! Blank lines and `#` comments are ignored. A malformed or unknown command,
//! an unknown line, or one that cannot apply (no call to answer, line not
//! registered) prints one `sipfleet run: ...` line on stderr and changes
//! nothing. The results show up in the event stream (`call_started`, ...).
//!
//! Hand-written parsing: six fixed verbs with positional arguments do not
//! need a grammar crate, and clap expects process arguments.

use std::collections::HashMap;

use actix::Addr;
use sipfleet_actors::fleet::Fleet;
use sipfleet_actors::line::{Answer, Emergency, Hangup, Hold, Line, PlaceCall, Resume};
use sipfleet_protocol::config::FleetConfig;
use slog::Logger;

/// One parsed command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Call { line: u32, uri: String },
    Emergency { line: u32, uri: String },
    Answer { line: u32 },
    Hold { line: u32 },
    Resume { line: u32 },
    Hangup { line: u32 },
}

impl Command {
    fn line(&self) -> u32 {
        match self {
            Command::Call { line, .. }
            | Command::Emergency { line, .. }
            | Command::Answer { line }
            | Command::Hold { line }
            | Command::Resume { line }
            | Command::Hangup { line } => *line,
        }
    }
}

const USAGE: &str = "commands: call LINE URI | emergency LINE URI | answer LINE | hold LINE | resume LINE | hangup LINE";

/// Parses one input line; `Ok(None)` for a blank line or a comment.
pub fn parse(text: &str) -> Result<Option<Command>, String> {
    let text = text.trim();
    if text.is_empty() || text.starts_with('#') {
        return Ok(None);
    }
    let words: Vec<&str> = text.split_whitespace().collect();
    let line = |w: Option<&&str>| -> Result<u32, String> {
        let w = w.ok_or_else(|| format!("{:?}: missing LINE ({USAGE})", text))?;
        w.parse::<u32>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("{text:?}: LINE must be a line number (reg.x), not {w:?}"))
    };
    let uri = |w: Option<&&str>| -> Result<String, String> {
        let w = w.ok_or_else(|| format!("{text:?}: missing URI ({USAGE})"))?;
        if w.starts_with("sip:") || w.starts_with("sips:") || w.starts_with("tel:") {
            Ok((*w).to_owned())
        } else {
            Err(format!(
                "{text:?}: URI must be a sip:, sips: or tel: URI, not {w:?}"
            ))
        }
    };
    let (verb, args) = (words[0], &words[1..]);
    let want = match verb {
        "call" | "emergency" => 2,
        "answer" | "hold" | "resume" | "hangup" => 1,
        other => return Err(format!("unknown command {other:?} ({USAGE})")),
    };
    if args.len() > want {
        return Err(format!("{text:?}: too many arguments ({USAGE})"));
    }
    let cmd = match verb {
        "call" => Command::Call {
            line: line(args.first())?,
            uri: uri(args.get(1))?,
        },
        "emergency" => Command::Emergency {
            line: line(args.first())?,
            uri: uri(args.get(1))?,
        },
        "answer" => Command::Answer {
            line: line(args.first())?,
        },
        "hold" => Command::Hold {
            line: line(args.first())?,
        },
        "resume" => Command::Resume {
            line: line(args.first())?,
        },
        _ => Command::Hangup {
            line: line(args.first())?,
        },
    };
    Ok(Some(cmd))
}

/// The fleet's lines by `reg.x` index.
pub struct LineMap(HashMap<u32, Addr<Line>>);

impl LineMap {
    pub fn new(config: &FleetConfig, fleet: &Fleet) -> Self {
        LineMap(
            config
                .lines
                .iter()
                .map(|l| l.index)
                .zip(fleet.lines().iter().cloned())
                .collect(),
        )
    }
}

/// Runs one command; the error text is what stderr shows.
pub async fn execute(lines: &LineMap, cmd: Command) -> Result<String, String> {
    let n = cmd.line();
    let line = lines
        .0
        .get(&n)
        .ok_or_else(|| format!("no line {n} (reg.{n}) is configured"))?;
    let sent = match cmd {
        Command::Call { uri, .. } => line.send(PlaceCall { target: uri }).await,
        Command::Emergency { uri, .. } => line.send(Emergency { target: uri }).await,
        Command::Answer { .. } => line.send(Answer).await,
        Command::Hold { .. } => line.send(Hold).await,
        Command::Resume { .. } => line.send(Resume).await,
        Command::Hangup { .. } => line.send(Hangup).await,
    };
    match sent {
        Ok(Ok(call_id)) => Ok(call_id),
        Ok(Err(e)) => Err(format!("line {n}: {e}")),
        Err(e) => Err(format!("line {n} is not running: {e}")),
    }
}

/// Reads commands from stdin until end of input. Stdin is read on a
/// thread of its own: a blocking read must not hold up the runtime or the
/// process's exit.
pub async fn serve_stdin(lines: LineMap, log: Logger) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for text in std::io::stdin().lines() {
            let Ok(text) = text else { break };
            if tx.send(text).is_err() {
                break;
            }
        }
    });
    while let Some(text) = rx.recv().await {
        match parse(&text) {
            Ok(None) => {}
            Ok(Some(cmd)) => match execute(&lines, cmd).await {
                Ok(call_id) => slog::info!(log, "command done";
                    "command" => text.trim(), "call_id" => call_id),
                Err(e) => eprintln!("sipfleet run: {e}"),
            },
            Err(e) => eprintln!("sipfleet run: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_parses() {
        assert_eq!(
            parse("call 1 sip:9001@lab.test"),
            Ok(Some(Command::Call {
                line: 1,
                uri: "sip:9001@lab.test".into()
            }))
        );
        assert_eq!(
            parse("  emergency 2 sip:911@lab.test "),
            Ok(Some(Command::Emergency {
                line: 2,
                uri: "sip:911@lab.test".into()
            }))
        );
        assert_eq!(parse("answer 3"), Ok(Some(Command::Answer { line: 3 })));
        assert_eq!(parse("hold 3"), Ok(Some(Command::Hold { line: 3 })));
        assert_eq!(parse("resume 3"), Ok(Some(Command::Resume { line: 3 })));
        assert_eq!(parse("hangup 3"), Ok(Some(Command::Hangup { line: 3 })));
        assert_eq!(parse(""), Ok(None));
        assert_eq!(parse("# a comment"), Ok(None));
    }

    #[test]
    fn malformed_commands_are_errors_that_say_why() {
        let err = |t: &str| parse(t).unwrap_err();
        assert!(err("dial 1 sip:x@y").contains("unknown command \"dial\""));
        assert!(err("call").contains("missing LINE"));
        assert!(err("call x sip:a@b").contains("LINE must be a line number"));
        assert!(err("call 0 sip:a@b").contains("LINE must be a line number"));
        assert!(err("call 1").contains("missing URI"));
        assert!(err("call 1 9001").contains("URI must be"));
        assert!(err("hangup 1 now").contains("too many arguments"));
    }
}
