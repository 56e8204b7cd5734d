//! Embedding sipfleet in an application (a PBX gateway, a softphone backend):
//! load Poly configuration files, start the fleet, follow its events on a
//! stream, ask each line's status, and un-register everything on the way
//! out. `examples/gateway.rs` goes on with lines added and removed at run
//! time, calls by Call-ID and metrics.
//!
//! ```sh
//! scripts/lab up
//! cargo run --example embed -- examples/lab-demo.cfg 20
//! ```

use std::time::{Duration, Instant};

use sipfleet::actors::events::{event_json, EventSink};
use sipfleet::actors::fleet::{Fleet, FleetOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: embed CONFIG [SECONDS]")?;
    let seconds: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(20);
    let config = sipfleet::config_files::load(&[path]).map_err(|e| e.to_string())?;

    let options = FleetOptions {
        // The fleet's own sink: slog records here (discarded); the
        // application reads the events from its subscription below.
        events: EventSink::Log(slog::Logger::root(slog::Discard, slog::o!())),
        log: slog::Logger::root(slog::Discard, slog::o!()),
        ca_file: None,
        dns_servers: Vec::new(),
        seed: None,
        user_agent: "my-gateway/1.0 (sipfleet)".into(),
        sip_port: 0,
        trace: None,
    };
    let start = Instant::now();
    actix::System::new().block_on(async move {
        let fleet = Fleet::start(&config, options)?;
        // Every event of every line, in order, as it happens; an
        // application forwards them to its own bus, metrics or UI. A
        // subscriber that falls more than `hub::EVENT_BUFFER` events behind
        // reads `Err(Lagged(n))` for the events it lost.
        let mut events = fleet.subscribe();
        let until = tokio::time::Instant::now() + Duration::from_secs(seconds);
        while let Ok(Some(item)) = tokio::time::timeout_at(until, events.recv()).await {
            match item {
                Ok(event) => println!("{}", event_json(&event, start)),
                Err(lagged) => eprintln!("{lagged}"),
            }
        }
        for status in fleet.status().await {
            println!(
                "line {}: {:?} via {}",
                status.index,
                status.phase,
                status
                    .registered_route
                    .map(|r| r.to_string())
                    .unwrap_or_else(|| "-".into())
            );
        }
        fleet.shutdown(Duration::from_secs(5)).await;
        Ok::<_, Box<dyn std::error::Error>>(())
    })
}
