//! Fingerprints the code that decides what the projections hold — this crate and the
//! crates whose code their state is computed with (domain, stored events, SLA engine,
//! with its built-in calendars and policies) — so a snapshot written by another build is
//! refused and rebuilt from the log rather than trusted (see `src/snapshot.rs`). A hash of
//! the sources, not a version number someone must remember to bump.

use std::path::{Path, PathBuf};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let libs = manifest
        .parent()
        .expect("libs/projections has a parent")
        .to_owned();
    let mut paths = Vec::new();
    for krate in ["projections", "domain", "events", "sla"] {
        let dir = libs.join(krate);
        println!("cargo:rerun-if-changed={}", dir.display());
        for sub in ["src", "calendars", "policies"] {
            files(&dir.join(sub), &mut paths);
        }
        paths.push(dir.join("Cargo.toml"));
    }
    paths.sort();
    let mut hasher = blake3::Hasher::new();
    for path in &paths {
        let Ok(bytes) = std::fs::read(path) else {
            continue;
        };
        let name = path.strip_prefix(&libs).unwrap_or(path);
        hasher.update(name.to_string_lossy().as_bytes());
        hasher.update(&(bytes.len() as u64).to_le_bytes());
        hasher.update(&bytes);
    }
    let hash = hasher.finalize().to_hex();
    println!("cargo:rustc-env=PROJECTIONS_CODE_HASH={}", &hash[..16]);
}
