//! The types that cross the boundary of the sans-I/O session: what the caller
//! hands in (lines, verdicts, plain outcomes of writes), what the session hands
//! out (replies, actions, events), and the two traits through which it reaches
//! mailboxes.
//!
//! Nothing here does I/O or knows which edge drives the session: a binary on fd
//! 0/1, a test, a fuzzer, or later a privilege-separated monitor. No type raised
//! by an edge (an `io::Error`, a signal) lives here; the edge turns what it saw
//! into a [`WriteFailure`] first. Nothing here may carry a password into a
//! reply, an event or a `Debug` line.

use std::io::Write;

use zeroize::Zeroizing;

/// How a transaction was begun.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// RETR: read, keep.
    Retr,
    /// RDEL: read, then delete what was sent once the client confirms with RCVD.
    Rdel,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Retr => "RETR",
            Mode::Rdel => "RDEL",
        }
    }
}

/// One reply line, written for the client: never a path, a password, or whether a
/// user exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Ok(&'static str),
    Err(&'static str),
    Count(u64),
}

impl Reply {
    /// The reply as it goes on the wire, CR LF included.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Reply::Ok("") => out.extend_from_slice(b"+OK"),
            Reply::Ok(text) => {
                out.extend_from_slice(b"+OK ");
                out.extend_from_slice(text.as_bytes());
            }
            Reply::Err("") => out.extend_from_slice(b"-ERR"),
            Reply::Err(text) => {
                out.extend_from_slice(b"-ERR ");
                out.extend_from_slice(text.as_bytes());
            }
            Reply::Count(n) => {
                // write! into a Vec cannot fail.
                let _ = write!(out, "#{n}");
            }
        }
        out.extend_from_slice(b"\r\n");
    }
}

/// Why a session ended: chooses the exit status and the log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Quit,
    EndOfInput,
    /// The client was silent for too long.
    Timeout,
    /// The client stopped reading our replies or data for too long.
    WriteTimeout,
    TooManyFailures,
    /// The client went away or could not be written to.
    ClientGone,
    /// A signal asked the server to stop.
    Terminated,
    /// The server could not send what it had counted; the connection is aborted.
    MailboxFault,
    /// A login child's part is over: the password was right, and the monitor
    /// process serves the rest of the session. Never produced by the session.
    HandedOver,
    /// A login child's monitor process went away.
    MonitorGone,
}

impl End {
    pub fn describe(self) -> &'static str {
        match self {
            End::Quit => "quit",
            End::EndOfInput => "end of input",
            End::Timeout => "timeout",
            End::WriteTimeout => "timeout, client stopped reading",
            End::TooManyFailures => "too many login failures",
            End::ClientGone => "client write error",
            End::Terminated => "terminated by signal",
            End::MailboxFault => "mailbox read error",
            End::HandedOver => "logged in, handed over",
            End::MonitorGone => "the monitor process is gone",
        }
    }
}

/// What became of a transaction, for the operator's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Kept,
    Deleted {
        appended_kept: u64,
    },
    NotDeleted(String),
    /// Deletion started and failed: sent mail may partly remain; none unsent lost.
    DeletionIncomplete(String),
    /// Ended without RCVD: nothing deleted. `stage` says how far the data got.
    Aborted {
        stage: Stage,
        why: &'static str,
    },
}

/// How far a transaction's data got before it was aborted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    BeforeRcev,
    DuringRcev,
    AfterRcev,
}

/// Something the operator (and fail2ban) wants in the log. User names in events
/// are already escaped for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Login {
        user: String,
    },
    LoginFailed {
        user: String,
    },
    TooManyFailures {
        user: String,
    },
    /// Sign-in refused because the back end cannot verify anyone (misconfiguration).
    AuthUnavailable {
        user: String,
    },
    /// This password could not be checked; `why` is for the operator.
    CannotVerify {
        user: String,
        why: &'static str,
    },
    Busy {
        user: String,
    },
    OpenFailed {
        user: String,
        why: String,
    },
    Transaction {
        user: String,
        mode: Mode,
        bytes: u64,
        outcome: Outcome,
    },
}

impl Event {
    /// Whether this is about a login attempt: with privilege separation the
    /// monitor, which verifies, logs these, and the login child does not.
    pub fn is_about_login(&self) -> bool {
        matches!(
            self,
            Event::Login { .. }
                | Event::LoginFailed { .. }
                | Event::TooManyFailures { .. }
                | Event::AuthUnavailable { .. }
                | Event::CannotVerify { .. }
        )
    }
}

