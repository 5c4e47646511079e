//! What a container changed, path by path, as `docker diff` lists it: `A` added, `C`
//! changed, `D` deleted.
//!
//! The writable (upper) layer holds every change, but not what *kind* it is: a file there
//! may be new, or a copy-up of a file below. So each path of the upper layer is looked up
//! in the read-only layers beneath, the way overlayfs itself looks it up (overlayfs.rst,
//! "Directories" and "whiteouts and opaque directories"): from the top layer down, one
//! path component at a time, where
//!
//! * a whiteout (a 0/0 character device) hides the name in every layer below it,
//! * an opaque directory hides the directories of the same path below it,
//! * a non-directory hides everything below it, directories included.
//!
//! A whiteout in the upper layer is a deletion; an opaque directory in the upper layer
//! (a directory removed and made again) deletes what the layers below had in it.
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::apply::is_opaque;

/// The kind of a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// Not in the layers below.
    Added,
    /// In the layers below, and copied up (content, owner, mode or times changed).
    Changed,
    /// In the layers below, hidden now.
    Deleted,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Added => "A",
            Kind::Changed => "C",
            Kind::Deleted => "D",
        })
    }
}

/// One changed path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Change {
    /// The path in the container (`/etc/passwd`).
    pub path: PathBuf,
    /// What happened to it.
    pub kind: Kind,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind, self.path.display())
    }
}

/// The changes in `upper` over `lowers` (the read-only layers, top first), sorted by path
/// as docker sorts them.
pub fn changes(upper: &Path, lowers: &[PathBuf]) -> io::Result<Vec<Change>> {
    let mut out = Vec::new();
    walk(upper, Path::new(""), lowers, &mut out)?;
    out.sort_by(|a, b| a.path.as_os_str().cmp(b.path.as_os_str()));
    Ok(out)
}

fn walk(upper: &Path, rel: &Path, lowers: &[PathBuf], out: &mut Vec<Change>) -> io::Result<()> {
    // exercise(ch04.changes): for each entry of upper/rel, sorted: a whiteout is D; else A if no lower has it, C if one does; list an opaque dir's hidden children as D; recurse
    let dir = upper.join(rel);
    let mut names: Vec<OsString> = fs::read_dir(&dir)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<_>>()?;
    names.sort();
    for name in names {
        let rel = rel.join(&name);
        let path = upper.join(&rel);
        let md = fs::symlink_metadata(&path)?;
        let shown = Path::new("/").join(&rel);
        if is_whiteout(&md) {
            out.push(Change {
                path: shown,
                kind: Kind::Deleted,
            });
            continue;
        }
        let below = resolve(lowers, &rel);
        out.push(Change {
            path: shown.clone(),
            kind: if below.is_empty() {
                Kind::Added
            } else {
                Kind::Changed
            },
        });
        if md.is_dir() {
            if is_opaque(&path) {
                // Made again empty: what the layers below had in it is gone, unless the
                // upper layer has an entry of that name itself (walked below).
                for gone in children(lowers, &rel) {
                    if fs::symlink_metadata(path.join(&gone)).is_err() {
                        out.push(Change {
                            path: shown.join(&gone),
                            kind: Kind::Deleted,
                        });
                    }
                }
            }
            walk(upper, &rel, lowers, out)?;
        }
    }
    Ok(())
    // end exercise
}

fn is_whiteout(md: &fs::Metadata) -> bool {
    md.file_type().is_char_device() && md.rdev() == 0
}

/// The layers (top first) whose entry makes up `rel` in the merged view of `lowers`: the
/// directories merged there, or the one layer whose non-directory wins; empty if the
/// path does not exist below.
fn resolve<'a>(lowers: &'a [PathBuf], rel: &Path) -> Vec<&'a PathBuf> {
    let mut layers: Vec<&PathBuf> = lowers.iter().collect();
    let mut prefix = PathBuf::new();
    let parts: Vec<_> = rel.components().collect();
    for (i, part) in parts.iter().enumerate() {
        prefix.push(part);
        let last = i + 1 == parts.len();
        let mut next = Vec::new();
        for layer in layers {
            let Ok(md) = fs::symlink_metadata(layer.join(&prefix)) else {
                continue; // not in this layer: look further down
            };
            if is_whiteout(&md) {
                break; // deleted here: hidden in every layer below
            }
            if md.is_dir() {
                next.push(layer);
                if is_opaque(&layer.join(&prefix)) {
                    break; // the directories below do not show through
                }
            } else {
                if last {
                    next.push(layer);
                }
                break; // a file hides everything below it
            }
        }
        if next.is_empty() {
            return next;
        }
        layers = next;
    }
    layers
}

