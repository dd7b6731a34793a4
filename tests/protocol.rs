//! Every row of the session table in PROTOCOL.md, the byte-for-byte example,
//! lowercase commands, bare LF and CR LF, through the real binary.

mod common;

use common::*;
use std::time::Duration;

/// Lines joined with CR LF, each terminated.
fn script(lines: &[&str]) -> Vec<u8> {
    let mut s = String::new();
    for l in lines {
        s.push_str(l);
        s.push_str("\r\n");
    }
    s.into_bytes()
}

fn env_with_example() -> TestEnv {
    let env = TestEnv::new();
    env.write_mailbox("fred", EXAMPLE_MBOX);
    env
}

const EXAMPLE_WIRE: &[u8] =
    b"From fred@example.org Thu Nov 26 10:00:00 2026\r\nSubject: hello\r\n\r\nHi Fred.\r\n\r\n";

// --- the example, byte for byte -------------------------------------------------

#[test]
fn example_session_byte_for_byte() {
    let env = env_with_example();
    assert_eq!(EXAMPLE_MBOX.len(), 73);
    assert_eq!(EXAMPLE_WIRE.len(), 78);
    let before = file_id(&env.mailbox_path("fred"));
    let out = env.run(&fred_transaction("RDEL", "\r\n"));
    out.assert_exit(0);
    let mut r = out.replies();
    r.logged_in();
    assert_eq!(r.line(), "#78");
    assert_eq!(r.data(78), EXAMPLE_WIRE);
    r.ok();
    r.ok();
    r.end();
    // The stream is exactly: greeting, two +OK lines, #78, the data, two +OK lines.
    let s = &out.stdout;
    assert!(s.starts_with(b"+OK POP1 server ready\r\n"));
    let hash = s.windows(5).position(|w| w == b"#78\r\n").unwrap();
    assert_eq!(&s[hash + 5..hash + 5 + 78], EXAMPLE_WIRE);
    // After RCVD the file exists, same owner, mode and inode, and is empty.
    let after = file_id(&env.mailbox_path("fred"));
    assert_eq!(before, after);
    assert_eq!(env.read_mailbox("fred"), b"");
    env.assert_mail_dir_is(&["fred"]);
}

// --- AUTH ---------------------------------------------------------------------

#[test]
fn auth_user_remembers_name_and_goes_to_pass() {
    let env = env_with_example();
    let out = env.run(&script(&["USER fred", "PASS secret", "RETR fred"]));
    out.assert_exit(0);
    let mut r = out.replies();
    r.logged_in();
    assert_eq!(r.count(), 78);
    r.end();
}

#[test]
fn auth_user_reply_is_the_same_for_known_and_unknown_users() {
    let env = env_with_example();
    let out = env.run(&script(&["USER fred", "RSET", "USER nosuchuser", "RSET"]));
    let mut r = out.replies();
    r.greeting();
    let known = r.ok();
    r.ok();
    let unknown = r.ok();
    r.ok();
    r.end();
    assert_eq!(known, unknown);
}

#[test]
fn auth_user_without_name_is_err() {
    let env = env_with_example();
    let out = env.run(&script(&[
        "USER",
        "PASS secret",
        "USER fred",
        "PASS secret",
    ]));
    let mut r = out.replies();
    r.greeting();
    r.err();
    r.err();
    r.ok();
    r.ok();
    r.end();
}

#[test]
fn auth_pass_retr_rdel_rcev_rcvd_do_nothing() {
    let env = env_with_example();
    let out = env.run(&script(&[
        "PASS secret",
        "RETR fred",
        "RDEL fred",
        "RCEV",
        "RCVD",
        "USER fred",
        "PASS secret",
        "RETR fred",
        "RCEV",
        "RCVD",
    ]));
    out.assert_exit(0);
    let mut r = out.replies();
    r.greeting();
    for _ in 0..5 {
        r.err();
    }
    r.ok();
    r.ok();
    assert_eq!(r.count(), 78);
    assert_eq!(r.data(78), EXAMPLE_WIRE);
    r.ok();
    r.end();
    assert_eq!(env.read_mailbox("fred"), EXAMPLE_MBOX);
    env.assert_mail_dir_is(&["fred"]);
}

