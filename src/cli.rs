//! The command line. Every option name here is a contract with scripts and tests.

use std::path::PathBuf;
use std::time::Duration;

use crate::edge::log::Target;
use crate::limits;
use crate::lock::Methods;
use crate::mailbox::Template;

pub const USAGE: &str = "\
pop1d: serve one RFC 918 (POP1) session on stdin/stdout, as inetd, xinetd or a
systemd socket unit runs it, or as a shell pipe drives it.

Usage: pop1d [OPTIONS]

Options:
  --passwd-file FILE     virtual users, one 'name:hash' a line (crypt(3) hashes:
                         yescrypt, scrypt, sha512/sha256-crypt, bcrypt; argon2id).
                         Without it: system accounts (started as root).
  --mailbox TEMPLATE     mbox path of a user; %u is the user name, %h a system
                         account's home directory [/var/mail/%u]
  --user NAME            virtual users: the account that owns their mailboxes,
                         become after the login (pop1d never opens a mailbox
                         as root)
  --login-user NAME      the account that reads the client's lines until a
                         login succeeds [nobody]
  --auth shadow|pam      how system accounts are verified [shadow]
  --first-valid-uid N    system accounts below this uid are refused [1000]
  --locks LIST           lock methods, comma-separated: fcntl,dotlock,flock [all]
  --lock-timeout SECS    wait this long for a locked mailbox, then -ERR [30]
  --timeout SECS         end a session idle (or not reading) this long [600]
  --auth-delay SECS      pause after a failed PASS [2]
  --max-auth-failures N  failed PASS commands before the session ends [3]
  --log TARGET           syslog (facility mail), stderr or none [syslog]
  --check                check the configuration these options describe, print
                         what was found, serve nobody; exit 0 or 2
  --hash-password        read a password (twice from a terminal, once from a
                         pipe), print its yescrypt hash for a passwd-file line
  --help                 print this help
  --version              print the version

Logs: to syslog by default, facility mail, ident pop1d: on Debian in
/var/log/mail.log, or `journalctl -t pop1d`; to stderr when no syslog socket
exists and stderr is not the client's connection. A start-up error (a bad
option, an unreadable passwd-file) is logged, and also shown on stderr when
stderr is not the client's connection; the client gets `-ERR <short reason>`
and pop1d exits with status 2. `--log stderr` shows the log on the terminal
when trying pop1d from a shell; where stderr is the client's connection (as
inetd sets it up) pop1d refuses to start with it. Nothing but the protocol
goes to stdout.
";

/// What pop1d was asked to do.
#[derive(Debug)]
pub enum Request {
    Serve(Options),
    /// Check the configuration these options describe, print what was found,
    /// and serve nobody (`--check`, in the manner of `sshd -t`).
    Check(Options),
    Help,
    Version,
    /// `--hash-password`: make a passwd-file hash, serve nothing.
    HashPassword,
}

#[derive(Debug)]
pub struct Options {
    pub passwd_file: Option<PathBuf>,
    pub mailbox: Template,
    pub user: Option<String>,
    pub locks: Methods,
    pub lock_timeout: Duration,
    pub timeout: Duration,
    pub auth_delay: Duration,
    pub max_auth_failures: u32,
    pub log: Target,
    /// The account that reads the client's lines until a login succeeds.
    pub login_user: String,
    /// How system accounts are verified (no `--passwd-file`).
    pub auth: Auth,
    /// System accounts below this uid are refused (uid 0 always is).
    pub first_valid_uid: u32,
}

/// `--auth`: the password back end for system accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    Shadow,
    Pam,
}

