//! Notes that cannot lie: the ```` ```console ```` blocks of a markdown file, run and compared.
//!
//! A block is a terminal session. `$ COMMAND` lines are commands; the lines after one, up to
//! the next command or the end of the block, are its output (stdout and stderr as a
//! terminal shows them, interleaved). In the output:
//!
//! * `[..]` matches any text within a line (pids, sizes, times);
//! * a line `...` matches any number of lines, none included;
//! * a last line `? N` says the command exits with N (otherwise it must exit 0).
//!
//! A block that shows what only some hosts print has a comment on the line right above
//! its fence, `<!-- transcript: when CONDITION -->`, and runs only where the condition
//! holds (elsewhere it is reported as not run, with the reason): `cgroup-v2` (a pure
//! unified hierarchy, what most laptops have), `cgroup-v1` (the controllers on v1
//! hierarchies: a v1 or hybrid host), `linux>=X.Y` and `linux<X.Y`, and `docker-hub` (a
//! TCP connection to Docker Hub's registry, `registry-1.docker.io:443`, succeeds within
//! 3 s: the machine has the internet). A note then shows each host's variant, one after
//! the other.
//!
//! Each block runs as one `sh` script, so variables and `cd` carry from one command to the
//! next, as they would for a learner typing them. All blocks of a file share one fresh
//! working directory, so a file made in one block (a rootfs, say) is there in the next.
//! The script runs in its own process group, which is killed when the block ends: a
//! background process a block forgot is not left behind.
use std::fs;
use std::io::Read;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One command and what it prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Line number of the `$` line in the markdown file.
    pub line: usize,
    /// The command, without `$ `.
    pub command: String,
    /// The expected output lines (patterns).
    pub expected: Vec<String>,
    /// The expected exit status.
    pub status: i32,
}

/// One ```` ```console ```` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// Line number of the opening fence.
    pub line: usize,
    /// Its commands.
    pub steps: Vec<Step>,
    /// Where it runs: the `CONDITION` of a `<!-- transcript: when CONDITION -->` line
    /// right above the fence, if any.
    pub when: Option<String>,
}

/// Whether `condition` (see the module's documentation) holds on this host, or why it is
/// not a condition.
pub fn condition_holds(condition: &str) -> Result<bool, String> {
    let version = |v: &str| -> Result<(u32, u32), String> {
        let (a, b) = v.split_once('.').unwrap_or((v, "0"));
        match (a.parse(), b.parse()) {
            (Ok(a), Ok(b)) => Ok((a, b)),
            _ => Err(format!("not a kernel version: {v:?}")),
        }
    };
    if let Some(v) = condition.strip_prefix("linux>=") {
        return Ok(crate::kernel_version() >= version(v)?);
    }
    if let Some(v) = condition.strip_prefix("linux<") {
        return Ok(crate::kernel_version() < version(v)?);
    }
    match condition {
        "cgroup-v2" => Ok(crate::pure_cgroup_v2()),
        "cgroup-v1" => Ok(!crate::pure_cgroup_v2()),
        "docker-hub" => Ok(reachable(DOCKER_HUB, Duration::from_secs(3))),
        _ => Err(format!(
            "unknown transcript condition {condition:?} (cgroup-v1, cgroup-v2, linux>=X.Y, linux<X.Y, docker-hub)"
        )),
    }
}

/// Docker Hub's registry, which the `docker-hub` condition tries to reach.
pub const DOCKER_HUB: &str = "registry-1.docker.io:443";

/// Whether a TCP connection to `addr` (`host:port`) succeeds within `timeout`, the name's
/// lookup included. The lookup cannot be given a timeout of its own (getaddrinfo has
/// none), so it runs in a thread that is left to finish by itself if it is too slow.
pub fn reachable(addr: &str, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let (tx, rx) = std::sync::mpsc::channel();
    let addr = addr.to_string();
    std::thread::spawn(move || {
        let connected = addr.to_socket_addrs().into_iter().flatten().any(|a| {
            let left = deadline.saturating_duration_since(Instant::now());
            !left.is_zero() && TcpStream::connect_timeout(&a, left).is_ok()
        });
        let _ = tx.send(connected);
    });
    rx.recv_timeout(timeout).unwrap_or(false)
}

