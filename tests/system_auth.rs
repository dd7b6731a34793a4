//! System accounts through the library's back ends, on real accounts made with
//! `useradd` and `chpasswd` (yescrypt, as Debian hashes), and through a real PAM
//! stack (pam_unix via `/etc/pam.d/pop1d` from contrib).
//!
//! These change the machine (accounts, `/etc/pam.d/pop1d`): they run only with
//! POP1D_SYSTEM_TESTS=1, as root, and fail when they cannot run.

mod common;
use common::accounts::*;
use common::*;

use std::time::Instant;

use pop1d::auth::{Outcome, Refusal, Shadow};

const RIGHT: &[u8] = b"right horse battery";

fn check(shadow: &Shadow, user: &str, password: &[u8]) -> Outcome {
    shadow.check(Some(user), password).expect("no server fault")
}

#[test]
fn shadow_accepts_the_right_password_only() {
    if !system_tests() {
        return;
    }
    let account = TestAccount::new("right horse battery");
    assert!(
        account.shadow_hash().starts_with("$y$"),
        "chpasswd should hash with yescrypt: {}",
        account.shadow_hash()
    );
    let shadow = Shadow::new(1000).unwrap();
    assert!(account.uid >= 1000);
    assert_eq!(shadow.verify(Some(&account.name), RIGHT), Ok(true));
    assert_eq!(check(&shadow, &account.name, RIGHT), Outcome::Accepted);
    for wrong in [&b"right horse batter"[..], b"Right horse battery", b"x"] {
        assert_eq!(
            check(&shadow, &account.name, wrong),
            Outcome::Refused(Refusal::WrongPassword)
        );
    }
    assert_eq!(
        check(&shadow, &account.name, b""),
        Outcome::Refused(Refusal::EmptyPassword)
    );
}

#[test]
fn shadow_refuses_locked_expired_and_empty_entries() {
    if !system_tests() {
        return;
    }
    let shadow = Shadow::new(1000).unwrap();
    let cases: [(&[&str], &str, Refusal); 5] = [
        (&["-L"], "usermod", Refusal::Locked),
        (&["-E", "0"], "chage", Refusal::AccountExpired),
        (&["-d", "0"], "chage", Refusal::MustChangePassword),
        (
            &["-d", "2000-01-01", "-M", "30"],
            "chage",
            Refusal::PasswordExpired,
        ),
        (&["-d"], "passwd", Refusal::EmptyHash),
    ];
    for (args, program, refusal) in cases {
        let account = TestAccount::new("right horse battery");
        assert_eq!(check(&shadow, &account.name, RIGHT), Outcome::Accepted);
        account.change(program, args);
        for password in [RIGHT, b"wrong", b""] {
            assert_eq!(
                check(&shadow, &account.name, password),
                Outcome::Refused(refusal),
                "{program} {args:?}, password {:?}",
                String::from_utf8_lossy(password)
            );
            assert_eq!(shadow.verify(Some(&account.name), password), Ok(false));
        }
    }
}

#[test]
fn shadow_refuses_root_low_uids_and_unknown_names() {
    if !system_tests() {
        return;
    }
    let account = TestAccount::new("right horse battery");
    let above = Shadow::new(account.uid + 1).unwrap();
    assert_eq!(
        check(&above, &account.name, RIGHT),
        Outcome::Refused(Refusal::LowUid)
    );
    assert_eq!(above.verify(Some(&account.name), RIGHT), Ok(false));
    // Root, whatever its password and whatever first_valid_uid says.
    for shadow in [Shadow::new(0).unwrap(), Shadow::new(1000).unwrap()] {
        assert_eq!(
            check(&shadow, "root", RIGHT),
            Outcome::Refused(Refusal::Root)
        );
        assert_eq!(shadow.verify(Some("root"), b""), Ok(false));
    }
    let shadow = Shadow::new(1000).unwrap();
    let unknown = format!("p1dt{:08x}", fastrand::u32(..));
    assert_eq!(
        check(&shadow, &unknown, RIGHT),
        Outcome::Refused(Refusal::UnknownUser)
    );
    assert_eq!(shadow.verify(None, RIGHT), Ok(false));
}

