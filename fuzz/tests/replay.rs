//! Replays every committed corpus file through its target (stable toolchain,
//! no libFuzzer): `corpus/<target>/*` holds the seeds and every crash found
//! by `scripts/fuzz`, so CI keeps them fixed.

use std::path::{Path, PathBuf};

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

#[test]
fn every_corpus_file_passes_its_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let mut total = 0;
    for (name, target) in sipfleet_fuzz::TARGETS {
        let inputs = files(&root.join(name));
        assert!(!inputs.is_empty(), "corpus/{name} is empty");
        for path in &inputs {
            let data = std::fs::read(path).expect("corpus file");
            let outcome = std::panic::catch_unwind(|| target(&data));
            if outcome.is_err() {
                panic!("{name}: {} fails (run `cargo test` with --nocapture for the panic; reproduce with `cargo +nightly fuzz run {name} {}`)", path.display(), path.display());
            }
            total += 1;
        }
    }
    eprintln!("replayed {total} corpus files");
}

/// Every corpus directory belongs to a target (a typo would go unreplayed).
#[test]
fn every_corpus_directory_is_a_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    for entry in std::fs::read_dir(&root).expect("corpus directory") {
        let name = entry.expect("entry").file_name();
        let name = name.to_string_lossy();
        assert!(
            sipfleet_fuzz::TARGETS.iter().any(|(t, _)| *t == name),
            "corpus/{name} is not a target"
        );
    }
}
