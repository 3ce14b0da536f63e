//! Compiles every `.proto` under the workspace's `proto/` with protox (pure Rust, no `protoc`).

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let files = [
        root.join("eventlog/v1/envelope.proto"),
        root.join("complaints/events/v1/events.proto"),
    ];
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    let descriptors = protox::compile(&files, [&root])?;
    prost_build::Config::new()
        .bytes(["."])
        .boxed(".complaints.events.v1.ComplaintEvent.change.registered")
        .compile_fds(descriptors)?;
    Ok(())
}
