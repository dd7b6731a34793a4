//! Authentication: the passwd-file format, every accepted hash scheme, refused
//! entries, identical replies (and comparable timing) for unknown users and
//! wrong passwords, the auth delay, the failure limit, and passwords never
//! showing up in the log or the output.

mod common;

use argon2::password_hash::{PasswordHasher, SaltString};
use common::*;
use std::time::{Duration, Instant};

/// USER name / PASS pass, returns the PASS reply.
fn try_login(env: &TestEnv, user: &str, pass: &str) -> String {
    let out = env.run(login(user, pass).as_bytes());
    out.assert_exit(0);
    let mut r = out.replies();
    r.greeting();
    r.ok();
    let l = r.line();
    r.end();
    l
}

/// The reply to a wrong password for fred, as the reference -ERR text.
fn wrong_password_reply(env: &TestEnv) -> String {
    let l = try_login(env, "fred", "not-the-password");
    assert!(l.starts_with("-ERR"), "{l:?}");
    l
}

#[test]
fn unknown_user_and_wrong_password_give_identical_replies() {
    let env = TestEnv::new();
    let wrong = wrong_password_reply(&env);
    for (user, pass) in [
        ("nosuchuser", "secret"),
        ("nosuchuser", "not-the-password"),
        ("Fred", "secret"),
        ("fred ", "secret"),
        ("root", "secret"),
        ("nobody", "secret"),
    ] {
        let l = try_login(&env, user, pass);
        assert_eq!(l, wrong, "USER {user:?} PASS {pass:?}");
    }
    // And the USER replies do not differ either.
    let out = env.run(b"USER fred\r\nRSET\r\nUSER nosuchuser\r\n");
    let mut r = out.replies();
    r.greeting();
    let a = r.ok();
    r.ok();
    assert_eq!(r.ok(), a);
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[test]
fn unknown_user_and_wrong_password_take_comparable_time() {
    let env = TestEnv::new().args(["--max-auth-failures", "100"]);
    let mut s = env.spawn();
    s.greeting();
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    // Warm up once, then alternate.
    s.cmd("USER fred");
    s.expect_ok();
    s.timed("PASS warmup");
    for i in 0..7 {
        s.cmd("USER fred");
        s.expect_ok();
        let (l, t) = s.timed(&format!("PASS wrong{i}"));
        assert!(l.starts_with("-ERR"));
        known.push(t);
        s.cmd(&format!("USER ghost{i}"));
        s.expect_ok();
        let (l2, t) = s.timed(&format!("PASS wrong{i}"));
        assert_eq!(l2, l);
        unknown.push(t);
    }
    let k = median(known);
    let u = median(unknown);
    let slack = Duration::from_millis(5);
    assert!(
        u * 4 + slack >= k && k * 4 + slack >= u,
        "timing tells whether a user exists: wrong password median {k:?}, unknown user median {u:?}"
    );
}

#[test]
fn passwd_file_with_comments_blank_lines_extra_fields_and_scheme_prefix() {
    let text = format!(
        "# pop1d users\n\
         \n\
         fred:{HASH_YESCRYPT}:1000:1000::/home/fred::userdb_mail=mbox:~/mail\n\
         \n\
         # barney:{HASH_SHA512}\n\
         wilma:{{SHA512-CRYPT}}{HASH_SHA512}\n\
         betty:{{SHA256-CRYPT}}{HASH_SHA256}::\n\
         pebbles:{{BLF-CRYPT}}{HASH_BCRYPT_2B}\n\
         bambam:{{CRYPT}}{HASH_SHA512}:::\n\
         # trailing comment\n"
    );
    let env = TestEnv::new().passwd_text(&text);
    let wrong = wrong_password_reply(&env);
    for user in ["fred", "wilma", "betty", "pebbles", "bambam"] {
        assert!(
            try_login(&env, user, "secret").starts_with("+OK"),
            "{user} must log in"
        );
        assert_eq!(
            try_login(&env, user, "Secret"),
            wrong,
            "{user} wrong password"
        );
    }
    // The commented-out entry does not exist.
    assert_eq!(try_login(&env, "barney", "secret"), wrong);
    assert_eq!(try_login(&env, "#", "secret"), wrong);
    assert_eq!(try_login(&env, "# barney", "secret"), wrong);
}

fn scheme_case(scheme: &str, hash: &str) {
    let env = TestEnv::new().user("u", hash);
    let wrong = wrong_password_reply(&env);
    let ok = try_login(&env, "u", "secret");
    assert!(
        ok.starts_with("+OK"),
        "{scheme}: right password refused: {ok:?}"
    );
    assert_eq!(
        try_login(&env, "u", "secreT"),
        wrong,
        "{scheme}: wrong password"
    );
    assert_eq!(try_login(&env, "u", ""), wrong, "{scheme}: empty password");
    assert_eq!(
        try_login(&env, "u", "secret "),
        wrong,
        "{scheme}: trailing space"
    );
}

#[test]
fn scheme_yescrypt() {
    scheme_case("$y$", HASH_YESCRYPT);
}

#[test]
fn scheme_gost_yescrypt() {
    scheme_case("$gy$", HASH_GOST_YESCRYPT);
}

#[test]
fn scheme_scrypt() {
    scheme_case("$7$", HASH_SCRYPT);
}

#[test]
fn scheme_sha512_crypt() {
    scheme_case("$6$", HASH_SHA512);
}

#[test]
fn scheme_sha256_crypt() {
    scheme_case("$5$", HASH_SHA256);
    scheme_case("$5$rounds=", HASH_SHA256_CHEAP);
}

#[test]
fn scheme_bcrypt_2b_2a_2y() {
    scheme_case("$2b$", HASH_BCRYPT_2B);
    scheme_case("$2a$", HASH_BCRYPT_2A);
    // $2y$ is the same algorithm as $2b$: rewrite the prefix.
    let h2y = HASH_BCRYPT_2B.replacen("$2b$", "$2y$", 1);
    scheme_case("$2y$", &h2y);
}

#[test]
fn scheme_argon2id() {
    let salt = SaltString::encode_b64(b"pop1d argon salt").unwrap();
    let hash = argon2::Argon2::default()
        .hash_password(b"secret", &salt)
        .unwrap()
        .to_string();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    scheme_case("$argon2id$", &hash);
}

#[test]
fn hashes_made_live_with_mkpasswd() {
    let password = format!("live-{}-pw", std::process::id());
    for method in ["yescrypt", "sha512crypt", "bcrypt"] {
        let hash = mkpasswd(method, &password);
        let env = TestEnv::new().user("live", &hash);
        let wrong = wrong_password_reply(&env);
        assert!(
            try_login(&env, "live", &password).starts_with("+OK"),
            "mkpasswd -m {method}: {hash}"
        );
        assert_eq!(try_login(&env, "live", "secret"), wrong);
    }
}

#[test]
fn refused_entries_look_like_a_wrong_password() {
    require_tool("mkpasswd", "whois");
    // DES made live when mkpasswd supports it, else the fixed one.
    let des = Some(tool("mkpasswd", &["-m", "descrypt", "secret"]))
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8(o.stdout).unwrap().trim().to_string())
        .unwrap_or_else(|| HASH_DES.to_string());
    assert_eq!(des.len(), 13);
    let locked = format!("!{HASH_SHA512}");
    let starred = format!("*{HASH_SHA512}");
    let crypt_des = format!("{{CRYPT}}{des}");
    let entries: Vec<(&str, &str)> = vec![
        ("plainprefix", "{PLAIN}secret"),
        ("plainbare", "secret"),
        ("empty", ""),
        ("bang", "!"),
        ("star", "*"),
        ("bangbang", "!!"),
        ("locked", &locked),
        ("starred", &starred),
        ("des", &des),
        ("cryptdes", &crypt_des),
    ];
    let mut env = TestEnv::new();
    for (u, h) in &entries {
        env = env.user(u, h);
    }
    let wrong = wrong_password_reply(&env);
    for (u, h) in &entries {
        assert_eq!(
            try_login(&env, u, "secret"),
            wrong,
            "entry {u}:{h} must be refused like a wrong password"
        );
    }
    // An empty password against an empty entry is refused too.
    let out = env.run(b"USER empty\r\nPASS\r\nUSER empty\r\nPASS \r\n");
    let mut r = out.replies();
    r.greeting();
    r.ok();
    r.err();
    r.ok();
    assert_eq!(r.err(), wrong);
    r.end();
}

