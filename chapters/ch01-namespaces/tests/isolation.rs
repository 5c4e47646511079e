//! The seed demonstrations, through the real binary, as root: what a process in new
//! namespaces sees, and what the host keeps seeing.
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output, Stdio};

use testkit::{redact, require_root, show, show_with};

fn ch01(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ch01-namespaces"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run ch01-namespaces")
}

/// `run --detach`: the child's host pid, printed on stdout.
fn detach(args: &[&str]) -> i32 {
    let mut all = vec!["run", "--detach"];
    all.extend_from_slice(args);
    let out = ch01(&all);
    assert!(out.status.success(), "{}", show(&out));
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a pid on stdout")
}

/// Kills detached children even when an assertion fails half-way.
struct Reap(Vec<i32>);
impl Drop for Reap {
    fn drop(&mut self) {
        for pid in &self.0 {
            testkit::kill_and_reap(*pid);
        }
    }
}

#[test]
fn ps_aux_inside_a_pid_namespace_shows_the_command_as_pid_1_and_nothing_else() {
    require_root!();
    let out = ch01(&["run", "--pid", "--", "ps", "aux"]);
    insta::assert_snapshot!(show(&out).lines().next().unwrap(), @"exit: 0");
    insta::assert_snapshot!(redact::ps_aux(&String::from_utf8_lossy(&out.stdout)), @r"
    USER       PID COMMAND
    root         1 ps aux
    ");
    insta::assert_snapshot!(redact::redact(&String::from_utf8_lossy(&out.stderr)), @r#"ch01-namespaces: "ps aux" is pid [PID] on the host, in new namespaces: pid mnt"#);
    // The host, meanwhile, sees all of its processes, this test among them.
    let host = Command::new("ps").arg("aux").output().unwrap();
    let host = String::from_utf8_lossy(&host.stdout);
    assert!(host.lines().count() > 3, "{host}");
    assert!(host.contains(&format!(" {} ", std::process::id())));
}

#[test]
fn two_pid_namespaces_each_have_a_pid_1_and_a_joined_process_sees_the_first_ones() {
    require_root!();
    testkit::become_subreaper();
    let c1 = detach(&["--pid", "--", "sleep", "1001"]);
    let mut reap = Reap(vec![c1]);
    let c2 = detach(&["--pid", "--", "sleep", "1002"]);
    reap.0.push(c2);

    // Inside each: PID 1 is its own sleep, and the other one is invisible.
    let in_c1 = ch01(&[
        "join",
        "--target",
        &c1.to_string(),
        "--pid",
        "--mount",
        "--",
        "ps",
        "aux",
    ]);
    insta::assert_snapshot!(redact::ps_aux(&String::from_utf8_lossy(&in_c1.stdout)), @r"
    USER       PID COMMAND
    root         1 sleep 1001
    root         2 ps aux
    ");
    let in_c2 = ch01(&[
        "join",
        "--target",
        &c2.to_string(),
        "--pid",
        "--mount",
        "--",
        "ps",
        "aux",
    ]);
    insta::assert_snapshot!(redact::ps_aux(&String::from_utf8_lossy(&in_c2.stdout)), @r"
    USER       PID COMMAND
    root         1 sleep 1002
    root         2 ps aux
    ");
    // The host sees both, under their host pids.
    for (pid, arg) in [(c1, "sleep 1001"), (c2, "sleep 1002")] {
        let cmdline = fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap();
        assert_eq!(cmdline.replace('\0', " ").trim(), arg);
    }
}

#[test]
fn a_hostname_set_inside_leaves_the_hosts_unchanged() {
    require_root!();
    let before = nix::unistd::gethostname().unwrap();
    let out = ch01(&["run", "--hostname", "inside-the-box", "--", "hostname"]);
    insta::assert_snapshot!(show(&out), @r#"
    exit: 0
    --- stdout
    inside-the-box
    --- stderr
    ch01-namespaces: "hostname" is pid [PID] on the host, in new namespaces: uts
    "#);
    assert_eq!(nix::unistd::gethostname().unwrap(), before);
}

#[test]
fn ns_marks_the_namespaces_a_process_does_not_share_with_the_host() {
    require_root!();
    testkit::become_subreaper();
    let pid = detach(&["--uts", "--ipc", "--net", "--", "sleep", "1003"]);
    let _reap = Reap(vec![pid]);
    let out = ch01(&["ns", &pid.to_string()]);
    let table = host_header(&show_with(&out, &[(&format!("PID {pid}"), "PID [CHILD]")]));
    insta::assert_snapshot!(table, @"
    exit: 0
    --- stdout
    NAMESPACE PID [CHILD] HOST
    cgroup cgroup:[INODE] cgroup:[INODE]
    ipc ipc:[INODE] ipc:[INODE] <- differs
    mnt mnt:[INODE] mnt:[INODE]
    net net:[INODE] net:[INODE] <- differs
    pid pid:[INODE] pid:[INODE]
    pid_for_children pid:[INODE] pid:[INODE]
    time time:[INODE] time:[INODE]
    time_for_children time:[INODE] time:[INODE]
    user user:[INODE] user:[INODE]
    uts uts:[INODE] uts:[INODE] <- differs
    3 of 10 namespaces differ from the host's
    ");
}

/// The host column's header says which process stood for the host, which depends on
/// whether this machine lets us read PID 1's links; and column widths depend on how many
/// digits the pid has. Both are evened out: one space between columns.
fn host_header(s: &str) -> String {
    s.replace("HOST (PID 1)", "HOST")
        .replace("HOST (THIS PROCESS)", "HOST")
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

#[test]
fn a_tmpfs_mounted_inside_is_invisible_outside() {
    require_root!();
    testkit::become_subreaper();
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("mnt");
    fs::create_dir(&target).unwrap();
    let script = format!(
        "mount -t tmpfs demo {t} && touch {t}/made-inside && exec sleep 1004",
        t = target.display()
    );
    let pid = detach(&["--mount", "--", "sh", "-c", &script]);
    let _reap = Reap(vec![pid]);
    // Inside (seen through the child's root): the tmpfs and the file on it.
    let inside = format!("/proc/{pid}/root{}/made-inside", target.display());
    assert!(
        testkit::wait_until(10, || fs::metadata(&inside).is_ok()),
        "the file never appeared inside"
    );
    let mountinfo = fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    assert!(
        mountinfo.contains(&format!("{} ", target.display())),
        "{mountinfo}"
    );
    // Outside: no mount and no file.
    testkit::leaks::assert_no_mounts_under(dir.path());
    assert!(!target.join("made-inside").exists());
}

#[test]
fn root_in_a_user_namespace_cannot_do_what_host_root_can() {
    require_root!();
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let file = dir.path().join("owned-by-host-root");
    fs::write(&file, "untouched\n").unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
    let script = format!("id -u; echo changed >> {}", file.display());
    let out = ch01(&["run", "--user", "--", "sh", "-c", &script]);
    let shown = show_with(&out, &[(&file.display().to_string(), "FILE")]);
    insta::assert_snapshot!(shown, @r#"
    exit: 2
    --- stdout
    0
    --- stderr
    ch01-namespaces: "sh -c id -u; echo changed >> FILE" is pid [PID] on the host, in new namespaces: user
    sh: 1: cannot create FILE: Permission denied
    "#);
    assert_eq!(fs::read_to_string(&file).unwrap(), "untouched\n");
}

#[test]
fn exit_codes_are_the_commands_or_dockers() {
    require_root!();
    let code = |args: &[&str]| ch01(args).status.code();
    assert_eq!(code(&["run", "--", "sh", "-c", "exit 7"]), Some(7));
    assert_eq!(code(&["run", "--", "sh", "-c", "kill -9 $$"]), Some(137));
    let not_found = ch01(&["run", "--pid", "--", "no-such-command"]);
    insta::assert_snapshot!(show(&not_found), @r#"
    exit: 127
    --- stderr
    ch01-namespaces: "no-such-command" is pid [PID] on the host, in new namespaces: pid mnt
    ch01-namespaces: exec "no-such-command": executable file not found in $PATH
    "#);
    let not_executable = ch01(&["run", "--", "/etc"]);
    insta::assert_snapshot!(show(&not_executable), @r#"
    exit: 126
    --- stderr
    ch01-namespaces: "/etc" is pid [PID] on the host, in the host's namespaces
    ch01-namespaces: exec "/etc": permission denied
    "#);
}

#[test]
fn signals_sent_to_ch01_reach_the_command_and_its_death_takes_the_command_along() {
    require_root!();
    testkit::become_subreaper();
    // SIGTERM to ch01 is forwarded: sleep (not PID 1 here) dies of it, and ch01 reports 143.
    let mut child = Command::new(env!("CARGO_BIN_EXE_ch01-namespaces"))
        .args(["run", "--", "sleep", "1005"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let sleeper = wait_for_announced_pid(&mut child);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(143));
    testkit::kill_and_reap(sleeper);

    // SIGKILL to ch01 cannot be forwarded; PR_SET_PDEATHSIG kills the command instead,
    // also when ch01 dies in the instant between starting the child and the child's
    // prctl (repeated: under load that window was hit about one time in six).
    for round in 0..20 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ch01-namespaces"))
            .args(["run", "--pid", "--", "sleep", "1006"])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let sleeper = wait_for_announced_pid(&mut child);
        child.kill().unwrap();
        child.wait().unwrap();
        let gone = testkit::wait_until(10, || {
            let _ = nix::sys::wait::waitpid(
                nix::unistd::Pid::from_raw(sleeper),
                Some(nix::sys::wait::WaitPidFlag::WNOHANG),
            );
            !std::path::Path::new(&format!("/proc/{sleeper}")).exists()
        });
        if !gone {
            testkit::kill_and_reap(sleeper);
        }
        assert!(gone, "round {round}: the command outlived its parent");
    }
}

fn wait_for_announced_pid(child: &mut std::process::Child) -> i32 {
    use std::io::{BufRead, BufReader};
    let stderr = child.stderr.take().unwrap();
    let mut line = String::new();
    BufReader::new(stderr).read_line(&mut line).unwrap();
    line.split(" is pid ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no pid in {line:?}"))
}

/// Without root: `--user` makes the user namespace first, which then owns the others, so an
/// ordinary user gets PID, UTS and mount namespaces too. Without `--user` the kernel
/// refuses them (EPERM): creating a namespace needs CAP_SYS_ADMIN in the user namespace
/// that will own it.
#[test]
fn an_ordinary_user_gets_namespaces_through_a_user_namespace() {
    require_root!(); // to become `nobody`
    testkit::require!(
        testkit::rootless::unprivileged_userns(),
        "unprivileged user namespaces"
    );
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_ch01-namespaces"));
    let rootless = testkit::rootless::Rootless::new(bin).unwrap();
    let o = rootless
        .command()
        .args(["run", "--user", "--pid", "--hostname", "box", "--"])
        .args([
            "sh",
            "-c",
            "id -u; hostname; echo $$; cat /proc/self/uid_map",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        text.split_whitespace().collect::<Vec<_>>(),
        ["0", "box", "1", "0", "65534", "1"],
        "{}",
        show(&o)
    );
    let o = rootless
        .command()
        .args(["run", "--pid", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(125), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("EPERM"),
        "{}",
        show(&o)
    );
}
