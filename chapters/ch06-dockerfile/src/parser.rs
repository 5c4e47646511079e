//! A Dockerfile, read into instructions the way BuildKit's parser reads it
//! (`frontend/dockerfile/parser`), down to its quirks: what it accepts and rejects, and the
//! text of its `Node.Dump()`, so the two can be diffed.
//!
//! The file is read line by line:
//!
//! 1. **Parser directives** come first: `# syntax=...`, `# escape=...`, `# check=...`
//!    comments, each at most once. The first line that is not one (a blank line, another
//!    comment, an instruction, an unknown directive) ends them.
//! 2. **Comments** are lines whose first non-blank character is `#`: dropped, also in the
//!    middle of a continued instruction. A `#` anywhere else is an ordinary character.
//! 3. **Continuation**: a line ending in the escape character (`\`, or `` ` ``), blanks
//!    after it allowed, goes on on the next line; blank lines in between are skipped (with
//!    a warning).
//! 4. The joined line splits into the **keyword** (any case), leading `--flag=value`
//!    **flags**, and the **rest**, which each keyword reads its own way
//!    (BuildKit's dispatch table): JSON array or shell text, `key=value` pairs, whitespace-separated
//!    words, one string.
//! 5. **Heredocs**: after `RUN`, `COPY` and `ADD` in shell form, each `<<NAME` (or
//!    `<<-NAME`, which strips leading tabs) takes the lines up to `NAME` alone on a line.
//!
//! Nothing is expanded here: `$VAR` is still `$VAR` (see [`crate::shell`]), and unknown
//! keywords are kept, to be refused by [`crate::instructions`] with their line.
use crate::shell::Lexer;

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// The instructions, in order.
    pub instructions: Vec<Instruction>,
    /// The escape character in force (`# escape=`).
    pub escape: char,
    /// The parser directives given, `(name, value)`, names lowercase.
    pub directives: Vec<(String, String)>,
    /// What the parser warns about (empty continuation lines).
    pub warnings: Vec<String>,
}

/// One instruction, with its arguments as the keyword's reader left them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// The keyword as written (`run`, `RUN`, `Run`).
    pub keyword: String,
    /// The `--name[=value]` flags before the arguments, quotes removed.
    pub flags: Vec<String>,
    /// The arguments (BuildKit's chain of `Next` nodes).
    pub args: Vec<Arg>,
    /// The arguments were a JSON array (exec form).
    pub json: bool,
    /// Here-documents attached, in order.
    pub heredocs: Vec<Heredoc>,
    /// The instruction line after continuation lines were joined.
    pub original: String,
    /// First line, 1-based.
    pub start_line: usize,
    /// Last line, heredoc bodies included.
    pub end_line: usize,
    /// The comments right above it.
    pub comments: Vec<String>,
}

/// One argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    /// A string.
    Value(String),
    /// An instruction inside another (`ONBUILD RUN ...`).
    Nested(Box<Instruction>),
}

/// `<<EOF` ... `EOF`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The terminating word, quotes removed.
    pub name: String,
    /// The descriptor it feeds (`3<<EOF`; 0 when none is given).
    pub fd: u32,
    /// Variables in the body are expanded (the name was not quoted).
    pub expand: bool,
    /// `<<-`: leading tabs are removed from the body's lines.
    pub chomp: bool,
    /// The body, with its line endings.
    pub content: String,
}

/// A parse error, at a line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    /// The line (1-based) of the instruction at fault.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl Instruction {
    /// The keyword, lowercase: how the builder looks it up.
    pub fn command(&self) -> String {
        self.keyword.to_lowercase()
    }

    /// The plain string arguments (nested instructions left out).
    pub fn values(&self) -> Vec<&str> {
        self.args
            .iter()
            .filter_map(|a| match a {
                Arg::Value(v) => Some(v.as_str()),
                Arg::Nested(_) => None,
            })
            .collect()
    }

    /// BuildKit's `Node.Dump()` of this instruction, without the surrounding parentheses.
    pub fn dump(&self) -> String {
        let mut s = self.keyword.to_lowercase();
        if !self.flags.is_empty() {
            let flags: Vec<String> = self.flags.iter().map(|f| go_quote(f)).collect();
            s.push_str(&format!(" [{}]", flags.join(" ")));
        }
        for a in &self.args {
            match a {
                Arg::Value(v) => {
                    s.push(' ');
                    s.push_str(&go_quote(v));
                }
                Arg::Nested(i) => s.push_str(&format!(" ({})", i.dump())),
            }
        }
        s.trim().to_string()
    }

    fn may_have_heredocs(&self) -> bool {
        let inner = match (self.command().as_str(), self.args.first()) {
            ("onbuild", Some(Arg::Nested(i))) => i,
            _ => self,
        };
        matches!(inner.command().as_str(), "run" | "copy" | "add") && !inner.json
    }
}

