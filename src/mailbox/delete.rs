//! Deleting the counted bytes of an mbox in place, after RCVD.
//!
//! The file keeps its inode, owner and mode. In the common case (nothing arrived
//! since the count) it is truncated to zero and fsynced: no data is copied. When a
//! writer that ignored the lock appended mail after the counted bytes, that mail is
//! shifted to the front and kept.
//!
//! It must never remove a byte past the counted prefix, and reports success only
//! after fsync. The shift is done in rounds of at most `counted` bytes, each made
//! durable before the next round overwrites its source, so that at every moment,
//! on disk, each byte that was not sent exists at least once: a kill or a power cut
//! halfway never loses a byte, but can leave a fragment of sent mail in front and
//! one piece (at most `counted` bytes) of unsent mail twice, inside a message.
//! Our signal handlers only set a flag, so no signal but SIGKILL stops it halfway.

use std::fs::File;
use std::os::unix::fs::FileExt;

use crate::limits::DELETE_MAX_ROUNDS;
use crate::session::DeleteError;

/// Remove the first `counted` bytes of `file`, moving what follows through
/// `buffer` (not empty). Returns how many bytes after them were kept.
///
/// A writer that ignores the lock and appends between the last look at the size
/// and the truncation loses what it appended in that instant; no code can close
/// that window against a writer that takes no lock, only keep it small.
///
/// `keep_alive` is called between pieces of work, to keep the locks fresh while
/// a large move and its fsyncs take their time.
pub fn delete_prefix(
    file: &File,
    counted: u64,
    buffer: &mut [u8],
    keep_alive: &dyn Fn(),
) -> Result<u64, DeleteError> {
    let mut progress = Progress {
        written: false,
        keep_alive,
    };
    let length = file
        .metadata()
        .map_err(|e| progress.error("cannot stat", e))?
        .len();
    if length
        .checked_sub(counted)
        .is_some_and(|tail| tail.div_ceil(counted) > DELETE_MAX_ROUNDS)
    {
        return Err(progress.fail(format!(
            "{} bytes were appended after the {counted} counted ones, too many to move safely",
            length - counted
        )));
    }
    let mut moved = 0u64;
    let mut rounds = 0u64;
    loop {
        // Appended by a writer that ignores the lock, perhaps still appending.
        let now = file
            .metadata()
            .map_err(|e| progress.error("cannot stat", e))?
            .len();
        let tail = match now.checked_sub(counted) {
            Some(tail) if tail >= moved => tail,
            _ => {
                return Err(progress.fail(format!(
                    "mailbox shrank to {now} bytes while mail was deleted"
                )))
            }
        };
        if tail == moved {
            break;
        }
        while moved < tail {
            rounds += 1;
            if rounds > DELETE_MAX_ROUNDS {
                return Err(progress.fail("mail kept being appended while it was moved".into()));
            }
            let round = counted.min(tail - moved);
            copy_within(file, counted + moved, moved, round, buffer, &mut progress)?;
            file.sync_data()
                .map_err(|e| progress.error("cannot fsync", e))?;
            (progress.keep_alive)();
            moved += round;
        }
    }
    file.set_len(moved)
        .map_err(|e| progress.error("cannot truncate", e))?;
    progress.written = true;
    file.sync_all()
        .map_err(|e| progress.error("cannot fsync", e))?;
    Ok(moved)
}

/// Whether the file was changed yet: an error before that leaves it untouched.
struct Progress<'k> {
    written: bool,
    keep_alive: &'k dyn Fn(),
}

impl Progress<'_> {
    fn fail(&self, why: String) -> DeleteError {
        if self.written {
            DeleteError::Incomplete(why)
        } else {
            DeleteError::Untouched(why)
        }
    }

    fn error(&self, what: &str, error: std::io::Error) -> DeleteError {
        self.fail(format!("{what}: {error}"))
    }
}

/// Copy `length` bytes at `from` to `to` (< `from`) inside `file`.
fn copy_within(
    file: &File,
    from: u64,
    to: u64,
    length: u64,
    buffer: &mut [u8],
    progress: &mut Progress,
) -> Result<(), DeleteError> {
    let mut done = 0u64;
    while done < length {
        let want = buffer.len().min((length - done) as usize);
        file.read_exact_at(&mut buffer[..want], from + done)
            .map_err(|e| progress.error("cannot read appended mail", e))?;
        progress.written = true;
        file.write_all_at(&buffer[..want], to + done)
            .map_err(|e| progress.error("cannot move appended mail", e))?;
        done += want as u64;
        (progress.keep_alive)();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::MAILBOX_CHUNK;
    use std::io::{Read, Seek, Write};

    fn after_delete(content: &[u8], counted: u64) -> (Result<u64, DeleteError>, Vec<u8>) {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(content).unwrap();
        let result = delete_prefix(&file, counted, &mut vec![0; MAILBOX_CHUNK], &|| {});
        let mut left = Vec::new();
        file.rewind().unwrap();
        file.read_to_end(&mut left).unwrap();
        (result, left)
    }

    #[test]
    fn exactly_the_counted_bytes_go() {
        assert_eq!(after_delete(b"abc", 3), (Ok(0), vec![]));
        assert_eq!(after_delete(b"abcdef", 3), (Ok(3), b"def".to_vec()));
        // A tail longer than the counted bytes moves in several rounds.
        assert_eq!(
            after_delete(b"abcdefghijk", 3),
            (Ok(8), b"defghijk".to_vec())
        );
        let long: Vec<u8> = (0..3 * MAILBOX_CHUNK + 7).map(|i| i as u8).collect();
        let counted = MAILBOX_CHUNK as u64 + 5;
        let kept = long.len() as u64 - counted;
        assert_eq!(
            after_delete(&long, counted),
            (Ok(kept), long[counted as usize..].to_vec())
        );
    }

    #[test]
    fn a_shorter_file_is_left_alone() {
        let (result, left) = after_delete(b"ab", 3);
        assert!(matches!(result, Err(DeleteError::Untouched(_))));
        assert_eq!(left, b"ab");
    }

    #[test]
    fn too_much_appended_mail_is_left_alone() {
        let content = vec![b'x'; 2 + 2 * DELETE_MAX_ROUNDS as usize + 1];
        let (result, left) = after_delete(&content, 2);
        assert!(matches!(result, Err(DeleteError::Untouched(_))));
        assert_eq!(left, content);
    }
}
