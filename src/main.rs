//! The pop1d binary: options, logging, privileges, then one session on fd 0/1.
//!
//! Start-up errors go to the log, and to stderr too when stderr is not the
//! client's connection; the client gets `-ERR <short reason>` in place of the
//! greeting, and the exit status is 2. Nothing but protocol goes to stdout
//! (except for --help, --version and --hash-password), and nothing to stderr
//! unless `--log stderr` (--hash-password prompts and explains there).

use std::io::Write;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};

use pop1d::auth::PasswdFile;
use pop1d::cli::{self, Options, Request};
use pop1d::edge::input::ClientInput;
use pop1d::edge::log::{stderr_is_client, Level, Log, Target};
use pop1d::edge::output::ClientOutput;
use pop1d::edge::serve::{serve, Edges};
use pop1d::edge::signals::Stop;
use pop1d::edge::{peer, privilege};
use pop1d::lock;
use pop1d::session::{End, Session};
use pop1d::store::FileStore;

mod check;
mod hash_password;

/// A start-up failure: what the client is told, and the whole story for the log.
struct StartError {
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
    let stop = match Stop::install() {
        Ok(stop) => stop,
        Err(error) => {
            let error = anyhow::Error::new(error).context("cannot install signal handlers");
            return refuse(
                &mut log,
                StartError {
                    reply: "server misconfigured",
                    error,
                },
            );
        }
    };
    let (store, passwd) = match prepare(&options, &stop, &mut log) {
        Ok(prepared) => prepared,
        Err(error) => return refuse(&mut log, error),
    };
    let rip = peer::client_address();
    log.line(Level::Info, &format!("connect: rip={rip}"));
    let refresh = store.locks.refresh;
    let mut session = Session::new(store, options.max_auth_failures);
    let mut verify = |credentials: &_| pop1d::store::verify(passwd.as_ref(), credentials);
    let mut edges = Edges {
        input: ClientInput::stdin(options.timeout, refresh, stop.clone()),
        output: ClientOutput::stdout(options.timeout, refresh, stop),
        log: &mut log,
        rip: &rip,
        auth_delay: options.auth_delay,
        verify: &mut verify,
    };
    let end = serve(&mut session, &mut edges);
    drop(edges);
    log.line(
        Level::Info,
        &format!("disconnect: {}, rip={rip}", end.describe()),
    );
    match end {
        End::MailboxFault => ExitCode::from(1),
        _ => ExitCode::SUCCESS,
    }
}

/// Everything before the greeting: the passwd-file, then the privilege switch.
fn prepare(
    options: &Options,
    stop: &Stop,
    log: &mut Log,
) -> Result<(FileStore, Option<PasswdFile>), StartError> {
    let passwd = match &options.passwd_file {
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
            Some(file)
        }
        None => None,
    };
    drop_privileges(options).map_err(|error| StartError {
        reply: "server misconfigured",
        error,
    })?;
    pop1d::memory::headroom_left().map_err(|error| StartError {
        reply: "server out of memory",
        error: anyhow::Error::new(error).context(format!(
            "less than {} KiB of address space left (RLIMIT_AS)",
            pop1d::limits::ALLOCATION_HEADROOM >> 10
        )),
    })?;
    let store = FileStore {
        template: options.mailbox.clone(),
        locks: lock::Config {
            methods: options.locks,
            timeout: options.lock_timeout,
            cancel: stop.flag(),
            refresh: dotlock_refresh(),
        },
    };
    Ok((store, passwd))
}

/// [`pop1d::limits::DOTLOCK_REFRESH`], or what a test asks for through
/// `POP1D_TEST_DOTLOCK_REFRESH_MS` (10 ms to 60 s), so that it need not wait
/// half a minute to see a refresh.
fn dotlock_refresh() -> std::time::Duration {
    std::env::var("POP1D_TEST_DOTLOCK_REFRESH_MS")
        .ok()
        .and_then(|ms| ms.parse::<u64>().ok())
        .filter(|ms| (10..=60_000).contains(ms))
        .map_or(
            pop1d::limits::DOTLOCK_REFRESH,
            std::time::Duration::from_millis,
        )
}

fn drop_privileges(options: &Options) -> Result<()> {
    if let Some(user) = &options.user {
        privilege::become_user(user).context("cannot switch user")?;
    }
    if privilege::is_root() {
        bail!(
            "refusing to serve a client as root: give --user (the account that owns the mailboxes)"
        );
    }
    Ok(())
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

fn refuse(log: &mut Log, start: StartError) -> ExitCode {
    log.start_error(&format!("cannot start: {:#}", start.error));
    let _ = std::io::stdout().write_all(format!("-ERR {}\r\n", start.reply).as_bytes());
    ExitCode::from(2)
}

fn print(text: &str) -> ExitCode {
    let _ = std::io::stdout().write_all(text.as_bytes());
    ExitCode::SUCCESS
}
