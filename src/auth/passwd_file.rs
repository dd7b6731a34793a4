//! The passwd-file: `name:hash[:more fields]` a line, as Dovecot's passwd-file and
//! /etc/shadow write it. `#` comments and blank lines are allowed; a `{SCHEME}`
//! prefix is accepted for the crypt schemes. Plain-text, empty, locked (`!`, `*`)
//! and DES entries are refused: such a user can never log in.

use std::collections::HashMap;
use std::path::Path;

use super::crypt::{Hash, Unverifiable, ARGON2ID_PREFIX, CRYPT_PREFIXES};
use crate::username;

/// Hash made with `mkpasswd -m yescrypt` from a random password nobody knows: what
/// is verified when the file has no usable entry to borrow the cost from.
const FALLBACK_DUMMY: &str =
    "$y$j9T$a5M6cgfwi6uQxVC6aVQEE.$qbYn0Zqi8FDwIQ0MbuCWW/falEvKTI0zWFnProB4aO9";

/// `{SCHEME}` prefixes whose value is a crypt(3) or argon2id hash.
pub const CRYPT_SCHEMES: [&str; 5] = [
    "CRYPT",
    "SHA512-CRYPT",
    "SHA256-CRYPT",
    "BLF-CRYPT",
    "ARGON2ID",
];

#[derive(Debug)]
pub struct PasswdFile {
    /// `None`: the user exists but the entry is refused.
    users: HashMap<String, Option<Hash>>,
    /// Verified in place of a missing or refused entry, so failures cost the same.
    dummy: Hash,
}

#[derive(Debug)]
pub struct LoadError(pub String);

impl PasswdFile {
    /// Read and parse the file. Lines that cannot be used are reported in the
    /// second value (by line number, never with their hash) and skipped.
    pub fn load(path: &Path) -> Result<(PasswdFile, Vec<String>), LoadError> {
        let text = std::fs::read(path).map_err(|error| {
            LoadError(format!(
                "cannot read passwd-file {}: {error}",
                path.display()
            ))
        })?;
        let text = String::from_utf8_lossy(&text);
        let (file, mut warnings) = PasswdFile::parse(&text);
        // Hashes are guessable offline: like /etc/shadow, the file is for root.
        if let Ok(meta) = std::fs::metadata(path) {
            use std::os::unix::fs::PermissionsExt;
            if meta.permissions().mode() & 0o004 != 0 {
                warnings.push("is readable by every user; chmod o-r it".into());
            }
        }
        for warning in &mut warnings {
            *warning = format!("passwd-file {}: {warning}", path.display());
        }
        Ok((file, warnings))
    }

