//! `#count` equals the octets RCEV sends, for every kind of mailbox, including
//! the cases where a CR LF pair or a long line straddles pop1d's read buffers.
//! The expected bytes are computed here, independently, twice (`crlf` builds
//! them byte by byte, `crlf_len` counts them another way).

mod common;

use common::*;
use std::time::Duration;

/// RETR, RCEV, RCVD, QUIT on a mailbox holding `data`; checks the count, the
/// data, that the next reply follows the data exactly, and that the file is
/// unchanged.
fn check_mailbox(what: &str, data: &[u8]) {
    let env = TestEnv::new();
    env.write_mailbox("fred", data);
    check_env(what, &env, data);
    assert_eq!(
        env.read_mailbox("fred"),
        data,
        "{what}: RETR changed the file"
    );
}

fn check_env(what: &str, env: &TestEnv, data: &[u8]) {
    let want = crlf(data);
    assert_eq!(
        want.len(),
        crlf_len(data),
        "{what}: the test's two methods disagree"
    );
    let out = env.run(&fred_transaction("RETR", "\r\n"));
    out.assert_exit(0);
    let mut r = out.replies();
    r.logged_in();
    let count = r.count();
    assert_eq!(count, want.len(), "{what}: #count");
    let sent = r.data(count);
    if sent != want.as_slice() {
        let at = sent
            .iter()
            .zip(&want)
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        panic!(
            "{what}: data differs at offset {at}: got {:?}, want {:?}",
            String::from_utf8_lossy(&sent[at.saturating_sub(8)..(at + 8).min(sent.len())]),
            String::from_utf8_lossy(&want[at.saturating_sub(8)..(at + 8).min(want.len())])
        );
    }
    r.ok();
    r.ok();
    r.end();
    env.assert_mail_dir_is(&["fred"]);
}

#[test]
fn lf_mailbox() {
    let mut d = Vec::new();
    for i in 0..20 {
        d.extend(message(
            "a@example.org",
            &format!("n{i}"),
            "line one\nline two",
        ));
    }
    check_mailbox("LF", &d);
}

#[test]
fn crlf_mailbox() {
    let d = b"From a Thu Nov 26 10:00:00 2026\r\nSubject: x\r\n\r\nbody\r\n\r\n".to_vec();
    check_mailbox("CR LF", &d);
}

#[test]
fn mixed_line_ends() {
    let d = b"From a Thu Nov 26 10:00:00 2026\nSubject: x\r\n\nbody\r\r\nbare\rcr\n\n\r\n\r\r\n"
        .to_vec();
    check_mailbox("mixed", &d);
}

#[test]
fn eight_bit_nul_and_control_bytes_pass_through() {
    let mut d = b"From a Thu Nov 26 10:00:00 2026\nSubject: =?utf-8?q?x?=\n\n".to_vec();
    d.extend_from_slice("Grüße, ¿qué tal? — ok\n".as_bytes());
    d.extend_from_slice(b"latin1 \xe9\xe8\xff\xfe invalid utf8 \xc3\x28\n");
    d.extend_from_slice(b"nul \x00 bell \x07 esc \x1b del \x7f\n");
    let all: Vec<u8> = (0u8..=255).collect();
    d.extend_from_slice(&all);
    d.push(b'\n');
    check_mailbox("8-bit", &d);
}

#[test]
fn no_final_newline() {
    check_mailbox(
        "no final newline",
        b"From a Thu Nov 26 10:00:00 2026\nSubject: x\n\nlast line without newline",
    );
    check_mailbox("one byte", b"x");
}

#[test]
fn final_line_is_a_lone_cr() {
    // PROTOCOL.md: a final line that lacks an LF is completed with CR LF.
    // Read literally, "abc\r" becomes "abc\r\r\n". Whatever pop1d chooses, the
    // count must equal what is sent and be one of the two sensible readings.
    let env = TestEnv::new();
    let data = b"From a Thu Nov 26 10:00:00 2026\n\nabc\r";
    env.write_mailbox("fred", data);
    let out = env.run(b"USER fred\nPASS secret\nRETR fred\nRCEV\nRCVD\n");
    let mut r = out.replies();
    r.logged_in();
    let n = r.count();
    let sent = r.data(n).to_vec();
    r.ok();
    r.end();
    let literal = crlf(data);
    let mut merged = data.to_vec();
    merged.push(b'\n');
    let merged = crlf(&merged);
    assert!(
        sent == literal || sent == merged,
        "final lone CR: got {:?}",
        String::from_utf8_lossy(&sent)
    );
}

