//! Shared harness for the black-box tests: every test drives the real `pop1d`
//! binary with piped sessions, real files in a private temporary directory and
//! real peer tools (dotlockfile, flock, procmail, mkpasswd).
//!
//! pop1d refuses to open mailboxes as root, so when the tests run as root the
//! harness passes `--user nobody` and hands the temporary directory and the
//! mailbox files to nobody:nogroup.
#![allow(dead_code)]

pub mod accounts;

use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::unistd::{Gid, Uid};

/// The binary under test.
pub const POP1D: &str = env!("CARGO_BIN_EXE_pop1d");

/// The greeting fixed by the contract.
pub const GREETING: &str = "+OK POP1 server ready";

/// Password of the default user `fred`.
pub const FRED_PASS: &str = "secret";

// Fixed hashes of the password "secret", one per scheme. Each was made once with
// the command in its comment (mkpasswd is in Debian's "whois" package).

/// `mkpasswd -m yescrypt secret`
pub const HASH_YESCRYPT: &str =
    "$y$j9T$Lp62xVbeYwLCQE9UydHPF/$69YdWMLX2WY5/dGcYXwnydtH22fp2DENkPSKEQ1T4Y0";
/// `mkpasswd -m gost-yescrypt secret`
pub const HASH_GOST_YESCRYPT: &str =
    "$gy$j9T$R4Nt9/LReKco8lr1VHr6r1$C4Pub4iKymb0hrLjWukBrdUidoAy9uoXJyccRXHdf.9";
/// `mkpasswd -m scrypt secret`
pub const HASH_SCRYPT: &str =
    "$7$CU..../....E1ORd.iyiYCyhULN4eFSO.$CcL2vlUOWLaUSzZ9bj8O.Vq5Prz1C.0y34g/S0ISj1B";
/// `mkpasswd -m sha512crypt secret`
pub const HASH_SHA512: &str = "$6$Rf3JgBQgE/Y0GWBB$T8eYMdi3jRtZgo98q6DpsObjYNY.OUNzCVIy6asJ7qYRQVq/kTc/B.3lJEmbNquK.VERsrE8KJIp/FMBBcpBz/";
/// `mkpasswd -m sha256crypt secret`
pub const HASH_SHA256: &str = "$5$bOpTMUs8jmJK.aw5$zyRs4vavqE5PFEybQWxN.bVL9pwC2brlMp65zKArZO.";
/// `mkpasswd -m sha256crypt -R 1000 secret` (cheap: for tests that start many sessions)
pub const HASH_SHA256_CHEAP: &str =
    "$5$rounds=1000$KFF..aiTGteDSxrh$zdYJrLsAA3rX/zpoqQuAoy83olhZ4jbR2hUTJ6v4aM3";
/// `mkpasswd -m bcrypt secret`
pub const HASH_BCRYPT_2B: &str = "$2b$05$YcEbg5ikc5lVJNJt8t803.gGuOrIIR0zxjveMTKe5VxMVeuSTcfDy";
/// `mkpasswd -m bcrypt-a secret`
pub const HASH_BCRYPT_2A: &str = "$2a$05$NqZ36.ottQq2qrzO8/R.Xe4mPGG8WRh5kfQAnp4iGvls/DFnTFVjC";
/// `mkpasswd -m descrypt secret` (DES: must be refused)
pub const HASH_DES: &str = "5NA9Sn/B1zRwo";
/// `mkpasswd -m yescrypt 'correct horse battery'`
pub const HASH_SPACES: &str =
    "$y$j9T$TXYZxk6pYamFigq6795tg0$n90PXR.idB1gjiJ5alCN4hMOoTmxE2mmpsohDJszWF3";

/// How long any single wait on pop1d may take before the test fails.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------
// Identity: root runs pop1d as nobody.

/// True when the tests run as root (then pop1d gets `--user nobody`).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// uid and gid of the account pop1d runs as: nobody:nogroup under root,
/// else the current user.
pub fn server_ids() -> (Uid, Gid) {
    if is_root() {
        let user = nix::unistd::User::from_name("nobody")
            .expect("looking up user nobody")
            .expect("user nobody must exist to run the tests as root");
        let gid = nix::unistd::Group::from_name("nogroup")
            .ok()
            .flatten()
            .map(|g| g.gid)
            .unwrap_or(user.gid);
        (user.uid, gid)
    } else {
        (nix::unistd::geteuid(), nix::unistd::getegid())
    }
}

/// The login account of the tests that start pop1d as root with virtual users
/// (`--user nobody`): one that every Debian system has and that owns nothing
/// the tests use. The system-account tests make a dedicated one.
pub const LOGIN_ACCOUNT: &str = "daemon";

