//! `mini-docker cp`: files between a container and the host, as a tar stream, the way
//! docker does it. Every path inside the container is resolved inside its root (chapter 3's
//! `SafeRoot`): a symlink in the container pointing at `/etc` leads to the container's
//! `/etc`, never the host's; and what lands on either side goes through the safe extractor.
use std::fs;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use ch03_rootfs_pivot_root::extract::{ExtractOptions, SafeRoot, extract};
use ch04_unionfs_layers::sys::Kernel;
use clap::Args;
use nix::fcntl::OFlag;

use crate::record::Status;
use crate::{Cli, Error, containers};

/// `cp`.
#[derive(Debug, Clone, Args)]
pub struct CpArgs {
    /// Always follow symbol link in SRC_PATH.
    #[arg(short = 'L', long)]
    pub follow_link: bool,
    /// CONTAINER:SRC_PATH, or a host path.
    pub source: String,
    /// A host path, or CONTAINER:DEST_PATH.
    pub destination: String,
}

/// `NAME:PATH` (a name has no `/` before the colon), or a host path.
fn split_container(arg: &str) -> Option<(&str, &str)> {
    let (name, path) = arg.split_once(':')?;
    (!name.is_empty() && !name.contains('/')).then_some((name, path))
}

fn rel(p: &str) -> PathBuf {
    PathBuf::from(p.trim_start_matches('/'))
}

/// The source inside the container, opened without following it when it is a symlink
/// (docker copies the link itself, unless `-L`): its descriptor, and the link's target if
/// it is one.
fn open_source(
    inside: &SafeRoot,
    src: &Path,
    follow: bool,
    name: &str,
    given: &str,
) -> Result<(std::os::fd::OwnedFd, Option<Link>), String> {
    let flags = if follow {
        OFlag::O_PATH
    } else {
        OFlag::O_PATH | OFlag::O_NOFOLLOW
    };
    let fd = inside
        .resolve(src, flags)
        .map_err(|e| missing_source(name, given, &e))?;
    let st = nix::sys::stat::fstat(&fd).map_err(|e| format!("fstat({given}): {e}"))?;
    let is_link = nix::sys::stat::SFlag::from_bits_truncate(st.st_mode)
        & nix::sys::stat::SFlag::S_IFMT
        == nix::sys::stat::SFlag::S_IFLNK;
    if !is_link {
        return Ok((fd, None));
    }
    // readlinkat(2) with an empty path reads the link an O_PATH descriptor names.
    let target = nix::fcntl::readlinkat(&fd, "").map_err(|e| format!("readlink({given}): {e}"))?;
    Ok((
        fd,
        Some(Link {
            target,
            uid: st.st_uid,
            gid: st.st_gid,
            mtime: st.st_mtime,
        }),
    ))
}

/// What `cp` copies out of a container: `path` inside it (`given` as the user wrote it),
/// its link followed or not (`-L`).
struct Source<'a> {
    path: &'a Path,
    given: &'a str,
    container: &'a str,
    follow: bool,
}

impl Source<'_> {
    /// The source, resolved inside `container_root`, archived as `top` into a temp file.
    fn archive_from(&self, container_root: &Path, top: &Path) -> Result<fs::File, String> {
        let inside = SafeRoot::open(container_root).map_err(|e| e.to_string())?;
        let (fd, link) = open_source(&inside, self.path, self.follow, self.container, self.given)?;
        let via = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
        let mut tmp = tempfile::tempfile().map_err(|e| e.to_string())?;
        match link {
            Some(link) => archive_link(top, &link, &mut tmp),
            None => archive(&via, top, &mut tmp),
        }
        .map_err(|e| e.to_string())?;
        Ok(tmp)
    }
}

/// A symlink to copy as itself: where it points, and its owner and time.
struct Link {
    target: std::ffi::OsString,
    uid: u32,
    gid: u32,
    mtime: i64,
}

/// Archives a symlink as `name` into `out`.
fn archive_link(name: &Path, link: &Link, out: &mut fs::File) -> std::io::Result<()> {
    let mut tar = tar::Builder::new(out);
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_mode(0o777);
    h.set_size(0);
    h.set_uid(link.uid.into());
    h.set_gid(link.gid.into());
    h.set_mtime(link.mtime.max(0) as u64);
    tar.append_link(&mut h, name, &link.target)?;
    tar.finish()
}

