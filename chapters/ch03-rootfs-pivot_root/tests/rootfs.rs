//! A busybox root of its own, through the real binary, as root.
use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use testkit::rootfs::require_busybox;
use testkit::{leaks, require_root, show_with};

fn ch03(args: &[&str], tmpdir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ch03-rootfs-pivot_root"))
        .args(args)
        .env("TMPDIR", tmpdir)
        .stdin(Stdio::null())
        .output()
        .expect("run ch03-rootfs-pivot_root")
}

#[test]
fn inside_the_rootfs_mountinfo_shows_only_the_containers_own_mounts() {
    require_root!();
    let Some(root) = require_busybox() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let out = ch03(
        &[
            "run",
            "--rootfs",
            &root.path().display().to_string(),
            "--",
            "cat",
            "/proc/self/mountinfo",
        ],
        tmp.path(),
    );
    assert!(out.status.success(), "{}", testkit::show(&out));
    // Mount point and file-system type of each line: fields 5 and 9 (after " - ").
    let table: String = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let point = l.split(' ').nth(4).unwrap_or("?");
            let fstype = l
                .split(" - ")
                .nth(1)
                .and_then(|r| r.split(' ').next())
                .unwrap_or("?");
            format!("{point} {fstype}\n")
        })
        .collect();
    insta::assert_snapshot!(table, @r"
    / ext4
    /proc proc
    /sys sysfs
    /dev tmpfs
    /dev/pts devpts
    /dev/mqueue mqueue
    /dev/shm tmpfs
    ");
    leaks::assert_no_mounts_under(root.path());
}

