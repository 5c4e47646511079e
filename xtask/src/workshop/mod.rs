//! The workshop: exercises cut out of the chapters' own code, and the checker.
//!
//! * `cargo xtask workshop --out DIR [--chapter chNN]… [--only ID]…` writes a learner's
//!   workspace: a copy of this one (without the answers) where each marked solution is a
//!   `todo!("ID: …")`, which still compiles.
//! * `cargo xtask check [chNN | chNN.name]…`, in that workspace (or this one), runs each
//!   exercise's tests and prints passed / not yet / failed with a hint.
//! * `cargo xtask prove-workshop` is CI's proof that the mechanism works: here every
//!   exercise passes; in an exported workspace the workspace compiles, and with one
//!   exercise cut out at a time, that exercise's tests fail and the rest of its chapter's
//!   pass.
//! * `cargo xtask answers` writes `notes/answers/` (the solutions, for workshop leaders).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use anyhow::{Context, Result, bail};

pub mod answers;
pub mod check;
pub mod exercises;
pub mod markers;

use exercises::{EXERCISES, Exercise};
use markers::Marker;

/// Where the answers live; left out of a learner's workspace.
pub const ANSWERS: &str = "notes/answers";
/// The file that makes a directory a learner's workspace.
pub const WORKSHOP_FILE: &str = "WORKSHOP.md";

/// `cargo xtask workshop`.
#[derive(Debug, clap::Args)]
pub struct WorkshopArgs {
    /// The directory to write the learner's workspace into (must not exist, or be empty).
    #[arg(long)]
    out: PathBuf,
    /// Cut out only this chapter's exercises (e.g. ch03); repeatable. Default: every one.
    #[arg(long)]
    chapter: Vec<String>,
    /// Cut out only this exercise (e.g. ch03.pivot); repeatable.
    #[arg(long)]
    only: Vec<String>,
}

/// `cargo xtask check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// A chapter (ch03) or an exercise (ch03.pivot); several may be given. Default: all.
    which: Vec<String>,
}

/// `cargo xtask prove-workshop`.
#[derive(Debug, clap::Args)]
pub struct ProveArgs {
    /// Where to export the workspace (default: a directory under the target directory).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Prove only these exercises or chapters (default: all).
    which: Vec<String>,
}

/// The workspace's root: xtask's parent directory.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// Every file under `root/start`, relative to `root`, sorted; a directory whose name
/// `skip` accepts is not entered (nor is a file so named taken).
fn walk(
    root: &Path,
    start: &Path,
    skip: &dyn Fn(&std::ffi::OsStr) -> bool,
) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut stack = vec![start.to_path_buf()];
    while let Some(rel) = stack.pop() {
        let dir = root.join(&rel);
        for entry in std::fs::read_dir(&dir).with_context(|| format!("read {}", dir.display()))? {
            let entry = entry?;
            let name = entry.file_name();
            if skip(&name) {
                continue;
            }
            if entry.file_type()?.is_dir() {
                stack.push(rel.join(name));
            } else {
                files.push(rel.join(name));
            }
        }
    }
    files.sort();
    Ok(files)
}

/// The `.rs` files that may hold markers: the chapters' sources.
fn source_files(root: &Path) -> Result<Vec<PathBuf>> {
    let mut files = walk(root, Path::new("chapters"), &|n| {
        n == "target" || n == "tests"
    })?;
    files.retain(|f| f.extension().is_some_and(|e| e == "rs"));
    Ok(files)
}

/// Every marker in the workspace at `root`, checked against the exercise table: each
/// marker has an entry and each entry one marker.
pub fn markers(root: &Path) -> Result<BTreeMap<String, Marker>> {
    let mut found: BTreeMap<String, Marker> = BTreeMap::new();
    for file in source_files(root)? {
        let text = std::fs::read_to_string(root.join(&file))?;
        for m in markers::scan(&file, &text).map_err(anyhow::Error::msg)? {
            if let Some(first) = found.get(&m.id) {
                bail!(
                    "exercise {} is marked twice: {}:{} and {}:{}",
                    m.id,
                    first.file.display(),
                    first.line,
                    m.file.display(),
                    m.line
                );
            }
            found.insert(m.id.clone(), m);
        }
    }
    for id in found.keys() {
        if !EXERCISES.iter().any(|e| e.id == id) {
            bail!("{id} is marked in the code but not in xtask/src/workshop/exercises.rs");
        }
    }
    for ex in EXERCISES {
        if !found.contains_key(ex.id) {
            bail!(
                "{} is in exercises.rs but marked nowhere in chapters/",
                ex.id
            );
        }
    }
    Ok(found)
}

