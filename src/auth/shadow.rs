//! System accounts verified against the shadow file: `getspnam_r` for the entry,
//! libxcrypt for the hash (Debian's default is yescrypt).
//!
//! One verification on every path. Whatever the answer, exactly one hash is
//! computed: the account's own when its entry holds one pop1d can verify (even
//! when the account is then refused: locked, expired, or an empty password),
//! else a dummy of libxcrypt's default method and cost. So a refusal costs what
//! a wrong password for the same name costs, and an unknown name costs what a
//! wrong password for an account with a default hash costs.

use std::ffi::{CStr, CString};
use std::time::{SystemTime, UNIX_EPOCH};

use zeroize::Zeroizing;

use super::crypt::{Hash, Unverifiable};
use super::system;

/// Verifies passwords of system accounts against the shadow file.
#[derive(Debug)]
pub struct Shadow {
    first_valid_uid: u32,
    /// Verified in place of an account's own hash, so refusals cost the same.
    dummy: Hash,
}

/// Why a login was refused: for the operator's log only. The client gets the
/// same answer, after the same work, for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The name could never be an account's (USER's rules refused it).
    NoName,
    UnknownUser,
    Root,
    /// The uid is below `--first-valid-uid`.
    LowUid,
    NoShadowEntry,
    /// The hash starts with `!` or `*`.
    Locked,
    EmptyHash,
    /// A hash of a method pop1d does not verify, or a malformed one.
    UnusableHash,
    AccountExpired,
    PasswordExpired,
    /// The last change is day 0: the password must be changed first.
    MustChangePassword,
    EmptyPassword,
    WrongPassword,
}

/// What a verification found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Accepted,
    Refused(Refusal),
}

/// The fields of a shadow entry that decide a login. Days count from
/// 1970-01-01; -1 is an empty field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ShadowEntry {
    pub hash: String,
    pub last_change: i64,
    pub max: i64,
    pub expire: i64,
}

/// Where accounts come from: the system, or a test's fake.
pub(crate) trait Accounts {
    fn uid(&self, name: &str) -> Option<u32>;
    fn shadow(&self, name: &str) -> Result<Option<ShadowEntry>, Unverifiable>;
}

/// The system's accounts: `getpwnam_r` and `getspnam_r`.
struct System;

impl Accounts for System {
    fn uid(&self, name: &str) -> Option<u32> {
        system::lookup(name).map(|account| account.uid)
    }

    fn shadow(&self, name: &str) -> Result<Option<ShadowEntry>, Unverifiable> {
        read_shadow(name)
    }
}

const SHADOW_UNREADABLE: Unverifiable =
    Unverifiable("cannot read the shadow entry (getspnam_r failed: not root?)");

impl Shadow {
    /// The dummy hash is of a random password nobody knows, by libxcrypt's
    /// default method and cost (`crypt_gensalt` with a NULL prefix, what
    /// `passwd` and `chpasswd` use), not from /etc/login.defs. Hashing it once
    /// here costs one verification at start-up.
    pub fn new(first_valid_uid: u32) -> Result<Shadow, String> {
        Ok(Shadow {
            first_valid_uid,
            dummy: default_dummy()?,
        })
    }

    /// True only when the account exists, its uid is neither 0 nor below
    /// `first_valid_uid`, its shadow entry holds a hash that is neither locked
    /// nor empty, neither the account nor the password has expired, the
    /// password is not empty, and it matches. Every refusal costs one hash
    /// verification, like a wrong password. An error only for a server fault:
    /// the hash could not be computed, or the shadow file could not be read.
    pub fn verify(&self, user: Option<&str>, password: &[u8]) -> Result<bool, Unverifiable> {
        Ok(self.check(user, password)? == Outcome::Accepted)
    }

    /// [`Shadow::verify`], telling why a login was refused, for the log.
    pub fn check(&self, user: Option<&str>, password: &[u8]) -> Result<Outcome, Unverifiable> {
        self.check_with(&System, user, password, today(), |hash| {
            hash.verify(password)
        })
    }

