//! What a pull or push shows while it runs: per-layer progress bars on a terminal
//! (indicatif), plain status lines otherwise (docker's output when piped), nothing with `-q`.
use std::io::{IsTerminal as _, Write as _};
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How to show progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// A bar per layer (stdout must be a terminal).
    Bars,
    /// One line per event, as docker prints when its output is not a terminal.
    Lines,
    /// Nothing but the result.
    Quiet,
    /// Bars or lines on stderr: `run` pulling a missing image keeps stdout for the
    /// container's output, as `docker run` does.
    Stderr {
        /// Bars (stderr is a terminal) or lines.
        bars: bool,
    },
}

impl Progress {
    /// Bars on a terminal, lines otherwise; `Quiet` when asked.
    pub fn auto(quiet: bool) -> Progress {
        if quiet {
            Progress::Quiet
        } else if std::io::stdout().is_terminal() {
            Progress::Bars
        } else {
            Progress::Lines
        }
    }

    /// Like [`Progress::auto`], on stderr.
    pub fn to_stderr() -> Progress {
        Progress::Stderr {
            bars: std::io::stderr().is_terminal(),
        }
    }
}

/// Prints progress; shared by the threads of one pull or push.
#[derive(Debug)]
pub struct Reporter {
    mode: Progress,
    multi: Option<MultiProgress>,
    lock: Mutex<()>,
}

impl Reporter {
    /// A reporter in `mode`.
    pub fn new(mode: Progress) -> Reporter {
        let multi = match mode {
            Progress::Bars => Some(MultiProgress::with_draw_target(ProgressDrawTarget::stdout())),
            Progress::Stderr { bars: true } => {
                Some(MultiProgress::with_draw_target(ProgressDrawTarget::stderr()))
            }
            _ => None,
        };
        Reporter {
            mode,
            multi,
            lock: Mutex::new(()),
        }
    }

    /// A status line (`Digest: ...`), not shown with `-q`.
    pub fn line(&self, text: &str) {
        match (&self.multi, self.mode) {
            (_, Progress::Quiet) => {}
            (Some(m), _) => {
                let _ = m.println(text);
            }
            (None, Progress::Stderr { .. }) => {
                let _g = self.lock.lock();
                let _ = writeln!(std::io::stderr().lock(), "{text}");
            }
            (None, _) => {
                let _g = self.lock.lock();
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{text}");
                let _ = out.flush();
            }
        }
    }

    /// A warning (a retry) on stderr, shown in every mode.
    pub fn warn(&self, text: &str) {
        match &self.multi {
            Some(m) => m.suspend(|| eprintln!("{text}")),
            None => eprintln!("{text}"),
        }
    }

    /// A bar (or line prefix) for one blob, `id` being its short digest.
    pub fn item(&self, id: &str, total: u64) -> Item<'_> {
        let bar = self.multi.as_ref().map(|m| {
            let bar = m.add(ProgressBar::new(total));
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix}: {msg:<18} [{bar:30}] {bytes:>10}/{total_bytes}",
                )
                .expect("a valid template")
                .progress_chars("=> "),
            );
            bar.set_prefix(id.to_string());
            bar
        });
        Item {
            reporter: self,
            id: id.to_string(),
            bar,
        }
    }
}

/// One blob's progress.
#[derive(Debug)]
pub struct Item<'r> {
    reporter: &'r Reporter,
    id: String,
    bar: Option<ProgressBar>,
}

impl Item<'_> {
    /// A new status (`Downloading`, `Extracting`); a line only in lines mode.
    pub fn status(&self, status: &str) {
        match &self.bar {
            Some(b) => b.set_message(status.to_string()),
            None => self.reporter.line(&format!("{}: {status}", self.id)),
        }
    }

    /// Quietly updates the bar (no line: bytes are too many events for a log).
    pub fn set_message(&self, status: &str) {
        if let Some(b) = &self.bar {
            b.set_message(status.to_string());
        }
    }

    /// `n` more bytes done.
    pub fn inc(&self, n: u64) {
        if let Some(b) = &self.bar {
            b.inc(n);
        }
    }

    /// Starts over (a retried download).
    pub fn reset(&self) {
        if let Some(b) = &self.bar {
            b.set_position(0);
        }
    }

    /// The final status.
    pub fn done(&self, status: &str) {
        match &self.bar {
            Some(b) => b.finish_with_message(status.to_string()),
            None => self.reporter.line(&format!("{}: {status}", self.id)),
        }
    }
}

/// A reader that reports how much has been read.
pub struct Counting<'a, R> {
    /// What is read.
    pub inner: R,
    /// Told each time.
    pub item: &'a Item<'a>,
}

impl<R> std::fmt::Debug for Counting<'_, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counting")
            .field("item", &self.item)
            .finish()
    }
}

impl<R: std::io::Read> std::io::Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.item.inc(n as u64);
        Ok(n)
    }
}
