#![no_main]
//! `cargo fuzz run framing`: see `sipfleet_fuzz::framing` for what it checks.

libfuzzer_sys::fuzz_target!(|data: &[u8]| sipfleet_fuzz::framing(data));
