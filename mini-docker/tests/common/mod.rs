//! What every mini-docker test needs: a store of its own with a busybox image in it, the
//! binary, and a check on the way out that nothing was left behind.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_mini-docker");

/// A store root for one test, with `busybox` imported from the host's busybox-static.
pub struct Md {
    pub root: tempfile::TempDir,
    _rootfs: Option<testkit::rootfs::Rootfs>,
    /// The network namespace standing in for the host: every command runs in it, so the
    /// default bridge, its firewall table and the containers' veths never touch the real
    /// host (None: the host's own, for tests that reach a registry on its loopback and
    /// run containers with `--network none`).
    pub netns: Option<testkit::netns::Netns>,
}

impl Md {
    /// An empty store.
    pub fn empty() -> Md {
        Md::empty_in(&std::env::temp_dir())
    }

    /// An empty store in a directory of `parent` (a small file system a test mounted).
    pub fn empty_in(parent: &Path) -> Md {
        let root = tempfile::Builder::new()
            .prefix("mdk-")
            .tempdir_in(parent)
            .expect("a store root");
        Md {
            root,
            _rootfs: None,
            netns: testkit::is_root()
                .then(|| testkit::netns::Netns::new().expect("a network namespace for the test")),
        }
    }

    /// A store with the `busybox` image whose commands run in the host's own network
    /// namespace (to reach a registry on its loopback).
    pub fn with_busybox_on_host() -> Option<Md> {
        let mut md = Md::with_busybox()?;
        md.netns = None;
        Some(md)
    }

    /// A store with the `busybox` image, or None (after the gate's SKIPPED line) without
    /// root or busybox-static.
    pub fn with_busybox() -> Option<Md> {
        Md::with_busybox_in(&std::env::temp_dir())
    }

    /// [`Md::with_busybox`], the store in a directory of `parent`.
    pub fn with_busybox_in(parent: &Path) -> Option<Md> {
        if !testkit::gate(&testkit::test_name(), testkit::is_root(), "root") {
            return None;
        }
        let rootfs = testkit::rootfs::require_busybox()?;
        let mut md = Md::empty_in(parent);
        let tar = md.root.path().join("busybox.tar");
        testkit::rootfs::tar_dir(rootfs.path(), &tar).expect("tar the rootfs");
        md.ok(&[
            "import",
            "--change",
            r#"CMD ["sh"]"#,
            &tar.display().to_string(),
            "busybox",
        ]);
        std::fs::remove_file(&tar).expect("remove the tarball");
        md._rootfs = Some(rootfs);
        Some(md)
    }

    pub fn path(&self) -> &Path {
        self.root.path()
    }

    pub fn cmd(&self) -> Command {
        let mut c = match &self.netns {
            Some(ns) => ns.command(BIN),
            None => Command::new(BIN),
        };
        c.arg("--root")
            .arg(self.root.path())
            .env_remove("MINI_DOCKER_ROOT");
        c
    }

    /// Runs mini-docker with `args`, stdin closed.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run mini-docker")
    }

    /// Runs and insists on success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "mini-docker {args:?}:\n{}",
            testkit::show(&out)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Every container's full id.
    pub fn ids(&self) -> Vec<String> {
        self.ok(&["ps", "-aq", "--no-trunc"])
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// The state of a container, from inspect (null if there is no such container yet).
    pub fn state(&self, name: &str) -> serde_json::Value {
        let out = self.run(&["inspect", "--type", "container", name]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        v[0]["State"].clone()
    }

    /// Waits until `name`'s status is `status`.
    pub fn wait_status(&self, name: &str, status: &str) -> bool {
        testkit::wait_until(10, || self.state(name)["Status"] == status)
    }

    /// Removes every container (they must not be running) and checks nothing is left.
    pub fn remove_all(&self) {
        let ids = self.ids();
        if ids.is_empty() {
            return;
        }
        let mut rm = vec!["rm"];
        rm.extend(ids.iter().map(String::as_str));
        self.ok(&rm);
        self.assert_clean(&ids);
    }

    /// The store root as text, for redaction.
    pub fn root_text(&self) -> String {
        self.root.path().display().to_string()
    }

    /// Asserts nothing of `ids` is left in the kernel: no cgroup, no monitor, no process
    /// running from this store, no mount under it.
    pub fn assert_clean(&self, ids: &[String]) {
        for id in ids {
            let left = testkit::leaks::cgroups_named(id);
            assert!(left.is_empty(), "cgroups left for {id}: {left:?}");
        }
        let root = self.root_text();
        assert!(
            testkit::wait_until(10, || testkit::leaks::processes_with(&root).is_empty()),
            "processes left: {:?}",
            testkit::leaks::processes_with(&root)
        );
        testkit::leaks::assert_no_mounts_under(self.root.path());
        // Every address given back: no veth of a container is left.
        if let Some(ns) = &self.netns {
            let links = ns.links();
            assert!(
                testkit::wait_until(10, || !ns.links().contains(" mdv")),
                "veths left: {links}"
            );
        }
    }
}

impl Drop for Md {
    /// Removes every container the test made, then checks nothing is left.
    fn drop(&mut self) {
        let ids: Vec<String> = self
            .run(&["ps", "-aq", "--no-trunc"])
            .stdout
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect();
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f", "-v"];
            args.extend(ids.iter().map(String::as_str));
            let _ = self.run(&args);
        }
        if !std::thread::panicking() {
            self.assert_clean(&ids);
        }
    }
}

/// A path to a file of the test's own.
pub fn file(md: &Md, name: &str) -> PathBuf {
    md.path().join(name)
}

/// Sleeps a little (for "Up 2 seconds" to differ from "Created", and the like).
pub fn pause(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

/// A client process the test kills (and reaps) when it ends, even by a failed assertion:
/// a stuck client must not outlive its test.
pub struct KillOnDrop(pub std::process::Child);

impl std::ops::Deref for KillOnDrop {
    type Target = std::process::Child;
    fn deref(&self) -> &std::process::Child {
        &self.0
    }
}

impl std::ops::DerefMut for KillOnDrop {
    fn deref_mut(&mut self) -> &mut std::process::Child {
        &mut self.0
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        // After a wait std sends nothing: the pid may belong to someone else by then.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
