//! The devices allow-list on cgroup v2: an eBPF program, assembled here by hand.
//!
//! cgroup v1 has a `devices` controller whose `devices.allow` file takes lines such as
//! `c 1:3 rwm`. cgroup v2 has no such file: the kernel runs a program of type
//! `BPF_PROG_TYPE_CGROUP_DEVICE` attached to the cgroup at every open(2) or mknod(2) of a
//! device node, and the access is refused (EPERM) unless the program returns 1. runc and crun
//! generate that program from the same rules (runc's `devicefilter` package, after crun's
//! `ebpf.c`); this module does too, and the kernel's verifier checks it at load.
//!
//! The program's input is `struct bpf_cgroup_dev_ctx` (include/uapi/linux/bpf.h):
//!
//! ```text
//! u32 access_type;  // (access << 16) | type; access: MKNOD 1, READ 2, WRITE 4;
//!                   //                        type:   BLOCK 1, CHAR 2
//! u32 major;
//! u32 minor;
//! ```
//!
//! The program loads the four values into registers, then tests the rules in order, one
//! block each: every test that fails jumps to the next block, and a block whose tests all
//! pass returns 1. After the last block it returns 0: what no rule allows is refused.
//! Why by hand rather than with a crate such as aya: the program is about thirty
//! instructions of five kinds, and seeing them is the lesson (Documentation/bpf/
//! instruction-set.rst describes each).
use crate::cgroup::DeviceRule;

/// One eBPF instruction, as the kernel reads it: `struct bpf_insn` (8 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct Insn {
    /// Class, operation and source (`BPF_LDX | BPF_MEM | BPF_W`...).
    pub code: u8,
    /// Destination register in the low four bits, source register in the high four.
    pub regs: u8,
    /// Jump offset (in instructions, from the next one) or memory offset.
    pub off: i16,
    /// Immediate operand.
    pub imm: i32,
}

// Opcodes (include/uapi/linux/bpf_common.h and bpf.h): class | operation | source.
/// `dst = *(u32 *)(src + off)`: BPF_LDX | BPF_MEM | BPF_W (BPF_W is 0).
const LDX_W: u8 = 0x01 | 0x60;
/// `dst &= imm`: BPF_ALU64 | BPF_AND | BPF_K.
const AND_K: u8 = 0x07 | 0x50;
/// `dst >>= imm`: BPF_ALU64 | BPF_RSH | BPF_K.
const RSH_K: u8 = 0x07 | 0x70;
/// `dst = imm`: BPF_ALU64 | BPF_MOV | BPF_K.
const MOV_K: u8 = 0x07 | 0xb0;
/// `dst = src`: BPF_ALU64 | BPF_MOV | BPF_X.
const MOV_X: u8 = 0x07 | 0xb0 | 0x08;
/// `if dst != imm goto +off`: BPF_JMP | BPF_JNE | BPF_K.
const JNE_K: u8 = 0x05 | 0x50;
/// `return r0`: BPF_JMP | BPF_EXIT.
const EXIT: u8 = 0x05 | 0x90;

// Registers: r1 holds the context pointer on entry, r0 the return value.
const R0: u8 = 0;
const R1: u8 = 1;
const TYPE: u8 = 2;
const ACCESS: u8 = 3;
const MAJOR: u8 = 4;
const MINOR: u8 = 5;

/// `BPF_DEVCG_ACC_*`: what is being done to the node.
const ACC_MKNOD: i32 = 1;
const ACC_READ: i32 = 2;
const ACC_WRITE: i32 = 4;
/// `BPF_DEVCG_DEV_*`: which kind of node.
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: dst | (src << 4),
        off,
        imm,
    }
}

/// The program allowing exactly what `rules` allow (v1's `devices.allow` lines), in the
/// order given; anything else is refused.
pub fn program(rules: &[DeviceRule]) -> Vec<Insn> {
    let mut p = vec![
        // r2 = ctx->access_type & 0xffff (the type)
        insn(LDX_W, TYPE, R1, 0, 0),
        insn(AND_K, TYPE, 0, 0, 0xffff),
        // r3 = ctx->access_type >> 16 (the access)
        insn(LDX_W, ACCESS, R1, 0, 0),
        insn(RSH_K, ACCESS, 0, 0, 16),
        // r4 = ctx->major, r5 = ctx->minor
        insn(LDX_W, MAJOR, R1, 4, 0),
        insn(LDX_W, MINOR, R1, 8, 0),
    ];
    for rule in rules {
        p.extend(block(rule));
    }
    // No rule allowed it.
    p.extend([insn(MOV_K, R0, 0, 0, 0), insn(EXIT, 0, 0, 0, 0)]);
    p
}

