//! Operator controls of a line beyond its calls: what the control API's
//! `POST /v1/lines/{n}/register` does.

use std::time::Instant;

use super::machine::Line;

impl Line {
    /// Registers again at once ([`crate::registration::Registration::register_now`]);
    /// answers whether a REGISTER exchange started (`false`: one is under
    /// way already, the line waits for routes or the pacer, or it stopped).
    pub fn register_now(&mut self, now: Instant) -> bool {
        let started = self.machine.register_now(now);
        self.drain(now);
        started
    }
}