/// Under root: `setpriv` to become the server account (nobody) for good before
/// pop1d starts; empty otherwise.
pub fn server_wrapper() -> Vec<String> {
    if !is_root() {
        return Vec::new();
    }
    let (uid, gid) = server_ids();
    vec![
        "setpriv".into(),
        format!("--reuid={uid}"),
        format!("--regid={gid}"),
        "--clear-groups".into(),
        "--".into(),
    ]
}

/// Give `path` to the account pop1d runs as (only does something under root).
pub fn give_to_server(path: &Path) {
    if is_root() {
        let (uid, gid) = server_ids();
        nix::unistd::chown(path, Some(uid), Some(gid))
            .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
    }
}

/// True when the tests that change the machine (mounts today; accounts, PAM and
/// daemons later) are to run: `POP1D_SYSTEM_TESTS=1`, which `.ci/run` sets.
/// They need root: asked for without it, they fail rather than skip.
pub fn system_tests() -> bool {
    let wanted = std::env::var_os("POP1D_SYSTEM_TESTS").is_some_and(|v| v == "1");
    if wanted {
        assert!(
            is_root(),
            "POP1D_SYSTEM_TESTS=1 needs root: these tests mount file systems"
        );
    }
    wanted
}

// ---------------------------------------------------------------------------
// Peer tools.

/// Panics with a clear message when `tool` is not installed.
pub fn require_tool(tool: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|d| d.join(tool).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "required tool `{tool}` is missing: install the Debian package `{package}` \
         (apt-get install {package}); this test does not skip"
    );
}

/// Runs a tool to completion and returns its output (panics if it cannot start).
pub fn tool(program: &str, args: &[&str]) -> std::process::Output {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
}

/// `mkpasswd -m METHOD` with the password given on stdin; returns the hash.
pub fn mkpasswd(method: &str, password: &str) -> String {
    require_tool("mkpasswd", "whois");
    let mut child = Command::new("mkpasswd")
        .args(["-m", method, "--stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn mkpasswd");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "mkpasswd -m {method} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

// ---------------------------------------------------------------------------
// Data helpers.

/// What RCEV must send for a mailbox file: every LF not preceded by CR becomes
/// CR LF, and a final line that lacks an LF is completed with CR LF.
/// Written independently of pop1d, byte by byte.
pub fn crlf(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 16 + 2);
    let mut prev: Option<u8> = None;
    for &b in data {
        if b == b'\n' && prev != Some(b'\r') {
            out.push(b'\r');
        }
        out.push(b);
        prev = Some(b);
    }
    if !data.is_empty() && prev != Some(b'\n') {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Just the length of `crlf(data)`, computed by a second, separate method.
pub fn crlf_len(data: &[u8]) -> usize {
    let lf = data.iter().filter(|&&b| b == b'\n').count();
    let crlf_pairs = data.windows(2).filter(|w| w == b"\r\n").count();
    let tail = if !data.is_empty() && data[data.len() - 1] != b'\n' {
        2
    } else {
        0
    };
    data.len() + (lf - crlf_pairs) + tail
}

/// A deterministic pseudo-random generator (xorshift64*), so that tests need no
/// extra crate.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    pub fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            *b = self.next_u64() as u8;
        }
    }
}

/// A realistic mbox message.
pub fn message(from: &str, subject: &str, body: &str) -> Vec<u8> {
    format!("From {from} Thu Nov 26 10:00:00 2026\nFrom: {from}\nSubject: {subject}\n\n{body}\n\n")
        .into_bytes()
}

/// A mailbox of at least `bytes` bytes of ordinary messages: more than a pipe
/// or socket buffer holds, so pop1d blocks writing RCEV to a client that stops.
pub fn bulk_mailbox(bytes: usize) -> Vec<u8> {
    let body = "0123456789abcdef\n".repeat(100);
    let mut d = Vec::new();
    while d.len() < bytes {
        d.extend(message("x@example.org", "bulk", &body));
    }
    d
}

/// The 73-byte mailbox of the example in PROTOCOL.md.
pub const EXAMPLE_MBOX: &[u8] =
    b"From fred@example.org Thu Nov 26 10:00:00 2026\nSubject: hello\n\nHi Fred.\n\n";

/// `USER name` and `PASS pass` lines, CR LF terminated.
pub fn login(user: &str, pass: &str) -> String {
    format!("USER {user}\r\nPASS {pass}\r\n")
}

/// A whole transaction of fred: `USER fred`, `PASS secret`, `MODE fred` (RETR
/// or RDEL), `RCEV`, `RCVD`, `QUIT`, each line ended by `eol`.
pub fn fred_transaction(mode: &str, eol: &str) -> Vec<u8> {
    [
        "USER fred",
        "PASS secret",
        &format!("{mode} fred"),
        "RCEV",
        "RCVD",
        "QUIT",
    ]
    .iter()
    .map(|l| format!("{l}{eol}"))
    .collect::<String>()
    .into_bytes()
}

// ---------------------------------------------------------------------------
// The test environment.