impl Dockerfile {
    /// The whole file as BuildKit's `Node.Dump()` prints it: one `(...)` per instruction.
    pub fn dump(&self) -> String {
        self.instructions
            .iter()
            .map(|i| format!("({})", i.dump()))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Go's `strconv.Quote`: what BuildKit's dump prints for every string.
pub fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() => {
                if (c as u32) < 0x10000 {
                    out.push_str(&format!("\\u{:04x}", c as u32))
                } else {
                    out.push_str(&format!("\\U{:08x}", c as u32))
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The directives, and the escape character they set.
struct Directives {
    escape: char,
    done: bool,
    seen: Vec<(String, String)>,
}

impl Directives {
    /// Looks at a line while directives may still come: `# name = value`.
    fn look_at(&mut self, line: &str) -> Result<(), String> {
        if self.done {
            return Ok(());
        }
        let Some((name, value)) = directive(line) else {
            self.done = true;
            return Ok(());
        };
        let name = name.to_lowercase();
        if !matches!(name.as_str(), "escape" | "syntax" | "check") {
            self.done = true;
            return Ok(());
        }
        if self.seen.iter().any(|(n, _)| *n == name) {
            return Err(format!("only one {name} parser directive can be used"));
        }
        if name == "escape" {
            self.escape = match value.as_str() {
                "\\" => '\\',
                "`" => '`',
                other => {
                    return Err(format!(
                        "invalid escape token '{other}' does not match ` or \\"
                    ));
                }
            };
        }
        self.seen.push((name, value));
        Ok(())
    }

    /// Ends in the escape character (and blanks), not itself escaped: the line goes on.
    /// Returns the line without it.
    fn continues(&self, line: &str) -> Option<String> {
        // exercise(ch06.continues): a line ending in the escape character (blanks after it allowed), not itself escaped, goes on: return it without that character
        let trimmed = line.trim_end_matches([' ', '\t']);
        let body = trimmed.strip_suffix(self.escape)?;
        if body.ends_with(self.escape) {
            return None; // an escaped escape character
        }
        Some(body.to_string())
        // end exercise
    }
}

/// `# name = value` (the name a letter then letters and digits; blanks anywhere around).
fn directive(line: &str) -> Option<(String, String)> {
    let rest = line.strip_prefix('#')?.trim_start();
    let name_len = rest
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())))
        .map_or(rest.len(), |(i, _)| i);
    if name_len == 0 {
        return None;
    }
    let (name, rest) = rest.split_at(name_len);
    let value = rest.trim_start().strip_prefix('=')?.trim();
    if value.is_empty() {
        return None;
    }
    Some((name.to_string(), value.to_string()))
}

fn trim_newline(line: &str) -> &str {
    line.trim_end_matches(['\r', '\n'])
}

fn is_comment(line: &str) -> bool {
    trim_newline(line).trim_start().starts_with('#')
}

/// Parses a Dockerfile's text.
pub fn parse(text: &str) -> Result<Dockerfile, ParseError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut d = Directives {
        escape: '\\',
        done: false,
        seen: Vec::new(),
    };
    let mut instructions = Vec::new();
    let mut warnings = Vec::new();
    let mut comments: Vec<String> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let raw = lines[i];
        i += 1;
        let start_line = i;
        let first = trim_newline(raw).trim_start();
        if is_comment(raw) {
            comments.push(first[1..].trim().to_string());
        }
        d.look_at(first).map_err(|m| ParseError {
            line: start_line,
            message: m,
        })?;
        let first = if first.starts_with('#') { "" } else { first };
        let mut line = first.to_string();
        let mut open = match d.continues(&line) {
            Some(body) => {
                line = body;
                true
            }
            None if line.is_empty() => continue,
            None => false,
        };
        let mut empty_continuation = false;
        while open && i < lines.len() {
            let raw = lines[i];
            i += 1;
            let next = trim_newline(raw);
            d.look_at(next).map_err(|m| ParseError {
                line: i,
                message: m,
            })?;
            if is_comment(raw) {
                continue;
            }
            if next.trim_start().is_empty() {
                empty_continuation = true;
                continue;
            }
            match d.continues(next) {
                Some(body) => line.push_str(&body),
                None => {
                    line.push_str(next);
                    open = false;
                }
            }
        }
        if empty_continuation {
            warnings.push(format!(
                "[WARNING]: Empty continuation line found in:\n    {line}"
            ));
        }
        let at = |message: String| ParseError {
            line: start_line,
            message,
        };
        let mut instruction = from_line(&line, &d).map_err(at)?;
        if instruction.may_have_heredocs() {
            for mut doc in heredocs_in(&line).map_err(at)? {
                let mut terminated = false;
                while i < lines.len() {
                    let raw = lines[i];
                    i += 1;
                    let mut candidate = trim_newline(raw);
                    if doc.chomp {
                        candidate = candidate.trim_start_matches('\t');
                    }
                    if candidate == doc.name {
                        terminated = true;
                        break;
                    }
                    doc.content.push_str(raw);
                }
                if !terminated {
                    return Err(at("unterminated heredoc".into()));
                }
                instruction.heredocs.push(doc);
            }
        }
        instruction.start_line = start_line;
        instruction.end_line = i;
        instruction.comments = std::mem::take(&mut comments);
        instructions.push(instruction);
    }
    if instructions.is_empty() {
        return Err(ParseError {
            line: lines.len(),
            message: "file with no instructions".into(),
        });
    }
    if !warnings.is_empty() {
        warnings.push(
            "[WARNING]: Empty continuation lines will become errors in a future release.".into(),
        );
    }
    Ok(Dockerfile {
        instructions,
        escape: d.escape,
        directives: d.seen,
        warnings,
    })
}

