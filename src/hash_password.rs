//! `pop1d --hash-password`: read a password from the operator and print the
//! yescrypt hash for a passwd-file line, in the manner of `doveadm pw`.
//!
//! From a terminal the password is read twice with echo off, and the terminal is
//! restored on every way out (a signal included). From anything else it is read
//! once, one trailing newline stripped. It must never echo, log or print the
//! password, and stdout holds only the hash.

use std::io::{IsTerminal, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::PollFlags;
use zeroize::Zeroizing;

use pop1d::auth::{new_yescrypt_hash, CRYPT_MAX_PASSPHRASE_SIZE};
use pop1d::edge::signals::{Stop, Wait};

/// The most octets read for one password: more than crypt(3) takes, so that a
/// longer one is refused with its reason rather than cut.
const READ_LIMIT: usize = 2 * CRYPT_MAX_PASSPHRASE_SIZE;

/// Read the password, print its hash: exit 0, or 2 with the reason on stderr.
pub fn run() -> ExitCode {
    match read_and_hash() {
        Ok(hash) => {
            let mut stdout = std::io::stdout().lock();
            match writeln!(stdout, "{hash}").and_then(|()| stdout.flush()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => fail(&format!("cannot write the hash: {error}")),
            }
        }
        Err(reason) => fail(&reason),
    }
}

fn fail(reason: &str) -> ExitCode {
    let _ = writeln!(std::io::stderr(), "pop1d: {reason}");
    ExitCode::from(2)
}

fn read_and_hash() -> Result<String, String> {
    let stdin = std::io::stdin();
    let stop = Stop::install().map_err(|e| format!("cannot install signal handlers: {e}"))?;
    let password = if stdin.is_terminal() {
        let _echo_off = EchoOff::new(stdin.as_fd())?;
        let first = prompt(&stop, stdin.as_fd(), "Password: ")?;
        let second = prompt(&stop, stdin.as_fd(), "Again: ")?;
        if first != second {
            return Err("the two passwords differ; nothing made".into());
        }
        first
    } else {
        let mut all = read_until(&stop, stdin.as_fd(), |_| false)?;
        strip_one_newline(&mut all);
        all
    };
    if password.contains(&b'\n') || password.contains(&b'\r') {
        return Err("a password cannot hold a line break: PASS takes one line".into());
    }
    new_yescrypt_hash(&password).map_err(str::to_owned)
}

/// Write `text` to stderr, then read one line from the terminal.
fn prompt(stop: &Stop, fd: BorrowedFd<'_>, text: &str) -> Result<Zeroizing<Vec<u8>>, String> {
    let _ = std::io::stderr().write_all(text.as_bytes());
    let line = read_until(stop, fd, |got| got.ends_with(b"\n"));
    // Echo is off: the newline the operator typed was not shown.
    let _ = std::io::stderr().write_all(b"\n");
    let mut line = line?;
    if !line.ends_with(b"\n") {
        return Err("no password given (end of input)".into());
    }
    strip_one_newline(&mut line);
    Ok(line)
}

/// Read from `fd` until end of input or until `done` says so, at most
/// [`READ_LIMIT`] octets; a signal (Ctrl-C) ends the reading with an error.
fn read_until(
    stop: &Stop,
    fd: BorrowedFd<'_>,
    done: impl Fn(&[u8]) -> bool,
) -> Result<Zeroizing<Vec<u8>>, String> {
    let mut got = Zeroizing::new(Vec::with_capacity(READ_LIMIT + 1));
    let mut chunk = Zeroizing::new([0u8; 256]);
    let forever = Instant::now() + Duration::from_secs(365 * 24 * 3600);
    while !done(&got) {
        match stop.wait(fd, PollFlags::POLLIN, forever) {
            Wait::Ready => {}
            Wait::Stopped => return Err("interrupted; nothing made".into()),
            Wait::TimedOut => return Err("no password given".into()),
            Wait::Failed(errno) => return Err(format!("cannot read the password: {errno}")),
        }
        match nix::unistd::read(fd, &mut chunk[..]) {
            Ok(0) => break,
            Ok(n) if got.len() + n > READ_LIMIT => {
                return Err(format!(
                    "the password is too long: crypt(3) takes at most {} octets",
                    CRYPT_MAX_PASSPHRASE_SIZE - 1
                ))
            }
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(Errno::EINTR | Errno::EAGAIN) => {}
            Err(errno) => return Err(format!("cannot read the password: {errno}")),
        }
    }
    Ok(got)
}

/// Remove one trailing LF, or CR LF.
fn strip_one_newline(text: &mut Vec<u8>) {
    if text.ends_with(b"\n") {
        text.pop();
        if text.ends_with(b"\r") {
            text.pop();
        }
    }
}

/// The terminal's echo turned off for as long as this lives; its settings as
/// they were are put back when it is dropped (also when a panic unwinds).
struct EchoOff<'a> {
    fd: BorrowedFd<'a>,
    saved: libc::termios,
}

impl<'a> EchoOff<'a> {
    fn new(fd: BorrowedFd<'a>) -> Result<EchoOff<'a>, String> {
        // SAFETY: an all-zero `termios` is a valid value of this plain C struct;
        // tcgetattr overwrites it.
        let mut saved: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: `fd` is an open descriptor borrowed for the call; `saved` is a
        // valid, writable `termios`.
        if unsafe { libc::tcgetattr(fd.as_raw_fd(), &mut saved) } != 0 {
            return Err(format!(
                "cannot read the terminal's settings: {}",
                std::io::Error::last_os_error()
            ));
        }
        let mut quiet = saved;
        quiet.c_lflag &= !(libc::ECHO | libc::ECHOE | libc::ECHOK | libc::ECHONL);
        // SAFETY: `fd` is an open descriptor; `quiet` is a valid `termios` read
        // from it and changed only in its flags.
        if unsafe { libc::tcsetattr(fd.as_raw_fd(), libc::TCSAFLUSH, &quiet) } != 0 {
            return Err(format!(
                "cannot turn the terminal's echo off: {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok(EchoOff { fd, saved })
    }
}

impl Drop for EchoOff<'_> {
    fn drop(&mut self) {
        // SAFETY: `fd` is still open (borrowed for this value's life); `saved` is
        // the `termios` tcgetattr filled in.
        unsafe { libc::tcsetattr(self.fd.as_raw_fd(), libc::TCSANOW, &self.saved) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_newline_is_stripped() {
        for (given, want) in [
            (&b"pw\n"[..], &b"pw"[..]),
            (b"pw\r\n", b"pw"),
            (b"pw", b"pw"),
            (b"pw\n\n", b"pw\n"),
            (b" pw \n", b" pw "),
            (b"\n", b""),
        ] {
            let mut text = given.to_vec();
            strip_one_newline(&mut text);
            assert_eq!(text, want, "{given:?}");
        }
    }
}