    /// The decision, with the accounts, the day and the verification given.
    /// `verify` is called exactly once, on every path (it is `FnOnce`, and the
    /// one call is outside every branch).
    pub(crate) fn check_with(
        &self,
        accounts: &impl Accounts,
        user: Option<&str>,
        password: &[u8],
        today: i64,
        verify: impl FnOnce(&Hash) -> Result<bool, Unverifiable>,
    ) -> Result<Outcome, Unverifiable> {
        let (own_hash, refusal) = self.judge(accounts, user, password, today);
        let matched = verify(own_hash.as_ref().unwrap_or(&self.dummy));
        let refusal = refusal?;
        Ok(match (refusal, matched?) {
            (Some(refusal), _) => Outcome::Refused(refusal),
            (None, true) => Outcome::Accepted,
            (None, false) => Outcome::Refused(Refusal::WrongPassword),
        })
    }

    /// The hash to verify (`None`: the dummy) and the refusal, if the account
    /// is refused whatever the password; an error if the entry could not be
    /// read. Computes no hash.
    fn judge(
        &self,
        accounts: &impl Accounts,
        user: Option<&str>,
        password: &[u8],
        today: i64,
    ) -> (Option<Hash>, Result<Option<Refusal>, Unverifiable>) {
        let refuse = |refusal| (None, Ok(Some(refusal)));
        let Some(name) = user else {
            return refuse(Refusal::NoName);
        };
        // Root's and system accounts' entries are not even read.
        match accounts.uid(name) {
            None => return refuse(Refusal::UnknownUser),
            Some(0) => return refuse(Refusal::Root),
            Some(uid) if uid < self.first_valid_uid => return refuse(Refusal::LowUid),
            Some(_) => {}
        }
        let entry = match accounts.shadow(name) {
            Ok(Some(entry)) => entry,
            Ok(None) => return refuse(Refusal::NoShadowEntry),
            Err(fault) => return (None, Err(fault)),
        };
        // `usermod -L` and `passwd -l` put `!` before the hash: verify the hash
        // under it, so a locked account costs what it did unlocked.
        let unlocked = entry.hash.trim_start_matches('!');
        let hash = Hash::parse(unlocked);
        let refusal = if entry.hash.starts_with(['!', '*']) {
            Some(Refusal::Locked)
        } else if entry.hash.is_empty() {
            Some(Refusal::EmptyHash)
        } else if hash.is_none() {
            Some(Refusal::UnusableHash)
        } else if entry.expire >= 0 && today >= entry.expire {
            // As pam_unix: day 0 (`chage -E 0`) is expired too.
            Some(Refusal::AccountExpired)
        } else if entry.last_change == 0 {
            Some(Refusal::MustChangePassword)
        } else if entry.last_change > 0
            && entry.max >= 0
            && entry.last_change.saturating_add(entry.max) < today
        {
            Some(Refusal::PasswordExpired)
        } else if password.is_empty() {
            Some(Refusal::EmptyPassword)
        } else {
            None
        };
        (hash, Ok(refusal))
    }
}

/// The stand-in verified for a refused or unknown name: libxcrypt's default
/// method and cost, made without computing a hash ([`super::crypt::default_dummy`]).
pub(crate) fn default_dummy() -> Result<Hash, String> {
    super::crypt::default_dummy().map_err(|why| format!("cannot make the dummy hash: {why}"))
}

/// Days since 1970-01-01, as the shadow file counts them.
fn today() -> i64 {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    i64::try_from(seconds / 86_400).unwrap_or(i64::MAX)
}

