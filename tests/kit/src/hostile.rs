//! Hostile archives for extraction tests: written byte by byte (a well-behaved tar writer
//! refuses to write them), a sandbox whose outside must not change, the strategies that
//! generate them, and a time-bounded fuzz loop over them. Chapter 3's `extract` and
//! chapter 4's `apply` are tested with the same kit.
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// One entry of a hand-made archive.
#[derive(Debug, Clone)]
pub enum E {
    /// A regular file: name, content, mode.
    File(String, &'static str, u32),
    /// A directory.
    Dir(String),
    /// A symlink: name, target.
    Symlink(String, String),
    /// A hard link: name, target.
    Hard(String, String),
    /// A character device (1:3).
    Char(String),
}

fn raw(field: &mut [u8], value: &str) {
    let b = value.as_bytes();
    assert!(
        b.len() < field.len(),
        "name too long for the test archive: {value}"
    );
    field[..b.len()].copy_from_slice(b);
    field[b.len()..].fill(0);
}

/// Writes names and link names into the header as they are, unchecked.
pub fn archive(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        let (name, data): (&str, &[u8]) = match e {
            E::File(n, d, mode) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                (n, d.as_bytes())
            }
            E::Dir(n) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                (n, b"")
            }
            E::Symlink(n, t) | E::Hard(n, t) => {
                h.set_entry_type(if matches!(e, E::Symlink(..)) {
                    tar::EntryType::Symlink
                } else {
                    tar::EntryType::Link
                });
                h.set_mode(0o777);
                raw(&mut h.as_old_mut().linkname, t);
                (n, b"")
            }
            E::Char(n) => {
                h.set_entry_type(tar::EntryType::Char);
                h.set_mode(0o666);
                h.set_device_major(1).unwrap();
                h.set_device_minor(3).unwrap();
                (n, b"")
            }
        };
        raw(&mut h.as_old_mut().name, name);
        h.set_size(data.len() as u64);
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap()
}

/// A sandbox: `target/` to extract into and `outside/` with a victim file, both under one
/// temp dir, so an escape is visible in `outside/` (and in the sandbox itself).
#[derive(Debug)]
pub struct Sandbox {
    dir: tempfile::TempDir,
}

impl Default for Sandbox {
    fn default() -> Self {
        Sandbox::new()
    }
}

impl Sandbox {
    /// A fresh sandbox.
    pub fn new() -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("target")).unwrap();
        fs::create_dir(dir.path().join("outside")).unwrap();
        fs::write(dir.path().join("outside/victim"), "original\n").unwrap();
        Sandbox { dir }
    }
    /// Where archives are extracted.
    pub fn target(&self) -> PathBuf {
        self.dir.path().join("target")
    }
    /// Holds `victim`, which must never change.
    pub fn outside(&self) -> PathBuf {
        self.dir.path().join("outside")
    }
    /// Everything in the sandbox except `target/`: paths, kinds, contents, link counts.
    pub fn world(&self) -> BTreeMap<PathBuf, String> {
        let mut out = BTreeMap::new();
        walk(self.dir.path(), self.dir.path(), &mut out);
        out
    }
}

fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, String>) {
    for e in fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        let rel = p.strip_prefix(base).unwrap().to_path_buf();
        if rel == Path::new("target") {
            continue;
        }
        let md = fs::symlink_metadata(&p).unwrap();
        let desc = if md.is_dir() {
            walk(base, &p, out);
            "dir".to_string()
        } else if md.file_type().is_symlink() {
            format!("link {}", fs::read_link(&p).unwrap().display())
        } else {
            format!(
                "file nlink={} {}",
                md.nlink(),
                fs::read_to_string(&p).unwrap_or_default()
            )
        };
        out.insert(rel, desc);
    }
}

/// A path of a few parts, `..` and `.` among them.
pub fn name() -> impl Strategy<Value = String> {
    let part = prop_oneof![
        Just("a"),
        Just("b"),
        Just("c"),
        Just(".."),
        Just("."),
        Just("outside"),
        Just("victim"),
        Just(".wh.victim"),
        Just(".wh..wh..opq")
    ];
    prop::collection::vec(part, 1..4).prop_map(|v| v.join("/"))
}

/// Link targets may name the sandbox's `outside/` directory as `@OUTSIDE`, replaced by its
/// real path when the test runs.
pub fn entry() -> impl Strategy<Value = E> {
    let target = prop_oneof![
        name(),
        Just("@OUTSIDE".to_string()),
        Just("@OUTSIDE/victim".to_string()),
        Just("/".to_string()),
        Just("../../..".to_string()),
    ];
    prop_oneof![
        name().prop_map(|n| E::File(n, "pwned\n", 0o644)),
        name().prop_map(E::Dir),
        (name(), target.clone()).prop_map(|(n, t)| E::Symlink(n, t)),
        (name(), target).prop_map(|(n, t)| E::Hard(n, t)),
    ]
}

