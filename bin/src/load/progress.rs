//! Live progress of a load run on stderr: a bar with the figures on a
//! terminal, one plain line per interval otherwise (CI logs, `kubectl
//! logs`), so the run is followed without a stats file.

use std::io::IsTerminal;

use super::summary::TimelinePoint;

/// What the timeline point does not carry.
#[derive(Clone, Copy, Debug, Default)]
pub struct Extra {
    pub never_registered: u64,
    pub failures: u64,
}

pub struct Progress {
    lines: u64,
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    /// A bar when both stdout and stderr are terminals, plain lines
    /// otherwise.
    pub fn new(lines: u64) -> Progress {
        let tty = std::io::stderr().is_terminal() && std::io::stdout().is_terminal();
        let bar = tty.then(|| {
            let bar = indicatif::ProgressBar::new(lines);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{elapsed:>4} {bar:30} {pos}/{len} registered {msg}",
            ) {
                bar.set_style(style);
            }
            bar
        });
        Progress { lines, bar }
    }

    pub fn update(&self, p: &TimelinePoint, extra: Extra) {
        match &self.bar {
            Some(bar) => {
                bar.set_position(p.registered);
                bar.set_message(figures(p, extra));
            }
            None => crate::output::report(&line(self.lines, p, extra)),
        }
    }

    /// Says that the run stopped and the lines un-register (which takes
    /// up to lines / rate seconds), above the bar on a terminal.
    pub fn stopping(&self, wait: std::time::Duration) {
        let text = format!(
            "load: stopping: un-registering {} lines (at most {:.0} s)",
            self.lines,
            wait.as_secs_f64()
        );
        match &self.bar {
            Some(bar) => bar.println(text),
            None => crate::output::report(&text),
        }
    }

    /// Leaves the last figures on the terminal.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.abandon();
        }
    }
}

/// The plain line: `load t=12.0s registered 180/200 ...`.
pub fn line(lines: u64, p: &TimelinePoint, extra: Extra) -> String {
    format!(
        "load t={:.1}s registered {}/{lines} {}",
        p.t_ms as f64 / 1000.0,
        p.registered,
        figures(p, extra)
    )
}

fn figures(p: &TimelinePoint, extra: Extra) -> String {
    let sbcs: Vec<String> = p
        .registered_by_sbc
        .iter()
        .map(|(a, n)| format!("{a} {n}"))
        .collect();
    format!(
        "[{}] backing off {} never registered {} failed attempts {} | REGISTER {:.0}/s | p50 {} ms p99 {} ms | failovers {} failbacks {} | calls up {}",
        sbcs.join(", "),
        p.backing_off,
        extra.never_registered,
        extra.failures,
        p.register_rate,
        p.latency_p50_ms,
        p.latency_p99_ms,
        p.failovers,
        p.failbacks,
        p.calls_up
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plain_line_has_every_figure() {
        let p = TimelinePoint {
            t_ms: 12_000,
            registered_by_sbc: [("127.0.0.11:5060".into(), 180)].into_iter().collect(),
            registered: 180,
            backing_off: 3,
            registers: 150,
            register_rate: 150.0,
            latency_p50_ms: 12,
            latency_p99_ms: 40,
            failovers: 2,
            failbacks: 0,
            calls_up: 4,
        };
        let extra = Extra {
            never_registered: 17,
            failures: 5,
        };
        assert_eq!(
            line(200, &p, extra),
            "load t=12.0s registered 180/200 [127.0.0.11:5060 180] backing off 3 never registered 17 failed attempts 5 | REGISTER 150/s | p50 12 ms p99 40 ms | failovers 2 failbacks 0 | calls up 4"
        );
    }
}
