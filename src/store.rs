//! The file-backed [`Backend`]: passwd-file users and mbox files under a path
//! template, locked through [`crate::lock`]. Glue only.

use crate::auth::{PasswdFile, Unverifiable};
use crate::lock;
use crate::mailbox::{Mbox, Template};
use crate::session::{Backend, Mode, OpenError, Verdict};

pub struct FileStore {
    /// `None` until system accounts exist: nobody can log in.
    pub passwd: Option<PasswdFile>,
    pub template: Template,
    pub locks: lock::Config,
}

impl Backend for FileStore {
    type Mailbox = Mbox;

    fn verify(&mut self, user: Option<&str>, password: &[u8]) -> Verdict {
        match self.passwd.as_ref().map(|file| file.verify(user, password)) {
            None => Verdict::Unavailable,
            Some(Ok(true)) => Verdict::Granted,
            Some(Ok(false)) => Verdict::Denied,
            Some(Err(Unverifiable(why))) => Verdict::Unverifiable(why),
        }
    }

    fn open(&mut self, user: &str, mode: Mode) -> Result<Mbox, OpenError> {
        let path = self
            .template
            .resolve(user)
            .ok_or_else(|| OpenError::Failed(format!("unsafe user name {user:?}")))?;
        Mbox::open(&path, &self.locks, mode)
    }
}
