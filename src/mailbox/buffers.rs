//! The memory of one mailbox transaction, taken all at once when the mailbox is
//! opened, before its count is promised to the client.
//!
//! The buffers are taken through [`crate::memory`], never with an allocation that
//! aborts on failure: under a tight address-space limit (xinetd's `rlimit_as`,
//! systemd's `LimitAS=`) that would kill pop1d on the spot and leave its dot-lock
//! behind for minutes. A shortfall is an error the caller turns into `-ERR`,
//! before anything is locked.

use std::io;

use crate::limits::{MAILBOX_CHUNK, SEND_BUFFERS};
use crate::memory::{empty_with_room, headroom_left};

/// What counting, sending and deleting read and write through.
#[derive(Debug)]
pub struct Buffers {
    /// Mailbox bytes as read: the counting pass, the sending's reader, and the
    /// moving of mail appended during the transaction.
    pub read: Vec<u8>,
    /// Wire bytes, empty with room for one encoded chunk each. One is enough to
    /// send; more let a second thread read ahead. Until the sending, the first
    /// also serves the second half of a counting pass in two threads.
    pub wire: Vec<Vec<u8>>,
}

/// The most wire bytes one chunk can become: every byte a bare LF, then CR LF.
pub const WIRE_CAPACITY: usize = 2 * MAILBOX_CHUNK + 2;

impl Buffers {
    /// Room to count and send, with [`SEND_BUFFERS`] wire buffers when
    /// `read_ahead` and they can be had, else one; and with
    /// [`crate::limits::ALLOCATION_HEADROOM`] still free for the rest of the
    /// transaction.
    pub fn allocate(read_ahead: bool) -> io::Result<Buffers> {
        let mut read = empty_with_room(MAILBOX_CHUNK)?;
        read.resize(MAILBOX_CHUNK, 0);
        let mut wire = Vec::with_capacity(SEND_BUFFERS);
        wire.push(empty_with_room(WIRE_CAPACITY)?);
        headroom_left()?;
        while read_ahead && wire.len() < SEND_BUFFERS {
            // Sending in one thread needs no more.
            let Ok(buffer) = empty_with_room(WIRE_CAPACITY) else {
                break;
            };
            wire.push(buffer);
            if headroom_left().is_err() {
                wire.pop();
                break;
            }
        }
        Ok(Buffers { read, wire })
    }
}
