//! The note's transcripts are true: every `console` block of notes/04-unionfs-layers.md and of
//! its Chinese version, notes/zh/04-unionfs-layers.md, runs, for real, and prints what the note
//! shows.
use std::path::Path;

use testkit::transcript::{Runner, assert_note};

#[test]
fn the_notes_commands_print_what_the_note_shows() {
    testkit::require_root!();
    let bin = Path::new(env!("CARGO_BIN_EXE_ch04-unionfs-layers"))
        .parent()
        .unwrap();
    let runner = Runner::new(bin).reaping_orphans();
    for note in [
        "notes/04-unionfs-layers.md",
        "notes/zh/04-unionfs-layers.md",
    ] {
        assert_note(&runner, note, 15);
    }
}
