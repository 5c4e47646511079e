//! What docker's tables look like: columns padded like Go's tabwriter (minimum width 10,
//! three spaces of padding), durations like "About a minute", sizes like "4.26MB".
use std::time::Duration;

/// Renders rows as docker does: every column but the last padded to
/// max(10, widest cell + 3).
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    table_min(header, rows, 10)
}

/// [`table`] with another minimum column width (`top`'s tabwriter has 20).
pub fn table_min(header: &[&str], rows: &[Vec<String>], min: usize) -> String {
    let cols = header.len();
    let mut widths = vec![0usize; cols];
    for (i, h) in header.iter().enumerate() {
        widths[i] = h.chars().count();
    }
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(cols) {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let mut l = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                l.push_str(cell);
            } else {
                let w = (widths[i] + 3).max(min);
                l.push_str(&format!("{cell:<w$}"));
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
}

pub use ch05_image_pull::images::human_duration;

/// Time since an RFC 3339 timestamp (zero if it does not parse or lies ahead).
pub fn since(timestamp: &str) -> Duration {
    let Ok(t) = timestamp.parse::<jiff::Timestamp>() else {
        return Duration::ZERO;
    };
    let d = jiff::Timestamp::now().duration_since(t);
    Duration::try_from(d).unwrap_or(Duration::ZERO)
}

use ch05_image_pull::images::{BINARY, DECIMAL, in_units};

/// docker's HumanSize: decimal units, four significant digits ("4.261MB", "0B"), for
/// `system df` and reclaimed space.
pub fn human_size(bytes: u64) -> String {
    in_units(bytes, 1000.0, &DECIMAL, 4)
}

/// docker's HumanSizeWithPrecision(size, 3), for `images`, `ps -s` and network I/O
/// ("4.26MB").
pub use ch05_image_pull::images::human_size as short_size;

/// docker's BytesSize, for memory: binary units, four significant digits ("1.504MiB").
pub fn binary_size(bytes: u64) -> String {
    in_units(bytes, 1024.0, &BINARY, 4)
}

/// docker's Ellipsis: at most `max` characters, the last one `…` when cut.
pub fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// The COMMAND column: the program and its arguments, arguments with spaces in single
/// quotes (as docker's API builds it), cut to 20 characters unless `full`, in double quotes.
pub fn command(path: &str, args: &[String], full: bool) -> String {
    let mut s = path.to_string();
    for a in args {
        s.push(' ');
        if a.contains(' ') {
            s.push_str(&format!("'{a}'"));
        } else {
            s.push_str(a);
        }
    }
    let s = if full { s } else { ellipsis(&s, 20) };
    format!("{s:?}")
}

/// Prints what a prune did as docker does: a section per kind that lost something
/// (`Deleted Containers:`, one id or name per line, a blank line), then the total.
pub fn print_prune(sections: &[(&str, Vec<String>)], freed: u64) {
    let mut out = String::new();
    for (title, lines) in sections {
        if !lines.is_empty() {
            out.push_str(&format!("Deleted {title}:\n{}\n\n", lines.join("\n")));
        }
    }
    println!("{out}Total reclaimed space: {}", human_size(freed));
}

/// What `--format` asks for: docker's default table, or a template over each row.
#[derive(Debug)]
pub enum Format {
    /// The command's own table.
    Default,
    /// `table TEMPLATE`: the template's cells (`\t` separates them) under headers.
    Table(crate::template::Template),
    /// A template, one line per row.
    Lines(crate::template::Template),
}

impl Format {
    /// Parses `--format` as docker does: `\t` and `\n` typed literally become a tab and
    /// a newline, and a leading `table` asks for a table.
    pub fn parse(flag: Option<&str>) -> Result<Format, crate::Error> {
        let Some(text) = flag else {
            return Ok(Format::Default);
        };
        let text = text.replace("\\t", "\t").replace("\\n", "\n");
        let parse = |t: &str| {
            crate::template::Template::parse(t)
                .map_err(|e| crate::Error::Usage(format!("template parsing error: {e}")))
        };
        // `json`: each row as one line of JSON, as docker's CLI since 23 (Debian's 20.10
        // prints the word; see the parity divergences).
        if text.trim() == "json" {
            return Ok(Format::Lines(parse("{{json .}}")?));
        }
        match text.strip_prefix("table") {
            Some(rest) if rest.trim().is_empty() => Ok(Format::Default),
            Some(rest) => Ok(Format::Table(parse(rest.trim_start_matches(' '))?)),
            None => Ok(Format::Lines(parse(&text)?)),
        }
    }

    /// Renders `rows` (docker's formatter fields as JSON objects); `headers` names each
    /// field for a table's header line. None for [`Format::Default`].
    pub fn render(
        &self,
        rows: &[serde_json::Value],
        headers: &[(&str, &str)],
    ) -> Result<Option<String>, crate::Error> {
        let run = |t: &crate::template::Template, v: &serde_json::Value| {
            t.render(v).map_err(|e| crate::Error::Usage(e.to_string()))
        };
        match self {
            Format::Default => Ok(None),
            Format::Lines(t) => {
                let mut out = String::new();
                for r in rows {
                    out.push_str(&run(t, r)?);
                    out.push('\n');
                }
                Ok(Some(out))
            }
            Format::Table(t) => {
                let names: serde_json::Map<String, serde_json::Value> = headers
                    .iter()
                    .map(|(k, v)| (k.to_string(), serde_json::Value::from(*v)))
                    .collect();
                let header = run(t, &serde_json::Value::Object(names))?;
                let header: Vec<&str> = header.split('\t').collect();
                let mut cells = Vec::new();
                for r in rows {
                    cells.push(run(t, r)?.split('\t').map(str::to_string).collect());
                }
                Ok(Some(table(&header, &cells)))
            }
        }
    }
}

/// `inspect`'s JSON as docker's CLI prints it: indented by four spaces, and `<`, `>` and
/// `&` escaped, as Go's encoding/json writes them.
pub fn inspect_json(v: &serde_json::Value) -> String {
    use serde::Serialize;
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(
        &mut out,
        serde_json::ser::PrettyFormatter::with_indent(b"    "),
    );
    v.serialize(&mut ser).expect("a JSON value serialises");
    String::from_utf8(out)
        .expect("serde_json writes UTF-8")
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// A time as Go's `time.Time.String()` prints it in UTC (`ps --format {{.CreatedAt}}`).
pub fn go_time(rfc3339: &str) -> String {
    rfc3339
        .parse::<jiff::Timestamp>()
        .map(|t| format!("{} +0000 UTC", t.strftime("%Y-%m-%d %H:%M:%S")))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_dockers() {
        let d = |s| human_duration(Duration::from_secs(s));
        assert_eq!(
            human_duration(Duration::from_millis(300)),
            "Less than a second"
        );
        assert_eq!(d(1), "1 second");
        assert_eq!(d(45), "45 seconds");
        assert_eq!(d(90), "About a minute");
        assert_eq!(d(600), "10 minutes");
        assert_eq!(d(3600), "About an hour");
        assert_eq!(d(5 * 3600), "5 hours");
        assert_eq!(d(3 * 86400), "3 days");
        assert_eq!(d(20 * 86400), "2 weeks");
        assert_eq!(d(90 * 86400), "3 months");
        assert_eq!(d(800 * 86400), "2 years");
    }

    #[test]
    fn sizes_read_like_dockers() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(4_261_000), "4.261MB");
        assert_eq!(human_size(1_500_000_000), "1.5GB");
        assert_eq!(human_size(12_346), "12.35kB");
        assert_eq!(binary_size(1_576_960), "1.504MiB");
        assert_eq!(binary_size(512), "512B");
        assert_eq!(short_size(4_261_000), "4.26MB");
    }

    #[test]
    fn commands_are_quoted_and_cut_like_dockers() {
        let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            command("sh", &args(&["-c", "sleep 1d"]), false),
            "\"sh -c 'sleep 1d'\""
        );
        assert_eq!(
            command(
                "sh",
                &args(&["-c", "while true; do echo hello; done"]),
                false
            ),
            "\"sh -c 'while true; …\""
        );
        assert_eq!(command("/bin/bash", &[], false), "\"/bin/bash\"");
    }

    #[test]
    fn tables_pad_like_tabwriter() {
        let t = table(&["ID", "NAME"], &[vec!["abc".into(), "web".into()]]);
        assert_eq!(t, "ID        NAME\nabc       web\n");
    }
}
