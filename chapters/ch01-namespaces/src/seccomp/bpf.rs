//! A classic-BPF interpreter for seccomp programs, in user space: what the kernel would
//! answer for a call, without installing anything. It knows the instructions `seccompiler`
//! emits (load a word of `struct seccomp_data`, AND, compare and jump, return); anything
//! else is an error, never a guess.
use seccompiler::sock_filter;

/// `AUDIT_ARCH_*` of an architecture (linux/audit.h).
pub fn audit_arch(arch: super::Arch) -> u32 {
    match arch {
        super::Arch::X86_64 => 0xc000_003e,
        super::Arch::Aarch64 => 0xc000_00b7,
    }
}

/// The seccomp return value of `program` for call `nr` with `args` on `arch`
/// (`SECCOMP_RET_ALLOW` is `0x7fff0000`, `SECCOMP_RET_ERRNO | errno` is `0x0005xxxx`).
pub fn run(program: &[sock_filter], arch: u32, nr: i64, args: [u64; 6]) -> Result<u32, String> {
    // struct seccomp_data: int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6];
    // little-endian on both architectures filters are built for.
    let mut data = [0u8; 64];
    data[0..4].copy_from_slice(&(nr as i32).to_le_bytes());
    data[4..8].copy_from_slice(&arch.to_le_bytes());
    for (i, a) in args.iter().enumerate() {
        data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_le_bytes());
    }
    let mut acc: u32 = 0;
    let mut pc = 0usize;
    while let Some(ins) = program.get(pc) {
        let k = ins.k;
        pc += 1;
        match ins.code {
            // BPF_LD | BPF_W | BPF_ABS
            0x20 => {
                let at = k as usize;
                let word = data.get(at..at + 4).ok_or(format!("load at {at}"))?;
                acc = u32::from_le_bytes(word.try_into().expect("four bytes"));
            }
            // BPF_ALU | BPF_AND | BPF_K
            0x54 => acc &= k,
            // BPF_JMP | BPF_JA
            0x05 => pc += k as usize,
            // BPF_JMP | BPF_JEQ / BPF_JGT / BPF_JGE, | BPF_K
            0x15 | 0x25 | 0x35 => {
                let taken = match ins.code {
                    0x15 => acc == k,
                    0x25 => acc > k,
                    _ => acc >= k,
                };
                pc += if taken { ins.jt } else { ins.jf } as usize;
            }
            // BPF_RET | BPF_K
            0x06 => return Ok(k),
            code => return Err(format!("instruction {code:#x} at {}", pc - 1)),
        }
    }
    Err("the program ran off its end".into())
}

/// The kernel's choice among a stack of filters: every one runs, the most severe answer
/// wins (the lowest action value, `SECCOMP_RET_KILL_PROCESS` first), and between equal
/// actions the newest filter's (seccomp(2)). `programs` are in installation order.
pub fn run_stack(
    programs: &[Vec<sock_filter>],
    arch: u32,
    nr: i64,
    args: [u64; 6],
) -> Result<u32, String> {
    let mut best: Option<u32> = None;
    for p in programs.iter().rev() {
        let r = run(p, arch, nr, args)?;
        // The action is the top 16 bits, compared as a signed number (KILL_PROCESS is
        // 0x80000000, the most severe).
        let rank = |v: u32| (v & 0xffff_0000) as i32;
        if best.is_none_or(|b| rank(r) < rank(b)) {
            best = Some(r);
        }
    }
    best.ok_or_else(|| "no filter".into())
}
