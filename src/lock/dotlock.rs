//! The dot-lock `<mailbox>.lock`, made the NFS-safe way liblockfile makes it: write
//! our pid into a uniquely named temp file beside the mailbox, `link()` it to the
//! lock name, and trust the link count of the temp file rather than link()'s return
//! value. A lock whose pid is not running on this host, or that has not been
//! modified for five minutes, is stale and is broken. While held, a thread touches
//! the lock so that others never take it for stale.
//!
//! It must never remove a lock file that is not ours, and never leave its temp
//! file behind.

use std::ffi::OsString;
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use nix::errno::Errno;
use nix::sys::signal::kill;
use nix::sys::stat::{utimensat, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::Pid;

use crate::limits::{DOTLOCK_REFRESH, DOTLOCK_STALE_AGE};
use crate::memory::helper_thread;

/// A held dot-lock. Dropping it stops the refresh and removes the lock file.
#[derive(Debug)]
pub struct DotLock {
    path: PathBuf,
    identity: (u64, u64),
    refresher: Option<(Sender<()>, JoinHandle<()>)>,
}

/// The lock file's name for a mailbox: the mailbox path with `.lock` appended.
pub fn lock_path(mailbox: &Path) -> PathBuf {
    let mut name = OsString::from(mailbox.as_os_str());
    name.push(".lock");
    PathBuf::from(name)
}

/// Try once to take the dot-lock of `mailbox`. `Ok(None)` when somebody holds it.
pub fn try_lock(mailbox: &Path) -> io::Result<Option<DotLock>> {
    try_lock_refreshed_every(mailbox, DOTLOCK_REFRESH)
}

fn try_lock_refreshed_every(mailbox: &Path, refresh: Duration) -> io::Result<Option<DotLock>> {
    let lock = lock_path(mailbox);
    let temp = TempFile::create(mailbox)?;
    // Two tries: the second after breaking a stale lock.
    for _ in 0..2 {
        let linked = fs::hard_link(&temp.path, &lock);
        // Over NFS link() may fail although it worked; the link count tells.
        let ours = match fs::symlink_metadata(&temp.path) {
            Ok(meta) => meta.nlink() == 2,
            Err(error) => {
                remove_if_ours(&lock, temp.identity);
                return Err(error);
            }
        };
        match linked {
            _ if ours => return Ok(Some(DotLock::held(lock, temp.identity, refresh))),
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
                if !break_if_stale(&lock)? {
                    return Ok(None);
                }
            }
            Err(error) => return Err(error),
            Ok(()) => {
                remove_if_ours(&lock, temp.identity);
                return Err(io::Error::other("dot-lock link count is not 2"));
            }
        }
    }
    Ok(None)
}

impl DotLock {
    fn held(path: PathBuf, identity: (u64, u64), refresh: Duration) -> DotLock {
        let (stop, stopped) = mpsc::channel::<()>();
        let touched = path.clone();
        // Without the thread (a process or memory limit) the lock is held all
        // the same, untouched: a session longer than the stale age may lose it.
        let refresher = helper_thread("dotlock-refresh")
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(refresh) {
                    touch_if_ours(&touched, identity);
                }
            })
            .ok()
            .map(|handle| (stop, handle));
        DotLock {
            path,
            identity,
            refresher,
        }
    }
}

impl Drop for DotLock {
    fn drop(&mut self) {
        if let Some((stop, handle)) = self.refresher.take() {
            drop(stop);
            let _ = handle.join();
        }
        remove_if_ours(&self.path, self.identity);
    }
}

/// Remove the lock file if it is still the one we made: the same inode, holding
/// our pid (an inode number alone may have been reused by a newer lock).
fn remove_if_ours(path: &Path, identity: (u64, u64)) {
    if same_file(path, identity) && holder(path) == Some(std::process::id() as i32) {
        let _ = fs::remove_file(path);
    }
}

fn same_file(path: &Path, identity: (u64, u64)) -> bool {
    fs::symlink_metadata(path).is_ok_and(|meta| (meta.dev(), meta.ino()) == identity)
}

