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
    /// How often a long wait for the client wakes to keep the mailbox's locks.
    tick: Duration,
    stop: Stop,
}

impl ClientInput {
    pub fn stdin(timeout: Duration, tick: Duration, stop: Stop) -> ClientInput {
        ClientInput {
            stdin: std::io::stdin(),
            buffer: LineBuffer::default(),
            timeout,
            tick,
            stop,
        }
    }

    /// Begin with input that was already read (by another process, before a
    /// login), as if it had just arrived. At most one input buffer of it.
    pub fn with_unread(mut self, unread: &[u8]) -> ClientInput {
        let space = self.buffer.space();
        let n = space.len().min(unread.len());
        space[..n].copy_from_slice(&unread[..n]);
        self.buffer.filled(n);
        self
    }

    /// The next line or event that needs no waiting: one already read, or a
    /// signal's request to stop. `None` when pop1d must wait for the client.
    pub fn ready(&mut self) -> Option<Input> {
        // Before lines already read, too: a client that sent a long script
        // must not keep pop1d running after a signal.
        if self.stop.requested() {
            return Some(Input::Terminated);
        }
        match self.buffer.next_line() {
            Next::Line(range) => Some(Input::Line(range)),
            Next::TooLong => Some(Input::TooLong),
            Next::NeedMore => None,
        }
    }

    /// Wait for the next line or event, calling `keep_alive` now and then.
    pub fn wait(&mut self, keep_alive: &mut dyn FnMut()) -> Input {
        let deadline = Instant::now() + self.timeout;
        loop {
            if let Some(input) = self.ready() {
                return input;
            }
            match self.stop.wait_keeping_alive(
                self.stdin.as_fd(),
                PollFlags::POLLIN,
                deadline,
                self.tick,
                keep_alive,
            ) {
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

    /// Pause (the authentication delay), ending early if a signal asks pop1d
    /// to stop; the next [`ClientInput::ready`] then says so.
    pub fn pause(&self, pause: Duration) {
        self.stop.sleep(pause);
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

    /// What was read past the last line handed out.
    pub fn unread(&self) -> &[u8] {
        self.buffer.unread()
    }

    pub fn line(&self, range: Range<usize>) -> &[u8] {
        self.buffer.line(range)
    }
}
