//! The dot-lock `<mailbox>.lock`, made the NFS-safe way liblockfile makes it: write
//! our pid into a uniquely named temp file beside the mailbox, `link()` it to the
//! lock name, and trust the link count of the temp file rather than link()'s return
//! value. A lock whose pid is not running on this host, or that has not been
//! modified for five minutes, is stale and is broken; so is a lock with no pid in
//! it (its writer ran out of disk), by its age alone, as Dovecot and Postfix judge
//! it. While held, the lock is touched whenever the session's own loop finds a
//! refresh due ([`DotLock::refresh_if_due`]): no thread does it.
//!
//! Temp files that a killed session left beside the mailbox are removed by the
//! next session that takes the lock, when their pid is dead or they are stale.
//!
//! It must never remove a lock file that is not ours, and never leave its own
//! temp file behind.

use std::cell::Cell;
use std::ffi::OsString;
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use nix::errno::Errno;
use nix::sys::signal::kill;
use nix::sys::stat::{utimensat, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{getegid, setegid, Gid, Pid};

use crate::fileid::FileId;
use crate::limits::DOTLOCK_STALE_AGE;

/// A held dot-lock. Dropping it removes the lock file.
#[derive(Debug)]
pub struct DotLock {
    path: PathBuf,
    identity: FileId,
    /// The lock file, kept open so that its inode cannot be freed and reused
    /// by somebody else's lock while we hold ours: the identity then always
    /// tells ours apart, with a pid in it or not (a full disk).
    _open: fs::File,
    refresh: Duration,
    touched: Cell<Instant>,
    /// The group that may write the mailbox directory, made effective only
    /// while the lock file is handled.
    group: Option<Gid>,
}

/// Run `work` with `group` as the effective gid (the real or saved gid of the
/// process), then go back. With `None`, or the group effective already, just
/// run it. A spool like Debian's `/var/mail` (root:mail 2775) lets only group
/// `mail` make files in it; holding that group any longer would let the user's
/// session unlink anything there and read every `user:mail 0660` mailbox.
fn with_group<T>(group: Option<Gid>, work: impl FnOnce() -> T) -> T {
    let before = getegid();
    match group {
        Some(group) if group != before && setegid(group).is_ok() => {
            let _back = GroupBack(before);
            work()
        }
        _ => work(),
    }
}

/// Puts the effective gid back when dropped, on every way out of
/// [`with_group`]'s work, an unwinding panic included.
struct GroupBack(Gid);

impl Drop for GroupBack {
    fn drop(&mut self) {
        // Back to the real gid: this cannot fail for the process that left
        // it. Should it, nothing more may happen with the spool's group.
        if setegid(self.0).is_err() {
            std::process::abort();
        }
    }
}

/// The lock file's name for a mailbox: the mailbox path with `.lock` appended.
pub fn lock_path(mailbox: &Path) -> PathBuf {
    let mut name = OsString::from(mailbox.as_os_str());
    name.push(".lock");
    PathBuf::from(name)
}

/// Try once to take the dot-lock of `mailbox`, to be touched every `refresh`,
/// handled with `group` effective. `Ok(None)` when somebody holds it.
pub fn try_lock(
    mailbox: &Path,
    refresh: Duration,
    group: Option<Gid>,
) -> io::Result<Option<DotLock>> {
    with_group(group, || try_lock_as_is(mailbox, refresh, group))
}

fn try_lock_as_is(
    mailbox: &Path,
    refresh: Duration,
    group: Option<Gid>,
) -> io::Result<Option<DotLock>> {
    let lock = lock_path(mailbox);
    let mut temp = TempFile::create(mailbox)?;
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
            _ if ours => {
                let Some(open) = temp.file.take() else {
                    return Err(io::Error::other("dot-lock temp file already closed"));
                };
                let held = DotLock {
                    path: lock,
                    identity: temp.identity,
                    _open: open,
                    refresh,
                    touched: Cell::new(Instant::now()),
                    group,
                };
                drop(temp);
                return Ok(Some(held));
            }
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
    /// Touch the lock file if the refresh interval has passed since the last
    /// touch, so that nobody takes it for stale. Cheap otherwise.
    pub fn refresh_if_due(&self) {
        let now = Instant::now();
        if now.duration_since(self.touched.get()) >= self.refresh {
            with_group(self.group, || touch_if_ours(&self.path, self.identity));
            self.touched.set(now);
        }
    }
}

impl Drop for DotLock {
    fn drop(&mut self) {
        with_group(self.group, || remove_if_ours(&self.path, self.identity));
    }
}

/// Remove the lock file if it is still the one we made: the same inode, which
/// no other file can have while we keep ours open.
fn remove_if_ours(path: &Path, identity: FileId) {
    if same_file(path, identity) {
        let _ = fs::remove_file(path);
    }
}

fn same_file(path: &Path, identity: FileId) -> bool {
    fs::symlink_metadata(path).is_ok_and(|meta| FileId::of(&meta) == identity)
}

fn touch_if_ours(path: &Path, identity: FileId) {
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
    // A lock with no pid (its writer's disk was full) is judged by age alone.
    let stale = older_than_stale_age(&meta) || holder(lock).is_some_and(pid_is_gone);
    if !stale {
        return Ok(false);
    }
    // Remove only the file we judged, not one somebody made since.
    if same_file(lock, FileId::of(&meta)) {
        match fs::remove_file(lock) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }
    }
    Ok(true)
}