/// BuildKit's whitespace between a keyword and its arguments: not newlines.
fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\u{b}' | '\u{c}' | '\r')
}

fn split_blank(s: &str, limit: Option<usize>) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = s;
    loop {
        if limit.is_some_and(|l| out.len() + 1 == l) {
            out.push(rest.to_string());
            return out;
        }
        match rest.find(is_blank) {
            Some(start) => {
                out.push(rest[..start].to_string());
                let after = &rest[start..];
                let skip = after.find(|c| !is_blank(c)).unwrap_or(after.len());
                rest = &after[skip..];
            }
            None => {
                out.push(rest.to_string());
                return out;
            }
        }
    }
}

/// One joined line into an instruction: keyword, flags, then the keyword's reader.
fn from_line(line: &str, d: &Directives) -> Result<Instruction, String> {
    let parts = split_blank(line.trim(), Some(2));
    let keyword = parts[0].clone();
    let (flags, rest) = match parts.get(1) {
        Some(rest) => leading_flags(rest),
        None => (Vec::new(), String::new()),
    };
    let (args, json) = read_arguments(&keyword.to_lowercase(), rest.trim(), d)?;
    Ok(Instruction {
        keyword,
        flags,
        args,
        json,
        heredocs: Vec::new(),
        original: line.to_string(),
        start_line: 0,
        end_line: 0,
        comments: Vec::new(),
    })
}

/// The `--flag[=value]` words at the start of `rest` (quotes removed, `\` escapes the next
/// character), and what follows them. A lone `--` ends the flags.
fn leading_flags(rest: &str) -> (Vec<String>, String) {
    let chars: Vec<char> = rest.chars().collect();
    let mut flags = Vec::new();
    let mut pos = 0;
    loop {
        while pos < chars.len() && chars[pos].is_whitespace() {
            pos += 1;
        }
        if !(pos + 1 < chars.len() && chars[pos] == '-' && chars[pos + 1] == '-') {
            return (flags, chars[pos..].iter().collect());
        }
        let mut word = String::new();
        let mut quoted = false;
        let mut quote: Option<char> = None;
        while pos < chars.len() {
            let c = chars[pos];
            match quote {
                None if c.is_whitespace() => break,
                None if c == '\'' || c == '"' => {
                    quote = Some(c);
                    quoted = true;
                }
                Some(q) if c == q => quote = None,
                _ if c == '\\' => {
                    pos += 1;
                    if pos == chars.len() {
                        break;
                    }
                    word.push(chars[pos]);
                }
                _ => word.push(c),
            }
            pos += 1;
        }
        if word == "--" {
            return (flags, chars[pos..].iter().collect());
        }
        if quoted || !word.is_empty() {
            flags.push(word);
        }
    }
}

