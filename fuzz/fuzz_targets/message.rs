#![no_main]
//! `cargo fuzz run message`: see `sipfleet_fuzz::message` for what it checks.

libfuzzer_sys::fuzz_target!(|data: &[u8]| sipfleet_fuzz::message(data));
