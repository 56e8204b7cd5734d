#![no_main]
//! `cargo fuzz run challenge`: see `sipfleet_fuzz::challenge` for what it checks.

libfuzzer_sys::fuzz_target!(|data: &[u8]| sipfleet_fuzz::challenge(data));
