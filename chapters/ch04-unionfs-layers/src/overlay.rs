//! Mounting a stack of layers with overlayfs.
//!
//! ```text
//!   merged/   what the container sees: the union, top layer wins
//!   ───────────────────────────────────────────────────────────
//!   upper/    read-write: new files, copied-up files, whiteouts
//!   lower 1   read-only image layers, top first ...
//!   lower N   ... down to the base layer
//!   work/     overlayfs's scratch space (same filesystem as upper)
//! ```
//!
//! Two ways to say which directories (Documentation/filesystems/overlayfs.rst):
//!
//! * mount(2) with one option string, `lowerdir=L1:L2:...,upperdir=U,workdir=W`. The whole
//!   string must fit in one page (4096 bytes), which a deep image with long paths exceeds:
//!   Docker's overlay2 driver works around it with short symlinks (`l/ABCD...`) and paths
//!   relative to its working directory.
//! * the new mount API: fsopen(2), then one fsconfig(2) per option, with `lowerdir+` adding
//!   one lower layer at a time (Linux 6.8), then fsmount(2) and move_mount(2). No string
//!   limit; overlayfs's own limit of 500 lower layers remains.
//!
//! This chapter uses the new API, and falls back to mount(2) on kernels without it.
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};

use crate::sys::{LayerSys, SysError};

/// The largest option string mount(2) copies in: one page, minus its terminating NUL.
pub const MOUNT_DATA_MAX: usize = 4095;

/// A stack of layers to mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stack {
    /// Read-only layers, the top one first (overlayfs's order).
    pub lowers: Vec<PathBuf>,
    /// The writable layer and overlayfs's work directory (same filesystem), if any.
    pub upper: Option<(PathBuf, PathBuf)>,
}

