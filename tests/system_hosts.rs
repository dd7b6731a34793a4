//! pop1d on the real programs of a Debian mail host: the shipped
//! `contrib/inetd.conf` line under openbsd-inetd, the shipped systemd unit's
//! command line under `systemd-socket-activate --inetd`, rsyslog for the log,
//! Postfix delivering to `/var/mail` during RDEL sessions, and an strace of a
//! session for the uids that read the client and open the mailbox.
//!
//! They make system accounts and start daemons, so they run only with
//! `POP1D_SYSTEM_TESTS=1` (as root, which `.ci/run` sets); then a missing
//! program or a daemon that does not start fails the test. Without it each
//! test returns at once.
//!
//! How pop1d serves the test accounts (virtual users today, system accounts
//! once issue 9 lands) is one constant: `system::SERVE`.

mod common;
mod system;

use std::fs;
use std::net::Ipv4Addr;
use std::os::unix::fs::MetadataExt;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::{crlf, crlf_len, message, system_tests, POP1D};
use system::trace::{self, Event};
use system::{
    adapt, count, login_addresses, mail_gid, need, run, shipped_exec_start, shipped_inetd_line,
    syslog, wait_until, with_built_binary, Account, Adapted, Daemon, Syslog, WAIT,
};

/// The shipped inetd line for `account`: the built binary, and the options
/// [`adapt`] changes (then `extra`).
fn inetd_line(account: &Account, extra: &[(&str, &str)]) -> (Vec<String>, Adapted) {
    let shipped = shipped_inetd_line();
    assert!(
        shipped.len() >= 7,
        "contrib/inetd.conf: too few fields: {shipped:?}"
    );
    assert_eq!(shipped[1..4], ["stream", "tcp", "nowait"], "{shipped:?}");
    assert!(shipped[5].ends_with("/pop1d"), "{shipped:?}");
    system::assert_logs_to_syslog(&shipped[7..]);
    let adapted = adapt(&shipped[7..], account, extra);
    let mut fields = shipped[..7].to_vec();
    fields[5] = POP1D.to_string();
    fields.extend(adapted.args.iter().cloned());
    (fields, adapted)
}

/// The shipped unit's ExecStart= for `account`, with the built binary.
fn unit_command(account: &Account, extra: &[(&str, &str)]) -> (Vec<String>, Adapted) {
    let shipped = with_built_binary(shipped_exec_start());
    system::assert_logs_to_syslog(&shipped[1..]);
    let adapted = adapt(&shipped[1..], account, extra);
    let mut argv = vec![shipped[0].clone()];
    argv.extend(adapted.args.iter().cloned());
    (argv, adapted)
}

fn two_messages(tag: &str) -> Vec<u8> {
    [
        message(
            "anne@example.org",
            &format!("{tag} one"),
            "First.\nFrom here on.\n",
        ),
        message("bob@example.org", &format!("{tag} two"), "Second.\n"),
    ]
    .concat()
}

/// Two clients at once on one mailbox through `daemon`, from `a` and `b`. A's
/// RDEL gets the count and holds the mailbox; B's RDEL then waits for it
/// (`busy`: until --lock-timeout, then `-ERR mailbox busy`). A receives all
/// of it and ends; B (if it waited) then finds the mailbox empty. The mailbox
/// keeps its inode, owner and mode, and rsyslog's file shows each client's
/// address.
fn two_clients_one_mailbox(
    daemon: &mut Daemon,
    log: &Syslog,
    account: &Account,
    (a_ip, b_ip): (Ipv4Addr, Ipv4Addr),
    busy: Option<Duration>,
) {
    let mbox = two_messages(&account.name);
    let path = account.write_mailbox(&mbox);
    let before = fs::metadata(&path).unwrap();
    let name = &account.name;

    let mut a = daemon.connect_from(a_ip);
    a.login(name, &account.password);
    let reply = a.ask(&format!("RDEL {name}"));
    assert_eq!(
        count(&reply),
        Some(crlf_len(&mbox)),
        "A's RDEL: {reply:?}; {}",
        daemon.stderr()
    );

    let mut b = daemon.connect_from(b_ip);
    b.login(name, &account.password);
    b.send(&format!("RDEL {name}"));
    match busy {
        Some(timeout) => {
            let t = Instant::now();
            let reply = b.line();
            assert_eq!(reply, "-ERR mailbox busy, try again later");
            assert!(
                t.elapsed() >= timeout - Duration::from_millis(300),
                "busy after only {:?} (lock timeout {timeout:?})",
                t.elapsed()
            );
        }
        None => b.expect_silence(Duration::from_secs(1)),
    }

    assert_eq!(a.receive(crlf_len(&mbox)), crlf(&mbox));
    a.quit();

    if busy.is_none() {
        let reply = b.line();
        assert_eq!(count(&reply), Some(0), "B's RDEL after A's: {reply:?}");
        assert_eq!(b.receive(0), b"");
    }
    b.quit();

    let after = fs::metadata(&path).unwrap();
    assert_eq!(after.len(), 0, "the mailbox was not emptied");
    assert_eq!(
        (after.ino(), after.uid(), after.gid(), after.mode()),
        (before.ino(), before.uid(), before.gid(), before.mode()),
        "the mailbox's inode, owner, group or mode changed"
    );
    assert!(
        !std::path::Path::new(&format!("{}.lock", path.display())).exists(),
        "dot-lock left behind"
    );

    let mut rips = Vec::new();
    wait_until("both logins in rsyslog's file", WAIT, || {
        rips = login_addresses(&log.lines(), name);
        rips.len() >= 2
    });
    rips.sort();
    assert_eq!(rips, [a_ip.to_string(), b_ip.to_string()]);
    let mut lines = Vec::new();
    wait_until("both disconnects in rsyslog's file", WAIT, || {
        lines = log.lines();
        [a_ip, b_ip].iter().all(|ip| {
            lines
                .iter()
                .any(|l| l.contains("disconnect: ") && l.contains(&format!("rip={ip}")))
        })
    });
    let transactions = lines
        .iter()
        .filter(|l| l.contains(&format!("transaction: user={name}, mode=RDEL")))
        .count();
    assert!(transactions >= 1, "no transaction line: {lines:#?}");
}

