//! Deleting the counted bytes of an mbox in place, after RCVD.
//!
//! The file keeps its inode, owner and mode: in the common case (nothing arrived
//! since the count) it is truncated to zero, in constant time. When mail was
//! appended after the counted bytes by a writer that ignored the lock, that mail is
//! moved to the front and kept. It must never remove a byte past the counted prefix,
//! and reports success only after fsync.
//!
//! Our signal handlers only set a flag, so SIGTERM, SIGHUP and SIGINT cannot stop
//! this half-way; SIGKILL can, and then the worst case is counted mail that is sent
//! again, never lost mail: the kept tail is copied forward before the file is cut.

use std::fs::File;
use std::os::unix::fs::FileExt;

use crate::limits::MAILBOX_CHUNK;

/// Remove the first `counted` bytes of `file`. Returns how many bytes after them
/// were kept.
pub fn delete_prefix(file: &File, counted: u64) -> Result<u64, String> {
    let mut length = file.metadata().map_err(io("cannot stat"))?.len();
    if length < counted {
        return Err(format!("mailbox shrank from {counted} to {length} bytes"));
    }
    let mut kept = 0u64;
    let mut buffer = Vec::new();
    // Copy what follows the counted bytes to the front; loop in case a writer that
    // ignores the lock is still appending while we copy.
    while counted + kept < length {
        if buffer.is_empty() {
            buffer = vec![0u8; MAILBOX_CHUNK];
        }
        let got = file
            .read_at(&mut buffer, counted + kept)
            .map_err(io("cannot read"))?;
        if got == 0 {
            break;
        }
        file.write_all_at(&buffer[..got], kept)
            .map_err(io("cannot write"))?;
        kept += got as u64;
        length = length.max(file.metadata().map_err(io("cannot stat"))?.len());
    }
    file.set_len(kept).map_err(io("cannot truncate"))?;
    file.sync_all().map_err(io("cannot fsync"))?;
    Ok(kept)
}

fn io(what: &'static str) -> impl Fn(std::io::Error) -> String {
    move |error| format!("{what}: {error}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, Write};

    fn after_delete(content: &[u8], counted: u64) -> (Result<u64, String>, Vec<u8>) {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(content).unwrap();
        let result = delete_prefix(&file, counted);
        let mut left = Vec::new();
        file.rewind().unwrap();
        file.read_to_end(&mut left).unwrap();
        (result, left)
    }

    #[test]
    fn exactly_the_counted_bytes_go() {
        assert_eq!(after_delete(b"abc", 3), (Ok(0), vec![]));
        assert_eq!(after_delete(b"abcdef", 3), (Ok(3), b"def".to_vec()));
        let long: Vec<u8> = (0..3 * MAILBOX_CHUNK + 7).map(|i| i as u8).collect();
        assert_eq!(
            after_delete(&long, 5),
            (Ok(long.len() as u64 - 5), long[5..].to_vec())
        );
    }

    #[test]
    fn a_shorter_file_is_left_alone() {
        let (result, left) = after_delete(b"ab", 3);
        assert!(result.is_err());
        assert_eq!(left, b"ab");
    }
}
