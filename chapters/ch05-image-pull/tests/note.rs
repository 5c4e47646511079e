//! The notes' transcripts are true: every `console` block of notes/05-image-pull.md and
//! notes/05-image-pull-advanced.md, and of their Chinese versions in notes/zh/, runs
//! against the registries that `scripts/registry.sh` starts (the script the note tells
//! learners to run, so it is tested here too), and prints what the notes say.
use std::path::{Path, PathBuf};
use std::process::Command;

use testkit::registry;

/// The registries of `scripts/registry.sh`, in a directory of this test's own; stopped by
/// the script's `stop` when dropped, however the test ends.
struct Registries {
    dir: PathBuf,
    /// The `export NAME=VALUE` lines the script printed.
    env: Vec<(String, String)>,
}

/// The workspace being tested, from this crate's directory as cargo gives it to the test
/// when it runs it. Not a path compiled in: two copies of the workspace that share a
/// target directory (xtask's workshop proof builds one there) share their builds, so a
/// compiled-in path, testkit's included, may be the other copy's.
fn workspace() -> PathBuf {
    let crate_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    crate_dir.join("../..")
}

fn script() -> PathBuf {
    workspace().join("scripts/registry.sh")
}

/// The notes, each language's in the order a learner reads them (the core first, then the
/// advanced part: each starts from an empty store and leaves one), with how many commands
/// each must check at least.
const NOTES: [[(&str, usize); 2]; 2] = [
    [
        ("notes/05-image-pull.md", 40),
        ("notes/05-image-pull-advanced.md", 30),
    ],
    [
        ("notes/zh/05-image-pull.md", 40),
        ("notes/zh/05-image-pull-advanced.md", 30),
    ],
];

impl Registries {
    fn start(dir: PathBuf) -> Registries {
        // Made before the start, so that a start failing half-way is stopped too.
        let mut registries = Registries {
            dir,
            env: Vec::new(),
        };
        let out = Command::new("sh")
            .arg(script())
            .arg("start")
            .env("REGISTRY_DIR", &registries.dir)
            .output()
            .expect("run scripts/registry.sh");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "scripts/registry.sh failed ({}):\n{stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        registries.env = stdout
            .lines()
            .filter_map(|l| l.strip_prefix("export ")?.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        registries
    }

    fn get(&self, name: &str) -> &str {
        self.env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("scripts/registry.sh printed no {name}: {:?}", self.env))
    }

    /// The pids the script wrote, to check that `stop` ended them.
    fn pids(&self) -> Vec<i32> {
        std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".pid"))
            .filter_map(|e| std::fs::read_to_string(e.path()).ok()?.trim().parse().ok())
            .collect()
    }

    fn stop(&self) -> std::process::Output {
        Command::new("sh")
            .arg(script())
            .arg("stop")
            .env("REGISTRY_DIR", &self.dir)
            .output()
            .expect("run scripts/registry.sh stop")
    }
}

impl Drop for Registries {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

#[test]
fn the_notes_commands_print_what_the_notes_show() {
    testkit::require!(
        registry::tools_available()
            && testkit::rootfs::busybox_available()
            && ["python3", "curl", "jq", "ss"]
                .iter()
                .all(|p| registry::have(p)),
        "docker-registry, skopeo, umoci, htpasswd, openssl, busybox-static, python3, curl, jq, ss"
    );
    // Each language against registries of its own, as a learner's `scripts/registry.sh`
    // starts them: the advanced part pushes, and the same push into registries that have
    // seen it once says "Layer already exists" where the note shows "Mounted from busybox".
    for notes in NOTES {
        check_notes(&notes);
    }
}

/// Starts the registries, runs `notes` against them, and checks that `stop` ends them.
fn check_notes(notes: &[(&str, usize)]) {
    let work = tempfile::Builder::new()
        .prefix("note05-")
        .tempdir()
        .unwrap();
    let registries = Registries::start(work.path().join("registries"));
    let pids = registries.pids();
    assert_eq!(pids.len(), 4, "three registries and a token server");
    let bin = Path::new(env!("CARGO_BIN_EXE_ch05-image-pull"))
        .parent()
        .unwrap();
    let mut runner = testkit::transcript::Runner::new(bin);
    for (k, v) in &registries.env {
        runner = runner.env(k, v.clone());
    }
    // Not the machine's docker login: the notes' logins go to $MINI_DOCKER_CONFIG.
    let runner = runner.env(
        "DOCKER_CONFIG",
        work.path().join("docker").display().to_string(),
    );
    assert!(
        registries
            .get("MINI_DOCKER_ROOT")
            .starts_with(&*work.path().to_string_lossy())
    );
    for (note, min) in notes {
        // Absolute: joined to an absolute path, assert_note's own base (compiled into
        // testkit, see `workspace`) is dropped.
        let path = workspace().join(note);
        testkit::transcript::assert_note(&runner, &path.to_string_lossy(), *min);
    }
    // `stop` ends what `start` started, and deletes its directory.
    let stopped = registries.stop();
    assert!(stopped.status.success(), "{stopped:?}");
    assert_eq!(
        String::from_utf8_lossy(&stopped.stdout).trim(),
        "unset REGISTRY AUTH_REGISTRY TOKEN_REGISTRY TOKEN_SERVER PASSWORD MINI_DOCKER_ROOT MINI_DOCKER_CONFIG"
    );
    for pid in pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "pid {pid} outlived scripts/registry.sh stop"
        );
    }
    assert!(!registries.dir.exists());
}
