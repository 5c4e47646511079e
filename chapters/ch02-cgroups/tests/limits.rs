//! The limits, enforced for real by the host's cgroups, through the binary, as root.
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use ch02_cgroups::sys::Kernel;
use ch02_cgroups::{Cgroup, Controller, Layout};
use testkit::{leaks, require, require_cgroup_layout, require_root, show};

const BIN: &str = env!("CARGO_BIN_EXE_ch02-cgroups");

/// Runs ch02-cgroups and returns its output and its pid (which names its cgroup).
fn ch02(args: &[&str]) -> (Output, u32) {
    let child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ch02-cgroups");
    let pid = child.id();
    (child.wait_with_output().unwrap(), pid)
}

fn assert_cgroup_gone(pid: u32) {
    let left = leaks::cgroups_named(&format!("ch02-{pid}"));
    assert!(left.is_empty(), "cgroups left behind: {left:?}");
}

/// Numbers that depend on timing and the allocator become `N`; how far the allocation
/// loop got before the OOM kill varies by a step, so those lines go.
fn numbers(text: &str) -> String {
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with("allocated "))
        .collect();
    testkit::redact::numbers(&(kept.join("\n") + "\n"))
}

#[test]
fn memory_past_the_limit_is_oom_killed_not_slowed() {
    require_root!();
    let (out, pid) = ch02(&["demo", "memory"]);
    assert_cgroup_gone(pid);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.matches("allocated ").count() >= 3, "{text}");
    insta::assert_snapshot!(show(&out).lines().next().unwrap(), @"exit: 0");
    // The share of a CPU is shown once a command has run for half a second, which an
    // emulated guest (the VM lanes' TCG) takes to fill 32 MiB: left out.
    insta::assert_snapshot!(numbers(&text).replace(" = N CPUs", ""), @r#"
    Memory limit N MiB, no swap. The program allocates N MiB at a time and writes to every page:
    ch02-cgroups: "ch02-cgroups hog memory --step 4m" was killed by the OOM killer (memory limit N MiB)
      memory: peak N MiB, limit N MiB, N OOM kill
      cpu:    N s of CPU time in N s, no limit
      pids:   no limit
    It was not slowed down: once the cgroup could not reclaim enough memory to stay under
    its limit, the kernel's OOM killer sent SIGKILL (exit code N = N + N).
    "#);
}

#[test]
fn a_fork_loop_stops_at_the_pids_limit_while_the_host_forks_on() {
    require_root!();
    let (out, pid) = ch02(&["demo", "pids"]);
    assert_cgroup_gone(pid);
    insta::assert_snapshot!(numbers(&show(&out)), @r#"
    exit: N
    --- stdout
    Process limit N. The program forks children that sleep, until fork fails:
    forked N children; fork number N failed: clone3(N, SIGCHLD): EAGAIN (Try again)
    While the cgroup still holds N processes (pids.max N), the host forks as usual: `true` ran and exited N.
    ch02-cgroups: "ch02-cgroups hog fork" exited with code N
      memory: peak N MiB, no limit
      cpu:    N s of CPU time in N s, no limit
      pids:   limit N, N fork refused
    The kernel refused the 20th process with EAGAIN, inside the cgroup only.
    "#);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("forked 19 children; fork number 20 failed"),
        "{text}"
    );
    assert!(
        text.contains("still holds 19 processes (pids.max 20)"),
        "{text}"
    );
}

#[test]
fn a_busy_loop_under_half_a_cpu_gets_about_half_a_cpu() {
    require_root!();
    let (out, pid) = ch02(&["demo", "cpu"]);
    assert_cgroup_gone(pid);
    let text = String::from_utf8_lossy(&out.stdout);
    // The demo itself checks that the measured share is within 0.35..0.65 and exits 0.
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let share: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("Measured share: "))
        .and_then(|l| l.split(", ").nth(1))
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("a measured share");
    assert!((0.35..=0.65).contains(&share), "{text}");
    assert!(text.contains("throttled in"), "{text}");
}

