//! Verifying one password against one stored hash: crypt(3) hashes through the
//! system's libxcrypt (`crypt_rn`), argon2id through the `argon2` crate.
//!
//! Also makes a new yescrypt hash, for `pop1d --hash-password`.
//!
//! The only FFI of pop1d's authentication. Every buffer that held a password or a
//! value derived from it is wiped before it is freed.

use std::ffi::{c_char, c_int, c_ulong, c_void, CStr};

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

#[link(name = "crypt")]
extern "C" {
    /// libxcrypt: `char *crypt_rn(const char *phrase, const char *setting,
    /// void *data, int size)`; NULL on failure, else a pointer into `data`.
    fn crypt_rn(
        phrase: *const c_char,
        setting: *const c_char,
        data: *mut c_void,
        size: c_int,
    ) -> *mut c_char;

    /// libxcrypt: `char *crypt_gensalt_rn(const char *prefix, unsigned long count,
    /// const char *rbytes, int nrbytes, char *output, int output_size)`; NULL on
    /// failure, else `output`. With `rbytes` NULL, libxcrypt draws the salt from
    /// the system's random source itself.
    fn crypt_gensalt_rn(
        prefix: *const c_char,
        count: c_ulong,
        rbytes: *const c_char,
        nrbytes: c_int,
        output: *mut c_char,
        output_size: c_int,
    ) -> *mut c_char;
}

/// libxcrypt's `CRYPT_GENSALT_OUTPUT_SIZE`.
const CRYPT_GENSALT_OUTPUT_SIZE: usize = 192;

/// libxcrypt's `sizeof(struct crypt_data)`.
const CRYPT_DATA_SIZE: usize = 32768;

/// libxcrypt's `CRYPT_MAX_PASSPHRASE_SIZE`: crypt(3) hashes phrases shorter than
/// this.
pub const CRYPT_MAX_PASSPHRASE_SIZE: usize = 512;

/// The hash families pop1d accepts, by their crypt(3) prefix.
pub const CRYPT_PREFIXES: [&str; 8] = ["$y$", "$gy$", "$7$", "$6$", "$5$", "$2b$", "$2y$", "$2a$"];
pub const ARGON2ID_PREFIX: &str = "$argon2id$";

/// Why a password could not be checked at all: not a wrong password, but the
/// server's or the passwd-file's fault. The text is for the operator's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unverifiable(pub &'static str);

const OUT_OF_MEMORY: Unverifiable = Unverifiable("out of memory");
const MALFORMED: Unverifiable = Unverifiable("the stored hash is malformed");
/// libxcrypt reports yescrypt's failed allocation as EINVAL, like a bad setting.
const CRYPT_FAILED: Unverifiable =
    Unverifiable("crypt(3) could not compute the hash (too little memory, or a malformed entry)");

/// A stored hash in a form pop1d can verify.
#[derive(Debug, Clone)]
pub enum Hash {
    Crypt(String),
    Argon2id(String),
}

/// A hash is wiped from memory when dropped: offline guessing needs it.
impl Drop for Hash {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        match self {
            Hash::Crypt(text) | Hash::Argon2id(text) => text.zeroize(),
        }
    }
}

impl Hash {
    /// Accept `text` if it is a hash of a family pop1d verifies.
    pub fn parse(text: &str) -> Option<Hash> {
        if CRYPT_PREFIXES.iter().any(|prefix| text.starts_with(prefix)) && crypt_well_formed(text) {
            Some(Hash::Crypt(text.to_owned()))
        } else if text.starts_with(ARGON2ID_PREFIX) && Argon2Entry::parse(text).is_some() {
            Some(Hash::Argon2id(text.to_owned()))
        } else {
            None
        }
    }

