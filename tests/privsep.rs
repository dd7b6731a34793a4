//! System accounts through the real binary started as root, with no
//! passwd-file: the privilege separation of a Debian mail host. A login child
//! reads the client as `--login-user`; the root monitor verifies through
//! /etc/shadow and becomes the account, which reads and empties its own
//! `/var/mail` mailbox.
//!
//! These make accounts and write /var/mail: they run only with
//! POP1D_SYSTEM_TESTS=1, as root, and fail when they cannot run.

mod common;
use common::accounts::*;
use common::*;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

const PASSWORD: &str = "correct horse 42";

/// A dedicated login account, as the README asks for: a system account that
/// owns nothing, in no group but its own.
fn login_account() -> TestAccount {
    TestAccount::with_args("unused login password", &["--system"])
}

/// `/var/mail/NAME` as Postfix's local(8) makes it: the user's, group mail,
/// mode 0660, holding `data`.
fn spool_mailbox(account: &TestAccount, data: &[u8]) -> PathBuf {
    let path = PathBuf::from("/var/mail").join(&account.name);
    fs::write(&path, data).unwrap();
    run(
        "chown",
        &[&format!("{}:mail", account.name), path.to_str().unwrap()],
    );
    fs::set_permissions(&path, fs::Permissions::from_mode(0o660)).unwrap();
    path
}

struct Spool(PathBuf);

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// pop1d as inetd starts it for system accounts: root, no passwd-file.
fn pop1d_as_root(login: &str, extra: &[&str]) -> Command {
    let mut cmd = Command::new(POP1D);
    cmd.args([
        "--login-user",
        login,
        "--log",
        "stderr",
        "--auth-delay",
        "0",
    ])
    .args(extra)
    .env_remove("REMOTE_ADDR");
    cmd
}

fn require_spool() {
    let meta = fs::metadata("/var/mail").expect("/var/mail, Debian's mail spool");
    assert!(meta.is_dir());
}

#[test]
fn a_system_account_empties_its_own_spool_mailbox_and_keeps_owner_mode_and_inode() {
    if !system_tests() {
        return;
    }
    require_spool();
    let login = login_account();
    let fred = TestAccount::new(PASSWORD);
    let mail = message("a@example.org", "spool", "for a system account\n");
    let path = spool_mailbox(&fred, &mail);
    let _spool = Spool(path.clone());
    let before = fs::metadata(&path).unwrap();
    let script = format!(
        "USER {0}\r\nPASS {PASSWORD}\r\nRDEL {0}\r\nRCEV\r\nRCVD\r\nQUIT\r\n",
        fred.name
    );
    let out = run_command(pop1d_as_root(&login.name, &[]), script.as_bytes());
    out.assert_exit(0);
    let mut r = out.replies();
    r.logged_in();
    let n = r.count();
    assert_eq!(r.data(n), crlf(&mail).as_slice());
    r.ok();
    r.ok();
    r.end();
    let after = fs::metadata(&path).unwrap();
    assert_eq!(after.len(), 0, "emptied");
    assert_eq!(
        (after.ino(), after.uid(), after.gid(), after.mode()),
        (before.ino(), before.uid(), before.gid(), before.mode()),
        "inode, owner, group and mode unchanged"
    );
    let leftovers: Vec<_> = fs::read_dir("/var/mail")
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(&fred.name) && *n != fred.name)
        .collect();
    assert!(leftovers.is_empty(), "lock files left: {leftovers:?}");
    let log = out.log();
    assert!(
        log.iter()
            .any(|l| *l == format!("login: user={}, rip=local", fred.name)),
        "{log:?}"
    );
}