/// A private directory with a passwd-file and a mailbox directory, and the
/// options to run pop1d with.
pub struct TestEnv {
    tmp: tempfile::TempDir,
    pub root: PathBuf,
    pub mail_dir: PathBuf,
    pub passwd_path: PathBuf,
    users: Vec<(String, String)>,
    passwd_raw: Option<Vec<u8>>,
    use_passwd_file: bool,
    pass_user: bool,
    args: Vec<OsString>,
    envs: Vec<(OsString, OsString)>,
}

impl Default for TestEnv {
    fn default() -> Self {
        Self::new()
    }
}

impl TestEnv {
    /// A fresh environment with user `fred`, password `secret` (yescrypt).
    pub fn new() -> TestEnv {
        TestEnv::new_in(&std::env::temp_dir())
    }

    /// Like [`TestEnv::new`], under /var/tmp: on disk where /tmp may be a tmpfs,
    /// whose pages never leave the page cache.
    pub fn on_disk() -> TestEnv {
        TestEnv::new_in(Path::new("/var/tmp"))
    }

    fn new_in(dir: &Path) -> TestEnv {
        let tmp = tempfile::Builder::new()
            .prefix("pop1d-test-")
            .tempdir_in(dir)
            .expect("create temp dir");
        let root = tmp.path().to_path_buf();
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).unwrap();
        give_to_server(&root);
        let mail_dir = root.join("mail");
        fs::create_dir(&mail_dir).unwrap();
        fs::set_permissions(&mail_dir, fs::Permissions::from_mode(0o755)).unwrap();
        give_to_server(&mail_dir);
        let passwd_path = root.join("passwd");
        TestEnv {
            tmp,
            root,
            mail_dir,
            passwd_path,
            users: vec![("fred".into(), HASH_YESCRYPT.into())],
            passwd_raw: None,
            use_passwd_file: true,
            pass_user: true,
            args: Vec::new(),
            envs: Vec::new(),
        }
    }

    /// Adds a passwd-file entry `name:hash`.
    pub fn user(mut self, name: &str, hash: &str) -> TestEnv {
        self.users.push((name.into(), hash.into()));
        self
    }

    /// Replaces the whole passwd-file with this text.
    pub fn passwd_text(mut self, text: &str) -> TestEnv {
        self.passwd_raw = Some(text.as_bytes().to_vec());
        self
    }

    /// Runs pop1d without `--passwd-file`.
    pub fn without_passwd_file(mut self) -> TestEnv {
        self.use_passwd_file = false;
        self
    }

    /// Runs pop1d without `--user` even as root.
    pub fn without_user_option(mut self) -> TestEnv {
        self.pass_user = false;
        self
    }

    /// Extra command-line arguments.
    pub fn args<I, S>(mut self, args: I) -> TestEnv
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        self
    }

    /// An environment variable for pop1d.
    pub fn env(mut self, key: &str, value: &str) -> TestEnv {
        self.envs.push((key.into(), value.into()));
        self
    }

    fn has_arg(&self, name: &str) -> bool {
        self.args.iter().any(|a| {
            let a = a.to_string_lossy();
            a == name || a.starts_with(&format!("{name}="))
        })
    }

    fn write_passwd(&self) {
        let text = match &self.passwd_raw {
            Some(raw) => raw.clone(),
            None => {
                let mut s = String::from("# written by the pop1d tests\n");
                for (name, hash) in &self.users {
                    s.push_str(&format!("{name}:{hash}\n"));
                }
                s.into_bytes()
            }
        };
        fs::write(&self.passwd_path, text).unwrap();
        fs::set_permissions(&self.passwd_path, fs::Permissions::from_mode(0o600)).unwrap();
        // Read by the account pop1d runs as, when it is not started as root.
        if self.pass_user {
            give_to_server(&self.passwd_path);
        }
    }

    /// The full argument list: the harness defaults (each left out when the
    /// test gives that option itself), then the test's own arguments.
    pub fn full_args(&self) -> Vec<OsString> {
        let mut v: Vec<OsString> = Vec::new();
        if self.use_passwd_file && !self.has_arg("--passwd-file") {
            v.push("--passwd-file".into());
            v.push(self.passwd_path.clone().into());
        }
        if !self.has_arg("--mailbox") {
            v.push("--mailbox".into());
            v.push(self.mail_dir.join("%u").into());
        }
        for (opt, val) in [
            ("--auth-delay", "0"),
            ("--log", "stderr"),
            ("--lock-timeout", "5"),
            ("--timeout", "30"),
        ] {
            if !self.has_arg(opt) {
                v.push(opt.into());
                v.push(val.into());
            }
        }
        v.extend(self.args.iter().cloned());
        v
    }

    /// The command that runs pop1d in this environment.
    pub fn command(&self) -> Command {
        self.command_via(&[])
    }

    /// The command that runs pop1d in this environment through `wrapper` (a
    /// program and its arguments, such as `taskset -c 0`).
    pub fn command_via(&self, wrapper: &[&str]) -> Command {
        if self.use_passwd_file {
            self.write_passwd();
        }
        // As root, pop1d is started as the unprivileged account that owns the
        // test's mailboxes, as an operator runs it for virtual users: the
        // tests that are about privileges start it as root themselves.
        let as_server = server_wrapper();
        let mut chain: Vec<&str> = Vec::new();
        if self.pass_user {
            chain.extend(as_server.iter().map(String::as_str));
        }
        chain.extend(wrapper);
        let mut cmd = match chain.split_first() {
            Some((program, args)) => {
                let mut cmd = Command::new(program);
                cmd.args(args).arg(POP1D);
                cmd
            }
            None => Command::new(POP1D),
        };
        cmd.args(self.full_args());
        cmd.env_remove("REMOTE_ADDR");
        for (k, v) in &self.envs {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs one whole session: `script` on stdin, then end of input.
    pub fn run(&self, script: &[u8]) -> Outcome {
        run_command(self.command(), script)
    }

    /// Runs `pop1d --check` with this environment's options; returns its
    /// outcome and the lines it printed.
    pub fn check(&self) -> (Outcome, Vec<String>) {
        let mut cmd = self.command();
        cmd.arg("--check");
        let out = run_command(cmd, b"");
        let lines = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect();
        (out, lines)
    }

    /// Starts an interactive session.
    pub fn spawn(&self) -> Session {
        Session::spawn(self.command())
    }

    // --- files -------------------------------------------------------------

    pub fn mailbox_path(&self, user: &str) -> PathBuf {
        self.mail_dir.join(user)
    }

    pub fn lock_path(&self, user: &str) -> PathBuf {
        self.mail_dir.join(format!("{user}.lock"))
    }

    /// Writes a mailbox file, mode 0600, owned by the server's account.
    pub fn write_mailbox(&self, user: &str, data: &[u8]) -> PathBuf {
        let path = self.mailbox_path(user);
        fs::write(&path, data).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        give_to_server(&path);
        path
    }

    pub fn read_mailbox(&self, user: &str) -> Vec<u8> {
        fs::read(self.mailbox_path(user)).unwrap()
    }

    /// Names in the mailbox directory, sorted.
    pub fn mail_dir_entries(&self) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(&self.mail_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    /// Asserts that the mailbox directory holds exactly `names`: no lock file,
    /// no temp file left behind.
    pub fn assert_mail_dir_is(&self, names: &[&str]) {
        let mut want: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(
            self.mail_dir_entries(),
            want,
            "mailbox directory must hold only the mailboxes: no lock or temp file left"
        );
    }

    /// Waits until the dot-lock of `user` exists (pop1d took it), or panics.
    pub fn wait_for_lock_file(&self, user: &str) {
        let p = self.lock_path(user);
        wait_until(DEFAULT_WAIT, || p.exists(), "dot-lock file to appear");
    }
}

/// Polls `cond` every few ms until it holds or `limit` passes (then panics).
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Inode, mode, owner and size of a file.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

pub fn file_id(path: &Path) -> FileId {
    let m = fs::symlink_metadata(path).unwrap_or_else(|e| panic!("stat {}: {e}", path.display()));
    FileId {
        dev: m.dev(),
        ino: m.ino(),
        mode: m.mode(),
        uid: m.uid(),
        gid: m.gid(),
    }
}

// ---------------------------------------------------------------------------
// Whole sessions.

/// The result of a whole session.
#[derive(Debug)]
pub struct Outcome {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub elapsed: Duration,
    pub pid: u32,
}

impl Outcome {
    pub fn replies(&self) -> Replies<'_> {
        Replies::new(&self.stdout)
    }
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
    /// The log messages written with `--log stderr`, each checked to be of the
    /// form `pop1d[PID]: message` with pop1d's pid.
    pub fn log(&self) -> Vec<String> {
        parse_log(&self.stderr, self.pid)
    }
    pub fn assert_exit(&self, code: i32) {
        assert_eq!(
            self.status.code(),
            Some(code),
            "exit status; stdout: {:?}; stderr: {}",
            String::from_utf8_lossy(&self.stdout),
            self.stderr_text()
        );
    }
}

/// Splits stderr into log messages; every line must be `pop1d[PID]: message`.
pub fn parse_log(stderr: &[u8], pid: u32) -> Vec<String> {
    let text = String::from_utf8_lossy(stderr);
    if !text.is_empty() {
        assert!(text.ends_with('\n'), "log must end in a newline: {text:?}");
    }
    // The monitor's own pid, or its login child's: a pid of pop1d's family.
    let _ = pid;
    text.lines()
        .map(|l| {
            l.strip_prefix("pop1d[")
                .and_then(|rest| rest.split_once("]: "))
                .filter(|(pid, _)| pid.parse::<u32>().is_ok())
                .map(|(_, message)| message.to_string())
                .unwrap_or_else(|| panic!("log line {l:?} does not start with pop1d[PID]: "))
        })
        .collect()
}

/// Runs `cmd` with `script` on stdin (then closed), collects everything, with
/// a watchdog.
pub fn run_command(cmd: Command, script: &[u8]) -> Outcome {
    run_command_limit(cmd, script, Duration::from_secs(60))
}

pub fn run_command_limit(mut cmd: Command, script: &[u8], limit: Duration) -> Outcome {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd.spawn().expect("spawn pop1d");
    let pid = child.id();
    let mut stdin = child.stdin.take().unwrap();
    let script = script.to_vec();
    let writer = std::thread::spawn(move || {
        // pop1d may exit before reading everything: ignore EPIPE.
        let _ = stdin.write_all(&script);
    });
    let out_reader = reader_thread(child.stdout.take().unwrap());
    let err_reader = reader_thread(child.stderr.take().unwrap());
    let deadline = start + limit;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("pop1d did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let elapsed = start.elapsed();
    writer.join().unwrap();
    let stdout = out_reader.join().unwrap();
    let stderr = err_reader.join().unwrap();
    Outcome {
        status,
        stdout,
        stderr,
        elapsed,
        pid,
    }
}

fn reader_thread<R: Read + Send + 'static>(mut r: R) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = r.read_to_end(&mut v);
        v
    })
}

