//! The monitor: the half of a session that is started as root (under inetd or
//! systemd) and stays root only to verify passwords.
//!
//! What runs here as root, and nothing else: reading the passwd-file or
//! setting up the system-account back end, parsing the login child's
//! length-prefixed requests (`pop1d::privsep::message`), checking the user
//! name with USER's rules and the password (through the same `Session` that
//! will serve the user), logging the attempt, the failure delay and count, and
//! becoming the account. The client's other bytes that came with a request are
//! not looked at until then. No mailbox is opened here before the uid changes.

use std::fs::File;
use std::os::fd::AsFd;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use nix::poll::PollFlags;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{Pid, User};
use zeroize::Zeroizing;

use pop1d::cli::Options;
use pop1d::edge::input::ClientInput;
use pop1d::edge::log::{Level, Log};
use pop1d::edge::output::ClientOutput;
use pop1d::edge::privilege::{self, Account};
use pop1d::edge::serve::{resume, Checked, Edges};
use pop1d::edge::signals::{Stop, Wait};
use pop1d::privsep::message::{self, Answer, Malformed, Request};
use pop1d::session::{Action, Backend, End, Reply, Session, StateName, Verdict};
use pop1d::store::{FileStore, Verifier};

use crate::login_child::READY;
use crate::{misconfigured, prepare, refuse};

pub fn run(
    options: &Options,
    log: &mut Log,
    rip: &str,
    child: Pid,
    requests: File,
    mut answers: File,
) -> ExitCode {
    let stop = match Stop::install() {
        Ok(stop) => stop,
        Err(error) => {
            drop(answers);
            let _ = reap(child);
            return refuse(
                log,
                misconfigured(&format!("cannot install signal handlers: {error}")),
            );
        }
    };
    let (store, verifier) = match prepare(options, &stop, log, rip) {
        Ok(prepared) => prepared,
        Err(error) => {
            // The child, told nothing, ends without a word; but should it have
            // refused already (a bad --login-user), the client has its -ERR.
            drop(answers);
            if reap(child) == Some(2) {
                log.line(Level::Error, &format!("cannot start: {:#}", error.error));
                return ExitCode::from(2);
            }
            return refuse(log, error);
        }
    };
    if std::io::Write::write_all(&mut answers, &[READY]).is_err() {
        return exit_like(reap_within(child, CHILD_GRACE));
    }
    let mut session = Session::new(store, options.max_auth_failures);
    loop {
        match stop.wait(requests.as_fd(), PollFlags::POLLIN, far_future()) {
            Wait::Ready => {}
            // The child, which holds the session until a login, ends it and
            // says so in the log.
            Wait::Stopped => {
                let _ = kill(child, Signal::SIGTERM);
                let _ = reap_within(child, CHILD_GRACE);
                return ExitCode::SUCCESS;
            }
            Wait::TimedOut | Wait::Failed(_) => {}
        }
        // Once a message begins, all of it must come soon: a child that sends
        // part of one and stops cannot hold this root process.
        let mut from_child = FromChild {
            file: &requests,
            stop: &stop,
            deadline: Instant::now() + MESSAGE_DEADLINE,
        };
        let request = match message::receive_request(&mut from_child) {
            Ok(request) => request,
            // The child ended the session before a login (QUIT, end of input,
            // too many failures, a timeout): its status is the session's. A
            // child killed by a signal failed, and is said so.
            Err(Malformed::Closed) => {
                return match waited_within(child, CHILD_GRACE) {
                    Ended::Exited(code) => exit_like(Some(code)),
                    Ended::Killed(signal) => {
                        log.line(
                            Level::Error,
                            &format!("login child failed: killed by {signal}"),
                        );
                        ExitCode::from(1)
                    }
                    Ended::Unknown => ExitCode::from(1),
                }
            }
            Err(Malformed::Bad(why)) => return child_failed(log, child, &why),
        };
        let checked = match check(&mut session, &request, &verifier, log, rip, options, &stop) {
            Ok(checked) => checked,
            Err(why) => return child_failed(log, child, &why),
        };
        let answer = match &checked {
            Outcome::Granted { .. } => Answer::Granted,
            Outcome::Denied => Answer::Denied,
            Outcome::Closing => Answer::DeniedClosing,
            Outcome::Unavailable => Answer::Unavailable,
        };
        if message::send_answer(&mut answers, answer).is_err() {
            return child_failed(log, child, "it went away before the answer");
        }
        match checked {
            Outcome::Denied | Outcome::Unavailable => {}
            Outcome::Closing => return exit_like(reap_within(child, CHILD_GRACE)),
            Outcome::Granted { user, replies } => {
                // The child flushes what it had to say and exits; only then
                // does this process speak to the client.
                if reap_within(child, CHILD_GRACE).is_none() {
                    return child_failed(log, child, "it did not end after the login");
                }
                // Nothing of the password back end (the passwd-file's hashes)
                // goes on into the user's session.
                drop((requests, answers, verifier));
                return serve_user(options, log, rip, session, &user, replies, request, stop);
            }
        }
    }
}

