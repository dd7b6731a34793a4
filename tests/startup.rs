//! Start-up: bad options and unreadable passwd-files give one `-ERR` line and
//! exit 2; --help and --version; nothing on stderr unless `--log stderr`;
//! running as root needs --user.

mod common;

use common::*;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

/// Runs the bare binary with exactly `args` (no harness defaults).
fn run_bare(args: &[&str], script: &[u8]) -> Outcome {
    let mut cmd = Command::new(POP1D);
    cmd.args(args);
    cmd.env_remove("REMOTE_ADDR");
    run_command(cmd, script)
}

/// Asserts a start-up error: stdout exactly one `-ERR ...` line, exit 2.
fn assert_startup_error(out: &Outcome, what: &str) {
    assert_eq!(
        out.code(),
        Some(2),
        "{what}: exit status; stdout {:?}",
        String::from_utf8_lossy(&out.stdout)
    );
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(
        s.starts_with("-ERR") && s.ends_with("\r\n") && s.matches('\n').count() == 1,
        "{what}: stdout must be exactly one -ERR line, got {s:?}"
    );
    let mut r = out.replies();
    r.err();
    r.end();
}

/// Asserts that stderr (a pipe, not the client's connection) tells the reason
/// of a start-up error: as a log line when the log went there, else as a
/// `pop1d: ` line.
fn assert_reason_on_stderr(out: &Outcome, what: &str) {
    let err = out.stderr_text();
    let lines: Vec<&str> = err.lines().collect();
    assert!(
        lines.iter().any(|l| l.contains("cannot start: ")),
        "{what}: the reason goes to stderr too, got {err:?}"
    );
    let prefix = format!("pop1d[{}]: ", out.pid);
    for line in lines {
        assert!(
            line.starts_with(&prefix) || line.starts_with("pop1d: "),
            "{what}: {line:?}"
        );
    }
}

/// Runs pop1d with one end of a socket pair as fd 0, 1 and 2, as inetd does;
/// returns the exit status and all the client received.
fn over_one_socket(args: &[String], script: &[u8]) -> (std::process::ExitStatus, Vec<u8>) {
    use std::io::{Read, Write};
    use std::os::fd::OwnedFd;
    use std::os::unix::net::UnixStream;
    use std::process::Stdio;
    let (mut client, server) = UnixStream::pair().unwrap();
    let fd = |s: &UnixStream| Stdio::from(OwnedFd::from(s.try_clone().unwrap()));
    let mut child = Command::new(POP1D)
        .args(args)
        .env_remove("REMOTE_ADDR")
        .stdin(fd(&server))
        .stdout(fd(&server))
        .stderr(fd(&server))
        .spawn()
        .unwrap();
    drop(server);
    client
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let _ = client.write_all(script);
    let _ = client.shutdown(std::net::Shutdown::Write);
    let mut got = Vec::new();
    let _ = client.read_to_end(&mut got);
    (child.wait().unwrap(), got)
}

/// Arguments every case needs so that only the option under test is wrong.
fn base(env: &TestEnv) -> Vec<String> {
    let mut v = vec![
        "--passwd-file".to_string(),
        env.passwd_path.display().to_string(),
        "--mailbox".to_string(),
        env.mail_dir.join("%u").display().to_string(),
    ];
    if is_root() {
        v.extend(["--user", "nobody", "--login-user", LOGIN_ACCOUNT].map(String::from));
    }
    v
}

fn env_with_passwd() -> TestEnv {
    let env = TestEnv::new();
    // Write the passwd-file by building a command once.
    let _ = env.command();
    env
}

#[test]
fn bad_options_give_one_err_line_and_exit_2() {
    let env = env_with_passwd();
    let cases: Vec<Vec<&str>> = vec![
        vec!["--bogus"],
        vec!["-x"],
        vec!["extra-argument"],
        vec!["--timeout"],
        vec!["--timeout", "abc"],
        vec!["--timeout", "-1"],
        vec!["--lock-timeout", "1.5x"],
        vec!["--auth-delay", ""],
        vec!["--max-auth-failures", "many"],
        vec!["--locks", "nope"],
        vec!["--locks", "fcntl,nope"],
        vec!["--locks", ""],
        vec!["--log", "file"],
        vec!["--mailbox"],
    ];
    for extra in cases {
        for log in [None, Some("none"), Some("syslog")] {
            let mut args: Vec<String> = base(&env);
            if let Some(l) = log {
                args.push("--log".into());
                args.push(l.into());
            }
            args.extend(extra.iter().map(|s| s.to_string()));
            let a: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
            let out = run_bare(&a, b"USER fred\r\nPASS secret\r\n");
            assert_startup_error(&out, &format!("{extra:?}"));
            // stderr is a pipe here, not the client: the reason shows there.
            assert_reason_on_stderr(&out, &format!("{extra:?} with --log {log:?}"));
            // Where stderr is the client's connection, it gets one -ERR only.
            let (status, got) = over_one_socket(&args, b"USER fred\r\nPASS secret\r\n");
            assert_eq!(status.code(), Some(2), "{extra:?} with --log {log:?}");
            let mut r = Replies::new(&got);
            r.err();
            r.end();
        }
    }
}

