//! Parsing one client line into a command.
//!
//! Pure: takes the bytes of a line (terminator already removed) and returns what the
//! client asked for. It never allocates for the argument, which may be a password,
//! so that the only copy of a password stays in the input buffer that is wiped.

/// A client command as PROTOCOL.md names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command<'a> {
    User(&'a [u8]),
    Pass(&'a [u8]),
    Retr(&'a [u8]),
    Rdel(&'a [u8]),
    Rcev,
    Rcvd,
    Quit,
    Noop,
    Rset,
    /// A known keyword that takes no argument was given one, or one that needs an
    /// argument was given none.
    Syntax,
    /// Anything else: an unknown keyword, an empty line, control bytes or invalid
    /// UTF-8 in the keyword.
    Unknown,
}

/// Parse a line. The keyword is everything up to the first space; the argument is
/// everything after that one space, taken as it is.
pub fn parse(line: &[u8]) -> Command<'_> {
    let (keyword, argument) = match memchr::memchr(b' ', line) {
        Some(at) => (&line[..at], Some(&line[at + 1..])),
        None => (line, None),
    };
    if keyword.len() != 4 || !keyword.iter().all(u8::is_ascii_alphabetic) {
        return Command::Unknown;
    }
    let mut upper = [0u8; 4];
    upper.copy_from_slice(keyword);
    upper.make_ascii_uppercase();
    match (&upper, argument) {
        (b"USER", Some(arg)) if !arg.is_empty() => Command::User(arg),
        (b"PASS", Some(arg)) => Command::Pass(arg),
        (b"PASS", None) => Command::Pass(b""),
        (b"RETR", Some(arg)) if !arg.is_empty() => Command::Retr(arg),
        (b"RDEL", Some(arg)) if !arg.is_empty() => Command::Rdel(arg),
        (b"RCEV", None) => Command::Rcev,
        (b"RCVD", None) => Command::Rcvd,
        (b"QUIT", None) => Command::Quit,
        (b"NOOP", None) => Command::Noop,
        (b"RSET", None) => Command::Rset,
        (b"USER" | b"RETR" | b"RDEL" | b"RCEV" | b"RCVD" | b"QUIT" | b"NOOP" | b"RSET", _) => {
            Command::Syntax
        }
        _ => Command::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_are_case_insensitive() {
        assert_eq!(parse(b"user fred"), Command::User(b"fred"));
        assert_eq!(parse(b"UsEr fred"), Command::User(b"fred"));
        assert_eq!(parse(b"rcev"), Command::Rcev);
    }

    #[test]
    fn the_argument_is_the_rest_of_the_line() {
        assert_eq!(
            parse(b"PASS  two  spaces "),
            Command::Pass(b" two  spaces ")
        );
        assert_eq!(parse(b"PASS"), Command::Pass(b""));
    }

    #[test]
    fn bad_keywords_are_unknown() {
        for line in [
            &b""[..],
            b" ",
            b"US\0R x",
            b"USE\xffR",
            b"\x01QUIT",
            b"QUITX",
            b"QU1T",
        ] {
            assert_eq!(parse(line), Command::Unknown, "{line:?}");
        }
    }

    #[test]
    fn arguments_must_fit_the_keyword() {
        assert_eq!(parse(b"QUIT now"), Command::Syntax);
        assert_eq!(parse(b"RCVD "), Command::Syntax);
        assert_eq!(parse(b"USER"), Command::Syntax);
        assert_eq!(parse(b"RETR "), Command::Syntax);
    }
}
