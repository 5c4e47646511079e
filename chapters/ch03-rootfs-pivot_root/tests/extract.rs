//! Hostile archives: built here byte by byte (a well-behaved tar writer refuses to write
//! them), extracted, and the world outside the target checked to be untouched.
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use ch03_rootfs_pivot_root::extract::{ExtractError, ExtractOptions, extract};
use proptest::prelude::*;
use testkit::hostile::{E, Sandbox, archive, entry, with_outside};

/// Chapter 3's extraction into the sandbox.
trait Extract {
    /// Extracts hand-made `entries` into the target.
    fn extract(&self, entries: &[E], options: ExtractOptions) -> Result<(), ExtractError>;
}

impl Extract for Sandbox {
    fn extract(&self, entries: &[E], options: ExtractOptions) -> Result<(), ExtractError> {
        extract(&archive(entries)[..], &self.target(), options).map(drop)
    }
}

fn s(x: &str) -> String {
    x.to_string()
}

#[test]
fn a_dotdot_name_is_refused_and_nothing_is_written_outside() {
    let sb = Sandbox::new();
    let before = sb.world();
    let err = sb
        .extract(
            &[E::File(s("../escaped"), "x", 0o644)],
            ExtractOptions::default(),
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"entry "../escaped": a `..` component would leave the target"#
    );
    let err = sb
        .extract(
            &[E::Hard(s("h"), s("../outside/victim"))],
            ExtractOptions::default(),
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"entry "h": hard link target: a `..` component would leave the target"#
    );
    assert_eq!(sb.world(), before);
}

#[test]
fn absolute_names_land_inside_the_target() {
    let sb = Sandbox::new();
    sb.extract(
        &[E::File(s("/etc/hostname"), "box\n", 0o644)],
        ExtractOptions::default(),
    )
    .unwrap();
    assert_eq!(
        fs::read_to_string(sb.target().join("etc/hostname")).unwrap(),
        "box\n"
    );
}

#[test]
fn a_file_written_through_an_absolute_symlink_stays_inside() {
    let sb = Sandbox::new();
    let before = sb.world();
    let outside = sb.outside().display().to_string();
    sb.extract(
        &[
            E::Symlink(s("evil"), outside.clone()),
            E::File(s("evil/victim"), "pwned\n", 0o644),
        ],
        ExtractOptions::default(),
    )
    .unwrap();
    assert_eq!(sb.world(), before, "the host path was not touched");
    // It went where the symlink points *inside* the target, as it will inside a container.
    let inside = sb
        .target()
        .join(outside.trim_start_matches('/'))
        .join("victim");
    assert_eq!(fs::read_to_string(inside).unwrap(), "pwned\n");
}

#[test]
fn a_chain_of_relative_symlinks_climbing_up_stops_at_the_target() {
    let sb = Sandbox::new();
    let before = sb.world();
    let entries = [
        E::Symlink(s("a"), s("../../../../..")),
        E::Symlink(s("b"), s("a/../a/outside")),
        E::File(s("b/victim"), "pwned\n", 0o644),
        E::File(s("a/outside/victim2"), "pwned\n", 0o644),
    ];
    sb.extract(&entries, ExtractOptions::default()).unwrap();
    assert_eq!(sb.world(), before);
    assert_eq!(
        fs::read_to_string(sb.target().join("outside/victim")).unwrap(),
        "pwned\n"
    );
}

#[test]
fn a_symlink_in_the_way_is_replaced_not_written_through() {
    let sb = Sandbox::new();
    let before = sb.world();
    let victim = sb.outside().join("victim").display().to_string();
    sb.extract(
        &[E::Symlink(s("f"), victim), E::File(s("f"), "mine\n", 0o644)],
        ExtractOptions::default(),
    )
    .unwrap();
    assert_eq!(sb.world(), before);
    let f = sb.target().join("f");
    assert!(fs::symlink_metadata(&f).unwrap().is_file());
    assert_eq!(fs::read_to_string(f).unwrap(), "mine\n");
}

#[test]
fn hard_links_cannot_reach_outside_files() {
    let sb = Sandbox::new();
    let before = sb.world();
    let outside = sb.outside().display().to_string();
    // Absolute: re-rooted in the target, where there is no such file.
    let err = sb
        .extract(
            &[E::Hard(s("h"), format!("{outside}/victim"))],
            ExtractOptions::default(),
        )
        .unwrap_err();
    assert!(err.to_string().contains("ENOENT"), "{err}");
    // Through a symlinked directory: resolved inside the target too.
    let err = sb
        .extract(
            &[E::Symlink(s("d"), outside), E::Hard(s("h"), s("d/victim"))],
            ExtractOptions::default(),
        )
        .unwrap_err();
    assert!(err.to_string().contains("ENOENT"), "{err}");
    assert_eq!(sb.world(), before, "the victim's link count is still 1");
    // A hard link inside the archive works.
    sb.extract(
        &[E::File(s("a"), "same\n", 0o644), E::Hard(s("b"), s("a"))],
        ExtractOptions::default(),
    )
    .unwrap();
    assert_eq!(
        fs::metadata(sb.target().join("b")).unwrap().ino(),
        fs::metadata(sb.target().join("a")).unwrap().ino()
    );
}

