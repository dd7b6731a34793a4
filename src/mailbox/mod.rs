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
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use buffers::Buffers;
pub use crlf::{Counter, Encoder};
pub use template::Template;

use crate::fileid::{FileId, Stamp};
use crate::limits::RCVD_CHECKED_TAIL;
use crate::lock::{self, LockError, LockedFile};
use crate::session::{Client, DeleteError, Mailbox, Mode, OpenError, SendError};

/// How often the mailbox may be found replaced after locking before giving up.
const REPLACED_RETRIES: usize = 3;

/// An open, locked, counted mbox; or a missing one, which is empty.
#[derive(Debug)]
pub struct Mbox {
    path: PathBuf,
    /// `None` when the file does not exist.
    held: Option<Held>,
    count: u64,
}

/// What a mailbox that exists holds while it is open.
#[derive(Debug)]
struct Held {
    locked: LockedFile,
    buffers: Buffers,
    /// The file's size when it was locked: the bytes that are counted and sent.
    size: u64,
    identity: FileId,
    stamp: Stamp,
    /// The last counted bytes, to see at RCVD that they still stand there.
    tail: Vec<u8>,
    mode: Mode,
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
                    // A missing mailbox is an empty one; a missing directory
                    // is a mistyped template, which must not look empty.
                    if let Some(dir) = missing_directory(path) {
                        return Err(OpenError::Failed(format!(
                            "the mailbox directory {} does not exist",
                            dir.display()
                        )));
                    }
                    return Ok(Mbox {
                        path: path.into(),
                        held: None,
                        count: 0,
                    });
                }
                Err(error) => return Err(failed("cannot open", &error)),
            };
            // Before locking: without memory, nobody else is kept waiting.
            let mut buffers = Buffers::allocate().map_err(|e| failed("no room for buffers", &e))?;
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
            let identity = FileId::of(&meta);
            // While we waited for the lock the file may have been replaced (a
            // rename over it); then lock what the path names now.
            if !names_file(path, identity) {
                continue;
            }
            let size = meta.len();
            let count = count(locked.file(), size, buffers.read(), &|| locked.keep_alive())
                .map_err(|e| failed("cannot read", &e))?;
            let tail = last_bytes(locked.file(), size).map_err(|e| failed("cannot read", &e))?;
            return Ok(Mbox {
                path: path.into(),
                held: Some(Held {
                    locked,
                    buffers,
                    size,
                    identity,
                    stamp: Stamp::of(&meta),
                    tail,
                    mode,
                }),
                count,
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
    if FileId::of(&opened) != FileId::of(&seen) {
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

/// The directory of `path`, when it does not exist.
fn missing_directory(path: &Path) -> Option<&Path> {
    let dir = path.parent()?;
    match std::fs::metadata(dir) {
        Err(error) if error.kind() == io::ErrorKind::NotFound => Some(dir),
        _ => None,
    }
}

/// True when `path` still names the file with this (device, inode).
fn names_file(path: &Path, identity: FileId) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|meta| FileId::of(&meta) == identity)
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

/// The octets on the wire for the first `size` bytes of `file`, keeping the
/// locks fresh between chunks (a large mailbox on a slow disk takes a while).
fn count(file: &File, size: u64, buffer: &mut [u8], keep_alive: &dyn Fn()) -> io::Result<u64> {
    let mut counter = Counter::default();
    let mut offset = 0;
    while offset < size {
        let chunk = read_chunk(file, offset..size, buffer)?;
        counter.feed(chunk);
        offset += chunk.len() as u64;
        keep_alive();
    }
    Ok(counter.total())
}

/// The last [`RCVD_CHECKED_TAIL`] of the first `size` bytes of `file`, or all
/// of them when there are fewer.
fn last_bytes(file: &File, size: u64) -> io::Result<Vec<u8>> {
    let len = size.min(RCVD_CHECKED_TAIL as u64);
    let mut tail = vec![0; len as usize];
    file.read_exact_at(&mut tail, size - len)?;
    Ok(tail)
}

/// What stands where a message would begin in an mbox.
const MESSAGE_START: &[u8] = b"From ";

/// The same after the blank line a writer adds when the mailbox did not end
/// with a newline (Dovecot and mutt do).
const MESSAGE_START_AFTER_NEWLINE: &[u8] = b"\nFrom ";

impl Held {
    /// Why what is at the mailbox's path now is not what was counted and sent,
    /// if it is not. Costs a few system calls, whatever the mailbox's size.
    fn changed_since_count(&self, path: &Path) -> Option<String> {
        if !names_file(path, self.identity) {
            return Some("another file now stands at the mailbox's path".into());
        }
        let now = match self.locked.file().metadata() {
            Ok(now) => now,
            Err(error) => return Some(format!("cannot stat: {error}")),
        };
        // Same size but touched: a writer that ignores the lock rewrote it in
        // place, and what is there now was not what was sent.
        if now.len() == self.size && Stamp::of(&now) != self.stamp {
            return Some(
                "the mailbox was changed in place while it was locked (mtime or ctime moved)"
                    .into(),
            );
        }
        // Larger: mail appended after the counted bytes is kept, but only if the
        // counted bytes still end where they did and a whole new message start
        // follows. A rewrite that ignored the lock moves them; a few bytes that
        // are not yet `From ` may be an append still under way. Either way
        // nothing is deleted, and the mail comes again next time.
        if now.len() > self.size {
            let tail = self.tail.len() as u64;
            let after = (now.len() - self.size).min(MESSAGE_START_AFTER_NEWLINE.len() as u64);
            let mut seen = vec![0; (tail + after) as usize];
            if let Err(error) = self
                .locked
                .file()
                .read_exact_at(&mut seen, self.size - tail)
            {
                return Some(format!("cannot read: {error}"));
            }
            let (before, start) = seen.split_at(self.tail.len());
            let new_message =
                start.starts_with(MESSAGE_START) || start.starts_with(MESSAGE_START_AFTER_NEWLINE);
            if before != self.tail.as_slice() || !new_message {
                return Some(
                    "the mailbox was rewritten while it was locked (the counted mail no longer ends where it did)"
                        .into(),
                );
            }
        }
        None
    }
}

impl Mailbox for Mbox {
    fn count(&self) -> u64 {
        self.count
    }

    fn send(&mut self, client: &mut dyn Client) -> Result<(), SendError> {
        let Some(held) = &mut self.held else {
            return Ok(());
        };
        let transfer = send::Transfer {
            file: held.locked.file(),
            size: held.size,
            count: self.count,
            uncache: held.mode == Mode::Rdel,
        };
        let locked = &held.locked;
        transfer
            .run(client, &mut held.buffers, &mut || locked.keep_alive())
            .map_err(|error| match error {
                SendError::Mailbox(why) => {
                    SendError::Mailbox(format!("{}: {why}", self.path.display()))
                }
                client => client,
            })
    }

    fn keep_alive(&mut self) {
        if let Some(held) = &self.held {
            held.locked.keep_alive();
        }
    }

    fn delete_sent(self) -> Result<u64, DeleteError> {
        let Some(mut held) = self.held else {
            return Ok(0);
        };
        if held.size == 0 {
            return Ok(0);
        }
        if let Some(why) = held.changed_since_count(&self.path) {
            return Err(DeleteError::Untouched(why));
        }
        let locked = &held.locked;
        delete::delete_prefix(locked.file(), held.size, held.buffers.read(), &|| {
            locked.keep_alive()
        })
    }
}
