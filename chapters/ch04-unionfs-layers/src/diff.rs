//! The read-write layer as an OCI layer tarball: what `docker commit` and `docker push`
//! save of a container.
//!
//! overlayfs's upper directory already *is* the change set, in overlayfs's own notation.
//! Turning it into the OCI notation (image spec, "Representing Changes") means:
//!
//! * a whiteout (a character device 0/0 named NAME) becomes an empty file `.wh.NAME`;
//! * an opaque directory (xattr `trusted.overlay.opaque=y`) becomes the directory plus an
//!   empty file `.wh..wh..opq` inside it;
//! * everything else is archived as it is: modes, owners, times, symlinks, device nodes,
//!   extended attributes (as `SCHILY.xattr.*` pax records), and files with several links
//!   as one file plus hard-link entries.
//!
//! Entries are sorted, so the same upper directory always gives the same tarball (and the
//! same digest).
use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::apply::{OPAQUE_MARKER, WHITEOUT_PREFIX};

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    /// Reading the upper directory failed.
    #[error("{}: {source}", path.display())]
    Read {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Writing the archive failed.
    #[error("write the layer: {0}")]
    Write(#[source] io::Error),
    /// The upper directory uses an overlayfs feature an OCI layer cannot express.
    #[error("{}: has the overlayfs attribute {attr} (from redirect_dir or metacopy), which an OCI layer cannot express", path.display())]
    Unsupported {
        /// The path.
        path: PathBuf,
        /// The attribute.
        attr: String,
    },
}

/// What the layer holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiffStats {
    /// Entries written (whiteout and opaque markers included).
    pub entries: u64,
    /// Whiteouts written.
    pub whiteouts: u64,
    /// Opaque directories written.
    pub opaque: u64,
}

/// Writes the change set in `upper` as an uncompressed tar stream to `out`, skipping the
/// paths in `exclude` (relative, such as the init layer's files).
pub fn diff(upper: &Path, out: impl Write, exclude: &[&Path]) -> Result<DiffStats, DiffError> {
    let mut w = Writer {
        tar: tar::Builder::new(out),
        links: HashMap::new(),
        stats: DiffStats::default(),
        exclude: exclude.iter().map(|p| p.to_path_buf()).collect(),
    };
    w.tar.mode(tar::HeaderMode::Complete);
    w.tar.follow_symlinks(false);
    w.walk(upper, Path::new(""))?;
    w.tar
        .into_inner()
        .map_err(DiffError::Write)?
        .flush()
        .map_err(DiffError::Write)?;
    Ok(w.stats)
}

struct Writer<W: Write> {
    tar: tar::Builder<W>,
    links: HashMap<(u64, u64), PathBuf>,
    stats: DiffStats,
    exclude: Vec<PathBuf>,
}

fn read_err(path: &Path) -> impl FnOnce(io::Error) -> DiffError + '_ {
    move |source| DiffError::Read {
        path: path.to_path_buf(),
        source,
    }
}

impl<W: Write> Writer<W> {
    fn walk(&mut self, dir: &Path, rel: &Path) -> Result<(), DiffError> {
        let mut names: Vec<_> = fs::read_dir(dir)
            .map_err(read_err(dir))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(read_err(dir))?;
        names.sort();
        for name in names {
            let path = dir.join(&name);
            let rel = rel.join(&name);
            if self.exclude.contains(&rel) {
                continue;
            }
            self.entry(&path, &rel)?;
        }
        Ok(())
    }

    /// One path of the upper directory, as the OCI entries that say the same.
    fn entry(&mut self, path: &Path, rel: &Path) -> Result<(), DiffError> {
        let md = fs::symlink_metadata(path).map_err(read_err(path))?;
        let ft = md.file_type();
        if ft.is_char_device() && md.rdev() == 0 {
            return self.append_whiteout(rel, &md);
        }
        if ft.is_socket() {
            // Not archivable, and meaningless in an image. Skipped before its xattrs,
            // whose pax header would otherwise describe the next entry.
            return Ok(());
        }
        // A pax header applies to the entry after it: the xattrs go first.
        self.append_xattrs(path)?;
        if ft.is_dir() {
            self.append_dir(path, rel, &md)?;
            return self.walk(path, rel);
        }
        if ft.is_symlink() {
            self.append_symlink(path, rel, &md)
        } else if ft.is_file() {
            self.append_file(path, rel, &md)
        } else {
            self.append_node(rel, &md)
        }
    }

    /// overlayfs's whiteout (a 0/0 character device) becomes an empty `.wh.NAME`.
    fn append_whiteout(&mut self, rel: &Path, md: &fs::Metadata) -> Result<(), DiffError> {
        let name = format!(
            "{WHITEOUT_PREFIX}{}",
            rel.file_name().unwrap_or_default().to_string_lossy()
        );
        self.append_marker(md, &rel.with_file_name(name))?;
        self.stats.whiteouts += 1;
        Ok(())
    }

