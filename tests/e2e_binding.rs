//! End to end against the real lab, issue 12: the line reads its own binding
//! (not another device's on the same AOR), refreshes on Poly's
//! `expires.overlap` schedule, and a silent TCP primary in a NAPTR zone
//! gives way to the next SBC at its own Timer B.

mod e2e_support;

use std::time::Duration;

use e2e_support::{assert_near, kind, scenario, t_ms};
use sipfleet_lab::tools::Sipp;
use sipfleet_lab::{LabConfig, Mode, Transport as LabTransport};

const USER: &str = "1001";

/// A seed whose SRV draw orders SBC 1 before SBC 2 in the mixed zone.
const SEED_SBC1_FIRST: u64 = 1;

/// Another device of the same user holds a 3600 s binding at SBC 1 (SIPp,
/// `lab/sipp/register_other_device.xml`). The line asks for 20 s: it must
/// read its own 20 s from the 2xx, not the other device's ~3600 s, and
/// refresh every 10 s (half of 20, below the 60 s overlap). Before the fix
/// the line took the first Contact with its user part and never refreshed.
#[test]
fn another_devices_long_binding_does_not_set_the_lines_refresh() {
    let mut h = scenario!()
        .line(USER)
        .config("voIpProt.server.1.expires=\"20\"\n")
        .start();
    let mut other = Sipp::for_lab(
        &h.lab,
        "register_other_device.xml",
        1,
        LabTransport::Udp,
        USER,
    );
    other.keys = vec![("contact".into(), "127.0.0.1:5999".into())];
    let run = other.run().expect("sipp runs");
    assert!(run.success(), "the other device registers: {}", run.errors);
    h.run(async |h, fleet| {
        // Two refreshes answered (the registration and two more
        // `registered`): stopping as the second one leaves would race its
        // 200 OK.
        h.wait_event("two refreshes answered", Duration::from_secs(25), |_| {
            h.events()
                .iter()
                .filter(|e| kind(e) == "registered")
                .count()
                >= 3
        })
        .await;
        fleet.shutdown(Duration::from_secs(3)).await;
    });
    let story = h.story();
    let evs = h.events();
    let registered: Vec<_> = evs.iter().filter(|e| kind(e) == "registered").collect();
    assert!(registered.len() >= 3, "{story}");
    for r in &registered {
        assert_eq!(r["expires"], 20, "the line's own grant\n{story}");
    }
    let refresh_at: Vec<i64> = evs
        .iter()
        .filter(|e| kind(e) == "registering" && e["purpose"] == "refresh")
        .map(|e| t_ms(e) as i64)
        .collect();
    let first = t_ms(registered[0]) as i64;
    assert_near("first refresh", refresh_at[0] - first, 10_000, 300, &story);
    assert_near(
        "second refresh",
        refresh_at[1] - refresh_at[0],
        10_000,
        300,
        &story,
    );
    eprintln!(
        "measured: granted {} s (asked 20) beside a 3600 s binding; refreshes {} ms and {} ms apart",
        registered[0]["expires"],
        refresh_at[0] - first,
        refresh_at[1] - refresh_at[0]
    );
    h.finish();
}

