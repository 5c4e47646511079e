//! The build context: the directory `COPY` and `ADD` take their sources from, less what
//! `.dockerignore` excludes. It is only ever read.
//!
//! `.dockerignore` has one pattern per line (Docker's rules, moby's `patternmatcher`):
//! `#` comments and blank lines are skipped, a leading `/` is dropped, `*` matches within
//! one path component, `?` one character, `**` any number of components, and a pattern
//! that starts with `!` re-includes what an earlier one excluded. The last pattern that
//! matches a path decides; a directory's exclusion covers everything in it.
use std::path::{Component, Path, PathBuf};

use regex::Regex;

use crate::Error;

/// One `.dockerignore` (or source) pattern, compiled.
#[derive(Debug, Clone)]
pub struct Pattern {
    regex: Regex,
    /// A `!` pattern: re-includes.
    pub exclusion: bool,
    /// As written (after cleaning).
    pub text: String,
}

/// Cleans a relative path as Go's `filepath.Clean` does, without leaving the root: `a/./b/`
/// is `a/b`; `..` components are kept so the caller can refuse them.
pub fn clean(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." if parts.last().is_some_and(|p| *p != "..") => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        ".".into()
    } else {
        parts.join("/")
    }
}

impl Pattern {
    /// Compiles a shell-style pattern over `/`-separated relative paths.
    pub fn new(text: &str) -> Result<Pattern, Error> {
        let (exclusion, body) = match text.strip_prefix('!') {
            Some(b) => (true, b.trim()),
            None => (false, text),
        };
        let body = clean(body.trim_start_matches('/'));
        let mut re = String::from("^");
        let chars: Vec<char> = body.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            match c {
                '*' if chars.get(i + 1) == Some(&'*') => {
                    i += 1;
                    if chars.get(i + 1) == Some(&'/') {
                        i += 1;
                        re.push_str("(.*/)?");
                    } else {
                        re.push_str(".*");
                    }
                }
                '*' => re.push_str("[^/]*"),
                '?' => re.push_str("[^/]"),
                '[' => {
                    let end = chars[i..].iter().position(|&c| c == ']').map(|p| p + i);
                    match end {
                        Some(end) => {
                            let class: String = chars[i + 1..end].iter().collect();
                            let class =
                                class.replacen('!', "^", usize::from(class.starts_with('!')));
                            re.push('[');
                            re.push_str(&class.replace('\\', "\\\\"));
                            re.push(']');
                            i = end;
                        }
                        None => re.push_str("\\["),
                    }
                }
                '\\' if i + 1 < chars.len() => {
                    i += 1;
                    re.push_str(&regex::escape(&chars[i].to_string()));
                }
                c => re.push_str(&regex::escape(&c.to_string())),
            }
            i += 1;
        }
        re.push('$');
        let regex =
            Regex::new(&re).map_err(|e| Error::Usage(format!("invalid pattern {text:?}: {e}")))?;
        Ok(Pattern {
            regex,
            exclusion,
            text: body,
        })
    }

    /// Whether the pattern matches `path` (relative, `/`-separated) exactly.
    pub fn matches(&self, path: &str) -> bool {
        self.regex.is_match(path)
    }
}

/// The context directory and its ignore rules.
#[derive(Debug)]
pub struct Context {
    /// The directory (`None` for a build without context: `docker build - < Dockerfile`).
    pub root: Option<PathBuf>,
    ignore: Vec<Pattern>,
}

