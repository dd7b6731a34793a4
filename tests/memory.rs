//! pop1d under an address-space limit (xinetd's `rlimit_as`, systemd's
//! `LimitAS=`, `prlimit --as`). Whatever the limit, a session either runs whole
//! or refuses the password check or the mailbox with `-ERR` and goes on; it never
//! aborts, which would leave its dot-lock behind for minutes and print a panic on
//! stderr, under inetd perhaps the client's socket. A password that could not be
//! checked is answered as a failed one, but never logged as a failed login,
//! which fail2ban would punish.

mod common;

use argon2::password_hash::{PasswordHasher, SaltString};
use common::*;

/// Below this, the password hashes under test cannot be computed (yescrypt
/// `j9T` needs 16 MiB, argon2id's default 19 MiB), but pop1d runs.
const TOO_LITTLE_FOR_THE_HASH: usize = 12 << 20;

fn assert_no_abort(out: &Outcome, what: &str) {
    out.assert_exit(0);
    assert!(
        !out.stderr_text().contains("memory allocation"),
        "{what}: {}",
        out.stderr_text()
    );
}

#[test]
fn a_password_that_cannot_be_checked_is_not_a_failed_login() {
    require_tool("prlimit", "util-linux");
    let salt = SaltString::encode_b64(b"pop1d argon salt").unwrap();
    let argon2id = argon2::Argon2::default()
        .hash_password(b"secret", &salt)
        .unwrap()
        .to_string();
    // libxcrypt gives yescrypt's failed allocation the errno of a bad setting.
    let crypt_failed =
        "crypt(3) could not compute the hash (too little memory, or a malformed entry)";
    for (scheme, hash, why) in [
        ("yescrypt", HASH_YESCRYPT, crypt_failed),
        ("argon2id", argon2id.as_str(), "out of memory"),
    ] {
        let env = TestEnv::new().user("anne", hash);
        let script = b"USER anne\r\nPASS secret\r\nQUIT\r\n";
        let as_limit = format!("--as={TOO_LITTLE_FOR_THE_HASH}");
        let out = run_command(env.command_via(&["prlimit", &as_limit, "--"]), script);
        assert_no_abort(&out, scheme);
        let mut r = out.replies();
        r.greeting();
        r.ok();
        // To the client, the same as a wrong password.
        assert_eq!(r.err(), "-ERR authentication failed", "{scheme}");
        r.ok();
        r.end();
        let log = out.log();
        assert!(
            log.iter()
                .any(|l| *l == format!("password not checked, {why}: user=anne, rip=local")),
            "{scheme}: log {log:?}"
        );
        assert!(
            !log.iter().any(|l| l.starts_with("login failed")),
            "{scheme}: log {log:?}"
        );
        // Without the limit the same entry lets anne in.
        let out = run_command(env.command(), script);
        let mut r = out.replies();
        r.greeting();
        r.ok();
        assert!(r.ok().starts_with("+OK"), "{scheme}");
    }
}

/// How one session under a limit ended; each kind checked on the way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// Too little to reach main(): the kernel, the dynamic loader or Rust's
    /// runtime gave up (SIGSEGV, exit 127, an abort) before anything was locked
    /// or said to the client.
    NotStarted,
    /// `-ERR server out of memory` in place of the greeting.
    RefusedAtStart,
    /// `-ERR` to RDEL, the mailbox untouched.
    RefusedMailbox,
    /// The whole RDEL: data sent, mailbox emptied.
    Served,
}

/// A whole RDEL of `data` with RLIMIT_AS at `limit` bytes. Whatever happens, no
/// lock file may be left and the mailbox is either untouched or emptied after
/// its data was sent.
fn rdel_under(limit: usize, data: &[u8]) -> Ending {
    let env = TestEnv::new().passwd_text(&format!("fred:{HASH_SHA256_CHEAP}\n"));
    env.write_mailbox("fred", data);
    let as_limit = format!("--as={limit}");
    let out = run_command(
        env.command_via(&["prlimit", &as_limit, "--"]),
        &fred_transaction("RDEL", "\r\n"),
    );
    let what = format!("RLIMIT_AS {limit}");
    let ending = if out.stdout.is_empty() {
        Ending::NotStarted
    } else if out.stdout == b"-ERR server out of memory\r\n" {
        out.assert_exit(2);
        let log = out.log();
        assert!(
            log.iter().any(|l| l.starts_with("cannot start: less than")),
            "{what}: log {log:?}"
        );
        Ending::RefusedAtStart
    } else {
        assert_no_abort(&out, &what);
        let mut r = out.replies();
        r.logged_in();
        if r.rest().starts_with(b"-ERR") {
            r.err();
            r.err(); // RCEV: out of order
            r.err(); // RCVD: out of order
            r.ok();
            r.end();
            let log = out.log();
            assert!(
                log.iter().any(|l| l.starts_with("mailbox error: user=fred")
                    && l.ends_with("no room for buffers: out of memory")),
                "{what}: log {log:?}"
            );
            Ending::RefusedMailbox
        } else {
            let count = r.count();
            assert!(
                r.data(count) == crlf(data).as_slice(),
                "{what}: data differs"
            );
            r.ok();
            r.ok();
            r.end();
            Ending::Served
        }
    };
    let left = env.read_mailbox("fred");
    if ending == Ending::Served {
        assert_eq!(left, b"", "{what}: RDEL deleted nothing");
    } else {
        assert!(left == data, "{what}: {ending:?}, yet the mailbox changed");
    }
    env.assert_mail_dir_is(&["fred"]);
    ending
}

/// From too little to start at all, through too little for the mailbox's
/// buffers or for a helper thread, to plenty; Fred's hash needs no memory of its
/// own. A coarse pass finds where sessions start being served; a fine one walks
/// the 2 MiB below, where each thread's stack and signal stack must fit: a
/// failure there aborted pop1d with its dot-lock held, in windows a few KiB wide.
#[test]
fn a_tight_address_space_limit_gets_err_or_a_whole_session_never_an_abort() {
    require_tool("prlimit", "util-linux");
    // Large enough to be counted in two threads.
    let data = bulk_mailbox(10 << 20);
    let coarse: Vec<(usize, Ending)> = (8..=96)
        .map(|quarter_mibs| quarter_mibs << 18)
        .map(|limit| (limit, rdel_under(limit, &data)))
        .collect();
    let endings = |runs: &[(usize, Ending)], kind| runs.iter().filter(|(_, e)| *e == kind).count();
    assert!(
        endings(&coarse, Ending::RefusedMailbox) > 0,
        "no limit was tight enough to refuse the mailbox: {coarse:?}"
    );
    let first_served = coarse
        .iter()
        .find(|(_, e)| *e == Ending::Served)
        .map(|(limit, _)| *limit)
        .expect("no limit was loose enough to serve the mailbox");
    for limit in (first_served - (2 << 20)..first_served).step_by(8 << 10) {
        rdel_under(limit, &data);
    }
}
