//! Splitting client input into lines, in bounded memory.
//!
//! Pure: bytes go in through [`LineBuffer::space`] and [`LineBuffer::filled`],
//! lines come out. A line longer than [`MAX_LINE`] octets (terminator included) is
//! reported once as too long and skipped up to its LF, however long it is. Each
//! line's bytes are zeroed once the next line is asked for, so a password does not
//! linger in memory. An unterminated last line is never returned: a command cut
//! off by a dropped connection must not be acted on.

use std::ops::Range;

use zeroize::Zeroize;

use crate::limits::{INPUT_BUFFER, MAX_LINE};

/// What the buffer holds next.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// A complete line; the range (terminator excluded) indexes [`LineBuffer::line`].
    Line(Range<usize>),
    /// A line over the limit was discarded.
    TooLong,
    /// No complete line yet: read more input.
    NeedMore,
}

pub struct LineBuffer {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Inside an overlong line: drop input until its LF.
    discarding: bool,
    /// The bytes of the last line handed out, to be wiped.
    handed_out: Range<usize>,
}

impl Default for LineBuffer {
    fn default() -> Self {
        LineBuffer {
            buf: vec![0; INPUT_BUFFER],
            start: 0,
            end: 0,
            discarding: false,
            handed_out: 0..0,
        }
    }
}

impl LineBuffer {
    pub fn next_line(&mut self) -> Next {
        self.wipe_handed_out();
        let Some(at) = memchr::memchr(b'\n', &self.buf[self.start..self.end]) else {
            if self.discarding || self.end - self.start >= MAX_LINE {
                // The line is over the limit already: nothing of it is kept.
                self.discarding = true;
                self.buf[self.start..self.end].zeroize();
                self.start = 0;
                self.end = 0;
            }
            return Next::NeedMore;
        };
        let line = self.start..self.start + at;
        self.start = line.end + 1;
        self.handed_out = line.start..self.start;
        if std::mem::take(&mut self.discarding) || at + 1 > MAX_LINE {
            self.wipe_handed_out();
            return Next::TooLong;
        }
        let end = if self.buf[line.clone()].last() == Some(&b'\r') {
            line.end - 1
        } else {
            line.end
        };
        Next::Line(line.start..end)
    }

    pub fn line(&self, range: Range<usize>) -> &[u8] {
        &self.buf[range]
    }

    /// The bytes read but not yet handed out as lines: what a process that
    /// takes the session over must begin from.
    pub fn unread(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Where to read more input into; call [`LineBuffer::filled`] afterwards.
    pub fn space(&mut self) -> &mut [u8] {
        self.wipe_handed_out();
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            let old_end = self.end;
            self.end -= self.start;
            self.start = 0;
            self.buf[self.end..old_end].zeroize();
        }
        &mut self.buf[self.end..]
    }

    pub fn filled(&mut self, read: usize) {
        self.end += read;
    }

    /// Forget (and wipe) everything buffered.
    pub fn discard(&mut self) {
        self.buf[..self.end].zeroize();
        self.start = 0;
        self.end = 0;
        self.discarding = false;
        self.handed_out = 0..0;
    }

    fn wipe_handed_out(&mut self) {
        let range = std::mem::replace(&mut self.handed_out, 0..0);
        self.buf[range].zeroize();
    }
}

impl Drop for LineBuffer {
    fn drop(&mut self) {
        self.buf.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], read_size: usize) -> Vec<Result<Vec<u8>, ()>> {
        let mut buffer = LineBuffer::default();
        let mut out = Vec::new();
        let mut rest = input;
        loop {
            match buffer.next_line() {
                Next::Line(range) => out.push(Ok(buffer.line(range).to_vec())),
                Next::TooLong => out.push(Err(())),
                Next::NeedMore if rest.is_empty() => return out,
                Next::NeedMore => {
                    let space = buffer.space();
                    let n = space.len().min(read_size).min(rest.len());
                    space[..n].copy_from_slice(&rest[..n]);
                    buffer.filled(n);
                    rest = &rest[n..];
                }
            }
        }
    }

    #[test]
    fn crlf_and_lf_and_partial() {
        let got = lines(b"USER a\r\nPASS b c\n\nRCVD", 3);
        assert_eq!(
            got,
            vec![Ok(b"USER a".to_vec()), Ok(b"PASS b c".to_vec()), Ok(vec![])]
        );
    }

    #[test]
    fn the_limit_counts_the_terminator() {
        let fits = [vec![b'a'; MAX_LINE - 1], b"\n".to_vec()].concat();
        let fits_crlf = [vec![b'a'; MAX_LINE - 2], b"\r\n".to_vec()].concat();
        let over = [vec![b'a'; MAX_LINE - 1], b"\r\n".to_vec()].concat();
        for read_size in [1, 7, 4096] {
            assert_eq!(lines(&fits, read_size), vec![Ok(vec![b'a'; MAX_LINE - 1])]);
            assert_eq!(
                lines(&fits_crlf, read_size),
                vec![Ok(vec![b'a'; MAX_LINE - 2])]
            );
            assert_eq!(lines(&over, read_size), vec![Err(())]);
        }
    }

    #[test]
    fn a_huge_line_is_skipped_once() {
        let input = [
            b"NOOP\n".to_vec(),
            vec![b'x'; 100_000],
            b"\nQUIT\n".to_vec(),
        ]
        .concat();
        for read_size in [1000, 4096] {
            let got = lines(&input, read_size);
            assert_eq!(
                got,
                vec![Ok(b"NOOP".to_vec()), Err(()), Ok(b"QUIT".to_vec())]
            );
        }
    }
}
