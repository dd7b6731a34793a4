//! Sending the counted bytes of a locked mailbox to the client: one loop that
//! reads a chunk, encodes it and writes it, in the caller's one thread.
//!
//! It must never let more than the counted octets out, nor anything that follows
//! a read error, and it keeps memory flat: it allocates nothing, but reuses the
//! [`Buffers`] it is given, whatever the mailbox's size. Between chunks, and
//! while the client does not read, it keeps the locks fresh.

use std::fs::File;

use super::{read_chunk, Buffers, Encoder};
use crate::limits::UNCACHE_STEP;
use crate::session::{Client, SendError};

/// One sending of a mailbox.
pub struct Transfer<'a> {
    pub file: &'a File,
    /// The bytes of the file to send: its size when it was counted.
    pub size: u64,
    /// The octets promised to the client.
    pub count: u64,
    /// Drop sent pages from the page cache (RDEL: they are deleted at RCVD).
    pub uncache: bool,
}

impl Transfer<'_> {
    /// Send the data through `buffers`; `keep_alive` refreshes the locks when due.
    /// A `SendError::Mailbox` text names no path.
    pub fn run(
        &self,
        client: &mut dyn Client,
        buffers: &mut Buffers,
        keep_alive: &mut dyn FnMut(),
    ) -> Result<(), SendError> {
        let (read, wire) = buffers.both();
        let mut encoder = Encoder::default();
        let mut read_to = 0;
        let mut sent = 0;
        let mut uncached_to = 0;
        loop {
            wire.clear();
            let last = read_to == self.size;
            if last {
                encoder.finish(wire);
            } else {
                let chunk = read_chunk(self.file, read_to..self.size, read)
                    .map_err(|e| SendError::Mailbox(e.to_string()))?;
                encoder.encode(chunk, wire);
                read_to += chunk.len() as u64;
            }
            sent += wire.len() as u64;
            if sent > self.count || (last && sent != self.count) {
                return Err(SendError::Mailbox(
                    "mailbox changed while it was sent".into(),
                ));
            }
            client
                .write_data(wire, keep_alive)
                .map_err(SendError::Client)?;
            keep_alive();
            if self.uncache {
                uncached_to = self.uncache_sent(read_to, uncached_to, last);
            }
            if last {
                return Ok(());
            }
        }
    }

    /// Drop the sent pages up to `read_to` in whole steps (a folio partly outside
    /// the range stays cached); at the end, the whole file, for the last part
    /// step and any page that was busy when its step was advised. Returns how far
    /// the pages are now dropped.
    fn uncache_sent(&self, read_to: u64, uncached_to: u64, last: bool) -> u64 {
        if last {
            forget_cached(self.file, 0, self.size);
            return self.size;
        }
        let sent_steps = read_to - read_to % UNCACHE_STEP;
        if sent_steps > uncached_to {
            forget_cached(self.file, uncached_to, sent_steps - uncached_to);
            return sent_steps;
        }
        uncached_to
    }
}

