//! What the bench binaries share (a directory, so Cargo does not take it for a bench).

/// Benches run for real only under `cargo bench` (it passes `--bench`); `cargo test
/// --benches` runs the same binaries without it, and they then do only a quick check.
pub fn bench_mode() -> bool {
    let args: Vec<String> = std::env::args().collect();
    args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--test" || a == "--list")
}
