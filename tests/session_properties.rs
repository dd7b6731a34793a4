//! Properties of a whole session driven from the client's bytes, through the
//! line splitter and the session over the in-memory world of
//! `pop1d::testing`: the same checks as the `session` fuzz target of
//! `contrib/fuzz`, with inputs biased toward real commands. And the
//! passwd-file parser: any text parses without a panic, and no warning shows a
//! password hash.
//!
//! Needs the cargo feature `testing` (`cargo test --all-features`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use pop1d::limits::MAX_LINE;
use pop1d::testing::{self, Setup, EXAMPLE_MAIL};
use proptest::prelude::*;

/// Command lines a client sends, with the arguments the in-memory world knows.
const COMMANDS: &[&str] = &[
    "USER fred",
    "USER anne",
    "USER ghost",
    "USER blank",
    "USER nobody",
    "USER ../etc",
    "PASS secret",
    "PASS wrong",
    "PASS",
    "PASS ",
    "RETR fred",
    "RDEL fred",
    "RETR anne",
    "RDEL anne",
    "RDEL nobody",
    "RCEV",
    "RCVD",
    "RSET",
    "NOOP",
    "NOOP x",
    "RCEV x",
    "HELO",
    "",
];

const TERMINATORS: &[&[u8]] = &[b"\r\n", b"\n", b"\r", b"", b"\r\r\n", b"\n\r"];

/// A real command in random letter case.
fn command() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(COMMANDS),
        prop::collection::vec(any::<bool>(), 4),
    )
        .prop_map(|(command, upper)| {
            let mut bytes = command.as_bytes().to_vec();
            for (byte, upper) in bytes.iter_mut().zip(upper) {
                if !upper {
                    byte.make_ascii_lowercase();
                }
            }
            bytes
        })
}

/// One piece of client input.
fn piece() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        12 => (command(), prop::sample::select(TERMINATORS))
            .prop_map(|(command, end)| [command, end.to_vec()].concat()),
        1 => Just(b"QUIT\r\n".to_vec()),
        // Whole transactions, so that deletions happen often.
        2 => prop::sample::select(vec![
            "RDEL fred\r\nRCEV\r\nRCVD\r\n",
            "rdel fred\nrcev\nrcvd\n",
            "RETR fred\nRCEV\nRCVD\n",
            "RDEL fred\nRCEV\nRSET\n",
            "USER fred\nPASS secret\n",
        ])
        .prop_map(|script| script.as_bytes().to_vec()),
        2 => prop::collection::vec(any::<u8>(), 0..24),
        // Lines around the limit, terminator included.
        2 => (MAX_LINE - 6..MAX_LINE + 6, any::<bool>(), command()).prop_map(
            |(len, crlf, start)| {
                let end: &[u8] = if crlf { b"\r\n" } else { b"\n" };
                let mut line = start;
                line.resize(len.saturating_sub(end.len()).max(line.len()), b'x');
                [line, end.to_vec()].concat()
            }
        ),
        // Far over the limit, in pieces that may end anywhere.
        1 => (1..9000usize).prop_map(|len| vec![b'y'; len]),
    ]
}

/// A session's worth of client bytes, often beginning with a login.
fn client_bytes() -> impl Strategy<Value = Vec<u8>> {
    let start = prop::sample::select(vec![
        "",
        "USER fred\r\nPASS secret\r\n",
        "user fred\npass secret\nrdel fred\nrcev\n",
    ]);
    (start, prop::collection::vec(piece(), 0..40))
        .prop_map(|(start, pieces)| [start.as_bytes().to_vec(), pieces.concat()].concat())
}

/// Mailbox bytes, rich in the cases of the CR LF form.
fn mail() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"\n".to_vec()),
        Just(b"\r".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"From a@b Thu Nov 26 10:00:00 2026\n".to_vec()),
        prop::collection::vec(any::<u8>(), 1..8),
    ];
    prop_oneof![
        Just(EXAMPLE_MAIL.to_vec()),
        Just(Vec::new()),
        prop::collection::vec(piece, 1..30).prop_map(|pieces| pieces.concat()),
    ]
}

fn setup() -> impl Strategy<Value = Setup> {
    (mail(), 0..3u8, 1..5u32).prop_map(|(mail, anne, max_failures)| {
        let mut setup = Setup::with_fred_mail(&mail);
        setup.max_failures = max_failures;
        setup.busy.clear();
        match anne {
            0 => setup.busy.push("anne".into()),
            1 => setup.broken.push("anne".into()),
            _ => {
                setup
                    .mailboxes
                    .insert("anne".into(), b"From x\nbody".to_vec());
            }
        }
        setup
    })
}

fn read_sizes() -> impl Strategy<Value = Vec<usize>> {
    let size = prop_oneof![1..8usize, 1..300usize, 1..5000usize];
    prop::collection::vec(size, 0..64)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn sessions_keep_their_promises(
        setup in setup(),
        input in client_bytes(),
        split in read_sizes(),
    ) {
        testing::check(&setup, &input, &split);
    }

    #[test]
    fn any_text_parses_without_panic(text in any::<String>()) {
        testing::check_passwd_file(&text);
    }

    #[test]
    fn warnings_never_show_a_hash(lines in prop::collection::vec(passwd_line(), 0..12)) {
        testing::check_passwd_file(&lines.concat());
    }
}