/// Drop the mailbox's cached pages in this range, once they have been written to
/// the client and before RCVD deletes them. Truncating a file frees its cached
/// pages one by one (about 70 ms per GiB on ext4), so freeing them here, while
/// the client is still reading, leaves RCVD's truncation only the file system's
/// own work. Advice only: dirty pages are written back, never discarded, and a
/// failure costs only speed.
fn forget_cached(file: &File, from: u64, len: u64) {
    let (Ok(from), Ok(len)) = (i64::try_from(from), i64::try_from(len)) else {
        return;
    };
    if len > 0 {
        let _ = nix::fcntl::posix_fadvise(
            file,
            from,
            len,
            nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED,
        );
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::limits::MAILBOX_CHUNK;
    use crate::mailbox::Counter;
    use crate::session::WriteFailure;

    use crate::testing::wire_form as reference;

    fn file_with(data: &[u8]) -> File {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(data).unwrap();
        file
    }

    fn count(data: &[u8]) -> u64 {
        let mut counter = Counter::default();
        counter.feed(data);
        counter.total()
    }

    fn send(file: &File, size: u64, count: u64) -> (Vec<u8>, Result<(), SendError>, u32) {
        let transfer = Transfer {
            file,
            size,
            count,
            uncache: true,
        };
        let mut out = Vec::new();
        let mut buffers = Buffers::allocate().unwrap();
        let mut kept_alive = 0;
        let result = transfer.run(&mut out, &mut buffers, &mut || kept_alive += 1);
        (out, result, kept_alive)
    }

    fn chunk_boundary_cases() -> Vec<Vec<u8>> {
        let line = |len: usize| {
            let mut l = vec![b'x'; len];
            l.push(b'\n');
            l
        };
        let mut cr_across = vec![b'a'; MAILBOX_CHUNK - 1];
        cr_across.extend_from_slice(b"\r\nnext\n");
        let mut lf_first = vec![b'a'; MAILBOX_CHUNK];
        lf_first.extend_from_slice(b"\nnext");
        let exact: Vec<u8> =
            line(99).repeat(3 * MAILBOX_CHUNK / 100 + 1)[..3 * MAILBOX_CHUNK].to_vec();
        vec![
            Vec::new(),
            b"a".to_vec(),
            b"a\r".to_vec(),
            b"From a\n\nbody\r\n".to_vec(),
            cr_across,
            lf_first,
            line(3 * MAILBOX_CHUNK + 7),
            exact,
        ]
    }

    #[test]
    fn sends_exactly_the_wire_form_and_keeps_the_locks_alive_per_chunk() {
        for data in chunk_boundary_cases() {
            let file = file_with(&data);
            let (out, result, kept_alive) = send(&file, data.len() as u64, count(&data));
            assert!(result.is_ok(), "{result:?}");
            assert!(out == reference(&data), "{} bytes", data.len());
            let chunks = data.len().div_ceil(MAILBOX_CHUNK) as u32 + 1;
            assert_eq!(kept_alive, chunks, "{} bytes", data.len());
        }
    }

    #[test]
    fn a_file_shorter_than_counted_is_a_mailbox_error() {
        let data = b"line\n".repeat(200_000);
        let file = file_with(&data[..MAILBOX_CHUNK + 10]);
        let (out, result, _) = send(&file, data.len() as u64, count(&data));
        assert!(matches!(result, Err(SendError::Mailbox(_))), "{result:?}");
        assert!(out.len() < reference(&data).len());
    }

    #[test]
    fn never_more_than_the_count_leaves() {
        // Bare LFs where the count saw CR LF: a writer rewrote it in place.
        let counted = b"x\r\n".repeat(200_000);
        let now = b"xx\n".repeat(200_000);
        let file = file_with(&now);
        let promised = count(&counted);
        let (out, result, _) = send(&file, now.len() as u64, promised);
        assert!(matches!(result, Err(SendError::Mailbox(_))), "{result:?}");
        assert!(out.len() as u64 <= promised);
    }

    /// A client that goes away after `left` octets.
    struct Leaving {
        left: usize,
    }

    impl Client for Leaving {
        fn write_data(&mut self, data: &[u8], _: &mut dyn FnMut()) -> Result<(), WriteFailure> {
            if data.len() > self.left {
                return Err(WriteFailure::Gone);
            }
            self.left -= data.len();
            Ok(())
        }
    }

    #[test]
    fn a_client_error_ends_the_sending_and_is_reported_as_such() {
        let data = b"a line of mail\n".repeat(400_000);
        let file = file_with(&data);
        let transfer = Transfer {
            file: &file,
            size: data.len() as u64,
            count: count(&data),
            uncache: false,
        };
        let mut buffers = Buffers::allocate().unwrap();
        let result = transfer.run(&mut Leaving { left: 1 << 20 }, &mut buffers, &mut || {});
        assert_eq!(result, Err(SendError::Client(WriteFailure::Gone)));
    }
}