#[test]
fn bad_option_with_log_stderr_logs_the_reason() {
    let env = env_with_passwd();
    let mut args = base(&env);
    args.extend(["--log".into(), "stderr".into(), "--bogus".into()]);
    let a: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    let out = run_bare(&a, b"");
    assert_startup_error(&out, "--bogus");
    assert!(!out.log().is_empty(), "the reason goes to the log");
}

#[test]
fn log_stderr_after_the_bad_option_logs_the_reason_too() {
    let env = env_with_passwd();
    for tail in [
        &["--bogus", "--log", "stderr"][..],
        &["--timeout", "x", "--log=stderr"],
        &["--log", "none", "--locks", "nope", "--log", "stderr"],
    ] {
        let mut args = base(&env);
        args.extend(tail.iter().map(|s| s.to_string()));
        let a: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        let out = run_bare(&a, b"");
        assert_startup_error(&out, &format!("{tail:?}"));
        let log = out.log();
        assert!(
            log.iter().any(|l| l.starts_with("cannot start: ")),
            "{tail:?}: the reason goes to the log: {log:?}"
        );
    }
}

#[test]
fn missing_or_unreadable_passwd_file_is_a_startup_error() {
    let env = TestEnv::new();
    let missing = env.root.join("no-such-passwd");
    let dir = env.root.join("a-directory");
    std::fs::create_dir(&dir).unwrap();
    let mut paths = vec![missing, dir];
    if !is_root() {
        let unreadable = env.root.join("unreadable");
        std::fs::write(&unreadable, "fred:x\n").unwrap();
        std::fs::set_permissions(&unreadable, std::fs::Permissions::from_mode(0o000)).unwrap();
        paths.push(unreadable);
    }
    for p in paths {
        for log in ["syslog", "none"] {
            let mut args = vec![
                "--passwd-file".to_string(),
                p.display().to_string(),
                "--mailbox".into(),
                env.mail_dir.join("%u").display().to_string(),
                "--log".into(),
                log.into(),
            ];
            if is_root() {
                args.extend(["--user", "nobody", "--login-user", LOGIN_ACCOUNT].map(String::from));
            }
            let a: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
            let out = run_bare(&a, b"USER fred\r\n");
            assert_startup_error(&out, &format!("passwd-file {}", p.display()));
            assert_reason_on_stderr(&out, &format!("--log {log}"));
            assert!(
                !String::from_utf8_lossy(&out.stdout).contains(&*p.to_string_lossy()),
                "the reply must not show a path"
            );
        }
    }
}

