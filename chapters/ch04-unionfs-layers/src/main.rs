//! `ch04-unionfs-layers`: the chapter's demo. Parses arguments, calls the library, prints
//! errors.
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use ch04_unionfs_layers::cli::{Cli, Command};
use ch04_unionfs_layers::init::InitLayer;
use ch04_unionfs_layers::sys::Kernel;
use ch04_unionfs_layers::{ApplyOptions, Error, Stack, demo, diff, open_layer, overlay};
use clap::Parser;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let sys = Kernel::new(cli.trace);
    match run(&sys, &cli.command) {
        Ok(code) => ExitCode::from(code as u8),
        Err(err) => {
            let code = err.exit_code();
            eprintln!("ch04-unionfs-layers: {:#}", anyhow::Error::from(err));
            ExitCode::from(code as u8)
        }
    }
}

fn run(sys: &Kernel, command: &Command) -> Result<i32, Error> {
    match command {
        Command::Mount(a) => {
            let stack = Stack {
                lowers: a.lower.split(':').map(PathBuf::from).collect(),
                upper: Some((a.upper.clone(), a.work.clone())),
            };
            overlay::mount(sys, &stack, &a.target)?;
            Ok(0)
        }
        Command::Umount { target } => {
            overlay::umount(sys, target)?;
            Ok(0)
        }
        Command::Demo => {
            let scratch = tempfile::Builder::new()
                .prefix("ch04-demo-")
                .tempdir()
                .map_err(|e| Error::Io("create a scratch directory".into(), e))?;
            demo::demo(sys, scratch.path())
        }
        Command::Diff(a) => {
            let file = std::fs::File::create(&a.output)
                .map_err(|e| Error::Io(a.output.display().to_string(), e))?;
            let gz = a.output.extension().is_some_and(|e| e == "gz");
            let mut tar = Vec::new();
            let stats = diff::diff(&a.upper, &mut tar, &[])?;
            let mut out: Box<dyn Write> = if gz {
                Box::new(flate2::write::GzEncoder::new(
                    file,
                    flate2::Compression::default(),
                ))
            } else {
                Box::new(file)
            };
            out.write_all(&tar)
                .and_then(|()| out.flush())
                .map_err(|e| Error::Io(a.output.display().to_string(), e))?;
            drop(out);
            for line in
                diff::listing(&tar[..]).map_err(|e| Error::Io("list the layer".into(), e))?
            {
                println!("{line}");
            }
            eprintln!(
                "ch04-unionfs-layers: wrote {} ({} entries, {} whiteouts, {} opaque directories)",
                a.output.display(),
                stats.entries,
                stats.whiteouts,
                stats.opaque
            );
            Ok(0)
        }
        Command::Apply(a) => {
            let mut options = if a.flatten {
                ApplyOptions::flatten()
            } else {
                ApplyOptions::layer()
            };
            options.devices = a.devices;
            let stats = ch04_unionfs_layers::apply(open_layer(&a.layer)?, &a.dir, &options)
                .map_err(|e| Error::Apply(a.layer.clone(), e))?;
            let what = if a.flatten { "deletions" } else { "whiteouts" };
            println!(
                "applied {} to {}: {} entries, {} bytes, {} {what}, {} opaque directories",
                a.layer.display(),
                a.dir.display(),
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
        Command::InitLayer(a) => {
            let layer = InitLayer {
                hostname: a.hostname.clone(),
                hosts: vec![],
                dns: a.dns.clone(),
                dns_search: vec![],
            };
            for path in layer
                .write(&a.dir)
                .map_err(|e| Error::Io(a.dir.display().to_string(), e))?
            {
                println!("{}", path.display());
            }
            Ok(0)
        }
    }
}
