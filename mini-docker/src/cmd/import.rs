//! `mini-docker import`: a tarball of a root filesystem (from `export`, or made by hand)
//! becomes a one-layer image. The archive goes through chapter 4's layer application
//! (chapter 3's safe extraction rules), so a hostile tarball is refused, not stored.
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use ch05_image_pull::manifest::Descriptor;
use ch05_image_pull::store::NewLayer;
use clap::Args;
use serde_json::{Value, json};

use crate::record::now;
use crate::{Cli, Error};

/// The media type of an uncompressed OCI layer.
pub const LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";

/// `import`.
#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    /// Apply Dockerfile instruction to the created image (CMD, ENTRYPOINT, ENV, WORKDIR,
    /// USER, VOLUME, STOPSIGNAL).
    #[arg(short, long)]
    pub change: Vec<String>,
    /// Set commit message for imported image.
    #[arg(short, long)]
    pub message: Option<String>,
    /// The tarball, or - for standard input.
    pub file: String,
    /// The name to give it: REPOSITORY[:TAG] (without one, the image is dangling:
    /// `<none>:<none>`, known by its ID).
    pub reference: Option<String>,
}

/// Applies one `--change` (a Dockerfile instruction) to an image config's `config` object.
/// The JSON form (`CMD ["a", "b"]`) is taken as is; the shell form (`CMD a b`) becomes
/// `["/bin/sh", "-c", "a b"]`, as the Dockerfile reference says.
pub fn apply_change(config: &mut Value, change: &str) -> Result<(), Error> {
    let (word, rest) = change
        .trim()
        .split_once(char::is_whitespace)
        .unwrap_or((change.trim(), ""));
    let rest = rest.trim();
    let list = |rest: &str| -> Result<Value, Error> {
        if rest.starts_with('[') {
            serde_json::from_str::<Vec<String>>(rest)
                .map(|v| json!(v))
                .map_err(|e| Error::Usage(format!("invalid --change {change:?}: {e}")))
        } else {
            Ok(json!(["/bin/sh", "-c", rest]))
        }
    };
    match word.to_ascii_uppercase().as_str() {
        "CMD" => config["Cmd"] = list(rest)?,
        "ENTRYPOINT" => config["Entrypoint"] = list(rest)?,
        "WORKDIR" => config["WorkingDir"] = json!(rest),
        "USER" => config["User"] = json!(rest),
        "STOPSIGNAL" => config["StopSignal"] = json!(rest),
        "ENV" => {
            let (k, v) = rest
                .split_once('=')
                .or_else(|| rest.split_once(' '))
                .ok_or_else(|| {
                    Error::Usage(format!("invalid --change {change:?}: ENV needs KEY=VALUE"))
                })?;
            let mut env: Vec<String> = config["Env"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            env.retain(|e| e.split('=').next() != Some(k.trim()));
            env.push(format!("{}={}", k.trim(), v.trim()));
            config["Env"] = json!(env);
        }
        "VOLUME" => {
            let paths: Vec<String> = if rest.starts_with('[') {
                serde_json::from_str(rest)
                    .map_err(|e| Error::Usage(format!("invalid --change {change:?}: {e}")))?
            } else {
                rest.split_whitespace().map(str::to_string).collect()
            };
            for p in paths {
                config["Volumes"][p] = json!({});
            }
        }
        "EXPOSE" => {
            for port in rest.split_whitespace() {
                let port = if port.contains('/') {
                    port.to_string()
                } else {
                    format!("{port}/tcp")
                };
                config["ExposedPorts"][port] = json!({});
            }
        }
        "LABEL" => {
            for pair in rest.split_whitespace() {
                let (k, v) = pair.split_once('=').ok_or_else(|| {
                    Error::Usage(format!(
                        "invalid --change {change:?}: LABEL needs KEY=VALUE"
                    ))
                })?;
                config["Labels"][k] = json!(v.trim_matches('"'));
            }
        }
        // docker's words (`dockerfile.ValidateChange`); the rest of a Dockerfile is
        // chapter 6's `build`.
        other => {
            return Err(Error::Usage(format!(
                "{} is not a valid change command",
                other.to_ascii_lowercase()
            )));
        }
    }
    Ok(())
}

/// Whether `block` (what a stream starts with) is a tar header whose checksum is right
/// (the sum of its 512 bytes, the checksum field counted as spaces; tar(5)), or a block of
/// zeros, which ends an archive with nothing in it.
fn starts_a_tar(block: &[u8]) -> bool {
    let Some(h) = block.get(..512) else {
        return false;
    };
    if h.iter().all(|b| *b == 0) {
        return true;
    }
    let sum: u32 = h
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(*b)
            }
        })
        .sum();
    let stored = std::str::from_utf8(&h[148..156])
        .ok()
        .map(|s| s.trim_matches(|c: char| c == '\0' || c == ' '))
        .and_then(|s| u32::from_str_radix(s, 8).ok());
    stored == Some(sum)
}

