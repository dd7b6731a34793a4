//! The RFC 918 session: the state machine of PROTOCOL.md.
//!
//! Sans-I/O: it turns client lines into replies and actions, and asks a [`Backend`]
//! to verify passwords and open mailboxes. It never touches a file, a socket, a
//! clock or a log itself; the caller (the binary's edge, a test, a fuzzer) owns
//! those. It must never delete mail except through [`Mailbox::delete_sent`] after a
//! completed RCEV and an RCVD, and it must never put a password into a reply or an
//! event.

use std::io::Write;

use crate::command::{self, Command};
use crate::username;

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

pub const GREETING: Reply = Reply::Ok("POP1 server ready");
const AUTH_FAILED: Reply = Reply::Err("authentication failed");
const TOO_MANY_FAILURES: Reply = Reply::Err("too many authentication failures, closing");
const OUT_OF_ORDER: Reply = Reply::Err("command out of order");
const UNKNOWN: Reply = Reply::Err("unknown command");
const SYNTAX: Reply = Reply::Err("syntax error");
const NO_SUCH_MAILBOX: Reply = Reply::Err("no such mailbox");
pub const LINE_TOO_LONG: Reply = Reply::Err("line too long");
pub const TIMED_OUT: Reply = Reply::Err("timeout, closing");

/// Why a session ended: chooses the exit status and the log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Quit,
    EndOfInput,
    Timeout,
    TooManyFailures,
    /// The client went away or could not be written to.
    ClientGone,
    /// A signal asked the server to stop.
    Terminated,
    /// The server could not send what it had counted; the connection is aborted.
    MailboxFault,
}

impl End {
    pub fn describe(self) -> &'static str {
        match self {
            End::Quit => "quit",
            End::EndOfInput => "end of input",
            End::Timeout => "timeout",
            End::TooManyFailures => "too many login failures",
            End::ClientGone => "client write error",
            End::Terminated => "terminated by signal",
            End::MailboxFault => "mailbox read error",
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

/// What the caller must do, in order.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    Reply(Reply),
    /// Send the open mailbox's data now: call [`Session::send_mail`].
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

/// The error a writer gives when a signal asked the server to stop mid-write.
#[derive(Debug)]
pub struct StopRequested;

impl std::fmt::Display for StopRequested {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stopped by a signal")
    }
}

impl std::error::Error for StopRequested {}

/// Why RCEV could not send all the counted octets.
#[derive(Debug)]
pub enum SendError {
    /// Writing to the client failed or timed out.
    Client(std::io::Error),
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

/// What the session needs from the world. Implemented by the file-backed store of
/// the binary, and by in-memory models in tests.
pub trait Backend {
    type Mailbox: Mailbox;
    /// Check a password. `user` is `None` when the name given could never be valid;
    /// the check must then cost the same as for a real user and be denied.
    fn verify(&mut self, user: Option<&str>, password: &[u8]) -> Verdict;
    /// Open, lock and count the user's own mailbox.
    fn open(&mut self, user: &str, mode: Mode) -> Result<Self::Mailbox, OpenError>;
}

/// An open, locked, counted mailbox. Dropping it ends the transaction without
/// deleting anything and releases the locks.
pub trait Mailbox {
    /// The exact number of octets [`Mailbox::send`] writes.
    fn count(&self) -> u64;
    /// Write exactly `count()` octets, or fail.
    fn send(&mut self, out: &mut dyn Write) -> Result<(), SendError>;
    /// Delete what was counted and sent. `Ok` carries the number of bytes that
    /// arrived after the count and were kept.
    fn delete_sent(self) -> Result<u64, DeleteError>;
}

struct Transaction<M> {
    user: String,
    mode: Mode,
    mailbox: M,
}

enum State<M> {
    /// No user given.
    Auth,
    /// USER given; `None` when the name could never be valid.
    Pass(GivenName),
    Idle(String),
    Open(Transaction<M>),
    Sent(Transaction<M>),
}

struct GivenName {
    /// The name, when it could be a real one.
    usable: Option<String>,
    /// As the log shows it.
    shown: String,
}

/// One client session.
pub struct Session<B: Backend> {
    backend: B,
    state: State<B::Mailbox>,
    failures: u32,
    max_failures: u32,
}

impl<B: Backend> Session<B> {
    pub fn new(backend: B, max_failures: u32) -> Self {
        Session {
            backend,
            state: State::Auth,
            failures: 0,
            max_failures: max_failures.max(1),
        }
    }

