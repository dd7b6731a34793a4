//! The two messages between the login child and the root monitor, and their
//! strict, length-prefixed wire form.
//!
//! A request (child → monitor): the name given to USER, the password, and the
//! client's bytes the child read past the PASS line. A verdict (monitor →
//! child): one byte. The monitor, which runs as root, parses nothing from the
//! client but this: every length is bounded, every byte is accounted for, and
//! anything else is a malformed message. It never looks inside the unread
//! bytes; they are examined only after the monitor has left root.

use std::io::{self, Read, Write};

use zeroize::Zeroizing;

use crate::limits::{INPUT_BUFFER, MAX_LINE};

/// What the login child asks the monitor at each PASS.
pub struct Request {
    pub given: Vec<u8>,
    pub password: Zeroizing<Vec<u8>>,
    pub unread: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("given", &self.given)
            .field("password", &"(hidden)")
            .field("unread", &self.unread.len())
            .finish()
    }
}

/// The most bytes a request's body can hold.
const MOST: usize = 3 * 4 + MAX_LINE + MAX_LINE + INPUT_BUFFER;

/// Write a request: a 4-byte length, then each field as a 4-byte length and
/// its bytes, all lengths big-endian.
pub fn send_request(
    out: &mut impl Write,
    given: &[u8],
    password: &[u8],
    unread: &[u8],
) -> io::Result<()> {
    let fields = [given, password, unread];
    let body: usize = fields.iter().map(|f| 4 + f.len()).sum();
    let mut message = Zeroizing::new(Vec::with_capacity(4 + body));
    message.extend_from_slice(&(body as u32).to_be_bytes());
    for field in fields {
        message.extend_from_slice(&(field.len() as u32).to_be_bytes());
        message.extend_from_slice(field);
    }
    out.write_all(&message)
}

/// Why a message could not be had.
#[derive(Debug)]
pub enum Malformed {
    /// The other side closed its end before a message began.
    Closed,
    /// Anything else: a short, oversized or inconsistent message.
    Bad(String),
}

/// Read one request, strictly.
pub fn receive_request(input: &mut impl Read) -> Result<Request, Malformed> {
    let mut length = [0u8; 4];
    match input.read(&mut length[..1]) {
        Ok(0) => return Err(Malformed::Closed),
        Ok(_) => {}
        Err(error) => return Err(Malformed::Bad(format!("cannot read: {error}"))),
    }
    input
        .read_exact(&mut length[1..])
        .map_err(|e| Malformed::Bad(format!("short length: {e}")))?;
    let length = u32::from_be_bytes(length) as usize;
    if length > MOST {
        return Err(Malformed::Bad(format!("{length} bytes is too long")));
    }
    let mut body = Zeroizing::new(vec![0u8; length]);
    input
        .read_exact(&mut body)
        .map_err(|e| Malformed::Bad(format!("short body: {e}")))?;
    let mut rest: &[u8] = &body;
    let mut field = |most: usize, what: &str| -> Result<Vec<u8>, Malformed> {
        let Some((len, after)) = rest.split_first_chunk::<4>() else {
            return Err(Malformed::Bad(format!("no length for the {what}")));
        };
        let len = u32::from_be_bytes(*len) as usize;
        if len > most || len > after.len() {
            return Err(Malformed::Bad(format!("the {what} is too long")));
        }
        let (value, after) = after.split_at(len);
        rest = after;
        Ok(value.to_vec())
    };
    let given = field(MAX_LINE, "user name")?;
    let password = Zeroizing::new(field(MAX_LINE, "password")?);
    let unread = Zeroizing::new(field(INPUT_BUFFER, "unread input")?);
    if !rest.is_empty() {
        return Err(Malformed::Bad(format!("{} bytes too many", rest.len())));
    }
    Ok(Request {
        given,
        password,
        unread,
    })
}

