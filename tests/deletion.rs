//! Deletion: RDEL then RCVD empties the mailbox in place; RETR never changes
//! it; an aborted RDEL deletes nothing and leaves no lock or temp file; mail
//! appended by a writer that ignores the lock is kept; a replaced or shrunk
//! file is not touched and RCVD says -ERR; a killed pop1d loses nothing.

mod common;

use common::*;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;

fn mailbox() -> Vec<u8> {
    let mut d = Vec::new();
    for i in 0..5 {
        d.extend(message(
            "sender@example.org",
            &format!("message {i}"),
            "Hello,\nthis is a test.\n-- \nsender",
        ));
    }
    d
}

fn env_with(data: &[u8], mode: u32) -> TestEnv {
    let env = TestEnv::new();
    let p = env.write_mailbox("fred", data);
    fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
    env
}

fn log_has(log: &[String], prefix: &str) -> bool {
    log.iter().any(|l| l.starts_with(prefix))
}

/// Logs in as fred, RDEL, RCEV; checks that the data is `data` in CR LF form.
/// Returns the session (in SENT) and the count.
fn rdel_and_rcev(env: &TestEnv, data: &[u8]) -> (Session, usize) {
    let mut s = env.spawn();
    s.login("fred", FRED_PASS);
    s.cmd("RDEL fred");
    let n = s.expect_count();
    s.cmd("RCEV");
    assert_eq!(s.read_exact(n), crlf(data));
    (s, n)
}

#[test]
fn rdel_then_rcvd_empties_the_file_in_place() {
    let data = mailbox();
    let env = env_with(&data, 0o620);
    let path = env.mailbox_path("fred");
    let before = file_id(&path);
    let out = env.run(&fred_transaction("RDEL", "\r\n"));
    out.assert_exit(0);
    let mut r = out.replies();
    r.logged_in();
    let n = r.count();
    assert_eq!(r.data(n), crlf(&data).as_slice());
    r.ok();
    r.ok();
    r.end();
    let after = file_id(&path);
    assert_eq!(before, after, "same inode, owner and mode (0620 kept)");
    assert_eq!(after.mode & 0o7777, 0o620);
    assert_eq!(fs::metadata(&path).unwrap().len(), 0);
    env.assert_mail_dir_is(&["fred"]);
    assert!(
        log_has(
            &out.log(),
            &format!("transaction: user=fred, mode=RDEL, bytes={n}, deleted")
        ),
        "log: {:?}",
        out.log()
    );
}

#[test]
fn retr_leaves_the_file_byte_identical() {
    let data = mailbox();
    let env = env_with(&data, 0o600);
    let path = env.mailbox_path("fred");
    let before = file_id(&path);
    let mtime = fs::metadata(&path).unwrap().modified().unwrap();
    let out = env.run(&fred_transaction("RETR", "\r\n"));
    out.assert_exit(0);
    let mut r = out.replies();
    r.logged_in();
    let n = r.count();
    r.data(n);
    r.ok();
    r.ok();
    r.end();
    assert_eq!(env.read_mailbox("fred"), data);
    assert_eq!(file_id(&path), before);
    assert_eq!(fs::metadata(&path).unwrap().modified().unwrap(), mtime);
    env.assert_mail_dir_is(&["fred"]);
    assert!(log_has(
        &out.log(),
        &format!("transaction: user=fred, mode=RETR, bytes={n}, kept")
    ));
}

