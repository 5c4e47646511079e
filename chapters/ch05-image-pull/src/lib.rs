//! # Chapter 5: pulling images
//!
//! An image is not a file you download: it is a graph of content-addressed blobs behind a
//! small HTTP API. A *reference* (`busybox`, `127.0.0.1:5055/a/b:tag`) names a registry,
//! a repository and a tag; the tag points at a *manifest* (or an *index* of manifests, one
//! per platform); the manifest names a *config* and the *layers*, each by the sha256 of
//! its bytes, so every byte that arrives can be checked.
//!
//! ## The lesson
//!
//! Read [`story`] first: one pull, sequential and single-threaded, top to bottom, one
//! function per step of the protocol (`ch05-image-pull pull --simple`). Then the pieces it
//! is made of, and what production code adds to it:
//!
//! * [`reference`](mod@reference): names, and how docker fills in what is missing (pure
//!   functions, table tests);
//! * [`transport`]: the HTTP seam every request goes through (`--trace`);
//! * [`auth`]: `WWW-Authenticate` challenges, Basic credentials and Bearer tokens;
//!   [`credentials`] and [`login`]/[`logout`]: docker's `config.json`; [`tls`]: a
//!   registry's own certificates (`certs.d`);
//! * [`registry`]: the requests, with retries, redirects and the registry's error bodies;
//! * [`manifest`]: media types, indexes and platforms, Docker schema 2 to OCI;
//! * [`layer`]: decompression, diff-ids, chapter 4's `apply`, and the pipe that lets a
//!   layer unpack while it downloads;
//! * [`pull`](mod@pull): the story as production code needs it (several layers at once,
//!   streaming extraction, resume, retries, leases); [`push`](mod@push): the story
//!   backwards;
//! * [`store`]'s layout (`store/layout.rs`): the OCI image layout, content before names.
//!
//! ## Here for mini-docker
//!
//! What a docker-like CLI needs around the lesson, used by mini-docker (and by later
//! chapters): the rest of [`store`] (names and dangling images, leases and pins, garbage
//! collection, [`store::atomic_write`]), [`archive`] (`docker save` and `load`),
//! [`images`] (docker's tables, units and `inspect`), [`progress`] (progress bars and
//! docker's status lines), and [`cli`] with [`commands`] (the binary's arguments, exported
//! so that mini-docker flattens them, and what each command prints).
use std::path::{Path, PathBuf};

pub mod archive;
pub mod auth;
pub mod cli;
pub mod commands;
pub mod credentials;
pub mod images;
pub mod layer;
pub mod manifest;
pub mod progress;
pub mod pull;
pub mod push;
pub mod reference;
pub mod registry;
pub mod store;
pub mod story;
pub mod tls;
pub mod transport;

#[cfg(test)]
mod fixtures;

pub use auth::Credentials;
pub use credentials::ConfigFiles;
pub use manifest::Platform;
pub use progress::Progress;
pub use pull::{PullOptions, pull};
pub use push::{PushOptions, Pushed, push};
pub use reference::{Digest, Reference, ReferenceError};
pub use store::{Image, Layer, Store};
pub use transport::{Http, Transport};

