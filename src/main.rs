//! The pop1d binary: options, logging, privileges, then one session on fd 0/1.
//!
//! Start-up errors go to the log, and to stderr too when stderr is not the
//! client's connection; the client gets `-ERR <short reason>` in place of the
//! greeting, and the exit status is 2. Nothing but protocol goes to stdout
//! (except for --help, --version and --hash-password), and nothing to stderr
//! unless `--log stderr` (--hash-password prompts and explains there).

use std::io::Write;
use std::process::ExitCode;

use nix::fcntl::OFlag;
use nix::unistd::ForkResult;

use pop1d::auth::PasswdFile;
use pop1d::cli::{self, Auth, Options, Request};
use pop1d::edge::log::{stderr_is_client, Level, Log, Target};
use pop1d::edge::signals::Stop;
use pop1d::edge::{peer, privilege};
use pop1d::lock;
use pop1d::store::{FileStore, Verifier};

mod check;
mod hash_password;
mod login_child;
mod monitor;

/// A start-up failure: what the client is told, and the whole story for the log.
pub struct StartError {
    reply: &'static str,
    error: anyhow::Error,
}

fn main() -> ExitCode {
    let request = match cli::parse(std::env::args_os().skip(1)) {
        Ok(request) => request,
        Err(bad) => {
            let mut log = Log::open(bad.log);
            return refuse(
                &mut log,
                StartError {
                    reply: "bad command line",
                    error: anyhow::anyhow!(bad.reason),
                },
            );
        }
    };
    let options = match request {
        Request::Help => return print(cli::USAGE),
        Request::Version => return print(&format!("pop1d {}\n", env!("CARGO_PKG_VERSION"))),
        Request::HashPassword => return hash_password::run(),
        Request::Check(options) => return check::run(&options),
        Request::Serve(options) => options,
    };
    let mut log = Log::open(options.log);
    if options.log == Target::Stderr && stderr_is_client() {
        // Log lines would reach the client; Log::open chose syslog instead.
        return refuse(
            &mut log,
            StartError {
                reply: "server misconfigured",
                error: anyhow::anyhow!(
                    "--log stderr, but stderr is the client's connection (as inetd sets it up): use --log syslog"
                ),
            },
        );
    }
    if options.log != Target::Stderr {
        silence_stderr_if_client();
    }
    // The default hook would print to stderr, which under inetd may be the
    // client's socket. The panic then unwinds, and the locks are released.
    let target = options.log;
    std::panic::set_hook(Box::new(move |info| {
        Log::open(target).line(Level::Error, &format!("internal error: {info}"));
    }));
    separate(&options, &mut log)
}

/// Split in two, before the passwd-file is read or a byte comes from the
/// client: the login child reads the client's lines as `--login-user` until a
/// password is right; the monitor verifies, then becomes the account and
/// serves the rest (`src/monitor.rs`, `src/login_child.rs`). Not started as
/// root, the same flow runs and no uid changes.
fn separate(options: &Options, log: &mut Log) -> ExitCode {
    if options.passwd_file.is_none() && !privilege::is_root() {
        return refuse(
            log,
            StartError {
                reply: "server misconfigured",
                error: anyhow::anyhow!(
                    "system accounts (no --passwd-file) need pop1d to be started as root, to verify them and become them"
                ),
            },
        );
    }
    if let Err(error) = check_accounts(options) {
        return refuse(
            log,
            StartError {
                reply: "server misconfigured",
                error,
            },
        );
    }
    let rip = peer::client_address();
    log.line(Level::Info, &format!("connect: rip={rip}"));
    let pipes = (|| -> nix::Result<_> {
        Ok((
            nix::unistd::pipe2(OFlag::O_CLOEXEC)?,
            nix::unistd::pipe2(OFlag::O_CLOEXEC)?,
        ))
    })();
    let Ok(((request_rx, request_tx), (answer_rx, answer_tx))) = pipes else {
        return refuse(
            log,
            misconfigured("cannot make the pipes to the login child"),
        );
    };
    // SAFETY: pop1d never starts a thread, so the child is a whole copy of a
    // single-threaded process and may do anything the parent could; fork(2)
    // itself takes no pointer.
    match unsafe { nix::unistd::fork() } {
        Err(errno) => refuse(
            log,
            misconfigured(&format!("cannot fork the login child: {errno}")),
        ),
        Ok(ForkResult::Child) => {
            drop((request_rx, answer_tx));
            login_child::run(options, log, &rip, request_tx.into(), answer_rx.into())
        }
        Ok(ForkResult::Parent { child }) => {
            drop((request_tx, answer_rx));
            monitor::run(
                options,
                log,
                &rip,
                child,
                request_rx.into(),
                answer_tx.into(),
            )
        }
    }
}