/// The names in directory `rel` of the merged view of `lowers`.
fn children(lowers: &[PathBuf], rel: &Path) -> BTreeSet<OsString> {
    let mut seen = BTreeSet::new();
    let mut hidden = BTreeSet::new();
    for layer in resolve(lowers, rel) {
        let Ok(entries) = fs::read_dir(layer.join(rel)) else {
            continue;
        };
        let mut whiteouts = Vec::new();
        for e in entries.flatten() {
            let name = e.file_name();
            if e.metadata().is_ok_and(|md| is_whiteout(&md)) {
                whiteouts.push(name);
            } else if !hidden.contains(&name) {
                seen.insert(name);
            }
        }
        // A layer's whiteouts hide the names of the layers below it, not its own.
        hidden.extend(whiteouts);
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a layer from `(path, what)`: `d` a directory, `f` a file, `w` a whiteout,
    /// `o` an opaque directory. Whiteouts and opaque directories need root (mknod(2), a
    /// `trusted.` xattr).
    fn layer(root: &Path, entries: &[(&str, char)]) -> PathBuf {
        fs::create_dir_all(root).unwrap();
        for (p, what) in entries {
            let path = root.join(p);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            match what {
                'd' => fs::create_dir_all(&path).unwrap(),
                'f' => fs::write(&path, p).unwrap(),
                'w' => nix::sys::stat::mknod(
                    &path,
                    nix::sys::stat::SFlag::S_IFCHR,
                    nix::sys::stat::Mode::empty(),
                    0,
                )
                .unwrap(),
                'o' => {
                    fs::create_dir_all(&path).unwrap();
                    xattr::set(&path, crate::apply::OPAQUE_XATTR, b"y").unwrap();
                }
                _ => unreachable!(),
            }
        }
        root.to_path_buf()
    }

    #[test]
    fn additions_changes_and_deletions_are_told_apart_through_the_layers() {
        testkit::require_root!();
        let t = tempfile::tempdir().unwrap();
        let base = layer(
            &t.path().join("base"),
            &[
                ("etc/passwd", 'f'),
                ("etc/old/a", 'f'),
                ("bin/sh", 'f'),
                ("bin/vi", 'f'),
                ("var/cache/x", 'f'),
                ("var/cache/y", 'f'),
                ("opt", 'f'),
            ],
        );
        // The middle layer deleted /etc/old/a and replaced the file /opt by a directory.
        let mid = layer(
            &t.path().join("mid"),
            &[
                ("etc/old/a", 'w'),
                ("etc/new", 'f'),
                ("opt", 'o'),
                ("opt/tool", 'f'),
            ],
        );
        let upper = layer(
            &t.path().join("upper"),
            &[
                ("etc/passwd", 'f'),    // copied up: changed
                ("etc/old/a", 'f'),     // deleted below, made again: added
                ("bin/vi", 'w'),        // deleted
                ("var/cache", 'o'),     // emptied and made again...
                ("var/cache/y", 'f'),   // ...with one name back: changed
                ("opt/tool/more", 'd'), // /opt/tool is a file below: a directory now
                ("home/me", 'd'),       // new
            ],
        );
        let lowers = [mid, base];
        let got: Vec<String> = changes(&upper, &lowers)
            .unwrap()
            .iter()
            .map(|c| c.to_string())
            .collect();
        assert_eq!(
            got,
            [
                "C /bin",
                "D /bin/vi",
                "C /etc",
                "C /etc/old",
                "A /etc/old/a",
                "C /etc/passwd",
                "A /home",
                "A /home/me",
                "C /opt",
                "C /opt/tool",
                "A /opt/tool/more",
                "C /var",
                "C /var/cache",
                "D /var/cache/x",
                "C /var/cache/y",
            ]
        );
    }

    #[test]
    fn an_opaque_upper_directory_deletes_what_the_layers_below_had_in_it() {
        testkit::require_root!();
        let t = tempfile::tempdir().unwrap();
        let base = layer(
            &t.path().join("base"),
            &[
                ("app/data/old", 'f'),
                ("app/data/kept", 'f'),
                ("app/x", 'f'),
            ],
        );
        // `rm -rf app/data; mkdir app/data; echo > app/data/kept` in the container.
        let upper = layer(
            &t.path().join("upper"),
            &[("app/data", 'o'), ("app/data/kept", 'f')],
        );
        let shown: Vec<String> = changes(&upper, &[base])
            .unwrap()
            .iter()
            .map(|c| c.to_string())
            .collect();
        assert_eq!(
            shown,
            [
                "C /app",
                "C /app/data",
                "C /app/data/kept",
                "D /app/data/old"
            ]
        );
    }

    #[test]
    fn an_opaque_lower_directory_hides_what_is_beneath_it() {
        testkit::require_root!();
        let t = tempfile::tempdir().unwrap();
        let base = layer(&t.path().join("base"), &[("d/old", 'f'), ("d/kept", 'f')]);
        let mid = layer(
            &t.path().join("mid"),
            &[("d", 'o'), ("d/kept", 'f'), ("d/gone", 'w')],
        );
        let lowers = [mid.clone(), base];
        assert_eq!(
            children(&lowers, Path::new("d")),
            BTreeSet::from([OsString::from("kept")])
        );
        assert!(resolve(&lowers, Path::new("d/old")).is_empty());
        assert_eq!(resolve(&lowers, Path::new("d/kept")), [&mid]);
    }
}
