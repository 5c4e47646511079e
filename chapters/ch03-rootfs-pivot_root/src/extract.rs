//! Safe extraction: unpacking a tar archive without ever writing outside the target.
//!
//! Tar extraction is where container tools have had their worst bugs: an entry named
//! `../../etc/cron.d/x`, an absolute path, a symlink `a -> /etc` followed by a file `a/passwd`,
//! a hard link to `/etc/shadow`. The rules here (the ch04 note explains them at length):
//!
//! 1. **Names are made relative**: a leading `/` is dropped; a name with a `..` component is
//!    rejected, with an error naming the entry.
//! 2. **Every path is resolved inside the target, as if it were `/`**: each lookup is one
//!    openat2(2) from the target's directory descriptor with `RESOLVE_IN_ROOT`, so a symlink
//!    met on the way (absolute, `../../..`, or a chain of them) is followed *within* the
//!    target, the way it will be inside the container. Nothing is ever resolved by path
//!    string from the host's `/`.
//! 3. **The last component is never followed**: files are created with `O_EXCL|O_NOFOLLOW`,
//!    after anything in the way is removed (a symlink is replaced, not written through);
//!    hard links are made with linkat(2) from the target's parent descriptor, so a link to a
//!    symlink links the symlink.
//! 4. **Device nodes only when asked** ([`ExtractOptions::devices`]); FIFOs always.
//! 5. **Ownership before mode**: chown(2) clears setuid and setgid, so the mode is set after
//!    it; setuid/setgid bits are kept exactly as in the archive when its owner could be
//!    applied, and dropped when not (an unprivileged extraction).
//! 6. **Overlay's private xattrs are ignored** (`trusted.overlay.*`, and `user.overlay.*` of an
//!    overlay mounted in a user namespace): in an archive they
//!    would forge whiteouts. Layers say "deleted" with `.wh.` entries (chapter 4).
//!
//! Directories get their final mode, owner and times at the end, deepest first, so that a
//! read-only directory does not stop its own contents from being written.
use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{FchmodatFlags, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, UnlinkatFlags};

use crate::sys::SysError;

/// What can go wrong while extracting.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// The archive itself could not be read (truncated, corrupt, or the stream failed).
    #[error("read the archive: {0}")]
    Archive(#[source] io::Error),
    /// An entry was refused by the rules above.
    #[error("entry {entry:?}: {reason}")]
    Unsafe {
        /// The entry's name as written in the archive.
        entry: String,
        /// Which rule refused it.
        reason: String,
    },
    /// A file-system call failed while writing an entry.
    #[error("entry {entry:?}: {source}")]
    Write {
        /// The entry's name.
        entry: String,
        /// The failing call.
        #[source]
        source: SysError,
    },
    /// Opening the target failed.
    #[error("{0}")]
    Target(#[source] SysError),
}

/// How to extract.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExtractOptions {
    /// Create character and block device nodes (otherwise they are skipped and counted).
    pub devices: bool,
}

/// What an extraction did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtractStats {
    /// Entries written (files, directories, links, nodes).
    pub entries: u64,
    /// Bytes of file content written.
    pub bytes: u64,
    /// Device nodes skipped because devices were not asked for.
    pub skipped_devices: u64,
    /// Entries of kinds that have no meaning here (global headers, unknown types).
    pub skipped_other: u64,
}

/// Makes an entry name relative and refuses `..` (rule 1). `Ok(None)` is the root itself.
pub fn sanitize(name: &Path) -> Result<Option<PathBuf>, String> {
    // exercise(ch03.sanitize): drop "/" and "." components, refuse "..", and say Ok(None) for the root itself
    let mut out = PathBuf::new();
    for c in name.components() {
        match c {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                return Err("a `..` component would leave the target".into());
            }
            Component::Normal(part) => out.push(part),
        }
    }
    Ok((!out.as_os_str().is_empty()).then_some(out))
    // end exercise
}

fn sys_err(call: String, errno: Errno) -> SysError {
    SysError::new(call, errno)
}

/// A directory that paths are resolved inside of, as if it were `/` (rule 2).
#[derive(Debug)]
pub struct SafeRoot {
    fd: OwnedFd,
    path: PathBuf,
}

