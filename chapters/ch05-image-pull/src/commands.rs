//! The binary's commands: each parses what it was given, calls the library, prints what
//! docker would print.
use std::io::{BufRead as _, Write as _};

use crate::cli::{Cli, Command, LoginArgs};
use crate::credentials::ConfigFiles;
use crate::reference::{self, DOCKER_HUB, Reference};
use crate::store::{self, Store};
use crate::transport::Http;
use crate::{Credentials, Error, Platform, Progress, PullOptions, PushOptions, images};

/// Runs one command line.
pub fn run(cli: &Cli) -> Result<(), Error> {
    let transport = Http::new(cli.trace);
    let config = ConfigFiles::from_env();
    let open = || {
        let root = store::root_from(cli.root.as_deref());
        Store::open(&root).map_err(|e| e.context(format!("open the store {}", root.display())))
    };
    match &cli.command {
        Command::Pull(a) => {
            let r = Reference::parse(&a.reference)?;
            let platform = a
                .platform
                .as_deref()
                .map(Platform::parse)
                .transpose()
                .map_err(Error::Usage)?;
            let store = open()?;
            let options = PullOptions {
                platform,
                progress: Progress::auto(a.quiet),
                config,
            };
            let pulled = if a.simple {
                crate::story::pull(&store, &transport, &r, &options)
            } else {
                crate::pull(&store, &transport, &r, &options)
            };
            pulled.map_err(|e| e.context(format!("pull {r}")))?;
            println!("{r}");
        }
        Command::Push(a) => {
            let r = Reference::parse(&a.reference)?;
            let store = open()?;
            let options = PushOptions {
                progress: Progress::auto(a.quiet),
                config,
                chunk_size: a.chunk_size,
            };
            crate::push(&store, &transport, &r, &options)
                .map_err(|e| e.context(format!("push {r}")))?;
            if a.quiet {
                println!("{r}");
            }
        }
        Command::Images(a) => {
            let store = open()?;
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
        }
        Command::Inspect { image } => {
            let store = open()?;
            let img = store
                .resolve(image)?
                .ok_or_else(|| Error::NoSuchImage(image.clone()))?;
            let manifest = store.read_blob(&img.manifest_digest)?;
            let config = store.read_blob(&img.config_digest)?;
            let json = serde_json::json!([images::inspect(&img, &manifest, &config)]);
            println!("{}", serde_json::to_string_pretty(&json).expect("JSON"));
        }
        Command::Rmi { images } => {
            let store = open()?;
            for name in images {
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
        }
        Command::Tag { source, target } => {
            let store = open()?;
            let t = Reference::parse(target)?;
            store
                .tag(source, &t)
                .map_err(|e| e.context(format!("tag {source} {target}")))?;
        }
        Command::Login(a) => {
            let registry = registry_arg(a.registry.as_deref())?;
            let credentials = ask_credentials(a)?;
            crate::login(&transport, &config, &registry, credentials)
                .map_err(|e| e.context(format!("login {registry}")))?;
            println!("Login Succeeded");
        }
        Command::Logout { registry } => {
            let registry = registry_arg(registry.as_deref())?;
            if crate::logout(&config, &registry)? {
                println!("Removing login credentials for {registry}");
            } else if config.in_docker_config(&registry) {
                println!(
                    "Not logged in to {registry} through mini-docker (docker's own config.json has credentials for it: `docker logout {registry}` removes them)"
                );
            } else {
                println!("Not logged in to {registry}");
            }
        }
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
