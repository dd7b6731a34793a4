//! Which user names may become part of a path, and how a name is shown in a log.
//!
//! Pure. A name that fails [`is_safe`] must never reach the file system.

use crate::limits::MAX_USER_NAME;

/// True when `name` can be put into a mailbox path template safely: not empty, at
/// most 64 octets, no `/`, no leading `.`, no NUL or other control characters, no
/// white space (no Unix account has any), and not a lock file's name
/// ([`is_lock_name`]).
pub fn is_safe(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_USER_NAME
        && !name.starts_with('.')
        && !is_lock_name(name)
        && !name
            .chars()
            .any(|c| c == '/' || c.is_control() || c.is_whitespace())
}

/// True when a mailbox named `name` could also be another user's lock file:
/// `fred.lock` is fred's dot-lock, and `fred.lock.<more>` the form of the
/// temporary files some dot-lockers (mutt's NFS-safe one, for instance) link
/// from. pop1d's own temporary lock files start with a `.`, which
/// [`is_safe`] refuses already.
pub fn is_lock_name(name: &str) -> bool {
    name.ends_with(".lock") || name.contains(".lock.")
}

/// The name as a log line may show it: letters, digits and `._@+-` kept, every
/// other byte written as `\xNN`, and at most 64 bytes of it, so a client can neither
/// forge a field (`, rip=...`) nor flood the log that fail2ban reads.
pub fn escape_for_log(raw: &[u8]) -> String {
    let mut shown = String::new();
    for &byte in raw.iter().take(MAX_USER_NAME) {
        if byte.is_ascii_alphanumeric() || b"._@+-".contains(&byte) {
            shown.push(byte as char);
        } else {
            shown.push_str(&format!("\\x{byte:02x}"));
        }
    }
    if raw.len() > MAX_USER_NAME {
        shown.push_str("...");
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_names_are_refused() {
        for name in [
            "", ".", "..", ".hidden", "a/b", "/etc", "a\0b", "a\nb", "a b", "a\u{85}",
        ] {
            assert!(!is_safe(name), "{name:?}");
        }
        assert!(!is_safe(&"x".repeat(65)));
        for name in ["fred.lock", "fred.lock.host.123", "a.lock.b"] {
            assert!(is_lock_name(name) && !is_safe(name), "{name:?}");
        }
        for name in ["fred.locker", "fred.lockx", "fredlock", "lock", "fred.LOCK"] {
            assert!(!is_lock_name(name) && is_safe(name), "{name:?}");
        }
        assert!(is_safe(&"x".repeat(64)));
        for name in [
            "fred",
            "fred.smith",
            "fred-1",
            "jürgen",
            "a_b+c@example.org",
        ] {
            assert!(is_safe(name), "{name:?}");
        }
    }

    #[test]
    fn log_names_are_printable() {
        assert_eq!(escape_for_log(b"fred"), "fred");
        assert_eq!(escape_for_log(b"a b\n\\"), "a\\x20b\\x0a\\x5c");
        assert_eq!(escape_for_log(b"x,rip=1.2.3.4"), "x\\x2crip\\x3d1.2.3.4");
        assert_eq!(escape_for_log("é".as_bytes()), "\\xc3\\xa9");
    }
}
