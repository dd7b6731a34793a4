//! The mail data on the wire: every LF not already preceded by CR becomes CR LF,
//! and a final line without LF is completed with CR LF (PROTOCOL.md).
//!
//! Pure and incremental, so a mailbox of any size is counted and sent in chunks
//! of fixed size. The count and the encoding find bare LFs in two different ways
//! (the count must be fast over the whole file before anything is sent), so the
//! property test in `tests/property.rs` checks them against each other and against
//! a plain byte-by-byte reference. Never allocate per line here: this is the hot
//! path of RETR and RCEV.

/// Counts the octets the encoder will produce for the same bytes.
#[derive(Debug, Default)]
pub struct Counter {
    len: u64,
    bare_lf: u64,
    last: u8,
}

impl Counter {
    pub fn feed(&mut self, chunk: &[u8]) {
        let Some(&last) = chunk.last() else { return };
        // All LFs minus those after a CR: two vectorised scans, where asking for
        // each bare LF in turn would cost a search per line. CRs are rare in mail.
        let lf = memchr::memchr_iter(b'\n', chunk).count();
        let crlf_inside = memchr::memchr_iter(b'\r', chunk)
            .filter(|&at| chunk.get(at + 1) == Some(&b'\n'))
            .count();
        let crlf_across = usize::from(self.last == b'\r' && chunk[0] == b'\n');
        self.bare_lf += (lf - crlf_inside - crlf_across) as u64;
        self.len += chunk.len() as u64;
        self.last = last;
    }

    /// The total octets on the wire for everything fed.
    pub fn total(&self) -> u64 {
        let completion = if self.len > 0 && self.last != b'\n' {
            2
        } else {
            0
        };
        self.len + self.bare_lf + completion
    }
}

/// Turns mailbox bytes into wire bytes, chunk by chunk.
#[derive(Debug, Default)]
pub struct Encoder {
    fed: bool,
    last: u8,
}

impl Encoder {
    /// Append the wire form of `chunk` to `out`. At most `2 * chunk.len()` octets.
    ///
    /// `out` is given room for that many first (the sending's wire buffer has it
    /// already, so nothing is allocated there), and never grows beyond it.
    pub fn encode(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        let Some(&last) = chunk.last() else { return };
        out.reserve(2 * chunk.len());
        // SSE2 is part of every x86-64 CPU, and memchr's SSE2 search is inlined
        // here, where the AVX2 one is a call with its own set-up per line: for
        // mail's short lines that set-up, not the scan, is the cost.
        #[cfg(target_arch = "x86_64")]
        if let Some(lf) = memchr::arch::x86_64::sse2::memchr::One::new(b'\n') {
            insert_cr(chunk, self.last, out, lf.iter(chunk));
            self.fed = true;
            self.last = last;
            return;
        }
        insert_cr(chunk, self.last, out, memchr::memchr_iter(b'\n', chunk));
        self.fed = true;
        self.last = last;
    }

    /// Append what ends the data: CR LF when the last line had no LF.
    pub fn finish(&self, out: &mut Vec<u8>) {
        if self.fed && self.last != b'\n' {
            out.extend_from_slice(b"\r\n");
        }
    }
}

/// A line of up to this many bytes is copied as a block of exactly this many,
/// then cut back to its length: a copy of fixed size is a few vector moves,
/// where one of a line's own length is a call to `memcpy`. Most mail lines are
/// shorter (78 columns is the customary limit; base64 is 76).
const LINE_BLOCK: usize = 128;

