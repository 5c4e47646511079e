//! The seam. Cgroups are driven entirely through files: mkdir(2) creates a cgroup, writes
//! set limits and move processes, reads report usage, rmdir(2) removes it. [`CgroupFs`] is
//! exactly those operations (plus kill(2), to empty a cgroup), so the cgroup code can be
//! pointed at a fixture tree in unit tests. Every chapter-1 seam is a `CgroupFs`, which is
//! how the real kernel, `--trace` and the recorder reach it.
//!
//! One operation is not a file: cgroup v2's device allow-list is an eBPF program loaded
//! with bpf(2) and attached to the cgroup's directory, the one `unsafe` of this chapter.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use crate::devices::Insn;
use nix::errno::Errno;
use nix::fcntl::{OFlag, open};
use nix::sys::stat::Mode;

pub use ch01_namespaces::sys::*;
use nix::sys::signal::Signal;
use nix::unistd::Pid;

/// What the cgroup code asks of the kernel.
pub trait CgroupFs: std::fmt::Debug {
    /// mkdir(2): creates a cgroup (the kernel fills it with its interface files).
    fn mkdir(&self, path: &Path, mode: u32) -> SysResult<()>;
    /// rmdir(2): removes an empty cgroup.
    fn rmdir(&self, path: &Path) -> SysResult<()>;
    /// Reads an interface file.
    fn read_file(&self, path: &Path) -> SysResult<String>;
    /// Writes an interface file in one write(2).
    fn write_file(&self, path: &Path, data: &str) -> SysResult<()>;
    /// kill(2).
    fn kill(&self, pid: Pid, signal: Signal) -> SysResult<()>;
    /// bpf(2) `BPF_PROG_LOAD` of a `BPF_PROG_TYPE_CGROUP_DEVICE` program, then
    /// `BPF_PROG_ATTACH` to the v2 cgroup `dir`: from then on the kernel asks the program
    /// at every open or mknod of a device node by a process in it. The attachment holds
    /// the program until the cgroup is removed.
    fn attach_device_program(&self, dir: &Path, program: &[Insn]) -> SysResult<()>;
}

impl<T: Sys + ?Sized> CgroupFs for T {
    fn mkdir(&self, path: &Path, mode: u32) -> SysResult<()> {
        Sys::mkdir(self, path, mode)
    }
    fn rmdir(&self, path: &Path) -> SysResult<()> {
        Sys::rmdir(self, path)
    }
    fn read_file(&self, path: &Path) -> SysResult<String> {
        Sys::read_file(self, path)
    }
    fn write_file(&self, path: &Path, data: &str) -> SysResult<()> {
        Sys::write_file(self, path, data)
    }
    fn kill(&self, pid: Pid, signal: Signal) -> SysResult<()> {
        Sys::kill(self, pid, signal)
    }
    fn attach_device_program(&self, dir: &Path, program: &[Insn]) -> SysResult<()> {
        attach_device_program(dir, program)
    }
}

// From include/uapi/linux/bpf.h.
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
/// Let programs attached below (a nested container's) run too, and ours stay.
const BPF_F_ALLOW_MULTI: u32 = 2;

/// The `BPF_PROG_LOAD` part of `union bpf_attr`, up to `expected_attach_type`.
#[repr(C)]
#[derive(Default)]
struct ProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// The `BPF_PROG_ATTACH` part of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct ProgAttach {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
}

fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> Result<libc::c_long, Errno> {
    // SAFETY: `attr` is a live, initialised `union bpf_attr` prefix of the layout `cmd`
    // reads, and its size is passed: the kernel copies no more than that and zero-fills
    // the rest of its own copy. Pointers inside it are checked by the callers.
    Errno::result(unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    })
}

fn attach_device_program(dir: &Path, program: &[Insn]) -> SysResult<()> {
    let license = CString::new("Apache").expect("no NUL");
    let mut log = vec![0u8; 64 * 1024];
    let mut load = ProgLoad {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: program.len() as u32,
        insns: program.as_ptr() as u64,
        license: license.as_ptr() as u64,
        // The verifier's reasoning, for the error message if it refuses the program.
        log_level: 1,
        log_size: log.len() as u32,
        log_buf: log.as_mut_ptr() as u64,
        ..ProgLoad::default()
    };
    load.prog_name[..12].copy_from_slice(b"mdocker_devs");
    let call = format!(
        "bpf(BPF_PROG_LOAD, BPF_PROG_TYPE_CGROUP_DEVICE, {} instructions)",
        program.len()
    );
    let prog = match bpf(BPF_PROG_LOAD, &mut load) {
        // SAFETY: the kernel just returned this descriptor to us and no one else owns it.
        Ok(fd) => unsafe { OwnedFd::from_raw_fd(fd as i32) },
        Err(errno) => {
            let text = String::from_utf8_lossy(&log);
            let text = text.trim_end_matches('\0').trim();
            let call = if text.is_empty() {
                call
            } else {
                format!("{call}: the verifier said: {text}")
            };
            return Err(SysError::new(call, errno));
        }
    };
    let cgroup = open(
        dir,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| SysError::new(format!("open(\"{}\", O_DIRECTORY)", dir.display()), e))?;
    let mut attach = ProgAttach {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
    };
    bpf(BPF_PROG_ATTACH, &mut attach).map_err(|e| {
        SysError::new(
            format!(
                "bpf(BPF_PROG_ATTACH, \"{}\", BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI)",
                dir.display()
            ),
            e,
        )
    })?;
    Ok(())
}
