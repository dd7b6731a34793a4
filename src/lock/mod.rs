//! The mailbox-locking module: the only code in pop1d that locks a mailbox.
//!
//! It takes, in Debian Policy's order and all on the one open file description of
//! the mailbox: an fcntl lock, the `<mailbox>.lock` dot-lock, and a flock lock.
//! Every try is non-blocking; when any lock is held by somebody else, whatever was
//! taken is released, and after a short random pause everything is tried again,
//! until the lock timeout. Release happens on drop, so every way out of a
//! transaction (a reply, an error, a panic unwinding) lets go of the mailbox.
//!
//! It knows nothing of the protocol and never decides a reply.

mod dotlock;
mod fcntl;
mod flock;

use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::limits::{LOCK_RETRY_MAX, LOCK_RETRY_MIN};

/// Which locks to take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Methods {
    pub fcntl: bool,
    pub dotlock: bool,
    pub flock: bool,
}

impl Methods {
    pub const ALL: Methods = Methods {
        fcntl: true,
        dotlock: true,
        flock: true,
    };

    /// Parse `--locks`: a comma-separated list of `fcntl`, `dotlock`, `flock`.
    pub fn parse(list: &str) -> Result<Methods, String> {
        let mut methods = Methods {
            fcntl: false,
            dotlock: false,
            flock: false,
        };
        for name in list.split(',').map(str::trim) {
            match name {
                "fcntl" => methods.fcntl = true,
                "dotlock" => methods.dotlock = true,
                "flock" => methods.flock = true,
                other => return Err(format!("unknown lock method {other:?}")),
            }
        }
        Ok(methods)
    }
}

/// How to lock.
#[derive(Debug, Clone)]
pub struct Config {
    pub methods: Methods,
    /// How long to keep trying while somebody else holds a lock.
    pub timeout: Duration,
    /// Stop trying as soon as this is set (a signal asked the server to stop).
    pub cancel: Arc<AtomicBool>,
    /// How often a held dot-lock is touched, when [`LockedFile::keep_alive`] is
    /// called often enough.
    pub refresh: Duration,
    /// The group that may make files in the mailbox directory (Debian's `mail`
    /// for /var/mail), held as the saved gid and made effective only while a
    /// dot-lock is handled; `None` when the account may write there itself.
    pub lock_group: Option<nix::unistd::Gid>,
}

/// Why a mailbox could not be locked.
#[derive(Debug)]
pub enum LockError {
    /// Somebody else held a lock for the whole timeout.
    Busy,
    /// [`Config::cancel`] was set while we waited.
    Cancelled,
    /// A lock could not be tried at all (permissions, file system); `what` names it.
    Failed {
        what: &'static str,
        error: io::Error,
    },
}

impl std::fmt::Display for LockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LockError::Busy => f.write_str("locked by another process"),
            LockError::Cancelled => f.write_str("stopped by a signal while waiting for the lock"),
            LockError::Failed { what, error } => write!(f, "cannot take the {what} lock: {error}"),
        }
    }
}

/// A mailbox file with every configured lock held. Dropping it releases them in
/// the reverse order, then closes the file.
#[derive(Debug)]
pub struct LockedFile {
    file: File,
    fcntl: bool,
    dotlock: Option<dotlock::DotLock>,
    flock: bool,
}

impl LockedFile {
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Touch the dot-lock if its refresh is due. The caller's loops call this
    /// between chunks of work and whenever a wait for the client wakes up.
    pub fn keep_alive(&self) {
        if let Some(dotlock) = &self.dotlock {
            dotlock.refresh_if_due();
        }
    }
}

impl Drop for LockedFile {
    fn drop(&mut self) {
        release(self);
    }
}

/// Make and remove a dot-lock in `dir`, for a mailbox no user can have (its
/// name begins with a dot): whether dot-locks can be made there at all.
pub fn try_dotlock_in(dir: &Path) -> io::Result<()> {
    let probe = dir.join(format!(".pop1d-check.{}", std::process::id()));
    match dotlock::try_lock(&probe, crate::limits::DOTLOCK_REFRESH, None)? {
        Some(held) => {
            drop(held);
            Ok(())
        }
        None => Err(io::Error::other("the probe's lock was held")),
    }
}

/// Lock `file`, the open mailbox found at `path`.
pub fn lock(file: File, path: &Path, config: &Config) -> Result<LockedFile, LockError> {
    let deadline = Instant::now() + config.timeout;
    let mut locked = LockedFile {
        file,
        fcntl: false,
        dotlock: None,
        flock: false,
    };
    loop {
        if try_all(&mut locked, path, config)? {
            if locked.dotlock.is_some() {
                dotlock::remove_leftover_temp_files(path, config.lock_group);
            }
            return Ok(locked);
        }
        release(&mut locked);
        let now = Instant::now();
        if config.cancel.load(Ordering::Relaxed) {
            return Err(LockError::Cancelled);
        }
        if now >= deadline {
            return Err(LockError::Busy);
        }
        let pause = Duration::from_millis(fastrand::u64(
            LOCK_RETRY_MIN.as_millis() as u64..=LOCK_RETRY_MAX.as_millis() as u64,
        ));
        std::thread::sleep(pause.min(deadline - now));
    }
}

/// One non-blocking try at every lock, in order. `Ok(false)`: one is held elsewhere.
fn try_all(locked: &mut LockedFile, path: &Path, config: &Config) -> Result<bool, LockError> {
    let methods = config.methods;
    let failed = |what| move |error| LockError::Failed { what, error };
    if methods.fcntl {
        locked.fcntl = fcntl::try_lock(&locked.file).map_err(failed("fcntl"))?;
        if !locked.fcntl {
            return Ok(false);
        }
    }
    if methods.dotlock {
        locked.dotlock = dotlock::try_lock(path, config.refresh, config.lock_group)
            .map_err(failed("dot-lock"))?;
        if locked.dotlock.is_none() {
            return Ok(false);
        }
    }
    if methods.flock {
        locked.flock = flock::try_lock(&locked.file).map_err(failed("flock"))?;
        if !locked.flock {
            return Ok(false);
        }
    }
    Ok(true)
}

fn release(locked: &mut LockedFile) {
    if locked.flock {
        flock::unlock(&locked.file);
        locked.flock = false;
    }
    drop(locked.dotlock.take());
    if locked.fcntl {
        fcntl::unlock(&locked.file);
        locked.fcntl = false;
    }
}
