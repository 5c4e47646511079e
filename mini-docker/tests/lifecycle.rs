//! Containers through their lives: logs, exec, volumes, commit, export and import, cp,
//! exit codes, inspect, pause, --rm. Each test checks on the way out (common::Md's drop)
//! that no cgroup, process or mount was left behind.
mod common;

use common::Md;
use testkit::{redact, show, show_with};

#[test]
fn logs_keep_stdout_and_stderr_apart_with_tail_and_timestamps() {
    let Some(md) = Md::with_busybox() else { return };
    let out = md.run(&[
        "run",
        "--name",
        "talk",
        "busybox",
        "sh",
        "-c",
        "echo out 1; echo err 1 >&2; echo out 2; echo err 2 >&2",
    ]);
    // A foreground run relays both streams, each to its own.
    insta::assert_snapshot!(show(&out), @r"
    exit: 0
    --- stdout
    out 1
    out 2
    --- stderr
    err 1
    err 2
    ");
    insta::assert_snapshot!(show(&md.run(&["logs", "talk"])), @r"
    exit: 0
    --- stdout
    out 1
    out 2
    --- stderr
    err 1
    err 2
    ");
    let tail = md.run(&["logs", "--tail", "1", "-t", "talk"]);
    let text = String::from_utf8_lossy(&tail.stderr);
    assert_eq!(redact::redact(&text), "[TIMESTAMP] err 2\n");
    // json-file on disk, docker's format.
    let id = md.ids()[0].clone();
    let log = std::fs::read_to_string(
        md.path()
            .join("containers")
            .join(&id)
            .join(format!("{id}-json.log")),
    )
    .unwrap();
    let first: serde_json::Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
    assert_eq!(
        (first["log"].as_str(), first["stream"].as_str()),
        (Some("out 1\n"), Some("stdout"))
    );
    // --since and --until: a timestamp, or a duration back from now.
    assert_eq!(md.ok(&["logs", "--since", "1m", "talk"]), "out 1\nout 2\n");
    assert_eq!(md.ok(&["logs", "--until", "1h", "talk"]), "");
    assert_eq!(
        md.ok(&["logs", "--since", "2099-01-01T00:00:00Z", "talk"]),
        ""
    );
    let bad = md.run(&["logs", "--since", "yesterday", "talk"]);
    // Every verb but run (and create's flag checks) exits 1 on an error, as docker's CLI.
    assert_eq!(bad.status.code(), Some(1));
    // ps -l: the latest container, whatever its state; -s adds docker's SIZE.
    let latest = md.ok(&["ps", "-l", "-s", "--format", "{{.Names}} {{.Size}}"]);
    assert!(latest.starts_with("talk 0B (virtual "), "{latest}");
    let table = md.ok(&["ps", "-n", "1", "-s"]);
    assert!(
        table.lines().next().unwrap().ends_with("NAMES     SIZE"),
        "{table}"
    );
    // More of docker's filters: exit code, before/since another container, a volume.
    let later = md.run(&[
        "run",
        "--name",
        "later",
        "-v",
        "vol1:/data",
        "busybox",
        "sh",
        "-c",
        "exit 3",
    ]);
    assert_eq!(later.status.code(), Some(3));
    let names = |f: &[&str]| {
        let mut args = vec!["ps", "-a", "--format", "{{.Names}}"];
        args.extend_from_slice(f);
        md.ok(&args)
    };
    assert_eq!(names(&["--filter", "exited=3"]), "later\n");
    assert_eq!(names(&["--filter", "exited=0"]), "talk\n");
    assert_eq!(names(&["--filter", "before=later"]), "talk\n");
    assert_eq!(names(&["--filter", "since=talk"]), "later\n");
    assert_eq!(names(&["--filter", "volume=vol1"]), "later\n");
    md.ok(&["rm", "-v", "later"]);
    md.ok(&["volume", "rm", "vol1"]);
}

#[test]
fn exec_joins_the_container_with_its_env_workdir_and_user() {
    let Some(md) = Md::with_busybox() else { return };
    md.ok(&[
        "run",
        "-d",
        "--name",
        "app",
        "-e",
        "COLOUR=blue",
        "-w",
        "/srv",
        "busybox",
        "sleep",
        "100",
    ]);
    let out = md.ok(&[
        "exec",
        "-e",
        "EXTRA=1",
        "app",
        "sh",
        "-c",
        "echo $COLOUR $EXTRA; pwd; id -u; hostname; cat /proc/1/cmdline | tr '\\0' ' '",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(&lines[..3], &["blue 1", "/srv", "0"]);
    assert_eq!(
        lines[4].trim(),
        "sleep 100",
        "PID 1 of the namespace it joined is the container's"
    );
    assert_eq!(
        md.ok(&[
            "exec",
            "-u",
            "nobody",
            "-w",
            "/tmp",
            "app",
            "sh",
            "-c",
            "id -u; pwd"
        ]),
        "65534\n/tmp\n"
    );
    // Its cgroup is the container's: limits and accounting cover exec'd processes too.
    let pid = md.state("app")["Pid"].as_i64().unwrap();
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let exec_cg = md.ok(&["exec", "app", "cat", "/proc/self/cgroup"]);
    let memory_line = |s: &str| {
        s.lines()
            .find(|l| l.contains(":memory:"))
            .map(str::to_string)
    };
    assert_eq!(memory_line(&exec_cg), memory_line(&cg));
    // Not running: docker's refusal.
    md.ok(&["stop", "-t", "0", "app"]);
    let refused = md.run(&["exec", "app", "true"]);
    let id = md.ids()[0].clone();
    insta::assert_snapshot!(show_with(&refused, &[(&id, "[ID]")]), @r"
    exit: 1
    --- stderr
    Error: container [ID] is not running
    ");
}

#[test]
fn named_volumes_outlive_containers_and_anonymous_ones_go_with_rm_v() {
    let Some(md) = Md::with_busybox() else { return };
    md.ok(&[
        "run",
        "--name",
        "writer",
        "-v",
        "data:/data",
        "-v",
        "/scratch",
        "busybox",
        "sh",
        "-c",
        "echo kept > /data/f; echo gone > /scratch/f",
    ]);
    let inspect: serde_json::Value = serde_json::from_str(&md.ok(&["inspect", "writer"])).unwrap();
    let mounts = inspect[0]["Mounts"].as_array().unwrap().clone();
    assert_eq!(mounts.len(), 2);
    assert_eq!(
        (
            mounts[0]["Type"].as_str(),
            mounts[0]["Name"].as_str(),
            mounts[0]["Destination"].as_str()
        ),
        (Some("volume"), Some("data"), Some("/data"))
    );
    let anonymous = mounts[1]["Name"].as_str().unwrap().to_string();
    assert_eq!(anonymous.len(), 64);
    md.ok(&["rm", "-v", "writer"]);
    assert_eq!(
        md.ok(&["volume", "ls", "-q"]),
        "data\n",
        "the anonymous volume went with rm -v"
    );
    assert_eq!(
        md.ok(&["run", "--rm", "-v", "data:/d", "busybox", "cat", "/d/f"]),
        "kept\n"
    );
    let in_use = md.run(&[
        "run", "-d", "--name", "holder", "-v", "data:/d", "busybox", "sleep", "100",
    ]);
    assert!(in_use.status.success());
    insta::assert_snapshot!(show(&md.run(&["volume", "rm", "data"])), @r"
    exit: 1
    --- stderr
    Error: remove data: volume is in use - [holder]
    ");
    // A bind mount, read-only.
    let host = md.path().join("host-dir");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("cfg"), "from the host\n").unwrap();
    let spec = format!(
        "type=bind,source={},target=/etc/app,readonly",
        host.display()
    );
    let out = md.run(&[
        "run",
        "--rm",
        "--mount",
        &spec,
        "busybox",
        "sh",
        "-c",
        "cat /etc/app/cfg; echo x > /etc/app/cfg",
    ]);
    insta::assert_snapshot!(show(&out), @r"
    exit: 1
    --- stdout
    from the host
    --- stderr
    sh: can't create /etc/app/cfg: Read-only file system
    ");
    // volume ls filters and templates, as docker's: a dangling volume is one no container
    // uses.
    md.ok(&["volume", "create", "lonely"]);
    md.ok(&["create", "--name", "keeper", "-v", "held:/data", "busybox"]);
    let names = |f: &[&str]| {
        let mut args = vec!["volume", "ls", "--format", "{{.Name}} {{.Scope}}"];
        args.extend_from_slice(f);
        md.ok(&args)
    };
    assert!(names(&["-f", "dangling=true"]).contains("lonely local\n"));
    assert!(!names(&["-f", "dangling=true"]).contains("held"));
    let used = names(&["-f", "dangling=false"]);
    assert!(
        used.contains("held local\n") && !used.contains("lonely"),
        "{used}"
    );
    assert_eq!(names(&["--filter", "name=lone"]), "lonely local\n");
    let mountpoint = md.ok(&["volume", "inspect", "-f", "{{.Mountpoint}}", "held"]);
    assert!(
        std::path::Path::new(mountpoint.trim()).is_dir(),
        "{mountpoint}"
    );
    md.ok(&["rm", "keeper"]);
    md.ok(&["volume", "rm", "lonely", "held"]);
}

#[test]
fn a_new_volume_starts_with_the_image_content_unless_nocopy() {
    let Some(md) = Md::with_busybox() else { return };
    md.ok(&[
        "run",
        "--name",
        "seed",
        "busybox",
        "sh",
        "-c",
        "mkdir /data && echo seeded > /data/f && chmod 700 /data",
    ]);
    md.ok(&["commit", "-c", "VOLUME /data", "seed", "withvol"]);
    // VOLUME makes an anonymous volume, which receives /data from the image.
    assert_eq!(
        md.ok(&[
            "run",
            "--rm",
            "withvol",
            "sh",
            "-c",
            "cat /data/f; stat -c %a /data"
        ]),
        "seeded\n700\n"
    );
    // A named volume too, once: afterwards its own content wins over the image's.
    assert_eq!(
        md.ok(&[
            "run",
            "--rm",
            "-v",
            "named:/data",
            "withvol",
            "sh",
            "-c",
            "cat /data/f; echo mine > /data/f",
        ]),
        "seeded\n"
    );
    assert_eq!(
        md.ok(&[
            "run",
            "--rm",
            "-v",
            "named:/data",
            "withvol",
            "cat",
            "/data/f"
        ]),
        "mine\n"
    );
    // nocopy (both spellings) leaves the volume empty; a bind mount is never filled.
    assert_eq!(
        md.ok(&[
            "run",
            "--rm",
            "-v",
            "bare:/data:nocopy",
            "withvol",
            "ls",
            "-A",
            "/data"
        ]),
        ""
    );
    assert_eq!(
        md.ok(&[
            "run",
            "--rm",
            "--mount",
            "type=volume,src=bare2,dst=/data,volume-nocopy",
            "withvol",
            "ls",
            "-A",
            "/data",
        ]),
        ""
    );
    let host = md.path().join("empty-host-dir");
    std::fs::create_dir(&host).unwrap();
    let bind = format!("{}:/data", host.display());
    assert_eq!(
        md.ok(&["run", "--rm", "-v", &bind, "withvol", "ls", "-A", "/data"]),
        ""
    );
    assert_eq!(std::fs::read_dir(&host).unwrap().count(), 0);
}

#[test]
fn commit_keeps_the_writable_layer_and_leaves_the_init_layer_out() {
    let Some(md) = Md::with_busybox() else { return };
    md.ok(&[
        "run",
        "--name",
        "builder",
        "-h",
        "builder-host",
        "busybox",
        "sh",
        "-c",
        "echo made > /made; rm /bin/vi; echo 10.0.0.9 db >> /etc/hosts",
    ]);
    let id = md.ok(&["commit", "-m", "a change", "builder", "changed:v1"]);
    assert!(id.starts_with("sha256:"));
    let out = md.run(&[
        "run",
        "--rm",
        "changed:v1",
        "sh",
        "-c",
        // -w: the hex of a container ID in the hosts file may hold "db" too.
        "cat /made; ls /bin/vi; grep -cw db /etc/hosts; cat /etc/hostname",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "made", "the new file is in the image");
    assert_eq!(
        lines[1], "0",
        "the edit of /etc/hosts stayed in the container's init layer"
    );
    assert_ne!(lines[2], "builder-host", "so did its hostname");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("/bin/vi: No such file"),
        "the deletion is in the image"
    );
    let history = md.ok(&["history", "changed:v1"]);
    assert!(
        history
            .lines()
            .nth(1)
            .unwrap()
            .contains("sh -c echo made > /made; rm /bin/vi"),
        "the container's command, as docker records it: {history}"
    );
}

#[test]
fn export_then_import_gives_the_same_files() {
    let Some(md) = Md::with_busybox() else { return };
    md.ok(&[
        "run",
        "--name",
        "src",
        "busybox",
        "sh",
        "-c",
        "mkdir -p /app && echo one > /app/a && ln -s a /app/link && rm /bin/vi",
    ]);
    let tar = md.path().join("src.tar");
    md.ok(&["export", "-o", &tar.display().to_string(), "src"]);
    let listing = std::process::Command::new("tar")
        .arg("-tvf")
        .arg(&tar)
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(listing.contains("app/link -> a"), "{listing}");
    assert!(
        !listing.contains("bin/vi"),
        "a deleted file is not exported"
    );
    // The init layer's paths are there, empty, as in docker's export.
    assert!(
        listing.contains("etc/hostname") && listing.contains(".dockerenv"),
        "{listing}"
    );
    md.ok(&["import", &tar.display().to_string(), "roundtrip"]);
    assert_eq!(
        md.ok(&[
            "run",
            "--rm",
            "roundtrip",
            "sh",
            "-c",
            "cat /app/link; ls /bin/vi 2>&1; true"
        ]),
        "one\nls: /bin/vi: No such file or directory\n"
    );
    // And from standard input, gzip-compressed.
    let gz = md.path().join("src.tar.gz");
    assert!(
        std::process::Command::new("gzip")
            .arg("-k")
            .arg(&tar)
            .status()
            .unwrap()
            .success()
    );
    let out = md
        .cmd()
        .args(["import", "-", "fromstdin:gz"])
        .stdin(std::fs::File::open(&gz).unwrap())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(
        md.ok(&["run", "--rm", "fromstdin:gz", "cat", "/app/a"]),
        "one\n"
    );
}

#[test]
fn cp_copies_both_ways_and_stays_inside_the_container() {
    let Some(md) = Md::with_busybox() else { return };
    md.ok(&[
        "run",
        "--name",
        "files",
        "busybox",
        "sh",
        "-c",
        "mkdir /data && echo inside > /data/f && ln -s /etc /data/etc-link",
    ]);
    let out = md.path().join("out");
    std::fs::create_dir(&out).unwrap();
    md.ok(&["cp", "files:/data", &out.display().to_string()]);
    assert_eq!(
        std::fs::read_to_string(out.join("data/f")).unwrap(),
        "inside\n"
    );
    assert_eq!(
        std::fs::read_link(out.join("data/etc-link"))
            .unwrap()
            .display()
            .to_string(),
        "/etc",
        "symlinks copied as symlinks"
    );
    let host_file = md.path().join("host.txt");
    std::fs::write(&host_file, "from the host\n").unwrap();
    // Into a stopped container, through its symlink to /etc: lands in the container's /etc.
    md.ok(&[
        "cp",
        &host_file.display().to_string(),
        "files:/data/etc-link/",
    ]);
    assert!(
        !std::path::Path::new("/etc/host.txt").exists(),
        "never the host's /etc"
    );
    md.ok(&["commit", "files", "withcopy"]);
    assert_eq!(
        md.ok(&["run", "--rm", "withcopy", "cat", "/etc/host.txt"]),
        "from the host\n"
    );
}

#[test]
fn exit_codes_are_dockers() {
    let Some(md) = Md::with_busybox() else { return };
    let code = |args: &[&str]| md.run(args).status.code();
    assert_eq!(
        code(&["run", "--rm", "busybox", "sh", "-c", "exit 3"]),
        Some(3)
    );
    let not_found = md.run(&["run", "--rm", "busybox", "no-such-command"]);
    insta::assert_snapshot!(show(&not_found), @r#"
    exit: 127
    --- stderr
    Error: exec "no-such-command": executable file not found in $PATH
    "#);
    let not_executable = md.run(&["run", "--rm", "busybox", "/etc"]);
    insta::assert_snapshot!(show(&not_executable), @r#"
    exit: 126
    --- stderr
    Error: exec "/etc": permission denied
    "#);
    let no_image = md.run(&["run", "--rm", "--pull", "never", "nothing-here"]);
    insta::assert_snapshot!(show(&no_image), @r"
    exit: 125
    --- stderr
    Error: No such image: nothing-here:latest
    ");
    let bad_flag = md.run(&["run", "--no-such-flag", "busybox"]);
    assert_eq!(bad_flag.status.code(), Some(125));
    // 128 + N: the container's process killed by a signal.
    md.ok(&["run", "-d", "--name", "victim", "busybox", "sleep", "100"]);
    md.ok(&["kill", "-s", "KILL", "victim"]);
    assert_eq!(md.ok(&["wait", "victim"]), "137\n");
    assert_eq!(md.ids().len(), 1, "failed runs with --rm left no container");
}

#[test]
fn inspect_shows_dockers_fields_and_pause_freezes() {
    let Some(md) = Md::with_busybox() else { return };
    md.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-h",
        "webhost",
        "-m",
        "64m",
        "--pids-limit",
        "50",
        "busybox",
        "sleep",
        "100",
    ]);
    let v: serde_json::Value = serde_json::from_str(&md.ok(&["inspect", "web"])).unwrap();
    let c = &v[0];
    assert_eq!(c["Name"], "/web");
    assert_eq!(c["State"]["Status"], "running");
    assert!(c["State"]["Pid"].as_i64().unwrap() > 1);
    assert_eq!(c["Config"]["Hostname"], "webhost");
    assert_eq!(c["Config"]["Cmd"], serde_json::json!(["sleep", "100"]));
    assert_eq!(c["HostConfig"]["Memory"], 64 << 20);
    assert_eq!(c["HostConfig"]["PidsLimit"], 50);
    // The default network is the bridge (chapter 7): an address of its subnet, the
    // bridge's address as gateway, and docker's MAC derived from the address.
    let net = &c["NetworkSettings"]["Networks"]["bridge"];
    let ip = net["IPAddress"].as_str().unwrap();
    assert!(ip.starts_with("10.87."), "{net}");
    assert_eq!(c["NetworkSettings"]["IPAddress"], ip);
    assert!(net["Gateway"].as_str().unwrap().ends_with(".1"), "{net}");
    let octets: Vec<u8> = ip.split('.').map(|o| o.parse().unwrap()).collect();
    assert_eq!(
        net["MacAddress"],
        format!(
            "02:42:{:02x}:{:02x}:{:02x}:{:02x}",
            octets[0], octets[1], octets[2], octets[3]
        )
    );
    assert_eq!(c["HostConfig"]["NetworkMode"], "default");
    assert!(c["Image"].as_str().unwrap().starts_with("sha256:"));
    md.ok(&["pause", "web"]);
    assert_eq!(md.state("web")["Status"], "paused");
    let ps = md.ok(&["ps"]);
    assert!(ps.contains("(Paused)"), "{ps}");
    md.ok(&["unpause", "web"]);
    assert_eq!(md.state("web")["Status"], "running");
    // The limits are real: the container's cgroup reports them.
    let stats = md.ok(&["stats", "--no-stream", "web"]);
    assert!(
        stats.lines().nth(1).unwrap().contains(" / 64MiB"),
        "{stats}"
    );
}

#[test]
fn run_rm_leaves_nothing_and_names_are_unique() {
    let Some(md) = Md::with_busybox() else { return };
    md.ok(&[
        "run", "--rm", "--name", "once", "-v", "/tmpvol", "busybox", "true",
    ]);
    assert!(md.ids().is_empty());
    assert_eq!(
        md.ok(&["volume", "ls", "-q"]),
        "",
        "its anonymous volume went too"
    );
    md.ok(&["run", "-d", "--name", "taken", "busybox", "sleep", "100"]);
    let clash = md.run(&["run", "--name", "taken", "busybox", "true"]);
    let id = md.ids()[0].clone();
    insta::assert_snapshot!(show_with(&clash, &[(&id, "[ID]")]), @r#"
    exit: 125
    --- stderr
    Error: Conflict. The container name "/taken" is already in use by container "[ID]". You have to remove (or rename) that container to be able to reuse that name.
    "#);
}

/// `--device-write-bps`: the container's direct writes to the disk go at the rate given
/// (chapter 2's blkio/io controller), `stats` counts them in BLOCK I/O, `inspect` shows
/// the limit as docker's HostConfig does, and a path that is not a block device is refused.
#[test]
fn a_device_write_rate_slows_the_container_and_stats_count_its_block_io() {
    let Some(md) = Md::with_busybox() else { return };
    let disk = testkit::disk_of(md.path());
    testkit::require!(disk.is_some(), "a store on a block device");
    let layout = ch02_cgroups::Layout::detect().unwrap();
    testkit::require!(
        layout.locate(ch02_cgroups::Controller::Blkio).is_some()
            || layout.locate(ch02_cgroups::Controller::Io).is_some(),
        "the blkio (v1) or io (v2) controller"
    );
    let disk = disk.unwrap().display().to_string();
    md.ok(&[
        "run",
        "-d",
        "--name",
        "slow",
        "--device-write-bps",
        &format!("{disk}:1mb"),
        "busybox",
        "sh",
        "-c",
        "time dd if=/dev/zero of=/out bs=64k count=32 oflag=direct 2>/dd.log; touch /done; sleep 1000",
    ]);
    assert!(testkit::wait_until(20, || md
        .run(&["exec", "slow", "test", "-e", "/done"])
        .status
        .success()));
    // The time of dd alone, by busybox's `time`: "real\t0m 2.00s".
    let report = md.ok(&["exec", "slow", "cat", "/dd.log"]);
    let seconds: f64 = report
        .split("real\t0m ")
        .nth(1)
        .and_then(|r| r.split('s').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("time said {report:?}"));
    assert!(seconds > 1.2, "2 MiB at 1 MiB/s took {seconds} s: {report}");
    let stats = md.ok(&["stats", "--no-stream", "slow"]);
    let row = stats.lines().nth(1).unwrap_or_default().to_string();
    assert!(
        row.contains("/ 2.1MB"),
        "2 MiB written, in docker's units:\n{stats}"
    );
    let inspect: serde_json::Value =
        serde_json::from_str(&md.ok(&["inspect", "--type", "container", "slow"])).unwrap();
    assert_eq!(
        inspect[0]["HostConfig"]["BlkioDeviceWriteBps"],
        serde_json::json!([{"Path": disk, "Rate": 1048576}])
    );
    md.ok(&["rm", "-f", "slow"]);

    let out = md.run(&[
        "run",
        "--rm",
        "--device-write-bps",
        "/dev/null:1mb",
        "busybox",
        "true",
    ]);
    assert_eq!(out.status.code(), Some(125), "{}", show(&out));
    insta::assert_snapshot!(String::from_utf8_lossy(&out.stderr), @r#"Error: invalid argument "/dev/null:1mb" for "--device-write-bps" flag: /dev/null is not a block device"#);
}

/// `system df`: each image counted once (however many names), and RECLAIMABLE as docker
/// computes it: what no running container (images: no container at all) holds.
#[test]
fn system_df_counts_once_and_says_what_is_reclaimable() {
    let Some(md) = Md::with_busybox() else { return };
    md.ok(&["tag", "busybox", "second-name"]);
    md.ok(&[
        "run",
        "-d",
        "--name",
        "writer",
        "-v",
        "kept:/data",
        "busybox",
        "sh",
        "-c",
        "head -c 5000 /dev/zero > /file; head -c 3000 /dev/zero > /data/v; sleep 1000",
    ]);
    assert!(testkit::wait_until(10, || md
        .run(&["exec", "writer", "test", "-s", "/data/v"])
        .status
        .success()));
    let cells = |md: &Md| -> Vec<Vec<String>> {
        md.ok(&["system", "df"])
            .lines()
            .skip(1)
            .map(|l| {
                // Columns are at least three spaces apart; cells have single spaces.
                l.split("   ")
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .collect()
    };
    let df = cells(&md);
    assert_eq!(df[0][..3], ["Images", "1", "1"], "{df:?}");
    assert_eq!(df[0][4], "0B (0%)", "busybox is in use: {df:?}");
    assert_eq!(df[1], ["Containers", "1", "1", "5kB", "0B (0%)"], "{df:?}");
    assert_eq!(
        df[2],
        ["Local Volumes", "1", "1", "3kB", "0B (0%)"],
        "{df:?}"
    );
    md.ok(&["stop", "-t", "0", "writer"]);
    let df = cells(&md);
    assert_eq!(
        df[1],
        ["Containers", "1", "0", "5kB", "5kB (100%)"],
        "{df:?}"
    );
    md.ok(&["rm", "writer"]);
    let df = cells(&md);
    assert!(df[0][4].ends_with("(100%)"), "{df:?}");
    assert_eq!(
        df[2],
        ["Local Volumes", "1", "0", "3kB", "3kB (100%)"],
        "{df:?}"
    );
    md.ok(&["volume", "rm", "kept"]);
}

/// `diff`: added, changed and deleted paths, a directory removed and made again (opaque:
/// what it held below is deleted), and nothing of the init layer (the hostname written
/// goes to its bind mount, not to the writable layer).
#[test]
fn diff_lists_what_the_container_changed_and_not_the_init_layer() {
    let Some(md) = Md::with_busybox() else { return };
    md.ok(&[
        "run",
        "--name",
        "changer",
        "busybox",
        "sh",
        "-c",
        "echo new > /new; echo more >> /etc/passwd; rm /bin/vi; rm -rf /root; mkdir /root; \
         touch /root/fresh; echo other > /etc/hostname",
    ]);
    // busybox's /root is empty: nothing below to delete there.
    insta::assert_snapshot!(md.ok(&["diff", "changer"]), @r"
    C /bin
    D /bin/vi
    C /etc
    C /etc/passwd
    A /new
    C /root
    A /root/fresh
    ");
    md.ok(&["commit", "changer", "changed:v1"]);
    md.ok(&["rm", "changer"]);
    // On the committed image, the same deletions are facts of a layer below.
    md.ok(&[
        "run",
        "--name",
        "second",
        "changed:v1",
        "sh",
        "-c",
        "rm -rf /sbin; mkdir /sbin",
    ]);
    let diff = md.ok(&["diff", "second"]);
    assert!(diff.starts_with("C /sbin\nD /sbin/"), "{diff}");
    assert!(diff.contains("D /sbin/ifconfig\n"), "{diff}");
    assert!(
        diff.lines()
            .all(|l| l.starts_with("C /sbin") || l.starts_with("D /sbin/")),
        "{diff}"
    );
    md.ok(&["rm", "second"]);
    let missing = md.run(&["diff", "nosuch"]);
    assert_eq!(missing.status.code(), Some(1));
}

/// `--format`: Go templates over inspect's JSON and the fields of docker's `ps` and
/// `images` tables; `table` gives a header per field; a bad template says what is wrong.
#[test]
fn format_templates_read_like_dockers() {
    let Some(md) = Md::with_busybox() else { return };
    md.ok(&[
        "run", "-d", "--name", "fmt", "-e", "A=1", "busybox", "sleep", "1000",
    ]);
    let pid = md.ok(&["inspect", "-f", "{{.State.Pid}}", "fmt"]);
    let pid: i32 = pid.trim().parse().expect("a pid");
    assert!(std::path::Path::new(&format!("/proc/{pid}/ns/pid")).exists());
    assert_eq!(
        md.ok(&[
            "inspect",
            "--format",
            "{{.Name}} {{.State.Status}} {{json .Config.Cmd}}",
            "fmt"
        ]),
        "/fmt running [\"sleep\",\"1000\"]\n"
    );
    let env = md.ok(&["inspect", "-f", "{{range .Config.Env}}{{.}};{{end}}", "fmt"]);
    assert!(env.contains("A=1;"), "{env}");
    insta::assert_snapshot!(
        md.ok(&["ps", "--format", "table {{.Names}}\\t{{.Image}}\\t{{.State}}"]),
        @r"
    NAMES     IMAGE     STATE
    fmt       busybox   running
    "
    );
    assert_eq!(
        md.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]),
        "busybox:latest\n"
    );
    let bad = md.run(&["inspect", "-f", "{{.State.Pid", "fmt"]);
    assert_eq!(bad.status.code(), Some(1));
    insta::assert_snapshot!(String::from_utf8_lossy(&bad.stderr), @"Error: template parsing error: template: :1: unclosed action");
    md.ok(&["rm", "-f", "fmt"]);
}

/// The prunes print what docker's print: a section only for what went, then the total.
#[test]
fn prunes_report_like_docker() {
    let Some(md) = Md::with_busybox() else { return };
    assert_eq!(
        md.ok(&["container", "prune", "-f"]),
        "Total reclaimed space: 0B\n"
    );
    md.ok(&["run", "--name", "done", "-v", "/anon", "busybox", "true"]);
    md.ok(&["run", "-d", "--name", "up", "busybox", "sleep", "1000"]);
    let out = md.ok(&["system", "prune", "-f", "--volumes"]);
    let volume = md.ok(&["volume", "ls", "-q"]);
    assert!(
        volume.is_empty(),
        "the anonymous volume went with it: {volume}"
    );
    // The running container stays; busybox is in use by it, so no image goes.
    insta::assert_snapshot!(redact::redact(&out), @r"
    Deleted Containers:
    [ID]

    Deleted Volumes:
    [ID]

    Total reclaimed space: 0B
    ");
    md.ok(&["rm", "-f", "up"]);
}

/// `update` changes a running container's limits in its cgroup at once, both ways (v1
/// wants memory+swap raised before memory, lowered after), and keeps them for the next
/// start; `top` takes ps(1) options as docker's does.
#[test]
fn update_changes_live_limits_and_top_takes_ps_options() {
    let Some(md) = Md::with_busybox() else { return };
    md.ok(&[
        "run",
        "-d",
        "--name",
        "live",
        "-m",
        "32m",
        "--pids-limit",
        "10",
        "busybox",
        "sleep",
        "1000",
    ]);
    let first = md.ok(&["inspect", "-f", "{{.State.Pid}}", "live"]);
    let pid = first.trim();
    // What the kernel enforces for a process, read through its cgroup.
    let limit_of = |pid: &str, file: &str| -> String {
        let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
        let layout = ch02_cgroups::Layout::detect().unwrap();
        let controller = file.split('.').next().unwrap();
        let c = ch02_cgroups::Controller::from_name(controller).unwrap();
        let h = layout.locate(c).expect("the controller");
        let rel = cgroups
            .lines()
            .find_map(|l| {
                let mut f = l.splitn(3, ':');
                let (_, names, path) = (f.next()?, f.next()?, f.next()?);
                let mine = match h.version {
                    ch02_cgroups::layout::Version::V1 => names.split(',').any(|n| n == controller),
                    ch02_cgroups::layout::Version::V2 => names.is_empty(),
                };
                mine.then(|| path.to_string())
            })
            .unwrap();
        let v2_name = match file {
            "memory.limit_in_bytes" => "memory.max",
            other => other,
        };
        let path = h.mount_point.join(rel.trim_start_matches('/'));
        std::fs::read_to_string(path.join(file))
            .or_else(|_| std::fs::read_to_string(path.join(v2_name)))
            .unwrap()
            .trim()
            .to_string()
    };
    let limit = |file: &str| limit_of(pid, file);
    assert_eq!(limit("memory.limit_in_bytes"), (32u64 << 20).to_string());
    assert_eq!(limit("pids.max"), "10");
    assert_eq!(
        md.ok(&["update", "-m", "128m", "--pids-limit", "-1", "live"]),
        "live\n"
    );
    assert_eq!(limit("memory.limit_in_bytes"), (128u64 << 20).to_string());
    assert_eq!(limit("pids.max"), "max");
    md.ok(&["container", "update", "--memory", "16m", "live"]);
    assert_eq!(limit("memory.limit_in_bytes"), (16u64 << 20).to_string());
    assert_eq!(
        md.ok(&[
            "inspect",
            "-f",
            "{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}}",
            "live"
        ]),
        format!("{} <nil>\n", 16u64 << 20)
    );
    let none = md.run(&["update", "live"]);
    assert_eq!(none.status.code(), Some(1), "{}", show(&none));
    // What cannot be done is refused, and nothing changes.
    let cpuset = md.run(&["update", "--cpuset-cpus", "0", "live"]);
    assert_eq!(cpuset.status.code(), Some(1), "{}", show(&cpuset));
    assert!(String::from_utf8_lossy(&cpuset.stderr).contains("without --cpuset-cpus"));
    md.ok(&["update", "--memory-swap", "64m", "live"]);
    let over = md.run(&["update", "-m", "100m", "live"]);
    assert!(
        String::from_utf8_lossy(&over.stderr).contains("smaller than already set memoryswap"),
        "{}",
        show(&over)
    );
    assert_eq!(limit("memory.limit_in_bytes"), (16u64 << 20).to_string());

    let top = md.ok(&["top", "live", "-o", "pid,comm"]);
    // docker's top pads its columns to 20.
    assert_eq!(
        top,
        format!("PID                 COMMAND\n{pid:<20}sleep\n")
    );
    // Kept for the next start.
    md.ok(&["restart", "-t", "0", "live"]);
    assert!(md.wait_status("live", "running"));
    let second = md.ok(&["inspect", "-f", "{{.State.Pid}}", "live"]);
    assert_eq!(
        limit_of(second.trim(), "memory.limit_in_bytes"),
        (16u64 << 20).to_string()
    );
    md.ok(&["rm", "-f", "live"]);
}

/// `exec -d` starts a process in the background, with or without a terminal; the one with
/// a terminal keeps it (a drain holds the other side) instead of hanging up when we go.
#[test]
fn exec_d_runs_in_the_background_with_or_without_a_terminal() {
    let Some(md) = Md::with_busybox() else { return };
    md.ok(&["run", "-d", "--name", "host", "busybox", "sleep", "1000"]);
    assert_eq!(md.ok(&["exec", "-d", "host", "sleep", "901"]), "");
    assert_eq!(md.ok(&["exec", "-d", "-t", "host", "sleep", "902"]), "");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let top = md.ok(&["top", "host", "-o", "pid,args"]);
    assert!(
        top.contains("sleep 901\n") && top.contains("sleep 902\n"),
        "{top}"
    );
    md.ok(&["rm", "-f", "host"]);
}

#[test]
fn run_flags_reach_the_container() {
    let Some(md) = Md::with_busybox() else { return };
    let env_file = md.path().join("env");
    std::fs::write(&env_file, "# a comment\nFROM_FILE=yes\nCOLOUR=red\n").unwrap();
    let out = md.ok(&[
        "run",
        "--rm",
        "--env-file",
        &env_file.display().to_string(),
        "-e",
        "COLOUR=blue",
        "-u",
        "nobody",
        "-w",
        "/tmp",
        "--entrypoint",
        "/bin/sh",
        "busybox",
        "-c",
        "echo $FROM_FILE $COLOUR; id -u; pwd",
    ]);
    assert_eq!(out, "yes blue\n65534\n/tmp\n");
    let ro = md.run(&[
        "run",
        "--rm",
        "--read-only",
        "busybox",
        "sh",
        "-c",
        "touch /x",
    ]);
    assert_eq!(ro.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&ro.stderr).contains("Read-only file system"),
        "{}",
        show(&ro)
    );
    let dns = md.ok(&[
        "run",
        "--rm",
        "--dns",
        "10.9.8.7",
        "--dns-search",
        "corp.example",
        "--add-host",
        "db:10.0.0.5",
        "busybox",
        "cat",
        "/etc/resolv.conf",
        "/etc/hosts",
    ]);
    assert!(
        dns.contains("search corp.example\nnameserver 10.9.8.7\n")
            && dns.contains("10.0.0.5\tdb\n"),
        "{dns}"
    );
    // CPU and process limits land in the cgroup (the container sees their effect).
    md.ok(&[
        "run",
        "-d",
        "--name",
        "limited",
        "--cpus",
        "0.5",
        "--pids-limit",
        "5",
        "busybox",
        "sleep",
        "100",
    ]);
    let fork = md.run(&[
        "exec",
        "limited",
        "sh",
        "-c",
        "for i in 1 2 3 4 5 6; do sleep 10 & done; wait",
    ]);
    assert!(
        String::from_utf8_lossy(&fork.stderr).contains("can't fork"),
        "{}",
        show(&fork)
    );
}

#[test]
fn logs_follow_top_and_exec_with_a_terminal() {
    let Some(md) = Md::with_busybox() else { return };
    md.ok(&[
        "run",
        "-d",
        "--name",
        "ticker",
        "busybox",
        "sh",
        "-c",
        "for i in 1 2 3; do echo tick $i; sleep 0.3; done",
    ]);
    // -f follows until the container ends.
    assert_eq!(md.ok(&["logs", "-f", "ticker"]), "tick 1\ntick 2\ntick 3\n");
    md.ok(&["run", "-d", "--name", "sleeper", "busybox", "sleep", "100"]);
    let top = md.ok(&["top", "sleeper"]);
    let lines: Vec<&str> = top.lines().collect();
    assert!(
        lines[0].starts_with("UID") && lines[0].ends_with("CMD"),
        "{top}"
    );
    assert!(lines[1].ends_with("sleep 100"), "{top}");
    // exec -t: a pseudo-terminal of its own.
    let tty = md
        .cmd()
        .args(["exec", "-t", "sleeper", "tty"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&tty.stdout).trim(),
        "/dev/pts/0",
        "{}",
        show(&tty)
    );
}

/// The process environment is docker's: PATH, HOSTNAME, the image's and -e's variables,
/// HOME last; the same in exec, with exec's -e.
#[test]
fn run_and_exec_get_dockers_environment() {
    let Some(md) = Md::with_busybox() else { return };
    let out = md.ok(&["run", "--rm", "-h", "box", "-e", "A=1", "busybox", "env"]);
    assert_eq!(
        out,
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\nHOSTNAME=box\nA=1\nHOME=/root\n"
    );
    md.ok(&[
        "run", "-d", "--name", "envy", "-h", "box", "busybox", "sleep", "60",
    ]);
    let out = md.ok(&["exec", "-e", "B=2", "envy", "env"]);
    assert_eq!(
        out,
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\nHOSTNAME=box\nB=2\nHOME=/root\n"
    );
    md.ok(&["rm", "-f", "envy"]);
}

/// docker's marks of a container: an empty `/.dockerenv`, and with the host's network the
/// host's hostname.
#[test]
fn dockerenv_exists_and_host_network_takes_the_hosts_name() {
    let Some(md) = Md::with_busybox() else { return };
    assert_eq!(
        md.ok(&[
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "test -f /.dockerenv && wc -c < /.dockerenv"
        ]),
        "0\n"
    );
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(
        md.ok(&["run", "--rm", "--network", "host", "busybox", "hostname"]),
        host
    );
}

#[test]
fn run_timings_prints_each_step_of_the_start_and_changes_nothing_else() {
    let Some(md) = Md::with_busybox() else { return };
    let o = md.run(&[
        "run",
        "--timings",
        "--rm",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "ls /proc/self/fd; exit 3",
    ]);
    // The container's status and output are its own; it holds no descriptor of ours.
    assert_eq!(o.status.code(), Some(3), "{}", testkit::show(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "0\n1\n2\n3\n");
    let err = String::from_utf8_lossy(&o.stderr);
    let table = err
        .split_once("timings (ms):\n")
        .unwrap_or_else(|| panic!("no timings on stderr: {err}"))
        .1;
    let rows: Vec<(&str, f64)> = table
        .lines()
        .map(|l| {
            let mut w = l.split_whitespace();
            let name = w.next().unwrap();
            (name, w.next().unwrap().parse().unwrap())
        })
        .collect();
    let names: Vec<&str> = rows.iter().map(|r| r.0).collect();
    // Every process of the run reported: the CLI, the monitor, the container's child.
    for step in [
        "lookup",
        "create",
        "cgroup",
        "clone",
        "exec",
        "overlay-mount",
        "pivot_root",
        "child-setup",
        "container",
        "cgroup-remove",
        "exit-record",
        "rm",
        "other",
        "total",
    ] {
        assert!(names.contains(&step), "{step} missing: {err}");
    }
    // The rows add up to the total (each printed to a microsecond).
    let (total, steps) = rows.split_last().unwrap();
    let sum: f64 = steps.iter().map(|r| r.1).sum();
    assert!(
        (sum - total.1).abs() < 0.001 * rows.len() as f64 + 0.01,
        "{sum} != {}: {err}",
        total.1
    );
    let refused = md.run(&["run", "--timings", "-d", "busybox", "true"]);
    assert_eq!(
        refused.status.code(),
        Some(125),
        "{}",
        testkit::show(&refused)
    );
    assert!(String::from_utf8_lossy(&refused.stderr).contains("cannot be combined with -d"));
}