#[test]
fn auth_delay_makes_a_failed_pass_slow_and_a_good_one_fast() {
    let env = TestEnv::new().args(["--auth-delay", "1"]);
    let mut s = env.spawn();
    s.greeting();
    s.cmd("USER fred");
    s.expect_ok();
    let (l, t) = s.timed("PASS wrong");
    assert!(l.starts_with("-ERR"));
    assert!(t >= Duration::from_millis(1000), "failed PASS took {t:?}");
    assert!(t < Duration::from_secs(5), "failed PASS took {t:?}");
    s.cmd("USER ghost");
    s.expect_ok();
    let (l, t) = s.timed("PASS wrong");
    assert!(l.starts_with("-ERR"));
    assert!(
        t >= Duration::from_millis(1000),
        "unknown user PASS took {t:?}"
    );
    s.cmd("USER fred");
    s.expect_ok();
    let (l, t) = s.timed("PASS secret");
    assert!(l.starts_with("+OK"));
    assert!(t < Duration::from_millis(900), "successful PASS took {t:?}");
}

#[test]
fn max_auth_failures_ends_the_session() {
    let env = TestEnv::new().args(["--max-auth-failures", "2"]);
    let start = Instant::now();
    let out = env
        .run(b"USER fred\r\nPASS a\r\nUSER fred\r\nPASS b\r\nNOOP\r\nUSER fred\r\nPASS secret\r\n");
    out.assert_exit(0);
    let mut r = out.replies();
    r.greeting();
    r.ok();
    r.err();
    r.ok();
    r.err();
    // Only -ERR (the failure, and possibly a separate "too many" line), then close.
    while !r.rest().is_empty() {
        r.err();
    }
    r.end();
    let log = out.log();
    assert!(
        log.iter()
            .any(|l| l == "too many login failures: user=fred, rip=local"),
        "log: {log:?}"
    );
    assert!(
        log.iter()
            .any(|l| l == "disconnect: too many login failures, rip=local"),
        "log: {log:?}"
    );
    assert!(start.elapsed() < Duration::from_secs(10));

    // One failure below the limit leaves the session usable.
    let out = env.run(b"USER fred\r\nPASS a\r\nUSER fred\r\nPASS secret\r\nQUIT\r\n");
    let mut r = out.replies();
    r.greeting();
    r.ok();
    r.err();
    r.ok();
    r.ok();
    r.ok();
    r.end();
}