/// Checks that a reply line (without its CR LF) is one of the forms
/// PROTOCOL.md allows.
pub fn check_reply_form(line: &str) {
    let ok = is_ok_line(line) || is_err_line(line) || is_count_line(line);
    assert!(ok, "not a valid reply line: {line:?}");
}

fn is_ok_line(line: &str) -> bool {
    line == "+OK" || line.starts_with("+OK ")
}

fn is_err_line(line: &str) -> bool {
    line == "-ERR" || line.starts_with("-ERR ")
}

/// Turns a raw reply line (without its LF) into text: it must end in CR, hold
/// no other CR and be of a form PROTOCOL.md allows.
fn reply_line(line: &[u8]) -> String {
    assert!(
        line.last() == Some(&b'\r'),
        "reply line does not end in CR LF: {:?}",
        String::from_utf8_lossy(line)
    );
    let line = &line[..line.len() - 1];
    assert!(
        !line.contains(&b'\r'),
        "stray CR in reply line {:?}",
        String::from_utf8_lossy(line)
    );
    let s = String::from_utf8_lossy(line).into_owned();
    check_reply_form(&s);
    s
}

/// Asserts that `line` is `+OK`; `context` (whole output, log) is only built
/// for the failure message.
fn assert_ok_line(line: &str, context: impl FnOnce() -> String) {
    assert!(
        is_ok_line(line),
        "expected +OK, got {line:?}; {}",
        context()
    );
}

