//! A container's log: docker's `json-file` format, one JSON object per line of output
//! (`{"log":"…\n","stream":"stdout","time":"…"}`), rotated by size as docker's
//! `--log-opt max-size=… --log-opt max-file=…` rotate it.
//!
//! Why json-file: it is docker's default, `docker logs` users and log shippers read it,
//! and each line carries its stream and time. Its cost is that it is text: a byte that is
//! not printable becomes an escape (a NUL is `\u0000`, six bytes), and bytes that are not
//! UTF-8 become U+FFFD, exactly as docker stores them. Binary output is 3 to 6 times its
//! size on disk; docker's `local` driver (protobuf frames) is the one that avoids it. What
//! bounds the disk is rotation, and unlike docker, whose json-file grows without limit
//! unless told, a log here is rotated by default at the `local` driver's defaults: 20 MB
//! a file, 5 files (100 MB a container at most).
//!
//! Files: `ID-json.log` is written; when the next line would take it past `max-size` it
//! becomes `ID-json.log.1` (the `.1` before it `.2`, and so on; the one past `max-file`
//! is deleted) and a new one is started. `logs` reads them oldest first.
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::Error;
use crate::record::now;

/// The default rotation (docker's `local` driver's): 20 MB, 5 files.
pub const DEFAULT_MAX_SIZE: u64 = 20_000_000;
/// The default number of files.
pub const DEFAULT_MAX_FILES: u32 = 5;

/// How a log is rotated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    /// Bytes a file may hold (None: it grows without limit, as docker's json-file with
    /// only `max-file`).
    pub max_size: Option<u64>,
    /// How many files are kept, the one being written among them.
    pub max_files: u32,
}

impl Rotation {
    /// The rotation `--log-opt`s ask for, checked with docker's rules and words
    /// (daemon/logger/jsonfilelog: `ValidateLogOpt` and `New`). No options: the default.
    pub fn from_opts(opts: &BTreeMap<String, String>) -> Result<Rotation, Error> {
        for key in opts.keys() {
            match key.as_str() {
                "max-size" | "max-file" => {}
                // docker's other json-file options: known, not done here.
                "compress" | "labels" | "labels-regex" | "env" | "env-regex" | "tag" => {
                    return Err(Error::Usage(format!(
                        "log opt '{key}' is not supported by mini-docker (max-size and max-file are)"
                    )));
                }
                _ => {
                    return Err(Error::Usage(format!(
                        "unknown log opt '{key}' for json-file log driver"
                    )));
                }
            }
        }
        if opts.is_empty() {
            return Ok(Rotation {
                max_size: Some(DEFAULT_MAX_SIZE),
                max_files: DEFAULT_MAX_FILES,
            });
        }
        let max_size = match opts.get("max-size") {
            None => None,
            Some(text) => match from_human_size(text) {
                Some(n) if n > 0 => Some(n),
                Some(_) => return Err(Error::Usage("max-size must be a positive number".into())),
                None => {
                    return Err(Error::Usage(format!("invalid size: '{text}'")));
                }
            },
        };
        let max_files = match opts.get("max-file") {
            None => 1,
            Some(text) => match text.parse::<i64>() {
                Ok(n) if n >= 1 => n.min(u32::MAX as i64) as u32,
                Ok(_) => return Err(Error::Usage("max-file cannot be less than 1".into())),
                Err(_) => {
                    return Err(Error::Usage(format!(
                        "strconv.Atoi: parsing \"{text}\": invalid syntax"
                    )));
                }
            },
        };
        Ok(Rotation {
            max_size,
            max_files,
        })
    }
}

/// docker's `units.FromHumanSize`: a number, an optional space, an optional decimal unit
/// (k, m, g, t, p, 1000-based) and an optional `i`/`b` (`10m`, `10MB`, `1.5 k`).
pub fn from_human_size(text: &str) -> Option<u64> {
    let t = text.trim_end_matches(['b', 'B']);
    let t = t.trim_end_matches(['i', 'I']);
    let (number, scale) = match t.chars().last()?.to_ascii_lowercase() {
        'k' => (&t[..t.len() - 1], 1e3),
        'm' => (&t[..t.len() - 1], 1e6),
        'g' => (&t[..t.len() - 1], 1e9),
        't' => (&t[..t.len() - 1], 1e12),
        'p' => (&t[..t.len() - 1], 1e15),
        _ => (t, 1.0),
    };
    let number = number.strip_suffix(' ').unwrap_or(number);
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    let n: f64 = number.parse().ok()?;
    Some((n * scale) as u64)
}

/// The log's files, oldest first: `PATH.N` … `PATH.1`, then `PATH` (those that exist;
/// `PATH` is listed even when missing, as the one being written).
pub fn files(path: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut n = 1;
    while rotated(path, n).exists() {
        out.push(rotated(path, n));
        n += 1;
    }
    out.reverse();
    out.push(path.to_path_buf());
    out
}

/// `PATH.n`.
fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(format!(".{n}"));
    PathBuf::from(p)
}

/// The log the monitor writes.
#[derive(Debug)]
pub struct Log {
    path: PathBuf,
    file: File,
    size: u64,
    rotation: Rotation,
    partial: [Vec<u8>; 2],
}