/// A password check the session asks for. The caller answers it with
/// [`crate::session::Session::verdict`] before it hands the session another line.
#[derive(PartialEq, Eq)]
pub struct Credentials {
    /// The name given to USER, when it could be a real one; `None` when it never
    /// could: the check must then cost what a real one costs, and be denied.
    pub user: Option<String>,
    /// The name exactly as the client gave it, for a checker in another
    /// process that must apply USER's rules again itself.
    pub given: Vec<u8>,
    /// Wiped when dropped.
    pub password: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("given", &self.given)
            .field("password", &"(hidden)")
            .finish()
    }
}

/// What the caller must do, in order.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    Reply(Reply),
    /// Check this password and hand the answer to `Session::verdict`.
    Verify(Credentials),
    /// Send the open mailbox's data now: call `Session::send_mail`.
    SendMail,
    /// Wait the authentication delay before going on.
    AuthDelay,
    Log(Event),
    /// End the session (after the actions before this one).
    Close(End),
}

/// The answer of a password check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Granted,
    Denied,
    /// Nobody can be verified (no password back end is configured).
    Unavailable,
    /// This password could not be checked (the server is out of memory, or the
    /// stored hash is malformed). The client sees a failure; the log says why.
    Unverifiable(&'static str),
}

/// Why a mailbox could not be opened.
#[derive(Debug)]
pub enum OpenError {
    /// Somebody else held the lock for longer than the lock timeout.
    Busy,
    /// Anything else; the text is for the operator's log, never for the client.
    Failed(String),
}

/// Why the client could not take what was written: the edge's plain verdict on
/// a failed write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteFailure {
    /// The client stopped reading for longer than the timeout.
    TimedOut,
    /// A signal asked the server to stop while it waited to write.
    Stopped,
    /// The connection is gone or broken.
    Gone,
}

impl WriteFailure {
    /// How the session ends after this failure.
    pub fn end(self) -> End {
        match self {
            WriteFailure::TimedOut => End::WriteTimeout,
            WriteFailure::Stopped => End::Terminated,
            WriteFailure::Gone => End::ClientGone,
        }
    }
}

/// Why RCEV could not send all the counted octets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    Client(WriteFailure),
    /// The mailbox could not be read as counted; the text is for the log.
    Mailbox(String),
}

/// Why RCVD could not delete the counted mail.
#[derive(Debug, PartialEq, Eq)]
pub enum DeleteError {
    /// Nothing was changed; the text is for the log.
    Untouched(String),
    /// Deletion began and could not finish: no unsent byte is lost, but a fragment
    /// of sent mail may be left at the front, and a piece of unsent mail may stand
    /// twice inside one message. The text is for the log.
    Incomplete(String),
}

/// Where mail data goes: the client, as the edge reaches it.
pub trait Client {
    /// Write all of `data`. While the client does not take it, call `keep_alive`
    /// now and then (at least every dot-lock refresh interval), so that a stalled
    /// reader cannot let the mailbox's locks go stale.
    fn write_data(&mut self, data: &[u8], keep_alive: &mut dyn FnMut())
        -> Result<(), WriteFailure>;
}

/// A `Vec` takes everything at once: the client of tests and fuzzing.
impl Client for Vec<u8> {
    fn write_data(&mut self, data: &[u8], _: &mut dyn FnMut()) -> Result<(), WriteFailure> {
        self.extend_from_slice(data);
        Ok(())
    }
}

/// What the session needs from the world after a login: the user's mailbox.
/// Implemented by the file-backed store of the binary, and by the in-memory
/// store of [`crate::testing`].
pub trait Backend {
    type Mailbox: Mailbox;
    /// Open, lock and count the user's own mailbox.
    fn open(&mut self, user: &str, mode: Mode) -> Result<Self::Mailbox, OpenError>;
}

/// An open, locked, counted mailbox. Dropping it ends the transaction without
/// deleting anything and releases the locks.
pub trait Mailbox {
    /// The exact number of octets [`Mailbox::send`] writes.
    fn count(&self) -> u64;
    /// Write exactly `count()` octets, or fail.
    fn send(&mut self, client: &mut dyn Client) -> Result<(), SendError>;
    /// Keep the locks fresh while the transaction waits for the client (touch a
    /// dot-lock when its refresh is due). Cheap when nothing is due.
    fn keep_alive(&mut self);
    /// Delete what was counted and sent. `Ok` carries the number of bytes that
    /// arrived after the count and were kept.
    fn delete_sent(self) -> Result<u64, DeleteError>;
}
