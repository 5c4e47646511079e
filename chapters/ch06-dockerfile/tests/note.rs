//! The note's transcripts are true: every `console` block of notes/06-dockerfile.md and of
//! its Chinese version, notes/zh/06-dockerfile.md, runs and prints what the note shows, the
//! builds for real (as root, into a store of the test's own).
use std::path::Path;

use testkit::transcript::{Runner, assert_note};

#[test]
fn the_notes_commands_print_what_the_note_shows() {
    testkit::require_root!();
    // The by-hand box reads its hand-made OCI layout with skopeo and umoci.
    testkit::require!(
        testkit::rootfs::busybox_available()
            && testkit::registry::have("skopeo")
            && testkit::registry::have("umoci"),
        "busybox-static (/usr/bin/busybox), skopeo, umoci"
    );
    let bin = Path::new(env!("CARGO_BIN_EXE_ch06-dockerfile"))
        .parent()
        .unwrap();
    // Each note into an empty store of its own: in a store the other note filled, its first
    // builds would print "Using cache" where the note shows them running.
    for note in ["notes/06-dockerfile.md", "notes/zh/06-dockerfile.md"] {
        let store = tempfile::Builder::new()
            .prefix("ch06-note-")
            .tempdir()
            .unwrap();
        let runner = Runner::new(bin).env("MINI_DOCKER_ROOT", store.path().display().to_string());
        assert_note(&runner, note, 25);
        testkit::leaks::assert_no_mounts_under(store.path());
    }
}