#[test]
fn empty_mailbox_is_count_zero_and_rcev_sends_nothing() {
    let env = TestEnv::new();
    env.write_mailbox("fred", b"");
    let out = env.run(&fred_transaction("RDEL", "\r\n"));
    out.assert_exit(0);
    let mut r = out.replies();
    r.logged_in();
    assert_eq!(r.line(), "#0");
    // RCEV sends nothing; the next line is RCVD's reply.
    r.ok();
    r.ok();
    r.end();
    assert_eq!(env.read_mailbox("fred"), b"");
    env.assert_mail_dir_is(&["fred"]);
}

#[test]
fn missing_mailbox_is_count_zero() {
    let env = TestEnv::new();
    let out = env.run(b"USER fred\r\nPASS secret\r\nRETR fred\r\nRCEV\r\nRCVD\r\nRDEL fred\r\nRCEV\r\nRCVD\r\nQUIT\r\n");
    out.assert_exit(0);
    let mut r = out.replies();
    r.logged_in();
    assert_eq!(r.line(), "#0");
    r.ok();
    assert_eq!(r.line(), "#0");
    r.ok();
    r.ok();
    r.end();
    // pop1d does not create mailboxes, and leaves no lock behind.
    env.assert_mail_dir_is(&[]);
}

/// A mailbox of `len` bytes: a From line, then letters with an LF every 61
/// bytes. Tests then place CR and LF bytes at chosen offsets.
fn filler(len: usize) -> Vec<u8> {
    let mut d: Vec<u8> = (0..len)
        .map(|i| {
            if i % 61 == 60 {
                b'\n'
            } else {
                b'a' + (i % 26) as u8
            }
        })
        .collect();
    let head = b"From a Thu Nov 26 10:00:00 2026\n";
    let n = head.len().min(len);
    d[..n].copy_from_slice(&head[..n]);
    d
}

/// pop1d's own read chunk, common pipe and buffer sizes, and a large one.
const BOUNDARIES: [usize; 4] = [65536, 131072, pop1d::limits::MAILBOX_CHUNK, 1 << 20];

#[test]
fn crlf_pair_split_across_buffer_boundaries() {
    for b in BOUNDARIES {
        // CR as the last byte of a block, LF as the first of the next.
        let mut d = filler(b * 2 + 100);
        d[b - 1] = b'\r';
        d[b] = b'\n';
        check_mailbox(&format!("CR at {b}-1, LF at {b}"), &d);
    }
}

#[test]
fn bare_lf_and_bare_cr_at_buffer_boundaries() {
    for b in BOUNDARIES {
        let mut d = filler(b * 2 + 100);
        // Bare LF first in a block, after a non-CR byte.
        d[b - 1] = b'z';
        d[b] = b'\n';
        // A CR last in the next block followed by a non-LF byte.
        d[2 * b - 1] = b'\r';
        d[2 * b] = b'q';
        check_mailbox(&format!("bare LF at {b}, lone CR at {}", 2 * b - 1), &d);
        // LF as the last byte of a block, LF first of the next.
        let mut d = filler(b * 2 + 100);
        d[b - 1] = b'\n';
        d[b] = b'\n';
        check_mailbox(&format!("LF LF across {b}"), &d);
        // CR CR LF straddling.
        let mut d = filler(b * 2 + 100);
        d[b - 2] = b'\r';
        d[b - 1] = b'\r';
        d[b] = b'\n';
        check_mailbox(&format!("CR CR | LF at {b}"), &d);
    }
}

/// A mailbox of 8 MiB or more is counted in two halves at once when pop1d may use
/// two CPUs; line ends across the middle must count as they do anywhere else.
#[test]
fn line_ends_across_the_middle_of_a_large_mailbox() {
    let size = 8 << 20;
    let half = size / 2;
    for (what, at, bytes) in [
        ("CR | LF", half - 1, &b"\r\n"[..]),
        ("bare LF first in the second half", half, b"\n"),
        ("lone CR last in the first half", half - 1, b"\rq"),
        ("CR CR | LF", half - 2, b"\r\r\n"),
    ] {
        let mut d = filler(size);
        d[at..at + bytes.len()].copy_from_slice(bytes);
        check_mailbox(what, &d);
    }
}

