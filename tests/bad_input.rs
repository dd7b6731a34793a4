//! Hostile and broken input: overlong lines, NUL and control bytes, invalid
//! UTF-8, empty lines, 100 MB of garbage without a newline, end of input at
//! every point of a session, and a cut-off final RCVD.

mod common;

use argon2::password_hash::{PasswordHasher, SaltString};
use common::*;
use std::io::Write;

/// A cheap argon2id hash (pop1d accepts any parameters in the PHC string).
fn argon2_cheap(password: &str) -> String {
    let params = argon2::Params::new(1024, 1, 1, None).unwrap();
    let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let salt = SaltString::encode_b64(b"pop1d-test-salt!").unwrap();
    a.hash_password(password.as_bytes(), &salt)
        .unwrap()
        .to_string()
}

fn long_password(len: usize) -> String {
    (0..len).map(|i| (b'a' + (i % 26) as u8) as char).collect()
}

#[test]
fn a_line_of_exactly_1024_octets_is_accepted() {
    // "PASS " + password + CR LF = 1024 octets; and + LF alone = 1024 octets.
    let p_crlf = long_password(1024 - 5 - 2);
    let p_lf = long_password(1024 - 5 - 1);
    let env = TestEnv::new()
        .user("long1", &argon2_cheap(&p_crlf))
        .user("long2", &argon2_cheap(&p_lf));
    let line = format!("PASS {p_crlf}\r\n");
    assert_eq!(line.len(), 1024);
    let out = env.run(format!("USER long1\r\n{line}RETR long1\r\n").as_bytes());
    let mut r = out.replies();
    r.logged_in();
    assert_eq!(r.count(), 0);
    r.end();
    let line = format!("PASS {p_lf}\n");
    assert_eq!(line.len(), 1024);
    let out = env.run(format!("USER long2\n{line}RETR long2\n").as_bytes());
    let mut r = out.replies();
    r.logged_in();
    assert_eq!(r.count(), 0);
    r.end();
}

#[test]
fn a_line_of_1025_octets_is_refused_without_changing_state() {
    let p = long_password(1024 - 5 - 2);
    let env = TestEnv::new().user("long1", &argon2_cheap(&p));
    // One octet too many, CR LF terminated and LF terminated.
    for line in [format!("PASS {p}x\r\n"), format!("PASS {p}xy\n")] {
        assert_eq!(line.len(), 1025);
        // Still in PASS state after the refused line: the right PASS works.
        let script = format!("USER long1\r\n{line}PASS {p}\r\nRETR long1\r\n");
        let out = env.run(script.as_bytes());
        out.assert_exit(0);
        let mut r = out.replies();
        r.greeting();
        r.ok();
        r.err();
        r.ok();
        assert_eq!(r.count(), 0);
        r.end();
    }
}

#[test]
fn very_long_lines_get_one_err_each_and_the_session_goes_on() {
    let env = TestEnv::new();
    env.write_mailbox("fred", b"From a Thu Nov 26 10:00:00 2026\n\nx\n");
    let mut script = Vec::new();
    script.extend_from_slice(b"USER fred\r\nPASS secret\r\n");
    for len in [1025usize, 1500, 4096, 65536, 1 << 20] {
        script.extend_from_slice(b"NOOP ");
        script.extend(std::iter::repeat_n(b'A', len));
        script.extend_from_slice(b"\r\n");
        // A long line that starts like a valid command must not be executed.
        script.extend_from_slice(b"RDEL fred");
        script.extend(std::iter::repeat_n(b' ', len));
        script.extend_from_slice(b"\n");
    }
    script.extend_from_slice(b"RETR fred\r\nQUIT\r\n");
    let out = env.run(&script);
    out.assert_exit(0);
    let mut r = out.replies();
    r.logged_in();
    for _ in 0..10 {
        r.err();
    }
    r.count();
    r.ok();
    r.end();
}

