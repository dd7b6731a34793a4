//! Signals: every signal pop1d catches ends the session promptly through the
//! normal path, nothing deleted, every lock released and the dot-lock removed,
//! even while pop1d is blocked waiting for a client that sends or reads nothing.

mod common;

use common::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::time::{Duration, Instant};

fn mailbox(messages: usize, body: &str) -> Vec<u8> {
    (0..messages)
        .flat_map(|i| message("sender@example.org", &format!("message {i}"), body))
        .collect()
}

fn signal_and_wait(s: &mut Session, signal: Signal) -> Duration {
    let sent = Instant::now();
    kill(Pid::from_raw(s.pid as i32), signal).unwrap();
    let status = s.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{signal}: {status:?}");
    sent.elapsed()
}

#[test]
fn a_signal_while_waiting_for_rcvd_deletes_nothing_and_unlocks() {
    let data = mailbox(5, "Hello,\nthis is a test.\n");
    for signal in [
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGINT,
        Signal::SIGQUIT,
        Signal::SIGALRM,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGXCPU,
    ] {
        let env = TestEnv::new().args(["--timeout", "60"]);
        env.write_mailbox("fred", &data);
        let mut s = env.spawn();
        s.login("fred", FRED_PASS);
        s.cmd("RDEL fred");
        let n = s.expect_count();
        s.cmd("RCEV");
        s.read_exact(n);
        env.wait_for_lock_file("fred");
        let took = signal_and_wait(&mut s, signal);
        assert!(
            took < Duration::from_secs(5),
            "{signal}: exit took {took:?}"
        );
        assert_eq!(env.read_mailbox("fred"), data, "{signal}");
        env.assert_mail_dir_is(&["fred"]);
        let log = s.final_log();
        let aborted =
            format!("transaction: user=fred, mode=RDEL, bytes={n}, aborted after RCEV (terminated by signal)");
        assert!(log.contains(&aborted), "{signal}: {log:?}");
        assert!(
            log.iter()
                .any(|l| l == "disconnect: terminated by signal, rip=local"),
            "{signal}: {log:?}"
        );
    }
}

#[test]
fn a_signal_while_the_client_does_not_read_ends_the_transfer() {
    // Several MiB: far more than the pipe holds, so pop1d blocks writing RCEV.
    let data = bulk_mailbox(5 << 20);
    let env = TestEnv::new().args(["--timeout", "60"]);
    env.write_mailbox("fred", &data);
    let mut s = env.spawn();
    s.login("fred", FRED_PASS);
    s.cmd("RDEL fred");
    let n = s.expect_count();
    assert!(n > 4 << 20);
    s.cmd("RCEV");
    s.read_exact(1000);
    std::thread::sleep(Duration::from_millis(300));
    let took = signal_and_wait(&mut s, Signal::SIGTERM);
    assert!(took < Duration::from_secs(5), "exit took {took:?}");
    assert_eq!(env.read_mailbox("fred"), data);
    env.assert_mail_dir_is(&["fred"]);
    let log = s.final_log();
    assert!(
        log.iter()
            .any(|l| l.ends_with("aborted during RCEV (terminated by signal while sending)")),
        "{log:?}"
    );
}

#[test]
fn a_signal_is_not_outlasted_by_a_script_of_busy_retrs() {
    // The mailbox is locked by someone else; the client pipelined many RETRs,
    // each of which would wait the whole lock timeout. A signal must end the
    // session within a back-off pause, not after every RETR has waited.
    let env = TestEnv::new().args(["--lock-timeout", "3"]);
    env.write_mailbox("fred", b"From a Thu Nov 26 10:00:00 2026\n\nhello\n");
    let holder = FlockHolder::take(&env.mailbox_path("fred"));
    let mut s = env.spawn();
    s.login("fred", FRED_PASS);
    s.send("RETR fred\r\nRSET\r\n".repeat(20).as_bytes());
    std::thread::sleep(Duration::from_millis(500));
    let took = signal_and_wait(&mut s, Signal::SIGTERM);
    assert!(took < Duration::from_secs(2), "exit took {took:?}");
    drop(holder);
    env.assert_mail_dir_is(&["fred"]);
    let log = s.final_log();
    assert!(
        log.iter()
            .any(|l| l == "disconnect: terminated by signal, rip=local"),
        "{log:?}"
    );
}

/// The pids of a process's children.
fn children(pid: u32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect()
}

#[test]
fn a_login_child_that_dies_is_logged_and_the_monitor_exits_1() {
    // The login child reads the client until a login; killed, it can tell the
    // monitor nothing more. The monitor says so and ends the session.
    let env = TestEnv::new();
    let mut s = env.spawn();
    s.greeting();
    let kids = children(s.pid);
    assert_eq!(kids.len(), 1, "one login child");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(kids[0]), Signal::SIGKILL).unwrap();
    assert_eq!(s.wait_exit(DEFAULT_WAIT).code(), Some(1));
    let log = s.final_log();
    assert!(
        log.iter()
            .any(|l| l == "login child failed: killed by SIGKILL"),
        "log: {log:?}"
    );
}

#[test]
fn a_signal_before_the_login_ends_both_processes() {
    let env = TestEnv::new();
    let mut s = env.spawn();
    s.greeting();
    let kids = children(s.pid);
    assert_eq!(kids.len(), 1, "one login child");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(s.pid as i32), Signal::SIGTERM).unwrap();
    assert_eq!(s.wait_exit(DEFAULT_WAIT).code(), Some(0));
    let log = s.final_log();
    let disconnects: Vec<&String> = log
        .iter()
        .filter(|l| l.starts_with("disconnect:"))
        .collect();
    assert_eq!(
        disconnects,
        ["disconnect: terminated by signal, rip=local"],
        "one disconnect line: {log:?}"
    );
    assert!(
        !std::path::Path::new(&format!("/proc/{}", kids[0])).exists()
            || std::fs::read_to_string(format!("/proc/{}/status", kids[0]))
                .is_ok_and(|st| st.contains("State:\tZ")),
        "the login child outlived the monitor"
    );
}