#[test]
fn sizes_that_are_exact_multiples_of_the_buffer() {
    let chunk = pop1d::limits::MAILBOX_CHUNK;
    for b in [65536usize, 131072, chunk, 2 * chunk] {
        let mut d = filler(b);
        *d.last_mut().unwrap() = b'\n';
        check_mailbox(&format!("{b} bytes ending in LF"), &d);
        let mut d = filler(b);
        *d.last_mut().unwrap() = b'x';
        check_mailbox(&format!("{b} bytes, no final LF"), &d);
        let mut d2 = filler(b + 1);
        d2[b - 1] = b'\r';
        d2[b] = b'\n';
        check_mailbox(&format!("{b}+1 bytes, CR LF across the end"), &d2);
    }
}

#[test]
fn lines_longer_than_one_mib() {
    let mut d = b"From a Thu Nov 26 10:00:00 2026\nSubject: long\n\n".to_vec();
    d.extend(std::iter::repeat_n(b'x', (1 << 20) + 12345));
    d.push(b'\n');
    d.extend(std::iter::repeat_n(b'y', 3 << 20));
    d.extend_from_slice(b"\r\n");
    d.extend(std::iter::repeat_n(b'z', (1 << 20) + 7)); // no final newline
    check_mailbox("lines over 1 MiB", &d);
}

#[test]
fn random_mixture_of_line_ends_and_bytes() {
    let mut rng = Rng::new(918);
    let alphabet = [b'a', b'\r', b'\n', 0x80, 0, b'F', b' ', 0xff];
    let d: Vec<u8> = (0..600_000)
        .map(|_| alphabet[rng.below(alphabet.len() as u64) as usize])
        .collect();
    check_mailbox("random bytes", &d);
}

#[test]
fn count_is_exact_for_a_multi_mib_mailbox_read_interactively() {
    let env = TestEnv::new();
    let mut d = Vec::new();
    let mut i = 0;
    while d.len() < 5 << 20 {
        d.extend(message(
            "x@example.org",
            &format!("m{i}"),
            &"text line\n".repeat(40),
        ));
        i += 1;
    }
    env.write_mailbox("fred", &d);
    let want = crlf(&d);
    let mut s = env.spawn();
    s.login("fred", FRED_PASS);
    s.cmd("RETR fred");
    assert_eq!(s.expect_count(), want.len());
    s.cmd("RCEV");
    let got = s.read_exact(want.len());
    assert!(got == want, "5 MiB data differs");
    s.expect_silence(Duration::from_millis(100));
    s.cmd("RCVD");
    s.expect_ok();
    s.cmd("QUIT");
    s.expect_ok();
    s.expect_eof();
    assert_eq!(s.wait_exit(DEFAULT_WAIT).code(), Some(0));
}

/// A file that shrinks under pop1d (a writer that ignored the lock) cannot be
/// sent whole: pop1d closes the connection (fewer than count octets), exits 1,
/// deletes nothing and leaves no lock.
#[test]
fn file_shrinking_before_rcev_aborts_the_connection() {
    let env = TestEnv::new();
    let d = filler(4 << 20);
    let path = env.write_mailbox("fred", &d);
    let mut s = env.spawn();
    s.login("fred", FRED_PASS);
    s.cmd("RDEL fred");
    let count = s.expect_count();
    assert_eq!(count, crlf(&d).len());
    // Truncate without taking the lock.
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(1 << 20).unwrap();
    drop(f);
    s.cmd("RCEV");
    let got = s.read_to_eof(DEFAULT_WAIT);
    assert!(
        got.len() < count,
        "pop1d sent {} octets of a promised {count} from a file that shrank to 1 MiB",
        got.len()
    );
    let st = s.wait_exit(DEFAULT_WAIT);
    assert_eq!(
        st.code(),
        Some(1),
        "a server-side fault mid-transfer exits 1"
    );
    assert_eq!(env.read_mailbox("fred"), &d[..1 << 20], "nothing deleted");
    env.assert_mail_dir_is(&["fred"]);
    let log = s.final_log();
    assert!(
        log.iter()
            .any(|l| l.starts_with("transaction: user=fred, mode=RDEL") && l.contains("aborted")),
        "log: {log:?}"
    );
}