/// The exercises `which` names (chapters or ids), in table order; all when empty.
pub fn select(which: &[String]) -> Result<Vec<&'static Exercise>> {
    for w in which {
        if !EXERCISES.iter().any(|e| e.id == w || e.chapter() == w) {
            let ids: Vec<&str> = EXERCISES.iter().map(|e| e.id).collect();
            bail!(
                "no exercise or chapter {w:?}; the exercises: {}",
                ids.join(" ")
            );
        }
    }
    Ok(EXERCISES
        .iter()
        .filter(|e| which.is_empty() || which.iter().any(|w| e.id == w || e.chapter() == w))
        .collect())
}

/// The files a copy of the workspace takes: what git tracks (with the working tree's
/// contents) in a git checkout, or every file but `target/` and `.git/` elsewhere (a
/// learner's copy, even one that sits inside some other git work tree).
fn workspace_files(root: &Path) -> Result<Vec<PathBuf>> {
    let git = if root.join(".git").exists() {
        Command::new("git")
            .current_dir(root)
            .args([
                "ls-files",
                "-z",
                "--cached",
                "--others",
                "--exclude-standard",
            ])
            .output()
            .ok()
            .filter(|o| o.status.success())
    } else {
        None
    };
    let mut files: Vec<PathBuf> = match git {
        Some(o) => o
            .stdout
            .split(|b| *b == 0)
            .filter(|f| !f.is_empty())
            .map(|f| PathBuf::from(String::from_utf8_lossy(f).into_owned()))
            .filter(|f| root.join(f).exists())
            .collect(),
        None => walk(root, Path::new(""), &|n| n == "target" || n == ".git")?,
    };
    files.retain(|f| !f.starts_with(ANSWERS));
    files.sort();
    Ok(files)
}

/// Writes the learner's workspace at `out` with the exercises `cut` accepts cut out.
pub fn export(root: &Path, out: &Path, cut: &dyn Fn(&str) -> bool) -> Result<Vec<String>> {
    let found = markers(root)?;
    if out.exists() && std::fs::read_dir(out)?.next().is_some() {
        bail!("{} exists and is not empty", out.display());
    }
    for file in workspace_files(root)? {
        let from = root.join(&file);
        let to = out.join(&file);
        std::fs::create_dir_all(to.parent().unwrap())?;
        if from.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&from)?, &to)?;
            continue;
        }
        std::fs::copy(&from, &to).with_context(|| format!("copy {}", from.display()))?;
    }
    write_cuts(root, out, &found, cut)?;
    let cut_ids: Vec<String> = found.keys().filter(|id| cut(id)).cloned().collect();
    std::fs::write(out.join(WORKSHOP_FILE), learners_readme(&cut_ids, &found))?;
    Ok(cut_ids)
}

/// Rewrites, in `out`, every file holding a marker: the exercises `cut` accepts cut out,
/// the others with their solution.
fn write_cuts(
    root: &Path,
    out: &Path,
    found: &BTreeMap<String, Marker>,
    cut: &dyn Fn(&str) -> bool,
) -> Result<()> {
    let mut files: Vec<&PathBuf> = found.values().map(|m| &m.file).collect();
    files.sort();
    files.dedup();
    for file in files {
        let text = std::fs::read_to_string(root.join(file))?;
        let new = markers::blank(&text, cut);
        let to = out.join(file);
        // Unchanged files are left alone, so cargo rebuilds only what changed.
        if std::fs::read_to_string(&to).ok().as_deref() != Some(new.as_str()) {
            std::fs::write(&to, new)?;
        }
    }
    Ok(())
}

fn learners_readme(cut: &[String], found: &BTreeMap<String, Marker>) -> String {
    let mut s = String::from(
        "# Your workshop\n\n\
         This is the mini-docker workshop with some of its code cut out: each exercise below is \
         a `todo!(\"ID: …\")` in a chapter's code, between `// exercise(ID): …` and `// end \
         exercise`. Read the chapter's note first (`notes/`), write the missing code, then \
         see where you stand:\n\n\
         ```sh\n\
         cargo xtask check            # every exercise\n\
         cargo xtask check ch03       # one chapter\n\
         cargo xtask check ch03.pivot # one exercise\n\
         ```\n\n\
         Exercises that run the real thing need root: `sudo -E env \"PATH=$PATH\" cargo xtask \
         check`. The binaries you build are in `target/debug/`.\n\n\
         | exercise | level | what | where |\n| --- | --- | --- | --- |\n",
    );
    for ex in EXERCISES.iter().filter(|e| cut.iter().any(|c| c == e.id)) {
        let m = &found[ex.id];
        s.push_str(&format!(
            "| `{}` | {} | {} | `{}:{}` |\n",
            ex.id,
            ex.level.word(),
            ex.title,
            m.file.display(),
            m.line
        ));
    }
    s
}