#[test]
fn the_rootfs_is_the_whole_world_with_a_dev_of_its_own() {
    require_root!();
    let Some(root) = require_busybox() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let script = "ls /; hostname; pwd; ls -l /dev | awk '{print $1, $NF}'";
    let out = ch03(
        &[
            "run",
            "--rootfs",
            &root.path().display().to_string(),
            "--hostname",
            "box",
            "-w",
            "/srv/app",
            "--",
            "sh",
            "-c",
            script,
        ],
        tmp.path(),
    );
    insta::assert_snapshot!(show_with(&out, &[]), @"
    exit: 0
    --- stdout
    bin
    dev
    etc
    home
    mnt
    proc
    root
    run
    sbin
    srv
    sys
    tmp
    usr
    var
    box
    /srv/app
    total 0
    lrwxrwxrwx /proc/self/fd
    crw-rw-rw- full
    drwxrwxrwt mqueue
    crw-rw-rw- null
    lrwxrwxrwx pts/ptmx
    drwxr-xr-x pts
    crw-rw-rw- random
    drwxrwxrwt shm
    lrwxrwxrwx /proc/self/fd/2
    lrwxrwxrwx /proc/self/fd/0
    lrwxrwxrwx /proc/self/fd/1
    crw-rw-rw- tty
    crw-rw-rw- urandom
    crw-rw-rw- zero
    ");
    assert!(
        root.path().join("srv/app").is_dir(),
        "-w created the directory inside the rootfs"
    );
}

#[test]
fn volumes_are_bound_before_the_switch_read_write_or_read_only() {
    require_root!();
    let Some(root) = require_busybox() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let rw = tempfile::tempdir().unwrap();
    let ro = tempfile::tempdir().unwrap();
    fs::write(ro.path().join("config"), "from the host\n").unwrap();
    let v_rw = format!("{}:/data", rw.path().display());
    let v_ro = format!("{}:/etc/app:ro", ro.path().display());
    let script =
        "echo written inside > /data/out; cat /etc/app/config; echo nope > /etc/app/config";
    let out = ch03(
        &[
            "run",
            "--rootfs",
            &root.path().display().to_string(),
            "-v",
            &v_rw,
            "-v",
            &v_ro,
            "--",
            "sh",
            "-c",
            script,
        ],
        tmp.path(),
    );
    insta::assert_snapshot!(show_with(&out, &[]), @r"
    exit: 1
    --- stdout
    from the host
    --- stderr
    sh: can't create /etc/app/config: Read-only file system
    ");
    assert_eq!(
        fs::read_to_string(rw.path().join("out")).unwrap(),
        "written inside\n"
    );
    assert_eq!(
        fs::read_to_string(ro.path().join("config")).unwrap(),
        "from the host\n"
    );
    leaks::assert_no_mounts_under(root.path());
}

#[test]
fn a_symlink_in_the_image_cannot_redirect_a_volume_onto_the_host() {
    require_root!();
    let Some(root) = require_busybox() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let host_dir = tempfile::tempdir().unwrap();
    let volume = tempfile::tempdir().unwrap();
    fs::write(volume.path().join("marker"), "volume\n").unwrap();
    // The image says /data is the host directory: resolved inside the rootfs, it is not.
    std::os::unix::fs::symlink(host_dir.path(), root.path().join("data")).unwrap();
    let v = format!("{}:/data", volume.path().display());
    let out = ch03(
        &[
            "run",
            "--rootfs",
            &root.path().display().to_string(),
            "-v",
            &v,
            "--",
            "cat",
            "/data/marker",
        ],
        tmp.path(),
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "volume\n",
        "{}",
        testkit::show(&out)
    );
    assert_eq!(
        fs::read_dir(host_dir.path()).unwrap().count(),
        0,
        "nothing was mounted or created on the host path"
    );
    leaks::assert_no_mounts_under(host_dir.path());
}

#[test]
fn a_tarball_rootfs_is_unpacked_used_and_removed() {
    require_root!();
    let Some(root) = require_busybox() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let tar = testkit::rootfs::tar_dir(root.path(), &tmp.path().join("busybox.tar")).unwrap();
    let work = tempfile::tempdir().unwrap();
    let out = ch03(
        &[
            "run",
            "--rootfs",
            &tar.display().to_string(),
            "--",
            "sh",
            "-c",
            "ls /bin/busybox && echo ok",
        ],
        work.path(),
    );
    insta::assert_snapshot!(show_with(&out, &[]), @r"
    exit: 0
    --- stdout
    /bin/busybox
    ok
    ");
    assert_eq!(
        fs::read_dir(work.path()).unwrap().count(),
        0,
        "the unpacked rootfs was removed"
    );
}

#[test]
fn a_chroot_can_be_climbed_out_of() {
    require_root!();
    let Some(root) = require_busybox() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let rootfs = root.path().display().to_string();
    let host_listing = {
        let mut names: Vec<String> = fs::read_dir("/")
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names.join(" ")
    };
    let chrooted = ch03(&["escape", "--rootfs", &rootfs], tmp.path());
    insta::assert_snapshot!(show_with(&chrooted, &[(&host_listing, "[THE HOST'S /]")]), @"
    exit: 0
    --- stdout
    chroot into the rootfs; then the chroot escape:
      inside, / holds:  bin dev etc home mnt proc root run sbin sys tmp usr var
      after the climb:  [THE HOST'S /]
      => escaped: / is the host's root (same device and inode). A chroot is not a boundary for root.
    ");
    leaks::assert_no_mounts_under(root.path());
}

#[test]
fn a_pivoted_root_cannot_be_climbed_out_of() {
    require_root!();
    let Some(root) = require_busybox() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let rootfs = root.path().display().to_string();
    let pivoted = ch03(&["escape", "--rootfs", &rootfs, "--pivot"], tmp.path());
    insta::assert_snapshot!(show_with(&pivoted, &[]), @r"
    exit: 0
    --- stdout
    pivot_root into the rootfs, old root detached; then the chroot escape:
      inside, / holds:  bin dev etc home mnt proc root run sbin sys tmp usr var
      after the climb:  bin dev etc home mnt proc root run sbin sys tmp usr var
      => stayed inside: above the new root there is nothing; the old root is gone from this mount namespace.
    ");
    leaks::assert_no_mounts_under(root.path());
}

#[test]
fn exit_codes_and_errors_are_the_containers_or_say_what_failed() {
    require_root!();
    let Some(root) = require_busybox() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let rootfs = root.path().display().to_string();
    assert_eq!(
        ch03(
            &["run", "--rootfs", &rootfs, "--", "sh", "-c", "exit 9"],
            tmp.path()
        )
        .status
        .code(),
        Some(9)
    );
    let missing = ch03(&["run", "--rootfs", &rootfs, "--", "bash"], tmp.path());
    insta::assert_snapshot!(show_with(&missing, &[]), @r#"
    exit: 127
    --- stderr
    ch03-rootfs-pivot_root: exec "bash": executable file not found in $PATH
    "#);
    let bad_volume = ch03(
        &[
            "run",
            "--rootfs",
            &rootfs,
            "-v",
            "relative:/x",
            "--",
            "true",
        ],
        tmp.path(),
    );
    insta::assert_snapshot!(show_with(&bad_volume, &[]), @r#"
    exit: 125
    --- stderr
    ch03-rootfs-pivot_root: invalid volume "relative:/x": the host path "relative" must be absolute
    "#);
    let no_rootfs = ch03(
        &["run", "--rootfs", "/nonexistent/rootfs", "--", "true"],
        tmp.path(),
    );
    insta::assert_snapshot!(show_with(&no_rootfs, &[]), @r"
    exit: 125
    --- stderr
    ch03-rootfs-pivot_root: /nonexistent/rootfs: No such file or directory (os error 2)
    ");
}

/// Without root: `--user` runs the whole story in a user namespace (plus a network
/// namespace, which sysfs needs): the rootfs, owned by the user, reads as root's inside,
/// the device nodes are the host's, bound (a user namespace may not make them).
#[test]
fn an_ordinary_user_pivots_into_a_rootfs_it_owns_with_user() {
    require_root!(); // to become `nobody`
    testkit::require!(
        testkit::rootless::unprivileged_userns(),
        "unprivileged user namespaces"
    );
    let Some(root) = require_busybox() else {
        return;
    };
    let bin = Path::new(env!("CARGO_BIN_EXE_ch03-rootfs-pivot_root"));
    let rootless = testkit::rootless::Rootless::new(bin).unwrap();
    let rootfs = rootless.path().join("rootfs");
    let copied = Command::new("cp")
        .arg("-a")
        .arg(root.path())
        .arg(&rootfs)
        .status()
        .unwrap();
    assert!(copied.success());
    rootless.own(&rootfs).unwrap();
    let o = rootless
        .command()
        .args(["run", "--user", "--hostname", "box", "--rootfs"])
        .arg(&rootfs)
        .args([
            "--",
            "sh",
            "-c",
            "id -u; hostname; stat -c '%u %U' /bin/busybox; echo $$; \
             echo x > /dev/null && echo null-ok; touch /made && echo made",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "0\nbox\n0 root\n1\nnull-ok\nmade\n",
        "{}",
        testkit::show(&o)
    );
    // What root inside made is the user's outside.
    let made = fs::metadata(rootfs.join("made")).unwrap();
    assert_eq!(
        std::os::unix::fs::MetadataExt::uid(&made),
        testkit::rootless::NOBODY
    );
}
