//! mini-docker's own account of where a `run` spends its time, and its average over runs.
//!
//! `mini-docker run --timings ...` prints, on stderr, once the container has exited:
//!
//! ```text
//! timings (ms):
//!   lookup         0.21
//!   overlay-mount  1.90
//!   cgroup         2.35
//!   clone          0.80
//!   exec           0.42
//!   teardown       3.10
//!   total          9.12
//! ```
//!
//! a line that is exactly `timings (ms):`, then one line per step: two spaces, the step's
//! name (no spaces in it), blanks, a decimal number of milliseconds. The first line of
//! another shape ends the block. The breakdown row averages each step over its runs (a
//! mean, not a median: the steps' means add up to the total's mean, medians need not).

use super::stats;

/// The line that opens the block.
pub const HEADER: &str = "timings (ms):";

/// One step of one run: its name and how long it took.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// As mini-docker names it: `lookup`, `overlay-mount`, `cgroup`, ..., `total`.
    pub name: String,
    /// Milliseconds.
    pub ms: f64,
}

/// The steps of the `timings (ms):` block in `stderr`, in their order; `Ok(None)` if there
/// is no such block (a mini-docker without `--timings`, or one that failed before the
/// end), an error if the block is there but malformed.
pub fn parse(stderr: &str) -> Result<Option<Vec<Step>>, String> {
    let mut lines = stderr.lines();
    // The header, exactly (a `\r` or trailing blanks are forgiven).
    if !lines.by_ref().any(|l| l.trim_end() == HEADER) {
        return Ok(None);
    }
    let mut steps: Vec<Step> = Vec::new();
    for line in lines {
        // A step's line starts with two spaces; anything else is the end of the block.
        let Some(rest) = line.strip_prefix("  ") else {
            break;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let [name, value] = fields[..] else {
            if fields.is_empty() {
                break;
            }
            return Err(format!("{HEADER} expected `  STEP MS`, got {line:?}"));
        };
        // A name may not start with a blank: three spaces would be an indented something
        // else, not a step.
        if rest.starts_with(char::is_whitespace) {
            return Err(format!("{HEADER} expected `  STEP MS`, got {line:?}"));
        }
        let ms: f64 = value
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite() && *v >= 0.0)
            .ok_or_else(|| format!("{HEADER} step {name}: {value:?} is not a number of ms"))?;
        if steps.iter().any(|s| s.name == name) {
            return Err(format!("{HEADER} step {name} appears twice"));
        }
        steps.push(Step {
            name: name.to_string(),
            ms,
        });
    }
    if steps.is_empty() {
        return Err(format!("{HEADER} is followed by no step"));
    }
    Ok(Some(steps))
}

/// One line of the averaged breakdown.
#[derive(Debug, Clone, PartialEq)]
pub struct StepMean {
    /// The step.
    pub name: String,
    /// Its mean over the runs that had it, in ms.
    pub mean_ms: f64,
    /// Its share of the total (`mean_ms / total`): the `total` step's mean if mini-docker
    /// gave one, else the sum of the steps.
    pub share: f64,
}

/// Each step's mean over `runs`, in the order the steps first appear.
pub fn average(runs: &[Vec<Step>]) -> Vec<StepMean> {
    let mut names: Vec<&str> = Vec::new();
    for step in runs.iter().flatten() {
        if !names.contains(&step.name.as_str()) {
            names.push(&step.name);
        }
    }
    let means: Vec<(String, f64)> = names
        .iter()
        .map(|name| {
            let samples: Vec<f64> = runs
                .iter()
                .flatten()
                .filter(|s| s.name == *name)
                .map(|s| s.ms)
                .collect();
            (name.to_string(), stats::mean(&samples).unwrap_or(0.0))
        })
        .collect();
    let total = means
        .iter()
        .find(|(n, _)| n == "total")
        .map(|(_, m)| *m)
        .unwrap_or_else(|| means.iter().map(|(_, m)| m).sum());
    means
        .into_iter()
        .map(|(name, mean_ms)| StepMean {
            share: if total > 0.0 { mean_ms / total } else { 0.0 },
            name,
            mean_ms,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(name: &str, ms: f64) -> Step {
        Step {
            name: name.into(),
            ms,
        }
    }

    #[test]
    fn the_block_is_found_among_other_output() {
        let stderr =
            "some warning\ntimings (ms):\n  lookup 0.25\n  overlay-mount\t1.5\n  total   2\nbye\n";
        assert_eq!(
            parse(stderr).unwrap().unwrap(),
            vec![
                step("lookup", 0.25),
                step("overlay-mount", 1.5),
                step("total", 2.0)
            ]
        );
    }

    #[test]
    fn the_block_may_end_the_output_and_have_crlf_line_ends() {
        let stderr = "timings (ms):\r\n  cgroup 3.5\r\n  total 3.5\r\n";
        assert_eq!(
            parse(stderr).unwrap().unwrap(),
            vec![step("cgroup", 3.5), step("total", 3.5)]
        );
    }

    #[test]
    fn no_header_is_no_breakdown() {
        assert_eq!(parse("").unwrap(), None);
        assert_eq!(
            parse("error: unexpected argument '--timings' found\n").unwrap(),
            None
        );
        // The header must be the whole line.
        assert_eq!(parse("old timings (ms): 3\n").unwrap(), None);
    }

    #[test]
    fn a_blank_or_unindented_line_ends_the_block() {
        let stderr = "timings (ms):\n  clone 1\n\n  exec 2\n";
        assert_eq!(parse(stderr).unwrap().unwrap(), vec![step("clone", 1.0)]);
        let stderr = "timings (ms):\n  clone 1\nexec 2\n";
        assert_eq!(parse(stderr).unwrap().unwrap(), vec![step("clone", 1.0)]);
    }

    #[test]
    fn malformed_steps_are_errors() {
        for bad in [
            "timings (ms):\n  clone fast\n",
            "timings (ms):\n  clone 1 ms\n",
            "timings (ms):\n  clone -1\n",
            "timings (ms):\n  clone\n",
            "timings (ms):\n   clone 1\n",
            "timings (ms):\n  clone 1\n  clone 2\n",
            "timings (ms):\n",
            "timings (ms):\nnot a step\n",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn steps_are_averaged_with_their_share_of_the_total() {
        let runs = vec![
            vec![step("clone", 1.0), step("exec", 3.0), step("total", 4.0)],
            vec![step("clone", 3.0), step("exec", 5.0), step("total", 8.0)],
        ];
        let avg = average(&runs);
        let names: Vec<&str> = avg.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["clone", "exec", "total"]);
        assert_eq!(avg[0].mean_ms, 2.0);
        assert_eq!(avg[1].mean_ms, 4.0);
        assert_eq!(avg[0].share, 2.0 / 6.0);
        assert_eq!(avg[2].share, 1.0);
    }

    #[test]
    fn without_a_total_step_the_share_is_of_the_sum() {
        let runs = vec![vec![step("a", 1.0), step("b", 3.0)]];
        let avg = average(&runs);
        assert_eq!(avg[0].share, 0.25);
        assert_eq!(avg[1].share, 0.75);
    }

    #[test]
    fn a_step_missing_from_some_runs_is_averaged_over_the_others() {
        let runs = vec![
            vec![step("a", 2.0)],
            vec![step("a", 4.0), step("late", 6.0)],
        ];
        let avg = average(&runs);
        assert_eq!((avg[0].mean_ms, avg[1].mean_ms), (3.0, 6.0));
    }
}
