//! The one I/O pump: bytes from sources to sinks over non-blocking descriptors, signals
//! through a signalfd, all in one poll(2) loop. The monitor (container ↔ log and clients),
//! the attached client (`relay`: socket ↔ our terminal) and `exec -t` (pty ↔ our terminal)
//! are each a few lines of policy around it.
//!
//! Why non-blocking: a blocking write(2) to a reader that has stopped reading (a client
//! whose terminal is suspended, a FIFO nobody opens) stops the writer, and a monitor that
//! stops stops the container's output, its log and every other client. Here a write takes
//! what the kernel accepts now (`EAGAIN` for the rest, see pipe(7) and socket(7)); the rest
//! waits in the sink's queue for the next `POLLOUT`, and the caller decides what a queue
//! that keeps growing means: stop reading its source (back-pressure, for our own terminal)
//! or drop that sink (a slow client of the monitor).
//!
//! Why a signalfd: signals become one more readable descriptor (see signalfd(2)), so a
//! SIGCHLD or a Ctrl-C is handled in the loop, between two reads, never in the middle of one.
//! The caller blocks them first (`SignalBlock`), or they would be delivered the usual way.
use std::collections::VecDeque;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use crate::Error;

/// What the pump saw; the caller's names (`K`) say whose descriptor it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<K> {
    /// Bytes read from a source.
    Data(K, Vec<u8>),
    /// A source ended (end-of-file, a pty whose other side closed, an error); it is removed.
    Eof(K),
    /// A watched descriptor is readable (a listening socket: accept now).
    Ready(K),
    /// A sink's queue is empty again.
    Drained(K),
    /// A sink's reader went away (`EPIPE`, a hang-up); it is removed.
    Closed(K),
    /// A signal of the pump's set arrived.
    Signal(Signal),
    /// Nothing happened within the timeout.
    Timeout,
}

enum Role {
    /// Read when readable, unless paused.
    Source { paused: bool },
    /// Written from its queue when writable.
    Sink { queue: VecDeque<u8> },
    /// Only reported when readable.
    Watch,
}

struct Entry<K> {
    key: K,
    fd: OwnedFd,
    role: Role,
    /// The open file behind the descriptor (device, inode): `O_NONBLOCK` belongs to the
    /// open file, shared by every descriptor dup'ed from it (see open(2), fcntl(2)).
    file: (u64, u64),
}

/// Sources, sinks and watched descriptors, keyed by the caller's names.
pub struct Pump<K> {
    entries: Vec<Entry<K>>,
    /// Each open file's status flags from before we set `O_NONBLOCK`, put back when its
    /// last entry goes: a terminal shared with a shell, or a pty master handed on to
    /// another process, must not stay non-blocking after us.
    originals: Vec<((u64, u64), OFlag)>,
    signals: Option<SignalFd>,
    events: VecDeque<Event<K>>,
    buf: Vec<u8>,
}

impl<K> Drop for Pump<K> {
    fn drop(&mut self) {
        while !self.entries.is_empty() {
            self.take(self.entries.len() - 1);
        }
    }
}

impl<K> Pump<K> {
    /// Removes entry `index`, restoring its open file's flags if no other entry uses it.
    fn take(&mut self, index: usize) -> K {
        let entry = self.entries.remove(index);
        if !self.entries.iter().any(|e| e.file == entry.file)
            && let Some(at) = self.originals.iter().position(|(f, _)| *f == entry.file)
        {
            let (_, flags) = self.originals.remove(at);
            let _ = fcntl(&entry.fd, FcntlArg::F_SETFL(flags));
        }
        entry.key
    }
}

/// How much one read takes.
const CHUNK: usize = 64 * 1024;

