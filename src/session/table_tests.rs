//! The protocol's state table, tested as a table: a row for every state and
//! every input (each command, a too-long line, end of input, the idle timeout,
//! a stop signal, a verdict and a request to send), with the replies and the
//! state that must follow. The session runs against the in-memory world of
//! [`crate::testing`]; what only the binary shows (bytes on the wire, files,
//! locks, signals) is tested in `tests/`.

use super::*;
use crate::testing::{self, MemoryStore};
use StateName::*;

/// fred's mailbox: 10 bytes, two bare LFs, so 12 octets on the wire.
const FRED_MAIL: &[u8] = b"From a\nhi\n";

/// Every input the table covers, in its rows' order.
const INPUTS: [&str; 19] = [
    "USER fred",
    "PASS secret",
    "RETR fred",
    "RDEL fred",
    "RETR anne",
    "RCEV",
    "RCVD",
    "QUIT",
    "NOOP",
    "RSET",
    "HELO",
    "NOOP x",
    "<too long>",
    "<end of input>",
    "<timeout>",
    "<stop>",
    "<granted>",
    "<denied>",
    "<send>",
];

/// A session brought to `state` (an RDEL transaction in OPEN and SENT).
fn reach(state: StateName) -> (Session<MemoryStore>, MemoryStore) {
    let store = MemoryStore::with_mailbox("fred", FRED_MAIL);
    let mut session = Session::new(store.clone(), 3);
    let script: &[&str] = match state {
        Auth => &[],
        Pass => &["USER fred"],
        Checking => &["USER fred", "PASS secret"],
        Idle => &["USER fred", "PASS secret", "<granted>"],
        Open => &["USER fred", "PASS secret", "<granted>", "RDEL fred"],
        Sent => &[
            "USER fred",
            "PASS secret",
            "<granted>",
            "RDEL fred",
            "<send>",
        ],
        Closed => &["QUIT"],
    };
    for input in script {
        apply(&mut session, input);
    }
    assert_eq!(session.state(), state, "reaching {state:?}");
    (session, store)
}

fn apply(session: &mut Session<MemoryStore>, input: &str) -> Vec<Action> {
    match input {
        "<too long>" => session.line_too_long(),
        "<end of input>" => session.end_of_input(),
        "<timeout>" => session.timed_out(),
        "<stop>" => session.stop(End::Terminated),
        "<granted>" => session.verdict(Verdict::Granted),
        "<denied>" => session.verdict(Verdict::Denied),
        "<send>" => session.send_mail(&mut Vec::new()),
        line => session.handle_line(line.as_bytes()),
    }
}

/// The actions the client or the caller sees, as short strings; log events are
/// checked apart.
fn shown(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|action| match action {
            Action::Reply(reply) => {
                let mut wire = Vec::new();
                reply.encode(&mut wire);
                Some(String::from_utf8(wire).unwrap().trim_end().to_owned())
            }
            Action::Verify(_) => Some("verify".into()),
            Action::SendMail => Some("send".into()),
            Action::AuthDelay => Some("delay".into()),
            Action::Close(end) => Some(format!("close: {}", end.describe())),
            Action::Log(_) => None,
        })
        .collect()
}

const OOO: &str = "-ERR command out of order";
const OK: &str = "+OK";

