//! pop1d: an RFC 918 (POP1) server for inetd, xinetd and systemd socket units.
//!
//! One process serves one session on stdin/stdout. The layers, from the wire down:
//!
//! - [`edge`]: file descriptors, poll(2) timeouts, the log, privileges (thin);
//! - [`session`]: the protocol's state machine, sans I/O;
//! - [`store`] and [`auth`]: who may log in, and which mailbox is theirs;
//! - [`mailbox`]: mbox files: open, count, send with CR LF, delete in place;
//! - [`lock`]: the one module that locks a mailbox (fcntl, dot-lock, flock);
//! - [`memory`], beside them all: large buffers and room checks that fail with
//!   an error where an allocation would abort.
//!
//! The types that cross the session's boundary are in `boundary`, re-exported
//! by [`session`]; an in-memory world for tests and fuzzing is in `testing`
//! (feature `testing`).
//! pop1d never starts a thread: periodic work (touching a dot-lock) is a
//! deadline in the same poll(2) loop that waits for the client.
//!
//! Data goes down once and comes back once: the session never reaches past the
//! mailbox layer into locks, and the lock module never knows about the protocol.

pub mod auth;
mod boundary;
pub mod cli;
mod command;
pub mod edge;
mod fileid;
pub mod limits;
pub mod lines;
pub mod lock;
pub mod mailbox;
pub mod memory;
pub mod privsep;
pub mod session;
pub mod store;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod username;