impl<K: Copy + PartialEq + std::fmt::Debug> Pump<K> {
    /// An empty pump that reports the signals of `signals` (which the caller keeps blocked).
    pub fn new(signals: Option<&SigSet>) -> Result<Self, Error> {
        let signals = match signals {
            Some(set) => Some(
                SignalFd::with_flags(set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
                    .map_err(|e| sys_err("signalfd", e))?,
            ),
            None => None,
        };
        Ok(Pump {
            entries: Vec::new(),
            originals: Vec::new(),
            signals,
            events: VecDeque::new(),
            buf: vec![0; CHUNK],
        })
    }

    fn add(&mut self, key: K, fd: OwnedFd, role: Role) -> Result<(), Error> {
        let st = nix::sys::stat::fstat(&fd).map_err(|e| sys_err("fstat", e))?;
        let file = (st.st_dev, st.st_ino);
        let flags = OFlag::from_bits_truncate(
            fcntl(&fd, FcntlArg::F_GETFL).map_err(|e| sys_err("fcntl(F_GETFL)", e))?,
        );
        if !self.originals.iter().any(|(f, _)| *f == file) {
            self.originals.push((file, flags));
        }
        fcntl(&fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))
            .map_err(|e| sys_err("fcntl(F_SETFL, O_NONBLOCK)", e))?;
        self.entries.push(Entry {
            key,
            fd,
            role,
            file,
        });
        Ok(())
    }

    /// Reads `fd` whenever it is readable: [`Event::Data`], then [`Event::Eof`].
    pub fn source(&mut self, key: K, fd: OwnedFd) -> Result<(), Error> {
        self.add(key, fd, Role::Source { paused: false })
    }

    /// Writes to `fd` what [`Pump::send`] queues for it.
    pub fn sink(&mut self, key: K, fd: OwnedFd) -> Result<(), Error> {
        self.add(
            key,
            fd,
            Role::Sink {
                queue: VecDeque::new(),
            },
        )
    }

    /// Reports [`Event::Ready`] whenever `fd` is readable, reading nothing.
    pub fn watch(&mut self, key: K, fd: OwnedFd) -> Result<(), Error> {
        self.add(key, fd, Role::Watch)
    }

    fn find(&mut self, key: K) -> Option<&mut Entry<K>> {
        self.entries.iter_mut().find(|e| e.key == key)
    }

    /// Whether `key` is still in the pump.
    pub fn has(&self, key: K) -> bool {
        self.entries.iter().any(|e| e.key == key)
    }

    /// Removes `key` (closing its descriptor).
    pub fn remove(&mut self, key: K) {
        if let Some(i) = self.entries.iter().position(|e| e.key == key) {
            self.take(i);
        }
    }

    /// Stops (or resumes) reading a source: back-pressure while a sink it feeds is full.
    pub fn pause(&mut self, key: K, paused: bool) {
        if let Some(Entry {
            role: Role::Source { paused: p },
            ..
        }) = self.find(key)
        {
            *p = paused;
        }
    }

    /// The bytes queued for sink `key` (0 for no such sink).
    pub fn queued(&self, key: K) -> usize {
        match self.entries.iter().find(|e| e.key == key) {
            Some(Entry {
                role: Role::Sink { queue },
                ..
            }) => queue.len(),
            _ => 0,
        }
    }

    /// The keys of every sink.
    pub fn sinks(&self) -> Vec<K> {
        self.entries
            .iter()
            .filter(|e| matches!(e.role, Role::Sink { .. }))
            .map(|e| e.key)
            .collect()
    }

    /// Queues `bytes` for sink `key` and writes what the kernel takes now. Returns what is
    /// still queued, or None when there is no such sink (any more).
    pub fn send(&mut self, key: K, bytes: &[u8]) -> Option<usize> {
        let index = self.entries.iter().position(|e| e.key == key)?;
        let Role::Sink { queue } = &mut self.entries[index].role else {
            return None;
        };
        queue.extend(bytes);
        self.flush(index);
        Some(self.queued(key))
    }

    /// Writes sink `index`'s queue until it is empty or the kernel says `EAGAIN`; a sink
    /// whose reader is gone is removed with [`Event::Closed`].
    fn flush(&mut self, index: usize) -> bool {
        let entry = &mut self.entries[index];
        let Role::Sink { queue } = &mut entry.role else {
            return true;
        };
        while !queue.is_empty() {
            let (front, _) = queue.as_slices();
            match nix::unistd::write(&entry.fd, front) {
                Ok(n) => {
                    queue.drain(..n);
                }
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => return true,
                Err(_) => {
                    let key = self.take(index);
                    self.events.push_back(Event::Closed(key));
                    return false;
                }
            }
        }
        true
    }

