//! Loading a fleet configuration from files and the environment.
//!
//! `sipfleet_protocol::config` is pure: it parses text and applies the guide's
//! ranges and scoping. This module does the I/O around it:
//!
//! 1. each file, in the order given (later files override earlier ones), read
//!    as Poly XML when it starts with `<`, else as the guide's `key="value"` lines;
//! 2. then environment overrides, collected with the `config` crate's
//!    [`config::Environment`] source.
//!
//! # Environment scheme
//!
//! A variable `SIPFLEET__<key>` sets `<key>`, where `__` stands for `.` and case
//! does not matter (the `config` crate lower-cases names; parameter keys match
//! case-insensitively):
//!
//! ```text
//! SIPFLEET__VOIPPROT__SERVER__1__ADDRESS=core.example.com   # voIpProt.server.1.address
//! SIPFLEET__REG__2__SERVER__1__RETRYMAXCOUNT=5              # reg.2.server.1.retryMaxCount
//! ```
//!
//! Environment values are taken verbatim (no quotes). Each appears in the
//! output as `environment SIPFLEET__...`.
//!
//! Why the files are not layered by the `config` crate too: it merges values
//! into nested tables and keeps only one origin string per value, losing the
//! line numbers that every error and every "where did this come from" answer
//! needs; layering here is "later assignment wins" over the parsed lines.

use std::path::Path;

use config::Source;
use sipfleet_actors::fleet::ControlError;
use sipfleet_protocol::config::{
    parse_auto, ConfigBuilder, ConfigError, ConfigErrors, FleetConfig, LineConfig, Location,
    ParsedSource, RawParam,
};

/// Prefix of environment overrides.
pub const ENV_PREFIX: &str = "SIPFLEET";
/// Stands for `.` in environment variable names, and follows the prefix.
pub const ENV_SEPARATOR: &str = "__";

/// Environment variables as a name -> value map (the `config` crate's type),
/// for tests and embedders that do not want the process environment.
pub type EnvMap = config::Map<String, String>;

/// Reads `paths` in order, then the process environment, and builds the fleet.
pub fn load<P: AsRef<Path>>(paths: &[P]) -> Result<FleetConfig, ConfigErrors> {
    load_with_env(paths, None)
}

/// Like [`load`], with `env` standing in for the process environment when
/// given (`Some(empty map)` disables environment overrides).
pub fn load_with_env<P: AsRef<Path>>(
    paths: &[P],
    env: Option<EnvMap>,
) -> Result<FleetConfig, ConfigErrors> {
    let mut builder = ConfigBuilder::new();
    for path in paths {
        builder.add_source(read_file(path.as_ref()));
    }
    match env_params(env) {
        Ok(params) => builder.add_params(params),
        Err(e) => builder.add_error(e),
    }
    builder.build()
}

/// The one line that `text` (a `reg.x` block, `key="value"` or XML)
/// configures, built over the files of `paths` and the environment as
/// [`load`] builds them: the line inherits their fleet-wide keys
/// (`voIpProt.server.*`, `voIpProt.SIP.*`, ...), and its own keys override
/// them. For `Fleet::add_line`, where `Fleet::add_line_text` builds the
/// text on its own. The files' other lines are not returned.
pub fn load_line<P: AsRef<Path>>(paths: &[P], text: &str) -> Result<LineConfig, ControlError> {
    load_line_with_env(paths, text, None)
}

/// [`load_line`] with `env` standing in for the process environment (see
/// [`load_with_env`]).
pub fn load_line_with_env<P: AsRef<Path>>(
    paths: &[P],
    text: &str,
    env: Option<EnvMap>,
) -> Result<LineConfig, ControlError> {
    let added = parse_auto(text, "added line");
    let mut indexes: Vec<u32> = added
        .params
        .iter()
        .filter_map(|p| line_index(&p.key))
        .collect();
    indexes.sort_unstable();
    indexes.dedup();
    let [index] = indexes[..] else {
        return Err(ControlError::LineCount {
            found: indexes.len(),
        });
    };
    let mut builder = ConfigBuilder::new();
    for path in paths {
        builder.add_source(read_file(path.as_ref()));
    }
    match env_params(env) {
        Ok(params) => builder.add_params(params),
        Err(e) => builder.add_error(e),
    }
    builder.add_source(added);
    let config = builder.build()?;
    config
        .line(index)
        .cloned()
        .ok_or(ControlError::LineCount { found: 0 })
}

/// `x` of a `reg.x.*` key.
fn line_index(key: &str) -> Option<u32> {
    let rest = key
        .get(..4)?
        .eq_ignore_ascii_case("reg.")
        .then(|| &key[4..])?;
    rest.split('.').next()?.parse().ok()
}

/// Reads and parses one file; an unreadable file is an error in the result.
pub fn read_file(path: &Path) -> ParsedSource {
    let name = path.display().to_string();
    match std::fs::read(path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => parse_auto(&text, &name),
            Err(e) => ParsedSource {
                params: Vec::new(),
                errors: vec![ConfigError::Unreadable {
                    path: name,
                    reason: format!("not UTF-8 text: {e}"),
                }],
            },
        },
        Err(e) => ParsedSource {
            params: Vec::new(),
            errors: vec![ConfigError::Unreadable {
                path: name,
                reason: e.to_string(),
            }],
        },
    }
}

