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

/// Arguments every case needs so that only the option under test is wrong.
fn base(env: &TestEnv) -> Vec<String> {
    let mut v = vec![
        "--passwd-file".to_string(),
        env.passwd_path.display().to_string(),
        "--mailbox".to_string(),
        env.mail_dir.join("%u").display().to_string(),
    ];
    if is_root() {
        v.push("--user".into());
        v.push("nobody".into());
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
            assert!(
                out.stderr.is_empty(),
                "{extra:?} with --log {log:?}: nothing may go to stderr, got {:?}",
                out.stderr_text()
            );
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
                args.push("--user".into());
                args.push("nobody".into());
            }
            let a: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
            let out = run_bare(&a, b"USER fred\r\n");
            assert_startup_error(&out, &format!("passwd-file {}", p.display()));
            assert!(
                out.stderr.is_empty(),
                "--log {log}: {:?}",
                out.stderr_text()
            );
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

#[test]
fn default_syslog_without_dev_log_writes_nothing_to_stderr() {
    // The default --log is syslog. Whether or not a syslog socket exists here,
    // nothing may be diverted to stderr.
    let env = TestEnv::new().args(["--log", "syslog"]);
    env.write_mailbox("fred", &message("a@example.org", "x", "y"));
    let out = env.run(NOISY);
    out.assert_exit(0);
    assert!(out.stderr.is_empty(), "stderr: {:?}", out.stderr_text());

    // Truly the default: no --log option at all.
    let env = TestEnv::new();
    env.write_mailbox("fred", &message("a@example.org", "x", "y"));
    let _ = env.command(); // writes the passwd-file
    let mut cmd = Command::new(POP1D);
    cmd.args(base(&env)).args(["--auth-delay", "0"]);
    let out = run_command(cmd, NOISY);
    out.assert_exit(0);
    assert!(out.stderr.is_empty(), "stderr: {:?}", out.stderr_text());
    let mut r = out.replies();
    r.greeting();
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
