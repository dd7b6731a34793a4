//! Asking for memory without aborting. Rust aborts the process when an ordinary
//! allocation fails, and so does a thread that cannot map its signal stack;
//! under an address-space limit (xinetd's `rlimit_as`, systemd's `LimitAS=`) that
//! would leave a dot-lock behind for minutes. So the large allocations, a check
//! for room before each stage and before each helper thread, and the
//! allocator's set-up go through here.
//!
//! This module must never allocate infallibly itself.

use std::io;

use crate::limits::{ALLOCATION_HEADROOM, MMAP_THRESHOLD, THREAD_STACK};

/// An empty vector with room for `capacity` bytes, or an error instead of an abort.
pub fn empty_with_room(capacity: usize) -> io::Result<Vec<u8>> {
    let mut buffer = Vec::new();
    buffer
        .try_reserve_exact(capacity)
        .map_err(|_| io::Error::from(io::ErrorKind::OutOfMemory))?;
    Ok(buffer)
}

/// Whether [`ALLOCATION_HEADROOM`] could still be had; it is given back at once.
/// After [`set_up_malloc`], an allocation this large is always a fresh mapping,
/// so this proves room in the address space, not just in malloc's free lists.
pub fn headroom_left() -> io::Result<()> {
    empty_with_room(ALLOCATION_HEADROOM).map(drop)
}

/// A builder for a helper thread, with a small stack, or `None` unless
/// [`headroom_left`] holds: a thread that cannot map its stack is only refused,
/// but one that cannot map Rust's signal stack after that aborts the process.
/// Every caller has a way to do without the thread.
pub fn helper_thread(name: &str) -> Option<std::thread::Builder> {
    headroom_left().ok()?;
    Some(
        std::thread::Builder::new()
            .name(name.into())
            .stack_size(THREAD_STACK),
    )
}

/// Set glibc's allocator up for running under an address-space limit. Call
/// before any thread is started.
///
/// - One arena: glibc gives each new thread an arena of its own, reserving
///   64 MiB of address space for it; under a limit that fails, and the thread's
///   first allocation (Rust's own thread-local bookkeeping) then aborts. pop1d's
///   helper threads allocate next to nothing, so sharing costs nothing.
/// - A fixed mmap threshold: glibc raises it as mapped blocks are freed, after
///   which large blocks come from the heap and [`headroom_left`] would prove
///   nothing about the room left for new mappings (thread stacks).
pub fn set_up_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt(3) only sets tunables of glibc's allocator; it takes two
    // integers and no pointer, and no other thread exists yet to race with it.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as libc::c_int);
    }
}