/// Finds the console blocks of a markdown text.
pub fn parse(markdown: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut current: Option<Block> = None;
    let mut previous = "";
    for (i, line) in markdown.lines().enumerate() {
        let n = i + 1;
        let trimmed = line.trim_start();
        match &mut current {
            None => {
                if trimmed.starts_with("```console") {
                    let when = previous
                        .trim()
                        .strip_prefix("<!-- transcript: when ")
                        .and_then(|c| c.strip_suffix("-->"))
                        .map(|c| c.trim().to_string());
                    current = Some(Block {
                        line: n,
                        steps: Vec::new(),
                        when,
                    });
                }
            }
            Some(block) => {
                if trimmed.starts_with("```") {
                    blocks.push(current.take().expect("inside a block"));
                } else if let Some(cmd) = line.strip_prefix("$ ") {
                    block.steps.push(Step {
                        line: n,
                        command: cmd.to_string(),
                        expected: Vec::new(),
                        status: 0,
                    });
                } else if let Some(step) = block.steps.last_mut() {
                    match line.strip_prefix("? ").and_then(|s| s.trim().parse().ok()) {
                        Some(code) => step.status = code,
                        None => step.expected.push(line.trim_end().to_string()),
                    }
                }
            }
        }
        previous = line;
    }
    blocks
}

/// Does `line` match the pattern `pat` (with `[..]` wildcards)?
pub fn line_matches(pat: &str, line: &str) -> bool {
    let parts: Vec<&str> = pat.split("[..]").collect();
    if parts.len() == 1 {
        return pat == line;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !line.starts_with(first) || !line[first.len()..].ends_with(last) {
        return false;
    }
    let mut rest = &line[first.len()..line.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

/// Do the actual lines match the expected patterns (with `...` lines)?
pub fn lines_match(expected: &[String], actual: &[&str]) -> bool {
    match expected.first() {
        None => actual.is_empty(),
        Some(p) if p == "..." => {
            (0..=actual.len()).any(|skip| lines_match(&expected[1..], &actual[skip..]))
        }
        Some(p) => {
            !actual.is_empty()
                && line_matches(p, actual[0])
                && lines_match(&expected[1..], &actual[1..])
        }
    }
}

/// Runs the blocks of markdown files.
#[derive(Debug, Clone)]
pub struct Runner {
    /// Directories put in front of `PATH` (where the chapter's binaries are).
    pub path: Vec<PathBuf>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// How long one block may take.
    pub timeout: Duration,
    /// Make this process the subreaper of what blocks start, and kill every child it has
    /// after each block. Only for a test binary that runs nothing else at the same time.
    pub reap_orphans: bool,
    /// The network namespace the blocks run in (`nsenter --net=`), if not the caller's.
    pub netns: Option<String>,
}

/// Kills and reaps every child of this process (see [`Runner::reap_orphans`]).
fn kill_orphans() {
    let me = std::process::id().to_string();
    for e in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let stat = fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        // The fields after the command name: "S 1234 ..." (state, ppid).
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1));
        if ppid == Some(me.as_str()) {
            crate::kill_and_reap(pid);
        }
    }
}

impl Runner {
    /// A runner that finds binaries in `bin_dir` first.
    pub fn new(bin_dir: &Path) -> Self {
        Runner {
            path: vec![bin_dir.to_path_buf()],
            env: Vec::new(),
            timeout: Duration::from_secs(120),
            reap_orphans: false,
            netns: None,
        }
    }

    /// Runs the blocks in a network namespace ([`crate::netns::Netns::path`]), standing
    /// in for the host.
    pub fn in_netns(mut self, path: String) -> Self {
        self.netns = Some(path);
        self
    }

    /// See [`Runner::reap_orphans`]; makes this process a subreaper.
    pub fn reaping_orphans(mut self) -> Self {
        crate::become_subreaper();
        self.reap_orphans = true;
        self
    }

    /// Adds an environment variable.
    pub fn env(mut self, key: &str, value: impl Into<String>) -> Self {
        self.env.push((key.to_string(), value.into()));
        self
    }

