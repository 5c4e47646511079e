//! The note's transcripts are true: every `console` block of notes/08-mini-docker.md, and of
//! its Chinese version notes/zh/08-mini-docker.md, runs against a store holding the two
//! images the demo makes (busybox, hello-world), in a network namespace of the test's own
//! (the bridge, and the note's registry on 127.0.0.1:5000, live and die there).
mod common;

use std::path::Path;
use std::process::Command;

use common::Md;

#[test]
fn the_notes_commands_print_what_the_note_shows() {
    // The note starts a registry of its own (docker-registry, asked with curl) for pull
    // and push, on port 5000 of the test's network namespace, where nothing else listens.
    testkit::require!(
        testkit::registry::have("docker-registry") && testkit::registry::have("curl"),
        "docker-registry and curl"
    );
    // Each version starts from the store the note starts from: the English one leaves images
    // behind (my/image:v1, my/flat:v1) that the first `images` of the next would list.
    for note in ["notes/08-mini-docker.md", "notes/zh/08-mini-docker.md"] {
        check_note(note);
    }
}

/// Checks `note` against a store of its own, made as the demo makes it, in a network
/// namespace of its own.
fn check_note(note: &str) {
    let Some(md) = Md::with_busybox() else { return };
    // hello-world: FROM scratch plus one static binary, as scripts/lib.sh makes it.
    let dir = md.path().join("hello-image");
    std::fs::create_dir(&dir).unwrap();
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("hello/src/main.rs");
    let built = Command::new("rustc")
        .args([
            "-O",
            "-C",
            "target-feature=+crt-static",
            "-C",
            "strip=symbols",
            "-o",
        ])
        .arg(dir.join("hello"))
        .arg(&source)
        .status()
        .expect("rustc");
    assert!(built.success());
    let tar = md.path().join("hello.tar");
    assert!(
        Command::new("tar")
            .arg("-C")
            .arg(&dir)
            .arg("-cf")
            .arg(&tar)
            .arg("hello")
            .status()
            .unwrap()
            .success()
    );
    md.ok(&[
        "import",
        "--change",
        r#"CMD ["/hello"]"#,
        &tar.display().to_string(),
        "hello-world",
    ]);

    let bin = Path::new(common::BIN).parent().unwrap();
    // Not reaping orphans between blocks: detached containers (their monitors) live on
    // from one block to the next, as in a learner's shell. Md removes them at the end.
    let runner = testkit::transcript::Runner::new(bin)
        .env("MINI_DOCKER_ROOT", md.root_text())
        .in_netns(md.netns.as_ref().expect("root has a test netns").path());
    testkit::transcript::assert_note(&runner, note, 100);
}

#[test]
fn the_security_notes_probes_print_what_the_note_shows() {
    let Some(md) = Md::with_busybox() else { return };
    let bin = Path::new(common::BIN).parent().unwrap();
    let runner = testkit::transcript::Runner::new(bin)
        .env("MINI_DOCKER_ROOT", md.root_text())
        .in_netns(md.netns.as_ref().expect("root has a test netns").path());
    testkit::transcript::assert_note(&runner, "notes/09-security.md", 20);
    testkit::transcript::assert_note(&runner, "notes/zh/09-security.md", 20);
}