/// Escapes the characters overlayfs treats specially in an option string.
fn escape(p: &Path) -> String {
    let s = p.to_string_lossy();
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, ':' | ',' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl Stack {
    /// The same stack with each lower layer only once, where it is highest. An image may
    /// hold the same layer twice (two steps that changed nothing make the same empty
    /// layer), and overlayfs refuses a directory that is two layers at once (ELOOP,
    /// "overlapping layers"). The copy below the top one changes nothing: the same files
    /// are already above it.
    pub fn without_repeats(&self) -> Stack {
        let mut seen = std::collections::HashSet::new();
        Stack {
            lowers: self
                .lowers
                .iter()
                .filter(|l| seen.insert(l.as_path()))
                .cloned()
                .collect(),
            upper: self.upper.clone(),
        }
    }

    /// The option string for mount(2).
    pub fn options(&self) -> String {
        // exercise(ch04.options): "lowerdir=TOP:…:BOTTOM" (escaped), then ",upperdir=…,workdir=…" if any, then ",redirect_dir=off"
        let lowers: Vec<String> = self.lowers.iter().map(|p| escape(p)).collect();
        let mut s = format!("lowerdir={}", lowers.join(":"));
        if let Some((upper, work)) = &self.upper {
            s.push_str(&format!(
                ",upperdir={},workdir={}",
                escape(upper),
                escape(work)
            ));
        }
        // Renaming a lower directory would otherwise record a "redirect" xattr in upper,
        // which an OCI layer cannot express; off, rename(2) fails with EXDEV and tools copy.
        s.push_str(",redirect_dir=off");
        s
        // end exercise
    }
}

/// Mounts `stack` at `target`: the new mount API, else mount(2).
pub fn mount(sys: &dyn LayerSys, stack: &Stack, target: &Path) -> Result<(), SysError> {
    let deduped = stack.without_repeats();
    let stack = &deduped;
    if stack.lowers.is_empty() {
        return Err(SysError::new(
            "overlay: at least one lower layer is needed",
            Errno::EINVAL,
        ));
    }
    match mount_with_fsconfig(sys, stack, target) {
        // No new mount API (before 5.2), or no `lowerdir+` in it (before 6.8). Before 6.5
        // overlayfs took its options through the kernel's legacy parser, which accepts any
        // key at fsconfig(2) and refuses the unknown `lowerdir+` only at
        // FSCONFIG_CMD_CREATE, with EINVAL: that too falls back, and an option that is
        // really wrong is then reported by mount(2), with the whole option string.
        Err(e)
            if matches!(e.errno, Errno::ENOSYS)
                || (e.errno == Errno::EINVAL
                    && (e.call.contains("lowerdir+")
                        || e.call.contains("FSCONFIG_CMD_CREATE"))) =>
        {
            mount_with_options(sys, stack, target)
        }
        other => other,
    }
}

/// The new mount API: one option per fsconfig(2) call.
pub fn mount_with_fsconfig(
    sys: &dyn LayerSys,
    stack: &Stack,
    target: &Path,
) -> Result<(), SysError> {
    // exercise(ch04.fsconfig): fsopen overlay, one fsconfig per option (a "lowerdir+" per layer, top first), create, fsmount, move_mount to target
    let fs = sys.fsopen("overlay")?;
    sys.fsconfig_set(fs.as_fd(), "source", "overlay")?;
    for lower in &stack.lowers {
        sys.fsconfig_set(fs.as_fd(), "lowerdir+", &lower.to_string_lossy())?;
    }
    if let Some((upper, work)) = &stack.upper {
        sys.fsconfig_set(fs.as_fd(), "upperdir", &upper.to_string_lossy())?;
        sys.fsconfig_set(fs.as_fd(), "workdir", &work.to_string_lossy())?;
    }
    if ch01_namespaces::idmap::in_initial_user_namespace() {
        sys.fsconfig_set(fs.as_fd(), "redirect_dir", "off")?;
    } else {
        // Root of a user namespace may not use `trusted.*` xattrs: overlayfs keeps its
        // opaque marks in `user.overlay.*` instead, and then creates no redirects at all
        // (so refuses a redirect_dir option; Linux 5.11+, overlayfs.rst).
        sys.fsconfig_set_flag(fs.as_fd(), "userxattr")?;
    }
    sys.fsconfig_create(fs.as_fd())?;
    let mnt = sys.fsmount(fs.as_fd())?;
    sys.move_mount(mnt.as_fd(), target)
    // end exercise
}

/// An overlay whose layers are given as descriptors (`FSCONFIG_SET_FD`, Linux 6.13+),
/// returned as a detached mount for whoever attaches it (move_mount(2)). The layers need
/// no path: they can be detached mounts themselves, idmapped ones for a container in a
/// user namespace. `lowers` top first, as [`Stack::lowers`].
///
/// overlayfs keeps the credentials of whoever makes its superblock (`FSCONFIG_CMD_CREATE`)
/// as its "creator", which makes its work directory and copies files up. On idmapped
/// layers those must be ids the mapping covers (host root is not, EOVERFLOW), so with
/// `creator` the superblock is made with those file-system ids.
pub fn detached_from_fds(
    sys: &dyn LayerSys,
    lowers: &[BorrowedFd<'_>],
    upper: Option<(BorrowedFd<'_>, BorrowedFd<'_>)>,
    creator: Option<(u32, u32)>,
) -> Result<OwnedFd, SysError> {
    let fs = sys.fsopen("overlay")?;
    sys.fsconfig_set(fs.as_fd(), "source", "overlay")?;
    for lower in lowers {
        sys.fsconfig_set_fd(fs.as_fd(), "lowerdir+", *lower)?;
    }
    if let Some((upper, work)) = upper {
        sys.fsconfig_set_fd(fs.as_fd(), "upperdir", upper)?;
        sys.fsconfig_set_fd(fs.as_fd(), "workdir", work)?;
    }
    sys.fsconfig_set(fs.as_fd(), "redirect_dir", "off")?;
    match creator {
        Some((uid, gid)) => {
            ch01_namespaces::idmap::as_fs_ids(sys, uid, gid, || sys.fsconfig_create(fs.as_fd()))?
        }
        None => sys.fsconfig_create(fs.as_fd())?,
    }
    sys.fsmount(fs.as_fd())
}

/// mount(2) with the option string, refused up front when the string is over a page.
pub fn mount_with_options(
    sys: &dyn LayerSys,
    stack: &Stack,
    target: &Path,
) -> Result<(), SysError> {
    let mut data = stack.options();
    if !ch01_namespaces::idmap::in_initial_user_namespace() {
        data = data.replace(",redirect_dir=off", ",userxattr"); // see mount_with_fsconfig
    }
    if data.len() > MOUNT_DATA_MAX {
        return Err(SysError::new(
            format!(
                "mount(\"overlay\", {target:?}): the options of {} layers take {} bytes, over mount(2)'s one page \
                 ({MOUNT_DATA_MAX}); this kernel lacks the new mount API's lowerdir+ (Linux 6.8)",
                stack.lowers.len(),
                data.len()
            ),
            Errno::E2BIG,
        ));
    }
    sys.mount(
        Some("overlay"),
        target,
        Some("overlay"),
        MsFlags::empty(),
        Some(&data),
    )
}

/// Unmounts an overlay (or anything) at `target`.
pub fn umount(sys: &dyn LayerSys, target: &Path) -> Result<(), SysError> {
    sys.umount2(target, MntFlags::empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::Recorder;

    #[test]
    fn the_option_string_lists_lowers_top_first_and_escapes_separators() {
        let stack = Stack {
            lowers: vec!["/l/top".into(), "/l/with:colon".into()],
            upper: Some(("/c/upper".into(), "/c/work".into())),
        };
        assert_eq!(
            stack.options(),
            r"lowerdir=/l/top:/l/with\:colon,upperdir=/c/upper,workdir=/c/work,redirect_dir=off"
        );
    }

    #[test]
    fn the_new_api_adds_one_lower_layer_per_fsconfig_call() {
        let rec = Recorder::new();
        let stack = Stack {
            lowers: vec!["/l/2".into(), "/l/1".into()],
            upper: Some(("/u".into(), "/w".into())),
        };
        mount(&rec, &stack, Path::new("/merged")).unwrap();
        insta::assert_snapshot!(rec.calls().join("\n"), @r#"
        fsopen("overlay", FSOPEN_CLOEXEC)
        fsconfig(FSCONFIG_SET_STRING, "source", "overlay")
        fsconfig(FSCONFIG_SET_STRING, "lowerdir+", "/l/2")
        fsconfig(FSCONFIG_SET_STRING, "lowerdir+", "/l/1")
        fsconfig(FSCONFIG_SET_STRING, "upperdir", "/u")
        fsconfig(FSCONFIG_SET_STRING, "workdir", "/w")
        fsconfig(FSCONFIG_SET_STRING, "redirect_dir", "off")
        fsconfig(FSCONFIG_CMD_CREATE)
        fsmount(FSMOUNT_CLOEXEC)
        move_mount("/merged", MOVE_MOUNT_F_EMPTY_PATH)
        "#);
    }

    #[test]
    fn without_lowerdir_plus_a_long_stack_is_refused_with_the_reason() {
        let rec =
            Recorder::new().failing("fsconfig(FSCONFIG_SET_STRING, \"lowerdir+\"", Errno::EINVAL);
        let lowers = (0..128)
            .map(|i| PathBuf::from(format!("/var/lib/mini-docker/layers/{i:064}")))
            .collect();
        let err = mount(
            &rec,
            &Stack {
                lowers,
                upper: None,
            },
            Path::new("/m"),
        )
        .unwrap_err();
        assert_eq!(err.errno, Errno::E2BIG);
        assert!(
            err.call.contains("over mount(2)'s one page (4095)"),
            "{err}"
        );
    }

    #[test]
    fn a_kernel_that_refuses_lowerdir_plus_only_at_create_gets_mount_2() {
        // Linux 6.1 to 6.4: fsconfig(2) takes any key, FSCONFIG_CMD_CREATE says EINVAL.
        let rec = Recorder::new().failing("fsconfig(FSCONFIG_CMD_CREATE)", Errno::EINVAL);
        let stack = Stack {
            lowers: vec![PathBuf::from("/l/2"), PathBuf::from("/l/1")],
            upper: Some((PathBuf::from("/u"), PathBuf::from("/w"))),
        };
        mount(&rec, &stack, Path::new("/merged")).unwrap();
        let calls = rec.calls();
        assert!(
            calls.last().unwrap().starts_with(
                "mount(\"overlay\", \"/merged\", \"overlay\", 0, \"lowerdir=/l/2:/l/1,upperdir=/u,workdir=/w,redirect_dir=off\")"
            ),
            "{calls:#?}"
        );
    }
}
