//! The fleet's event hub: every [`LineEvent`] of every line passes here
//! once, and goes from here to
//!
//! 1. the fleet's observers ([`EventObserver`]: the metrics and the line
//!    views behind `Fleet::status`), synchronously and by reference, so
//!    they never miss an event and the lines pay no copy for them;
//! 2. the actix recipients subscribed with `Fleet::subscribe_recipient`
//!    (`do_send`: into the actor's mailbox, which `do_send` does not bound,
//!    so a recipient never loses an event; a slow actor queues them);
//! 3. the streams of `Fleet::subscribe` ([`EventStream`]), through one
//!    tokio broadcast channel of [`EVENT_BUFFER`] events;
//! 4. the sink the application chose ([`FleetOptions::events`]).
//!
//! # Overflow policy of the streams
//!
//! The lines never wait for a subscriber: a stream that falls more than
//! [`EVENT_BUFFER`] events behind loses the oldest ones and reads, in
//! their place, one `Err(`[`Lagged`]`(n))` naming how many it lost; it then
//! goes on with the oldest event still buffered. A stream ends (`None`)
//! when the fleet and every line are gone. An event is cloned for the
//! channel only while some stream is subscribed.
//!
//! [`FleetOptions::events`]: crate::fleet::FleetOptions::events

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use actix::Recipient;
use futures_util::Stream;
use tokio::sync::broadcast;

use crate::events::{EventSink, LineEvent};

/// Events a subscriber of [`crate::fleet::Fleet::subscribe`] may fall
/// behind before it loses the oldest: at the fleet's busiest (every line
/// failing over at once, three or four events a line) this covers a few
/// thousand lines; a bigger fleet's subscriber must keep up or count
/// [`Lagged`].
pub const EVENT_BUFFER: usize = 16_384;

/// Sees every event of the fleet, in order, as it is emitted (on the
/// emitting line's thread: keep it short and never block).
pub trait EventObserver: Send + Sync {
    /// One event of one line.
    fn observe(&self, event: &LineEvent);
}

/// A stream subscriber fell behind and lost this many events (the oldest
/// ones) since it last read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the event subscriber fell behind and lost {0} events")]
pub struct Lagged(pub u64);

/// Where the lines of one fleet send their events (see the module docs).
pub struct EventHub {
    sink: EventSink,
    observers: Vec<Arc<dyn EventObserver>>,
    recipients: Mutex<Vec<Recipient<LineEvent>>>,
    streams: broadcast::Sender<LineEvent>,
}

impl EventHub {
    /// A hub that hands every event to `observers`, the subscribers, then
    /// `sink`.
    pub fn new(sink: EventSink, observers: Vec<Arc<dyn EventObserver>>) -> Self {
        Self::with_buffer(sink, observers, EVENT_BUFFER)
    }

    /// Like [`EventHub::new`], with streams that may fall `buffer` events
    /// behind (tests use a small one).
    pub fn with_buffer(
        sink: EventSink,
        observers: Vec<Arc<dyn EventObserver>>,
        buffer: usize,
    ) -> Self {
        let (streams, _) = broadcast::channel(buffer.max(1));
        EventHub {
            sink,
            observers,
            recipients: Mutex::new(Vec::new()),
            streams,
        }
    }

    /// The sink the application chose.
    pub fn sink(&self) -> &EventSink {
        &self.sink
    }

    /// A stream of every event from now on.
    pub fn subscribe(&self) -> EventStream {
        EventStream::new(self.streams.subscribe())
    }

    /// Every event from now on goes to `recipient` too, until its actor
    /// stops.
    pub fn subscribe_recipient(&self, recipient: Recipient<LineEvent>) {
        if let Ok(mut r) = self.recipients.lock() {
            r.push(recipient);
        }
    }

    /// Hands `event` to everyone, in the order of the module docs.
    pub fn emit(&self, event: LineEvent) {
        for observer in &self.observers {
            observer.observe(&event);
        }
        if let Ok(mut recipients) = self.recipients.lock() {
            recipients.retain(|r| r.connected());
            for r in recipients.iter() {
                r.do_send(event.clone());
            }
        }
        if self.streams.receiver_count() > 0 {
            // No receiver left between the check and the send: nothing to do.
            let _ = self.streams.send(event.clone());
        }
        self.sink.emit(event);
    }
}

type Items = Pin<Box<dyn Stream<Item = Result<LineEvent, Lagged>> + Send>>;

/// The events of a fleet, in the order the lines emitted them; see the
/// module docs for what a subscriber that falls behind reads.
pub struct EventStream {
    items: Items,
}

impl EventStream {
    fn new(rx: broadcast::Receiver<LineEvent>) -> Self {
        let items = futures_util::stream::unfold(rx, |mut rx| async move {
            match rx.recv().await {
                Ok(event) => Some((Ok(event), rx)),
                Err(broadcast::error::RecvError::Lagged(n)) => Some((Err(Lagged(n)), rx)),
                Err(broadcast::error::RecvError::Closed) => None,
            }
        });
        EventStream {
            items: Box::pin(items),
        }
    }

