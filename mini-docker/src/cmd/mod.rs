//! One file per command. Each parses nothing itself (clap did), calls the shared pieces,
//! and prints what docker prints.
pub mod archive;
pub mod attach;
pub mod builder;
pub mod commit;
pub mod cp;
pub mod create;
pub mod diff;
pub mod exec;
pub mod export;
pub mod images;
pub mod import;
pub mod inspect;
pub mod kill;
pub mod logs;
pub mod network;
pub mod pause;
pub mod ps;
pub mod rename;
pub mod rm;
pub mod run;
pub mod start;
pub mod stats;
pub mod stop;
pub mod system;
pub mod top;
pub mod update;
pub mod volume;
pub mod wait;

use ch04_unionfs_layers::sys::Kernel;

use crate::{Cli, Command, Error};

/// Runs the command `cli` names; returns the exit code.
pub fn dispatch(cli: &Cli) -> Result<i32, Error> {
    close_store(&cli.root)?;
    if puts_processes_in_containers(&cli.command) {
        // Before anything else: what this command clones into a container must not be able
        // to reach a writable copy of our binary (CVE-2019-5736, see chapter 3's `exe`).
        ch03_rootfs_pivot_root::exe::reexec_read_only(&Kernel::new(cli.trace))?;
    }
    run_command(cli, &cli.command)
}

/// Closes the store to other users: its extracted layers keep the images' setuid-root
/// binaries, which any user who could reach `layers/` could run as root (the
/// CVE-2021-41091 class, which docker closed by making its data directories 0710/0701).
/// The store's root is `0711`: nobody else may list it, but a container's own root under
/// `--userns-remap` (an ordinary uid outside) may pass through it to its container's
/// directory, where it mounts its root and binds its volumes and init files. `layers/`
/// and each container's directory are `0700` (`0711` for a remapped one's, passed through
/// the same way): overlayfs reaches the layers with the credentials of the root that
/// mounted it, not the container's. A store made before this is closed by the
/// next command.
fn close_store(root: &std::path::Path) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    let set = |path: &std::path::Path, mode: u32| match std::fs::metadata(path) {
        Ok(md) if md.permissions().mode() & 0o777 != mode => {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
                .map_err(|e| Error::io(&format!("chmod {mode:o}"), path, e))
        }
        _ => Ok(()),
    };
    set(root, 0o711)?;
    set(&root.join("layers"), 0o700)
}

/// The commands that start a container's process or join one: `run`, `start`, `restart`,
/// `exec`, `build` (its RUN steps), and the monitor, which inherits its read-only binary
/// from them.
fn puts_processes_in_containers(command: &Command) -> bool {
    match command {
        Command::Run(_)
        | Command::Start(_)
        | Command::Restart(_)
        | Command::Exec(_)
        | Command::Build(_) => true,
        Command::Container(c) => c
            .command()
            .is_some_and(|v| puts_processes_in_containers(&v)),
        _ => false,
    }
}

fn run_command(cli: &Cli, command: &Command) -> Result<i32, Error> {
    let sys = Kernel::new(cli.trace);
    let root = cli.root.as_path();
    match command {
        Command::Run(a) => run::run(cli, a),
        Command::Create(a) => create::main(cli, a),
        Command::Start(a) => start::main(root, a),
        Command::Stop(a) => stop::main(root, a, false),
        Command::Restart(a) => stop::main(root, a, true),
        Command::Kill(a) => kill::main(root, a),
        Command::Wait(a) => wait::main(root, a),
        Command::Rm(a) => rm::main(root, a),
        Command::Pause(a) => pause::main(&sys, root, a, true),
        Command::Unpause(a) => pause::main(&sys, root, a, false),
        Command::Ps(a) => ps::main(root, a),
        Command::Inspect(a) => inspect::main(root, a),
        Command::Logs(a) => logs::main(root, a),
        Command::Attach(a) => attach::main(root, a),
        Command::Exec(a) => exec::main(&sys, root, a),
        Command::Top(a) => top::main(root, a),
        Command::Stats(a) => stats::main(&sys, root, a),
        Command::Export(a) => export::main(&sys, cli, a),
        Command::Import(a) => import::main(cli, a),
        Command::Commit(a) => commit::main(cli, a),
        Command::Cp(a) => cp::main(&sys, cli, a),
        Command::Diff(a) => diff::main(root, a),
        Command::Images(a) => images::images(cli, a),
        Command::Rmi(a) => images::rmi(cli, a),
        Command::Tag(a) => images::tag(cli, a),
        Command::History(a) => images::history(cli, a),
        Command::Pull(a) => images::pull(cli, a),
        Command::Push(a) => images::push(cli, a),
        Command::Login(a) => images::login(cli, a),
        Command::Logout(a) => images::logout(cli, a),
        Command::Container(c) => match c.command() {
            Some(verb) => run_command(cli, &verb),
            None => system::container_prune(cli),
        },
        Command::Image(c) => match (c.command(), c) {
            (Some(verb), _) => run_command(cli, &verb),
            (None, system::ImageCommand::Prune { all, .. }) => system::image_prune(cli, *all),
            (None, _) => unreachable!("only prune has no top-level command"),
        },
        Command::Rename(a) => rename::main(root, a),
        // RUN steps join the bridge by default, as docker's build containers do.
        Command::Build(a) => Ok(ch06_dockerfile::commands::build_with(
            root,
            a,
            Some(std::sync::Arc::new(crate::runtime::BuildBridge {
                root: root.to_path_buf(),
            })),
        )?),
        Command::Builder(c) => builder::main(root, c),
        Command::Save(a) => archive::save(root, a),
        Command::Load(a) => archive::load(root, a),
        Command::Update(a) => update::main(&sys, root, a),
        Command::Volume(c) => volume::main(root, c),
        Command::Network(c) => network::main(root, c),
        Command::Port(a) => network::port(root, a),
        Command::System(c) => system::system(cli, c),
        Command::Info { format } => system::info(cli, format.as_deref()),
        Command::Version { format } => system::version(format.as_deref()),
        Command::Monitor { id } => crate::monitor::monitor_main(&sys, root, id),
        Command::Drain { fd } => exec::drain_main(*fd),
    }
}

/// docker's way with a list of names (`rm`, `kill`, `stop`, `pause`, `volume rm`...): each
/// one done in turn, its name printed when done, `Error: ...` on stderr when not, and the
/// exit status 1 if any failed.
pub fn each_named(names: &[String], mut f: impl FnMut(&str) -> Result<(), Error>) -> i32 {
    let mut status = 0;
    for name in names {
        match f(name) {
            Ok(()) => println!("{name}"),
            Err(e) => {
                crate::say(&e);
                status = 1;
            }
        }
    }
    status
}
