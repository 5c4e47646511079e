//! mini-docker against Debian's real Docker (`docker.io` 20.10), case by case.
//!
//! The harness starts a `dockerd` of its own (its own `--data-root`, `--exec-root`,
//! `--pidfile` and socket; the `vfs` storage driver, so it leaves no mount behind) inside a
//! network namespace the test creates: its default bridge `docker0` lives there, and
//! `--iptables=false` leaves every firewall alone. It loads the same busybox image into
//! both (`mini-docker save busybox | docker load`), and runs every case of
//! `tests/parity/cases.txt` through both:
//! Debian's own `/usr/bin/docker` against that daemon, and mini-docker against a store of
//! its own. Each case says what to compare: the exit code, stdout, the first line of
//! stderr, the keys and value types of stdout's JSON. IDs, times and sizes are redacted
//! first. It prints `same` or the two outputs side by side, and a total.
//!
//! `tests/parity/divergences.txt` lists the cases that differ today, each `deliberate`
//! (a difference kept on purpose, with its reason) or `pending` (a divergence to fix).
//! The test fails when a case differs that is not listed, and when a listed case no longer
//! differs (take it off the list): the list is always exactly today's truth.
//!
//! Each tool's commands run in its own namespace: docker's beside its daemon, mini-docker's
//! in the one its store's tests use, with `MINI_DOCKER_BIP=172.17.0.1/16` so that its
//! default bridge has docker's addresses. Most cases say `--network none`; the bridge cases
//! use the default network, user networks and published ports.
mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::LazyLock;

use common::Md;
use regex::Regex;

/// One case of `cases.txt`.
#[derive(Debug, Default, Clone)]
struct Case {
    name: String,
    line: usize,
    setup: Vec<String>,
    run: String,
    compare: Vec<String>,
    cleanup: Vec<String>,
}

/// Reads `cases.txt`: blocks separated by blank lines, each starting with `# NAME`, then
/// `setup:`, `run:`, `compare:` and `cleanup:` lines. Commands are shell lines in which
/// `$D` is the tool (`docker -H …` or `mini-docker --root …`).
fn cases(text: &str) -> Vec<Case> {
    let mut out = Vec::new();
    let mut cur: Option<Case> = None;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end();
        if let Some(name) = line.strip_prefix("# ") {
            if let Some(c) = cur.take() {
                out.push(c);
            }
            cur = Some(Case {
                name: name.trim().to_string(),
                line: i + 1,
                ..Default::default()
            });
            continue;
        }
        if line.is_empty() || line.starts_with("##") {
            continue;
        }
        let c = cur
            .as_mut()
            .unwrap_or_else(|| panic!("cases.txt:{}: a line before the first `# NAME`", i + 1));
        let (key, value) = line
            .split_once(':')
            .unwrap_or_else(|| panic!("cases.txt:{}: expected KEY: VALUE", i + 1));
        let value = value.trim().to_string();
        match key {
            "setup" => c.setup.push(value),
            "run" => c.run = value,
            "compare" => c.compare = value.split_whitespace().map(str::to_string).collect(),
            "cleanup" => c.cleanup.push(value),
            other => panic!("cases.txt:{}: unknown key {other:?}", i + 1),
        }
    }
    out.extend(cur);
    for c in &out {
        assert!(
            !c.run.is_empty(),
            "cases.txt:{}: {} has no run:",
            c.line,
            c.name
        );
        assert!(
            !c.compare.is_empty(),
            "cases.txt:{}: {} has no compare:",
            c.line,
            c.name
        );
    }
    out
}

/// IDs, digests, times and sizes: what differs between any two runs.
fn redact(text: &str) -> String {
    static RULES: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
        [
            (r"sha256:[0-9a-f]{64}", "sha256:[DIGEST]"),
            (r"\b[0-9a-f]{64}\b", "[ID]"),
            (r"\b[0-9a-f]{12}\b", "[ID]"),
            (
                r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)",
                "[TIME]",
            ),
            (r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4} \w+", "[TIME]"),
            (
                r"(Less than a second|About an? (minute|hour)|\d+ (second|minute|hour|day)s?)",
                "[DURATION]",
            ),
            (r"\b\d+(\.\d+)?(B|kB|MB|GB)\b", "[SIZE]"),
        ]
        .into_iter()
        .map(|(r, w)| (Regex::new(r).expect("valid"), w))
        .collect()
    });
    let mut s = text.to_string();
    for (re, with) in RULES.iter() {
        s = re.replace_all(&s, *with).into_owned();
    }
    // Tables: runs of spaces between columns depend on the widths of redacted cells.
    static SPACES: LazyLock<Regex> = LazyLock::new(|| Regex::new(r" {2,}").expect("valid"));
    SPACES.replace_all(&s, "  ").into_owned()
}