#[test]
fn auth_rset_gives_ok() {
    let env = env_with_example();
    let out = env.run(&script(&["RSET", "USER fred", "PASS secret"]));
    let mut r = out.replies();
    r.greeting();
    r.ok();
    r.ok();
    r.ok();
    r.end();
}

// --- PASS ---------------------------------------------------------------------

#[test]
fn pass_success_goes_to_idle() {
    let env = env_with_example();
    let out = env.run(&script(&["USER fred", "PASS secret", "RETR fred", "RSET"]));
    let mut r = out.replies();
    r.logged_in();
    assert_eq!(r.count(), 78);
    r.ok();
    r.end();
}

#[test]
fn pass_failure_goes_back_to_auth() {
    let env = env_with_example();
    let out = env.run(&script(&[
        "USER fred",
        "PASS wrong",
        "PASS secret", // AUTH now: the name was forgotten
        "RETR fred",
        "USER fred",
        "PASS secret",
        "RETR fred",
    ]));
    out.assert_exit(0);
    let mut r = out.replies();
    r.greeting();
    r.ok();
    r.err();
    r.err();
    r.err();
    r.ok();
    r.ok();
    assert_eq!(r.count(), 78);
    r.end();
}

#[test]
fn pass_state_other_commands_forget_the_name() {
    for cmd in [
        "USER fred",
        "USER barney",
        "RETR fred",
        "RDEL fred",
        "RCEV",
        "RCVD",
        "XYZZY",
        "",
    ] {
        let env = env_with_example();
        let out = env.run(&script(&[
            "USER fred",
            cmd,
            "PASS secret", // must fail: back in AUTH
            "USER fred",
            "PASS secret",
        ]));
        out.assert_exit(0);
        let mut r = out.replies();
        r.greeting();
        r.ok();
        let l = r.line();
        assert!(l.starts_with("-ERR"), "{cmd:?} in PASS state: got {l:?}");
        let l = r.line();
        assert!(
            l.starts_with("-ERR"),
            "PASS after {cmd:?} in PASS state must fail (name forgotten), got {l:?}"
        );
        r.ok();
        r.ok();
        r.end();
        assert_eq!(env.read_mailbox("fred"), EXAMPLE_MBOX);
        env.assert_mail_dir_is(&["fred"]);
    }
}

#[test]
fn pass_state_noop_keeps_the_name() {
    let env = env_with_example();
    let out = env.run(&script(&["USER fred", "NOOP", "PASS secret", "RETR fred"]));
    let mut r = out.replies();
    r.greeting();
    r.ok();
    r.ok();
    r.ok();
    assert_eq!(r.count(), 78);
    r.end();
}

#[test]
fn pass_state_rset_forgets_the_name() {
    let env = env_with_example();
    let out = env.run(&script(&["USER fred", "RSET", "PASS secret", "RETR fred"]));
    let mut r = out.replies();
    r.greeting();
    r.ok();
    r.ok();
    r.err();
    r.err();
    r.end();
}

#[test]
fn pass_state_quit_ends_the_session() {
    let env = env_with_example();
    let out = env.run(&script(&["USER fred", "QUIT", "NOOP"]));
    out.assert_exit(0);
    let mut r = out.replies();
    r.greeting();
    r.ok();
    r.ok();
    r.end();
}

#[test]
fn pass_state_too_many_failures_ends_the_session() {
    // Default --max-auth-failures is 3.
    let env = env_with_example();
    let out = env.run(&script(&[
        "USER fred",
        "PASS a",
        "USER fred",
        "PASS b",
        "USER fred",
        "PASS c",
        "NOOP",
        "USER fred",
        "PASS secret",
    ]));
    out.assert_exit(0);
    let mut r = out.replies();
    r.greeting();
    r.ok();
    r.err();
    r.ok();
    r.err();
    r.ok();
    // The third failure ends the session with -ERR (one or two -ERR lines).
    r.err();
    let rest = r.rest();
    assert!(
        rest.is_empty() || rest.starts_with(b"-ERR"),
        "after the last allowed failure only -ERR then close, got {:?}",
        String::from_utf8_lossy(rest)
    );
    if !rest.is_empty() {
        r.err();
    }
    r.end();
}