/// Time is not compared for equality (the machine is shared); but a refusal
/// that skipped the hash would take a small fraction of a wrong password's
/// time, and never at least half of the fastest one.
#[test]
fn shadow_refusals_each_compute_a_hash() {
    if !system_tests() {
        return;
    }
    let account = TestAccount::new("right horse battery");
    let locked = TestAccount::new("right horse battery");
    locked.change("usermod", &["-L"]);
    let expired = TestAccount::new("right horse battery");
    expired.change("chage", &["-E", "0"]);
    let emptied = TestAccount::new("right horse battery");
    emptied.change("passwd", &["-d"]);
    let shadow = Shadow::new(1000).unwrap();
    let low = Shadow::new(account.uid + 1).unwrap();
    let time = |shadow: &Shadow, user: Option<&str>, password: &[u8]| {
        let start = Instant::now();
        assert_eq!(shadow.verify(user, password), Ok(false));
        start.elapsed()
    };
    let wrong = (0..5)
        .map(|_| time(&shadow, Some(&account.name), b"wrong"))
        .min()
        .unwrap();
    let unknown = format!("p1dt{:08x}", fastrand::u32(..));
    let refusals: [(&str, &Shadow, Option<&str>, &[u8]); 8] = [
        ("empty password", &shadow, Some(&account.name), b""),
        ("locked", &shadow, Some(&locked.name), RIGHT),
        ("expired", &shadow, Some(&expired.name), RIGHT),
        ("empty hash", &shadow, Some(&emptied.name), b""),
        ("low uid", &low, Some(&account.name), RIGHT),
        ("root", &shadow, Some("root"), RIGHT),
        ("unknown", &shadow, Some(&unknown), RIGHT),
        ("no name", &shadow, None, RIGHT),
    ];
    for (what, shadow, user, password) in refusals {
        let took = time(shadow, user, password);
        assert!(
            took >= wrong / 2,
            "{what}: {took:?}, a wrong password {wrong:?}: no hash computed?"
        );
    }
}

#[cfg(feature = "pam")]
#[test]
fn pam_unix_through_the_shipped_service() {
    use pop1d::auth::Pam;
    if !system_tests() {
        return;
    }
    let _service = PamService::install();
    let account = TestAccount::new("right horse battery");
    let pam = Pam::new(1000);
    let rhost = "192.0.2.7";
    assert_eq!(pam.verify(Some(&account.name), RIGHT, rhost), Ok(true));
    // pam_unix asks for a 2 s delay after a failure; pop1d's callback drops it.
    let start = Instant::now();
    assert_eq!(pam.verify(Some(&account.name), b"wrong", rhost), Ok(false));
    let took = start.elapsed();
    assert!(
        took < std::time::Duration::from_millis(1200),
        "a wrong password took {took:?}: pam_unix's fail delay was not replaced"
    );
    assert_eq!(pam.verify(Some(&account.name), b"", rhost), Ok(false));
    // pop1d's own refusals, after PAM ran.
    let above = Pam::new(account.uid + 1);
    assert_eq!(above.verify(Some(&account.name), RIGHT, rhost), Ok(false));
    assert_eq!(Pam::new(0).verify(Some("root"), RIGHT, rhost), Ok(false));
    let unknown = format!("p1dt{:08x}", fastrand::u32(..));
    assert_eq!(pam.verify(Some(&unknown), RIGHT, rhost), Ok(false));
    assert_eq!(pam.verify(None, RIGHT, rhost), Ok(false));
    // pam_acct_mgmt: an expired account, a password that must change; and a
    // locked one, refused by pam_authenticate.
    for (program, args) in [
        ("chage", &["-E", "0"][..]),
        ("chage", &["-d", "0"]),
        ("usermod", &["-L"]),
    ] {
        let other = TestAccount::new("right horse battery");
        assert_eq!(pam.verify(Some(&other.name), RIGHT, rhost), Ok(true));
        other.change(program, args);
        assert_eq!(
            pam.verify(Some(&other.name), RIGHT, rhost),
            Ok(false),
            "{program} {args:?}"
        );
    }
}

#[cfg(not(feature = "pam"))]
#[test]
fn pam_unix_through_the_shipped_service() {
    assert!(
        !system_tests(),
        "POP1D_SYSTEM_TESTS=1 needs the PAM test: build with --features pam (or --all-features)"
    );
}