/// Reads the arguments the way `keyword` does (BuildKit's dispatch table); also whether
/// they were a JSON array.
fn read_arguments(keyword: &str, rest: &str, d: &Directives) -> Result<(Vec<Arg>, bool), String> {
    let values = |v: Vec<String>| v.into_iter().map(Arg::Value).collect();
    Ok(match keyword {
        "run" | "cmd" | "entrypoint" | "shell" => match json_array(rest)? {
            _ if rest.is_empty() => (Vec::new(), false),
            Some(a) => (values(a), true),
            None => (vec![Arg::Value(rest.to_string())], false),
        },
        "add" | "copy" | "volume" => match json_array(rest)? {
            Some(a) => (values(a), true),
            None => (values(whitespace_words(rest)), false),
        },
        "from" | "expose" => (values(whitespace_words(rest)), false),
        "env" | "label" => (
            values(name_values(rest, &keyword.to_uppercase(), d)?),
            false,
        ),
        "arg" => (values(words(rest, d.escape)), false),
        "maintainer" | "stopsignal" | "user" | "workdir" => match rest {
            "" => (Vec::new(), false),
            r => (vec![Arg::Value(r.to_string())], false),
        },
        "healthcheck" => {
            let typ_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            if typ_end == 0 {
                return Ok((Vec::new(), false));
            }
            let cmd = rest[typ_end..].trim_start();
            let (mut args, json) = read_arguments("cmd", cmd, d)?;
            args.insert(0, Arg::Value(rest[..typ_end].to_string()));
            (args, json)
        }
        "onbuild" => match rest {
            "" => (Vec::new(), false),
            r => (vec![Arg::Nested(Box::new(from_line(r, d)?))], false),
        },
        // Unknown keywords are kept, without arguments: the instruction reader refuses
        // them, with their line.
        _ => (vec![Arg::Value(String::new())], false),
    })
}

/// `["a", "b"]` as strings; `None` when `rest` is not a JSON array at all; an error when
/// it is one with something other than strings in it.
fn json_array(rest: &str) -> Result<Option<Vec<String>>, String> {
    let rest = rest.trim_start();
    if !rest.starts_with('[') {
        return Ok(None);
    }
    let Ok(values) = serde_json::from_str::<Vec<serde_json::Value>>(rest) else {
        return Ok(None);
    };
    values
        .into_iter()
        .map(|v| match v {
            serde_json::Value::String(s) => Ok(s),
            _ => {
                Err("when using JSON array syntax, arrays must be comprised of strings only".into())
            }
        })
        .collect::<Result<Vec<_>, String>>()
        .map(Some)
}

fn whitespace_words(rest: &str) -> Vec<String> {
    if rest.is_empty() {
        return Vec::new();
    }
    split_blank(rest, None)
}

/// Words separated by whitespace, quotes and escapes kept as written (the lexer removes
/// them later), but a quoted or escaped space does not separate.
fn words(rest: &str, escape: char) -> Vec<String> {
    let chars: Vec<char> = rest.chars().collect();
    let mut out = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut blank_ok = false;
    let mut pos = 0;
    while pos < chars.len() {
        let c = chars[pos];
        pos += 1;
        match quote {
            None => {
                if c.is_whitespace() {
                    if in_word && (blank_ok || !word.is_empty()) {
                        out.push(std::mem::take(&mut word));
                    }
                    in_word = false;
                    blank_ok = false;
                    continue;
                }
                in_word = true;
                if c == '\'' || c == '"' {
                    quote = Some(c);
                    blank_ok = true;
                }
                if c == escape {
                    if pos == chars.len() {
                        continue; // an escape at the very end goes away
                    }
                    word.push(c);
                    word.push(chars[pos]);
                    pos += 1;
                    continue;
                }
                word.push(c);
            }
            Some(q) => {
                if c == q {
                    quote = None;
                }
                if c == escape && q != '\'' {
                    if pos == chars.len() {
                        quote = None;
                        continue;
                    }
                    word.push(c);
                    word.push(chars[pos]);
                    pos += 1;
                    continue;
                }
                word.push(c);
            }
        }
    }
    // An unterminated quote loses its word, as in BuildKit's reader.
    if in_word && quote.is_none() && (blank_ok || !word.is_empty()) {
        out.push(word);
    }
    out
}

