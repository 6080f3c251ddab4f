//! The fuzz targets' corpora (`fuzz/corpus/TARGET/*`) replayed through the targets' own
//! bodies (`fuzz/src/lib.rs`, included here), on stable Rust: every input the fuzzer
//! kept, and every one that once crashed, stays a test.

#[path = "../../fuzz/src/lib.rs"]
mod targets;

use std::path::PathBuf;

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{}: empty corpus", dir.display());
    files
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

#[test]
fn metadata_message_corpus() {
    for (_, data) in corpus("metadata_message") {
        targets::metadata_message(&data);
    }
}

#[test]
fn pex_message_corpus() {
    for (_, data) in corpus("pex_message") {
        targets::pex_message(&data);
    }
}

#[test]
fn metadata_fetch_corpus() {
    for (path, data) in corpus("metadata_fetch") {
        let done = targets::metadata_fetch(&data);
        // The seeds that end with an honest peer must end with the metadata.
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with("honest") {
            assert!(done, "{name}: the honest peer's metadata was not taken");
        }
    }
}
