//! Every tunable of pop1d in one place, each with the reason for its value.
//!
//! Two kinds: the defaults of options an operator may change on the command line
//! (`DEFAULT_*`, first), and fixed limits that keep memory flat and behaviour
//! predictable (after them). Figures behind the values are measured by
//! `contrib/bench/run` and kept in `contrib/bench/README.md`.

use std::time::Duration;

// ---------------------------------------------------------------------------
// Defaults of options an operator may change.

/// Idle time after which a silent client, or one that stopped reading, is dropped.
/// Ten minutes is RFC 1939's minimum for POP3 and what popa3d and Dovecot use.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// How long RETR/RDEL waits for a mailbox that somebody else has locked. Thirty
/// seconds outlasts any delivery; a client waiting longer has likely given up.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(30);

/// The pause after a failed PASS, which makes guessing passwords slow.
pub const DEFAULT_AUTH_DELAY: Duration = Duration::from_secs(2);

/// Failed logins one session may make before it is closed (fail2ban counts the rest).
pub const DEFAULT_MAX_AUTH_FAILURES: u32 = 3;

/// The account that reads the client's lines until a login succeeds: one that
/// owns nothing. The README and contrib use a dedicated account instead.
pub const DEFAULT_LOGIN_USER: &str = "nobody";

/// System accounts below this uid are refused (system and service accounts),
/// as with Dovecot's `first_valid_uid`; uid 0 always is.
pub const DEFAULT_FIRST_VALID_UID: u32 = 1000;

// ---------------------------------------------------------------------------
// Fixed limits.

/// The longest client line, terminator included (PROTOCOL.md). A password or a user
/// name never needs more, and a fixed bound keeps memory flat whatever a client sends.
pub const MAX_LINE: usize = 1024;

/// The input buffer: four maximal lines, so a pipelined script is read in few calls.
pub const INPUT_BUFFER: usize = 4 * MAX_LINE;

/// How long pop1d, having sent its last reply and FIN on a socket, reads and drops
/// what the client still sends, so that closing does not reset the connection (a
/// reset can destroy the last reply in flight). Short: the session is over.
pub const LINGER: Duration = Duration::from_secs(2);

/// The longest user name that may become part of a path (PROTOCOL.md).
pub const MAX_USER_NAME: usize = 64;

/// Backoff between two tries at the mailbox locks: randomised inside this range so
/// that two waiters do not retry in step (liblockfile and Dovecot do the same).
pub const LOCK_RETRY_MIN: Duration = Duration::from_millis(20);
pub const LOCK_RETRY_MAX: Duration = Duration::from_millis(200);

/// A dot-lock not modified for this long is stale (PROTOCOL.md; liblockfile's value).
pub const DOTLOCK_STALE_AGE: Duration = Duration::from_secs(300);

/// How often pop1d touches a dot-lock it holds, from the same loop that waits for
/// the client. PROTOCOL.md asks for at least every 60 s; half that leaves room for
/// a slow disk or a busy machine. Tests shorten it through the environment
/// variable `POP1D_TEST_DOTLOCK_REFRESH_MS`.
pub const DOTLOCK_REFRESH: Duration = Duration::from_secs(30);

/// The most rounds RCVD may take to shift mail that a writer ignoring the lock
/// appended during an RDEL (each round moves at most as many bytes as were counted,
/// and ends with an fsync). More than this and nothing is deleted: the client gets
/// `-ERR` and the mail again next time, which is safe, where thousands of fsyncs
/// would not be.
pub const DELETE_MAX_ROUNDS: u64 = 64;

/// The size pop1d asks for the pipe on fd 1 when it is one (shell pipes, tests,
/// benchmarks): 1 MiB, the default `/proc/sys/fs/pipe-max-size`, so that a reader
/// and pop1d wake each other 16 times less often than with the 64 KiB default.
pub const PIPE_BUFFER: i32 = 1 << 20;

/// The chunk read from a mailbox file while counting or sending: with its encoded
/// copy (up to twice as large) it still fits a typical L2 cache, and per byte the
/// system calls cost little; smaller chunks cost measurably more, larger ones
/// gain nothing (`contrib/bench/README.md`).
pub const MAILBOX_CHUNK: usize = 256 * 1024;

/// How many of the last counted bytes RCVD reads again, when the mailbox has
/// grown, to see that the counted mail still ends where it did before deleting
/// it (a writer that ignores the locks may have rewritten the file). One page's
/// read, whatever the mailbox's size.
pub const RCVD_CHECKED_TAIL: usize = 1024;

/// RDEL drops sent mailbox pages from the page cache in ranges of this size,
/// aligned to it: the largest page cache folio on x86-64 and arm64 with 4 KiB
/// pages (one PMD), so that each range holds whole folios, which alone can be
/// dropped.
pub const UNCACHE_STEP: u64 = 2 << 20;

/// Address space that must still be free before the greeting, and once a
/// transaction's buffers are taken: for the small allocations that follow (a
/// password check's 32 KiB, paths, log lines, malloc growing its heap in
/// 128 KiB steps), any of which, failing, would abort pop1d, perhaps with its
/// locks held. Many times what they take.
pub const ALLOCATION_HEADROOM: usize = 1 << 20;