/// Append `chunk` to `out` with a CR before each LF at `lfs` (ascending) that
/// does not already follow one; `prev` is the byte before the chunk. `out` must
/// have room for `2 * chunk.len()` more bytes.
#[inline(always)]
fn insert_cr(chunk: &[u8], prev: u8, out: &mut Vec<u8>, lfs: impl Iterator<Item = usize>) {
    let mut from = 0;
    for at in lfs {
        let before = match at.checked_sub(1) {
            Some(i) => chunk[i],
            None => prev,
        };
        if before == b'\r' {
            continue;
        }
        let rest = &chunk[from..];
        let line = at - from;
        if line <= LINE_BLOCK && rest.len() >= LINE_BLOCK {
            // The block ends at most LINE_BLOCK - 1 bytes past this line, in the
            // room reserved: what was written so far plus the block is at most
            // twice the bytes read up to the block's end, never more than
            // 2 * chunk.len(). The surplus is cut off again at once.
            let keep = out.len() + line;
            out.extend_from_slice(&rest[..LINE_BLOCK]);
            out.truncate(keep);
        } else {
            out.extend_from_slice(&rest[..line]);
        }
        // The LF itself starts the next piece.
        out.push(b'\r');
        from = at;
    }
    out.extend_from_slice(&chunk[from..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode_in_chunks(data: &[u8], chunk: usize) -> Vec<u8> {
        let mut encoder = Encoder::default();
        let mut out = Vec::new();
        for piece in data.chunks(chunk.max(1)) {
            encoder.encode(piece, &mut out);
        }
        encoder.finish(&mut out);
        out
    }

    fn count_in_chunks(data: &[u8], chunk: usize) -> u64 {
        let mut counter = Counter::default();
        for piece in data.chunks(chunk.max(1)) {
            counter.feed(piece);
        }
        counter.total()
    }

    #[test]
    fn the_protocol_example() {
        let mbox =
            b"From fred@example.org Thu Nov 26 10:00:00 2026\nSubject: hello\n\nHi Fred.\n\n";
        assert_eq!(mbox.len(), 73);
        assert_eq!(count_in_chunks(mbox, 4096), 78);
        assert_eq!(encode_in_chunks(mbox, 4096).len(), 78);
    }

    #[test]
    fn cases() {
        let cases: [(&[u8], &[u8]); 8] = [
            (b"", b""),
            (b"a", b"a\r\n"),
            (b"a\n", b"a\r\n"),
            (b"a\r\n", b"a\r\n"),
            (b"a\r", b"a\r\r\n"),
            (b"\n\n", b"\r\n\r\n"),
            (b"a\r\nb\nc", b"a\r\nb\r\nc\r\n"),
            (b"\xff\x00\r\r\n", b"\xff\x00\r\r\n"),
        ];
        for (input, wire) in cases {
            for chunk in 1..=4 {
                assert_eq!(encode_in_chunks(input, chunk), wire, "{input:?} by {chunk}");
                assert_eq!(
                    count_in_chunks(input, chunk),
                    wire.len() as u64,
                    "{input:?}"
                );
            }
        }
    }

    use crate::testing::wire_form as reference;

    /// Lines of every length around the encoder's block size, with and without
    /// CR, cut into chunks of many sizes, each encoded into a buffer that holds
    /// earlier bytes and exactly the promised room: the wire bytes are right,
    /// the earlier bytes stay, and the buffer never grows.
    #[test]
    fn lines_of_every_length_around_the_block_size() {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move |n: u64| {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (seed >> 33) % n
        };
        let mut data = Vec::new();
        while data.len() < 40_000 {
            let len = match next(4) {
                0 => next(8),
                1 => LINE_BLOCK as u64 - 4 + next(8),
                2 => next(2 * LINE_BLOCK as u64 + 8),
                _ => next(700),
            };
            data.extend((0..len).map(|i| if i % 97 == 5 { b'\r' } else { b'a' }));
            data.extend_from_slice(match next(5) {
                0 => b"\r\n",
                1 => b"\r",
                _ => b"\n",
            });
        }
        let want = reference(&data);
        for chunk in [1, 2, 127, 128, 129, 255, 256, 1000, 4096, data.len()] {
            let mut encoder = Encoder::default();
            let mut got = Vec::new();
            for piece in data.chunks(chunk) {
                let mut wire = Vec::with_capacity(3 + 2 * piece.len());
                wire.extend_from_slice(b"abc");
                let room = wire.capacity();
                encoder.encode(piece, &mut wire);
                assert_eq!(wire.capacity(), room, "chunk {chunk}: the buffer grew");
                assert_eq!(&wire[..3], b"abc");
                got.extend_from_slice(&wire[3..]);
            }
            encoder.finish(&mut got);
            assert!(got == want, "chunk {chunk}");
            assert_eq!(count_in_chunks(&data, chunk), want.len() as u64);
        }
    }

    #[test]
    fn a_cr_lf_pair_split_between_chunks_stays_one_pair() {
        let input = b"ab\r\ncd\n";
        assert_eq!(encode_in_chunks(input, 3), b"ab\r\ncd\r\n");
        assert_eq!(count_in_chunks(input, 3), 8);
    }
}