/// The `SIPFLEET__*` overrides from `env` (or the process environment), in
/// name order so that results do not depend on hash order.
pub fn env_params(env: Option<EnvMap>) -> Result<Vec<RawParam>, ConfigError> {
    let source = config::Environment::with_prefix(ENV_PREFIX)
        .prefix_separator(ENV_SEPARATOR)
        .separator(ENV_SEPARATOR)
        .source(env);
    let map = source.collect().map_err(|e| ConfigError::Syntax {
        location: Location::Env {
            var: format!("{ENV_PREFIX}{ENV_SEPARATOR}*"),
        },
        message: e.to_string(),
    })?;
    let mut params: Vec<RawParam> = map
        .into_iter()
        .map(|(key, value)| {
            let var = format!(
                "{ENV_PREFIX}{ENV_SEPARATOR}{}",
                key.to_ascii_uppercase().replace('.', ENV_SEPARATOR)
            );
            let value = match value.into_string() {
                Ok(v) => v,
                Err(e) => {
                    return Err(ConfigError::Syntax {
                        location: Location::Env { var: var.clone() },
                        message: e.to_string(),
                    })
                }
            };
            Ok(RawParam {
                key,
                value,
                location: Location::Env { var },
            })
        })
        .collect::<Result<_, _>>()?;
    params.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sipfleet_protocol::config::ValueSource;
    use std::io::Write;

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    fn env(pairs: &[(&str, &str)]) -> Option<EnvMap> {
        Some(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    const BASE: &str = "reg.1.address=\"1001\"\nvoIpProt.server.1.address=\"core.example.com\"\nvoIpProt.server.1.retryMaxCount=\"3\"\n";

    #[test]
    fn environment_overrides_files() {
        let f = file(BASE);
        let c = load_with_env(
            &[f.path()],
            env(&[
                ("SIPFLEET__VOIPPROT__SERVER__1__RETRYMAXCOUNT", "7"),
                ("SIPFLEET__reg__1__displayName", "Front desk"),
                ("OTHER__VOIPPROT__SERVER__1__RETRYMAXCOUNT", "9"),
            ]),
        )
        .unwrap();
        let line = &c.lines[0];
        assert_eq!(line.registration.retry_max_count.get(), 7);
        match &line.registration.retry_max_count.source {
            ValueSource::Global(s) => {
                assert_eq!(s.key, "voIpProt.server.1.retryMaxCount");
                assert_eq!(
                    s.location,
                    Location::Env {
                        var: "SIPFLEET__VOIPPROT__SERVER__1__RETRYMAXCOUNT".into()
                    }
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(*line.display_name, "Front desk");
    }

    #[test]
    fn bad_environment_values_are_errors_naming_the_variable() {
        let f = file(BASE);
        let e = load_with_env(
            &[f.path()],
            env(&[("SIPFLEET__VOIPPROT__SIP__LINESEIZE__RETRIES", "50")]),
        )
        .unwrap_err();
        assert_eq!(
            e.errors[0].to_string(),
            "environment SIPFLEET__VOIPPROT__SIP__LINESEIZE__RETRIES: voIpProt.SIP.lineSeize.retries=\"50\" is not allowed; allowed: 3 to 10"
        );
    }

    #[test]
    fn files_layer_in_order_and_formats_mix() {
        let a = file(BASE);
        let b = file(
            "<polycomConfig>\n<voIpProt voIpProt.server.1.retryMaxCount=\"4\"/>\n</polycomConfig>\n",
        );
        let c = load_with_env(&[a.path(), b.path()], env(&[])).unwrap();
        let rmc = &c.lines[0].registration.retry_max_count;
        assert_eq!(rmc.get(), 4);
        assert!(rmc.source.to_string().ends_with(":2"), "{}", rmc.source);
        let c = load_with_env(&[b.path(), a.path()], env(&[])).unwrap();
        assert_eq!(c.lines[0].registration.retry_max_count.get(), 3);
    }

    #[test]
    fn an_added_line_inherits_the_files_fleet_wide_keys_and_overrides_them() {
        let f = file(BASE);
        let line = load_line_with_env(
            &[f.path()],
            "reg.7.address=\"1007\"\nreg.7.auth.password=\"pw\"\nreg.7.server.1.retryMaxCount=\"5\"\n",
            env(&[]),
        )
        .unwrap();
        assert_eq!(line.index, 7);
        assert_eq!(line.servers[0].address.value, "core.example.com");
        assert_eq!(line.registration.retry_max_count.get(), 5);
        // Not one line: an error that says how many.
        for (text, found) in [
            ("voIpProt.server.1.retryMaxCount=\"4\"\n", 0),
            ("reg.7.address=\"1007\"\nreg.8.address=\"1008\"\n", 2),
            ("reg.7.auth.password=\"pw\"\n", 0),
        ] {
            match load_line_with_env(&[f.path()], text, env(&[])) {
                Err(ControlError::LineCount { found: n }) => assert_eq!(n, found, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
        // The text's own errors come with the files'.
        match load_line_with_env(
            &[f.path()],
            "reg.7.address=\"1007\"\nreg.7.server.1.port=\"99999\"\n",
            env(&[]),
        ) {
            Err(ControlError::Config(e)) => assert!(e.to_string().contains("added line"), "{e}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(line_index("REG.12.address"), Some(12));
        assert_eq!(line_index("voIpProt.server.1.address"), None);
    }

    #[test]
    fn missing_files_are_reported_with_the_other_errors() {
        let a = file("voIpProt.SIP.tcpFastFailover=\"2\"\n");
        let e = load_with_env(&[a.path(), Path::new("/nonexistent/x.cfg")], env(&[])).unwrap_err();
        assert_eq!(e.errors.len(), 2, "{e}");
        assert!(e.errors[1]
            .to_string()
            .starts_with("/nonexistent/x.cfg: cannot read:"));
    }
}