#[test]
fn inetd_runs_the_shipped_line_two_clients_on_one_mailbox() {
    if !system_tests() {
        return;
    }
    let log = syslog();
    let account = Account::create();
    let (fields, _adapted) = inetd_line(&account, &[]);
    let mut inetd = Daemon::inetd(&log, &fields);
    two_clients_one_mailbox(
        &mut inetd,
        &log,
        &account,
        (Ipv4Addr::new(127, 0, 0, 2), Ipv4Addr::new(127, 0, 0, 3)),
        None,
    );
    inetd.assert_running();
}

#[test]
fn socket_activate_runs_the_shipped_unit_two_clients_on_one_mailbox() {
    if !system_tests() {
        return;
    }
    let log = syslog();
    let account = Account::create();
    // --lock-timeout 2 (the unit keeps the default 30 s): the second client
    // is refused as busy rather than waiting.
    let (argv, _adapted) = unit_command(&account, &[("--lock-timeout", "2")]);
    let mut daemon = Daemon::socket_activate(&log, &argv);
    two_clients_one_mailbox(
        &mut daemon,
        &log,
        &account,
        (Ipv4Addr::new(127, 0, 0, 4), Ipv4Addr::new(127, 0, 0, 5)),
        Some(Duration::from_secs(2)),
    );
    daemon.assert_running();
}

/// Postfix, started by the test if it is not running, and stopped again then.
/// On drop, mail still queued for `recipient` (a failed test) is deleted
/// first: delivered after the account is gone, it would bounce to root.
struct Postfix {
    started: bool,
    recipient: String,
}

impl Postfix {
    fn start(log: &Syslog, recipient: &str) -> Postfix {
        for (path, package) in [
            ("/usr/sbin/postfix", "postfix"),
            ("/usr/sbin/sendmail", "postfix"),
            ("/usr/sbin/postqueue", "postfix"),
            ("/usr/sbin/postconf", "postfix"),
        ] {
            need(path, package);
        }
        // Debian sets mailbox_command to procmail when procmail is installed
        // (debconf postfix/procmail): the test is about Postfix's own local(8)
        // writing /var/mail.
        if !run("/usr/sbin/postconf", &["-h", "mailbox_command"], None)
            .trim()
            .is_empty()
        {
            run("/usr/sbin/postconf", &["-e", "mailbox_command="], None);
        }
        for (key, want) in [("mail_spool_directory", "/var/mail"), ("home_mailbox", "")] {
            let got = run("/usr/sbin/postconf", &["-h", key], None);
            assert_eq!(got.trim(), want, "postconf {key}");
        }
        let running = Command::new("/usr/sbin/postfix")
            .arg("status")
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success();
        if !running {
            let out = log
                .wrap(&["/usr/sbin/postfix".into(), "start".into()])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "postfix start: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Postfix {
            started: !running,
            recipient: recipient.to_string(),
        }
    }

