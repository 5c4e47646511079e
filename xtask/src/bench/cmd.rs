//! Commands, and the timing loop.
//!
//! A [`Cmd`] is a command line built once and run many times (std's `Command` is not
//! `Clone`). The timing loop ([`alternate`]) runs the commands of a row in turn, A B C A B
//! C ..., rather than all the A's then all the B's: whatever slows the machine down for a
//! while (another job, the page cache, a daemon's housekeeping) then falls on every
//! command alike, and the ratios stay fair.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::stats::Summary;
use super::{interrupt, nocgroup2};

/// A command line, with its environment and where it runs.
#[derive(Debug, Clone)]
pub struct Cmd {
    program: OsString,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    dir: Option<PathBuf>,
    /// Started from the thread without the cgroup2 mount (crun on a hybrid host).
    without_cgroup2: bool,
}

/// How a command ended.
#[derive(Debug)]
pub struct Finished {
    /// Its exit status.
    pub status: ExitStatus,
    /// From just before the spawn to just after the wait.
    pub elapsed: Duration,
    /// What it printed, if captured.
    pub stdout: Vec<u8>,
    /// What it printed on stderr, if captured.
    pub stderr: Vec<u8>,
}

impl Cmd {
    /// `program`, without arguments yet.
    pub fn new(program: impl AsRef<OsStr>) -> Cmd {
        Cmd {
            program: program.as_ref().to_os_string(),
            args: Vec::new(),
            env: Vec::new(),
            dir: None,
            without_cgroup2: false,
        }
    }

    /// Adds one argument.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Cmd {
        self.args.push(arg.as_ref().to_os_string());
        self
    }

    /// Adds arguments.
    pub fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(mut self, args: I) -> Cmd {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        self
    }

    /// Sets an environment variable (on top of ours).
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Cmd {
        self.env
            .push((key.as_ref().to_os_string(), value.as_ref().to_os_string()));
        self
    }

    /// Runs in `dir`.
    pub fn current_dir(mut self, dir: &Path) -> Cmd {
        self.dir = Some(dir.to_path_buf());
        self
    }

    /// Runs where the hybrid host's cgroup2 mount is hidden (see `nocgroup2`).
    pub fn without_cgroup2(mut self) -> Cmd {
        self.without_cgroup2 = true;
        self
    }

    /// std's `Command` for it, stdin from /dev/null.
    pub fn command(&self) -> Command {
        let mut c = Command::new(&self.program);
        c.args(&self.args).stdin(Stdio::null());
        for (k, v) in &self.env {
            c.env(k, v);
        }
        if let Some(d) = &self.dir {
            c.current_dir(d);
        }
        c
    }

    /// Runs it to the end, capturing its output (`capture`) or sending it to /dev/null.
    /// Nothing is started once a signal came (see `interrupt`).
    pub fn execute(&self, capture: bool) -> io::Result<Finished> {
        interrupt_as_io()?;
        self.dispatch(capture)
    }

    /// Runs it from the right thread: this one, or the one without cgroup2.
    fn dispatch(&self, capture: bool) -> io::Result<Finished> {
        if self.without_cgroup2 {
            let me = self.clone();
            if let Some(done) = nocgroup2::on_thread(move || me.execute_here(capture)) {
                return done;
            }
        }
        self.execute_here(capture)
    }

    fn execute_here(&self, capture: bool) -> io::Result<Finished> {
        let mut c = self.command();
        if capture {
            c.stdout(Stdio::piped()).stderr(Stdio::piped());
            let start = Instant::now();
            let out = c.output()?;
            Ok(Finished {
                elapsed: start.elapsed(),
                status: out.status,
                stdout: out.stdout,
                stderr: out.stderr,
            })
        } else {
            c.stdout(Stdio::null()).stderr(Stdio::null());
            let start = Instant::now();
            let status = c.status()?;
            Ok(Finished {
                elapsed: start.elapsed(),
                status,
                stdout: Vec::new(),
                stderr: Vec::new(),
            })
        }
    }

    /// Runs it, capturing; an error (with the end of its stderr) unless it succeeds.
    pub fn output(&self) -> anyhow::Result<Finished> {
        let done = self
            .execute(true)
            .with_context(|| format!("starting {self}"))?;
        if !done.status.success() {
            bail!(
                "{self}: {}: {}",
                done.status,
                tail(&String::from_utf8_lossy(&done.stderr))
            );
        }
        Ok(done)
    }

    /// Runs it; an error unless it succeeds.
    pub fn run(&self) -> anyhow::Result<()> {
        self.output().map(|_| ())
    }

    /// Runs it and returns its stdout, trimmed.
    pub fn stdout(&self) -> anyhow::Result<String> {
        let done = self.output()?;
        Ok(String::from_utf8_lossy(&done.stdout).trim().to_string())
    }

    /// Runs it, ignoring how it ends, even after a signal: for cleanups, which must go
    /// on whatever happens. Its stdout, if it succeeded.
    pub fn quietly(&self) -> Option<String> {
        let done = self.dispatch(true).ok()?;
        done.status
            .success()
            .then(|| String::from_utf8_lossy(&done.stdout).into_owned())
    }

    /// Runs it with its output to /dev/null; an error unless it succeeds. For what
    /// starts a detached container that keeps the descriptors it was given (`crun run
    /// -d`): a pipe of ours would stay open until the container ends.
    pub fn run_detached(&self) -> anyhow::Result<()> {
        let done = self
            .execute(false)
            .with_context(|| format!("starting {self}"))?;
        if !done.status.success() {
            bail!("{self}: {}", done.status);
        }
        Ok(())
    }

    /// Times one run, its output to /dev/null (as a user's terminal would not slow it
    /// down). If it fails, it is run once more with its stderr captured, to say why.
    pub fn time(&self) -> anyhow::Result<Duration> {
        let done = self
            .execute(false)
            .with_context(|| format!("starting {self}"))?;
        if done.status.success() {
            return Ok(done.elapsed);
        }
        interrupt::check()?;
        let again = self
            .execute(true)
            .map(|d| tail(&String::from_utf8_lossy(&d.stderr)))
            .unwrap_or_default();
        bail!("{self}: {} (run again: {again})", done.status);
    }
}

