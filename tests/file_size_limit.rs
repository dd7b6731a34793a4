//! Resource limits an operator or a supervisor may set: under a file-size limit
//! (`prlimit --fsize`, xinetd's `rlimit_fsize`), writing a file fails; pop1d must
//! answer, not die of SIGXFSZ and leave its lock files behind.

mod common;

use common::*;
use std::os::unix::process::ExitStatusExt;

#[test]
fn a_file_size_limit_of_zero_gives_a_reply_not_a_death_by_signal() {
    require_tool("prlimit", "util-linux");
    let data = message("a@example.org", "limits", "Hello.\n");
    let env = TestEnv::new();
    env.write_mailbox("fred", &data);
    let out = run_command(
        env.command_via(&["prlimit", "--fsize=0"]),
        &fred_transaction("RDEL", "\r\n"),
    );
    assert_eq!(
        out.status.signal(),
        None,
        "pop1d died of a signal; stdout {:?}; stderr {}",
        String::from_utf8_lossy(&out.stdout),
        out.stderr_text()
    );
    out.assert_exit(0);
    // The dot-lock's pid cannot be written (EFBIG): a lock without a pid is
    // still a lock, as on a full disk, and the RDEL goes through whole.
    let mut r = out.replies();
    r.logged_in();
    let n = r.count();
    assert_eq!(r.data(n), crlf(&data).as_slice());
    assert_eq!(r.ok(), "+OK", "RCVD; log {:?}", out.log());
    r.ok();
    r.end();
    assert_eq!(env.read_mailbox("fred"), b"");
    env.assert_mail_dir_is(&["fred"]);
}
