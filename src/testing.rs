//! An in-memory world for the session: mailboxes as byte vectors and a fixed
//! table of passwords, so that tests and fuzzers drive [`crate::session`]
//! through every state in microseconds, with no file, lock or clock.
//!
//! Built for the crate's own tests and with the cargo feature `testing` (the
//! fuzz crate turns it on); it never ships in the binary. It must keep the
//! promises of the real mailbox: a count is exact, and only counted, sent bytes
//! are ever deleted.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use crate::boundary::{
    Backend, Client, Credentials, DeleteError, Mailbox, Mode, OpenError, SendError, Verdict,
};
use crate::mailbox::{Counter, Encoder};

/// What the in-memory mailboxes hold, shared between a store and the test that
/// looks at it afterwards.
#[derive(Debug, Default)]
pub struct World {
    pub mailboxes: BTreeMap<String, Vec<u8>>,
    /// Users whose mailbox is locked by somebody else.
    pub busy: Vec<String>,
    /// Users whose mailbox cannot be opened at all.
    pub broken: Vec<String>,
    /// Bytes ever removed by RCVD, per user, in order.
    pub deleted: BTreeMap<String, Vec<u8>>,
    /// Calls to keep_alive on an open mailbox.
    pub kept_alive: u64,
}

/// The [`Backend`] over a shared [`World`].
#[derive(Debug, Clone, Default)]
pub struct MemoryStore(pub Rc<RefCell<World>>);

impl MemoryStore {
    pub fn with_mailbox(user: &str, data: &[u8]) -> MemoryStore {
        let store = MemoryStore::default();
        store
            .0
            .borrow_mut()
            .mailboxes
            .insert(user.into(), data.into());
        store
    }
}

/// The passwords the in-memory world knows: `fred`/`secret` and
/// `anne`/`secret`; `ghost` exists but its entry cannot be checked; an empty
/// password is "right" for `blank`, so that tests see the session refuse it.
pub fn verify(credentials: &Credentials) -> Verdict {
    match (credentials.user.as_deref(), credentials.password.as_slice()) {
        (Some("fred" | "anne"), b"secret") => Verdict::Granted,
        (Some("blank"), b"") => Verdict::Granted,
        (Some("ghost"), _) => Verdict::Unverifiable("the stored hash is malformed"),
        _ => Verdict::Denied,
    }
}

impl Backend for MemoryStore {
    type Mailbox = MemoryMailbox;

    fn open(&mut self, user: &str, _mode: Mode) -> Result<MemoryMailbox, OpenError> {
        let world = self.0.borrow();
        if world.busy.iter().any(|u| u == user) {
            return Err(OpenError::Busy);
        }
        if world.broken.iter().any(|u| u == user) {
            return Err(OpenError::Failed(format!("{user}: cannot open")));
        }
        let data = world.mailboxes.get(user).cloned().unwrap_or_default();
        let mut counter = Counter::default();
        counter.feed(&data);
        Ok(MemoryMailbox {
            world: Rc::clone(&self.0),
            user: user.into(),
            count: counter.total(),
            data,
            sent: false,
        })
    }
}

/// A counted snapshot of one user's mailbox.
#[derive(Debug)]
pub struct MemoryMailbox {
    world: Rc<RefCell<World>>,
    user: String,
    data: Vec<u8>,
    count: u64,
    sent: bool,
}

impl Mailbox for MemoryMailbox {
    fn count(&self) -> u64 {
        self.count
    }

    fn send(&mut self, client: &mut dyn Client) -> Result<(), SendError> {
        let mut wire = Vec::new();
        let mut encoder = Encoder::default();
        encoder.encode(&self.data, &mut wire);
        encoder.finish(&mut wire);
        client
            .write_data(&wire, &mut || {})
            .map_err(SendError::Client)?;
        self.sent = true;
        Ok(())
    }

    fn keep_alive(&mut self) {
        self.world.borrow_mut().kept_alive += 1;
    }

    fn delete_sent(self) -> Result<u64, DeleteError> {
        if !self.sent {
            // The session never asks this; a model that did would lose mail.
            return Err(DeleteError::Untouched("nothing was sent".into()));
        }
        let mut world = self.world.borrow_mut();
        let World {
            mailboxes, deleted, ..
        } = &mut *world;
        let Some(now) = mailboxes.get_mut(&self.user) else {
            return Ok(0);
        };
        if !now.starts_with(&self.data) {
            return Err(DeleteError::Untouched("the mailbox changed".into()));
        }
        let kept = (now.len() - self.data.len()) as u64;
        deleted
            .entry(self.user.clone())
            .or_default()
            .extend(now.drain(..self.data.len()));
        Ok(kept)
    }
}

