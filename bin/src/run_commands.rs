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
//! nothing. So does an input line that is not UTF-8 or longer than
//! [`MAX_LINE`] bytes: it is skipped (an over-long one without ever being
//! held in memory) and the reading goes on. The results show up in the
//! event stream (`call_started`, ...).
//!
//! URIs are `sip:` or `sips:`. Non-ASCII characters and controls in the
//! user part are percent-escaped (RFC 3261 25.1: `escaped` is the only way
//! to carry them); anywhere else they are refused, as is `tel:`, which the
//! call machinery cannot send as a Request-URI: the refusal names the SIP
//! form (`sip:NUMBER@DOMAIN;user=phone`, RFC 3261 19.1.6).
//!
//! Hand-written parsing: six fixed verbs with positional arguments do not
//! need a grammar crate, and clap expects process arguments.

use std::io::{BufRead, ErrorKind};

use sipfleet_actors::fleet::Fleet;
use sipfleet_actors::line::{Answer, Emergency, Hangup, Hold, PlaceCall, Resume};
use slog::Logger;

use crate::output::{clip, report};

/// Longest command line read from stdin, newline excluded.
pub const MAX_LINE: usize = 4096;

/// Commands read but not yet run; the reader waits when this many are queued.
const QUEUE: usize = 64;

/// An input line that is skipped.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InputError {
    #[error("input line of {len} bytes ignored: longer than {MAX_LINE} bytes")]
    TooLong { len: usize },
    #[error("input line ignored: not UTF-8 (invalid byte at offset {offset})")]
    NotUtf8 { offset: usize },
}

/// What the stdin reader hands over: a command line, or why one was skipped.
pub type InputLine = Result<String, InputError>;

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

const USAGE: &str = "commands: call LINE URI | emergency LINE URI | answer LINE | hold LINE | resume LINE | hangup LINE (URI: sip: or sips:)";