#[test]
fn rset_quit_and_end_of_input_in_the_middle_of_rdel_delete_nothing() {
    let data = mailbox();
    let endings: [(&str, &[u8]); 6] = [
        ("RSET before RCEV", b"RDEL fred\r\nRSET\r\nQUIT\r\n"),
        ("RSET after RCEV", b"RDEL fred\r\nRCEV\r\nRSET\r\nQUIT\r\n"),
        ("QUIT before RCEV", b"RDEL fred\r\nQUIT\r\nRCEV\r\nRCVD\r\n"),
        ("QUIT after RCEV", b"RDEL fred\r\nRCEV\r\nQUIT\r\nRCVD\r\n"),
        ("EOF before RCEV", b"RDEL fred\r\n"),
        ("EOF after RCEV", b"RDEL fred\r\nRCEV\r\n"),
    ];
    for (what, tail) in endings {
        let env = env_with(&data, 0o600);
        let before = file_id(&env.mailbox_path("fred"));
        let mut script = b"USER fred\r\nPASS secret\r\n".to_vec();
        script.extend_from_slice(tail);
        let out = env.run(&script);
        out.assert_exit(0);
        assert_eq!(env.read_mailbox("fred"), data, "{what}: nothing deleted");
        assert_eq!(file_id(&env.mailbox_path("fred")), before, "{what}");
        env.assert_mail_dir_is(&["fred"]);
        let log = out.log();
        assert!(
            log.iter().any(
                |l| l.starts_with("transaction: user=fred, mode=RDEL") && l.contains("aborted")
            ),
            "{what}: log must say the transaction was aborted: {log:?}"
        );
        assert!(
            !log.iter().any(|l| l.contains(", deleted")),
            "{what}: {log:?}"
        );
    }
}

#[test]
fn mail_appended_by_a_writer_that_ignores_the_lock_is_kept() {
    let data = mailbox();
    let late1 = message("late@example.org", "late one", "arrived during RDEL");
    let late2 = message("later@example.org", "late two", "arrived after RCEV");
    let env = env_with(&data, 0o600);
    let path = env.mailbox_path("fred");
    let mut s = env.spawn();
    s.login("fred", FRED_PASS);
    s.cmd("RDEL fred");
    let n = s.expect_count();
    assert_eq!(n, crlf(&data).len());
    // Append without any lock, before RCEV: the data sent is still the
    // mailbox as it was at RDEL.
    let mut f = fs::OpenOptions::new().append(true).open(&path).unwrap();
    f.write_all(&late1).unwrap();
    drop(f);
    s.cmd("RCEV");
    assert_eq!(s.read_exact(n), crlf(&data));
    let mut f = fs::OpenOptions::new().append(true).open(&path).unwrap();
    f.write_all(&late2).unwrap();
    drop(f);
    s.cmd("RCVD");
    s.expect_ok();
    s.cmd("QUIT");
    s.expect_ok();
    s.expect_eof();
    assert_eq!(s.wait_exit(DEFAULT_WAIT).code(), Some(0));
    let mut kept = late1.clone();
    kept.extend_from_slice(&late2);
    assert_eq!(
        String::from_utf8_lossy(&env.read_mailbox("fred")),
        String::from_utf8_lossy(&kept),
        "only the counted bytes go; the appended mail stays"
    );
    env.assert_mail_dir_is(&["fred"]);
    let log = s.final_log();
    assert!(
        log_has(
            &log,
            &format!(
                "transaction: user=fred, mode=RDEL, bytes={n}, deleted, kept {} appended bytes",
                kept.len()
            )
        ),
        "log: {log:?}"
    );
}

#[test]
fn a_file_renamed_over_the_mailbox_makes_rcvd_err_and_survives() {
    let data = mailbox();
    let env = env_with(&data, 0o600);
    let path = env.mailbox_path("fred");
    let (mut s, n) = rdel_and_rcev(&env, &data);
    // Another file now stands at the mailbox's path.
    let newer = message("new@example.org", "replacement", "I must survive");
    let tmp = env.root.join("replacement");
    fs::write(&tmp, &newer).unwrap();
    give_to_server(&tmp);
    let new_id = file_id(&tmp);
    fs::rename(&tmp, &path).unwrap();
    s.cmd("RCVD");
    s.expect_err();
    // The session goes on, IDLE and unlocked.
    s.cmd("RCEV");
    s.expect_err();
    s.cmd("QUIT");
    s.expect_ok();
    s.expect_eof();
    assert_eq!(s.wait_exit(DEFAULT_WAIT).code(), Some(0));
    assert_eq!(env.read_mailbox("fred"), newer, "the new file is untouched");
    assert_eq!(file_id(&path), new_id);
    env.assert_mail_dir_is(&["fred"]);
    let log = s.final_log();
    assert!(
        log.iter().any(|l| l.starts_with(&format!(
            "transaction: user=fred, mode=RDEL, bytes={n}, not deleted ("
        ))),
        "log: {log:?}"
    );
}

