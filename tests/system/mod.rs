//! Helpers for the tests that run pop1d with the real programs of a Debian mail
//! host (openbsd-inetd, systemd-socket-activate, rsyslog, Postfix, strace) and
//! real system accounts. They change the machine, so they run only with
//! `POP1D_SYSTEM_TESTS=1` (as root); then a missing program or a daemon that
//! does not start fails the test, it never skips.
//!
//! Every daemon is a child of the test and is stopped in `Drop`; every account
//! is removed in `Drop`.

use std::ffi::OsString;
use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use crate::common::{GREETING, POP1D};

pub mod trace;

/// How long one wait on a daemon or a reply may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------
// THE SWITCH: how pop1d serves the test accounts.

/// How the tests have pop1d serve the test's system accounts.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Serve {
    /// What pop1d can do before issue 9: the account's own shadow hash in a
    /// private `--passwd-file`, `--user ACCOUNT` (pop1d, started as root,
    /// becomes the account before it reads the client), and the account in
    /// group `mail` so that it can create dot-locks in `/var/mail`.
    #[allow(dead_code)]
    Virtual,
    /// Issue 9: the shipped command line as it is (no `--passwd-file`; shadow;
    /// the login child as `--login-user`), the account not in group `mail`.
    System,
}

/// The one line to change once pop1d serves system accounts.
pub const SERVE: Serve = Serve::System;

/// The dedicated login account of the README and contrib/ (issue 9).
pub const LOGIN_USER: &str = "pop1d-login";

// ---------------------------------------------------------------------------
// Programs.

/// Panics, naming the Debian package, when `path` is not an executable file.
pub fn need(path: &str, package: &str) {
    let ok = fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    assert!(
        ok,
        "{path} is missing: install the Debian package `{package}` (.ci/run does)"
    );
}

