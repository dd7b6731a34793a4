//! Property test: random command sequences drive the real session engine over the
//! real mbox and locking code on a temp file, while a writer that ignores the lock
//! appends mail at random moments. An in-memory model of the mailbox says what the
//! file must hold after every step: only bytes that were counted, sent and then
//! acknowledged with RCVD after RDEL may ever disappear.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pop1d::limits::DELETE_MAX_ROUNDS;
use pop1d::lock::{self, Methods};
use pop1d::mailbox::{Mbox, Template};
use pop1d::session::{Action, Backend, Mode, OpenError, Reply, Session, Verdict};

/// The session's password checks, answered: fred's password is "secret".
fn answered(session: &mut Session<TestStore>, actions: Vec<Action>) -> Vec<Action> {
    let mut done = Vec::new();
    for action in actions {
        match action {
            Action::Verify(credentials) => {
                let granted = credentials.user.as_deref() == Some("fred")
                    && *credentials.password == b"secret";
                let verdict = if granted {
                    Verdict::Granted
                } else {
                    Verdict::Denied
                };
                done.extend(session.verdict(verdict));
            }
            other => done.push(other),
        }
    }
    done
}
use proptest::prelude::*;

struct TestStore {
    template: Template,
    locks: lock::Config,
}

impl Backend for TestStore {
    type Mailbox = Mbox;
    fn open(&mut self, user: &str, mode: Mode) -> Result<Mbox, OpenError> {
        Mbox::open(
            &self.template.resolve(user).expect("safe name"),
            &self.locks,
            mode,
        )
    }
}

#[derive(Debug, Clone)]
enum Op {
    Login,
    WrongPassword,
    Retr,
    Rdel,
    RdelOther,
    Rcev,
    Rcvd,
    Rset,
    Noop,
    Garbage(Vec<u8>),
    /// A writer that ignores the lock appends a message.
    Append(Vec<u8>),
    /// The client goes away; a new session starts.
    Reconnect,
}

fn mail_bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        prop_oneof![
            Just(b'a'),
            Just(b'\n'),
            Just(b'\r'),
            Just(b' '),
            Just(0xe9u8)
        ],
        0..200,
    )
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Login),
        1 => Just(Op::WrongPassword),
        2 => Just(Op::Retr),
        3 => Just(Op::Rdel),
        1 => Just(Op::RdelOther),
        4 => Just(Op::Rcev),
        4 => Just(Op::Rcvd),
        1 => Just(Op::Rset),
        1 => Just(Op::Noop),
        1 => proptest::collection::vec(any::<u8>(), 0..20).prop_map(Op::Garbage),
        2 => mail_bytes().prop_map(|body| [b"From x@y Thu Nov 26 10:00:00 2026\n".to_vec(), body].concat()).prop_map(Op::Append),
        1 => Just(Op::Reconnect),
    ]
}