    /// Whether the queue holds nothing for `recipient`.
    fn drained(recipient: &str) -> bool {
        let q = run("/usr/sbin/postqueue", &["-p"], None);
        !q.contains(recipient)
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        // postqueue -j: one JSON object a line, one line per queued message.
        if let Ok(out) = Command::new("/usr/sbin/postqueue").arg("-j").output() {
            // Compared without white space: names and queue ids have none.
            let address = format!("\"address\":\"{}\"", self.recipient);
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                let line: String = line.split_whitespace().collect();
                let id = line
                    .split_once("\"queue_id\":\"")
                    .and_then(|(_, rest)| rest.split_once('"'))
                    .map(|(id, _)| id);
                if let (true, Some(id)) = (line.contains(&address), id) {
                    let _ = Command::new("/usr/sbin/postsuper")
                        .args(["-d", id])
                        .stderr(Stdio::null())
                        .status();
                }
            }
        }
        if self.started {
            let _ = Command::new("/usr/sbin/postfix")
                .arg("stop")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// How often each tag occurs in `data`.
fn tally(tags: &[String], data: &[u8], counts: &mut [usize]) {
    let text = String::from_utf8_lossy(data);
    for (tag, n) in tags.iter().zip(counts.iter_mut()) {
        *n += text.matches(tag.as_str()).count();
    }
}

#[test]
fn postfix_delivers_while_rdel_sessions_run_nothing_lost_nothing_twice() {
    if !system_tests() {
        return;
    }
    let log = syslog();
    let account = Account::create();
    let name = account.name.clone();
    let recipient = format!("{name}@localhost");
    // Dropped before the account: queued mail for it is deleted first.
    let _postfix = Postfix::start(&log, &recipient);
    let (fields, _adapted) = inetd_line(&account, &[("--lock-timeout", "10")]);
    let mut inetd = Daemon::inetd(&log, &fields);

    const MESSAGES: usize = 40;
    let run_id = fastrand::u32(..);
    let tags: Vec<String> = (0..MESSAGES)
        .map(|i| format!("pop1d-tag-{run_id:08x}-{i:03}."))
        .collect();

    // Inject with Postfix's sendmail, a little apart, while sessions run.
    let injector = {
        let tags = tags.clone();
        let recipient = recipient.clone();
        thread::spawn(move || {
            for (i, tag) in tags.iter().enumerate() {
                let msg = format!(
                    "From: root@localhost\nTo: {recipient}\nSubject: message {i}\n\
                     Message-ID: <{i:03}.{run_id:08x}@pop1d.test>\n\n{tag}\nFrom the test.\n"
                );
                run(
                    "/usr/sbin/sendmail",
                    &["-i", "-f", "root@localhost", &recipient],
                    Some(msg.as_bytes()),
                );
                thread::sleep(Duration::from_millis(60));
            }
        })
    };

    let mut counts = vec![0usize; MESSAGES];
    let (mut sessions, mut emptied, mut busy, mut missing) = (0, 0, 0, 0);
    let start = Instant::now();
    let mut drained_at = None;
    loop {
        let mut c = inetd.connect_from(Ipv4Addr::new(127, 0, 1, (sessions % 250 + 1) as u8));
        c.login(&name, &account.password);
        let reply = c.ask(&format!("RDEL {name}"));
        match count(&reply) {
            Some(n) => {
                let data = c.receive(n);
                tally(&tags, &data, &mut counts);
                emptied += usize::from(n > 0);
            }
            None if reply == "-ERR no such mailbox" => missing += 1,
            None if reply == "-ERR mailbox busy, try again later" => busy += 1,
            None => panic!("RDEL: {reply:?}"),
        }
        c.quit();
        sessions += 1;
        if injector.is_finished() && Postfix::drained(&recipient) {
            // One more session after the queue is empty, then stop.
            if drained_at.is_some() {
                break;
            }
            drained_at = Some(sessions);
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the queue did not drain: {}",
            run("/usr/sbin/postqueue", &["-p"], None)
        );
        thread::sleep(Duration::from_millis(150));
    }
    injector.join().unwrap();
    inetd.assert_running();

    let path = account.mailbox();
    let left = fs::read(&path).expect("Postfix made no mailbox");
    let meta = fs::metadata(&path).unwrap();
    assert_eq!(
        (meta.uid(), meta.mode() & 0o7777),
        (account.uid, 0o600),
        "Postfix's local(8) makes a missing mailbox USER 0600"
    );
    let received: usize = counts.iter().sum();
    tally(&tags, &left, &mut counts);
    let wrong: Vec<(usize, usize)> = counts
        .iter()
        .enumerate()
        .filter(|(_, &n)| n != 1)
        .map(|(i, &n)| (i, n))
        .collect();
    assert!(
        wrong.is_empty(),
        "messages (index, times seen) not seen exactly once: {wrong:?}; \
         {sessions} sessions, {received} received, {} left in the mailbox",
        MESSAGES - received
    );
    assert!(
        received > 0 && emptied > 0,
        "no session received mail ({sessions} sessions)"
    );
    eprintln!(
        "postfix: {MESSAGES} messages, {sessions} sessions ({emptied} received mail, \
         {busy} busy, {missing} before the mailbox existed), {received} received, {} left, \
         {:?}",
        MESSAGES - received,
        start.elapsed()
    );
}

#[test]
fn strace_shows_which_uids_read_the_client_and_open_the_mailbox() {
    if !system_tests() {
        return;
    }
    need("/usr/bin/strace", "strace");
    let log = syslog();
    let account = Account::create();
    let mbox = two_messages(&account.name);
    let path = account.write_mailbox(&mbox);
    let (pop1d, adapted) = unit_command(&account, &[]);
    let dir = system::private_dir("pop1d-strace-");
    let out = dir.path().join("trace");
    let mut argv: Vec<String> = vec!["/usr/bin/strace".into()];
    argv.extend(trace::STRACE_ARGS.iter().map(|s| s.to_string()));
    argv.extend(["-o".to_string(), out.display().to_string(), "--".into()]);
    argv.extend(pop1d);
    let mut daemon = Daemon::socket_activate(&log, &argv);

    let name = &account.name;
    let mut c = daemon.connect_from(Ipv4Addr::new(127, 0, 0, 6));
    c.login(name, &account.password);
    let reply = c.ask(&format!("RDEL {name}"));
    assert_eq!(count(&reply), Some(crlf_len(&mbox)), "{reply:?}");
    assert_eq!(c.receive(crlf_len(&mbox)), crlf(&mbox));
    c.quit();
    // strace writes its last lines as the traced processes end.
    wait_until("the traced session to end", WAIT, || {
        daemon.stderr().contains("died with code") || daemon.stderr().contains("died with")
    });
    daemon.assert_running();
    drop(daemon);

    let text = fs::read_to_string(&out).expect("strace wrote no trace");
    let events = trace::replay(&text);
    let mailbox = path.display().to_string();
    let mut table = String::new();
    let (mut user_read, mut pass_read, mut rdel_read, mut opened) = (None, None, None, 0);
    for e in &events {
        match e {
            Event::Read {
                pid,
                creds,
                fd: 0,
                data,
                n,
            } if *n > 0 => {
                table.push_str(&format!(
                    "read fd 0 pid {pid} uid {}/{}/{} gid {}: {data}\n",
                    creds.ruid, creds.euid, creds.suid, creds.egid
                ));
                assert!(
                    creds.ruid != 0 && creds.euid != 0 && creds.suid != 0,
                    "a process that is or can become root read the client: {e:?}"
                );
                if data.starts_with("USER ") {
                    user_read = Some(creds.euid);
                }
                if data.starts_with("PASS ") {
                    pass_read = Some(creds.euid);
                }
                if data.starts_with("RDEL ") {
                    rdel_read = Some(*creds);
                }
            }
            Event::Read {
                pid,
                creds,
                fd,
                data,
                n,
            } if *n > 0 && creds.euid == 0 => {
                // Root reads files and the login child's message, never a
                // command that follows the login.
                for command in ["RDEL ", "RCEV", "RCVD", "QUIT"] {
                    assert!(
                        !data.contains(command),
                        "pid {pid} read {command:?} from fd {fd} as root: {data}"
                    );
                }
            }
            Event::Open {
                pid,
                creds,
                path,
                flags,
                ret,
            } if *path == mailbox => {
                table.push_str(&format!(
                    "open {path} pid {pid} uid {}/{}/{} gid {}/{}/{} {flags} = {ret}\n",
                    creds.ruid, creds.euid, creds.suid, creds.rgid, creds.egid, creds.sgid
                ));
                assert!(
                    creds.euid == account.uid
                        && creds.ruid == account.uid
                        && creds.suid == account.uid,
                    "the mailbox was opened with uids {creds:?}, not the account's"
                );
                assert!(
                    creds.egid == account.gid && creds.egid != mail_gid() && creds.egid != 0,
                    "the mailbox was opened with egid {} (account's: {}, mail: {})",
                    creds.egid,
                    account.gid,
                    mail_gid()
                );
                opened += usize::from(*ret >= 0);
            }
            _ => {}
        }
    }
    eprintln!("strace replay:\n{table}");
    assert_eq!(
        user_read,
        Some(adapted.login_uid),
        "USER read by the login account:\n{table}"
    );
    assert_eq!(
        pass_read,
        Some(adapted.login_uid),
        "PASS read by the login account:\n{table}"
    );
    let rdel = rdel_read.unwrap_or_else(|| panic!("no read of RDEL:\n{table}"));
    assert_eq!(
        (rdel.euid, rdel.egid),
        (account.uid, account.gid),
        "RDEL read as the account:\n{table}"
    );
    assert!(opened > 0, "the mailbox was never opened:\n{table}");
}
