//! The session loop: client lines in, the session's actions carried out.

use std::time::Duration;

use super::input::{ClientInput, Input};
use super::log::{Level, Log};
use super::output::ClientOutput;
use crate::limits::{LINGER, MAX_LINE};
use crate::session::{Action, Backend, End, Session, GREETING};

pub struct Edges<'a> {
    pub input: ClientInput,
    pub output: ClientOutput,
    pub log: &'a mut Log,
    pub rip: &'a str,
    pub auth_delay: Duration,
}

/// Serve one session to its end; returns how it ended.
pub fn serve<B: Backend>(session: &mut Session<B>, edges: &mut Edges<'_>) -> End {
    edges.output.queue(&GREETING);
    loop {
        let output = &mut edges.output;
        let actions = match edges.input.next(|| {
            // A failed flush shows up again at the next write; waiting for input
            // then ends with end of input or the timeout.
            let _ = std::io::Write::flush(output);
        }) {
            Input::Line(range) => session.handle_line(edges.input.line(range)),
            Input::TooLong => session.line_too_long(),
            Input::EndOfInput => session.end_of_input(),
            Input::TimedOut => session.timed_out(),
            Input::Terminated => session.stop(End::Terminated),
            Input::Failed(error) => {
                edges.log.line(
                    Level::Warning,
                    &format!("cannot read from the client: {error}"),
                );
                session.stop(End::ClientGone)
            }
        };
        if let Some(end) = perform(session, actions, edges) {
            if edges.output.shutdown_write() {
                edges.input.drain(LINGER, MAX_LINE * 64);
            }
            return end;
        }
    }
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
            Action::Log(event) => edges.log.event(&event, edges.rip),
            Action::AuthDelay => {
                let _ = std::io::Write::flush(&mut edges.output);
                std::thread::sleep(edges.auth_delay);
            }
            Action::SendMail => pending.extend(session.send_mail(&mut edges.output)),
            Action::Close(end) => {
                let _ = std::io::Write::flush(&mut edges.output);
                return Some(end);
            }
        }
    }
    None
}