impl SafeRoot {
    /// Opens `dir` as the root for resolution.
    pub fn open(dir: &Path) -> Result<SafeRoot, SysError> {
        let fd = nix::fcntl::open(
            dir,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| sys_err(format!("open({dir:?}, O_PATH|O_DIRECTORY)"), e))?;
        Ok(SafeRoot {
            fd,
            path: dir.to_path_buf(),
        })
    }

    /// The directory, as given.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// openat2(root, rel, flags, RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS).
    pub fn resolve(&self, rel: &Path, flags: OFlag) -> Result<OwnedFd, SysError> {
        let how = OpenHow::new()
            .flags(flags | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        let rel = if rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            rel
        };
        nix::fcntl::openat2(self.fd.as_fd(), rel, how)
            .map_err(|e| sys_err(format!("openat2({rel:?}, RESOLVE_IN_ROOT)"), e))
    }

    /// A directory inside the root (an `O_PATH` descriptor), created with its missing
    /// parents (mode 0755) when `create` is set: `mkdir -p`, but resolved in the root.
    pub fn dir(&self, rel: &Path, create: bool) -> Result<OwnedFd, SysError> {
        match self.resolve(rel, OFlag::O_PATH | OFlag::O_DIRECTORY) {
            Err(e) if e.errno == Errno::ENOENT && create => self.mkdir_all(rel),
            other => other,
        }
    }

    /// `mkdir -p` one component at a time, on descriptors, following symlinks the way
    /// RESOLVE_IN_ROOT would (an absolute target restarts at the root, `..` stops at it),
    /// and creating what is missing, including the missing target of a symlink (an image's
    /// `/data -> /srv/data` makes `/srv/data` inside the root, never on the host).
    fn mkdir_all(&self, rel: &Path) -> Result<OwnedFd, SysError> {
        use std::collections::VecDeque;
        let open_dir = |fd: &OwnedFd, name: &OsStr| {
            nix::fcntl::openat(
                fd.as_fd(),
                name,
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
        };
        let err = |call: &str, e: Errno| sys_err(format!("{call}({rel:?}) in {:?}", self.path), e);
        // The walk's own descriptor of the root (the stack pops and drops what it holds).
        let mut stack = vec![open_dir(&self.fd, OsStr::new(".")).map_err(|e| err("openat", e))?];
        let mut todo: VecDeque<OsString> = rel.iter().map(OsString::from).collect();
        let mut links = 0;
        while let Some(name) = todo.pop_front() {
            if name == "." || name == "/" || name.is_empty() {
                continue;
            }
            if name == ".." {
                if stack.len() > 1 {
                    stack.pop();
                }
                continue;
            }
            let cur = stack.last().expect("the root stays on the stack");
            match nix::sys::stat::fstatat(
                cur.as_fd(),
                name.as_os_str(),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            ) {
                Ok(st) => match SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT {
                    SFlag::S_IFDIR => {
                        let fd = open_dir(cur, &name).map_err(|e| err("openat", e))?;
                        stack.push(fd);
                    }
                    SFlag::S_IFLNK => {
                        links += 1;
                        if links > 40 {
                            return Err(err("mkdir_all", Errno::ELOOP));
                        }
                        let target = nix::fcntl::readlinkat(cur.as_fd(), name.as_os_str())
                            .map_err(|e| err("readlinkat", e))?;
                        let target = PathBuf::from(target);
                        if target.is_absolute() {
                            stack.truncate(1);
                        }
                        for part in target.iter().rev() {
                            todo.push_front(part.to_os_string());
                        }
                    }
                    _ => return Err(err("mkdir_all", Errno::ENOTDIR)),
                },
                Err(Errno::ENOENT) => {
                    match nix::sys::stat::mkdirat(
                        cur.as_fd(),
                        name.as_os_str(),
                        Mode::from_bits_truncate(0o755),
                    ) {
                        Ok(()) | Err(Errno::EEXIST) => todo.push_front(name),
                        Err(e) => return Err(err("mkdirat", e)),
                    }
                }
                Err(e) => return Err(err("fstatat", e)),
            }
        }
        Ok(stack.pop().expect("the root stays on the stack"))
    }

    /// The parent directory of `rel` (created if missing) and `rel`'s last component.
    pub fn parent_of<'a>(&self, rel: &'a Path) -> Result<(OwnedFd, &'a OsStr), SysError> {
        let (parent, name) = split(rel);
        Ok((self.dir(parent, true)?, name))
    }