#[test]
fn nul_control_bytes_invalid_utf8_and_empty_lines_are_unknown_commands() {
    let env = TestEnv::new();
    env.write_mailbox("fred", b"From a Thu Nov 26 10:00:00 2026\n\nx\n");
    let bad: Vec<&[u8]> = vec![
        b"NO\0OP",
        b"\0",
        b"\0\0\0\0",
        b"NOOP\0",
        b"\x01NOOP",
        b"NO\x07OP",
        b"\x1b[2J",
        b"\x7f",
        b"\xff\xfe",
        b"N\xc3\x28OP",
        b"\xc3\xa9",
        b"",
        b" ",
        b"\r",
        b"\x0b\x0c",
    ];
    for state in ["AUTH", "IDLE"] {
        let mut script = Vec::new();
        if state == "IDLE" {
            script.extend_from_slice(b"USER fred\r\nPASS secret\r\n");
        }
        for b in &bad {
            script.extend_from_slice(b);
            script.extend_from_slice(b"\r\n");
            script.extend_from_slice(b"NOOP\r\n");
        }
        // Bytes in arguments: no crash, sensible answers.
        script.extend_from_slice(b"RETR \xff\xfe\r\nRETR fr\0ed\r\nRETR fred\r\nQUIT\r\n");
        let out = env.run(&script);
        out.assert_exit(0);
        let mut r = out.replies();
        r.greeting();
        if state == "IDLE" {
            r.ok();
            r.ok();
        }
        for b in &bad {
            let l = r.line();
            assert!(l.starts_with("-ERR"), "{state}: {b:?} gave {l:?}");
            r.ok();
        }
        r.err();
        r.err();
        if state == "IDLE" {
            r.count();
        } else {
            r.err();
        }
        r.ok();
        r.end();
    }
}

#[test]
fn user_and_pass_with_strange_bytes_do_not_crash() {
    let env = TestEnv::new().args(["--max-auth-failures", "100"]);
    let mut script = Vec::new();
    for name in [
        &b"fr\0ed"[..],
        b"\xff",
        b"../../etc/passwd",
        b"a/b",
        b".hidden",
        b"\x1b]0;x\x07",
    ] {
        script.extend_from_slice(b"USER ");
        script.extend_from_slice(name);
        script.extend_from_slice(b"\r\nPASS secret\r\n");
    }
    let long = "u".repeat(65);
    script.extend_from_slice(format!("USER {long}\r\nPASS secret\r\n").as_bytes());
    script.extend_from_slice(b"USER fred\r\nPASS sec\0ret\r\nUSER fred\r\nPASS \xff\r\n");
    script.extend_from_slice(b"USER fred\r\nPASS secret\r\nQUIT\r\n");
    let out = env.run(&script);
    out.assert_exit(0);
    let mut r = out.replies();
    r.greeting();
    for _ in 0..9 {
        // USER may be refused outright for an impossible name (then PASS is
        // refused in AUTH); PASS never succeeds.
        r.line();
        r.err();
    }
    r.ok();
    r.ok();
    r.ok();
    r.end();
}

#[test]
fn a_hundred_megabytes_without_newline_keeps_memory_flat() {
    let env = TestEnv::new();
    let mut s = env.spawn();
    s.greeting();
    let mut rng = Rng::new(7);
    let mut chunk = vec![0u8; 1 << 20];
    rng.fill(&mut chunk);
    for b in chunk.iter_mut() {
        if *b == b'\n' {
            *b = b'x';
        }
    }
    let mut stdin = s.take_stdin();
    let writer = std::thread::spawn(move || {
        for _ in 0..100 {
            stdin.write_all(&chunk).unwrap();
        }
        stdin.write_all(b"\nNOOP\r\n").unwrap();
        stdin
    });
    let l = s.read_line();
    assert!(l.starts_with("-ERR"), "{l:?}");
    s.expect_ok();
    let stdin = writer.join().unwrap();
    s.give_stdin(stdin);
    assert!(s.is_running(), "pop1d must survive garbage");
    let hwm = s.proc_status("VmHWM").expect("VmHWM");
    let kb: u64 = hwm.trim_end_matches(" kB").trim().parse().unwrap();
    assert!(
        kb < 64 * 1024,
        "peak resident memory {kb} kB after 100 MB of garbage: it grows with the input"
    );
    s.cmd("QUIT");
    s.expect_ok();
    s.expect_eof();
}