#[test]
fn password_may_contain_spaces() {
    let env = TestEnv::new().user("wilma", HASH_SPACES);
    env.write_mailbox("wilma", b"From x Thu Nov 26 10:00:00 2026\n\nhi\n");
    let out = env.run(b"USER wilma\r\nPASS correct horse battery\r\nRETR wilma\r\n");
    let mut r = out.replies();
    r.logged_in();
    r.count();
    // With bare LF too, and the trailing CR is not part of the password.
    let out = env.run(b"USER wilma\nPASS correct horse battery\nRETR wilma\n");
    let mut r = out.replies();
    r.logged_in();
    r.count();
    // A trailing space is part of the password.
    let out = env.run(b"USER wilma\r\nPASS correct horse battery \r\n");
    let mut r = out.replies();
    r.greeting();
    r.ok();
    r.err();
}

// --- IDLE ---------------------------------------------------------------------

#[test]
fn idle_retr_and_rdel_give_count() {
    let env = env_with_example();
    let out = env.run(&script(&[
        "USER fred",
        "PASS secret",
        "RETR fred",
        "RCEV",
        "RCVD",
        "RDEL fred",
        "RCEV",
        "RCVD",
        "RETR fred",
        "RCEV",
        "RCVD",
    ]));
    out.assert_exit(0);
    let mut r = out.replies();
    r.logged_in();
    assert_eq!(r.count(), 78);
    assert_eq!(r.data(78), EXAMPLE_WIRE);
    r.ok();
    assert_eq!(r.count(), 78);
    assert_eq!(r.data(78), EXAMPLE_WIRE);
    r.ok();
    assert_eq!(r.count(), 0);
    r.ok();
    r.end();
    assert_eq!(env.read_mailbox("fred"), b"");
}

#[test]
fn idle_rcev_rcvd_user_pass_do_nothing() {
    let env = env_with_example();
    let out = env.run(&script(&[
        "USER fred",
        "PASS secret",
        "RCEV",
        "RCVD",
        "USER fred",
        "PASS secret",
        "USER barney",
        "RETR fred",
    ]));
    let mut r = out.replies();
    r.logged_in();
    for _ in 0..5 {
        r.err();
    }
    // Still logged in as fred.
    assert_eq!(r.count(), 78);
    r.end();
}

#[test]
fn retr_of_another_name_is_no_such_mailbox_whether_or_not_it_exists() {
    let env = env_with_example().user("barney", HASH_SHA256_CHEAP);
    env.write_mailbox("barney", b"From b Thu Nov 26 10:00:00 2026\n\nbarney's\n");
    let out = env.run(&script(&[
        "USER fred",
        "PASS secret",
        "RETR barney",
        "RDEL barney",
        "RETR wilma",
        "RDEL wilma",
        "RETR ../mail/barney",
        "RETR",
        "RDEL",
        "RETR fred",
    ]));
    let mut r = out.replies();
    r.logged_in();
    let existing = r.err();
    assert_eq!(existing, "-ERR no such mailbox");
    assert_eq!(r.err(), existing);
    let missing = r.err();
    assert_eq!(
        missing, existing,
        "same text whether or not the file exists"
    );
    assert_eq!(r.err(), existing);
    r.err();
    r.err();
    r.err();
    // The failed attempts left the session IDLE with nothing locked.
    assert_eq!(r.count(), 78);
    r.end();
    assert_eq!(
        env.read_mailbox("barney"),
        b"From b Thu Nov 26 10:00:00 2026\n\nbarney's\n"
    );
    env.assert_mail_dir_is(&["barney", "fred"]);
}

