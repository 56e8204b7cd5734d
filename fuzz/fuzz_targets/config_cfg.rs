#![no_main]
//! `cargo fuzz run config_cfg`: see `sipfleet_fuzz::config_cfg` for what it checks.

libfuzzer_sys::fuzz_target!(|data: &[u8]| sipfleet_fuzz::config_cfg(data));
