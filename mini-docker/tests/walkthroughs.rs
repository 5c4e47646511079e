//! The seed notes' walkthroughs, with `docker` replaced by `mini-docker` (and ubuntu by the
//! offline busybox image, whose `ps` takes `aux` but not `-aux`).
mod common;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{BIN, Md};
use testkit::{redact, show};

/// `ps aux` from busybox, reduced to PID and COMMAND (the USER column is constant).
fn busybox_ps(out: &str) -> String {
    out.lines()
        .map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            format!(
                "{} {}\n",
                cols.first().unwrap_or(&""),
                cols.get(2..).map(|c| c.join(" ")).unwrap_or_default()
            )
        })
        .collect()
}

/// Seed 000: two containers that cannot see each other, the host that sees both, and a
/// third container in the first one's PID namespace.
#[test]
fn two_containers_cannot_see_each_other_and_a_third_shares_the_first_ones_pids() {
    let Some(md) = Md::with_busybox() else { return };
    let c1 = md.ok(&[
        "run", "--name", "c1", "-d", "busybox", "sh", "-c", "sleep 1d",
    ]);
    assert_eq!(c1.trim().len(), 64, "run -d prints the full id");
    insta::assert_snapshot!(busybox_ps(&md.ok(&["exec", "c1", "ps", "aux"])), @r"
    PID COMMAND
    1 sleep 1d
    2 ps aux
    ");
    md.ok(&[
        "run",
        "--name",
        "c2",
        "-d",
        "busybox",
        "sh",
        "-c",
        "sleep 999d",
    ]);
    insta::assert_snapshot!(busybox_ps(&md.ok(&["exec", "c2", "ps", "aux"])), @r"
    PID COMMAND
    1 sleep 999d
    2 ps aux
    ");
    // The host sees both sleeps, under host pids.
    let host_pid = |name: &str| md.state(name)["Pid"].as_i64().unwrap();
    for (name, args) in [("c1", "sleep 1d"), ("c2", "sleep 999d")] {
        let cmdline = std::fs::read_to_string(format!("/proc/{}/cmdline", host_pid(name))).unwrap();
        assert_eq!(cmdline.replace('\0', " ").trim(), args);
    }
    assert_eq!(md.ok(&["rm", "c2", "--force"]), "c2\n");
    // The seed's typo first: docker says what is wrong with the mode.
    let typo = md.run(&[
        "run",
        "--name",
        "c2",
        "--pid=contariner:c1",
        "-d",
        "busybox",
        "sh",
        "-c",
        "sleep 999d",
    ]);
    insta::assert_snapshot!(testkit::show(&typo), @r#"
    exit: 125
    --- stderr
    Error: invalid pid mode: "contariner:c1"
    "#);
    md.ok(&[
        "run",
        "--name",
        "c2",
        "--pid=container:c1",
        "-d",
        "busybox",
        "sh",
        "-c",
        "sleep 999d",
    ]);
    let from_c2 = busybox_ps(&md.ok(&["exec", "c2", "ps", "aux"]));
    let from_c1 = busybox_ps(&md.ok(&["exec", "c1", "ps", "aux"]));
    insta::assert_snapshot!(from_c2, @r"
    PID COMMAND
    1 sleep 1d
    3 sleep 999d
    4 ps aux
    ");
    // c1 sees the newcomer too: they share one PID namespace.
    assert!(
        from_c1.contains(" sleep 999d\n") && from_c1.contains("1 sleep 1d\n"),
        "{from_c1}"
    );
}

/// Whether util-linux's `script`, which gives a command a real pseudo-terminal, is here.
fn have_script() -> bool {
    Command::new("script").arg("--version").output().is_ok()
}

/// Runs `args` under `script`, which gives it a real pseudo-terminal, typing `keys` (each
/// after the given pause); returns the terminal's output and the exit code. The terminal
/// is 33 rows by 101 columns (script's own would be 0x0: its stdin is a pipe).
fn in_terminal(md: &Md, args: &str, keys: &[(&str, u64)]) -> (String, i32) {
    let cmdline = format!(
        "stty rows 33 cols 101; {BIN} --root {} {args}",
        md.root_text()
    );
    let mut child = Command::new("script")
        .args(["-qefc", &cmdline, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("script (util-linux)");
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        let _ = stdout.read_to_end(&mut all);
        all
    });
    let mut stdin = child.stdin.take().unwrap();
    for (text, wait) in keys {
        std::thread::sleep(Duration::from_millis(*wait));
        stdin.write_all(text.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }
    std::thread::sleep(Duration::from_millis(500));
    drop(stdin);
    let status = child.wait().unwrap();
    let out = String::from_utf8_lossy(&reader.join().unwrap()).into_owned();
    (out, status.code().unwrap_or(-1))
}

/// Seed 002: `run -i -t` gives a shell on a real terminal; Ctrl-C interrupts the foreground
/// command, not the shell; `exit` stops the container without removing it; `start` runs it
/// again.
#[test]
fn run_it_gives_a_terminal_exit_stops_but_keeps_the_container_and_start_runs_it_again() {
    let Some(md) = Md::with_busybox() else { return };
    testkit::require!(have_script(), "script (util-linux, package bsdutils)");
    let (out, code) = in_terminal(
        &md,
        "run -i -t --name shell busybox /bin/sh",
        &[
            ("tty; stty size\r", 1500),
            ("sleep 100\r", 300),
            ("\x03", 500),
            ("echo after ctrl-c\r", 300),
            ("exit 3\r", 300),
        ],
    );
    let clean = out.replace("\x1b[6n", "").replace('\r', "");
    assert!(
        clean.contains("tty; stty size\n/dev/pts/0\n"),
        "the shell's terminal comes from the container's own devpts (as docker's):\n{clean}"
    );
    assert!(
        clean.contains("\n33 101\n"),
        "the container's terminal has our size from the start:\n{clean}"
    );
    assert!(
        clean.contains("^C"),
        "Ctrl-C reached the container's terminal:\n{clean}"
    );
    assert!(
        clean.contains("\nafter ctrl-c\n"),
        "the shell survived Ctrl-C:\n{clean}"
    );
    assert_eq!(code, 3, "the exit code is the shell's:\n{clean}");
    let hostname = md.state("shell");
    assert_eq!(hostname["Status"], "exited");
    assert_eq!(hostname["ExitCode"], 3);
    // Stopped, not removed; and it starts again, with its writable layer as it was.
    md.ok(&["start", "shell"]);
    assert!(md.wait_status("shell", "running"));
    md.ok(&["stop", "-t", "1", "shell"]);
    let ps = md.ok(&["ps", "-a", "--filter", "name=shell"]);
    assert!(ps.contains("Exited ("), "{ps}");
}

/// Ctrl-P Ctrl-Q leaves an interactive container running (docker's detach keys): `run -it`
/// exits 0 and the shell goes on; `attach` comes back to it (our window size with it), and
/// after another detach says "read escape sequence" and exits 1, as docker's does; a lone
/// Ctrl-P still reaches the shell.
#[test]
fn ctrl_p_ctrl_q_detaches_and_attach_comes_back() {
    let Some(md) = Md::with_busybox() else { return };
    testkit::require!(have_script(), "script (util-linux, package bsdutils)");
    let (out, code) = in_terminal(
        &md,
        "run -it --name keep busybox sh",
        &[("echo one\r", 1500), ("\x10\x11", 500)],
    );
    assert_eq!(code, 0, "{out}");
    assert!(md.wait_status("keep", "running"), "{out}");
    let ps = md.ok(&["ps", "--filter", "name=keep"]);
    assert!(ps.contains(" Up "), "{ps}");

    // Back in: the shell is the same one (its history has `echo one`: Ctrl-P recalls it,
    // so a Ctrl-P that does not start the sequence goes through), and it sees our size.
    let (out, code) = in_terminal(
        &md,
        "attach keep",
        &[
            ("\x10\r", 800),
            ("stty size\r", 300),
            ("echo second\r", 300),
            ("\x10\x11", 300),
        ],
    );
    let clean = out.replace('\r', "");
    assert_eq!(clean.matches("\none\n").count(), 1, "{clean}");
    assert!(clean.contains("\nsecond\n"), "{clean}");
    assert!(clean.contains("read escape sequence"), "{clean}");
    assert_eq!(code, 1, "{clean}");
    assert!(
        clean.contains("\n33 101\n"),
        "our terminal is 33x101:\n{clean}"
    );

    // exec -it detaches the same way, and its shell goes on beside the first one.
    let (out, code) = in_terminal(
        &md,
        "exec -it keep sh",
        &[("echo from exec\r", 800), ("\x10\x11", 300)],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("read escape sequence"), "{out}");
    let top = md.ok(&["top", "keep", "-o", "pid,args"]);
    assert_eq!(
        top.lines().filter(|l| l.ends_with(" sh")).count(),
        2,
        "{top}"
    );

    // A last time, with our own keys, to leave by `exit`: attach returns the exit code.
    let (out, code) = in_terminal(
        &md,
        "attach --detach-keys ctrl-x keep",
        &[("exit 6\r", 800)],
    );
    assert_eq!(code, 6, "{out}");
    assert_eq!(md.state("keep")["ExitCode"], 6);
    let logs = md.ok(&["logs", "keep"]);
    assert!(
        logs.contains("second"),
        "the log kept every session:\n{logs}"
    );
}

/// Seed 001 §3: `-d` prints the id, output goes to the log, `stop` ends it (SIGTERM, then
/// SIGKILL for a PID 1 that ignores it), `restart` runs it again.
#[test]
fn detached_containers_log_stop_and_restart() {
    let Some(md) = Md::with_busybox() else { return };
    md.ok(&[
        "run",
        "-d",
        "--name",
        "hello",
        "busybox",
        "sh",
        "-c",
        "while true; do echo hello world; sleep 0.2; done",
    ]);
    assert!(testkit::wait_until(10, || md
        .ok(&["logs", "hello"])
        .lines()
        .count()
        >= 2));
    let started = std::time::Instant::now();
    assert_eq!(md.ok(&["stop", "-t", "1", "hello"]), "hello\n");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "{waited:?}: SIGTERM ignored by PID 1, SIGKILL after 1 s"
    );
    assert_eq!(md.state("hello")["ExitCode"], 137);
    let ps = md.ok(&["ps", "-a"]);
    let line = ps.lines().find(|l| l.ends_with("hello")).unwrap();
    insta::assert_snapshot!(redact::durations(&line.split_whitespace().skip(1).collect::<Vec<_>>().join(" ")), @r#"busybox "sh -c 'while true; …" [DURATION] ago Exited (137) [DURATION] ago hello"#);
    md.ok(&["restart", "hello"]);
    assert!(md.wait_status("hello", "running"));
    // A PID 1 with a handler stops at once, with its own exit code.
    md.ok(&[
        "run",
        "-d",
        "--name",
        "polite",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 0' TERM; while true; do sleep 0.1; done",
    ]);
    let started = std::time::Instant::now();
    md.ok(&["stop", "polite"]);
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(md.state("polite")["ExitCode"], 0);
}

/// Seed 001 §3 and §5 as written, with docker's management verbs (`container logs`,
/// `container stop`, `image ls`...) and busybox for ubuntu: a detached loop, its logs,
/// stop and restart by id, export piped into `import -`, a named volume through `--mount`
/// seen in `inspect`, rename, prune.
#[test]
fn seed_001_with_the_container_and_image_verbs() {
    let Some(md) = Md::with_busybox() else { return };
    let id = md.ok(&[
        "run",
        "-d",
        "busybox",
        "/bin/sh",
        "-c",
        "while true; do echo hello world; sleep 1; done",
    ]);
    let id = &id.trim()[..12];
    assert!(testkit::wait_until(10, || md
        .ok(&["container", "logs", id])
        .starts_with("hello world\n")));
    let ls = md.ok(&["container", "ls", "-a"]);
    assert!(ls.contains(id) && ls.contains(" Up "), "{ls}");
    assert_eq!(
        md.ok(&["container", "stop", "-t", "1", id]),
        format!("{id}\n")
    );
    assert!(md.ok(&["container", "ls", "-a"]).contains("Exited (137)"));
    assert_eq!(md.ok(&["container", "restart", id]), format!("{id}\n"));
    assert!(md.wait_status(id, "running"));

    // export > file, then `cat file | import - NAME`.
    let tar = md.path().join("ubuntu.tar");
    let out = md.cmd().args(["export", id]).output().unwrap();
    assert!(out.status.success(), "{}", show(&out));
    std::fs::write(&tar, &out.stdout).unwrap();
    let imported = md
        .cmd()
        .args(["import", "-", "test/ubuntu:v1.0"])
        .stdin(std::fs::File::open(&tar).unwrap())
        .output()
        .unwrap();
    assert!(imported.status.success(), "{}", show(&imported));
    let images = md.ok(&["image", "ls"]);
    assert!(images.contains("test/ubuntu   v1.0"), "{images}");

    md.ok(&["container", "rename", id, "looper"]);
    assert!(md.ok(&["container", "ls"]).trim_end().ends_with("looper"));
    md.ok(&["container", "rm", "-f", "looper"]);

    assert_eq!(md.ok(&["volume", "create", "test-volume"]), "test-volume\n");
    md.ok(&[
        "run",
        "-dit",
        "--name",
        "ubuntu",
        "--mount",
        "source=test-volume,target=/usr/share/data",
        "busybox",
    ]);
    let inspect: serde_json::Value =
        serde_json::from_str(&md.ok(&["container", "inspect", "ubuntu"])).unwrap();
    let mount = &inspect[0]["Mounts"][0];
    assert_eq!(mount["Name"], "test-volume");
    assert_eq!(mount["Destination"], "/usr/share/data");
    md.ok(&["container", "stop", "-t", "0", "ubuntu"]);
    let pruned = md.ok(&["container", "prune", "-f"]);
    assert!(pruned.starts_with("Deleted Containers:\n"), "{pruned}");
    md.ok(&["volume", "rm", "test-volume"]);
    assert!(
        md.ok(&["image", "rm", "test/ubuntu:v1.0"])
            .starts_with("Untagged: test/ubuntu:v1.0\n")
    );
}

/// Seed 002: `docker run -i -t ubuntu /bin/bash` "creates a network interface and assigns
/// it an IP address" (busybox standing in for ubuntu): eth0 with an address of the
/// bridge's subnet, a default route through the bridge, and lo.
#[test]
fn a_container_gets_an_interface_with_an_address_and_a_default_route() {
    let Some(md) = Md::with_busybox() else { return };
    let out = md.ok(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "ip -o -4 addr | awk '{print $2, $4}'; ip route",
    ]);
    insta::assert_snapshot!(out, @r"
    lo 127.0.0.1/8
    eth0 10.87.0.2/24
    default via 10.87.0.1 dev eth0 
    10.87.0.0/24 dev eth0 scope link  src 10.87.0.2
    ");
}

/// Seed 001 §6: a user-defined bridge network, two busybox containers that ping each other
/// by name (`ping busybox2`), and a published port reached from the host.
#[test]
fn two_busyboxes_on_a_user_network_ping_by_name_and_a_published_port_answers() {
    let Some(md) = Md::with_busybox() else { return };
    let id = md.ok(&["network", "create", "-d", "bridge", "my-net"]);
    assert_eq!(id.trim().len(), 64, "{id}");
    let ls = md.ok(&["network", "ls"]);
    assert!(
        ls.lines().any(|l| l
            .split_whitespace()
            .skip(1)
            .eq(["my-net", "bridge", "local"])),
        "{ls}"
    );
    for name in ["busybox1", "busybox2"] {
        md.ok(&[
            "run",
            "-dit",
            "--rm",
            "--name",
            name,
            "--network",
            "my-net",
            "busybox",
            "sh",
        ]);
    }
    let ping = md.ok(&["exec", "busybox1", "ping", "-c", "2", "busybox2"]);
    // The times vary: cut.
    let ping: String = ping
        .lines()
        .map(|l| match (l.find("time="), l.find(" = ")) {
            (Some(at), _) => format!("{}time=[T] ms\n", &l[..at]),
            (None, Some(at)) => format!("{} = [T] ms\n", &l[..at]),
            _ => format!("{l}\n"),
        })
        .collect();
    insta::assert_snapshot!(ping, @r"
    PING busybox2 (10.87.1.3): 56 data bytes
    64 bytes from 10.87.1.3: seq=0 ttl=64 time=[T] ms
    64 bytes from 10.87.1.3: seq=1 ttl=64 time=[T] ms

    --- busybox2 ping statistics ---
    2 packets transmitted, 2 packets received, 0% packet loss
    round-trip min/avg/max = [T] ms
    ");
    // 6.1: -p, then docker port, then the page from the host.
    md.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        "127.0.0.1:18081:80",
        "busybox",
        "sh",
        "-c",
        "mkdir /www && echo welcome > /www/index.html && exec httpd -f -p 80 -h /www",
    ]);
    insta::assert_snapshot!(md.ok(&["port", "web", "80"]), @"127.0.0.1:18081");
    let ns = md.netns.as_ref().unwrap();
    let get = || {
        let o = ns
            .command("curl")
            .args(["-s", "--max-time", "2", "http://127.0.0.1:18081/"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    assert!(testkit::wait_until(5, || get() == "welcome\n"), "{}", get());
    md.ok(&["rm", "-f", "busybox1", "busybox2", "web"]);
    md.ok(&["network", "rm", "my-net"]);
}
