//! The file-backed world of the binary: passwd-file users, and mbox files under
//! a path template, locked through [`crate::lock`]. Glue only.

use crate::auth::{PasswdFile, Unverifiable};
use crate::lock;
use crate::mailbox::{Mbox, Template};
use crate::session::{Backend, Credentials, Mode, OpenError, Verdict};

pub struct FileStore {
    pub template: Template,
    pub locks: lock::Config,
}

impl Backend for FileStore {
    type Mailbox = Mbox;

    fn open(&mut self, user: &str, mode: Mode) -> Result<Mbox, OpenError> {
        let path = self
            .template
            .resolve(user)
            .ok_or_else(|| OpenError::Failed(format!("unsafe user name {user:?}")))?;
        Mbox::open(&path, &self.locks, mode)
    }
}

/// Answer a password check from the passwd-file; `None` until system accounts
/// exist: nobody can log in.
pub fn verify(passwd: Option<&PasswdFile>, credentials: &Credentials) -> Verdict {
    match passwd.map(|file| file.verify(credentials.user.as_deref(), &credentials.password)) {
        None => Verdict::Unavailable,
        Some(Ok(true)) => Verdict::Granted,
        Some(Ok(false)) => Verdict::Denied,
        Some(Err(Unverifiable(why))) => Verdict::Unverifiable(why),
    }
}