/// What the table expects: the state, the input, the actions, the next state.
type Row = (StateName, &'static str, &'static [&'static str], StateName);

/// The rows every state but CLOSED shares for the inputs that end a session.
fn endings(state: StateName) -> [Row; 3] {
    [
        (state, "<end of input>", &["close: end of input"], Closed),
        (
            state,
            "<timeout>",
            &["-ERR timeout, closing", "close: timeout"],
            Closed,
        ),
        (state, "<stop>", &["close: terminated by signal"], Closed),
    ]
}

fn table() -> Vec<Row> {
    let mut rows: Vec<Row> = vec![
        (Auth, "USER fred", &[OK], Pass),
        (Auth, "PASS secret", &[OOO], Auth),
        (Auth, "RETR fred", &[OOO], Auth),
        (Auth, "RDEL fred", &[OOO], Auth),
        (Auth, "RETR anne", &[OOO], Auth),
        (Auth, "RCEV", &[OOO], Auth),
        (Auth, "RCVD", &[OOO], Auth),
        (Auth, "QUIT", &["+OK bye", "close: quit"], Closed),
        (Auth, "NOOP", &[OK], Auth),
        (Auth, "RSET", &[OK], Auth),
        (Auth, "HELO", &["-ERR unknown command"], Auth),
        (Auth, "NOOP x", &["-ERR syntax error"], Auth),
        (Auth, "<too long>", &["-ERR line too long"], Auth),
        (Auth, "<granted>", &[], Auth),
        (Auth, "<denied>", &[], Auth),
        (Auth, "<send>", &[], Auth),
        // PASS: anything but PASS, NOOP and QUIT forgets the name.
        (Pass, "USER fred", &[OOO], Auth),
        (Pass, "PASS secret", &["verify"], Checking),
        (Pass, "RETR fred", &[OOO], Auth),
        (Pass, "RDEL fred", &[OOO], Auth),
        (Pass, "RETR anne", &[OOO], Auth),
        (Pass, "RCEV", &[OOO], Auth),
        (Pass, "RCVD", &[OOO], Auth),
        (Pass, "QUIT", &["+OK bye", "close: quit"], Closed),
        (Pass, "NOOP", &[OK], Pass),
        (Pass, "RSET", &[OK], Auth),
        (Pass, "HELO", &["-ERR unknown command"], Auth),
        (Pass, "NOOP x", &["-ERR syntax error"], Auth),
        (Pass, "<too long>", &["-ERR line too long"], Pass),
        (Pass, "<granted>", &[], Pass),
        (Pass, "<denied>", &[], Pass),
        (Pass, "<send>", &[], Pass),
        // CHECKING: the caller owes a verdict; a line before it is refused.
        (Checking, "USER fred", &[OOO], Checking),
        (Checking, "PASS secret", &[OOO], Checking),
        (Checking, "RETR fred", &[OOO], Checking),
        (Checking, "RDEL fred", &[OOO], Checking),
        (Checking, "RETR anne", &[OOO], Checking),
        (Checking, "RCEV", &[OOO], Checking),
        (Checking, "RCVD", &[OOO], Checking),
        (Checking, "QUIT", &[OOO], Checking),
        (Checking, "NOOP", &[OOO], Checking),
        (Checking, "RSET", &[OOO], Checking),
        (Checking, "HELO", &[OOO], Checking),
        (Checking, "NOOP x", &[OOO], Checking),
        (Checking, "<too long>", &["-ERR line too long"], Checking),
        (Checking, "<granted>", &[OK], Idle),
        (
            Checking,
            "<denied>",
            &["delay", "-ERR authentication failed"],
            Auth,
        ),
        (Checking, "<send>", &[], Checking),
        (Idle, "USER fred", &[OOO], Idle),
        (Idle, "PASS secret", &[OOO], Idle),
        (Idle, "RETR fred", &["#12"], Open),
        (Idle, "RDEL fred", &["#12"], Open),
        (Idle, "RETR anne", &["-ERR no such mailbox"], Idle),
        (Idle, "RCEV", &[OOO], Idle),
        (Idle, "RCVD", &[OOO], Idle),
        (Idle, "QUIT", &["+OK bye", "close: quit"], Closed),
        (Idle, "NOOP", &[OK], Idle),
        (Idle, "RSET", &[OK], Idle),
        (Idle, "HELO", &["-ERR unknown command"], Idle),
        (Idle, "NOOP x", &["-ERR syntax error"], Idle),
        (Idle, "<too long>", &["-ERR line too long"], Idle),
        (Idle, "<granted>", &[], Idle),
        (Idle, "<denied>", &[], Idle),
        (Idle, "<send>", &[], Idle),
        (Open, "USER fred", &[OOO], Open),
        (Open, "PASS secret", &[OOO], Open),
        (Open, "RETR fred", &[OOO], Open),
        (Open, "RDEL fred", &[OOO], Open),
        (Open, "RETR anne", &[OOO], Open),
        (Open, "RCEV", &["send"], Open),
        (Open, "RCVD", &[OOO], Open),
        (Open, "QUIT", &["+OK bye", "close: quit"], Closed),
        (Open, "NOOP", &[OK], Open),
        (Open, "RSET", &[OK], Idle),
        (Open, "HELO", &["-ERR unknown command"], Open),
        (Open, "NOOP x", &["-ERR syntax error"], Open),
        (Open, "<too long>", &["-ERR line too long"], Open),
        (Open, "<granted>", &[], Open),
        (Open, "<denied>", &[], Open),
        (Open, "<send>", &[], Sent),
        (Sent, "USER fred", &[OOO], Sent),
        (Sent, "PASS secret", &[OOO], Sent),
        (Sent, "RETR fred", &[OOO], Sent),
        (Sent, "RDEL fred", &[OOO], Sent),
        (Sent, "RETR anne", &[OOO], Sent),
        (Sent, "RCEV", &[OOO], Sent),
        (Sent, "RCVD", &[OK], Idle),
        (Sent, "QUIT", &["+OK bye", "close: quit"], Closed),
        (Sent, "NOOP", &[OK], Sent),
        (Sent, "RSET", &[OK], Idle),
        (Sent, "HELO", &["-ERR unknown command"], Sent),
        (Sent, "NOOP x", &["-ERR syntax error"], Sent),
        (Sent, "<too long>", &["-ERR line too long"], Sent),
        (Sent, "<granted>", &[], Sent),
        (Sent, "<denied>", &[], Sent),
        (Sent, "<send>", &[], Sent),
    ];
    for state in [Auth, Pass, Checking, Idle, Open, Sent] {
        rows.extend(endings(state));
    }
    // After a close nothing happens, whatever comes; an ending is said again,
    // so that a caller never waits on a closed session.
    rows.extend(
        INPUTS
            .iter()
            .filter(|input| !["<end of input>", "<timeout>", "<stop>"].contains(input))
            .map(|&input| (Closed, input, &[][..], Closed)),
    );
    rows.extend([
        (
            Closed,
            "<end of input>",
            &["close: end of input"][..],
            Closed,
        ),
        (Closed, "<timeout>", &["close: timeout"][..], Closed),
        (
            Closed,
            "<stop>",
            &["close: terminated by signal"][..],
            Closed,
        ),
    ]);
    rows
}

#[test]
fn every_state_and_every_input_has_its_row_and_follows_it() {
    let rows = table();
    for state in [Auth, Pass, Checking, Idle, Open, Sent, Closed] {
        for input in INPUTS {
            let matching = rows
                .iter()
                .filter(|(s, i, _, _)| *s == state && *i == input)
                .count();
            assert_eq!(matching, 1, "rows for {state:?} × {input:?}");
        }
    }
    for (state, input, expected, next) in rows {
        let (mut session, store) = reach(state);
        let actions = apply(&mut session, input);
        assert_eq!(shown(&actions), expected, "{state:?} × {input:?}");
        assert_eq!(session.state(), next, "{state:?} × {input:?}");
        // Only RCVD after a whole RCEV of an RDEL deletes, and then all of it.
        let deleted = store.0.borrow().deleted.get("fred").cloned();
        if (state, input) == (Sent, "RCVD") {
            assert_eq!(deleted.as_deref(), Some(FRED_MAIL));
        } else {
            assert_eq!(deleted, None, "{state:?} × {input:?} deleted mail");
        }
    }
}

#[test]
fn a_session_can_begin_logged_in() {
    let store = MemoryStore::with_mailbox("fred", FRED_MAIL);
    let mut session = Session::logged_in(store.clone(), "fred");
    assert_eq!(session.state(), Idle);
    assert_eq!(shown(&session.handle_line(b"RDEL fred")), ["#12"]);
    let mut wire = Vec::new();
    assert!(session.handle_line(b"RCEV") == [Action::SendMail]);
    assert!(session.send_mail(&mut wire).is_empty());
    assert_eq!(wire, b"From a\r\nhi\r\n");
    assert_eq!(shown(&session.handle_line(b"RCVD")), [OK]);
    assert_eq!(store.0.borrow().mailboxes["fred"], b"");
    // A name that could never be valid gives no session to speak of.
    let mut refused = Session::logged_in(MemoryStore::default(), "../anne");
    assert_eq!(refused.state(), Closed);
    assert!(refused.handle_line(b"RDEL ../anne").is_empty());
}

/// Log in with the in-memory password table, answering the session's request.
fn attempt(session: &mut Session<MemoryStore>, user: &str, pass: &[u8]) -> Vec<Action> {
    let mut actions = session.handle_line(format!("USER {user}").as_bytes());
    let mut line = b"PASS ".to_vec();
    line.extend_from_slice(pass);
    for action in session.handle_line(&line) {
        match action {
            Action::Verify(credentials) => {
                let verdict = testing::verify(&credentials);
                actions.extend(session.verdict(verdict));
            }
            other => actions.push(other),
        }
    }
    actions
}

fn logs(actions: &[Action]) -> Vec<&Event> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Log(event) => Some(event),
            _ => None,
        })
        .collect()
}

