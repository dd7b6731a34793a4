//! Asking for memory without aborting. Rust aborts the process when an ordinary
//! allocation fails, and so does a thread that cannot map its signal stack;
//! under an address-space limit (xinetd's `rlimit_as`, systemd's `LimitAS=`) that
//! would leave a dot-lock behind for minutes. So the large allocations, the
//! checks for room, the helper threads and the allocator's set-up go through
//! here.
//!
//! This module must never allocate infallibly itself. Room is checked only while
//! no helper thread runs (before the greeting, and when a mailbox's buffers are
//! taken, before it is locked): a check holds its room for a moment, and a
//! thread starting in that moment could find none.

use std::io;
use std::num::NonZeroUsize;

use nix::sys::mman::{mmap_anonymous, munmap, MapFlags, ProtFlags};

use crate::limits::{ALLOCATION_HEADROOM, MALLOC_MMAP_THRESHOLD, THREAD_STACK};

/// An empty vector with room for `capacity` bytes, or an error instead of an abort.
pub fn empty_with_room(capacity: usize) -> io::Result<Vec<u8>> {
    let mut buffer = Vec::new();
    buffer
        .try_reserve_exact(capacity)
        .map_err(|_| io::Error::from(io::ErrorKind::OutOfMemory))?;
    Ok(buffer)
}

/// Whether [`ALLOCATION_HEADROOM`] could still be mapped: the room that the helper
/// threads' stacks and the small allocations after this point need. A mapping
/// of its own, given back at once, since malloc could serve a block of that size
/// from memory it already has, which proves nothing about new mappings.
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

/// A helper thread with a small stack (Rust's default of 2 MiB would take room
/// the session needs). Start one only after [`headroom_left`] held with no
/// other helper running, and have a way to do without it should it not start.
pub fn helper_thread(name: &str) -> std::thread::Builder {
    std::thread::Builder::new()
        .name(name.into())
        .stack_size(THREAD_STACK)
}

/// Set glibc's allocator up for pop1d. Call before any thread is started.
///
/// - One arena: glibc gives each new thread an arena of its own, reserving
///   64 MiB of address space for it; under an address-space limit that fails,
///   and the thread's first allocation (Rust's own thread-local bookkeeping)
///   then aborts. pop1d's helper threads allocate next to nothing, so sharing
///   costs nothing.
/// - A fixed mmap threshold of [`MALLOC_MMAP_THRESHOLD`]: the mailbox buffers
///   then come from the heap rather than fresh mappings, which sends a mailbox
///   about 2 % faster on one CPU.
pub fn set_up_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt(3) only sets tunables of glibc's allocator; it takes two
    // integers and no pointer, and no other thread exists yet to race with it.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_MMAP_THRESHOLD, MALLOC_MMAP_THRESHOLD as libc::c_int);
    }
}
