//! The binary's commands: each takes its parsed arguments, calls the library and prints
//! what the note shows. `main.rs` only parses and dispatches here.
use std::io::Write;
use std::path::PathBuf;

use crate::cli::{ApplyArgs, Command, DiffArgs, InitArgs, MountArgs};
use crate::init::InitLayer;
use crate::sys::LayerSys;
use crate::{ApplyOptions, Error, Stack, demo, diff, open_layer, overlay};

/// Runs one subcommand. Returns the exit code to leave with.
pub fn run(sys: &dyn LayerSys, command: &Command) -> Result<i32, Error> {
    match command {
        Command::Mount(args) => mount(sys, args),
        Command::Umount { target } => {
            overlay::umount(sys, target)?;
            Ok(0)
        }
        Command::Demo => demo_in_scratch(sys),
        Command::Diff(args) => write_diff(args),
        Command::Apply(args) => apply(args),
        Command::InitLayer(args) => init_layer(args),
    }
}

/// `mount`: the layers as given, top first, with the upper and work directories.
pub fn mount(sys: &dyn LayerSys, args: &MountArgs) -> Result<i32, Error> {
    let stack = Stack {
        lowers: args.lower.split(':').map(PathBuf::from).collect(),
        upper: Some((args.upper.clone(), args.work.clone())),
    };
    overlay::mount(sys, &stack, &args.target)?;
    Ok(0)
}

/// `demo`, in a scratch directory removed afterwards.
pub fn demo_in_scratch(sys: &dyn LayerSys) -> Result<i32, Error> {
    let scratch = tempfile::Builder::new()
        .prefix("ch04-demo-")
        .tempdir()
        .map_err(|e| Error::Io("create a scratch directory".into(), e))?;
    demo::demo(sys, scratch.path())
}

/// `diff`: the upper directory as a layer tarball (gzip-compressed for a `.gz` name), its
/// listing on stdout and a summary on stderr.
pub fn write_diff(args: &DiffArgs) -> Result<i32, Error> {
    let output = &args.output;
    let failed = |e| Error::Io(output.display().to_string(), e);
    let mut tar = Vec::new();
    let stats = diff::diff(&args.upper, &mut tar, &[])?;
    let file = std::fs::File::create(output).map_err(failed)?;
    let mut out: Box<dyn Write> = if output.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::write::GzEncoder::new(
            file,
            flate2::Compression::default(),
        ))
    } else {
        Box::new(file)
    };
    out.write_all(&tar)
        .and_then(|()| out.flush())
        .map_err(failed)?;
    drop(out);
    let listing = diff::listing(&tar[..]).map_err(|e| Error::Io("list the layer".into(), e))?;
    for line in listing {
        println!("{line}");
    }
    eprintln!(
        "ch04-unionfs-layers: wrote {} ({} entries, {} whiteouts, {} opaque directories)",
        output.display(),
        stats.entries,
        stats.whiteouts,
        stats.opaque
    );
    Ok(0)
}

/// `apply`: a layer into a layer directory, or onto the layers below with `--flatten`.
pub fn apply(args: &ApplyArgs) -> Result<i32, Error> {
    let mut options = if args.flatten {
        ApplyOptions::flatten()
    } else {
        ApplyOptions::layer()
    };
    options.devices = args.devices;
    let stats = crate::apply(open_layer(&args.layer)?, &args.dir, &options)
        .map_err(|e| Error::Apply(args.layer.clone(), e))?;
    let what = if args.flatten {
        "deletions"
    } else {
        "whiteouts"
    };
    println!(
        "applied {} to {}: {} entries, {} bytes, {} {what}, {} opaque directories",
        args.layer.display(),
        args.dir.display(),
        stats.extract.entries,
        stats.extract.bytes,
        stats.whiteouts,
        stats.opaque
    );
    if stats.extract.skipped_devices > 0 {
        println!(
            "skipped {} device nodes (use --devices to create them)",
            stats.extract.skipped_devices
        );
    }
    Ok(0)
}

/// `init-layer`: the three files, listed as written.
pub fn init_layer(args: &InitArgs) -> Result<i32, Error> {
    let layer = InitLayer {
        hostname: args.hostname.clone(),
        hosts: vec![],
        dns: args.dns.clone(),
        dns_search: vec![],
        dns_options: vec![],
    };
    let written = layer
        .write(&args.dir)
        .map_err(|e| Error::Io(args.dir.display().to_string(), e))?;
    for path in written {
        println!("{}", path.display());
    }
    Ok(0)
}
