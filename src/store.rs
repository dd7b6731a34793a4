//! The file-backed world of the binary: passwd-file users, and mbox files under
//! a path template, locked through [`crate::lock`]. Glue only.

use crate::auth::{PasswdFile, Shadow, Unverifiable};
use crate::lock;
use crate::mailbox::{Mbox, Template};
use crate::session::{Backend, Credentials, Mode, OpenError, Verdict};

pub struct FileStore {
    pub template: Template,
    pub locks: lock::Config,
    /// System accounts: `%h` in the template is the account's home.
    pub homes: bool,
}

impl Backend for FileStore {
    type Mailbox = Mbox;

    fn open(&mut self, user: &str, mode: Mode) -> Result<Mbox, OpenError> {
        let home = match self.homes {
            true => nix::unistd::User::from_name(user)
                .ok()
                .flatten()
                .map(|u| u.dir),
            false => None,
        };
        let path = self
            .template
            .resolve_with_home(user, home.as_deref())
            .ok_or_else(|| OpenError::Failed(format!("no mailbox path for user {user:?}")))?;
        Mbox::open(&path, &self.locks, mode)
    }
}

/// Where passwords are checked.
pub enum Verifier {
    /// Virtual users.
    PasswdFile(PasswdFile),
    /// System accounts, through /etc/shadow and libxcrypt.
    Shadow(Shadow),
    /// System accounts, through the PAM service `pop1d`; `rhost` is the
    /// client's address, for PAM_RHOST.
    #[cfg(feature = "pam")]
    Pam {
        pam: crate::auth::Pam,
        rhost: String,
    },
}

impl Verifier {
    /// Answer a password check; every path costs one verification.
    pub fn verify(&self, credentials: &Credentials) -> Verdict {
        let user = credentials.user.as_deref();
        let password = &credentials.password;
        let checked = match self {
            Verifier::PasswdFile(file) => file.verify(user, password),
            Verifier::Shadow(shadow) => shadow.verify(user, password),
            #[cfg(feature = "pam")]
            Verifier::Pam { pam, rhost } => pam.verify(user, password, rhost),
        };
        match checked {
            Ok(true) => Verdict::Granted,
            Ok(false) => Verdict::Denied,
            Err(Unverifiable(why)) => Verdict::Unverifiable(why),
        }
    }
}

/// The store of a login child, which never opens a mailbox: it never gets
/// past PASS.
pub struct NoMailboxes;

/// The mailbox of [`NoMailboxes`], which cannot be.
pub enum NoMailbox {}

impl Backend for NoMailboxes {
    type Mailbox = NoMailbox;
    fn open(&mut self, _: &str, _: Mode) -> Result<NoMailbox, OpenError> {
        Err(OpenError::Failed("the login child opens no mailbox".into()))
    }
}

impl crate::session::Mailbox for NoMailbox {
    fn count(&self) -> u64 {
        match *self {}
    }
    fn send(
        &mut self,
        _: &mut dyn crate::session::Client,
    ) -> Result<(), crate::session::SendError> {
        match *self {}
    }
    fn keep_alive(&mut self) {
        match *self {}
    }
    fn delete_sent(self) -> Result<u64, crate::session::DeleteError> {
        match self {}
    }
}
