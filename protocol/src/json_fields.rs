//! Serializers for fields of the JSON event stream (README, "Event stream")
//! whose Rust type is not the JSON one: durations are whole milliseconds
//! (`*_ms`) or whole seconds (`expires`), truncated; a NOTIFY body is text.
//! Used with `#[serde(serialize_with = ...)]` by the events' derived
//! `Serialize`.

use std::time::Duration;

use serde::Serializer;

/// Whole milliseconds (`wait_ms`, `retry_in_ms`, `ttl_ms`).
pub fn duration_ms<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

/// Whole milliseconds, or `null`.
pub fn opt_duration_ms<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => duration_ms(d, s),
        None => s.serialize_none(),
    }
}

/// Whole seconds (`expires`).
pub fn duration_secs<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_secs())
}

/// A body as text, invalid UTF-8 replaced by U+FFFD.
pub fn lossy_utf8<S: Serializer>(body: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&String::from_utf8_lossy(body))
}