    /// Removes `rel` and, for a directory, everything below it (`rm -rf`), working on
    /// descriptors only, so no symlink is followed. Returns whether anything was there.
    pub fn remove_all(&self, rel: &Path) -> Result<bool, SysError> {
        let (parent, name) = split(rel);
        let pfd = match self.resolve(parent, OFlag::O_PATH | OFlag::O_DIRECTORY) {
            Ok(fd) => fd,
            Err(e) if matches!(e.errno, Errno::ENOENT | Errno::ENOTDIR) => return Ok(false),
            Err(e) => return Err(e),
        };
        remove_at(&pfd, name, rel)
    }

    /// Makes sure a mount point exists at `rel`: a directory, or an empty file when
    /// `file` is set (to bind-mount a file). Returns an `O_PATH` descriptor for it, to
    /// mount onto through `/proc/self/fd/N` without resolving the path again.
    pub fn mount_point(&self, rel: &Path, file: bool) -> Result<OwnedFd, SysError> {
        if !file {
            return self.dir(rel, true);
        }
        let (pfd, name) = self.parent_of(rel)?;
        match nix::fcntl::openat(
            pfd.as_fd(),
            name,
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o644),
        ) {
            Ok(_) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(sys_err(format!("openat({rel:?}, O_CREAT|O_EXCL)"), e)),
        }
        self.resolve(rel, OFlag::O_PATH | OFlag::O_NOFOLLOW)
    }
}

fn split(rel: &Path) -> (&Path, &OsStr) {
    let name = rel.file_name().unwrap_or(OsStr::new("."));
    (rel.parent().unwrap_or(Path::new("")), name)
}

fn remove_at(pfd: &OwnedFd, name: &OsStr, shown: &Path) -> Result<bool, SysError> {
    let st = match nix::sys::stat::fstatat(pfd.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::ENOENT) => return Ok(false),
        Err(e) => return Err(sys_err(format!("fstatat({shown:?})"), e)),
    };
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR {
        let dfd = nix::fcntl::openat(
            pfd.as_fd(),
            name,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| sys_err(format!("openat({shown:?}, O_DIRECTORY|O_NOFOLLOW)"), e))?;
        let mut children = Vec::new();
        {
            // fdopendir(3) takes its descriptor over; it gets a second one of the same
            // directory ("." from the first, never the name again) and `dfd` stays ours.
            let again = nix::fcntl::openat(
                dfd.as_fd(),
                ".",
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| sys_err(format!("openat({shown:?}/., O_DIRECTORY)"), e))?;
            let mut dir = nix::dir::Dir::from_fd(again)
                .map_err(|e| sys_err(format!("fdopendir({shown:?})"), e))?;
            for entry in dir.iter() {
                let entry = entry.map_err(|e| sys_err(format!("readdir({shown:?})"), e))?;
                let n = entry.file_name().to_bytes();
                if n != b"." && n != b".." {
                    children.push(OsString::from(OsStr::from_bytes(n)));
                }
            }
        }
        for child in children {
            remove_at(&dfd, &child, &shown.join(&child))?;
        }
        nix::unistd::unlinkat(pfd.as_fd(), name, UnlinkatFlags::RemoveDir)
            .map_err(|e| sys_err(format!("unlinkat({shown:?}, AT_REMOVEDIR)"), e))?;
    } else {
        nix::unistd::unlinkat(pfd.as_fd(), name, UnlinkatFlags::NoRemoveDir)
            .map_err(|e| sys_err(format!("unlinkat({shown:?})"), e))?;
    }
    Ok(true)
}

/// An entry's metadata, read once from its header and pax records.
#[derive(Debug)]
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: i64,
    xattrs: Vec<(String, Vec<u8>)>,
}

