//! The command line, exported so that mini-docker can flatten the same arguments.
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Chapter 5: pull and push images, log in to registries, keep images in a local store.
#[derive(Debug, Parser)]
#[command(name = "ch05-image-pull", version)]
pub struct Cli {
    /// Print every HTTP request and the response's status and protocol headers (on stderr).
    #[arg(long, global = true)]
    pub trace: bool,
    /// The store (default: $MINI_DOCKER_ROOT, else /var/lib/mini-docker).
    #[arg(long, global = true, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Download an image from a registry into the store.
    Pull(PullArgs),
    /// Upload an image from the store to a registry.
    Push(PushArgs),
    /// List the images in the store.
    Images(ImagesArgs),
    /// Show an image's manifest and config as JSON.
    Inspect {
        /// The image: a reference or an image ID (prefix).
        image: String,
    },
    /// Remove images, then the blobs and layers no image needs any more.
    Rmi {
        /// The images: references or image IDs.
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Give an image another name.
    Tag {
        /// The image: a reference or an image ID.
        source: String,
        /// The new name.
        target: String,
    },
    /// Store credentials for a registry (checked against it first).
    Login(LoginArgs),
    /// Forget the credentials for a registry.
    Logout {
        /// The registry (default: Docker Hub).
        registry: Option<String>,
    },
}

/// `pull`.
#[derive(Debug, Clone, Args)]
pub struct PullArgs {
    /// The image: `[REGISTRY[:PORT]/][NAMESPACE/]REPOSITORY[:TAG|@DIGEST]`.
    pub reference: String,
    /// Which platform to choose from a multi-platform image (os/arch[/variant]; default:
    /// this machine's).
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,
    /// Print only the image's name at the end.
    #[arg(short, long)]
    pub quiet: bool,
    /// Pull the simple way: the chapter's story (src/story.rs), one step after the other,
    /// each said as it happens, instead of several layers at once.
    #[arg(long)]
    pub simple: bool,
}

/// `push`.
#[derive(Debug, Clone, Args)]
pub struct PushArgs {
    /// The image, named for the registry it goes to.
    pub reference: String,
    /// Print only the digest at the end.
    #[arg(short, long)]
    pub quiet: bool,
    /// Upload blobs in chunks of this many bytes (PATCH requests) rather than in one PUT.
    #[arg(long, value_name = "BYTES")]
    pub chunk_size: Option<u64>,
}

/// `images`.
#[derive(Debug, Clone, Args)]
pub struct ImagesArgs {
    /// Print only image IDs.
    #[arg(short, long)]
    pub quiet: bool,
}

/// `login`.
#[derive(Debug, Clone, Args)]
pub struct LoginArgs {
    /// The registry (default: Docker Hub).
    pub registry: Option<String>,
    /// The user name (asked for when missing).
    #[arg(short, long)]
    pub username: Option<String>,
    /// The password (visible to other users in `ps`: prefer --password-stdin).
    #[arg(short, long)]
    pub password: Option<String>,
    /// Read the password from standard input.
    #[arg(long)]
    pub password_stdin: bool,
}