#[test]
fn failed_retr_of_a_non_regular_mailbox_leaves_idle_and_unlocked() {
    // A symlink at the mailbox path, a directory, a FIFO: -ERR, no hang, no lock.
    let env = TestEnv::new();
    let target = env.root.join("target");
    std::fs::write(&target, b"From x Thu Nov 26 10:00:00 2026\n\nsecret data\n").unwrap();
    give_to_server(&target);
    std::os::unix::fs::symlink(&target, env.mailbox_path("fred")).unwrap();
    let s = script(&[
        "USER fred",
        "PASS secret",
        "RETR fred",
        "RCEV",
        "RDEL fred",
        "RCEV",
        "RCVD",
        "NOOP",
    ]);
    let check = |env: &TestEnv, what: &str| {
        let out = env.run(&s);
        out.assert_exit(0);
        let mut r = out.replies();
        r.logged_in();
        let l = r.line();
        assert!(l.starts_with("-ERR"), "RETR of a {what}: got {l:?}");
        r.err();
        let l = r.line();
        assert!(l.starts_with("-ERR"), "RDEL of a {what}: got {l:?}");
        r.err();
        r.err();
        r.ok();
        r.end();
        assert!(!out.stdout.windows(11).any(|w| w == b"secret data"));
    };
    check(&env, "symlink");
    assert_eq!(
        std::fs::read(&target).unwrap(),
        b"From x Thu Nov 26 10:00:00 2026\n\nsecret data\n"
    );
    env.assert_mail_dir_is(&["fred"]);

    std::fs::remove_file(env.mailbox_path("fred")).unwrap();
    std::fs::create_dir(env.mailbox_path("fred")).unwrap();
    give_to_server(&env.mailbox_path("fred"));
    check(&env, "directory");
    env.assert_mail_dir_is(&["fred"]);

    std::fs::remove_dir(env.mailbox_path("fred")).unwrap();
    nix::unistd::mkfifo(
        &env.mailbox_path("fred"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    give_to_server(&env.mailbox_path("fred"));
    check(&env, "FIFO");
    env.assert_mail_dir_is(&["fred"]);

    // A hard link to another user's mailbox: RDEL must not empty barney's mail.
    std::fs::remove_file(env.mailbox_path("fred")).unwrap();
    let barney = env.write_mailbox(
        "barney",
        b"From b Thu Nov 26 10:00:00 2026\n\nsecret data\n",
    );
    std::fs::hard_link(&barney, env.mailbox_path("fred")).unwrap();
    check(&env, "hard link");
    assert_eq!(
        env.read_mailbox("barney"),
        b"From b Thu Nov 26 10:00:00 2026\n\nsecret data\n"
    );
    env.assert_mail_dir_is(&["barney", "fred"]);
}

// --- OPEN ---------------------------------------------------------------------

#[test]
fn open_rcev_sends_exactly_count_octets_without_status_line() {
    let env = env_with_example();
    let mut s = env.spawn();
    s.login("fred", FRED_PASS);
    s.cmd("RETR fred");
    assert_eq!(s.expect_count(), 78);
    s.cmd("RCEV");
    assert_eq!(s.read_exact(78), EXAMPLE_WIRE);
    // No status line follows: the next line is the reply to the next command.
    s.expect_silence(Duration::from_millis(200));
    s.cmd("NOOP");
    s.expect_ok();
    s.cmd("RCVD");
    s.expect_ok();
    s.cmd("QUIT");
    s.expect_ok();
    s.expect_eof();
    assert!(s.wait_exit(DEFAULT_WAIT).success());
}

#[test]
fn open_rcvd_before_rcev_is_err_and_deletes_nothing() {
    let env = env_with_example();
    let out = env.run(&script(&[
        "USER fred",
        "PASS secret",
        "RDEL fred",
        "RCVD",
        "RSET",
    ]));
    let mut r = out.replies();
    r.logged_in();
    assert_eq!(r.count(), 78);
    r.err();
    r.ok();
    r.end();
    assert_eq!(env.read_mailbox("fred"), EXAMPLE_MBOX);
    env.assert_mail_dir_is(&["fred"]);

    // The state stays OPEN: RCEV still sends the data, then RCVD deletes.
    let out = env.run(&script(&[
        "USER fred",
        "PASS secret",
        "RDEL fred",
        "RCVD",
        "RCEV",
        "RCVD",
    ]));
    let mut r = out.replies();
    r.logged_in();
    assert_eq!(r.count(), 78);
    r.err();
    assert_eq!(r.data(78), EXAMPLE_WIRE);
    r.ok();
    r.end();
    assert_eq!(env.read_mailbox("fred"), b"");
}

#[test]
fn open_and_sent_refuse_retr_rdel_user_pass() {
    let env = env_with_example();
    let out = env.run(&script(&[
        "USER fred",
        "PASS secret",
        "RDEL fred",
        "RETR fred",
        "RDEL fred",
        "USER fred",
        "PASS secret",
        "RCEV",
        "RETR fred",
        "RDEL fred",
        "USER fred",
        "PASS secret",
        "RCVD",
    ]));
    out.assert_exit(0);
    let mut r = out.replies();
    r.logged_in();
    assert_eq!(r.count(), 78);
    for _ in 0..4 {
        r.err();
    }
    assert_eq!(r.data(78), EXAMPLE_WIRE);
    for _ in 0..4 {
        r.err();
    }
    // The RDEL transaction went on unchanged: RCVD deletes.
    r.ok();
    r.end();
    assert_eq!(env.read_mailbox("fred"), b"");
    env.assert_mail_dir_is(&["fred"]);
}

// --- SENT ---------------------------------------------------------------------

#[test]
fn sent_rcev_again_is_err_and_sends_no_second_copy() {
    let env = env_with_example();
    let out = env.run(&script(&[
        "USER fred",
        "PASS secret",
        "RETR fred",
        "RCEV",
        "RCEV",
        "RCVD",
    ]));
    let mut r = out.replies();
    r.logged_in();
    assert_eq!(r.count(), 78);
    assert_eq!(r.data(78), EXAMPLE_WIRE);
    r.err();
    r.ok();
    r.end();
}

#[test]
fn sent_rcvd_ends_transaction_and_goes_to_idle() {
    let env = env_with_example();
    let mut s = env.spawn();
    s.login("fred", FRED_PASS);
    s.cmd("RETR fred");
    assert_eq!(s.expect_count(), 78);
    s.cmd("RCEV");
    s.read_exact(78);
    s.cmd("RCVD");
    s.expect_ok();
    // Unlocked and IDLE: the locks are free, RCEV is refused, a new RETR works.
    assert_all_locks_free(&env.mailbox_path("fred"));
    s.cmd("RCEV");
    s.expect_err();
    s.cmd("RETR fred");
    assert_eq!(s.expect_count(), 78);
    s.cmd("QUIT");
    s.expect_ok();
    s.expect_eof();
    assert_eq!(env.read_mailbox("fred"), EXAMPLE_MBOX);
}

// --- RSET ---------------------------------------------------------------------

#[test]
fn rset_in_idle_open_and_sent() {
    let env = env_with_example();
    let mut s = env.spawn();
    s.login("fred", FRED_PASS);
    s.cmd("RSET");
    s.expect_ok(); // IDLE
    s.cmd("RETR fred");
    assert_eq!(s.expect_count(), 78);

    // OPEN
    s.cmd("RDEL fred");
    s.expect_err();
    s.cmd("RSET");
    s.expect_ok();
    assert_all_locks_free(&env.mailbox_path("fred"));
    s.cmd("RCEV");
    s.expect_err(); // IDLE now
    s.cmd("RDEL fred");
    assert_eq!(s.expect_count(), 78);
    env.wait_for_lock_file("fred");
    s.cmd("RSET");
    s.expect_ok();
    assert_all_locks_free(&env.mailbox_path("fred"));
    assert_eq!(env.read_mailbox("fred"), EXAMPLE_MBOX);

    // SENT
    s.cmd("RDEL fred");
    assert_eq!(s.expect_count(), 78);
    s.cmd("RCEV");
    assert_eq!(s.read_exact(78), EXAMPLE_WIRE);
    s.cmd("RSET");
    s.expect_ok();
    assert_all_locks_free(&env.mailbox_path("fred"));
    s.cmd("RCVD");
    s.expect_err(); // IDLE: nothing to acknowledge
    assert_eq!(env.read_mailbox("fred"), EXAMPLE_MBOX);
    s.cmd("QUIT");
    s.expect_ok();
    s.expect_eof();
    env.assert_mail_dir_is(&["fred"]);
}

// --- any state: NOOP, QUIT, unknown, end of input ------------------------------

/// Scripts that bring a session into each state, and what the state is.
fn state_prefixes() -> Vec<(&'static str, Vec<&'static str>)> {
    vec![
        ("AUTH", vec![]),
        ("PASS", vec!["USER fred"]),
        ("IDLE", vec!["USER fred", "PASS secret"]),
        ("OPEN", vec!["USER fred", "PASS secret", "RDEL fred"]),
        (
            "SENT",
            vec!["USER fred", "PASS secret", "RDEL fred", "RCEV"],
        ),
    ]
}

/// What `skip_prefix` reads: the replies of a whole session or of a running one.
trait PrefixReplies {
    fn greeting(&mut self);
    fn ok(&mut self);
    fn count(&mut self) -> usize;
    fn data(&mut self, n: usize) -> Vec<u8>;
}

impl PrefixReplies for Replies<'_> {
    fn greeting(&mut self) {
        Replies::greeting(self);
    }
    fn ok(&mut self) {
        Replies::ok(self);
    }
    fn count(&mut self) -> usize {
        Replies::count(self)
    }
    fn data(&mut self, n: usize) -> Vec<u8> {
        Replies::data(self, n).to_vec()
    }
}

impl PrefixReplies for Session {
    fn greeting(&mut self) {
        Session::greeting(self);
    }
    fn ok(&mut self) {
        self.expect_ok();
    }
    fn count(&mut self) -> usize {
        self.expect_count()
    }
    fn data(&mut self, n: usize) -> Vec<u8> {
        self.read_exact(n)
    }
}

/// Parses the replies to a state prefix.
fn skip_prefix(r: &mut impl PrefixReplies, state: &str) {
    r.greeting();
    match state {
        "AUTH" => {}
        "PASS" => {
            r.ok();
        }
        "IDLE" => {
            r.ok();
            r.ok();
        }
        "OPEN" => {
            r.ok();
            r.ok();
            assert_eq!(r.count(), 78);
        }
        "SENT" => {
            r.ok();
            r.ok();
            assert_eq!(r.count(), 78);
            assert_eq!(r.data(78), EXAMPLE_WIRE);
        }
        _ => unreachable!(),
    }
}

/// Checks the state is still `state` by sending the command that proves it.
fn state_probe(state: &str) -> Vec<&'static str> {
    match state {
        "AUTH" => vec!["PASS secret"],  // -ERR
        "PASS" => vec!["PASS secret"],  // +OK
        "IDLE" => vec!["RCEV"],         // -ERR
        "OPEN" => vec!["RCEV", "RCVD"], // data, +OK
        "SENT" => vec!["RCVD"],         // +OK
        _ => unreachable!(),
    }
}

