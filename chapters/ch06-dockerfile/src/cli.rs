//! The command line.
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Chapter 6: read a Dockerfile as BuildKit reads it.
#[derive(Debug, Parser)]
#[command(name = "ch06-dockerfile", version)]
pub struct Cli {
    /// Where images live (the store chapter 5 and mini-docker share).
    #[arg(
        long,
        global = true,
        env = "MINI_DOCKER_ROOT",
        default_value = "/var/lib/mini-docker",
        value_name = "DIR"
    )]
    pub root: PathBuf,
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
    /// Build an image from a Dockerfile, as `docker build` does.
    Build(BuildArgs),
}

/// `build`, with docker's flags (mini-docker's `build` is this).
#[derive(Debug, Clone, Args)]
pub struct BuildArgs {
    /// Name and optionally a tag in the 'name:tag' format.
    #[arg(short = 't', long = "tag", value_name = "list")]
    pub tags: Vec<String>,
    /// Name of the Dockerfile (default: 'PATH/Dockerfile'; `-` reads it from stdin).
    #[arg(short = 'f', long = "file", value_name = "string")]
    pub file: Option<PathBuf>,
    /// Set build-time variables.
    #[arg(long = "build-arg", value_name = "list")]
    pub build_args: Vec<String>,
    /// Set the target build stage to build.
    #[arg(long, value_name = "string")]
    pub target: Option<String>,
    /// Do not use cache when building the image.
    #[arg(long)]
    pub no_cache: bool,
    /// Always attempt to pull a newer version of the image (accepted; base images are
    /// pulled only when missing).
    #[arg(long)]
    pub pull: bool,
    /// Set the networking mode for the RUN instructions during build: default, none or
    /// host (default: the bridge under `mini-docker build`, chapter 7's; none here).
    #[arg(long, default_value = "default", value_name = "string")]
    pub network: String,
    /// Suppress the build output and print image ID on success.
    #[arg(short, long)]
    pub quiet: bool,
    /// Write the image ID to the file.
    #[arg(long, value_name = "string")]
    pub iidfile: Option<PathBuf>,
    /// Set metadata for an image.
    #[arg(long = "label", value_name = "list")]
    pub labels: Vec<String>,
    /// The build context: a directory, or `-` for a Dockerfile on stdin and no context.
    #[arg(value_name = "PATH | -")]
    pub context: PathBuf,
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