/// One line of a passwd-file, good or bad.
fn passwd_line() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        Just("fred".to_owned()),
        Just("anne".to_owned()),
        Just(".x".to_owned()),
        Just(String::new()),
        "[a-z]{1,6}",
    ];
    let scheme = prop::sample::select(vec![
        "$y$j9T$",
        "$y$",
        "$gy$",
        "$7$",
        "$6$",
        "$6$rounds=9000$",
        "$5$",
        "$2b$10$",
        "$2y$",
        "$argon2id$v=19$m=65536,t=2,p=1$",
        "$argon2id$",
        "$argon2id$v=19$",
        "{SHA512-CRYPT}$6$",
        "{PLAIN}",
        "!",
        "*",
        "",
    ]);
    let tail = "[A-Za-z0-9./$=,]{0,40}";
    let rest = prop::sample::select(vec!["", ":", ":1000:1000::/home:/bin/sh"]);
    let end = prop::sample::select(vec!["\n", "\r\n", ""]);
    prop_oneof![
        8 => (name, scheme, tail, rest, end)
            .prop_map(|(name, scheme, tail, rest, end)| format!("{name}:{scheme}{tail}{rest}{end}")),
        1 => Just("# a comment\n".to_owned()),
        1 => Just("\n".to_owned()),
        1 => "[^\n]{0,30}\n",
    ]
}

/// The example session of PROTOCOL.md, byte for byte, split every way.
#[test]
fn the_example_session() {
    let input = b"USER fred\r\nPASS secret\r\nRDEL fred\r\nRCEV\r\nRCVD\r\nQUIT\r\n";
    let transcript = testing::check(&Setup::default(), input, &[3, 1, 7]);
    let mut wire = b"+OK POP1 server ready\r\n+OK\r\n+OK\r\n#78\r\n".to_vec();
    wire.extend(testing::wire_form(EXAMPLE_MAIL));
    wire.extend(b"+OK\r\n+OK bye\r\n");
    assert_eq!(
        String::from_utf8_lossy(&transcript.wire()),
        String::from_utf8_lossy(&wire)
    );
    assert_eq!(
        transcript.deleted,
        BTreeMap::from([("fred".to_owned(), EXAMPLE_MAIL.to_vec())])
    );
}

/// Found by `warnings_never_show_a_hash`: a crypt entry with no salt or digest
/// field (`$y$` and then no `$`) is accepted, and the warning about mixed hash
/// settings shows its whole text as its "settings".
#[test]
fn a_hash_without_salt_is_not_shown_in_a_warning() {
    testing::check_passwd_file("anne:$y$=00=,\nfred:$y$j9T$\n");
}

/// Found by the `passwd_file` fuzz target: an argon2id entry without its
/// optional version and parameters (`$argon2id$SALT$DIGEST`, valid PHC, verified
/// with the default cost) is accepted, and the warning about mixed hash
/// settings shows its salt and digest as its "settings".
#[test]
fn an_argon2id_hash_without_parameters_is_not_shown_in_a_warning() {
    testing::check_passwd_file(
        "fred:$y$j9T$dhEl2VpZzSchuG4l6glPW0$K.Kn789nygoVQx.5VNrEV6PmIscQun78TMq/atqXA16\n\
         anne:$argon2id$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG\n",
    );
}

/// The fuzz targets' seeds (`seed-*` in `contrib/fuzz/corpus/TARGET/`; the
/// rest of a corpus is a run's and not kept) and the inputs the targets found
/// (all of `contrib/fuzz/regressions/TARGET/`), replayed through the same checks.
#[test]
fn the_fuzz_seeds_and_regressions() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/fuzz");
    let session: fn(&[u8]) = |data| drop(testing::check_fuzz_input(data));
    let passwd_file: fn(&[u8]) = |data| testing::check_passwd_file(&String::from_utf8_lossy(data));
    let mut replayed = 0;
    for (target, check) in [("session", session), ("passwd_file", passwd_file)] {
        let seeds = inputs(&fuzz.join("corpus").join(target), "seed-");
        let found = inputs(&fuzz.join("regressions").join(target), "");
        for path in seeds.iter().chain(&found) {
            eprintln!("{target}: {}", path.display());
            check(&std::fs::read(path).unwrap());
            replayed += 1;
        }
    }
    assert!(replayed >= 10, "only {replayed} seeds found");
}

/// The files in `dir` whose names begin with `prefix`; none if there is no `dir`.
fn inputs(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(prefix)
        })
        .collect();
    paths.sort();
    paths
}

/// Found by the `passwd_file` fuzz target: the settings of a `$7$` entry are
/// the first 11 bytes after `$7$`; when byte 11 falls inside a character, the
/// warning about mixed hash settings shows the whole salt instead.
#[test]
fn a_scrypt_salt_is_not_shown_in_a_warning() {
    let (_, warnings) = pop1d::auth::PasswdFile::parse(
        "fred:$y$j9T$dhEl2VpZzSchuG4l6glPW0$K.Kn789nygoVQx.5VNrEV6PmIscQun78TMq/atqXA16\n\
         eve:$7$CU..../...é.saltsaltsalt$abcdefghijklmnopqrstuvwxyz0123456789ABCDE\n",
    );
    for warning in &warnings {
        assert!(!warning.contains("saltsaltsalt"), "{warning}");
    }
}
