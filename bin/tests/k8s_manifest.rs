//! `deploy/k8s/load-job.yaml`, checked offline (no cluster, no
//! kubeconform in Debian): every document parses, and the Indexed Job has
//! what sharding a load over pods needs: completions == parallelism == the
//! `--shards` its pods run, the summary named by JOB_COMPLETION_INDEX on a
//! mounted volume, the ConfigMap it mounts defined beside it, and a base
//! configuration that `sipfleet config check` accepts.

use std::collections::BTreeMap;
use std::process::Command;

use serde::Deserialize;
use serde_norway::Value;

const MANIFEST: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/k8s/load-job.yaml");

fn documents() -> Vec<Value> {
    let text = std::fs::read_to_string(MANIFEST).expect("read the manifest");
    serde_norway::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).expect("a YAML document"))
        .filter(|v| !v.is_null())
        .collect()
}

/// `v` at a dotted path of map keys (keys without dots).
fn at<'a>(v: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(v, |v, key| {
        v.get(key)
            .unwrap_or_else(|| panic!("{path}: no {key:?} in {v:?}"))
    })
}

fn str_at<'a>(v: &'a Value, path: &str) -> &'a str {
    at(v, path)
        .as_str()
        .unwrap_or_else(|| panic!("{path} is not a string"))
}

fn u64_at(v: &Value, path: &str) -> u64 {
    at(v, path)
        .as_u64()
        .unwrap_or_else(|| panic!("{path} is not a number"))
}

fn by_kind(docs: &[Value], kind: &str) -> Vec<Value> {
    docs.iter()
        .filter(|d| d.get("kind").and_then(Value::as_str) == Some(kind))
        .cloned()
        .collect()
}

/// The value of `--flag` in the container's command line, whether written
/// `--flag value` or `--flag=value`.
fn flag<'a>(words: &'a [String], name: &str) -> Option<&'a str> {
    words.iter().enumerate().find_map(|(i, w)| {
        if w == name {
            words.get(i + 1).map(String::as_str)
        } else {
            w.strip_prefix(name).and_then(|rest| rest.strip_prefix('='))
        }
    })
}

/// The container's command line as words (the shell script's lines joined,
/// continuations removed, quotes stripped).
fn words(container: &Value) -> Vec<String> {
    let mut text = String::new();
    for key in ["command", "args"] {
        if let Some(list) = container.get(key).and_then(Value::as_sequence) {
            for item in list {
                text.push_str(item.as_str().expect("command and args are strings"));
                text.push(' ');
            }
        }
    }
    text.replace("\\\n", " ")
        .split_whitespace()
        .map(|w| w.trim_matches(|c| c == '"' || c == '\'').to_string())
        .collect()
}

#[test]
fn every_document_parses_and_is_a_known_kind() {
    let docs = documents();
    assert_eq!(docs.len(), 2);
    let kinds: Vec<(&str, &str)> = docs
        .iter()
        .map(|d| (str_at(d, "apiVersion"), str_at(d, "kind")))
        .collect();
    assert_eq!(kinds, [("v1", "ConfigMap"), ("batch/v1", "Job")]);
    for d in &docs {
        assert!(!str_at(d, "metadata.name").is_empty());
    }
}

