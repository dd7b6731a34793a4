//! Locking against real peers: an fcntl lock held by another process, a dot-lock
//! made by Debian's dotlockfile, a flock held by util-linux flock, and procmail
//! delivering. Stale dot-locks are broken; `--locks` selects the methods.

mod common;

use common::*;
use std::fs;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn data() -> Vec<u8> {
    let mut d = message("a@example.org", "one", "first");
    d.extend(message("b@example.org", "two", "second"));
    d
}

fn env_timeout(lock_timeout: &str) -> TestEnv {
    let env = TestEnv::new().args(["--lock-timeout", lock_timeout]);
    env.write_mailbox("fred", &data());
    env
}

/// Logs in, sends RETR, returns the reply and how long it took.
fn timed_retr(s: &mut Session) -> (String, Duration) {
    s.login("fred", FRED_PASS);
    s.timed("RETR fred")
}

/// A peer holding one kind of lock.
enum Holder {
    Fcntl(#[allow(dead_code)] FcntlLock),
    Flock(#[allow(dead_code)] FlockHolder),
    Dot(std::path::PathBuf),
}

impl Drop for Holder {
    fn drop(&mut self) {
        if let Holder::Dot(p) = self {
            let _ = fs::remove_file(p);
        }
    }
}

fn hold(env: &TestEnv, kind: &str) -> Holder {
    let mbox = env.mailbox_path("fred");
    match kind {
        "fcntl" => Holder::Fcntl(FcntlLock::take(&mbox)),
        "flock" => Holder::Flock(FlockHolder::take(&mbox)),
        "dotlock" => {
            dotlock_take(&env.lock_path("fred"), true);
            Holder::Dot(env.lock_path("fred"))
        }
        "dotlock-nopid" => {
            dotlock_take(&env.lock_path("fred"), false);
            Holder::Dot(env.lock_path("fred"))
        }
        _ => unreachable!(),
    }
}

// --- busy mailbox -----------------------------------------------------------------

fn busy_case(kind: &str) {
    let env = env_timeout("1");
    let holder = hold(&env, kind);
    let lock_before = fs::read(env.lock_path("fred")).ok();
    let mut s = env.spawn();
    let (reply, took) = timed_retr(&mut s);
    assert!(
        reply.starts_with("-ERR"),
        "{kind} held: RETR gave {reply:?}"
    );
    assert!(
        took >= Duration::from_millis(900),
        "{kind} held: RETR must wait the lock timeout (1 s), answered after {took:?}"
    );
    assert!(
        took < Duration::from_secs(5),
        "{kind} held: RETR waited {took:?} for a 1 s lock timeout"
    );
    // Someone else's valid dot-lock is left alone; pop1d left nothing of its own.
    assert_eq!(fs::read(env.lock_path("fred")).ok(), lock_before);
    let mut expect_entries = vec!["fred"];
    if kind.starts_with("dotlock") {
        expect_entries.push("fred.lock");
    }
    env.assert_mail_dir_is(&expect_entries);
    // Still IDLE: once the peer lets go, RETR works.
    s.cmd("NOOP");
    s.expect_ok();
    drop(holder);
    s.cmd("RETR fred");
    assert_eq!(s.expect_count(), crlf(&data()).len());
    s.cmd("QUIT");
    s.expect_ok();
    s.expect_eof();
    s.wait_exit(DEFAULT_WAIT);
    let log = s.final_log();
    assert!(
        log.iter().any(|l| l == "lock busy: user=fred, rip=local"),
        "log must say `lock busy: user=fred, rip=local`: {log:?}"
    );
    assert_eq!(env.read_mailbox("fred"), data());
}

#[test]
fn fcntl_lock_of_another_process_makes_retr_wait_then_err() {
    busy_case("fcntl");
}

#[test]
fn dotlockfile_lock_without_pid_makes_retr_wait_then_err() {
    busy_case("dotlock-nopid");
}

#[test]
fn dotlockfile_lock_with_live_pid_makes_retr_wait_then_err() {
    busy_case("dotlock");
}

#[test]
fn flock_of_util_linux_flock_makes_retr_wait_then_err() {
    busy_case("flock");
}

#[test]
fn lock_timeout_zero_answers_at_once() {
    for kind in ["fcntl", "dotlock", "flock"] {
        let env = env_timeout("0");
        let _holder = hold(&env, kind);
        let mut s = env.spawn();
        let (reply, took) = timed_retr(&mut s);
        assert!(reply.starts_with("-ERR"), "{kind}: {reply:?}");
        assert!(
            took < Duration::from_millis(800),
            "{kind}: --lock-timeout 0 must answer at once, took {took:?}"
        );
        s.cmd("QUIT");
        s.expect_ok();
    }
}

#[test]
fn retr_succeeds_when_the_peer_releases_within_the_timeout() {
    for kind in ["fcntl", "dotlock", "flock"] {
        let env = env_timeout("10");
        let holder = hold(&env, kind);
        let mut s = env.spawn();
        s.login("fred", FRED_PASS);
        let start = Instant::now();
        s.cmd("RETR fred");
        std::thread::sleep(Duration::from_millis(600));
        drop(holder);
        let n = s.expect_count();
        let took = start.elapsed();
        assert_eq!(n, crlf(&data()).len());
        assert!(took >= Duration::from_millis(550), "{kind}: {took:?}");
        assert!(took < Duration::from_secs(8), "{kind}: waited {took:?}");
        s.cmd("QUIT");
        s.expect_ok();
    }
}

// --- stale dot-locks ----------------------------------------------------------------

fn stale_case(what: &str, make: impl FnOnce(&TestEnv)) {
    let env = env_timeout("5");
    make(&env);
    assert!(env.lock_path("fred").exists());
    let mut s = env.spawn();
    let (reply, took) = timed_retr(&mut s);
    assert!(
        reply == format!("#{}", crlf(&data()).len()),
        "{what}: a stale dot-lock must be broken; RETR gave {reply:?}"
    );
    assert!(took < Duration::from_secs(4), "{what}: took {took:?}");
    // Now the lock is pop1d's own.
    let content = fs::read_to_string(env.lock_path("fred")).unwrap();
    assert_eq!(content, format!("{}\n", s.pid), "{what}: lock content");
    s.cmd("RCEV");
    s.read_exact(crlf(&data()).len());
    s.cmd("RCVD");
    s.expect_ok();
    s.cmd("QUIT");
    s.expect_ok();
    s.expect_eof();
    s.wait_exit(DEFAULT_WAIT);
    env.assert_mail_dir_is(&["fred"]);
}

#[test]
fn stale_dotlock_with_a_dead_pid_is_broken() {
    stale_case("dead pid", |env| {
        let lock = env.lock_path("fred");
        fs::write(&lock, format!("{}\n", dead_pid())).unwrap();
    });
}

fn touch_old(path: &std::path::Path) {
    let st = Command::new("touch")
        .args(["-d", "10 minutes ago"])
        .arg(path)
        .status()
        .expect("run touch");
    assert!(st.success());
}

#[test]
fn stale_dotlock_older_than_five_minutes_is_broken() {
    // Holding a running pid (the test process, via dotlockfile -p) but not
    // modified for 10 minutes.
    stale_case("old, live pid", |env| {
        dotlock_take(&env.lock_path("fred"), true);
        touch_old(&env.lock_path("fred"));
    });
    // No pid at all (dotlockfile -l writes "0"), 10 minutes old.
    stale_case("old, no pid", |env| {
        dotlock_take(&env.lock_path("fred"), false);
        touch_old(&env.lock_path("fred"));
    });
}

// --- the locks of an open transaction -----------------------------------------------

fn assert_all_held(env: &TestEnv, s: &Session, when: &str) {
    let mbox = env.mailbox_path("fred");
    let lock = env.lock_path("fred");
    let content = fs::read_to_string(&lock)
        .unwrap_or_else(|e| panic!("{when}: no dot-lock file {}: {e}", lock.display()));
    assert_eq!(
        content,
        format!("{}\n", s.pid),
        "{when}: dot-lock holds pop1d's pid"
    );
    assert!(
        !dotlock_free(&lock, false),
        "{when}: dotlockfile -r 0 -l got the lock"
    );
    assert!(
        !dotlock_free(&lock, true),
        "{when}: dotlockfile -r 0 -p -l got the lock"
    );
    assert!(!flock_free(&mbox), "{when}: flock -n got the lock");
    assert!(!fcntl_free(&mbox), "{when}: fcntl F_SETLK got the lock");
    assert_eq!(
        fs::read_to_string(&lock).unwrap(),
        content,
        "{when}: lock untouched"
    );
}

#[test]
fn open_transaction_holds_all_three_locks_until_it_ends() {
    let env = env_timeout("5");
    let mbox = env.mailbox_path("fred");
    let n = crlf(&data()).len();
    let mut s = env.spawn();
    s.login("fred", FRED_PASS);
    assert_all_locks_free(&mbox);

    s.cmd("RETR fred");
    assert_eq!(s.expect_count(), n);
    assert_all_held(&env, &s, "RETR, before RCEV");
    s.cmd("RCEV");
    s.read_exact(n);
    assert_all_held(&env, &s, "RETR, after RCEV");
    s.cmd("RCVD");
    s.expect_ok();
    assert_all_locks_free(&mbox);

    s.cmd("RDEL fred");
    assert_eq!(s.expect_count(), n);
    assert_all_held(&env, &s, "RDEL, before RCEV");
    s.cmd("RSET");
    s.expect_ok();
    assert_all_locks_free(&mbox);

    s.cmd("RDEL fred");
    assert_eq!(s.expect_count(), n);
    s.cmd("RCEV");
    s.read_exact(n);
    assert_all_held(&env, &s, "RDEL, after RCEV");
    s.cmd("QUIT");
    s.expect_ok();
    s.expect_eof();
    s.wait_exit(DEFAULT_WAIT);
    assert_all_locks_free(&mbox);
    assert_eq!(env.read_mailbox("fred"), data());
    env.assert_mail_dir_is(&["fred"]);
}

#[test]
fn end_of_input_during_a_transaction_frees_the_locks() {
    let env = env_timeout("5");
    let mbox = env.mailbox_path("fred");
    let mut s = env.spawn();
    s.login("fred", FRED_PASS);
    s.cmd("RDEL fred");
    s.expect_count();
    assert_all_held(&env, &s, "RDEL");
    s.close_stdin();
    s.expect_eof();
    assert_eq!(s.wait_exit(DEFAULT_WAIT).code(), Some(0));
    assert_all_locks_free(&mbox);
    assert_eq!(env.read_mailbox("fred"), data());
}

// --- procmail ---------------------------------------------------------------------

#[test]
fn procmail_delivering_during_a_transaction_waits_and_its_mail_arrives_intact() {
    require_tool("procmail", "procmail");
    let env = env_timeout("5");
    let mbox = env.mailbox_path("fred");
    let n = crlf(&data()).len();
    let msg = b"From new@example.org Thu Nov 26 11:00:00 2026\nFrom: new@example.org\nSubject: delivered by procmail\n\nHello from procmail.\n".to_vec();

    let rc_for = |folder: &std::path::Path, name: &str| {
        let rc = env.root.join(name);
        fs::write(
            &rc,
            format!(
                "LOCKSLEEP=1\nLOGFILE={}/{name}.log\n:0:\n{}\n",
                env.root.display(),
                folder.display()
            ),
        )
        .unwrap();
        rc
    };
    let deliver = |rc: &std::path::Path| {
        let mut child = Command::new("procmail")
            .arg("-m")
            .arg(rc)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn procmail");
        child.stdin.take().unwrap().write_all(&msg).unwrap();
        child
    };

    // What procmail writes for this message, delivered with no contention.
    let control = env.root.join("control-mbox");
    let st = deliver(&rc_for(&control, "control.rc"))
        .wait_with_output()
        .unwrap();
    assert!(
        st.status.success(),
        "procmail: {}",
        String::from_utf8_lossy(&st.stderr)
    );
    let delivered = fs::read(&control).unwrap();
    assert!(delivered.starts_with(b"From new@example.org"));

    let mut s = env.spawn();
    s.login("fred", FRED_PASS);
    s.cmd("RDEL fred");
    assert_eq!(s.expect_count(), n);
    s.cmd("RCEV");
    assert_eq!(s.read_exact(n), crlf(&data()));

    let mut pm = deliver(&rc_for(&mbox, "fred.rc"));
    // procmail must wait while the transaction is open.
    let until = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < until {
        assert!(
            pm.try_wait().unwrap().is_none(),
            "procmail finished while pop1d held the mailbox"
        );
        assert_eq!(
            env.read_mailbox("fred"),
            data(),
            "procmail wrote into a locked mailbox"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    s.cmd("RCVD");
    s.expect_ok();
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(st) = pm.try_wait().unwrap() {
            break st;
        }
        assert!(
            Instant::now() < deadline,
            "procmail did not deliver after RCVD"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "procmail exit status {status:?}");
    assert_eq!(
        String::from_utf8_lossy(&env.read_mailbox("fred")),
        String::from_utf8_lossy(&delivered),
        "the old mail was deleted, the new mail arrived intact"
    );
    s.cmd("QUIT");
    s.expect_ok();
    s.expect_eof();
    s.wait_exit(DEFAULT_WAIT);
    env.assert_mail_dir_is(&["fred"]);
}

// --- --locks ----------------------------------------------------------------------

fn single_method_case(method: &str) {
    let others: Vec<&str> = ["fcntl", "dotlock", "flock"]
        .into_iter()
        .filter(|m| *m != method)
        .collect();
    let n = crlf(&data()).len();

    // The two other kinds, held by peers, do not stop pop1d.
    let env = TestEnv::new().args(["--lock-timeout", "0", "--locks", method]);
    env.write_mailbox("fred", &data());
    {
        let _a = hold(&env, others[0]);
        let _b = hold(&env, others[1]);
        let mut s = env.spawn();
        let (reply, _) = timed_retr(&mut s);
        assert_eq!(
            reply,
            format!("#{n}"),
            "--locks {method}: {others:?} held by peers"
        );
        s.cmd("QUIT");
        s.expect_ok();
        s.expect_eof();
        s.wait_exit(DEFAULT_WAIT);
    }

    // During a transaction only the chosen kind is held.
    let mbox = env.mailbox_path("fred");
    let lock = env.lock_path("fred");
    let mut s = env.spawn();
    let (reply, _) = timed_retr(&mut s);
    assert_eq!(reply, format!("#{n}"));
    assert_eq!(
        !fcntl_free(&mbox),
        method == "fcntl",
        "--locks {method}: fcntl held?"
    );
    assert_eq!(
        !flock_free(&mbox),
        method == "flock",
        "--locks {method}: flock held?"
    );
    assert_eq!(
        lock.exists(),
        method == "dotlock",
        "--locks {method}: dot-lock exists?"
    );
    s.cmd("QUIT");
    s.expect_ok();
    s.expect_eof();
    s.wait_exit(DEFAULT_WAIT);

    // The chosen kind held by a peer does stop pop1d.
    let _h = hold(&env, method);
    let mut s = env.spawn();
    let (reply, _) = timed_retr(&mut s);
    assert!(
        reply.starts_with("-ERR"),
        "--locks {method}, {method} held: {reply:?}"
    );
}

#[test]
fn locks_option_fcntl_only() {
    single_method_case("fcntl");
}

#[test]
fn locks_option_dotlock_only() {
    single_method_case("dotlock");
}

#[test]
fn locks_option_flock_only() {
    single_method_case("flock");
}

#[test]
fn locks_option_two_methods() {
    let env = TestEnv::new().args(["--lock-timeout", "0", "--locks", "fcntl,flock"]);
    env.write_mailbox("fred", &data());
    let _dot = hold(&env, "dotlock");
    let mut s = env.spawn();
    let (reply, _) = timed_retr(&mut s);
    assert_eq!(reply, format!("#{}", crlf(&data()).len()));
    assert!(!flock_free(&env.mailbox_path("fred")));
    assert!(!fcntl_free(&env.mailbox_path("fred")));
    s.cmd("QUIT");
    s.expect_ok();
}

// --- the dot-lock kept fresh from the session's own loop ------------------------

fn lock_age(env: &TestEnv) -> Duration {
    let modified = fs::symlink_metadata(env.lock_path("fred"))
        .expect("the dot-lock is held")
        .modified()
        .unwrap();
    std::time::SystemTime::now()
        .duration_since(modified)
        .unwrap_or_default()
}

/// Make the held lock look ten minutes old, then see pop1d bring it back to now
/// within a few refresh intervals (shortened to 100 ms for the test).
fn assert_refreshed(env: &TestEnv, when: &str) {
    touch_old(&env.lock_path("fred"));
    assert!(lock_age(env) > Duration::from_secs(300), "{when}: not aged");
    wait_until(
        Duration::from_secs(5),
        || lock_age(env) < Duration::from_secs(5),
        &format!("the dot-lock touched again ({when})"),
    );
}

#[test]
fn a_held_dotlock_is_touched_while_the_client_is_idle_and_while_it_stalls() {
    // Idle: a transaction is open and the client sends nothing.
    let env = TestEnv::new().env("POP1D_TEST_DOTLOCK_REFRESH_MS", "100");
    env.write_mailbox("fred", &data());
    let mut s = Session::spawn(env.command());
    s.login("fred", FRED_PASS);
    s.cmd("RDEL fred");
    s.expect_count();
    assert_refreshed(&env, "idle after RDEL");
    // Busy: a client that sends NOOP more often than the refresh interval
    // must not starve the refresh either.
    touch_old(&env.lock_path("fred"));
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until && lock_age(&env) > Duration::from_secs(5) {
        s.cmd("NOOP");
        s.expect_ok();
        std::thread::sleep(Duration::from_millis(30));
    }
    assert!(
        lock_age(&env) < Duration::from_secs(5),
        "not touched while the client kept sending NOOP"
    );
    s.cmd("RCEV");
    s.read_exact(crlf(&data()).len());
    assert_refreshed(&env, "idle after RCEV");
    s.cmd("RCVD");
    s.expect_ok();
    s.cmd("QUIT");
    s.expect_ok();
    assert_eq!(s.wait_exit(DEFAULT_WAIT).code(), Some(0));
    assert_all_locks_free(&env.mailbox_path("fred"));

    // Stalled: RCEV of more than the pipe holds, and the client stops reading.
    let env = TestEnv::new().env("POP1D_TEST_DOTLOCK_REFRESH_MS", "100");
    let big = bulk_mailbox(8 << 20);
    env.write_mailbox("fred", &big);
    let mut s = Session::spawn(env.command());
    s.login("fred", FRED_PASS);
    s.cmd("RETR fred");
    let count = s.expect_count();
    s.cmd("RCEV");
    let mut got = s.read_exact(1 << 20);
    assert_refreshed(&env, "client not reading mid-RCEV");
    got.extend(s.read_exact(count - got.len()));
    assert!(got == crlf(&big), "data differs");
    s.cmd("QUIT");
    s.expect_ok();
    assert_eq!(s.wait_exit(DEFAULT_WAIT).code(), Some(0));
    assert_all_locks_free(&env.mailbox_path("fred"));
}

// --- what killed sessions and full disks leave behind ---------------------------

/// This host's name as pop1d writes it into its temp lock files' names.
fn host_part() -> String {
    nix::unistd::gethostname()
        .unwrap()
        .to_string_lossy()
        .replace(['/', '.'], "_")
}

#[test]
fn temp_lock_files_left_by_killed_sessions_are_removed_by_the_next_one() {
    // A session killed between making its temp file and linking it leaves
    // `.fred.lock.HOST.PID.RANDOM` behind. The next session to take the lock
    // removes those whose pid is gone, and any older than the stale age; a
    // live session's own and other mailboxes' are left alone.
    let env = TestEnv::new();
    env.write_mailbox("fred", &data());
    let host = host_part();
    let dead = format!(".fred.lock.{host}.{}.0123456789abcdef", dead_pid());
    let old_elsewhere = ".fred.lock.elsewhere.77.0123456789abcdef".to_string();
    let alive = format!(".fred.lock.{host}.{}.0123456789abcdef", std::process::id());
    let anne = format!(".anne.lock.{host}.{}.0123456789abcdef", dead_pid());
    for name in [&dead, &old_elsewhere, &alive, &anne] {
        let path = env.mail_dir.join(name);
        fs::write(&path, format!("{}\n", dead_pid())).unwrap();
        give_to_server(&path);
    }
    touch_old(&env.mail_dir.join(&old_elsewhere));
    let out = env.run(&fred_transaction("RDEL", "\r\n"));
    out.assert_exit(0);
    assert_eq!(env.read_mailbox("fred"), b"");
    let mut left = env.mail_dir_entries();
    left.sort();
    let mut expected = vec!["fred".to_string(), alive, anne];
    expected.sort();
    assert_eq!(left, expected);
}

/// A small tmpfs over the mail directory, unmounted when dropped.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(dir: &std::path::Path) -> SmallDisk {
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=256k,mode=0755", "pop1d-test"])
            .arg(dir)
            .status()
            .expect("run mount");
        assert!(status.success(), "mount -t tmpfs on {}", dir.display());
        give_to_server(dir);
        SmallDisk(dir.to_path_buf())
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn rdel_works_on_a_full_disk() {
    // The dot-lock's temp file is made, but there is no room for the pid in
    // it. A lock without a pid is still a lock (stale by age alone, as
    // Dovecot and Postfix judge it), and an RDEL is just what frees the disk.
    if !system_tests() {
        return;
    }
    let env = TestEnv::new();
    let _disk = SmallDisk::mount(&env.mail_dir);
    let data = data();
    env.write_mailbox("fred", &data);
    let filler = env.mail_dir.join("filler");
    let mut file = fs::File::create(&filler).unwrap();
    let chunk = vec![b'x'; 4096];
    while file.write_all(&chunk).is_ok() {}
    let _ = file.write_all(b"x");
    drop(file);
    let out = env.run(&fred_transaction("RDEL", "\r\n"));
    out.assert_exit(0);
    let mut r = out.replies();
    r.logged_in();
    let n = r.count();
    assert_eq!(r.data(n), crlf(&data).as_slice());
    assert_eq!(r.ok(), "+OK", "RCVD on a full disk; log {:?}", out.log());
    assert_eq!(env.read_mailbox("fred"), b"");
    fs::remove_file(&filler).unwrap();
    env.assert_mail_dir_is(&["fred"]);
}
