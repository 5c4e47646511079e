//! The exercise markers in the chapters' code, and the learner's version of a file.
//!
//! A marked solution reads
//!
//! ```text
//!     // exercise(ch03.pivot): call pivot_root with the new root as "."
//!     sys.pivot_root(...)?;
//!     // end exercise
//! ```
//!
//! and the learner's copy keeps both comment lines and puts `todo!("ch03.pivot: …");` where
//! the solution was. A statement that never returns (`todo!()` has type `!`) makes the rest
//! of its block unreachable, and a block that ends in one may stand for any type, so the
//! file still compiles wherever the marked lines are a block's statements or its tail: a
//! marked region never declares a binding that code after it uses (the workspace with
//! every exercise cut out is built in CI to prove it).

use std::path::{Path, PathBuf};

/// One marked solution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    /// `ch03.pivot`.
    pub id: String,
    /// What to write, from the marker line.
    pub instruction: String,
    /// The file, relative to the workspace.
    pub file: PathBuf,
    /// The marker line's number (1-based).
    pub line: usize,
    /// The solution: the lines between the marker and `// end exercise`.
    pub solution: Vec<String>,
}

const START: &str = "// exercise(";
const END: &str = "// end exercise";

/// The markers in one file's text. A marker without its end, an end without a marker, a
/// nested marker or a malformed id is an error naming the line.
pub fn scan(file: &Path, text: &str) -> Result<Vec<Marker>, String> {
    let mut found = Vec::new();
    let mut open: Option<Marker> = None;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let trimmed = line.trim_start();
        if let Some(rest) = trimmed.strip_prefix(START) {
            if let Some(m) = &open {
                return Err(format!(
                    "{}:{n}: an exercise inside exercise {} (line {})",
                    file.display(),
                    m.id,
                    m.line
                ));
            }
            let (id, instruction) = rest.split_once("):").ok_or_else(|| {
                format!(
                    "{}:{n}: expected `// exercise(chNN.name): what to write`",
                    file.display()
                )
            })?;
            if !valid_id(id) {
                return Err(format!(
                    "{}:{n}: {id:?} is not an exercise id (chNN.name, lower case)",
                    file.display()
                ));
            }
            open = Some(Marker {
                id: id.to_string(),
                instruction: instruction.trim().to_string(),
                file: file.to_path_buf(),
                line: n,
                solution: Vec::new(),
            });
        } else if trimmed.starts_with(END) {
            let m = open
                .take()
                .ok_or_else(|| format!("{}:{n}: `{END}` without an exercise", file.display()))?;
            if m.solution.iter().all(|l| l.trim().is_empty()) {
                return Err(format!(
                    "{}:{}: exercise {} is empty",
                    file.display(),
                    m.line,
                    m.id
                ));
            }
            found.push(m);
        } else if let Some(m) = &mut open {
            m.solution.push(line.to_string());
        }
    }
    match open {
        Some(m) => Err(format!(
            "{}:{}: exercise {} has no `{END}`",
            file.display(),
            m.line,
            m.id
        )),
        None => Ok(found),
    }
}

/// `chNN.name`: a chapter number and a lower-case name.
pub fn valid_id(id: &str) -> bool {
    let Some((chapter, name)) = id.split_once('.') else {
        return false;
    };
    chapter.len() == 4
        && chapter.starts_with("ch")
        && chapter[2..].chars().all(|c| c.is_ascii_digit())
        && !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// The learner's version of `text`: every marked solution whose id `blank` accepts replaced
/// by one `todo!` line at the marker's indentation.
pub fn blank(text: &str, blank: &dyn Fn(&str) -> bool) -> String {
    let mut out = String::with_capacity(text.len());
    let mut skipping = false;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if let Some(rest) = trimmed.strip_prefix(START) {
            out.push_str(line);
            if let Some((id, instruction)) = rest.split_once("):")
                && blank(id)
            {
                let indent = &line[..line.len() - trimmed.len()];
                out.push_str(&format!("{indent}{};\n", todo_line(id, instruction.trim())));
                skipping = true;
            }
            continue;
        }
        if trimmed.starts_with(END) {
            skipping = false;
        }
        if !skipping {
            out.push_str(line);
        }
    }
    out
}

/// `todo!("ch03.pivot: call pivot_root …")`, a string literal that is also a valid format
/// string (braces doubled).
pub fn todo_line(id: &str, instruction: &str) -> String {
    let text = format!("{id}: {instruction}")
        .replace('{', "{{")
        .replace('}', "}}");
    format!("todo!({text:?})")
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "fn a() -> u32 {
    let x = 1;
    // exercise(ch09.add): add one to x
    x + 1
    // end exercise
}

fn b(v: &mut Vec<u32>) {
    // exercise(ch09.push-two): push {2}
    v.push(2);
    // end exercise
    v.push(3);
}
";

    #[test]
    fn markers_are_found_with_their_solution_and_line() {
        let found = scan(Path::new("x.rs"), FILE).unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].id, "ch09.add");
        assert_eq!(found[0].instruction, "add one to x");
        assert_eq!(found[0].line, 3);
        assert_eq!(found[0].solution, vec!["    x + 1"]);
        assert_eq!(found[1].id, "ch09.push-two");
    }

    #[test]
    fn the_learners_file_keeps_the_markers_and_has_todo_in_place_of_the_solution() {
        let all = blank(FILE, &|_| true);
        assert_eq!(
            all,
            "fn a() -> u32 {
    let x = 1;
    // exercise(ch09.add): add one to x
    todo!(\"ch09.add: add one to x\");
    // end exercise
}

fn b(v: &mut Vec<u32>) {
    // exercise(ch09.push-two): push {2}
    todo!(\"ch09.push-two: push {{2}}\");
    // end exercise
    v.push(3);
}
"
        );
        let one = blank(FILE, &|id| id == "ch09.add");
        assert!(one.contains("todo!(\"ch09.add") && one.contains("    v.push(2);"));
        assert_eq!(blank(FILE, &|_| false), FILE);
    }

    #[test]
    fn broken_markers_name_the_line() {
        let e = scan(Path::new("x.rs"), "// exercise(ch01.a): x\nfoo();\n").unwrap_err();
        assert_eq!(e, "x.rs:1: exercise ch01.a has no `// end exercise`");
        let e = scan(Path::new("x.rs"), "foo();\n// end exercise\n").unwrap_err();
        assert_eq!(e, "x.rs:2: `// end exercise` without an exercise");
        let e = scan(Path::new("x.rs"), "// exercise(Ch1.A): x\n").unwrap_err();
        assert!(e.contains("is not an exercise id"), "{e}");
        let e = scan(
            Path::new("x.rs"),
            "// exercise(ch01.a): x\n// exercise(ch01.b): y\n",
        )
        .unwrap_err();
        assert_eq!(e, "x.rs:2: an exercise inside exercise ch01.a (line 1)");
        let e = scan(
            Path::new("x.rs"),
            "// exercise(ch01.a): x\n\n// end exercise\n",
        )
        .unwrap_err();
        assert_eq!(e, "x.rs:1: exercise ch01.a is empty");
    }
}