impl Context {
    /// Opens the context `dir` and reads its `.dockerignore`.
    pub fn open(dir: Option<&Path>) -> Result<Context, Error> {
        let Some(dir) = dir else {
            return Ok(Context {
                root: None,
                ignore: Vec::new(),
            });
        };
        let root = dir.canonicalize().map_err(|e| {
            Error::Usage(format!(
                "unable to prepare context: path {:?} not found: {e}",
                dir.display().to_string()
            ))
        })?;
        if !root.is_dir() {
            return Err(Error::Usage(format!(
                "unable to prepare context: context must be a directory: {}",
                dir.display()
            )));
        }
        let mut ignore = Vec::new();
        if let Ok(text) = std::fs::read_to_string(root.join(".dockerignore")) {
            for line in text.lines() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                ignore.push(Pattern::new(line)?);
            }
        }
        Ok(Context {
            root: Some(root),
            ignore,
        })
    }

    /// Whether `rel` (or a directory above it) is excluded by `.dockerignore`.
    pub fn ignored(&self, rel: &str) -> bool {
        // exercise(ch06.ignore): for each leading part of rel ("a", "a/b", …) the last matching pattern decides (an exclusion "!" re-includes); a directory's verdict carries down
        let mut path = String::new();
        let mut excluded = false;
        for part in rel.split('/') {
            if !path.is_empty() {
                path.push('/');
            }
            path.push_str(part);
            // A directory's verdict carries down, unless a later pattern names the path.
            let mut verdict = excluded;
            for p in &self.ignore {
                if p.matches(&path) {
                    verdict = !p.exclusion;
                }
            }
            excluded = verdict;
        }
        excluded
        // end exercise
    }

    /// The context's paths a `COPY` source names: itself, or with `*`, `?` or `[` the
    /// paths it matches (sorted). Relative to the context, `/`-separated. A source that
    /// climbs out of the context, or matches nothing, is an error that says so.
    pub fn sources(&self, source: &str, instruction: &str) -> Result<Vec<String>, Error> {
        let Some(root) = &self.root else {
            return Err(Error::Step(format!(
                "{instruction} failed: no source files were specified"
            )));
        };
        let cleaned = clean(source.trim_start_matches('/'));
        if Path::new(&cleaned)
            .components()
            .any(|c| c == Component::ParentDir)
        {
            return Err(Error::Step(format!(
                "{instruction} failed: forbidden path outside the build context: {source} ()"
            )));
        }
        let wildcard = cleaned.contains(['*', '?', '[']);
        let mut out = Vec::new();
        if wildcard {
            let pattern = Pattern::new(&cleaned)?;
            walk(root, "", &mut |rel| {
                if pattern.matches(rel) && !self.ignored(rel) {
                    out.push(rel.to_string());
                }
            });
            out.sort();
        } else if cleaned == "." {
            out.push(".".into());
        } else if std::fs::symlink_metadata(root.join(&cleaned)).is_ok() && !self.ignored(&cleaned)
        {
            out.push(cleaned.clone());
        }
        if out.is_empty() {
            return Err(Error::Step(format!(
                "{instruction} failed: file not found in build context or excluded by .dockerignore: stat {cleaned}: file does not exist"
            )));
        }
        Ok(out)
    }

    /// The absolute path of a context path.
    pub fn path(&self, rel: &str) -> PathBuf {
        let root = self.root.clone().unwrap_or_default();
        if rel == "." { root } else { root.join(rel) }
    }
}

/// Every path under `dir` (relative to `base`'s start), directories before their contents,
/// symlinks not followed.
pub fn walk(dir: &Path, rel: &str, f: &mut dyn FnMut(&str)) {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .map(|it| it.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    names.sort();
    for name in names {
        let name = name.to_string_lossy().into_owned();
        let child = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        f(&child);
        let path = dir.join(&name);
        if std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
            walk(&path, &child, f);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_follow_dockers_rules() {
        let table: &[(&str, &str, bool)] = &[
            ("*.md", "README.md", true),
            ("*.md", "docs/README.md", false),
            ("**/*.md", "docs/README.md", true),
            ("**/*.md", "README.md", true),
            ("docs/**", "docs/a/b", true),
            ("/build", "build", true),
            ("a?c", "abc", true),
            ("a?c", "a/c", false),
            ("[a-c]x", "bx", true),
            ("[!a-c]x", "dx", true),
            ("./target/", "target", true),
            ("target", "target/debug", false),
        ];
        for (p, path, want) in table {
            assert_eq!(
                Pattern::new(p).unwrap().matches(path),
                *want,
                "{p} vs {path}"
            );
        }
    }

    #[test]
    fn the_last_matching_pattern_decides_and_directories_cover_their_contents() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(".dockerignore"),
            "# build output\ntarget\n*.log\n!keep.log\nsecret/**\n",
        )
        .unwrap();
        let ctx = Context::open(Some(dir.path())).unwrap();
        assert!(ctx.ignored("target"));
        assert!(
            ctx.ignored("target/debug/app"),
            "inside an excluded directory"
        );
        assert!(ctx.ignored("a.log"));
        assert!(!ctx.ignored("keep.log"));
        assert!(ctx.ignored("secret/key"));
        assert!(!ctx.ignored("src/main.rs"));
    }

    #[test]
    fn sources_stay_inside_the_context() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("src")).unwrap();
        std::fs::write(dir.path().join("src/a.txt"), "a").unwrap();
        std::fs::write(dir.path().join("src/b.txt"), "b").unwrap();
        std::fs::write(dir.path().join("src/c.md"), "c").unwrap();
        let ctx = Context::open(Some(dir.path())).unwrap();
        assert_eq!(
            ctx.sources("src/*.txt", "COPY").unwrap(),
            ["src/a.txt", "src/b.txt"]
        );
        assert_eq!(ctx.sources("/src/c.md", "COPY").unwrap(), ["src/c.md"]);
        let e = ctx
            .sources("../etc/passwd", "COPY")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("forbidden path outside the build context"),
            "{e}"
        );
        let e = ctx.sources("nope", "COPY").unwrap_err().to_string();
        assert!(e.contains("file not found in build context"), "{e}");
        assert_eq!(clean("a/./b/../c/"), "a/c");
    }
}
