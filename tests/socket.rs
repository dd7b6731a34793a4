//! pop1d on a real loopback TCP connection, as inetd and systemd hand it over:
//! the accepted socket is both fd 0 and fd 1.

mod common;

use common::*;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::process::Stdio;
use std::time::Duration;

/// Start pop1d on the server end of a fresh loopback connection; returns the
/// client end and the child.
fn over_tcp(env: &TestEnv) -> (std::net::TcpStream, std::process::Child) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (sock, _) = listener.accept().unwrap();
    let mut cmd = env.command();
    let fd_in: OwnedFd = sock.try_clone().unwrap().into();
    cmd.stdin(Stdio::from(fd_in))
        .stdout(Stdio::from(OwnedFd::from(sock)))
        .stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    (client, child)
}

#[test]
fn input_after_quit_does_not_reset_the_connection() {
    // Lines after QUIT stay unread; closing a socket with unread input makes the
    // kernel send a reset, which could destroy the replies still in flight.
    let data: Vec<u8> = (0..200)
        .flat_map(|i| message("a@example.org", &format!("m{i}"), &"text line\n".repeat(50)))
        .collect();
    let env = TestEnv::new();
    env.write_mailbox("fred", &data);
    let (mut client, child) = over_tcp(&env);
    let mut script = fred_transaction("RETR", "\r\n");
    script.extend(b"NOOP\r\n".repeat(5000));
    client.write_all(&script).unwrap();
    let mut got = Vec::new();
    client
        .read_to_end(&mut got)
        .expect("a clean end of the connection, not a reset");
    drop(client);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let mut r = Replies::new(&got);
    r.logged_in();
    let n = r.count();
    assert_eq!(r.data(n), crlf(&data).as_slice());
    r.ok();
    assert_eq!(r.ok(), "+OK bye");
    r.end();
}

#[test]
fn a_client_that_sends_but_never_reads_is_dropped_after_the_timeout() {
    // Pipelined NOOPs, never a read: pop1d's replies fill the socket, and a
    // reply it cannot write for --timeout ends the session (with a log line);
    // it is never dropped while the session goes on.
    let env = TestEnv::new().args(["--timeout", "1"]);
    let (client, mut child) = over_tcp(&env);
    let started = std::time::Instant::now();
    let mut writer = client.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let lines = b"NOOP\r\n".repeat(1000);
        let until = std::time::Instant::now() + Duration::from_secs(20);
        while std::time::Instant::now() < until {
            if writer.write_all(&lines).is_err() {
                return;
            }
        }
    });
    let mut exited = None;
    while started.elapsed() < Duration::from_secs(15) {
        if let Some(status) = child.try_wait().unwrap() {
            exited = Some(status);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let Some(status) = exited else {
        child.kill().unwrap();
        panic!("pop1d kept serving a client that never reads");
    };
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "took {:?}",
        started.elapsed()
    );
    assert!(status.success(), "{status:?}");
    drop(client);
    sender.join().unwrap();
    let mut stderr = Vec::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_end(&mut stderr)
        .unwrap();
    let log = parse_log(&stderr, child.id());
    assert!(
        log.iter()
            .any(|l| l.starts_with("disconnect: timeout, client stopped reading")),
        "log: {log:?}"
    );
}