/// A call target as the Request-URI carries it: `sip:`/`sips:` only, the
/// user part's non-ASCII and control characters percent-escaped as UTF-8
/// (RFC 3261 25.1), non-ASCII elsewhere refused (a host name would need
/// IDNA, which is not ours to guess).
pub fn target_uri(word: &str) -> Result<String, String> {
    // By characters: a non-ASCII user part may start within the first five
    // bytes (`sip:ü@...`).
    let lower: String = word
        .chars()
        .take(5)
        .collect::<String>()
        .to_ascii_lowercase();
    if lower.starts_with("tel:") {
        return Err(format!(
            "tel: URIs are not supported, not {word:?}: call the number as \
             sip:NUMBER@DOMAIN;user=phone (RFC 3261 19.1.6)"
        ));
    }
    let scheme_len = if lower.starts_with("sip:") {
        4
    } else if lower.starts_with("sips:") {
        5
    } else {
        return Err(format!("URI must be a sip: or sips: URI, not {word:?}"));
    };
    let (scheme, rest) = word.split_at(scheme_len);
    // The user part (which may hold ';') ends at the first '@', unless
    // that '@' is in the headers.
    let headers = rest.find('?').unwrap_or(rest.len());
    let (user, host) = match rest[..headers].find('@') {
        Some(at) => rest.split_at(at),
        None => ("", rest),
    };
    if let Some(c) = host.chars().find(|c| !c.is_ascii() || c.is_ascii_control()) {
        return Err(format!(
            "{word:?}: {c:?} is not allowed after the user part (host, parameters, headers): \
             use ASCII there (an international domain in its xn-- form)"
        ));
    }
    let mut out = String::with_capacity(word.len());
    out.push_str(scheme);
    for c in user.chars() {
        if c.is_ascii() && !c.is_ascii_control() {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out.push_str(host);
    Ok(out)
}

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
        target_uri(w).map_err(|why| format!("{text:?}: {why}"))
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
pub struct LineMap(std::sync::Arc<Fleet>);

impl LineMap {
    /// The fleet's lines as they are when a command runs: lines added or
    /// removed through the control API count too.
    pub fn new(fleet: std::sync::Arc<Fleet>) -> Self {
        LineMap(fleet)
    }
}

/// Runs one command; the error text is what stderr shows.
pub async fn execute(lines: &LineMap, cmd: Command) -> Result<String, String> {
    let n = cmd.line();
    let line = lines
        .0
        .line(n)
        .map_err(|_| format!("no line {n} (reg.{n}) is configured"))?;
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

/// Reads one line of at most `max` bytes (newline excluded) from `input`.
/// A longer line is consumed to its end without being kept; a line that
/// is not UTF-8 is consumed and refused. `None` at end of input or on a
/// read error that is not an interruption.
pub fn read_line(input: &mut impl BufRead, max: usize) -> Option<InputLine> {
    let mut line: Vec<u8> = Vec::new();
    let mut len = 0usize;
    let mut any = false;
    loop {
        let chunk = match input.fill_buf() {
            Ok(chunk) => chunk,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return None,
        };
        if chunk.is_empty() {
            if !any {
                return None;
            }
            break;
        }
        any = true;
        let (take, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (i, true),
            None => (chunk.len(), false),
        };
        if len + take <= max {
            line.extend_from_slice(&chunk[..take]);
        } else {
            line = Vec::new();
        }
        len += take;
        input.consume(if done { take + 1 } else { take });
        if done {
            break;
        }
    }
    if len > max {
        return Some(Err(InputError::TooLong { len }));
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Some(String::from_utf8(line).map_err(|e| InputError::NotUtf8 {
        offset: e.utf8_error().valid_up_to(),
    }))
}

/// Reads commands from stdin until end of input. Stdin is read on a
/// thread of its own: a blocking read must not hold up the runtime or the
/// process's exit. The queue between them is bounded, so input that comes
/// faster than the commands run waits in the pipe, not in memory.
pub async fn serve_stdin(lines: LineMap, log: Logger) {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<InputLine>(QUEUE);
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        let mut input = stdin.lock();
        while let Some(line) = read_line(&mut input, MAX_LINE) {
            if tx.blocking_send(line).is_err() {
                break;
            }
        }
    });
    while let Some(input) = rx.recv().await {
        let text = match input {
            Ok(text) => text,
            Err(e) => {
                report(&format!("sipfleet run: {e}"));
                continue;
            }
        };
        match parse(&text) {
            Ok(None) => {}
            Ok(Some(cmd)) => match execute(&lines, cmd).await {
                Ok(call_id) => slog::info!(log, "command done";
                    "command" => clip(text.trim()), "call_id" => call_id),
                Err(e) => report(&format!("sipfleet run: {e}")),
            },
            Err(e) => report(&format!("sipfleet run: {e}")),
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
        let tel = err("call 1 tel:+15551234");
        assert!(tel.contains("tel: URIs are not supported"), "{tel}");
        assert!(tel.contains("sip:NUMBER@DOMAIN;user=phone"), "{tel}");
        assert!(err("call 1 sip:1001@bücher.example").contains("not allowed after the user part"));
        assert!(err("call 1 sip:1001@x;name=é").contains("not allowed after the user part"));
    }

    #[test]
    fn non_ascii_in_the_user_part_is_escaped() {
        assert_eq!(
            parse("call 1 sip:jérôme@lab.test;user=phone"),
            Ok(Some(Command::Call {
                line: 1,
                uri: "sip:j%C3%A9r%C3%B4me@lab.test;user=phone".into()
            }))
        );
        assert_eq!(
            target_uri("sips:a\u{1}b@x.test"),
            Ok("sips:a%01b@x.test".into())
        );
        assert_eq!(target_uri("SIP:9001@x.test"), Ok("SIP:9001@x.test".into()));
        assert_eq!(target_uri("sip:ü@x.test"), Ok("sip:%C3%BC@x.test".into()));
        assert_eq!(target_uri("sips:ü@x.test"), Ok("sips:%C3%BC@x.test".into()));
    }

    #[test]
    fn lines_are_bounded_and_bad_ones_skipped() {
        let long = "a".repeat(MAX_LINE + 1);
        let input = format!("call 1 sip:a@b\r\n{long}\n\u{0}\nhangup 1");
        let mut bytes = input.into_bytes();
        bytes.splice(0..0, b"\xff\xfe x\n".iter().copied());
        let mut reader = std::io::BufReader::with_capacity(16, &bytes[..]);
        let mut got = Vec::new();
        while let Some(line) = read_line(&mut reader, MAX_LINE) {
            got.push(line);
        }
        assert_eq!(
            got,
            [
                Err(InputError::NotUtf8 { offset: 0 }),
                Ok("call 1 sip:a@b".to_string()),
                Err(InputError::TooLong { len: MAX_LINE + 1 }),
                Ok("\u{0}".to_string()),
                Ok("hangup 1".to_string()),
            ]
        );
        let exact = "b".repeat(MAX_LINE);
        let mut reader = std::io::BufReader::new(exact.as_bytes());
        assert_eq!(read_line(&mut reader, MAX_LINE), Some(Ok(exact.clone())));
        assert_eq!(read_line(&mut reader, MAX_LINE), None);
    }
}
