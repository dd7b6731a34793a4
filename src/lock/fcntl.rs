//! The fcntl lock: a Linux open-file-description lock (`F_OFD_SETLK`) on the whole
//! file. It conflicts with the classic POSIX `F_SETLK` locks that procmail, Postfix's
//! local(8), mutt and Dovecot take, but belongs to the open file description, not
//! the process, so closing some other descriptor of the file never drops it.

use std::fs::File;
use std::io;

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg};

fn whole_file(kind: libc::c_short) -> libc::flock {
    // SAFETY: libc::flock is a C struct of plain integers, for which all-zero bytes
    // are a valid value (start 0, length 0 = to the end, pid 0 as OFD locks require).
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = kind;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    lock
}

/// Try once to take a write lock. `Ok(false)` when somebody else holds a lock.
pub fn try_lock(file: &File) -> io::Result<bool> {
    match fcntl(
        file,
        FcntlArg::F_OFD_SETLK(&whole_file(libc::F_WRLCK as libc::c_short)),
    ) {
        Ok(_) => Ok(true),
        Err(Errno::EAGAIN | Errno::EACCES) => Ok(false),
        Err(errno) => Err(errno.into()),
    }
}

/// Release the lock (closing the last descriptor would release it as well).
pub fn unlock(file: &File) {
    let _ = fcntl(
        file,
        FcntlArg::F_OFD_SETLK(&whole_file(libc::F_UNLCK as libc::c_short)),
    );
}