fn older_than_stale_age(meta: &fs::Metadata) -> bool {
    meta.modified().is_ok_and(|modified| {
        SystemTime::now()
            .duration_since(modified)
            .unwrap_or_default()
            > DOTLOCK_STALE_AGE
    })
}

/// True when `pid` is not running on this host.
fn pid_is_gone(pid: i32) -> bool {
    pid > 0 && kill(Pid::from_raw(pid), None) == Err(Errno::ESRCH)
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

/// This host's name as it stands in our temp files' names.
fn host_part() -> String {
    nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().replace(['/', '.'], "_"))
        .unwrap_or_default()
}

/// The start of the names of the temp files for `mailbox`'s lock.
fn temp_prefix(mailbox: &Path) -> String {
    let base = mailbox.file_name().unwrap_or_default().to_string_lossy();
    format!(".{base}.lock.")
}

/// Remove temp files of `mailbox`'s lock that a killed session left: those of
/// a pid of this host that is gone, and any older than the stale age. Called
/// once all of a transaction's locks are held (one directory scan per
/// transaction), so no live session of ours is making one for it.
pub fn remove_leftover_temp_files(mailbox: &Path, group: Option<Gid>) {
    with_group(group, || remove_leftovers(mailbox));
}

fn remove_leftovers(mailbox: &Path) {
    let dir = mailbox.parent().unwrap_or(Path::new("."));
    let prefix = temp_prefix(mailbox);
    let host = host_part();
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
            continue;
        };
        // {host}.{pid}.{16 hex digits}: our own format, nothing else.
        let mut parts = rest.rsplitn(3, '.');
        let (Some(random), Some(pid), Some(its_host)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let Ok(pid) = pid.parse::<i32>() else {
            continue;
        };
        if random.len() != 16 || !random.bytes().all(|b| b.is_ascii_hexdigit()) {
            continue;
        }
        let Ok(meta) = entry.path().symlink_metadata() else {
            continue;
        };
        if !meta.is_file() || pid == std::process::id() as i32 {
            continue;
        }
        if older_than_stale_age(&meta) || (its_host == host && pid_is_gone(pid)) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// The uniquely named file that is linked to the lock name; its name is
/// removed on drop.
struct TempFile {
    path: PathBuf,
    identity: FileId,
    /// Open until the lock is ours, and then kept open by the [`DotLock`].
    file: Option<fs::File>,
}

impl TempFile {
    fn create(mailbox: &Path) -> io::Result<TempFile> {
        let dir = mailbox.parent().unwrap_or(Path::new("."));
        let pid = std::process::id();
        let path = dir.join(format!(
            "{}{}.{pid}.{:016x}",
            temp_prefix(mailbox),
            host_part(),
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
            identity: FileId::default(),
            file: None,
        };
        let meta = file.metadata()?;
        temp.identity = FileId::of(&meta);
        match file.write_all(format!("{pid}\n").as_bytes()) {
            Ok(()) => {}
            // A full disk or a file-size limit: a lock without a pid is still a
            // lock, and an RDEL is just what frees the disk.
            Err(error) if is_out_of_room(&error) => file.set_len(0)?,
            Err(error) => return Err(error),
        }
        temp.file = Some(file);
        Ok(temp)
    }
}

fn is_out_of_room(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::ENOSPC | libc::EDQUOT | libc::EFBIG)
    )
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
        let modified = fs::symlink_metadata(path).unwrap().modified().unwrap();
        SystemTime::now()
            .duration_since(modified)
            .unwrap_or_default()
    }

    fn make_old(path: &Path) {
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
            path,
            &old,
            &old,
            UtimensatFlags::NoFollowSymlink,
        )
        .unwrap();
    }

    #[test]
    fn a_held_lock_is_touched_when_due_and_removed_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let mailbox = dir.path().join("fred");
        let held = try_lock(&mailbox, Duration::from_millis(200), None)
            .unwrap()
            .unwrap();
        let lock = lock_path(&mailbox);
        assert_eq!(
            fs::read_to_string(&lock).unwrap(),
            format!("{}\n", std::process::id())
        );
        // Make it look ten minutes old; a refresh that is not due leaves it.
        make_old(&lock);
        held.refresh_if_due();
        assert!(age(&lock) > DOTLOCK_STALE_AGE, "touched before it was due");
        std::thread::sleep(Duration::from_millis(250));
        held.refresh_if_due();
        assert!(
            age(&lock) < Duration::from_secs(5),
            "the held lock was not touched"
        );
        // Somebody else cannot take it meanwhile: it is ours and alive.
        assert!(try_lock(&mailbox, Duration::from_secs(30), None)
            .unwrap()
            .is_none());
        drop(held);
        let left: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert!(left.is_empty(), "left behind: {left:?}");
    }

    #[test]
    fn a_lock_without_a_pid_is_stale_by_age_alone() {
        let dir = tempfile::tempdir().unwrap();
        let mailbox = dir.path().join("fred");
        let lock = lock_path(&mailbox);
        fs::write(&lock, b"").unwrap();
        assert!(try_lock(&mailbox, DOTLOCK_STALE_AGE, None)
            .unwrap()
            .is_none());
        make_old(&lock);
        let held = try_lock(&mailbox, DOTLOCK_STALE_AGE, None).unwrap();
        assert!(held.is_some(), "an old lock without a pid was not broken");
    }

    #[test]
    fn leftover_temp_files_of_dead_sessions_are_removed_by_the_next_holder() {
        let dir = tempfile::tempdir().unwrap();
        let mailbox = dir.path().join("fred");
        let prefix = temp_prefix(&mailbox);
        let host = host_part();
        let dead = format!("{prefix}{host}.999999999.0123456789abcdef");
        let alive = format!("{prefix}{host}.1.0123456789abcdef");
        let old_elsewhere = format!("{prefix}otherhost.1.0123456789abcdef");
        let young_elsewhere = format!("{prefix}otherhost.2.0123456789abcdef");
        let not_ours = format!("{prefix}{host}.999999999.xyz");
        let other_mailbox = format!(".anne.lock.{host}.999999999.0123456789abcdef");
        for name in [
            &dead,
            &alive,
            &old_elsewhere,
            &young_elsewhere,
            &not_ours,
            &other_mailbox,
        ] {
            fs::write(dir.path().join(name), b"1\n").unwrap();
        }
        make_old(&dir.path().join(&old_elsewhere));
        let held = try_lock(&mailbox, DOTLOCK_STALE_AGE, None)
            .unwrap()
            .unwrap();
        remove_leftover_temp_files(&mailbox, None);
        let mut left: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        let mut expected = vec![
            alive,
            young_elsewhere,
            not_ours,
            other_mailbox,
            "fred.lock".to_string(),
        ];
        expected.sort();
        assert_eq!(left, expected);
        drop(held);
    }
}