    /// Handle one complete client line (terminator removed).
    pub fn handle_line(&mut self, line: &[u8]) -> Vec<Action> {
        let command = command::parse(line);
        let state = std::mem::replace(&mut self.state, State::Auth);
        let (state, actions) = self.step(state, command);
        self.state = state;
        actions
    }

    /// A line longer than the limit was discarded: refused, and the state stays.
    pub fn line_too_long(&mut self) -> Vec<Action> {
        vec![Action::Reply(LINE_TOO_LONG)]
    }

    /// The client closed its side. Nothing is deleted.
    pub fn end_of_input(&mut self) -> Vec<Action> {
        let mut actions = self.abort("end of input");
        actions.push(Action::Close(End::EndOfInput));
        actions
    }

    /// The client was silent, or stopped reading, for too long.
    pub fn timed_out(&mut self) -> Vec<Action> {
        let mut actions = self.abort("timeout");
        actions.push(Action::Reply(TIMED_OUT));
        actions.push(Action::Close(End::Timeout));
        actions
    }

    /// The session must end now for a reason outside the protocol (a signal, a
    /// write error). Nothing is deleted.
    pub fn stop(&mut self, end: End) -> Vec<Action> {
        let mut actions = self.abort(end.describe());
        actions.push(Action::Close(end));
        actions
    }

    /// After [`Action::SendMail`]: send the counted data. On failure the
    /// transaction is aborted (nothing deleted) and the session must close.
    pub fn send_mail(&mut self, out: &mut dyn Write) -> Vec<Action> {
        let State::Open(mut txn) = std::mem::replace(&mut self.state, State::Auth) else {
            unreachable!("SendMail is only asked for in the OPEN state");
        };
        match txn.mailbox.send(out) {
            Ok(()) => {
                self.state = State::Sent(txn);
                Vec::new()
            }
            Err(error) => {
                let (why, end) = match &error {
                    SendError::Client(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                        ("timeout while sending", End::Timeout)
                    }
                    SendError::Client(e)
                        if e.get_ref().is_some_and(|inner| inner.is::<StopRequested>()) =>
                    {
                        ("terminated by signal while sending", End::Terminated)
                    }
                    SendError::Client(_) => ("client write error", End::ClientGone),
                    SendError::Mailbox(_) => ("mailbox read error", End::MailboxFault),
                };
                let mut actions = Vec::new();
                if let SendError::Mailbox(detail) = &error {
                    actions.push(Action::Log(Event::OpenFailed {
                        user: shown(&txn.user),
                        why: detail.clone(),
                    }));
                }
                actions.push(aborted(txn, Stage::DuringRcev, why));
                self.state = State::Auth;
                actions.push(Action::Close(end));
                actions
            }
        }
    }

    fn abort(&mut self, why: &'static str) -> Vec<Action> {
        abort_state(std::mem::replace(&mut self.state, State::Auth), why)
    }