/// Stores an uncompressed layer stream as a blob; its digest is also its diff-id.
pub fn store_layer(
    store: &ch05_image_pull::Store,
    layer: &mut dyn Read,
) -> Result<NewLayer, Error> {
    let (digest, size) = store.put_blob(layer, None)?;
    Ok(NewLayer {
        descriptor: Descriptor::new(LAYER_TAR, digest.clone(), size),
        diff_id: digest,
    })
}

/// A config for a new image: the machine's platform, the given `config` object, the layers'
/// diff-ids and one line of history.
pub fn image_config(config: Value, diff_ids: &[String], history: Vec<Value>) -> Value {
    json!({
        "architecture": ch05_image_pull::Platform::host().architecture,
        "os": "linux",
        "created": now(),
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    })
}

/// Imports the tarball; prints the new image's id.
pub fn main(cli: &Cli, args: &ImportArgs) -> Result<i32, Error> {
    let reference = args
        .reference
        .as_deref()
        .map(super::images::reference)
        .transpose()?;
    let mut config =
        json!({"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]});
    for change in &args.change {
        apply_change(&mut config, change)?;
    }
    let input: Box<dyn Read> = if args.file == "-" {
        Box::new(std::io::stdin())
    } else {
        let p = Path::new(&args.file);
        Box::new(std::fs::File::open(p).map_err(|e| Error::io("open", p, e))?)
    };
    let mut reader = BufReader::with_capacity(1 << 20, input);
    let gzip = reader
        .fill_buf()
        .map_err(|e| Error::io("read", Path::new(&args.file), e))?
        .starts_with(&[0x1f, 0x8b]);
    let stream: Box<dyn Read> = if gzip {
        Box::new(flate2::bufread::GzDecoder::new(reader))
    } else {
        Box::new(reader)
    };
    // Garbage is said to be garbage before anything is stored: the first block must be a
    // tar header (its checksum right) or the zeros that end an empty archive.
    // (Read whole: a pipe may hand over less than a block at a time.)
    let mut first = Vec::with_capacity(512);
    let mut stream = stream;
    (&mut stream)
        .take(512)
        .read_to_end(&mut first)
        .map_err(|e| Error::io("read", Path::new(&args.file), e))?;
    if !starts_a_tar(&first) {
        return Err(Error::Usage(format!(
            "{}: not a tar archive{}",
            args.file,
            if first.is_empty() {
                " (it is empty)"
            } else {
                ""
            }
        )));
    }
    let mut stream = std::io::Cursor::new(first).chain(stream);
    let store = crate::store(&cli.root)?;
    let layer = store_layer(&store, &mut stream)?;
    let history = vec![json!({
        "created": now(),
        "created_by": format!("mini-docker import {}", args.file),
        "comment": args.message.clone().unwrap_or_else(|| format!("Imported from {}", args.file)),
    })];
    let mut config = image_config(config, &[layer.diff_id.to_string()], history);
    // `-m` is the image's own comment too (docker's `image inspect -f '{{.Comment}}'`).
    if let Some(m) = &args.message {
        config["comment"] = json!(m);
    }
    let bytes = serde_json::to_vec(&config).expect("a config serialises");
    store.put_image(&bytes, &[layer], reference.as_ref())?;
    println!("{}", ch05_image_pull::Digest::of(&bytes));
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_follow_the_dockerfile_forms() {
        let mut c = json!({"Env": ["PATH=/bin"]});
        apply_change(&mut c, r#"CMD ["/hello"]"#).unwrap();
        apply_change(&mut c, "ENTRYPOINT echo hi").unwrap();
        apply_change(&mut c, "ENV GREETING=hello world").unwrap();
        apply_change(&mut c, "WORKDIR /app").unwrap();
        assert_eq!(c["Cmd"], json!(["/hello"]));
        assert_eq!(c["Entrypoint"], json!(["/bin/sh", "-c", "echo hi"]));
        assert_eq!(c["Env"], json!(["PATH=/bin", "GREETING=hello world"]));
        assert_eq!(c["WorkingDir"], json!("/app"));
        assert!(
            apply_change(&mut c, "RUN make")
                .unwrap_err()
                .to_string()
                .contains("run is not a valid change command")
        );
    }
}
