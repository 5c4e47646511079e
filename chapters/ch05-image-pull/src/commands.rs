//! The binary's commands: each parses what it was given, calls the library, prints what
//! docker would print.
use std::io::{BufRead as _, Write as _};

use crate::cli::{Cli, Command, ImagesArgs, LoginArgs, PullArgs, PushArgs};
use crate::credentials::ConfigFiles;
use crate::reference::{self, DOCKER_HUB, Reference};
use crate::store::{self, Store};
use crate::transport::Http;
use crate::{Credentials, Error, Platform, Progress, PullOptions, PushOptions, images};

/// Runs one command line: one function per subcommand.
pub fn run(cli: &Cli) -> Result<(), Error> {
    let transport = Http::new(cli.trace);
    match &cli.command {
        Command::Pull(a) => pull(cli, &transport, a),
        Command::Push(a) => push(cli, &transport, a),
        Command::Images(a) => list_images(&open_store(cli)?, a),
        Command::Inspect { image } => inspect(&open_store(cli)?, image),
        Command::Rmi { images } => rmi(&open_store(cli)?, images),
        Command::Tag { source, target } => tag(&open_store(cli)?, source, target),
        Command::Login(a) => login(&transport, a),
        Command::Logout { registry } => logout(registry.as_deref()),
    }
}

/// The store `--root` or the environment names (see [`store::root_from`]).
fn open_store(cli: &Cli) -> Result<Store, Error> {
    let root = store::root_from(cli.root.as_deref());
    Store::open(&root).map_err(|e| e.context(format!("open the store {}", root.display())))
}

/// `pull [--simple] REFERENCE`: the production pull, or with `--simple` the chapter's
/// story; then the name, as docker prints it.
fn pull(cli: &Cli, transport: &Http, a: &PullArgs) -> Result<(), Error> {
    let r = Reference::parse(&a.reference)?;
    let platform = a
        .platform
        .as_deref()
        .map(Platform::parse)
        .transpose()
        .map_err(Error::Usage)?;
    let store = open_store(cli)?;
    let options = PullOptions {
        platform,
        progress: Progress::auto(a.quiet),
        config: ConfigFiles::from_env(),
    };
    let pulled = if a.simple {
        crate::story::pull(&store, transport, &r, &options)
    } else {
        crate::pull(&store, transport, &r, &options)
    };
    pulled.map_err(|e| e.context(format!("pull {r}")))?;
    println!("{r}");
    Ok(())
}

/// `push REFERENCE`.
fn push(cli: &Cli, transport: &Http, a: &PushArgs) -> Result<(), Error> {
    let r = Reference::parse(&a.reference)?;
    let store = open_store(cli)?;
    let options = PushOptions {
        progress: Progress::auto(a.quiet),
        config: ConfigFiles::from_env(),
        chunk_size: a.chunk_size,
    };
    crate::push(&store, transport, &r, &options).map_err(|e| e.context(format!("push {r}")))?;
    if a.quiet {
        println!("{r}");
    }
    Ok(())
}

/// `images [-q]`: docker's table, or each image ID once.
fn list_images(store: &Store, a: &ImagesArgs) -> Result<(), Error> {
    let list = store.list()?;
    if a.quiet {
        let mut seen = Vec::new();
        for (_, image) in &list {
            let id = image.config_digest.short().to_string();
            if !seen.contains(&id) {
                println!("{id}");
                seen.push(id);
            }
        }
    } else {
        let now = jiff::Timestamp::now().as_second();
        print!("{}", images::table(&images::rows(&list, now)));
    }
    Ok(())
}

/// `inspect IMAGE`: the manifest and config as JSON.
fn inspect(store: &Store, image: &str) -> Result<(), Error> {
    let img = store
        .resolve(image)?
        .ok_or_else(|| Error::NoSuchImage(image.to_string()))?;
    let manifest = store.read_blob(&img.manifest_digest)?;
    let config = store.read_blob(&img.config_digest)?;
    let json = serde_json::json!([images::inspect(&img, &manifest, &config)]);
    println!("{}", serde_json::to_string_pretty(&json).expect("JSON"));
    Ok(())
}