impl Auth {
    fn parse(text: &str) -> Result<Auth, String> {
        match text {
            "shadow" => Ok(Auth::Shadow),
            "pam" if cfg!(feature = "pam") => Ok(Auth::Pam),
            "pam" => Err("--auth pam: this pop1d was built without the cargo feature pam".into()),
            other => Err(format!("--auth {other:?}: expected shadow or pam")),
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            passwd_file: None,
            mailbox: Template::default(),
            user: None,
            locks: Methods::ALL,
            lock_timeout: limits::DEFAULT_LOCK_TIMEOUT,
            timeout: limits::DEFAULT_TIMEOUT,
            auth_delay: limits::DEFAULT_AUTH_DELAY,
            max_auth_failures: limits::DEFAULT_MAX_AUTH_FAILURES,
            log: Target::Syslog,
            login_user: limits::DEFAULT_LOGIN_USER.into(),
            auth: Auth::Shadow,
            first_valid_uid: limits::DEFAULT_FIRST_VALID_UID,
        }
    }
}

/// A bad command line: the reason, and where the log should go (the last valid
/// `--log` anywhere on the command line, before or after the error).
#[derive(Debug)]
pub struct BadArguments {
    pub reason: String,
    pub log: Target,
}

/// The longest time an option accepts: a week, far beyond any sensible setting and
/// well inside what poll(2) can wait.
const MAX_SECONDS: u64 = 7 * 24 * 3600;

/// The options that take a value, as lexopt reads them below: the first pass
/// skips their value, so that `--user --log` never reads as a `--log`.
const TAKES_A_VALUE: [&str; 12] = [
    "--login-user",
    "--auth",
    "--first-valid-uid",
    "--passwd-file",
    "--mailbox",
    "--user",
    "--locks",
    "--lock-timeout",
    "--timeout",
    "--auth-delay",
    "--max-auth-failures",
    "--log",
];

/// The first pass: the last valid `--log` anywhere on the command line, so that
/// an error anywhere is logged where the operator asked, even before `--log`.
fn log_target(args: &[std::ffi::OsString]) -> Option<Target> {
    let mut found = None;
    let mut args = args.iter().map(|arg| arg.to_str());
    while let Some(arg) = args.next() {
        let value = match arg {
            Some("--") => break,
            Some("--log") => args.next().flatten(),
            Some(arg) if arg.starts_with("--log=") => arg.strip_prefix("--log="),
            Some(arg) if TAKES_A_VALUE.contains(&arg) => {
                args.next();
                None
            }
            _ => None,
        };
        if let Some(target) = value.and_then(|value| Target::parse(value).ok()) {
            found = Some(target);
        }
    }
    found
}

pub fn parse(args: impl IntoIterator<Item = std::ffi::OsString>) -> Result<Request, BadArguments> {
    let args: Vec<std::ffi::OsString> = args.into_iter().collect();
    let log = log_target(&args);
    let mut options = Options::default();
    let mut check = false;
    let mut auth = None;
    let mut parser = lexopt::Parser::from_args(args);
    let result = (|| -> Result<Option<Request>, String> {
        use lexopt::prelude::*;
        while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
            match arg {
                Long("help") | Short('h') => return Ok(Some(Request::Help)),
                Long("version") | Short('V') => return Ok(Some(Request::Version)),
                Long("hash-password") => return Ok(Some(Request::HashPassword)),
                Long("check") => check = true,
                Long("passwd-file") => {
                    options.passwd_file = Some(PathBuf::from(string_value(&mut parser)?))
                }
                Long("mailbox") => options.mailbox = Template::parse(&string_value(&mut parser)?)?,
                Long("user") => options.user = Some(string_value(&mut parser)?),
                Long("locks") => options.locks = Methods::parse(&string_value(&mut parser)?)?,
                Long("lock-timeout") => {
                    options.lock_timeout = seconds("--lock-timeout", &string_value(&mut parser)?)?
                }
                Long("timeout") => {
                    options.timeout = seconds("--timeout", &string_value(&mut parser)?)?
                }
                Long("auth-delay") => {
                    options.auth_delay = seconds("--auth-delay", &string_value(&mut parser)?)?
                }
                Long("max-auth-failures") => {
                    let text = string_value(&mut parser)?;
                    options.max_auth_failures = match text.parse::<u32>() {
                        Ok(n) if n >= 1 => n,
                        _ => {
                            return Err(format!(
                                "--max-auth-failures {text:?}: expected a whole number from 1"
                            ))
                        }
                    }
                }
                Long("log") => options.log = Target::parse(&string_value(&mut parser)?)?,
                Long("login-user") => options.login_user = string_value(&mut parser)?,
                Long("auth") => auth = Some(Auth::parse(&string_value(&mut parser)?)?),
                Long("first-valid-uid") => {
                    let text = string_value(&mut parser)?;
                    options.first_valid_uid = text.parse::<u32>().map_err(|_| {
                        format!("--first-valid-uid {text:?}: expected a whole number")
                    })?
                }
                other => return Err(other.unexpected().to_string()),
            }
        }
        match (&options.passwd_file, auth) {
            (Some(_), Some(_)) => {
                return Err("--auth is for system accounts; it cannot go with --passwd-file".into())
            }
            (None, Some(auth)) => options.auth = auth,
            _ => {}
        }
        if options.passwd_file.is_none() && options.user.is_some() {
            return Err("--user is for virtual users and goes with --passwd-file; system accounts are served as themselves".into());
        }
        if options.passwd_file.is_some() && options.mailbox.uses_home() {
            return Err(
                "%h in --mailbox is the home of a system account; virtual users have none".into(),
            );
        }
        Ok(None)
    })();
    match result {
        Ok(Some(request)) => Ok(request),
        Ok(None) if check => Ok(Request::Check(options)),
        Ok(None) => Ok(Request::Serve(options)),
        Err(reason) => Err(BadArguments {
            reason,
            log: log.unwrap_or(options.log),
        }),
    }
}