/// The guide's mixed-transport zone: NAPTR order 50 is TCP to SBCs 1 and 2.
/// SBC 1 takes the connection and never answers (SIGSTOP). With default
/// settings (no `tcpFastFailover`) the REGISTER waits its own Timer B
/// (32 s) on SBC 1, which fails that route with `reason=timeout`, and the
/// walk goes on to SBC 2 with the same Call-ID: registered within
/// Timer B + 1 s. Before the fix the walk ended at SBC 1, backed off and
/// started at SBC 1 again, forever. `authOptimizedInFailover=1`, as in the
/// guide's own TCP example: with the default 0 the challenge of SBC 2 sends
/// the authenticated request back to the primary ("which may add a
/// delay": one more Timer B, see `registration_failover.rs`).
#[test]
fn a_silent_tcp_primary_gives_way_at_its_timer_b() {
    let mut h = scenario!()
        .lab(LabConfig::mixed_transport())
        .mode(1, Mode::Silent)
        .line("1005")
        .transport("DNSnaptr")
        .config("voIpProt.SIP.authOptimizedInFailover=\"1\"\n")
        // SBCs 1 and 2 share SRV priority 100: the seed fixes the weighted
        // draw so that SBC 1 (the silent one) comes first.
        .options(|o| o.seed = Some(SEED_SBC1_FIRST))
        .start();
    h.run(async |h, fleet| {
        h.wait_event("registered", Duration::from_secs(40), |e| {
            kind(e) == "registered"
        })
        .await;
        fleet.shutdown(Duration::from_secs(3)).await;
    });
    h.lab.set_mode(1, Mode::Ok).unwrap();
    let story = h.story();
    let evs = h.events();
    let first_send = evs
        .iter()
        .find(|e| kind(e) == "registering")
        .expect("a REGISTER");
    assert_eq!(h.sbc_of(first_send), Some(1), "{story}");
    assert_eq!(first_send["route"]["transport"], "tcp", "{story}");
    let failed = evs
        .iter()
        .find(|e| kind(e) == "route_failed")
        .expect("SBC 1 fails");
    assert_eq!(failed["reason"], "timeout", "{story}");
    assert_eq!(h.sbc_of(failed), Some(1), "{story}");
    let registered = evs.iter().find(|e| kind(e) == "registered").unwrap();
    assert_eq!(h.sbc_of(registered), Some(2), "{story}");
    assert_eq!(registered["route"]["transport"], "tcp", "{story}");
    let waited = t_ms(registered) as i64 - t_ms(first_send) as i64;
    assert!(
        (32_000..=33_000).contains(&waited),
        "registered on SBC 2 {waited} ms after the first REGISTER\n{story}"
    );
    assert!(evs.iter().all(|e| kind(e) != "backoff"), "{story}");
    eprintln!(
        "measured: SBC 1 timed out {} ms after the first REGISTER; registered on SBC 2 at {waited} ms",
        t_ms(failed) as i64 - t_ms(first_send) as i64
    );
    assert_eq!(registered["call_id"], first_send["call_id"], "{story}");
    h.finish();
}

/// Records every WARN message with its rendered key-values.
struct Warnings(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl slog::Drain for Warnings {
    type Ok = ();
    type Err = slog::Never;
    fn log(&self, r: &slog::Record, kv: &slog::OwnedKVList) -> Result<(), slog::Never> {
        if r.level() != slog::Level::Warning {
            return Ok(());
        }
        struct Text(String);
        impl slog::Serializer for Text {
            fn emit_arguments(
                &mut self,
                key: slog::Key,
                val: &std::fmt::Arguments,
            ) -> slog::Result {
                self.0.push_str(&format!(" {key}={val}"));
                Ok(())
            }
        }
        let mut t = Text(format!("{}", r.msg()));
        let _ = slog::KV::serialize(&r.kv(), r, &mut t);
        let _ = slog::KV::serialize(kv, r, &mut t);
        if let Ok(mut v) = self.0.lock() {
            v.push(t.0);
        }
        Ok(())
    }
}

/// A wrong password: `registration_failed status=401
/// reason=credentials_rejected` and one WARN per back-off round naming the
/// user, never the password. Before, the failure was only an event.
#[test]
fn a_wrong_password_is_a_warning_without_the_password() {
    let warnings = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = slog::Logger::root(Warnings(warnings.clone()), slog::o!());
    let mut h = scenario!()
        .line(USER)
        .config("reg.1.auth.password=\"not-the-password\"\n")
        .options(|o| o.log = log)
        .start();
    let failed = h.run_until_first("registration_failed", Duration::from_secs(5));
    let story = h.story();
    assert_eq!(failed["status"], 401, "{story}");
    assert_eq!(failed["reason"], "credentials_rejected", "{story}");
    let warnings = warnings.lock().unwrap().clone();
    let refused: Vec<&String> = warnings
        .iter()
        .filter(|w| w.contains("rejected the credentials"))
        .collect();
    assert_eq!(refused.len(), 1, "{warnings:#?}");
    assert!(refused[0].contains("user=1001"), "{}", refused[0]);
    assert!(
        warnings.iter().all(|w| !w.contains("not-the-password")),
        "{warnings:#?}"
    );
    h.finish();
}
