//! A default container does not hand out host root: each of docker's defences, probed from
//! inside a real container, and the flags that lift them (`--privileged`, `--cap-add`,
//! `--security-opt`). Every probe is harmless to the host: writes go to keys the
//! container's own namespaces own (`kernel/hostname`), never to `core_pattern`.
mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Output;

use common::Md;

/// `run --rm FLAGS busybox sh -c SCRIPT`.
fn sh(md: &Md, flags: &[&str], script: &str) -> Output {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["busybox", "sh", "-c", script]);
    md.run(&args)
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The value of `key:` in /proc/self/status as the container's process sees it.
fn status(md: &Md, flags: &[&str], key: &str) -> String {
    let o = sh(md, flags, &format!("grep '^{key}:' /proc/self/status"));
    assert!(o.status.success(), "{}", testkit::show(&o));
    out(&o)
        .trim()
        .strip_prefix(&format!("{key}:"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Our own permitted set: what `--privileged` can give at most.
fn held() -> String {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("CapPrm:"))
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn capabilities_are_dockers_default_list_and_the_flags_change_them() {
    let Some(md) = Md::with_busybox() else { return };
    for key in ["CapEff", "CapPrm", "CapBnd"] {
        assert_eq!(status(&md, &[], key), "00000000a80425fb", "{key}");
    }
    assert_eq!(status(&md, &[], "CapInh"), "0000000000000000");
    assert_eq!(status(&md, &[], "CapAmb"), "0000000000000000");
    assert_eq!(status(&md, &[], "NoNewPrivs"), "0");
    assert_eq!(status(&md, &["--privileged"], "CapEff"), held());
    // NET_ADMIN is bit 12; SYS_ADMIN (21) added to the default list.
    assert_eq!(
        status(
            &md,
            &["--cap-drop", "ALL", "--cap-add", "net_admin"],
            "CapBnd"
        ),
        "0000000000001000"
    );
    assert_eq!(
        status(&md, &["--cap-add", "CAP_SYS_ADMIN"], "CapEff"),
        "00000000a82425fb"
    );
    assert_eq!(
        status(&md, &["--cap-drop", "chown"], "CapEff"),
        "00000000a80425fa"
    );
    // A non-root user keeps nothing, as execve would leave it.
    assert_eq!(
        status(&md, &["--user", "65534"], "CapEff"),
        "0000000000000000"
    );
    assert_eq!(
        status(&md, &["--user", "65534"], "CapBnd"),
        "00000000a80425fb"
    );
    let bad = md.run(&["create", "--cap-add", "FOO", "busybox"]);
    assert_eq!(bad.status.code(), Some(125));
    assert!(
        err(&bad).contains("unknown capability: \"CAP_FOO\""),
        "{}",
        err(&bad)
    );
    assert!(md.ids().is_empty(), "a refused create left a container");
}

#[test]
fn exec_gets_the_containers_capabilities_and_filter() {
    let Some(md) = Md::with_busybox() else { return };
    md.ok(&["run", "-d", "--name", "c1", "busybox", "sleep", "1000"]);
    let caps = md.ok(&[
        "exec",
        "c1",
        "grep",
        "-E",
        "^(CapEff|Seccomp):",
        "/proc/self/status",
    ]);
    assert_eq!(caps, "CapEff:\t00000000a80425fb\nSeccomp:\t2\n");
    let privileged = md.ok(&[
        "exec",
        "--privileged",
        "c1",
        "grep",
        "^Seccomp:",
        "/proc/self/status",
    ]);
    assert_eq!(privileged, "Seccomp:\t0\n");
    let mount = md.run(&["exec", "c1", "mount", "-t", "tmpfs", "t", "/mnt"]);
    assert!(!mount.status.success(), "{}", testkit::show(&mount));
}

#[test]
fn seccomp_refuses_what_dockers_profile_refuses() {
    let Some(md) = Md::with_busybox() else { return };
    assert_eq!(status(&md, &[], "Seccomp"), "2");
    // A new user namespace: unshare(CLONE_NEWUSER) is not in the allow-list.
    let o = sh(&md, &[], "unshare -U true");
    assert!(
        err(&o).contains("Operation not permitted"),
        "{}",
        testkit::show(&o)
    );
    // reboot(2): the filter (and the missing CAP_SYS_BOOT) refuse it. Even if both failed,
    // in the container's own PID namespace it would only end the container's init.
    let o = sh(&md, &[], "reboot -f; echo rc=$?");
    assert!(out(&o).contains("rc=1"), "{}", testkit::show(&o));
    // With the filter off, the capability still says no: two layers.
    let o = sh(
        &md,
        &["--security-opt", "seccomp=unconfined"],
        "unshare -U true && echo made",
    );
    assert_eq!(
        status(&md, &["--security-opt", "seccomp=unconfined"], "Seccomp"),
        "0"
    );
    // Unprivileged user namespaces need no capability: unconfined, this one works (as with
    // docker's seccomp=unconfined).
    assert_eq!(out(&o), "made\n", "{}", testkit::show(&o));
    let o = sh(&md, &["--privileged"], "unshare -U true && echo made");
    assert_eq!(out(&o), "made\n", "{}", testkit::show(&o));
    // A profile of the user's, in docker's format: refuse mkdir with EACCES (13).
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("p.json");
    std::fs::write(
        &profile,
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}"#,
    )
    .unwrap();
    let opt = format!("seccomp={}", profile.display());
    let o = sh(&md, &["--security-opt", &opt], "mkdir /tmp/x");
    assert!(
        err(&o).contains("Permission denied"),
        "{}",
        testkit::show(&o)
    );
    let bad = md.run(&[
        "create",
        "--security-opt",
        "seccomp=/nonexistent.json",
        "busybox",
    ]);
    assert_eq!(bad.status.code(), Some(125));
    assert!(err(&bad).contains("opening seccomp profile (/nonexistent.json) failed"));
}

#[test]
fn mounting_anything_is_refused_and_sys_stays_read_only() {
    let Some(md) = Md::with_busybox() else { return };
    let o = sh(
        &md,
        &[],
        "mount -t tmpfs t /mnt; mount -o remount,rw /sys; touch /sys/x; grep ' /sys ' /proc/self/mountinfo",
    );
    assert_eq!(
        err(&o).matches("permission denied").count(),
        2,
        "{}",
        testkit::show(&o)
    );
    assert!(
        err(&o).contains("Read-only file system"),
        "{}",
        testkit::show(&o)
    );
    assert!(out(&o).contains(" /sys ro,"), "{}", testkit::show(&o));
    let o = sh(
        &md,
        &["--privileged"],
        "mount -t tmpfs t /mnt && grep ' /sys ' /proc/self/mountinfo",
    );
    assert!(out(&o).contains(" /sys rw,"), "{}", testkit::show(&o));
}

#[test]
fn the_kernels_settings_are_read_only_and_its_secrets_masked() {
    let Some(md) = Md::with_busybox() else { return };
    // kernel/hostname is the UTS namespace's own: harmless to write, and refused as every
    // key of /proc/sys is (core_pattern, the one-line escape, among them).
    let o = sh(
        &md,
        &[],
        "cat /proc/sys/kernel/hostname > /proc/sys/kernel/hostname; grep ' /proc/sys ' /proc/self/mountinfo; \
         echo h > /proc/sysrq-trigger; echo keys=$(wc -c < /proc/keys); echo firmware=$(ls /sys/firmware | wc -l); \
         echo timers=$(wc -c < /proc/timer_list)",
    );
    assert!(
        err(&o).contains("kernel/hostname: Read-only file system"),
        "{}",
        testkit::show(&o)
    );
    assert!(out(&o).contains(" /proc/sys ro,"), "{}", testkit::show(&o));
    assert!(
        err(&o).contains("/proc/sysrq-trigger"),
        "{}",
        testkit::show(&o)
    );
    for masked in ["keys=0", "firmware=0", "timers=0"] {
        assert!(out(&o).contains(masked), "{masked}: {}", testkit::show(&o));
    }
    // /proc/kcore, where the kernel has one, is /dev/null inside.
    let o = sh(
        &md,
        &[],
        "test -e /proc/kcore && wc -c < /proc/kcore || echo 0",
    );
    assert_eq!(out(&o).trim(), "0", "{}", testkit::show(&o));
    let o = sh(
        &md,
        &["--privileged"],
        "cat /proc/sys/kernel/hostname > /proc/sys/kernel/hostname && echo written; \
         test $(wc -c < /proc/keys) -gt 0 && echo keys",
    );
    assert_eq!(out(&o), "written\nkeys\n", "{}", testkit::show(&o));
}

/// The host's root disk, from our own mountinfo: `MAJ:MIN` of the mount at `/`.
fn root_disk() -> (u32, u32) {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let line = info
        .lines()
        .find(|l| l.split(' ').nth(4) == Some("/"))
        .unwrap();
    let (major, minor) = line.split(' ').nth(2).unwrap().split_once(':').unwrap();
    (major.parse().unwrap(), minor.parse().unwrap())
}

#[test]
fn device_nodes_outside_dockers_list_cannot_be_opened() {
    let Some(md) = Md::with_busybox() else { return };
    let (major, minor) = root_disk();
    // The node can be made (CAP_MKNOD, `b *:* m`), but not opened: the devices cgroup.
    // /dev/kmsg (c 1:11) is the control: the host can read it; the container cannot,
    // unless privileged.
    let script = format!(
        "mknod /tmp/disk b {major} {minor} && head -c 1 /tmp/disk; mknod /tmp/kmsg c 1 11 && dd if=/tmp/kmsg bs=8192 count=1 2>&1 >/dev/null | head -1; head -c 1 /dev/zero | wc -c"
    );
    let o = sh(&md, &[], &script);
    assert!(
        err(&o).contains("/tmp/disk: Operation not permitted"),
        "{}",
        testkit::show(&o)
    );
    assert!(
        out(&o).contains("can't open '/tmp/kmsg': Operation not permitted"),
        "{}",
        testkit::show(&o)
    );
    assert!(
        out(&o).ends_with("1\n"),
        "/dev/zero must work: {}",
        testkit::show(&o)
    );
    let o = sh(
        &md,
        &["--privileged"],
        "mknod /tmp/kmsg c 1 11 && dd if=/tmp/kmsg bs=8192 count=1 2>/dev/null | wc -c",
    );
    assert_ne!(out(&o).trim(), "0", "{}", testkit::show(&o));
}

/// The command's own descriptors: `ls` as the container's process itself (`exec`, no
/// shell with pipes of its own around it), less the one `ls` reads the directory with.
const OWN_FDS: &str = "exec ls -l /proc/self/fd";

fn fds(listing: &str) -> String {
    listing
        .lines()
        .filter_map(|l| l.split_once(" -> "))
        .filter(|(_, target)| !target.starts_with("/proc/"))
        .filter_map(|(head, _)| head.rsplit(' ').next())
        .map(|fd| format!("{fd} "))
        .collect()
}

#[test]
fn only_stdio_reaches_the_container() {
    let Some(md) = Md::with_busybox() else { return };
    let o = sh(&md, &[], OWN_FDS);
    assert_eq!(fds(&out(&o)), "0 1 2 ", "{}", testkit::show(&o));
    let o = md
        .cmd()
        .args(["run", "--rm", "-i", "busybox", "sh", "-c", OWN_FDS])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(fds(&out(&o)), "0 1 2 ", "{}", testkit::show(&o));
    md.ok(&["run", "-d", "--name", "c1", "busybox", "sleep", "1000"]);
    assert_eq!(fds(&md.ok(&["exec", "c1", "sh", "-c", OWN_FDS])), "0 1 2 ");
    assert_eq!(md.ok(&["exec", "c1", "ls", "/proc/1/fd"]), "0\n1\n2\n");
}

#[test]
fn a_setuid_binary_gains_nothing_under_no_new_privileges() {
    let Some(md) = Md::with_busybox() else { return };
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let probe = dir.path().join("status");
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/probes/status.rs");
    let built = std::process::Command::new("rustc")
        .args(["-O", "-C", "target-feature=+crt-static", "-o"])
        .arg(&probe)
        .arg(src)
        .output()
        .unwrap();
    assert!(built.status.success(), "{}", testkit::show(&built));
    std::fs::set_permissions(&probe, std::fs::Permissions::from_mode(0o4755)).unwrap();
    let volume = format!("{}:/probe:ro", dir.path().display());
    let run = |extra: &[&str]| {
        let mut args = vec!["run", "--rm", "--user", "65534", "-v", &volume];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["busybox", "/probe/status"]);
        md.ok(&args)
    };
    // Without it, setuid root works as it does on the host: effective uid 0, and the
    // container's capabilities (never more: the bounding set caps them).
    assert_eq!(
        run(&[]),
        "Uid:\t65534\t0\t0\t0\nCapEff:\t00000000a80425fb\nNoNewPrivs:\t0\n"
    );
    assert_eq!(
        run(&["--security-opt", "no-new-privileges"]),
        "Uid:\t65534\t65534\t65534\t65534\nCapEff:\t0000000000000000\nNoNewPrivs:\t1\n"
    );
}

#[test]
fn read_only_root_makes_the_init_files_read_only_too() {
    let Some(md) = Md::with_busybox() else { return };
    let o = sh(
        &md,
        &["--read-only"],
        "for f in /etc/hostname /etc/hosts /etc/resolv.conf /x; do touch $f 2>&1 | grep -c Read-only; done",
    );
    assert_eq!(out(&o), "1\n1\n1\n1\n", "{}", testkit::show(&o));
    // --tmpfs gives such a container somewhere to write, as docker's does.
    let o = sh(
        &md,
        &["--read-only", "--tmpfs", "/run", "--tmpfs", "/cache:ro"],
        "touch /run/pid && echo written; touch /cache/x; grep ' /cache ' /proc/self/mountinfo | cut -d' ' -f6",
    );
    assert_eq!(
        out(&o),
        "written\nro,nosuid,nodev,noexec,relatime\n",
        "{}",
        testkit::show(&o)
    );
    let bad = md.run(&["create", "--tmpfs", "/x:size=1m", "busybox"]);
    assert_eq!(bad.status.code(), Some(125));
    assert!(
        err(&bad).contains("option \"size=1m\" is not supported"),
        "{}",
        err(&bad)
    );
}

#[test]
fn paths_out_of_the_container_lead_back_into_it() {
    let Some(md) = Md::with_busybox() else { return };
    let dir = tempfile::tempdir().unwrap();
    let marker = testkit::unique_name("escape");
    let volume = format!("{}:/data", dir.path().display());
    let script = format!(
        "echo x > /data/../../../{marker}; echo x > /proc/1/root/{marker}-root; \
         echo x > /proc/self/root/../{marker}-self; ls / | grep -c {marker}"
    );
    let o = sh(&md, &["-v", &volume], &script);
    // All three landed in the container's own root (three names), none on the host's.
    assert_eq!(out(&o), "3\n", "{}", testkit::show(&o));
    for suffix in ["", "-root", "-self"] {
        let host = std::path::Path::new("/").join(format!("{marker}{suffix}"));
        assert!(!host.exists(), "{} escaped", host.display());
    }
}

#[test]
fn sys_fs_cgroup_shows_only_the_containers_own_cgroup_read_only() {
    let Some(md) = Md::with_busybox() else { return };
    // On a v1 or hybrid host, one directory per hierarchy; on a pure v2 host the
    // container's own cgroup is the root of /sys/fs/cgroup (a cgroup namespace).
    let script = if testkit::pure_cgroup_v2() {
        "cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max; \
         echo 1 > /sys/fs/cgroup/pids.max; mkdir /sys/fs/cgroup/child; \
         ls /sys/fs/cgroup | grep -c mini-docker"
    } else {
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max; \
         echo 1 > /sys/fs/cgroup/pids/pids.max; mkdir /sys/fs/cgroup/memory/child; \
         ls /sys/fs/cgroup/memory | grep -c mini-docker"
    };
    let o = sh(&md, &["-m", "64m", "--pids-limit", "50"], script);
    // Its own limits, its own directory (nothing of the parent's: no mini-docker/ in it).
    assert_eq!(out(&o), "67108864\n50\n0\n", "{}", testkit::show(&o));
    assert_eq!(
        err(&o).matches("Read-only file system").count(),
        2,
        "{}",
        testkit::show(&o)
    );
    let child = if testkit::pure_cgroup_v2() {
        "/sys/fs/cgroup/child"
    } else {
        "/sys/fs/cgroup/pids/child"
    };
    let o = sh(
        &md,
        &["--privileged"],
        &format!("mkdir {child} && rmdir {child} && echo ok"),
    );
    assert_eq!(out(&o), "ok\n", "{}", testkit::show(&o));
}

#[test]
fn the_container_is_in_a_cgroup_of_its_own_in_every_hierarchy() {
    let Some(md) = Md::with_busybox() else { return };
    // /proc/self/cgroup as the container sees it: one line per hierarchy of the host,
    // every one naming the container's cgroup. In the host's cgroup namespace (docker's
    // default on v1; on v2 the default is a namespace of its own, checked below).
    let o = sh(
        &md,
        &["--name", "placed", "--cgroupns", "host"],
        "cat /proc/self/cgroup",
    );
    assert!(o.status.success(), "{}", testkit::show(&o));
    let lines = out(&o);
    let host = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    assert_eq!(
        lines.lines().count(),
        host.lines().count(),
        "one line per hierarchy:\n{lines}"
    );
    for line in lines.lines() {
        let path = line.splitn(3, ':').nth(2).unwrap();
        // The v2 line of a cgroup namespace reads `/`; every other line names the cgroup.
        assert!(
            path.starts_with("/mini-docker/") || (line.starts_with("0::") && path == "/"),
            "left in the host's cgroup: {line}\n{lines}"
        );
    }
    if testkit::pure_cgroup_v2() {
        // By default a cgroup namespace of its own, rooted at its cgroup.
        let o = sh(&md, &[], "cat /proc/self/cgroup");
        assert_eq!(out(&o), "0::/\n", "{}", testkit::show(&o));
        // Its own cgroup is /sys/fs/cgroup inside, with the host's CPUs and not frozen.
        let o = sh(
            &md,
            &[],
            "cat /sys/fs/cgroup/cpuset.cpus.effective /sys/fs/cgroup/cgroup.freeze",
        );
        let cpus = std::fs::read_to_string("/sys/fs/cgroup/cpuset.cpus.effective").unwrap();
        assert_eq!(out(&o), format!("{cpus}0\n"), "{}", testkit::show(&o));
        return;
    }
    // Its own directories show in /sys/fs/cgroup inside, cpuset and freezer among them.
    let o = sh(
        &md,
        &[],
        "cat /sys/fs/cgroup/cpuset/cpuset.cpus /sys/fs/cgroup/freezer/freezer.state",
    );
    let cpus = std::fs::read_to_string("/sys/fs/cgroup/cpuset/cpuset.cpus");
    match cpus {
        Ok(cpus) => assert_eq!(
            out(&o),
            format!("{}THAWED\n", cpus),
            "{}",
            testkit::show(&o)
        ),
        Err(_) => eprintln!("no v1 cpuset hierarchy on this host: its part is not checked"),
    }
}

/// CVE-2019-5736: a container that gets the runtime's own binary run inside it (its
/// command is `/proc/self/exe`, or a `#!/proc/self/exe` script) holds it open through
/// `/proc/PID/exe` and, once that process has exited, writes to it: the host's binary,
/// which root runs next. Here the victim is a copy of mini-docker used only for `exec`, as
/// after an upgrade (the container's monitor runs the build's binary, which stays busy:
/// ETXTBSY; the copy is free once the `exec` is over). If the defence failed, the copy is
/// what gets written, not the build's binary.
#[test]
fn the_runtime_binary_cannot_be_overwritten_from_inside_a_container() {
    let Some(md) = Md::with_busybox() else { return };
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let copy = dir.path().join("mini-docker-victim");
    std::fs::copy(common::BIN, &copy).unwrap();
    let original = std::fs::read(&copy).unwrap();
    let cli = |args: &[&str]| {
        let mut c = std::process::Command::new(&copy);
        c.arg("--root").arg(md.path()).args(args);
        c
    };
    // Our binary is dynamically linked: the container gets the host's libraries, read-only.
    let started = md.run(&[
        "run",
        "-d",
        "--name",
        "victim",
        "-v",
        "/lib:/lib:ro",
        "-v",
        "/lib64:/lib64:ro",
        "busybox",
        "sleep",
        "1000",
    ]);
    assert!(started.status.success(), "{}", testkit::show(&started));
    // The host's binary, run inside the container: `exec` of `/proc/self/exe`, blocked
    // reading its stdin (`import -`) until we close it.
    let mut inside = common::KillOnDrop(
        cli(&[
            "exec",
            "-i",
            "victim",
            "/proc/self/exe",
            "--root",
            "/tmp/r",
            "import",
            "-",
            "x",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap(),
    );
    // The attacker: find it, hold its binary open, wait for it to exit, write.
    let attack = r#"
        while :; do
          for p in /proc/[0-9]*; do
            case "$(readlink $p/exe)" in *mini-docker-victim*) pid=${p#/proc/}; break 2;; esac
          done
          sleep 0.05
        done
        exec 3< /proc/$pid/exe
        touch /tmp/holding
        while [ -e /proc/$pid ]; do sleep 0.05; done
        # While anything still runs the binary, writing it fails with ETXTBSY: try again.
        n=0
        until echo pwned 2>/tmp/result >> /proc/self/fd/3; do
          grep -q busy /tmp/result && [ $n -lt 100 ] || break
          n=$((n+1)); sleep 0.05
        done
        [ -s /tmp/result ] || echo written > /tmp/result
        touch /tmp/done
    "#;
    let a = md.run(&["exec", "-d", "victim", "sh", "-c", attack]);
    assert!(a.status.success(), "{}", testkit::show(&a));
    let file = |name: &str| md.run(&["exec", "victim", "cat", name]);
    assert!(
        testkit::wait_until(20, || file("/tmp/holding").status.success()),
        "the attacker never found the runtime's binary inside the container"
    );
    drop(inside.stdin.take()); // `import -` reads end-of-file and exits
    let _ = inside.wait();
    assert!(testkit::wait_until(20, || file("/tmp/done")
        .status
        .success()));
    let result = String::from_utf8_lossy(&file("/tmp/result").stdout).into_owned();
    let running: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| {
            let p = e.ok()?.path();
            let exe = std::fs::read_link(p.join("exe")).ok()?;
            exe.to_string_lossy()
                .contains("mini-docker-victim")
                .then(|| std::fs::read_to_string(p.join("cmdline")).unwrap_or_default())
        })
        .collect();
    assert!(
        result.contains("Read-only file system"),
        "{result}; still running: {running:?}"
    );
    assert_eq!(
        std::fs::read(&copy).unwrap(),
        original,
        "the binary was changed"
    );
    let _ = cli(&["rm", "-f", "victim"]).output();
}

#[test]
fn device_adds_one_host_device_with_the_permissions_asked_for() {
    let Some(md) = Md::with_busybox() else { return };
    // /dev/fuse (c 10:229): openable without any capability, and not on docker's list.
    testkit::require!(std::path::Path::new("/dev/fuse").exists(), "/dev/fuse");
    let o = sh(
        &md,
        &[],
        "mknod /tmp/f c 10 229; exec 3<>/tmp/f && echo opened",
    );
    assert!(
        err(&o).contains("Operation not permitted"),
        "{}",
        testkit::show(&o)
    );
    let o = sh(
        &md,
        &["--device", "/dev/fuse"],
        "exec 3<>/dev/fuse && echo opened",
    );
    assert_eq!(out(&o), "opened\n", "{}", testkit::show(&o));
    let o = sh(
        &md,
        &["--device", "/dev/fuse:/dev/f:r"],
        "exec 3</dev/f && echo read; exec 4<>/dev/f && echo written",
    );
    assert_eq!(out(&o), "read\n", "{}", testkit::show(&o));
    assert!(
        err(&o).contains("Operation not permitted"),
        "{}",
        testkit::show(&o)
    );
    let bad = md.run(&["create", "--device", "/etc/passwd", "busybox"]);
    assert_eq!(bad.status.code(), Some(125));
    assert!(
        err(&bad).contains("\"/etc/passwd\" is not a device node"),
        "{}",
        err(&bad)
    );
    // --privileged: the host's devices are there, and open.
    let o = sh(&md, &["--privileged"], "exec 3<>/dev/fuse && echo opened");
    assert_eq!(out(&o), "opened\n", "{}", testkit::show(&o));
}

/// Checks where `--userns-remap default` put root: the `dockremap` line of /etc/subuid
/// where there is one; else 100000 on a machine whose file gives nobody those ids (this
/// project's test machines), or, as dockerd would add it, a range of 65536 that no line of
/// the file shares. Returns the uid_map line the container shows.
fn remapped_root(o: &Output) -> String {
    let uid_map_line = out(o).lines().nth(1).unwrap_or_default().to_string();
    let subuid = std::fs::read_to_string("/etc/subuid").unwrap_or_default();
    let ranges: Vec<(String, u64, u64)> = subuid
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.trim().split(':').collect();
            Some((
                f.first()?.to_string(),
                f.get(1)?.parse().ok()?,
                f.get(2)?.parse().ok()?,
            ))
        })
        .collect();
    let start: u64 = uid_map_line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no uid_map line: {}", testkit::show(o)));
    // Whether ids a..a+65536 and a line's from..from+count have one in common, and
    // whether they even touch (dockerd moves on from a range that ends where ours begins).
    let share = |a: u64, from: u64, count: u64| from < a + 65536 && a < from + count;
    let touch = |a: u64, from: u64, count: u64| from <= a + 65536 && a <= from + count;
    if let Some((_, from, _)) = ranges.iter().find(|r| r.0 == "dockremap") {
        assert_eq!(start, *from, "the dockremap line of /etc/subuid");
    } else if !ranges.iter().any(|r| touch(100_000, r.1, r.2)) {
        assert_eq!(start, 100_000, "/etc/subuid gives nobody 100000-165535");
    } else {
        assert!(start >= 100_000, "{start}");
        assert!(
            !ranges.iter().any(|r| share(start, r.1, r.2)),
            "{start}-{} is given to someone in /etc/subuid:\n{subuid}",
            start + 65535
        );
    }
    format!(" 0 {start} 65536")
}