#[test]
fn the_job_is_indexed_with_one_pod_per_shard() {
    let docs = documents();
    let job = &by_kind(&docs, "Job")[0];
    assert_eq!(str_at(job, "apiVersion"), "batch/v1");
    assert_eq!(str_at(job, "spec.completionMode"), "Indexed");
    let completions = u64_at(job, "spec.completions");
    assert_eq!(u64_at(job, "spec.parallelism"), completions);
    assert_eq!(u64_at(job, "spec.backoffLimit"), 0);
    assert_eq!(str_at(job, "spec.template.spec.restartPolicy"), "Never");

    let containers = at(job, "spec.template.spec.containers")
        .as_sequence()
        .expect("containers");
    assert_eq!(containers.len(), 1);
    let c = &containers[0];
    assert!(!str_at(c, "image").is_empty(), "image set");
    for path in [
        "resources.requests.cpu",
        "resources.requests.memory",
        "resources.limits.cpu",
        "resources.limits.memory",
    ] {
        at(c, path);
    }

    let words = words(c);
    assert!(words.iter().any(|w| w == "sipfleet"), "{words:?}");
    assert!(words.iter().any(|w| w == "load"), "{words:?}");
    let shards: u64 = flag(&words, "--shards")
        .expect("--shards")
        .parse()
        .expect("--shards N");
    assert_eq!(shards, completions, "one pod per shard");
    assert!(
        flag(&words, "--shard").is_none(),
        "the index comes from JOB_COMPLETION_INDEX"
    );
    let lines: u64 = flag(&words, "--lines")
        .expect("--lines")
        .parse()
        .expect("--lines N");
    assert!(lines >= shards);
    assert!(flag(&words, "--users").is_some() && flag(&words, "--password-pattern").is_some());
    let summary = flag(&words, "--summary").expect("--summary");
    assert!(
        summary.contains("${JOB_COMPLETION_INDEX}") || summary.contains("$(JOB_COMPLETION_INDEX)"),
        "one summary per shard: {summary}"
    );
    assert!(
        words.iter().any(|w| w.starts_with("SIPFLEET_SUMMARY")),
        "summary printed for kubectl logs"
    );

    // Volumes: every mount is a volume of the pod; the config is the
    // ConfigMap of this file, the results an emptyDir.
    let volumes: BTreeMap<&str, &Value> = at(job, "spec.template.spec.volumes")
        .as_sequence()
        .expect("volumes")
        .iter()
        .map(|v| (str_at(v, "name"), v))
        .collect();
    let mounts: BTreeMap<&str, &str> = at(c, "volumeMounts")
        .as_sequence()
        .expect("volumeMounts")
        .iter()
        .map(|m| (str_at(m, "mountPath"), str_at(m, "name")))
        .collect();
    for name in mounts.values() {
        assert!(
            volumes.contains_key(name),
            "mount of an undefined volume {name}"
        );
    }
    let config = flag(&words, "--config").expect("--config");
    let (dir, file) = config.rsplit_once('/').expect("--config DIR/FILE");
    let volume = volumes[mounts
        .get(dir)
        .unwrap_or_else(|| panic!("nothing mounted at {dir}"))];
    let map_name = str_at(volume, "configMap.name");
    let maps = by_kind(&docs, "ConfigMap");
    let map = maps
        .iter()
        .find(|m| str_at(m, "metadata.name") == map_name)
        .unwrap_or_else(|| panic!("ConfigMap {map_name} is not defined"));
    assert!(
        at(map, "data").get(file).is_some(),
        "ConfigMap {map_name} has no {file}"
    );
    let results = summary.rsplit_once('/').expect("--summary DIR/FILE").0;
    let volume = volumes[mounts
        .get(results)
        .unwrap_or_else(|| panic!("nothing mounted at {results}"))];
    at(volume, "emptyDir");
}

#[test]
fn the_base_configuration_passes_config_check() {
    let docs = documents();
    let map = &by_kind(&docs, "ConfigMap")[0];
    let base = at(map, "data")
        .get("base.cfg")
        .and_then(Value::as_str)
        .expect("data.\"base.cfg\"");
    assert!(base.contains("reg.1."), "a reg.1.* template");
    assert!(base.contains("sipfleet.register.rate"), "pacing set");
    // One line as the load would generate it: an address, the
    // placeholders filled.
    let line = format!(
        "reg.1.address=\"20000\"\n{}",
        base.replace("{user}", "20000").replace("{index}", "1")
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("base.cfg");
    std::fs::write(&path, line).expect("write base.cfg");
    let out = Command::new(env!("CARGO_BIN_EXE_sipfleet"))
        .args(["config", "check"])
        .arg(&path)
        .output()
        .expect("run sipfleet config check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "config check failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("warnings: none"), "{stdout}");
}
