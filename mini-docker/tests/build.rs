//! `mini-docker build`: real Dockerfiles through the binary, the images run to check what
//! they hold, the cache watched, failures shown to leave nothing behind.
mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Output, Stdio};

use common::Md;

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A context directory under the store's temp dir, with `files` (path, content).
fn context(md: &Md, name: &str, files: &[(&str, &str)]) -> std::path::PathBuf {
    let dir = md.path().join(name);
    for (path, content) in files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    dir
}

fn build(md: &Md, dir: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["build"];
    args.extend_from_slice(extra);
    let dir = dir.display().to_string();
    args.push(&dir);
    md.run(&args)
}

/// `docker build -`: the Dockerfile on stdin, no context.
fn build_stdin(md: &Md, dockerfile: &str, extra: &[&str]) -> Output {
    let mut child = md
        .cmd()
        .arg("build")
        .args(extra)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(dockerfile.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn built_id(o: &Output) -> String {
    out(o)
        .lines()
        .find_map(|l| l.strip_prefix("Successfully built "))
        .unwrap_or_else(|| panic!("no image built:\n{}", testkit::show(o)))
        .to_string()
}

const APP: &str = r#"FROM busybox
ARG WHO=learner
ENV GREETING="hello $WHO"
WORKDIR /app
RUN echo "$GREETING" > greeting && rm /bin/vi && id -u > uid
COPY src/ ./src/
COPY --chown=1000:1000 --chmod=600 src/hello.txt /owned
COPY <<EOF /etc/motd
Welcome, ${WHO}
EOF
RUN <<EOF
echo from a heredoc > /heredoc
EOF
ENTRYPOINT ["cat"]
CMD ["/app/greeting"]
"#;

#[test]
fn a_dockerfile_becomes_an_image_that_runs() {
    let Some(md) = Md::with_busybox() else { return };
    let dir = context(
        &md,
        "app",
        &[
            ("Dockerfile", APP),
            ("src/hello.txt", "hello from the context\n"),
            ("secret.txt", "not for the image\n"),
            (".dockerignore", "secret.txt\n"),
        ],
    );
    let o = build(&md, &dir, &["-t", "app:1"]);
    assert!(o.status.success(), "{}", testkit::show(&o));
    let text = out(&o);
    assert!(text.starts_with("Step 1/11 : FROM busybox\n"), "{text}");
    assert!(text.contains("Step 5/11 : RUN echo"), "{text}");
    assert!(text.contains(" ---> Running in "), "{text}");
    assert!(text.ends_with("Successfully tagged app:1\n"), "{text}");

    // ENTRYPOINT + CMD: `cat /app/greeting`.
    assert_eq!(md.ok(&["run", "--rm", "app:1"]), "hello learner\n");
    let o = md.run(&[
        "run",
        "--rm",
        "--entrypoint",
        "sh",
        "app:1",
        "-c",
        "pwd; cat uid src/hello.txt /etc/motd /heredoc; stat -c '%u:%g %a' /owned; \
         ls /bin/vi /app/secret.txt 2>&1 | wc -l",
    ]);
    assert_eq!(
        out(&o),
        "/app\n0\nhello from the context\nWelcome, learner\nfrom a heredoc\n1000:1000 600\n2\n",
        "{}",
        testkit::show(&o)
    );
    // The config and the history say what the steps did.
    let env = md.ok(&["image", "inspect", "-f", "{{json .Config.Env}}", "app:1"]);
    assert!(env.contains("\"GREETING=hello learner\""), "{env}");
    let history = md.ok(&["history", "--no-trunc", "app:1"]);
    assert!(
        history.contains("/bin/sh -c #(nop)  ENV GREETING=hello learner"),
        "{history}"
    );
    assert!(
        history.contains("/bin/sh -c #(nop)  CMD [\"/app/greeting\"]"),
        "{history}"
    );
}

#[test]
fn the_cache_reuses_unchanged_steps_and_rebuilds_from_the_first_change() {
    let Some(md) = Md::with_busybox() else { return };
    let dockerfile =
        "FROM busybox\nARG V=1\nRUN echo v$V > /v\nCOPY a.txt /a.txt\nRUN cat /a.txt /v > /both\n";
    let dir = context(&md, "c", &[("Dockerfile", dockerfile), ("a.txt", "one\n")]);
    let first = build(&md, &dir, &["-t", "c"]);
    assert!(first.status.success(), "{}", testkit::show(&first));
    assert_eq!(
        out(&first).matches("Using cache").count(),
        0,
        "{}",
        testkit::show(&first)
    );

    // Nothing changed: every step from the cache, nothing run, the same image.
    let again = build(&md, &dir, &["-t", "c"]);
    assert_eq!(
        out(&again).matches(" ---> Using cache").count(),
        4,
        "{}",
        out(&again)
    );
    assert!(!out(&again).contains("Running in"), "{}", out(&again));
    assert_eq!(built_id(&again), built_id(&first));

    // A COPY source changed: the steps before it come from the cache, it and those after
    // it run again.
    std::fs::write(dir.join("a.txt"), "two\n").unwrap();
    let touched = build(&md, &dir, &["-t", "c"]);
    let text = out(&touched);
    assert_eq!(text.matches(" ---> Using cache").count(), 2, "{text}");
    assert_eq!(text.matches("Running in").count(), 1, "{text}");
    assert_eq!(md.ok(&["run", "--rm", "c", "cat", "/both"]), "two\nv1\n");

    // A build argument in scope changed: rebuilt from its first use (the ARG line itself
    // still comes from the cache, as in docker).
    let arg = build(&md, &dir, &["-t", "c", "--build-arg", "V=2"]);
    let text = out(&arg);
    assert_eq!(text.matches(" ---> Using cache").count(), 1, "{text}");
    assert_eq!(text.matches("Running in").count(), 2, "{text}");
    assert_eq!(md.ok(&["run", "--rm", "c", "cat", "/both"]), "two\nv2\n");
    // The history records a RUN with the build args in scope, as the classic builder.
    let history = md.ok(&["history", "--no-trunc", "--format", "{{.CreatedBy}}", "c"]);
    let lines: Vec<&str> = history.lines().collect();
    assert_eq!(
        lines[0], "|1 V=2 /bin/sh -c cat /a.txt /v > /both",
        "{history}"
    );
    assert!(
        lines[1].starts_with("/bin/sh -c #(nop) COPY file:"),
        "{history}"
    );
    assert!(lines[1].ends_with(" in /a.txt "), "{history}");
    assert_eq!(lines[2], "|1 V=2 /bin/sh -c echo v$V > /v", "{history}");
    assert_eq!(lines[3], "/bin/sh -c #(nop)  ARG V=1", "{history}");
    // And --no-cache runs everything.
    let fresh = build(&md, &dir, &["--no-cache"]);
    assert_eq!(out(&fresh).matches("Running in").count(), 2);
}

#[test]
fn a_failing_run_stops_the_build_and_leaves_nothing_behind() {
    let Some(md) = Md::with_busybox() else { return };
    let images = md.ok(&["images", "-q"]);
    let o = build_stdin(
        &md,
        "FROM busybox\nRUN echo before && exit 3\nRUN echo never\n",
        &["-t", "broken"],
    );
    assert_eq!(o.status.code(), Some(1), "{}", testkit::show(&o));
    assert!(out(&o).contains("before\n"), "{}", testkit::show(&o));
    assert!(!out(&o).contains("never"));
    assert_eq!(
        err(&o),
        "Error: The command '/bin/sh -c echo before && exit 3' returned a non-zero code: 3\n"
    );
    assert_eq!(md.ok(&["images", "-q"]), images, "no image added");
    assert!(!md.path().join("build").exists(), "no build directory left");
    testkit::leaks::assert_no_mounts_under(md.path());
}

#[test]
fn stages_copy_from_each_other_onto_scratch_and_target_stops_early() {
    let Some(md) = Md::with_busybox() else { return };
    let dockerfile = "\
FROM busybox AS build
RUN mkdir /out && echo built > /out/artifact
FROM busybox AS unused
RUN echo this stage is not needed > /never
FROM scratch
COPY --from=build /out/artifact /artifact
COPY --from=build /bin/busybox /bin/sh
CMD [\"/bin/sh\", \"-c\", \"cat /artifact; ls /\"]
";
    let o = build_stdin(&md, dockerfile, &["-t", "final"]);
    assert!(o.status.success(), "{}", testkit::show(&o));
    assert!(
        !out(&o).contains("not needed"),
        "the unused stage is skipped"
    );
    assert_eq!(
        md.ok(&["run", "--rm", "final"]),
        "built\nartifact\nbin\ndev\netc\nproc\nsys\n"
    );
    let o = build_stdin(&md, dockerfile, &["-t", "early", "--target", "build"]);
    assert!(o.status.success(), "{}", testkit::show(&o));
    assert!(!out(&o).contains("FROM scratch"), "{}", out(&o));
    assert_eq!(
        md.ok(&["run", "--rm", "early", "cat", "/out/artifact"]),
        "built\n"
    );
}

#[test]
fn onbuild_triggers_run_in_the_child_build_and_add_unpacks_local_archives() {
    let Some(md) = Md::with_busybox() else { return };
    let o = build_stdin(
        &md,
        "FROM busybox\nONBUILD RUN echo triggered > /triggered\n",
        &["-t", "base-with-trigger"],
    );
    assert!(o.status.success(), "{}", testkit::show(&o));
    // A tarball in the context, gzip-compressed.
    let dir = context(&md, "add", &[("payload/readme", "inside the archive\n")]);
    let status = std::process::Command::new("tar")
        .arg("-C")
        .arg(dir.join("payload"))
        .args(["-czf"])
        .arg(dir.join("payload.tar.gz"))
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
    // The same tree as bzip2 and xz tarballs.
    for (flag, name) in [("-cjf", "payload.tar.bz2"), ("-cJf", "payload.tar.xz")] {
        let status = std::process::Command::new("tar")
            .arg("-C")
            .arg(dir.join("payload"))
            .arg(flag)
            .arg(dir.join(name))
            .arg(".")
            .status()
            .unwrap();
        assert!(status.success(), "tar {flag}");
    }
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM base-with-trigger\nADD payload.tar.gz /opt/\nADD payload.tar.bz2 /bz2/\nADD payload.tar.xz /xz/\nCOPY payload.tar.gz /copied.tar.gz\n",
    )
    .unwrap();
    let o = build(&md, &dir, &["-t", "child"]);
    assert!(o.status.success(), "{}", testkit::show(&o));
    assert!(
        out(&o).contains("# Executing 1 build trigger"),
        "{}",
        out(&o)
    );
    assert_eq!(
        md.ok(&[
            "run",
            "--rm",
            "child",
            "cat",
            "/triggered",
            "/opt/readme",
            "/bz2/readme",
            "/xz/readme"
        ]),
        "triggered\ninside the archive\ninside the archive\ninside the archive\n"
    );
    // COPY does not unpack.
    let o = md.run(&["run", "--rm", "child", "ls", "/copied.tar.gz"]);
    assert_eq!(out(&o), "/copied.tar.gz\n");
}

#[test]
fn bad_input_is_named_and_adds_nothing() {
    let Some(md) = Md::with_busybox() else { return };
    let images = md.ok(&["images", "-q"]);
    let o = build_stdin(&md, "FROM busybox\nRUNN echo\n", &[]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(err(&o), "Error: Dockerfile:2: unknown instruction: RUNN\n");

    let dir = context(
        &md,
        "bad",
        &[("Dockerfile", "FROM busybox\nCOPY ../outside /x\n")],
    );
    let o = build(&md, &dir, &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err(&o).contains("COPY failed: forbidden path outside the build context: ../outside"),
        "{}",
        testkit::show(&o)
    );
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM busybox\nCOPY missing.txt /x\n",
    )
    .unwrap();
    let o = build(&md, &dir, &[]);
    assert!(
        err(&o).contains("COPY failed: file not found in build context"),
        "{}",
        testkit::show(&o)
    );
    let o = md.run(&["build", &md.path().join("nowhere").display().to_string()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err(&o).contains("unable to evaluate symlinks in Dockerfile path"),
        "{}",
        testkit::show(&o)
    );
    let o = build_stdin(&md, "FROM busybox\nRUN <<EOF\necho never closed\n", &[]);
    assert_eq!(err(&o), "Error: Dockerfile:2: unterminated heredoc\n");
    assert_eq!(md.ok(&["images", "-q"]), images, "no image added");
}

/// The name index.json gives `tag` (`docker.io/library/app:1` for `app:1`).
fn ref_name(md: &Md, tag: &str) -> String {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(md.path().join("images/index.json")).unwrap())
            .unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["annotations"]["org.opencontainers.image.ref.name"].as_str())
        .find(|n| n.ends_with(&format!("/{tag}")))
        .unwrap_or_else(|| panic!("{tag} not in index.json"))
        .to_string()
}

/// A built image is an ordinary OCI image: skopeo reads it, umoci unpacks it.
#[test]
fn skopeo_and_umoci_accept_a_built_image() {
    let Some(md) = Md::with_busybox() else { return };
    testkit::require!(
        std::path::Path::new("/usr/bin/skopeo").exists()
            && std::path::Path::new("/usr/bin/umoci").exists(),
        "skopeo and umoci"
    );
    let o = build_stdin(
        &md,
        "FROM busybox\nRUN mkdir /made && echo by RUN > /made/file && rm /bin/vi\nLABEL built.by=ch06\n",
        &["-t", "judged:1"],
    );
    assert!(o.status.success(), "{}", testkit::show(&o));
    let layout = format!(
        "{}/images:{}",
        md.path().display(),
        ref_name(&md, "judged:1")
    );
    let inspect = std::process::Command::new("skopeo")
        .args(["inspect", &format!("oci:{layout}")])
        .output()
        .unwrap();
    assert!(inspect.status.success(), "{}", testkit::show(&inspect));
    let v: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(v["Layers"].as_array().unwrap().len(), 2, "{v}");
    assert_eq!(v["Labels"]["built.by"], "ch06", "{v}");
    let bundle = md.path().join("bundle");
    let unpack = std::process::Command::new("umoci")
        .args(["unpack", "--image", &layout])
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(unpack.status.success(), "{}", testkit::show(&unpack));
    let rootfs = bundle.join("rootfs");
    assert_eq!(
        std::fs::read_to_string(rootfs.join("made/file")).unwrap(),
        "by RUN\n"
    );
    assert!(rootfs.join("bin/sh").exists());
    assert!(
        !rootfs.join("bin/vi").exists(),
        "the RUN's whiteout applied"
    );
}

/// Can a package registry be reached (Debian's, for apt-get)?
fn reachable(host: &str) -> bool {
    use std::net::ToSocketAddrs;
    let Ok(mut addrs) = (host, 80).to_socket_addrs() else {
        return false;
    };
    addrs.any(|a| {
        std::net::TcpStream::connect_timeout(&a, std::time::Duration::from_secs(5)).is_ok()
    })
}

/// The real world: a Debian base made from Debian's own packages with mmdebstrap (Docker
/// Hub is out of reach here), imported, and FROM it a Dockerfile that installs a package
/// with apt-get over the host's network, then runs the program it installed.
#[test]
fn a_debian_base_installs_a_package_with_apt_get_and_runs_it() {
    // RUN --network host reaches Debian's mirror through the host's own network; the
    // image is then run without a network, so the host's is never changed.
    let Some(md) = Md::with_busybox_on_host() else {
        return;
    };
    testkit::require!(
        std::path::Path::new("/usr/bin/mmdebstrap").exists(),
        "mmdebstrap (Debian's package)"
    );
    testkit::require!(
        reachable("deb.debian.org"),
        "Debian's package registry (deb.debian.org)"
    );
    let tar = md.path().join("bookworm.tar");
    let made = std::process::Command::new("mmdebstrap")
        .args(["--variant=minbase", "--quiet", "bookworm"])
        .arg(&tar)
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", testkit::show(&made));
    md.ok(&[
        "import",
        "--change",
        "CMD [\"bash\"]",
        &tar.display().to_string(),
        "debian:bookworm",
    ]);
    std::fs::remove_file(&tar).unwrap();
    let o = build_stdin(
        &md,
        "FROM debian:bookworm\n\
         RUN apt-get update && apt-get install -y --no-install-recommends hello \\\n\
         \x20   && rm -rf /var/lib/apt/lists/*\n\
         CMD [\"hello\"]\n",
        &["--network", "host", "-t", "hello-deb"],
    );
    assert!(o.status.success(), "{}", testkit::show(&o));
    assert!(out(&o).contains("Setting up hello"), "{}", out(&o));
    assert_eq!(
        md.ok(&["run", "--rm", "--network", "none", "hello-deb"]),
        "Hello, world!\n"
    );
}

/// `RUN --mount`: a cache directory kept from one build to the next, a read-only bind of
/// the context, a tmpfs; none of them, nor their mount points, end up in the image.
/// Two steps that change nothing make the same empty layer twice, and the image still runs.
#[test]
fn run_mounts_cache_bind_and_tmpfs_and_leave_nothing_in_the_image() {
    let Some(md) = Md::with_busybox() else { return };
    let dockerfile = "\
FROM busybox
RUN --mount=type=cache,target=/var/cache/build sh -c 'echo run >> /var/cache/build/log; wc -l < /var/cache/build/log'
RUN --mount=type=bind,source=src,target=/mnt/src cat /mnt/src/input.txt
RUN --mount=type=tmpfs,target=/scratch sh -c 'echo t > /scratch/f && grep -c \" /scratch tmpfs\" /proc/mounts'
RUN true
RUN true
";
    let dir = context(
        &md,
        "m",
        &[
            ("Dockerfile", dockerfile),
            ("src/input.txt", "from the context\n"),
        ],
    );
    let first = build(&md, &dir, &["-t", "m", "--no-cache"]);
    assert!(first.status.success(), "{}", testkit::show(&first));
    let text = out(&first);
    assert!(text.contains("\n1\n"), "the cache starts empty: {text}");
    assert!(text.contains("from the context\n"), "{text}");
    let again = build(&md, &dir, &["-t", "m", "--no-cache"]);
    assert!(
        out(&again).contains("\n2\n"),
        "the cache directory was kept: {}",
        out(&again)
    );
    let o = md.run(&[
        "run",
        "--rm",
        "m",
        "sh",
        "-c",
        "ls /var/cache/build /mnt/src /scratch 2>&1 | wc -l",
    ]);
    assert_eq!(
        out(&o),
        "3\n",
        "no mount point in the image: {}",
        testkit::show(&o)
    );
    let o = build_stdin(&md, "FROM busybox\nRUN --security=insecure true\n", &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err(&o).contains("RUN --security: not supported"),
        "{}",
        testkit::show(&o)
    );
}

/// Docker's ENTRYPOINT and CMD table, every exec/shell combination, through built images:
/// the process each one starts, as the output of `echo` shows it. An ENTRYPOINT also drops
/// the CMD the base image had.
#[test]
fn entrypoint_and_cmd_combine_as_dockers_table_says() {
    let Some(md) = Md::with_busybox() else { return };
    let table: &[(&str, &str)] = &[
        (
            "CMD [\"echo\", \"exec_cmd\", \"p1_cmd\"]",
            "exec_cmd p1_cmd\n",
        ),
        ("CMD echo exec_cmd p1_cmd", "exec_cmd p1_cmd\n"),
        (
            "ENTRYPOINT echo exec_entry p1_entry",
            "exec_entry p1_entry\n",
        ),
        (
            "ENTRYPOINT echo exec_entry p1_entry\nCMD [\"exec_cmd\", \"p1_cmd\"]",
            "exec_entry p1_entry\n",
        ),
        (
            "ENTRYPOINT echo exec_entry p1_entry\nCMD exec_cmd p1_cmd",
            "exec_entry p1_entry\n",
        ),
        (
            "ENTRYPOINT [\"echo\", \"exec_entry\", \"p1_entry\"]",
            "exec_entry p1_entry\n",
        ),
        (
            "ENTRYPOINT [\"echo\", \"exec_entry\", \"p1_entry\"]\nCMD [\"exec_cmd\", \"p1_cmd\"]",
            "exec_entry p1_entry exec_cmd p1_cmd\n",
        ),
        (
            "ENTRYPOINT [\"echo\", \"exec_entry\", \"p1_entry\"]\nCMD exec_cmd p1_cmd",
            "exec_entry p1_entry /bin/sh -c exec_cmd p1_cmd\n",
        ),
    ];
    for (n, (lines, want)) in table.iter().enumerate() {
        let tag = format!("table:{n}");
        let o = build_stdin(
            &md,
            &format!("FROM busybox\n{lines}\n"),
            &["-q", "-t", &tag],
        );
        assert!(o.status.success(), "{lines}: {}", testkit::show(&o));
        assert_eq!(md.ok(&["run", "--rm", &tag]), *want, "{lines}");
    }
}

/// The cache's layers are kept by the store (pinned) even when no image uses them, and
/// `builder prune` lets them go: the next build runs every step again.
#[test]
fn builder_prune_forgets_the_cache_and_frees_its_layers() {
    let Some(md) = Md::with_busybox() else { return };
    let dockerfile = "FROM busybox AS stage\nRUN echo intermediate > /i\nFROM busybox\nCOPY --from=stage /i /i\n";
    let first = build_stdin(&md, dockerfile, &["-t", "p"]);
    assert!(first.status.success(), "{}", testkit::show(&first));
    // Nothing names the intermediate stage's layer; GC (here, through an rmi) keeps it.
    md.ok(&["rmi", "p"]);
    let again = build_stdin(&md, dockerfile, &["-t", "p"]);
    assert!(out(&again).contains(" ---> Using cache"), "{}", out(&again));
    assert!(!out(&again).contains("Running in"), "{}", out(&again));
    let pruned = md.cmd().args(["builder", "prune", "-f"]).output().unwrap();
    assert!(
        out(&pruned).starts_with("Total reclaimed space: "),
        "{}",
        testkit::show(&pruned)
    );
    assert!(!md.path().join("build-cache").exists());
    let after = build_stdin(&md, dockerfile, &["-t", "p"]);
    assert!(!out(&after).contains("Using cache"), "{}", out(&after));
    assert!(out(&after).contains("Running in"), "{}", out(&after));
}

/// A web server on loopback, serving `dir` (Python's, which CI's machines have), killed on
/// drop.
struct WebServer {
    child: std::process::Child,
    port: u16,
}

impl WebServer {
    fn serve(dir: &Path) -> Option<WebServer> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let child = std::process::Command::new("python3")
            .args([
                "-m",
                "http.server",
                "--bind",
                "127.0.0.1",
                &port.to_string(),
            ])
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let up = testkit::wait_until(10, || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        up.then_some(WebServer { child, port })
    }
}

impl Drop for WebServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `ADD URL`: fetched, checked against `--checksum`, never unpacked.
#[test]
fn add_fetches_urls_checks_their_checksum_and_never_unpacks_them() {
    // The files are served on the host's loopback, where the build fetches them.
    let Some(md) = Md::with_busybox_on_host() else {
        return;
    };
    let site = context(&md, "site", &[("files/note.txt", "served over http\n")]);
    let status = std::process::Command::new("tar")
        .arg("-C")
        .arg(site.join("files"))
        .args(["-czf"])
        .arg(site.join("files/archive.tar.gz"))
        .arg("note.txt")
        .status()
        .unwrap();
    assert!(status.success());
    let server = WebServer::serve(&site.join("files"));
    testkit::require!(server.is_some(), "python3 -m http.server on loopback");
    let server = server.unwrap();
    let url = |f: &str| format!("http://127.0.0.1:{}/{f}", server.port);
    let sum = {
        use sha2::Digest as _;
        let bytes = std::fs::read(site.join("files/note.txt")).unwrap();
        format!("sha256:{}", hex::encode(sha2::Sha256::digest(&bytes)))
    };
    let dockerfile = format!(
        "FROM busybox\nADD --checksum={sum} {} /fetched/\nADD {} /fetched/\n",
        url("note.txt"),
        url("archive.tar.gz")
    );
    let o = build_stdin(&md, &dockerfile, &["-t", "fetched"]);
    assert!(o.status.success(), "{}", testkit::show(&o));
    assert_eq!(
        md.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "fetched",
            "sh",
            "-c",
            "cat /fetched/note.txt; stat -c %a /fetched/note.txt; ls /fetched"
        ]),
        "served over http\n600\narchive.tar.gz\nnote.txt\n"
    );
    let wrong = format!(
        "FROM busybox\nADD --checksum=sha256:{} {} /x\n",
        "0".repeat(64),
        url("note.txt")
    );
    let o = build_stdin(&md, &wrong, &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(err(&o).contains("digest mismatch"), "{}", testkit::show(&o));
}