#[test]
fn a_mailbox_rewritten_in_place_to_the_same_size_is_not_deleted() {
    // A writer that ignores the locks rewrites the mailbox in place, keeping its
    // size: what is there now was never sent, so RCVD must not delete it.
    let data = mailbox();
    let env = env_with(&data, 0o600);
    let path = env.mailbox_path("fred");
    let (mut s, _) = rdel_and_rcev(&env, &data);
    std::thread::sleep(std::time::Duration::from_millis(20));
    let rewritten: Vec<u8> = data
        .iter()
        .map(|b| if *b == b'H' { b'J' } else { *b })
        .collect();
    assert_ne!(rewritten, data);
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .write_all(&rewritten)
        .unwrap();
    s.cmd("RCVD");
    s.expect_err();
    s.cmd("QUIT");
    s.expect_ok();
    assert_eq!(s.wait_exit(DEFAULT_WAIT).code(), Some(0));
    assert_eq!(env.read_mailbox("fred"), rewritten);
    env.assert_mail_dir_is(&["fred"]);
    let log = s.final_log();
    assert!(
        log.iter()
            .any(|l| l.ends_with("not deleted (the mailbox was changed in place while it was locked (mtime or ctime moved))")),
        "log: {log:?}"
    );
}

#[test]
fn a_file_renamed_over_the_mailbox_before_rcev_is_not_deleted_either() {
    let data = mailbox();
    let env = env_with(&data, 0o600);
    let path = env.mailbox_path("fred");
    let mut s = env.spawn();
    s.login("fred", FRED_PASS);
    s.cmd("RDEL fred");
    let n = s.expect_count();
    let newer = message("new@example.org", "replacement", "I must survive");
    let tmp = env.root.join("replacement");
    fs::write(&tmp, &newer).unwrap();
    give_to_server(&tmp);
    fs::rename(&tmp, &path).unwrap();
    s.cmd("RCEV");
    // The data is the mailbox as it was locked (the old file).
    assert_eq!(s.read_exact(n), crlf(&data));
    s.cmd("RCVD");
    s.expect_err();
    s.cmd("QUIT");
    s.expect_ok();
    assert_eq!(env.read_mailbox("fred"), newer);
}

#[test]
fn a_mailbox_shorter_than_counted_makes_rcvd_err_and_keeps_it() {
    let data = mailbox();
    let env = env_with(&data, 0o600);
    let path = env.mailbox_path("fred");
    let (mut s, _) = rdel_and_rcev(&env, &data);
    // Someone (ignoring the lock) cut the mailbox short.
    let f = fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(10).unwrap();
    drop(f);
    s.cmd("RCVD");
    s.expect_err();
    s.cmd("QUIT");
    s.expect_ok();
    assert_eq!(env.read_mailbox("fred"), &data[..10]);
    env.assert_mail_dir_is(&["fred"]);
}

#[test]
fn rdel_of_an_empty_or_missing_mailbox() {
    let env = env_with(b"", 0o600);
    let before = file_id(&env.mailbox_path("fred"));
    let out = env.run(&fred_transaction("RDEL", "\n"));
    let mut r = out.replies();
    r.logged_in();
    assert_eq!(r.count(), 0);
    r.ok();
    r.ok();
    r.end();
    assert_eq!(file_id(&env.mailbox_path("fred")), before);
    env.assert_mail_dir_is(&["fred"]);
}

