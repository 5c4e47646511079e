//! What a daemonless runtime must survive: its monitor or CLI killed at any point,
//! concurrent commands, and a store to reconcile with the kernel afterwards.
mod common;

use std::io::{Read, Write};
use std::process::Stdio;
use std::time::Duration;

use common::Md;

fn monitor_pid(id: &str) -> Option<i32> {
    testkit::leaks::processes_with(&format!("__monitor {id}"))
        .into_iter()
        .next()
}

#[test]
fn a_killed_monitor_shows_as_exited_and_rm_releases_everything() {
    let Some(md) = Md::with_busybox() else { return };
    let id = md
        .ok(&["run", "-d", "--name", "orphan", "busybox", "sleep", "1000"])
        .trim()
        .to_string();
    let container_pid = md.state("orphan")["Pid"].as_i64().unwrap() as i32;
    let monitor = monitor_pid(&id).expect("a monitor process");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(monitor),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    // The container dies with its monitor (PR_SET_PDEATHSIG); ps says so at once.
    assert!(testkit::wait_until(10, || !std::path::Path::new(&format!(
        "/proc/{container_pid}"
    ))
    .exists()
        || std::fs::read_to_string(format!(
            "/proc/{container_pid}/stat"
        ))
        .is_ok_and(|s| s.contains(") Z "))));
    let ps = md.ok(&["ps", "-a"]);
    assert!(
        ps.lines()
            .any(|l| l.contains("Exited (137)") && l.ends_with("orphan")),
        "{ps}"
    );
    let state = md.state("orphan");
    assert_eq!(state["Status"], "exited");
    assert_eq!(state["Error"], "the container's monitor died");
    // Its cgroup is still there (nobody removed it) until rm releases it.
    assert!(
        !testkit::leaks::cgroups_named(&id).is_empty(),
        "the dead monitor left its cgroup"
    );
    md.ok(&["rm", "orphan"]);
    assert!(testkit::leaks::cgroups_named(&id).is_empty());
}