fn check_probe(r: &mut Replies, state: &str) {
    match state {
        "AUTH" => {
            r.err();
        }
        "PASS" => {
            r.ok();
        }
        "IDLE" => {
            r.err();
        }
        "OPEN" => {
            assert_eq!(r.data(78), EXAMPLE_WIRE);
            r.ok();
        }
        "SENT" => {
            r.ok();
        }
        _ => unreachable!(),
    }
}

/// One session on the example mailbox: `prefix` (which brings it into
/// `state`), `cmd`, then `after`. Checks exit 0 and the replies to the prefix,
/// hands the reply line to `cmd` and the rest to `check`, then checks that
/// nothing more came. Returns the environment for checks on the files.
fn in_state(
    state: &str,
    prefix: &[&str],
    cmd: &str,
    after: &[&str],
    check: impl FnOnce(&str, &mut Replies),
) -> TestEnv {
    let env = env_with_example();
    let mut lines = prefix.to_vec();
    lines.push(cmd);
    lines.extend(after);
    let out = env.run(&script(&lines));
    out.assert_exit(0);
    let mut r = out.replies();
    skip_prefix(&mut r, state);
    let l = r.line();
    check(&l, &mut r);
    r.end();
    env
}

#[test]
fn noop_in_every_state_is_ok_and_changes_nothing() {
    for (state, prefix) in state_prefixes() {
        in_state(state, &prefix, "NOOP", &state_probe(state), |l, r| {
            assert!(l.starts_with("+OK"), "NOOP in {state}: {l:?}");
            check_probe(r, state);
        });
    }
}