impl Meta {
    fn read<R: Read>(entry: &mut tar::Entry<'_, R>) -> io::Result<Meta> {
        let header = entry.header();
        Ok(Meta {
            mode: header.mode()? & 0o7777,
            uid: header.uid()? as u32,
            gid: header.gid()? as u32,
            mtime: header.mtime()? as i64,
            xattrs: pax_xattrs(entry)?,
        })
    }
}

/// A directory's metadata, applied when the extraction finishes.
#[derive(Debug)]
struct DirMeta {
    rel: PathBuf,
    meta: Meta,
}

/// Why one entry could not be written, before the entry's name is attached to it.
#[derive(Debug)]
enum EntryError {
    Unsafe(String),
    Archive(io::Error),
    Sys(SysError),
}

impl From<SysError> for EntryError {
    fn from(e: SysError) -> Self {
        EntryError::Sys(e)
    }
}

impl EntryError {
    fn named(self, entry: &str) -> ExtractError {
        let entry = entry.to_string();
        match self {
            EntryError::Unsafe(reason) => ExtractError::Unsafe { entry, reason },
            EntryError::Archive(e) => ExtractError::Archive(e),
            EntryError::Sys(source) => ExtractError::Write { entry, source },
        }
    }
}

/// Writes tar entries into a [`SafeRoot`], one at a time, so a caller (chapter 4's layer
/// application) can handle some entries itself (whiteouts) and pass the rest here.
#[derive(Debug)]
pub struct Extractor {
    root: SafeRoot,
    options: ExtractOptions,
    same_owner: bool,
    dirs: Vec<DirMeta>,
    created: HashSet<PathBuf>,
    adopted: HashSet<PathBuf>,
    stats: ExtractStats,
}

impl Extractor {
    /// Extracts into `target`, an existing directory.
    pub fn new(target: &Path, options: ExtractOptions) -> Result<Extractor, ExtractError> {
        Ok(Extractor {
            root: SafeRoot::open(target).map_err(ExtractError::Target)?,
            options,
            // Only root can give files away; an unprivileged extraction keeps its own ids.
            same_owner: Uid::effective().is_root(),
            dirs: Vec::new(),
            created: HashSet::new(),
            adopted: HashSet::new(),
            stats: ExtractStats::default(),
        })
    }

    /// The root entries are resolved in.
    pub fn root(&self) -> &SafeRoot {
        &self.root
    }

    /// Whether this archive itself wrote `rel` (whiteouts only hide what *earlier* layers
    /// wrote: OCI image spec, "Whiteouts").
    pub fn created_here(&self, rel: &Path) -> bool {
        self.created.contains(rel)
    }

    /// Whether `rel` is a directory this archive wrote over one that was already there
    /// (its other contents came from earlier layers).
    pub fn adopted_here(&self, rel: &Path) -> bool {
        self.adopted.contains(rel)
    }

