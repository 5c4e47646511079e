//! Redactions: what changes from run to run, replaced with stable placeholders so that a
//! snapshot shows only what a learner should see the same way every time.
use regex::Regex;
use std::sync::LazyLock;

/// The filters, in the order they apply (more specific first).
pub const FILTERS: &[(&str, &str)] = &[
    // sha256 digests and bare 64-hex ids (image and container ids)
    (r"sha256:[0-9a-f]{64}", "sha256:[DIGEST]"),
    (r"\b[0-9a-f]{64}\b", "[ID]"),
    // temporary directories (tempfile's .tmpXXXXXX, our own prefixes)
    (
        r"/tmp/[A-Za-z0-9._-]*\.tmp[A-Za-z0-9]{6}|/tmp/(rootfs|store|work|mdk)-[A-Za-z0-9]{6}",
        "[TMP]",
    ),
    // namespace inode numbers: pid:[4026531836]
    (r":\[\d{6,}\]", ":[INODE]"),
    // "pid 12345", "PID 12345", "pid=12345"
    (r"(?i)\bpid([ =])\d+", "pid$1[PID]"),
    // times and dates
    (
        r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?",
        "[TIMESTAMP]",
    ),
    (r"\b\d{2}:\d{2}(:\d{2})?\b", "[TIME]"),
];

static COMPILED: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    FILTERS
        .iter()
        .map(|(re, to)| (Regex::new(re).expect("a valid filter"), *to))
        .collect()
});

/// Applies [`FILTERS`] to `text`.
pub fn redact(text: &str) -> String {
    let mut out = text.to_string();
    for (re, to) in COMPILED.iter() {
        out = re.replace_all(&out, *to).into_owned();
    }
    out
}

/// insta settings with [`FILTERS`] plus `extra` (`(regex, replacement)`), e.g. a test's
/// own temp path. Use as `settings(&[]).bind(|| insta::assert_snapshot!(...))`.
pub fn settings(extra: &[(&str, &str)]) -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    for (re, to) in extra {
        s.add_filter(re, *to);
    }
    for (re, to) in FILTERS {
        s.add_filter(re, *to);
    }
    s.set_prepend_module_to_snapshot(false);
    s
}

/// The `escape`d form of a literal path, for use as an `extra` filter.
pub fn literal(path: &std::path::Path) -> String {
    regex::escape(&path.to_string_lossy())
}

/// Replaces every number (`12`, `0.50`) with `N`, for output whose figures depend on
/// timing (CPU seconds, peak memory) while its shape should not change.
pub fn numbers(text: &str) -> String {
    static NUMBER: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"\b\d+(\.\d+)?\b").expect("valid"));
    NUMBER.replace_all(text, "N").into_owned()
}

/// Replaces docker's human durations ("Less than a second", "3 minutes", "About an hour")
/// with `[DURATION]`: how long something took or ago it was depends on the machine.
pub fn durations(text: &str) -> String {
    static DURATION: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"\b(Less than a second|About an? (minute|hour)|\d+ (second|minute|hour|day|week|month|year)s?)\b").expect("valid")
    });
    DURATION.replace_all(text, "[DURATION]").into_owned()
}

/// Reduces `ps aux` output to its stable columns (USER, PID, COMMAND): CPU, memory, terminal,
/// state and times vary from run to run.
pub fn ps_aux(output: &str) -> String {
    let mut out = String::new();
    for line in output.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() < 11 {
            continue;
        }
        out.push_str(&format!(
            "{:<8} {:>5} {}\n",
            cols[0],
            cols[1],
            cols[10..].join(" ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_what_varies() {
        let digest = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(redact(&digest), "sha256:[DIGEST]");
        assert_eq!(
            redact("\"true\" is pid 4312 on the host"),
            "\"true\" is pid [PID] on the host"
        );
        assert_eq!(redact("pid:[4026531836]"), "pid:[INODE]");
        assert_eq!(redact("started 09:25"), "started [TIME]");
    }

    #[test]
    fn ps_aux_keeps_user_pid_and_command() {
        let out = "USER PID %CPU %MEM VSZ RSS TTY STAT START TIME COMMAND\n\
                   root 1 0.0 0.0 2612 532 ? Ss 09:25 0:00 sh -c sleep 1d\n";
        assert_eq!(
            ps_aux(out),
            "USER       PID COMMAND\nroot         1 sh -c sleep 1d\n"
        );
    }
}
