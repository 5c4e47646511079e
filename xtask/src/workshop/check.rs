//! `cargo xtask check`: runs each exercise's tests and says where the learner stands.
//!
//! The tests are ordinary `cargo test` tests named in [`super::exercises`]. One `cargo
//! test` runs per crate and target, with every selected test as an `--exact` filter, and
//! libtest's own output is read back: `test NAME ... ok|FAILED` lines, then a `---- NAME
//! stdout ----` section per failure. A failure that panicked with `not yet implemented:
//! ID` is an exercise still to do (that is the `todo!` the workshop put there), any other
//! failure is a solution that does not work yet.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use super::exercises::{Exercise, Target};

/// Where an exercise stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Every test of it passed.
    Passed,
    /// Its `todo!` is still there.
    NotYet,
    /// Its tests reach another exercise's `todo!` first.
    Waiting(String),
    /// A test failed: the start of what it printed.
    Failed(String),
    /// Its crate does not compile: the compiler's first error.
    DoesNotCompile(String),
    /// Another crate it builds on does not compile (an earlier chapter): which, and why.
    Blocked(String),
    /// It runs the real thing, which needs root.
    NeedsRoot,
}

impl Status {
    /// The word in the table.
    pub fn word(&self) -> &'static str {
        match self {
            Status::Passed => "passed",
            Status::NotYet => "not yet",
            Status::Waiting(_) => "not yet",
            Status::Failed(_) => "failed",
            Status::DoesNotCompile(_) => "failed",
            Status::Blocked(_) => "blocked",
            Status::NeedsRoot => "skipped",
        }
    }
}

/// What one libtest run said about each test: passed, or the failure's section.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Test name → `None` when it passed, `Some(section)` when it failed.
    pub tests: BTreeMap<String, Option<String>>,
    /// The test process died before its summary (a crash, a stack overflow): what it
    /// printed last on stderr.
    pub died: Option<String>,
}

/// Reads libtest's human output (`--format pretty`): the `test NAME ... ok|FAILED` lines
/// before the first `failures:` line, then one `---- NAME stdout ----` section per failed
/// test. A section ends at the next failed test's header, or at the closing `failures:`
/// list of names; what a test printed itself (which may hold such words) stays inside.
pub fn parse(stdout: &str) -> Outcome {
    let mut out = Outcome::default();
    let lines: Vec<&str> = stdout.lines().collect();
    let mut failed: Vec<String> = Vec::new();
    let mut i = 0;
    while i < lines.len() && lines[i] != "failures:" {
        if let Some(rest) = lines[i].strip_prefix("test ")
            && let Some((name, result)) = rest.rsplit_once(" ... ")
        {
            match result.trim() {
                "ok" => {
                    out.tests.insert(name.to_string(), None);
                }
                "FAILED" => {
                    out.tests.insert(name.to_string(), Some(String::new()));
                    failed.push(name.to_string());
                }
                _ => {}
            }
        }
        i += 1;
    }
    let header = |line: &str| -> Option<String> {
        let name = line.strip_prefix("---- ")?.strip_suffix(" stdout ----")?;
        failed.iter().any(|f| f == name).then(|| name.to_string())
    };
    // The closing list: `failures:`, a blank line, then each failed test indented.
    let closing = |at: usize| -> bool {
        lines[at] == "failures:"
            && lines[at + 1..]
                .iter()
                .find(|l| !l.trim().is_empty())
                .is_some_and(|l| l.starts_with("    ") && failed.iter().any(|f| f == l.trim()))
    };
    let mut current: Option<String> = None;
    while i < lines.len() {
        if let Some(name) = header(lines[i]) {
            current = Some(name);
        } else if closing(i) {
            break;
        } else if let Some(name) = &current
            && let Some(Some(text)) = out.tests.get_mut(name)
        {
            text.push_str(lines[i]);
            text.push('\n');
        }
        i += 1;
    }
    out
}