    /// Parse the text of a passwd-file.
    pub fn parse(text: &str) -> (PasswdFile, Vec<String>) {
        let mut users = HashMap::new();
        let mut warnings = Vec::new();
        let mut dummy = None;
        // Some editors on other systems start a UTF-8 file with a byte-order
        // mark; it would become part of the first user's name.
        let text = match text.strip_prefix('\u{feff}') {
            Some(rest) => {
                warnings.push("line 1: a UTF-8 byte-order mark starts the file; ignored".into());
                rest
            }
            None => text,
        };
        for (number, line) in text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.trim_end_matches('\r')))
        {
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            let mut fields = line.splitn(3, ':');
            let (Some(name), Some(stored)) = (fields.next(), fields.next()) else {
                warnings.push(format!(
                    "line {number}: no ':' after the user name; skipped"
                ));
                continue;
            };
            if username::is_lock_name(name) {
                warnings.push(format!(
                    "line {number}: user {}: a name ending in .lock (or holding .lock.) is another user's lock file name; skipped",
                    username::escape_for_log(name.as_bytes())
                ));
                continue;
            }
            if !username::is_safe(name) {
                warnings.push(format!("line {number}: unusable user name; skipped"));
                continue;
            }
            if users.contains_key(name) {
                warnings.push(format!(
                    "line {number}: user {name} again; the first entry counts"
                ));
                continue;
            }
            // Blanks after the hash (an editor's, or a pasted line's) would make
            // it never match; no hash has any.
            let trimmed = stored.trim_end_matches([' ', '\t']);
            if trimmed.len() != stored.len() && !trimmed.is_empty() {
                warnings.push(format!(
                    "line {number}: user {name}: blanks after the hash; ignored"
                ));
            }
            let hash = accept(trimmed);
            if hash.is_none() {
                let why = if looks_like_a_hash(trimmed) {
                    "a malformed hash (cut short, damaged, or of settings libxcrypt would not write)"
                } else {
                    "a locked, empty, plain-text or unsupported password"
                };
                warnings.push(format!(
                    "line {number}: user {name} has {why}; login refused"
                ));
            }
            if dummy.is_none() {
                dummy.clone_from(&hash);
            }
            users.insert(name.to_owned(), hash);
        }
        let mut settings: Vec<String> = users.values().flatten().map(Hash::settings).collect();
        settings.sort();
        settings.dedup();
        if settings.len() > 1 {
            warnings.push(format!(
                "entries use different hash settings ({}): a failed login costs what the user's own hash costs, so its timing can tell users apart; re-hash them all with one method",
                settings.join(", ")
            ));
        }
        let dummy =
            dummy.unwrap_or_else(|| Hash::parse(FALLBACK_DUMMY).expect("valid fallback hash"));
        (PasswdFile { users, dummy }, warnings)
    }

    /// True when `password` is `user`'s. `None` for a name that can never be valid.
    /// Always costs one verification; an unknown user fails to be checked the
    /// same way as a known one when the server is out of memory.
    pub fn verify(&self, user: Option<&str>, password: &[u8]) -> Result<bool, Unverifiable> {
        match user.and_then(|name| self.users.get(name)) {
            Some(Some(hash)) => hash.verify(password),
            _ => self.dummy.verify(password).map(|_| false),
        }
    }

    /// The user names the file lists, in no particular order.
    pub fn users(&self) -> impl Iterator<Item = &str> {
        self.users.keys().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

/// The hash in a stored password field, without a `{SCHEME}` prefix of a crypt
/// scheme; `None` for another scheme.
fn strip_scheme(stored: &str) -> Option<&str> {
    match stored.strip_prefix('{') {
        Some(rest) => {
            let (scheme, hash) = rest.split_once('}')?;
            CRYPT_SCHEMES
                .contains(&scheme.to_ascii_uppercase().as_str())
                .then_some(hash)
        }
        None => Some(stored),
    }
}

/// The usable hash in a stored password field, if any.
fn accept(stored: &str) -> Option<Hash> {
    Hash::parse(strip_scheme(stored)?)
}

/// True when the field starts like a hash of a family pop1d verifies: if it is
/// refused, it is malformed rather than of an unsupported kind.
fn looks_like_a_hash(stored: &str) -> bool {
    strip_scheme(stored).is_some_and(|hash| {
        CRYPT_PREFIXES
            .iter()
            .chain([&ARGON2ID_PREFIX])
            .any(|prefix| hash.starts_with(prefix))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEMO: &str = "$6$BPpxU.y0Qh8pGsYW$Wf72kcVHcGOsAH1VbqczxtRcks58C50N6oSnx2xJxrn/pEA5oibr5y3Kfd73HDLVOv9.RndnNHbJS6afjQUow/";

    #[test]
    fn entries_comments_and_extra_fields() {
        let text = format!(
            "# virtual users\n\nfred:{DEMO}:1000:1000::/home/fred::\nanne:{{SHA512-CRYPT}}{DEMO}\nplain:{{PLAIN}}demo\nbare:demo\nlocked:!{DEMO}\nstar:*\nempty:\nbroken\n"
        );
        let (file, warnings) = PasswdFile::parse(&text);
        assert_eq!(file.len(), 7);
        assert_eq!(warnings.len(), 6, "{warnings:?}");
        let mixed = format!(
            "fred:{DEMO}\nanne:$2b$05$YcEbg5ikc5lVJNJt8t803.gGuOrIIR0zxjveMTKe5VxMVeuSTcfDy\n"
        );
        let (_, warnings) = PasswdFile::parse(&mixed);
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("$2b$05, $6$rounds=5000")),
            "{warnings:?}"
        );
        assert!(warnings.iter().all(|w| !w.contains(DEMO)));
        assert_eq!(file.verify(Some("fred"), b"demo"), Ok(true));
        assert_eq!(file.verify(Some("anne"), b"demo"), Ok(true));
        for user in ["plain", "bare", "locked", "star", "empty", "nobody"] {
            assert_eq!(file.verify(Some(user), b"demo"), Ok(false), "{user}");
        }
        assert_eq!(file.verify(None, b"demo"), Ok(false));
        assert_eq!(file.verify(Some("fred"), b"wrong"), Ok(false));
    }

    #[test]
    fn a_world_readable_file_is_warned_about() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("passwd");
        std::fs::write(&path, format!("fred:{DEMO}\n")).unwrap();
        for (mode, warned) in [(0o644, true), (0o640, false), (0o600, false)] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let (_, warnings) = PasswdFile::load(&path).unwrap();
            let found = warnings
                .iter()
                .any(|w| w.contains("readable by every user"));
            assert_eq!(found, warned, "mode {mode:o}: {warnings:?}");
        }
    }
}
