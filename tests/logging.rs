//! `--log stderr`: the lines a mail operator and fail2ban read, in the form the
//! contract gives: `pop1d[PID]: message`.

mod common;

use common::*;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::process::Stdio;
use std::time::Duration;

fn data() -> Vec<u8> {
    message("a@example.org", "hi", "text")
}

/// Asserts `want` appears in `log` as an ordered subsequence.
fn assert_in_order(log: &[String], want: &[&str]) {
    let mut it = log.iter();
    for w in want {
        assert!(
            it.any(|l| l == w),
            "log line {w:?} missing or out of order; log: {log:#?}"
        );
    }
}

/// No raw control byte other than the line ends reaches the log.
fn assert_no_raw_controls(stderr: &[u8]) {
    for (i, &b) in stderr.iter().enumerate() {
        assert!(
            b == b'\n' || (b >= 0x20 && b != 0x7f),
            "raw control byte {b:#04x} at offset {i} in the log: {:?}",
            String::from_utf8_lossy(stderr)
        );
    }
}

#[test]
fn a_whole_session_is_logged() {
    let env = TestEnv::new();
    env.write_mailbox("fred", &data());
    let n = crlf(&data()).len();
    let out = env.run(
        b"USER fred\r\nPASS wrong\r\nUSER fred\r\nPASS secret\r\nRETR fred\r\nRCEV\r\nRCVD\r\n\
          RDEL fred\r\nRCEV\r\nRCVD\r\nQUIT\r\n",
    );
    out.assert_exit(0);
    let log = out.log();
    assert_eq!(
        log.first().map(String::as_str),
        Some("connect: rip=local"),
        "{log:#?}"
    );
    assert_eq!(
        log.last().map(String::as_str),
        Some("disconnect: quit, rip=local"),
        "{log:#?}"
    );
    let t1 = format!("transaction: user=fred, mode=RETR, bytes={n}, kept");
    let t2 = format!("transaction: user=fred, mode=RDEL, bytes={n}, deleted");
    assert_in_order(
        &log,
        &[
            "connect: rip=local",
            "login failed: user=fred, rip=local",
            "login: user=fred, rip=local",
            &t1,
            &t2,
            "disconnect: quit, rip=local",
        ],
    );
    assert_no_raw_controls(&out.stderr);
}

#[test]
fn end_of_input_is_logged_as_such() {
    let env = TestEnv::new();
    let out = env.run(b"NOOP\r\n");
    let log = out.log();
    assert_eq!(
        log,
        vec![
            "connect: rip=local".to_string(),
            "disconnect: end of input, rip=local".to_string()
        ]
    );
}

#[test]
fn remote_addr_is_used_when_stdin_is_not_a_socket() {
    for addr in ["192.0.2.7", "2001:db8::7"] {
        let env = TestEnv::new().env("REMOTE_ADDR", addr);
        env.write_mailbox("fred", &data());
        let out = env.run(b"USER ghost\r\nPASS x\r\nUSER fred\r\nPASS secret\r\nQUIT\r\n");
        out.assert_exit(0);
        let log = out.log();
        let c = format!("connect: rip={addr}");
        let f = format!("login failed: user=ghost, rip={addr}");
        let l = format!("login: user=fred, rip={addr}");
        let d = format!("disconnect: quit, rip={addr}");
        assert_in_order(&log, &[&c, &f, &l, &d]);
    }
}

#[test]
fn a_forged_remote_addr_cannot_inject_log_lines() {
    let env = TestEnv::new().env(
        "REMOTE_ADDR",
        "192.0.2.7\npop1d[1]: login: user=root, rip=1.2.3.4\x1b[2J",
    );
    let out = env.run(b"QUIT\r\n");
    out.assert_exit(0);
    assert_no_raw_controls(&out.stderr);
    let log = out.log(); // every line has pop1d's own pid prefix
    assert!(
        !log.iter().any(|l| l.starts_with("login: user=root")),
        "injected line: {log:#?}"
    );
}