#[test]
fn help_and_version_go_to_stdout_and_exit_0() {
    for arg in ["--help", "--version"] {
        let out = run_bare(&[arg], b"");
        out.assert_exit(0);
        assert!(!out.stdout.is_empty(), "{arg} prints something");
        assert!(
            out.stderr.is_empty(),
            "{arg}: stderr {:?}",
            out.stderr_text()
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(!text.starts_with("+OK"), "{arg} is not a session");
        if arg == "--version" {
            assert!(
                text.contains(env!("CARGO_PKG_VERSION")),
                "--version shows the version: {text:?}"
            );
        } else {
            for opt in [
                "--passwd-file",
                "--mailbox",
                "--locks",
                "--lock-timeout",
                "--timeout",
                "--auth-delay",
                "--max-auth-failures",
                "--log",
            ] {
                assert!(text.contains(opt), "--help mentions {opt}");
            }
            assert!(
                text.contains("Logs:") && text.contains("/var/log/mail.log"),
                "--help says where the logs go: {text}"
            );
        }
    }
}

/// A session that produces errors of every kind; nothing may reach stderr.
const NOISY: &[u8] = b"XYZZY\r\nPASS x\r\nUSER ghost\r\nPASS nope\r\nUSER fred\r\nPASS wrong\r\n\
USER fred\r\nPASS secret\r\nRETR barney\r\nRCEV\r\nRETR fred\r\nRCEV\r\nRCVD\r\nRDEL fred\r\nRCEV\r\nRCVD\r\n\
\xff\xfe\0\r\nQUIT\r\n";

#[test]
fn log_none_writes_nothing_to_stderr_for_a_whole_session() {
    let env = TestEnv::new().args(["--log", "none"]);
    env.write_mailbox("fred", &message("a@example.org", "x", "y"));
    let out = env.run(NOISY);
    out.assert_exit(0);
    assert!(out.stderr.is_empty(), "stderr: {:?}", out.stderr_text());
    // Also with a lock that times out and a timeout at the end.
    let env = TestEnv::new().args(["--log", "none", "--lock-timeout", "0", "--timeout", "1"]);
    env.write_mailbox("fred", b"");
    let _l = FlockHolder::take(&env.mailbox_path("fred"));
    let mut s = env.spawn();
    s.login("fred", FRED_PASS);
    s.cmd("RETR fred");
    s.expect_err();
    s.expect_err(); // the timeout
    s.wait_exit(DEFAULT_WAIT);
    assert!(s.final_log().is_empty(), "stderr: {:?}", s.stderr_text());
}

/// True when a syslog socket exists here for pop1d to reach.
fn syslog_reachable() -> bool {
    use std::os::unix::fs::FileTypeExt;
    ["/dev/log", "/var/run/syslog", "/var/run/log"]
        .iter()
        .any(|p| std::fs::metadata(p).is_ok_and(|m| m.file_type().is_socket()))
}

#[test]
fn syslog_unreachable_falls_back_to_stderr_unless_stderr_is_the_client() {
    let env = TestEnv::new().args(["--log", "syslog"]);
    env.write_mailbox("fred", &message("a@example.org", "x", "y"));
    let out = env.run(NOISY);
    out.assert_exit(0);
    if syslog_reachable() {
        assert!(out.stderr.is_empty(), "stderr: {:?}", out.stderr_text());
    } else {
        // stderr is a pipe, not the client: the log is not lost.
        let log = out.log();
        assert!(
            log.iter().any(|l| l == "connect: rip=local"),
            "no syslog socket: the log falls back to stderr: {log:?}"
        );
    }

    // Truly the default (no --log option at all), with fd 0, 1 and 2 one
    // socket as inetd sets it up: the client gets protocol and nothing else.
    let env = TestEnv::new();
    env.write_mailbox("fred", &message("a@example.org", "x", "y"));
    let _ = env.command(); // writes the passwd-file
    let mut args = base(&env);
    args.extend(["--auth-delay".into(), "0".into()]);
    let (status, got) = over_one_socket(&args, NOISY);
    assert_eq!(status.code(), Some(0));
    for line in got.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let line = String::from_utf8_lossy(line);
        assert!(
            !line.contains("pop1d"),
            "a log line reached the client: {line:?}"
        );
    }
    let mut r = Replies::new(&got);
    r.greeting();
}

#[test]
fn log_stderr_is_refused_when_stderr_is_the_client() {
    let env = env_with_passwd();
    let mut args = base(&env);
    args.extend([
        "--log".into(),
        "stderr".into(),
        "--auth-delay".into(),
        "0".into(),
    ]);
    let (status, got) = over_one_socket(&args, b"USER fred\r\nPASS wrong\r\nQUIT\r\n");
    assert_eq!(
        status.code(),
        Some(2),
        "client got {:?}",
        String::from_utf8_lossy(&got)
    );
    let mut r = Replies::new(&got);
    r.err();
    r.end();
    // With stderr apart from the client, --log stderr works as before.
    let out = env.run(b"QUIT\r\n");
    out.assert_exit(0);
    assert!(out.log().iter().any(|l| l == "connect: rip=local"));
}

#[test]
fn empty_input_gives_the_greeting_and_exit_0() {
    let env = TestEnv::new();
    let out = env.run(b"");
    out.assert_exit(0);
    let mut r = out.replies();
    r.greeting();
    r.end();
}

#[test]
fn user_option_rules() {
    let env = env_with_passwd();
    if is_root() {
        // Root with a passwd-file but no --user: start-up error.
        let template = env.mail_dir.join("%u");
        let args = [
            "--passwd-file",
            env.passwd_path.to_str().unwrap(),
            "--mailbox",
            template.to_str().unwrap(),
        ];
        let out = run_bare(&args, b"USER fred\r\n");
        assert_startup_error(&out, "root without --user");
        // An unknown account: start-up error.
        let mut a = args.to_vec();
        a.extend(["--user", "no-such-account-pop1d"]);
        let out = run_bare(&a, b"");
        assert_startup_error(&out, "--user of an unknown account");
        // With --user nobody, pop1d runs as nobody before reading input.
        let env_nobody = TestEnv::new();
        let mut s = env_nobody.spawn();
        s.greeting();
        let uid = s.proc_status("Uid").unwrap();
        let gid = s.proc_status("Gid").unwrap();
        let groups = s.proc_status("Groups").unwrap_or_default();
        let (nuid, ngid) = server_ids();
        for f in uid.split_whitespace() {
            assert_eq!(f, nuid.to_string(), "Uid: {uid}");
        }
        for f in gid.split_whitespace() {
            assert_eq!(f, ngid.to_string(), "Gid: {gid}");
        }
        assert!(
            groups.split_whitespace().all(|g| g == ngid.to_string()),
            "supplementary groups of nobody only, got {groups:?}"
        );
        s.cmd("QUIT");
        s.expect_ok();
    } else {
        // Not root: --user must name the current user.
        let me = nix::unistd::User::from_uid(nix::unistd::geteuid())
            .unwrap()
            .unwrap()
            .name;
        let mut args = base(&env);
        args.extend(["--user".into(), me, "--auth-delay".into(), "0".into()]);
        let a: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        let out = run_bare(&a, b"NOOP\r\n");
        out.assert_exit(0);
        let mut args = base(&env);
        args.extend(["--user".into(), "root".into()]);
        let a: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        let out = run_bare(&a, b"NOOP\r\n");
        assert_startup_error(&out, "--user root when not root");
    }
}

