//! `ch04-unionfs-layers demo`: copy-up, whiteouts and opaque directories, watched happen.
//!
//! A scratch stack (one lower layer, an empty upper) is mounted in a mount namespace of the
//! demo's own, so nothing stays mounted whatever happens. Each step changes the merged view
//! the way a program in a container would, and prints what the step left in the upper
//! layer.
use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use ch01_namespaces::process::{self, ChildError, ChildOptions};
use nix::sched::CloneFlags;

use crate::Error;
use crate::apply::{OPAQUE_XATTR, USER_OPAQUE_XATTR};
use crate::overlay::{self, Stack};
use crate::sys::{LayerSys, SysError};

/// One line per thing in an upper (or any layer) directory, sorted, saying what overlayfs
/// made of it.
pub fn describe(layer: &Path) -> Vec<String> {
    let mut out = Vec::new();
    walk(layer, Path::new(""), &mut out);
    out
}

fn walk(dir: &Path, rel: &Path, out: &mut Vec<String>) {
    let mut names: Vec<_> = fs::read_dir(dir)
        .map(|it| it.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    names.sort();
    for name in names {
        let path = dir.join(&name);
        let rel = rel.join(&name);
        let Ok(md) = fs::symlink_metadata(&path) else {
            continue;
        };
        let ft = md.file_type();
        if ft.is_char_device() && md.rdev() == 0 {
            out.push(format!(
                "whiteout  {}  (character device 0/0: hides the lower file)",
                rel.display()
            ));
        } else if ft.is_dir() {
            // `user.overlay.opaque` where overlayfs was mounted in a user namespace.
            let opaque = [OPAQUE_XATTR, USER_OPAQUE_XATTR]
                .into_iter()
                .find(|x| xattr::get(&path, x).ok().flatten().as_deref() == Some(b"y"));
            let note = match opaque {
                Some(x) => format!("  (opaque: {x}=y, nothing below shows through)"),
                None => String::new(),
            };
            out.push(format!("dir       {}{note}", rel.display()));
            walk(&path, &rel, out);
        } else if ft.is_symlink() {
            let target = fs::read_link(&path).unwrap_or_default();
            out.push(format!(
                "symlink   {} -> {}",
                rel.display(),
                target.display()
            ));
        } else {
            out.push(format!("file      {}  ({} bytes)", rel.display(), md.len()));
        }
    }
}

/// The scratch stack's lower layer.
const LOWER: &[(&str, &str)] = &[
    ("etc/motd", "Welcome to the lower layer.\n"),
    ("app/config.txt", "colour=blue\n"),
    ("app/data/a.txt", "a\n"),
    ("app/data/b.txt", "b\n"),
];

fn out(text: String) {
    print!("{text}");
    let _ = std::io::stdout().flush();
}

fn show_upper(upper: &Path) {
    let mut s = String::from("   upper now holds:\n");
    for line in describe(upper) {
        s.push_str(&format!("     {line}\n"));
    }
    out(s);
}

/// Runs the demo in `scratch` (a fresh directory), in a child with a mount namespace of its
/// own. Returns the exit code.
pub fn demo(sys: &dyn LayerSys, scratch: &Path) -> Result<i32, Error> {
    let dirs = ["lower", "upper", "work", "merged"].map(|d| scratch.join(d));
    for d in &dirs {
        fs::create_dir_all(d).map_err(|e| Error::Io(format!("mkdir {}", d.display()), e))?;
    }
    for (file, text) in LOWER {
        let path = dirs[0].join(file);
        fs::create_dir_all(path.parent().unwrap_or(&dirs[0]))
            .map_err(|e| Error::Io(format!("mkdir {}", path.display()), e))?;
        fs::write(&path, text).map_err(|e| Error::Io(format!("write {}", path.display()), e))?;
    }
    let [lower, upper, work, merged] = dirs;
    // Without root, in a user namespace of its own too: its root may mount an overlay
    // (Linux 5.11+), though only over files the user owns.
    let rootless = !nix::unistd::Uid::effective().is_root();
    let mut flags = CloneFlags::CLONE_NEWNS;
    if rootless {
        flags |= CloneFlags::CLONE_NEWUSER;
    }
    let created = process::create(sys, flags, ChildOptions::default(), &mut || {
        if rootless {
            ch01_namespaces::become_root_inside(sys)?;
        }
        // The child reports its failure as text: the whole chain of causes.
        steps(sys, &lower, &upper, &work, &merged)
            .map_err(|e| ChildError::setup(format!("{:#}", anyhow::Error::from(e))))?;
        std::process::exit(0)
    })?;
    if rootless {
        let (uids, gids) = ch01_namespaces::idmap::root_mapping(
            nix::unistd::Uid::effective(),
            nix::unistd::Gid::effective(),
        );
        ch01_namespaces::idmap::write_maps(sys, created.pid(), uids, gids)?;
    }
    let running = created.start(sys)?;
    Ok(running.wait(sys)?.code())
}

/// A failed file operation on the merged view: the call and the path, with the kernel's
/// errno when std's error holds one, and std's error itself when it does not.
fn io(what: &str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let call = format!("{what}({path:?})");
    move |e| match e.raw_os_error() {
        Some(errno) => Error::Sys(SysError::new(call, nix::errno::Errno::from_raw(errno))),
        None => Error::Io(call, e),
    }
}

fn steps(
    sys: &dyn LayerSys,
    lower: &Path,
    upper: &Path,
    work: &Path,
    merged: &Path,
) -> Result<(), Error> {
    ch01_namespaces::make_mounts_private(sys)?;
    let stack = Stack {
        lowers: vec![lower.to_path_buf()],
        upper: Some((upper.to_path_buf(), work.to_path_buf())),
    };
    overlay::mount(sys, &stack, merged)?;
    out(format!(
        "A stack: lower/ holds {} files, upper/ is empty, both mounted on merged/.\n\n",
        LOWER.len()
    ));
    let m = |p: &str| -> PathBuf { merged.join(p) };

    out("1. A new file: echo hello > merged/notes.txt\n".into());
    fs::write(m("notes.txt"), "hello\n").map_err(io("write", &m("notes.txt")))?;
    show_upper(upper);

    out("2. A change to a lower file: a line appended to merged/etc/motd\n".into());
    let mut f = fs::OpenOptions::new()
        .append(true)
        .open(m("etc/motd"))
        .map_err(io("open", &m("etc/motd")))?;
    f.write_all(b"A line added in the container.\n")
        .map_err(io("write", &m("etc/motd")))?;
    drop(f);
    show_upper(upper);
    let lower_motd = fs::read_to_string(lower.join("etc/motd")).unwrap_or_default();
    out(format!(
        "   copy-up: the whole file moved up before the change; lower/etc/motd still reads {:?}\n",
        lower_motd.trim_end()
    ));

    out("3. A deleted lower file: rm merged/app/config.txt\n".into());
    fs::remove_file(m("app/config.txt")).map_err(io("unlink", &m("app/config.txt")))?;
    show_upper(upper);

    out("4. A lower directory deleted and made again: rm -r merged/app/data; mkdir merged/app/data;\n   echo c > merged/app/data/c.txt\n".into());
    fs::remove_dir_all(m("app/data")).map_err(io("rmdir", &m("app/data")))?;
    fs::create_dir(m("app/data")).map_err(io("mkdir", &m("app/data")))?;
    fs::write(m("app/data/c.txt"), "c\n").map_err(io("write", &m("app/data/c.txt")))?;
    show_upper(upper);
    let mut seen: Vec<String> = fs::read_dir(m("app/data"))
        .map_err(io("readdir", &m("app/data")))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    seen.sort();
    out(format!(
        "   merged/app/data holds: {}   (lower/app/data still holds a.txt b.txt)\n\n",
        seen.join(" ")
    ));

    out("The upper directory as an OCI layer (what `diff` writes):\n".into());
    let mut tar = Vec::new();
    crate::diff::diff(upper, &mut tar, &[])?;
    let listing = crate::diff::listing(&tar[..])
        .map_err(|e| Error::Io(format!("list the layer made of {}", upper.display()), e))?;
    for line in listing {
        out(format!("   {line}\n"));
    }
    Ok(overlay::umount(sys, merged)?)
}