#[test]
fn unknown_keyword_and_empty_line_in_every_state_but_pass() {
    for (state, prefix) in state_prefixes() {
        if state == "PASS" {
            continue; // covered by pass_state_other_commands_forget_the_name
        }
        for bad in ["XYZZY", "", "RETRFRED", "NOOPX", " NOOP", "\t"] {
            in_state(state, &prefix, bad, &state_probe(state), |l, r| {
                assert!(l.starts_with("-ERR"), "{bad:?} in {state}: {l:?}");
                check_probe(r, state);
            });
        }
    }
}

#[test]
fn quit_in_every_state_is_ok_exits_0_and_deletes_nothing() {
    for (state, prefix) in state_prefixes() {
        let env = in_state(state, &prefix, "QUIT", &["NOOP", "RCVD"], |l, _| {
            assert!(l.starts_with("+OK"), "QUIT in {state}: {l:?}");
        });
        assert_eq!(env.read_mailbox("fred"), EXAMPLE_MBOX, "QUIT in {state}");
        env.assert_mail_dir_is(&["fred"]);
    }
}

#[test]
fn end_of_input_in_every_state_exits_0_and_deletes_nothing() {
    for (state, prefix) in state_prefixes() {
        let env = env_with_example();
        let out = env.run(&script(&prefix));
        out.assert_exit(0);
        let mut r = out.replies();
        skip_prefix(&mut r, state);
        r.end();
        assert_eq!(env.read_mailbox("fred"), EXAMPLE_MBOX, "EOF in {state}");
        env.assert_mail_dir_is(&["fred"]);
    }
}