// ---------------------------------------------------------------------------
// A whole session driven from the client's bytes: the driver and the checks
// shared by `tests/session_properties.rs` (proptest) and `contrib/fuzz` (cargo
// fuzz), so that both hold the session to the same promises.

use std::collections::VecDeque;

use crate::boundary::{Action, End, Event, Reply};
use crate::lines::{LineBuffer, Next};
use crate::session::{Session, StateName, GREETING};

/// fred's mailbox in PROTOCOL.md's example: 73 bytes, five lines, 78 on the wire.
pub const EXAMPLE_MAIL: &[u8] =
    b"From fred@example.org Thu Nov 26 10:00:00 2026\nSubject: hello\n\nHi Fred.\n\n";

/// The world a driven session begins in.
#[derive(Debug, Clone)]
pub struct Setup {
    /// Mailboxes by user; `fred` and `anne` log in with `secret`. A user
    /// without an entry has an empty mailbox.
    pub mailboxes: BTreeMap<String, Vec<u8>>,
    /// Users whose mailbox somebody else holds locked.
    pub busy: Vec<String>,
    /// Users whose mailbox cannot be opened.
    pub broken: Vec<String>,
    pub max_failures: u32,
}

impl Default for Setup {
    /// fred has the example mail, anne's mailbox is busy, three failed logins
    /// end the session.
    fn default() -> Setup {
        Setup::with_fred_mail(EXAMPLE_MAIL)
    }
}

impl Setup {
    pub fn with_fred_mail(mail: &[u8]) -> Setup {
        Setup {
            mailboxes: BTreeMap::from([("fred".to_owned(), mail.to_vec())]),
            busy: vec!["anne".to_owned()],
            broken: Vec::new(),
            max_failures: 3,
        }
    }

    fn store(&self) -> MemoryStore {
        let store = MemoryStore::default();
        {
            let mut world = store.0.borrow_mut();
            world.mailboxes.clone_from(&self.mailboxes);
            world.busy.clone_from(&self.busy);
            world.broken.clone_from(&self.broken);
        }
        store
    }
}

/// What the session was handed in one step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// The session began (the greeting).
    Start,
    /// A complete line, terminator removed.
    Line(Vec<u8>),
    /// A line over the limit, discarded by the splitter.
    TooLong,
    EndOfInput,
}

/// What one step gave the client or the caller, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// A reply line as written on the wire, CR LF included.
    Reply(Vec<u8>),
    /// The mail data RCEV sent (possibly none).
    Data(Vec<u8>),
    AuthDelay,
    Log(Event),
    Close(End),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub input: Input,
    pub output: Vec<Output>,
    /// The session's state after the step.
    pub state: StateName,
    /// Bytes the world has deleted so far, all users together.
    pub deleted: usize,
}

/// A whole session: every step, and what the world deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transcript {
    pub steps: Vec<Step>,
    pub deleted: BTreeMap<String, Vec<u8>>,
}

impl Transcript {
    /// Everything the client received, in order.
    pub fn wire(&self) -> Vec<u8> {
        let mut wire = Vec::new();
        for output in self.steps.iter().flat_map(|step| &step.output) {
            if let Output::Reply(bytes) | Output::Data(bytes) = output {
                wire.extend_from_slice(bytes);
            }
        }
        wire
    }
}