/// Archives `path` (a file or a directory) as `name` into `out`. `path` itself may be a
/// `/proc/self/fd/N` link to what was resolved inside the container, so it is followed;
/// nothing below it is (symlinks inside are archived as symlinks).
fn archive(path: &Path, name: &Path, out: &mut fs::File) -> std::io::Result<()> {
    let mut tar = tar::Builder::new(out);
    tar.follow_symlinks(false);
    tar.mode(tar::HeaderMode::Complete);
    let md = fs::metadata(path)?;
    if md.is_dir() {
        tar.append_dir(name, path)?;
        let mut children: Vec<_> = fs::read_dir(path)?.collect::<Result<_, _>>()?;
        children.sort_by_key(|e| e.file_name());
        for child in children {
            let (src, dst) = (child.path(), name.join(child.file_name()));
            if child.file_type()?.is_dir() {
                tar.append_dir_all(dst, src)?;
            } else {
                tar.append_path_with_name(src, dst)?;
            }
        }
    } else if md.is_file() {
        tar.append_file(name, &mut fs::File::open(path)?)?;
    } else {
        // A FIFO or a device node is copied as an entry, never opened: opening a FIFO
        // blocks until someone writes, and /dev/zero would never end (docker's way too).
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let ft = md.file_type();
        let kind = if ft.is_fifo() {
            tar::EntryType::Fifo
        } else if ft.is_char_device() {
            tar::EntryType::Char
        } else if ft.is_block_device() {
            tar::EntryType::Block
        } else {
            // A socket: nothing to copy (tar has no entry for one).
            return tar.finish();
        };
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(md.mode() & 0o7777);
        h.set_uid(md.uid().into());
        h.set_gid(md.gid().into());
        h.set_mtime(md.mtime().max(0) as u64);
        h.set_size(0);
        if kind != tar::EntryType::Fifo {
            let dev = md.rdev();
            h.set_device_major(nix::sys::stat::major(dev) as u32)?;
            h.set_device_minor(nix::sys::stat::minor(dev) as u32)?;
        }
        tar.append_data(&mut h, name, std::io::empty())?;
    }
    tar.finish()
}

/// Copies `files` (a tar file) into `dest`: into it if it is a directory, else as it.
fn unpack(files: &mut fs::File, root: &SafeRoot, dest: &Path) -> Result<(), String> {
    use std::io::Seek;
    files.rewind().map_err(|e| e.to_string())?;
    let target = root
        .resolve(dest, OFlag::O_PATH | OFlag::O_DIRECTORY)
        .map_err(|e| e.to_string())?;
    let via = PathBuf::from(format!("/proc/self/fd/{}", target.as_raw_fd()));
    extract(&mut *files, &via, ExtractOptions::default())
        .map(drop)
        .map_err(|e| e.to_string())
}

/// Where an archive of a source goes: (the directory to extract into, the name of the top
/// entry). docker cp's rule: into an existing directory keeps the source's name; anything
/// else becomes the destination's name.
fn placement(dest_is_dir: bool, source: &Path, dest: &Path) -> (PathBuf, PathBuf) {
    let base = |p: &Path| {
        p.file_name()
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."))
    };
    if dest_is_dir {
        (dest.to_path_buf(), base(source))
    } else {
        (
            dest.parent().map(Path::to_path_buf).unwrap_or_default(),
            base(dest),
        )
    }
}

/// The container `name` in `NAME:PATH`, missing worded as docker's daemon words it.
fn find(root: &Path, name: &str, path: &str) -> Result<crate::record::Container, Error> {
    containers::find(root, name).map_err(|e| match e {
        Error::NoSuchContainer(_) => Error::Usage(format!("No such container:path: {name}:{path}")),
        e => e,
    })
}

/// A source path that does not resolve inside the container: docker 20.10's words for a
/// missing one (`No such container:path: web:/nonexist`), the system call's otherwise.
fn missing_source(name: &str, given: &str, e: &ch01_namespaces::SysError) -> String {
    if e.errno == nix::errno::Errno::ENOENT {
        format!("No such container:path: {name}:{given}")
    } else {
        format!("Could not find the file {given} in container {name}: {e}")
    }
}

