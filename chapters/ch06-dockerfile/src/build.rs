//! `build`: a Dockerfile into an image, one step per instruction, as docker's classic
//! builder prints it.
//!
//! The story, for each stage the target needs (`FROM` to the next `FROM`):
//!
//! 1. **The base**: an image of the store (chapter 5; pulled when missing), an earlier
//!    stage, or nothing (`scratch`). Its config and layers are the starting state.
//! 2. **Each instruction**, its words expanded first (the stage's `ENV`s, then its
//!    `ARG`s; see [`crate::shell`]):
//!    * `RUN` starts a real container on the layers so far ([`crate::container`]) and
//!      turns what it wrote into a layer with chapter 4's `diff`;
//!    * `COPY` and `ADD` copy from the context (or another stage) into an empty directory
//!      that becomes a layer the same way;
//!    * every other instruction only changes the image's config (an "empty layer" in the
//!      history).
//! 3. **The cache**: a step whose parent, instruction and inputs (build arguments in scope,
//!    the copied files' content and metadata) were seen before reuses that layer
//!    (` ---> Using cache`), so only what changed is rebuilt, from the first change on.
//!
//! The target stage's config and layers go into the store as an OCI image (chapter 5's
//! `put_image`), named by each `-t`.
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use ch01_namespaces::process::Exit;
use ch04_unionfs_layers::sys::LayerSys;
use ch05_image_pull::manifest::Descriptor;
use ch05_image_pull::store::NewLayer;
use ch05_image_pull::{Digest, Image, Layer, Reference, Store};
use serde_json::{Value, json};

use crate::container::{self, RunSpec};
use crate::context::{Context, clean};
use crate::parser::{Arg, Dockerfile, Instruction};
use crate::shell::Lexer;
use crate::{Error, instructions, parse};

/// The store pin that keeps the build cache's layers.
pub const CACHE_PIN: &str = "build-cache";

/// `builder prune`: forgets every cached step (and `RUN --mount=type=cache` directory),
/// unpins their layers and lets the store's GC take what no image uses. Returns the bytes
/// freed.
pub fn prune(store: &Store) -> Result<u64, Error> {
    let root = store.root();
    let mut freed = 0;
    let cache = root.join("build-cache");
    for e in std::fs::read_dir(&cache).into_iter().flatten().flatten() {
        let entry: Value = std::fs::read(e.path())
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        if let Some(m) = entry["manifest"]
            .as_str()
            .and_then(|m| Digest::parse(m).ok())
        {
            store.unpin(CACHE_PIN, &m).map_err(store_err)?;
        }
        freed += e.metadata().map_or(0, |m| m.len());
        std::fs::remove_file(e.path())
            .map_err(|err| Error::Io(e.path().display().to_string(), err))?;
    }
    let _ = std::fs::remove_dir(&cache);
    let mounts = root.join("build-cache-mounts");
    if mounts.exists() {
        freed += ch05_image_pull::store::dir_size(&mounts).unwrap_or(0);
        ch05_image_pull::store::remove_tree(&mounts).map_err(store_err)?;
    }
    let collected = store.gc().map_err(store_err)?;
    Ok(freed + collected.bytes)
}

/// The build cache as `system df` counts it: the cached steps, and the bytes of their
/// records and of the `RUN --mount=type=cache` directories (what [`prune`] removes itself;
/// the layers are the store's, counted with the images).
pub fn cache_usage(store: &Store) -> (usize, u64) {
    let root = store.root();
    let count = std::fs::read_dir(root.join("build-cache")).map_or(0, |d| d.count());
    let size = ch05_image_pull::store::dir_size(&root.join("build-cache")).unwrap_or(0)
        + ch05_image_pull::store::dir_size(&root.join("build-cache-mounts")).unwrap_or(0);
    (count, size)
}

/// An uncompressed OCI layer: what `RUN` and `COPY` make.
pub const LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";

/// How to build.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// The context directory; `None` for a Dockerfile on stdin without context.
    pub context: Option<PathBuf>,
    /// The Dockerfile's name (for messages) and text.
    pub dockerfile: (String, String),
    /// `-t NAME[:TAG]`.
    pub tags: Vec<String>,
    /// `--build-arg KEY[=VALUE]` (without a value: the environment's).
    pub build_args: Vec<(String, String)>,
    /// `--target STAGE`.
    pub target: Option<String>,
    /// `--no-cache`.
    pub no_cache: bool,
    /// `--network host` for RUN.
    pub host_network: bool,
    /// `--network none` for RUN: no network even where `network` is given.
    pub no_network: bool,
    /// The network `--network default` means (mini-docker's bridge); none: no network.
    pub network: Option<std::sync::Arc<dyn crate::container::StepNetwork>>,
    /// `-q`: only the image ID.
    pub quiet: bool,
    /// `--label KEY=VALUE` on the result.
    pub labels: Vec<(String, String)>,
}

/// What a build made.
#[derive(Debug, Clone)]
pub struct Built {
    /// The image ID (its config's digest).
    pub id: Digest,
    /// Steps taken from the cache, and steps run.
    pub cached: usize,
    /// Steps run (not from the cache).
    pub ran: usize,
}

/// One stage: `FROM base [AS name]` and what follows.
#[derive(Debug, Clone)]
struct Stage<'a> {
    name: Option<String>,
    from: &'a Instruction,
    body: Vec<(usize, &'a Instruction)>,
}

/// The image as the build has made it so far.
#[derive(Debug, Clone)]
struct State {
    /// The whole OCI config (`config`, `rootfs`, `history`...).
    config: Value,
    layers: Vec<NewLayer>,
    dirs: Vec<PathBuf>,
    /// The stage's `ARG`s with their values (declared without one: absent).
    args: Vec<(String, String)>,
    /// The cache chain: a digest of everything so far.
    key: String,
    /// `CMD` was set in this stage (an `ENTRYPOINT` then keeps it).
    cmd_set: bool,
}

impl State {
    fn scratch() -> State {
        let p = ch05_image_pull::Platform::host();
        State {
            config: json!({
                "architecture": p.architecture,
                "os": "linux",
                "config": {},
                "rootfs": {"type": "layers", "diff_ids": []},
                "history": [],
            }),
            layers: Vec::new(),
            dirs: Vec::new(),
            args: Vec::new(),
            key: Digest::of(b"scratch").to_string(),
            cmd_set: false,
        }
    }

    fn inner(&mut self) -> &mut Value {
        &mut self.config["config"]
    }

    fn env(&self) -> Vec<String> {
        str_list(&self.config["config"]["Env"])
    }

    /// What words are expanded with: the ARGs, then the ENVs over them.
    fn vars(&self) -> Vec<(String, String)> {
        let mut v = self.args.clone();
        for e in self.env() {
            let (k, val) = e.split_once('=').unwrap_or((&e, ""));
            v.push((k.to_string(), val.to_string()));
        }
        v
    }

    fn set_env(&mut self, key: &str, value: &str) {
        let mut env = self.env();
        let entry = format!("{key}={value}");
        match env
            .iter()
            .position(|e| e.split_once('=').map_or(e.as_str(), |p| p.0) == key)
        {
            Some(i) => env[i] = entry,
            None => env.push(entry),
        }
        self.inner()["Env"] = json!(env);
    }

    fn workdir(&self) -> String {
        self.config["config"]["WorkingDir"]
            .as_str()
            .filter(|w| !w.is_empty())
            .unwrap_or("/")
            .to_string()
    }

    fn shell(&self) -> Vec<String> {
        let s = str_list(&self.config["config"]["Shell"]);
        if s.is_empty() {
            vec!["/bin/sh".into(), "-c".into()]
        } else {
            s
        }
    }

    /// The short image ID docker prints after each step: the config's digest.
    fn id(&self) -> Digest {
        Digest::of(&serde_json::to_vec(&self.config).expect("JSON"))
    }

