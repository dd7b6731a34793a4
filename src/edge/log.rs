//! The operator's log: syslog (facility mail, ident pop1d, with pid), stderr on
//! request, or nothing. One line per event, in a fixed form fail2ban can match.
//!
//! Never logs a password. Never writes to stderr unless `--log stderr` was asked:
//! under inetd, stderr can be the client's socket. When no syslog socket exists,
//! lines are dropped, not diverted.

use std::io::Write;

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
    pub fn open(target: Target) -> Log {
        match target {
            Target::Syslog => Log::Syslog(
                syslog::unix(Formatter3164 {
                    facility: Facility::LOG_MAIL,
                    hostname: None,
                    process: "pop1d".into(),
                    pid: std::process::id(),
                })
                .ok(),
            ),
            Target::Stderr => Log::Stderr,
            Target::None => Log::None,
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

/// The log line of a session event.
pub fn describe(event: &Event, rip: &str) -> (Level, String) {
    match event {
        Event::Login { user } => (Level::Info, format!("login: user={user}, rip={rip}")),
        Event::LoginFailed { user } => (Level::Warning, format!("login failed: user={user}, rip={rip}")),
        Event::TooManyFailures { user } => {
            (Level::Warning, format!("too many login failures: user={user}, rip={rip}"))
        }
        Event::AuthUnavailable { user } => (
            Level::Error,
            format!("login refused, no --passwd-file given (system accounts are not supported yet): user={user}, rip={rip}"),
        ),
        Event::CannotVerify { user, why } => (
            Level::Error,
            format!("password not checked, {why}: user={user}, rip={rip}"),
        ),
        Event::Busy { user } => (Level::Warning, format!("lock busy: user={user}, rip={rip}")),
        Event::OpenFailed { user, why } => (Level::Error, format!("mailbox error: user={user}, {why}")),
        Event::Transaction { user, mode, bytes, outcome } => {
            let outcome = match outcome {
                Outcome::Kept => "kept".to_owned(),
                Outcome::Deleted { appended_kept: 0 } => "deleted".to_owned(),
                Outcome::Deleted { appended_kept } => format!("deleted, kept {appended_kept} appended bytes"),
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
                Event::Transaction { outcome: Outcome::NotDeleted(_), .. } => Level::Warning,
                Event::Transaction { outcome: Outcome::DeletionIncomplete(_), .. } => Level::Error,
                _ => Level::Info,
            };
            (level, format!("transaction: user={user}, mode={}, bytes={bytes}, {outcome}", mode.name()))
        }
    }
}
