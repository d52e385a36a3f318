//! Compiles the .proto files with protox (pure Rust), so no system `protoc` is needed.

use std::{env, fs, path::PathBuf};

use prost::Message;

const PROTOS: &[&str] = &[
    "smsops/auth/v1/auth.proto",
    "smsops/metrics/v1/metrics.proto",
    "smsops/notify/v1/notify.proto",
    "smsops/operator/v1/operator.proto",
    "smsops/process/v1/process.proto",
    "smsops/sms/v1/sms.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let compiled = protox::compile(PROTOS, ["proto"])?;
    // Round-trip through bytes so protox's prost version never has to match ours.
    let bytes = compiled.encode_to_vec();
    let out = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(out.join("smsops_descriptor.bin"), &bytes)?;
    let fds = prost_types::FileDescriptorSet::decode(bytes.as_slice())?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(fds)?;
    Ok(())
}