/// `ENV`/`LABEL`: `name value` (the old form: one pair, the value is the rest of the line)
/// or `name=value ...`; each pair becomes name, value and the separator (`=` or "").
fn name_values(rest: &str, keyword: &str, d: &Directives) -> Result<Vec<String>, String> {
    let ws = words(rest, d.escape);
    let Some(first) = ws.first() else {
        return Ok(Vec::new());
    };
    if !first.contains('=') {
        let parts = split_blank(rest, Some(2));
        if parts.len() < 2 {
            return Err(format!("{keyword} must have two arguments"));
        }
        return Ok(vec![parts[0].clone(), parts[1].clone(), String::new()]);
    }
    let mut out = Vec::new();
    for w in ws {
        let Some((k, v)) = w.split_once('=') else {
            return Err(format!(
                "Syntax error - can't find = in {}. Must be of the form: name=value",
                go_quote(&w)
            ));
        };
        out.extend([k.to_string(), v.to_string(), "=".to_string()]);
    }
    Ok(out)
}

/// The words of `line` that are not heredoc openers (`<<EOF`, `<< EOF`, `3<<-'X'`): what is
/// left of a `RUN <<EOF` is nothing, and then the heredoc's body is the whole script.
pub fn words_besides_heredocs(line: &str) -> Vec<String> {
    scan_heredocs(line)
        .map(|(_, rest)| rest)
        .unwrap_or_default()
}

/// The heredocs a line opens: each word of the form `[N]<<[-]NAME`.
fn heredocs_in(line: &str) -> Result<Vec<Heredoc>, String> {
    scan_heredocs(line).map(|(docs, _)| docs)
}

/// The line's words as a shell reads them (quotes and escapes kept), split into the
/// heredocs they open and the other words.
fn scan_heredocs(line: &str) -> Result<(Vec<Heredoc>, Vec<String>), String> {
    let raw = Lexer {
        raw_quotes: true,
        raw_escapes: true,
        skip_unset: true,
        ..Lexer::new('\\')
    };
    let none: &Vec<(String, String)> = &Vec::new();
    let words = raw.process_words(line, none).unwrap_or_default();
    let (mut docs, mut rest) = (Vec::new(), Vec::new());
    let mut i = 0;
    while i < words.len() {
        let w = &words[i];
        let digits = w.chars().take_while(char::is_ascii_digit).count();
        let operator = &w[digits..];
        // `<< EOF` and `<<- EOF`: the name may stand apart from the operator (and then a
        // `-` in it is part of the name: `<< -EOF` is named `-EOF`).
        let doc = if (operator == "<<" || operator == "<<-") && i + 1 < words.len() {
            i += 1;
            heredoc_from(&w[..digits], operator == "<<-", &words[i])?
        } else {
            heredoc_word(w)?
        };
        match doc {
            Some(d) => docs.push(d),
            None => rest.push(w.clone()),
        }
        i += 1;
    }
    Ok((docs, rest))
}

/// `[N]<<[-]NAME`, the name possibly quoted (then the body is not expanded).
fn heredoc_word(word: &str) -> Result<Option<Heredoc>, String> {
    let digits = word.chars().take_while(char::is_ascii_digit).count();
    let Some(rest) = word[digits..].strip_prefix("<<") else {
        return Ok(None);
    };
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    heredoc_from(&word[..digits], chomp, rest)
}

