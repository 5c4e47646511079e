//! docker's `--format`: Go's text/template (pkg.go.dev/text/template), the part of it
//! docker users write, run over the JSON that `inspect` prints or a table's row.
//!
//! Supported: text and `{{ }}` actions with `{{-`/`-}}` trimming; field chains (`.State.Pid`,
//! `.` itself); string and number literals; pipelines (`{{.Name | upper}}`); `if`/`else`,
//! `range`/`else` and `end`; docker's functions `json`, `join`, `split`, `lower`, `upper`,
//! `title`, `truncate`, `pad`, `println`, and Go's `index` and `len`. Values print as
//! Go's `fmt` prints them: lists as `[a b]`, objects as `map[k:v]`, null as `<nil>`, a
//! missing field as `<no value>`. Anything else is a parse error that says where.
use serde_json::Value;

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<Node>,
}

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Print(Pipeline),
    If(Pipeline, Vec<Node>, Vec<Node>),
    Range(Pipeline, Vec<Node>, Vec<Node>),
}

/// Commands separated by `|`: each one's result is the last argument of the next.
type Pipeline = Vec<Cmd>;

#[derive(Debug, Clone)]
struct Cmd {
    func: Option<String>,
    args: Vec<Arg>,
}

#[derive(Debug, Clone)]
enum Arg {
    Field(Vec<String>),
    Str(String),
    Int(i64),
}

/// A template that does not parse or run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template: {0}")]
pub struct TemplateError(String);

fn err<T>(msg: impl Into<String>) -> Result<T, TemplateError> {
    Err(TemplateError(msg.into()))
}

/// One `{{ }}` action or a stretch of text, as the lexer cuts them.
enum Piece {
    Text(String),
    /// The action's text and the line it starts on.
    Action(String, usize),
}

/// An error at `line` of the template, as Go words it (`template: :1: unclosed action`).
fn at(line: usize, e: TemplateError) -> TemplateError {
    TemplateError(format!(":{line}: {}", e.0))
}

fn lex(src: &str) -> Result<Vec<Piece>, TemplateError> {
    let mut pieces = Vec::new();
    let mut rest = src;
    while let Some(start) = rest.find("{{") {
        let mut text = rest[..start].to_string();
        let after = &rest[start + 2..];
        let line = src[..src.len() - rest.len() + start].matches('\n').count() + 1;
        let Some(end) = after.find("}}") else {
            return Err(at(line, TemplateError("unclosed action".into())));
        };
        let mut inner = &after[..end];
        if let Some(i) = inner.strip_prefix('-') {
            text = text.trim_end().to_string();
            inner = i;
        }
        let mut trim_next = false;
        if let Some(i) = inner.strip_suffix('-') {
            trim_next = true;
            inner = i;
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        pieces.push(Piece::Action(inner.trim().to_string(), line));
        rest = &after[end + 2..];
        if trim_next {
            rest = rest.trim_start();
        }
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest.to_string()));
    }
    Ok(pieces)
}

fn words(action: &str) -> Result<Vec<String>, TemplateError> {
    let mut out = Vec::new();
    let mut chars = action.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '"' {
            chars.next();
            let mut s = String::from("\"");
            loop {
                match chars.next() {
                    None => return err(format!("unterminated quoted string in {{{{{action}}}}}")),
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some('n') => s.push('\n'),
                        Some('t') => s.push('\t'),
                        Some(o) => s.push(o),
                        None => return err("unterminated quoted string"),
                    },
                    Some(o) => s.push(o),
                }
            }
            out.push(s);
        } else if c == '`' {
            chars.next();
            let mut s = String::from("\"");
            loop {
                match chars.next() {
                    None => return err(format!("unterminated raw string in {{{{{action}}}}}")),
                    Some('`') => break,
                    Some(o) => s.push(o),
                }
            }
            out.push(s);
        } else if c == '|' {
            chars.next();
            out.push("|".into());
        } else {
            let mut w = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() || c == '|' {
                    break;
                }
                w.push(c);
                chars.next();
            }
            out.push(w);
        }
    }
    Ok(out)
}