/// COPY `--parents` keeps the sources' paths, `--exclude` leaves files out; RUN
/// `--mount=type=bind` reads another stage (`from=`), and with `rw` writes that go nowhere.
#[test]
fn copy_parents_and_exclude_and_run_binds_from_stages_and_rw() {
    let Some(md) = Md::with_busybox() else { return };
    let dockerfile = "\
FROM busybox AS build
RUN mkdir /out && echo from-stage > /out/artifact
FROM busybox
COPY --parents a/b/one.txt c/two.txt /p/
COPY --exclude=**/*.log a /e/
RUN --mount=type=bind,from=build,source=/out,target=/in cat /in/artifact
RUN --mount=type=bind,source=c,target=/w,rw sh -c 'echo scribble > /w/new && cat /w/new'
";
    let dir = context(
        &md,
        "pe",
        &[
            ("Dockerfile", dockerfile),
            ("a/b/one.txt", "1\n"),
            ("a/b/skip.log", "log\n"),
            ("c/two.txt", "2\n"),
        ],
    );
    let o = build(&md, &dir, &["-t", "pe"]);
    assert!(o.status.success(), "{}", testkit::show(&o));
    assert!(out(&o).contains("\nfrom-stage\n"), "{}", out(&o));
    assert!(out(&o).contains("\nscribble\n"), "{}", out(&o));
    assert!(!dir.join("c/new").exists(), "an rw bind writes to a copy");
    let o = md.run(&[
        "run",
        "--rm",
        "pe",
        "sh",
        "-c",
        "find /p /e /w -type f 2>/dev/null | sort",
    ]);
    assert_eq!(out(&o), "/e/b/one.txt\n/p/a/b/one.txt\n/p/c/two.txt\n");
    testkit::leaks::assert_no_mounts_under(md.path());
}

/// The judge from outside: a built image pushed to a local registry (Debian's
/// docker-registry) is pulled and run by podman. Podman runs in a mount namespace of its
/// own, with a tmpfs over /var/lib (its blob cache goes there, not on the host), its own
/// store, runc and cgroupfs (this host's hybrid cgroups), no network.
#[test]
fn a_built_image_pushed_to_a_registry_is_pulled_and_run_by_podman() {
    // The registry is on the host's loopback; this test runs no container of mini-docker's.
    let Some(md) = Md::with_busybox_on_host() else {
        return;
    };
    testkit::require!(
        testkit::registry::have("podman")
            && testkit::registry::have("runc")
            && testkit::registry::have("docker-registry"),
        "podman, runc and docker-registry"
    );
    let registry = testkit::registry::Registry::start().unwrap();
    let name = format!("{}/built:1", registry.addr);
    let o = build_stdin(
        &md,
        "FROM busybox\nRUN echo pushed and pulled > /made\nCMD [\"cat\", \"/made\"]\n",
        &["-q", "-t", &name],
    );
    assert!(o.status.success(), "{}", testkit::show(&o));
    md.ok(&["push", &name]);
    let store = md.path().join("podman");
    let script = format!(
        "mount -t tmpfs tmpfs /var/lib && mkdir -p /var/lib/containers/cache && \
         podman --root {store}/root --runroot {store}/run --storage-driver vfs \
         --cgroup-manager cgroupfs --runtime runc --events-backend file \
         run --rm --tls-verify=false --network=none \
         --ulimit nofile=20000:20000 --ulimit nproc=32768:32768 {name}",
        store = store.display()
    );
    let o = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out(&o), "pushed and pulled\n", "{}", testkit::show(&o));
    // podman's vfs store holds plain directories; its run directory may hold mounts only
    // inside the namespace, which is gone.
    testkit::leaks::assert_no_mounts_under(md.path());
}

/// Every instruction that only sets the config lands in the image's config as docker's
/// keys, and `history` marks those steps as empty layers.
#[test]
fn config_instructions_set_dockers_config_keys() {
    let Some(md) = Md::with_busybox() else { return };
    let dockerfile = "\
FROM busybox
LABEL org.example.team=workshop version=\"1 0\"
EXPOSE 80 53/udp
VOLUME [\"/data\"]
USER nobody
STOPSIGNAL SIGQUIT
SHELL [\"/bin/sh\", \"-ec\"]
HEALTHCHECK --interval=5s --timeout=2s --retries=4 CMD true
ONBUILD RUN echo later
WORKDIR rel
WORKDIR sub
ENTRYPOINT echo hi
";
    let o = build_stdin(&md, dockerfile, &["-q", "-t", "cfg"]);
    assert!(o.status.success(), "{}", testkit::show(&o));
    let c: serde_json::Value =
        serde_json::from_str(&md.ok(&["image", "inspect", "-f", "{{json .Config}}", "cfg"]))
            .unwrap();
    assert_eq!(c["Labels"]["org.example.team"], "workshop");
    assert_eq!(c["Labels"]["version"], "1 0");
    assert_eq!(
        c["ExposedPorts"],
        serde_json::json!({"80/tcp": {}, "53/udp": {}})
    );
    assert_eq!(c["Volumes"], serde_json::json!({"/data": {}}));
    assert_eq!(c["User"], "nobody");
    assert_eq!(c["StopSignal"], "SIGQUIT");
    assert_eq!(c["Shell"], serde_json::json!(["/bin/sh", "-ec"]));
    assert_eq!(
        c["Healthcheck"],
        serde_json::json!({"Test": ["CMD-SHELL", "true"], "Interval": 5_000_000_000u64,
                           "Timeout": 2_000_000_000u64, "Retries": 4})
    );
    assert_eq!(c["OnBuild"], serde_json::json!(["RUN echo later"]));
    assert_eq!(c["WorkingDir"], "/rel/sub");
    // The shell form takes the SHELL in force; ENTRYPOINT drops the base image's CMD.
    assert_eq!(
        c["Entrypoint"],
        serde_json::json!(["/bin/sh", "-ec", "echo hi"])
    );
    assert_eq!(c["Cmd"], serde_json::Value::Null);
    let history = md.ok(&["history", "--no-trunc", "cfg"]);
    assert!(
        history.contains("/bin/sh -c #(nop)  STOPSIGNAL SIGQUIT"),
        "{history}"
    );
    // docker's image inspect shape: the layers by diff ID under RootFS.
    let img: serde_json::Value =
        serde_json::from_str(&md.ok(&["image", "inspect", "cfg"])).unwrap();
    let img = &img[0];
    assert_eq!(img["Os"], "linux", "{img:#}");
    assert_eq!(img["RootFS"]["Type"], "layers");
    assert_eq!(
        img["Descriptor"]["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    let id = img["Id"].as_str().unwrap();
    let rows = md.ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.ID}}|{{.Size}}|{{.CreatedBy}}",
        "cfg",
    ]);
    let rows: Vec<&str> = rows.lines().collect();
    assert!(
        rows[0].starts_with(&format!("{id}|0B|/bin/sh -c #(nop)  ENTRYPOINT")),
        "{rows:?}"
    );
    // Config-only steps add history, never layers: the base's layers are all there is.
    let base: serde_json::Value =
        serde_json::from_str(&md.ok(&["image", "inspect", "busybox"])).unwrap();
    assert_eq!(img["RootFS"]["Layers"], base[0]["RootFS"]["Layers"]);
    assert!(rows.len() > base_history_len(&md), "{rows:?}");
    let quiet = md.ok(&["history", "-q", "cfg"]);
    assert_eq!(quiet.lines().count(), rows.len(), "{quiet}");
    assert_eq!(
        quiet.lines().next(),
        Some(&id["sha256:".len().."sha256:".len() + 12])
    );
}

/// How many history rows the base image has.
fn base_history_len(md: &Md) -> usize {
    md.ok(&["history", "-q", "busybox"]).lines().count()
}

/// RUN joins the default bridge, as docker's build containers do: it reaches a container
/// serving on it; `RUN --network=none` has no way out.
#[test]
fn run_steps_join_the_bridge_by_default() {
    let Some(md) = Md::with_busybox() else { return };
    md.ok(&[
        "run",
        "-d",
        "--name",
        "server",
        "busybox",
        "sh",
        "-c",
        "mkdir /www && echo from the bridge > /www/index.html && exec httpd -f -p 80 -h /www",
    ]);
    let ip = md.ok(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "server"]);
    let ip = ip.trim();
    let o = build_stdin(
        &md,
        &format!(
            "FROM busybox\nRUN sleep 0.3; wget -qO /fetched http://{ip}/\nRUN --network=none ip -o link | grep -c eth0 || true\n"
        ),
        &["-t", "fetched"],
    );
    assert!(o.status.success(), "{}", testkit::show(&o));
    // The second step saw no eth0: its count is 0.
    assert!(out(&o).contains("\n0\n"), "{}", out(&o));
    assert_eq!(
        md.ok(&["run", "--rm", "fetched", "cat", "/fetched"]),
        "from the bridge\n"
    );
    md.ok(&["rm", "-f", "server"]);
}
