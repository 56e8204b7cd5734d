//! A gateway's use of the control API: start the fleet, add a line at run
//! time from a `reg.x` block, wait until it is registered, place a call on
//! it and address that call by its Call-ID, read the metrics, remove the
//! line (it un-REGISTERs) and shut down. Each step is the one call the
//! HTTP API's endpoint makes.
//!
//! ```sh
//! scripts/lab up
//! cargo run --example gateway -- examples/lab-demo.cfg
//! ```
//!
//! Line 3 is lab user 1003 on the lab's domain; the call goes to
//! `sip:9001@lab.sipfleet.test`, which the lab's SBCs answer themselves.

use std::time::{Duration, Instant};

use sipfleet::actors::events::{event_text, EventSink};
use sipfleet::actors::fleet::{Fleet, FleetOptions};

const NEW_LINE: &str = r#"
reg.3.address="1003"
reg.3.auth.password="pw1003"
reg.3.server.1.address="lab.sipfleet.test"
reg.3.server.1.port="0"
reg.3.server.1.transport="UDPOnly"
"#;

const CALLEE: &str = "sip:9001@lab.sipfleet.test";

/// Polls `ready` (what `GET /readyz` answers) until it holds.
async fn wait_ready(fleet: &Fleet, within: Duration) -> Result<(), String> {
    let until = Instant::now() + within;
    while !fleet.ready(1.0) {
        if Instant::now() >= until {
            return Err(format!("not every line registered within {within:?}"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: gateway CONFIG (e.g. examples/lab-demo.cfg)")?;
    let config = sipfleet::config_files::load(&[path]).map_err(|e| e.to_string())?;
    let options = FleetOptions {
        events: EventSink::Log(slog::Logger::root(slog::Discard, slog::o!())),
        log: slog::Logger::root(slog::Discard, slog::o!()),
        ca_file: None,
        dns_servers: Vec::new(),
        seed: None,
        user_agent: "example-gateway/1.0 (sipfleet)".into(),
        sip_port: 0,
        trace: None,
    };
    let start = Instant::now();
    actix::System::new().block_on(async move {
        let fleet = Fleet::start(&config, options)?;
        // The event stream, printed as `--events text` does, on a task of
        // its own (what the WebSocket endpoint will forward).
        let mut events = fleet.subscribe();
        actix::spawn(async move {
            while let Some(item) = events.recv().await {
                match item {
                    Ok(event) => println!("{}", event_text(&event, start)),
                    Err(lagged) => eprintln!("{lagged}"),
                }
            }
        });
        wait_ready(&fleet, Duration::from_secs(10)).await?;

        // POST /v1/lines
        let line = fleet.add_line_text(NEW_LINE)?;
        println!("added line {line}");
        wait_ready(&fleet, Duration::from_secs(10)).await?;
        // GET /v1/lines/{n}
        let detail = fleet.line_detail(line).await?;
        println!(
            "line {line}: {} on {}, expires {:?}",
            detail.view.state.as_str(),
            detail
                .status
                .registered_route
                .map(|r| r.to_string())
                .unwrap_or_else(|| "-".into()),
            detail.view.expires
        );

        // POST /v1/lines/{n}/calls, then POST /v1/calls/{id}/hold|resume|hangup
        let call = fleet.place_call(line, CALLEE).await?;
        println!("placed call {call}");
        tokio::time::sleep(Duration::from_secs(2)).await;
        for c in fleet.calls().await {
            println!(
                "call {} on line {}: {:?} with {} via {}",
                c.call.call_id, c.line, c.call.state, c.call.remote, c.call.route
            );
        }
        fleet.hold(&call).await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        fleet.resume(&call).await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        fleet.hangup(&call).await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        // An ended call is an error that names it.
        if let Err(e) = fleet.hangup(&call).await {
            println!("hang up again: {e}");
        }

        // GET /metrics (a few lines of it)
        let metrics = fleet.metrics_text().await;
        for l in metrics.lines().filter(|l| {
            l.starts_with("sipfleet_lines{")
                || l.starts_with("sipfleet_calls_ended_total")
                || l.starts_with("sipfleet_registration_latency_seconds_count")
        }) {
            println!("{l}");
        }

        // DELETE /v1/lines/{n}: hangs up, un-REGISTERs (Expires: 0), stops.
        fleet.remove_line(line, Duration::from_secs(5)).await?;
        println!("removed line {line}; lines now {:?}", fleet.line_indexes());
        fleet.shutdown(Duration::from_secs(5)).await;
        Ok::<_, Box<dyn std::error::Error>>(())
    })
}
