//! The words of a Dockerfile, expanded: quotes, escapes and `$VAR`, as BuildKit's shell
//! lexer (`frontend/dockerfile/shell/lex.go`) treats them.
//!
//! A Dockerfile is not a shell script, but the builder treats some of its words the way
//! `sh` would: `ENV PATH=/opt/bin:$PATH`, `COPY "$SRC" /app/`, `WORKDIR ${HOME:-/root}`.
//! Only the builder's own variables count (`ENV`s and `ARG`s so far in the stage), never
//! the host's environment. What `sh` does and this does not: no command substitution, no
//! globbing, no arithmetic, no `~`. `RUN`'s shell form is not expanded here at all: the
//! shell inside the container does that, with the container's environment.
//!
//! The rules, in the order the lexer meets them:
//!
//! * `'...'`: everything literal up to the next `'`; the escape character means nothing.
//! * `"..."`: literal except `$` expansions; the escape character escapes only `"`, `$`
//!   and itself, and stays as it is before anything else (`"a\b"` is `a\b`).
//! * the escape character (`\`, or `` ` `` after `# escape=`` ` ``) outside quotes: the
//!   next character is taken literally; at the very end it is dropped.
//! * `$NAME` and `${NAME}`: the value, or nothing when unset; `$` before anything that is
//!   not a name stays `$`. A name is letters, digits and `_`; `$1` is all the digits, and
//!   `$@ $* $# $? $- $$ $! $0` name special parameters (always unset here).
//! * `${NAME:-word}` / `${NAME-word}`: the value, or `word` when it is unset or empty
//!   (`:-`) / unset (`-`). `${NAME:+word}` / `${NAME+word}`: `word` when set and not empty
//!   / set, else nothing. `${NAME:?msg}` / `${NAME?msg}`: an error when unset or empty /
//!   unset.
//! * `${NAME#pattern}` / `${NAME##pattern}`: the value without its shortest / longest
//!   prefix matching `pattern`; `%` and `%%` do the same at the end. In a pattern `*` is
//!   any text and `?` any one character.
//! * `${NAME/pattern/text}`: the first (longest) match replaced; `${NAME//pattern/text}`
//!   every match.
//!
//! After expansion, [`Lexer::process_words`] splits on whitespace the way the shell would
//! after it: what came from quotes stays one word, even with spaces in it; what came from a
//! variable is split.
use std::collections::HashMap;

/// The variables a word may refer to.
pub trait Env {
    /// The value of `name`, `None` when unset (set to "" is not unset).
    fn get(&self, name: &str) -> Option<&str>;
}

impl Env for HashMap<String, String> {
    fn get(&self, name: &str) -> Option<&str> {
        HashMap::get(self, name).map(String::as_str)
    }
}

impl Env for Vec<(String, String)> {
    fn get(&self, name: &str) -> Option<&str> {
        self.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Why a word could not be expanded: `failed to process "${A": syntax error: missing '}'`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("failed to process {word:?}: {problem}")]
pub struct LexError {
    /// The word as written.
    pub word: String,
    /// What is wrong with it.
    pub problem: String,
}

/// The lexer, with its switches (the defaults expand like the builder).
#[derive(Debug, Clone, Copy)]
pub struct Lexer {
    /// The escape character: `\`, or `` ` `` (`# escape=`` ` ``).
    pub escape: char,
    /// Keep quote characters in the result (used to tell a quoted heredoc name).
    pub raw_quotes: bool,
    /// Keep escape characters in the result.
    pub raw_escapes: bool,
    /// Leave unset variables as written instead of expanding them to nothing.
    pub skip_unset: bool,
}

impl Lexer {
    /// A lexer with `escape` and the builder's defaults.
    pub fn new(escape: char) -> Lexer {
        Lexer {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_unset: false,
        }
    }

    /// `word` expanded, as one string (spaces between words kept): what `ENV`, `WORKDIR`,
    /// `USER`, `LABEL` values get.
    pub fn process_word(&self, word: &str, env: &dyn Env) -> Result<String, LexError> {
        self.run(word, env).map(|(w, _)| w)
    }