/// A heredoc from its parts: the descriptor's digits, `-`, and the (maybe quoted) name.
fn heredoc_from(digits: &str, chomp: bool, rest: &str) -> Result<Option<Heredoc>, String> {
    if rest.is_empty() || rest.contains('<') {
        return Ok(None);
    }
    let none: &Vec<(String, String)> = &Vec::new();
    let plain = Lexer {
        skip_unset: true,
        ..Lexer::new('\\')
    };
    let words = plain.process_words(rest, none).map_err(|e| e.to_string())?;
    if words.len() != 1 {
        return Ok(None);
    }
    let raw = Lexer {
        raw_quotes: true,
        ..plain
    };
    let raw_words = raw.process_words(rest, none).map_err(|e| e.to_string())?;
    let quotes = |s: &str| s.matches(['\'', '"']).count();
    Ok(Some(Heredoc {
        name: words[0].clone(),
        fd: digits.parse().unwrap_or(0),
        expand: quotes(&words[0]) == raw_words.first().map_or(0, |w| quotes(w)),
        chomp,
        content: String::new(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dump(text: &str) -> String {
        parse(text).unwrap().dump()
    }

    fn error(text: &str) -> (usize, String) {
        let e = parse(text).unwrap_err();
        (e.line, e.message)
    }

    #[test]
    fn each_keyword_reads_its_arguments_its_own_way() {
        let table: &[(&str, &str)] = &[
            ("FROM busybox", r#"(from "busybox")"#),
            (
                "from busybox:1.36 AS base",
                r#"(from "busybox:1.36" "AS" "base")"#,
            ),
            ("RUN echo hi there", r#"(run "echo hi there")"#),
            (r#"RUN ["echo", "hi"]"#, r#"(run "echo" "hi")"#),
            (r#"CMD ["sh"] trailing"#, r#"(cmd "[\"sh\"] trailing")"#),
            ("CMD []", "(cmd)"),
            ("CMD", "(cmd)"),
            (
                r#"ENTRYPOINT ["/bin/tini", "--"]"#,
                r#"(entrypoint "/bin/tini" "--")"#,
            ),
            (
                "SHELL [\"/bin/bash\", \"-c\"]",
                r#"(shell "/bin/bash" "-c")"#,
            ),
            (
                "ENV A=1 B=\"two words\"",
                r#"(env "A" "1" "=" "B" "\"two words\"" "=")"#,
            ),
            (
                "ENV PATH /usr/bin:$PATH",
                r#"(env "PATH" "/usr/bin:$PATH" "")"#,
            ),
            ("ENV A 1 2 3", r#"(env "A" "1 2 3" "")"#),
            (
                "LABEL a=b c=\"d e\"",
                r#"(label "a" "b" "=" "c" "\"d e\"" "=")"#,
            ),
            ("ARG V", r#"(arg "V")"#),
            ("ARG V=1 W", r#"(arg "V=1" "W")"#),
            ("COPY a b /dst/", r#"(copy "a" "b" "/dst/")"#),
            (
                "COPY --from=build --chown=1:1 /out /",
                r#"(copy ["--from=build" "--chown=1:1"] "/out" "/")"#,
            ),
            (r#"COPY ["a b", "/c"]"#, r#"(copy "a b" "/c")"#),
            (
                "ADD --checksum=sha256:00 http://x/y /y",
                r#"(add ["--checksum=sha256:00"] "http://x/y" "/y")"#,
            ),
            ("VOLUME /data /logs", r#"(volume "/data" "/logs")"#),
            (r#"VOLUME ["/data"]"#, r#"(volume "/data")"#),
            ("EXPOSE 80/tcp 443", r#"(expose "80/tcp" "443")"#),
            ("WORKDIR /app dir", r#"(workdir "/app dir")"#),
            ("USER 1000:1000", r#"(user "1000:1000")"#),
            ("STOPSIGNAL SIGKILL", r#"(stopsignal "SIGKILL")"#),
            ("MAINTAINER Jane <j@x>", r#"(maintainer "Jane <j@x>")"#),
            ("HEALTHCHECK NONE", r#"(healthcheck "NONE")"#),
            (
                "HEALTHCHECK --interval=5s CMD curl -f http://localhost/",
                r#"(healthcheck ["--interval=5s"] "CMD" "curl -f http://localhost/")"#,
            ),
            (
                r#"HEALTHCHECK CMD ["true"]"#,
                r#"(healthcheck "CMD" "true")"#,
            ),
            ("ONBUILD RUN make", r#"(onbuild (run "make"))"#),
            (
                "ONBUILD COPY --chown=1 . /src",
                r#"(onbuild (copy ["--chown=1"] "." "/src"))"#,
            ),
            ("RUNN echo", r#"(runn "")"#),
            (
                "run --mount=type=cache,target=/root/.cache make",
                r#"(run ["--mount=type=cache,target=/root/.cache"] "make")"#,
            ),
            (
                "RUN --network=host -- --not-a-flag",
                r#"(run ["--network=host"] "--not-a-flag")"#,
            ),
            (
                "COPY --chown=\"a b\" x y",
                r#"(copy ["--chown=a b"] "x" "y")"#,
            ),
            ("RUN echo \"\ttab\"", "(run \"echo \\\"\\ttab\\\"\")"),
        ];
        for (line, want) in table {
            assert_eq!(dump(line), *want, "{line}");
        }
    }

    #[test]
    fn continuations_comments_and_blank_lines() {
        let file = "\
# a comment
FROM busybox

RUN echo a \\
    # a comment inside is dropped
    b \\

    c
RUN echo 'x # not a comment'
  run   indented
";
        let f = parse(file).unwrap();
        assert_eq!(
            f.dump(),
            "(from \"busybox\")\n(run \"echo a     b     c\")\n(run \"echo 'x # not a comment'\")\n(run \"indented\")"
        );
        assert_eq!(f.instructions[0].comments, ["a comment"]);
        assert_eq!(
            (f.instructions[1].start_line, f.instructions[1].end_line),
            (4, 8)
        );
        assert_eq!(f.warnings.len(), 2, "{:?}", f.warnings);
        // An escaped escape character does not continue the line.
        assert_eq!(
            dump("RUN echo \\\\\nRUN b"),
            "(run \"echo \\\\\\\\\")\n(run \"b\")"
        );
    }

    #[test]
    fn a_line_ending_in_the_escape_character_goes_on() {
        // Blanks after the escape character still continue the line; what is left of it
        // joins the next one.
        assert_eq!(
            dump("RUN echo a \\  \n  b\nRUN c\n"),
            "(run \"echo a   b\")\n(run \"c\")"
        );
        // An escaped escape character ends the line.
        assert_eq!(
            dump("RUN echo \\\\\nRUN b"),
            "(run \"echo \\\\\\\\\")\n(run \"b\")"
        );
        // A backslash that is not last does not continue it.
        assert_eq!(dump("RUN a\\b\nRUN c"), "(run \"a\\\\b\")\n(run \"c\")");
    }

    #[test]
    fn directives_come_first_and_set_the_escape_character() {
        let f = parse("# syntax=docker/dockerfile:1\n# escape=`\nFROM x\nRUN a `\n  b\n").unwrap();
        assert_eq!(f.escape, '`');
        assert_eq!(
            f.directives,
            [
                ("syntax".to_string(), "docker/dockerfile:1".to_string()),
                ("escape".to_string(), "`".to_string())
            ]
        );
        assert_eq!(f.dump(), "(from \"x\")\n(run \"a   b\")");
        // After a blank line (or any other line) it is an ordinary comment.
        let f = parse("\n# escape=`\nFROM x\nRUN a `\nRUN b\n").unwrap();
        assert_eq!(f.escape, '\\');
        assert_eq!(f.instructions.len(), 3);
        // Case-insensitive, blanks allowed, the first unknown one ends them.
        let f = parse("#ESCAPE = `\n# foo=bar\n# escape=\\\nFROM x\n").unwrap();
        assert_eq!(f.escape, '`');
        assert_eq!(
            error("# escape=`\n# escape=`\nFROM x\n"),
            (2, "only one escape parser directive can be used".into())
        );
        assert_eq!(
            error("# escape=x\nFROM x\n"),
            (1, "invalid escape token 'x' does not match ` or \\".into())
        );
    }

    #[test]
    fn heredocs_take_the_lines_up_to_their_name() {
        let f = parse(
            "FROM x\nRUN <<EOF\necho $HOME\nEOF\nCOPY <<-\"A\" /a <<B /b\n\tone\n\tA\ntwo\nB\nRUN [\"<<EOF\"]\n",
        )
        .unwrap();
        let run = &f.instructions[1];
        assert_eq!(run.heredocs.len(), 1);
        assert_eq!(run.heredocs[0].name, "EOF");
        assert_eq!(run.heredocs[0].content, "echo $HOME\n");
        assert!(run.heredocs[0].expand);
        assert_eq!((run.start_line, run.end_line), (2, 4));
        let copy = &f.instructions[2];
        assert_eq!(copy.heredocs.len(), 2);
        assert_eq!(
            (copy.heredocs[0].name.as_str(), copy.heredocs[0].chomp),
            ("A", true)
        );
        assert!(!copy.heredocs[0].expand, "a quoted name: no expansion");
        assert_eq!(copy.heredocs[0].content, "\tone\n");
        assert_eq!(copy.heredocs[1].content, "two\n");
        // Exec form has no heredocs.
        assert!(f.instructions[3].heredocs.is_empty());
        assert_eq!(f.instructions.len(), 4);
        let e = parse("FROM x\nRUN 3<<EOF cat <&3\nnever ends\n").unwrap_err();
        assert_eq!((e.line, e.message.as_str()), (2, "unterminated heredoc"));
        let f = parse("FROM x\nRUN 3<<EOF cat <&3\nx\nEOF\n").unwrap();
        assert_eq!(f.instructions[1].heredocs[0].fd, 3);
    }

    #[test]
    fn heredoc_names_quotes_and_operators_read_as_in_buildkit() {
        // (instruction line, expected (name, expand, chomp, fd) of each heredoc)
        type Doc<'a> = (&'a str, bool, bool, u32);
        let table: &[(&str, &[Doc<'static>])] = &[
            ("RUN <<EMPTY", &[("EMPTY", true, false, 0)]),
            ("RUN 3<<EMPTY2", &[("EMPTY2", true, false, 3)]),
            ("RUN \"<<NOHEREDOC\"", &[]),
            ("RUN '<<EOF'", &[]),
            ("RUN <<-UNINDENT", &[("UNINDENT", true, true, 0)]),
            ("RUN <<-'NOEXPAND'", &[("NOEXPAND", false, true, 0)]),
            (
                "COPY <<FILE1 <<FILE2 /dest",
                &[("FILE1", true, false, 0), ("FILE2", true, false, 0)],
            ),
            ("RUN <<COMPLEX python3", &[("COMPLEX", true, false, 0)]),
            ("COPY <<file.txt /dest", &[("file.txt", true, false, 0)]),
            ("RUN <<eo'f'", &[("eof", false, false, 0)]),
            ("RUN <<eo\\'f", &[("eo'f", true, false, 0)]),
            ("RUN <<'e'o\\'f", &[("eo'f", false, false, 0)]),
            ("RUN <<'one two'", &[("one two", false, false, 0)]),
            ("RUN <<$EOF", &[("$EOF", true, false, 0)]),
            ("RUN <<  EOF", &[("EOF", true, false, 0)]),
            ("RUN <<  EOF  > foo", &[("EOF", true, false, 0)]),
            ("RUN <<- EOF", &[("EOF", true, true, 0)]),
            ("RUN << -EOF", &[("-EOF", true, false, 0)]),
            ("RUN <<EOF sh", &[("EOF", true, false, 0)]),
            ("USER <<INVALID", &[]),
            ("RUN [\"<<EOF\"]", &[]),
        ];
        for (line, want) in table {
            // Each heredoc's body is one line, its terminator the next: enough to parse.
            let mut text = format!("FROM x\n{line}\n");
            for (name, ..) in *want {
                text.push_str(&format!("body\n{name}\n"));
            }
            let f = parse(&text).unwrap_or_else(|e| panic!("{line}: {e}"));
            let got: Vec<Doc<'_>> = f.instructions[1]
                .heredocs
                .iter()
                .map(|h| (h.name.as_str(), h.expand, h.chomp, h.fd))
                .collect();
            assert_eq!(got, want.to_vec(), "{line}");
        }
    }

    #[test]
    fn bad_files_name_the_line() {
        assert_eq!(
            error("# just a comment\n\n"),
            (2, "file with no instructions".into())
        );
        assert_eq!(
            error("FROM x\nENV ONLYNAME\n"),
            (2, "ENV must have two arguments".into())
        );
        assert_eq!(
            error("FROM x\nLABEL a=b c\n"),
            (
                2,
                "Syntax error - can't find = in \"c\". Must be of the form: name=value".into()
            )
        );
        assert_eq!(
            error("FROM x\n\nCMD [1, 2]\n"),
            (
                3,
                "when using JSON array syntax, arrays must be comprised of strings only".into()
            )
        );
    }

    #[test]
    fn json_arrays_must_hold_strings_only_and_may_be_spaced_freely() {
        let valid: &[(&str, &[&str])] = &[
            ("[]", &[]),
            ("[\"\"]", &[""]),
            ("[ \"a\", \"b\" ]", &["a", "b"]),
            ("\t[\t\"a\",\t\"b\"\t]\t", &["a", "b"]),
            (
                r#"["♥", "\" \\ \/ \b \f \n \r \t \u0000"]"#,
                &["♥", "\" \\ / \u{8} \u{c} \n \r \t \u{0}"],
            ),
        ];
        for (text, want) in valid {
            assert_eq!(
                json_array(text).unwrap(),
                Some(want.iter().map(|s| s.to_string()).collect()),
                "{text}"
            );
        }
        for bad in [
            r#"["a",42,"b"]"#,
            r#"["a",{},"b"]"#,
            r#"["a",["c"],"b"]"#,
            r#"["a",true,"b"]"#,
            r#"["a",null,"b"]"#,
        ] {
            assert!(json_array(bad).is_err(), "{bad}");
        }
        // Not JSON at all: shell form, as written.
        assert_eq!(json_array("[not json").unwrap(), None);
    }

    #[test]
    fn go_quote_escapes_as_go_does() {
        assert_eq!(go_quote("a\"b\\c\n\u{1}é"), r#""a\"b\\c\n\x01é""#);
    }
}
