//! mbox mailboxes: from a user name to a path, opening without following links,
//! locking (through [`crate::lock`]), counting, sending, and deleting in place.
//!
//! It knows nothing of the protocol's states. It must never delete a byte beyond
//! what was counted and sent, never open anything but a regular file, and never
//! build a path from a name that [`crate::username::is_safe`] refuses.

mod buffers;
mod crlf;
mod delete;
mod send;
mod template;

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use buffers::Buffers;
pub use crlf::{Counter, Encoder};
pub use template::Template;

use crate::limits::{COUNT_IN_TWO_FROM, MAILBOX_CHUNK};
use crate::lock::{self, LockError, LockedFile};
use crate::memory::helper_thread;
use crate::session::{DeleteError, Mailbox, Mode, OpenError, SendError};

/// How often the mailbox may be found replaced after locking before giving up.
const REPLACED_RETRIES: usize = 3;

/// An open, locked, counted mbox; or a missing one, which is empty.
#[derive(Debug)]
pub struct Mbox {
    path: PathBuf,
    /// `None` when the file does not exist.
    locked: Option<LockedFile>,
    /// `None` when the file does not exist.
    buffers: Option<Buffers>,
    /// The file's size when it was locked: the bytes that are counted and sent.
    size: u64,
    count: u64,
    identity: (u64, u64),
    /// Modification and change times when it was locked.
    stamp: Stamp,
    mode: Mode,
}

type Stamp = (i64, i64, i64, i64);

fn stamp(meta: &std::fs::Metadata) -> Stamp {
    (
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ctime(),
        meta.ctime_nsec(),
    )
}

impl Mbox {
    /// Open, lock and count the mailbox at `path`, for a RETR or an RDEL.
    pub fn open(path: &Path, locks: &lock::Config, mode: Mode) -> Result<Mbox, OpenError> {
        let failed = |what: &str, error: &dyn std::fmt::Display| {
            OpenError::Failed(format!("{}: {what}: {error}", path.display()))
        };
        for _ in 0..REPLACED_RETRIES {
            let file = match open_regular(path) {
                Ok(Some(file)) => file,
                Ok(None) => {
                    return Ok(Mbox {
                        path: path.into(),
                        locked: None,
                        buffers: None,
                        size: 0,
                        count: 0,
                        identity: (0, 0),
                        stamp: (0, 0, 0, 0),
                        mode,
                    })
                }
                Err(error) => return Err(failed("cannot open", &error)),
            };
            // Before locking: without memory, nobody else is kept waiting.
            let read_ahead = more_than_one_cpu();
            let mut buffers =
                Buffers::allocate(read_ahead).map_err(|e| failed("no room for buffers", &e))?;
            let locked = match lock::lock(file, path, locks) {
                Ok(locked) => locked,
                Err(LockError::Busy) => return Err(OpenError::Busy),
                Err(LockError::Cancelled) => {
                    return Err(failed("not locked", &LockError::Cancelled))
                }
                Err(error) => return Err(failed("cannot lock", &error)),
            };
            let meta = locked
                .file()
                .metadata()
                .map_err(|e| failed("cannot stat", &e))?;
            let identity = (meta.dev(), meta.ino());
            // While we waited for the lock the file may have been replaced (a
            // rename over it); then lock what the path names now.
            if !names_file(path, identity) {
                continue;
            }
            let size = meta.len();
            let two_threads = size >= COUNT_IN_TWO_FROM && read_ahead;
            let count = count(locked.file(), size, two_threads, &mut buffers)
                .map_err(|e| failed("cannot read", &e))?;
            return Ok(Mbox {
                path: path.into(),
                locked: Some(locked),
                buffers: Some(buffers),
                size,
                count,
                identity,
                stamp: stamp(&meta),
                mode,
            });
        }
        Err(OpenError::Failed(format!(
            "{}: keeps being replaced",
            path.display()
        )))
    }
}

/// Open a mailbox for reading and writing, refusing a symbolic link at the last
/// component, a FIFO, a device, a directory, and a file with more than one name
/// (a hard link would let one user's RDEL empty another's mailbox; Postfix's
/// local(8) refuses them too). `Ok(None)` when it does not exist.
fn open_regular(path: &Path) -> io::Result<Option<File>> {
    // Look before opening, so that a device node is never opened at all.
    let seen = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error),
    };
    check_plain_file(&seen)?;
    // O_NONBLOCK: should a FIFO be swapped in meanwhile, opening must not hang.
    let file = match OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
    {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) if error.raw_os_error() == Some(libc::ELOOP) => {
            return Err(io::Error::other("is a symbolic link"))
        }
        Err(error) => return Err(error),
    };
    let opened = file.metadata()?;
    check_plain_file(&opened)?;
    if (opened.dev(), opened.ino()) != (seen.dev(), seen.ino()) {
        return Err(io::Error::other("was replaced while being opened"));
    }
    Ok(Some(file))
}

fn check_plain_file(meta: &std::fs::Metadata) -> io::Result<()> {
    if meta.file_type().is_symlink() {
        return Err(io::Error::other("is a symbolic link"));
    }
    if !meta.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    if meta.nlink() != 1 {
        return Err(io::Error::other(format!(
            "has {} hard links; refused",
            meta.nlink()
        )));
    }
    Ok(())
}

/// True when `path` still names the file with this (device, inode).
fn names_file(path: &Path, identity: (u64, u64)) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|meta| (meta.dev(), meta.ino()) == identity)
}