/// The status of `ex` from its tests' outcome.
pub fn judge(ex: &Exercise, outcome: &Outcome) -> Status {
    let mut failure = None;
    for test in ex.tests {
        match outcome.tests.get(*test) {
            Some(None) => {}
            Some(Some(text)) => {
                if let Some(other) = not_yet(text) {
                    return if other == ex.id {
                        Status::NotYet
                    } else {
                        Status::Waiting(other)
                    };
                }
                failure.get_or_insert_with(|| format!("{test}:\n{}", head(text, 14)));
            }
            None => {
                failure.get_or_insert_with(|| match &outcome.died {
                    Some(tail) => format!("the test process died before {test} ended:\n{tail}"),
                    None => format!("{test} did not run (is it still there?)"),
                });
            }
        }
    }
    match failure {
        None => Status::Passed,
        Some(f) => Status::Failed(f),
    }
}

/// The id in a `not yet implemented: ID: …` panic, if the text has one.
fn not_yet(text: &str) -> Option<String> {
    let at = text.find("not yet implemented: ")?;
    let rest = &text[at + "not yet implemented: ".len()..];
    let id = rest.split(':').next()?.trim();
    super::markers::valid_id(id).then(|| id.to_string())
}

fn head(text: &str, lines: usize) -> String {
    let mut kept: Vec<&str> = text
        .lines()
        .skip_while(|l| l.trim().is_empty())
        .filter(|l| !l.starts_with("note: run with `RUST_BACKTRACE"))
        .take(lines)
        .collect();
    while kept.last().is_some_and(|l| l.trim().is_empty()) {
        kept.pop();
    }
    kept.join("\n")
}

/// Runs the tests of `exercises` in the workspace at `root`, one `cargo test` per crate and
/// target, and judges each exercise.
pub fn run(root: &Path, exercises: &[&Exercise], quiet: bool) -> Vec<(String, Status)> {
    run_in(root, exercises, quiet, None)
}

/// [`run`] quietly, with the build in `target` (another workspace's target directory, so
/// that only what differs from it is rebuilt).
pub fn run_with_target(
    root: &Path,
    exercises: &[&Exercise],
    target: &Path,
) -> Vec<(String, Status)> {
    run_in(root, exercises, true, Some(target))
}

fn run_in(
    root: &Path,
    exercises: &[&Exercise],
    quiet: bool,
    target_dir: Option<&Path>,
) -> Vec<(String, Status)> {
    let is_root = nix::unistd::Uid::effective().is_root();
    let mut groups: BTreeMap<(&str, Target), Vec<&Exercise>> = BTreeMap::new();
    let mut result: BTreeMap<String, Status> = BTreeMap::new();
    for ex in exercises {
        if ex.root && !is_root {
            result.insert(ex.id.to_string(), Status::NeedsRoot);
        } else {
            groups.entry((ex.package, ex.target)).or_default().push(ex);
        }
    }
    for ((package, target), members) in groups {
        let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        // Without backtraces: the panic's message is what the learner needs. With CI set,
        // a test that cannot run here (no busybox, no registry) fails and says what it
        // needs, instead of skipping, which would read as passed.
        cmd.current_dir(root)
            .env("RUST_BACKTRACE", "0")
            .env("CI", "true")
            .env("CARGO_TERM_QUIET", "false")
            .env_remove("RUST_TEST_NOCAPTURE")
            .args(["test", "--color", "never", "-p", package]);
        if let Some(dir) = target_dir {
            cmd.env("CARGO_TARGET_DIR", dir);
        }
        match target {
            Target::Lib => cmd.arg("--lib"),
            Target::Test(name) => cmd.args(["--test", name]),
        };
        cmd.args(["--", "--exact", "--color", "never", "--format", "pretty"]);
        for ex in &members {
            cmd.args(ex.tests);
        }
        if !quiet {
            eprintln!(
                "checking {} ({})",
                members.iter().map(|e| e.id).collect::<Vec<_>>().join(", "),
                target.describe(package)
            );
        }
        let output = match cmd.output() {
            Ok(o) => o,
            Err(e) => {
                for ex in members {
                    result.insert(
                        ex.id.to_string(),
                        Status::DoesNotCompile(format!("cannot run cargo: {e}")),
                    );
                }
                continue;
            }
        };
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let mut outcome = parse(&stdout);
        if outcome.tests.is_empty() && !output.status.success() {
            let first_error = compiler_error(&stderr);
            // An error in another crate (an earlier chapter) is not this exercise's.
            let status = match error_crate(&first_error) {
                Some(other) if other != package => {
                    Status::Blocked(format!("{other} does not compile:\n{first_error}"))
                }
                _ => Status::DoesNotCompile(first_error),
            };
            for ex in members {
                result.insert(ex.id.to_string(), status.clone());
            }
            continue;
        }
        if !output.status.success() && !stdout.contains("test result:") {
            let tail: Vec<&str> = stderr.lines().collect();
            outcome.died = Some(tail[tail.len().saturating_sub(8)..].join("\n"));
        }
        for ex in members {
            result.insert(ex.id.to_string(), judge(ex, &outcome));
        }
    }
    exercises
        .iter()
        .map(|ex| (ex.id.to_string(), result.remove(ex.id).unwrap()))
        .collect()
}