/// Whatever a lock-ignoring writer does to the bytes in place, `#count` stays a
/// promise: either exactly `count` octets come and the next reply follows, or
/// the connection is closed (exit 1). Never more octets than counted.
#[test]
fn count_is_kept_even_if_the_file_is_rewritten_in_place() {
    let env = TestEnv::new();
    let d = filler(3 << 20);
    let path = env.write_mailbox("fred", &d);
    let mut s = env.spawn();
    s.login("fred", FRED_PASS);
    s.cmd("RETR fred");
    let count = s.expect_count();
    // Same size, but every byte now a bare LF: the CR LF form would double.
    std::fs::write(&path, vec![b'\n'; d.len()]).unwrap();
    s.cmd("RCEV");
    let _ = s.try_send(b"NOOP\r\nQUIT\r\n");
    let all = s.read_to_eof(DEFAULT_WAIT);
    if all.len() > count {
        let tail = &all[count..];
        assert!(
            tail.starts_with(b"+OK") && tail.ends_with(b"\r\n"),
            "after exactly {count} octets the next reply must follow, got {:?}",
            String::from_utf8_lossy(&tail[..tail.len().min(80)])
        );
        assert_eq!(s.wait_exit(DEFAULT_WAIT).code(), Some(0));
    } else {
        // The connection was aborted: that is a server-side fault, exit 1.
        assert_eq!(s.wait_exit(DEFAULT_WAIT).code(), Some(1));
    }
}

/// pop1d is one thread from start to end: it counts, locks (its dot-lock is
/// refreshed from the same loop), waits for the client and sends without ever
/// starting another, which is what makes forking a privilege-separated child
/// safe. Watched in /proc while a large RETR is under way and stalled.
#[test]
fn no_thread_is_started_in_any_session() {
    let data = bulk_mailbox(16 << 20);
    let threads_of = |pid: u32| {
        std::fs::read_dir(format!("/proc/{pid}/task"))
            .unwrap()
            .count()
    };
    let env = TestEnv::new();
    env.write_mailbox("fred", &data);
    let mut s = Session::spawn(env.command());
    s.greeting();
    assert_eq!(threads_of(s.pid), 1, "threads before the login");
    s.cmd("USER fred");
    s.expect_ok();
    s.cmd(&format!("PASS {FRED_PASS}"));
    s.expect_ok();
    s.cmd("RDEL fred");
    let count = s.expect_count();
    assert_eq!(threads_of(s.pid), 1, "threads with the mailbox locked");
    s.cmd("RCEV");
    // pop1d is now mid-transfer, blocked on the full pipe.
    let mut got = s.read_exact(1 << 20);
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert_eq!(threads_of(s.pid), 1, "threads while sending");
    got.extend(s.read_exact(count - got.len()));
    assert!(got == crlf(&data), "data differs");
    s.cmd("RCVD");
    s.expect_ok();
    assert_eq!(threads_of(s.pid), 1, "threads after deleting");
    s.cmd("QUIT");
    s.expect_ok();
    assert_eq!(s.wait_exit(DEFAULT_WAIT).code(), Some(0));
}

/// A process limit that forbids new processes (`prlimit --nproc=1`, as a busy
/// shared `vmail` account can reach): pop1d needs two for a session (the
/// login child and the monitor), and says so, with a reason in the log,
/// instead of serving without its privilege separation.
#[test]
fn a_process_limit_that_forbids_the_login_child_is_a_clear_start_up_error() {
    require_tool("prlimit", "util-linux");
    let env = TestEnv::new();
    env.write_mailbox("fred", b"From a\n\nmail\n");
    let out = run_command(
        env.command_via(&["prlimit", "--nproc=1", "--"]),
        &fred_transaction("RDEL", "\r\n"),
    );
    out.assert_exit(2);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "-ERR server misconfigured\r\n"
    );
    assert!(
        out.log()
            .iter()
            .any(|l| l.starts_with("cannot start: cannot fork the login child")),
        "log: {:?}",
        out.log()
    );
    assert_eq!(env.read_mailbox("fred"), b"From a\n\nmail\n");
}