/// `cargo xtask workshop`.
pub fn workshop(args: &WorkshopArgs) -> Result<ExitCode> {
    let root = workspace_root();
    let mut which = args.chapter.clone();
    which.extend(args.only.iter().cloned());
    let chosen: Vec<&str> = select(&which)?.iter().map(|e| e.id).collect();
    let cut = export(&root, &args.out, &|id| chosen.contains(&id))?;
    println!(
        "wrote {}: {} exercises cut out ({})\nnext: cd {} && cargo xtask check",
        args.out.display(),
        cut.len(),
        cut.join(" "),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `cargo xtask check`.
pub fn check(args: &CheckArgs) -> Result<ExitCode> {
    let root = workspace_root();
    let found = markers(&root)?;
    let chosen = select(&args.which)?;
    let statuses = check::run(&root, &chosen, false);
    let locate = |id: &str| {
        let m = &found[id];
        format!("{}:{}", m.file.display(), m.line)
    };
    print!("{}", check::render(&chosen, &statuses, &locate));
    give_back_target(&root);
    let done = |s: &check::Status| matches!(s, check::Status::Passed | check::Status::NeedsRoot);
    Ok(if statuses.iter().all(|(_, s)| done(s)) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Under sudo, gives the target directory back to the learner, so that their next cargo
/// command, without root, can write to it (as scripts/lib.sh's give_back_target does).
fn give_back_target(root: &Path) {
    let (Ok(uid), Ok(gid)) = (std::env::var("SUDO_UID"), std::env::var("SUDO_GID")) else {
        return;
    };
    let target = target_dir(root);
    if target.exists() {
        let _ = Command::new("chown")
            .args(["-R", &format!("{uid}:{gid}")])
            .arg(&target)
            .status();
    }
}

/// `cargo xtask prove-workshop`.
pub fn prove(args: &ProveArgs) -> Result<ExitCode> {
    if !nix::unistd::Uid::effective().is_root() {
        bail!("prove-workshop needs root: some exercises run the real thing");
    }
    let root = workspace_root();
    let found = markers(&root)?;
    let chosen = select(&args.which)?;
    let mut wrong: Vec<String> = Vec::new();

    // 1. With the solutions in place, every exercise passes.
    let t = Instant::now();
    for (id, status) in check::run(&root, &chosen, true) {
        if status != check::Status::Passed {
            wrong.push(format!("{id} with its solution: {status:?}"));
        }
    }
    eprintln!(
        "prove-workshop: with the solutions, {} exercises checked in {:.0?}",
        chosen.len(),
        t.elapsed()
    );

    // 2. Every exercise cut out: the workspace compiles.
    let out = match &args.out {
        Some(o) => o.clone(),
        None => target_dir(&root).join("workshop-proof"),
    };
    if out.exists() {
        std::fs::remove_dir_all(&out).with_context(|| format!("remove {}", out.display()))?;
    }
    // A target directory of its own: cargo names a workspace member's artifacts by its path
    // inside the workspace, so the copy's would overwrite this workspace's own (a test
    // binary built from the copy, with its todo!s and its paths, run later from here).
    let target = target_dir(&root).join("workshop-proof-target");
    let t = Instant::now();
    export(&root, &out, &|_| true)?;
    let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .current_dir(&out)
        .env("CARGO_TARGET_DIR", &target)
        .args(["build", "--quiet", "--workspace", "--all-targets"])
        .status()?;
    if !status.success() {
        wrong.push("the workspace with every exercise cut out does not compile".into());
    }
    eprintln!(
        "prove-workshop: every exercise cut out, the workspace builds: {} ({:.0?})",
        status.success(),
        t.elapsed()
    );
    // Every exercise cut out, each is "not yet", never "first: another one": a learner may
    // take them in any order, across chapters too.
    let t = Instant::now();
    for (id, status) in check::run_with_target(&out, &chosen, &target) {
        if status != check::Status::NotYet {
            wrong.push(format!("every exercise cut out: {id} is {status:?}"));
        }
    }
    eprintln!(
        "prove-workshop: every exercise cut out, each is not yet ({:.0?})",
        t.elapsed()
    );

    // 3. One exercise cut out at a time: its tests fail, its chapter's others pass.
    for ex in &chosen {
        let t = Instant::now();
        write_cuts(&root, &out, &found, &|id| id == ex.id)?;
        let chapter = select(&[ex.chapter().to_string()])?;
        let statuses = check::run_with_target(&out, &chapter, &target);
        let mut line = Vec::new();
        for (id, status) in &statuses {
            let expected = if id == ex.id {
                check::Status::NotYet
            } else {
                check::Status::Passed
            };
            if *status != expected {
                wrong.push(format!("{} cut out: {id} is {status:?}", ex.id));
            }
            line.push(format!("{id} {}", status.word()));
        }
        eprintln!(
            "prove-workshop: {} cut out ({:.0?}): {}",
            ex.id,
            t.elapsed(),
            line.join(", ")
        );
    }
    write_cuts(&root, &out, &found, &|_| true)?;

    if wrong.is_empty() {
        println!(
            "prove-workshop: all {} exercises proven: each passes with its solution and is \
             caught without it",
            chosen.len()
        );
        std::fs::remove_dir_all(&out).ok();
        Ok(ExitCode::SUCCESS)
    } else {
        for w in &wrong {
            println!("prove-workshop: WRONG: {w}");
        }
        Ok(ExitCode::FAILURE)
    }
}

/// The target directory cargo uses for the workspace at `root`.
fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_git_a_copy_takes_every_file_but_target_git_and_the_answers() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for f in [
            "Cargo.toml",
            "chapters/ch01/src/lib.rs",
            "chapters/ch01/target/debug/x",
            "target/debug/y",
            ".git/HEAD",
            "notes/answers/ch01.md",
            "notes/01.md",
        ] {
            std::fs::create_dir_all(root.join(f).parent().unwrap()).unwrap();
            std::fs::write(root.join(f), "x").unwrap();
        }
        let files = workspace_files(root).unwrap();
        let files: Vec<&str> = files.iter().map(|f| f.to_str().unwrap()).collect();
        assert_eq!(
            files,
            ["Cargo.toml", "chapters/ch01/src/lib.rs", "notes/01.md"]
        );
    }

    #[test]
    fn every_marker_has_an_exercise_and_every_exercise_a_marker() {
        let found = markers(&workspace_root()).unwrap();
        assert_eq!(found.len(), EXERCISES.len());
        // A chapter's exercises live in its own crate.
        for ex in EXERCISES {
            let file = found[ex.id].file.to_string_lossy().into_owned();
            let chapter = ex.chapter();
            assert!(
                file.starts_with(&format!("chapters/{chapter}-")),
                "{} is marked in {file}",
                ex.id
            );
            assert!(ex.package.starts_with(&format!("{chapter}-")), "{}", ex.id);
        }
    }

    #[test]
    fn each_chapter_note_lists_exactly_its_exercises() {
        let root = workspace_root();
        let mut chapters: Vec<&str> = EXERCISES.iter().map(|e| e.chapter()).collect();
        chapters.dedup();
        for chapter in chapters {
            let prefix = format!("{}-", &chapter[2..]);
            let note = std::fs::read_dir(root.join("notes"))
                .unwrap()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(&prefix) && n.ends_with(".md"))
                .min_by_key(|n| n.len())
                .unwrap_or_else(|| panic!("no note for {chapter}"));
            let text = std::fs::read_to_string(root.join("notes").join(&note)).unwrap();
            let section = text
                .split("\n## Coding exercises\n")
                .nth(1)
                .unwrap_or_else(|| panic!("notes/{note} has no \"## Coding exercises\""));
            let section = section.split("\n## ").next().unwrap();
            let listed: Vec<&str> = section
                .split('`')
                .filter(|w| markers::valid_id(w) && w.starts_with(chapter))
                .collect();
            let wanted: Vec<&str> = EXERCISES
                .iter()
                .filter(|e| e.chapter() == chapter)
                .map(|e| e.id)
                .collect();
            assert_eq!(listed, wanted, "notes/{note}'s coding exercises");
        }
    }

    #[test]
    fn the_readme_counts_the_exercises() {
        let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
        let said = format!("as an exercise, {} in all", EXERCISES.len());
        assert!(readme.contains(&said), "README.md should say {said:?}");
    }

    #[test]
    fn choosing_takes_chapters_and_ids_and_refuses_the_unknown() {
        let ch03: Vec<&str> = select(&["ch03".into()])
            .unwrap()
            .iter()
            .map(|e| e.id)
            .collect();
        assert!(ch03.len() >= 3 && ch03.iter().all(|i| i.starts_with("ch03.")));
        assert_eq!(select(&["ch03.pivot".into()]).unwrap()[0].id, "ch03.pivot");
        let e = select(&["ch99".into()]).unwrap_err().to_string();
        assert!(e.starts_with("no exercise or chapter \"ch99\""), "{e}");
        assert_eq!(select(&[]).unwrap().len(), EXERCISES.len());
    }
}
