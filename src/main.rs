//! The pop1d binary: options, logging, privileges, then one session on fd 0/1.
//!
//! Start-up errors go to the log; the client gets `-ERR <short reason>` in place of
//! the greeting, and the exit status is 2. Nothing but protocol goes to stdout
//! (except for --help and --version), and nothing to stderr unless `--log stderr`.

use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::{bail, Context, Result};

use pop1d::auth::PasswdFile;
use pop1d::cli::{self, Options, Request};
use pop1d::edge::input::ClientInput;
use pop1d::edge::log::{Level, Log};
use pop1d::edge::output::ClientOutput;
use pop1d::edge::serve::{serve, Edges};
use pop1d::edge::{peer, privilege};
use pop1d::lock;
use pop1d::session::{End, Session};
use pop1d::store::FileStore;

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
        Request::Serve(options) => options,
    };
    let mut log = Log::open(options.log);
    // The default hook would print to stderr, which under inetd may be the
    // client's socket. The panic then unwinds, and the locks are released.
    let target = options.log;
    std::panic::set_hook(Box::new(move |info| {
        Log::open(target).line(Level::Error, &format!("internal error: {info}"));
    }));
    let store = match prepare(&options, &mut log) {
        Ok(store) => store,
        Err(error) => return refuse(&mut log, error),
    };
    // Signals only set a flag: the session notices it at its next wait and ends
    // through the path that releases every lock.
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
        signal_hook::consts::SIGINT,
    ] {
        let _ = signal_hook::flag::register(signal, Arc::clone(&stop));
    }
    let rip = peer::client_address();
    log.line(Level::Info, &format!("connect: rip={rip}"));
    let mut session = Session::new(store, options.max_auth_failures);
    let mut edges = Edges {
        input: ClientInput::stdin(options.timeout, Arc::clone(&stop)),
        output: ClientOutput::stdout(options.timeout, stop),
        log: &mut log,
        rip: &rip,
        auth_delay: options.auth_delay,
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
fn prepare(options: &Options, log: &mut Log) -> Result<FileStore, StartError> {
    let passwd = match &options.passwd_file {
        Some(path) => {
            let (file, warnings) = PasswdFile::load(path).map_err(|e| StartError {
                reply: "password file unavailable",
                error: anyhow::anyhow!(e.0),
            })?;
            for warning in warnings {
                log.line(Level::Warning, &warning);
            }
            Some(file)
        }
        None => None,
    };
    drop_privileges(options, passwd.is_some()).map_err(|error| StartError {
        reply: "server misconfigured",
        error,
    })?;
    Ok(FileStore {
        passwd,
        template: options.mailbox.clone(),
        locks: lock::Config {
            methods: options.locks,
            timeout: options.lock_timeout,
        },
    })
}

fn drop_privileges(options: &Options, serves_mailboxes: bool) -> Result<()> {
    if let Some(user) = &options.user {
        privilege::become_user(user).context("cannot switch user")?;
    }
    if serves_mailboxes && privilege::is_root() {
        bail!("refusing to serve mailboxes as root: give --user (the account that owns the mailboxes)");
    }
    Ok(())
}

fn refuse(log: &mut Log, start: StartError) -> ExitCode {
    log.line(Level::Error, &format!("cannot start: {:#}", start.error));
    let _ = std::io::stdout().write_all(format!("-ERR {}\r\n", start.reply).as_bytes());
    ExitCode::from(2)
}

fn print(text: &str) -> ExitCode {
    let _ = std::io::stdout().write_all(text.as_bytes());
    ExitCode::SUCCESS
}