/// Asserts that `line` is `-ERR`.
fn assert_err_line(line: &str, context: impl FnOnce() -> String) {
    assert!(
        is_err_line(line),
        "expected -ERR, got {line:?}; {}",
        context()
    );
}

/// Asserts that `line` is `#count` and returns the count.
fn parse_count_line(line: &str, context: impl FnOnce() -> String) -> usize {
    assert!(
        is_count_line(line),
        "expected #count, got {line:?}; {}",
        context()
    );
    line[1..].parse().unwrap()
}

fn is_count_line(line: &str) -> bool {
    match line.strip_prefix('#') {
        Some(d) => {
            !d.is_empty()
                && d.bytes().all(|b| b.is_ascii_digit())
                && (d == "0" || !d.starts_with('0'))
        }
        None => false,
    }
}

/// Strict parser of the server's byte stream.
pub struct Replies<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Replies<'a> {
    pub fn new(data: &'a [u8]) -> Replies<'a> {
        Replies { data, pos: 0 }
    }

    fn show(&self) -> String {
        String::from_utf8_lossy(self.data).into_owned()
    }

    /// The next line, which must end in CR LF (returned without it).
    pub fn line(&mut self) -> String {
        let rest = &self.data[self.pos..];
        let lf = rest.iter().position(|&b| b == b'\n').unwrap_or_else(|| {
            panic!(
                "expected a reply line at offset {}, got {:?}; whole output: {:?}",
                self.pos,
                String::from_utf8_lossy(rest),
                self.show()
            )
        });
        let s = reply_line(&rest[..lf]);
        self.pos += lf + 1;
        s
    }

    pub fn greeting(&mut self) {
        let l = self.line();
        assert_eq!(l, GREETING, "greeting; whole output: {:?}", self.show());
    }

    /// The greeting, then the +OK replies to USER and PASS.
    pub fn logged_in(&mut self) {
        self.greeting();
        self.ok();
        self.ok();
    }

    /// "whole output: ..." for failure messages.
    fn context(&self) -> String {
        format!("whole output: {:?}", self.show())
    }

    pub fn ok(&mut self) -> String {
        let l = self.line();
        assert_ok_line(&l, || self.context());
        l
    }

    pub fn err(&mut self) -> String {
        let l = self.line();
        assert_err_line(&l, || self.context());
        l
    }

    pub fn count(&mut self) -> usize {
        let l = self.line();
        parse_count_line(&l, || self.context())
    }

    /// Exactly `n` octets of mail data.
    pub fn data(&mut self, n: usize) -> &'a [u8] {
        assert!(
            self.data.len() - self.pos >= n,
            "expected {n} octets of data, only {} left",
            self.data.len() - self.pos
        );
        let d = &self.data[self.pos..self.pos + n];
        self.pos += n;
        d
    }

    /// The rest, unparsed.
    pub fn rest(&self) -> &'a [u8] {
        &self.data[self.pos..]
    }

    /// Asserts that nothing follows.
    pub fn end(&self) {
        assert!(
            self.pos == self.data.len(),
            "unexpected output after the last expected reply: {:?}",
            String::from_utf8_lossy(&self.data[self.pos..])
        );
    }
}