    /// The method and cost settings of the hash, without salt or digest: two
    /// hashes with the same settings cost the same to verify.
    pub fn settings(&self) -> String {
        let text = match self {
            Hash::Crypt(text) | Hash::Argon2id(text) => text.as_str(),
        };
        let fields: Vec<&str> = text.split('$').collect();
        match fields.as_slice() {
            // $y$PARAMS$salt$hash, $gy$..., $argon2id$v=19$m=..,t=..,p=..$salt$hash
            ["", id @ ("y" | "gy"), params, ..] => format!("${id}${params}"),
            // The version and parameters are optional: show only fields that
            // are one, never the salt or the digest.
            ["", "argon2id", rest @ ..] => {
                let params: Vec<&str> = rest
                    .iter()
                    .filter(|f| f.starts_with("v=") || f.starts_with("m="))
                    .copied()
                    .collect();
                format!("$argon2id${}", params.join("$"))
            }
            // $7$ packs its parameters into the first 11 characters of the salt.
            ["", "7", rest, ..] => format!("$7${}", rest.get(..11).unwrap_or("?")),
            ["", id @ ("5" | "6"), rounds, ..] if rounds.starts_with("rounds=") => {
                format!("${id}${rounds}")
            }
            ["", id @ ("5" | "6"), ..] => format!("${id}$rounds=5000"),
            ["", id, cost, ..] => format!("${id}${cost}"),
            // Never the text itself: it holds the digest.
            _ => "(unknown settings)".to_owned(),
        }
    }

    /// True when `password` matches. Costs the hash's full work either way. An
    /// error when the hash could not be computed (no memory for it, under an
    /// address-space limit, or an entry libxcrypt cannot read): that proves
    /// nothing about the password, so it must never be logged as a failed
    /// login, though the client is answered as if it were one.
    ///
    /// An empty password never matches, whatever the entry holds (a hash of the
    /// empty string, say): it is still hashed, so that it costs what a wrong
    /// password costs, and then denied.
    pub fn verify(&self, password: &[u8]) -> Result<bool, Unverifiable> {
        let matches = match self {
            Hash::Crypt(setting) => crypt_matches(password, setting),
            Hash::Argon2id(text) => argon2_matches(password, text),
        }?;
        Ok(matches && !password.is_empty())
    }
}

/// The characters of crypt(3)'s base-64 encoding, in which salts and digests
/// are written.
fn is_crypt64(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'/')
}

/// True when `text` has the exact shape libxcrypt writes for its family: the
/// fields it must have, a salt of allowed characters and length, and a digest
/// of the family's exact length. A cut-short, damaged or padded entry could
/// never match, and libxcrypt may refuse it at once, which would answer a
/// login faster than a real hash does and so give the account away: such an
/// entry is refused when the file is read. A check of the text only: hashing
/// every entry at load would cost each session one hash per user.
fn crypt_well_formed(text: &str) -> bool {
    let fields: Vec<&str> = text.split('$').collect();
    match fields.as_slice() {
        // $y$PARAMS$SALT$DIGEST, $gy$ the same.
        ["", "y" | "gy", params, salt, digest] => {
            is_crypt64(params) && is_crypt64(salt) && is_crypt64(digest) && digest.len() == 43
        }
        // $7$ + 11 characters of parameters, then the salt; $DIGEST.
        ["", "7", params_and_salt, digest] => {
            params_and_salt.len() > 11
                && is_crypt64(params_and_salt)
                && is_crypt64(digest)
                && digest.len() == 43
        }
        ["", id @ ("5" | "6"), rest @ ..] => {
            let (salt, digest) = match rest {
                [rounds, salt, digest] => match rounds.strip_prefix("rounds=") {
                    // libxcrypt writes the rounds it used, clamped to this range
                    // and without leading zeros: any other form never matches.
                    Some(n)
                        if !n.starts_with('0')
                            && n.parse::<u32>()
                                .is_ok_and(|n| (1000..=999_999_999).contains(&n)) =>
                    {
                        (salt, digest)
                    }
                    _ => return false,
                },
                [salt, digest] => (salt, digest),
                _ => return false,
            };
            let digest_len = if *id == "5" { 43 } else { 86 };
            // A longer salt is cut to 16 characters in the result.
            is_crypt64(salt) && salt.len() <= 16 && is_crypt64(digest) && digest.len() == digest_len
        }
        // $2b$CC$ + 22 characters of salt and 31 of digest.
        ["", "2a" | "2b" | "2y", cost, salt_and_digest] => {
            cost.len() == 2
                && cost.parse::<u8>().is_ok_and(|c| (4..=31).contains(&c))
                && is_crypt64(salt_and_digest)
                && salt_and_digest.len() == 53
        }
        _ => false,
    }
}

