//! Sending the counted bytes of a locked mailbox to the client. Reading and
//! encoding a chunk, and writing it, are two halves: with more than one CPU they
//! run in two threads, so the next chunk is read while the last one is written;
//! with one CPU, or when no thread can be started, they alternate in the caller's
//! thread.
//!
//! Only the caller's thread touches the client; the reading half only reads the
//! file. It must never let more than the counted octets out, nor anything that
//! follows a read error, and it keeps memory flat: it allocates nothing, but
//! recycles the [`Buffers`] it is given, whatever the mailbox's size.

use std::fs::File;
use std::io::{self, Write};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use super::{read_chunk, Buffers, Encoder};
use crate::limits::{SEND_BUFFERS, UNCACHE_STEP};
use crate::memory::helper_thread;
use crate::session::SendError;

/// What the reading half hands to the writing half.
enum Piece {
    /// Encoded bytes, and how far into the file they reach.
    Data { wire: Vec<u8>, read_to: u64 },
    /// The last bytes (CR LF when the last line had no LF; maybe nothing).
    End { wire: Vec<u8> },
    /// Reading failed; nothing more comes.
    Failed(io::Error),
}

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
    /// Send the data through `buffers`, in two threads when `two_threads` and
    /// there are wire buffers to read ahead into. A `SendError::Mailbox` text
    /// names no path.
    pub fn run(
        &self,
        out: &mut dyn Write,
        two_threads: bool,
        buffers: &mut Buffers,
    ) -> Result<(), SendError> {
        let mut writer = Writer {
            transfer: self,
            out,
            sent: 0,
            uncached_to: 0,
        };
        let Buffers { read, wire } = buffers;
        if two_threads && wire.len() > 1 {
            if let Some(sent) = self.run_in_two_threads(&mut writer, read, wire) {
                return sent;
            }
            // No thread could be started (a process limit): one will do.
        }
        let mut reader = Reader::new(self, read);
        // Buffers always holds one; an empty vector would only grow.
        let mut wire = wire.pop().unwrap_or_default();
        loop {
            match writer.write(reader.next(wire))? {
                Some(empty) => wire = empty,
                None => return Ok(()),
            }
        }
    }

    /// `None` when the reading thread cannot be started; nothing was sent then,
    /// and `wire` is untouched.
    fn run_in_two_threads(
        &self,
        writer: &mut Writer,
        read: &mut [u8],
        wire: &mut Vec<Vec<u8>>,
    ) -> Option<Result<(), SendError>> {
        let (full_tx, full_rx) = sync_channel(SEND_BUFFERS);
        let (empty_tx, empty_rx) = sync_channel::<Vec<u8>>(SEND_BUFFERS);
        std::thread::scope(|scope| {
            let mut reader = Reader::new(self, read);
            helper_thread("pop1d-read")
                .spawn_scoped(scope, move || {
                    // Ends at the last piece, or when the writer has gone.
                    while let Ok(wire) = empty_rx.recv() {
                        let piece = reader.next(wire);
                        let last = !matches!(piece, Piece::Data { .. });
                        if full_tx.send(piece).is_err() || last {
                            break;
                        }
                    }
                })
                .ok()?;
            for buffer in wire.drain(..) {
                let _ = empty_tx.send(buffer);
            }
            Some(writer.write_from(full_rx, empty_tx))
        })
    }
}

/// The reading half: reads and encodes the next chunk.
struct Reader<'t, 'b> {
    transfer: &'t Transfer<'t>,
    encoder: Encoder,
    read_to: u64,
    buffer: &'b mut [u8],
}

impl<'t, 'b> Reader<'t, 'b> {
    fn new(transfer: &'t Transfer<'t>, buffer: &'b mut [u8]) -> Reader<'t, 'b> {
        Reader {
            transfer,
            encoder: Encoder::default(),
            read_to: 0,
            buffer,
        }
    }

    /// The next piece, encoded into `wire`.
    fn next(&mut self, mut wire: Vec<u8>) -> Piece {
        wire.clear();
        let end = self.transfer.size;
        if self.read_to == end {
            self.encoder.finish(&mut wire);
            return Piece::End { wire };
        }
        match read_chunk(self.transfer.file, self.read_to..end, self.buffer) {
            Ok(chunk) => {
                self.encoder.encode(chunk, &mut wire);
                self.read_to += chunk.len() as u64;
                Piece::Data {
                    wire,
                    read_to: self.read_to,
                }
            }
            Err(error) => Piece::Failed(error),
        }
    }
}

/// The writing half: checks the count and writes to the client.
struct Writer<'t, 'o> {
    transfer: &'t Transfer<'t>,
    out: &'o mut dyn Write,
    sent: u64,
    uncached_to: u64,
}