/// A pop1d killed at any moment loses no mail: SIGKILL mid-transaction (after
/// RCEV, before RCVD) leaves the file as it was, and the next session breaks
/// the stale dot-lock (its pid is dead) and reads the mail again.
#[test]
fn sigkill_mid_transaction_loses_nothing() {
    let data = mailbox();
    let env = env_with(&data, 0o600);
    let mut s = env.spawn();
    s.login("fred", FRED_PASS);
    s.cmd("RDEL fred");
    let n = s.expect_count();
    s.cmd("RCEV");
    s.read_exact(n);
    s.kill();
    assert_eq!(env.read_mailbox("fred"), data);
    let out = env.run(&fred_transaction("RDEL", "\n"));
    out.assert_exit(0);
    let mut r = out.replies();
    r.logged_in();
    assert_eq!(r.count(), n);
    assert_eq!(r.data(n), crlf(&data).as_slice());
    r.ok();
    r.ok();
    r.end();
    assert_eq!(env.read_mailbox("fred"), b"");
    // Only pop1d's own dot-lock temp files could remain from the killed run;
    // the mailbox and no lock file.
    let entries = env.mail_dir_entries();
    assert!(entries.contains(&"fred".to_string()));
    assert!(!entries.contains(&"fred.lock".to_string()), "{entries:?}");
}

