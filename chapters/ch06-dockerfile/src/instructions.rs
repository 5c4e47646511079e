//! From parsed lines to instructions the builder can trust: each keyword's arguments and
//! flags checked as BuildKit's instruction reader (`parser/instructions/parse.go`) checks
//! them, with its messages, at the instruction's line.
//!
//! The parser accepts any keyword and any `--flag`; this is where `RUNN` becomes
//! `unknown instruction: RUNN`, `ENV =x` becomes `ENV names can not be blank`, and
//! `COPY --form=x` becomes `Unknown flag: form`.
use crate::parser::{Arg, Dockerfile, Instruction, ParseError};

/// The keywords BuildKit knows.
pub const KEYWORDS: &[&str] = &[
    "add",
    "arg",
    "cmd",
    "copy",
    "entrypoint",
    "env",
    "expose",
    "from",
    "healthcheck",
    "label",
    "maintainer",
    "onbuild",
    "run",
    "shell",
    "stopsignal",
    "user",
    "volume",
    "workdir",
];

/// The flags each keyword takes: `(name, takes a value)`.
fn known_flags(command: &str) -> &'static [(&'static str, bool)] {
    match command {
        "from" => &[("platform", true)],
        "copy" => &[
            ("from", true),
            ("chown", true),
            ("chmod", true),
            ("link", false),
            ("parents", false),
            ("exclude", true),
        ],
        "add" => &[
            ("chown", true),
            ("chmod", true),
            ("link", false),
            ("checksum", true),
            ("keep-git-dir", false),
            ("exclude", true),
        ],
        "run" => &[("mount", true), ("network", true), ("security", true)],
        "healthcheck" => &[
            ("interval", true),
            ("timeout", true),
            ("start-period", true),
            ("start-interval", true),
            ("retries", true),
        ],
        _ => &[],
    }
}

/// One `--name[=value]` flag, split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flag {
    /// Its name, without the dashes.
    pub name: String,
    /// Its value, `None` for `--link` style flags.
    pub value: Option<String>,
}

/// Splits and checks an instruction's flags against what its keyword takes.
pub fn flags(i: &Instruction) -> Result<Vec<Flag>, String> {
    let known = known_flags(&i.command());
    let mut out: Vec<Flag> = Vec::new();
    for raw in &i.flags {
        let body = raw.strip_prefix("--").unwrap_or(raw);
        let (name, value) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        let Some(&(_, takes_value)) = known.iter().find(|(n, _)| *n == name) else {
            return Err(format!("Unknown flag: {name}"));
        };
        if takes_value && value.is_none() {
            return Err(format!("Missing a value on flag: {name}"));
        }
        // `--mount` and `--exclude` may repeat; the others may not.
        if !matches!(name, "mount" | "exclude") && out.iter().any(|f| f.name == name) {
            return Err(format!("Duplicate flag specified: {name}"));
        }
        out.push(Flag {
            name: name.to_string(),
            value,
        });
    }
    Ok(out)
}

/// Checks every instruction of `file`; the first problem, at its line.
pub fn check(file: &Dockerfile) -> Result<(), ParseError> {
    let mut seen_from = false;
    for i in &file.instructions {
        let at = |message: String| ParseError {
            line: i.start_line,
            message,
        };
        check_one(i, false).map_err(at)?;
        match i.command().as_str() {
            "from" => seen_from = true,
            // Only ARG may come before the first FROM (its value is then usable in FROM).
            "arg" => {}
            _ if !seen_from => {
                return Err(at(format!(
                    "{} instruction before the first FROM: no build stage in current context",
                    i.keyword.to_uppercase()
                )));
            }
            _ => {}
        }
    }
    Ok(())
}

