//! The note's transcripts are true: every `console` block of notes/03-rootfs-pivot_root.md runs,
//! for real, and prints what the note says.
use std::path::Path;

#[test]
fn the_notes_commands_print_what_the_note_shows() {
    testkit::require_root!();
    let bin = Path::new(env!("CARGO_BIN_EXE_ch03-rootfs-pivot_root"))
        .parent()
        .unwrap();
    let note = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../notes/03-rootfs-pivot_root.md");
    let checked = testkit::transcript::Runner::new(bin)
        .reaping_orphans()
        .check_file(&note);
    match checked {
        Ok(n) => assert!(n >= 10, "only {n} commands checked"),
        Err(report) => panic!("{report}"),
    }
}
