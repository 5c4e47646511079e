//! # xtask
//!
//! The project's own tasks, run with `cargo xtask TASK` (an alias in `.cargo/config.toml`):
//! plain Rust, so they need nothing but cargo, and they are built and linted with the rest
//! of the workspace.
//!
//! * `cargo xtask bench`: mini-docker against its peers (crun, podman, docker, skopeo,
//!   buildah, GNU tar) on this machine, side by side, with the targets (see
//!   `bench/mod.rs`).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;

/// The workshop's own tasks.
#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    disable_help_subcommand = true
)]
struct Cli {
    /// The task.
    #[command(subcommand)]
    task: Task,
}

/// One variant per task, each with its own arguments.
#[derive(Debug, Subcommand)]
enum Task {
    /// Measure mini-docker against crun, podman, docker, skopeo, buildah and tar (as root).
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.task {
        Task::Bench(args) => bench::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
