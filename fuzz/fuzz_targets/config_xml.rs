#![no_main]
//! `cargo fuzz run config_xml`: see `sipfleet_fuzz::config_xml` for what it checks.

libfuzzer_sys::fuzz_target!(|data: &[u8]| sipfleet_fuzz::config_xml(data));
