// Detects optional engine features by reading the engine's source, so this program builds
// against any revision of core/ (the bench lives outside the workspace and moves separately).
fn main() {
    let seq = std::fs::read_to_string("../../core/src/sequence.rs").unwrap_or_default();
    println!("cargo::rerun-if-changed=../../core/src/sequence.rs");
    println!("cargo::rustc-check-cfg=cfg(s3db_seq_batch)");
    if seq.contains("pub batch_size") {
        println!("cargo::rustc-cfg=s3db_seq_batch");
    }
}