#[test]
fn device_nodes_only_when_asked() {
    testkit::require_root!();
    let sb = Sandbox::new();
    sb.extract(&[E::Char(s("dev/null"))], ExtractOptions::default())
        .unwrap();
    assert!(!sb.target().join("dev/null").exists(), "skipped by default");
    sb.extract(&[E::Char(s("dev/null"))], ExtractOptions { devices: true })
        .unwrap();
    let md = fs::symlink_metadata(sb.target().join("dev/null")).unwrap();
    assert_eq!(md.mode() & 0o170000, 0o020000, "a character device");
    assert_eq!(md.rdev(), nix::sys::stat::makedev(1, 3));
}

#[test]
fn modes_owners_and_setuid_are_kept_exactly() {
    testkit::require_root!();
    let sb = Sandbox::new();
    let mut h = tar::Header::new_gnu();
    h.set_mtime(0);
    h.set_path("bin/su").unwrap();
    h.set_mode(0o4755);
    h.set_uid(0);
    h.set_gid(0);
    h.set_size(2);
    h.set_cksum();
    let mut b = tar::Builder::new(Vec::new());
    b.append(&h, &b"#!"[..]).unwrap();
    let mut h2 = tar::Header::new_gnu();
    h2.set_path("home/user/file").unwrap();
    h2.set_mode(0o600);
    h2.set_uid(1000);
    h2.set_gid(1000);
    h2.set_size(0);
    h2.set_mtime(1_600_000_000);
    h2.set_cksum();
    b.append(&h2, &b""[..]).unwrap();
    extract(
        &b.into_inner().unwrap()[..],
        &sb.target(),
        ExtractOptions::default(),
    )
    .unwrap();
    let su = fs::metadata(sb.target().join("bin/su")).unwrap();
    assert_eq!(
        su.permissions().mode() & 0o7777,
        0o4755,
        "setuid survived the chown"
    );
    let f = fs::metadata(sb.target().join("home/user/file")).unwrap();
    assert_eq!(
        (f.uid(), f.gid(), f.mode() & 0o7777, f.mtime()),
        (1000, 1000, 0o600, 1_600_000_000)
    );
}

#[test]
fn overlay_xattrs_in_an_archive_are_ignored_and_others_kept() {
    testkit::require_root!();
    let sb = Sandbox::new();
    let mut b = tar::Builder::new(Vec::new());
    b.append_pax_extensions([
        ("SCHILY.xattr.trusted.overlay.opaque", &b"y"[..]),
        ("SCHILY.xattr.user.note", &b"hello"[..]),
    ])
    .unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_path("dir/").unwrap();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o755);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(0);
    h.set_cksum();
    b.append(&h, &b""[..]).unwrap();
    extract(
        &b.into_inner().unwrap()[..],
        &sb.target(),
        ExtractOptions::default(),
    )
    .unwrap();
    let dir = sb.target().join("dir");
    assert_eq!(xattr::get(&dir, "trusted.overlay.opaque").unwrap(), None);
    assert_eq!(
        xattr::get(&dir, "user.note").unwrap(),
        Some(b"hello".to_vec())
    );
}

#[test]
fn a_truncated_archive_is_an_error() {
    let sb = Sandbox::new();
    let mut bytes = archive(&[E::File(s("big"), "0123456789", 0o644)]);
    bytes.truncate(512 + 5);
    let err = extract(&bytes[..], &sb.target(), ExtractOptions::default()).unwrap_err();
    assert!(matches!(err, ExtractError::Archive(_)), "{err}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Whatever the archive, and whether or not it extracts, nothing outside the target
    /// changes.
    #[test]
    fn no_archive_writes_outside_the_target(entries in prop::collection::vec(entry(), 1..8)) {
        let sb = Sandbox::new();
        let outside = sb.outside().display().to_string();
        let entries: Vec<E> = entries.into_iter().map(|e| with_outside(e, &outside)).collect();
        let before = sb.world();
        let _ = sb.extract(&entries, ExtractOptions::default());
        prop_assert_eq!(sb.world(), before, "entries: {:?}", entries);
    }
}