fn check_one(i: &Instruction, in_onbuild: bool) -> Result<(), String> {
    let command = i.command();
    if !KEYWORDS.contains(&command.as_str()) {
        return Err(format!("unknown instruction: {}", i.keyword));
    }
    flags(i)?;
    let name = i.keyword.to_uppercase();
    let values = i.values();
    let n = values.len() + i.heredocs.len().min(1);
    match command.as_str() {
        "from" => {
            let stage_ok = values.len() == 3 && values[1].eq_ignore_ascii_case("as");
            if values.len() != 1 && !stage_ok {
                return Err("FROM requires either one or three arguments".into());
            }
            if stage_ok && !valid_stage_name(values[2]) {
                return Err(format!(
                    "invalid name for build stage: {:?}, name can't start with a number or contain symbols",
                    values[2]
                ));
            }
        }
        "env" | "label" => {
            if values.is_empty() {
                return Err(format!("{name} requires at least one argument"));
            }
            if !values.len().is_multiple_of(3) {
                return Err(format!("Bad input to {name}, too many arguments"));
            }
            if values.chunks(3).any(|kv| kv[0].is_empty()) {
                return Err(format!("{name} names can not be blank"));
            }
        }
        "arg" => {
            if values.is_empty() {
                return Err("ARG requires at least one argument".into());
            }
            if values.iter().any(|v| v.split('=').next() == Some("")) {
                return Err("ARG names can not be blank".into());
            }
        }
        "copy" | "add" => {
            if n == 0 {
                return Err(format!("{name} requires at least two arguments"));
            }
            if values.len() < 2 && i.heredocs.is_empty() {
                return Err(format!(
                    "{name} requires at least two arguments, but only one was provided. Destination could not be determined"
                ));
            }
        }
        "workdir" | "user" | "stopsignal" | "maintainer" if values.len() != 1 => {
            return Err(format!("{name} requires exactly one argument"));
        }
        "run" | "expose" if n == 0 => {
            return Err(format!("{name} requires at least one argument"));
        }
        "volume" => {
            if values.is_empty() {
                return Err("VOLUME requires at least one argument".into());
            }
            if values.iter().any(|v| v.trim().is_empty()) {
                return Err("VOLUME specified can not be an empty string".into());
            }
        }
        "shell" => {
            if !i.json {
                return Err("SHELL requires the arguments to be in JSON form".into());
            }
            if values.is_empty() {
                return Err("SHELL requires at least one argument".into());
            }
        }
        "healthcheck" => {
            let Some(typ) = values.first() else {
                return Err("HEALTHCHECK requires at least one argument".into());
            };
            match typ.to_uppercase().as_str() {
                "NONE" if values.len() > 1 => {
                    return Err("HEALTHCHECK NONE takes no arguments".into());
                }
                "NONE" => {}
                "CMD" if values.len() == 1 => {
                    return Err("Missing command after HEALTHCHECK CMD".into());
                }
                "CMD" => {}
                other => {
                    return Err(format!("Unknown type {other:?} in HEALTHCHECK (try CMD)"));
                }
            }
        }
        "onbuild" => {
            if in_onbuild {
                return Err("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into());
            }
            let Some(Arg::Nested(inner)) = i.args.first() else {
                return Err("ONBUILD requires at least one argument".into());
            };
            match inner.command().as_str() {
                "onbuild" => {
                    return Err("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into());
                }
                "from" | "maintainer" => {
                    return Err(format!(
                        "{} isn't allowed as an ONBUILD trigger",
                        inner.keyword.to_uppercase()
                    ));
                }
                _ => check_one(inner, true)?,
            }
        }
        _ => {}
    }
    Ok(())
}

/// A stage name: a letter, then letters, digits, `-`, `_` and `.`.
fn valid_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::parse;

    fn problem(text: &str) -> Option<(usize, String)> {
        let f = parse(text).map_err(|e| (e.line, e.message)).ok()?;
        check(&f).err().map(|e| (e.line, e.message))
    }

    #[test]
    fn well_formed_files_pass() {
        let ok = "\
ARG BASE=busybox
FROM $BASE AS build
ENV A=1 B 2
RUN --mount=type=cache,target=/c --network=none make
COPY --from=build --chown=1:1 --link /out /
ADD --checksum=sha256:abc https://x/y /y
COPY <<EOF /etc/motd
hello
EOF
HEALTHCHECK --interval=5s CMD true
ONBUILD RUN echo
SHELL [\"/bin/sh\", \"-c\"]
CMD [\"sh\"]
";
        assert_eq!(problem(ok), None);
    }

    #[test]
    fn each_mistake_is_named_at_its_line() {
        let table: &[(&str, usize, &str)] = &[
            ("FROM x\nRUNN echo\n", 2, "unknown instruction: RUNN"),
            ("FROM x\nENV =x\n", 2, "ENV names can not be blank"),
            ("FROM x\nLABEL =x\n", 2, "LABEL names can not be blank"),
            ("FROM x\nCOPY --form=y a b\n", 2, "Unknown flag: form"),
            (
                "FROM x\nCOPY --from a b\n",
                2,
                "Missing a value on flag: from",
            ),
            (
                "FROM x\nCOPY a\n",
                2,
                "COPY requires at least two arguments, but only one was provided. Destination could not be determined",
            ),
            ("FROM x\nCOPY\n", 2, "COPY requires at least two arguments"),
            (
                "FROM a b\n",
                1,
                "FROM requires either one or three arguments",
            ),
            (
                "FROM a AS 1st\n",
                1,
                "invalid name for build stage: \"1st\", name can't start with a number or contain symbols",
            ),
            (
                "FROM x\nWORKDIR\n",
                2,
                "WORKDIR requires exactly one argument",
            ),
            ("FROM x\nRUN\n", 2, "RUN requires at least one argument"),
            (
                "FROM x\nSHELL sh -c\n",
                2,
                "SHELL requires the arguments to be in JSON form",
            ),
            (
                "FROM x\nHEALTHCHECK CMD\n",
                2,
                "Missing command after HEALTHCHECK CMD",
            ),
            (
                "FROM x\nHEALTHCHECK WHAT x\n",
                2,
                "Unknown type \"WHAT\" in HEALTHCHECK (try CMD)",
            ),
            (
                "FROM x\nONBUILD ONBUILD RUN x\n",
                2,
                "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed",
            ),
            (
                "FROM x\nONBUILD FROM y\n",
                2,
                "FROM isn't allowed as an ONBUILD trigger",
            ),
            (
                "FROM x\nVOLUME [\"\"]\n",
                2,
                "VOLUME specified can not be an empty string",
            ),
            (
                "RUN echo\n",
                1,
                "RUN instruction before the first FROM: no build stage in current context",
            ),
            (
                "FROM x\nCOPY --chown=1 --chown=2 a b\n",
                2,
                "Duplicate flag specified: chown",
            ),
        ];
        for (text, line, message) in table {
            assert_eq!(problem(text), Some((*line, message.to_string())), "{text}");
        }
    }
}