#[test]
fn idle_timeout_in_every_state_gives_err_and_exits() {
    // All five sessions run at once, so the test takes about one timeout.
    let mut running = Vec::new();
    for (state, prefix) in state_prefixes() {
        let env = env_with_example().args(["--timeout", "1"]);
        let mut s = env.spawn();
        s.send(&script(&prefix));
        running.push((state, env, s, std::time::Instant::now()));
    }
    for (state, env, mut s, _start) in running {
        // Replies to the prefix, then the timeout -ERR.
        skip_prefix(&mut s, state);
        let l = s.read_line();
        assert!(l.starts_with("-ERR"), "timeout in {state}: {l:?}");
        s.expect_eof();
        let st = s.wait_exit(Duration::from_secs(5));
        assert_eq!(st.code(), Some(0), "exit status after timeout in {state}");
        assert_eq!(env.read_mailbox("fred"), EXAMPLE_MBOX, "timeout in {state}");
        env.assert_mail_dir_is(&["fred"]);
    }
}

// --- arguments where none is allowed --------------------------------------------

#[test]
fn commands_without_arguments_refuse_one() {
    let env = env_with_example();
    let out = env.run(&script(&[
        "NOOP x",
        "QUIT now",
        "RSET x",
        "USER fred",
        "PASS secret",
        "RDEL fred",
        "RCEV x",
        "RSET x",
        "QUIT x",
        "NOOP x",
        "RCEV", // still OPEN
        "RCVD x",
        "RCVD",
        "QUIT",
    ]));
    out.assert_exit(0);
    let mut r = out.replies();
    r.greeting();
    r.err();
    r.err();
    r.err();
    r.ok();
    r.ok();
    assert_eq!(r.count(), 78);
    for _ in 0..4 {
        r.err();
    }
    assert_eq!(r.data(78), EXAMPLE_WIRE);
    r.err();
    r.ok();
    r.ok();
    r.end();
    assert_eq!(env.read_mailbox("fred"), b"");
}

// --- case and line ends ---------------------------------------------------------

#[test]
fn lowercase_and_mixed_case_commands_work() {
    let env = env_with_example();
    let out = env.run(b"user fred\r\npass secret\r\nnoop\r\nrdel fred\r\nrcev\r\nrcvd\r\nrset\r\nReTr fred\r\nRcEv\r\nrCvD\r\nquit\r\n");
    out.assert_exit(0);
    let mut r = out.replies();
    r.logged_in();
    r.ok();
    assert_eq!(r.count(), 78);
    assert_eq!(r.data(78), EXAMPLE_WIRE);
    r.ok();
    r.ok();
    assert_eq!(r.count(), 0);
    r.ok();
    r.ok();
    r.end();
    assert_eq!(env.read_mailbox("fred"), b"");
}

