//! System accounts: who a login name is, from the name service (`getpwnam_r`).

use std::path::PathBuf;

/// A system account, as the name service describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
}

/// The account called `name`. `None` if there is no such account, or if the
/// name service could not answer (either way nobody can log in as it).
pub fn lookup(name: &str) -> Option<Account> {
    if name.is_empty() || name.contains('\0') {
        return None;
    }
    let user = nix::unistd::User::from_name(name).ok()??;
    Some(Account {
        name: user.name,
        uid: user.uid.as_raw(),
        gid: user.gid.as_raw(),
        home: user.dir,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_found_and_nonsense_is_not() {
        let root = lookup("root").unwrap();
        assert_eq!((root.name.as_str(), root.uid, root.gid), ("root", 0, 0));
        assert!(root.home.is_absolute());
        for name in [
            "",
            "no such user here",
            "p1d\0root",
            "p1dt-nobody-0123456789",
        ] {
            assert_eq!(lookup(name), None, "{name:?}");
        }
    }
}
