//! The note's transcripts are true: every `console` block of notes/01-namespaces.md and of
//! its Chinese version, notes/zh/01-namespaces.md, runs, for real, and prints what the note
//! shows.
use std::path::Path;

use testkit::transcript::{Runner, assert_note};

#[test]
fn the_notes_commands_print_what_the_note_shows() {
    testkit::require_root!();
    let bin = Path::new(env!("CARGO_BIN_EXE_ch01-namespaces"))
        .parent()
        .unwrap();
    let runner = Runner::new(bin).reaping_orphans();
    assert_note(&runner, "notes/01-namespaces.md", 15);
    assert_note(&runner, "notes/zh/01-namespaces.md", 15);
}
