//! The seam. Cgroups are driven entirely through files: mkdir(2) creates a cgroup, writes
//! set limits and move processes, reads report usage, rmdir(2) removes it. [`CgroupFs`] is
//! exactly those operations (plus kill(2), to empty a cgroup), so the cgroup code can be
//! pointed at a fixture tree in unit tests. Every chapter-1 seam is a `CgroupFs`, which is
//! how the real kernel, `--trace` and the recorder reach it.
use std::path::Path;

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
}