    /// An empty regular file: a whiteout, or an opaque directory's marker.
    fn append_marker(&mut self, md: &fs::Metadata, name: &Path) -> Result<(), DiffError> {
        let mut h = header(md, tar::EntryType::Regular);
        h.set_size(0);
        h.set_mode(0o644);
        self.tar
            .append_data(&mut h, name, io::empty())
            .map_err(DiffError::Write)?;
        self.stats.entries += 1;
        Ok(())
    }

    /// The path's extended attributes, as `SCHILY.xattr.*` pax records.
    fn append_xattrs(&mut self, path: &Path) -> Result<(), DiffError> {
        let xattrs = self.xattrs(path)?;
        if xattrs.is_empty() {
            return Ok(());
        }
        let records: Vec<(String, &[u8])> = xattrs
            .iter()
            .map(|(k, v)| (format!("SCHILY.xattr.{k}"), v.as_slice()))
            .collect();
        self.tar
            .append_pax_extensions(records.iter().map(|(k, v)| (k.as_str(), *v)))
            .map_err(DiffError::Write)
    }

    /// A directory; an opaque one (`trusted.overlay.opaque=y`) is followed by its
    /// `.wh..wh..opq` marker, so that it hides the lower directory in the OCI notation too.
    fn append_dir(&mut self, path: &Path, rel: &Path, md: &fs::Metadata) -> Result<(), DiffError> {
        let mut h = header(md, tar::EntryType::Directory);
        h.set_size(0);
        // `etc/`, with the slash GNU tar and Go's archive/tar (docker's) give a directory.
        // The tar crate drops it, so a name that fits the header is written by hand; a
        // longer one goes through its GNU long-name entry, without the slash.
        let fits = h.set_path(rel).is_ok() && {
            let name = &mut h.as_old_mut().name;
            match name.iter().position(|b| *b == 0) {
                Some(end) if end > 0 && name[end - 1] != b'/' => {
                    name[end] = b'/';
                    true
                }
                _ => false,
            }
        };
        if fits {
            h.set_cksum();
            self.tar.append(&h, io::empty()).map_err(DiffError::Write)?;
        } else {
            self.tar
                .append_data(&mut h, rel, io::empty())
                .map_err(DiffError::Write)?;
        }
        self.stats.entries += 1;
        if crate::apply::is_opaque(path) {
            self.append_marker(md, &rel.join(OPAQUE_MARKER))?;
            self.stats.opaque += 1;
        }
        Ok(())
    }

    /// A symlink, its target as it is.
    fn append_symlink(
        &mut self,
        path: &Path,
        rel: &Path,
        md: &fs::Metadata,
    ) -> Result<(), DiffError> {
        let target = fs::read_link(path).map_err(read_err(path))?;
        let mut h = header(md, tar::EntryType::Symlink);
        h.set_size(0);
        self.tar
            .append_link(&mut h, rel, &target)
            .map_err(DiffError::Write)?;
        self.stats.entries += 1;
        Ok(())
    }

    /// A regular file; a second name of a file with several links is a hard-link entry
    /// to the first name archived, so the content is stored once and the link survives.
    fn append_file(&mut self, path: &Path, rel: &Path, md: &fs::Metadata) -> Result<(), DiffError> {
        let key = (md.dev(), md.ino());
        if md.nlink() > 1 {
            if let Some(first) = self.links.get(&key).cloned() {
                let mut h = header(md, tar::EntryType::Link);
                h.set_size(0);
                self.tar
                    .append_link(&mut h, rel, &first)
                    .map_err(DiffError::Write)?;
                self.stats.entries += 1;
                return Ok(());
            }
            self.links.insert(key, rel.to_path_buf());
        }
        let mut h = header(md, tar::EntryType::Regular);
        h.set_size(md.len());
        let f = fs::File::open(path).map_err(read_err(path))?;
        self.tar
            .append_data(&mut h, rel, f)
            .map_err(DiffError::Write)?;
        self.stats.entries += 1;
        Ok(())
    }

    /// A device node or a FIFO, with its numbers.
    fn append_node(&mut self, rel: &Path, md: &fs::Metadata) -> Result<(), DiffError> {
        let ft = md.file_type();
        let kind = if ft.is_char_device() {
            tar::EntryType::Char
        } else if ft.is_block_device() {
            tar::EntryType::Block
        } else {
            tar::EntryType::Fifo
        };
        let mut h = header(md, kind);
        h.set_size(0);
        let (major, minor) = (
            nix::sys::stat::major(md.rdev()),
            nix::sys::stat::minor(md.rdev()),
        );
        h.set_device_major(major as u32).map_err(DiffError::Write)?;
        h.set_device_minor(minor as u32).map_err(DiffError::Write)?;
        self.tar
            .append_data(&mut h, rel, io::empty())
            .map_err(DiffError::Write)?;
        self.stats.entries += 1;
        Ok(())
    }

