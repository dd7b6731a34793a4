//! The operator's log: syslog (facility mail, ident pop1d, with pid), stderr on
//! request, or nothing. One line per event, in a fixed form fail2ban can match.
//!
//! Never logs a password. Never writes a log line to the client: under inetd,
//! stderr can be the client's socket. Where stderr is not the client's socket (a
//! terminal, a file, a pipe, systemd's journal), syslog falls back to stderr when
//! no syslog socket can be reached, and a start-up error is also written there;
//! where it is, `--log stderr` goes to syslog instead (and the binary refuses to
//! start), and lines syslog cannot take are dropped.

use std::io::Write;
use std::os::fd::AsFd;

use syslog::{Facility, Formatter3164, Logger, LoggerBackend};

use crate::session::{Event, Outcome, Stage};

/// Where log lines go (`--log`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Syslog,
    Stderr,
    None,
}

impl Target {
    pub fn parse(text: &str) -> Result<Target, String> {
        match text {
            "syslog" => Ok(Target::Syslog),
            "stderr" => Ok(Target::Stderr),
            "none" => Ok(Target::None),
            other => Err(format!("--log {other:?}: expected syslog, stderr or none")),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Level {
    Info,
    Warning,
    Error,
}

pub enum Log {
    Syslog(Option<Logger<LoggerBackend, Formatter3164>>),
    Stderr,
    None,
}

impl Log {
    /// The log `target` names, as far as it can be had without a log line ever
    /// reaching the client (see the module's first lines).
    pub fn open(target: Target) -> Log {
        let stderr_is_client = stderr_is_client();
        match target {
            Target::Syslog | Target::Stderr => {
                if target == Target::Stderr && !stderr_is_client {
                    return Log::Stderr;
                }
                let logger = syslog::unix(Formatter3164 {
                    facility: Facility::LOG_MAIL,
                    hostname: None,
                    process: "pop1d".into(),
                    pid: std::process::id(),
                })
                .ok();
                match logger {
                    None if !stderr_is_client => Log::Stderr,
                    logger => Log::Syslog(logger),
                }
            }
            Target::None => Log::None,
        }
    }

    /// Log why pop1d cannot start, and write it to stderr as well when stderr
    /// is not the client's connection and the log did not go there already:
    /// whoever started pop1d from a shell or a unit sees the reason.
    pub fn start_error(&mut self, message: &str) {
        self.line(Level::Error, message);
        if !matches!(self, Log::Stderr) && !stderr_is_client() {
            let line = format!("pop1d: {message}\n");
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
        }
    }

    pub fn line(&mut self, level: Level, message: &str) {
        match self {
            Log::Syslog(Some(logger)) => {
                let _ = match level {
                    Level::Info => logger.info(message),
                    Level::Warning => logger.warning(message),
                    Level::Error => logger.err(message),
                };
            }
            Log::Stderr => {
                let line = format!("pop1d[{}]: {message}\n", std::process::id());
                let _ = std::io::stderr().lock().write_all(line.as_bytes());
            }
            Log::Syslog(None) | Log::None => {}
        }
    }

    pub fn event(&mut self, event: &Event, rip: &str) {
        let (level, message) = describe(event, rip);
        self.line(level, &message);
    }
}

/// True when fd 2 is the client's connection: the same open file as fd 0 or 1
/// (inetd and xinetd hand the socket over as fd 0, 1 and 2). A closed fd 2 counts
/// as the client's too: whatever is opened there next may be.
pub fn stderr_is_client() -> bool {
    fn identity(fd: impl AsFd) -> Option<(u64, u64)> {
        nix::sys::stat::fstat(fd)
            .ok()
            .map(|st| (st.st_dev, st.st_ino))
    }
    match identity(std::io::stderr()) {
        Some(stderr) => {
            [identity(std::io::stdin()), identity(std::io::stdout())].contains(&Some(stderr))
        }
        None => true,
    }
}

/// A user name as log lines show it: only `[A-Za-z0-9._@+-]` kept, every other
/// byte escaped, so that no name can forge a field.
pub fn shown_user(name: &str) -> String {
    crate::username::escape_for_log(name.as_bytes())
}

/// The log line of a session event.
pub fn describe(event: &Event, rip: &str) -> (Level, String) {
    match event {
        Event::Login { user } => (Level::Info, format!("login: user={user}, rip={rip}")),
        Event::LoginFailed { user } => (
            Level::Warning,
            format!("login failed: user={user}, rip={rip}"),
        ),
        Event::TooManyFailures { user } => (
            Level::Warning,
            format!("too many login failures: user={user}, rip={rip}"),
        ),
        Event::AuthUnavailable { user } => (
            Level::Error,
            format!("login refused, no password back end is available: user={user}, rip={rip}"),
        ),
        Event::CannotVerify { user, why } => (
            Level::Error,
            format!("password not checked, {why}: user={user}, rip={rip}"),
        ),
        Event::Busy { user } => (Level::Warning, format!("lock busy: user={user}, rip={rip}")),
        Event::OpenFailed { user, why } => {
            (Level::Error, format!("mailbox error: user={user}, {why}"))
        }
        Event::Transaction {
            user,
            mode,
            bytes,
            outcome,
        } => {
            let outcome = match outcome {
                Outcome::Kept => "kept".to_owned(),
                Outcome::Deleted { appended_kept: 0 } => "deleted".to_owned(),
                Outcome::Deleted { appended_kept } => {
                    format!("deleted, kept {appended_kept} appended bytes")
                }
                Outcome::NotDeleted(why) => format!("not deleted ({why})"),
                Outcome::DeletionIncomplete(why) => {
                    format!("deletion incomplete, sent mail may be sent again ({why})")
                }
                Outcome::Aborted { stage, why } => {
                    let stage = match stage {
                        Stage::BeforeRcev => "before RCEV",
                        Stage::DuringRcev => "during RCEV",
                        Stage::AfterRcev => "after RCEV",
                    };
                    format!("aborted {stage} ({why})")
                }
            };
            let level = match event {
                Event::Transaction {
                    outcome: Outcome::NotDeleted(_),
                    ..
                } => Level::Warning,
                Event::Transaction {
                    outcome: Outcome::DeletionIncomplete(_),
                    ..
                } => Level::Error,
                _ => Level::Info,
            };
            (
                level,
                format!(
                    "transaction: user={user}, mode={}, bytes={bytes}, {outcome}",
                    mode.name()
                ),
            )
        }
    }
}