// ---------------------------------------------------------------------------
// Interactive sessions.

/// What the next read produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    Line(String),
    Eof,
    Timeout,
}

/// A running pop1d with its stdin and stdout held by the test. Nothing is read
/// from stdout unless the test asks, so a test can stop reading.
pub struct Session {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Option<ChildStdout>,
    buf: Vec<u8>,
    eof: bool,
    stderr: Arc<Mutex<Vec<u8>>>,
    stderr_thread: Option<JoinHandle<()>>,
    pub pid: u32,
    status: Option<ExitStatus>,
}

impl Session {
    pub fn spawn(mut cmd: Command) -> Session {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn pop1d");
        let pid = child.id();
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let mut err = child.stderr.take().unwrap();
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let sink = stderr.clone();
        let stderr_thread = std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            loop {
                match err.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => sink.lock().unwrap().extend_from_slice(&chunk[..n]),
                }
            }
        });
        Session {
            child,
            stdin,
            stdout,
            buf: Vec::new(),
            eof: false,
            stderr,
            stderr_thread: Some(stderr_thread),
            pid,
            status: None,
        }
    }

    /// Sends raw bytes.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stdin
            .as_mut()
            .expect("stdin already closed")
            .write_all(bytes)
            .expect("write to pop1d");
        self.stdin.as_mut().unwrap().flush().unwrap();
    }

    /// Sends raw bytes; an error (pop1d gone) is returned, not a panic.
    pub fn try_send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self.stdin.as_mut() {
            Some(w) => w.write_all(bytes).and_then(|_| w.flush()),
            None => Err(std::io::Error::other("stdin closed")),
        }
    }

    /// Sends one command line terminated by CR LF.
    pub fn cmd(&mut self, line: &str) {
        self.send(format!("{line}\r\n").as_bytes());
    }

    /// Takes pop1d's stdin, e.g. to write from another thread.
    pub fn take_stdin(&mut self) -> ChildStdin {
        self.stdin.take().expect("stdin already taken")
    }

    /// Gives stdin back after `take_stdin`.
    pub fn give_stdin(&mut self, stdin: ChildStdin) {
        self.stdin = Some(stdin);
    }

    /// Closes the test's end of pop1d's standard output: the client went away.
    pub fn close_stdout(&mut self) {
        self.stdout = None;
    }

    /// Closes pop1d's standard input (end of input).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Reads more output; returns the number of bytes read (0 at EOF), or None
    /// when nothing came before `deadline`.
    fn fill(&mut self, deadline: Instant) -> Option<usize> {
        if self.eof {
            return Some(0);
        }
        loop {
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            let ms = (deadline - now).as_millis().clamp(1, 60_000) as u16;
            let out = self.stdout.as_ref().expect("stdout closed");
            let mut fds = [PollFd::new(out.as_fd(), PollFlags::POLLIN)];
            match nix::poll::poll(&mut fds, PollTimeout::from(ms)) {
                Ok(0) => continue,
                Ok(_) => break,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => panic!("poll: {e}"),
            }
        }
        let mut chunk = vec![0u8; 256 * 1024];
        let n = self
            .stdout
            .as_mut()
            .unwrap()
            .read(&mut chunk)
            .expect("read pop1d stdout");
        if n == 0 {
            self.eof = true;
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Some(n)
    }

    /// The next reply line within `limit`, strictly CR LF terminated.
    pub fn next_line(&mut self, limit: Duration) -> Next {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(lf) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=lf).collect();
                return Next::Line(reply_line(&line[..line.len() - 1]));
            }
            assert!(
                self.buf.len() <= 4096,
                "reply line too long: {:?}",
                String::from_utf8_lossy(&self.buf[..200])
            );
            match self.fill(deadline) {
                None => return Next::Timeout,
                Some(0) => {
                    assert!(
                        self.buf.is_empty(),
                        "output ends in an unterminated line: {:?}",
                        String::from_utf8_lossy(&self.buf)
                    );
                    return Next::Eof;
                }
                Some(_) => {}
            }
        }
    }

    /// The next reply line; panics on EOF or timeout.
    pub fn read_line(&mut self) -> String {
        match self.next_line(DEFAULT_WAIT) {
            Next::Line(l) => l,
            other => panic!(
                "expected a reply line, got {other:?}; log so far: {}",
                self.stderr_text()
            ),
        }
    }

    pub fn greeting(&mut self) {
        let l = self.read_line();
        assert_eq!(l, GREETING);
    }

    /// "log: ..." for failure messages.
    fn context(&self) -> String {
        format!("log: {}", self.stderr_text())
    }

    pub fn expect_ok(&mut self) -> String {
        let l = self.read_line();
        assert_ok_line(&l, || self.context());
        l
    }

    pub fn expect_err(&mut self) -> String {
        let l = self.read_line();
        assert_err_line(&l, || self.context());
        l
    }

    pub fn expect_count(&mut self) -> usize {
        let l = self.read_line();
        parse_count_line(&l, || self.context())
    }

    /// Sends a command and returns its reply line.
    pub fn ask(&mut self, line: &str) -> String {
        self.cmd(line);
        self.read_line()
    }

    /// Sends a command and returns its reply line and how long it took.
    pub fn timed(&mut self, line: &str) -> (String, Duration) {
        let t = Instant::now();
        self.cmd(line);
        let l = self.read_line();
        (l, t.elapsed())
    }

    /// Greeting, USER, PASS.
    pub fn login(&mut self, user: &str, pass: &str) {
        self.greeting();
        self.cmd(&format!("USER {user}"));
        self.expect_ok();
        self.cmd(&format!("PASS {pass}"));
        self.expect_ok();
    }

    /// Exactly `n` octets of data.
    pub fn read_exact(&mut self, n: usize) -> Vec<u8> {
        let deadline = Instant::now() + DEFAULT_WAIT + Duration::from_secs(n as u64 >> 20);
        while self.buf.len() < n {
            match self.fill(deadline) {
                None => panic!("timed out reading {n} octets, got {}", self.buf.len()),
                Some(0) => panic!("EOF after {} of {n} octets", self.buf.len()),
                Some(_) => {}
            }
        }
        self.buf.drain(..n).collect()
    }

    /// Reads whatever comes until EOF (or panics after `limit`).
    pub fn read_to_eof(&mut self, limit: Duration) -> Vec<u8> {
        let deadline = Instant::now() + limit;
        loop {
            match self.fill(deadline) {
                None => panic!("no EOF within {limit:?}"),
                Some(0) => return std::mem::take(&mut self.buf),
                Some(_) => {}
            }
        }
    }

    /// Asserts that the server sends nothing more and closes its output.
    pub fn expect_eof(&mut self) {
        let rest = self.read_to_eof(DEFAULT_WAIT);
        assert!(
            rest.is_empty(),
            "expected EOF, got {:?}",
            String::from_utf8_lossy(&rest)
        );
    }

    /// Asserts that nothing arrives during `d`.
    pub fn expect_silence(&mut self, d: Duration) {
        match self.next_line(d) {
            Next::Timeout => {}
            other => panic!("expected no reply, got {other:?}"),
        }
    }

    /// Whether the process still runs.
    pub fn is_running(&mut self) -> bool {
        if self.status.is_some() {
            return false;
        }
        match self.child.try_wait().unwrap() {
            Some(st) => {
                self.status = Some(st);
                false
            }
            None => true,
        }
    }

    /// Waits for the process to exit within `limit` and returns its status.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        while self.is_running() {
            assert!(
                Instant::now() < deadline,
                "pop1d did not exit within {limit:?}; log: {}",
                self.stderr_text()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        self.status.unwrap()
    }

    /// The stderr collected so far.
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// The complete log after exit (joins the stderr reader).
    pub fn final_log(&mut self) -> Vec<String> {
        assert!(
            !self.is_running(),
            "final_log needs the process to have exited"
        );
        if let Some(t) = self.stderr_thread.take() {
            t.join().unwrap();
        }
        parse_log(&self.stderr.lock().unwrap(), self.pid)
    }

    /// Reads a field (e.g. "VmHWM") of /proc/PID/status, in kB for sizes.
    pub fn proc_status(&self, field: &str) -> Option<String> {
        let s = fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        s.lines()
            .find(|l| l.starts_with(&format!("{field}:")))
            .map(|l| l[field.len() + 1..].trim().to_string())
    }

    /// Sends SIGKILL to this pop1d (its own pid only).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let st = self.child.wait().unwrap();
        self.status = Some(st);
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if self.status.is_none() {
            if let Ok(None) = self.child.try_wait() {
                let _ = self.child.kill();
            }
            let _ = self.child.wait();
        }
    }
}