// --- pop1d --check, and mistyped mailbox directories ----------------------------

#[test]
fn check_reports_a_usable_configuration_and_exits_0() {
    let env = TestEnv::new().user("anne", HASH_SHA256);
    let (out, lines) = env.check();
    out.assert_exit(0);
    assert!(out.stderr.is_empty() || !out.stderr_text().contains("connect:"));
    let has = |text: &str| lines.iter().any(|l| l.contains(text));
    assert!(has("passwd-file"), "{lines:?}");
    assert!(has("a dot-lock can be made there"), "{lines:?}");
    assert!(
        lines
            .last()
            .unwrap()
            .starts_with("pop1d --check: 0 error(s)"),
        "{lines:?}"
    );
    // It serves nobody and leaves nothing behind.
    env.assert_mail_dir_is(&[]);
}

#[test]
fn check_lists_passwd_file_warnings_that_a_session_only_sums_up() {
    let env = TestEnv::new()
        .user("fred.lock", HASH_YESCRYPT)
        .user("cut", &HASH_YESCRYPT[..20]);
    let (out, lines) = env.check();
    out.assert_exit(0);
    let warnings: Vec<&String> = lines.iter().filter(|l| l.starts_with("warning:")).collect();
    assert_eq!(warnings.len(), 2, "{lines:?}");
    // A serving pop1d says it in one line on each connection.
    let out = env.run(b"QUIT\r\n");
    out.assert_exit(0);
    let log = out.log();
    let about_file: Vec<&String> = log.iter().filter(|l| l.contains("passwd-file")).collect();
    assert_eq!(about_file.len(), 1, "{log:?}");
    assert!(
        about_file[0].contains("2 warning(s)") && about_file[0].contains("pop1d --check"),
        "{log:?}"
    );
}

#[test]
fn check_finds_a_missing_mailbox_directory_and_a_missing_passwd_file() {
    let env = TestEnv::new();
    let missing = env.root.join("no-such-dir");
    let env = env.args(["--mailbox".to_string(), format!("{}/%u", missing.display())]);
    let (out, lines) = env.check();
    out.assert_exit(2);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("error: mailbox directory") && l.contains("no-such-dir")),
        "{lines:?}"
    );
    let env = TestEnv::new().without_passwd_file();
    let (out, lines) = env.check();
    out.assert_exit(2);
    assert!(
        lines.iter().any(|l| l.contains("no --passwd-file")),
        "{lines:?}"
    );
}

#[test]
fn a_missing_mailbox_directory_is_an_error_not_an_empty_mailbox() {
    let env = TestEnv::new();
    let missing = env.root.join("no-such-dir");
    let env = env.args(["--mailbox".to_string(), format!("{}/%u", missing.display())]);
    let out = env.run(&fred_transaction("RETR", "\r\n"));
    let mut r = out.replies();
    r.logged_in();
    assert_eq!(r.err(), "-ERR mailbox unavailable");
    let log = out.log();
    assert!(
        log.iter().any(|l| l.starts_with("mailbox error: user=fred")
            && l.contains(&format!(
                "the mailbox directory {} does not exist",
                missing.display()
            ))),
        "{log:?}"
    );
    // A missing mailbox file in a directory that exists is an empty mailbox.
    let env = TestEnv::new();
    let out = env.run(&fred_transaction("RETR", "\r\n"));
    let mut r = out.replies();
    r.logged_in();
    assert_eq!(r.count(), 0);
}

#[test]
fn a_relative_mailbox_template_is_refused_at_start() {
    let env = TestEnv::new().args(["--mailbox", "mail/%u"]);
    let out = env.run(b"QUIT\r\n");
    out.assert_exit(2);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "-ERR bad command line\r\n"
    );
    assert!(
        out.stderr_text().contains("relative"),
        "{}",
        out.stderr_text()
    );
}
