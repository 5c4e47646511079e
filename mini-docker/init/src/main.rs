//! `mini-init`: the first process of a container started with `run --init`, docker's
//! `docker-init` (tini) in a hundred lines. mini-docker embeds it, built static (the image
//! may have no libc), and binds it read-only at `/sbin/docker-init`; the container's
//! command becomes `/sbin/docker-init -- COMMAND...`.
//!
//! Why a container wants one: PID 1 is special (pid_namespaces(7)).
//! - The kernel delivers it only the signals it has a handler for: a plain `sleep` as PID 1
//!   ignores `docker stop`'s SIGTERM and is killed ten seconds later. An init catches every
//!   signal and passes it on to the command.
//! - Orphans are re-parented to it: a shell that starts a background job and exits leaves
//!   zombies that only PID 1 can reap (wait(2)). An init reaps every child.
//!
//! The whole story, in kernel order:
//! ```text
//!  block every signal ─ fork ─┬─ child: unblock, (own the terminal), execvp(COMMAND)
//!                             └─ parent: loop { sigwaitinfo: SIGCHLD → reap all (waitpid -1);
//!                                                 anything else → kill(child, sig) }
//!                                until the command is reaped: exit with its status
//! ```
//!
//! Built with rustc alone (`-C target-feature=+crt-static`, no crates), so its system calls
//! are declared by hand in `sys`.
mod sys;

use std::ffi::CString;
use std::process::exit;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `docker-init -- CMD ARGS...`, as docker writes it; a bare `CMD ARGS...` works too.
    let command: Vec<String> = match args.first().map(String::as_str) {
        Some("--") => args[1..].to_vec(),
        _ => args,
    };
    if command.is_empty() {
        eprintln!("mini-init: no command given (usage: mini-init -- COMMAND [ARGS...])");
        exit(2);
    }
    let argv: Vec<CString> = match command.iter().map(|a| CString::new(a.as_bytes())).collect() {
        Ok(v) => v,
        Err(_) => {
            eprintln!("mini-init: an argument holds a NUL byte");
            exit(2);
        }
    };
    // 1. Every signal blocked before the fork: none can arrive between the fork and the
    //    wait below and be lost (they stay pending until sigwaitinfo takes them).
    let all = sys::SigSet::full();
    let old = sys::block(&all);
    // 2. The command in a child.
    let child = sys::fork();
    if child == 0 {
        // The child: the signal mask it was born with, and the terminal's foreground if
        // there is one (so Ctrl-C reaches the command, not us), then the command.
        sys::unblock(&old);
        sys::take_terminal();
        let err = sys::execvp(&argv);
        eprintln!("mini-init: exec {} failed: {err}", command[0]);
        // The shell's and docker's code for a command that could not be run.
        exit(if err.raw_os_error() == Some(sys::ENOENT) {
            127
        } else {
            126
        });
    }
    if child < 0 {
        eprintln!("mini-init: fork: {}", std::io::Error::last_os_error());
        exit(1);
    }
    // 3. Wait for signals: reap on SIGCHLD, pass every other one on.
    loop {
        match sys::wait_signal(&all) {
            sys::SIGCHLD => {
                // Every child that has ended, orphans included; the command's end is ours.
                while let Some((pid, status)) = sys::reap_any() {
                    if pid == child {
                        exit(exit_code(status));
                    }
                }
            }
            sig if sig > 0 => sys::forward(child, sig),
            _ => {}
        }
    }
}

/// A wait status as the shell reports it: the exit code, or 128 + the signal.
fn exit_code(status: i32) -> i32 {
    let signal = status & 0x7f;
    if signal == 0 {
        (status >> 8) & 0xff
    } else {
        128 + signal
    }
}

#[cfg(test)]
mod tests {
    use super::exit_code;

    #[test]
    fn statuses_read_as_the_shell_reads_them() {
        assert_eq!(exit_code(0), 0);
        assert_eq!(exit_code(3 << 8), 3);
        assert_eq!(exit_code(15), 143);
        assert_eq!(exit_code(9), 137);
    }
}
