//! Builds `mini-init` (mini-docker/init, `run --init`'s first process) as a static binary
//! for mini-docker to embed: an image may have no libc, so the init must need none. rustc
//! alone, as the hello-world program is built (`-C target-feature=+crt-static`); the same
//! source is also a workspace crate, so its tests, clippy and fmt run with the rest.
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let binary = out.join("mini-init");
    println!("cargo:rerun-if-changed=init/src");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let status = Command::new(rustc)
        .args([
            "--edition",
            "2024",
            "-O",
            "-C",
            "target-feature=+crt-static",
        ])
        .args(["-C", "strip=symbols", "--crate-name", "mini_init", "-o"])
        .arg(&binary)
        .arg("init/src/main.rs")
        .status();
    if !status.is_ok_and(|s| s.success()) {
        // Without a static libc here, mini-docker still builds: `run --init` says why it
        // cannot (an empty binary is its mark).
        println!(
            "cargo:warning=mini-init could not be built static (is libc6-dev installed?): run --init will refuse"
        );
        std::fs::write(&binary, b"").expect("write an empty mini-init");
    }
}