#[test]
fn the_peer_address_of_a_socket_on_fd_0_wins() {
    // A real TCP connection on loopback: pop1d's stdin and stdout are the
    // accepted socket, as under inetd.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (sock, _) = listener.accept().unwrap();
    let env = TestEnv::new().env("REMOTE_ADDR", "192.0.2.7");
    let mut cmd = env.command();
    let fd_in: OwnedFd = sock.try_clone().unwrap().into();
    let fd_out: OwnedFd = sock.into();
    cmd.stdin(Stdio::from(fd_in))
        .stdout(Stdio::from(fd_out))
        .stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    drop(cmd);
    client.write_all(b"NOOP\r\nQUIT\r\n").unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut got = Vec::new();
    client.read_to_end(&mut got).unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let mut r = Replies::new(&got);
    r.greeting();
    r.ok();
    r.ok();
    r.end();
    let log = parse_log(&out.stderr, pid);
    assert_in_order(
        &log,
        &["connect: rip=127.0.0.1", "disconnect: quit, rip=127.0.0.1"],
    );
}

#[test]
fn control_bytes_in_a_user_name_are_escaped() {
    let env = TestEnv::new();
    let out = env.run(b"USER ab\x01cd\x1be\tf\x7fg\rh\r\nPASS x\r\nQUIT\r\n");
    out.assert_exit(0);
    assert_no_raw_controls(&out.stderr);
    let want = "login failed: user=ab\\x01cd\\x1be\\x09f\\x7fg\\x0dh, rip=local";
    let log = out.log();
    assert!(
        log.iter().any(|l| l.to_lowercase() == want),
        "want {want:?} (hex digits in either case); log: {log:#?}"
    );
}

#[test]
fn invalid_utf8_in_a_user_name_does_not_break_the_log() {
    let env = TestEnv::new();
    let out = env.run(b"USER \xff\xfe\xc3(\r\nPASS x\r\nQUIT\r\n");
    out.assert_exit(0);
    assert_no_raw_controls(&out.stderr);
    let log = out.log();
    assert!(
        log.iter()
            .any(|l| l.starts_with("login failed: user=") && l.ends_with(", rip=local")),
        "{log:#?}"
    );
}

#[test]
fn too_many_failures_lock_busy_and_timeout_are_logged() {
    let env = TestEnv::new().args(["--max-auth-failures", "2"]);
    let out = env.run(b"USER fred\r\nPASS x\r\nUSER fred\r\nPASS y\r\n");
    assert_in_order(
        &out.log(),
        &[
            "connect: rip=local",
            "login failed: user=fred, rip=local",
            "too many login failures: user=fred, rip=local",
            "disconnect: too many login failures, rip=local",
        ],
    );

    let env = TestEnv::new().args(["--lock-timeout", "0", "--timeout", "1"]);
    env.write_mailbox("fred", &data());
    dotlock_take(&env.lock_path("fred"), true);
    let mut s = env.spawn();
    s.login("fred", FRED_PASS);
    s.cmd("RETR fred");
    s.expect_err();
    s.expect_err(); // timeout
    s.wait_exit(DEFAULT_WAIT);
    assert_in_order(
        &s.final_log(),
        &[
            "login: user=fred, rip=local",
            "lock busy: user=fred, rip=local",
            "disconnect: timeout, rip=local",
        ],
    );
    std::fs::remove_file(env.lock_path("fred")).unwrap();
}

#[test]
fn the_log_goes_to_stderr_only_and_stdout_stays_protocol() {
    let env = TestEnv::new();
    env.write_mailbox("fred", &data());
    let mut cmd = env.command();
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    // Greeting only; the log lines are all on stderr.
    assert_eq!(out.stdout, b"+OK POP1 server ready\r\n");
    assert!(!out.stderr.is_empty());
}
