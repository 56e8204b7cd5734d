//! `GET /v1/events`: the fleet's events over a WebSocket, one JSON text
//! message per event, the same objects as `--events json`, in the order
//! the lines emitted them.
//!
//! `?replay=K` (at most [`REPLAY_MAX`]) first sends the last K events, so a
//! UI that reconnects misses nothing of what happened while it was away
//! (up to that many). Every event carries `seq`, its 1-based number in the
//! fleet's stream: a client that reconnects with a replay drops what it
//! already has. The replay and the live stream are taken under one lock,
//! so nothing falls between them and nothing comes twice.
//!
//! Overflow: a client that cannot keep up (more than [`CLIENT_BUFFER`]
//! events behind) gets `{"event":"lagged","missed":N}` in place of the N
//! events it lost, then the stream goes on; the fleet never waits for a
//! slow client.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use actix_web::{web, HttpRequest, HttpResponse};
use actix_ws::Message;
use futures_util::StreamExt;
use serde::Deserialize;
use sipfleet_actors::events::event_json;
use sipfleet_actors::fleet::Fleet;
use tokio::sync::broadcast;

use super::error::ApiError;
use super::handlers::ApiState;

/// The most events a replay can ask for (and the log keeps).
pub const REPLAY_MAX: usize = 1000;

/// Events a WebSocket client may be behind before it lags.
pub const CLIENT_BUFFER: usize = 4096;

/// One event, rendered once (with its `seq`) for every client.
#[derive(Clone)]
struct Numbered {
    json: Arc<str>,
}

/// The last [`REPLAY_MAX`] events and the live feed of the next ones.
pub struct EventLog {
    inner: Mutex<LogInner>,
    live: broadcast::Sender<Numbered>,
}

struct LogInner {
    recent: VecDeque<Numbered>,
    next_seq: u64,
}

impl EventLog {
    /// Starts recording the fleet's events (on the current actix system):
    /// `t_ms` counts from `start`, as in `--events json`.
    pub fn start(fleet: &Fleet, start: Instant) -> Arc<EventLog> {
        let (live, _) = broadcast::channel(CLIENT_BUFFER);
        let log = Arc::new(EventLog {
            inner: Mutex::new(LogInner {
                recent: VecDeque::with_capacity(REPLAY_MAX),
                next_seq: 1,
            }),
            live,
        });
        let mut stream = fleet.subscribe();
        let recorder = log.clone();
        actix_rt::spawn(async move {
            while let Some(item) = stream.recv().await {
                match item {
                    Ok(event) => {
                        let value = event_json(&event, start);
                        recorder.record(|seq| {
                            let mut value = value;
                            if let serde_json::Value::Object(map) = &mut value {
                                map.insert("seq".into(), seq.into());
                            }
                            value.to_string()
                        });
                    }
                    Err(lagged) => recorder.record(|seq| {
                        serde_json::json!({"event": "lagged", "missed": lagged.0, "seq": seq})
                            .to_string()
                    }),
                }
            }
        });
        log
    }

    fn record(&self, render: impl FnOnce(u64) -> String) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        let seq = inner.next_seq;
        inner.next_seq += 1;
        let event = Numbered {
            json: render(seq).into(),
        };
        if inner.recent.len() == REPLAY_MAX {
            inner.recent.pop_front();
        }
        inner.recent.push_back(event.clone());
        // No client listening is fine.
        let _ = self.live.send(event);
    }

    /// The last `k` events and the feed of every later one, together.
    fn follow(&self, k: usize) -> (Vec<Numbered>, broadcast::Receiver<Numbered>) {
        match self.inner.lock() {
            Ok(inner) => {
                let skip = inner.recent.len().saturating_sub(k);
                let replay = inner.recent.iter().skip(skip).cloned().collect();
                (replay, self.live.subscribe())
            }
            Err(_) => (Vec::new(), self.live.subscribe()),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    replay: Option<usize>,
    /// The token, for a browser (checked by the auth layer).
    #[serde(rename = "access_token")]
    _access_token: Option<String>,
}

/// Upgrades to a WebSocket and streams the events.
pub async fn websocket(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<ApiState>,
    query: web::Query<EventsQuery>,
) -> Result<HttpResponse, actix_web::Error> {
    let k = query.replay.unwrap_or(0);
    if k > REPLAY_MAX {
        return Err(ApiError::bad_field("replay", format!("at most {REPLAY_MAX} events")).into());
    }
    let (response, mut session, mut incoming) = actix_ws::handle(&req, body)?;
    let (replay, mut live) = state.events.follow(k);
    actix_rt::spawn(async move {
        for event in replay {
            if session.text(event.json.to_string()).await.is_err() {
                return;
            }
        }
        loop {
            tokio::select! {
                event = live.recv() => {
                    let text = match event {
                        Ok(event) => event.json.to_string(),
                        Err(broadcast::error::RecvError::Lagged(n)) => {
                            serde_json::json!({"event": "lagged", "missed": n}).to_string()
                        }
                        Err(broadcast::error::RecvError::Closed) => break,
                    };
                    if session.text(text).await.is_err() {
                        return;
                    }
                }
                message = incoming.next() => match message {
                    Some(Ok(Message::Ping(bytes))) => {
                        if session.pong(&bytes).await.is_err() {
                            return;
                        }
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => {}
                },
            }
        }
        let _ = session.close(None).await;
    });
    Ok(response)
}