/// Runs a program to completion (stdin from `input`), asserts success and
/// returns its standard output.
pub fn run(program: &str, args: &[&str], input: Option<&[u8]>) -> String {
    let mut child = Command::new(program)
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    if let Some(bytes) = input {
        child.stdin.take().unwrap().write_all(bytes).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Waits until `ready` holds, or fails with `what`.
pub fn wait_until(what: &str, limit: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ready() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?}: {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A private directory under /var/tmp that the accounts pop1d runs as can
/// enter (0755), removed at the end.
pub fn private_dir(prefix: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in("/var/tmp")
        .unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

// ---------------------------------------------------------------------------
// Accounts.

/// A fresh system account (`useradd -m`, password set with `chpasswd`, which on
/// Debian hashes with yescrypt), removed with its home and mail spool on drop.
pub struct Account {
    pub name: String,
    pub password: String,
    pub uid: u32,
    pub gid: u32,
}

/// Serialises useradd/userdel/usermod: they lock /etc/passwd and fail rather
/// than wait when another one holds it.
static ACCOUNTS: Mutex<()> = Mutex::new(());

impl Account {
    pub fn create() -> Account {
        need("/usr/sbin/useradd", "passwd");
        need("/usr/sbin/chpasswd", "passwd");
        let name = format!("p1d{:06}", fastrand::u32(..1_000_000));
        let password: String = std::iter::repeat_with(fastrand::alphanumeric)
            .take(16)
            .collect();
        {
            let _g = ACCOUNTS.lock().unwrap_or_else(|e| e.into_inner());
            run(
                "/usr/sbin/useradd",
                &["-m", "-s", "/bin/sh", "-c", "pop1d system test", &name],
                None,
            );
            run(
                "/usr/sbin/chpasswd",
                &[],
                Some(format!("{name}:{password}\n").as_bytes()),
            );
            if SERVE == Serve::Virtual {
                run("/usr/sbin/usermod", &["-a", "-G", "mail", &name], None);
            }
        }
        let user = nix::unistd::User::from_name(&name)
            .unwrap()
            .unwrap_or_else(|| panic!("useradd made no account {name}"));
        let account = Account {
            name,
            password,
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
        };
        let hash = account.shadow_hash();
        assert!(
            hash.starts_with("$y$"),
            "chpasswd did not hash with yescrypt: {hash}"
        );
        account
    }

    /// The account's hash in /etc/shadow.
    pub fn shadow_hash(&self) -> String {
        let line = run("/usr/bin/getent", &["shadow", &self.name], None);
        line.trim_end()
            .split(':')
            .nth(1)
            .expect("getent shadow: no hash field")
            .to_string()
    }

    /// `/var/mail/NAME`, the default `--mailbox`.
    pub fn mailbox(&self) -> PathBuf {
        PathBuf::from(format!("/var/mail/{}", self.name))
    }

    /// Writes the mailbox as Debian's delivery agents leave it: `NAME:mail 0660`.
    pub fn write_mailbox(&self, data: &[u8]) -> PathBuf {
        let path = self.mailbox();
        fs::write(&path, data).unwrap();
        let mail = nix::unistd::Group::from_name("mail").unwrap().unwrap().gid;
        nix::unistd::chown(&path, Some(self.uid.into()), Some(mail)).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o660)).unwrap();
        path
    }
}

impl Drop for Account {
    fn drop(&mut self) {
        let _g = ACCOUNTS.lock().unwrap_or_else(|e| e.into_inner());
        // -r: the home directory and the mail spool too.
        let _ = Command::new("/usr/sbin/userdel")
            .args(["-r", "-f", &self.name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = fs::remove_file(self.mailbox());
        let _ = fs::remove_file(format!("/var/mail/{}.lock", self.name));
    }
}

/// Makes the dedicated login account (`--login-user`) if it does not exist; it
/// is left in place, like any service account.
pub fn login_account(name: &str) -> u32 {
    let _g = ACCOUNTS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(user) = nix::unistd::User::from_name(name).unwrap() {
        return user.uid.as_raw();
    }
    run(
        "/usr/sbin/useradd",
        &[
            "--system",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            name,
        ],
        None,
    );
    nix::unistd::User::from_name(name)
        .unwrap()
        .expect("useradd made no login account")
        .uid
        .as_raw()
}

/// The uid of a user name.
pub fn uid_of(name: &str) -> u32 {
    nix::unistd::User::from_name(name)
        .unwrap()
        .unwrap_or_else(|| panic!("no user {name}"))
        .uid
        .as_raw()
}

pub fn mail_gid() -> u32 {
    nix::unistd::Group::from_name("mail")
        .unwrap()
        .expect("group mail")
        .gid
        .as_raw()
}

// ---------------------------------------------------------------------------
// The shipped command lines, adapted.

/// The `contrib/inetd.conf` service line: its fields, split on white space.
pub fn shipped_inetd_line() -> Vec<String> {
    let text = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/contrib/inetd.conf"))
        .expect("read contrib/inetd.conf");
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "contrib/inetd.conf should have exactly one service line: {lines:?}"
    );
    lines[0].split_whitespace().map(str::to_owned).collect()
}

/// The `ExecStart=` command line of `contrib/systemd/pop1d@.service`, split as
/// systemd splits it (white space, double or single quotes), with `%%` as `%`.
pub fn shipped_exec_start() -> Vec<String> {
    let text = fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/contrib/systemd/pop1d@.service"
    ))
    .expect("read contrib/systemd/pop1d@.service");
    let lines: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("ExecStart="))
        .filter(|v| !v.is_empty())
        .collect();
    assert_eq!(lines.len(), 1, "one ExecStart= expected: {lines:?}");
    let value = lines[0].trim_start_matches(['-', '@', '+', '!', ':']);
    assert!(
        !value.contains('\\') && !value.contains('$'),
        "ExecStart= uses escapes or variables this test does not expand: {value}"
    );
    let mut words = Vec::new();
    let mut rest = value.trim();
    while !rest.is_empty() {
        let (word, after) = match rest.chars().next().unwrap() {
            q @ ('"' | '\'') => {
                let end = rest[1..].find(q).expect("unterminated quote in ExecStart=");
                (&rest[1..1 + end], &rest[end + 2..])
            }
            _ => {
                let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
                (&rest[..end], &rest[end..])
            }
        };
        assert!(
            !word.replace("%%", "").contains('%'),
            "ExecStart= uses a systemd specifier this test does not expand: {word}"
        );
        words.push(word.replace("%%", "%"));
        rest = after.trim_start();
    }
    words
}