/// `--userns-remap`: root inside is uid 100000 outside (or the `dockremap` range of
/// /etc/subuid, or the next free one), so a host file root owns, bound in, cannot be
/// written; the image's files still read as root's inside (idmapped layers), and what root
/// writes is stored as 0.
#[test]
fn under_userns_remap_root_inside_is_a_stranger_outside() {
    let Some(md) = Md::with_busybox() else { return };
    let remap = |args: &[&str]| {
        let mut all = vec!["--userns-remap", "default"];
        all.extend_from_slice(args);
        md.run(&all)
    };
    let host = md.path().join("host-dir");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("owned"), "host root's\n").unwrap();
    let volume = format!("{}:/h", host.display());
    if testkit::kernel_version() < (6, 13) {
        // Layers given to overlayfs as (idmapped) descriptors came in 6.13: before, the
        // run is refused and says so.
        let o = remap(&["run", "--rm", "busybox", "true"]);
        assert_eq!(o.status.code(), Some(125), "{}", testkit::show(&o));
        assert!(
            err(&o).contains("--userns-remap needs Linux 6.13 or later"),
            "{}",
            testkit::show(&o)
        );
        eprintln!(
            "{}: Linux {:?} cannot give overlayfs idmapped layers: checked that --userns-remap says so",
            testkit::test_name(),
            testkit::kernel_version()
        );
        return;
    }
    let o = remap(&[
        "run",
        "--rm",
        "-v",
        &volume,
        "busybox",
        "sh",
        "-c",
        "id -u; cat /proc/self/uid_map | tr -s ' '; stat -c '%u %U' /bin/busybox; \
         cat /h/owned; echo changed >> /h/owned; touch /h/new; echo end",
    ]);
    let map = remapped_root(&o);
    assert_eq!(
        out(&o),
        format!("0\n{map}\n0 root\nhost root's\nend\n"),
        "{}",
        testkit::show(&o)
    );
    assert_eq!(
        err(&o).matches("Permission denied").count(),
        2,
        "{}",
        testkit::show(&o)
    );
    assert_eq!(
        std::fs::read_to_string(host.join("owned")).unwrap(),
        "host root's\n"
    );
    assert!(!host.join("new").exists());

    // A file root makes inside is stored as owned by 0 in the container's layer, and
    // `exec` joins the same user namespace.
    md.ok(&[
        "--userns-remap",
        "default",
        "run",
        "-d",
        "--name",
        "remapped",
        "busybox",
        "sh",
        "-c",
        "echo made > /made; sleep 60",
    ]);
    assert!(testkit::wait_until(5, || md
        .run(&["exec", "remapped", "cat", "/made"])
        .status
        .success()));
    let o = md.run(&[
        "exec",
        "remapped",
        "sh",
        "-c",
        "cat /proc/self/uid_map | tr -s ' '",
    ]);
    assert_eq!(out(&o), format!("{map}\n"), "{}", testkit::show(&o));
    let id = md.ok(&["inspect", "-f", "{{.Id}}", "remapped"]);
    let made = md
        .path()
        .join("containers")
        .join(id.trim())
        .join("upper/made");
    let meta = std::fs::metadata(&made).unwrap();
    assert_eq!(
        (
            std::os::unix::fs::MetadataExt::uid(&meta),
            std::os::unix::fs::MetadataExt::gid(&meta)
        ),
        (0, 0)
    );
    md.ok(&["rm", "-f", "remapped"]);

    // What docker refuses with user namespaces on, and `--userns host`, which opts out.
    let before = md.ids();
    for (flag, message) in [
        (
            "--privileged",
            "privileged mode is incompatible with user namespaces",
        ),
        (
            "--network=host",
            "cannot share the host's network namespace when user namespaces are enabled",
        ),
    ] {
        let o = remap(&["run", "--rm", flag, "busybox", "true"]);
        assert_eq!(o.status.code(), Some(125), "{}", testkit::show(&o));
        assert!(err(&o).contains(message), "{}", testkit::show(&o));
    }
    assert_eq!(md.ids(), before, "nothing left behind");
    let o = remap(&[
        "run",
        "--rm",
        "--userns",
        "host",
        "busybox",
        "cat",
        "/proc/self/uid_map",
    ]);
    assert_eq!(
        out(&o).split_whitespace().collect::<Vec<_>>(),
        ["0", "0", "4294967295"],
        "{}",
        testkit::show(&o)
    );
}