/// The shadow entry of `name` through `getspnam_r`; `None` if there is none.
// `c_long` is `i64` only on 64-bit targets.
#[allow(clippy::useless_conversion)]
fn read_shadow(name: &str) -> Result<Option<ShadowEntry>, Unverifiable> {
    let Ok(c_name) = CString::new(name) else {
        return Ok(None);
    };
    let mut size = 1024;
    loop {
        // The buffer holds the hash: wiped when dropped.
        let mut buffer = Zeroizing::new(vec![0u8; size]);
        // SAFETY: `spwd` is a plain C struct of pointers and integers, for which
        // all zeroes is a valid value; getspnam_r fills it in.
        let mut entry: libc::spwd = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::spwd = std::ptr::null_mut();
        // SAFETY: `c_name` is NUL-terminated; `entry`, `buffer` (of exactly the
        // length passed) and `found` are writable and outlive the call. On
        // success `found` points at `entry`, whose strings point into `buffer`;
        // they are read below while both are alive.
        let status = unsafe {
            libc::getspnam_r(
                c_name.as_ptr(),
                &mut entry,
                buffer.as_mut_ptr().cast(),
                buffer.len(),
                &mut found,
            )
        };
        if status == libc::ERANGE && size < 1 << 20 {
            size *= 4;
            continue;
        }
        if found.is_null() {
            return match status {
                0 | libc::ENOENT => Ok(None),
                _ => Err(SHADOW_UNREADABLE),
            };
        }
        let hash = if entry.sp_pwdp.is_null() {
            String::new()
        } else {
            // SAFETY: a non-NULL `sp_pwdp` points at a NUL-terminated string in
            // `buffer`, alive here.
            let bytes = unsafe { CStr::from_ptr(entry.sp_pwdp) }.to_bytes();
            // A hash is ASCII: anything else will not parse, and is refused.
            String::from_utf8_lossy(bytes).into_owned()
        };
        return Ok(Some(ShadowEntry {
            hash,
            last_change: entry.sp_lstchg.into(),
            max: entry.sp_max.into(),
            expire: entry.sp_expire.into(),
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::collections::HashMap;

    /// `mkpasswd -m yescrypt` of "right".
    const RIGHT: &str = "$y$j9T$LVoUUMZIxyudELNswJYZ21$p1GNqmQ5Syky40Bc9ctNPpMxfH4JhLApINfHfMF2JJ0";
    const TODAY: i64 = 20_000;

    #[derive(Default)]
    struct Fake {
        uids: HashMap<&'static str, u32>,
        entries: HashMap<&'static str, Result<ShadowEntry, Unverifiable>>,
        shadow_reads: Cell<usize>,
    }

    impl Fake {
        fn with(mut self, name: &'static str, uid: u32, hash: &str) -> Fake {
            self.uids.insert(name, uid);
            self.entries.insert(name, Ok(entry(hash)));
            self
        }

        fn entry(mut self, name: &'static str, uid: u32, entry: ShadowEntry) -> Fake {
            self.uids.insert(name, uid);
            self.entries.insert(name, Ok(entry));
            self
        }
    }

    fn entry(hash: &str) -> ShadowEntry {
        ShadowEntry {
            hash: hash.to_owned(),
            last_change: TODAY - 10,
            max: 99_999,
            expire: -1,
        }
    }

    impl Accounts for Fake {
        fn uid(&self, name: &str) -> Option<u32> {
            self.uids.get(name).copied()
        }

        fn shadow(&self, name: &str) -> Result<Option<ShadowEntry>, Unverifiable> {
            self.shadow_reads.set(self.shadow_reads.get() + 1);
            self.entries.get(name).cloned().transpose()
        }
    }

    fn shadow() -> Shadow {
        Shadow::new(1000).unwrap()
    }

    /// Check with the real verification, counting the calls and noting which
    /// hash was verified.
    fn run(
        shadow: &Shadow,
        fake: &Fake,
        user: Option<&str>,
        password: &[u8],
    ) -> (Result<Outcome, Unverifiable>, usize, String) {
        let calls = Cell::new(0);
        let verified = std::cell::RefCell::new(String::new());
        let outcome = shadow.check_with(fake, user, password, TODAY, |hash| {
            calls.set(calls.get() + 1);
            *verified.borrow_mut() = format!("{hash:?}");
            hash.verify(password)
        });
        (outcome, calls.get(), verified.into_inner())
    }

    #[test]
    fn the_dummy_is_libxcrypts_default() {
        let shadow = shadow();
        assert_eq!(shadow.dummy.settings(), "$y$j9T");
        assert_ne!(
            format!("{:?}", Shadow::new(1).unwrap().dummy),
            format!("{:?}", shadow.dummy)
        );
    }

    #[test]
    fn the_right_password_of_a_valid_account_is_accepted() {
        let shadow = shadow();
        let fake = Fake::default().with("fred", 1000, RIGHT);
        let (outcome, calls, verified) = run(&shadow, &fake, Some("fred"), b"right");
        assert_eq!(outcome, Ok(Outcome::Accepted));
        assert_eq!(calls, 1);
        assert!(verified.contains(RIGHT));
        let (outcome, calls, _) = run(&shadow, &fake, Some("fred"), b"wrong");
        assert_eq!(outcome, Ok(Outcome::Refused(Refusal::WrongPassword)));
        assert_eq!(calls, 1);
    }

    #[test]
    fn every_refusal_costs_one_verification() {
        use Refusal::*;
        let shadow = shadow();
        let dummy = format!("{:?}", shadow.dummy);
        let own = format!("{:?}", Hash::parse(RIGHT).unwrap());
        let fake = Fake::default()
            .with("fred", 1000, RIGHT)
            .with("root", 0, RIGHT)
            .with("daemon", 999, RIGHT)
            .with("locked", 1001, &format!("!{RIGHT}"))
            .with("bang", 1002, "!")
            .with("star", 1003, "*")
            .with("empty", 1004, "")
            .with("md5", 1005, "$1$abcdefgh$0123456789012345678901")
            .entry(
                "gone",
                1006,
                ShadowEntry {
                    expire: TODAY,
                    ..entry(RIGHT)
                },
            )
            .entry(
                "old",
                1007,
                ShadowEntry {
                    last_change: TODAY - 91,
                    max: 90,
                    ..entry(RIGHT)
                },
            )
            .entry(
                "new",
                1008,
                ShadowEntry {
                    last_change: 0,
                    ..entry(RIGHT)
                },
            );
        let mut fake = fake;
        fake.uids.insert("nosp", 1009);
        fake.uids.insert("fault", 1010);
        fake.entries.insert("fault", Err(SHADOW_UNREADABLE));
        type Case<'a> = (
            Option<&'a str>,
            &'a [u8],
            Result<Refusal, Unverifiable>,
            &'a str,
        );
        let cases: [Case; 15] = [
            (None, b"right", Ok(NoName), &dummy),
            (Some("nobody-here"), b"right", Ok(UnknownUser), &dummy),
            (Some("root"), b"right", Ok(Root), &dummy),
            (Some("daemon"), b"right", Ok(LowUid), &dummy),
            (Some("nosp"), b"right", Ok(NoShadowEntry), &dummy),
            (Some("locked"), b"right", Ok(Locked), &own),
            (Some("bang"), b"right", Ok(Locked), &dummy),
            (Some("star"), b"right", Ok(Locked), &dummy),
            (Some("empty"), b"", Ok(EmptyHash), &dummy),
            (Some("md5"), b"right", Ok(UnusableHash), &dummy),
            (Some("gone"), b"right", Ok(AccountExpired), &own),
            (Some("old"), b"right", Ok(PasswordExpired), &own),
            (Some("new"), b"right", Ok(MustChangePassword), &own),
            (Some("fred"), b"", Ok(EmptyPassword), &own),
            (Some("fault"), b"right", Err(SHADOW_UNREADABLE), &dummy),
        ];
        for (user, password, expected, hash) in cases {
            let (outcome, calls, verified) = run(&shadow, &fake, user, password);
            assert_eq!(outcome, expected.map(Outcome::Refused), "{user:?}");
            assert_eq!(calls, 1, "{user:?}");
            assert_eq!(&verified, hash, "{user:?}");
        }
    }

    #[test]
    fn root_and_low_uid_entries_are_not_read() {
        let shadow = shadow();
        let fake = Fake::default()
            .with("root", 0, RIGHT)
            .with("daemon", 1, RIGHT);
        for user in ["root", "daemon", "unknown"] {
            let (outcome, calls, _) = run(&shadow, &fake, Some(user), b"right");
            assert!(matches!(outcome, Ok(Outcome::Refused(_))), "{user}");
            assert_eq!(calls, 1);
        }
        assert_eq!(fake.shadow_reads.get(), 0);
        let low = Shadow {
            first_valid_uid: 0,
            ..shadow
        };
        let (outcome, ..) = run(&low, &fake, Some("daemon"), b"right");
        assert_eq!(outcome, Ok(Outcome::Accepted));
        let (outcome, ..) = run(&low, &fake, Some("root"), b"right");
        assert_eq!(outcome, Ok(Outcome::Refused(Refusal::Root)));
    }

    #[test]
    fn expiry_days_follow_pam_unix() {
        use Refusal::*;
        let shadow = shadow();
        let cases = [
            (
                ShadowEntry {
                    expire: TODAY + 1,
                    ..entry(RIGHT)
                },
                None,
            ),
            (
                ShadowEntry {
                    expire: TODAY,
                    ..entry(RIGHT)
                },
                Some(AccountExpired),
            ),
            (
                ShadowEntry {
                    expire: 0,
                    ..entry(RIGHT)
                },
                Some(AccountExpired),
            ),
            (
                ShadowEntry {
                    last_change: -1,
                    max: 5,
                    ..entry(RIGHT)
                },
                None,
            ),
            (
                ShadowEntry {
                    last_change: TODAY - 90,
                    max: 90,
                    ..entry(RIGHT)
                },
                None,
            ),
            (
                ShadowEntry {
                    last_change: TODAY - 91,
                    max: 90,
                    ..entry(RIGHT)
                },
                Some(PasswordExpired),
            ),
            (
                ShadowEntry {
                    last_change: TODAY - 91,
                    max: -1,
                    ..entry(RIGHT)
                },
                None,
            ),
            (
                ShadowEntry {
                    last_change: 0,
                    max: -1,
                    ..entry(RIGHT)
                },
                Some(MustChangePassword),
            ),
        ];
        for (entry, refusal) in cases {
            let fake = Fake::default().entry("fred", 1000, entry.clone());
            let (outcome, ..) = run(&shadow, &fake, Some("fred"), b"right");
            let expected = refusal.map_or(Outcome::Accepted, Outcome::Refused);
            assert_eq!(outcome, Ok(expected), "{entry:?}");
        }
    }

    #[test]
    fn a_fault_of_the_hash_is_an_error_on_every_path() {
        let shadow = shadow();
        let fake = Fake::default()
            .with("fred", 1000, RIGHT)
            .with("root", 0, RIGHT);
        for user in [Some("fred"), Some("root"), Some("unknown"), None] {
            let outcome = shadow.check_with(&fake, user, b"right", TODAY, |_| {
                Err(Unverifiable("no memory"))
            });
            assert_eq!(outcome, Err(Unverifiable("no memory")), "{user:?}");
        }
    }

    #[test]
    fn the_system_path_runs() {
        // As any user: root is refused and an unknown name is unknown, each
        // after one verification of the dummy.
        let shadow = shadow();
        assert_eq!(shadow.verify(Some("root"), b"x"), Ok(false));
        assert_eq!(
            shadow.check(Some("p1dt-nobody-0123456789"), b"x"),
            Ok(Outcome::Refused(Refusal::UnknownUser))
        );
        assert_eq!(shadow.verify(None, b"x"), Ok(false));
    }
}
