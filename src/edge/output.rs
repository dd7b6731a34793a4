//! Writing to the client on fd 1: replies are queued and flushed before pop1d waits
//! for input; mail data is written straight through. A client that stops reading
//! for longer than the timeout gets a `TimedOut` error, found with poll(2) on a
//! non-blocking descriptor, so the session can end cleanly and release its locks.
//!
//! Nothing but protocol is ever written here.

use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::PollFlags;
use nix::sys::stat::{fstat, SFlag};

use super::signals::{Stop, Wait};
use crate::limits;
use crate::session::{Reply, StopRequested};

pub struct ClientOutput {
    stdout: io::Stdout,
    queued: Vec<u8>,
    timeout: Duration,
    stop: Stop,
    /// The descriptor's flags before we made it non-blocking, restored on drop.
    restore: Option<OFlag>,
}

impl ClientOutput {
    pub fn stdout(timeout: Duration, stop: Stop) -> ClientOutput {
        let stdout = io::stdout();
        let restore = make_nonblocking(stdout.as_fd());
        ClientOutput {
            stdout,
            queued: Vec::with_capacity(256),
            timeout,
            stop,
            restore,
        }
    }

    pub fn queue(&mut self, reply: &Reply) {
        reply.encode(&mut self.queued);
    }

    fn write_once(&mut self, data: &[u8]) -> io::Result<usize> {
        let mut deadline = None;
        loop {
            if self.stop.requested() {
                return Err(io::Error::other(StopRequested));
            }
            match nix::unistd::write(self.stdout.as_fd(), data) {
                Ok(written) => return Ok(written),
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => {}
                Err(errno) => return Err(errno.into()),
            }
            let deadline = *deadline.get_or_insert_with(|| Instant::now() + self.timeout);
            match self
                .stop
                .wait(self.stdout.as_fd(), PollFlags::POLLOUT, deadline)
            {
                Wait::Ready => {}
                Wait::TimedOut => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "client stopped reading",
                    ))
                }
                Wait::Stopped => return Err(io::Error::other(StopRequested)),
                Wait::Failed(errno) => return Err(errno.into()),
            }
        }
    }

    fn write_all_now(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let written = self.write_once(data)?;
            data = &data[written..];
        }
        Ok(())
    }
}

impl Write for ClientOutput {
    /// Mail data: queued replies first, then the data itself, unbuffered.
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.flush()?;
        self.write_once(data)
    }

    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        self.flush()?;
        self.write_all_now(data)
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.queued.is_empty() {
            return Ok(());
        }
        let queued = std::mem::take(&mut self.queued);
        let result = self.write_all_now(&queued);
        self.queued = queued;
        self.queued.clear();
        result
    }
}

impl ClientOutput {
    /// On a socket, send everything queued and then FIN. True when fd 1 is a socket.
    pub fn shutdown_write(&mut self) -> bool {
        let _ = self.flush();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&self.stdout.as_fd());
        nix::sys::socket::shutdown(fd, nix::sys::socket::Shutdown::Write) != Err(Errno::ENOTSOCK)
    }
}

impl Drop for ClientOutput {
    fn drop(&mut self) {
        let _ = self.flush();
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