fn pipeline(action: &str) -> Result<Pipeline, TemplateError> {
    let mut cmds = Vec::new();
    for part in words(action)?.split(|w| w == "|") {
        let Some((first, rest)) = part.split_first() else {
            return err(format!("missing command in {{{{{action}}}}}"));
        };
        let arg = |w: &String| -> Result<Arg, TemplateError> {
            if let Some(s) = w.strip_prefix('"') {
                Ok(Arg::Str(s.to_string()))
            } else if w == "." {
                Ok(Arg::Field(Vec::new()))
            } else if let Some(path) = w.strip_prefix('.') {
                Ok(Arg::Field(path.split('.').map(str::to_string).collect()))
            } else if let Ok(n) = w.parse() {
                Ok(Arg::Int(n))
            } else if w.starts_with('$') {
                err(format!("variables are not supported: {w}"))
            } else {
                err(format!("function {w:?} not defined"))
            }
        };
        let cmd =
            if first.starts_with('.') || first.starts_with('"') || first.parse::<i64>().is_ok() {
                if !rest.is_empty() {
                    return err(format!("can't give argument to non-function {first}"));
                }
                Cmd {
                    func: None,
                    args: vec![arg(first)?],
                }
            } else {
                if !FUNCTIONS.contains(&first.as_str()) {
                    return err(format!("function {first:?} not defined"));
                }
                Cmd {
                    func: Some(first.clone()),
                    args: rest.iter().map(arg).collect::<Result<_, _>>()?,
                }
            };
        cmds.push(cmd);
    }
    Ok(cmds)
}

const FUNCTIONS: &[&str] = &[
    "json", "join", "split", "lower", "upper", "title", "truncate", "pad", "println", "index",
    "len",
];

impl Template {
    /// Parses `src`.
    pub fn parse(src: &str) -> Result<Template, TemplateError> {
        let pieces = lex(src)?;
        let mut it = pieces.into_iter();
        let (nodes, end) = Self::block(&mut it)?;
        match end.as_deref() {
            None => Ok(Template { nodes }),
            Some(e) => err(format!("unexpected {{{{{e}}}}}")),
        }
    }

    /// Nodes up to an `else` or `end` (returned) or the end of input (None).
    fn block(
        it: &mut std::vec::IntoIter<Piece>,
    ) -> Result<(Vec<Node>, Option<String>), TemplateError> {
        let mut nodes = Vec::new();
        while let Some(p) = it.next() {
            match p {
                Piece::Text(t) => nodes.push(Node::Text(t)),
                Piece::Action(a, _) if a == "end" || a == "else" || a.starts_with("else if ") => {
                    return Ok((nodes, Some(a)));
                }
                Piece::Action(a, _) if a.starts_with("/*") => {}
                Piece::Action(a, line) => {
                    let pipeline = |text: &str| pipeline(text).map_err(|e| at(line, e));
                    let (word, rest) = a.split_once(char::is_whitespace).unwrap_or((&a, ""));
                    match word {
                        "if" | "range" => {
                            let p = pipeline(rest)?;
                            let (body, otherwise) = Self::branches(it, word, line)?;
                            nodes.push(if word == "if" {
                                Node::If(p, body, otherwise)
                            } else {
                                Node::Range(p, body, otherwise)
                            });
                        }
                        "with" | "define" | "template" | "block" | "break" | "continue" => {
                            return Err(at(
                                line,
                                TemplateError(format!("{{{{{word}}}}} is not supported")),
                            ));
                        }
                        _ => nodes.push(Node::Print(pipeline(&a)?)),
                    }
                }
            }
        }
        Ok((nodes, None))
    }

    /// The body of an `if` or `range` up to its `end`, and its `else` part: empty, a
    /// block, or (`{{else if ...}}`) one more `if`, which shares the `end`.
    fn branches(
        it: &mut std::vec::IntoIter<Piece>,
        word: &str,
        line: usize,
    ) -> Result<(Vec<Node>, Vec<Node>), TemplateError> {
        let eof = || at(line, TemplateError(format!("unexpected EOF in {word}")));
        let (body, end) = Self::block(it)?;
        let otherwise = match end.as_deref() {
            Some("end") => Vec::new(),
            Some("else") => match Self::block(it)? {
                (n, Some(e)) if e == "end" => n,
                _ => return Err(eof()),
            },
            Some(e) if word == "if" => {
                let cond = e.strip_prefix("else if ").unwrap_or_default();
                let p = pipeline(cond).map_err(|e| at(line, e))?;
                let (yes, no) = Self::branches(it, word, line)?;
                vec![Node::If(p, yes, no)]
            }
            _ => return Err(eof()),
        };
        Ok((body, otherwise))
    }

