//! The fcntl lock: a Linux open-file-description lock (`F_OFD_SETLK`) on the whole
//! file. It conflicts with the classic POSIX `F_SETLK` locks that procmail, Postfix's
//! local(8), mutt and Dovecot take, but belongs to the open file description, not
//! the process, so closing some other descriptor of the file never drops it.

use std::fs::File;
use std::io;

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg};

fn whole_file(kind: libc::c_short) -> libc::flock {
    // Start 0 and length 0: the whole file, however it grows; pid 0, as OFD
    // locks require.
    libc::flock {
        l_type: kind,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    }
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