impl Log {
    /// Opens (appends to) the log at `path`.
    pub fn open(path: &Path, rotation: Rotation) -> Result<Log, Error> {
        let file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| Error::io("open", path, e))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(Log {
            path: path.to_path_buf(),
            file,
            size,
            rotation,
            partial: [Vec::new(), Vec::new()],
        })
    }

    /// Output of stream 0 (stdout) or 1 (stderr): complete lines are written; a line is
    /// cut at 16 KiB, as docker cuts it.
    pub fn write(&mut self, stream: usize, bytes: &[u8]) {
        self.partial[stream].extend_from_slice(bytes);
        while let Some(nl) = self.partial[stream].iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial[stream].drain(..=nl).collect();
            self.entry(stream, &line);
        }
        if self.partial[stream].len() >= 16 * 1024 {
            let line = std::mem::take(&mut self.partial[stream]);
            self.entry(stream, &line);
        }
    }

    /// Writes what is left of unfinished lines (the container has ended).
    pub fn flush(&mut self) {
        for s in 0..2 {
            let line = std::mem::take(&mut self.partial[s]);
            if !line.is_empty() {
                self.entry(s, &line);
            }
        }
    }

    fn entry(&mut self, stream: usize, line: &[u8]) {
        let obj = serde_json::json!({
            "log": String::from_utf8_lossy(line),
            "stream": if stream == 0 { "stdout" } else { "stderr" },
            "time": now(),
        });
        let mut text = obj.to_string();
        text.push('\n');
        if let Some(max) = self.rotation.max_size
            && self.size > 0
            && self.size + text.len() as u64 > max
        {
            self.rotate();
        }
        // A failed write (a full disk) loses this line from the log, never the
        // container's output to its attached clients, nor the monitor.
        if self.file.write_all(text.as_bytes()).is_ok() {
            self.size += text.len() as u64;
        }
    }

    /// `PATH.(n-1)` → `PATH.n` down to `PATH` → `PATH.1`, the oldest past `max-file`
    /// deleted, and a new `PATH`. With one file, the file is emptied (docker's json-file
    /// does the same). A reader following the log sees the file it reads renamed and
    /// moves to the new one (`cmd::logs`).
    fn rotate(&mut self) {
        let keep = self.rotation.max_files;
        if keep <= 1 {
            if self.file.set_len(0).is_ok() {
                self.size = 0;
            }
            return;
        }
        let _ = fs::remove_file(rotated(&self.path, keep - 1));
        for n in (1..keep - 1).rev() {
            let _ = fs::rename(rotated(&self.path, n), rotated(&self.path, n + 1));
        }
        if fs::rename(&self.path, rotated(&self.path, 1)).is_err() {
            return;
        }
        if let Ok(reopened) = Log::open(&self.path, self.rotation) {
            self.file = reopened.file;
            self.size = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn sizes_read_as_dockers_from_human_size() {
        assert_eq!(from_human_size("10m"), Some(10_000_000));
        assert_eq!(from_human_size("10MB"), Some(10_000_000));
        assert_eq!(from_human_size("1.5k"), Some(1500));
        assert_eq!(from_human_size("100"), Some(100));
        assert_eq!(from_human_size("2 g"), Some(2_000_000_000));
        assert_eq!(from_human_size("abc"), None);
        assert_eq!(from_human_size(""), None);
    }

    #[test]
    fn options_are_checked_with_dockers_words() {
        let r = |pairs: &[(&str, &str)]| Rotation::from_opts(&opts(pairs));
        assert_eq!(
            r(&[]).unwrap(),
            Rotation {
                max_size: Some(20_000_000),
                max_files: 5
            }
        );
        assert_eq!(
            r(&[("max-size", "1k"), ("max-file", "3")]).unwrap(),
            Rotation {
                max_size: Some(1000),
                max_files: 3
            }
        );
        assert_eq!(
            r(&[("max-file", "3")]).unwrap(),
            Rotation {
                max_size: None,
                max_files: 3
            }
        );
        let err = |pairs: &[(&str, &str)]| r(pairs).unwrap_err().to_string();
        assert_eq!(
            err(&[("foo", "bar")]),
            "unknown log opt 'foo' for json-file log driver"
        );
        assert_eq!(err(&[("max-file", "0")]), "max-file cannot be less than 1");
        assert_eq!(
            err(&[("max-size", "0")]),
            "max-size must be a positive number"
        );
        assert_eq!(err(&[("max-size", "lots")]), "invalid size: 'lots'");
    }

    #[test]
    fn a_log_rotates_into_numbered_files_and_keeps_max_file_of_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        let rotation = Rotation {
            max_size: Some(1000),
            max_files: 3,
        };
        let mut log = Log::open(&path, rotation).unwrap();
        for i in 0..200 {
            log.write(0, format!("line {i}\n").as_bytes());
        }
        let files = files(&path);
        assert_eq!(
            files
                .iter()
                .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
                .collect::<Vec<_>>(),
            ["c-json.log.2", "c-json.log.1", "c-json.log"]
        );
        let mut numbers = Vec::new();
        for f in &files {
            let len = fs::metadata(f).unwrap().len();
            assert!(len <= 1000, "{} holds {len} bytes", f.display());
            for line in fs::read_to_string(f).unwrap().lines() {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                let text = v["log"].as_str().unwrap();
                numbers.push(
                    text.trim()
                        .strip_prefix("line ")
                        .unwrap()
                        .parse::<u32>()
                        .unwrap(),
                );
            }
        }
        // The newest lines, in order, none missing, the last one last.
        assert_eq!(*numbers.last().unwrap(), 199);
        assert!(numbers.windows(2).all(|w| w[1] == w[0] + 1), "{numbers:?}");
        assert!(numbers[0] > 0, "the oldest were rotated away");
    }

    #[test]
    fn with_one_file_the_log_is_emptied_instead() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        let rotation = Rotation {
            max_size: Some(500),
            max_files: 1,
        };
        let mut log = Log::open(&path, rotation).unwrap();
        for i in 0..100 {
            log.write(1, format!("line {i}\n").as_bytes());
        }
        assert_eq!(files(&path), vec![path.clone()]);
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.len() <= 500 && text.contains("line 99"), "{text}");
    }
}