/// Run a session over `setup` on the client's `input`, read into the line
/// splitter in pieces of `read_sizes` (as many as fit when the sizes run out; a
/// size of 0 counts as 1), then end of input. Password checks are answered with
/// [`verify`] at once, RCEV's data goes into a `Vec`, and the session stops at
/// its first [`Action::Close`], as the binary's loop does.
pub fn run_client_bytes(
    setup: &Setup,
    input: &[u8],
    read_sizes: impl IntoIterator<Item = usize>,
) -> Transcript {
    let store = setup.store();
    let mut session = Session::new(store.clone(), setup.max_failures);
    let mut steps = vec![Step {
        input: Input::Start,
        output: vec![Output::Reply(encode(&GREETING))],
        state: session.state(),
        deleted: 0,
    }];
    let mut buffer = LineBuffer::default();
    let mut rest = input;
    let mut read_sizes = read_sizes.into_iter();
    loop {
        let (input, actions) = match buffer.next_line() {
            Next::Line(range) => {
                let line = buffer.line(range).to_vec();
                let actions = session.handle_line(&line);
                (Input::Line(line), actions)
            }
            Next::TooLong => (Input::TooLong, session.line_too_long()),
            Next::NeedMore if rest.is_empty() => (Input::EndOfInput, session.end_of_input()),
            Next::NeedMore => {
                // Where the binary waits for the client.
                session.keep_alive();
                let space = buffer.space();
                assert!(!space.is_empty(), "the line splitter has no room left");
                let size = read_sizes.next().unwrap_or(usize::MAX).max(1);
                let n = size.min(space.len()).min(rest.len());
                space[..n].copy_from_slice(&rest[..n]);
                buffer.filled(n);
                rest = &rest[n..];
                continue;
            }
        };
        let ended = input == Input::EndOfInput;
        let output = perform(&mut session, actions);
        let closed = matches!(output.last(), Some(Output::Close(_)));
        let deleted = store.0.borrow().deleted.values().map(Vec::len).sum();
        steps.push(Step {
            input,
            output,
            state: session.state(),
            deleted,
        });
        if closed || ended {
            break;
        }
    }
    let deleted = store.0.borrow().deleted.clone();
    Transcript { steps, deleted }
}

fn encode(reply: &Reply) -> Vec<u8> {
    let mut wire = Vec::new();
    reply.encode(&mut wire);
    wire
}

/// Carry out the session's actions as the binary's loop does.
fn perform(session: &mut Session<MemoryStore>, actions: Vec<Action>) -> Vec<Output> {
    let mut output = Vec::new();
    let mut pending = VecDeque::from(actions);
    while let Some(action) = pending.pop_front() {
        match action {
            Action::Reply(reply) => output.push(Output::Reply(encode(&reply))),
            Action::Verify(credentials) => pending.extend(session.verdict(verify(&credentials))),
            Action::SendMail => {
                let mut data = Vec::new();
                pending.extend(session.send_mail(&mut data));
                output.push(Output::Data(data));
            }
            Action::AuthDelay => output.push(Output::AuthDelay),
            Action::Log(event) => output.push(Output::Log(event)),
            Action::Close(end) => {
                output.push(Output::Close(end));
                break;
            }
        }
    }
    output
}

/// Run `input` fed whole, one byte at a time and in the `split` sizes, assert
/// every property of a session on the first run, and that the other two give
/// the same steps, wire bytes and deletions. Returns the first run.
///
/// The properties: no panic; every reply is `+OK`, `+OK <text>`, `-ERR`,
/// `-ERR <text>` or `#N` (decimal, no leading zero) and ends in CR LF; every
/// line and too-long line gets exactly one reply, except RCEV in OPEN, which
/// gets exactly the counted octets (the mailbox in CR LF form) and no reply;
/// a login needs the right password; nothing is deleted but at an RCVD that
/// ends an RDEL transaction whose data was sent, and then exactly the bytes
/// counted at RDEL.
pub fn check(setup: &Setup, input: &[u8], split: &[usize]) -> Transcript {
    let whole = run_client_bytes(setup, input, std::iter::repeat(usize::MAX));
    check_transcript(setup, &whole);
    let one_by_one = run_client_bytes(setup, input, std::iter::repeat(1));
    assert_same(&whole, &one_by_one, "fed one byte at a time");
    let split_run = run_client_bytes(setup, input, split.iter().copied());
    assert_same(&whole, &split_run, "fed in pieces");
    whole
}