/// The monitor's answer to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// The password is right: the child's part is over.
    Granted,
    /// Refused; the session goes on.
    Denied,
    /// Refused, and that was the last try: the session ends.
    DeniedClosing,
    /// No password database is configured.
    Unavailable,
}

impl Answer {
    fn byte(self) -> u8 {
        match self {
            Answer::Granted => b'G',
            Answer::Denied => b'D',
            Answer::DeniedClosing => b'C',
            Answer::Unavailable => b'U',
        }
    }
}

pub fn send_answer(out: &mut impl Write, answer: Answer) -> io::Result<()> {
    out.write_all(&[answer.byte()])
}

pub fn receive_answer(input: &mut impl Read) -> io::Result<Answer> {
    let mut byte = [0u8];
    input.read_exact(&mut byte)?;
    [
        Answer::Granted,
        Answer::Denied,
        Answer::DeniedClosing,
        Answer::Unavailable,
    ]
    .into_iter()
    .find(|answer| answer.byte() == byte[0])
    .ok_or_else(|| io::Error::other(format!("unknown answer byte {:#04x}", byte[0])))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(given: &[u8], password: &[u8], unread: &[u8]) -> Result<Request, Malformed> {
        let mut wire = Vec::new();
        send_request(&mut wire, given, password, unread).unwrap();
        receive_request(&mut wire.as_slice())
    }

    #[test]
    fn a_request_comes_back_as_it_went() {
        let got = round_trip(b"fred", b"se cret", b"RDEL fred\r\nRCEV\r\n").unwrap();
        assert_eq!(got.given, b"fred");
        assert_eq!(got.password.as_slice(), b"se cret");
        assert_eq!(got.unread.as_slice(), b"RDEL fred\r\nRCEV\r\n");
        let empty = round_trip(b"", b"", b"").unwrap();
        assert!(empty.given.is_empty() && empty.password.is_empty());
    }

    #[test]
    fn malformed_requests_are_refused() {
        let mut wire = Vec::new();
        send_request(&mut wire, b"fred", b"secret", b"NOOP\r\n").unwrap();
        // Cut anywhere: refused, never a panic.
        for cut in 1..wire.len() {
            assert!(
                matches!(receive_request(&mut &wire[..cut]), Err(Malformed::Bad(_))),
                "cut at {cut}"
            );
        }
        assert!(matches!(
            receive_request(&mut &[][..]),
            Err(Malformed::Closed)
        ));
        // A body longer than its fields, a field longer than its limit, and a
        // length past the body.
        let mut trailing = wire.clone();
        trailing.push(0);
        let body = (trailing.len() - 4) as u32;
        trailing[..4].copy_from_slice(&body.to_be_bytes());
        assert!(receive_request(&mut trailing.as_slice()).is_err());
        let long = vec![b'x'; MAX_LINE + 1];
        let mut wire = Vec::new();
        send_request(&mut wire, &long, b"", b"").unwrap();
        assert!(receive_request(&mut wire.as_slice()).is_err());
        let mut huge = Vec::new();
        huge.extend_from_slice(&(u32::MAX).to_be_bytes());
        assert!(receive_request(&mut huge.as_slice()).is_err());
        let mut lying = Vec::new();
        lying.extend_from_slice(&8u32.to_be_bytes());
        lying.extend_from_slice(&100u32.to_be_bytes());
        lying.extend_from_slice(b"abcd");
        assert!(receive_request(&mut lying.as_slice()).is_err());
    }

    #[test]
    fn answers_are_one_known_byte() {
        for answer in [
            Answer::Granted,
            Answer::Denied,
            Answer::DeniedClosing,
            Answer::Unavailable,
        ] {
            let mut wire = Vec::new();
            send_answer(&mut wire, answer).unwrap();
            assert_eq!(receive_answer(&mut wire.as_slice()).unwrap(), answer);
        }
        assert!(receive_answer(&mut &b"x"[..]).is_err());
        assert!(receive_answer(&mut &b""[..]).is_err());
    }
}
