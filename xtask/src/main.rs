//! # xtask
//!
//! The project's own tasks, run with `cargo xtask TASK` (an alias in `.cargo/config.toml`):
//! plain Rust, so they need nothing but cargo, and they are built and linted with the rest
//! of the workspace.
//!
//! * `cargo xtask bench`: mini-docker against its peers (crun, podman, docker, skopeo,
//!   buildah, GNU tar) on this machine, side by side, with the targets (see
//!   `bench/mod.rs`).
//! * `cargo xtask workshop`, `check`, `prove-workshop`, `answers`: the exercises cut out of
//!   the chapters' code, a learner's workspace, the checker, and CI's proof that every
//!   exercise is really checked (see `workshop/mod.rs`).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;
mod workshop;

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
    /// Write a learner's workspace with the exercises cut out (todo!s that compile).
    Workshop(workshop::WorkshopArgs),
    /// Run the exercises' tests: passed, not yet or failed, with a hint.
    Check(workshop::CheckArgs),
    /// Prove every exercise is checked: it passes here and is caught when cut out (CI).
    ProveWorkshop(workshop::ProveArgs),
    /// Write notes/answers/ from the marked solutions (for workshop leaders).
    Answers,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.task {
        Task::Bench(args) => bench::run(&args),
        Task::Workshop(args) => workshop::workshop(&args),
        Task::Check(args) => workshop::check(&args),
        Task::ProveWorkshop(args) => workshop::prove(&args),
        Task::Answers => workshop::answers::write(),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