    /// Runs the template with `dot` as `.`.
    pub fn render(&self, dot: &Value) -> Result<String, TemplateError> {
        let mut out = String::new();
        run(&self.nodes, dot, &mut out)?;
        Ok(out)
    }
}

fn run(nodes: &[Node], dot: &Value, out: &mut String) -> Result<(), TemplateError> {
    for n in nodes {
        match n {
            Node::Text(t) => out.push_str(t),
            Node::Print(p) => out.push_str(&show(&eval(p, dot)?)),
            Node::If(p, yes, no) => run(if truthy(&eval(p, dot)?) { yes } else { no }, dot, out)?,
            Node::Range(p, body, otherwise) => {
                let items: Vec<Value> = match eval(p, dot)? {
                    v if is_missing(&v) => Vec::new(),
                    Value::Array(a) => a,
                    // Go ranges over a map in key order.
                    Value::Object(m) => {
                        let mut entries: Vec<(String, Value)> = m.into_iter().collect();
                        entries.sort_by(|a, b| a.0.cmp(&b.0));
                        entries.into_iter().map(|(_, v)| v).collect()
                    }
                    Value::Null => Vec::new(),
                    other => return err(format!("range can't iterate over {}", show(&other))),
                };
                if items.is_empty() {
                    run(otherwise, dot, out)?;
                }
                for item in &items {
                    run(body, item, out)?;
                }
            }
        }
    }
    Ok(())
}

/// Go's truth: false, 0, "", nil, a missing entry and empty lists and maps are false.
fn truthy(v: &Value) -> bool {
    if is_missing(v) {
        return false;
    }
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
    }
}

/// A missing map entry: Go prints `<no value>`, takes it as false, and as null in JSON.
/// (The NUL keeps it apart from a string of those words.)
const NO_VALUE: &str = "\u{0}<no value>";

/// A nil list and a nil map of docker's Go types: JSON says `null` for them as for a nil
/// pointer, but Go's `fmt` prints `[]` and `map[]` (and `<nil>` only for the pointer).
const NIL_LIST: &str = "\u{0}[]";
const NIL_MAP: &str = "\u{0}map[]";

/// The fields of docker's inspect types that are Go slices and maps: where JSON's `null`
/// was a nil one of those, not a nil pointer (`PidsLimit`, `MemorySwappiness`, …).
const LIST_FIELDS: &[&str] = &[
    "Entrypoint",
    "Cmd",
    "OnBuild",
    "Binds",
    "CapAdd",
    "CapDrop",
    "ExtraHosts",
    "GroupAdd",
    "Links",
    "SecurityOpt",
    "VolumesFrom",
    "DeviceCgroupRules",
    "DeviceRequests",
    "Ulimits",
    "BlkioDeviceReadBps",
    "BlkioDeviceWriteBps",
    "BlkioDeviceReadIOps",
    "BlkioDeviceWriteIOps",
    "Aliases",
    "SecondaryIPAddresses",
    "SecondaryIPv6Addresses",
    "Warnings",
    "DriverStatus",
    "MaskedPaths",
    "ReadonlyPaths",
    "RepoDigests",
    "RepoTags",
    "Dns",
    "DnsSearch",
    "DnsOptions",
    "Devices",
    "Mounts",
];
const MAP_FIELDS: &[&str] = &["Volumes", "Labels", "ExposedPorts", "Options", "DriverOpts"];

/// Missing, or one of docker's typed nils: false, empty, and null in JSON.
fn is_missing(v: &Value) -> bool {
    matches!(v.as_str(), Some(NO_VALUE | NIL_LIST | NIL_MAP))
}