/// The first line of stderr, without the tool's own prefixes: docker's client says
/// `docker: Error response from daemon: …` or `Error response from daemon: …` for what
/// its daemon refused, `Error: …` for its own checks; mini-docker has no daemon (see the
/// deliberate differences). A trailing period and docker's "See '…--help'" go too.
fn stderr_first(o: &Output) -> String {
    let text = String::from_utf8_lossy(&o.stderr);
    let first = text.lines().next().unwrap_or_default();
    let mut s = first.trim().to_string();
    for p in ["docker: ", "mini-docker: "] {
        if let Some(rest) = s.strip_prefix(p) {
            s = rest.to_string();
        }
    }
    for p in ["Error response from daemon: ", "Error: "] {
        if let Some(rest) = s.strip_prefix(p) {
            s = rest.to_string();
        }
    }
    redact(s.trim_end_matches('.'))
}

/// Every key path of a JSON value with its type: `[0].State.Pid: number`.
fn shape(v: &serde_json::Value, path: &str, out: &mut BTreeMap<String, &'static str>) {
    use serde_json::Value as V;
    let kind = match v {
        V::Null => "null",
        V::Bool(_) => "bool",
        V::Number(_) => "number",
        V::String(_) => "string",
        V::Array(_) => "array",
        V::Object(_) => "object",
    };
    out.insert(path.to_string(), kind);
    match v {
        V::Array(a) => {
            if let Some(first) = a.first() {
                shape(first, &format!("{path}[0]"), out);
            }
        }
        V::Object(m) => {
            for (k, x) in m {
                shape(x, &format!("{path}.{k}"), out);
            }
        }
        _ => {}
    }
}

/// The key paths left out of every shape: what the storage driver keeps under
/// `GraphDriver.Data` (this dockerd runs `vfs`, which keeps nothing there; mini-docker's
/// overlay keeps its directories, as docker's overlay2 does).
const DRIVER_DATA: &str = ".GraphDriver.Data";

fn json_shape(o: &Output) -> String {
    match serde_json::from_slice::<serde_json::Value>(&o.stdout) {
        Ok(v) => {
            let mut m = BTreeMap::new();
            shape(&v, "", &mut m);
            m.iter()
                .filter(|(k, _)| !k.contains(DRIVER_DATA))
                .map(|(k, t)| format!("{k}: {t}\n"))
                .collect()
        }
        Err(e) => format!("(not JSON: {e})\n"),
    }
}

/// What one side printed, as compared.
fn view(case: &Case, o: &Output) -> Vec<(String, String)> {
    case.compare
        .iter()
        .map(|what| {
            let text = match what.as_str() {
                "exit" => format!("{:?}", o.status.code()),
                "stdout" => redact(&String::from_utf8_lossy(&o.stdout)),
                "stderr" => stderr_first(o),
                "json" => json_shape(o),
                other => panic!("{}: unknown comparison {other:?}", case.name),
            };
            (what.clone(), text)
        })
        .collect()
}

/// A tool under test: how `$D` expands.
struct Tool {
    name: &'static str,
    d: String,
    netns: Option<String>,
    dir: PathBuf,
    env: Vec<(&'static str, &'static str)>,
}

impl Tool {
    fn sh(&self, line: &str) -> Output {
        let mut c = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("nsenter");
                c.arg(format!("--net={ns}")).arg("--").arg("sh");
                c
            }
            None => Command::new("sh"),
        };
        c.arg("-c")
            .arg(line)
            .env("D", &self.d)
            .envs(self.env.iter().copied())
            .env_remove("MINI_DOCKER_ROOT")
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .output()
            .expect("run sh")
    }
}

/// A dockerd of the test's own, in a network namespace of its own, stopped and removed on
/// drop (the namespace after it).
struct Dockerd {
    child: Child,
    dir: tempfile::TempDir,
    netns: testkit::netns::Netns,
}

