//! A setuid probe for `tests/security.rs`: built static (the busybox image has no libc),
//! made setuid root, and run as an ordinary user inside a container. It prints the lines
//! of its own /proc/self/status that show whether the setuid bit gave it anything.
fn main() {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    for line in status.lines() {
        if ["Uid:", "CapEff:", "NoNewPrivs:"].iter().any(|k| line.starts_with(k)) {
            println!("{line}");
        }
    }
}
