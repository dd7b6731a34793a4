//! The RFC 918 session: the state table of PROTOCOL.md.
//!
//! Sans-I/O: it turns client lines into replies and actions. A password check is
//! a request ([`Action::Verify`]) that the caller answers later with
//! [`Session::verdict`]; mailboxes are reached through a [`Backend`]. It never
//! touches a file, a socket, a clock or a log itself; the caller (the binary's
//! edge, a test, a fuzzer, a privilege-separated monitor) owns those, and the
//! types that cross this boundary live in [`crate::boundary`]. It must never
//! delete mail except through [`Mailbox::delete_sent`] after a completed RCEV and
//! an RCVD, never put a password into a reply or an event, and no order of calls
//! into it may panic.

use zeroize::Zeroizing;

pub use crate::boundary::*;
use crate::command::{self, Command};
use crate::username;

pub const GREETING: Reply = Reply::Ok("POP1 server ready");
const AUTH_FAILED: Reply = Reply::Err("authentication failed");
const TOO_MANY_FAILURES: Reply = Reply::Err("too many authentication failures, closing");
const OUT_OF_ORDER: Reply = Reply::Err("command out of order");
const UNKNOWN: Reply = Reply::Err("unknown command");
const SYNTAX: Reply = Reply::Err("syntax error");
const NO_SUCH_MAILBOX: Reply = Reply::Err("no such mailbox");
pub const LINE_TOO_LONG: Reply = Reply::Err("line too long");
pub const TIMED_OUT: Reply = Reply::Err("timeout, closing");

struct Transaction<M> {
    user: String,
    mode: Mode,
    mailbox: M,
}

enum State<M> {
    /// No user given.
    Auth,
    /// USER given.
    Pass(GivenName),
    /// PASS given; waiting for [`Session::verdict`].
    Checking {
        name: GivenName,
        empty: bool,
    },
    Idle(String),
    Open(Transaction<M>),
    Sent(Transaction<M>),
    /// After [`Action::Close`]: nothing more happens.
    Closed,
}

/// The states of PROTOCOL.md's table, as tests and fuzzers see them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateName {
    Auth,
    Pass,
    Checking,
    Idle,
    Open,
    Sent,
    Closed,
}

struct GivenName {
    /// The name, when it could be a real one.
    usable: Option<String>,
    /// As the client gave it.
    given: Vec<u8>,
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
    /// A session that begins with the greeting, in the AUTH state.
    pub fn new(backend: B, max_failures: u32) -> Self {
        Session {
            backend,
            state: State::Auth,
            failures: 0,
            max_failures: max_failures.max(1),
        }
    }

    /// A session whose login already succeeded elsewhere (a monitor process
    /// verified it): it begins in IDLE as `user`, and the caller goes on from the
    /// client's input that was read but not yet used. A name that could never be
    /// valid gives a session that is already closed.
    pub fn logged_in(backend: B, user: &str) -> Self {
        let state = if username::is_safe(user) {
            State::Idle(user.to_owned())
        } else {
            State::Closed
        };
        Session {
            backend,
            state,
            failures: 0,
            max_failures: 1,
        }
    }

    pub fn state(&self) -> StateName {
        match self.state {
            State::Auth => StateName::Auth,
            State::Pass(_) => StateName::Pass,
            State::Checking { .. } => StateName::Checking,
            State::Idle(_) => StateName::Idle,
            State::Open(_) => StateName::Open,
            State::Sent(_) => StateName::Sent,
            State::Closed => StateName::Closed,
        }
    }

    /// Handle one complete client line (terminator removed).
    pub fn handle_line(&mut self, line: &[u8]) -> Vec<Action> {
        let command = command::parse(line);
        self.transition(|session, state| session.step(state, command))
    }

    /// A line longer than the limit was discarded: refused, and the state stays.
    pub fn line_too_long(&mut self) -> Vec<Action> {
        match self.state {
            State::Closed => Vec::new(),
            _ => vec![Action::Reply(LINE_TOO_LONG)],
        }
    }

    /// The client closed its side. Nothing is deleted.
    pub fn end_of_input(&mut self) -> Vec<Action> {
        self.close("end of input", None, End::EndOfInput)
    }

    /// The client was silent for too long.
    pub fn timed_out(&mut self) -> Vec<Action> {
        self.close("timeout", Some(TIMED_OUT), End::Timeout)
    }

    /// The session must end now for a reason outside the protocol (a signal, a
    /// failed write). Nothing is deleted.
    pub fn stop(&mut self, end: End) -> Vec<Action> {
        self.close(end.describe(), None, end)
    }

    /// The answer to the last [`Action::Verify`]. Ignored when none is awaited.
    pub fn verdict(&mut self, verdict: Verdict) -> Vec<Action> {
        self.transition(|session, state| match state {
            State::Checking { name, empty } => session.judge(name, empty, verdict),
            other => (other, Vec::new()),
        })
    }

