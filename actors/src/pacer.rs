//! The fleet's pacer: one per fleet (when `sipfleet.register.rate` or
//! `sipfleet.register.window` is set), driving the sans-IO
//! [`sipfleet_protocol::pacing::Pacer`] with real time. Lines ask for a slot
//! before each new REGISTER exchange ([`AskSlot`]), get it by message
//! ([`SlotGranted`]) and give it back when the exchange ends
//! ([`ReleaseSlot`]). The rule (rate, burst, per-flow window, first come
//! first served) lives in the protocol crate; this actor only feeds it
//! messages and the clock, and keeps one timer, re-armed only when the
//! pacer's deadline moves (not once per grant).
//!
//! Time is read through `tokio::time::Instant::now()` so that a paused tokio
//! clock drives the actor in tests.

use std::collections::HashMap;
use std::time::Instant;

use actix::prelude::*;
use sipfleet_protocol::pacing::{Pacer, PacingSettings};
use sipfleet_transport::flow::FlowKey;

use crate::now;

/// A line asks to start a new REGISTER exchange on `flow`. Replaces
/// whatever the line asked for or held before.
#[derive(Message)]
#[rtype(result = "()")]
pub struct AskSlot {
    /// `reg.x` of the line.
    pub line: u32,
    /// The flow the exchange goes on (the per-flow window).
    pub flow: FlowKey,
    /// Echoed in the grant (the registration machine's ticket).
    pub ticket: u64,
    /// Where the grant goes.
    pub recipient: Recipient<SlotGranted>,
}

/// The line's exchange is over, or the line stopped: its slot (or its place
/// in the queue) goes.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ReleaseSlot {
    /// `reg.x` of the line.
    pub line: u32,
}

/// The line may start the exchange it asked for with `ticket`.
#[derive(Message, Clone, Copy, Debug, PartialEq, Eq)]
#[rtype(result = "()")]
pub struct SlotGranted {
    /// The ticket of the [`AskSlot`] granted.
    pub ticket: u64,
}

/// What the pacer holds, for tests and status displays.
#[derive(Message)]
#[rtype(result = "PacerStatus")]
pub struct GetPacerStatus;
/// What the pacer holds.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacerStatus {
    /// Lines waiting for a grant.
    pub waiting: usize,
    /// Grants held (exchanges in flight), every flow together.
    pub held: usize,
}

/// The fleet's pacer actor.
pub struct FleetPacer {
    pacer: Pacer<u32, FlowKey>,
    /// Who to tell, per waiting line: its ticket and its mailbox.
    waiting: HashMap<u32, (u64, Recipient<SlotGranted>)>,
    /// The armed wake-up and its deadline.
    timer: Option<(Instant, SpawnHandle)>,
}

impl FleetPacer {
    /// A pacer with `settings` (`sipfleet.register.rate`, `.window`).
    pub fn new(settings: PacingSettings) -> Self {
        FleetPacer {
            pacer: Pacer::new(settings),
            waiting: HashMap::new(),
            timer: None,
        }
    }

    /// Hands out every grant due now, then sleeps until the next one.
    fn run(&mut self, ctx: &mut Context<Self>) {
        let now = now();
        while let Some(grant) = self.pacer.poll_grant(now) {
            let Some((ticket, recipient)) = self.waiting.remove(&grant.id) else {
                continue;
            };
            match recipient.try_send(SlotGranted { ticket }) {
                Ok(()) => {}
                Err(SendError::Full(msg)) => recipient.do_send(msg),
                // The line is gone: its grant goes back to the window.
                Err(SendError::Closed(_)) => self.pacer.release(&grant.id),
            }
        }
        self.arm(ctx);
    }

    /// One timer, re-armed only when the deadline moved.
    fn arm(&mut self, ctx: &mut Context<Self>) {
        let deadline = self.pacer.poll_timeout();
        if self.timer.as_ref().map(|(at, _)| *at) == deadline {
            return;
        }
        if let Some((_, handle)) = self.timer.take() {
            ctx.cancel_future(handle);
        }
        if let Some(at) = deadline {
            let handle = ctx.run_later(at.saturating_duration_since(now()), |act, ctx| {
                act.timer = None;
                act.run(ctx);
            });
            self.timer = Some((at, handle));
        }
    }
}

impl Actor for FleetPacer {
    type Context = Context<Self>;
}

impl Handler<AskSlot> for FleetPacer {
    type Result = ();

    fn handle(&mut self, msg: AskSlot, ctx: &mut Self::Context) {
        self.pacer.request(msg.line, msg.flow);
        self.waiting.insert(msg.line, (msg.ticket, msg.recipient));
        self.run(ctx);
    }
}

impl Handler<ReleaseSlot> for FleetPacer {
    type Result = ();

    fn handle(&mut self, msg: ReleaseSlot, ctx: &mut Self::Context) {
        self.pacer.release(&msg.line);
        self.waiting.remove(&msg.line);
        self.run(ctx);
    }
}

