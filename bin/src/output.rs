//! Writing to stdout and stderr without dying on a closed pipe, and error
//! text of a bounded size.
//!
//! `print!` panics when stdout is a pipe whose reader went away (`sipfleet
//! config check ... | head -1`): Rust ignores SIGPIPE, so the write fails with
//! `BrokenPipe`. The commands write through [`stdout`] instead and stop
//! quietly when nobody reads any more; messages go through [`report`], which
//! never fails, and are cut with [`clip`] so a 5 MB value in a file or on
//! stdin does not come back in full.

use std::io::{self, Write};
use std::process::ExitCode;

/// Longest run of non-blank characters an error message repeats in full.
pub const CLIP_CHARS: usize = 200;

/// Writes `text` to stdout and flushes it.
pub fn stdout(text: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}

/// The exit status of a command whose output went through [`stdout`]: a
/// reader that went away (broken pipe) is not an error of ours, so the
/// command exits with `status` quietly; any other write error is reported
/// and exits 1.
pub fn finish(written: io::Result<()>, status: ExitCode) -> ExitCode {
    match written {
        Ok(()) => status,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => status,
        Err(e) => {
            report(&format!("sipfleet: cannot write the output: {e}"));
            ExitCode::FAILURE
        }
    }
}

/// One message on stderr, each over-long word cut by [`clip`]. A closed
/// stderr is ignored: there is nobody left to tell.
pub fn report(message: &str) {
    let mut err = io::stderr().lock();
    let _ = writeln!(err, "{}", clip(message));
}

/// `text` with every run of non-blank characters longer than
/// [`CLIP_CHARS`] cut to its first [`CLIP_CHARS`] characters and
/// `… (N bytes)`: the message around a huge value stays readable.
pub fn clip(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(4 * CLIP_CHARS));
    let mut rest = text;
    while !rest.is_empty() {
        let blank = rest
            .find(|c: char| !c.is_whitespace())
            .unwrap_or(rest.len());
        out.push_str(&rest[..blank]);
        rest = &rest[blank..];
        let word_len = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let word = &rest[..word_len];
        match word.char_indices().nth(CLIP_CHARS) {
            Some((cut, _)) => {
                out.push_str(&word[..cut]);
                out.push_str(&format!("… ({} bytes)", word.len()));
            }
            None => out.push_str(word),
        }
        rest = &rest[word_len..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_cuts_long_words_and_keeps_the_rest() {
        let long = "9".repeat(5_000_000);
        let msg = format!("f.cfg:3: key=\"{long}\" is not allowed; allowed: 0 to 65535");
        let clipped = clip(&msg);
        assert!(clipped.len() < 400, "{}", clipped.len());
        assert!(clipped.starts_with("f.cfg:3: key=\"999"), "{clipped}");
        assert!(clipped.contains("… (5000006 bytes) is not allowed; allowed: 0 to 65535"));
        assert_eq!(clip("short words stay"), "short words stay");
        assert_eq!(clip("  a\n b "), "  a\n b ");
        let wide = "é".repeat(300);
        assert!(clip(&wide).starts_with(&"é".repeat(200)));
    }
}