fn crypt_matches(password: &[u8], setting: &str) -> Result<bool, Unverifiable> {
    // A NUL would end the C string early: hash only what precedes it (the same
    // work) and never accept such a password.
    let (phrase_bytes, has_nul) = match memchr::memchr(0, password) {
        Some(at) => (&password[..at], true),
        None => (password, false),
    };
    // libxcrypt refuses a longer phrase outright (ERANGE), which is no fault of
    // the server's: hash the longest phrase it takes, for the same work as a
    // wrong password, and never accept such a password.
    let too_long = phrase_bytes.len() >= CRYPT_MAX_PASSPHRASE_SIZE;
    let phrase_bytes = &phrase_bytes[..phrase_bytes.len().min(CRYPT_MAX_PASSPHRASE_SIZE - 1)];
    let matches = match crypt(phrase_bytes, setting) {
        Ok(output) => bool::from(output.as_slice().ct_eq(setting.as_bytes())),
        // yescrypt, scrypt and argon2-like settings allocate their memory
        // inside libxcrypt; a wrong password never fails.
        Err(Some(libc::ENOMEM)) => return Err(OUT_OF_MEMORY),
        Err(_) => return Err(CRYPT_FAILED),
    };
    Ok(matches && !has_nul && !too_long)
}

/// A new yescrypt hash of `password`, at libxcrypt's default cost and with a
/// fresh random salt: the hash field of a passwd-file line. Refuses what could
/// never log in: an empty password, a NUL, or [`CRYPT_MAX_PASSPHRASE_SIZE`]
/// octets or more.
pub fn new_yescrypt_hash(password: &[u8]) -> Result<String, &'static str> {
    new_hash(Some(c"$y$"), password)
}

/// A stand-in to verify in place of a missing entry, by libxcrypt's default
/// method and cost (`crypt_gensalt` with no prefix, as passwd and chpasswd
/// hash): only a fresh setting, with no digest. Verifying against it hashes the
/// password as a real entry of that method would, and can never match, since
/// crypt's output is the setting and a digest. Making it costs no hash.
pub fn default_dummy() -> Result<Hash, &'static str> {
    Ok(Hash::Crypt(new_setting(None)?))
}

/// A new hash of `password` by libxcrypt's default method and cost, with a
/// fresh random salt: what `passwd` and `chpasswd` write, since they ask
/// `crypt_gensalt` with no prefix. The same refusals as [`new_yescrypt_hash`].
pub fn new_default_hash(password: &[u8]) -> Result<String, &'static str> {
    new_hash(None, password)
}

/// A new hash of `password` with the method of `prefix` (libxcrypt's default
/// when `None`) at its default cost.
fn new_hash(prefix: Option<&CStr>, password: &[u8]) -> Result<String, &'static str> {
    if password.is_empty() {
        return Err("an empty password never logs in");
    }
    if password.contains(&0) {
        return Err("a password cannot hold a NUL byte");
    }
    if password.len() >= CRYPT_MAX_PASSPHRASE_SIZE {
        return Err("the password is too long: crypt(3) takes at most 511 octets");
    }
    let setting = new_setting(prefix)?;
    let hash = crypt(password, &setting)
        .map_err(|_| "crypt(3) could not compute the hash (too little memory?)")?;
    match std::str::from_utf8(&hash) {
        Ok(hash) if Hash::parse(hash).is_some() => Ok(hash.to_owned()),
        _ => Err("crypt(3) returned no usable hash (a method pop1d does not verify?)"),
    }
}

