//! The flock(2) lock, through the `fs4` crate: what some MUAs and delivery agents
//! that never adopted fcntl locks use (Debian Policy allows flock in addition).

use std::fs::File;
use std::io;

use fs4::{FileExt, TryLockError};

/// Try once to take an exclusive flock. `Ok(false)` when somebody else holds one.
pub fn try_lock(file: &File) -> io::Result<bool> {
    // Named through the trait: std's own File::try_lock would shadow it.
    match FileExt::try_lock(file) {
        Ok(()) => Ok(true),
        Err(TryLockError::WouldBlock) => Ok(false),
        Err(TryLockError::Error(error)) => Err(error),
    }
}

pub fn unlock(file: &File) {
    let _ = FileExt::unlock(file);
}
