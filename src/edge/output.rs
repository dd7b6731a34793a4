//! Writing to the client on fd 1: replies are queued and flushed before pop1d waits
//! for input; mail data is written straight through. What a failed write means
//! is decided here and handed on as a plain [`WriteFailure`]: a client that stops
//! reading for longer than the timeout (found with poll(2) on a non-blocking
//! descriptor), a stop signal, or a connection gone. After a failure nothing more
//! is written, and the session ends cleanly and releases its locks.
//!
//! Nothing but protocol is ever written here.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::PollFlags;
use nix::sys::stat::{fstat, SFlag};

use super::signals::{Stop, Wait};
use crate::limits;
use crate::session::{Client, Reply, WriteFailure};

pub struct ClientOutput {
    stdout: io::Stdout,
    queued: Vec<u8>,
    timeout: Duration,
    /// How often a long wait for the client wakes to keep the mailbox's locks.
    tick: Duration,
    stop: Stop,
    /// Set by the first failed write: nothing is written after it.
    failed: Option<WriteFailure>,
    /// The descriptor's flags before we made it non-blocking, restored on drop.
    restore: Option<OFlag>,
}

impl ClientOutput {
    pub fn stdout(timeout: Duration, tick: Duration, stop: Stop) -> ClientOutput {
        let stdout = io::stdout();
        let restore = make_nonblocking(stdout.as_fd());
        ClientOutput {
            stdout,
            queued: Vec::with_capacity(256),
            timeout,
            tick,
            stop,
            failed: None,
            restore,
        }
    }

    pub fn queue(&mut self, reply: &Reply) {
        reply.encode(&mut self.queued);
    }

    /// Write the queued replies. A reply is never dropped while the session goes
    /// on: a failure here ends the session.
    pub fn flush(&mut self, keep_alive: &mut dyn FnMut()) -> Result<(), WriteFailure> {
        if self.queued.is_empty() {
            return self.failed.map_or(Ok(()), Err);
        }
        let queued = std::mem::take(&mut self.queued);
        let result = self.write_all_now(&queued, keep_alive);
        self.queued = queued;
        self.queued.clear();
        result
    }

    fn write_all_now(
        &mut self,
        mut data: &[u8],
        keep_alive: &mut dyn FnMut(),
    ) -> Result<(), WriteFailure> {
        if let Some(failure) = self.failed {
            return Err(failure);
        }
        while !data.is_empty() {
            match self.write_once(data, keep_alive) {
                Ok(written) => data = &data[written..],
                Err(failure) => {
                    self.failed = Some(failure);
                    return Err(failure);
                }
            }
        }
        Ok(())
    }

    fn write_once(
        &mut self,
        data: &[u8],
        keep_alive: &mut dyn FnMut(),
    ) -> Result<usize, WriteFailure> {
        let mut deadline = None;
        loop {
            if self.stop.requested() {
                return Err(WriteFailure::Stopped);
            }
            match nix::unistd::write(self.stdout.as_fd(), data) {
                Ok(written) => return Ok(written),
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => {}
                Err(_) => return Err(WriteFailure::Gone),
            }
            let deadline = *deadline.get_or_insert_with(|| Instant::now() + self.timeout);
            match self.stop.wait_keeping_alive(
                self.stdout.as_fd(),
                PollFlags::POLLOUT,
                deadline,
                self.tick,
                keep_alive,
            ) {
                Wait::Ready => {}
                Wait::TimedOut => return Err(WriteFailure::TimedOut),
                Wait::Stopped => return Err(WriteFailure::Stopped),
                Wait::Failed(_) => return Err(WriteFailure::Gone),
            }
        }
    }

    /// On a socket, send everything queued and then FIN. True when fd 1 is a socket.
    pub fn shutdown_write(&mut self) -> bool {
        let _ = self.flush(&mut || {});
        let fd = std::os::fd::AsRawFd::as_raw_fd(&self.stdout.as_fd());
        nix::sys::socket::shutdown(fd, nix::sys::socket::Shutdown::Write) != Err(Errno::ENOTSOCK)
    }
}

/// Mail data: queued replies first, then the data itself, unbuffered.
impl Client for ClientOutput {
    fn write_data(
        &mut self,
        data: &[u8],
        keep_alive: &mut dyn FnMut(),
    ) -> Result<(), WriteFailure> {
        self.flush(keep_alive)?;
        self.write_all_now(data, keep_alive)
    }
}

impl Drop for ClientOutput {
    fn drop(&mut self) {
        if let Some(flags) = self.restore {
            let _ = fcntl(self.stdout.as_fd(), FcntlArg::F_SETFL(flags));
        }
    }
}

/// Make a pipe or socket non-blocking so a stalled reader can be timed out. A
/// terminal or a file is left as it is: they are never a remote client, and a
/// terminal's flags are shared with the shell. Returns the flags to restore.
fn make_nonblocking(fd: BorrowedFd<'_>) -> Option<OFlag> {
    let kind = SFlag::from_bits_truncate(fstat(fd).ok()?.st_mode) & SFlag::S_IFMT;
    if kind != SFlag::S_IFIFO && kind != SFlag::S_IFSOCK {
        return None;
    }
    if kind == SFlag::S_IFIFO {
        // A larger pipe means fewer wake-ups of writer and reader per mailbox;
        // refused (over the user's pipe quota) it simply stays as it was.
        let _ = fcntl(fd, FcntlArg::F_SETPIPE_SZ(limits::PIPE_BUFFER));
    }
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL).ok()?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK)).ok()?;
    Some(flags)
}