/// The input of the `session` fuzz target, checked with [`check`]: what the
/// client sends, and, after the bytes `\0MBOX\0` if the input holds them,
/// fred's mailbox (else fred has [`EXAMPLE_MAIL`]). The pieces of the third run
/// have sizes from 1 to 300 drawn from the input, so that a run repeats exactly.
pub fn check_fuzz_input(data: &[u8]) -> Transcript {
    const MAILBOX_MARK: &[u8] = b"\0MBOX\0";
    let (client, setup) = match data
        .windows(MAILBOX_MARK.len())
        .position(|window| window == MAILBOX_MARK)
    {
        Some(at) => (
            &data[..at],
            Setup::with_fred_mail(&data[at + MAILBOX_MARK.len()..]),
        ),
        None => (data, Setup::default()),
    };
    // FNV-1a of the input seeds a xorshift.
    let mut state = data.iter().fold(0xcbf2_9ce4_8422_2325u64, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3)
    }) | 1;
    let split: Vec<usize> = (0..data.len().max(1))
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % 300) as usize + 1
        })
        .collect();
    check(&setup, client, &split)
}

fn assert_same(whole: &Transcript, other: &Transcript, how: &str) {
    assert!(
        whole.wire() == other.wire(),
        "{how}, the wire differs:\nwhole: {:?}\n{how}: {:?}",
        String::from_utf8_lossy(&whole.wire()),
        String::from_utf8_lossy(&other.wire()),
    );
    assert_eq!(whole, other, "{how}, the session went differently");
}