    fn history(&mut self, created_by: String, empty: bool) {
        let mut h = json!({"created": now(), "created_by": created_by});
        if empty {
            h["empty_layer"] = json!(true);
        }
        let mut list = self.config["history"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        list.push(h);
        self.config["history"] = json!(list);
    }

    fn add_layer(&mut self, layer: NewLayer, dir: PathBuf) {
        let mut ids = self.config["rootfs"]["diff_ids"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        ids.push(json!(layer.diff_id.to_string()));
        self.config["rootfs"]["diff_ids"] = json!(ids);
        self.layers.push(layer);
        self.dirs.push(dir);
    }
}

fn str_list(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn now() -> String {
    jiff::Timestamp::now().to_string()
}

fn short(d: &Digest) -> String {
    d.hex()[..12].to_string()
}

/// A random 64-hex ID for a step's container.
fn random_id() -> String {
    let mut b = [0u8; 32];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = f.read_exact(&mut b);
    }
    hex::encode(b)
}

/// The builder's output: docker's lines, or nothing with `-q`.
struct Out<'a> {
    w: &'a mut dyn Write,
    quiet: bool,
}

impl Out<'_> {
    fn line(&mut self, s: impl AsRef<str>) {
        if !self.quiet {
            let _ = writeln!(self.w, "{}", s.as_ref());
            let _ = self.w.flush();
        }
    }
}

/// The platform arguments BuildKit defines for every build.
fn platform_args() -> Vec<(String, String)> {
    let p = ch05_image_pull::Platform::host();
    let platform = format!("{}/{}", p.os, p.architecture);
    let mut v = Vec::new();
    for prefix in ["TARGET", "BUILD"] {
        v.push((format!("{prefix}PLATFORM"), platform.clone()));
        v.push((format!("{prefix}OS"), p.os.clone()));
        v.push((format!("{prefix}ARCH"), p.architecture.clone()));
        v.push((
            format!("{prefix}VARIANT"),
            p.variant.clone().unwrap_or_default(),
        ));
    }
    v
}

/// The arguments docker accepts without an `ARG` line.
const PROXY_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// The build, step by step.
pub fn build(
    sys: &dyn LayerSys,
    store: &Store,
    opts: &BuildOptions,
    w: &mut dyn Write,
) -> Result<Built, Error> {
    let (file_name, text) = &opts.dockerfile;
    let file = parse(text).map_err(|e| Error::at(file_name, e))?;
    for warning in &file.warnings {
        eprintln!("{warning}");
    }
    instructions::check(&file).map_err(|e| Error::at(file_name, e))?;
    let ctx = Context::open(opts.context.as_deref())?;
    let mut b = Builder {
        sys,
        store,
        opts,
        ctx,
        lexer: Lexer::new(file.escape),
        out: Out {
            w,
            quiet: opts.quiet,
        },
        total: file.instructions.len(),
        used_args: Vec::new(),
        cached: 0,
        ran: 0,
        work: store.root().join("build"),
    };
    // The builder's own mount namespace: what it mounts to read other stages goes away
    // with it, whatever happens.
    private_mounts(sys)?;
    let result = b.run(&file);
    let _ = std::fs::remove_dir(&b.work);
    let built = result?;
    let unused: Vec<&str> = opts
        .build_args
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| !b.used_args.iter().any(|u| u == k) && !PROXY_ARGS.contains(k))
        .collect();
    if !unused.is_empty() {
        b.out.line(format!(
            "[Warning] One or more build-args [{}] were not consumed",
            unused.join(" ")
        ));
    }
    Ok(built)
}

fn private_mounts(sys: &dyn LayerSys) -> Result<(), Error> {
    sys.unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .and_then(|()| {
            sys.mount(
                None,
                Path::new("/"),
                None,
                nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_SLAVE,
                None,
            )
        })
        .map_err(|e| Error::Step(e.to_string()))
}

struct Builder<'a> {
    sys: &'a dyn LayerSys,
    store: &'a Store,
    opts: &'a BuildOptions,
    ctx: Context,
    lexer: Lexer,
    out: Out<'a>,
    total: usize,
    used_args: Vec<String>,
    cached: usize,
    ran: usize,
    work: PathBuf,
}