/// Sets `--opt VALUE` in an argument list (replacing `--opt X` or `--opt=X`,
/// else appending).
pub fn set_option(args: &mut Vec<String>, opt: &str, value: &str) {
    let eq = format!("{opt}=");
    if let Some(i) = args.iter().position(|a| a == opt) {
        assert!(i + 1 < args.len(), "{opt} without a value in {args:?}");
        args[i + 1] = value.to_string();
    } else if let Some(i) = args.iter().position(|a| a.starts_with(&eq)) {
        args[i] = format!("{eq}{value}");
    } else {
        args.push(opt.to_string());
        args.push(value.to_string());
    }
}

/// The value of `--opt` in an argument list.
pub fn option_value(args: &[String], opt: &str) -> Option<String> {
    let eq = format!("{opt}=");
    args.iter().enumerate().find_map(|(i, a)| {
        if a == opt {
            args.get(i + 1).cloned()
        } else {
            a.strip_prefix(&eq).map(str::to_owned)
        }
    })
}

/// What a test changes in a shipped pop1d argument list (argv[1..]): only what
/// [`SERVE`] needs, then the test's own `extra` options.
pub struct Adapted {
    pub args: Vec<String>,
    /// The account that reads the client's lines until the login.
    pub login_uid: u32,
    /// Kept alive for the passwd-file (virtual users).
    _dir: Option<tempfile::TempDir>,
}

pub fn adapt(shipped: &[String], account: &Account, extra: &[(&str, &str)]) -> Adapted {
    let mut args = shipped.to_vec();
    let mut dir = None;
    match SERVE {
        Serve::Virtual => {
            let d = tempfile::Builder::new()
                .prefix("pop1d-passwd-")
                .tempdir()
                .unwrap();
            let passwd = d.path().join("passwd");
            fs::write(
                &passwd,
                format!("{}:{}\n", account.name, account.shadow_hash()),
            )
            .unwrap();
            fs::set_permissions(&passwd, fs::Permissions::from_mode(0o600)).unwrap();
            set_option(&mut args, "--passwd-file", passwd.to_str().unwrap());
            set_option(&mut args, "--user", &account.name);
            dir = Some(d);
        }
        Serve::System => {
            assert!(
                option_value(&args, "--passwd-file").is_none()
                    && option_value(&args, "--user").is_none(),
                "the shipped command line serves virtual users, not system accounts: {shipped:?}"
            );
        }
    }
    let login = option_value(&args, "--login-user").unwrap_or_else(|| "nobody".into());
    let login_uid = if login == LOGIN_USER {
        login_account(&login)
    } else {
        uid_of(&login)
    };
    for (opt, value) in extra {
        set_option(&mut args, opt, value);
    }
    Adapted {
        args,
        login_uid,
        _dir: dir,
    }
}

// ---------------------------------------------------------------------------
// Ports.

/// A loopback TCP port that nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether something listens on 127.0.0.1:`port` (from /proc/net/tcp, so that
/// no probe connection starts a session).
pub fn listening(port: u16) -> bool {
    let want = format!("0100007F:{port:04X}");
    fs::read_to_string("/proc/net/tcp")
        .unwrap()
        .lines()
        .skip(1)
        .any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 3 && f[1] == want && f[3] == "0A"
        })
}

// ---------------------------------------------------------------------------
// rsyslog.

/// rsyslogd in the foreground with a private configuration: imuxsock on a
/// private socket, `mail.*` to a private file. `/dev/log` reaches it:
/// - where no `/dev/log` exists (CI), or only a dead one, as a symbolic link
///   to the private socket, removed when rsyslogd stops;
/// - where the machine's own syslog owns a live `/dev/log`, that one is left
///   alone and the daemons under test run in a private mount namespace in
///   which the private socket is bind-mounted over `/dev/log` ([`Syslog::wrap`]).
///
/// One rsyslogd serves every test of the process that runs at the same time
/// ([`syslog`]): each reads its own lines by pid or user name.
pub struct Syslog {
    dir: tempfile::TempDir,
    child: Mutex<Child>,
    pub file: PathBuf,
    socket: PathBuf,
    linked: bool,
}

/// The running rsyslogd, started by the first test that asks, stopped when the
/// last one holding it is done.
pub fn syslog() -> Arc<Syslog> {
    static SHARED: OnceLock<Mutex<Weak<Syslog>>> = OnceLock::new();
    let shared = SHARED.get_or_init(|| Mutex::new(Weak::new()));
    let mut guard = shared.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(s) = guard.upgrade() {
        return s;
    }
    let s = Arc::new(Syslog::start());
    *guard = Arc::downgrade(&s);
    s
}

