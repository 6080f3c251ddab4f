//! Replays every fuzz target's checked-in corpus (`fuzz/corpus/<target>/`) through the
//! same functions the fuzzers run (`fuzz/src/lib.rs`, included here), so an input that
//! once crashed a parser fails the suite if it ever does again. Run the fuzzers
//! themselves with `scripts/fuzz`.

#[path = "../../fuzz/src/lib.rs"]
mod targets;

use std::path::Path;

#[test]
fn every_target_has_a_corpus_and_replays_it_without_a_panic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    for (name, run) in targets::TARGETS {
        let dir = root.join(name);
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}: every target needs a corpus", dir.display()));
        let mut inputs = 0;
        for entry in entries {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            let caught = std::panic::catch_unwind(|| run(&data));
            assert!(caught.is_ok(), "{name}: {} panicked", path.display());
            inputs += 1;
        }
        assert!(inputs > 0, "{name}: empty corpus");
    }
}

#[test]
fn the_honest_metadata_fetch_scripts_end_with_the_metadata() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/metadata_fetch");
    let mut honest = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with("honest") {
            honest += 1;
            let data = std::fs::read(&path).unwrap();
            assert!(
                targets::metadata_fetch(&data),
                "{name}: the honest peer's metadata was not taken"
            );
        }
    }
    assert!(honest > 0, "no honest script in {}", dir.display());
}