    fn step(
        &mut self,
        state: State<B::Mailbox>,
        command: Command<'_>,
    ) -> (State<B::Mailbox>, Vec<Action>) {
        use Command as C;
        use State as S;
        let reply = |r: Reply| vec![Action::Reply(r)];
        match (state, command) {
            (state, C::Quit) => {
                let mut actions = abort_state(state, "quit");
                actions.push(Action::Reply(Reply::Ok("bye")));
                actions.push(Action::Close(End::Quit));
                (S::Auth, actions)
            }
            (state, C::Noop) => (state, reply(Reply::Ok(""))),
            (S::Open(txn), C::Rset) => reset(txn, Stage::BeforeRcev),
            (S::Sent(txn), C::Rset) => reset(txn, Stage::AfterRcev),
            (S::Idle(user), C::Rset) => (S::Idle(user), reply(Reply::Ok(""))),
            (S::Auth | S::Pass(_), C::Rset) => (S::Auth, reply(Reply::Ok(""))),

            (S::Auth, C::User(name)) => (S::Pass(given_name(name)), reply(Reply::Ok(""))),
            (S::Pass(name), C::Pass(password)) => self.check_password(name, password),
            // Anything else while a password is awaited forgets the name.
            (S::Pass(_), C::Unknown) => (S::Auth, reply(UNKNOWN)),
            (S::Pass(_), C::Syntax) => (S::Auth, reply(SYNTAX)),
            (S::Pass(_), _) => (S::Auth, reply(OUT_OF_ORDER)),

            (S::Idle(user), C::Retr(name)) => self.begin(user, name, Mode::Retr),
            (S::Idle(user), C::Rdel(name)) => self.begin(user, name, Mode::Rdel),
            (S::Open(txn), C::Rcev) => (S::Open(txn), vec![Action::SendMail]),
            (S::Sent(txn), C::Rcvd) => finish(txn),

            (state, C::Unknown) => (state, reply(UNKNOWN)),
            (state, C::Syntax) => (state, reply(SYNTAX)),
            (state, _) => (state, reply(OUT_OF_ORDER)),
        }
    }

    fn check_password(
        &mut self,
        name: GivenName,
        password: &[u8],
    ) -> (State<B::Mailbox>, Vec<Action>) {
        match (
            self.backend.verify(name.usable.as_deref(), password),
            name.usable,
        ) {
            (Verdict::Granted, Some(user)) => {
                self.failures = 0;
                let actions = vec![
                    Action::Log(Event::Login { user: name.shown }),
                    Action::Reply(Reply::Ok("")),
                ];
                (State::Idle(user), actions)
            }
            (Verdict::Unavailable, _) => {
                let actions = vec![
                    Action::Log(Event::AuthUnavailable { user: name.shown }),
                    Action::Reply(Reply::Err("no password database is configured")),
                ];
                (State::Auth, actions)
            }
            (verdict @ (Verdict::Denied | Verdict::Granted | Verdict::Unverifiable(_)), _) => {
                // To the client a password that could not be checked is a failed
                // one, so that no reply tells users apart; the log says which,
                // and fail2ban, which counts `login failed` lines, never bans a
                // client for the server's shortage or a broken entry.
                let logged = match verdict {
                    Verdict::Unverifiable(why) => Event::CannotVerify {
                        user: name.shown.clone(),
                        why,
                    },
                    _ => Event::LoginFailed {
                        user: name.shown.clone(),
                    },
                };
                self.failures += 1;
                if self.failures >= self.max_failures {
                    let actions = vec![
                        // fail2ban counts `login failed` lines: the last one too.
                        Action::Log(logged),
                        Action::Log(Event::TooManyFailures { user: name.shown }),
                        Action::AuthDelay,
                        Action::Reply(TOO_MANY_FAILURES),
                        Action::Close(End::TooManyFailures),
                    ];
                    (State::Auth, actions)
                } else {
                    let actions = vec![
                        Action::Log(logged),
                        Action::AuthDelay,
                        Action::Reply(AUTH_FAILED),
                    ];
                    (State::Auth, actions)
                }
            }
        }
    }