/// The mailbox's bytes as PROTOCOL.md puts them on the wire, byte by byte.
pub fn wire_form(mail: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(mail.len() + 2);
    let mut before = 0;
    for &byte in mail {
        if byte == b'\n' && before != b'\r' {
            out.push(b'\r');
        }
        out.push(byte);
        before = byte;
    }
    if !mail.is_empty() && before != b'\n' {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Panics unless `reply` is one well-formed reply line; returns the count of a
/// `#N` reply.
pub fn check_reply(reply: &[u8]) -> Option<u64> {
    let shown = String::from_utf8_lossy(reply);
    let line = reply
        .strip_suffix(b"\r\n")
        .unwrap_or_else(|| panic!("reply {shown:?} does not end in CR LF"));
    assert!(
        !line.contains(&b'\r') && !line.contains(&b'\n'),
        "reply {shown:?} holds a CR or LF"
    );
    if line == b"+OK" || line == b"-ERR" {
        return None;
    }
    if let Some(text) = line
        .strip_prefix(b"+OK ")
        .or_else(|| line.strip_prefix(b"-ERR "))
    {
        assert!(
            !text.is_empty() && text.iter().all(|b| (b' '..=b'~').contains(b)),
            "reply {shown:?} has an empty or unprintable text"
        );
        return None;
    }
    let digits = line
        .strip_prefix(b"#")
        .unwrap_or_else(|| panic!("reply {shown:?} is neither +OK, -ERR nor #N"));
    assert!(
        !digits.is_empty()
            && digits.iter().all(u8::is_ascii_digit)
            && (digits == b"0" || digits[0] != b'0'),
        "count reply {shown:?} is malformed"
    );
    let count = std::str::from_utf8(digits)
        .ok()
        .and_then(|d| d.parse().ok());
    assert!(count.is_some(), "count reply {shown:?} is out of range");
    count
}

/// The keyword (upper case) and argument of a line, as PROTOCOL.md reads it.
fn keyword(line: &[u8]) -> (Vec<u8>, Option<&[u8]>) {
    let (keyword, argument) = match line.iter().position(|&b| b == b' ') {
        Some(at) => (&line[..at], Some(&line[at + 1..])),
        None => (line, None),
    };
    (keyword.to_ascii_uppercase(), argument)
}

/// An open transaction as the checks follow it.
struct Open {
    rdel: bool,
    user: String,
    /// The mailbox as it was counted.
    mail: Vec<u8>,
    sent: bool,
}

/// Assert the properties of [`check`] on one transcript.
pub fn check_transcript(setup: &Setup, transcript: &Transcript) {
    use StateName as S;
    let steps = &transcript.steps;
    let start = steps.first().expect("the transcript has a start");
    assert_eq!(start.input, Input::Start);
    assert_eq!(start.state, S::Auth);
    // What the world should hold, followed step by step.
    let mut mailboxes = setup.mailboxes.clone();
    let mut deleted: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut given: Option<Vec<u8>> = None;
    let mut user: Option<String> = None;
    let mut open: Option<Open> = None;
    let mut before = S::Auth;
    let mut deleted_before = 0;
    for (number, step) in steps.iter().enumerate() {
        let at = match &step.input {
            Input::Line(line) => format!("step {number} ({:?})", String::from_utf8_lossy(line)),
            other => format!("step {number} ({other:?})"),
        };
        let mut replies = Vec::new();
        let mut data = Vec::new();
        for output in &step.output {
            match output {
                Output::Reply(reply) => replies.push((reply.as_slice(), check_reply(reply))),
                Output::Data(bytes) => data.push(bytes.as_slice()),
                _ => {}
            }
        }
        let closed = matches!(step.output.last(), Some(Output::Close(_)));
        assert_eq!(
            closed,
            step.state == S::Closed,
            "{at}: closed without Close, or the reverse"
        );
        assert!(
            !closed || number + 1 == steps.len(),
            "{at}: steps after the close"
        );
        assert_ne!(
            step.state,
            S::Checking,
            "{at}: a verdict was given, yet the session waits"
        );
        let (word, argument) = match &step.input {
            Input::Line(line) => keyword(line),
            _ => (Vec::new(), None),
        };
        match &step.input {
            Input::Start => {
                assert_eq!(number, 0, "{at}");
                assert!(
                    replies.len() == 1 && replies[0].0.starts_with(b"+OK"),
                    "{at}"
                );
            }
            Input::EndOfInput => {
                assert!(
                    replies.is_empty() && data.is_empty(),
                    "{at}: a reply at end of input"
                );
                assert_eq!(
                    step.output.last(),
                    Some(&Output::Close(End::EndOfInput)),
                    "{at}"
                );
            }
            Input::TooLong => {
                assert!(data.is_empty(), "{at}");
                assert!(
                    replies.len() == 1 && replies[0].0.starts_with(b"-ERR"),
                    "{at}: a too-long line gets one -ERR"
                );
                assert_eq!(
                    step.state, before,
                    "{at}: a too-long line changed the state"
                );
            }
            Input::Line(_) => {
                // One reply per line keeps the client in step; RCEV's data
                // stands in for its reply.
                assert_eq!(
                    replies.len() + data.len(),
                    1,
                    "{at}: not exactly one answer"
                );
            }
        }
        if let [bytes] = data[..] {
            let txn = open.as_mut().expect("data without a transaction");
            assert!(
                before == S::Open && step.state == S::Sent && word == b"RCEV" && argument.is_none(),
                "{at}: data sent outside RCEV in OPEN"
            );
            assert!(
                bytes == wire_form(&txn.mail),
                "{at}: the data is not the counted mailbox"
            );
            txn.sent = true;
        }
        // A login needs a known user's right password.
        if before == S::Pass && step.state == S::Idle {
            let name = given.take().expect("PASS without USER");
            assert!(
                word == b"PASS"
                    && argument == Some(b"secret")
                    && (name == b"fred" || name == b"anne"),
                "{at}: logged in without the right password"
            );
            user = Some(String::from_utf8(name).expect("a known name"));
        }
        if before == S::Auth && step.state == S::Pass {
            assert!(word == b"USER", "{at}: PASS state without USER");
            given = argument.map(<[u8]>::to_vec);
        }
        if let Some(&(_, Some(count))) = replies.first() {
            let user = user.clone().expect("a count before a login");
            assert!(
                before == S::Idle
                    && step.state == S::Open
                    && (word == b"RETR" || word == b"RDEL")
                    && argument == Some(user.as_bytes()),
                "{at}: a count outside RETR/RDEL of the user's own mailbox"
            );
            let mail = mailboxes.get(&user).cloned().unwrap_or_default();
            assert_eq!(
                count,
                wire_form(&mail).len() as u64,
                "{at}: the count is wrong"
            );
            open = Some(Open {
                rdel: word == b"RDEL",
                user,
                mail,
                sent: false,
            });
        }
        // Deletion: only at RCVD ending an RDEL whose data went out.
        let deleted_now = step.deleted - deleted_before;
        let completes =
            before == S::Sent && word == b"RCVD" && argument.is_none() && step.state == S::Idle;
        match open.take() {
            Some(txn) if completes && txn.rdel => {
                assert!(txn.sent, "{at}: RCVD before the data was sent");
                assert_eq!(
                    replies[0].0, b"+OK\r\n",
                    "{at}: RCVD failed in a still world"
                );
                assert_eq!(
                    deleted_now,
                    txn.mail.len(),
                    "{at}: not the counted bytes deleted"
                );
                let left = mailboxes.entry(txn.user.clone()).or_default();
                left.drain(..txn.mail.len());
                deleted.entry(txn.user).or_default().extend(txn.mail);
            }
            txn => {
                assert_eq!(deleted_now, 0, "{at}: mail deleted outside RCVD after RDEL");
                if matches!(step.state, S::Open | S::Sent) {
                    open = txn;
                }
            }
        }
        if !matches!(step.state, S::Idle | S::Open | S::Sent) {
            user = None;
        }
        if step.state != S::Pass {
            given = None;
        }
        before = step.state;
        deleted_before = step.deleted;
    }
    assert_eq!(before, S::Closed, "the session did not end");
    let world: BTreeMap<_, _> = transcript
        .deleted
        .iter()
        .filter(|(_, bytes)| !bytes.is_empty())
        .map(|(user, bytes)| (user.clone(), bytes.clone()))
        .collect();
    deleted.retain(|_, bytes| !bytes.is_empty());
    assert_eq!(
        world, deleted,
        "the world deleted other bytes than the counted ones"
    );
}

/// Parse `text` as a passwd-file and assert what must hold for any text: no
/// panic, and no warning showing an entry's hash field, or its digest (the
/// part after its last `$`). Only texts that are long enough to mean something
/// (8 bytes) count, from a field taken as a hash, and not when the text is also
/// part of a user name (warnings show names), of another entry's field, of the
/// settings shown for SHA-crypt entries without `rounds=`, or of the warnings
/// for the same text without the entry's line.
pub fn check_passwd_file(text: &str) {
    const SHA_CRYPT_DEFAULTS: &str = "$5$rounds=5000 $6$rounds=5000";
    // The `{SCHEME}` prefixes `PasswdFile::parse` reads as crypt schemes.
    use crate::auth::CRYPT_SCHEMES;
    let (_, warnings) = crate::auth::PasswdFile::parse(text);
    let lines: Vec<&str> = text.lines().collect();
    // Entries by line: the line's index, its name and its hash field.
    let entries: Vec<(usize, &str, &str)> = lines
        .iter()
        .enumerate()
        .map(|(at, line)| (at, line.trim_end_matches('\r')))
        .filter(|(_, line)| !line.trim_start().starts_with('#'))
        .filter_map(|(at, line)| {
            let mut fields = line.splitn(3, ':');
            Some((at, fields.next()?, fields.next()?))
        })
        .collect();
    let mut seen = std::collections::BTreeSet::new();
    for &(at, name, field) in &entries {
        // Only the first entry of a usable name has its field read, and only
        // a field taken as a hash holds one (as `PasswdFile::parse` decides);
        // other lines' warnings never show their field, and the fuzzer may
        // write the warning's own words into it.
        if !crate::username::is_safe(name) || !seen.insert(name) {
            continue;
        }
        let unprefixed = match field.strip_prefix('{') {
            Some(rest) => match rest.split_once('}') {
                Some((scheme, hash))
                    if CRYPT_SCHEMES.contains(&scheme.to_ascii_uppercase().as_str()) =>
                {
                    hash
                }
                _ => continue,
            },
            None => field,
        };
        if crate::auth::Hash::parse(unprefixed).is_none() {
            continue;
        }
        let Some((_, digest)) = field.rsplit_once('$') else {
            continue;
        };
        // A digest that also stands earlier in its field may be shown as part
        // of the settings.
        let digest = if field[..field.len() - digest.len()].contains(digest) {
            ""
        } else {
            digest
        };
        // What the warnings hold without this entry is not its leak.
        let without: Vec<&str> = lines
            .iter()
            .enumerate()
            .filter(|&(other, _)| other != at)
            .map(|(_, line)| *line)
            .collect();
        let (_, warnings_without) = crate::auth::PasswdFile::parse(&without.join("\n"));
        for secret in [field, digest] {
            let elsewhere = secret.len() < 8
                || entries.iter().any(|&(other, name, hash)| {
                    name.contains(secret) || (other != at && hash.contains(secret))
                })
                || SHA_CRYPT_DEFAULTS.contains(secret)
                || warnings_without.iter().any(|w| w.contains(secret));
            if elsewhere {
                continue;
            }
            for warning in &warnings {
                assert!(
                    !warning.contains(secret),
                    "a warning shows {secret:?} of the hash field {field:?}: {warning:?}"
                );
            }
        }
    }
}
