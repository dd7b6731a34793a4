//! Password back ends. Today: a passwd-file of virtual users. System accounts come
//! later and will answer through the same [`PasswdFile::verify`]-shaped path.
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
pub use passwd_file::{LoadError, PasswdFile};
pub use shadow::{Outcome, Refusal, Shadow};