/// What became of one login attempt.
enum Outcome {
    Granted { user: String, replies: Vec<Reply> },
    Denied,
    Closing,
    Unavailable,
}

/// Verify one request through the session, as if the lines had come here: USER
/// with the given name (its rules applied again), then PASS.
fn check<B: Backend>(
    session: &mut Session<B>,
    request: &Request,
    verifier: &Verifier,
    log: &mut Log,
    rip: &str,
    options: &Options,
    stop: &Stop,
) -> Result<Outcome, String> {
    let mut user_line = b"USER ".to_vec();
    user_line.extend_from_slice(&request.given);
    session.handle_line(&user_line);
    if session.state() != StateName::Pass {
        return Err("a request without a user name".into());
    }
    let mut pass_line = Zeroizing::new(b"PASS ".to_vec());
    pass_line.extend_from_slice(&request.password);
    let Some(Action::Verify(credentials)) = session.handle_line(&pass_line).into_iter().next()
    else {
        return Err("a request the session did not take for a PASS".into());
    };
    // The failure delay counts from here: a refusal then takes the same time
    // whatever the back end spent on it (pam_unix refuses a locked account
    // without hashing), as long as the delay is longer than a check.
    let started = Instant::now();
    let verdict = match (verifier.verify(&credentials), &credentials.user) {
        // Right, but not an account pop1d may become: refused like a wrong
        // password to the client, and said plainly to the operator.
        (Verdict::Granted, Some(user)) => match servable(options, user) {
            Ok(()) => Verdict::Granted,
            Err(why) => {
                log.line(
                    Level::Error,
                    &format!(
                        "cannot serve user {}: {why}",
                        pop1d::edge::log::shown_user(user)
                    ),
                );
                Verdict::Denied
            }
        },
        (verdict, _) => verdict,
    };
    let user = credentials.user.clone();
    drop(credentials);
    let mut replies = Vec::new();
    let mut closing = false;
    for action in session.verdict(verdict) {
        match action {
            Action::Log(event) => log.event(&event, rip),
            Action::AuthDelay => stop.sleep(options.auth_delay.saturating_sub(started.elapsed())),
            Action::Reply(reply) => replies.push(reply),
            Action::Close(_) => closing = true,
            Action::Verify(_) | Action::SendMail => {}
        }
    }
    Ok(match (session.state(), user) {
        (StateName::Idle, Some(user)) => Outcome::Granted { user, replies },
        _ if closing => Outcome::Closing,
        _ if verdict == Verdict::Unavailable => Outcome::Unavailable,
        _ => Outcome::Denied,
    })
}

