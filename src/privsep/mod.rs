//! Privilege separation, popa3d's model: a root monitor and an unprivileged
//! login child of the same binary. The child reads and parses the client's
//! lines until a PASS; the monitor verifies, and on success becomes the
//! account and serves the rest of the session. What crosses between them is
//! the small, strictly parsed [`message`].
//!
//! Pure protocol here; the processes themselves are made in `src/main.rs`.

pub mod message;
