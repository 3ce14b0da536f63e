//! Compiles every `.proto` under the workspace's `proto/` with protox (pure Rust, no
//! `protoc`): messages with prost, always; with the feature `grpc`, also the APIs'
//! services with tonic (servers and clients); and a file descriptor set for gRPC server
//! reflection and JSON export.
#![forbid(unsafe_code)]

use std::path::PathBuf;

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let files = [
        root.join("eventlog/v1/envelope.proto"),
        root.join("complaints/events/v1/events.proto"),
        root.join("complaints/v1/complaints.proto"),
        root.join("complaints/audit/v1/audit.proto"),
        root.join("complaints/admin/v1/admin.proto"),
        root.join("complaints/reports/v1/reports.proto"),
    ];
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    let descriptors = protox::compile(&files, [&root])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("descriptors.bin"), descriptors.encode_to_vec())?;
    let mut config = prost_build::Config::new();
    config
        .bytes([
            ".eventlog",
            ".complaints.events",
            ".complaints.audit",
            ".complaints.admin",
        ])
        .boxed(".complaints.events.v1.ComplaintEvent.change.registered");
    // With `grpc`, messages and the tonic services; without, messages only.
    #[cfg(feature = "grpc")]
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds_with_config(descriptors, config)?;
    #[cfg(not(feature = "grpc"))]
    config.compile_fds(descriptors)?;
    Ok(())
}