/// The crate a compiler error is in, from its `--> chapters/CRATE/…` line.
fn error_crate(error: &str) -> Option<&str> {
    let path = error.lines().find_map(|l| l.trim().strip_prefix("--> "))?;
    let mut parts = path.split('/');
    match parts.next()? {
        "chapters" => parts.next(),
        other => Some(other),
    }
}

/// The first `error` block of cargo's stderr (or its last lines when there is none).
fn compiler_error(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().collect();
    if let Some(start) = lines.iter().position(|l| l.starts_with("error")) {
        let end = lines[start + 1..]
            .iter()
            .position(|l| l.is_empty())
            .map_or(lines.len(), |p| start + 1 + p);
        return lines[start..end.min(start + 20)].join("\n");
    }
    lines[lines.len().saturating_sub(10)..].join("\n")
}

/// The learner's table: a line per exercise, and under each one not passed the hint and
/// what to run.
pub fn render(
    exercises: &[&Exercise],
    statuses: &[(String, Status)],
    locate: &dyn Fn(&str) -> String,
) -> String {
    let mut out = String::new();
    let width = exercises.iter().map(|e| e.id.len()).max().unwrap_or(0);
    for (ex, (_, status)) in exercises.iter().zip(statuses) {
        out.push_str(&format!(
            "{:width$}  {:6}  {:7}  {}\n",
            ex.id,
            ex.level.word(),
            status.word(),
            ex.title
        ));
        let indent = " ".repeat(width + 2);
        let mut say = |label: &str, text: &str| {
            // Hints are prose, wrapped; commands and test output stay as they are.
            let width = if label == "hint" { 80 } else { usize::MAX };
            for (i, line) in text.lines().flat_map(|l| wrap(l, width)).enumerate() {
                let label = if i == 0 { label } else { "" };
                out.push_str(&format!("{indent}{label:7}{line}\n"));
            }
        };
        match status {
            Status::Passed => {}
            Status::NotYet => {
                say("where", &locate(ex.id));
                say("hint", ex.hint);
            }
            Status::Waiting(other) => {
                say("first", &format!("{other}: its tests go through it"));
            }
            Status::Blocked(why) => {
                say("first", why);
            }
            Status::Failed(text) | Status::DoesNotCompile(text) => {
                say("said", text);
                say("hint", ex.hint);
            }
            Status::NeedsRoot => {
                say(
                    "root",
                    "it runs the real thing: sudo -E env \"PATH=$PATH\" cargo xtask check",
                );
            }
        }
        if *status != Status::Passed {
            say("see", ex.see);
        }
    }
    let count = |w: &str| statuses.iter().filter(|(_, s)| s.word() == w).count();
    out.push_str(&format!(
        "\n{} passed, {} not yet, {} failed, {} blocked, {} skipped, of {}\n",
        count("passed"),
        count("not yet"),
        count("failed"),
        count("blocked"),
        count("skipped"),
        statuses.len()
    ));
    out
}

