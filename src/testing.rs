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