    /// `word` expanded and split into words: what `COPY`'s sources and `FROM`'s image name
    /// go through.
    pub fn process_words(&self, word: &str, env: &dyn Env) -> Result<Vec<String>, LexError> {
        self.run(word, env).map(|(_, ws)| ws)
    }

    fn run(&self, word: &str, env: &dyn Env) -> Result<(String, Vec<String>), LexError> {
        let mut s = Scan {
            lexer: self,
            env,
            chars: word.chars().collect(),
            pos: 0,
        };
        s.until(None, self.raw_escapes).map_err(|problem| LexError {
            word: word.to_string(),
            problem,
        })
    }
}

/// Splitting into words as the characters arrive: a character from a quote or an escape
/// always belongs to the word; an unquoted space ends it.
#[derive(Default)]
struct Words {
    current: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add(&mut self, ch: char) {
        if ch.is_whitespace() {
            if self.in_word && !self.current.is_empty() {
                self.words.push(std::mem::take(&mut self.current));
                self.in_word = false;
            }
        } else {
            self.add_raw(ch);
        }
    }

    fn add_raw(&mut self, ch: char) {
        self.current.push(ch);
        self.in_word = true;
    }

    fn add_str(&mut self, s: &str) {
        s.chars().for_each(|c| self.add(c));
    }

    fn add_raw_str(&mut self, s: &str) {
        self.current.push_str(s);
        self.in_word = true;
    }

    fn finish(mut self) -> Vec<String> {
        if !self.current.is_empty() {
            self.words.push(self.current);
        }
        self.words
    }
}

struct Scan<'a> {
    lexer: &'a Lexer,
    env: &'a dyn Env,
    chars: Vec<char>,
    pos: usize,
}

type Res<T> = Result<T, String>;