    fn begin(
        &mut self,
        user: String,
        mailbox_name: &[u8],
        mode: Mode,
    ) -> (State<B::Mailbox>, Vec<Action>) {
        // Only the user's own mailbox exists for them; the same reply whether or
        // not a file of another name exists.
        if mailbox_name != user.as_bytes() {
            return (State::Idle(user), vec![Action::Reply(NO_SUCH_MAILBOX)]);
        }
        match self.backend.open(&user, mode) {
            Ok(mailbox) => {
                let count = mailbox.count();
                let txn = Transaction {
                    user,
                    mode,
                    mailbox,
                };
                (State::Open(txn), vec![Action::Reply(Reply::Count(count))])
            }
            Err(OpenError::Busy) => {
                let actions = vec![
                    Action::Log(Event::Busy { user: shown(&user) }),
                    Action::Reply(Reply::Err("mailbox busy, try again later")),
                ];
                (State::Idle(user), actions)
            }
            Err(OpenError::Failed(why)) => {
                let actions = vec![
                    Action::Log(Event::OpenFailed {
                        user: shown(&user),
                        why,
                    }),
                    Action::Reply(Reply::Err("mailbox unavailable")),
                ];
                (State::Idle(user), actions)
            }
        }
    }
}

fn given_name(raw: &[u8]) -> GivenName {
    let usable = std::str::from_utf8(raw)
        .ok()
        .filter(|name| username::is_safe(name))
        .map(str::to_owned);
    GivenName {
        usable,
        shown: username::escape_for_log(raw),
    }
}

fn shown(user: &str) -> String {
    username::escape_for_log(user.as_bytes())
}

/// RSET in a transaction: end it, deleting nothing, and go back to IDLE.
fn reset<M: Mailbox>(txn: Transaction<M>, stage: Stage) -> (State<M>, Vec<Action>) {
    let user = txn.user.clone();
    let actions = vec![aborted(txn, stage, "rset"), Action::Reply(Reply::Ok(""))];
    (State::Idle(user), actions)
}

/// End whatever transaction `state` holds, deleting nothing.
fn abort_state<M: Mailbox>(state: State<M>, why: &'static str) -> Vec<Action> {
    match state {
        State::Open(txn) => vec![aborted(txn, Stage::BeforeRcev, why)],
        State::Sent(txn) => vec![aborted(txn, Stage::AfterRcev, why)],
        _ => Vec::new(),
    }
}

fn aborted<M: Mailbox>(txn: Transaction<M>, stage: Stage, why: &'static str) -> Action {
    let bytes = txn.mailbox.count();
    // Dropping the mailbox releases its locks with nothing deleted.
    drop(txn.mailbox);
    Action::Log(Event::Transaction {
        user: shown(&txn.user),
        mode: txn.mode,
        bytes,
        outcome: Outcome::Aborted { stage, why },
    })
}

fn finish<M: Mailbox>(txn: Transaction<M>) -> (State<M>, Vec<Action>) {
    let Transaction {
        user,
        mode,
        mailbox,
    } = txn;
    let bytes = mailbox.count();
    let (outcome, reply) = match mode {
        Mode::Retr => {
            drop(mailbox);
            (Outcome::Kept, Reply::Ok(""))
        }
        Mode::Rdel => match mailbox.delete_sent() {
            Ok(appended_kept) => (Outcome::Deleted { appended_kept }, Reply::Ok("")),
            Err(DeleteError::Untouched(why)) => (
                Outcome::NotDeleted(why),
                Reply::Err("mailbox changed, mail not deleted"),
            ),
            Err(DeleteError::Incomplete(why)) => (
                Outcome::DeletionIncomplete(why),
                Reply::Err("mail only partly deleted"),
            ),
        },
    };
    let event = Event::Transaction {
        user: shown(&user),
        mode,
        bytes,
        outcome,
    };
    (
        State::Idle(user),
        vec![Action::Log(event), Action::Reply(reply)],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A mailbox in memory: what a test needs to drive the session without files.
    struct Memory(Vec<u8>);

    impl Mailbox for Memory {
        fn count(&self) -> u64 {
            self.0.len() as u64
        }
        fn send(&mut self, out: &mut dyn Write) -> Result<(), SendError> {
            out.write_all(&self.0).map_err(SendError::Client)
        }
        fn delete_sent(self) -> Result<u64, DeleteError> {
            Ok(0)
        }
    }

    struct Store;

    impl Backend for Store {
        type Mailbox = Memory;
        fn verify(&mut self, user: Option<&str>, password: &[u8]) -> Verdict {
            match (user, password) {
                (Some("fred"), b"pw") => Verdict::Granted,
                (Some("anne"), _) => Verdict::Unverifiable("out of memory"),
                _ => Verdict::Denied,
            }
        }
        fn open(&mut self, _user: &str, _mode: Mode) -> Result<Memory, OpenError> {
            Ok(Memory(b"mail".to_vec()))
        }
    }

    fn outcomes(actions: &[Action]) -> Vec<Outcome> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Log(Event::Transaction { outcome, .. }) => Some(outcome.clone()),
                _ => None,
            })
            .collect()
    }

