//! The note's transcripts are true: every `console` block of notes/06-dockerfile.md runs
//! and prints what the note shows.
use std::path::Path;

use testkit::transcript::{Runner, assert_note};

#[test]
fn the_notes_commands_print_what_the_note_shows() {
    let bin = Path::new(env!("CARGO_BIN_EXE_ch06-dockerfile"))
        .parent()
        .unwrap();
    assert_note(&Runner::new(bin), "notes/06-dockerfile.md", 11);
}