/// `rmi IMAGE...`: what was untagged, then what garbage collection deleted.
fn rmi(store: &Store, names: &[String]) -> Result<(), Error> {
    for name in names {
        let removed = store
            .remove(name)
            .map_err(|e| e.context(format!("rmi {name}")))?;
        for u in &removed.untagged {
            let shown = Reference::parse(u)
                .map(|r| r.familiar())
                .unwrap_or(u.clone());
            println!("Untagged: {shown}");
        }
        for d in &removed.gc.blobs {
            println!("Deleted: {d}");
        }
    }
    Ok(())
}

/// `tag SOURCE TARGET`.
fn tag(store: &Store, source: &str, target: &str) -> Result<(), Error> {
    let t = Reference::parse(target)?;
    store
        .tag(source, &t)
        .map_err(|e| e.context(format!("tag {source} {target}")))?;
    Ok(())
}

/// `login [REGISTRY]`: checked against the registry, then stored.
fn login(transport: &Http, a: &LoginArgs) -> Result<(), Error> {
    let registry = registry_arg(a.registry.as_deref())?;
    let credentials = ask_credentials(a)?;
    crate::login(transport, &ConfigFiles::from_env(), &registry, credentials)
        .map_err(|e| e.context(format!("login {registry}")))?;
    println!("Login Succeeded");
    Ok(())
}

/// `logout [REGISTRY]`, saying so when the credentials are docker's own.
fn logout(registry: Option<&str>) -> Result<(), Error> {
    let registry = registry_arg(registry)?;
    let config = ConfigFiles::from_env();
    if crate::logout(&config, &registry)? {
        println!("Removing login credentials for {registry}");
    } else if config.in_docker_config(&registry) {
        println!(
            "Not logged in to {registry} through mini-docker (docker's own config.json has credentials for it: `docker logout {registry}` removes them)"
        );
    } else {
        println!("Not logged in to {registry}");
    }
    Ok(())
}

fn registry_arg(arg: Option<&str>) -> Result<String, Error> {
    Ok(reference::normalize_registry(arg.unwrap_or(DOCKER_HUB))?)
}

/// The user name and password from the flags, standard input or the terminal.
pub fn ask_credentials(a: &LoginArgs) -> Result<Credentials, Error> {
    let stdin = std::io::stdin();
    let read_line = |prompt: &str| -> Result<String, Error> {
        if !prompt.is_empty() {
            eprint!("{prompt}");
            let _ = std::io::stderr().flush();
        }
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .map_err(|e| Error::Usage(format!("reading standard input: {e}")))?;
        Ok(line.trim_end_matches(['\n', '\r']).to_string())
    };
    if a.password.is_some() && a.password_stdin {
        return Err(Error::Usage(
            "--password and --password-stdin are mutually exclusive".into(),
        ));
    }
    let username = match &a.username {
        Some(u) => u.clone(),
        None if a.password_stdin => {
            return Err(Error::Usage("--password-stdin needs --username".into()));
        }
        None => read_line("Username: ")?,
    };
    let password = if let Some(p) = &a.password {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
        p.clone()
    } else if a.password_stdin {
        read_line("")?
    } else {
        read_password()?
    };
    if username.is_empty() || password.is_empty() {
        return Err(Error::Usage("a user name and a password are needed".into()));
    }
    Ok(Credentials { username, password })
}

/// Asks for a password on the terminal with echo off (termios(3)), or reads a line.
fn read_password() -> Result<String, Error> {
    use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
    let stdin = std::io::stdin();
    eprint!("Password: ");
    let _ = std::io::stderr().flush();
    let saved = tcgetattr(&stdin).ok();
    if let Some(t) = &saved {
        let mut quiet = t.clone();
        quiet.local_flags.remove(LocalFlags::ECHO);
        let _ = tcsetattr(&stdin, SetArg::TCSANOW, &quiet);
    }
    let mut line = String::new();
    let result = stdin.lock().read_line(&mut line);
    if let Some(t) = &saved {
        let _ = tcsetattr(&stdin, SetArg::TCSANOW, t);
        eprintln!();
    }
    result.map_err(|e| Error::Usage(format!("reading the password: {e}")))?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}
