//! The note's transcripts are true: every `console` block of notes/05-image-pull.md runs
//! against real registries started here, and prints what the note says.
use std::path::Path;

use testkit::registry::{self, Auth, Registry};

#[test]
fn the_notes_commands_print_what_the_note_shows() {
    testkit::require!(
        registry::tools_available() && testkit::rootfs::busybox_available(),
        "docker-registry, skopeo, umoci, htpasswd, openssl, busybox-static"
    );
    let plain = Registry::start().expect("start docker-registry");
    let password = "note-s3cret";
    let auth = Registry::start_with(Auth::Basic {
        user: "tester".into(),
        password: password.into(),
    })
    .expect("start docker-registry with htpasswd");
    let layout = registry::busybox_layout("latest").unwrap();
    registry::skopeo_copy(
        &layout.skopeo_ref("latest"),
        &format!("docker://{}/busybox:latest", plain.addr),
        &[],
    )
    .unwrap();
    // The same image as Docker schema 2, for the section on converting manifests.
    registry::skopeo_copy(
        &layout.skopeo_ref("latest"),
        &format!("docker://{}/busybox:v2s2", plain.addr),
        &["--format", "v2s2"],
    )
    .unwrap();
    registry::skopeo_copy(
        &layout.skopeo_ref("latest"),
        &format!("docker://{}/busybox:latest", auth.addr),
        &["--dest-creds", &format!("tester:{password}")],
    )
    .unwrap();
    let work = tempfile::Builder::new().prefix("store-").tempdir().unwrap();
    let bin = Path::new(env!("CARGO_BIN_EXE_ch05-image-pull"))
        .parent()
        .unwrap();
    let note = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../notes/05-image-pull.md");
    let checked = testkit::transcript::Runner::new(bin)
        .env("REGISTRY", plain.addr.clone())
        .env("AUTH_REGISTRY", auth.addr.clone())
        .env("PASSWORD", password)
        .env(
            "MINI_DOCKER_ROOT",
            work.path().join("root").display().to_string(),
        )
        .env(
            "MINI_DOCKER_CONFIG",
            work.path().join("config").display().to_string(),
        )
        .env(
            "DOCKER_CONFIG",
            work.path().join("docker").display().to_string(),
        )
        .check_file(&note);
    match checked {
        Ok(n) => assert!(n >= 26, "only {n} commands checked"),
        Err(report) => panic!("{report}"),
    }
}
