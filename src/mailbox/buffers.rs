//! The memory of one mailbox transaction, taken all at once when the mailbox is
//! opened, before anything is locked and before its count is promised.
//!
//! Two checks guard against an abort under an address-space limit (xinetd's
//! `rlimit_as`, systemd's `LimitAS=`), which would kill pop1d on the spot and
//! leave its dot-lock behind for minutes:
//! - the buffers are reserved with `try_reserve`, so a shortfall is an error
//!   the caller turns into `-ERR`, with nothing locked;
//! - [`crate::memory::headroom_left`] then checks that the small allocations
//!   that follow in the transaction (paths, log lines, a lock file's name) will
//!   find room, since those abort when they fail.
//!
//! Counting, sending and moving appended mail allocate nothing after this.

use std::io;

use crate::limits::MAILBOX_CHUNK;
use crate::memory::{empty_with_room, headroom_left};

/// What counting, sending and deleting read and write through.
#[derive(Debug)]
pub struct Buffers {
    /// Mailbox bytes as read: the counting pass, the sending, and the moving of
    /// mail appended during the transaction. One page longer than a chunk, so
    /// that [`Buffers::read`] can begin on a page boundary.
    read: Vec<u8>,
    /// Wire bytes: empty, with room for one encoded chunk.
    wire: Vec<u8>,
}

/// The most wire bytes one chunk can become: every byte a bare LF, then CR LF.
pub const WIRE_CAPACITY: usize = 2 * MAILBOX_CHUNK + 2;

impl Buffers {
    /// Room to count and send, with [`crate::limits::ALLOCATION_HEADROOM`]
    /// still free for the rest of the transaction.
    pub fn allocate() -> io::Result<Buffers> {
        let mut read = empty_with_room(MAILBOX_CHUNK + PAGE)?;
        read.resize(MAILBOX_CHUNK + PAGE, 0);
        let wire = empty_with_room(WIRE_CAPACITY)?;
        headroom_left()?;
        Ok(Buffers { read, wire })
    }

    /// The read buffer, a chunk long, beginning on a page boundary: the kernel
    /// copies page cache pages into it whole, which costs measurably less than
    /// into a buffer that starts inside a page (a 1 GiB RETR, `perf`: the copy's
    /// share fell from about 35 % to about 20 %).
    pub fn read(&mut self) -> &mut [u8] {
        let start = self.read.as_ptr().align_offset(PAGE).min(PAGE);
        &mut self.read[start..start + MAILBOX_CHUNK]
    }

    /// Both buffers at once: the read buffer as [`Buffers::read`] gives it, and
    /// the wire buffer.
    pub fn both(&mut self) -> (&mut [u8], &mut Vec<u8>) {
        let start = self.read.as_ptr().align_offset(PAGE).min(PAGE);
        (&mut self.read[start..start + MAILBOX_CHUNK], &mut self.wire)
    }
}

/// The page size the read buffer is aligned to (x86-64's and most arm64's).
const PAGE: usize = 4096;
