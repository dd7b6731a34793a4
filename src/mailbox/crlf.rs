//! The mail data on the wire: every LF not already preceded by CR becomes CR LF,
//! and a final line without LF is completed with CR LF (PROTOCOL.md).
//!
//! Pure and incremental, so a mailbox of any size is counted and sent in chunks
//! of fixed size. The count and the encoding find bare LFs in two different ways
//! (the count must be fast over the whole file before anything is sent), so the
//! property test in `tests/property.rs` checks them against each other and against
//! a plain byte-by-byte reference. Never allocate per line here: this is the hot
//! path of RETR and RCEV.

/// Positions in `chunk` of each LF not preceded by CR; `prev` is the byte before
/// the chunk (0 at the start of the file).
fn bare_lf_positions(chunk: &[u8], prev: u8) -> impl Iterator<Item = usize> + '_ {
    memchr::memchr_iter(b'\n', chunk).filter(move |&at| {
        let before = if at == 0 { prev } else { chunk[at - 1] };
        before != b'\r'
    })
}

/// Counts the octets the encoder will produce for the same bytes.
#[derive(Debug, Default)]
pub struct Counter {
    len: u64,
    bare_lf: u64,
    last: u8,
}

impl Counter {
    /// A counter for bytes that follow `before` in the file, to count a file in
    /// parts and join them with [`Counter::followed_by`].
    pub fn after(before: u8) -> Counter {
        Counter {
            len: 0,
            bare_lf: 0,
            last: before,
        }
    }

    /// The count of this part and then `later`, which was made with
    /// [`Counter::after`] this part's last byte.
    pub fn followed_by(self, later: Counter) -> Counter {
        Counter {
            len: self.len + later.len,
            bare_lf: self.bare_lf + later.bare_lf,
            last: if later.len > 0 { later.last } else { self.last },
        }
    }

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
    pub fn encode(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        let Some(&last) = chunk.last() else { return };
        let mut from = 0;
        for at in bare_lf_positions(chunk, self.last) {
            out.extend_from_slice(&chunk[from..at]);
            out.extend_from_slice(b"\r\n");
            from = at + 1;
        }
        out.extend_from_slice(&chunk[from..]);
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

    #[test]
    fn counting_in_two_parts_joined_is_counting_whole() {
        let inputs: [&[u8]; 6] = [b"ab\r\ncd\n", b"\r\n", b"\n\n\r", b"a\r\r\n\nb", b"x", b""];
        for input in inputs {
            for cut in 0..=input.len() {
                let (first, second) = input.split_at(cut);
                let mut a = Counter::default();
                a.feed(first);
                let mut b = Counter::after(first.last().copied().unwrap_or(0));
                b.feed(second);
                assert_eq!(
                    a.followed_by(b).total(),
                    count_in_chunks(input, input.len().max(1)),
                    "{input:?} cut at {cut}"
                );
            }
        }
    }

    #[test]
    fn a_cr_lf_pair_split_between_chunks_stays_one_pair() {
        let input = b"ab\r\ncd\n";
        assert_eq!(encode_in_chunks(input, 3), b"ab\r\ncd\r\n");
        assert_eq!(count_in_chunks(input, 3), 8);
    }
}
