//! The control API of `sipfleet run --listen ADDR [--token-file F]`: HTTP
//! with JSON bodies, for the programs that drive a fleet (a softphone's UI, a
//! PBX gateway's provisioning, a health check).
//!
//! | method and path | does |
//! |---|---|
//! | `GET /` | the status page (lines live from the event stream, calls) |
//! | `GET /healthz` | 200 while the process serves |
//! | `GET /readyz[?ratio=R]` | 200 when at least R (default 1) of the configured lines are registered, 503 otherwise |
//! | `GET /v1/lines` | every line's state, registrar, primary, calls |
//! | `GET /v1/lines/{n}` | one line (`reg.n`) |
//! | `POST /v1/lines/{n}/calls` `{"to": URI}` | places a call; 201 with its `call_id` |
//! | `GET /v1/routes?name=N[&transport=T][&port=P]` | what `sipfleet routes N --json` prints, from the fleet's resolver |
//!
//! Security: the listener binds a loopback address unless `--token-file`
//! is given; with a token every request but `/healthz` needs
//! `Authorization: Bearer TOKEN` (compared in constant time) and gets 401
//! without it. Bodies are bounded ([`MAX_BODY`]). Every error is JSON,
//! `{"error": "...", "field": "..."}` (`field` when one is at fault), with a
//! 4xx status; nothing a client sends can panic the process.
//!
//! actix-web, because the fleet already runs on actix: the server runs one
//! worker on its own arbiter and talks to the lines by actor messages.

mod auth;
mod error;
mod events;
mod handlers;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use actix_web::dev::ServerHandle;
use actix_web::{web, App, HttpServer};

use handlers::ApiState;

/// Seconds the open connections get when `run` stops.
const SHUTDOWN_GRACE_S: u64 = 1;

/// The largest request body accepted, in bytes.
pub const MAX_BODY: usize = 64 * 1024;

/// Why the listener cannot start: each is a usage error of `run` (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error(
        "--listen {0} is not a loopback address: give --token-file too, so that \
         nobody else on the network can drive the fleet"
    )]
    NeedsToken(SocketAddr),
    #[error("--token-file {path}: {source}")]
    TokenFile {
        path: String,
        source: std::io::Error,
    },
    #[error("--token-file {0}: the token must be at least 16 characters (whitespace around it is ignored)")]
    ShortToken(String),
    #[error("--listen {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// What the listener is asked for: where, and the token if any.
pub struct ListenConfig {
    pub addr: SocketAddr,
    pub token: Option<String>,
}

impl ListenConfig {
    /// Reads the token file, if any, and refuses a non-loopback address
    /// without one.
    pub fn new(addr: SocketAddr, token_file: Option<&Path>) -> Result<Self, ListenError> {
        let token = match token_file {
            None => None,
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(|source| ListenError::TokenFile {
                        path: path.display().to_string(),
                        source,
                    })?;
                let token = text.trim();
                if token.chars().count() < 16 {
                    return Err(ListenError::ShortToken(path.display().to_string()));
                }
                Some(token.to_string())
            }
        };
        if token.is_none() && !addr.ip().is_loopback() {
            return Err(ListenError::NeedsToken(addr));
        }
        Ok(ListenConfig { addr, token })
    }
}

/// A running listener; [`Listener::stop`] ends it.
pub struct Listener {
    handle: ServerHandle,
    pub addr: SocketAddr,
}

impl Listener {
    /// Binds and starts serving on the current actix system.
    pub fn start(config: ListenConfig, state: ApiState) -> Result<Listener, ListenError> {
        let state = web::Data::new(state);
        let token = Arc::new(config.token);
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(error::json_config())
                .app_data(error::query_config())
                .app_data(error::path_config())
                .app_data(web::PayloadConfig::new(MAX_BODY))
                .wrap(auth::BearerToken::new(token.clone()))
                .configure(handlers::routes)
                .default_service(web::to(error::not_found))
        })
        .workers(1)
        .disable_signals()
        // At shutdown, open requests get this long; a WebSocket client
        // following the events would otherwise hold the exit forever.
        .shutdown_timeout(SHUTDOWN_GRACE_S)
        .bind(config.addr)
        .map_err(|source| ListenError::Bind {
            addr: config.addr,
            source,
        })?;
        let addr = server.addrs().first().copied().unwrap_or(config.addr);
        let server = server.run();
        let handle = server.handle();
        actix_rt::spawn(server);
        Ok(Listener { handle, addr })
    }

    /// Stops accepting and ends the open requests.
    pub async fn stop(&self) {
        self.handle.stop(true).await;
    }
}

pub use events::EventLog;
pub use handlers::ApiState as State;