#[test]
fn run_reports_how_the_command_ended_and_passes_its_exit_code_on() {
    require_root!();
    let (out, pid) = ch02(&[
        "run",
        "--memory",
        "64m",
        "--pids",
        "10",
        "--cpus",
        "1",
        "--",
        "sh",
        "-c",
        "echo hello; exit 3",
    ]);
    assert_cgroup_gone(pid);
    insta::assert_snapshot!(numbers(&show(&out)), @r#"
    exit: N
    --- stdout
    hello
    --- stderr
    ch02-cgroups: "sh -c echo hello; exit N" exited with code N
      memory: peak N KiB, limit N MiB
      cpu:    N s of CPU time in N s, limit N CPUs, throttled in N of N periods
      pids:   limit N
    "#);
    assert_eq!(out.status.code(), Some(3));
}

#[test]
fn a_bad_limit_is_reported_and_leaves_no_cgroup() {
    require_root!();
    let (out, pid) = ch02(&["run", "--cpuset", "zero", "--", "true"]);
    assert_cgroup_gone(pid);
    // The cpuset hierarchy is /sys/fs/cgroup/cpuset on a v1 or hybrid host, /sys/fs/cgroup
    // itself on a v2 one (the VM lanes run both).
    let layout = Layout::detect().unwrap();
    let cpuset = layout
        .locate(Controller::Cpuset)
        .expect("a cpuset hierarchy");
    let shown = show(&out)
        .replace(&pid.to_string(), "[CH02]")
        .replace(&cpuset.mount_point.display().to_string(), "[CPUSET]");
    insta::assert_snapshot!(shown, @r#"
    exit: 125
    --- stderr
    ch02-cgroups: write("[CPUSET]/mini-docker/ch02-[CH02]/cpuset.cpus", "zero"): EINVAL (Invalid argument)
    "#);
    let (out, _) = ch02(&["run", "--memory", "lots", "--", "true"]);
    insta::assert_snapshot!(show(&out), @r#"
    exit: 2
    --- stderr
    error: invalid value 'lots' for '--memory <BYTES>': invalid size "lots": expected a number with an optional unit b, k, m or g (64m)

    For more information, try '--help'.
    "#);
}

#[test]
fn ctrl_c_stops_the_command_and_removes_the_cgroup() {
    require_root!();
    // Its own process group, as a shell gives a foreground job: Ctrl-C goes to the group.
    let mut cmd = Command::new(BIN);
    cmd.args(["run", "--memory", "64m", "--", "sleep", "1000"])
        .stdin(Stdio::null())
        .stderr(Stdio::piped());
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let child = cmd.spawn().unwrap();
    let pid = child.id();
    let layout = Layout::detect().unwrap();
    let memory = layout
        .locate(Controller::Memory)
        .expect("a memory hierarchy");
    let dir = memory.mount_point.join(format!("mini-docker/ch02-{pid}"));
    let ready = testkit::wait_until(10, || {
        std::fs::read_to_string(dir.join("cgroup.procs")).is_ok_and(|p| !p.trim().is_empty())
    });
    assert!(ready, "the command never showed up in {}", dir.display());
    nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("\"sleep 1000\" was killed by SIGINT"),
        "{stderr}"
    );
    assert_cgroup_gone(pid);
}

#[test]
fn the_v2_core_files_track_freeze_and_kill_a_process_tree() {
    require_root!();
    let layout = Layout::detect().unwrap();
    require_cgroup_layout!(layout.unified().is_some(), "a cgroup2 mount");
    let sys = Kernel::new(false);
    let name = testkit::unique_name("ch02-core");
    let cgroup = Cgroup::create(&sys, &layout, &name, &[Controller::Pids]).unwrap();
    let v2 = cgroup
        .dirs()
        .iter()
        .find(|d| d.version == ch02_cgroups::layout::Version::V2)
        .unwrap()
        .path
        .clone();
    // A small tree: sh and its sleeping child, forked only once sh is in the cgroup.
    let mut child = Command::new("sh")
        .args(["-c", "read go; sleep 1000 & wait"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    cgroup
        .add_process(nix::unistd::Pid::from_raw(child.id() as i32))
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"go\n").unwrap();
    assert!(
        testkit::wait_until(5, || cgroup.procs().unwrap().len() == 2),
        "sh and sleep in cgroup.procs"
    );
    let events = |dir: &PathBuf| std::fs::read_to_string(dir.join("cgroup.events")).unwrap();
    assert!(events(&v2).contains("populated 1"), "{}", events(&v2));

    cgroup.freeze(true).unwrap();
    assert!(events(&v2).contains("frozen 1"));
    assert!(cgroup.frozen().unwrap());
    cgroup.freeze(false).unwrap();
    assert!(events(&v2).contains("frozen 0"));

    // cgroup.kill takes the whole tree, the child sh cannot protect its sleep.
    cgroup.kill_all().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
    assert!(events(&v2).contains("populated 0"));
    cgroup.remove().unwrap();
    assert!(leaks::cgroups_named(&name).is_empty());
}

/// `--device-write-bps`: direct writes to the disk go at the rate given, and the cgroup
/// counts them (cgroup v1 counts block I/O only where a rate is set on the device).
#[test]
fn a_write_rate_on_the_disk_slows_direct_writes_and_they_are_counted() {
    require_root!();
    let dir = tempfile::tempdir().unwrap();
    let disk = testkit::disk_of(dir.path());
    require!(disk.is_some(), "a temp directory on a block device");
    let layout = Layout::detect().unwrap();
    require!(
        layout.locate(Controller::Blkio).is_some() || layout.locate(Controller::Io).is_some(),
        "the blkio (v1) or io (v2) controller"
    );
    let disk = disk.unwrap();
    let file = dir.path().join("out");
    let started = std::time::Instant::now();
    let (out, pid) = ch02(&[
        "run",
        "--device-write-bps",
        &format!("{}:1m", disk.display()),
        "--",
        "dd",
        "if=/dev/zero",
        &format!("of={}", file.display()),
        "bs=64k",
        "count=32",
        "oflag=direct",
    ]);
    let took = started.elapsed();
    assert!(out.status.success(), "{}", show(&out));
    // 2 MiB at 1 MiB/s: the throttle holds it back for well over a second (an upper bound
    // would only measure the machine).
    assert!(took.as_secs_f64() > 1.2, "2 MiB at 1 MiB/s took {took:?}");
    let report = String::from_utf8_lossy(&out.stderr);
    let io = report
        .lines()
        .find(|l| l.starts_with("  io:"))
        .unwrap_or_default();
    assert!(io.contains("written 2 MiB"), "{}", show(&out));
    assert!(io.contains("wbps 1 MiB/s"), "{}", show(&out));
    assert_cgroup_gone(pid);

    // Something that is not a block device is refused before anything runs.
    let (out, _) = ch02(&["run", "--device-write-bps", "/dev/null:1m", "--", "true"]);
    assert_eq!(out.status.code(), Some(125), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("/dev/null is not a block device"),
        "{}",
        show(&out)
    );
}

/// cgroup v2's device allow-list: chapter 2's hand-assembled eBPF program, loaded and
/// attached to a cgroup in the v2 hierarchy (on a hybrid host the process stays in the v1
/// devices controller's root, which allows everything: any refusal here is the program's).
#[test]
fn on_v2_an_attached_device_program_lets_only_the_listed_devices_be_opened() {
    require_root!();
    let layout = Layout::detect().unwrap();
    require_cgroup_layout!(layout.unified().is_some(), "a cgroup2 mount");
    let sys = Kernel::new(false);
    // `: </dev/X` opens the node for reading and closes it again: harmless, and what the
    // kernel asks the program about.
    let probe = |cgroup: &Cgroup<'_, dyn ch02_cgroups::sys::Sys>| {
        let mut child = Command::new("sh")
            .args([
                "-c",
                "read go; for d in null zero urandom kmsg; do : </dev/$d && echo $d; done",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        cgroup
            .add_process(nix::unistd::Pid::from_raw(child.id() as i32))
            .unwrap();
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"go\n").unwrap();
        child.wait_with_output().unwrap()
    };
    let name = testkit::unique_name("ch02-devices");
    let open = Cgroup::create(&sys as &dyn ch02_cgroups::sys::Sys, &layout, &name, &[]).unwrap();
    let before = probe(&open);
    assert_eq!(
        String::from_utf8_lossy(&before.stdout),
        "null\nzero\nurandom\nkmsg\n",
        "without a program every device opens: {}",
        show(&before)
    );
    open.apply(&ch02_cgroups::Limits {
        devices: Some(ch02_cgroups::DeviceRule::docker_default()),
        ..Default::default()
    })
    .unwrap();
    let after = probe(&open);
    assert_eq!(
        String::from_utf8_lossy(&after.stdout),
        "null\nzero\nurandom\n",
        "{}",
        show(&after)
    );
    assert!(
        String::from_utf8_lossy(&after.stderr).contains("Operation not permitted"),
        "{}",
        show(&after)
    );
    open.remove().unwrap();
    assert!(leaks::cgroups_named(&name).is_empty());
}