    /// Checks every console block of `file`; the error lists each mismatch with the file
    /// and line, the expected and the actual output. Returns how many commands were checked.
    pub fn check_file(&self, file: &Path) -> Result<usize, String> {
        let text = fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
        let blocks = parse(&text);
        let mut failures = Vec::new();
        let mut checked = 0;
        let work = tempfile::Builder::new()
            .prefix("transcript-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        // Searchable by everyone, like a learner's home directory usually is: a process
        // whose uid was remapped (user namespaces) should fail for the reason the note
        // gives, not because it cannot enter the directory.
        fs::set_permissions(
            work.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .map_err(|e| e.to_string())?;
        for block in &blocks {
            if let Some(when) = &block.when {
                let holds = condition_holds(when)
                    .map_err(|e| format!("{}:{}: {e}", file.display(), block.line))?;
                if !holds {
                    // To the real stderr, past the test harness's capture: shown even when
                    // the test passes, as a skipped test's reason is.
                    use std::io::Write;
                    let _ = writeln!(
                        std::io::stderr(),
                        "{}:{}: block not run here: it shows a host where {when} holds",
                        file.display(),
                        block.line
                    );
                    continue;
                }
            }
            let outputs = self
                .run_block(block, work.path())
                .map_err(|e| format!("{}:{}: {e}", file.display(), block.line))?;
            for (step, (status, output)) in block.steps.iter().zip(outputs) {
                checked += 1;
                let lines: Vec<&str> = output.lines().map(str::trim_end).collect();
                let mut end = lines.len();
                while end > 0 && lines[end - 1].is_empty() {
                    end -= 1;
                }
                if status != step.status || !lines_match(&step.expected, &lines[..end]) {
                    failures.push(format!(
                        "{}:{}: $ {}\n--- expected (exit {}):\n{}\n--- actual (exit {status}):\n{}",
                        file.display(),
                        step.line,
                        step.command,
                        step.status,
                        step.expected.join("\n"),
                        lines[..end].join("\n")
                    ));
                }
            }
        }
        // A block that failed half-way may have left a mount behind: detach it, deepest
        // first, before the working directory goes.
        let mut left = crate::leaks::mounts_under(work.path());
        left.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        for mount in &left {
            let _ = nix::mount::umount2(mount, nix::mount::MntFlags::MNT_DETACH);
        }
        if !left.is_empty() {
            failures.push(format!("{}: left mounted: {left:?}", file.display()));
        }
        if failures.is_empty() {
            Ok(checked)
        } else {
            Err(failures.join("\n\n"))
        }
    }

    /// Runs one block as one script in `dir`; returns each command's exit status and output.
    pub fn run_block(&self, block: &Block, dir: &Path) -> Result<Vec<(i32, String)>, String> {
        const MARK: &str = "@@@transcript-step";
        let mut script = String::new();
        for (i, step) in block.steps.iter().enumerate() {
            script.push_str(&step.command);
            script.push('\n');
            script.push_str(&format!("printf '\\n{MARK} {i} %d\\n' \"$?\"\n"));
        }
        let output_dir = tempfile::Builder::new()
            .prefix("transcript-output-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let out_path = output_dir.path().join("output");
        let out = fs::File::create(&out_path).map_err(|e| e.to_string())?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let mut path = self
            .path
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>();
        path.push(std::env::var("PATH").unwrap_or_default());
        let mut cmd = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("nsenter");
                c.arg(format!("--net={ns}")).arg("--").arg("sh");
                c
            }
            None => Command::new("sh"),
        };
        cmd.arg("-c")
            .arg(&script)
            .current_dir(dir)
            .env("PATH", path.join(":"))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().map_err(|e| format!("sh: {e}"))?;
        let pgid = nix::unistd::Pid::from_raw(child.id() as i32);
        let started = Instant::now();
        let timed_out = loop {
            if child.try_wait().map_err(|e| e.to_string())?.is_some() {
                break false;
            }
            if started.elapsed() > self.timeout {
                break true;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        // Whatever the block left running in its process group goes now, and so does
        // anything that left the group (setsid) but was orphaned to us as subreaper.
        let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
        let _ = child.wait();
        if self.reap_orphans {
            kill_orphans();
        }
        let mut text = String::new();
        fs::File::open(&out_path)
            .and_then(|mut f| f.read_to_string(&mut text))
            .map_err(|e| e.to_string())?;
        if timed_out {
            return Err(format!(
                "the block timed out after {:?}; output so far:\n{text}",
                self.timeout
            ));
        }
        let mut results = Vec::new();
        let mut rest = text.as_str();
        for i in 0..block.steps.len() {
            let marker = format!("\n{MARK} {i} ");
            let Some(at) = rest.find(&marker) else {
                return Err(format!(
                    "the block stopped before command {}; output:\n{text}",
                    i + 1
                ));
            };
            let output = &rest[..at];
            let after = &rest[at + marker.len()..];
            let (status, tail) = after.split_once('\n').unwrap_or((after, ""));
            results.push((status.trim().parse().unwrap_or(-1), output.to_string()));
            rest = tail;
        }
        Ok(results)
    }
}

/// Checks `note` (a path relative to the workspace root, e.g. `notes/01-namespaces.md`)
/// with `runner`, panicking with the report on a mismatch, or when fewer than `min`
/// commands were checked (a note whose blocks stopped being console blocks checks nothing).
pub fn assert_note(runner: &Runner, note: &str, min: usize) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(note);
    match runner.check_file(&path) {
        Ok(n) => assert!(
            n >= min,
            "{note}: only {n} commands checked, expected at least {min}"
        ),
        Err(report) => panic!("{report}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_comment_above_the_fence_says_where_a_block_runs() {
        let md = "<!-- transcript: when cgroup-v2 -->\n```console\n$ true\n```\n\n```console\n$ true\n```\n";
        let blocks = parse(md);
        assert_eq!(blocks[0].when.as_deref(), Some("cgroup-v2"));
        assert_eq!(blocks[1].when, None);
        assert_eq!(
            condition_holds("cgroup-v2").unwrap(),
            !condition_holds("cgroup-v1").unwrap()
        );
        assert!(condition_holds("linux>=2.6").unwrap());
        assert!(!condition_holds("linux<2.6").unwrap());
        assert!(condition_holds("linux>=99").is_ok_and(|b| !b));
        assert!(condition_holds("selinux").is_err());
    }

    #[test]
    fn docker_hub_is_a_condition_that_asks_the_network() {
        let md = "<!-- transcript: when docker-hub -->\n```console\n$ true\n```\n";
        assert_eq!(parse(md)[0].when.as_deref(), Some("docker-hub"));
        // Named among the conditions an unknown one is told about.
        assert!(
            condition_holds("docker-hubb")
                .unwrap_err()
                .contains("docker-hub")
        );
        assert_eq!(DOCKER_HUB, "registry-1.docker.io:443");
        // What it checks, without leaving loopback: a listener answers; a closed port and
        // a malformed address do not, and neither makes it wait past its timeout.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let open = listener.local_addr().unwrap().to_string();
        assert!(reachable(&open, Duration::from_secs(3)));
        drop(listener);
        let started = Instant::now();
        assert!(!reachable(&open, Duration::from_secs(3)));
        assert!(!reachable("not an address", Duration::from_secs(3)));
        assert!(started.elapsed() < Duration::from_secs(7));
    }

    #[test]
    fn parses_commands_outputs_and_exit_codes() {
        let md = "text\n```console\n$ echo hi\nhi\n$ false\n? 1\n```\n```sh\n$ not checked\n```\n";
        let blocks = parse(md);
        assert_eq!(blocks.len(), 1);
        assert_eq!(blocks[0].steps[0].expected, vec!["hi"]);
        assert_eq!(blocks[0].steps[1].status, 1);
        assert_eq!(blocks[0].steps[1].line, 5);
    }

    #[test]
    fn wildcards_match_within_lines_and_across_lines() {
        assert!(line_matches("pid [..] on the host", "pid 42 on the host"));
        assert!(!line_matches("pid [..] on the host", "pid 42 on a host"));
        assert!(line_matches("[..]", ""));
        let exp: Vec<String> = ["a", "...", "z"].iter().map(|s| s.to_string()).collect();
        assert!(lines_match(&exp, &["a", "b", "c", "z"]));
        assert!(lines_match(&exp, &["a", "z"]));
        assert!(!lines_match(&exp, &["a", "b"]));
    }

    #[test]
    fn a_block_runs_as_one_session_and_mismatches_are_reported() {
        let md = "```console\n$ X=5; echo $X\n5\n$ echo $X; (exit 3)\n5\n? 3\n```\n";
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("ok.md");
        fs::write(&f, md).unwrap();
        assert_eq!(Runner::new(Path::new("/nonexistent")).check_file(&f), Ok(2));
        fs::write(&f, "```console\n$ echo 4\n5\n```\n").unwrap();
        let err = Runner::new(Path::new("/nonexistent"))
            .check_file(&f)
            .unwrap_err();
        assert!(err.contains("ok.md:2: $ echo 4"), "{err}");
    }
}