impl Dockerd {
    fn start() -> Dockerd {
        let netns = testkit::netns::Netns::new().expect("a network namespace for dockerd");
        let dir = tempfile::Builder::new()
            .prefix("mdk-parity-")
            .tempdir()
            .unwrap();
        let p = |x: &str| dir.path().join(x);
        let log = std::fs::File::create(p("dockerd.log")).unwrap();
        let child = netns
            .command("dockerd")
            .arg("--data-root")
            .arg(p("data"))
            .arg("--exec-root")
            .arg(p("exec"))
            .arg("--pidfile")
            .arg(p("dockerd.pid"))
            .arg("-H")
            .arg(format!("unix://{}", p("docker.sock").display()))
            .args([
                "--iptables=false",
                "--ip6tables=false",
                "--storage-driver=vfs",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start dockerd");
        let d = Dockerd { child, dir, netns };
        let up = testkit::wait_until(30, || {
            Command::new("/usr/bin/docker")
                .args(["-H", &d.host(), "version"])
                .output()
                .is_ok_and(|o| o.status.success())
        });
        assert!(
            up,
            "dockerd did not answer: {}",
            std::fs::read_to_string(d.dir.path().join("dockerd.log")).unwrap_or_default()
        );
        d
    }

    fn host(&self) -> String {
        format!("unix://{}", self.dir.path().join("docker.sock").display())
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let docker = |args: &[&str]| {
            let _ = Command::new("/usr/bin/docker")
                .args(["-H", &self.host()])
                .args(args)
                .stdin(Stdio::null())
                .output();
        };
        // Its containers first, so nothing of theirs outlives the daemon.
        if let Ok(o) = Command::new("/usr/bin/docker")
            .args(["-H", &self.host(), "ps", "-aq"])
            .output()
        {
            let ids = String::from_utf8_lossy(&o.stdout).into_owned();
            let ids: Vec<&str> = ids.split_whitespace().collect();
            if !ids.is_empty() {
                let mut args = vec!["rm", "-f", "-v"];
                args.extend(ids);
                docker(&args);
            }
        }
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let stopped = testkit::wait_until(20, || matches!(self.child.try_wait(), Ok(Some(_))));
        if !stopped {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        // With its bridge, dockerd binds its network namespace at `exec/netns/default` and
        // leaves it there when it stops: unmounted here, deepest first, so nothing of the
        // test outlives it.
        let mut points = testkit::leaks::mounts_under(self.dir.path());
        points.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
        for p in points {
            let _ = nix::mount::umount2(&p, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

/// `divergences.txt`: `NAME | deliberate|pending | why`.
fn divergences(text: &str) -> BTreeMap<String, (String, String)> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let parts: Vec<&str> = l.splitn(3, '|').map(str::trim).collect();
            assert!(
                parts.len() == 3 && ["deliberate", "pending"].contains(&parts[1]),
                "divergences.txt: expected NAME | deliberate|pending | why: {l}"
            );
            (
                parts[0].to_string(),
                (parts[1].to_string(), parts[2].to_string()),
            )
        })
        .collect()
}

#[test]
fn mini_docker_answers_as_dockers_own_cli_and_daemon_do() {
    let Some(md) = Md::with_busybox() else { return };
    testkit::require!(
        Path::new("/usr/bin/docker").exists() && Path::new("/usr/sbin/dockerd").exists(),
        "Debian's docker.io (dockerd and /usr/bin/docker)"
    );
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/parity");
    let mut all = cases(&std::fs::read_to_string(here.join("cases.txt")).unwrap());
    // PARITY_ONLY=TEXT runs the cases whose name contains TEXT (a developer's loop); the
    // list of divergences is then only checked for those.
    let only = std::env::var("PARITY_ONLY").ok();
    if let Some(o) = &only {
        all.retain(|c| c.name.contains(o.as_str()));
    }
    let listed = divergences(&std::fs::read_to_string(here.join("divergences.txt")).unwrap());
    let dockerd = Dockerd::start();
    // The same image in both.
    let load = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{} --root {} save busybox | /usr/bin/docker -H {} load",
            common::BIN,
            md.root_text(),
            dockerd.host()
        ))
        .output()
        .unwrap();
    assert!(load.status.success(), "{}", testkit::show(&load));
    let work = tempfile::tempdir().unwrap();
    let docker = Tool {
        name: "docker",
        d: format!("/usr/bin/docker -H {}", dockerd.host()),
        netns: Some(dockerd.netns.path()),
        dir: work.path().to_path_buf(),
        env: Vec::new(),
    };
    let mini = Tool {
        name: "mini-docker",
        d: format!("{} --root {}", common::BIN, md.root_text()),
        netns: md.netns.as_ref().map(|n| n.path()),
        dir: work.path().to_path_buf(),
        // docker's default bridge addresses (its `--bip`), so the cases compare them.
        env: vec![("MINI_DOCKER_BIP", "172.17.0.1/16")],
    };
    let mut differing = Vec::new();
    let mut report = String::new();
    for case in &all {
        let mut views = Vec::new();
        for tool in [&docker, &mini] {
            for s in &case.setup {
                let _ = tool.sh(s);
            }
            let o = tool.sh(&case.run);
            if std::env::var_os("PARITY_RAW").is_some() {
                println!("--- {} {}:\n{}", tool.name, case.name, testkit::show(&o));
            }
            views.push(view(case, &o));
            for s in &case.cleanup {
                let _ = tool.sh(s);
            }
        }
        if views[0] == views[1] {
            report.push_str(&format!("same     {}\n", case.name));
            continue;
        }
        differing.push(case.name.clone());
        let tag = listed.get(&case.name).map_or("NEW", |(k, _)| k.as_str());
        report.push_str(&format!(
            "differs  {} [{tag}]  (cases.txt:{})\n",
            case.name, case.line
        ));
        for ((what, a), (_, b)) in views[0].iter().zip(&views[1]) {
            if a != b {
                report.push_str(&format!(
                    "    {what}:\n      {}: {}\n      {}: {}\n",
                    docker.name,
                    a.trim_end().replace('\n', "\n        "),
                    mini.name,
                    b.trim_end().replace('\n', "\n        ")
                ));
            }
        }
    }
    let same = all.len() - differing.len();
    let deliberate = differing
        .iter()
        .filter(|n| listed.get(*n).is_some_and(|(k, _)| k == "deliberate"))
        .count();
    report.push_str(&format!(
        "\n{} cases: {same} same, {} differ ({deliberate} deliberate, {} pending or new)\n",
        all.len(),
        differing.len(),
        differing.len() - deliberate
    ));
    // The deliberate ones apart, each with its reason, as divergences.txt gives it.
    let kept: Vec<String> = differing
        .iter()
        .filter_map(|n| match listed.get(n) {
            Some((k, why)) if k == "deliberate" => Some(format!("  {n}: {why}\n")),
            _ => None,
        })
        .collect();
    if !kept.is_empty() {
        report.push_str(&format!("\ndeliberate differences:\n{}", kept.concat()));
    }
    println!("{report}");
    // Nothing of dockerd's left mounted once it is gone.
    let dir = dockerd.dir.path().to_path_buf();
    drop(dockerd);
    testkit::leaks::assert_no_mounts_under(&dir);
    let unlisted: Vec<&String> = differing
        .iter()
        .filter(|n| !listed.contains_key(*n))
        .collect();
    let fixed: Vec<&String> = listed
        .keys()
        .filter(|n| !differing.contains(n) && all.iter().any(|c| &c.name == *n))
        .collect();
    let unknown: Vec<&String> = listed
        .keys()
        .filter(|n| only.is_none() && !all.iter().any(|c| &c.name == *n))
        .collect();
    assert!(
        unlisted.is_empty() && fixed.is_empty() && unknown.is_empty(),
        "{report}\nnew differences (fix them, or list them in divergences.txt): {unlisted:?}\n\
         listed but now the same (take them off the list): {fixed:?}\n\
         listed but no such case: {unknown:?}"
    );
}

#[test]
fn cases_parse_and_redaction_keeps_what_matters() {
    let c = cases(
        "# exit code\nsetup: $D rm -f x\nrun: $D run --rm busybox false\ncompare: exit stderr\n\n# two\nrun: $D ps\ncompare: stdout\n",
    );
    assert_eq!(c.len(), 2);
    assert_eq!(c[0].setup, ["$D rm -f x"]);
    assert_eq!(c[0].compare, ["exit", "stderr"]);
    assert_eq!(
        redact("3f2c1a9b8e7d   busybox   Up 3 seconds   1.99MB"),
        "[ID]  busybox  Up [DURATION]  [SIZE]"
    );
}