impl Writer<'_, '_> {
    /// Write pieces from the reading thread until the end or an error. Returning
    /// drops both channel ends, which stops that thread at its next step if it is
    /// still going, before the scope waits for it.
    fn write_from(
        &mut self,
        full: Receiver<Piece>,
        empty: SyncSender<Vec<u8>>,
    ) -> Result<(), SendError> {
        loop {
            let piece = full
                .recv()
                .map_err(|_| SendError::Mailbox("the reading thread stopped".into()))?;
            match self.write(piece)? {
                Some(wire) => {
                    let _ = empty.send(wire);
                }
                None => return Ok(()),
            }
        }
    }

    /// Write one piece. `Some(buffer)` to fill again; `None` after the end.
    fn write(&mut self, piece: Piece) -> Result<Option<Vec<u8>>, SendError> {
        let transfer = self.transfer;
        let (wire, read_to) = match piece {
            Piece::Data { wire, read_to } => (wire, Some(read_to)),
            Piece::End { wire } => (wire, None),
            Piece::Failed(error) => return Err(SendError::Mailbox(error.to_string())),
        };
        self.sent += wire.len() as u64;
        if self.sent > transfer.count || (read_to.is_none() && self.sent != transfer.count) {
            return Err(SendError::Mailbox(
                "mailbox changed while it was sent".into(),
            ));
        }
        self.out.write_all(&wire).map_err(SendError::Client)?;
        let Some(read_to) = read_to else {
            if transfer.uncache {
                // The last part step, and any page that was busy when its step
                // was advised.
                forget_cached(transfer.file, 0, transfer.size);
            }
            self.out.flush().map_err(SendError::Client)?;
            return Ok(None);
        };
        if transfer.uncache {
            // Whole steps only: a folio partly outside the range stays cached.
            let sent_steps = read_to - read_to % UNCACHE_STEP;
            if sent_steps > self.uncached_to {
                forget_cached(
                    transfer.file,
                    self.uncached_to,
                    sent_steps - self.uncached_to,
                );
                self.uncached_to = sent_steps;
            }
        }
        Ok(Some(wire))
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
    use super::*;
    use crate::limits::MAILBOX_CHUNK;
    use crate::mailbox::Counter;

    /// The wire form, byte by byte, independently of the encoder.
    fn reference(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut prev = None;
        for &b in data {
            if b == b'\n' && prev != Some(b'\r') {
                out.push(b'\r');
            }
            out.push(b);
            prev = Some(b);
        }
        if prev.is_some_and(|b| b != b'\n') {
            out.extend_from_slice(b"\r\n");
        }
        out
    }

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

    fn send(
        file: &File,
        size: u64,
        count: u64,
        two_threads: bool,
    ) -> (Vec<u8>, Result<(), SendError>) {
        let transfer = Transfer {
            file,
            size,
            count,
            uncache: true,
        };
        let mut out = Vec::new();
        let mut buffers = Buffers::allocate(true).unwrap();
        let result = transfer.run(&mut out, two_threads, &mut buffers);
        (out, result)
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
    fn both_ways_send_exactly_the_wire_form() {
        for data in chunk_boundary_cases() {
            let file = file_with(&data);
            for two_threads in [false, true] {
                let (out, result) = send(&file, data.len() as u64, count(&data), two_threads);
                assert!(result.is_ok(), "{result:?}");
                assert!(
                    out == reference(&data),
                    "{} bytes, two threads {two_threads}",
                    data.len()
                );
            }
        }
    }

    #[test]
    fn a_file_shorter_than_counted_is_a_mailbox_error() {
        let data = b"line\n".repeat(200_000);
        let file = file_with(&data[..MAILBOX_CHUNK + 10]);
        for two_threads in [false, true] {
            let (out, result) = send(&file, data.len() as u64, count(&data), two_threads);
            assert!(matches!(result, Err(SendError::Mailbox(_))), "{result:?}");
            assert!(out.len() < reference(&data).len());
        }
    }

    #[test]
    fn never_more_than_the_count_leaves() {
        // Bare LFs where the count saw CR LF: a writer rewrote it in place.
        let counted = b"x\r\n".repeat(200_000);
        let now = b"xx\n".repeat(200_000);
        let file = file_with(&now);
        for two_threads in [false, true] {
            let promised = count(&counted);
            let (out, result) = send(&file, now.len() as u64, promised, two_threads);
            assert!(matches!(result, Err(SendError::Mailbox(_))), "{result:?}");
            assert!(out.len() as u64 <= promised);
        }
    }

    /// A client that goes away after `left` octets.
    struct Leaving {
        left: usize,
    }

    impl Write for Leaving {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.left == 0 {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            let n = buf.len().min(self.left);
            self.left -= n;
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_client_error_ends_the_sending_and_is_reported_as_such() {
        let data = b"a line of mail\n".repeat(400_000);
        let file = file_with(&data);
        for two_threads in [false, true] {
            let transfer = Transfer {
                file: &file,
                size: data.len() as u64,
                count: count(&data),
                uncache: false,
            };
            let mut buffers = Buffers::allocate(true).unwrap();
            let result = transfer.run(&mut Leaving { left: 1 << 20 }, two_threads, &mut buffers);
            assert!(matches!(result, Err(SendError::Client(_))), "{result:?}");
        }
    }
}
