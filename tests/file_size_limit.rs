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
    let script = b"USER fred\r\nPASS secret\r\nRDEL fred\r\nQUIT\r\n";
    let out = run_command(env.command_via(&["prlimit", "--fsize=0"]), script);
    assert_eq!(
        out.status.signal(),
        None,
        "pop1d died of a signal; stdout {:?}; stderr {}",
        String::from_utf8_lossy(&out.stdout),
        out.stderr_text()
    );
    out.assert_exit(0);
    let mut r = out.replies();
    r.logged_in();
    // The dot-lock's pid cannot be written: -ERR today. A lock whose pid could
    // not be written may become a lock in its own right (a full disk), so a
    // count is an acceptable answer too; what matters is that there is one.
    let reply = r.line();
    assert!(
        reply.starts_with("-ERR") || reply.starts_with('#'),
        "RDEL under --fsize=0: {reply:?}"
    );
    r.ok();
    r.end();
    // Nothing deleted (QUIT aborts), and no lock or temporary file left.
    assert_eq!(env.read_mailbox("fred"), data);
    env.assert_mail_dir_is(&["fred"]);
}
