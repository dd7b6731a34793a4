//! `pop1d --hash-password`: makes a passwd-file hash from a password read on
//! stdin (once when stdin is not a terminal), refuses an empty one, and prints
//! only the hash on stdout.

mod common;

use common::*;
use std::io::Write;
use std::process::{Command, Stdio};

/// Runs `pop1d --hash-password` with `input` piped to its stdin.
fn hash_password(input: &[u8]) -> std::process::Output {
    let mut child = Command::new(POP1D)
        .arg("--hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn pop1d --hash-password");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input).unwrap();
    drop(stdin);
    child.wait_with_output().unwrap()
}

#[test]
fn a_piped_password_gives_a_yescrypt_hash_that_logs_in() {
    for (input, password) in [
        (&b"s3cret pass\n"[..], "s3cret pass"),
        (b"no-newline", "no-newline"),
        (b"crlf\r\n", "crlf"),
    ] {
        let out = hash_password(input);
        assert!(
            out.status.success(),
            "{input:?}: {:?}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let hash = text.strip_suffix('\n').expect("one line");
        assert!(!hash.contains('\n'), "{text:?}");
        assert!(hash.starts_with("$y$"), "yescrypt by default: {hash}");
        assert!(
            !String::from_utf8_lossy(&out.stderr).contains(password),
            "the password is never echoed"
        );
        let env = TestEnv::new().user("made", hash);
        let out = env.run(format!("{}QUIT\r\n", login("made", password)).as_bytes());
        let mut r = out.replies();
        r.logged_in();
        r.ok();
        r.end();
        let out = env.run(login("made", &format!("{password}x")).as_bytes());
        let mut r = out.replies();
        r.greeting();
        r.ok();
        r.err();
    }
    // Two runs, two salts.
    assert_ne!(
        hash_password(b"same\n").stdout,
        hash_password(b"same\n").stdout
    );
}

#[test]
fn an_empty_or_unusable_password_is_refused_with_exit_2() {
    for input in [
        &b""[..],
        b"\n",
        b"\r\n",
        b"two\nlines\n",
        b"nul\0byte\n",
        &[b'x'; 512],
    ] {
        let out = hash_password(input);
        assert_eq!(out.status.code(), Some(2), "{input:?}");
        assert!(out.stdout.is_empty(), "{input:?}: nothing on stdout");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.starts_with("pop1d: "),
            "{input:?}: a reason on stderr: {err:?}"
        );
    }
}

#[test]
fn help_mentions_hash_password() {
    let out = Command::new(POP1D).arg("--help").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("--hash-password"));
}

/// Reads `from` until `want` shows up in what was read (or panics after a while).
fn read_until_seen(from: &std::sync::mpsc::Receiver<u8>, seen: &mut Vec<u8>, want: &str) {
    let deadline = std::time::Instant::now() + DEFAULT_WAIT;
    while !String::from_utf8_lossy(seen).contains(want) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match from.recv_timeout(left) {
            Ok(byte) => seen.push(byte),
            Err(_) => panic!(
                "waiting for {want:?}, got {:?}",
                String::from_utf8_lossy(seen)
            ),
        }
    }
}

/// Runs `pop1d --hash-password` on a terminal (script(1) makes one) and types
/// `first` and `second` after the prompts; returns the exit status and what
/// the terminal showed.
fn on_a_terminal(first: &str, second: &str) -> (std::process::ExitStatus, String) {
    require_tool("script", "bsdutils");
    let mut child = Command::new("script")
        .args([
            "-q",
            "-e",
            "-c",
            &format!("{POP1D} --hash-password"),
            "/dev/null",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn script");
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::Read;
        let mut byte = [0u8];
        while let Ok(1) = stdout.read(&mut byte) {
            if tx.send(byte[0]).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    read_until_seen(&rx, &mut seen, "Password: ");
    stdin.write_all(format!("{first}\n").as_bytes()).unwrap();
    read_until_seen(&rx, &mut seen, "Again: ");
    stdin.write_all(format!("{second}\n").as_bytes()).unwrap();
    let status = child.wait().unwrap();
    drop(stdin);
    while let Ok(byte) = rx.recv_timeout(std::time::Duration::from_millis(200)) {
        seen.push(byte);
    }
    (status, String::from_utf8_lossy(&seen).into_owned())
}

#[test]
fn on_a_terminal_the_password_is_asked_twice_without_echo() {
    let (status, shown) = on_a_terminal("typed pass", "typed pass");
    assert!(status.success(), "{status:?}: {shown:?}");
    assert!(
        !shown.contains("typed"),
        "the password was echoed: {shown:?}"
    );
    let hash = shown
        .split(['\r', '\n'])
        .find(|l| l.starts_with("$y$"))
        .unwrap_or_else(|| panic!("no hash shown: {shown:?}"));
    let env = TestEnv::new().user("typed", hash);
    let out = env.run(login("typed", "typed pass").as_bytes());
    out.replies().logged_in();

    let (status, shown) = on_a_terminal("typed pass", "typed pasS");
    assert_eq!(status.code(), Some(2), "{shown:?}");
    assert!(shown.contains("differ"), "{shown:?}");
    assert!(!shown.contains("$y$"), "{shown:?}");
}