impl Scan<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    /// Up to `stop` (consumed) or the end: the expanded text and its words.
    fn until(&mut self, stop: Option<char>, raw_escapes: bool) -> Res<(String, Vec<String>)> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(ch) = self.peek() {
            if Some(ch) == stop {
                self.pos += 1;
                return Ok((result, words.finish()));
            }
            match ch {
                '$' => {
                    let v = self.dollar()?;
                    result.push_str(&v);
                    words.add_str(&v);
                }
                '\'' => {
                    let v = self.single_quote()?;
                    result.push_str(&v);
                    words.add_raw_str(&v);
                }
                '"' => {
                    let v = self.double_quote(raw_escapes)?;
                    result.push_str(&v);
                    words.add_raw_str(&v);
                }
                _ => {
                    self.pos += 1;
                    if ch == self.lexer.escape {
                        if raw_escapes {
                            words.add_raw(ch);
                            result.push(ch);
                        }
                        // The escape takes the next character literally; at the end it
                        // goes away.
                        let Some(next) = self.next() else { break };
                        words.add_raw(next);
                        result.push(next);
                    } else {
                        words.add(ch);
                        result.push(ch);
                    }
                }
            }
        }
        match stop {
            Some(c) => Err(format!(
                "unexpected end of statement while looking for matching {c}"
            )),
            None => Ok((result, words.finish())),
        }
    }

    fn single_quote(&mut self) -> Res<String> {
        // exercise(ch06.quote): everything up to the next ' is literal (no $, no escapes); a missing ' is an error; keep the quotes in raw mode
        let raw = self.lexer.raw_quotes;
        let mut out = String::new();
        self.pos += 1;
        if raw {
            out.push('\'');
        }
        loop {
            match self.next() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching single-quote"
                            .into(),
                    );
                }
                Some('\'') => {
                    if raw {
                        out.push('\'');
                    }
                    return Ok(out);
                }
                Some(c) => out.push(c),
            }
        }
        // end exercise
    }

    fn double_quote(&mut self, raw_escapes: bool) -> Res<String> {
        let raw = self.lexer.raw_quotes;
        let mut out = String::new();
        self.pos += 1;
        if raw {
            out.push('"');
        }
        loop {
            match self.peek() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching double-quote"
                            .into(),
                    );
                }
                Some('"') => {
                    self.pos += 1;
                    if raw {
                        out.push('"');
                    }
                    return Ok(out);
                }
                Some('$') => out.push_str(&self.dollar()?),
                Some(mut ch) => {
                    self.pos += 1;
                    if ch == self.lexer.escape {
                        if raw_escapes {
                            out.push(ch);
                        }
                        match self.peek() {
                            None => continue, // the missing quote is reported next
                            Some(n) if n == '"' || n == '$' || n == self.lexer.escape => {
                                ch = n;
                                self.pos += 1;
                            }
                            // Before anything else the escape is an ordinary character.
                            Some(_) => {}
                        }
                    }
                    out.push(ch);
                }
            }
        }
    }

    fn lookup(&self, name: &str) -> Option<String> {
        self.env.get(name).map(str::to_string)
    }

    fn dollar(&mut self) -> Res<String> {
        self.pos += 1; // the `$`
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".into());
            }
            return Ok(match self.lookup(&name) {
                Some(v) => v,
                None if self.lexer.skip_unset => format!("${name}"),
                None => String::new(),
            });
        }
        self.pos += 1; // the `{`
        match self.peek() {
            None => return Err("syntax error: missing '}'".into()),
            Some('{' | '}' | ':') => return Err("syntax error: bad substitution".into()),
            Some(_) => {}
        }
        let name = self.name();
        let Some(mut op) = self.next() else {
            return Err("syntax error: missing '}'".into());
        };
        let mut ops = op.to_string();
        match op {
            '}' => Ok(match self.lookup(&name) {
                Some(v) => v,
                None if self.lexer.skip_unset => format!("${{{name}}}"),
                None => String::new(),
            }),
            ':' | '+' | '-' | '?' | '#' | '%' => {
                // `:` makes an empty value count as unset for the operator after it.
                let null_is_unset = op == ':';
                if null_is_unset {
                    op = self.next().unwrap_or('\u{FFFD}');
                    ops.push(op);
                }
                let pattern = op == '#' || op == '%';
                if null_is_unset && pattern {
                    return Err(format!("unsupported modifier ({ops}) in substitution"));
                }
                let word = self.until_brace(pattern)?;
                let value = self.lookup(&name);
                if self.lexer.skip_unset && value.is_none() {
                    return Ok(format!("${{{name}{ops}{word}}}"));
                }
                let empty = value
                    .as_deref()
                    .is_none_or(|v| null_is_unset && v.is_empty());
                match op {
                    '-' => Ok(if empty {
                        word
                    } else {
                        value.unwrap_or_default()
                    }),
                    '+' => Ok(if empty { String::new() } else { word }),
                    '?' => match value {
                        None => Err(format!(
                            "{name}: {}",
                            or(&word, "is not allowed to be unset")
                        )),
                        Some(v) if null_is_unset && v.is_empty() => Err(format!(
                            "{name}: {}",
                            or(&word, "is not allowed to be empty")
                        )),
                        Some(v) => Ok(v),
                    },
                    '#' | '%' => {
                        let value = value.unwrap_or_default();
                        let (longest, pattern) = match word.strip_prefix(op) {
                            Some(rest) => (true, rest.to_string()),
                            None => (false, word),
                        };
                        let glob = Glob::parse(&pattern)?;
                        Ok(if op == '#' {
                            glob.trim_prefix(&value, longest)
                        } else {
                            glob.trim_suffix(&value, longest)
                        })
                    }
                    _ => Err(format!("unsupported modifier ({ops}) in substitution")),
                }
            }
            '/' => {
                let all = self.peek() == Some('/');
                if all {
                    self.pos += 1;
                }
                let pattern = match self.until(Some('/'), true) {
                    Ok((p, _)) => p,
                    Err(_) if self.peek().is_none() => {
                        return Err("syntax error: missing '/' in ${}".into());
                    }
                    Err(e) => return Err(e),
                };
                let replacement = self.until_brace(true)?;
                let value = self.lookup(&name);
                if self.lexer.skip_unset && value.is_none() {
                    return Ok(format!("${{{name}/{pattern}/{replacement}}}"));
                }
                let glob = Glob::parse(&pattern)?;
                Ok(glob.replace(&value.unwrap_or_default(), &replacement, all))
            }
            _ => Err(format!("unsupported modifier ({ops}) in substitution")),
        }
    }

    /// The word of a `${NAME<op>word}`, up to its `}`.
    fn until_brace(&mut self, raw_escapes: bool) -> Res<String> {
        match self.until(Some('}'), raw_escapes) {
            Ok((w, _)) => Ok(w),
            Err(_) if self.peek().is_none() => Err("syntax error: missing '}'".into()),
            Err(e) => Err(e),
        }
    }

    /// A name after `$`: all digits, one special parameter, or letters, digits and `_`.
    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && ch.is_ascii_digit() {
                while let Some(d) = self.peek().filter(char::is_ascii_digit) {
                    name.push(d);
                    self.pos += 1;
                }
                return name;
            }
            if name.is_empty() && matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.pos += 1;
                return ch.to_string();
            }
            if !(ch.is_alphanumeric() || ch == '_') {
                break;
            }
            name.push(ch);
            self.pos += 1;
        }
        name
    }
}