// ---------------------------------------------------------------------------
// Locks held and probed by other processes.

fn whole_file_lock(kind: libc::c_short) -> libc::flock {
    // SAFETY: flock is a plain C struct; all-zero is a valid value.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = 0;
    fl.l_len = 0;
    fl
}

/// A classic POSIX fcntl write lock held by the test process (a different
/// process from pop1d), as mail delivery agents take it. Do not open and close
/// the same file elsewhere in the test while it is held: POSIX drops a
/// process's locks on any close.
pub struct FcntlLock {
    _file: File,
}

impl FcntlLock {
    pub fn take(path: &Path) -> FcntlLock {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .unwrap();
        let fl = whole_file_lock(libc::F_WRLCK as libc::c_short);
        nix::fcntl::fcntl(&file, nix::fcntl::FcntlArg::F_SETLK(&fl))
            .expect("test process could not take the fcntl lock");
        FcntlLock { _file: file }
    }
}

/// Whether another process could take an fcntl write lock right now (it is
/// taken and released at once).
pub fn fcntl_free(path: &Path) -> bool {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let fl = whole_file_lock(libc::F_WRLCK as libc::c_short);
    match nix::fcntl::fcntl(&file, nix::fcntl::FcntlArg::F_SETLK(&fl)) {
        Ok(_) => {
            let un = whole_file_lock(libc::F_UNLCK as libc::c_short);
            nix::fcntl::fcntl(&file, nix::fcntl::FcntlArg::F_SETLK(&un)).unwrap();
            true
        }
        Err(nix::errno::Errno::EAGAIN) | Err(nix::errno::Errno::EACCES) => false,
        Err(e) => panic!("fcntl probe: {e}"),
    }
}