    /// Writes every queue out, waiting as long as it takes, or at most `limit` (a reader
    /// that never reads): what the end of a session does with the last output.
    pub fn finish(&mut self, limit: Option<Duration>) {
        let deadline = limit.map(|l| std::time::Instant::now() + l);
        while self.sinks().iter().any(|&k| self.queued(k) > 0) {
            let left = deadline.map(|d| d.saturating_duration_since(std::time::Instant::now()));
            match self.next(left) {
                Ok(Event::Timeout) | Err(_) => return,
                Ok(_) => {}
            }
        }
    }

    /// Waits for the next event. Sinks are written meanwhile, as they become writable.
    pub fn next(&mut self, timeout: Option<Duration>) -> Result<Event<K>, Error> {
        let deadline = timeout.map(|t| std::time::Instant::now() + t);
        loop {
            if let Some(event) = self.events.pop_front() {
                return Ok(event);
            }
            let left = deadline.map(|d| d.saturating_duration_since(std::time::Instant::now()));
            self.poll_once(left)?;
            if self.events.is_empty() && deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                return Ok(Event::Timeout);
            }
        }
    }

    fn poll_once(&mut self, timeout: Option<Duration>) -> Result<(), Error> {
        // Which entry each poll slot is: None for the signalfd.
        let mut slots: Vec<Option<usize>> = Vec::new();
        let mut fds: Vec<PollFd> = Vec::new();
        if let Some(s) = &self.signals {
            fds.push(PollFd::new(s.as_fd(), PollFlags::POLLIN));
            slots.push(None);
        }
        for (i, e) in self.entries.iter().enumerate() {
            let wanted = match &e.role {
                Role::Source { paused: false } | Role::Watch => PollFlags::POLLIN,
                Role::Sink { queue } if !queue.is_empty() => PollFlags::POLLOUT,
                _ => continue,
            };
            fds.push(PollFd::new(e.fd.as_fd(), wanted));
            slots.push(Some(i));
        }
        let timeout = match timeout {
            None => PollTimeout::NONE,
            Some(d) => PollTimeout::try_from(d).unwrap_or(PollTimeout::MAX),
        };
        match poll(&mut fds, timeout) {
            Ok(_) => {}
            Err(Errno::EINTR) => return Ok(()),
            Err(e) => return Err(sys_err("poll", e)),
        }
        let ready: Vec<Option<usize>> = fds
            .iter()
            .zip(&slots)
            .filter(|(f, _)| f.revents().is_some_and(|r| !r.is_empty()))
            .map(|(_, s)| *s)
            .collect();
        drop(fds);
        // In the order the entries were added (a container's stdout before its stderr, as
        // it wrote them when both are ready), found again by key: servicing one entry may
        // remove it and shift the others.
        let mut ready_keys: Vec<K> = Vec::new();
        for slot in ready {
            match slot {
                None => self.read_signals(),
                Some(i) => ready_keys.push(self.entries[i].key),
            }
        }
        for key in ready_keys {
            if let Some(i) = self.entries.iter().position(|e| e.key == key) {
                self.service(i);
            }
        }
        Ok(())
    }

    fn read_signals(&mut self) {
        let Some(s) = &self.signals else { return };
        while let Ok(Some(info)) = s.read_signal() {
            if let Ok(sig) = Signal::try_from(info.ssi_signo as i32) {
                self.events.push_back(Event::Signal(sig));
            }
        }
    }

    fn service(&mut self, index: usize) {
        let key = self.entries[index].key;
        match self.entries[index].role {
            Role::Watch => self.events.push_back(Event::Ready(key)),
            Role::Source { .. } => {
                match nix::unistd::read(&self.entries[index].fd, &mut self.buf) {
                    Ok(n) if n > 0 => self
                        .events
                        .push_back(Event::Data(key, self.buf[..n].to_vec())),
                    Err(Errno::EINTR | Errno::EAGAIN) => {}
                    // 0 is end-of-file; EIO is how a pty's master reads once the last holder of
                    // its slave side is gone (pty(7)); anything else ends the source too.
                    Ok(_) | Err(_) => {
                        self.take(index);
                        self.events.push_back(Event::Eof(key));
                    }
                }
            }
            Role::Sink { .. } => {
                if self.flush(index) && self.queued(key) == 0 {
                    self.events.push_back(Event::Drained(key));
                }
            }
        }
    }
}