/// crypt(3) of `phrase` (without NUL) with `setting`: the setting and digest it
/// writes, or the errno of its failure. The one call into `crypt_rn`.
fn crypt(phrase: &[u8], setting: &str) -> Result<Zeroizing<Vec<u8>>, Option<i32>> {
    let mut phrase_c = Zeroizing::new(Vec::with_capacity(phrase.len() + 1));
    phrase_c.extend_from_slice(phrase);
    phrase_c.push(0);
    let mut setting_c = setting.as_bytes().to_vec();
    setting_c.push(0);
    let mut data = Zeroizing::new(vec![0u8; CRYPT_DATA_SIZE]);
    // SAFETY: `phrase_c` and `setting_c` are NUL-terminated and live across the
    // call; `data` is a writable buffer of exactly the size passed, which
    // libxcrypt uses as its `struct crypt_data`; the returned pointer (if not
    // NULL) points into `data` at a NUL-terminated string, copied out below
    // while `data` is still alive.
    unsafe {
        let result = crypt_rn(
            phrase_c.as_ptr().cast(),
            setting_c.as_ptr().cast(),
            data.as_mut_ptr().cast(),
            CRYPT_DATA_SIZE as c_int,
        );
        if result.is_null() {
            return Err(std::io::Error::last_os_error().raw_os_error());
        }
        Ok(Zeroizing::new(CStr::from_ptr(result).to_bytes().to_vec()))
    }
}

/// A fresh setting (method, cost and salt, no digest) for `prefix`'s method,
/// libxcrypt's default when `None`, at its default cost.
fn new_setting(prefix: Option<&CStr>) -> Result<String, &'static str> {
    let mut setting = [0u8; CRYPT_GENSALT_OUTPUT_SIZE];
    // SAFETY: the prefix is NULL (libxcrypt's default method) or a NUL-terminated
    // string that outlives the call; `rbytes` NULL with `nrbytes` 0 asks libxcrypt
    // for its own random bytes; `setting` is a writable buffer of exactly the size
    // passed, which libxcrypt fills with a NUL-terminated setting string when it
    // returns non-NULL.
    let made = unsafe {
        crypt_gensalt_rn(
            prefix.map_or(std::ptr::null(), CStr::as_ptr),
            0,
            std::ptr::null(),
            0,
            setting.as_mut_ptr().cast(),
            CRYPT_GENSALT_OUTPUT_SIZE as c_int,
        )
    };
    if made.is_null() {
        return Err("libxcrypt could not make a setting (no random source?)");
    }
    CStr::from_bytes_until_nul(&setting)
        .ok()
        .and_then(|text| text.to_str().ok())
        .map(str::to_owned)
        .ok_or("libxcrypt made a setting that is not text")
}

/// An argon2id entry taken apart as the argon2 crate's `verify_password` would,
/// every parameter checked: a malformed entry is refused when the passwd-file is
/// read, not found out at a login.
struct Argon2Entry {
    hasher: argon2::Argon2<'static>,
    salt: [u8; 64],
    salt_len: usize,
    expected: argon2::password_hash::Output,
}

impl Argon2Entry {
    fn parse(text: &str) -> Option<Argon2Entry> {
        use argon2::{Algorithm, Argon2, Params, PasswordHash, Version};
        let hash = PasswordHash::new(text).ok()?;
        if Algorithm::try_from(hash.algorithm).ok()? != Algorithm::Argon2id {
            return None;
        }
        let version = match hash.version {
            Some(version) => Version::try_from(version).ok()?,
            None => Version::default(),
        };
        let params = Params::try_from(&hash).ok()?;
        let mut salt = [0u8; 64];
        let salt_len = hash.salt?.decode_b64(&mut salt).ok()?.len();
        if salt_len < argon2::MIN_SALT_LEN {
            return None;
        }
        Some(Argon2Entry {
            hasher: Argon2::new(Algorithm::Argon2id, version, params),
            salt,
            salt_len,
            expected: hash.hash?,
        })
    }
}