    fn logged_in() -> Session<Store> {
        let mut session = Session::new(Store, 3);
        session.handle_line(b"USER fred");
        assert_eq!(
            session.handle_line(b"PASS pw").last(),
            Some(&Action::Reply(Reply::Ok("")))
        );
        session
    }

    #[test]
    fn a_password_that_cannot_be_checked_looks_failed_but_is_logged_apart() {
        let mut session = Session::new(Store, 2);
        let attempt = |session: &mut Session<Store>, user: &[u8]| {
            session.handle_line(&[b"USER ", user].concat());
            session.handle_line(b"PASS pw")
        };
        let failed = attempt(&mut session, b"ghost");
        let unchecked = attempt(&mut session, b"anne");
        // The same replies, delay and count: the second attempt ends it.
        fn without_logs(actions: &[Action]) -> Vec<&Action> {
            actions
                .iter()
                .filter(|a| !matches!(a, Action::Log(_)))
                .collect()
        }
        assert_eq!(
            without_logs(&failed),
            [&Action::AuthDelay, &Action::Reply(AUTH_FAILED)]
        );
        assert_eq!(
            without_logs(&unchecked),
            [
                &Action::AuthDelay,
                &Action::Reply(TOO_MANY_FAILURES),
                &Action::Close(End::TooManyFailures)
            ]
        );
        assert!(failed.contains(&Action::Log(Event::LoginFailed {
            user: "ghost".into()
        })));
        assert!(unchecked.contains(&Action::Log(Event::CannotVerify {
            user: "anne".into(),
            why: "out of memory"
        })));
        assert!(!unchecked
            .iter()
            .any(|a| matches!(a, Action::Log(Event::LoginFailed { .. }))));
    }

    #[test]
    fn an_abort_says_how_far_the_data_got() {
        let aborted = |stage, why| vec![Outcome::Aborted { stage, why }];
        let mut session = logged_in();
        assert_eq!(
            session.handle_line(b"RDEL fred"),
            vec![Action::Reply(Reply::Count(4))]
        );
        assert_eq!(
            outcomes(&session.handle_line(b"RSET")),
            aborted(Stage::BeforeRcev, "rset")
        );

        session.handle_line(b"RETR fred");
        assert_eq!(session.handle_line(b"RCEV"), vec![Action::SendMail]);
        let mut out = Vec::new();
        assert!(session.send_mail(&mut out).is_empty());
        assert_eq!(out, b"mail");
        assert_eq!(
            outcomes(&session.end_of_input()),
            aborted(Stage::AfterRcev, "end of input")
        );
    }

    #[test]
    fn a_failed_send_aborts_during_rcev_and_closes() {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut session = logged_in();
        session.handle_line(b"RDEL fred");
        session.handle_line(b"RCEV");
        let actions = session.send_mail(&mut Broken);
        assert_eq!(
            outcomes(&actions),
            vec![Outcome::Aborted {
                stage: Stage::DuringRcev,
                why: "client write error"
            }]
        );
        assert_eq!(actions.last(), Some(&Action::Close(End::ClientGone)));
        // Nothing is open any more: RCVD cannot delete.
        assert_eq!(
            session.handle_line(b"RCVD"),
            vec![Action::Reply(OUT_OF_ORDER)]
        );
    }
}