/// What can go wrong in this chapter. Messages name the operation, the URL or registry,
/// and what the registry answered.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A reference that does not parse.
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// No HTTP answer at all (refused, unreachable, broken).
    #[error(transparent)]
    Transport(#[from] transport::TransportError),
    /// The registry answered with an error status.
    #[error("{method} {url}: {status} {}{detail}", transport::http_reason(*status))]
    Registry {
        /// The request's method.
        method: transport::Method,
        /// Its URL.
        url: String,
        /// The status.
        status: u16,
        /// ` (CODE: message)` from the registry's JSON error body, or empty.
        detail: String,
    },
    /// The registry wants credentials and we have none.
    #[error(
        "{registry} asks for credentials ({challenge}): log in first with `ch05-image-pull login {registry}`"
    )]
    NeedLogin {
        /// The registry.
        registry: String,
        /// Its challenge, for the curious.
        challenge: String,
    },
    /// The registry (or its token endpoint) refused our credentials.
    #[error("{registry} refused the credentials of user {user:?}")]
    BadCredentials {
        /// The registry.
        registry: String,
        /// Whose.
        user: String,
        /// The refusal.
        #[source]
        source: Box<Error>,
    },
    /// Authentication could not be carried out.
    #[error("{registry}: {problem}")]
    Auth {
        /// The registry.
        registry: String,
        /// Why.
        problem: String,
    },
    /// Temporary failures went on for every attempt.
    #[error("gave up after {attempts} attempts")]
    GaveUp {
        /// How many.
        attempts: u32,
        /// The last failure.
        #[source]
        source: Box<Error>,
    },
    /// Content whose sha256 is not the digest that names it.
    #[error("blob {expected}: digest mismatch: the content's sha256 is {actual}")]
    DigestMismatch {
        /// The digest it should have.
        expected: Digest,
        /// The one it has.
        actual: Digest,
    },
    /// A blob longer or shorter than its descriptor says.
    #[error("blob {digest}: size mismatch: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        /// The blob.
        digest: Digest,
        /// The descriptor's size.
        expected: u64,
        /// What came.
        actual: String,
    },
    /// A layer whose uncompressed stream does not match the config's diff-id.
    #[error("layer with diff-id {expected}: the uncompressed layer's sha256 is {actual}")]
    DiffIdMismatch {
        /// The config's diff-id.
        expected: Digest,
        /// What the stream hashed to.
        actual: Digest,
    },
    /// A manifest, index or config we cannot use.
    #[error("{what}: {problem}")]
    Manifest {
        /// Which document.
        what: String,
        /// What is wrong.
        problem: String,
    },
    /// Something this chapter does not do (unknown media types).
    #[error("{0}")]
    Unsupported(String),
    /// A layer could not be decompressed or extracted.
    #[error("layer {layer}: {problem}")]
    Layer {
        /// Its blob's digest, or the stored blob's path.
        layer: String,
        /// What failed.
        problem: String,
    },
    /// Reading a download failed mid-way (retried by the caller). The I/O error is part of
    /// the message, not a source, so that a chain prints it once.
    #[error("reading the download: {0}")]
    Read(std::io::Error),
    /// A file operation in the store failed.
    #[error("{op} {}", path.display())]
    Io {
        /// What we did.
        op: String,
        /// On which path.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// A store file that is not what it should be.
    #[error("{}: {problem}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// The store has no such image.
    #[error("no such image: {0}")]
    NoSuchImage(String),
    /// Reading or writing credentials failed.
    #[error(transparent)]
    Credentials(#[from] credentials::CredentialsError),
    /// A bad argument.
    #[error("{0}")]
    Usage(String),
    /// An error, with the command it happened in.
    #[error("{context}")]
    Context {
        /// `pull 127.0.0.1:5055/busybox:latest`.
        context: String,
        /// What went wrong.
        #[source]
        source: Box<Error>,
    },
}

impl Error {
    /// A file operation's error.
    pub fn io(op: &str, path: &Path, source: std::io::Error) -> Error {
        Error::Io {
            op: op.to_string(),
            path: path.to_path_buf(),
            source,
        }
    }

    /// Wraps the error with the command it happened in.
    pub fn context(self, context: impl Into<String>) -> Error {
        Error::Context {
            context: context.into(),
            source: Box::new(self),
        }
    }

    /// docker's exit code for its own failures.
    pub fn exit_code(&self) -> i32 {
        125
    }
}

/// A manifest-level error.
pub(crate) fn manifest_error(what: &str, problem: String) -> Error {
    Error::Manifest {
        what: what.to_string(),
        problem,
    }
}

/// `login REGISTRY`: checks the credentials against the registry the way docker does, then
/// stores them in our `config.json`.
pub fn login(
    transport: &dyn Transport,
    files: &ConfigFiles,
    registry: &str,
    credentials: Credentials,
) -> Result<(), Error> {
    let client = registry::Client::for_registry(
        transport,
        registry,
        Some(credentials.clone()),
        Vec::new(),
        std::sync::Arc::new(|m: &str| eprintln!("{m}")),
    );
    client.check_login()?;
    files.store(registry, &credentials)?;
    Ok(())
}

/// `logout REGISTRY`: forgets our credentials for it. Returns whether there were any.
pub fn logout(files: &ConfigFiles, registry: &str) -> Result<bool, Error> {
    Ok(files.remove(registry)?)
}
