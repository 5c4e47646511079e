//! The note's transcripts are true: every `console` block of notes/03-rootfs-pivot_root.md and of
//! its Chinese version, notes/zh/03-rootfs-pivot_root.md, runs, for real, and prints what the note
//! shows.
use std::path::Path;

use testkit::transcript::{Runner, assert_note};

#[test]
fn the_notes_commands_print_what_the_note_shows() {
    testkit::require_root!();
    let bin = Path::new(env!("CARGO_BIN_EXE_ch03-rootfs-pivot_root"))
        .parent()
        .unwrap();
    let runner = Runner::new(bin).reaping_orphans();
    assert_note(&runner, "notes/03-rootfs-pivot_root.md", 10);
    assert_note(&runner, "notes/zh/03-rootfs-pivot_root.md", 10);
}
