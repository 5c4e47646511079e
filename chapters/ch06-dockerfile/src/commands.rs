//! The chapter's commands: read, check, print.
use std::io::{BufRead, Read, Write};

use serde_json::{Value, json};

use crate::cli::{BuildArgs, Command, ExpandArgs, ParseArgs};
use crate::parser::{Arg, Instruction};
use crate::shell::Lexer;
use crate::{Error, instructions, parse};

/// Runs `command`; returns the exit code.
pub fn run(root: &std::path::Path, command: &Command) -> Result<i32, Error> {
    match command {
        Command::Parse(a) => parse_command(a),
        Command::Expand(a) => expand(a),
        Command::Build(a) => build(root, a),
    }
}

/// `build`: reads the Dockerfile and the flags, builds, prints the image ID as docker does.
pub fn build(root: &std::path::Path, args: &BuildArgs) -> Result<i32, Error> {
    build_with(root, args, None)
}

/// `build`, with the network `--network default` means for RUN (mini-docker's bridge).
pub fn build_with(
    root: &std::path::Path,
    args: &BuildArgs,
    network: Option<std::sync::Arc<dyn crate::container::StepNetwork>>,
) -> Result<i32, Error> {
    let stdin_context = args.context.as_os_str() == "-";
    let dockerfile = match (&args.file, stdin_context) {
        (Some(f), _) if f.as_os_str() == "-" => read_file(f)?,
        (None, true) => read_file(std::path::Path::new("-"))?,
        (Some(f), _) => read_dockerfile(f)?,
        (None, false) => read_dockerfile(&args.context.join("Dockerfile"))?,
    };
    let mut build_args = Vec::new();
    for a in &args.build_args {
        match a.split_once('=') {
            Some((k, v)) => build_args.push((k.to_string(), v.to_string())),
            // `--build-arg NAME` takes the value from the environment, if set there.
            None => {
                if let Ok(v) = std::env::var(a) {
                    build_args.push((a.clone(), v));
                }
            }
        }
    }
    let mut labels = Vec::new();
    for l in &args.labels {
        let (k, v) = l.split_once('=').unwrap_or((l, ""));
        labels.push((k.to_string(), v.to_string()));
    }
    let (host_network, no_network) = match args.network.as_str() {
        "host" => (true, false),
        "none" => (false, true),
        "default" => (false, false),
        other => {
            return Err(Error::Usage(format!(
                "network mode {other:?} not supported by the builder: default, none or host"
            )));
        }
    };
    let opts = crate::build::BuildOptions {
        context: (!stdin_context).then(|| args.context.clone()),
        dockerfile,
        tags: args.tags.clone(),
        build_args,
        target: args.target.clone(),
        no_cache: args.no_cache,
        host_network,
        no_network,
        network,
        quiet: args.quiet,
        labels,
    };
    let store = ch05_image_pull::Store::open(root).map_err(|e| Error::Step(e.to_string()))?;
    let sys = ch04_unionfs_layers::sys::Kernel::new(false);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let built = crate::build::build(&sys, &store, &opts, &mut out)?;
    if args.quiet {
        let _ = writeln!(out, "{}", built.id);
    }
    if let Some(f) = &args.iidfile {
        std::fs::write(f, built.id.to_string())
            .map_err(|e| Error::Io(f.display().to_string(), e))?;
    }
    Ok(0)
}

/// The Dockerfile at `path`, with docker's message when it is missing.
fn read_dockerfile(path: &std::path::Path) -> Result<(String, String), Error> {
    if !path.exists() {
        return Err(Error::Usage(format!(
            "unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat {}: no such file or directory",
            path.display()
        )));
    }
    let (_, text) = read_file(path)?;
    let name = path
        .file_name()
        .map_or("Dockerfile".into(), |n| n.to_string_lossy().into_owned());
    Ok((name, text))
}

fn read_file(path: &std::path::Path) -> Result<(String, String), Error> {
    if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| Error::Io("read stdin".into(), e))?;
        return Ok(("Dockerfile".into(), text));
    }
    let bytes = std::fs::read(path).map_err(|e| Error::Io(path.display().to_string(), e))?;
    Ok((
        path.display().to_string(),
        String::from_utf8_lossy(&bytes).into_owned(),
    ))
}

