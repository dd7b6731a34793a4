//! The one place where pop1d changes its privileges.
//!
//! pop1d reads its passwd-file and opens syslog with the privileges it was started
//! with; then, before it reads a byte from the client, it becomes the `--user`
//! account for good (supplementary groups, gid, uid: all real, effective and saved).
//! It must never open a mailbox while it is root.

use std::ffi::CString;

use anyhow::{bail, Context, Result};
use nix::unistd::{getuid, initgroups, setgid, setuid, Uid, User};

/// Become `name` for good. Not root: only `name` itself is accepted.
pub fn become_user(name: &str) -> Result<()> {
    let user = User::from_name(name)
        .with_context(|| format!("--user {name}: cannot look up the account"))?
        .with_context(|| format!("--user {name}: no such account"))?;
    if user.uid.is_root() {
        bail!("--user {name}: that is root, and pop1d never serves mailboxes as root");
    }
    if !nix::unistd::geteuid().is_root() {
        if getuid() != user.uid {
            bail!(
                "--user {name}: only root can switch users; pop1d runs as uid {}",
                getuid()
            );
        }
        return Ok(());
    }
    let c_name = CString::new(name).context("--user: name contains NUL")?;
    initgroups(&c_name, user.gid).with_context(|| format!("--user {name}: initgroups"))?;
    setgid(user.gid).with_context(|| format!("--user {name}: setgid"))?;
    setuid(user.uid).with_context(|| format!("--user {name}: setuid"))?;
    if setuid(Uid::from_raw(0)).is_ok() {
        bail!("--user {name}: root privileges could be regained after setuid");
    }
    Ok(())
}

/// True when pop1d runs as root (real or effective uid).
pub fn is_root() -> bool {
    getuid().is_root() || nix::unistd::geteuid().is_root()
}