fn touch_if_ours(path: &Path, identity: (u64, u64)) {
    if same_file(path, identity) {
        let now = TimeSpec::UTIME_NOW;
        let _ = utimensat(
            nix::fcntl::AT_FDCWD,
            path,
            &now,
            &now,
            UtimensatFlags::NoFollowSymlink,
        );
    }
}

/// Break the lock at `lock` if it is stale. `Ok(true)` when it is gone (broken by
/// us, or removed by its owner meanwhile), so that another try makes sense.
fn break_if_stale(lock: &Path) -> io::Result<bool> {
    let meta = match fs::symlink_metadata(lock) {
        Ok(meta) => meta,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(true),
        Err(error) => return Err(error),
    };
    let age = SystemTime::now()
        .duration_since(meta.modified()?)
        .unwrap_or_default();
    let stale = age > DOTLOCK_STALE_AGE || holder_is_gone(lock);
    if !stale {
        return Ok(false);
    }
    // Remove only the file we judged, not one somebody made since.
    if same_file(lock, (meta.dev(), meta.ino())) {
        match fs::remove_file(lock) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }
    }
    Ok(true)
}

/// True when the lock names a pid that is not running on this host.
fn holder_is_gone(lock: &Path) -> bool {
    match holder(lock) {
        Some(pid) if pid > 0 => kill(Pid::from_raw(pid), None) == Err(Errno::ESRCH),
        _ => false,
    }
}

/// The pid written in a lock file, if it holds one.
fn holder(lock: &Path) -> Option<i32> {
    let mut text = [0u8; 32];
    let mut file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(lock)
        .ok()?;
    let len = file.read(&mut text).ok()?;
    std::str::from_utf8(&text[..len])
        .ok()?
        .trim()
        .parse::<i32>()
        .ok()
}

/// The uniquely named file that is linked to the lock name; removed on drop.
struct TempFile {
    path: PathBuf,
    identity: (u64, u64),
}

impl TempFile {
    fn create(mailbox: &Path) -> io::Result<TempFile> {
        let dir = mailbox.parent().unwrap_or(Path::new("."));
        let base = mailbox.file_name().unwrap_or_default().to_string_lossy();
        let host = nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().replace(['/', '.'], "_"))
            .unwrap_or_default();
        let pid = std::process::id();
        let path = dir.join(format!(
            ".{base}.lock.{host}.{pid}.{:016x}",
            fastrand::u64(..)
        ));
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)?;
        let mut temp = TempFile {
            path,
            identity: (0, 0),
        };
        file.write_all(format!("{pid}\n").as_bytes())?;
        let meta = file.metadata()?;
        temp.identity = (meta.dev(), meta.ino());
        Ok(temp)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn age(path: &Path) -> Duration {
        let modified = fs::metadata(path).unwrap().modified().unwrap();
        SystemTime::now()
            .duration_since(modified)
            .unwrap_or_default()
    }

    #[test]
    fn a_held_lock_is_touched_and_removed_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let mailbox = dir.path().join("fred");
        let held = try_lock_refreshed_every(&mailbox, Duration::from_millis(50))
            .unwrap()
            .unwrap();
        let lock = lock_path(&mailbox);
        assert_eq!(
            fs::read_to_string(&lock).unwrap(),
            format!("{}\n", std::process::id())
        );
        // Make it look ten minutes old; the refresher must bring it back to now.
        let old = TimeSpec::from(libc::timespec {
            tv_sec: SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_secs() as i64
                - 600,
            tv_nsec: 0,
        });
        utimensat(
            nix::fcntl::AT_FDCWD,
            &lock,
            &old,
            &old,
            UtimensatFlags::NoFollowSymlink,
        )
        .unwrap();
        assert!(age(&lock) > DOTLOCK_STALE_AGE);
        std::thread::sleep(Duration::from_millis(300));
        assert!(
            age(&lock) < Duration::from_secs(5),
            "the held lock was not touched"
        );
        // Somebody else cannot take it meanwhile: it is ours and alive.
        assert!(try_lock(&mailbox).unwrap().is_none());
        drop(held);
        let left: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert!(left.is_empty(), "left behind: {left:?}");
    }
}