/// What the argon2 crate's `verify_password` does, but with the working memory
/// (19 MiB at the crate's default cost, 64 MiB at PHP's) reserved fallibly: the
/// crate's own allocation would abort the process when it fails.
fn argon2_matches(password: &[u8], text: &str) -> Result<bool, Unverifiable> {
    let entry = Argon2Entry::parse(text).ok_or(MALFORMED)?;
    let block_count = entry.hasher.params().block_count();
    let mut blocks = Zeroizing::new(Vec::new());
    blocks
        .try_reserve_exact(block_count)
        .map_err(|_| OUT_OF_MEMORY)?;
    blocks.resize(block_count, argon2::Block::default());
    let mut computed = Zeroizing::new(vec![0u8; entry.expected.len()]);
    entry
        .hasher
        .hash_password_into_with_memory(
            password,
            &entry.salt[..entry.salt_len],
            &mut computed,
            blocks.as_mut_slice(),
        )
        .map_err(|_| MALFORMED)?;
    Ok(bool::from(entry.expected.as_bytes().ct_eq(&computed)))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Made with `mkpasswd -m sha512crypt demo`.
    const SHA512: &str = "$6$BPpxU.y0Qh8pGsYW$Wf72kcVHcGOsAH1VbqczxtRcks58C50N6oSnx2xJxrn/pEA5oibr5y3Kfd73HDLVOv9.RndnNHbJS6afjQUow/";

    #[test]
    fn sha512_crypt() {
        let hash = Hash::parse(SHA512).unwrap();
        assert_eq!(hash.verify(b"demo"), Ok(true));
        assert_eq!(hash.verify(b"demO"), Ok(false));
        assert_eq!(hash.verify(b"demo\0x"), Ok(false));
        assert_eq!(hash.verify(b""), Ok(false));
        let long = [b"demo".as_slice(), &[b'x'; 508]].concat();
        assert_eq!(hash.verify(&long[..511]), Ok(false));
        assert_eq!(hash.verify(&long), Ok(false));
        assert_eq!(hash.verify(&[b'x'; 5000]), Ok(false));
    }

    #[test]
    fn an_empty_password_never_matches() {
        // `mkpasswd -m sha256crypt -R 1000` of the empty string.
        let empty = "$5$rounds=1000$PSuGuFk4/0BYAZ3w$/g1H/9yUkl95xGaV8kz8Yb8EihTKtwgHOrA47iJosJB";
        assert_eq!(crypt_matches(b"", empty), Ok(true));
        let hash = Hash::parse(empty).unwrap();
        assert_eq!(hash.verify(b""), Ok(false));
        assert_eq!(hash.verify(b"\0"), Ok(false));
        assert_eq!(hash.verify(b"x"), Ok(false));
    }

    #[test]
    fn new_hashes_verify_and_refuse_what_never_logs_in() {
        let hash = new_yescrypt_hash(b"demo pass").unwrap();
        assert!(hash.starts_with("$y$"), "{hash}");
        let parsed = Hash::parse(&hash).unwrap();
        assert_eq!(parsed.verify(b"demo pass"), Ok(true));
        assert_eq!(parsed.verify(b"demo"), Ok(false));
        assert_ne!(new_yescrypt_hash(b"demo pass").unwrap(), hash);
        // The longest password crypt(3) takes, and one octet more that starts
        // with it: the longer one must not match.
        let longest = [b'x'; CRYPT_MAX_PASSPHRASE_SIZE - 1];
        let parsed = Hash::parse(&new_yescrypt_hash(&longest).unwrap()).unwrap();
        assert_eq!(parsed.verify(&longest), Ok(true));
        assert_eq!(parsed.verify(&[b'x'; CRYPT_MAX_PASSPHRASE_SIZE]), Ok(false));
        for bad in [&b""[..], b"a\0b", &[b'x'; CRYPT_MAX_PASSPHRASE_SIZE]] {
            assert!(new_yescrypt_hash(bad).is_err());
        }
    }

    #[test]
    fn default_hashes_are_libxcrypts_default_method() {
        let hash = new_default_hash(b"demo pass").unwrap();
        let parsed = Hash::parse(&hash).unwrap();
        assert_eq!(parsed.verify(b"demo pass"), Ok(true));
        assert_eq!(parsed.verify(b"demo"), Ok(false));
        // Debian's libxcrypt defaults to yescrypt at its default cost, as
        // `passwd` and `chpasswd` write it.
        assert_eq!(parsed.settings(), "$y$j9T", "{hash}");
        assert!(new_default_hash(b"").is_err());
    }

    #[test]
    fn settings_leave_out_salt_and_digest() {
        assert_eq!(Hash::parse(SHA512).unwrap().settings(), "$6$rounds=5000");
        let yescrypt = "$y$j9T$a5M6cgfwi6uQxVC6aVQEE.$qbYn0Zqi8FDwIQ0MbuCWW/falEvKTI0zWFnProB4aO9";
        assert_eq!(Hash::parse(yescrypt).unwrap().settings(), "$y$j9T");
        let bcrypt = "$2b$05$YcEbg5ikc5lVJNJt8t803.gGuOrIIR0zxjveMTKe5VxMVeuSTcfDy";
        assert_eq!(Hash::parse(bcrypt).unwrap().settings(), "$2b$05");
    }

    #[test]
    fn argon2id_entries_are_checked_whole_when_read() {
        use argon2::password_hash::{PasswordHasher, SaltString};
        let salt = SaltString::encode_b64(b"pop1d argon salt").unwrap();
        let good = argon2::Argon2::default()
            .hash_password(b"demo", &salt)
            .unwrap()
            .to_string();
        let hash = Hash::parse(&good).unwrap();
        assert_eq!(hash.verify(b"demo"), Ok(true));
        assert_eq!(hash.verify(b"demO"), Ok(false));
        let fields: Vec<&str> = good.split('$').collect();
        let short_salt = [&fields[..4], &["c2FsdA"], &fields[5..]].concat().join("$");
        let no_digest = fields[..5].join("$");
        for bad in [
            good.replace("v=19", "v=18"),
            good.replace("m=19456", "m=7"),
            good.replace("t=2", "t=0"),
            good.replace("p=1", "p=1,x=5"),
            short_salt,
            no_digest,
        ] {
            assert!(Hash::parse(&bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn malformed_crypt_entries_are_refused_when_read() {
        let yescrypt = "$y$j9T$a5M6cgfwi6uQxVC6aVQEE.$qbYn0Zqi8FDwIQ0MbuCWW/falEvKTI0zWFnProB4aO9";
        let bcrypt = "$2b$05$YcEbg5ikc5lVJNJt8t803.gGuOrIIR0zxjveMTKe5VxMVeuSTcfDy";
        let scrypt = "$7$CU..../....abc$wAuEOYcLM7kO6uZQXQIbfiQLCU8Fy1YXPblM7CyxZH3";
        let sha256 = "$5$rounds=1000$PSuGuFk4/0BYAZ3w$/g1H/9yUkl95xGaV8kz8Yb8EihTKtwgHOrA47iJosJB";
        for good in [SHA512, yescrypt, bcrypt, scrypt, sha256] {
            assert!(Hash::parse(good).is_some(), "{good}");
            // Every shorter or longer form, and every padded one, is refused.
            for end in 1..good.len() {
                assert!(Hash::parse(&good[..end]).is_none(), "{}", &good[..end]);
            }
            for padded in [format!("{good} "), format!("{good}\t"), format!("{good}x")] {
                assert!(Hash::parse(&padded).is_none(), "{padded:?}");
            }
        }
        for bad in [
            "$6$abcdefghijklmnopq$J/AWykHqo2Tx5UtavGnFc3ytI33la50JpzLTarSWVhkIXK6wOjNwwZjsrIw2UgmrER2EKrSHCeQyAINEEXAk1/",
            &sha256.replace("rounds=1000", "rounds=01000"),
            &sha256.replace("rounds=1000", "rounds=999"),
            &sha256.replace("rounds=1000", "rounds=x"),
            &bcrypt.replace("$05$", "$5$"),
            &bcrypt.replace("$05$", "$03$"),
            &yescrypt.replace("j9T", "j:T"),
            &yescrypt.replace("$j9T$", "$$"),
        ] {
            assert!(Hash::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn unknown_forms_are_refused() {
        for text in [
            "",
            "demo",
            "!",
            "*",
            "!$6$abc$def",
            "abJnggxhB/yWI",
            "$1$abc$def",
            "{PLAIN}x",
        ] {
            assert!(Hash::parse(text).is_none(), "{text}");
        }
    }
}