/// After the login: become the account, say `+OK`, and serve the session from
/// the client's bytes that came with the request on.
#[allow(clippy::too_many_arguments)]
fn serve_user(
    options: &Options,
    log: &mut Log,
    rip: &str,
    mut session: Session<FileStore>,
    user: &str,
    replies: Vec<Reply>,
    request: Request,
    stop: Stop,
) -> ExitCode {
    if let Err(error) = become_served_account(options, user) {
        log.line(
            Level::Error,
            &format!("cannot serve user {user}: {error:#}"),
        );
        let _ = std::io::Write::write_all(&mut std::io::stdout(), b"-ERR server misconfigured\r\n");
        return ExitCode::from(2);
    }
    if privilege::is_root() {
        log.line(Level::Error, "refusing to serve a mailbox as root");
        let _ = std::io::Write::write_all(&mut std::io::stdout(), b"-ERR server misconfigured\r\n");
        return ExitCode::from(2);
    }
    let refresh = crate::dotlock_refresh();
    let mut verify = |_: &_, _: &[u8]| Checked::Verdict(Verdict::Denied);
    let mut edges = Edges {
        input: ClientInput::stdin(options.timeout, refresh, stop.clone())
            .with_unread(&request.unread),
        output: ClientOutput::stdout(options.timeout, refresh, stop),
        log,
        rip,
        auth_delay: options.auth_delay,
        verify: &mut verify,
        log_logins: true,
    };
    drop(request);
    for reply in &replies {
        edges.output.queue(reply);
    }
    let end = resume(&mut session, &mut edges);
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

/// Whether a system account that gave the right password may be served: it is
/// the account of exactly that name (a case-blind name service or a PAM module
/// could map another name to it), not root, not below --first-valid-uid, and
/// its own group is neither root's nor the spool's (that group would then be
/// effective for the whole session). Virtual users always may.
fn servable(options: &Options, user: &str) -> Result<(), String> {
    if options.passwd_file.is_some() {
        return Ok(());
    }
    let account = User::from_name(user)
        .map_err(|e| format!("cannot look up the account: {e}"))?
        .ok_or("no such account")?;
    if account.name != user {
        return Err(format!("the name service calls it {:?}", account.name));
    }
    if account.uid.is_root() || account.uid.as_raw() < options.first_valid_uid {
        return Err(format!("uid {} is below --first-valid-uid", account.uid));
    }
    if account.gid.as_raw() == 0 || Some(account.gid) == crate::spool_group(options) {
        return Err(format!(
            "its primary group {} is root's or the mail spool's",
            account.gid
        ));
    }
    Ok(())
}

/// The account this session is served as: the system account itself, or the
/// `--user` account of virtual users. Not root, nothing changes.
fn become_served_account(options: &Options, user: &str) -> anyhow::Result<()> {
    if options.passwd_file.is_some() {
        return match &options.user {
            Some(account) => privilege::become_user(account),
            None => Ok(()),
        };
    }
    let account = User::from_name(user)
        .context("cannot look up the account")?
        .context("no such account")?;
    if account.uid.is_root() || account.uid.as_raw() < options.first_valid_uid {
        anyhow::bail!("uid {} is below --first-valid-uid", account.uid);
    }
    let spool_group = crate::spool_group(options);
    privilege::become_account(
        &Account {
            name: user,
            uid: account.uid,
            gid: account.gid,
        },
        spool_group,
    )
}

/// How the login child ended.
enum Ended {
    Exited(i32),
    Killed(Signal),
    Unknown,
}

/// Wait for the child to end.
fn waited(child: Pid) -> Ended {
    loop {
        match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, code)) => return Ended::Exited(code),
            Ok(WaitStatus::Signaled(_, signal, _)) => return Ended::Killed(signal),
            Err(nix::errno::Errno::EINTR) | Ok(_) => continue,
            Err(_) => return Ended::Unknown,
        }
    }
}

/// Wait for the child to end; its exit code, if it exited.
fn reap(child: Pid) -> Option<i32> {
    match waited(child) {
        Ended::Exited(code) => Some(code),
        Ended::Killed(_) | Ended::Unknown => None,
    }
}

/// How long the login child has to end once its part is over (a login, a
/// refusal that closes, its pipe closed, a stop): it has nothing left to do
/// but flush a reply. After that it is killed, so that it cannot hold this
/// root process.
const CHILD_GRACE: Duration = Duration::from_secs(5);

/// How long the rest of a request may take once its first byte came.
const MESSAGE_DEADLINE: Duration = Duration::from_secs(10);

/// [`waited`], but for `grace` at the most; then the child is killed.
fn waited_within(child: Pid, grace: Duration) -> Ended {
    let deadline = Instant::now() + grace;
    loop {
        match waitpid(child, Some(nix::sys::wait::WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Ok(WaitStatus::StillAlive) => {
                let _ = kill(child, Signal::SIGKILL);
                return waited(child);
            }
            Ok(WaitStatus::Exited(_, code)) => return Ended::Exited(code),
            Ok(WaitStatus::Signaled(_, signal, _)) => return Ended::Killed(signal),
            Err(nix::errno::Errno::EINTR) | Ok(_) => continue,
            Err(_) => return Ended::Unknown,
        }
    }
}

/// [`reap`], but for `grace` at the most; then the child is killed.
fn reap_within(child: Pid, grace: Duration) -> Option<i32> {
    match waited_within(child, grace) {
        Ended::Exited(code) => Some(code),
        Ended::Killed(_) | Ended::Unknown => None,
    }
}

/// The child's end of the request pipe, read under the stop signal and a
/// deadline.
struct FromChild<'a> {
    file: &'a File,
    stop: &'a Stop,
    deadline: Instant,
}

impl std::io::Read for FromChild<'_> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        match self
            .stop
            .wait(self.file.as_fd(), PollFlags::POLLIN, self.deadline)
        {
            Wait::Ready => std::io::Read::read(&mut &*self.file, buffer),
            Wait::TimedOut => Err(std::io::ErrorKind::TimedOut.into()),
            Wait::Stopped => Err(std::io::Error::other("stopped by a signal")),
            Wait::Failed(errno) => Err(errno.into()),
        }
    }
}

/// Exit as the child did: the session ended there.
fn exit_like(code: Option<i32>) -> ExitCode {
    ExitCode::from(code.and_then(|c| u8::try_from(c).ok()).unwrap_or(1))
}

fn child_failed(log: &mut Log, child: Pid, why: &str) -> ExitCode {
    log.line(Level::Error, &format!("login child failed: {why}"));
    let _ = kill(child, Signal::SIGKILL);
    let _ = reap(child);
    ExitCode::from(1)
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(365 * 24 * 3600)
}