fn or(word: &str, default: &str) -> String {
    if word.is_empty() {
        default.to_string()
    } else {
        word.to_string()
    }
}

/// A shell pattern of `${NAME#pattern}` and friends: `*` any text, `?` any character,
/// `\*`, `\?` and `\\` themselves (bracket expressions are not supported, as in BuildKit).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Star,
    Any,
    Lit(char),
}

#[derive(Debug)]
struct Glob(Vec<Tok>);

impl Glob {
    fn parse(pattern: &str) -> Res<Glob> {
        let mut toks = Vec::new();
        let mut chars = pattern.chars().peekable();
        while let Some(c) = chars.next() {
            toks.push(match c {
                '*' => Tok::Star,
                '?' => Tok::Any,
                '\\' => match chars.next() {
                    // `\}` and `\/` only kept the `${...}` open: the escape is not part of
                    // the pattern.
                    Some(n @ ('}' | '/')) => Tok::Lit(n),
                    Some(n @ ('*' | '?' | '\\')) => Tok::Lit(n),
                    Some(n) => {
                        return Err(format!(
                            "invalid pattern ({pattern}) in substitution: invalid escape '\\{n}'"
                        ));
                    }
                    None => Tok::Lit('\\'),
                },
                c => Tok::Lit(c),
            });
        }
        Ok(Glob(toks))
    }

    /// Whether the pattern matches all of `text`.
    fn matches(&self, text: &[char]) -> bool {
        fn go(p: &[Tok], t: &[char]) -> bool {
            match p.first() {
                None => t.is_empty(),
                Some(Tok::Star) => (0..=t.len()).any(|i| go(&p[1..], &t[i..])),
                Some(Tok::Any) => !t.is_empty() && go(&p[1..], &t[1..]),
                Some(Tok::Lit(c)) => t.first() == Some(c) && go(&p[1..], &t[1..]),
            }
        }
        go(&self.0, text)
    }

    fn trim_prefix(&self, value: &str, longest: bool) -> String {
        let v: Vec<char> = value.chars().collect();
        let mut ends: Vec<usize> = (0..=v.len()).collect();
        if longest {
            ends.reverse();
        }
        match ends.into_iter().find(|&e| self.matches(&v[..e])) {
            Some(e) => v[e..].iter().collect(),
            None => value.to_string(),
        }
    }

