//! Chapter 6: the Dockerfile.
//!
//! A Dockerfile is a list of instructions, one layer or one setting each (seed notes 001
//! §2.5–2.6 and 003). Before anything is built the file is *read*, and reading it is more
//! subtle than it looks: line continuations that skip comments, JSON arrays that decide
//! between exec and shell form, two spellings of `ENV`, here-documents, and a shell-like
//! expansion of `$VAR` in some instructions but not others. This chapter reads Dockerfiles
//! the way BuildKit (the builder behind `docker build`) reads them, so that its output can
//! be compared with BuildKit's line for line:
//!
//! * [`parser`]: lines into instructions (`parse`), and BuildKit's `Node.Dump()` text;
//! * [`shell`]: the words of an instruction expanded as BuildKit's shell lexer does;
//! * [`instructions`]: each instruction's arguments and flags checked, with BuildKit's
//!   messages, at the instruction's line.
//!
//! * [`build`]: the builder: each instruction in turn, `RUN` in a real container
//!   ([`container`]), `COPY` from the build [`context`], layers into chapter 5's store, and
//!   the cache.
//!
//! `ch06-dockerfile parse` and `ch06-dockerfile expand` show the reading to a learner;
//! `ch06-dockerfile build` (and `mini-docker build`) builds.
pub mod build;
pub mod cli;
pub mod commands;
pub mod container;
pub mod context;
pub mod instructions;
pub mod parser;
pub mod shell;

pub use parser::{Dockerfile, Instruction, ParseError, parse};
pub use shell::Lexer;

/// What the chapter's commands fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Dockerfile is malformed: `Dockerfile:2: unknown instruction: RUNN`.
    #[error("{file}:{line}: {message}")]
    Dockerfile {
        /// The file as named on the command line.
        file: String,
        /// The line of the instruction at fault.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A file could not be read or written.
    #[error("{0}")]
    Io(String, #[source] std::io::Error),
    /// A command-line value makes no sense.
    #[error("{0}")]
    Usage(String),
    /// A build step could not be done (a source missing, the store refusing).
    #[error("{0}")]
    Step(String),
    /// A `RUN` command failed: `The command '/bin/sh -c false' returned a non-zero code: 1`.
    #[error("{message}")]
    Failed {
        /// docker's sentence.
        message: String,
        /// The command's exit code.
        code: i32,
    },
}

impl Error {
    /// `docker build`'s exit code for every failure: 1.
    pub fn exit_code(&self) -> i32 {
        1
    }

    /// A parse error in `file`.
    pub fn at(file: &str, e: ParseError) -> Error {
        Error::Dockerfile {
            file: file.to_string(),
            line: e.line,
            message: e.message,
        }
    }
}