#[test]
fn an_empty_password_never_opens_an_account_and_fails_like_a_wrong_one() {
    let mut session = Session::new(MemoryStore::default(), 3);
    let empty = attempt(&mut session, "blank", b"");
    let wrong = attempt(&mut session, "blank", b"wrong");
    assert_eq!(
        shown(&empty),
        ["+OK", "delay", "-ERR authentication failed"]
    );
    assert_eq!(shown(&empty), shown(&wrong));
    assert_eq!(
        logs(&empty),
        [&Event::LoginFailed {
            user: "blank".into()
        }]
    );
    // Both counted: the third failure ends it.
    let third = attempt(&mut session, "fred", b"");
    assert_eq!(
        shown(&third),
        [
            "+OK",
            "delay",
            "-ERR too many authentication failures, closing",
            "close: too many login failures"
        ]
    );
}

#[test]
fn a_password_that_cannot_be_checked_looks_failed_but_is_logged_apart() {
    let mut session = Session::new(MemoryStore::default(), 2);
    let failed = attempt(&mut session, "nobody", b"secret");
    let unchecked = attempt(&mut session, "ghost", b"secret");
    assert_eq!(
        shown(&failed),
        ["+OK", "delay", "-ERR authentication failed"]
    );
    assert_eq!(
        shown(&unchecked),
        [
            "+OK",
            "delay",
            "-ERR too many authentication failures, closing",
            "close: too many login failures"
        ]
    );
    assert_eq!(
        logs(&unchecked),
        [
            &Event::CannotVerify {
                user: "ghost".into(),
                why: "the stored hash is malformed"
            },
            &Event::TooManyFailures {
                user: "ghost".into()
            }
        ]
    );
}

