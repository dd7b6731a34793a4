//! Signals that end a session. Their handlers only set a flag and write a byte to
//! a self-pipe that every poll(2) of the session also watches, so a signal can
//! never slip in between a check and a wait; the session then ends through the
//! same path as any other, which releases the locks and removes the dot-lock.
//!
//! Caught: SIGTERM (systemd, inetd going down), SIGHUP, SIGINT, SIGQUIT, SIGALRM,
//! SIGUSR1, SIGUSR2 and SIGXCPU (xinetd's rlimit_cpu): left at their default, each
//! would kill pop1d and leave its dot-lock behind.
//!
//! Ignored: SIGXFSZ (a file-size limit, `prlimit --fsize`, xinetd's
//! rlimit_fsize). A write past the limit then fails with EFBIG, an I/O error the
//! lock and mailbox code already answer, where the default action would kill
//! pop1d halfway through writing its dot-lock.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use signal_hook::consts::signal::{
    SIGALRM, SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGXCPU,
};

const CAUGHT: [i32; 8] = [
    SIGTERM, SIGHUP, SIGINT, SIGQUIT, SIGALRM, SIGUSR1, SIGUSR2, SIGXCPU,
];

/// Tells whether a signal asked pop1d to stop, and wakes any poll(2) that waits.
#[derive(Clone)]
pub struct Stop {
    requested: Arc<AtomicBool>,
    wake: Arc<UnixStream>,
}

impl Stop {
    /// Install the handlers. Call once, before the session starts.
    pub fn install() -> io::Result<Stop> {
        ignore_file_size_signal()?;
        let (wake, ring) = UnixStream::pair()?;
        wake.set_nonblocking(true)?;
        ring.set_nonblocking(true)?;
        let requested = Arc::new(AtomicBool::new(false));
        for signal in CAUGHT {
            signal_hook::flag::register(signal, Arc::clone(&requested))?;
            signal_hook::low_level::pipe::register(signal, ring.try_clone()?)?;
        }
        Ok(Stop {
            requested,
            wake: Arc::new(wake),
        })
    }

    /// The flag the handlers set, for code that cannot poll (the lock back-off).
    pub fn flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.requested)
    }

    pub fn requested(&self) -> bool {
        self.requested.load(Ordering::Relaxed)
    }

    /// Readable once a signal arrived: add it to every poll(2).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.wake.as_fd()
    }
}

/// Set SIGXFSZ to SIG_IGN, so that a write beyond RLIMIT_FSIZE fails with EFBIG.
fn ignore_file_size_signal() -> io::Result<()> {
    use nix::sys::signal::{signal, SigHandler, Signal};
    // SAFETY: SIG_IGN installs no handler function, so nothing can run in signal
    // context; signal(2) only changes this process's disposition of SIGXFSZ.
    unsafe { signal(Signal::SIGXFSZ, SigHandler::SigIgn) }
        .map(drop)
        .map_err(io::Error::from)
}

/// How a wait for the client ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Wait {
    Ready,
    TimedOut,
    Stopped,
    Failed(nix::errno::Errno),
}

impl Stop {
    /// Wait until `fd` is ready for `events`, the deadline passes, or a signal asks
    /// us to stop, whichever comes first.
    pub fn wait(&self, fd: BorrowedFd<'_>, events: PollFlags, deadline: Instant) -> Wait {
        loop {
            if self.requested() {
                return Wait::Stopped;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let mut fds = [
                PollFd::new(fd, events),
                PollFd::new(self.fd(), PollFlags::POLLIN),
            ];
            match poll(&mut fds, poll_timeout(left)) {
                Ok(0) => return Wait::TimedOut,
                Ok(_) if fds[1].any() == Some(true) => return Wait::Stopped,
                Ok(_) => return Wait::Ready,
                Err(Errno::EINTR) => continue,
                Err(errno) => return Wait::Failed(errno),
            }
        }
    }
}

impl Stop {
    /// [`Stop::wait`], waking every `tick` meanwhile to call `keep_alive`: how a
    /// held mailbox's dot-lock stays fresh while pop1d waits for the client.
    pub fn wait_keeping_alive(
        &self,
        fd: BorrowedFd<'_>,
        events: PollFlags,
        deadline: Instant,
        tick: Duration,
        keep_alive: &mut dyn FnMut(),
    ) -> Wait {
        loop {
            // On every pass, not only after a quiet tick: a client that wakes
            // pop1d more often than the tick must not starve the refresh.
            // Cheap when nothing is due.
            keep_alive();
            let next_tick = Instant::now() + tick;
            match self.wait(fd, events, deadline.min(next_tick)) {
                Wait::TimedOut if Instant::now() < deadline => {}
                other => return other,
            }
        }
    }

    /// Sleep for `pause`, or until a signal asks pop1d to stop.
    pub fn sleep(&self, pause: Duration) {
        let _ = self.wait(self.fd(), PollFlags::POLLIN, Instant::now() + pause);
    }
}

/// A poll(2) timeout from a duration, rounded up to whole milliseconds.
fn poll_timeout(left: Duration) -> PollTimeout {
    let millis = left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
    PollTimeout::try_from(millis).unwrap_or(PollTimeout::MAX)
}
