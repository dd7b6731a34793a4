//! pop1d under an address-space limit (xinetd's `rlimit_as`, systemd's
//! `LimitAS=`, `prlimit --as`). Whatever the limit, a session either runs whole
//! or refuses the password check or the mailbox with `-ERR` and goes on; it never
//! aborts, which would leave its dot-lock behind for minutes and print a panic on
//! stderr, under inetd perhaps the client's socket. A password that could not be
//! checked is never logged as a failed login, which fail2ban would punish.

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
        assert_eq!(
            r.err(),
            "-ERR cannot check passwords now, try again later",
            "{scheme}"
        );
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

/// From too little to start at all, through too little for the mailbox's
/// buffers, through enough for one thread but not two, to plenty. Fred's hash
/// is one that needs no memory of its own.
#[test]
fn a_tight_address_space_limit_gets_err_or_a_whole_session_never_an_abort() {
    require_tool("prlimit", "util-linux");
    // Large enough to be counted in two threads.
    let data = bulk_mailbox(10 << 20);
    let mut refused = 0;
    let mut served = 0;
    for quarter_mibs in 8..=96 {
        let limit = quarter_mibs << 18;
        let env = TestEnv::new().passwd_text(&format!("fred:{HASH_SHA256_CHEAP}\n"));
        env.write_mailbox("fred", &data);
        let as_limit = format!("--as={limit}");
        let out = run_command(
            env.command_via(&["prlimit", &as_limit, "--"]),
            &fred_transaction("RDEL", "\r\n"),
        );
        let what = format!("RLIMIT_AS {limit}");
        if out.stdout.is_empty() {
            // Too little to reach main(): the kernel, the dynamic loader or
            // Rust's runtime gave up (SIGSEGV, exit 127, an abort), before
            // anything was locked or said to the client.
            env.assert_mail_dir_is(&["fred"]);
            continue;
        }
        if out.stdout == b"-ERR server out of memory\r\n" {
            // Refused in place of the greeting: too little left to be sure of
            // getting through a session.
            out.assert_exit(2);
            let log = out.log();
            assert!(
                log.iter().any(|l| l.starts_with("cannot start: less than")),
                "{what}: log {log:?}"
            );
            env.assert_mail_dir_is(&["fred"]);
            continue;
        }
        assert_no_abort(&out, &what);
        let mut r = out.replies();
        r.logged_in();
        if r.rest().starts_with(b"-ERR") {
            r.err();
            r.err(); // RCEV: out of order
            r.err(); // RCVD: out of order
            r.ok();
            r.end();
            assert!(env.read_mailbox("fred") == data, "{what}: mailbox changed");
            let log = out.log();
            assert!(
                log.iter().any(|l| l.starts_with("mailbox error: user=fred")
                    && l.ends_with("no room for buffers: out of memory")),
                "{what}: log {log:?}"
            );
            refused += 1;
        } else {
            let count = r.count();
            assert!(
                r.data(count) == crlf(&data).as_slice(),
                "{what}: data differs"
            );
            r.ok();
            r.ok();
            r.end();
            assert_eq!(
                env.read_mailbox("fred"),
                b"",
                "{what}: RDEL deleted nothing"
            );
            served += 1;
        }
        env.assert_mail_dir_is(&["fred"]);
    }
    assert!(
        refused > 0,
        "no limit was tight enough to refuse the mailbox"
    );
    assert!(served > 0, "no limit was loose enough to serve the mailbox");
}
