//! The compiled default profile, asked call by call through the BPF interpreter.
use super::*;

const ALLOW: u32 = 0x7fff_0000;
const EPERM: u32 = 0x0005_0000 | libc::EPERM as u32;
const ENOSYS: u32 = 0x0005_0000 | libc::ENOSYS as u32;
const KILL_PROCESS: u32 = 0x8000_0000;

fn target(caps: CapSet) -> Target {
    Target {
        caps,
        arch: Arch::X86_64,
        kernel: (6, 1),
    }
}

fn programs(profile: &str, caps: CapSet) -> Vec<Vec<seccompiler::sock_filter>> {
    compile(&parse(profile).unwrap(), &target(caps)).unwrap()
}

fn ask(p: &[Vec<seccompiler::sock_filter>], name: &str, args: [u64; 6]) -> u32 {
    let nr = Arch::X86_64
        .syscall(name)
        .unwrap_or_else(|| panic!("{name}"));
    bpf::run_stack(p, bpf::audit_arch(Arch::X86_64), nr, args).unwrap()
}

const NO: [u64; 6] = [0; 6];
const CLONE_NEWUSER: u64 = 0x1000_0000;
const SIGCHLD: u64 = 17;

#[test]
fn the_default_profile_answers_as_dockers() {
    let p = programs(DOCKER_DEFAULT, CapSet::docker_default());
    let table: &[(&str, [u64; 6], u32)] = &[
        ("read", NO, ALLOW),
        ("execve", NO, ALLOW),
        ("capset", NO, ALLOW),
        ("close_range", NO, ALLOW),
        ("keyctl", NO, EPERM),
        ("add_key", NO, EPERM),
        ("request_key", NO, EPERM),
        ("bpf", NO, EPERM),
        ("perf_event_open", NO, EPERM),
        ("kexec_load", NO, EPERM),
        ("open_by_handle_at", NO, EPERM),
        ("reboot", NO, EPERM),
        ("init_module", NO, EPERM),
        ("mount", NO, EPERM),
        ("umount2", NO, EPERM),
        ("unshare", NO, EPERM),
        ("setns", NO, EPERM),
        ("swapon", NO, EPERM),
        ("ptrace", NO, ALLOW),
        // fork-like clones are fine, a new namespace is not
        ("clone", [SIGCHLD, 0, 0, 0, 0, 0], ALLOW),
        ("clone", [CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0, 0], EPERM),
        // clone3's flags are behind a pointer BPF cannot follow: ENOSYS, so libc falls
        // back to clone, whose flags it can check
        ("clone3", NO, ENOSYS),
        ("personality", [0, 0, 0, 0, 0, 0], ALLOW),
        ("personality", [0xffff_ffff, 0, 0, 0, 0, 0], ALLOW),
        // ADDR_NO_RANDOMIZE: turning off ASLR is not in the list
        ("personality", [0x0004_0000, 0, 0, 0, 0, 0], EPERM),
    ];
    for (name, args, want) in table {
        assert_eq!(ask(&p, name, *args), *want, "{name} {args:x?}");
    }
}

#[test]
fn added_capabilities_open_their_calls() {
    let admin = CapSet::docker_default().with(caps::number("SYS_ADMIN").unwrap());
    let p = programs(DOCKER_DEFAULT, admin);
    assert_eq!(ask(&p, "mount", NO), ALLOW);
    assert_eq!(ask(&p, "unshare", NO), ALLOW);
    assert_eq!(ask(&p, "clone", [CLONE_NEWUSER, 0, 0, 0, 0, 0]), ALLOW);
    assert_eq!(ask(&p, "clone3", NO), ALLOW);
    assert_eq!(ask(&p, "reboot", NO), EPERM);
    let boot = CapSet::docker_default().with(caps::number("SYS_BOOT").unwrap());
    assert_eq!(ask(&programs(DOCKER_DEFAULT, boot), "reboot", NO), ALLOW);
}

#[test]
fn another_architecture_is_killed() {
    let p = programs(DOCKER_DEFAULT, CapSet::docker_default());
    let i386 = 0x4000_0003;
    assert_eq!(bpf::run_stack(&p, i386, 3, NO).unwrap(), KILL_PROCESS);
}

#[test]
fn a_deny_list_profile_allows_the_rest() {
    let json = r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
        {"name": "sethostname", "action": "SCMP_ACT_KILL_PROCESS"}]}"#;
    let p = programs(json, CapSet::docker_default());
    assert_eq!(ask(&p, "mkdirat", NO), 0x0005_000d);
    assert_eq!(ask(&p, "sethostname", NO), KILL_PROCESS);
    assert_eq!(ask(&p, "mount", NO), ALLOW);
}

#[test]
fn bad_profiles_say_what_is_wrong() {
    let e = compile(
        &parse(r#"{"defaultAction": "SCMP_ACT_NOPE"}"#).unwrap(),
        &target(CapSet(0)),
    )
    .unwrap_err();
    assert_eq!(
        e,
        "invalid seccomp profile: unknown action \"SCMP_ACT_NOPE\""
    );
    assert!(
        parse("{")
            .unwrap_err()
            .starts_with("invalid seccomp profile: ")
    );
}