    fn trim_suffix(&self, value: &str, longest: bool) -> String {
        let v: Vec<char> = value.chars().collect();
        let mut starts: Vec<usize> = (0..=v.len()).collect();
        if !longest {
            starts.reverse();
        }
        match starts.into_iter().find(|&s| self.matches(&v[s..])) {
            Some(s) => v[..s].iter().collect(),
            None => value.to_string(),
        }
    }

    /// The longest match starting at `start`, as its end.
    fn longest_at(&self, v: &[char], start: usize) -> Option<usize> {
        (start..=v.len())
            .rev()
            .find(|&e| self.matches(&v[start..e]))
    }

    fn replace(&self, value: &str, with: &str, all: bool) -> String {
        let v: Vec<char> = value.chars().collect();
        let mut out = String::new();
        let mut i = 0;
        let mut replaced = false;
        while i <= v.len() {
            if (!replaced || all)
                && let Some(end) = self.longest_at(&v, i)
            {
                out.push_str(with);
                replaced = true;
                if end > i {
                    i = end;
                    continue;
                }
            }
            if i < v.len() {
                out.push(v[i]);
            }
            i += 1;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> HashMap<String, String> {
        [
            ("HOME", "/root"),
            ("EMPTY", ""),
            ("PATH", "/usr/local/bin:/usr/bin:/bin"),
            ("FILE", "archive.tar.gz"),
            ("SPACED", "a b  c"),
            ("URL", "https://example.com/a/b"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    fn word(w: &str) -> Result<String, String> {
        Lexer::new('\\')
            .process_word(w, &env())
            .map_err(|e| e.problem)
    }

    fn words(w: &str) -> Vec<String> {
        Lexer::new('\\').process_words(w, &env()).unwrap()
    }

    #[test]
    fn expansion_follows_buildkits_lexer() {
        let table: &[(&str, &str)] = &[
            ("plain", "plain"),
            ("$HOME", "/root"),
            ("${HOME}/x", "/root/x"),
            ("$HOMEx", ""),
            ("${HOME}x", "/rootx"),
            ("$UNSET", ""),
            ("a$", "a$"),
            ("$/x", "$/x"),
            ("$1x", "x"),
            ("$$", ""),
            (r"\$HOME", "$HOME"),
            (r"\\$HOME", r"\/root"),
            ("'$HOME'", "$HOME"),
            ("\"$HOME\"", "/root"),
            (r#""a\b""#, r"a\b"),
            (r#""a\"b""#, "a\"b"),
            (r#""\$HOME""#, "$HOME"),
            (r"'a\b'", r"a\b"),
            ("trailing\\", "trailing"),
            ("${EMPTY:-def}", "def"),
            ("${EMPTY-def}", ""),
            ("${UNSET-def}", "def"),
            ("${UNSET:-$HOME}", "/root"),
            ("${HOME:-def}", "/root"),
            ("${HOME:+alt}", "alt"),
            ("${EMPTY:+alt}", ""),
            ("${EMPTY+alt}", "alt"),
            ("${UNSET+alt}", ""),
            ("${HOME:?oops}", "/root"),
            ("${EMPTY?oops}", ""),
            ("${FILE#*.}", "tar.gz"),
            ("${FILE##*.}", "gz"),
            ("${FILE%.*}", "archive.tar"),
            ("${FILE%%.*}", "archive"),
            ("${FILE#nomatch}", "archive.tar.gz"),
            ("${URL#*//}", "example.com/a/b"),
            ("${FILE#arch?ve}", ".tar.gz"),
            ("${PATH/bin/sbin}", "/usr/local/sbin:/usr/bin:/bin"),
            ("${PATH//bin/sbin}", "/usr/local/sbin:/usr/sbin:/sbin"),
            ("${PATH/\\/usr/}", "/local/bin:/usr/bin:/bin"),
            ("${FILE/*./X}", "Xgz"),
            ("${UNSET/a/b}", ""),
        ];
        for (input, want) in table {
            assert_eq!(word(input), Ok(want.to_string()), "{input}");
        }
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let table: &[(&str, &str)] = &[
            ("${HOME", "syntax error: missing '}'"),
            ("${HOME:-x", "syntax error: missing '}'"),
            ("${}", "syntax error: bad substitution"),
            ("${:-x}", "syntax error: bad substitution"),
            ("${HOME:#x}", "unsupported modifier (:#) in substitution"),
            ("${HOME^x}", "unsupported modifier (^) in substitution"),
            ("${UNSET:?}", "UNSET: is not allowed to be unset"),
            ("${EMPTY:?}", "EMPTY: is not allowed to be empty"),
            ("${UNSET?must be set}", "UNSET: must be set"),
            (
                "'open",
                "unexpected end of statement while looking for matching single-quote",
            ),
            (
                "\"open",
                "unexpected end of statement while looking for matching double-quote",
            ),
            ("${HOME/x", "syntax error: missing '/' in ${}"),
            (
                r"${HOME#\a}",
                r"invalid pattern (\a) in substitution: invalid escape '\a'",
            ),
        ];
        for (input, want) in table {
            assert_eq!(word(input), Err(want.to_string()), "{input}");
        }
        let e = Lexer::new('\\').process_word("${A", &env()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "failed to process \"${A\": syntax error: missing '}'"
        );
    }

    #[test]
    fn words_split_after_expansion_but_not_inside_quotes() {
        assert_eq!(words("a b"), ["a", "b"]);
        assert_eq!(words("  a   b  "), ["a", "b"]);
        assert_eq!(words("\"a b\" c"), ["a b", "c"]);
        assert_eq!(words("$SPACED"), ["a", "b", "c"]);
        assert_eq!(words("\"$SPACED\""), ["a b  c"]);
        assert_eq!(words(r"a\ b"), ["a b"]);
        assert_eq!(words("x$SPACED"), ["xa", "b", "c"]);
        assert_eq!(words("''"), Vec::<String>::new());
        assert_eq!(words("'' a"), ["a"]);
    }

    /// BuildKit's own cases for the modifiers and patterns (its `lex_test.go`), each with
    /// the variables it sets: what the lexer must agree with.
    #[test]
    fn modifiers_and_patterns_agree_with_buildkits_cases() {
        let vars = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        // (word, its variables, the expansion or None for an error)
        type Case = (
            &'static str,
            &'static [(&'static str, &'static str)],
            Option<&'static str>,
        );
        let table: &[Case] = &[
            (
                "${FOO-aaa} ${BAR-bbb} ${BAZ-ccc}",
                &[("FOO", "xxx"), ("BAR", "")],
                Some("xxx  ccc"),
            ),
            (
                "${FOO:-aaa} ${BAR:-bbb} ${BAZ:-ccc}",
                &[("FOO", "xxx"), ("BAR", "")],
                Some("xxx bbb ccc"),
            ),
            (
                "${FOO+aaa} ${BAR+bbb} ${BAZ+ccc}",
                &[("FOO", "xxx"), ("BAR", "")],
                Some("aaa bbb "),
            ),
            (
                "${FOO:+aaa} ${BAR:+bbb} ${BAZ:+ccc}",
                &[("FOO", "xxx"), ("BAR", "")],
                Some("aaa  "),
            ),
            ("${BAR?bbb}", &[("BAR", "")], Some("")),
            ("${BAZ?ccc}", &[], None),
            ("${BAR:?bbb}", &[("BAR", "")], None),
            ("${FOO=aaa}", &[("FOO", "xxx")], None),
            ("${FOO=}", &[], None),
            (
                r"${FOO#()[]{\}^$.\*\?|\\}",
                &[("FOO", r"()[]{}^$.*?|\x")],
                Some("x"),
            ),
            (r"${FOO%%\**}", &[("FOO", "xx**")], Some("xx")),
            ("${FOO#*x*y}", &[("FOO", "xxyy")], Some("y")),
            ("${FOO#*}", &[("FOO", "xxyy")], Some("xxyy")),
            ("${FOO#$BAR}", &[("FOO", "xxyy"), ("BAR", "x")], Some("xyy")),
            ("${FOO#}", &[("FOO", "xxyy")], Some("xxyy")),
            ("${FOO##*x}", &[("FOO", "xxyy")], Some("yy")),
            (r"${FOO#?\?}", &[("FOO", "???y")], Some("?y")),
            (
                "${ABC:-.}${FOO%x}${ABC:-.}",
                &[("FOO", "xxyy")],
                Some(".xxyy."),
            ),
            (r"${FOO%%\**\*}", &[("FOO", "a***yy*")], Some("a")),
            (
                "${FOO%%$BAR}",
                &[("FOO", "xxyy"), ("BAR", "")],
                Some("xxyy"),
            ),
            (
                "${FOO/$NEEDLE/.} - ${FOO//$NEEDLE/.}",
                &[("FOO", "/foo*/*/*.txt"), ("NEEDLE", r"\*/")],
                Some("/foo.*/*.txt - /foo..*.txt"),
            ),
            (
                "${FOO/$NEEDLE/} - ${FOO//$NEEDLE/}",
                &[("FOO", "/tmp/tmp/bar.txt"), ("NEEDLE", "/tmp")],
                Some("/tmp/bar.txt - /bar.txt"),
            ),
            (
                "${FOO/$NEEDLE/$R} - ${FOO//$NEEDLE/$R}",
                &[("FOO", "/a/foo/b/c.txt"), ("NEEDLE", "/?/"), ("R", "/")],
                Some("/foo/b/c.txt - /foo/c.txt"),
            ),
            (
                r"${FOO//\//\/}",
                &[("FOO", "/tmp/foo.txt")],
                Some(r"\/tmp\/foo.txt"),
            ),
            (
                "${FOO/$BAR/ww}",
                &[("FOO", "xxyy"), ("BAR", "")],
                Some("wwxxyy"),
            ),
            ("${FOO//ww}", &[("FOO", "xxyy")], None),
            ("${FOO//}", &[("FOO", "xxyy")], None),
            ("${FOO///}", &[("FOO", "xxyy")], Some("xxyy")),
            ("${FOO///}", &[], Some("")),
            (
                "v-${V}.${OS}-${ARCH}${VARIANT:+-${VARIANT}}.tgz",
                &[
                    ("V", "1.2"),
                    ("OS", "linux"),
                    ("ARCH", "arm"),
                    ("VARIANT", "v7"),
                ],
                Some("v-1.2.linux-arm-v7.tgz"),
            ),
        ];
        for (word, env, want) in table {
            let got = Lexer::new('\\').process_word(word, &vars(env));
            match want {
                Some(w) => assert_eq!(got.as_deref(), Ok(*w), "{word} with {env:?}"),
                None => assert!(got.is_err(), "{word} with {env:?}: {got:?}"),
            }
        }
        // The message of `?` is expanded too.
        let e = Lexer::new('\\')
            .process_word("${VAR:?message here$ARG}", &vars(&[("ARG", "x")]))
            .unwrap_err();
        assert!(e.to_string().contains("message herex"), "{e}");
    }

    #[test]
    fn the_backtick_escape_leaves_backslashes_alone() {
        let lexer = Lexer::new('`');
        let e = env();
        assert_eq!(
            lexer.process_word(r"C:\dir\`$HOME", &e).unwrap(),
            r"C:\dir\$HOME"
        );
        assert_eq!(lexer.process_word(r#""a`"b""#, &e).unwrap(), "a\"b");
    }

    #[test]
    fn raw_modes_keep_quotes_escapes_and_unset_variables() {
        let lexer = Lexer {
            raw_quotes: true,
            raw_escapes: true,
            skip_unset: true,
            ..Lexer::new('\\')
        };
        let e = env();
        assert_eq!(
            lexer
                .process_words(r#"<<"EOF" $UNSET ${X:-y} \n"#, &e)
                .unwrap(),
            ["<<\"EOF\"", "$UNSET", "${X:-y}", r"\n"]
        );
    }
}