/// Read the next bytes of `range` (not empty) of `file`: as many as fit `buffer`.
fn read_chunk<'b>(
    file: &File,
    range: std::ops::Range<u64>,
    buffer: &'b mut [u8],
) -> io::Result<&'b [u8]> {
    let want = buffer
        .len()
        .min(usize::try_from(range.end - range.start).unwrap_or(usize::MAX));
    let got = file.read_at(&mut buffer[..want], range.start)?;
    if got == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "mailbox shrank",
        ));
    }
    Ok(&buffer[..got])
}

/// Whether this process may run on more than one CPU (its affinity mask and its
/// cgroup's CPU quota), so that work split between two threads can overlap; on
/// one CPU a second thread only adds hand-offs.
fn more_than_one_cpu() -> bool {
    std::thread::available_parallelism().is_ok_and(|cpus| cpus.get() > 1)
}

/// The octets on the wire for the first `size` bytes of `file`; with
/// `two_threads`, the two halves are counted at once.
fn count(file: &File, size: u64, two_threads: bool, buffers: &mut Buffers) -> io::Result<u64> {
    let Buffers { read, wire } = buffers;
    if !two_threads || size < 2 || wire.is_empty() {
        return Ok(count_range(file, 0..size, Counter::default(), read)?.total());
    }
    // The copy out of the page cache, most of the counting pass's time, then
    // runs on two CPUs. The second half is read into the first wire buffer,
    // which is idle until the sending.
    let half = size / 2;
    let mut before_half = [0u8];
    file.read_exact_at(&mut before_half, half - 1)?;
    let second_buffer = &mut wire[0];
    second_buffer.resize(MAILBOX_CHUNK, 0);
    let (first, second) = std::thread::scope(|scope| {
        let second = helper_thread("pop1d-count")
            .spawn_scoped(scope, || {
                count_range(
                    file,
                    half..size,
                    Counter::after(before_half[0]),
                    second_buffer,
                )
            })
            .ok();
        let first = count_range(file, 0..half, Counter::default(), read);
        let second = match second {
            Some(thread) => thread
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            // No thread could be started (a process or memory limit): count
            // it here.
            None => count_range(file, half..size, Counter::after(before_half[0]), read),
        };
        (first, second)
    });
    wire[0].clear();
    Ok(first?.followed_by(second?).total())
}

fn count_range(
    file: &File,
    range: std::ops::Range<u64>,
    mut counter: Counter,
    buffer: &mut [u8],
) -> io::Result<Counter> {
    let mut offset = range.start;
    while offset < range.end {
        let chunk = read_chunk(file, offset..range.end, buffer)?;
        counter.feed(chunk);
        offset += chunk.len() as u64;
    }
    Ok(counter)
}

impl Mailbox for Mbox {
    fn count(&self) -> u64 {
        self.count
    }

    fn send(&mut self, out: &mut dyn Write) -> Result<(), SendError> {
        let (Some(locked), Some(buffers)) = (&self.locked, &mut self.buffers) else {
            return Ok(());
        };
        let transfer = send::Transfer {
            file: locked.file(),
            size: self.size,
            count: self.count,
            uncache: self.mode == Mode::Rdel,
        };
        transfer
            .run(out, more_than_one_cpu(), buffers)
            .map_err(|error| match error {
                SendError::Mailbox(why) => {
                    SendError::Mailbox(format!("{}: {why}", self.path.display()))
                }
                client => client,
            })
    }

    fn delete_sent(self) -> Result<u64, DeleteError> {
        let (Some(locked), Some(mut buffers)) = (&self.locked, self.buffers) else {
            return Ok(0);
        };
        if self.size == 0 {
            return Ok(0);
        }
        if !names_file(&self.path, self.identity) {
            return Err(DeleteError::Untouched(
                "another file now stands at the mailbox's path".into(),
            ));
        }
        // Same size but touched: a writer that ignores the lock rewrote it in
        // place, and what is there now was not what was sent.
        let now = locked
            .file()
            .metadata()
            .map_err(|e| DeleteError::Untouched(format!("cannot stat: {e}")))?;
        if now.len() == self.size && stamp(&now) != self.stamp {
            return Err(DeleteError::Untouched(
                "the mailbox was changed in place while it was locked (mtime or ctime moved)"
                    .into(),
            ));
        }
        delete::delete_prefix(locked.file(), self.size, &mut buffers.read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_or_two_threads_count_the_same_across_the_middle() {
        for size in [2usize, 3, 8, 1 << 20, (1 << 20) + 1] {
            let half = size / 2;
            let cases: [(usize, &[u8]); 5] = [
                (half - 1, b"\r\n"),
                (half, b"\n"),
                (half - 1, b"\r"),
                (half.saturating_sub(2), b"\r\r\n"),
                (0, b""),
            ];
            for (at, bytes) in cases {
                let mut data: Vec<u8> = (0..size)
                    .map(|i| if i % 61 == 60 { b'\n' } else { b'a' })
                    .collect();
                let end = (at + bytes.len()).min(size);
                data[at..end].copy_from_slice(&bytes[..end - at]);
                let mut file = tempfile::tempfile().unwrap();
                file.write_all(&data).unwrap();
                let mut whole = Counter::default();
                whole.feed(&data);
                for two_threads in [false, true] {
                    let mut buffers = Buffers::allocate(true).unwrap();
                    assert_eq!(
                        count(&file, size as u64, two_threads, &mut buffers).unwrap(),
                        whole.total(),
                        "{size} bytes, {bytes:?} at {at}, two threads {two_threads}"
                    );
                }
            }
        }
    }
}