impl Handler<GetPacerStatus> for FleetPacer {
    type Result = MessageResult<GetPacerStatus>;

    fn handle(&mut self, _: GetPacerStatus, _: &mut Self::Context) -> Self::Result {
        MessageResult(PacerStatus {
            waiting: self.pacer.waiting(),
            held: self.pacer.held(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    /// A stand-in line: records the time of each grant.
    struct Probe {
        t0: Instant,
        grants: Arc<Mutex<Vec<(u64, u64)>>>,
    }

    impl Actor for Probe {
        type Context = Context<Self>;
    }

    impl Handler<SlotGranted> for Probe {
        type Result = ();
        fn handle(&mut self, msg: SlotGranted, _: &mut Self::Context) {
            let ms = (now() - self.t0).as_millis() as u64;
            if let Ok(mut g) = self.grants.lock() {
                g.push((ms, msg.ticket));
            }
        }
    }

    fn flow(last: u8) -> FlowKey {
        FlowKey {
            transport: sipfleet_protocol::route::Transport::Udp,
            remote: std::net::SocketAddr::from(([127, 0, 0, last], 5060)),
        }
    }

    fn paused() -> actix::SystemRunner {
        actix::System::with_tokio_rt(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .expect("runtime")
        })
    }

    /// 10 lines ask at once at 4/s: granted at 0, 250, ..., 2250 ms of the
    /// paused clock, in order; a window of 2 holds a second flow's third
    /// line until a release.
    #[test]
    fn grants_arrive_by_message_at_the_pacers_times() {
        paused().block_on(async {
            let t0 = now();
            let grants = Arc::new(Mutex::new(Vec::new()));
            let probe = Probe {
                t0,
                grants: grants.clone(),
            }
            .start();
            let pacer = FleetPacer::new(PacingSettings {
                rate: 4,
                burst: 1,
                window: 0,
            })
            .start();
            for line in 0..10u32 {
                pacer.do_send(AskSlot {
                    line,
                    flow: flow(1),
                    ticket: u64::from(line) + 100,
                    recipient: probe.clone().recipient(),
                });
            }
            tokio::time::sleep(Duration::from_secs(3)).await;
            let got = grants.lock().map(|g| g.clone()).unwrap_or_default();
            let expected: Vec<(u64, u64)> = (0..10).map(|i| (i * 250, i + 100)).collect();
            assert_eq!(got, expected);
            let status = pacer.send(GetPacerStatus).await.expect("status");
            assert_eq!(
                status,
                PacerStatus {
                    waiting: 0,
                    held: 10
                }
            );
            for line in 0..10u32 {
                pacer.do_send(ReleaseSlot { line });
            }
            let status = pacer.send(GetPacerStatus).await.expect("status");
            assert_eq!(
                status,
                PacerStatus {
                    waiting: 0,
                    held: 0
                }
            );

            let windowed = FleetPacer::new(PacingSettings::new(0, 2)).start();
            grants.lock().map(|mut g| g.clear()).ok();
            for line in 0..3u32 {
                windowed.do_send(AskSlot {
                    line,
                    flow: flow(2),
                    ticket: u64::from(line),
                    recipient: probe.clone().recipient(),
                });
            }
            tokio::time::sleep(Duration::from_secs(10)).await;
            let n = grants.lock().map(|g| g.len()).unwrap_or(0);
            assert_eq!(n, 2, "the window holds the third");
            windowed.do_send(ReleaseSlot { line: 0 });
            tokio::time::sleep(Duration::from_millis(1)).await;
            let got = grants.lock().map(|g| g.clone()).unwrap_or_default();
            assert_eq!(got.last().map(|g| g.1), Some(2));
        });
    }

    /// A line that stopped before its grant does not keep a place in the
    /// window.
    #[test]
    fn a_grant_for_a_stopped_line_goes_back() {
        paused().block_on(async {
            let grants = Arc::new(Mutex::new(Vec::new()));
            let gone = Probe {
                t0: now(),
                grants: grants.clone(),
            }
            .start();
            let recipient = gone.clone().recipient();
            gone.send(StopProbe).await.ok();
            drop(gone);
            tokio::time::sleep(Duration::from_millis(1)).await;
            let pacer = FleetPacer::new(PacingSettings::new(0, 1)).start();
            pacer.do_send(AskSlot {
                line: 1,
                flow: flow(1),
                ticket: 1,
                recipient,
            });
            let status = pacer.send(GetPacerStatus).await.expect("status");
            assert_eq!(
                status,
                PacerStatus {
                    waiting: 0,
                    held: 0
                }
            );
        });
    }

    #[derive(Message)]
    #[rtype(result = "()")]
    struct StopProbe;

    impl Handler<StopProbe> for Probe {
        type Result = ();
        fn handle(&mut self, _: StopProbe, ctx: &mut Self::Context) {
            ctx.stop();
        }
    }
}
