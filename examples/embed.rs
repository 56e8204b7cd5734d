//! Embedding sipfleet in an application (a PBX gateway, a softphone backend):
//! load Poly configuration files, start the fleet, watch its events, ask each
//! line's status, and un-register everything on the way out.
//!
//! ```sh
//! scripts/lab up
//! cargo run --example embed -- examples/lab-demo.cfg 20
//! ```

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sipfleet::actors::events::{event_json, EventSink};
use sipfleet::actors::fleet::{Fleet, FleetOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: embed CONFIG [SECONDS]")?;
    let seconds: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(20);
    let config = sipfleet::config_files::load(&[path]).map_err(|e| e.to_string())?;

    // Events land in memory; an application would forward them to its own
    // bus, metrics or UI.
    let store = Arc::new(Mutex::new(Vec::new()));
    let options = FleetOptions {
        events: EventSink::Memory(store.clone()),
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
        let mut shown = 0;
        while start.elapsed() < Duration::from_secs(seconds) {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let events = store.lock().map(|v| v.clone()).unwrap_or_default();
            for event in &events[shown..] {
                println!("{}", event_json(event, start));
            }
            shown = events.len();
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