/// Bytes of `path` in the page cache, by util-linux's fincore.
fn cached_bytes(path: &std::path::Path) -> u64 {
    let out = tool(
        "fincore",
        &[
            "--bytes",
            "--noheadings",
            "--output",
            "RES",
            path.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "fincore failed: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim()
        .parse()
        .unwrap_or_else(|_| panic!("fincore said {text:?}"))
}

/// Fails loudly unless the file system under `dir` drops clean pages when asked
/// (tmpfs never does), since the test below means nothing there.
fn assert_file_system_drops_pages(dir: &std::path::Path) {
    let probe = dir.join("fadvise-probe");
    fs::write(&probe, vec![b'x'; 1 << 20]).unwrap();
    let file = fs::File::open(&probe).unwrap();
    file.sync_all().unwrap();
    fs::read(&probe).unwrap();
    nix::fcntl::posix_fadvise(
        &file,
        0,
        0,
        nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED,
    )
    .unwrap();
    assert_eq!(
        cached_bytes(&probe),
        0,
        "the file system under {} keeps pages that posix_fadvise(DONTNEED) asks to \
         drop (tmpfs?); this test needs a disk file system there",
        dir.display()
    );
    fs::remove_file(&probe).unwrap();
}

/// RDEL drops the mailbox's pages from the page cache as they are sent, before
/// RCVD, so that the truncation at RCVD has no cached pages to free and takes the
/// same time for any size; RETR, which keeps the mail, leaves them cached.
#[test]
fn rdel_uncaches_what_it_sent_before_rcvd_and_retr_does_not() {
    require_tool("fincore", "util-linux");
    let env = TestEnv::on_disk();
    assert_file_system_drops_pages(&env.root);
    let data = bulk_mailbox(16 << 20);
    let path = env.write_mailbox("fred", &data);
    // Written back, as delivered mail is: dirty pages are never dropped.
    fs::File::open(&path).unwrap().sync_all().unwrap();
    fs::read(&path).unwrap();
    let size = data.len() as u64;
    assert!(
        cached_bytes(&path) >= size,
        "the mailbox should be cached after reading it"
    );

    let mut s = env.spawn();
    s.login("fred", FRED_PASS);
    s.cmd("RETR fred");
    let n = s.expect_count();
    s.cmd("RCEV");
    assert_eq!(s.read_exact(n), crlf(&data));
    s.cmd("RCVD");
    s.expect_ok();
    assert!(
        cached_bytes(&path) >= size,
        "RETR must leave the mailbox cached"
    );

    s.cmd("RDEL fred");
    let n = s.expect_count();
    s.cmd("RCEV");
    // Halfway, what was sent is gone from the cache already, not only at the end.
    let mut got = s.read_exact(8 << 20);
    wait_until(
        DEFAULT_WAIT,
        || cached_bytes(&path) <= size - (4 << 20),
        "RDEL to drop pages while it sends",
    );
    got.extend(s.read_exact(n - got.len()));
    assert!(got == crlf(&data), "RDEL data differs");
    wait_until(
        DEFAULT_WAIT,
        || cached_bytes(&path) == 0,
        "RDEL to drop the sent mailbox from the page cache before RCVD",
    );
    assert_eq!(
        env.read_mailbox("fred"),
        data,
        "nothing deleted before RCVD"
    );
    s.cmd("RCVD");
    s.expect_ok();
    s.cmd("QUIT");
    s.expect_ok();
    assert_eq!(s.wait_exit(DEFAULT_WAIT).code(), Some(0));
    assert_eq!(env.read_mailbox("fred"), b"");
}

#[test]
fn a_mailbox_rewritten_larger_in_place_is_not_deleted() {
    // A writer that ignores the locks rewrites the mailbox during the
    // transaction: the last old messages, then new ones, ending larger than
    // what was counted. The counted bytes are not what was sent any more, and
    // the new mail was never received: RCVD must delete nothing.
    let data = mailbox();
    let env = env_with(&data, 0o600);
    let path = env.mailbox_path("fred");
    let (mut s, _) = rdel_and_rcev(&env, &data);
    let last_two = &data[data.len() - 2 * data.len() / 5..];
    let mut rewritten = last_two.to_vec();
    for i in 0..6 {
        rewritten.extend(message(
            "new@example.org",
            &format!("new {i}"),
            "never received",
        ));
    }
    assert!(rewritten.len() > data.len());
    fs::write(&path, &rewritten).unwrap();
    s.cmd("RCVD");
    s.expect_err();
    s.cmd("QUIT");
    s.expect_ok();
    assert_eq!(s.wait_exit(DEFAULT_WAIT).code(), Some(0));
    assert_eq!(env.read_mailbox("fred"), rewritten, "mail was lost");
    env.assert_mail_dir_is(&["fred"]);
    let log = s.final_log();
    assert!(
        log.iter()
            .any(|l| l.contains("not deleted (the mailbox was rewritten")),
        "log: {log:?}"
    );
}

#[test]
fn a_few_appended_bytes_that_do_not_start_a_message_keep_the_mailbox() {
    // Not a message start: an append still under way, or a rewrite. Nothing
    // is deleted; the mail comes again next time.
    let data = mailbox();
    let env = env_with(&data, 0o600);
    let path = env.mailbox_path("fred");
    let (mut s, _) = rdel_and_rcev(&env, &data);
    let mut f = fs::OpenOptions::new().append(true).open(&path).unwrap();
    f.write_all(b"Fro").unwrap();
    drop(f);
    s.cmd("RCVD");
    s.expect_err();
    s.cmd("QUIT");
    s.expect_ok();
    assert_eq!(s.wait_exit(DEFAULT_WAIT).code(), Some(0));
    assert_eq!(env.read_mailbox("fred"), [&data[..], b"Fro"].concat());
}

#[test]
fn an_append_after_a_mailbox_without_a_final_newline_is_kept_and_the_rest_deleted() {
    // Dovecot and mutt begin an append with a newline when the mailbox did not
    // end with one: "\nFrom ..." is a new message too.
    let mut data = mailbox();
    data.extend_from_slice(b"a last line without a newline");
    let env = env_with(&data, 0o600);
    let path = env.mailbox_path("fred");
    let (mut s, _) = rdel_and_rcev(&env, &data);
    let late = [b"\n".to_vec(), message("late@example.org", "late", "kept")].concat();
    let mut f = fs::OpenOptions::new().append(true).open(&path).unwrap();
    f.write_all(&late).unwrap();
    drop(f);
    s.cmd("RCVD");
    s.expect_ok();
    s.cmd("QUIT");
    s.expect_ok();
    assert_eq!(s.wait_exit(DEFAULT_WAIT).code(), Some(0));
    assert_eq!(env.read_mailbox("fred"), late);
}