#[test]
fn no_password_database_is_said_and_not_counted() {
    let mut session = Session::new(MemoryStore::default(), 1);
    session.handle_line(b"USER fred");
    session.handle_line(b"PASS secret");
    let actions = session.verdict(Verdict::Unavailable);
    assert_eq!(shown(&actions), ["-ERR no password database is configured"]);
    assert_eq!(session.state(), Auth);
}

#[test]
fn an_abort_says_how_far_the_data_got() {
    let outcomes = |actions: &[Action]| -> Vec<Outcome> {
        logs(actions)
            .into_iter()
            .filter_map(|e| match e {
                Event::Transaction { outcome, .. } => Some(outcome.clone()),
                _ => None,
            })
            .collect()
    };
    let aborted = |stage, why| vec![Outcome::Aborted { stage, why }];
    let (mut session, _) = reach(Open);
    assert_eq!(
        outcomes(&session.handle_line(b"RSET")),
        aborted(Stage::BeforeRcev, "rset")
    );
    let (mut session, _) = reach(Sent);
    assert_eq!(
        outcomes(&session.end_of_input()),
        aborted(Stage::AfterRcev, "end of input")
    );
}

/// A client that takes nothing: the edge's verdict on each write.
struct Refusing(WriteFailure);

impl Client for Refusing {
    fn write_data(&mut self, _: &[u8], _: &mut dyn FnMut()) -> Result<(), WriteFailure> {
        Err(self.0)
    }
}

#[test]
fn a_failed_send_aborts_during_rcev_closes_and_deletes_nothing() {
    for (failure, why, end) in [
        (WriteFailure::Gone, "client write error", End::ClientGone),
        (
            WriteFailure::TimedOut,
            "timeout while sending",
            End::WriteTimeout,
        ),
        (
            WriteFailure::Stopped,
            "terminated by signal while sending",
            End::Terminated,
        ),
    ] {
        let (mut session, store) = reach(Open);
        let actions = session.send_mail(&mut Refusing(failure));
        assert!(logs(&actions).iter().any(|e| matches!(
            e,
            Event::Transaction {
                outcome: Outcome::Aborted {
                    stage: Stage::DuringRcev,
                    why: w
                },
                ..
            } if *w == why
        )));
        assert_eq!(actions.last(), Some(&Action::Close(end)));
        assert_eq!(session.state(), Closed);
        assert!(session.handle_line(b"RCVD").is_empty());
        assert_eq!(store.0.borrow().mailboxes["fred"], FRED_MAIL);
    }
}

#[test]
fn busy_and_broken_mailboxes_are_refused_and_logged() {
    let (mut session, store) = reach(Idle);
    store.0.borrow_mut().busy.push("fred".into());
    let busy = session.handle_line(b"RETR fred");
    assert_eq!(shown(&busy), ["-ERR mailbox busy, try again later"]);
    assert_eq!(
        logs(&busy),
        [&Event::Busy {
            user: "fred".into()
        }]
    );
    store.0.borrow_mut().busy.clear();
    store.0.borrow_mut().broken.push("fred".into());
    let broken = session.handle_line(b"RDEL fred");
    assert_eq!(shown(&broken), ["-ERR mailbox unavailable"]);
    assert_eq!(session.state(), Idle);
}

#[test]
fn keep_alive_reaches_an_open_mailbox_only() {
    for (state, expected) in [(Idle, 0), (Open, 1), (Sent, 1), (Closed, 0)] {
        let (mut session, store) = reach(state);
        session.keep_alive();
        assert_eq!(store.0.borrow().kept_alive, expected, "{state:?}");
    }
}
