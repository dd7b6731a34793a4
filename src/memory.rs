//! Asking for memory without aborting. Rust aborts the process when an ordinary
//! allocation fails; under an address-space limit (xinetd's `rlimit_as`,
//! systemd's `LimitAS=`) that would leave a dot-lock behind for minutes. So the
//! large allocations and the checks for room go through here.
//!
//! What each check guards:
//! - [`empty_with_room`]: a large buffer (a mailbox's read and wire buffers, a
//!   password hash's working memory) is reserved fallibly, and its failure is
//!   an `-ERR`, not an abort;
//! - [`headroom_left`]: before the greeting, and once a transaction's buffers
//!   are taken (before the mailbox is locked), that the small allocations that
//!   follow (paths, log lines, replies) will still find room.
//!
//! This module must never allocate infallibly itself.

use std::io;
use std::num::NonZeroUsize;

use nix::sys::mman::{mmap_anonymous, munmap, MapFlags, ProtFlags};

use crate::limits::ALLOCATION_HEADROOM;

/// An empty vector with room for `capacity` bytes, or an error instead of an abort.
pub fn empty_with_room(capacity: usize) -> io::Result<Vec<u8>> {
    let mut buffer = Vec::new();
    buffer
        .try_reserve_exact(capacity)
        .map_err(|_| io::Error::from(io::ErrorKind::OutOfMemory))?;
    Ok(buffer)
}

/// Whether [`ALLOCATION_HEADROOM`] could still be mapped. A mapping of its own,
/// given back at once, since malloc could serve a block of that size from
/// memory it already has, which proves nothing about new mappings.
pub fn headroom_left() -> io::Result<()> {
    let length = NonZeroUsize::new(ALLOCATION_HEADROOM).expect("a non-zero constant");
    // SAFETY: a fresh private anonymous mapping at an address of the kernel's
    // choosing overlaps nothing of ours; it is never read or written, and it is
    // unmapped right here with the same address and length.
    unsafe {
        let room = mmap_anonymous(
            None,
            length,
            ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
            MapFlags::MAP_PRIVATE | MapFlags::MAP_NORESERVE,
        )
        .map_err(|_| io::Error::from(io::ErrorKind::OutOfMemory))?;
        munmap(room, length.get())?;
    }
    Ok(())
}
