//! Asking for memory without aborting. Rust aborts the process when an ordinary
//! allocation fails, which under an address-space limit (xinetd's `rlimit_as`,
//! systemd's `LimitAS=`) would leave a dot-lock behind for minutes; so the large
//! allocations, a check for room before each stage, and the allocator's set-up
//! go through here.
//!
//! This module must never allocate infallibly itself.

use std::io;

use crate::limits::ALLOCATION_HEADROOM;

/// An empty vector with room for `capacity` bytes, or an error instead of an abort.
pub fn empty_with_room(capacity: usize) -> io::Result<Vec<u8>> {
    let mut buffer = Vec::new();
    buffer
        .try_reserve_exact(capacity)
        .map_err(|_| io::Error::from(io::ErrorKind::OutOfMemory))?;
    Ok(buffer)
}

/// Whether [`ALLOCATION_HEADROOM`] could still be had; it is given back at once.
pub fn headroom_left() -> io::Result<()> {
    empty_with_room(ALLOCATION_HEADROOM).map(drop)
}

/// Make every thread allocate from the one main malloc arena. glibc gives each
/// new thread an arena of its own, reserving 64 MiB of address space for it;
/// under an address-space limit that fails, and the thread's first allocation
/// (Rust's own thread-local bookkeeping) then aborts pop1d with its locks held.
/// pop1d's helper threads allocate next to nothing, so sharing costs nothing.
/// Call before any thread is started.
pub fn one_malloc_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt(3) only sets a tunable of glibc's allocator; it takes two
    // integers and no pointer, and no other thread exists yet to race with it.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}