#[test]
fn wrong_empty_locked_expired_low_uid_and_root_logins_are_refused_identically() {
    if !system_tests() {
        return;
    }
    require_spool();
    let login = login_account();
    let wrong = TestAccount::new(PASSWORD);
    let locked = TestAccount::new(PASSWORD);
    locked.change("usermod", &["-L"]);
    let expired = TestAccount::new(PASSWORD);
    expired.change("chage", &["-E", "0"]);
    let low = TestAccount::new(PASSWORD);
    let first_valid = (low.uid + 1).to_string();
    // Each a separate session, so that the failure count does not end one.
    let attempt = |user: &str, password: &str, first_valid_uid: &str| {
        let script = format!("USER {user}\r\nPASS {password}\r\nQUIT\r\n");
        let out = run_command(
            pop1d_as_root(&login.name, &["--first-valid-uid", first_valid_uid]),
            script.as_bytes(),
        );
        out.assert_exit(0);
        let replies = String::from_utf8_lossy(&out.stdout).into_owned();
        (replies, out.log())
    };
    let cases = [
        ("wrong", wrong.name.as_str(), "not the password", "1000"),
        ("empty", wrong.name.as_str(), "", "1000"),
        ("locked", locked.name.as_str(), PASSWORD, "1000"),
        ("expired", expired.name.as_str(), PASSWORD, "1000"),
        ("low uid", low.name.as_str(), PASSWORD, first_valid.as_str()),
        ("root", "root", PASSWORD, "0"),
        ("unknown", "p1d-no-such-user", PASSWORD, "1000"),
    ];
    let mut seen = Vec::new();
    for (what, user, password, first_valid_uid) in cases {
        let (replies, log) = attempt(user, password, first_valid_uid);
        assert_eq!(
            replies, "+OK POP1 server ready\r\n+OK\r\n-ERR authentication failed\r\n+OK bye\r\n",
            "{what}"
        );
        assert!(
            log.iter()
                .any(|l| *l == format!("login failed: user={user}, rip=local")),
            "{what}: {log:?}"
        );
        seen.push(replies);
    }
    // And the right password, for contrast.
    let (replies, _) = attempt(&wrong.name, PASSWORD, "1000");
    assert!(replies.contains("+OK\r\n+OK\r\n+OK bye"), "{replies}");
}

/// The uids and gids of a process: real, effective, saved.
fn ids(pid: u32, field: &str) -> Vec<u32> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap()
        .split_whitespace()
        .take(3)
        .map(|n| n.parse().unwrap())
        .collect()
}

fn children(pid: u32) -> Vec<u32> {
    fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect()
}

#[test]
fn the_login_child_reads_as_the_login_account_and_the_monitor_becomes_the_user() {
    if !system_tests() {
        return;
    }
    require_spool();
    let login = login_account();
    let fred = TestAccount::new(PASSWORD);
    let path = spool_mailbox(&fred, &message("a@example.org", "x", "y\n"));
    let _spool = Spool(path);
    let mut s = Session::spawn(pop1d_as_root(&login.name, &[]));
    s.greeting();
    // Before the login: the monitor is root, and its one child, which read
    // the greeting out, is the login account through and through.
    assert_eq!(ids(s.pid, "Uid"), [0, 0, 0]);
    let kids = children(s.pid);
    assert_eq!(kids.len(), 1, "one login child");
    assert_eq!(ids(kids[0], "Uid"), [login.uid; 3]);
    let login_gid = nix::unistd::User::from_name(&login.name)
        .unwrap()
        .unwrap()
        .gid
        .as_raw();
    assert_eq!(ids(kids[0], "Gid"), [login_gid; 3]);
    let status = fs::read_to_string(format!("/proc/{}/status", kids[0])).unwrap();
    let groups = status.lines().find(|l| l.starts_with("Groups:")).unwrap();
    assert_eq!(groups.trim(), "Groups:", "no supplementary groups");
    assert!(
        status.lines().any(|l| l == "NoNewPrivs:\t1"),
        "the login child can gain no privilege: {status}"
    );
    s.cmd(&format!("USER {}", fred.name));
    s.expect_ok();
    s.cmd(&format!("PASS {PASSWORD}"));
    s.expect_ok();
    // After it: the child is gone, and the monitor is the user, with mail
    // kept only as the saved gid.
    wait_until(
        Duration::from_secs(5),
        || children(s.pid).is_empty(),
        "the login child to end",
    );
    let fred_gid = nix::unistd::User::from_name(&fred.name)
        .unwrap()
        .unwrap()
        .gid
        .as_raw();
    let mail = nix::unistd::Group::from_name("mail")
        .unwrap()
        .unwrap()
        .gid
        .as_raw();
    assert_eq!(ids(s.pid, "Uid"), [fred.uid; 3]);
    assert_eq!(ids(s.pid, "Gid"), [fred_gid, fred_gid, mail]);
    s.cmd(&format!("RDEL {}", fred.name));
    s.expect_count();
    s.cmd("QUIT");
    s.expect_ok();
    assert_eq!(s.wait_exit(DEFAULT_WAIT).code(), Some(0));
}