fn field(dot: &Value, path: &[String]) -> Value {
    let mut v = dot;
    for key in path {
        match v.get(key) {
            Some(next) => v = next,
            None => return Value::String(NO_VALUE.into()),
        }
    }
    match (v, path.last().map(String::as_str)) {
        (Value::Null, Some(k)) if LIST_FIELDS.contains(&k) => Value::String(NIL_LIST.into()),
        (Value::Null, Some(k)) if MAP_FIELDS.contains(&k) => Value::String(NIL_MAP.into()),
        _ => v.clone(),
    }
}

fn eval(p: &Pipeline, dot: &Value) -> Result<Value, TemplateError> {
    let mut last: Option<Value> = None;
    for cmd in p {
        let mut args: Vec<Value> = cmd
            .args
            .iter()
            .map(|a| match a {
                Arg::Field(path) => field(dot, path),
                Arg::Str(s) => Value::String(s.clone()),
                Arg::Int(n) => Value::from(*n),
            })
            .collect();
        if let Some(prev) = last.take() {
            args.push(prev);
        }
        last = Some(match &cmd.func {
            None => args.pop().unwrap_or(Value::Null),
            Some(f) => call(f, &args)?,
        });
    }
    Ok(last.unwrap_or(Value::Null))
}

fn text(v: &Value) -> String {
    show(v)
}

/// Calls the template function `f`, one step per kind: docker's JSON, list, case, width
/// and printing functions (docs.docker.com/engine/cli/formatting), then Go's builtins.
fn call(f: &str, args: &[Value]) -> Result<Value, TemplateError> {
    match f {
        "json" => encode_json(args),
        "join" | "split" => join_or_split(f, args),
        "lower" | "upper" | "title" => change_case(f, args),
        "truncate" | "pad" => fit_width(f, args),
        "println" => Ok(print_line(args)),
        "index" | "len" => call_go_builtin(f, args),
        _ => err(format!("function {f:?} not defined")),
    }
}

/// Go checks a call's arity before running it, and words the error this way.
fn want(f: &str, args: &[Value], n: usize) -> Result<(), TemplateError> {
    if args.len() == n {
        Ok(())
    } else {
        err(format!(
            "wrong number of args for {f}: want {n} got {}",
            args.len()
        ))
    }
}

/// `json`: the value as JSON, a missing field as `null` (what Go's encoder makes of it).
fn encode_json(args: &[Value]) -> Result<Value, TemplateError> {
    want("json", args, 1)?;
    let v = if is_missing(&args[0]) {
        &Value::Null
    } else {
        &args[0]
    };
    // Go's encoding/json escapes <, > and & (for HTML), so `{{json .}}` prints `\u003cnone\u003e`.
    let text = serde_json::to_string(v)
        .unwrap_or_default()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026");
    Ok(Value::String(text))
}

/// `join LIST SEP` and `split TEXT SEP`: Go's strings.Join and strings.Split.
fn join_or_split(f: &str, args: &[Value]) -> Result<Value, TemplateError> {
    want(f, args, 2)?;
    Ok(if f == "join" {
        let Value::Array(items) = &args[0] else {
            return err("join: the first argument is not a list");
        };
        let items: Vec<String> = items.iter().map(text).collect();
        Value::String(items.join(&text(&args[1])))
    } else {
        let parts = text(&args[0])
            .split(text(&args[1]).as_str())
            .map(|s| Value::String(s.to_string()))
            .collect();
        Value::Array(parts)
    })
}

/// `lower`, `upper` and `title`: Go's strings.ToLower, ToUpper and Title.
fn change_case(f: &str, args: &[Value]) -> Result<Value, TemplateError> {
    want(f, args, 1)?;
    let s = text(&args[0]);
    Ok(Value::String(match f {
        "lower" => s.to_lowercase(),
        "upper" => s.to_uppercase(),
        _ => title_case(&s),
    }))
}

/// Go's strings.Title: the first letter of every word.
fn title_case(s: &str) -> String {
    let mut out = String::new();
    let mut start = true;
    for c in s.chars() {
        if start && c.is_alphanumeric() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = !c.is_alphanumeric();
    }
    out
}

