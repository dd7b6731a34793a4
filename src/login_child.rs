//! The login child: the unprivileged half of a session until a login succeeds.
//!
//! It becomes `--login-user` before it reads a byte from the client, waits for
//! the monitor to be ready, greets, and runs the AUTH and PASS states. At each
//! PASS it sends the monitor the name, the password and the bytes it read past
//! the PASS line, and waits for the answer; it never holds a password hash and
//! never opens a mailbox. When the password is right it flushes its replies and
//! exits: the monitor writes `+OK` and serves the rest.

use std::fs::File;
use std::io::Read;
use std::process::ExitCode;
use std::time::Duration;

use pop1d::cli::Options;
use pop1d::edge::input::ClientInput;
use pop1d::edge::log::{Level, Log};
use pop1d::edge::output::ClientOutput;
use pop1d::edge::privilege::{self, LoginRules};
use pop1d::edge::serve::{serve, Checked, Edges};
use pop1d::edge::signals::Stop;
use pop1d::privsep::message::{self, Answer};
use pop1d::session::{Credentials, End, Session, Verdict};
use pop1d::store::NoMailboxes;

use crate::{misconfigured, refuse, StartError};

/// The byte the monitor sends once it is ready to verify.
pub const READY: u8 = b'R';

pub fn run(
    options: &Options,
    log: &mut Log,
    rip: &str,
    mut requests: File,
    mut answers: File,
) -> ExitCode {
    // Log lines carry this process's own pid.
    *log = Log::open(options.log);
    let fixed_dir = options.mailbox.fixed_dir();
    let rules = LoginRules {
        not_user: options.user.as_deref(),
        mailbox_dir: fixed_dir.as_deref(),
    };
    let confined = privilege::become_login_user(&options.login_user, &rules)
        .and_then(|()| privilege::confine_login_child());
    if let Err(error) = confined {
        // Nothing has reached the client yet; the monitor sees this child end
        // before any request, and exits with its status.
        return refuse(
            log,
            StartError {
                reply: "server misconfigured",
                error,
            },
        );
    }
    // The monitor tells the client itself when it cannot start; this child
    // ends without a word, and not with 2, which says it refused itself.
    let mut ready = [0u8];
    if answers.read_exact(&mut ready).is_err() || ready[0] != READY {
        return ExitCode::from(1);
    }
    let stop = match Stop::install() {
        Ok(stop) => stop,
        Err(error) => {
            return refuse(
                log,
                misconfigured(&format!("cannot install signal handlers: {error}")),
            )
        }
    };
    let mut session = Session::new(NoMailboxes, options.max_auth_failures);
    let mut verify = |credentials: &Credentials, unread: &[u8]| {
        ask_monitor(&mut requests, &mut answers, credentials, unread)
    };
    let refresh = pop1d::limits::DOTLOCK_REFRESH;
    let mut edges = Edges {
        input: ClientInput::stdin(options.timeout, refresh, stop.clone()),
        output: ClientOutput::stdout(options.timeout, refresh, stop),
        log,
        rip,
        // The monitor waits the delay before it answers.
        auth_delay: Duration::ZERO,
        verify: &mut verify,
        log_logins: false,
    };
    let end = serve(&mut session, &mut edges);
    drop(edges);
    if end != End::HandedOver {
        log.line(
            Level::Info,
            &format!("disconnect: {}, rip={rip}", end.describe()),
        );
    }
    match end {
        End::MailboxFault | End::MonitorGone => ExitCode::from(1),
        _ => ExitCode::SUCCESS,
    }
}

fn ask_monitor(
    requests: &mut File,
    answers: &mut File,
    credentials: &Credentials,
    unread: &[u8],
) -> Checked {
    let sent = message::send_request(requests, &credentials.given, &credentials.password, unread);
    if sent.is_err() {
        return Checked::MonitorGone;
    }
    match message::receive_answer(answers) {
        Ok(Answer::Granted) => Checked::HandedOver,
        // The monitor counts the failures too, and ends the session at the
        // same one: the child's own count closes it here.
        Ok(Answer::Denied | Answer::DeniedClosing) => Checked::Verdict(Verdict::Denied),
        Ok(Answer::Unavailable) => Checked::Verdict(Verdict::Unavailable),
        Err(_) => Checked::MonitorGone,
    }
}