/// The command line as a shell would show it (arguments with blanks quoted).
impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let words = std::iter::once(&self.program).chain(&self.args);
        for (i, w) in words.enumerate() {
            let w = w.to_string_lossy();
            let sep = if i == 0 { "" } else { " " };
            if w.is_empty() || w.contains(char::is_whitespace) || w.contains('"') {
                write!(f, "{sep}'{w}'")?;
            } else {
                write!(f, "{sep}{w}")?;
            }
        }
        Ok(())
    }
}

/// The last non-empty lines of `text`, for an error message.
pub fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(3);
    lines[start..].join(" / ")
}

fn interrupt_as_io() -> io::Result<()> {
    if interrupt::interrupted() {
        return Err(io::Error::new(io::ErrorKind::Interrupted, "interrupted"));
    }
    Ok(())
}

/// A command to time, and what to do before each run, untimed (emptying a store before a
/// pull, say).
pub struct Timed<'a> {
    /// The command.
    pub cmd: Cmd,
    /// Run before each of its runs, warm-ups included; not timed.
    pub prepare: Option<Box<dyn FnMut() -> anyhow::Result<()> + 'a>>,
}

impl fmt::Debug for Timed<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timed").field("cmd", &self.cmd).finish()
    }
}

impl Timed<'_> {
    /// `cmd`, with nothing to prepare.
    pub fn plain(cmd: Cmd) -> Timed<'static> {
        Timed { cmd, prepare: None }
    }
}

/// Runs `timed` in turn, `warmup` untimed rounds then `runs` timed ones, and returns each
/// command's times (in ms) summed up. A command that fails is dropped from the later
/// rounds with its error, and the others go on: one broken peer does not lose the row.
pub fn alternate(
    what: &str,
    timed: &mut [Timed<'_>],
    warmup: usize,
    runs: usize,
) -> anyhow::Result<Vec<Result<Summary, String>>> {
    eprintln!(
        "    {what}: {warmup} warm-up + {runs} timed rounds of {} command(s), alternating",
        timed.len()
    );
    let mut samples: Vec<Vec<f64>> = vec![Vec::with_capacity(runs); timed.len()];
    let mut failed: Vec<Option<String>> = vec![None; timed.len()];
    for round in 0..warmup + runs {
        for (i, t) in timed.iter_mut().enumerate() {
            if failed[i].is_some() {
                continue;
            }
            interrupt::check()?;
            let mut once = || -> anyhow::Result<Duration> {
                if let Some(prepare) = &mut t.prepare {
                    prepare().context("preparing")?;
                }
                t.cmd.time()
            };
            match once() {
                Ok(d) if round >= warmup => samples[i].push(d.as_secs_f64() * 1000.0),
                Ok(_) => {}
                Err(e) => {
                    interrupt::check()?;
                    failed[i] = Some(format!("{e:#}"));
                }
            }
        }
    }
    Ok(samples
        .iter()
        .zip(failed)
        .map(|(s, f)| match f {
            Some(e) => Err(e),
            None => Summary::of(s).ok_or_else(|| "no samples".to_string()),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_is_shown_as_a_shell_would_take_it() {
        let c = Cmd::new("mini-docker")
            .args(["import", "--change", "CMD [\"sh\"]"])
            .arg("");
        assert_eq!(
            c.to_string(),
            "mini-docker import --change 'CMD [\"sh\"]' ''"
        );
    }

    #[test]
    fn the_tail_of_an_error_is_its_last_lines() {
        assert_eq!(tail("a\n\nb\nc\nd\n"), "b / c / d");
        assert_eq!(tail(""), "");
    }

    #[test]
    fn alternating_times_every_command_and_keeps_the_failures_apart() {
        let mut prepared = 0;
        let mut timed = vec![
            Timed {
                cmd: Cmd::new("true"),
                prepare: Some(Box::new(|| {
                    prepared += 1;
                    Ok(())
                })),
            },
            Timed::plain(Cmd::new("false")),
        ];
        let got = alternate("test", &mut timed, 1, 3).unwrap();
        drop(timed);
        assert_eq!(got[0].as_ref().unwrap().n, 3);
        assert!(got[1].as_ref().unwrap_err().contains("false"), "{got:?}");
        assert_eq!(
            prepared, 4,
            "prepared before the warm-up and each timed run"
        );
    }
}