    /// Writes one entry: its name made safe (rule 1), its metadata read, then one step per
    /// kind of entry. Errors name the entry as the archive wrote it.
    pub fn write<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), ExtractError> {
        let raw = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        self.write_entry(entry, &raw).map_err(|e| e.named(&shown))
    }

    fn write_entry<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        raw: &[u8],
    ) -> Result<(), EntryError> {
        let rel = sanitize(Path::new(OsStr::from_bytes(raw))).map_err(EntryError::Unsafe)?;
        let meta = Meta::read(entry).map_err(EntryError::Archive)?;
        let kind = entry.header().entry_type();
        let Some(rel) = rel else {
            // "./": the root directory's own metadata, applied at the end like any
            // directory's.
            if kind.is_dir() {
                self.dirs.push(DirMeta {
                    rel: PathBuf::new(),
                    meta,
                });
            }
            return Ok(());
        };
        use tar::EntryType as T;
        match kind {
            T::Directory => self.write_dir(&rel, meta)?,
            T::Regular | T::Continuous | T::GNUSparse => self.write_file(entry, &rel, &meta)?,
            T::Symlink => self.write_symlink(entry, &rel, &meta)?,
            T::Link => {
                if !self.write_hard_link(entry, &rel)? {
                    return Ok(());
                }
            }
            T::Char | T::Block if !self.options.devices => {
                self.stats.skipped_devices += 1;
                return Ok(());
            }
            T::Char | T::Block | T::Fifo => self.write_node(entry.header(), &rel, &meta)?,
            _ => {
                // pax global headers, GNU volume labels and the like carry no file.
                self.stats.skipped_other += 1;
                return Ok(());
            }
        }
        self.created.insert(rel);
        self.stats.entries += 1;
        Ok(())
    }

    /// A directory: made now with mode 0700 so its contents can be written whatever the
    /// archive says; its own mode, owner and times wait for [`Extractor::finish`].
    fn write_dir(&mut self, rel: &Path, meta: Meta) -> Result<(), EntryError> {
        let (pfd, last) = self.root.parent_of(rel)?;
        if self.make_dir(&pfd, last, rel)? {
            self.adopted.insert(rel.to_path_buf());
        }
        self.dirs.push(DirMeta {
            rel: rel.to_path_buf(),
            meta,
        });
        Ok(())
    }

    /// A regular file: created new (`O_EXCL|O_NOFOLLOW`, rule 3) after whatever was in the
    /// way is removed, so nothing planted earlier is written through; then its content,
    /// owner, mode and times through the same descriptor.
    fn write_file<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        rel: &Path,
        meta: &Meta,
    ) -> Result<(), EntryError> {
        let (pfd, last) = self.root.parent_of(rel)?;
        self.replace(&pfd, last, rel)?;
        let fd = nix::fcntl::openat(
            pfd.as_fd(),
            last,
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(|e| sys_err(format!("openat({rel:?}, O_CREAT|O_EXCL|O_NOFOLLOW)"), e))?;
        let mut file = std::fs::File::from(fd);
        // io::copy fails either writing (an errno) or reading the archive (a broken
        // stream, which has none).
        let n = io::copy(entry, &mut file).map_err(|e| match e.raw_os_error() {
            Some(code) => {
                EntryError::Sys(sys_err(format!("write({rel:?})"), Errno::from_raw(code)))
            }
            None => EntryError::Archive(e),
        })?;
        self.stats.bytes += n;
        self.finish_fd(file.as_fd(), rel, meta)?;
        Ok(())
    }

    /// A symlink: its target is stored as it is. It is data, resolved later inside the
    /// container (or inside the root, by rule 2), never by this extraction.
    fn write_symlink<R: Read>(
        &mut self,
        entry: &tar::Entry<'_, R>,
        rel: &Path,
        meta: &Meta,
    ) -> Result<(), EntryError> {
        let target = entry
            .link_name_bytes()
            .ok_or_else(|| EntryError::Unsafe("a symlink without a target".into()))?
            .into_owned();
        let (pfd, last) = self.root.parent_of(rel)?;
        self.replace(&pfd, last, rel)?;
        nix::unistd::symlinkat(OsStr::from_bytes(&target), pfd.as_fd(), last).map_err(|e| {
            sys_err(
                format!("symlinkat({:?}, {rel:?})", String::from_utf8_lossy(&target)),
                e,
            )
        })?;
        self.finish_at(&pfd, last, rel, meta, false)?;
        Ok(())
    }

    /// A hard link: its target is a name in the archive, made safe like any name and
    /// resolved inside the root; linkat(2) without `AT_SYMLINK_FOLLOW` links a symlink
    /// itself, never what it points to (rule 3). Returns false for a link to itself,
    /// which writes nothing.
    fn write_hard_link<R: Read>(
        &mut self,
        entry: &tar::Entry<'_, R>,
        rel: &Path,
    ) -> Result<bool, EntryError> {
        let target = entry
            .link_name_bytes()
            .ok_or_else(|| EntryError::Unsafe("a hard link without a target".into()))?
            .into_owned();
        let target = sanitize(Path::new(OsStr::from_bytes(&target)))
            .map_err(|r| EntryError::Unsafe(format!("hard link target: {r}")))?
            .ok_or_else(|| EntryError::Unsafe("a hard link to the root".into()))?;
        if target == rel {
            return Ok(false);
        }
        let (tdir, tlast) = split(&target);
        let tparent = self
            .root
            .resolve(tdir, OFlag::O_PATH | OFlag::O_DIRECTORY)?;
        let (pfd, last) = self.root.parent_of(rel)?;
        self.replace(&pfd, last, rel)?;
        nix::unistd::linkat(tparent.as_fd(), tlast, pfd.as_fd(), last, AtFlags::empty())
            .map_err(|e| sys_err(format!("linkat({target:?}, {rel:?})"), e))?;
        Ok(true)
    }

    /// A device node or a FIFO (rule 4: devices only when asked, which the caller checked).
    fn write_node(
        &mut self,
        header: &tar::Header,
        rel: &Path,
        meta: &Meta,
    ) -> Result<(), EntryError> {
        let (pfd, last) = self.root.parent_of(rel)?;
        self.replace(&pfd, last, rel)?;
        let sflag = match header.entry_type() {
            tar::EntryType::Char => SFlag::S_IFCHR,
            tar::EntryType::Block => SFlag::S_IFBLK,
            _ => SFlag::S_IFIFO,
        };
        let major = header.device_major().ok().flatten().unwrap_or(0) as u64;
        let minor = header.device_minor().ok().flatten().unwrap_or(0) as u64;
        nix::sys::stat::mknodat(
            pfd.as_fd(),
            last,
            sflag,
            Mode::from_bits_truncate(0o600),
            nix::sys::stat::makedev(major, minor),
        )
        .map_err(|e| sys_err(format!("mknodat({rel:?}, {sflag:?}, {major}:{minor})"), e))?;
        self.finish_at(&pfd, last, rel, meta, true)?;
        Ok(())
    }

    /// Creates a directory, unless one is there already (a later entry for an existing
    /// directory updates its metadata only; returns whether it came from an earlier
    /// archive); anything else in the way is removed.
    fn make_dir(&self, pfd: &OwnedFd, last: &OsStr, rel: &Path) -> Result<bool, SysError> {
        match nix::sys::stat::fstatat(pfd.as_fd(), last, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR => {
                return Ok(!self.created.contains(rel));
            }
            Ok(_) => {
                remove_at(pfd, last, rel)?;
            }
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(sys_err(format!("fstatat({rel:?})"), e)),
        }
        nix::sys::stat::mkdirat(pfd.as_fd(), last, Mode::from_bits_truncate(0o700))
            .map_err(|e| sys_err(format!("mkdirat({rel:?}, 0700)"), e))?;
        Ok(false)
    }

    /// Removes whatever is at `last` (rule 3: replace, never write through).
    fn replace(&self, pfd: &OwnedFd, last: &OsStr, rel: &Path) -> Result<(), SysError> {
        remove_at(pfd, last, rel).map(drop)
    }

    /// Owner, mode, xattrs and times of an open file or directory.
    fn finish_fd(
        &self,
        fd: std::os::fd::BorrowedFd<'_>,
        rel: &Path,
        meta: &Meta,
    ) -> Result<(), SysError> {
        let (uid, gid) = (Uid::from_raw(meta.uid), Gid::from_raw(meta.gid));
        let owned = self.same_owner && nix::unistd::fchown(fd, Some(uid), Some(gid)).is_ok();
        // Rule 5: chown first (it clears setuid/setgid), then the mode, exactly as archived.
        let mode = if owned { meta.mode } else { meta.mode & 0o1777 };
        nix::sys::stat::fchmod(fd, Mode::from_bits_truncate(mode))
            .map_err(|e| sys_err(format!("fchmod({rel:?}, {mode:#o})"), e))?;
        for (name, value) in &meta.xattrs {
            crate::sys::fsetxattr(fd, name, value)
                .map_err(|e| sys_err(format!("fsetxattr({rel:?}, {name:?})"), e))?;
        }
        let t = TimeSpec::new(meta.mtime, 0);
        nix::sys::stat::futimens(fd, &t, &t).map_err(|e| sys_err(format!("futimens({rel:?})"), e))
    }

    /// Owner, mode (`chmod`: not for a symlink, which has none) and times of what `last`
    /// names in `pfd`, without following it.
    fn finish_at(
        &self,
        pfd: &OwnedFd,
        last: &OsStr,
        rel: &Path,
        meta: &Meta,
        chmod: bool,
    ) -> Result<(), SysError> {
        let (uid, gid) = (meta.uid, meta.gid);
        if self.same_owner {
            nix::unistd::fchownat(
                pfd.as_fd(),
                last,
                Some(Uid::from_raw(uid)),
                Some(Gid::from_raw(gid)),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(|e| {
                sys_err(
                    format!("fchownat({rel:?}, {uid}, {gid}, AT_SYMLINK_NOFOLLOW)"),
                    e,
                )
            })?;
        }
        if chmod {
            let mode = meta.mode;
            nix::sys::stat::fchmodat(
                pfd.as_fd(),
                last,
                Mode::from_bits_truncate(mode),
                FchmodatFlags::FollowSymlink,
            )
            .map_err(|e| sys_err(format!("fchmodat({rel:?}, {mode:#o})"), e))?;
        }
        let t = TimeSpec::new(meta.mtime, 0);
        nix::sys::stat::utimensat(pfd.as_fd(), last, &t, &t, UtimensatFlags::NoFollowSymlink)
            .map_err(|e| sys_err(format!("utimensat({rel:?}, AT_SYMLINK_NOFOLLOW)"), e))
    }

    /// Applies the directories' metadata, deepest first, and returns what was done.
    pub fn finish(mut self) -> Result<ExtractStats, ExtractError> {
        let mut dirs = std::mem::take(&mut self.dirs);
        dirs.sort_by_key(|d| std::cmp::Reverse(d.rel.components().count()));
        for d in dirs {
            let wrap = |source: SysError| ExtractError::Write {
                entry: d.rel.display().to_string(),
                source,
            };
            let fd = match self.root.resolve(
                &d.rel,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW,
            ) {
                Ok(fd) => fd,
                // Replaced by a later entry, or removed by a whiteout: nothing to do.
                Err(e) if matches!(e.errno, Errno::ENOENT | Errno::ENOTDIR | Errno::ELOOP) => {
                    continue;
                }
                Err(e) => return Err(wrap(e)),
            };
            self.finish_fd(fd.as_fd(), &d.rel, &d.meta).map_err(wrap)?;
        }
        Ok(self.stats)
    }
}

/// The extended attributes an entry carries (`SCHILY.xattr.NAME` pax records), less
/// overlay's private ones (rule 6).
fn pax_xattrs<R: Read>(entry: &mut tar::Entry<'_, R>) -> io::Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    if let Some(exts) = entry.pax_extensions()? {
        for ext in exts {
            let ext = ext?;
            if let Some(name) = ext.key().ok().and_then(|k| k.strip_prefix("SCHILY.xattr."))
                && !name.starts_with("trusted.overlay.")
                && !name.starts_with("user.overlay.")
            {
                out.push((name.to_string(), ext.value_bytes().to_vec()));
            }
        }
    }
    Ok(out)
}

/// Extracts a whole (uncompressed) tar stream into `target` by the rules above.
pub fn extract(
    reader: impl Read,
    target: &Path,
    options: ExtractOptions,
) -> Result<ExtractStats, ExtractError> {
    let mut extractor = Extractor::new(target, options)?;
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries().map_err(ExtractError::Archive)? {
        let mut entry = entry.map_err(ExtractError::Archive)?;
        extractor.write(&mut entry)?;
    }
    extractor.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_made_relative_and_dotdot_is_refused() {
        for (name, want) in [
            ("etc/passwd", Ok(Some("etc/passwd"))),
            ("/etc/passwd", Ok(Some("etc/passwd"))),
            ("./etc/./passwd", Ok(Some("etc/passwd"))),
            ("./", Ok(None)),
            ("/", Ok(None)),
            ("etc/../../x", Err(())),
            ("../x", Err(())),
        ] {
            let got = sanitize(Path::new(name))
                .map(|p| p.map(|p| p.display().to_string()))
                .map_err(|_| ());
            assert_eq!(got, want.map(|o| o.map(str::to_string)), "{name}");
        }
    }
}