/// Copies. `-` as the destination writes the tar stream to stdout; as the source, reads
/// one from stdin and extracts it into the destination directory, as docker's cp does.
pub fn main(sys: &Kernel, cli: &Cli, args: &CpArgs) -> Result<i32, Error> {
    let root = cli.root.as_path();
    match (split_container(&args.source), split_container(&args.destination)) {
        (Some((name, src)), None) if args.destination == "-" => {
            let c = find(root, name, src)?;
            let given = src;
            let src = rel(src);
            let top = src
                .file_name()
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("."));
            let stream_out = |container_root: &Path| -> Result<(), String> {
                let source = Source { path: &src, given, container: name, follow: args.follow_link };
                let mut tmp = source.archive_from(container_root, &top)?;
                use std::io::Seek;
                tmp.rewind().map_err(|e| e.to_string())?;
                std::io::copy(&mut tmp, &mut std::io::stdout().lock())
                    .map(drop)
                    .map_err(|e| e.to_string())
            };
            // Frozen while we copy (pause::freeze_for_copy), thawed on every way out.
            let _frozen = super::pause::freeze_for_copy(sys, &c)?;
            let state = c.live_state()?;
            if matches!(state.status, Status::Running | Status::Paused) {
                stream_out(&PathBuf::from(format!("/proc/{}/root", state.pid)))
                    .map_err(Error::Usage)?;
                return Ok(0);
            }
            Ok(crate::view::in_container_files(sys, root, &c, false, crate::view::InitView::Live, &mut |merged| {
                match stream_out(merged) {
                    Ok(()) => 0,
                    Err(e) => {
                        eprintln!("Error: {e}");
                        1
                    }
                }
            })?)
        }
        (Some((name, src)), None) => {
            let c = find(root, name, src)?;
            let given = src;
            let src = rel(src);
            // Resolved below from the host's `/` (never through a symlink out of it): a
            // relative destination is made absolute against our working directory first.
            let dest = std::path::absolute(&args.destination)
                .map_err(|e| Error::io("resolve", Path::new(&args.destination), e))?;
            let dest_is_dir = dest.is_dir();
            let (into, top) = placement(dest_is_dir, &src, &dest);
            let host = SafeRoot::open(Path::new("/")).map_err(Error::Sys)?;
            let copy_out = |container_root: &Path| -> Result<(), String> {
                let source = Source { path: &src, given, container: name, follow: args.follow_link };
                let mut tmp = source.archive_from(container_root, &top)?;
                unpack(&mut tmp, &host, &into)
            };
            let _frozen = super::pause::freeze_for_copy(sys, &c)?;
            let state = c.live_state()?;
            let result = if matches!(state.status, Status::Running | Status::Paused) {
                // A running container is seen through its first process's root, volumes and
                // all.
                copy_out(&PathBuf::from(format!("/proc/{}/root", state.pid))).map_err(Error::Usage)
            } else {
                let code = crate::view::in_container_files(sys, root, &c, false, crate::view::InitView::Live, &mut |merged| match copy_out(merged) {
                    Ok(()) => 0,
                    Err(e) => {
                        eprintln!("Error: {e}");
                        1
                    }
                })?;
                if code == 0 { Ok(()) } else { return Ok(1) }
            };
            result.map(|()| 0)
        }
        (None, Some((name, dest))) => {
            let c = find(root, name, dest)?;
            let source = PathBuf::from(&args.source);
            let mut tmp = tempfile::tempfile().map_err(|e| Error::io("create a temporary file for", &source, e))?;
            let from_stdin = args.source == "-";
            if from_stdin {
                // The stream is kept whole first: the extraction below may run in a child.
                std::io::copy(&mut std::io::stdin().lock(), &mut tmp)
                    .map_err(|e| Error::io("read the tar stream from", Path::new("stdin"), e))?;
            }
            let dest_text = dest.to_string();
            let dest = rel(dest);
            let copy_in = |container_root: &Path, tmp: &mut fs::File| -> Result<(), String> {
                let inside = SafeRoot::open(container_root).map_err(|e| e.to_string())?;
                if from_stdin {
                    if inside.resolve(&dest, OFlag::O_PATH | OFlag::O_DIRECTORY).is_err() {
                        return Err(format!("destination \"{name}:{dest_text}\" must be a directory"));
                    }
                    return unpack(tmp, &inside, &dest);
                }
                let dest_is_dir = inside.resolve(&dest, OFlag::O_PATH | OFlag::O_DIRECTORY).is_ok();
                let (into, top) = placement(dest_is_dir, &source, &dest);
                fs::symlink_metadata(&source).map_err(|e| format!("{}: {e}", source.display()))?;
                archive(&source, &top, tmp).map_err(|e| e.to_string())?;
                unpack(tmp, &inside, &into)
            };
            let _frozen = super::pause::freeze_for_copy(sys, &c)?;
            let result = match c.live_state()?.status {
                // A running container is reached through its first process's root.
                Status::Running | Status::Paused => {
                    let pid = c.live_state()?.pid;
                    copy_in(&PathBuf::from(format!("/proc/{pid}/root")), &mut tmp).map(|()| 0)
                }
                _ => {
                    let code = crate::view::in_container_files(sys, root, &c, true, crate::view::InitView::Live, &mut |merged| match copy_in(merged, &mut tmp) {
                        Ok(()) => 0,
                        Err(e) => {
                            eprintln!("Error: {e}");
                            1
                        }
                    })?;
                    Ok(code)
                }
            };
            match result {
                Ok(0) => Ok(0),
                Ok(_) => Ok(1),
                Err(e) => Err(Error::Usage(e)),
            }
        }
        _ => Err(Error::Usage("copying between containers or between two host paths is not supported: one side must be CONTAINER:PATH".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_and_placement_follow_docker_cp() {
        assert_eq!(
            split_container("web:/etc/hosts"),
            Some(("web", "/etc/hosts"))
        );
        assert_eq!(split_container("./a:b"), None);
        assert_eq!(split_container("/tmp/x"), None);
        assert_eq!(
            placement(true, Path::new("etc/hosts"), Path::new("/tmp/out")),
            (PathBuf::from("/tmp/out"), PathBuf::from("hosts"))
        );
        assert_eq!(
            placement(false, Path::new("etc/hosts"), Path::new("/tmp/copy")),
            (PathBuf::from("/tmp"), PathBuf::from("copy"))
        );
    }
}
