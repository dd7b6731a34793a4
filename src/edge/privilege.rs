//! The one place where pop1d changes its privileges.
//!
//! Started as root, pop1d splits in two at once (see `src/main.rs`): the login
//! child becomes `--login-user` ([`become_login_user`]) before it reads a byte
//! from the client; the monitor stays root only to verify passwords, and after
//! a successful login becomes the account ([`become_account`]) or, for virtual
//! users, the `--user` account ([`become_user`]) for good: supplementary groups,
//! gid, uid, all real, effective and saved, checked. It must never open a
//! mailbox while it is root, nor with an effective group `mail`: that group is
//! kept only as the saved gid, made effective by the lock module just while a
//! dot-lock is made, touched or removed in a spool like Debian's `/var/mail`
//! (root:mail 2775).

use std::ffi::CString;

use anyhow::{bail, Context, Result};
use nix::unistd::{
    getegid, getgid, getgroups, getuid, initgroups, setgid, setgroups, setresgid, setresuid,
    setuid, Gid, Group, Uid, User,
};

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
    cannot_regain_root(name)
}

/// What the login account must not be, checked before it is used.
pub struct LoginRules<'a> {
    /// The `--user` account of virtual users.
    pub not_user: Option<&'a str>,
    /// The mailbox directory (the template's fixed part), which it must not own.
    pub mailbox_dir: Option<&'a std::path::Path>,
}

/// The login child becomes `name` (`--login-user`): no supplementary groups,
/// its own gid and uid, checked. Refused when it is root, the `--user` account,
/// in group `mail`, or the owner of the mailbox directory: an account that owns
/// nothing is what may read a stranger's bytes.
pub fn become_login_user(name: &str, rules: &LoginRules<'_>) -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        // Not root: the same flow runs, and no uid changes.
        return Ok(());
    }
    let user = check_login_user(name, rules)?;
    setgroups(&[]).with_context(|| format!("--login-user {name}: setgroups"))?;
    setresgid(user.gid, user.gid, user.gid)
        .with_context(|| format!("--login-user {name}: setresgid"))?;
    setresuid(user.uid, user.uid, user.uid)
        .with_context(|| format!("--login-user {name}: setresuid"))?;
    cannot_regain_root(name)?;
    if getgroups().is_ok_and(|groups| groups.iter().any(|g| g.as_raw() == 0)) {
        bail!("--login-user {name}: group root is still among the groups");
    }
    Ok(())
}

/// Confine the login child once it is the login account: it may gain no
/// privilege again (no setuid program through exec) and start no process, so
/// that even a compromised child can leave nothing behind that outlives the
/// session or writes into it after the login.
pub fn confine_login_child() -> Result<()> {
    nix::sys::prctl::set_no_new_privs().context("PR_SET_NO_NEW_PRIVS")?;
    nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NPROC, 0, 0)
        .context("RLIMIT_NPROC")?;
    Ok(())
}

/// The login account, if it may be one ([`become_login_user`]'s rules).
pub fn check_login_user(name: &str, rules: &LoginRules<'_>) -> Result<User> {
    let user = User::from_name(name)
        .with_context(|| format!("--login-user {name}: cannot look up the account"))?
        .with_context(|| format!("--login-user {name}: no such account"))?;
    if user.uid.is_root() || user.gid.as_raw() == 0 {
        bail!("--login-user {name}: that is root");
    }
    if rules.not_user == Some(name) {
        bail!("--login-user {name}: that is the --user account, which owns the mailboxes");
    }
    if let Some(mail) = mail_group() {
        let member = user.gid == mail
            || Group::from_gid(mail)
                .ok()
                .flatten()
                .is_some_and(|group| group.mem.iter().any(|m| m == name));
        if member {
            bail!("--login-user {name}: it is in group mail, which may write the mail spool");
        }
    }
    if let Some(dir) = rules.mailbox_dir {
        use std::os::unix::fs::MetadataExt;
        if std::fs::metadata(dir).is_ok_and(|meta| meta.uid() == user.uid.as_raw()) {
            bail!(
                "--login-user {name}: it owns the mailbox directory {}",
                dir.display()
            );
        }
    }
    Ok(user)
}

/// A system account, as the monitor becomes it.
pub struct Account<'a> {
    pub name: &'a str,
    pub uid: Uid,
    pub gid: Gid,
}

/// The monitor becomes the account that logged in: its groups (initgroups), its
/// gid, its uid, all checked; with `keep_group` (the spool's group `mail`) as
/// the saved gid only, made effective just while a dot-lock is handled.
pub fn become_account(account: &Account<'_>, keep_group: Option<Gid>) -> Result<()> {
    let name = account.name;
    if account.uid.is_root() {
        bail!("{name}: refusing to become root");
    }
    let c_name = CString::new(name).context("account name contains NUL")?;
    initgroups(&c_name, account.gid).with_context(|| format!("{name}: initgroups"))?;
    // A group `mail` among the account's own groups would be effective for
    // the whole session; the saved gid is enough to make a lock.
    if let Some(mail) = keep_group {
        let groups: Vec<Gid> = getgroups()
            .unwrap_or_default()
            .into_iter()
            .filter(|&g| g != mail)
            .collect();
        setgroups(&groups).with_context(|| format!("{name}: setgroups"))?;
    }
    let saved = keep_group.unwrap_or(account.gid);
    setresgid(account.gid, account.gid, saved).with_context(|| format!("{name}: setresgid"))?;
    setresuid(account.uid, account.uid, account.uid)
        .with_context(|| format!("{name}: setresuid"))?;
    cannot_regain_root(name)?;
    if getegid() != account.gid || getgid() != account.gid {
        bail!("{name}: the group did not change");
    }
    Ok(())
}

/// The spool's group `mail`, when the system has one.
pub fn mail_group() -> Option<Gid> {
    Group::from_name("mail")
        .ok()
        .flatten()
        .map(|group| group.gid)
}

fn cannot_regain_root(name: &str) -> Result<()> {
    if setuid(Uid::from_raw(0)).is_ok() || nix::unistd::seteuid(Uid::from_raw(0)).is_ok() {
        bail!("{name}: root privileges could be regained after setuid");
    }
    Ok(())
}

/// True when pop1d runs as root (real or effective uid).
pub fn is_root() -> bool {
    getuid().is_root() || nix::unistd::geteuid().is_root()
}
