#![no_main]
//! `cargo fuzz run sdp`: see `sipfleet_fuzz::sdp` for what it checks.

libfuzzer_sys::fuzz_target!(|data: &[u8]| sipfleet_fuzz::sdp(data));