fn sys_err(call: &str, e: Errno) -> Error {
    Error::Sys(ch01_namespaces::SysError::new(call, e))
}

/// A descriptor of our own for one of ours that others share (our stdin, stdout, stderr),
/// so the pump can own and close it without closing the original.
pub fn dup(fd: BorrowedFd<'_>) -> Result<OwnedFd, Error> {
    fd.try_clone_to_owned()
        .map_err(|e| Error::io("dup", std::path::Path::new("a descriptor"), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum K {
        In,
        Out,
    }

    fn pipe() -> (OwnedFd, OwnedFd) {
        nix::unistd::pipe().unwrap()
    }

    #[test]
    fn a_source_feeds_a_sink_and_ends() {
        let (r1, w1) = pipe();
        let (r2, w2) = pipe();
        let mut pump = Pump::new(None).unwrap();
        pump.source(K::In, r1).unwrap();
        pump.sink(K::Out, w2).unwrap();
        nix::unistd::write(&w1, b"hello").unwrap();
        drop(w1);
        let mut got = Vec::new();
        loop {
            match pump.next(Some(Duration::from_secs(5))).unwrap() {
                Event::Data(K::In, bytes) => {
                    pump.send(K::Out, &bytes);
                }
                Event::Eof(K::In) => break,
                other => panic!("{other:?}"),
            }
        }
        pump.remove(K::Out);
        let mut buf = [0u8; 16];
        let n = nix::unistd::read(&r2, &mut buf).unwrap();
        got.extend_from_slice(&buf[..n]);
        assert_eq!(got, b"hello");
    }

    #[test]
    fn a_sink_nobody_reads_queues_instead_of_blocking() {
        let (r, w) = pipe();
        let mut pump: Pump<K> = Pump::new(None).unwrap();
        pump.sink(K::Out, w).unwrap();
        // Far more than a pipe holds (64 KiB by default, see pipe(7)): a blocking write
        // would never return.
        let queued = pump.send(K::Out, &vec![b'x'; 1 << 20]).unwrap();
        assert!(queued > 0 && queued < 1 << 20, "{queued}");
        // A reader appears and takes some: the rest follows as the pipe drains.
        let mut buf = vec![0u8; 1 << 16];
        let mut total = 0;
        while total < 1 << 20 {
            total += nix::unistd::read(&r, &mut buf).unwrap();
            let _ = pump.next(Some(Duration::from_millis(10))).unwrap();
        }
        assert_eq!(pump.queued(K::Out), 0);
        drop(r);
        // And a reader that is gone closes the sink.
        pump.send(K::Out, b"more");
        assert!(!pump.has(K::Out));
        assert_eq!(
            pump.next(Some(Duration::ZERO)).unwrap(),
            Event::Closed(K::Out)
        );
    }

    #[test]
    fn two_entries_on_one_open_file_give_it_back_blocking_whatever_the_order() {
        // A pty master as `exec -t` uses it: read (its screen) and written (our keys) through
        // two dups of one open file, then handed on to a process that reads it blocking.
        let (r, w) = pipe();
        let flags = |fd: &OwnedFd| OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL).unwrap());
        let mut pump: Pump<K> = Pump::new(None).unwrap();
        pump.source(K::In, dup(r.as_fd()).unwrap()).unwrap();
        pump.source(K::Out, dup(r.as_fd()).unwrap()).unwrap();
        pump.remove(K::In);
        assert!(flags(&r).contains(OFlag::O_NONBLOCK), "still in use by Out");
        drop(pump);
        assert!(!flags(&r).contains(OFlag::O_NONBLOCK));
        drop(w);
    }

    #[test]
    fn the_descriptor_gets_its_blocking_mode_back() {
        let (r, w) = pipe();
        let mine = dup(w.as_fd()).unwrap();
        let mut pump: Pump<K> = Pump::new(None).unwrap();
        pump.sink(K::Out, mine).unwrap();
        let flags = |fd: &OwnedFd| OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL).unwrap());
        assert!(flags(&w).contains(OFlag::O_NONBLOCK), "shared with the dup");
        drop(pump);
        assert!(!flags(&w).contains(OFlag::O_NONBLOCK));
        drop(r);
    }
}