    /// After [`Action::SendMail`]: send the counted data to `client`. On failure
    /// the transaction is aborted (nothing deleted) and the session closes.
    /// Outside the OPEN state it sends nothing.
    pub fn send_mail(&mut self, client: &mut dyn Client) -> Vec<Action> {
        self.transition(|_, state| match state {
            State::Open(txn) => send(txn, client),
            other => (other, Vec::new()),
        })
    }

    /// Keep an open transaction's locks fresh while the caller waits for the
    /// client. Does nothing outside a transaction.
    pub fn keep_alive(&mut self) {
        if let State::Open(txn) | State::Sent(txn) = &mut self.state {
            txn.mailbox.keep_alive();
        }
    }

    fn transition(
        &mut self,
        step: impl FnOnce(&mut Self, State<B::Mailbox>) -> (State<B::Mailbox>, Vec<Action>),
    ) -> Vec<Action> {
        let state = std::mem::replace(&mut self.state, State::Closed);
        let (state, actions) = step(self, state);
        self.state = state;
        actions
    }

    fn close(&mut self, why: &'static str, reply: Option<Reply>, end: End) -> Vec<Action> {
        // Closed already: say so again, so that no caller waits on it forever.
        if matches!(self.state, State::Closed) {
            return vec![Action::Close(end)];
        }
        let mut actions = abort_state(std::mem::replace(&mut self.state, State::Closed), why);
        actions.extend(reply.map(Action::Reply));
        actions.push(Action::Close(end));
        actions
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
            (S::Closed, _) => (S::Closed, Vec::new()),
            // The caller must hand in the verdict first; a line now is misuse,
            // refused without losing the check.
            (state @ S::Checking { .. }, _) => (state, reply(OUT_OF_ORDER)),
            (state, C::Quit) => {
                let mut actions = abort_state(state, "quit");
                actions.push(Action::Reply(Reply::Ok("bye")));
                actions.push(Action::Close(End::Quit));
                (S::Closed, actions)
            }
            (state, C::Noop) => (state, reply(Reply::Ok(""))),
            (S::Open(txn), C::Rset) => reset(txn, Stage::BeforeRcev),
            (S::Sent(txn), C::Rset) => reset(txn, Stage::AfterRcev),
            (S::Idle(user), C::Rset) => (S::Idle(user), reply(Reply::Ok(""))),
            (S::Auth | S::Pass(_), C::Rset) => (S::Auth, reply(Reply::Ok(""))),

            (S::Auth, C::User(name)) => (S::Pass(given_name(name)), reply(Reply::Ok(""))),
            (S::Pass(name), C::Pass(password)) => {
                let check = Credentials {
                    user: name.usable.clone(),
                    given: name.given.clone(),
                    password: Zeroizing::new(password.to_vec()),
                };
                let empty = password.is_empty();
                (S::Checking { name, empty }, vec![Action::Verify(check)])
            }
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

    fn judge(
        &mut self,
        name: GivenName,
        empty: bool,
        verdict: Verdict,
    ) -> (State<B::Mailbox>, Vec<Action>) {
        // An empty password never opens an account, whatever the back end
        // holds: it was checked all the same, so it costs what a wrong one does.
        let verdict = match verdict {
            Verdict::Granted if empty => Verdict::Denied,
            other => other,
        };
        match (verdict, name.usable) {
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
                self.failures = self.failures.saturating_add(1);
                if self.failures >= self.max_failures {
                    let actions = vec![
                        // fail2ban counts `login failed` lines: the last one too.
                        Action::Log(logged),
                        Action::Log(Event::TooManyFailures { user: name.shown }),
                        Action::AuthDelay,
                        Action::Reply(TOO_MANY_FAILURES),
                        Action::Close(End::TooManyFailures),
                    ];
                    (State::Closed, actions)
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
        given: raw.to_vec(),
        shown: username::escape_for_log(raw),
    }
}

fn shown(user: &str) -> String {
    username::escape_for_log(user.as_bytes())
}

/// RCEV: the data goes to the client; on failure the transaction is aborted.
fn send<M: Mailbox>(mut txn: Transaction<M>, client: &mut dyn Client) -> (State<M>, Vec<Action>) {
    let error = match txn.mailbox.send(client) {
        Ok(()) => return (State::Sent(txn), Vec::new()),
        Err(error) => error,
    };
    let (why, end) = match &error {
        SendError::Client(WriteFailure::TimedOut) => ("timeout while sending", End::WriteTimeout),
        SendError::Client(WriteFailure::Stopped) => {
            ("terminated by signal while sending", End::Terminated)
        }
        SendError::Client(WriteFailure::Gone) => ("client write error", End::ClientGone),
        SendError::Mailbox(_) => ("mailbox read error", End::MailboxFault),
    };
    let mut actions = Vec::new();
    if let SendError::Mailbox(detail) = error {
        actions.push(Action::Log(Event::OpenFailed {
            user: shown(&txn.user),
            why: detail,
        }));
    }
    actions.push(aborted(txn, Stage::DuringRcev, why));
    actions.push(Action::Close(end));
    (State::Closed, actions)
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
mod table_tests;
