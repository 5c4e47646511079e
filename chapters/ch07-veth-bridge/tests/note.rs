//! The note's transcripts are true: every `console` block of notes/07-veth-bridge.md and of
//! its Chinese version, notes/zh/07-veth-bridge.md, runs, for real, in a network namespace
//! this test makes to stand in for the host.
use std::path::Path;

use testkit::transcript::{Runner, assert_note};

#[test]
fn the_notes_commands_print_what_the_note_shows() {
    testkit::require_root!();
    let bin = Path::new(env!("CARGO_BIN_EXE_ch07-veth-bridge"))
        .parent()
        .unwrap();
    // Each note in a host of its own (a store and a network namespace), as a learner's
    // first run: the subnets, addresses and interfaces the note shows are a fresh host's.
    for note in ["notes/07-veth-bridge.md", "notes/zh/07-veth-bridge.md"] {
        let root = tempfile::tempdir().unwrap();
        let netns = testkit::netns::Netns::new().unwrap();
        let runner = Runner::new(bin)
            .env("MINI_DOCKER_ROOT", root.path().display().to_string())
            .in_netns(netns.path());
        assert_note(&runner, note, 20);
        // The last container took the bridge and the table with it.
        // (The veth pairs go with their namespaces, in the background.)
        assert!(
            testkit::wait_until(10, || !netns.links().contains("md")),
            "{note}: {}",
            netns.links()
        );
    }
}