/// What can be known of the accounts before the split: as root, virtual users
/// need a `--user` to be served as, and it must exist and not be root.
fn check_accounts(options: &Options) -> anyhow::Result<()> {
    if options.passwd_file.is_none() || !privilege::is_root() {
        return Ok(());
    }
    let Some(name) = &options.user else {
        anyhow::bail!(
            "refusing to serve a client as root: give --user (the account that owns the mailboxes)"
        );
    };
    let user = nix::unistd::User::from_name(name)
        .map_err(|e| anyhow::anyhow!("--user {name}: cannot look up the account: {e}"))?
        .ok_or_else(|| anyhow::anyhow!("--user {name}: no such account"))?;
    if user.uid.is_root() {
        anyhow::bail!("--user {name}: that is root, and pop1d never serves mailboxes as root");
    }
    Ok(())
}

pub fn misconfigured(why: &str) -> StartError {
    StartError {
        reply: "server misconfigured",
        error: anyhow::anyhow!("{why}"),
    }
}

/// What the monitor needs before it tells the child to greet: the password
/// back end and the store of mailboxes.
pub fn prepare(
    options: &Options,
    stop: &Stop,
    log: &mut Log,
    rip: &str,
) -> Result<(FileStore, Verifier), StartError> {
    let verifier = match &options.passwd_file {
        Some(path) => {
            let (file, warnings) = PasswdFile::load(path).map_err(|e| StartError {
                reply: "password file unavailable",
                error: anyhow::anyhow!(e.0),
            })?;
            // One line, not one per entry on every connection of a busy
            // server: --check lists them.
            if !warnings.is_empty() {
                log.line(
                    Level::Warning,
                    &format!(
                        "passwd-file {}: {} warning(s) about its entries or mode; run pop1d --check to list them",
                        path.display(),
                        warnings.len()
                    ),
                );
            }
            Verifier::PasswdFile(file)
        }
        None => system_verifier(options, rip)?,
    };
    pop1d::memory::headroom_left().map_err(|error| StartError {
        reply: "server out of memory",
        error: anyhow::Error::new(error).context(format!(
            "less than {} KiB of address space left (RLIMIT_AS)",
            pop1d::limits::ALLOCATION_HEADROOM >> 10
        )),
    })?;
    let system = options.passwd_file.is_none();
    let store = FileStore {
        template: options.mailbox.clone(),
        locks: lock::Config {
            methods: options.locks,
            timeout: options.lock_timeout,
            cancel: stop.flag(),
            refresh: dotlock_refresh(),
            lock_group: if system { spool_group(options) } else { None },
        },
        homes: system,
    };
    Ok((store, verifier))
}

/// The password back end of system accounts (`--auth`).
fn system_verifier(options: &Options, rip: &str) -> Result<Verifier, StartError> {
    match options.auth {
        Auth::Shadow => pop1d::auth::Shadow::new(options.first_valid_uid)
            .map(Verifier::Shadow)
            .map_err(|why| misconfigured(&format!("--auth shadow: {why}"))),
        #[cfg(feature = "pam")]
        Auth::Pam => Ok(Verifier::Pam {
            pam: pop1d::auth::Pam::new(options.first_valid_uid),
            rhost: rip.to_owned(),
        }),
        #[cfg(not(feature = "pam"))]
        Auth::Pam => {
            let _ = rip;
            Err(misconfigured(
                "--auth pam: built without the cargo feature pam",
            ))
        }
    }
}

/// The group that may make lock files in the mail spool, kept as the saved
/// gid: Debian's `mail`, when the spool directory belongs to it and lets it
/// write (root:mail 2775).
pub fn spool_group(options: &Options) -> Option<nix::unistd::Gid> {
    use std::os::unix::fs::MetadataExt;
    let mail = privilege::mail_group()?;
    let dir = options.mailbox.fixed_dir()?;
    let meta = std::fs::metadata(dir).ok()?;
    (meta.gid() == mail.as_raw() && meta.mode() & 0o020 != 0).then_some(mail)
}

/// [`pop1d::limits::DOTLOCK_REFRESH`], or what a test asks for through
/// `POP1D_TEST_DOTLOCK_REFRESH_MS` (10 ms to 60 s), so that it need not wait
/// half a minute to see a refresh.
pub fn dotlock_refresh() -> std::time::Duration {
    std::env::var("POP1D_TEST_DOTLOCK_REFRESH_MS")
        .ok()
        .and_then(|ms| ms.parse::<u64>().ok())
        .filter(|ms| (10..=60_000).contains(ms))
        .map_or(
            pop1d::limits::DOTLOCK_REFRESH,
            std::time::Duration::from_millis,
        )
}

/// Point fd 2 at /dev/null when it is the client's connection (inetd and xinetd
/// hand the socket over as fd 0, 1 and 2): the Rust runtime writes a few messages
/// there itself (a stack overflow, say). Elsewhere (systemd's journal, a
/// terminal) such a message is for the operator and may stay.
fn silence_stderr_if_client() {
    if stderr_is_client() {
        if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
            let _ = nix::unistd::dup2_stderr(null);
        }
    }
}

pub fn refuse(log: &mut Log, start: StartError) -> ExitCode {
    log.start_error(&format!("cannot start: {:#}", start.error));
    let _ = std::io::stdout().write_all(format!("-ERR {}\r\n", start.reply).as_bytes());
    ExitCode::from(2)
}

fn print(text: &str) -> ExitCode {
    let _ = std::io::stdout().write_all(text.as_bytes());
    ExitCode::SUCCESS
}