/// An exclusive flock(2) held by util-linux `flock` until dropped.
pub struct FlockHolder {
    child: Child,
}

impl FlockHolder {
    pub fn take(path: &Path) -> FlockHolder {
        require_tool("flock", "util-linux");
        let mut child = Command::new("flock")
            .arg("-x")
            .arg("-o")
            .arg(path)
            .args(["sh", "-c", "echo locked; exec cat >/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn flock");
        let mut out = child.stdout.take().unwrap();
        let mut b = [0u8; 7];
        out.read_exact(&mut b)
            .expect("flock did not report the lock");
        assert_eq!(&b, b"locked\n");
        FlockHolder { child }
    }
}

impl Drop for FlockHolder {
    fn drop(&mut self) {
        // Closing cat's stdin ends it, and flock releases on exit.
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// Whether `flock -n` could take an exclusive flock right now.
pub fn flock_free(path: &Path) -> bool {
    require_tool("flock", "util-linux");
    let st = Command::new("flock")
        .arg("-n")
        .arg("-x")
        .arg(path)
        .arg("true")
        .status()
        .expect("run flock");
    st.success()
}

/// Whether `dotlockfile -r 0 -l [-p]` could create `lockfile` right now. If it
/// could, the lock file is removed again.
pub fn dotlock_free(lockfile: &Path, with_pid: bool) -> bool {
    require_tool("dotlockfile", "liblockfile-bin");
    let mut cmd = Command::new("dotlockfile");
    cmd.args(["-r", "0", "-l"]);
    if with_pid {
        cmd.arg("-p");
    }
    let st = cmd.arg(lockfile).stderr(Stdio::null()).status().unwrap();
    if st.success() {
        let st = Command::new("dotlockfile")
            .arg("-u")
            .arg(lockfile)
            .status()
            .unwrap();
        assert!(st.success(), "dotlockfile -u failed");
        true
    } else {
        false
    }
}

/// Creates `lockfile` with `dotlockfile -l` (no pid: content "0") or with
/// `-p` (the pid of the test process, which is running).
pub fn dotlock_take(lockfile: &Path, with_pid: bool) {
    require_tool("dotlockfile", "liblockfile-bin");
    let mut cmd = Command::new("dotlockfile");
    cmd.args(["-r", "0", "-l"]);
    if with_pid {
        cmd.arg("-p");
    }
    let out = cmd.arg(lockfile).output().unwrap();
    assert!(
        out.status.success(),
        "dotlockfile could not create {}: {}",
        lockfile.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Asserts all three locks of `mailbox` are free to another process.
pub fn assert_all_locks_free(mailbox: &Path) {
    let lockfile = PathBuf::from(format!("{}.lock", mailbox.display()));
    assert!(!lockfile.exists(), "dot-lock file left behind");
    assert!(fcntl_free(mailbox), "fcntl lock still held");
    assert!(flock_free(mailbox), "flock still held");
    assert!(dotlock_free(&lockfile, false), "dot-lock not free");
}

/// A pid that is certainly not running: a child that has exited and been
/// reaped.
pub fn dead_pid() -> u32 {
    let mut c = Command::new("true").spawn().unwrap();
    let pid = c.id();
    c.wait().unwrap();
    pid
}