/// `truncate TEXT N` and `pad TEXT LEFT RIGHT`: docker's helpers for fixed-width columns.
fn fit_width(f: &str, args: &[Value]) -> Result<Value, TemplateError> {
    let count = |v: &Value| v.as_u64().unwrap_or(0) as usize;
    if f == "truncate" {
        want(f, args, 2)?;
        return Ok(Value::String(
            text(&args[0]).chars().take(count(&args[1])).collect(),
        ));
    }
    want(f, args, 3)?;
    let (l, r) = (count(&args[1]), count(&args[2]));
    Ok(Value::String(format!(
        "{}{}{}",
        " ".repeat(l),
        text(&args[0]),
        " ".repeat(r)
    )))
}

/// `println`: Go's fmt.Sprintln, any number of arguments joined by spaces.
fn print_line(args: &[Value]) -> Value {
    let items: Vec<String> = args.iter().map(text).collect();
    Value::String(items.join(" ") + "\n")
}

/// `index` and `len`: Go's own template functions, not docker's.
fn call_go_builtin(f: &str, args: &[Value]) -> Result<Value, TemplateError> {
    if f == "index" {
        return index_into(args);
    }
    want(f, args, 1)?;
    Ok(Value::from(match &args[0] {
        // A nil slice or map has no items.
        v if matches!(v.as_str(), Some(NIL_LIST | NIL_MAP)) => 0,
        Value::Array(a) => a.len(),
        Value::Object(m) => m.len(),
        Value::String(s) => s.len(),
        other => return err(format!("len of type {}", kind(other))),
    }))
}

/// `index X K1 K2...`: `X[K1][K2]...`; a missing map key is Go's zero value, shown as
/// `<no value>`, and a list index past the end an error.
fn index_into(args: &[Value]) -> Result<Value, TemplateError> {
    let Some((first, keys)) = args.split_first() else {
        return err("wrong number of args for index: want at least 1 got 0");
    };
    let mut v = first.clone();
    for k in keys {
        v = match (&v, k) {
            (Value::Object(m), key) => m
                .get(&text(key))
                .cloned()
                .unwrap_or(Value::String(NO_VALUE.into())),
            (Value::Array(a), Value::Number(n)) => {
                let i = n.as_u64().unwrap_or(u64::MAX) as usize;
                match a.get(i) {
                    Some(x) => x.clone(),
                    None => return err(format!("index out of range: {i}")),
                }
            }
            _ => return err(format!("can't index item of type {}", kind(&v))),
        };
    }
    Ok(v)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "nil",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "slice",
        Value::Object(_) => "map",
    }
}