#[test]
fn bare_lf_crlf_and_mixed_line_ends_give_the_same_replies() {
    let lines = [
        "USER fred",
        "PASS secret",
        "NOOP",
        "RETR fred",
        "RCEV",
        "RCVD",
        "XYZZY",
        "QUIT",
    ];
    let run = |sep: &dyn Fn(usize) -> &'static str| {
        let env = env_with_example();
        let mut s = Vec::new();
        for (i, l) in lines.iter().enumerate() {
            s.extend_from_slice(l.as_bytes());
            s.extend_from_slice(sep(i).as_bytes());
        }
        let out = env.run(&s);
        out.assert_exit(0);
        let mut r = out.replies();
        r.logged_in();
        r.ok();
        assert_eq!(r.count(), 78);
        assert_eq!(r.data(78), EXAMPLE_WIRE);
        r.ok();
        r.err();
        r.ok();
        r.end();
        out.stdout
    };
    let crlf_out = run(&|_| "\r\n");
    let lf_out = run(&|_| "\n");
    let mixed_out = run(&|i| if i % 2 == 0 { "\n" } else { "\r\n" });
    assert_eq!(crlf_out, lf_out);
    assert_eq!(crlf_out, mixed_out);
}

#[test]
fn two_transactions_in_one_session() {
    let env = env_with_example();
    let mut s = env.spawn();
    s.login("fred", FRED_PASS);
    s.cmd("RETR fred");
    assert_eq!(s.expect_count(), 78);
    s.cmd("RCEV");
    assert_eq!(s.read_exact(78), EXAMPLE_WIRE);
    s.cmd("RCVD");
    s.expect_ok();
    // New mail arrives between the transactions; the second one sees it.
    let more = message("barney@example.org", "again", "second");
    let mut all = EXAMPLE_MBOX.to_vec();
    all.extend_from_slice(&more);
    env.write_mailbox("fred", &all);
    s.cmd("RDEL fred");
    assert_eq!(s.expect_count(), crlf(&all).len());
    s.cmd("RCEV");
    assert_eq!(s.read_exact(crlf(&all).len()), crlf(&all));
    s.cmd("RCVD");
    s.expect_ok();
    s.close_stdin();
    s.expect_eof();
    assert_eq!(s.wait_exit(DEFAULT_WAIT).code(), Some(0));
    assert_eq!(env.read_mailbox("fred"), b"");
}

#[test]
fn unsafe_user_names_never_reach_the_file_system() {
    // Even a passwd-file entry with such a name must not open a path with it.
    let long = "l".repeat(65);
    let names = ["../outside", ".hidden", "a/b", long.as_str()];
    let mut env = TestEnv::new();
    for n in names {
        env = env.user(n, HASH_SHA256_CHEAP);
    }
    std::fs::write(
        env.root.join("outside"),
        b"From x Thu Nov 26 10:00:00 2026\n\nOUTSIDE\n",
    )
    .unwrap();
    give_to_server(&env.root.join("outside"));
    env.write_mailbox(".hidden", b"From x Thu Nov 26 10:00:00 2026\n\nHIDDEN\n");
    env.write_mailbox(&long, b"From x Thu Nov 26 10:00:00 2026\n\nLONG\n");
    for n in names {
        let out = env.run(
            format!("USER {n}\r\nPASS secret\r\nRETR {n}\r\nRCEV\r\nRDEL {n}\r\nRCEV\r\nRCVD\r\n")
                .as_bytes(),
        );
        out.assert_exit(0);
        let text = String::from_utf8_lossy(&out.stdout);
        for secret in ["OUTSIDE", "HIDDEN", "LONG"] {
            assert!(!text.contains(secret), "user {n:?} read a file: {text:?}");
        }
        assert!(!text.contains("\n#"), "user {n:?} got a count: {text:?}");
    }
    assert!(env.root.join("outside").exists());
    assert!(!env.root.join("outside.lock").exists());
    assert_eq!(
        std::fs::read(env.mailbox_path(".hidden")).unwrap(),
        b"From x Thu Nov 26 10:00:00 2026\n\nHIDDEN\n"
    );
    env.assert_mail_dir_is(&[".hidden", long.as_str()]);
}