/// A foreground `run` is the container's first client, not its monitor (as with docker and
/// podman): SIGKILL of the CLI (a closed terminal, an OOM-killed client) leaves the
/// container running, and it can be attached again.
#[test]
fn a_killed_foreground_client_leaves_the_container_running_and_attachable() {
    let Some(md) = Md::with_busybox() else { return };
    let mut cli = common::KillOnDrop(
        md.cmd()
            .args(["run", "--name", "fg", "busybox", "sleep", "1000"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    assert!(md.wait_status("fg", "running"));
    let id = md.ids()[0].clone();
    cli.kill().unwrap(); // SIGKILL
    cli.wait().unwrap();
    common::pause(300);
    assert_eq!(
        md.state("fg")["Status"],
        "running",
        "the client took the container along"
    );
    let ps = md.ok(&["ps", "--format", "{{.Names}} {{.Status}}"]);
    assert!(ps.starts_with("fg Up"), "{ps}");
    // Attach again; the container's end is this client's end.
    let attach = md
        .cmd()
        .args(["attach", "fg"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    common::pause(300);
    md.ok(&["kill", "fg"]);
    assert_eq!(attach.wait_with_output().unwrap().status.code(), Some(137));
    md.ok(&["rm", "fg"]);
    assert!(testkit::leaks::cgroups_named(&id).is_empty());
}

/// A client that never reads (its stdout a pipe nobody empties) while the container writes
/// 100 MB: the monitor drops it once it is far enough behind; the container finishes, the
/// log has every byte, and a client that reads gets every byte too.
#[test]
fn a_client_that_never_reads_cannot_stall_the_container_its_log_or_other_clients() {
    let Some(md) = Md::with_busybox() else { return };
    const SIZE: usize = 100_000_000;
    md.ok(&[
        "create",
        "--name",
        "slow",
        // One log file big enough for all of it (the default rotation keeps 100 MB in
        // five files, less than 100 MB of output once framed as json).
        "--log-opt",
        "max-size=200m",
        "busybox",
        "sh",
        "-c",
        "sleep 2; head -c 100000000 /dev/zero | tr '\\0' x",
    ]);
    // The stuck client: its stdout is a pipe we never read.
    let mut stuck = common::KillOnDrop(
        md.cmd()
            .args(["start", "-a", "slow"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    assert!(md.wait_status("slow", "running"));
    // A client that reads, attached before the output begins.
    let reader = md
        .cmd()
        .args(["attach", "--no-stdin", "slow"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let reader = std::thread::spawn(move || reader.wait_with_output().unwrap());
    let waited = md.run(&["wait", "slow"]);
    assert_eq!(
        String::from_utf8_lossy(&waited.stdout).trim(),
        "0",
        "{waited:?}"
    );
    let read = reader.join().unwrap();
    assert_eq!(read.status.code(), Some(0));
    assert_eq!(read.stdout.len(), SIZE, "the reading client missed output");
    // The json-file log holds every byte, in entries of at most 16 KiB.
    let log_path = md.ok(&["inspect", "-f", "{{.LogPath}}", "slow"]);
    let log = std::fs::read_to_string(log_path.trim()).unwrap();
    let logged: usize = log
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["log"].as_str().unwrap().len()
        })
        .sum();
    assert_eq!(logged, SIZE);
    // The stuck client was dropped, not waited for; it ends once its own pipe drains.
    let mut sink = Vec::new();
    stuck.stdout.take().unwrap().read_to_end(&mut sink).unwrap();
    assert!(
        sink.len() < SIZE,
        "a dropped client got everything: {}",
        sink.len()
    );
    stuck.wait().unwrap();
    md.ok(&["rm", "slow"]);
}

/// `rm -f` works whatever a client is doing: here one that stopped reading.
#[test]
fn rm_f_of_a_container_with_a_stuck_client_succeeds() {
    let Some(md) = Md::with_busybox() else { return };
    let mut stuck = common::KillOnDrop(
        md.cmd()
            .args([
                "run",
                "--name",
                "chatty",
                "busybox",
                "sh",
                "-c",
                "while :; do echo line; done",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    assert!(md.wait_status("chatty", "running"));
    common::pause(500); // its stdout pipe and socket are full by now
    let started = std::time::Instant::now();
    md.ok(&["rm", "-f", "chatty"]);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(md.ids().is_empty());
    drop(stuck.stdout.take());
    stuck.wait().unwrap();
}

/// A `create` refused for a bad flag writes nothing: no record, and no anonymous volume
/// made for the container that never was.
#[test]
fn a_refused_create_leaves_no_volume_behind() {
    let Some(md) = Md::with_busybox() else { return };
    // A flag's value is docker's CLI's own check (125); a container that is not there is
    // its daemon's answer (1).
    for (bad, code) in [
        (&["--add-host", "no-address-here"][..], 125),
        (&["--pid", "container:nosuch"][..], 1),
        (&["--memory-swap", "lots"][..], 125),
    ] {
        let mut args = vec!["create", "-v", "/data"];
        args.extend_from_slice(bad);
        args.push("busybox");
        let out = md.run(&args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{bad:?}: {}",
            testkit::show(&out)
        );
        assert_eq!(md.ok(&["volume", "ls", "-q"]), "", "{bad:?} left a volume");
        assert!(md.ids().is_empty());
    }
}

#[test]
fn twenty_parallel_runs_and_removals_do_not_corrupt_the_store() {
    let Some(md) = Md::with_busybox() else { return };
    let mut children = Vec::new();
    for i in 0..20 {
        let name = format!("par{i}");
        children.push(
            md.cmd()
                .args(["run", "-d", "--name", &name, "busybox", "sleep", "1000"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        );
    }
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", testkit::show(&out));
    }
    let ps = md.ok(&["ps", "-q"]);
    assert_eq!(ps.lines().count(), 20, "{ps}");
    // Removed in parallel too.
    let ids = md.ids();
    let removals: Vec<_> = ids
        .iter()
        .map(|id| {
            md.cmd()
                .args(["rm", "-f", id])
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut r in removals {
        assert!(r.wait().unwrap().success());
    }
    assert!(md.ids().is_empty());
    md.assert_clean(&ids);
}

#[test]
fn rm_f_during_start_wins_cleanly() {
    let Some(md) = Md::with_busybox() else { return };
    for round in 0..5 {
        let name = format!("race{round}");
        md.ok(&["create", "--name", &name, "busybox", "sleep", "1000"]);
        let id = md.ids().into_iter().next().unwrap();
        let start = md
            .cmd()
            .args(["start", &name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(round * 3));
        let rm = md.run(&["rm", "-f", &name]);
        let mut start = start;
        start.wait().unwrap();
        // Whoever won, the container is gone or removable, and nothing is left.
        if !rm.status.success() {
            md.ok(&["rm", "-f", &name]);
        }
        assert!(
            testkit::wait_until(10, || testkit::leaks::cgroups_named(&id).is_empty()),
            "round {round}: cgroup left"
        );
        assert!(md.ids().is_empty(), "round {round}: {:?}", md.ids());
    }
}

/// `rename`: a name in use is refused; a rename killed after the record changed but
/// before the old name was let go leaves that name free for the next container, not
/// pointing at the renamed one.
#[test]
fn rename_refuses_a_taken_name_and_a_half_done_one_frees_the_old_name() {
    let Some(md) = Md::with_busybox() else { return };
    md.ok(&["create", "--name", "one", "busybox", "true"]);
    md.ok(&["create", "--name", "two", "busybox", "true"]);
    let taken = md.run(&["rename", "one", "two"]);
    assert_eq!(taken.status.code(), Some(1), "{}", testkit::show(&taken));
    let same = md.run(&["rename", "one", "one"]);
    assert_eq!(same.status.code(), Some(1));
    md.ok(&["rename", "one", "three"]);
    let id_c = md.ok(&["inspect", "-f", "{{.Id}}", "three"]);
    // What a rename killed at the wrong moment leaves: names/one still naming three's record.
    std::fs::write(md.path().join("names").join("one"), id_c.trim()).unwrap();
    assert_eq!(
        md.run(&["inspect", "one"]).status.code(),
        Some(1),
        "one is not three's name"
    );
    md.ok(&["create", "--name", "one", "busybox", "true"]);
    let id_a = md.ok(&["inspect", "-f", "{{.Id}}", "one"]);
    assert_ne!(id_a, id_c);
    let names = md.ok(&["ps", "-a", "--format", "{{.Names}}"]);
    let mut names: Vec<&str> = names.lines().collect();
    names.sort_unstable();
    assert_eq!(names, ["one", "three", "two"]);
    // What a `create` killed before it wrote config.json leaves: a name pointing at a
    // directory no live `create` holds (`.creating` unlocked). The name is free.
    let debris = "d".repeat(64);
    std::fs::create_dir_all(md.path().join("containers").join(&debris)).unwrap();
    std::fs::write(
        md.path().join("containers").join(&debris).join(".creating"),
        "",
    )
    .unwrap();
    std::fs::write(md.path().join("names").join("four"), &debris).unwrap();
    md.ok(&["create", "--name", "four", "busybox", "true"]);
    let pruned = md.ok(&["system", "prune", "-f"]);
    assert!(
        !md.path().join("containers").join(&debris).exists(),
        "system prune removes the half-made record: {pruned}"
    );
    md.remove_all();
}

/// Generated names come from a few hundred adjective_name pairs, so sixty containers
/// nearly always draw one twice: the second gets a digit added (docker's generator does
/// the same), never an "already in use" error.
#[test]
fn sixty_unnamed_containers_all_get_a_name_of_their_own() {
    let Some(md) = Md::with_busybox() else { return };
    for i in 0..60 {
        let out = md.run(&["create", "busybox", "true"]);
        assert!(
            out.status.success(),
            "container {i}: {}",
            testkit::show(&out)
        );
    }
    let names = md.ok(&["ps", "-a", "--format", "{{.Names}}"]);
    let mut names: Vec<&str> = names.lines().collect();
    assert_eq!(names.len(), 60);
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), 60, "names are unique");
    md.remove_all();
}

/// `rm -f` kills a `--rm` container whose monitor then removes it too: whoever gets to
/// the record first, `rm -f` succeeds and prints the name, as docker's does.
#[test]
fn rm_f_of_a_running_rm_container_succeeds_whoever_removes_it() {
    let Some(md) = Md::with_busybox() else { return };
    for round in 0..5 {
        let name = format!("auto{round}");
        md.ok(&[
            "run", "-d", "--rm", "--name", &name, "busybox", "sleep", "1000",
        ]);
        let ids = md.ids();
        assert_eq!(
            md.ok(&["rm", "-f", &name]),
            format!("{name}\n"),
            "round {round}"
        );
        assert!(
            testkit::wait_until(10, || md.ids().is_empty()),
            "round {round}"
        );
        md.assert_clean(&ids);
    }
}

#[test]
fn attach_relays_stdin_and_output_and_returns_the_exit_code() {
    let Some(md) = Md::with_busybox() else { return };
    md.ok(&[
        "run",
        "-d",
        "-i",
        "--name",
        "echoer",
        "busybox",
        "sh",
        "-c",
        "read a; echo got: $a; read b; echo got: $b; exit 4",
    ]);
    let mut attach = md
        .cmd()
        .args(["attach", "echoer"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = attach.stdin.take().unwrap();
    stdin.write_all(b"one\ntwo\n").unwrap();
    drop(stdin); // our input ends; the output keeps coming until the container exits
    let mut out = String::new();
    attach
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert_eq!(out, "got: one\ngot: two\n");
    assert_eq!(attach.wait().unwrap().code(), Some(4));
    assert_eq!(md.ok(&["logs", "echoer"]), "got: one\ngot: two\n");
}