#[test]
fn passwords_never_appear_in_the_log_or_the_output() {
    let env = TestEnv::new().user("wilma", HASH_SPACES);
    let out = env.run(
        b"USER wilma\r\nPASS Wr0ngPassw0rdXyzzy\r\nUSER nosuchuser\r\nPASS Un1qu3Pa55w0rd\r\n\
          USER wilma\r\nPASS correct horse battery\r\nPASS correct horse battery\r\nQUIT\r\n",
    );
    out.assert_exit(0);
    let err = out.stderr_text();
    assert!(!err.is_empty(), "--log stderr must log something");
    for secret in [
        "Wr0ngPassw0rd",
        "Un1qu3Pa55w0rd",
        "correct horse",
        "horse battery",
    ] {
        assert!(
            !err.contains(secret),
            "password {secret:?} in the log: {err}"
        );
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains(secret),
            "password {secret:?} in the output"
        );
    }
    assert!(out
        .log()
        .iter()
        .any(|l| l == "login: user=wilma, rip=local"));
}

#[test]
fn without_passwd_file_and_not_root_pop1d_refuses_to_start() {
    // No --passwd-file means system accounts, which only root can verify and
    // become: started as anyone else, pop1d says so and exits 2.
    let env = TestEnv::new().without_passwd_file();
    let out = env.run(b"USER fred\r\nPASS secret\r\nQUIT\r\n");
    out.assert_exit(2);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "-ERR server misconfigured\r\n"
    );
    assert!(
        out.stderr_text()
            .contains("need pop1d to be started as root"),
        "{}",
        out.stderr_text()
    );
}

/// The log of a session as one text, for failure messages.
fn log_text(out: &Outcome) -> String {
    out.log().join("\n")
}

#[test]
fn an_empty_password_fails_like_a_wrong_one_whatever_the_entry_holds() {
    // `mkpasswd -m yescrypt` hashes the empty string when its stdin is not a
    // terminal: such an entry must not open the account with no password.
    let blank = mkpasswd("yescrypt", "");
    let env = TestEnv::new()
        .user("blank", &blank)
        .args(["--max-auth-failures", "3"]);
    let wrong = wrong_password_reply(&env);
    // `PASS` alone and `PASS ` with an empty argument both reach verification.
    for pass_line in ["PASS", "PASS "] {
        let out = env.run(format!("USER blank\r\n{pass_line}\r\nQUIT\r\n").as_bytes());
        out.assert_exit(0);
        let mut r = out.replies();
        r.greeting();
        r.ok();
        assert_eq!(r.err(), wrong, "{pass_line:?} for an empty-string hash");
        r.ok();
        r.end();
        let log = out.log();
        assert!(
            log.iter()
                .any(|l| l == "login failed: user=blank, rip=local"),
            "{pass_line:?} is logged as a failed login: {log:?}"
        );
    }
    // And it counts as a failure: three empty passwords end the session.
    let out =
        env.run(b"USER blank\r\nPASS\r\nUSER blank\r\nPASS \r\nUSER blank\r\nPASS\r\nNOOP\r\n");
    out.assert_exit(0);
    assert!(
        out.log()
            .iter()
            .any(|l| l == "too many login failures: user=blank, rip=local"),
        "{}",
        log_text(&out)
    );
    // The same for an argon2id entry of the empty string.
    let salt = SaltString::encode_b64(b"pop1d empty salt").unwrap();
    let argon = argon2::Argon2::default()
        .hash_password(b"", &salt)
        .unwrap()
        .to_string();
    let env = TestEnv::new().user("blank2", &argon);
    assert_eq!(try_login(&env, "blank2", ""), wrong);
}