/// `text` in lines of at most `width` characters, broken at spaces (a longer word stays
/// whole); indentation kept on the first line only.
fn wrap(text: &str, width: usize) -> Vec<String> {
    if text.chars().count() <= width {
        return vec![text.to_string()];
    }
    let mut lines = vec![String::new()];
    for word in text.split(' ') {
        let last = lines.last_mut().expect("one line at least");
        if !last.is_empty() && last.chars().count() + 1 + word.chars().count() > width {
            lines.push(word.to_string());
        } else {
            if !last.is_empty() {
                last.push(' ');
            }
            last.push_str(word);
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workshop::exercises::Level;

    const OUTPUT: &str = "
running 3 tests
test tests::a ... ok
test tests::b ... FAILED
test tests::c ... FAILED

failures:

---- tests::b stdout ----

thread 'tests::b' panicked at src/lib.rs:10:5:
not yet implemented: ch09.two: write it
note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace

---- tests::c stdout ----
thread 'tests::c' panicked at src/lib.rs:20:5:
assertion `left == right` failed
  left: 1
 right: 2

failures:
    tests::b
    tests::c

test result: FAILED. 1 passed; 2 failed; 0 ignored; 0 measured; 5 filtered out; finished in 0.01s
";

    fn ex(id: &'static str, tests: &'static [&'static str]) -> Exercise {
        Exercise {
            id,
            level: Level::Easy,
            title: "t",
            package: "p",
            target: Target::Lib,
            tests,
            root: false,
            hint: "h",
            see: "s",
        }
    }

    #[test]
    fn hints_wrap_at_spaces() {
        assert_eq!(wrap("short", 10), ["short"]);
        assert_eq!(wrap("one two three four", 9), ["one two", "three", "four"]);
        assert_eq!(
            wrap("averyveryverylongword x", 5),
            ["averyveryverylongword", "x"]
        );
    }

    #[test]
    fn libtests_output_gives_each_test_and_its_failure() {
        let o = parse(OUTPUT);
        assert_eq!(o.tests.len(), 3);
        assert_eq!(o.tests["tests::a"], None);
        assert!(o.tests["tests::b"].as_ref().unwrap().contains("ch09.two"));
        assert!(o.tests["tests::c"].as_ref().unwrap().contains("right: 2"));
    }

    #[test]
    fn what_a_test_prints_itself_stays_in_its_section() {
        let out = "
running 2 tests
test a ... FAILED
test b ... ok

failures:

---- a stdout ----
test fake ... ok
failures:
not yet implemented: ch09.one: x

failures:
    a

test result: FAILED. 1 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out
";
        let o = parse(out);
        assert_eq!(o.tests.len(), 2, "{o:?}");
        let a = o.tests["a"].as_ref().unwrap();
        assert!(
            a.contains("test fake ... ok") && a.contains("ch09.one"),
            "{a}"
        );
        assert_eq!(judge(&ex("ch09.one", &["a"]), &o), Status::NotYet);
    }

    #[test]
    fn a_compile_error_is_placed_in_its_crate_and_a_dead_test_process_is_told() {
        let e =
            "error[E0425]: cannot find value `x`\n  --> chapters/ch01-namespaces/src/lib.rs:3:5\n";
        assert_eq!(error_crate(e), Some("ch01-namespaces"));
        assert_eq!(
            error_crate("error: x\n --> xtask/src/main.rs:1:1"),
            Some("xtask")
        );
        assert_eq!(error_crate("error: linking failed"), None);
        let o = Outcome {
            died: Some("thread 'a' has overflowed its stack".into()),
            ..Default::default()
        };
        let Status::Failed(text) = judge(&ex("ch09.one", &["a"]), &o) else {
            panic!()
        };
        assert!(
            text.starts_with("the test process died before a ended"),
            "{text}"
        );
    }

    #[test]
    fn a_todo_is_not_yet_another_exercises_todo_is_waiting_and_anything_else_failed() {
        let o = parse(OUTPUT);
        assert_eq!(judge(&ex("ch09.one", &["tests::a"]), &o), Status::Passed);
        assert_eq!(judge(&ex("ch09.two", &["tests::b"]), &o), Status::NotYet);
        assert_eq!(
            judge(&ex("ch09.one", &["tests::a", "tests::b"]), &o),
            Status::Waiting("ch09.two".into())
        );
        let Status::Failed(text) = judge(&ex("ch09.three", &["tests::c"]), &o) else {
            panic!()
        };
        assert!(
            text.starts_with("tests::c:\nthread") && text.ends_with("right: 2"),
            "{text}"
        );
        let Status::Failed(text) = judge(&ex("ch09.four", &["tests::gone"]), &o) else {
            panic!()
        };
        assert_eq!(text, "tests::gone did not run (is it still there?)");
    }
}
