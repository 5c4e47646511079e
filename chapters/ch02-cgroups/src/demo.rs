//! The three classic demonstrations, and the workloads ("hogs") they run.
//!
//! Each demo runs this same binary's hidden `hog` subcommand under a limit and explains
//! what the kernel did, from the numbers the controller files report. A demo exits 0 when
//! the kernel did what the demo says it does, 1 otherwise.
use std::io::Write;
use std::time::{Duration, Instant};

use nix::sched::CloneFlags;

use crate::cli::{HogArgs, HogKind};
use crate::sys::Sys;
use crate::{Error, Layout, Limits, Report, format_bytes, run, start};

/// The hog's command line: this binary, through `/proc/self/exe`, so it works wherever the
/// binary lives.
fn hog_argv(args: &[&str]) -> Vec<String> {
    let mut argv = vec!["/proc/self/exe".to_string(), "hog".into()];
    argv.extend(args.iter().map(|s| s.to_string()));
    argv
}

/// Shows the report with the hog's command line as a learner would type it.
fn show(mut report: Report) -> Report {
    report.command = report.command.replace("/proc/self/exe", "ch02-cgroups");
    print!("{report}");
    report
}

fn say(text: &str) {
    println!("{text}");
    // Our lines and the hog's share stdout: flush before the hog writes.
    let _ = std::io::stdout().flush();
}

/// `demo memory`: allocate past a 32 MiB limit.
pub fn memory(sys: &dyn Sys, layout: &Layout) -> Result<i32, Error> {
    let limits = Limits {
        memory: Some(32 << 20),
        ..Default::default()
    };
    say(
        "Memory limit 32 MiB, no swap. The program allocates 4 MiB at a time and writes to every page:",
    );
    let report = show(run(
        sys,
        layout,
        &limits,
        &hog_argv(&["memory", "--step", "4m"]),
    )?);
    if report.oom_killed() {
        say(
            "It was not slowed down: once the cgroup could not reclaim enough memory to stay under",
        );
        say("its limit, the kernel's OOM killer sent SIGKILL (exit code 137 = 128 + 9).");
        Ok(0)
    } else {
        say("Expected an OOM kill, but it was not killed by the OOM killer.");
        Ok(1)
    }
}

/// `demo cpu`: spin without a limit, then under half a CPU.
pub fn cpu(sys: &dyn Sys, layout: &Layout) -> Result<i32, Error> {
    say("Without a limit, the program spins on one CPU for 1 s:");
    let free = show(run(
        sys,
        layout,
        &Limits::default(),
        &hog_argv(&["cpu", "--seconds", "1"]),
    )?);
    let limits = Limits {
        cpus: Some(0.5),
        ..Default::default()
    };
    say("With --cpus 0.5 (a quota of 50 ms of CPU time in every 100 ms period), it spins for 2 s:");
    let limited = show(run(
        sys,
        layout,
        &limits,
        &hog_argv(&["cpu", "--seconds", "2"]),
    )?);
    let (Some(before), Some(after)) = (free.cpu_share(), limited.cpu_share()) else {
        say("The CPU controller reported no usage.");
        return Ok(1);
    };
    println!("Measured share: {before:.2} of a CPU without the limit, {after:.2} with --cpus 0.5.");
    if (0.35..=0.65).contains(&after) {
        say("Each time the quota ran out the scheduler took it off the CPU until the next period.");
        Ok(0)
    } else {
        say("That is not about half a CPU.");
        Ok(1)
    }
}

/// `demo pids`: a fork loop under a limit of 20 processes.
pub fn pids(sys: &dyn Sys, layout: &Layout) -> Result<i32, Error> {
    let limits = Limits {
        pids: Some(20),
        ..Default::default()
    };
    say("Process limit 20. The program forks children that sleep, until fork fails:");
    let limited = start(sys, layout, &limits, &hog_argv(&["fork"]))?;
    let report = show(limited.wait_then(|cgroup| {
        // The program has exited; its 19 sleeping children are still in the cgroup.
        let stats = cgroup.stats()?;
        let host = std::process::Command::new("true").status();
        println!(
            "While the cgroup still holds {} processes (pids.max {}), the host forks as usual: `true` {}.",
            stats.pids_current.unwrap_or(0),
            stats.pids_limit.map_or("max".into(), |m| m.to_string()),
            match host {
                Ok(s) if s.success() => "ran and exited 0".to_string(),
                Ok(s) => format!("ended with {s}"),
                Err(e) => format!("could not start: {e}"),
            }
        );
        Ok(())
    })?);
    if report.stats.pids_refused.unwrap_or(0) > 0 {
        say("The kernel refused the 20th process with EAGAIN, inside the cgroup only.");
        Ok(0)
    } else {
        say("Expected the pids limit to refuse a fork, but pids.events counted none.");
        Ok(1)
    }
}

/// The hidden `hog` subcommand: the demos' workloads. Returns the exit code.
pub fn hog(sys: &dyn Sys, args: &HogArgs) -> i32 {
    match args.what {
        HogKind::Memory => hog_memory(args.step, args.max_memory),
        HogKind::Cpu => hog_cpu(Duration::from_secs_f64(args.seconds)),
        HogKind::Fork => hog_fork(sys, args.max_forks),
    }
}

fn hog_memory(step: u64, max: u64) -> i32 {
    let mut kept: Vec<Vec<u8>> = Vec::new();
    let mut total = 0;
    while total < max {
        // Filled with 1s, not zeros: the allocator would hand out untouched zero pages for
        // vec![0; n], and untouched pages are not charged to anyone.
        kept.push(vec![1u8; step as usize]);
        total += step;
        println!("allocated {}", format_bytes(total));
        let _ = std::io::stdout().flush();
    }
    println!(
        "allocated {} without being stopped: is a memory limit set?",
        format_bytes(total)
    );
    3
}

fn hog_cpu(spin: Duration) -> i32 {
    let start = Instant::now();
    let mut x: u64 = 0;
    while start.elapsed() < spin {
        for _ in 0..10_000 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
    0
}

fn hog_fork(sys: &dyn Sys, max: u32) -> i32 {
    for n in 1..=max {
        // A child that does nothing but sleep until it is killed.
        let forked = sys.clone3(CloneFlags::empty(), &mut || loop {
            nix::unistd::pause();
        });
        if let Err(e) = forked {
            println!("forked {} children; fork number {n} failed: {e}", n - 1);
            return 0;
        }
    }
    println!("forked {max} children without being stopped: is a pids limit set?");
    3
}