/// `@OUTSIDE` in a link target replaced by the sandbox's real `outside/` path.
pub fn with_outside(e: E, outside: &str) -> E {
    match e {
        E::Symlink(n, t) => E::Symlink(n, t.replace("@OUTSIDE", outside)),
        E::Hard(n, t) => E::Hard(n, t.replace("@OUTSIDE", outside)),
        other => other,
    }
}

/// Runs `check` on random archives of [`entry`]s (with their headers' name, link name and
/// type bytes sometimes mutated, checksum recomputed) until `secs` seconds have passed, each
/// in a fresh [`Sandbox`], and panics at the first one that changes anything outside the
/// target, with the seed that reproduces it (`FUZZ_SEED`). Returns how many were tried.
pub fn fuzz(secs: u64, check: &dyn Fn(&[u8], &Path)) -> u64 {
    let seed: [u8; 32] = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| u64::from_str_radix(&s, 16).ok())
        .map_or_else(rand_seed, |n| {
            let mut b = [0u8; 32];
            b[..8].copy_from_slice(&n.to_le_bytes());
            b
        });
    let label = format!("{:016x}", u64::from_le_bytes(seed[..8].try_into().unwrap()));
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed),
    );
    let entries = prop::collection::vec(entry(), 1..12);
    let mutations = prop::collection::vec(
        (
            0usize..16,
            prop_oneof![0usize..100, 156usize..257],
            any::<u8>(),
        ),
        0..3,
    );
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut tried = 0;
    while Instant::now() < deadline {
        let sb = Sandbox::new();
        let outside = sb.outside().display().to_string();
        let list: Vec<E> = entries
            .new_tree(&mut runner)
            .expect("a value")
            .current()
            .into_iter()
            .map(|e| with_outside(e, &outside))
            .collect();
        let mut bytes = archive(&list);
        for (block, offset, value) in mutations.new_tree(&mut runner).expect("a value").current() {
            mutate(&mut bytes, block, offset, value);
        }
        let before = sb.world();
        check(&bytes, &sb.target());
        let after = sb.world();
        assert!(
            after == before,
            "escape with FUZZ_SEED={label} after {tried} archives: {list:?}\nbefore {before:?}\nafter {after:?}"
        );
        tried += 1;
    }
    tried
}

/// Sets byte `offset` of the `block`th 512-byte block, if it is a header (its checksum
/// field holds digits), to `value`, and recomputes the checksum.
fn mutate(bytes: &mut [u8], block: usize, offset: usize, value: u8) {
    let start = block * 512;
    if start + 512 > bytes.len() || !bytes[start + 148].is_ascii_digit() {
        return;
    }
    let header = &mut bytes[start..start + 512];
    header[offset] = value;
    header[148..156].fill(b' ');
    let sum: u32 = header.iter().map(|&b| u32::from(b)).sum();
    let text = format!("{sum:06o}\0 ");
    header[148..156].copy_from_slice(text.as_bytes());
}

fn rand_seed() -> [u8; 32] {
    let mut seed = [0u8; 32];
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
        ^ u64::from(std::process::id());
    seed[..8].copy_from_slice(&nanos.to_le_bytes());
    seed
}

/// How long [`fuzz`] runs: `FUZZ_SECONDS`, else 20 s in CI and 5 s elsewhere.
pub fn fuzz_seconds() -> u64 {
    std::env::var("FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if crate::in_ci() { 20 } else { 5 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[should_panic(expected = "escape with FUZZ_SEED")]
    fn the_fuzz_loop_catches_an_extractor_that_writes_outside() {
        fuzz(1, &|_, target| {
            let victim = target.parent().unwrap().join("outside/victim");
            fs::write(victim, "changed\n").unwrap();
        });
    }

    #[test]
    fn a_mutated_header_keeps_a_valid_checksum() {
        let mut bytes = archive(&[E::Dir("a".into())]);
        mutate(&mut bytes, 0, 0, b'z');
        let header = tar::Header::from_byte_slice(&bytes[..512]);
        assert_eq!(header.cksum().unwrap(), {
            let mut h = header.clone();
            h.set_cksum();
            h.cksum().unwrap()
        });
        assert_eq!(header.path_bytes()[0], b'z');
    }
}
