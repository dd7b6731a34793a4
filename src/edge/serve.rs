//! The session loop: client lines in, the session's actions carried out.
//!
//! Thin: every protocol decision is the session's. This loop decides only what
//! the outside world did (a line, silence, a signal, a failed write) and hands it
//! on in the session's own terms. It never drops a reply while the session goes
//! on: a reply that cannot be written ends the session.

use std::time::Duration;

use super::input::{ClientInput, Input};
use super::log::{Level, Log};
use super::output::ClientOutput;
use crate::limits::{LINGER, MAX_LINE};
use crate::session::{Action, Backend, Credentials, End, Session, Verdict, GREETING};

pub struct Edges<'a> {
    pub input: ClientInput,
    pub output: ClientOutput,
    pub log: &'a mut Log,
    pub rip: &'a str,
    pub auth_delay: Duration,
    /// Answers the session's password checks, given the client's bytes read
    /// past the PASS line.
    pub verify: &'a mut dyn FnMut(&Credentials, &[u8]) -> Checked,
    /// False in a login child: the monitor, which verifies, logs the logins.
    pub log_logins: bool,
}

/// What became of a password check.
pub enum Checked {
    Verdict(Verdict),
    /// Granted, and another process serves the rest of the session.
    HandedOver,
    /// The process that verifies is gone: nothing more can happen.
    MonitorGone,
}

/// Serve one session to its end, beginning with the greeting; returns how it
/// ended.
pub fn serve<B: Backend>(session: &mut Session<B>, edges: &mut Edges<'_>) -> End {
    edges.output.queue(&GREETING);
    resume(session, edges)
}

/// Serve a session that is already under way (one that logged in elsewhere).
pub fn resume<B: Backend>(session: &mut Session<B>, edges: &mut Edges<'_>) -> End {
    loop {
        let actions = match next_input(session, edges) {
            Ok(Input::Line(range)) => session.handle_line(edges.input.line(range)),
            Ok(Input::TooLong) => session.line_too_long(),
            Ok(Input::EndOfInput) => session.end_of_input(),
            Ok(Input::TimedOut) => session.timed_out(),
            Ok(Input::Terminated) => stop(session, End::Terminated),
            Ok(Input::Failed(error)) => {
                edges.log.line(
                    Level::Warning,
                    &format!("cannot read from the client: {error}"),
                );
                stop(session, End::ClientGone)
            }
            Err(end) => stop(session, end),
        };
        if let Some(end) = perform(session, actions, edges) {
            // Handed over, the connection goes on in the monitor.
            if end != End::HandedOver && edges.output.shutdown_write() {
                edges.input.drain(LINGER, MAX_LINE * 64);
            }
            return end;
        }
    }
}

/// The next input; before waiting for the client, the replies so far go out.
/// `Err` when they cannot: the session must end so.
fn next_input<B: Backend>(session: &mut Session<B>, edges: &mut Edges<'_>) -> Result<Input, End> {
    // Each step is a chance to keep the locks fresh, however busy the client
    // keeps pop1d (cheap when nothing is due).
    session.keep_alive();
    if let Some(input) = edges.input.ready() {
        return Ok(input);
    }
    let mut keep_alive = || session.keep_alive();
    edges
        .output
        .flush(&mut keep_alive)
        .map_err(|failure| failure.end())?;
    Ok(edges.input.wait(&mut keep_alive))
}

fn perform<B: Backend>(
    session: &mut Session<B>,
    actions: Vec<Action>,
    edges: &mut Edges<'_>,
) -> Option<End> {
    let mut pending = std::collections::VecDeque::from(actions);
    while let Some(action) = pending.pop_front() {
        match action {
            Action::Reply(reply) => edges.output.queue(&reply),
            Action::Log(event) if edges.log_logins || !event.is_about_login() => {
                edges.log.event(&event, edges.rip)
            }
            Action::Log(_) => {}
            Action::Verify(credentials) => {
                match (edges.verify)(&credentials, edges.input.unread()) {
                    Checked::Verdict(verdict) => pending.extend(session.verdict(verdict)),
                    Checked::HandedOver => {
                        let _ = edges.output.flush(&mut || {});
                        return Some(End::HandedOver);
                    }
                    Checked::MonitorGone => {
                        pending = stop(session, End::MonitorGone).into();
                    }
                }
            }
            Action::AuthDelay => {
                if let Err(failure) = edges.output.flush(&mut || session.keep_alive()) {
                    pending = stop(session, failure.end()).into();
                    continue;
                }
                edges.input.pause(edges.auth_delay);
            }
            Action::SendMail => pending.extend(session.send_mail(&mut edges.output)),
            Action::Close(end) => {
                let _ = edges.output.flush(&mut || {});
                return Some(end);
            }
        }
    }
    None
}

/// End the session for a reason outside the protocol: the session's own
/// actions, and a close in any case (a closed session has none left to give).
fn stop<B: Backend>(session: &mut Session<B>, end: End) -> Vec<Action> {
    let mut actions = session.stop(end);
    if !matches!(actions.last(), Some(Action::Close(_))) {
        actions.push(Action::Close(end));
    }
    actions
}
