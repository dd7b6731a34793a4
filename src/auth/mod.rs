//! Password back ends: a passwd-file of virtual users ([`PasswdFile`]), and system
//! accounts through /etc/shadow ([`Shadow`]) or PAM (`Pam`, feature `pam`), each
//! answering through the same `verify(user, password)`-shaped path. They run in
//! the root monitor only.
//!
//! One verify path for every case: an unknown user, a refused entry and a wrong
//! password all cost one hash verification and give the same answer, so neither a
//! reply nor its timing tells whether a user exists. Never log or keep a password.

mod crypt;
#[cfg(feature = "pam")]
mod pam;
mod passwd_file;
mod shadow;
pub mod system;

pub use crypt::{
    new_default_hash, new_yescrypt_hash, Hash, Unverifiable, CRYPT_MAX_PASSPHRASE_SIZE,
};
#[cfg(feature = "pam")]
pub use pam::Pam;
pub use passwd_file::{LoadError, PasswdFile, CRYPT_SCHEMES};
pub use shadow::{Outcome, Refusal, Shadow};