    /// The next item: an event, a [`Lagged`] notice, or `None` once the
    /// fleet is gone. The same as `StreamExt::next`, for applications
    /// without `futures`.
    pub async fn recv(&mut self) -> Option<Result<LineEvent, Lagged>> {
        std::future::poll_fn(|cx| self.items.as_mut().poll_next(cx)).await
    }
}

impl Stream for EventStream {
    type Item = Result<LineEvent, Lagged>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.items.as_mut().poll_next(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sipfleet_protocol::registration::{Event, EventKind, FailReason};
    use std::time::Instant;

    fn event(line: u32, status: u16) -> LineEvent {
        LineEvent {
            at: Instant::now(),
            line,
            event: Event {
                kind: EventKind::RegistrationFailed {
                    status: Some(status),
                    reason: FailReason::Denied,
                },
                route: None,
                call_id: format!("c{status}"),
            }
            .into(),
        }
    }

    fn status_of(e: &LineEvent) -> Option<u16> {
        match &e.event {
            crate::events::LineEventBody::Registration(Event {
                kind: EventKind::RegistrationFailed { status, .. },
                ..
            }) => *status,
            _ => None,
        }
    }

    struct Count(Mutex<Vec<u32>>);
    impl EventObserver for Count {
        fn observe(&self, event: &LineEvent) {
            if let Ok(mut v) = self.0.lock() {
                v.push(event.line);
            }
        }
    }

    #[tokio::test]
    async fn a_stream_reads_every_event_in_order() {
        let memory = Arc::new(Mutex::new(Vec::new()));
        let hub = EventHub::new(EventSink::Memory(memory.clone()), Vec::new());
        let mut stream = hub.subscribe();
        for s in 400..410 {
            hub.emit(event(1, s));
        }
        for s in 400..410 {
            let got = stream.recv().await.expect("open").expect("no lag");
            assert_eq!(status_of(&got), Some(s));
        }
        assert_eq!(
            memory.lock().unwrap().len(),
            10,
            "the application's sink gets them too"
        );
        drop(hub);
        assert!(stream.recv().await.is_none(), "ends with the hub");
    }

    /// The documented policy: the lines never wait; a stream that falls
    /// more than the buffer behind reads one `Lagged(n)` for the `n`
    /// oldest events it lost, then the newest `buffer` events in order.
    #[tokio::test]
    async fn a_stream_that_falls_behind_reads_how_many_it_lost() {
        let hub = EventHub::with_buffer(EventSink::Memory(Default::default()), Vec::new(), 4);
        let mut slow = hub.subscribe();
        for s in 400..410 {
            hub.emit(event(1, s));
        }
        assert!(
            matches!(slow.recv().await, Some(Err(Lagged(6)))),
            "one notice for the 6 oldest events"
        );
        for s in 406..410 {
            let got = slow.recv().await.expect("open").expect("caught up");
            assert_eq!(status_of(&got), Some(s));
        }
        // Caught up: the next event arrives without a notice.
        hub.emit(event(2, 500));
        let got = slow.recv().await.expect("open").expect("no lag");
        assert_eq!((got.line, status_of(&got)), (2, Some(500)));
    }

    #[test]
    fn observers_see_every_event_whatever_the_streams_do() {
        let count = Arc::new(Count(Mutex::new(Vec::new())));
        let hub = EventHub::with_buffer(
            EventSink::Memory(Default::default()),
            vec![count.clone() as Arc<dyn EventObserver>],
            1,
        );
        let _unread = hub.subscribe();
        for line in 1..=5 {
            hub.emit(event(line, 403));
        }
        assert_eq!(*count.0.lock().unwrap(), [1, 2, 3, 4, 5]);
    }

    struct Collect(Arc<Mutex<Vec<u32>>>);
    impl actix::Actor for Collect {
        type Context = actix::Context<Self>;
    }
    impl actix::Handler<LineEvent> for Collect {
        type Result = ();
        fn handle(&mut self, msg: LineEvent, _: &mut Self::Context) {
            if let Ok(mut v) = self.0.lock() {
                v.push(msg.line);
            }
        }
    }

    #[actix_rt::test]
    async fn a_recipient_gets_every_event_until_its_actor_stops() {
        use actix::Actor;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let addr = Collect(seen.clone()).start();
        let hub = EventHub::with_buffer(EventSink::Memory(Default::default()), Vec::new(), 1);
        hub.subscribe_recipient(addr.clone().recipient());
        for line in 1..=20 {
            hub.emit(event(line, 403));
        }
        // A message sent after the events is handled after them.
        addr.send(event(99, 200)).await.expect("actor alive");
        let got = seen.lock().unwrap().clone();
        assert_eq!(got, (1..=20).chain([99]).collect::<Vec<_>>());
    }
}