#[test]
fn a_user_name_that_is_another_users_lock_file_fails_like_an_unknown_user() {
    // fred's dot-lock is `fred.lock` in the same directory: a user of that name
    // could RDEL fred's lock, or have the mailbox taken for a stale lock.
    let env = TestEnv::new()
        .user("fred.lock", HASH_YESCRYPT)
        .user("fred.lock.x", HASH_YESCRYPT);
    let wrong = wrong_password_reply(&env);
    for user in ["fred.lock", "fred.lock.x"] {
        assert_eq!(try_login(&env, user, FRED_PASS), wrong, "USER {user}");
    }
    // The USER reply is the one of an unknown user too.
    let out = env.run(b"USER fred.lock\r\nRSET\r\nUSER nosuchuser\r\n");
    let mut r = out.replies();
    r.greeting();
    let a = r.ok();
    r.ok();
    assert_eq!(r.ok(), a);
    // The passwd-file warning names the lines (1 is the harness's comment).
    let (_, log) = env.check();
    for line in ["line 3:", "line 4:"] {
        assert!(
            log.iter()
                .any(|l| l.contains(line) && l.contains("lock") && l.contains("passwd-file")),
            "a warning for {line}: {log:?}"
        );
    }
    // fred himself is not affected.
    assert!(try_login(&env, "fred", FRED_PASS).starts_with("+OK"));
}

#[test]
fn a_cut_short_hash_is_refused_when_the_file_is_read() {
    let cut = &HASH_YESCRYPT[..20];
    let sha_cut = &HASH_SHA512[..HASH_SHA512.len() - 1];
    let long_salt = "$6$abcdefghijklmnopq$J/AWykHqo2Tx5UtavGnFc3ytI33la50JpzLTarSWVhkIXK6wOjNwwZjsrIw2UgmrER2EKrSHCeQyAINEEXAk1/";
    let env = TestEnv::new()
        .user("cut", cut)
        .user("shacut", sha_cut)
        .user("longsalt", long_salt);
    let wrong = wrong_password_reply(&env);
    let out = env.run(login("cut", FRED_PASS).as_bytes());
    let mut r = out.replies();
    r.greeting();
    r.ok();
    assert_eq!(r.err(), wrong);
    let log = out.log();
    let (_, warnings) = env.check();
    for (line, hash) in [
        ("line 3:", cut),
        ("line 4:", sha_cut),
        ("line 5:", long_salt),
    ] {
        assert!(
            warnings
                .iter()
                .any(|l| l.contains(line) && l.contains("passwd-file") && l.contains("malformed")),
            "a warning for {line}: {warnings:?}"
        );
        assert!(
            warnings.iter().chain(&log).all(|l| !l.contains(hash)),
            "a warning never shows the hash: {warnings:?} {log:?}"
        );
    }
    // Refused like an unknown user: a failed login, never an unchecked one.
    assert!(
        log.iter().any(|l| l == "login failed: user=cut, rip=local"),
        "{log:?}"
    );
    assert!(log.iter().all(|l| !l.contains("not checked")), "{log:?}");
    for user in ["shacut", "longsalt"] {
        assert_eq!(try_login(&env, user, FRED_PASS), wrong, "{user}");
    }
}

#[test]
fn a_byte_order_mark_and_trailing_blanks_are_ignored_with_a_warning() {
    let env = TestEnv::new().passwd_text(&format!(
        "\u{feff}fred:{HASH_YESCRYPT}\nwilma:{HASH_SHA512} \t\nbarney:{HASH_SHA256}  :1000:1000\n"
    ));
    for user in ["fred", "wilma", "barney"] {
        let out = env.run(login(user, FRED_PASS).as_bytes());
        let mut r = out.replies();
        r.logged_in();
        r.end();
        let (_, log) = env.check();
        assert!(
            log.iter()
                .any(|l| l.contains("line 1:") && l.contains("byte-order mark")),
            "{log:?}"
        );
        for line in ["line 2:", "line 3:"] {
            assert!(
                log.iter().any(|l| l.contains(line) && l.contains("blanks")),
                "a warning for {line}: {log:?}"
            );
        }
    }
}