#[test]
fn an_account_whose_own_group_is_mail_is_refused_like_a_wrong_password() {
    // Served, its group would be effective for the whole session: every
    // `user:mail 0660` mailbox readable, anything in /var/mail removable.
    if !system_tests() {
        return;
    }
    require_spool();
    let login = login_account();
    let in_mail = TestAccount::with_args(PASSWORD, &["-g", "mail"]);
    let script = format!("USER {}\r\nPASS {PASSWORD}\r\nQUIT\r\n", in_mail.name);
    let out = run_command(pop1d_as_root(&login.name, &[]), script.as_bytes());
    out.assert_exit(0);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "+OK POP1 server ready\r\n+OK\r\n-ERR authentication failed\r\n+OK bye\r\n"
    );
    let log = out.log();
    assert!(
        log.iter().any(|l| l.starts_with(&format!(
            "cannot serve user {}: its primary group",
            in_mail.name
        ))),
        "{log:?}"
    );
}

#[test]
fn a_login_account_that_could_do_harm_is_refused_at_start() {
    if !system_tests() {
        return;
    }
    require_spool();
    let in_mail = TestAccount::with_args("x", &["--system", "-G", "mail"]);
    for (what, login) in [("root", "root"), ("in group mail", in_mail.name.as_str())] {
        let out = run_command(pop1d_as_root(login, &[]), b"USER x\r\n");
        out.assert_exit(2);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "-ERR server misconfigured\r\n",
            "{what}"
        );
        assert!(
            out.stderr_text().contains("--login-user"),
            "{what}: {}",
            out.stderr_text()
        );
    }
    // The --user account of virtual users cannot read the client either.
    let env = TestEnv::new().without_user_option();
    let _ = env.command();
    let out = run_command(
        {
            let mut cmd = Command::new(POP1D);
            cmd.args(["--passwd-file", env.passwd_path.to_str().unwrap()])
                .args(["--mailbox", &format!("{}/%u", env.mail_dir.display())])
                .args([
                    "--user",
                    "nobody",
                    "--login-user",
                    "nobody",
                    "--log",
                    "stderr",
                ]);
            cmd
        },
        b"",
    );
    out.assert_exit(2);
    assert!(
        out.stderr_text().contains("--user account"),
        "{}",
        out.stderr_text()
    );
}

#[test]
fn options_that_do_not_go_together_are_start_up_errors() {
    // No machine change: these are refused before anything else.
    for args in [
        &["--user", "nobody"][..],
        &["--passwd-file", "/dev/null", "--auth", "shadow"][..],
        &["--passwd-file", "/dev/null", "--mailbox", "%h/mbox"][..],
    ] {
        let mut cmd = Command::new(POP1D);
        cmd.args(args).args(["--log", "stderr"]);
        let out = run_command(cmd, b"");
        out.assert_exit(2);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "-ERR bad command line\r\n",
            "{args:?}"
        );
    }
}

#[cfg(feature = "pam")]
#[test]
fn a_system_account_logs_in_through_a_real_pam_stack() {
    if !system_tests() {
        return;
    }
    require_spool();
    let _service = PamService::install();
    let login = login_account();
    let fred = TestAccount::new(PASSWORD);
    let path = spool_mailbox(&fred, &message("a@example.org", "pam", "via pam_unix\n"));
    let _spool = Spool(path);
    let script = format!(
        "USER {0}\r\nPASS wrong\r\nUSER {0}\r\nPASS {PASSWORD}\r\nRETR {0}\r\nQUIT\r\n",
        fred.name
    );
    let out = run_command(
        pop1d_as_root(&login.name, &["--auth", "pam"]),
        script.as_bytes(),
    );
    out.assert_exit(0);
    let mut r = out.replies();
    r.greeting();
    r.ok();
    assert_eq!(r.err(), "-ERR authentication failed");
    r.ok();
    r.ok();
    assert!(r.count() > 0);
    r.ok();
    r.end();
}
