//! pop1d: an RFC 918 (POP1) server for inetd, xinetd and systemd socket units.
//!
//! One process serves one session on stdin/stdout. The layers, from the wire down:
//!
//! - [`edge`]: file descriptors, poll(2) timeouts, the log, privileges (thin);
//! - [`session`]: the protocol's state machine, sans I/O;
//! - [`store`] and [`auth`]: who may log in, and which mailbox is theirs;
//! - [`mailbox`]: mbox files: open, count, send with CR LF, delete in place;
//! - [`lock`]: the one module that locks a mailbox (fcntl, dot-lock, flock);
//! - [`memory`], beside them all: buffers, helper threads and room checks that
//!   fail with an error where an allocation would abort.
//!
//! Data goes down once and comes back once: the session never reaches past the
//! mailbox layer into locks, and the lock module never knows about the protocol.

pub mod auth;
pub mod cli;
pub mod command;
pub mod edge;
pub mod limits;
pub mod lines;
pub mod lock;
pub mod mailbox;
pub mod memory;
pub mod session;
pub mod store;
pub mod username;