/// One rule's block: its tests, each jumping past the block when it fails, then `return 1`.
fn block(rule: &DeviceRule) -> Vec<Insn> {
    // Tests as (instructions before the jump, the jump's register and immediate).
    let mut tests: Vec<(Vec<Insn>, u8, i32)> = Vec::new();
    match rule.kind {
        'c' => tests.push((Vec::new(), TYPE, DEV_CHAR)),
        'b' => tests.push((Vec::new(), TYPE, DEV_BLOCK)),
        _ => {} // `a`: any kind
    }
    let allowed = rule.access.chars().fold(0, |acc, c| {
        acc | match c {
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            'm' => ACC_MKNOD,
            _ => 0,
        }
    });
    let others = !allowed & (ACC_MKNOD | ACC_READ | ACC_WRITE);
    if others != 0 {
        // r1 = access & what the rule does not allow; anything left fails the rule.
        tests.push((
            vec![insn(MOV_X, R1, ACCESS, 0, 0), insn(AND_K, R1, 0, 0, others)],
            R1,
            0,
        ));
    }
    if let Some(major) = rule.major {
        tests.push((Vec::new(), MAJOR, major as i32));
    }
    if let Some(minor) = rule.minor {
        tests.push((Vec::new(), MINOR, minor as i32));
    }
    let mut out = Vec::new();
    for (i, (before, reg, imm)) in tests.iter().enumerate() {
        out.extend(before.iter().copied());
        // Past the rest of the block: the later tests (with their own set-up) and the
        // two instructions of `return 1`.
        let rest: usize = tests[i + 1..].iter().map(|(b, _, _)| b.len() + 1).sum();
        out.push(insn(JNE_K, *reg, 0, (rest + 2) as i16, *imm));
    }
    out.extend([insn(MOV_K, R0, 0, 0, 1), insn(EXIT, 0, 0, 0, 0)]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the program the way the kernel would, for the instructions it uses.
    fn run(program: &[Insn], kind: char, major: u32, minor: u32, access: &str) -> bool {
        let ty = if kind == 'b' { DEV_BLOCK } else { DEV_CHAR };
        let acc = access.chars().fold(0, |a, c| {
            a | match c {
                'r' => ACC_READ,
                'w' => ACC_WRITE,
                _ => ACC_MKNOD,
            }
        });
        let ctx = [((acc << 16) | ty) as u32, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let i = program[pc];
            let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
            pc += 1;
            match i.code {
                LDX_W => {
                    assert_eq!(src, 1, "loads only from the context");
                    r[dst] = ctx[i.off as usize / 4] as u64;
                }
                AND_K => r[dst] &= i.imm as u64,
                RSH_K => r[dst] >>= i.imm,
                MOV_K => r[dst] = i.imm as u64,
                MOV_X => r[dst] = r[src],
                JNE_K => {
                    if r[dst] != i.imm as u64 {
                        pc += i.off as usize;
                    }
                }
                EXIT => return r[0] == 1,
                other => panic!("unexpected opcode {other:#x}"),
            }
        }
    }

    #[test]
    fn dockers_default_list_allows_what_v1_would_and_nothing_else() {
        let p = program(&DeviceRule::docker_default());
        let cases = [
            // (kind, major, minor, access, allowed)
            ('c', 1, 3, "rw", true),    // /dev/null
            ('c', 1, 9, "r", true),     // /dev/urandom
            ('c', 5, 2, "rw", true),    // /dev/ptmx
            ('c', 136, 7, "rw", true),  // a pty of the container
            ('c', 10, 200, "rw", true), // /dev/net/tun
            ('c', 1, 11, "r", false),   // /dev/kmsg
            ('c', 1, 1, "r", false),    // /dev/mem
            ('b', 8, 0, "r", false),    // a disk
            ('b', 254, 0, "rw", false),
            ('b', 8, 0, "m", true), // made, never opened: `b *:* m`
            ('c', 1, 11, "m", true),
            ('c', 10, 229, "rw", false), // /dev/fuse
        ];
        for (kind, major, minor, access, allowed) in cases {
            assert_eq!(
                run(&p, kind, major, minor, access),
                allowed,
                "{kind} {major}:{minor} {access}"
            );
        }
    }

    #[test]
    fn access_is_allowed_only_within_the_rules_letters() {
        let rule = DeviceRule {
            kind: 'c',
            major: Some(10),
            minor: Some(229),
            access: "r".into(),
        };
        let p = program(&[rule]);
        assert!(run(&p, 'c', 10, 229, "r"));
        assert!(!run(&p, 'c', 10, 229, "rw"));
        assert!(!run(&p, 'c', 10, 229, "m"));
        assert!(!run(&p, 'b', 10, 229, "r"), "a block device of that number");
        // `a` with no numbers and every letter: everything (docker's --privileged on v1).
        let all = DeviceRule {
            kind: 'a',
            major: None,
            minor: None,
            access: "rwm".into(),
        };
        let p = program(&[all]);
        assert!(run(&p, 'b', 8, 0, "rw"));
        // And none: nothing.
        assert!(!run(&program(&[]), 'c', 1, 3, "r"));
    }
}