impl Builder<'_> {
    fn build_arg(&mut self, name: &str) -> Option<String> {
        let v = self
            .opts
            .build_args
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone());
        if v.is_some() {
            self.used_args.push(name.to_string());
        }
        v
    }

    fn run(&mut self, file: &Dockerfile) -> Result<Built, Error> {
        // Global ARGs (before the first FROM) are for FROM lines only.
        let mut global: Vec<(String, String)> = platform_args();
        let mut stages: Vec<Stage<'_>> = Vec::new();
        for (n, i) in file.instructions.iter().enumerate() {
            match i.command().as_str() {
                "from" => {
                    let v = i.values();
                    stages.push(Stage {
                        name: (v.len() == 3).then(|| v[2].to_lowercase()),
                        from: i,
                        body: Vec::new(),
                    });
                }
                "arg" if stages.is_empty() => {
                    self.out.line(format!(
                        "Step {}/{} : {}",
                        n + 1,
                        self.total,
                        i.original.trim()
                    ));
                    for a in i.values() {
                        let (k, default) = self.arg_parts(a, &global)?;
                        let value = self.build_arg(&k).or(default);
                        global.retain(|(g, _)| *g != k);
                        if let Some(v) = value {
                            global.push((k, v));
                        }
                    }
                }
                _ => {
                    let stage = stages.last_mut().expect("check() put a FROM first");
                    stage.body.push((n, i));
                }
            }
        }
        let target = match &self.opts.target {
            None => stages.len() - 1,
            Some(t) => stages
                .iter()
                .position(|s| s.name.as_deref() == Some(&t.to_lowercase()))
                .ok_or_else(|| {
                    Error::Usage(format!("failed to reach build target {t} in Dockerfile"))
                })?,
        };
        let needed = needed_stages(&stages, target, &global, &self.lexer);
        let mut done: Vec<Option<State>> = vec![None; stages.len()];
        for (idx, stage) in stages.iter().enumerate() {
            if !needed[idx] || idx > target {
                continue;
            }
            let state = self.stage(stage, idx, &stages, &done, &global, file)?;
            done[idx] = Some(state);
        }
        let mut state = done[target].take().expect("the target was built");
        for (k, v) in &self.opts.labels {
            state.inner()["Labels"][k] = json!(v);
        }
        let config = serde_json::to_vec(&state.config).expect("JSON");
        let id = Digest::of(&config);
        let mut refs = Vec::new();
        for t in &self.opts.tags {
            refs.push(Reference::parse(t).map_err(|e| Error::Usage(e.to_string()))?);
        }
        self.store
            .put_image(&config, &state.layers, refs.first())
            .map_err(store_err)?;
        for r in refs.iter().skip(1) {
            self.store.tag(&id.to_string(), r).map_err(store_err)?;
        }
        self.out.line(format!("Successfully built {}", short(&id)));
        for r in &refs {
            self.out
                .line(format!("Successfully tagged {}", r.familiar()));
        }
        Ok(Built {
            id,
            cached: self.cached,
            ran: self.ran,
        })
    }

    /// `NAME[=default]` of an ARG, the default expanded.
    fn arg_parts(
        &self,
        word: &str,
        vars: &[(String, String)],
    ) -> Result<(String, Option<String>), Error> {
        let vars = vars.to_vec();
        match word.split_once('=') {
            Some((k, v)) => Ok((
                k.to_string(),
                Some(self.lexer.process_word(v, &vars).map_err(lex_err)?),
            )),
            None => Ok((word.to_string(), None)),
        }
    }

    fn step(&mut self, n: usize, i: &Instruction) {
        self.out.line(format!(
            "Step {}/{} : {}",
            n + 1,
            self.total,
            i.original.trim()
        ));
    }

    #[allow(clippy::too_many_arguments)]
    fn stage(
        &mut self,
        stage: &Stage<'_>,
        idx: usize,
        stages: &[Stage<'_>],
        done: &[Option<State>],
        global: &[(String, String)],
        file: &Dockerfile,
    ) -> Result<State, Error> {
        let n = file
            .instructions
            .iter()
            .position(|i| std::ptr::eq(i, stage.from))
            .unwrap_or(0);
        self.step(n, stage.from);
        let global = global.to_vec();
        let base = self
            .lexer
            .process_word(stage.from.values()[0], &global)
            .map_err(lex_err)?;
        let mut state = match stages[..idx]
            .iter()
            .position(|s| s.name.as_deref() == Some(&base.to_lowercase()))
        {
            Some(j) => done[j].clone().expect("an earlier stage was built"),
            None if base == "scratch" => State::scratch(),
            None => self.base_image(&base)?,
        };
        state.args.clear();
        state.cmd_set = false;
        match base.as_str() {
            "scratch" => self.out.line(" ---> "),
            _ => self.out.line(format!(" ---> {}", short(&state.id()))),
        }
        // ONBUILD triggers of the base run first, as if written after FROM.
        let triggers = str_list(&state.config["config"]["OnBuild"]);
        if !triggers.is_empty() {
            state.inner()["OnBuild"] = Value::Null;
            let text = triggers.join("\n") + "\n";
            let parsed = parse(&text).map_err(|e| Error::Step(format!("ONBUILD: {e}")))?;
            self.out.line(format!(
                "# Executing {} build trigger{}",
                triggers.len(),
                if triggers.len() == 1 { "" } else { "s" }
            ));
            for t in &parsed.instructions {
                self.instruction(&mut state, t, global.as_slice(), done, stages)?;
            }
        }
        for (n, i) in &stage.body {
            self.step(*n, i);
            self.instruction(&mut state, i, global.as_slice(), done, stages)?;
            self.out.line(format!(" ---> {}", short(&state.id())));
        }
        Ok(state)
    }

    fn base_image(&mut self, name: &str) -> Result<State, Error> {
        let image = match self.store.resolve(name).map_err(store_err)? {
            Some(i) => i,
            None => {
                let r = Reference::parse(name).map_err(|e| Error::Usage(e.to_string()))?;
                let options = ch05_image_pull::PullOptions {
                    platform: None,
                    progress: ch05_image_pull::Progress::to_stderr(),
                    config: ch05_image_pull::ConfigFiles::from_env(),
                };
                ch05_image_pull::pull(self.store, &ch05_image_pull::Http::new(false), &r, &options)
                    .map_err(|e| {
                        Error::Step(format!(
                            "pull access denied or repository does not exist for {}: {e}",
                            r.familiar()
                        ))
                    })?
            }
        };
        self.state_of(&image)
    }

    fn state_of(&self, image: &Image) -> Result<State, Error> {
        let raw = self
            .store
            .read_blob(&image.config_digest)
            .map_err(store_err)?;
        let config: Value = serde_json::from_slice(&raw)
            .map_err(|e| Error::Step(format!("the base image's config: {e}")))?;
        let dirs = self.store.layer_dirs(image).map_err(store_err)?;
        let layers = image.layers.iter().map(NewLayer::from).collect();
        Ok(State {
            config,
            layers,
            dirs,
            args: Vec::new(),
            key: image.config_digest.to_string(),
            cmd_set: false,
        })
    }

    /// One instruction applied to `state`.
    fn instruction(
        &mut self,
        state: &mut State,
        i: &Instruction,
        global: &[(String, String)],
        done: &[Option<State>],
        stages: &[Stage<'_>],
    ) -> Result<(), Error> {
        let command = i.command();
        let values: Vec<String> = i.values().iter().map(|s| s.to_string()).collect();
        let vars = state.vars();
        let lexer = self.lexer;
        let expand = |w: &str| lexer.process_word(w, &vars).map_err(lex_err);
        let nop = |what: String| format!("/bin/sh -c #(nop)  {what}");
        match command.as_str() {
            "run" => return self.run_step(state, i, done, stages),
            "copy" | "add" => return self.copy_step(state, i, done, stages),
            "env" | "label" => {
                let mut shown = Vec::new();
                for kv in values.chunks(3) {
                    let (k, v) = (expand(&kv[0])?, expand(&kv[1])?);
                    if command == "env" {
                        state.set_env(&k, &v);
                    } else {
                        state.inner()["Labels"][&k] = json!(v);
                    }
                    shown.push(format!("{k}={v}"));
                }
                state.history(
                    nop(format!("{} {}", command.to_uppercase(), shown.join(" "))),
                    true,
                );
            }
            "arg" => {
                for a in &values {
                    let (k, default) = self.arg_parts(a, &vars)?;
                    let value = self
                        .build_arg(&k)
                        .or(default)
                        .or_else(|| global.iter().find(|(g, _)| *g == k).map(|(_, v)| v.clone()));
                    state.args.retain(|(n, _)| *n != k);
                    if let Some(v) = value {
                        state.args.push((k, v));
                    }
                }
                state.history(nop(format!("ARG {}", values.join(" "))), true);
            }
            "workdir" => {
                let dir = expand(&values[0])?;
                let dir = if dir.starts_with('/') {
                    format!("/{}", clean(&dir))
                } else {
                    format!("/{}", clean(&format!("{}/{dir}", state.workdir())))
                };
                let dir = if dir == "/." { "/".to_string() } else { dir };
                state.inner()["WorkingDir"] = json!(dir);
                state.history(format!("/bin/sh -c #(nop) WORKDIR {dir}"), true);
            }
            "user" => {
                let user = expand(&values[0])?;
                state.inner()["User"] = json!(user);
                state.history(nop(format!("USER {user}")), true);
            }
            "cmd" | "entrypoint" => {
                let list = if i.json || values.is_empty() {
                    values.clone()
                } else {
                    let mut s = state.shell();
                    s.push(values[0].clone());
                    s
                };
                let key = if command == "cmd" {
                    "Cmd"
                } else {
                    "Entrypoint"
                };
                state.inner()[key] = json!(list);
                if command == "cmd" {
                    state.cmd_set = true;
                } else if !state.cmd_set {
                    state.inner()["Cmd"] = Value::Null;
                }
                state.history(
                    nop(format!("{} {}", command.to_uppercase(), go_list(&list))),
                    true,
                );
            }
            "shell" => {
                state.inner()["Shell"] = json!(values);
                state.history(nop(format!("SHELL {}", go_list(&values))), true);
            }
            "expose" => {
                let mut ports = Vec::new();
                for v in &values {
                    let p = expand(v)?;
                    let p = if p.contains('/') {
                        p
                    } else {
                        format!("{p}/tcp")
                    };
                    state.inner()["ExposedPorts"][&p] = json!({});
                    ports.push(p);
                }
                state.history(nop(format!("EXPOSE {}", ports.join(" "))), true);
            }
            "volume" => {
                let mut vols = Vec::new();
                for v in &values {
                    let v = expand(v)?;
                    state.inner()["Volumes"][&v] = json!({});
                    vols.push(v);
                }
                state.history(nop(format!("VOLUME {}", go_list(&vols))), true);
            }
            "stopsignal" => {
                let s = expand(&values[0])?;
                state.inner()["StopSignal"] = json!(s);
                state.history(nop(format!("STOPSIGNAL {s}")), true);
            }
            "maintainer" => {
                state.config["author"] = json!(values[0]);
                state.history(nop(format!("MAINTAINER {}", values[0])), true);
            }
            "onbuild" => {
                let Some(Arg::Nested(inner)) = i.args.first() else {
                    unreachable!("check() requires an instruction after ONBUILD")
                };
                let trigger = inner.original.trim().to_string();
                let mut list = str_list(&state.config["config"]["OnBuild"]);
                list.push(trigger.clone());
                state.inner()["OnBuild"] = json!(list);
                state.history(nop(format!("ONBUILD {trigger}")), true);
            }
            "healthcheck" => {
                state.inner()["Healthcheck"] = healthcheck(i, &values, state)?;
                state.history(nop(format!("HEALTHCHECK {}", values.join(" "))), true);
            }
            other => unreachable!("check() refused {other}"),
        }
        state.key = chain(
            &state.key,
            &format!("{command} {}", i.original.trim()),
            &vars,
        );
        if !self.restore(state)? {
            self.remember(state)?;
        }
        Ok(())
    }

    /// `RUN`: a container on the layers so far; what it writes becomes a layer.
    fn run_step(
        &mut self,
        state: &mut State,
        i: &Instruction,
        done: &[Option<State>],
        stages: &[Stage<'_>],
    ) -> Result<(), Error> {
        // Where `--mount`s of other stages are mounted and rw binds copied, for this step.
        let scratch = self.work.join(format!("mounts-{}", &random_id()[..12]));
        let result = self.run_step_in(state, i, done, stages, &scratch);
        for e in std::fs::read_dir(&scratch).into_iter().flatten().flatten() {
            let _ = umount(&e.path());
        }
        let _ = std::fs::remove_dir_all(&scratch);
        result
    }

    fn run_step_in(
        &mut self,
        state: &mut State,
        i: &Instruction,
        done: &[Option<State>],
        stages: &[Stage<'_>],
        scratch: &Path,
    ) -> Result<(), Error> {
        let values = i.values();
        let mut host_network = self.opts.host_network;
        let mut no_network = self.opts.no_network;
        let mut mounts = Vec::new();
        let mut mount_specs = Vec::new();
        for f in instructions::flags(i).map_err(Error::Usage)? {
            let v = f.value.unwrap_or_default();
            match f.name.as_str() {
                "network" => {
                    (host_network, no_network) = match v.as_str() {
                        "host" => (true, false),
                        "none" => (false, true),
                        "default" => (false, false),
                        other => {
                            return Err(Error::Usage(format!(
                                "RUN --network={other}: none, default or host"
                            )));
                        }
                    }
                }
                "mount" => {
                    let place = scratch.join(mounts.len().to_string());
                    mounts.push(self.run_mount(&v, state, done, stages, &place)?);
                    mount_specs.push(v);
                }
                _ => {
                    return Err(Error::Usage(format!(
                        "RUN --{}: not supported by this builder (BuildKit asks for an entitlement)",
                        f.name
                    )));
                }
            }
        }
        let argv: Vec<String> = if i.json {
            values.iter().map(|s| s.to_string()).collect()
        } else {
            let mut cmd = values.first().map(|s| s.to_string()).unwrap_or_default();
            if let Some(doc) = i.heredocs.first() {
                // `RUN <<EOF` alone: the body is the script. Otherwise the shell reads the
                // here-document itself, as written.
                cmd = if crate::parser::words_besides_heredocs(&cmd).is_empty() {
                    doc.content.clone()
                } else {
                    let mut script = cmd.clone();
                    for d in &i.heredocs {
                        script.push('\n');
                        script.push_str(&d.content);
                        script.push_str(&d.name);
                    }
                    script
                };
            }
            let mut s = state.shell();
            s.push(cmd);
            s
        };
        // The build args RUN sees: the stage's ARGs an ENV does not shadow, and the
        // proxy args given with --build-arg even undeclared (docker's FilterAllowed).
        let mut env = state.env();
        let shadowed = |k: &str| {
            env.iter()
                .any(|e| e.split_once('=').map(|p| p.0) == Some(k))
        };
        let declared: Vec<String> = state
            .args
            .iter()
            .filter(|(k, _)| !shadowed(k))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let proxies: Vec<String> = self
            .opts
            .build_args
            .iter()
            .filter(|(k, _)| PROXY_ARGS.contains(&k.as_str()) && !shadowed(k))
            .filter(|(k, _)| !state.args.iter().any(|(a, _)| a == k))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        // The history records the command as the classic builder does (the argv joined),
        // after `|N K=V...` when build args are in scope: the declared ones, sorted, so
        // the proxies' values never reach an image.
        let mut created_by = argv.join(" ");
        if !declared.is_empty() || !proxies.is_empty() {
            let mut shown = declared.clone();
            shown.sort();
            created_by = format!(
                "|{} {}",
                shown.len(),
                [shown, vec![created_by]].concat().join(" ")
            );
        }
        env.extend(declared);
        env.extend(proxies);
        let key = chain(
            &state.key,
            &format!(
                "run {} {}",
                serde_json::to_string(&argv).expect("JSON"),
                mount_specs.join(" ")
            ),
            &state.args,
        );
        state.key = key;
        if self.restore(state)? {
            return Ok(());
        }
        let id = random_id();
        self.out.line(format!(" ---> Running in {}", &id[..12]));
        let dir = self.work.join(&id);
        let network = if host_network || no_network {
            None
        } else {
            self.opts.network.clone()
        };
        let result = self.run_in(state, &dir, &id, argv, env, (host_network, network), mounts);
        let _ = std::fs::remove_dir_all(&dir);
        let layer = result?;
        self.out
            .line(format!("Removing intermediate container {}", &id[..12]));
        state.add_layer(layer.0, layer.1);
        state.history(created_by, false);
        self.remember(state)
    }

    #[allow(clippy::too_many_arguments)]
    fn run_in(
        &mut self,
        state: &State,
        dir: &Path,
        id: &str,
        argv: Vec<String>,
        env: Vec<String>,
        (host_network, network): (
            bool,
            Option<std::sync::Arc<dyn crate::container::StepNetwork>>,
        ),
        mounts: Vec<ch03_rootfs_pivot_root::rootfs::Mount>,
    ) -> Result<(NewLayer, PathBuf), Error> {
        // A mount point the image did not have is made for the mount, and is not part of
        // the step's layer (what the step writes there goes to the mount anyway).
        let excluded: Vec<PathBuf> = mounts
            .iter()
            .map(|m| {
                m.target
                    .strip_prefix("/")
                    .unwrap_or(&m.target)
                    .to_path_buf()
            })
            .filter(|rel| !state.dirs.iter().any(|d| d.join(rel).exists()))
            .collect();
        let spec = RunSpec {
            layers: state.dirs.clone(),
            init: dir.join("init"),
            upper: dir.join("upper"),
            work: dir.join("work"),
            merged: dir.join("merged"),
            argv: argv.clone(),
            env,
            workdir: state.workdir(),
            user: state.config["config"]["User"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            hostname: id[..12].to_string(),
            host_network,
            network,
            id: id.to_string(),
            mounts,
        };
        for d in [&spec.init, &spec.upper, &spec.work, &spec.merged] {
            std::fs::create_dir_all(d).map_err(|e| Error::Io(d.display().to_string(), e))?;
        }
        ch04_unionfs_layers::init::InitLayer {
            hostname: spec.hostname.clone(),
            hosts: Vec::new(),
            dns: Vec::new(),
            dns_search: Vec::new(),
            dns_options: Vec::new(),
        }
        .write(&spec.init)
        .map_err(|e| Error::Io(spec.init.display().to_string(), e))?;
        if spec.host_network {
            // The host's network, so the host's resolver as it is: a loopback one
            // (systemd-resolved's 127.0.0.53) answers there too.
            if let Ok(host) = std::fs::read("/etc/resolv.conf") {
                let path = spec.init.join("etc/resolv.conf");
                std::fs::write(&path, host)
                    .map_err(|e| Error::Io(path.display().to_string(), e))?;
            }
        }
        let shown = if argv.len() == 1 {
            format!("{argv:?}")
        } else {
            argv.join(" ")
        };
        match container::run(self.sys, &spec)? {
            Exit::Code(0) => {}
            Exit::Code(code) => {
                return Err(Error::Failed {
                    message: format!("The command '{shown}' returned a non-zero code: {code}"),
                    code,
                });
            }
            Exit::Signal(sig) => {
                return Err(Error::Failed {
                    message: format!("The command '{shown}' was killed by {sig}"),
                    code: 128 + sig as i32,
                });
            }
        }
        self.ran += 1;
        let excluded: Vec<&Path> = excluded.iter().map(PathBuf::as_path).collect();
        self.layer_of(&spec.upper, dir, &excluded)
    }

    /// One `RUN --mount=...` (BuildKit's syntax: `type=cache|bind|tmpfs`, `target=`, and
    /// per type `id=`, `source=`, `from=`, `rw`, `mode=`, `uid=`, `gid=`).
    fn run_mount(
        &mut self,
        spec: &str,
        state: &State,
        done: &[Option<State>],
        stages: &[Stage<'_>],
        place: &Path,
    ) -> Result<ch03_rootfs_pivot_root::rootfs::Mount, Error> {
        use ch03_rootfs_pivot_root::rootfs::{Mount, MountKind};
        let mut kv: Vec<(String, String)> = Vec::new();
        for part in spec.split(',') {
            let (k, v) = part.split_once('=').unwrap_or((part, "true"));
            kv.push((k.trim().to_lowercase(), v.trim().to_string()));
        }
        let get = |k: &[&str]| {
            kv.iter()
                .find(|(n, _)| k.contains(&n.as_str()))
                .map(|(_, v)| v.clone())
        };
        let bad = |m: &str| Error::Usage(format!("RUN --mount={spec}: {m}"));
        let target = get(&["target", "dst", "destination"]).ok_or_else(|| bad("no target"))?;
        let target = if target.starts_with('/') {
            PathBuf::from(target)
        } else {
            Path::new(&state.workdir()).join(target)
        };
        let read_write = get(&["rw", "readwrite"]).is_some_and(|v| v != "false");
        let kind = get(&["type"]).unwrap_or_else(|| "bind".into());
        match kind.as_str() {
            "tmpfs" => Ok(Mount {
                kind: MountKind::Tmpfs,
                target,
                read_only: false,
            }),
            "cache" => {
                // Kept between builds, per id (the target by default), in the store.
                let id = get(&["id"]).unwrap_or_else(|| target.display().to_string());
                let dir = self
                    .store
                    .root()
                    .join("build-cache-mounts")
                    .join(&Digest::of(id.as_bytes()).hex()[..16]);
                if !dir.exists() {
                    std::fs::create_dir_all(&dir)
                        .map_err(|e| Error::Io(dir.display().to_string(), e))?;
                    let uid = get(&["uid"]).and_then(|v| v.parse().ok()).unwrap_or(0);
                    let gid = get(&["gid"]).and_then(|v| v.parse().ok()).unwrap_or(0);
                    let mode = get(&["mode"])
                        .and_then(|v| u32::from_str_radix(&v, 8).ok())
                        .unwrap_or(0o755);
                    std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
                        .map_err(|e| Error::Io(dir.display().to_string(), e))?;
                    std::fs::set_permissions(
                        &dir,
                        std::os::unix::fs::PermissionsExt::from_mode(mode),
                    )
                    .map_err(|e| Error::Io(dir.display().to_string(), e))?;
                }
                Ok(Mount {
                    kind: MountKind::Bind(dir),
                    target,
                    read_only: false,
                })
            }
            "bind" => {
                let source = clean(
                    get(&["source", "src"])
                        .unwrap_or_default()
                        .trim_start_matches('/'),
                );
                if source.starts_with("..") {
                    return Err(bad("source outside the build context"));
                }
                let path = match get(&["from"]) {
                    None => {
                        let root = self
                            .ctx
                            .root
                            .clone()
                            .ok_or_else(|| bad("no build context"))?;
                        if source == "." {
                            root
                        } else {
                            root.join(&source)
                        }
                    }
                    Some(from) => {
                        // Another stage or an image, seen read-only, at `place`.
                        let from_state = self.stage_or_image(&from, done, stages)?;
                        let view = place.join("view");
                        self.mount_readonly(&from_state.dirs, &view)?;
                        if source == "." {
                            view
                        } else {
                            view.join(&source)
                        }
                    }
                };
                // `rw`: the step may write, and what it writes is thrown away: a copy.
                let path = if read_write {
                    let copy = place.join("copy");
                    std::fs::create_dir_all(&copy)
                        .map_err(|e| Error::Io(copy.display().to_string(), e))?;
                    let copier = Copier {
                        owner: None,
                        mode: None,
                        staging: &copy,
                        exclude: Vec::new(),
                    };
                    copier.dir_contents(&path, ".", ".", None)?;
                    copy
                } else {
                    path
                };
                Ok(Mount {
                    kind: MountKind::Bind(path),
                    target,
                    read_only: !read_write,
                })
            }
            other => Err(bad(&format!("unknown mount type {other:?}"))),
        }
    }

    /// A directory of changes as a stored layer: chapter 4's `diff`, the blob in the
    /// store, extracted where the next steps' overlays find it.
    fn layer_of(
        &self,
        upper: &Path,
        scratch: &Path,
        exclude: &[&Path],
    ) -> Result<(NewLayer, PathBuf), Error> {
        let mut f = tempfile::tempfile_in(scratch)
            .map_err(|e| Error::Io(scratch.display().to_string(), e))?;
        ch04_unionfs_layers::diff::diff(upper, &mut f, exclude)
            .map_err(|e| Error::Step(format!("diff {}: {e}", upper.display())))?;
        f.rewind()
            .map_err(|e| Error::Io(scratch.display().to_string(), e))?;
        let (digest, size) = self.store.put_blob(&mut f, None).map_err(store_err)?;
        let layer = Layer {
            digest: digest.clone(),
            diff_id: digest,
            size,
            media_type: LAYER_TAR.into(),
        };
        let dir = self.store.extract_layer(&layer).map_err(store_err)?;
        Ok((NewLayer::from(&layer), dir))
    }

    fn cache_dir(&self) -> PathBuf {
        self.store.root().join("build-cache")
    }

    fn cache_entry(&self, key: &str) -> PathBuf {
        self.cache_dir().join(Digest::of(key.as_bytes()).hex())
    }

    /// Takes the state a step with `state.key` left before, if the cache has it and the
    /// store still holds its layers: the same config, history and layers, so a rebuild
    /// that changes nothing makes the very same image.
    fn restore(&mut self, state: &mut State) -> Result<bool, Error> {
        if self.opts.no_cache {
            return Ok(false);
        }
        let Some(entry) = std::fs::read(self.cache_entry(&state.key))
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        else {
            return Ok(false);
        };
        if !entry["config"]["rootfs"].is_object() {
            return Ok(false); // not an entry of this builder's: ignored
        }
        let mut layers = Vec::new();
        for l in entry["layers"].as_array().into_iter().flatten() {
            let (Some(digest), Some(diff_id), Some(size), Some(media_type)) = (
                l["digest"].as_str().and_then(|d| Digest::parse(d).ok()),
                l["diff_id"].as_str().and_then(|d| Digest::parse(d).ok()),
                l["size"].as_u64(),
                l["media_type"].as_str(),
            ) else {
                return Ok(false);
            };
            if !self.store.has_blob(&digest) {
                return Ok(false);
            }
            layers.push(Layer {
                digest,
                diff_id,
                size,
                media_type: media_type.to_string(),
            });
        }
        let mut dirs = Vec::new();
        for l in &layers {
            dirs.push(self.store.extract_layer(l).map_err(store_err)?);
        }
        state.layers = layers.iter().map(NewLayer::from).collect();
        state.dirs = dirs;
        state.config = entry["config"].clone();
        self.out.line(" ---> Using cache");
        self.cached += 1;
        Ok(true)
    }

    /// Stamps the step's result and keeps it in the cache under `state.key`.
    fn remember(&self, state: &mut State) -> Result<(), Error> {
        state.config["created"] = json!(now());
        let layers: Vec<Value> = state
            .layers
            .iter()
            .map(|l| {
                json!({
                    "digest": l.descriptor.digest.to_string(),
                    "diff_id": l.diff_id.to_string(),
                    "size": l.descriptor.size,
                    "media_type": l.descriptor.media_type,
                })
            })
            .collect();
        // The step's result as an unnamed manifest in the store, pinned: the store's GC
        // keeps its layers for the cache (a multi-stage build's intermediate stages are in
        // no image) until `builder prune` lets them go.
        let config = serde_json::to_vec(&state.config).expect("JSON");
        let (config_digest, config_size) = self
            .store
            .put_blob(&mut &config[..], None)
            .map_err(store_err)?;
        let manifest = ch05_image_pull::manifest::Manifest {
            schema_version: 2,
            media_type: Some(ch05_image_pull::manifest::OCI_MANIFEST.into()),
            config: Descriptor::new(
                ch05_image_pull::manifest::OCI_CONFIG,
                config_digest,
                config_size,
            ),
            layers: state.layers.iter().map(|l| l.descriptor.clone()).collect(),
            annotations: None,
        };
        let stored = self.store.put_manifest(&manifest).map_err(store_err)?;
        self.store
            .pin(
                CACHE_PIN,
                &stored.digest,
                ch05_image_pull::store::Durability::Volatile,
            )
            .map_err(store_err)?;
        let entry = json!({"config": state.config, "layers": layers, "manifest": stored.digest.to_string()});
        let cache = self.cache_dir();
        std::fs::create_dir_all(&cache).map_err(|e| Error::Io(cache.display().to_string(), e))?;
        let path = self.cache_entry(&state.key);
        ch05_image_pull::store::atomic_write(&path, entry.to_string().as_bytes())
            .map_err(|e| Error::Io(path.display().to_string(), e))
    }

    /// `COPY` and `ADD`: the sources into an empty directory at the destination, which
    /// becomes the step's layer.
    fn copy_step(
        &mut self,
        state: &mut State,
        i: &Instruction,
        done: &[Option<State>],
        stages: &[Stage<'_>],
    ) -> Result<(), Error> {
        let name = i.command().to_uppercase();
        let flags = instructions::flags(i).map_err(Error::Usage)?;
        if let Some(f) = flags
            .iter()
            .find(|f| matches!(f.name.as_str(), "keep-git-dir"))
        {
            return Err(Error::Usage(format!(
                "{name} --{}: not supported by this builder yet",
                f.name
            )));
        }
        let flag = |n: &str| {
            flags
                .iter()
                .find(|f| f.name == n)
                .and_then(|f| f.value.clone())
        };
        let vars = state.vars();
        let lexer = self.lexer;
        let expand = |w: &str| lexer.process_word(w, &vars).map_err(lex_err);
        let mut args: Vec<String> = Vec::new();
        for v in i.values() {
            // A heredoc's `<<NAME` stands for its body, not for a file of the context.
            if !i.heredocs.is_empty()
                && v.trim_start_matches(|c: char| c.is_ascii_digit())
                    .starts_with("<<")
            {
                continue;
            }
            args.push(expand(v)?);
        }
        let dest_word = args.pop().expect("check() requires a destination");
        let dest = if dest_word.starts_with('/') {
            dest_word.clone()
        } else {
            format!("{}/{}", state.workdir().trim_end_matches('/'), dest_word)
        };
        let dest_is_dir =
            dest_word.ends_with('/') || dest_word == "." || args.len() + i.heredocs.len() > 1;
        let owner = match flag("chown") {
            Some(spec) => Some(owner_of(&expand(&spec)?, &state.dirs)?),
            None => None,
        };
        let mode = match flag("chmod") {
            Some(m) => Some(
                u32::from_str_radix(&m, 8)
                    .map_err(|_| Error::Usage(format!("invalid chmod parameter: {m}")))?,
            ),
            None => None,
        };
        let id = random_id();
        let scratch = self.work.join(&id);
        let staging = scratch.join("layer");
        std::fs::create_dir_all(&staging)
            .map_err(|e| Error::Io(staging.display().to_string(), e))?;
        let result = (|| -> Result<(NewLayer, PathBuf, String), Error> {
            let exclude = flags
                .iter()
                .filter(|f| f.name == "exclude")
                .map(|f| crate::context::Pattern::new(&f.value.clone().unwrap_or_default()))
                .collect::<Result<Vec<_>, _>>()?;
            let parents = flags.iter().any(|f| f.name == "parents");
            let copier = Copier {
                owner,
                mode,
                staging: &staging,
                exclude,
            };
            // The sources: the context, another stage or image (`--from`), heredocs.
            let from_dir;
            let mut sources: Vec<(PathBuf, String, bool)> = Vec::new();
            if let Some(from) = flag("from") {
                let from = expand(&from)?;
                let from_state = match stages
                    .iter()
                    .position(|s| s.name.as_deref() == Some(&from.to_lowercase()))
                {
                    Some(j) => done[j].clone().expect("an earlier stage was built"),
                    None => match from.parse::<usize>() {
                        Ok(j) if j < stages.len() => done[j]
                            .clone()
                            .ok_or_else(|| Error::Usage(format!("invalid stage index {j}")))?,
                        _ => self.base_image(&from)?,
                    },
                };
                from_dir = scratch.join("from");
                self.mount_readonly(&from_state.dirs, &from_dir)?;
                for a in &args {
                    let rel = clean(a.trim_start_matches('/'));
                    let p = from_dir.join(&rel);
                    if std::fs::symlink_metadata(&p).is_err() {
                        return Err(Error::Step(format!(
                            "{name} failed: stat {a}: file does not exist"
                        )));
                    }
                    sources.push((p, rel, false));
                }
            } else {
                let checksum = flag("checksum");
                for a in &args {
                    if name == "ADD" && (a.starts_with("http://") || a.starts_with("https://")) {
                        let file = download(a, &scratch, checksum.as_deref())?;
                        sources.push((file, url_file_name(a), false));
                        continue;
                    }
                    if checksum.is_some() {
                        return Err(Error::Usage(
                            "checksum can't be specified for non-HTTP(S) sources".into(),
                        ));
                    }
                    for rel in self.ctx.sources(a, &name)? {
                        sources.push((self.ctx.path(&rel), rel, true));
                    }
                }
            }
            let many = sources.len() + i.heredocs.len() > 1;
            let into_dir = dest_is_dir || many;
            let dest_rel = clean(dest.trim_start_matches('/'));
            for (src, rel, from_context) in &sources {
                if copier.excluded(rel) {
                    continue;
                }
                let md = std::fs::symlink_metadata(src)
                    .map_err(|e| Error::Io(src.display().to_string(), e))?;
                // `--parents`: the source's path under the context is kept under the
                // destination.
                let dest_rel = if parents {
                    let kept = if md.is_dir() {
                        rel.to_string()
                    } else {
                        Path::new(rel)
                            .parent()
                            .map(|p| p.display().to_string())
                            .unwrap_or_default()
                    };
                    clean(&format!("{dest_rel}/{kept}"))
                } else {
                    dest_rel.clone()
                };
                let into_dir = into_dir || parents;
                if md.is_dir() {
                    copier.dir_contents(src, rel, &dest_rel, from_context.then_some(&self.ctx))?;
                } else if name == "ADD" && *from_context && is_archive(src) {
                    copier.extract(src, &dest_rel)?;
                } else {
                    let target = if into_dir {
                        let base = Path::new(rel)
                            .file_name()
                            .map(|f| f.to_string_lossy().into_owned())
                            .unwrap_or_default();
                        format!("{dest_rel}/{base}")
                    } else {
                        dest_rel.clone()
                    };
                    copier.entry(src, &target)?;
                }
            }
            for doc in &i.heredocs {
                let target = if into_dir {
                    format!("{dest_rel}/{}", doc.name)
                } else {
                    dest_rel.clone()
                };
                let body = if doc.expand {
                    expand(&doc.content).unwrap_or_else(|_| doc.content.clone())
                } else {
                    doc.content.clone()
                };
                copier.file_with(&target, body.as_bytes())?;
            }
            // The classic builder's source hash: `file:`, `dir:` or, for several
            // sources, `multi:` (its digests are its own; this is the staged tree's).
            let kind = match sources.as_slice() {
                [(src, _, _)] if i.heredocs.is_empty() && src.is_dir() => "dir",
                [_] if i.heredocs.is_empty() => "file",
                [] if i.heredocs.len() == 1 => "file",
                _ => "multi",
            };
            let digest = format!("{kind}:{}", tree_digest(&staging));
            let (layer, dir) = self.layer_of(&staging, &scratch, &[])?;
            Ok((layer, dir, digest))
        })();
        let _ = umount(&scratch.join("from"));
        let _ = std::fs::remove_dir_all(&scratch);
        let (layer, dir, digest) = result?;
        let what = format!(
            "{} {}",
            flags
                .iter()
                .map(|f| format!("--{}={}", f.name, f.value.clone().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(" "),
            digest
        );
        state.key = chain(&state.key, &format!("{} {what} {dest}", i.command()), &[]);
        if self.restore(state)? {
            return Ok(());
        }
        self.ran += 1;
        state.add_layer(layer, dir);
        state.history(
            format!("/bin/sh -c #(nop) {name} {digest} in {dest} "),
            false,
        );
        self.remember(state)
    }

    /// The stage `from` names (by name or index), or else an image of that name.
    fn stage_or_image(
        &mut self,
        from: &str,
        done: &[Option<State>],
        stages: &[Stage<'_>],
    ) -> Result<State, Error> {
        if let Some(j) = stages
            .iter()
            .position(|s| s.name.as_deref() == Some(&from.to_lowercase()))
        {
            return done[j].clone().ok_or_else(|| {
                Error::Usage(format!("stage {from} is not built before this step"))
            });
        }
        match from.parse::<usize>() {
            Ok(j) if j < stages.len() => done[j]
                .clone()
                .ok_or_else(|| Error::Usage(format!("invalid stage index {j}"))),
            _ => self.base_image(from),
        }
    }

    /// A read-only overlay of `dirs` at `target`, in the builder's own mount namespace.
    fn mount_readonly(&self, dirs: &[PathBuf], target: &Path) -> Result<(), Error> {
        std::fs::create_dir_all(target).map_err(|e| Error::Io(target.display().to_string(), e))?;
        if dirs.is_empty() {
            return Ok(());
        }
        let stack = ch04_unionfs_layers::Stack {
            lowers: dirs.iter().rev().cloned().collect(),
            upper: None,
        };
        if dirs.len() == 1 {
            // overlayfs needs two lower layers without an upper one: bind the only one.
            return self
                .sys
                .mount(
                    Some(&dirs[0].to_string_lossy()),
                    target,
                    None,
                    nix::mount::MsFlags::MS_BIND,
                    None,
                )
                .map_err(|e| Error::Step(e.to_string()));
        }
        ch04_unionfs_layers::overlay::mount(self.sys, &stack, target)
            .map_err(|e| Error::Step(e.to_string()))
    }
}

fn umount(target: &Path) -> Result<(), nix::Error> {
    nix::mount::umount2(target, nix::mount::MntFlags::MNT_DETACH)
}

/// Which stages the target needs: itself, and those it names in `FROM` or `--from`.
fn needed_stages(
    stages: &[Stage<'_>],
    target: usize,
    global: &[(String, String)],
    lexer: &Lexer,
) -> Vec<bool> {
    let mut needed = vec![false; stages.len()];
    let mut todo = vec![target];
    let global = global.to_vec();
    while let Some(s) = todo.pop() {
        if needed[s] {
            continue;
        }
        needed[s] = true;
        let mut names = vec![
            lexer
                .process_word(stages[s].from.values()[0], &global)
                .unwrap_or_default(),
        ];
        for (_, i) in &stages[s].body {
            for f in &i.flags {
                if let Some(v) = f.strip_prefix("--from=") {
                    names.push(v.to_string());
                }
                // RUN --mount=...,from=STAGE
                if let Some(spec) = f.strip_prefix("--mount=") {
                    names.extend(
                        spec.split(',')
                            .filter_map(|kv| kv.strip_prefix("from="))
                            .map(str::to_string),
                    );
                }
            }
        }
        for n in names {
            let n = n.to_lowercase();
            if let Some(j) = stages[..s]
                .iter()
                .position(|st| st.name.as_deref() == Some(&n))
            {
                todo.push(j);
            } else if let Ok(j) = n.parse::<usize>()
                && j < s
            {
                todo.push(j);
            }
        }
    }
    needed
}

/// The next link of the cache chain.
fn chain(parent: &str, step: &str, args: &[(String, String)]) -> String {
    // exercise(ch06.chain): the sha256 digest (Digest::of) of the parent key, the step and each build argument, one per line
    let mut text = format!("{parent}\n{step}\n");
    for (k, v) in args {
        text.push_str(&format!("{k}={v}\n"));
    }
    Digest::of(text.as_bytes()).to_string()
    // end exercise
}

fn go_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| crate::parser::go_quote(s)).collect();
    format!("[{}]", quoted.join(" "))
}

fn lex_err(e: crate::shell::LexError) -> Error {
    Error::Step(e.to_string())
}

fn store_err(e: ch05_image_pull::Error) -> Error {
    Error::Step(e.to_string())
}

/// `HEALTHCHECK`'s config object.
fn healthcheck(i: &Instruction, values: &[String], state: &State) -> Result<Value, Error> {
    if values[0].eq_ignore_ascii_case("none") {
        return Ok(json!({"Test": ["NONE"]}));
    }
    let test: Vec<String> = if i.json {
        std::iter::once("CMD".to_string())
            .chain(values[1..].iter().cloned())
            .collect()
    } else {
        vec!["CMD-SHELL".into(), values[1].clone()]
    };
    let _ = state;
    let mut h = json!({"Test": test});
    for f in instructions::flags(i).map_err(Error::Usage)? {
        let v = f.value.unwrap_or_default();
        let key = match f.name.as_str() {
            "interval" => "Interval",
            "timeout" => "Timeout",
            "start-period" => "StartPeriod",
            "start-interval" => "StartInterval",
            "retries" => {
                let n: u64 = v
                    .parse()
                    .map_err(|_| Error::Usage(format!("invalid retries: {v}")))?;
                h["Retries"] = json!(n);
                continue;
            }
            _ => continue,
        };
        h[key] = json!(duration_ns(&v)?);
    }
    Ok(h)
}

/// A Go duration (`30s`, `1m30s`, `500ms`) in nanoseconds.
fn duration_ns(text: &str) -> Result<u64, Error> {
    let bad = || Error::Usage(format!("invalid duration {text:?}"));
    let mut total = 0f64;
    let mut rest = text;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let n: f64 = rest[..num_end].parse().map_err(|_| bad())?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        total += n * factor;
        rest = &rest[unit_end..];
    }
    Ok(total as u64)
}

/// `--chown=USER[:GROUP]`: numbers as they are, names from the image's `/etc/passwd` and
/// `/etc/group` (the top-most layer that has them).
fn owner_of(spec: &str, dirs: &[PathBuf]) -> Result<(u32, u32), Error> {
    let read = |f: &str| {
        dirs.iter()
            .rev()
            .find_map(|d| std::fs::read_to_string(d.join(f)).ok())
            .unwrap_or_default()
    };
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let lookup = |db: &str, name: &str, what: &str| -> Result<(u32, Option<u32>), Error> {
        if let Ok(n) = name.parse::<u32>() {
            return Ok((n, None));
        }
        db.lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.len() > 3 && f[0] == name)
            .map(|f| (f[2].parse().unwrap_or(0), f[3].parse().ok()))
            .ok_or_else(|| {
                Error::Step(format!("unable to convert uid/gid chown string to host mapping: can't find {what} {name:?}"))
            })
    };
    let (uid, primary) = lookup(&read("etc/passwd"), user, "uid for user")?;
    let gid = match group {
        Some(g) => lookup(&read("etc/group"), g, "gid for group")?.0,
        None => primary.unwrap_or(uid),
    };
    Ok((uid, gid))
}

/// `ADD URL`: the file fetched into `dir` (never unpacked, docker's rule for remote
/// archives), checked against `--checksum=sha256:...` when given. Permissions 0600 as
/// docker gives them.
fn download(url: &str, dir: &Path, checksum: Option<&str>) -> Result<PathBuf, Error> {
    use sha2::Digest as _;
    let fail = |e: String| Error::Step(format!("ADD failed: fetching {url}: {e}"));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(std::time::Duration::from_secs(10)))
        .timeout_per_read(Some(std::time::Duration::from_secs(60)))
        .build()
        .into();
    let response = agent.get(url).call().map_err(|e| fail(e.to_string()))?;
    let mut reader = response.into_body().into_reader();
    std::fs::create_dir_all(dir).map_err(|e| Error::Io(dir.display().to_string(), e))?;
    let path = dir.join("download");
    let mut file =
        std::fs::File::create(&path).map_err(|e| Error::Io(path.display().to_string(), e))?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = reader.read(&mut buf).map_err(|e| fail(e.to_string()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        file.write_all(&buf[..n])
            .map_err(|e| Error::Io(path.display().to_string(), e))?;
    }
    let got = format!("sha256:{}", hex::encode(hasher.finalize()));
    if let Some(want) = checksum
        && want != got
    {
        return Err(Error::Step(format!(
            "ADD failed: digest mismatch for {url}: {want} was expected, the file is {got}"
        )));
    }
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .map_err(|e| Error::Io(path.display().to_string(), e))?;
    Ok(path)
}

/// The file name a URL gives `ADD URL /dir/`: its path's last segment.
fn url_file_name(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let after_host = path.splitn(4, '/').nth(3).unwrap_or("");
    match after_host.rsplit('/').next() {
        Some(last) if !last.is_empty() => last.to_string(),
        _ => "download".into(),
    }
}

/// Looks like a tar archive ADD unpacks: gzip, zstd, bzip2 or xz compressed, or a plain
/// tar.
fn is_archive(path: &Path) -> bool {
    let mut head = [0u8; 512];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .unwrap_or(0);
    let head = &head[..n];
    head.starts_with(&[0x1f, 0x8b])
        || head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
        || head.starts_with(b"BZh")
        || head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0])
        || (n >= 262 && &head[257..262] == b"ustar")
}

/// A digest of a directory tree: names, kinds, modes, owners, contents, link targets.
fn tree_digest(dir: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    let mut text = String::new();
    crate::context::walk(dir, "", &mut |rel| {
        let p = dir.join(rel);
        let Ok(md) = std::fs::symlink_metadata(&p) else {
            return;
        };
        text.push_str(&format!("{rel} {:o} {}:{} ", md.mode(), md.uid(), md.gid()));
        if md.file_type().is_symlink() {
            text.push_str(&std::fs::read_link(&p).unwrap_or_default().to_string_lossy());
        } else if md.is_file() {
            text.push_str(&Digest::of(&std::fs::read(&p).unwrap_or_default()).to_string());
        }
        text.push('\n');
    });
    Digest::of(text.as_bytes()).hex().to_string()
}

/// Copies into the staging directory that becomes the layer.
struct Copier<'a> {
    owner: Option<(u32, u32)>,
    mode: Option<u32>,
    staging: &'a Path,
    /// `--exclude` patterns, matched against each source path (context-relative).
    exclude: Vec<crate::context::Pattern>,
}

impl Copier<'_> {
    /// Whether `--exclude` leaves out the source path `rel`.
    fn excluded(&self, rel: &str) -> bool {
        self.exclude.iter().any(|p| p.matches(rel))
    }

    /// Makes the parents of `rel` (root's, 0755) in the staging directory.
    fn parents(&self, rel: &str) -> Result<PathBuf, Error> {
        let path = self.staging.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::Io(parent.display().to_string(), e))?;
        }
        Ok(path)
    }

    fn finish(&self, path: &Path, mode: u32, is_link: bool) -> Result<(), Error> {
        use std::os::unix::fs::PermissionsExt;
        let (uid, gid) = self.owner.unwrap_or((0, 0));
        std::os::unix::fs::lchown(path, Some(uid), Some(gid))
            .map_err(|e| Error::Io(path.display().to_string(), e))?;
        if !is_link {
            let mode = self.mode.unwrap_or(mode);
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
                .map_err(|e| Error::Io(path.display().to_string(), e))?;
        }
        Ok(())
    }

    /// One file, symlink or directory (not its contents) at `rel`.
    fn entry(&self, src: &Path, rel: &str) -> Result<(), Error> {
        use std::os::unix::fs::MetadataExt;
        let md =
            std::fs::symlink_metadata(src).map_err(|e| Error::Io(src.display().to_string(), e))?;
        let dst = self.parents(rel)?;
        let _ = std::fs::remove_file(&dst);
        if md.file_type().is_symlink() {
            let target =
                std::fs::read_link(src).map_err(|e| Error::Io(src.display().to_string(), e))?;
            std::os::unix::fs::symlink(&target, &dst)
                .map_err(|e| Error::Io(dst.display().to_string(), e))?;
            return self.finish(&dst, 0o777, true);
        }
        if md.is_dir() {
            std::fs::create_dir_all(&dst).map_err(|e| Error::Io(dst.display().to_string(), e))?;
        } else {
            std::fs::copy(src, &dst).map_err(|e| Error::Io(src.display().to_string(), e))?;
            let mtime =
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(md.mtime().max(0) as u64);
            if let Ok(f) = std::fs::File::options().write(true).open(&dst) {
                let _ = f.set_modified(mtime);
            }
        }
        self.finish(&dst, md.mode() & 0o7777, false)
    }

    /// The contents of directory `src` (context path `rel`) into `dest`, minus what the
    /// context ignores. Symlinks are copied as links, never followed.
    fn dir_contents(
        &self,
        src: &Path,
        rel: &str,
        dest: &str,
        ctx: Option<&Context>,
    ) -> Result<(), Error> {
        std::fs::create_dir_all(self.staging.join(dest))
            .map_err(|e| Error::Io(dest.to_string(), e))?;
        let mut failure = None;
        crate::context::walk(src, "", &mut |sub| {
            if failure.is_some() {
                return;
            }
            let ctx_rel = if rel == "." {
                sub.to_string()
            } else {
                format!("{rel}/{sub}")
            };
            if ctx.is_some_and(|c| c.ignored(&ctx_rel))
                || self.excluded(&ctx_rel)
                || self.excluded(sub)
            {
                return;
            }
            let target = if dest == "." {
                sub.to_string()
            } else {
                format!("{dest}/{sub}")
            };
            if let Err(e) = self.entry(&src.join(sub), &target) {
                failure = Some(e);
            }
        });
        failure.map_or(Ok(()), Err)
    }

    fn file_with(&self, rel: &str, content: &[u8]) -> Result<(), Error> {
        let dst = self.parents(rel)?;
        std::fs::write(&dst, content).map_err(|e| Error::Io(dst.display().to_string(), e))?;
        self.finish(&dst, 0o644, false)
    }

    /// `ADD` of a local archive (plain, gzip, zstd, bzip2 or xz): unpacked at `dest` by
    /// chapter 3's safe extractor.
    fn extract(&self, src: &Path, dest: &str) -> Result<(), Error> {
        let target = self.staging.join(dest);
        std::fs::create_dir_all(&target).map_err(|e| Error::Io(target.display().to_string(), e))?;
        let file = std::fs::File::open(src).map_err(|e| Error::Io(src.display().to_string(), e))?;
        let mut reader = std::io::BufReader::new(file);
        let head = std::io::BufRead::fill_buf(&mut reader)
            .map_err(|e| Error::Io(src.display().to_string(), e))?
            .to_vec();
        let stream: Box<dyn Read> = if head.starts_with(&[0x1f, 0x8b]) {
            Box::new(flate2::bufread::GzDecoder::new(reader))
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Box::new(
                ruzstd::decoding::StreamingDecoder::new(reader)
                    .map_err(|e| Error::Step(format!("ADD {}: {e}", src.display())))?,
            )
        } else if head.starts_with(b"BZh") {
            Box::new(bzip2::bufread::BzDecoder::new(reader))
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
            // lzma-rs decodes xz into a writer: a temporary file, read back by the extractor.
            let mut tmp =
                tempfile::tempfile().map_err(|e| Error::Io("a temporary file".into(), e))?;
            lzma_rs::xz_decompress(&mut reader, &mut tmp)
                .map_err(|e| Error::Step(format!("ADD {}: {e}", src.display())))?;
            tmp.rewind()
                .map_err(|e| Error::Io("a temporary file".into(), e))?;
            Box::new(tmp)
        } else {
            Box::new(reader)
        };
        ch03_rootfs_pivot_root::extract::extract(stream, &target, Default::default())
            .map_err(|e| Error::Step(format!("ADD {}: {e}", src.display())))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_become_nanoseconds() {
        assert_eq!(duration_ns("30s").unwrap(), 30_000_000_000);
        assert_eq!(duration_ns("1m30s").unwrap(), 90_000_000_000);
        assert_eq!(duration_ns("500ms").unwrap(), 500_000_000);
        assert!(duration_ns("5 s").is_err());
    }

    #[test]
    fn chown_names_come_from_the_images_own_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/app:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("etc/group"), "root:x:0:\nstaff:x:50:\n").unwrap();
        let dirs = vec![dir.path().to_path_buf()];
        assert_eq!(owner_of("app", &dirs).unwrap(), (1000, 1001));
        assert_eq!(owner_of("app:staff", &dirs).unwrap(), (1000, 50));
        assert_eq!(owner_of("7:8", &dirs).unwrap(), (7, 8));
        assert!(owner_of("nobody", &dirs).is_err());
    }

    #[test]
    fn the_cache_chain_changes_with_any_input() {
        let a = chain("p", "run x", &[]);
        // A digest, whatever the inputs' length.
        assert!(
            a.starts_with("sha256:") && a.len() == 71,
            "a sha256 digest: {a}"
        );
        assert_eq!(a, chain("p", "run x", &[]));
        // The parts are separated: moving text from one to the next changes the key.
        assert_ne!(chain("ab", "c", &[]), chain("a", "bc", &[]));
        assert_ne!(a, chain("p", "run y", &[]));
        assert_ne!(a, chain("q", "run x", &[]));
        assert_ne!(a, chain("p", "run x", &[("V".into(), "1".into())]));
    }
}