#[test]
fn end_of_input_at_every_point_of_a_session() {
    let data = message("a@example.org", "cut", "body");
    let n = crlf(&data).len();
    let lines = [
        "USER fred",
        "PASS secret",
        "RDEL fred",
        "RCEV",
        "RCVD",
        "QUIT",
    ];
    for sep in ["\r\n", "\n"] {
        let full: Vec<u8> = lines
            .iter()
            .map(|l| format!("{l}{sep}"))
            .collect::<String>()
            .into_bytes();
        let env = TestEnv::new().passwd_text(&format!("fred:{HASH_SHA256_CHEAP}\n"));
        for cut in 0..=full.len() {
            env.write_mailbox("fred", &data);
            let sent = &full[..cut];
            let out = env.run(sent);
            let what = format!("cut after {:?}", String::from_utf8_lossy(sent));
            assert_eq!(out.code(), Some(0), "{what}: exit; {}", out.stderr_text());
            // Only complete lines are executed.
            let complete = sent.iter().filter(|&&b| b == b'\n').count();
            let mut r = out.replies();
            r.greeting();
            for line in &lines[..complete] {
                match *line {
                    "RDEL fred" => assert_eq!(r.count(), n, "{what}"),
                    "RCEV" => assert_eq!(r.data(n), crlf(&data).as_slice(), "{what}"),
                    _ => {
                        r.ok();
                    }
                }
            }
            r.end();
            if complete >= 5 {
                assert_eq!(env.read_mailbox("fred"), b"", "{what}: RCVD must delete");
            } else {
                assert_eq!(env.read_mailbox("fred"), data, "{what}: must not delete");
            }
            env.assert_mail_dir_is(&["fred"]);
        }
    }
}

#[test]
fn an_unterminated_final_rcvd_does_not_delete() {
    let data = message("a@example.org", "keep me", "body");
    for tail in [&b"RCVD"[..], b"RCVD\r", b"rcvd"] {
        let env = TestEnv::new();
        env.write_mailbox("fred", &data);
        let mut script = b"USER fred\r\nPASS secret\r\nRDEL fred\r\nRCEV\r\n".to_vec();
        script.extend_from_slice(tail);
        let out = env.run(&script);
        out.assert_exit(0);
        let mut r = out.replies();
        r.logged_in();
        let n = r.count();
        r.data(n);
        r.end(); // no reply to the cut-off line
        assert_eq!(env.read_mailbox("fred"), data, "{tail:?} must not delete");
        env.assert_mail_dir_is(&["fred"]);
    }
}

#[test]
fn input_after_quit_is_ignored() {
    let env = TestEnv::new();
    env.write_mailbox("fred", b"From a Thu Nov 26 10:00:00 2026\n\nx\n");
    let out = env.run(b"USER fred\nPASS secret\nQUIT\nRDEL fred\nRCEV\nRCVD\n");
    out.assert_exit(0);
    let mut r = out.replies();
    r.logged_in();
    r.ok();
    r.end();
    assert_eq!(
        env.read_mailbox("fred"),
        b"From a Thu Nov 26 10:00:00 2026\n\nx\n"
    );
}

#[test]
fn a_password_of_512_octets_or_more_is_a_failed_login() {
    // libxcrypt hashes at most 511 octets. A longer PASS is a wrong password
    // like any other, logged as one (fail2ban counts those), never as a fault.
    let env = TestEnv::new().args(["--max-auth-failures", "10"]);
    let mut script = String::new();
    for (user, len) in [("fred", 511), ("fred", 512), ("fred", 1017), ("ghost", 600)] {
        script.push_str(&login(user, &long_password(len)));
    }
    // A long password that starts with fred's real one is wrong too.
    script.push_str(&login(
        "fred",
        &format!("{FRED_PASS}{}", long_password(600)),
    ));
    let out = env.run(script.as_bytes());
    out.assert_exit(0);
    let mut r = out.replies();
    r.greeting();
    for _ in 0..5 {
        r.ok();
        r.err();
    }
    r.end();
    let log = out.log();
    let failed = log
        .iter()
        .filter(|l| l.starts_with("login failed: "))
        .count();
    assert_eq!(failed, 5, "{log:?}");
    assert!(log.iter().all(|l| !l.contains("not checked")), "{log:?}");
}