    /// Extended attributes to archive: all but overlayfs's own, which describe the upper
    /// directory itself. Those that change meaning (redirect, metacopy) are refused.
    fn xattrs(&self, path: &Path) -> Result<Vec<(String, Vec<u8>)>, DiffError> {
        let mut out = Vec::new();
        let names = match xattr::list(path) {
            Ok(n) => n,
            Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => return Ok(out),
            Err(e) => {
                return Err(DiffError::Read {
                    path: path.to_path_buf(),
                    source: e,
                });
            }
        };
        for name in names {
            let name = name.to_string_lossy().into_owned();
            // `user.overlay.*` where overlayfs ran in a user namespace (`userxattr`).
            if let Some(attr) = name
                .strip_prefix("trusted.overlay.")
                .or_else(|| name.strip_prefix("user.overlay."))
            {
                if matches!(attr, "redirect" | "metacopy") {
                    return Err(DiffError::Unsupported {
                        path: path.to_path_buf(),
                        attr: name,
                    });
                }
                continue;
            }
            if let Some(value) = xattr::get(path, &name).map_err(read_err(path))? {
                out.push((name, value));
            }
        }
        out.sort();
        Ok(out)
    }
}

fn header(md: &fs::Metadata, kind: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(md.mode() & 0o7777);
    h.set_uid(md.uid() as u64);
    h.set_gid(md.gid() as u64);
    // The owner's names too, from this host's /etc/passwd and /etc/group, as Go's
    // archive/tar (docker's) and GNU tar write them; extraction goes by the numbers.
    let (user, group) = owner_names(md.uid(), md.gid());
    if let Some(u) = user {
        let _ = h.set_username(&u);
    }
    if let Some(g) = group {
        let _ = h.set_groupname(&g);
    }
    h.set_mtime(md.mtime().max(0) as u64);
    h
}

/// The names of `uid` and `gid` in this host's `/etc/passwd` and `/etc/group`, read once.
fn owner_names(uid: u32, gid: u32) -> (Option<String>, Option<String>) {
    use std::sync::OnceLock;
    static NAMES: OnceLock<(HashMap<u32, String>, HashMap<u32, String>)> = OnceLock::new();
    let (users, groups) = NAMES.get_or_init(|| {
        let read = |path: &str| -> HashMap<u32, String> {
            fs::read_to_string(path)
                .unwrap_or_default()
                .lines()
                .filter_map(|l| {
                    let f: Vec<&str> = l.split(':').collect();
                    Some((f.get(2)?.parse().ok()?, f.first()?.to_string()))
                })
                .collect()
        };
        (read("/etc/passwd"), read("/etc/group"))
    });
    (users.get(&uid).cloned(), groups.get(&gid).cloned())
}

/// The paths (relative to the layer root) of a tarball's entries, in order, with a mark for
/// whiteouts and opaque markers: what `ch04-unionfs-layers diff` prints.
pub fn listing(tar_bytes: impl io::Read) -> io::Result<Vec<String>> {
    let mut out = Vec::new();
    let mut archive = tar::Archive::new(tar_bytes);
    for entry in archive.entries()? {
        let entry = entry?;
        let path = entry.path()?.into_owned();
        let h = entry.header();
        let kind = match h.entry_type() {
            tar::EntryType::Directory => "dir ",
            tar::EntryType::Symlink => "link",
            tar::EntryType::Link => "hard",
            tar::EntryType::Char | tar::EntryType::Block => "dev ",
            tar::EntryType::Fifo => "fifo",
            _ => "file",
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let note = if name == OPAQUE_MARKER {
            "  (opaque: hide the lower directory)".to_string()
        } else if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
            format!("  (whiteout: delete {hidden})")
        } else if h.entry_type() == tar::EntryType::Symlink
            || h.entry_type() == tar::EntryType::Link
        {
            format!(" -> {}", entry.link_name()?.unwrap_or_default().display())
        } else {
            String::new()
        };
        let mode = h.mode()?;
        let shown = path.to_string_lossy();
        out.push(format!(
            "{kind} {mode:04o} {}{note}",
            shown.trim_end_matches('/')
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_is_skipped_and_its_xattrs_do_not_go_to_the_next_entry() {
        testkit::require_root!();
        let upper = tempfile::tempdir().unwrap();
        let sock = upper.path().join("a.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        // trusted.* (root only) is allowed on a socket; user.* is not (xattr(7)).
        xattr::set(&sock, "trusted.note", b"the socket's").unwrap();
        fs::write(upper.path().join("b"), "b\n").unwrap();
        let mut tar = Vec::new();
        let stats = diff(upper.path(), &mut tar, &[]).unwrap();
        assert_eq!(stats.entries, 1);
        let mut archive = tar::Archive::new(&tar[..]);
        let mut entries = archive.entries().unwrap();
        let mut b = entries.next().unwrap().unwrap();
        assert_eq!(b.path().unwrap(), Path::new("b"));
        assert!(b.pax_extensions().unwrap().is_none(), "b has no xattrs");
        assert!(entries.next().is_none());
    }
}
