//! `--timeout`: an idle client, a client idle in the middle of a transaction,
//! and a client that stops reading during RCEV.

mod common;

use common::*;
use std::time::{Duration, Instant};

fn data() -> Vec<u8> {
    message("a@example.org", "hello", "body")
}

#[test]
fn idle_client_gets_err_and_the_process_exits() {
    let env = TestEnv::new().args(["--timeout", "1"]);
    let mut s = env.spawn();
    let start = Instant::now();
    s.greeting();
    let l = s.read_line();
    let took = start.elapsed();
    assert!(l.starts_with("-ERR"), "idle timeout reply: {l:?}");
    assert!(
        took >= Duration::from_millis(900),
        "timed out after {took:?}"
    );
    assert!(took < Duration::from_secs(5), "timed out after {took:?}");
    s.expect_eof();
    assert_eq!(s.wait_exit(Duration::from_secs(3)).code(), Some(0));
    let log = s.final_log();
    assert!(
        log.iter().any(|l| l == "disconnect: timeout, rip=local"),
        "log: {log:?}"
    );
}

#[test]
fn timeout_counts_idle_time_not_session_time() {
    let env = TestEnv::new().args(["--timeout", "1"]);
    env.write_mailbox("fred", &data());
    let mut s = env.spawn();
    s.greeting();
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(2500) {
        std::thread::sleep(Duration::from_millis(300));
        s.cmd("NOOP");
        s.expect_ok();
    }
    s.cmd("QUIT");
    s.expect_ok();
    s.expect_eof();
}

#[test]
fn timeout_mid_transaction_frees_locks_and_deletes_nothing() {
    for after_rcev in [false, true] {
        let env = TestEnv::new().args(["--timeout", "1"]);
        env.write_mailbox("fred", &data());
        let mut s = env.spawn();
        s.login("fred", FRED_PASS);
        s.cmd("RDEL fred");
        let n = s.expect_count();
        if after_rcev {
            s.cmd("RCEV");
            s.read_exact(n);
        }
        assert!(env.lock_path("fred").exists());
        let l = s.read_line();
        assert!(l.starts_with("-ERR"), "{l:?}");
        s.expect_eof();
        assert_eq!(s.wait_exit(Duration::from_secs(3)).code(), Some(0));
        assert_all_locks_free(&env.mailbox_path("fred"));
        assert_eq!(env.read_mailbox("fred"), data(), "nothing deleted");
        env.assert_mail_dir_is(&["fred"]);
        let log = s.final_log();
        assert!(
            log.iter().any(
                |l| l.starts_with("transaction: user=fred, mode=RDEL") && l.contains("aborted")
            ),
            "log: {log:?}"
        );
    }
}

#[test]
fn a_client_that_stops_reading_during_rcev_is_dropped_and_locks_freed() {
    let env = TestEnv::new().args(["--timeout", "1"]);
    let d = bulk_mailbox(6 << 20);
    env.write_mailbox("fred", &d);
    let mut s = env.spawn();
    s.login("fred", FRED_PASS);
    s.cmd("RDEL fred");
    let n = s.expect_count();
    assert_eq!(n, crlf(&d).len());
    let start = Instant::now();
    s.cmd("RCEV");
    // Read nothing more: the pipe fills and pop1d's writes stall.
    std::thread::sleep(Duration::from_millis(300));
    assert!(s.is_running());
    assert!(env.lock_path("fred").exists(), "locked while sending");
    let st = s.wait_exit(Duration::from_secs(6));
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(900), "exited after {took:?}");
    assert_eq!(
        st.code(),
        Some(0),
        "a stalled client is a client's way to end"
    );
    assert_all_locks_free(&env.mailbox_path("fred"));
    assert_eq!(env.read_mailbox("fred"), d, "nothing deleted");
    env.assert_mail_dir_is(&["fred"]);
    // What did arrive is a prefix of the data, never more than counted.
    let got = s.read_to_eof(DEFAULT_WAIT);
    assert!(got.len() <= n + 100, "{} octets after RCEV", got.len());
    let want = crlf(&d);
    let k = got.len().min(n);
    assert!(got[..k] == want[..k], "partial data is a prefix");
}

#[test]
fn a_client_that_goes_away_during_rcev_loses_nothing() {
    let env = TestEnv::new();
    let d = bulk_mailbox(4 << 20);
    env.write_mailbox("fred", &d);
    let mut s = env.spawn();
    s.login("fred", FRED_PASS);
    s.cmd("RDEL fred");
    s.expect_count();
    s.cmd("RCEV");
    s.read_exact(1000);
    // The client closes its end: pop1d's next writes fail (EPIPE).
    s.close_stdout();
    let st = s.wait_exit(Duration::from_secs(10));
    assert_eq!(
        st.code(),
        Some(0),
        "the client went away: exit 0, got {st:?}"
    );
    assert_all_locks_free(&env.mailbox_path("fred"));
    assert_eq!(env.read_mailbox("fred"), d, "nothing deleted");
    env.assert_mail_dir_is(&["fred"]);
    let log = s.final_log();
    assert!(
        log.iter()
            .any(|l| l.starts_with("transaction: user=fred, mode=RDEL") && l.contains("aborted")),
        "log: {log:?}"
    );
    assert!(
        log.iter()
            .any(|l| l == "disconnect: client write error, rip=local"),
        "log: {log:?}"
    );
}