/// Whether a syslog daemon receives on `/dev/log` now.
fn dev_log_live() -> bool {
    let sock = UnixDatagram::unbound().unwrap();
    sock.connect("/dev/log").is_ok()
}

impl Syslog {
    fn start() -> Syslog {
        need("/usr/sbin/rsyslogd", "rsyslog");
        let dir = private_dir("pop1d-rsyslog-");
        let d = dir.path();
        let file = d.join("mail.log");
        let socket = d.join("log");
        let conf = d.join("rsyslog.conf");
        fs::write(
            &conf,
            format!(
                "global(workDirectory=\"{d}\")\n\
                 module(load=\"imuxsock\" SysSock.Use=\"off\")\n\
                 input(type=\"imuxsock\" Socket=\"{s}\")\n\
                 mail.* action(type=\"omfile\" file=\"{f}\")\n",
                d = d.display(),
                s = socket.display(),
                f = file.display()
            ),
        )
        .unwrap();
        let child = Command::new("/usr/sbin/rsyslogd")
            .arg("-n")
            .arg("-f")
            .arg(&conf)
            .arg("-i")
            .arg(d.join("rsyslogd.pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(d.join("rsyslogd.err")).unwrap())
            .spawn()
            .expect("start rsyslogd");
        let mut s = Syslog {
            dir,
            child: Mutex::new(child),
            file,
            socket,
            linked: false,
        };
        let sock = s.socket.clone();
        wait_until("rsyslogd's socket", WAIT, || {
            s.assert_running();
            sock.exists()
        });
        if !dev_log_live() {
            let dev_log = Path::new("/dev/log");
            if dev_log.symlink_metadata().is_ok() {
                // A dead socket or a dangling link (an earlier run killed):
                // nobody receives there.
                fs::remove_file(dev_log).expect("remove the dead /dev/log");
            }
            std::os::unix::fs::symlink(&s.socket, dev_log).expect("link /dev/log");
            s.linked = true;
            assert!(dev_log_live(), "/dev/log does not reach rsyslogd");
        }
        s
    }

    fn assert_running(&self) {
        if let Some(st) = self.child.lock().unwrap().try_wait().unwrap() {
            panic!(
                "rsyslogd exited ({st}): {}",
                fs::read_to_string(self.dir.path().join("rsyslogd.err")).unwrap_or_default()
            );
        }
    }

    /// The command that runs `argv` so that its `/dev/log` is this rsyslogd.
    pub fn wrap(&self, argv: &[OsString]) -> Command {
        let mut cmd;
        if self.linked {
            cmd = Command::new(&argv[0]);
            cmd.args(&argv[1..]);
        } else {
            cmd = Command::new("/usr/bin/unshare");
            cmd.args(["--mount", "--propagation", "private", "--", "/bin/sh", "-c"])
                .arg("mount --bind \"$0\" /dev/log && exec \"$@\"")
                .arg(&self.socket)
                .args(argv);
        }
        cmd
    }

    /// The log lines so far.
    pub fn lines(&self) -> Vec<String> {
        fs::read_to_string(&self.file)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Syslog {
    fn drop(&mut self) {
        if self.linked {
            let dev_log = Path::new("/dev/log");
            if fs::read_link(dev_log).is_ok_and(|t| t == self.socket) {
                let _ = fs::remove_file(dev_log);
            }
        }
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = child.wait();
    }
}

/// The pid in a syslog line `... pop1d[PID]: text`, and the text.
pub fn pop1d_line(line: &str) -> Option<(u32, &str)> {
    let at = line.find(" pop1d[")?;
    let rest = &line[at + 7..];
    let close = rest.find("]: ")?;
    Some((rest[..close].parse().ok()?, &rest[close + 3..]))
}

/// The client address (`rip=`) of each `login: user=USER, rip=ADDR` line;
/// each must also have a `connect: rip=ADDR` line.
pub fn login_addresses(lines: &[String], user: &str) -> Vec<String> {
    let login = format!("login: user={user}, rip=");
    let mut out = Vec::new();
    for (_, text) in lines.iter().filter_map(|l| pop1d_line(l)) {
        if let Some(rip) = text.strip_prefix(&login) {
            let connect = format!("connect: rip={rip}");
            assert!(
                lines
                    .iter()
                    .filter_map(|l| pop1d_line(l))
                    .any(|(_, t)| t == connect),
                "no {connect:?} line: {lines:#?}"
            );
            out.push(rip.to_string());
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Listening daemons.

/// A daemon that is a child of the test (openbsd-inetd, systemd-socket-activate),
/// stopped with SIGTERM on drop.
pub struct Daemon {
    what: &'static str,
    child: Child,
    pub port: u16,
    err: PathBuf,
    _dir: tempfile::TempDir,
}

impl Daemon {
    /// openbsd-inetd in the foreground (`-i`) with a private configuration
    /// file holding `line` (the shipped one, its service field changed to
    /// `127.0.0.1:PORT`).
    pub fn inetd(log: &Syslog, fields: &[String]) -> Daemon {
        need("/usr/sbin/inetd", "openbsd-inetd");
        let dir = private_dir("pop1d-inetd-");
        let port = free_port();
        let mut fields = fields.to_vec();
        fields[0] = format!("127.0.0.1:{port}");
        let conf = dir.path().join("inetd.conf");
        fs::write(&conf, format!("{}\n", fields.join(" "))).unwrap();
        let argv: Vec<OsString> = vec!["/usr/sbin/inetd".into(), "-i".into(), conf.into()];
        Daemon::start("openbsd-inetd", log.wrap(&argv), port, dir)
    }

    /// `systemd-socket-activate --accept --inetd` on 127.0.0.1:PORT, running
    /// `argv` per connection.
    pub fn socket_activate(log: &Syslog, argv: &[String]) -> Daemon {
        need("/usr/bin/systemd-socket-activate", "systemd");
        let dir = private_dir("pop1d-socket-activate-");
        let port = free_port();
        let mut full: Vec<OsString> = vec![
            "/usr/bin/systemd-socket-activate".into(),
            "--accept".into(),
            "--inetd".into(),
            "-l".into(),
            format!("127.0.0.1:{port}").into(),
            "--".into(),
        ];
        full.extend(argv.iter().map(OsString::from));
        Daemon::start("systemd-socket-activate", log.wrap(&full), port, dir)
    }

    fn start(what: &'static str, mut cmd: Command, port: u16, dir: tempfile::TempDir) -> Daemon {
        let err = dir.path().join("stderr");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(fs::File::create(dir.path().join("stdout")).unwrap())
            .stderr(fs::File::create(&err).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("start {what}: {e}"));
        let mut d = Daemon {
            what,
            child,
            port,
            err,
            _dir: dir,
        };
        wait_until(&format!("{what} listening on port {port}"), WAIT, || {
            d.assert_running();
            listening(port)
        });
        d
    }

    pub fn assert_running(&mut self) {
        if let Some(st) = self.child.try_wait().unwrap() {
            panic!(
                "{} exited ({st}): {}",
                self.what,
                fs::read_to_string(&self.err).unwrap_or_default()
            );
        }
    }

    /// Its standard error so far.
    pub fn stderr(&self) -> String {
        fs::read_to_string(&self.err).unwrap_or_default()
    }

    /// A client connected from `from` (any 127.x.y.z address: each client
    /// gets its own, so that the log tells them apart).
    pub fn connect_from(&self, from: Ipv4Addr) -> Client {
        Client::connect(from, self.port)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------
// The TCP client.

/// A POP1 client over TCP, strict about CR LF.
pub struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
    pub from: Ipv4Addr,
}

impl Client {
    pub fn connect(from: Ipv4Addr, port: u16) -> Client {
        use nix::sys::socket::{
            bind, connect, socket, AddressFamily, SockFlag, SockType, SockaddrIn,
        };
        let fd: OwnedFd = socket(
            AddressFamily::Inet,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .unwrap();
        bind(
            fd.as_raw_fd(),
            &SockaddrIn::from(SocketAddrV4::new(from, 0)),
        )
        .unwrap_or_else(|e| panic!("bind {from}: {e}"));
        connect(
            fd.as_raw_fd(),
            &SockaddrIn::from(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)),
        )
        .unwrap_or_else(|e| panic!("connect to 127.0.0.1:{port}: {e}"));
        let stream = TcpStream::from(fd);
        stream.set_read_timeout(Some(WAIT)).unwrap();
        Client {
            stream,
            buf: Vec::new(),
            from,
        }
    }

    /// One read with a deadline: Some(n) (0 at end of stream), or None when
    /// nothing came in time. EINTR is retried: a socket with a receive timeout
    /// returns it even without a signal handler, when the process was stopped
    /// and continued (signal(7)).
    fn read_until(&mut self, deadline: Instant) -> Option<usize> {
        let mut chunk = [0u8; 65536];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.stream.set_read_timeout(Some(left)).unwrap();
            match self.stream.read(&mut chunk) {
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Some(n);
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return None
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return Some(0),
                Err(e) => panic!("client {}: read: {e}", self.from),
            }
        }
    }

    fn fill(&mut self) -> usize {
        self.read_until(Instant::now() + WAIT).unwrap_or_else(|| {
            panic!(
                "client {}: no reply within {WAIT:?}; have {:?}",
                self.from,
                String::from_utf8_lossy(&self.buf)
            )
        })
    }

    /// The next reply line, without its CR LF; None at end of stream.
    pub fn next_line(&mut self) -> Option<String> {
        loop {
            if let Some(lf) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=lf).collect();
                assert!(
                    line.ends_with(b"\r\n"),
                    "reply not ended by CR LF: {:?}",
                    String::from_utf8_lossy(&line)
                );
                return Some(String::from_utf8_lossy(&line[..line.len() - 2]).into_owned());
            }
            if self.fill() == 0 {
                assert!(
                    self.buf.is_empty(),
                    "unterminated reply at end of stream: {:?}",
                    String::from_utf8_lossy(&self.buf)
                );
                return None;
            }
        }
    }

    pub fn line(&mut self) -> String {
        self.next_line()
            .unwrap_or_else(|| panic!("client {}: connection closed", self.from))
    }

    pub fn send(&mut self, line: &str) {
        self.stream
            .write_all(format!("{line}\r\n").as_bytes())
            .unwrap();
    }

    pub fn ask(&mut self, line: &str) -> String {
        self.send(line);
        self.line()
    }

    pub fn expect_ok(&mut self, line: &str) {
        let reply = self.ask(line);
        assert!(
            reply.starts_with("+OK"),
            "client {}: {line:?} got {reply:?}",
            self.from
        );
    }

    /// Greeting, USER, PASS: both `+OK`.
    pub fn login(&mut self, user: &str, password: &str) {
        let greeting = self.line();
        assert_eq!(greeting, GREETING, "client {}", self.from);
        self.expect_ok(&format!("USER {user}"));
        self.expect_ok(&format!("PASS {password}"));
    }

    /// Asserts that no reply comes during `d`.
    pub fn expect_silence(&mut self, d: Duration) {
        assert!(
            self.buf.is_empty(),
            "unread reply {:?}",
            String::from_utf8_lossy(&self.buf)
        );
        if let Some(n) = self.read_until(Instant::now() + d) {
            panic!(
                "client {}: expected silence, got {n} octets: {:?}",
                self.from,
                String::from_utf8_lossy(&self.buf)
            );
        }
    }

    /// Exactly `n` octets.
    pub fn data(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            assert!(
                self.fill() > 0,
                "client {}: end of stream after {} of {n} octets",
                self.from,
                self.buf.len()
            );
        }
        self.buf.drain(..n).collect()
    }

    /// RCEV and RCVD after a `#count` reply; returns the data.
    pub fn receive(&mut self, count: usize) -> Vec<u8> {
        self.send("RCEV");
        let data = self.data(count);
        self.expect_ok("RCVD");
        data
    }

    /// QUIT, then the server closes the connection.
    pub fn quit(&mut self) {
        self.expect_ok("QUIT");
        assert_eq!(self.next_line(), None, "data after QUIT's reply");
    }
}

/// The count in a `#count` reply, if it is one.
pub fn count(reply: &str) -> Option<usize> {
    reply.strip_prefix('#').and_then(|d| d.parse().ok())
}

/// Asserts that a shipped line logs to syslog (the default).
pub fn assert_logs_to_syslog(args: &[String]) {
    if let Some(v) = option_value(args, "--log") {
        assert_eq!(v, "syslog", "the shipped line logs to {v}, not syslog");
    }
}

/// The built pop1d in place of the shipped path (argv[0] of an ExecStart=).
pub fn with_built_binary(mut argv: Vec<String>) -> Vec<String> {
    assert!(
        argv[0].ends_with("/pop1d"),
        "the shipped command does not run pop1d: {argv:?}"
    );
    argv[0] = POP1D.to_string();
    argv
}