fn string_value(parser: &mut lexopt::Parser) -> Result<String, String> {
    let value = parser.value().map_err(|e| e.to_string())?;
    value
        .into_string()
        .map_err(|v| format!("{v:?} is not valid UTF-8"))
}

fn seconds(option: &str, text: &str) -> Result<Duration, String> {
    match text.parse::<u64>() {
        Ok(n) if n <= MAX_SECONDS => Ok(Duration::from_secs(n)),
        _ => Err(format!(
            "{option} {text:?}: expected whole seconds from 0 to {MAX_SECONDS}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_strs(args: &[&str]) -> Result<Request, BadArguments> {
        parse(args.iter().map(|a| a.into()))
    }

    #[test]
    fn defaults_and_values() {
        let Ok(Request::Serve(options)) =
            parse_strs(&["--timeout", "0", "--locks=fcntl,flock", "--log", "none"])
        else {
            panic!("should parse");
        };
        assert_eq!(options.timeout, Duration::ZERO);
        assert_eq!(
            options.locks,
            Methods {
                fcntl: true,
                dotlock: false,
                flock: true
            }
        );
        assert_eq!(options.log, Target::None);
        assert_eq!(options.lock_timeout, Duration::from_secs(30));
    }

    #[test]
    fn errors_keep_the_log_target_seen_so_far() {
        let error = parse_strs(&["--log", "stderr", "--timeout", "-1"]).unwrap_err();
        assert_eq!(error.log, Target::Stderr);
        assert!(error.reason.contains("--timeout"));
        assert!(parse_strs(&["--bogus"]).is_err());
        assert!(parse_strs(&["--locks", "fcntl,nfs"]).is_err());
        assert!(parse_strs(&["--mailbox", "/var/mail/x"]).is_err());
        assert!(parse_strs(&["extra"]).is_err());
    }

    #[test]
    fn log_takes_effect_wherever_it_stands() {
        for args in [
            &["--bogus", "--log", "stderr"][..],
            &["--timeout", "x", "--log=stderr"],
            &["--log", "none", "--bogus", "--log", "stderr"],
            &["--log", "stderr", "--log", "file"],
        ] {
            assert_eq!(
                parse_strs(args).unwrap_err().log,
                Target::Stderr,
                "{args:?}"
            );
        }
        // A value of another option is not a --log.
        let error = parse_strs(&["--user", "--log", "stderr", "--bogus"]).unwrap_err();
        assert_eq!(error.log, Target::Syslog);
        assert_eq!(parse_strs(&["--bogus"]).unwrap_err().log, Target::Syslog);
    }
}