/// A value as Go's `fmt.Print` shows it.
pub fn show(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.strip_prefix('\u{0}').unwrap_or(s).to_string(),
        Value::Array(a) => format!("[{}]", a.iter().map(show).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => {
            let mut items: Vec<(&String, &Value)> = m.iter().collect();
            items.sort_by(|a, b| a.0.cmp(b.0));
            let items: Vec<String> = items
                .iter()
                .map(|(k, v)| format!("{k}:{}", show(v)))
                .collect();
            format!("map[{}]", items.join(" "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(src: &str, dot: &Value) -> String {
        Template::parse(src).unwrap().render(dot).unwrap()
    }

    #[test]
    fn fields_print_as_go_prints_them() {
        let v = json!({
            "State": {"Pid": 4242, "Running": true, "Error": ""},
            "Config": {"Env": ["A=1", "B=2"], "Entrypoint": null, "Labels": {"b": "2", "a": "1"}},
            "Name": "/web",
            "NanoCpus": 1500000000u64,
        });
        assert_eq!(render("{{.State.Pid}}", &v), "4242");
        assert_eq!(
            render("pid={{ .State.Pid }} up={{.State.Running}}\n", &v),
            "pid=4242 up=true\n"
        );
        assert_eq!(render("{{.Config.Env}}", &v), "[A=1 B=2]");
        assert_eq!(render("{{.Config.Labels}}", &v), "map[a:1 b:2]");
        // A nil slice prints as Go prints it; JSON still says null.
        assert_eq!(render("{{.Config.Entrypoint}}", &v), "[]");
        assert_eq!(render("{{json .Config.Entrypoint}}", &v), "null");
        assert_eq!(
            render("{{if .Config.Entrypoint}}set{{else}}unset{{end}}", &v),
            "unset"
        );
        assert_eq!(
            render(
                "{{.State.PidsLimit}}",
                &json!({"State": {"PidsLimit": null}})
            ),
            "<nil>"
        );
        assert_eq!(
            render("{{.Nope}} {{.State.Nope}}", &v),
            "<no value> <no value>"
        );
        assert_eq!(render("{{.NanoCpus}}", &v), "1500000000");
        assert_eq!(render("{{json .Config.Env}}", &v), r#"["A=1","B=2"]"#);
        assert_eq!(render(r#"{{join .Config.Env ","}}"#, &v), "A=1,B=2");
        assert_eq!(render("{{.Name | upper}}", &v), "/WEB");
        assert_eq!(render(r#"{{index .Config.Labels "a"}}"#, &v), "1");
        assert_eq!(render("{{len .Config.Env}}", &v), "2");
    }

    #[test]
    fn functions_work_as_docker_and_go_define_them() {
        let v = json!({"Name": "hello big-world", "L": ["a", "b"], "M": {"k": "v"}});
        assert_eq!(render(r#"{{split .Name " "}}"#, &v), "[hello big-world]");
        assert_eq!(render("{{title .Name}}", &v), "Hello Big-World");
        assert_eq!(render(r#"{{lower "ABC"}}"#, &v), "abc");
        assert_eq!(render("{{truncate .Name 5}}", &v), "hello");
        assert_eq!(render("{{pad .L 1 2}}", &v), " [a b]  ");
        assert_eq!(render("{{println .L .M}}", &v), "[a b] map[k:v]\n");
        assert_eq!(
            render("{{index .L 1}} {{index .M \"x\"}}", &v),
            "b <no value>"
        );
        assert_eq!(render("{{len .Name}} {{len .M}}", &v), "15 1");
        assert_eq!(render("{{json .Nope}}", &v), "null");
        let e = |src: &str| {
            Template::parse(src)
                .unwrap()
                .render(&v)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            e("{{upper}}"),
            "template: wrong number of args for upper: want 1 got 0"
        );
        assert_eq!(
            e("{{pad .Name 1}}"),
            "template: wrong number of args for pad: want 3 got 2"
        );
        assert_eq!(
            e("{{join .Name \",\"}}"),
            "template: join: the first argument is not a list"
        );
        assert_eq!(e("{{index .L 5}}"), "template: index out of range: 5");
        assert_eq!(
            e("{{index .Name 0}}"),
            "template: can't index item of type string"
        );
        assert_eq!(
            e("{{index}}"),
            "template: wrong number of args for index: want at least 1 got 0"
        );
        assert_eq!(e("{{len 3}}"), "template: len of type number");
    }

    #[test]
    fn range_if_else_and_trimming() {
        let v = json!({"Mounts": [{"Source": "/a"}, {"Source": "/b"}], "Empty": [], "On": false});
        assert_eq!(render("{{range .Mounts}}{{.Source}};{{end}}", &v), "/a;/b;");
        assert_eq!(render("{{range .Empty}}x{{else}}none{{end}}", &v), "none");
        assert_eq!(render("{{if .On}}on{{else}}off{{end}}", &v), "off");
        assert_eq!(render("{{if .Mounts}}has{{end}}", &v), "has");
        assert_eq!(
            render("{{if .Nope}}yes{{else}}no{{end}} {{json .Nope}}", &v),
            "no null"
        );
        assert_eq!(render("a  {{- 1 -}}  b", &v), "a1b");
    }

    #[test]
    fn bad_templates_say_what_is_wrong() {
        let e = |src: &str| Template::parse(src).unwrap_err().to_string();
        assert_eq!(e("{{.A"), "template: :1: unclosed action");
        assert_eq!(
            e("a\n{{nosuch .A}}"),
            r#"template: :2: function "nosuch" not defined"#
        );
        assert_eq!(e("{{if .A}}x"), "template: :1: unexpected EOF in if");
        assert_eq!(e("{{end}}"), "template: unexpected {{end}}");
        assert_eq!(
            e("{{$x := .A}}"),
            r#"template: :1: function "$x" not defined"#
        );
    }
}
