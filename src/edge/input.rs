//! Reading client lines from fd 0 with an idle timeout, using poll(2), so that a
//! timeout or a signal ends the session through the normal path that releases
//! every lock (never alarm()).

use std::ops::Range;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::PollFlags;

use super::signals::{Stop, Wait};
use crate::lines::{LineBuffer, Next};

/// What the client did next.
#[derive(Debug)]
pub enum Input {
    Line(Range<usize>),
    TooLong,
    EndOfInput,
    TimedOut,
    /// A signal asked us to stop.
    Terminated,
    Failed(std::io::Error),
}

pub struct ClientInput {
    stdin: std::io::Stdin,
    buffer: LineBuffer,
    timeout: Duration,
    stop: Stop,
}

impl ClientInput {
    pub fn stdin(timeout: Duration, stop: Stop) -> ClientInput {
        ClientInput {
            stdin: std::io::stdin(),
            buffer: LineBuffer::default(),
            timeout,
            stop,
        }
    }

    /// The next line or event. `before_waiting` runs before the first blocking wait,
    /// so queued replies reach the client before we wait for its answer.
    pub fn next(&mut self, mut before_waiting: impl FnMut()) -> Input {
        let mut deadline = None;
        loop {
            // Before lines already read, too: a client that sent a long script
            // must not keep pop1d running after a signal.
            if self.stop.requested() {
                return Input::Terminated;
            }
            match self.buffer.next_line() {
                Next::Line(range) => return Input::Line(range),
                Next::TooLong => return Input::TooLong,
                Next::NeedMore => {}
            }
            let deadline = *deadline.get_or_insert_with(|| {
                before_waiting();
                Instant::now() + self.timeout
            });
            match self
                .stop
                .wait(self.stdin.as_fd(), PollFlags::POLLIN, deadline)
            {
                Wait::Ready => {}
                Wait::TimedOut => return Input::TimedOut,
                Wait::Stopped => return Input::Terminated,
                Wait::Failed(errno) => return Input::Failed(errno.into()),
            }
            match nix::unistd::read(self.stdin.as_fd(), self.buffer.space()) {
                Ok(0) => return Input::EndOfInput,
                Ok(read) => self.buffer.filled(read),
                Err(Errno::EAGAIN | Errno::EINTR) => {}
                // A reset connection is the client going away.
                Err(Errno::ECONNRESET) => return Input::EndOfInput,
                Err(errno) => return Input::Failed(errno.into()),
            }
        }
    }

    /// Read and drop what the client still sends, until it closes, `limit` passes
    /// or `most` bytes came. Closing a socket with unread input makes the kernel
    /// reset the connection, and a reset can destroy our last reply on its way.
    pub fn drain(&mut self, limit: Duration, most: usize) {
        let deadline = Instant::now() + limit;
        let mut dropped = 0;
        while dropped < most
            && self
                .stop
                .wait(self.stdin.as_fd(), PollFlags::POLLIN, deadline)
                == Wait::Ready
        {
            match nix::unistd::read(self.stdin.as_fd(), self.buffer.space()) {
                Ok(0) => return,
                Ok(read) => {
                    dropped += read;
                    self.buffer.discard();
                }
                Err(Errno::EAGAIN | Errno::EINTR) => {}
                Err(_) => return,
            }
        }
    }

    pub fn line(&self, range: Range<usize>) -> &[u8] {
        self.buffer.line(range)
    }
}
