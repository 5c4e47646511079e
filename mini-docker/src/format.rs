//! What docker's tables look like: columns padded like Go's tabwriter (minimum width 10,
//! three spaces of padding), durations like "About a minute", sizes like "4.26MB".
use std::time::Duration;

/// Renders rows as docker does: every column but the last padded to
/// max(10, widest cell + 3).
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
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
                let w = (widths[i] + 3).max(10);
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

/// docker's (go-units') HumanDuration.
pub fn human_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs < 1 {
        return "Less than a second".into();
    } else if secs == 1 {
        return "1 second".into();
    } else if secs < 60 {
        return format!("{secs} seconds");
    }
    let minutes = secs / 60;
    if minutes == 1 {
        return "About a minute".into();
    } else if minutes < 60 {
        return format!("{minutes} minutes");
    }
    let hours = (d.as_secs_f64() / 3600.0).round() as u64;
    if hours == 1 {
        "About an hour".into()
    } else if hours < 48 {
        format!("{hours} hours")
    } else if hours < 24 * 7 * 2 {
        format!("{} days", hours / 24)
    } else if hours < 24 * 30 * 2 {
        format!("{} weeks", hours / 24 / 7)
    } else if hours < 24 * 365 * 2 {
        format!("{} months", hours / 24 / 30)
    } else {
        format!("{} years", hours / 24 / 365)
    }
}

/// Time since an RFC 3339 timestamp (zero if it does not parse or lies ahead).
pub fn since(timestamp: &str) -> Duration {
    let Ok(t) = timestamp.parse::<jiff::Timestamp>() else {
        return Duration::ZERO;
    };
    let d = jiff::Timestamp::now().duration_since(t);
    Duration::try_from(d).unwrap_or(Duration::ZERO)
}

/// docker's HumanSize: decimal units, four significant digits ("4.261MB", "0B").
pub fn human_size(bytes: u64) -> String {
    sized(bytes, 1000.0, &["B", "kB", "MB", "GB", "TB", "PB", "EB"])
}

/// docker's BytesSize, for memory: binary units, four significant digits ("1.504MiB").
pub fn binary_size(bytes: u64) -> String {
    sized(
        bytes,
        1024.0,
        &["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"],
    )
}

fn sized(bytes: u64, base: f64, units: &[&str]) -> String {
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= base && i < units.len() - 1 {
        v /= base;
        i += 1;
    }
    // Go's %.4g: four significant digits, trailing zeros dropped.
    let decimals = if v >= 1000.0 {
        0
    } else if v >= 100.0 {
        1
    } else if v >= 10.0 {
        2
    } else {
        3
    };
    let s = format!("{v:.decimals$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        &s
    };
    format!("{s}{}", units[i])
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