/// The wire form of mailbox bytes, written the plain way, independent of the server.
fn wire(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'\n' && (i == 0 || bytes[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(b);
    }
    if !bytes.is_empty() && bytes.last() != Some(&b'\n') {
        out.extend_from_slice(b"\r\n");
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Model {
    Auth,
    Idle,
    Open { mode: Mode, len: usize },
    Sent { mode: Mode, len: usize },
}

fn replies(actions: &[Action]) -> Vec<Reply> {
    actions
        .iter()
        .filter_map(|a| {
            if let Action::Reply(r) = a {
                Some(r.clone())
            } else {
                None
            }
        })
        .collect()
}

fn lock_files(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.ends_with("fred"))
        .collect()
}

fn new_session(dir: &Path) -> Session<TestStore> {
    let store = TestStore {
        template: Template::parse(&format!("{}/%u", dir.display())).unwrap(),
        locks: lock::Config {
            cancel: Default::default(),
            methods: Methods::ALL,
            timeout: Duration::ZERO,
            refresh: pop1d::limits::DOTLOCK_REFRESH,
            lock_group: None,
        },
    };
    Session::new(store, u32::MAX)
}

fn run(initial: Vec<u8>, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let mailbox = dir.path().join("fred");
    fs::write(&mailbox, &initial).unwrap();
    let mut expected = initial;
    let mut session = new_session(dir.path());
    let mut model = Model::Auth;
    for op in ops {
        let line = |text: &str| text.as_bytes().to_vec();
        let got: Vec<Reply> = match &op {
            Op::Login => {
                let mut r = replies(&session.handle_line(b"USER fred"));
                let actions = session.handle_line(b"PASS secret");
                r.extend(replies(&answered(&mut session, actions)));
                r
            }
            Op::WrongPassword => {
                let mut r = replies(&session.handle_line(b"user fred"));
                let actions = session.handle_line(b"pass wrong");
                r.extend(replies(&answered(&mut session, actions)));
                r
            }
            Op::Retr => replies(&session.handle_line(&line("RETR fred"))),
            Op::Rdel => replies(&session.handle_line(&line("RDEL fred"))),
            Op::RdelOther => replies(&session.handle_line(&line("RDEL anne"))),
            Op::Rcev => {
                let actions = session.handle_line(b"RCEV");
                if actions == [Action::SendMail] {
                    let mut out = Vec::new();
                    prop_assert!(session.send_mail(&mut out).is_empty());
                    let Model::Open { len, .. } = model else {
                        return Err(TestCaseError::fail("sent outside OPEN"));
                    };
                    prop_assert_eq!(out, wire(&expected[..len]));
                    vec![]
                } else {
                    replies(&actions)
                }
            }
            Op::Rcvd => replies(&session.handle_line(b"RCVD")),
            Op::Rset => replies(&session.handle_line(b"RSET")),
            Op::Noop => replies(&session.handle_line(b"NOOP")),
            Op::Garbage(bytes) => {
                // Keep garbage from spelling a real command.
                let mut bytes = bytes.clone();
                bytes.insert(0, b'\x01');
                replies(&session.handle_line(&bytes))
            }
            Op::Append(mail) => {
                fs::OpenOptions::new()
                    .append(true)
                    .open(&mailbox)
                    .unwrap()
                    .write_all(mail)
                    .unwrap();
                expected.extend_from_slice(mail);
                vec![]
            }
            Op::Reconnect => {
                session.end_of_input();
                session = new_session(dir.path());
                model = Model::Auth;
                vec![]
            }
        };
        // What the model says must have happened.
        let ok = |r: &[Reply]| r.iter().all(|r| matches!(r, Reply::Ok(_)));
        let err = |r: &[Reply]| r.len() == 1 && matches!(r[0], Reply::Err(_));
        model = match (&op, model) {
            (Op::Login, Model::Auth) => {
                prop_assert!(ok(&got), "{:?}", got);
                Model::Idle
            }
            (Op::Login, m) => {
                prop_assert!(got.iter().all(|r| matches!(r, Reply::Err(_))));
                m
            }
            (
                Op::WrongPassword,
                m @ (Model::Auth | Model::Idle | Model::Open { .. } | Model::Sent { .. }),
            ) => {
                prop_assert!(!got.is_empty() && got.iter().any(|r| matches!(r, Reply::Err(_))));
                if m == Model::Auth {
                    Model::Auth
                } else {
                    m
                }
            }
            (Op::Retr | Op::Rdel, Model::Idle) => {
                let len = expected.len();
                prop_assert_eq!(got, vec![Reply::Count(wire(&expected).len() as u64)]);
                let mode = if matches!(op, Op::Rdel) {
                    Mode::Rdel
                } else {
                    Mode::Retr
                };
                Model::Open { mode, len }
            }
            (Op::Rcev, Model::Open { mode, len }) => {
                prop_assert!(got.is_empty());
                Model::Sent { mode, len }
            }
            (Op::Rcvd, Model::Sent { mode, len }) => {
                let appended = (expected.len() - len) as u64;
                if mode == Mode::Rdel
                    && len > 0
                    && appended.div_ceil(len as u64) > DELETE_MAX_ROUNDS
                {
                    // Too much appended to move safely: nothing deleted, -ERR.
                    prop_assert!(err(&got), "{:?}", got);
                } else {
                    prop_assert!(ok(&got), "{:?}", got);
                    if mode == Mode::Rdel {
                        expected.drain(..len);
                    }
                }
                Model::Idle
            }
            (Op::Rset, Model::Open { .. } | Model::Sent { .. } | Model::Idle) => {
                prop_assert!(ok(&got));
                Model::Idle
            }
            (Op::Rset, _) | (Op::Noop, _) => {
                prop_assert!(ok(&got));
                model
            }
            (Op::Append(_) | Op::Reconnect, m) => m,
            (_, m) => {
                prop_assert!(err(&got), "{:?} in {:?} gave {:?}", op, m, got);
                m
            }
        };
        prop_assert_eq!(&fs::read(&mailbox).unwrap(), &expected, "after {:?}", op);
        if matches!(model, Model::Auth | Model::Idle) {
            prop_assert_eq!(lock_files(dir.path()), Vec::<PathBuf>::new());
        }
    }
    drop(session);
    prop_assert_eq!(lock_files(dir.path()), Vec::<PathBuf>::new());
    prop_assert_eq!(fs::read(&mailbox).unwrap(), expected);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn no_sequence_deletes_what_was_not_counted_sent_and_acknowledged(
        initial in mail_bytes(),
        ops in proptest::collection::vec(op(), 1..40),
    ) {
        run(initial, ops)?;
    }
}

proptest! {
    /// The count and the bytes sent agree for any content, whatever the chunking.
    #[test]
    fn count_equals_bytes_sent(data in proptest::collection::vec(prop_oneof![Just(b'\n'), Just(b'\r'), any::<u8>()], 0..3000), split in 1usize..600) {
        let mut counter = pop1d::mailbox::Counter::default();
        let mut encoder = pop1d::mailbox::Encoder::default();
        let mut out = Vec::new();
        for chunk in data.chunks(split) {
            counter.feed(chunk);
            encoder.encode(chunk, &mut out);
        }
        encoder.finish(&mut out);
        prop_assert_eq!(&out, &wire(&data));
        prop_assert_eq!(counter.total(), out.len() as u64);
    }
}

/// What the line splitter must produce for `input`, written the plain way: each
/// LF-terminated line (one trailing CR removed), or `None` for a line over the
/// limit; an unterminated last line is dropped.
fn reference_lines(input: &[u8]) -> Vec<Option<Vec<u8>>> {
    let mut out = Vec::new();
    let mut rest = input;
    while let Some(at) = rest.iter().position(|&b| b == b'\n') {
        let line = &rest[..at];
        if at + 1 > pop1d::limits::MAX_LINE {
            out.push(None);
        } else {
            out.push(Some(line.strip_suffix(b"\r").unwrap_or(line).to_vec()));
        }
        rest = &rest[at + 1..];
    }
    out
}

proptest! {
    /// The bounded line splitter agrees with the plain definition for any input
    /// cut into any read sizes, lines of every length around the limit included.
    #[test]
    fn lines_split_like_the_plain_definition(
        pieces in proptest::collection::vec(
            prop_oneof![
                proptest::collection::vec(prop_oneof![Just(b'\n'), Just(b'\r'), Just(b'a'), any::<u8>()], 0..40),
                (1015usize..1030).prop_map(|n| [vec![b'x'; n], b"\r\n".to_vec()].concat()),
                (1015usize..1030).prop_map(|n| [vec![b'y'; n], b"\n".to_vec()].concat()),
                (3000usize..9000).prop_map(|n| vec![b'z'; n]),
            ],
            0..12,
        ),
        read_size in 1usize..5000,
    ) {
        use pop1d::lines::{LineBuffer, Next};
        let input = pieces.concat();
        let mut buffer = LineBuffer::default();
        let mut got = Vec::new();
        let mut rest = &input[..];
        loop {
            match buffer.next_line() {
                Next::Line(range) => got.push(Some(buffer.line(range).to_vec())),
                Next::TooLong => got.push(None),
                Next::NeedMore if rest.is_empty() => break,
                Next::NeedMore => {
                    let space = buffer.space();
                    prop_assert!(!space.is_empty());
                    let n = space.len().min(read_size).min(rest.len());
                    space[..n].copy_from_slice(&rest[..n]);
                    buffer.filled(n);
                    rest = &rest[n..];
                }
            }
        }
        prop_assert_eq!(got, reference_lines(&input));
    }
}
