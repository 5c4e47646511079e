//! Layers for real, as root: overlay stacks, whiteouts, diff and apply, and the proof that a
//! stack of applied layers reads exactly like the same layers extracted one over another.
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use ch04_unionfs_layers::sys::Kernel;
use ch04_unionfs_layers::{ApplyOptions, Stack, apply, diff, overlay};
use testkit::leaks::{Unmount, assert_no_mounts_under};
use testkit::{require_root, show, show_with};

fn ch04(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ch04-unionfs-layers"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run ch04")
}

/// Everything a reader of a tree can observe, per path: kind, mode, owner, content or
/// link target or device number. Whiteouts (0/0 devices) are not files; overlayfs hides them.
fn tree(root: &Path) -> BTreeMap<PathBuf, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, String>) {
        let mut entries: Vec<_> = fs::read_dir(dir).unwrap().flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let p = e.path();
            let md = fs::symlink_metadata(&p).unwrap();
            let ft = md.file_type();
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            let meta = format!("{:o} {}:{}", md.mode() & 0o7777, md.uid(), md.gid());
            let desc = if ft.is_dir() {
                walk(root, &p, out);
                format!("dir {meta}")
            } else if ft.is_symlink() {
                format!("link -> {}", fs::read_link(&p).unwrap().display())
            } else if ft.is_char_device() {
                if md.rdev() == 0 {
                    continue;
                }
                format!("chr {meta} {}", md.rdev())
            } else {
                format!(
                    "file {meta} {:?}",
                    fs::read_to_string(&p).unwrap_or_else(|_| "<binary>".into())
                )
            };
            out.insert(rel, desc);
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// A layer, written as a tarball the way image tools write them.
#[derive(Clone)]
enum E {
    Dir(&'static str),
    File(&'static str, &'static str),
    Link(&'static str, &'static str),
    Hard(&'static str, &'static str),
    Whiteout(&'static str),
    Opaque(&'static str),
}

fn layer(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mode(0o644);
        h.set_size(0);
        match e {
            E::Dir(p) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                b.append_data(&mut h, p, &b""[..]).unwrap();
            }
            E::File(p, text) => {
                h.set_size(text.len() as u64);
                b.append_data(&mut h, p, text.as_bytes()).unwrap();
            }
            E::Link(p, target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                b.append_link(&mut h, p, target).unwrap();
            }
            E::Hard(p, target) => {
                h.set_entry_type(tar::EntryType::Link);
                b.append_link(&mut h, p, target).unwrap();
            }
            E::Whiteout(p) => {
                let p = Path::new(p);
                let wh =
                    p.with_file_name(format!(".wh.{}", p.file_name().unwrap().to_string_lossy()));
                b.append_data(&mut h, wh, &b""[..]).unwrap();
            }
            E::Opaque(dir) => {
                b.append_data(&mut h, Path::new(dir).join(".wh..wh..opq"), &b""[..])
                    .unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

/// Layers that delete, replace and re-add in every way the format allows.
fn scenario() -> Vec<Vec<u8>> {
    use E::*;
    vec![
        layer(&[
            Dir("etc"),
            File("etc/motd", "base motd\n"),
            Hard("etc/motd.hardlink", "etc/motd"),
            Dir("app"),
            File("app/config", "colour=blue\n"),
            Dir("app/data"),
            File("app/data/a", "a\n"),
            File("app/data/b", "b\n"),
            Dir("bin"),
            File("bin/tool", "#!/bin/sh\n"),
            Link("bin/alias", "tool"),
            Dir("keep"),
            File("keep/x", "x\n"),
        ]),
        layer(&[
            Dir("app"),
            Whiteout("app/config"),
            Dir("app/data"),
            Opaque("app/data"),
            File("app/data/c", "c\n"),
            File("etc/motd", "second motd\n"),
            Dir("bin/tool"),
            File("bin/tool/inside", "now a directory\n"),
            Link("keep", "/etc"),
        ]),
        layer(&[
            // A whiteout and new entries under the same name, in one layer: the directory
            // is replaced, nothing of the lower one shows.
            Whiteout("app/data"),
            Dir("app/data"),
            File("app/data/d", "d\n"),
            Whiteout("bin/alias"),
        ]),
        layer(&[
            File("app/config", "colour=green\n"),
            Link("bin/alias", "tool/inside"),
        ]),
    ]
}

#[test]
fn whiteouts_in_a_layer_become_overlay_whiteouts_in_its_directory() {
    require_root!();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("layer");
    fs::create_dir(&dir).unwrap();
    let tar = layer(&[
        E::Dir("etc"),
        E::Whiteout("etc/motd"),
        E::File("etc/hostname", "box\n"),
    ]);
    let stats = apply(&tar[..], &dir, &ApplyOptions::layer()).unwrap();
    assert_eq!(stats.whiteouts, 1);
    // overlayfs's whiteout: a character device 0/0 in place of the deleted name.
    let md = fs::symlink_metadata(dir.join("etc/motd")).expect("a whiteout at etc/motd");
    assert!(
        md.file_type().is_char_device() && md.rdev() == 0,
        "etc/motd is a 0/0 character device: {md:?}"
    );
    assert!(!dir.join("etc/.wh.motd").exists(), "no .wh. file is left");
    assert_eq!(
        fs::read_to_string(dir.join("etc/hostname")).unwrap(),
        "box\n"
    );
}

#[test]
fn a_stack_of_applied_layers_reads_like_the_layers_extracted_one_over_another() {
    require_root!();
    let work = tempfile::tempdir().unwrap();
    let layers = scenario();
    // (a) Each layer into a directory of its own, whiteouts as overlayfs's, then mounted.
    let mut lowers = Vec::new();
    for (i, tar) in layers.iter().enumerate() {
        let dir = work.path().join(format!("layer{i}"));
        fs::create_dir(&dir).unwrap();
        apply(&tar[..], &dir, &ApplyOptions::layer()).unwrap();
        lowers.insert(0, dir); // top first
    }
    let merged = work.path().join("merged");
    for d in ["merged", "upper", "work"] {
        fs::create_dir(work.path().join(d)).unwrap();
    }
    let stack = Stack {
        lowers,
        upper: Some((work.path().join("upper"), work.path().join("work"))),
    };
    overlay::mount(&Kernel::new(false), &stack, &merged).unwrap();
    let _unmount = Unmount(merged.clone());
    // (b) All layers onto one directory, whiteouts as deletions.
    let flat = work.path().join("flat");
    fs::create_dir(&flat).unwrap();
    for tar in &layers {
        apply(&tar[..], &flat, &ApplyOptions::flatten()).unwrap();
    }
    let (merged_tree, flat_tree) = (tree(&merged), tree(&flat));
    assert_eq!(merged_tree, flat_tree);
    // And that tree is the one the layers describe.
    let listing: Vec<String> = flat_tree
        .iter()
        .map(|(p, d)| format!("{} {d}", p.display()))
        .collect();
    insta::assert_snapshot!(listing.join("\n"), @r#"
    app dir 755 0:0
    app/config file 644 0:0 "colour=green\n"
    app/data dir 755 0:0
    app/data/d file 644 0:0 "d\n"
    bin dir 755 0:0
    bin/alias link -> tool/inside
    bin/tool dir 755 0:0
    bin/tool/inside file 644 0:0 "now a directory\n"
    etc dir 755 0:0
    etc/motd file 644 0:0 "second motd\n"
    etc/motd.hardlink file 644 0:0 "base motd\n"
    keep link -> /etc
    "#);
}

#[test]
fn diff_turns_overlay_whiteouts_and_opaque_dirs_into_oci_entries_and_apply_turns_them_back() {
    require_root!();
    let work = tempfile::tempdir().unwrap();
    let upper = work.path().join("upper");
    fs::create_dir_all(upper.join("app/data")).unwrap();
    fs::create_dir_all(upper.join("etc")).unwrap();
    fs::write(upper.join("etc/motd"), "changed\n").unwrap();
    fs::hard_link(upper.join("etc/motd"), upper.join("etc/motd.bak")).unwrap();
    std::os::unix::fs::symlink("motd", upper.join("etc/issue")).unwrap();
    nix::sys::stat::mknod(
        &upper.join("app/config"),
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::empty(),
        0,
    )
    .unwrap();
    xattr::set(upper.join("app/data"), "trusted.overlay.opaque", b"y").unwrap();
    fs::write(upper.join("app/data/c"), "c\n").unwrap();
    fs::set_permissions(upper.join("app/data/c"), fs::Permissions::from_mode(0o4755)).unwrap();
    xattr::set(upper.join("app/data/c"), "user.origin", b"test").unwrap();
    for p in ["app", "app/data", "etc"] {
        fs::set_permissions(upper.join(p), fs::Permissions::from_mode(0o755)).unwrap();
    }
    for p in ["etc/motd", "app/data/c"] {
        nix::unistd::chown(
            &upper.join(p),
            Some(nix::unistd::Uid::from_raw(0)),
            Some(nix::unistd::Gid::from_raw(0)),
        )
        .unwrap();
    }
    fs::set_permissions(upper.join("etc/motd"), fs::Permissions::from_mode(0o644)).unwrap();
    fs::set_permissions(upper.join("app/data/c"), fs::Permissions::from_mode(0o4755)).unwrap();

    let out_tar = work.path().join("layer.tar.gz");
    let out = ch04(&[
        "diff",
        &upper.display().to_string(),
        "-o",
        &out_tar.display().to_string(),
    ]);
    insta::assert_snapshot!(show_with(&out, &[(&out_tar.display().to_string(), "LAYER")]), @r"
    exit: 0
    --- stdout
    dir  0755 app
    file 0644 app/.wh.config  (whiteout: delete config)
    dir  0755 app/data
    file 0644 app/data/.wh..wh..opq  (opaque: hide the lower directory)
    file 4755 app/data/c
    dir  0755 etc
    link 0777 etc/issue -> motd
    file 0644 etc/motd
    hard 0644 etc/motd.bak -> etc/motd
    --- stderr
    ch04-unionfs-layers: wrote LAYER (9 entries, 1 whiteouts, 1 opaque directories)
    ");

    // Back into a layer directory: the same overlay notation, byte for byte.
    let back = work.path().join("back");
    fs::create_dir(&back).unwrap();
    let out = ch04(&[
        "apply",
        &out_tar.display().to_string(),
        &back.display().to_string(),
    ]);
    assert!(out.status.success(), "{}", show(&out));
    let wh = fs::symlink_metadata(back.join("app/config")).unwrap();
    assert!(
        wh.file_type().is_char_device() && wh.rdev() == 0,
        "a 0/0 whiteout again"
    );
    assert_eq!(
        xattr::get(back.join("app/data"), "trusted.overlay.opaque").unwrap(),
        Some(b"y".to_vec())
    );
    assert_eq!(
        xattr::get(back.join("app/data/c"), "user.origin").unwrap(),
        Some(b"test".to_vec())
    );
    assert_eq!(
        fs::metadata(back.join("etc/motd.bak")).unwrap().ino(),
        fs::metadata(back.join("etc/motd")).unwrap().ino()
    );
    assert_eq!(
        ch04_unionfs_layers::demo::describe(&back),
        ch04_unionfs_layers::demo::describe(&upper)
    );
    assert_eq!(
        fs::metadata(back.join("app/data/c")).unwrap().mode() & 0o7777,
        0o4755
    );
}

#[test]
fn mount_and_umount_make_a_working_overlay() {
    require_root!();
    let work = tempfile::tempdir().unwrap();
    let p = |d: &str| work.path().join(d);
    for d in ["l1/etc", "l2/etc", "upper", "work", "merged"] {
        fs::create_dir_all(p(d)).unwrap();
    }
    fs::write(p("l1/etc/os-release"), "ID=top\n").unwrap();
    fs::write(p("l2/etc/os-release"), "ID=bottom\n").unwrap();
    fs::write(p("l2/etc/only-below"), "below\n").unwrap();
    let s = |path: PathBuf| path.display().to_string();
    let lower = format!("{}:{}", s(p("l1")), s(p("l2")));
    let out = ch04(&[
        "mount",
        "--lower",
        &lower,
        "--upper",
        &s(p("upper")),
        "--work",
        &s(p("work")),
        &s(p("merged")),
    ]);
    let _unmount = Unmount(p("merged"));
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(
        fs::read_to_string(p("merged/etc/os-release")).unwrap(),
        "ID=top\n",
        "the top layer wins"
    );
    assert_eq!(
        fs::read_to_string(p("merged/etc/only-below")).unwrap(),
        "below\n",
        "lower files show through"
    );
    fs::write(p("merged/etc/new"), "new\n").unwrap();
    assert_eq!(
        fs::read_to_string(p("upper/etc/new")).unwrap(),
        "new\n",
        "writes land in upper"
    );
    let out = ch04(&["umount", &s(p("merged"))]);
    assert!(out.status.success(), "{}", show(&out));
    assert_no_mounts_under(work.path());
}

#[test]
fn a_hundred_and_twenty_eight_layers_with_long_paths_still_mount() {
    require_root!();
    let work = tempfile::tempdir().unwrap();
    // Each lower path is over 100 bytes: 128 of them are far over mount(2)'s one page.
    let deep = work.path().join("a-directory-with-a-long-name-as-image-stores-have/layers-are-stored-by-their-sha256-digest");
    let mut lowers = Vec::new();
    for i in 0..128 {
        let dir = deep.join(format!("{i:064x}"));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(format!("from-layer-{i}")), format!("{i}\n")).unwrap();
        fs::write(dir.join("winner"), format!("{i}\n")).unwrap();
        lowers.insert(0, dir);
    }
    let stack = Stack {
        lowers,
        upper: None,
    };
    assert!(
        stack.options().len() > overlay::MOUNT_DATA_MAX,
        "the classic option string would not fit"
    );
    let merged = work.path().join("merged");
    fs::create_dir(&merged).unwrap();
    let mounted = overlay::mount(&Kernel::new(false), &stack, &merged);
    if testkit::kernel_version() < (6, 8) {
        // No lowerdir+: the stack is refused with the reason, before mount(2) is tried.
        let err = mounted.unwrap_err();
        assert_eq!(err.errno, nix::errno::Errno::E2BIG, "{err}");
        assert!(
            err.call.contains("lacks the new mount API's lowerdir+"),
            "{err}"
        );
        eprintln!(
            "{}: Linux {:?} has no lowerdir+ (6.8): checked that 128 long layers are refused with the reason",
            testkit::test_name(),
            testkit::kernel_version()
        );
        return;
    }
    mounted.unwrap();
    let _unmount = Unmount(merged.clone());
    assert_eq!(
        fs::read_to_string(merged.join("from-layer-0")).unwrap(),
        "0\n",
        "the base layer is there"
    );
    assert_eq!(
        fs::read_to_string(merged.join("winner")).unwrap(),
        "127\n",
        "the top layer wins"
    );
    assert_eq!(fs::read_dir(&merged).unwrap().count(), 129);
}

#[test]
fn the_demo_shows_copy_up_whiteouts_and_opaque_directories() {
    require_root!();
    let out = ch04(&["demo"]);
    insta::assert_snapshot!(show(&out));
}

#[test]
fn the_init_layer_keeps_the_containers_files_out_of_the_read_write_layer() {
    require_root!();
    let work = tempfile::tempdir().unwrap();
    let p = |d: &str| work.path().join(d);
    for d in ["image/etc", "upper", "work", "merged"] {
        fs::create_dir_all(p(d)).unwrap();
    }
    fs::write(p("image/etc/hostname"), "image-default\n").unwrap();
    let out = ch04(&[
        "init-layer",
        &p("init").display().to_string(),
        "--hostname",
        "box",
        "--dns",
        "10.0.0.2",
    ]);
    assert!(out.status.success(), "{}", show(&out));
    let stack = Stack {
        lowers: vec![p("init"), p("image")],
        upper: Some((p("upper"), p("work"))),
    };
    let sys = Kernel::new(false);
    overlay::mount(&sys, &stack, &p("merged")).unwrap();
    let _unmount = Unmount(p("merged"));
    assert_eq!(
        fs::read_to_string(p("merged/etc/hostname")).unwrap(),
        "box\n"
    );
    assert_eq!(
        fs::read_to_string(p("merged/etc/resolv.conf")).unwrap(),
        "nameserver 10.0.0.2\n"
    );
    // The container works: a file of its own, and an edit of /etc/hosts through the bind
    // mount a runtime puts over it.
    fs::write(p("merged/etc/app.conf"), "mine\n").unwrap();
    let hosts = p("merged/etc/hosts");
    nix::mount::mount(
        Some(&p("init/etc/hosts")),
        &hosts,
        None::<&str>,
        nix::mount::MsFlags::MS_BIND,
        None::<&str>,
    )
    .unwrap();
    let _unbind = Unmount(hosts.clone());
    fs::write(&hosts, "10.1.1.1 db\n").unwrap();
    let mut tar = Vec::new();
    diff::diff(&p("upper"), &mut tar, &[]).unwrap();
    insta::assert_snapshot!(diff::listing(&tar[..]).unwrap().join("\n"), @r"
    dir  0755 etc
    file 0644 etc/app.conf
    ");
    assert_eq!(
        fs::read_to_string(p("init/etc/hosts")).unwrap(),
        "10.1.1.1 db\n",
        "the edit went to the init layer"
    );
}

#[test]
fn hostile_and_broken_layers_are_refused_with_the_entry_named() {
    let work = tempfile::tempdir().unwrap();
    let evil = work.path().join("evil.tar");
    let mut h = tar::Header::new_gnu();
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mode(0o644);
    h.set_size(0);
    h.as_old_mut().name[..14].copy_from_slice(b"app/.wh.......");
    h.as_old_mut().name[..10].copy_from_slice(b"app/.wh...");
    h.as_old_mut().name[10..14].fill(0);
    h.set_cksum();
    let mut b = tar::Builder::new(Vec::new());
    b.append(&h, &b""[..]).unwrap();
    fs::write(&evil, b.into_inner().unwrap()).unwrap();
    let dir = work.path().join("dir");
    fs::create_dir(&dir).unwrap();
    let out = ch04(&[
        "apply",
        &evil.display().to_string(),
        &dir.display().to_string(),
    ]);
    insta::assert_snapshot!(show_with(&out, &[(&evil.display().to_string(), "LAYER")]), @r#"
    exit: 125
    --- stderr
    ch04-unionfs-layers: apply LAYER: entry "app/.wh...": a whiteout for ".." names no file
    "#);
    fs::write(
        &evil,
        b"not a tar file at all, just text that is long enough to fill a header block....."
            .repeat(8),
    )
    .unwrap();
    let out = ch04(&[
        "apply",
        &evil.display().to_string(),
        &dir.display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(125), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("read the archive"),
        "{}",
        show(&out)
    );
}

/// A small deterministic random generator (xorshift64*), so failures replay by seed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545F4914F6CDD1D)
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next() % items.len() as u64) as usize]
    }
}

/// Existing paths under `root` (not `root` itself).
fn existing(root: &Path) -> Vec<PathBuf> {
    tree(root).into_keys().collect()
}

/// One random change in the merged view, as a program in a container would make it.
fn random_change(rng: &mut Rng, merged: &Path) {
    let names = ["a", "b", "c"];
    let random_path = |rng: &mut Rng| {
        let depth = 1 + rng.next() % 3;
        (0..depth)
            .map(|_| *rng.pick(&names))
            .collect::<Vec<_>>()
            .join("/")
    };
    let have = existing(merged);
    match rng.next() % 6 {
        0 | 1 => {
            let p = merged.join(random_path(rng));
            if fs::create_dir_all(p.parent().unwrap()).is_ok() && !p.is_dir() {
                let _ = fs::remove_file(&p);
                let _ = fs::write(&p, format!("{}\n", rng.next() % 1000));
            }
        }
        2 if !have.is_empty() => {
            let p = merged.join(rng.pick(&have));
            let md = fs::symlink_metadata(&p).unwrap();
            if md.is_dir() {
                fs::remove_dir_all(&p).unwrap()
            } else {
                fs::remove_file(&p).unwrap()
            }
        }
        3 => {
            let _ = fs::create_dir_all(merged.join(random_path(rng)));
        }
        4 => {
            let p = merged.join(random_path(rng));
            if fs::create_dir_all(p.parent().unwrap()).is_ok() && fs::symlink_metadata(&p).is_err()
            {
                std::os::unix::fs::symlink(random_path(rng), &p).unwrap();
            }
        }
        _ if !have.is_empty() => {
            let p = merged.join(rng.pick(&have));
            if !fs::symlink_metadata(&p).unwrap().file_type().is_symlink() {
                fs::set_permissions(
                    &p,
                    fs::Permissions::from_mode(0o700 | (rng.next() % 0o100) as u32),
                )
                .unwrap();
            }
        }
        _ => {}
    }
}

/// Layers made the way containers make them (random changes in a live overlay, the upper
/// directory diffed), applied both ways, read the same as the live overlay did.
#[test]
fn random_changes_survive_diff_and_apply_both_ways() {
    require_root!();
    let sys = Kernel::new(false);
    let (mut whiteouts, mut opaque, mut files) = (0, 0, 0);
    for seed in 1..=12u64 {
        let work = tempfile::tempdir().unwrap();
        let mut rng = Rng(seed.wrapping_mul(0x9E3779B97F4A7C15));
        let mut uppers: Vec<PathBuf> = Vec::new();
        let mut tars: Vec<Vec<u8>> = Vec::new();
        let mut live = BTreeMap::new();
        for round in 0..4 {
            let upper = work.path().join(format!("upper{round}"));
            let wdir = work.path().join(format!("work{round}"));
            let merged = work.path().join(format!("merged{round}"));
            let base = work.path().join("base");
            for d in [&upper, &wdir, &merged, &base] {
                fs::create_dir_all(d).unwrap();
            }
            let mut lowers: Vec<PathBuf> = uppers.iter().rev().cloned().collect();
            lowers.push(base);
            overlay::mount(
                &sys,
                &Stack {
                    lowers,
                    upper: Some((upper.clone(), wdir)),
                },
                &merged,
            )
            .unwrap();
            let unmount = Unmount(merged.clone());
            for _ in 0..12 {
                random_change(&mut rng, &merged);
            }
            live = tree(&merged);
            drop(unmount);
            let mut tar = Vec::new();
            let stats = diff::diff(&upper, &mut tar, &[]).unwrap();
            (whiteouts, opaque, files) = (
                whiteouts + stats.whiteouts,
                opaque + stats.opaque,
                files + live.len(),
            );
            tars.push(tar);
            uppers.push(upper);
        }
        // Applied into layer directories and stacked...
        let mut lowers = Vec::new();
        for (i, tar) in tars.iter().enumerate() {
            let dir = work.path().join(format!("applied{i}"));
            fs::create_dir(&dir).unwrap();
            apply(&tar[..], &dir, &ApplyOptions::layer()).unwrap();
            lowers.insert(0, dir);
        }
        let stacked = work.path().join("stacked");
        fs::create_dir(&stacked).unwrap();
        if lowers.len() == 1 {
            lowers.push(work.path().join("base"));
        }
        overlay::mount(
            &sys,
            &Stack {
                lowers,
                upper: None,
            },
            &stacked,
        )
        .unwrap();
        let unmount = Unmount(stacked.clone());
        assert_eq!(
            tree(&stacked),
            live,
            "seed {seed}: the stack of applied layers"
        );
        drop(unmount);
        // ...and flattened onto one directory.
        let flat = work.path().join("flat");
        fs::create_dir(&flat).unwrap();
        for tar in &tars {
            apply(&tar[..], &flat, &ApplyOptions::flatten()).unwrap();
        }
        assert_eq!(tree(&flat), live, "seed {seed}: the flattened layers");
        assert_no_mounts_under(work.path());
    }
    // The changes did delete things, in both of overlayfs's ways.
    assert!(
        whiteouts > 10 && opaque > 2 && files > 100,
        "{whiteouts} whiteouts, {opaque} opaque, {files} files"
    );
}

/// Without root, the demo runs in a user namespace of its own (overlayfs allows it there
/// since Linux 5.11). Its root may not write `trusted.*` xattrs, so overlayfs marks an
/// opaque directory with `user.overlay.opaque`; `diff` still writes the OCI marker.
#[test]
fn an_ordinary_user_watches_the_demo_in_a_user_namespace() {
    require_root!(); // to become `nobody`
    testkit::require!(
        testkit::rootless::unprivileged_userns(),
        "unprivileged user namespaces"
    );
    let bin = Path::new(env!("CARGO_BIN_EXE_ch04-unionfs-layers"));
    let rootless = testkit::rootless::Rootless::new(bin).unwrap();
    let o = rootless.command().arg("demo").output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", show(&o));
    assert!(
        text.contains("dir       app/data  (opaque: user.overlay.opaque=y"),
        "{}",
        show(&o)
    );
    assert!(text.contains("app/data/.wh..wh..opq"), "{}", show(&o));
    assert!(text.contains("whiteout  app/config.txt"), "{}", show(&o));
}
