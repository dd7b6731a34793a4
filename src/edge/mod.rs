//! The binary's edges: the client's file descriptors, the log, privileges, the
//! peer's address, and the loop that connects them to the session. Thin by design:
//! every decision about the protocol is made in [`crate::session`].

pub mod input;
pub mod log;
pub mod output;
pub mod peer;
pub mod privilege;
pub mod serve;
pub mod signals;
