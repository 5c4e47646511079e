//! The command line.
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Chapter 6: read a Dockerfile as BuildKit reads it.
#[derive(Debug, Parser)]
#[command(name = "ch06-dockerfile", version)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show the instructions of a Dockerfile: keyword, flags, arguments, form, lines.
    Parse(ParseArgs),
    /// Expand words as a build would: one word per line on stdin, one JSON object per line
    /// on stdout ({"out": ...}, {"words": [...]} or {"error": ...}).
    Expand(ExpandArgs),
}

/// `parse`.
#[derive(Debug, Clone, Args)]
pub struct ParseArgs {
    /// The Dockerfile (`-` for stdin).
    #[arg(default_value = "Dockerfile")]
    pub file: PathBuf,
    /// Print the instructions as JSON.
    #[arg(long, conflicts_with = "dump")]
    pub json: bool,
    /// Print BuildKit's `Node.Dump()` of the file, one node per line, to diff against it.
    #[arg(long)]
    pub dump: bool,
}

/// `expand`.
#[derive(Debug, Clone, Args)]
pub struct ExpandArgs {
    /// A variable the words may use (repeatable).
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Print how each line splits into words instead of the expanded line.
    #[arg(long)]
    pub words: bool,
    /// The escape character (`\` or `` ` ``, as `# escape=` sets it).
    #[arg(long, default_value = "\\")]
    pub escape: char,
}