/// `parse`: the instructions, checked (or BuildKit's dump, which shows what the parser
/// alone makes of the file, unknown keywords included).
fn parse_command(args: &ParseArgs) -> Result<i32, Error> {
    let (name, text) = read_file(&args.file)?;
    let file = parse(&text).map_err(|e| Error::at(&name, e))?;
    let mut err = std::io::stderr();
    for w in &file.warnings {
        let _ = writeln!(err, "{w}");
    }
    if args.dump {
        println!("{}", file.dump());
        return Ok(0);
    }
    instructions::check(&file).map_err(|e| Error::at(&name, e))?;
    if args.json {
        let list: Vec<Value> = file.instructions.iter().map(to_json).collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "escape": file.escape.to_string(),
                "directives": file.directives.iter().map(|(k, v)| json!({"name": k, "value": v})).collect::<Vec<_>>(),
                "instructions": list,
            }))
            .expect("JSON")
        );
        return Ok(0);
    }
    let mut out = String::new();
    for i in &file.instructions {
        out.push_str(&describe(i));
    }
    print!("{out}");
    Ok(0)
}

fn lines(i: &Instruction) -> String {
    if i.start_line == i.end_line {
        i.start_line.to_string()
    } else {
        format!("{}-{}", i.start_line, i.end_line)
    }
}

/// One instruction for people: lines, keyword, flags, form, arguments, heredocs.
fn describe(i: &Instruction) -> String {
    let mut s = format!("{:<7} {:<11}", lines(i), i.keyword.to_uppercase());
    for f in &i.flags {
        s.push_str(&format!(" {f}"));
    }
    s.push(' ');
    s.push_str(&arguments(i));
    s.push('\n');
    for h in &i.heredocs {
        let count = h.content.lines().count();
        s.push_str(&format!(
            "{:<19} heredoc {}{} ({} line{}, {})\n",
            "",
            if h.chomp { "<<-" } else { "<<" },
            h.name,
            count,
            if count == 1 { "" } else { "s" },
            if h.expand { "expanded" } else { "literal" },
        ));
    }
    s
}

fn arguments(i: &Instruction) -> String {
    let values = i.values();
    match i.command().as_str() {
        "run" | "cmd" | "entrypoint" | "shell" if i.json => {
            format!(
                "exec form: {}",
                serde_json::to_string(&values).expect("JSON")
            )
        }
        "run" | "cmd" | "entrypoint" => match values.first() {
            Some(v) => format!("shell form: {v}"),
            None => String::new(),
        },
        "env" | "label" => values
            .chunks(3)
            .map(|kv| format!("{}={}", kv[0], kv[1]))
            .collect::<Vec<_>>()
            .join(" "),
        "onbuild" => match i.args.first() {
            Some(Arg::Nested(inner)) => {
                format!("{} {}", inner.keyword.to_uppercase(), arguments(inner))
            }
            _ => String::new(),
        },
        _ => values.join(" "),
    }
}

fn to_json(i: &Instruction) -> Value {
    let args: Vec<Value> = i
        .args
        .iter()
        .map(|a| match a {
            Arg::Value(v) => json!(v),
            Arg::Nested(inner) => to_json(inner),
        })
        .collect();
    json!({
        "keyword": i.keyword.to_uppercase(),
        "flags": i.flags,
        "args": args,
        "form": if i.json { "exec" } else { "shell" },
        "heredocs": i.heredocs.iter().map(|h| json!({
            "name": h.name, "fd": h.fd, "expand": h.expand, "chomp": h.chomp, "content": h.content,
        })).collect::<Vec<_>>(),
        "lines": [i.start_line, i.end_line],
    })
}

/// `expand`: each line of stdin through the lexer.
fn expand(args: &ExpandArgs) -> Result<i32, Error> {
    if args.escape != '\\' && args.escape != '`' {
        return Err(Error::Usage(format!(
            "invalid escape character {:?}: ` or \\",
            args.escape
        )));
    }
    let mut env: Vec<(String, String)> = Vec::new();
    for e in &args.env {
        let (k, v) = e.split_once('=').unwrap_or((e, ""));
        env.push((k.to_string(), v.to_string()));
    }
    let lexer = Lexer::new(args.escape);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for line in std::io::stdin().lock().lines() {
        let line = line.map_err(|e| Error::Io("read stdin".into(), e))?;
        let value = if args.words {
            match lexer.process_words(&line, &env) {
                Ok(w) => json!({ "words": w }),
                Err(e) => json!({ "error": e.to_string() }),
            }
        } else {
            match lexer.process_word(&line, &env) {
                Ok(w) => json!({ "out": w }),
                Err(e) => json!({ "error": e.to_string() }),
            }
        };
        writeln!(out, "{value}").map_err(|e| Error::Io("write stdout".into(), e))?;
    }
    Ok(0)
}
