//! Enhanced failover across the lines of a fleet (the guide's Enhanced
//! Failover, point 1): "phones with multiple SIP registrations will failback
//! to a primary as a group. Failback will not be started if any of the SIP
//! lines is in an active call."
//!
//! Sans-IO policy for the fleet's failback coordinator: it learns each line's
//! call state and each line's failback, and answers with commands for the
//! lines. Each line's own registration machine still decides *when* its
//! failback is due; this only widens "a call blocks failback" to every line
//! and turns one line's failback into a group failback.
//!
//! A group failback is one round: the first line that fails back starts it
//! and every other line is asked to fail back; the failbacks those lines then
//! report belong to the same round and start nothing (otherwise N lines would
//! ask each other N² times). A round lasts [`ROUND`], the 32 s transaction
//! budget within which the asked lines have either failed back or failed over
//! again.
//!
//! ```text
//!   line k: LineCalls{active} ----> [coordinator] ----> every line:
//!                                   any call up?        CallsActive{any_active}
//!                                                       (holds failback fleet-wide)
//!   line k: LineFailedBack -------> no round open? ---> every other line:
//!                                   open one (32 s)     Failback  (they fail back;
//!                                   round open?         their own LineFailedBack
//!                                   -> nothing          reports start nothing)
//! ```

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How long a group failback round lasts.
pub const ROUND: Duration = Duration::from_secs(32);

/// What the coordinator tells a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupCommand {
    /// Whether any line of the fleet has an active call: while true, the
    /// line must not fail back.
    CallsActive {
        /// The line told (`reg.x` index).
        line: u32,
        /// Whether any line of the fleet has a call.
        any_active: bool,
    },
    /// Fail back now if failed over (group failback).
    Failback {
        /// The line told (`reg.x` index).
        line: u32,
    },
}

/// The coordinator's state: every line's call activity and the current
/// failback round, if any.
#[derive(Debug, Default)]
pub struct GroupFailback {
    calls: BTreeMap<u32, bool>,
    round_until: Option<Instant>,
}

impl GroupFailback {
    /// A coordinator with no line known yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether any line has an active call.
    pub fn any_active(&self) -> bool {
        self.calls.values().any(|a| *a)
    }

    /// A line joins; it is told whether calls block failback now.
    pub fn add_line(&mut self, line: u32) -> Vec<GroupCommand> {
        self.calls.entry(line).or_insert(false);
        vec![GroupCommand::CallsActive {
            line,
            any_active: self.any_active(),
        }]
    }

    /// A line leaves; if its call was the last one, the others may fail back.
    pub fn remove_line(&mut self, line: u32) -> Vec<GroupCommand> {
        let before = self.any_active();
        self.calls.remove(&line);
        self.broadcast_if_changed(before)
    }

    /// A line's calls started (`true`) or all ended (`false`). When the
    /// fleet-wide answer changes, every line is told.
    pub fn handle_calls(&mut self, line: u32, active: bool) -> Vec<GroupCommand> {
        let before = self.any_active();
        self.calls.insert(line, active);
        self.broadcast_if_changed(before)
    }

    /// `line` failed back to its primary at `now`. The first failback of a
    /// round asks every other line to fail back too.
    pub fn handle_failed_back(&mut self, now: Instant, line: u32) -> Vec<GroupCommand> {
        if self.round_until.is_some_and(|until| now < until) {
            return Vec::new();
        }
        self.round_until = Some(now + ROUND);
        self.calls
            .keys()
            .filter(|l| **l != line)
            .map(|l| GroupCommand::Failback { line: *l })
            .collect()
    }

    fn broadcast_if_changed(&self, before: bool) -> Vec<GroupCommand> {
        let any_active = self.any_active();
        if any_active == before {
            return Vec::new();
        }
        self.calls
            .keys()
            .map(|line| GroupCommand::CallsActive {
                line: *line,
                any_active,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fleet(n: u32) -> GroupFailback {
        let mut g = GroupFailback::new();
        for line in 1..=n {
            assert_eq!(
                g.add_line(line),
                [GroupCommand::CallsActive {
                    line,
                    any_active: false
                }]
            );
        }
        g
    }

    #[test]
    fn a_call_on_one_line_blocks_failback_on_every_line_until_it_ends() {
        let mut g = fleet(3);
        let blocked: Vec<_> = (1..=3)
            .map(|line| GroupCommand::CallsActive {
                line,
                any_active: true,
            })
            .collect();
        assert_eq!(g.handle_calls(2, true), blocked);
        // A second call changes nothing fleet-wide.
        assert_eq!(g.handle_calls(3, true), []);
        // One call ends, another is still up: still blocked.
        assert_eq!(g.handle_calls(2, false), []);
        let released: Vec<_> = (1..=3)
            .map(|line| GroupCommand::CallsActive {
                line,
                any_active: false,
            })
            .collect();
        assert_eq!(g.handle_calls(3, false), released);
    }

    #[test]
    fn the_first_failback_moves_the_group_once_per_round() {
        let mut g = fleet(3);
        let t0 = Instant::now();
        assert_eq!(
            g.handle_failed_back(t0, 2),
            [
                GroupCommand::Failback { line: 1 },
                GroupCommand::Failback { line: 3 }
            ]
        );
        // The asked lines report their failbacks: same round, no echo.
        assert_eq!(g.handle_failed_back(t0 + Duration::from_millis(5), 1), []);
        assert_eq!(
            g.handle_failed_back(t0 + ROUND - Duration::from_millis(1), 3),
            []
        );
        // A later failback (after the next failover) starts a new round.
        assert_eq!(
            g.handle_failed_back(t0 + ROUND, 3),
            [
                GroupCommand::Failback { line: 1 },
                GroupCommand::Failback { line: 2 }
            ]
        );
    }

    #[test]
    fn a_line_leaving_with_the_last_call_releases_the_others() {
        let mut g = fleet(2);
        g.handle_calls(1, true);
        assert_eq!(
            g.remove_line(1),
            [GroupCommand::CallsActive {
                line: 2,
                any_active: false
            }]
        );
        // A line joining while a call is up learns it at once.
        g.handle_calls(2, true);
        assert_eq!(
            g.add_line(5),
            [GroupCommand::CallsActive {
                line: 5,
                any_active: true
            }]
        );
    }
}
