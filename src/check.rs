//! `pop1d --check`: the configuration the options describe, checked without
//! serving anybody, in the manner of `sshd -t`. It reads the passwd-file as a
//! serving pop1d would, becomes the `--user` account the same way, and then
//! looks at what that account can do in each mailbox directory: whether the
//! directory exists and whether a dot-lock can be made there (made and removed
//! with the real locking code).
//!
//! It prints findings for the operator on stdout, one a line, and exits 0 when
//! pop1d can serve (warnings allowed) or 2 when it cannot. It never prints a
//! hash, and never opens a mailbox.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use pop1d::auth::PasswdFile;
use pop1d::cli::Options;
use pop1d::edge::log::Target;
use pop1d::edge::privilege;
use pop1d::lock;

/// The most mailbox directories looked at one by one; a template with `%u` in
/// a directory name has one per user, and a look at each is enough to find a
/// pattern.
const MOST_DIRECTORIES: usize = 1000;

#[derive(Default)]
struct Findings {
    lines: Vec<String>,
    errors: usize,
    warnings: usize,
}

impl Findings {
    fn ok(&mut self, text: String) {
        self.lines.push(format!("ok: {text}"));
    }
    fn warning(&mut self, text: String) {
        self.warnings += 1;
        self.lines.push(format!("warning: {text}"));
    }
    fn error(&mut self, text: String) {
        self.errors += 1;
        self.lines.push(format!("error: {text}"));
    }
}

pub fn run(options: &Options) -> ExitCode {
    let mut found = Findings::default();
    found.ok(format!(
        "options: --mailbox {} --locks {} --lock-timeout {} --timeout {} --auth-delay {} --max-auth-failures {} --log {}",
        options.mailbox.as_str(),
        lock_names(options.locks),
        options.lock_timeout.as_secs(),
        options.timeout.as_secs(),
        options.auth_delay.as_secs(),
        options.max_auth_failures,
        match options.log {
            Target::Syslog => "syslog",
            Target::Stderr => "stderr",
            Target::None => "none",
        }
    ));
    let passwd = check_passwd_file(options, &mut found);
    check_account(options, &mut found);
    if found.errors == 0 {
        check_mailbox_directories(options, passwd.as_ref(), &mut found);
    }
    if options.log == Target::Syslog && !Path::new("/dev/log").exists() {
        found.warning(
            "no syslog socket /dev/log: log lines go to stderr when it is not the client's connection, else nowhere".into(),
        );
    }
    let summary = format!(
        "pop1d --check: {} error(s), {} warning(s)\n",
        found.errors, found.warnings
    );
    let mut out = found.lines.join("\n");
    out.push('\n');
    out.push_str(&summary);
    let _ = std::io::stdout().write_all(out.as_bytes());
    if found.errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}

fn lock_names(methods: lock::Methods) -> String {
    let names: Vec<&str> = [
        (methods.fcntl, "fcntl"),
        (methods.dotlock, "dotlock"),
        (methods.flock, "flock"),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect();
    names.join(",")
}

fn check_passwd_file(options: &Options, found: &mut Findings) -> Option<PasswdFile> {
    let Some(path) = &options.passwd_file else {
        if privilege::is_root() {
            found.ok(format!(
                "no --passwd-file: system accounts, --auth {}, uid {} and up",
                match options.auth {
                    pop1d::cli::Auth::Shadow => "shadow",
                    pop1d::cli::Auth::Pam => "pam",
                },
                options.first_valid_uid
            ));
        } else {
            found.error(
                "no --passwd-file: system accounts, which need pop1d to be started as root".into(),
            );
        }
        return None;
    };
    match PasswdFile::load(path) {
        Ok((file, warnings)) => {
            found.ok(format!(
                "passwd-file {}: {} user(s)",
                path.display(),
                file.len()
            ));
            if file.is_empty() {
                found.error(format!("passwd-file {}: no usable entry", path.display()));
            }
            for warning in warnings {
                found.warning(warning);
            }
            Some(file)
        }
        Err(error) => {
            found.error(error.0);
            None
        }
    }
}

/// Becomes the serving account, as a serving pop1d would, so that what follows
/// is looked at with its rights.
fn check_account(options: &Options, found: &mut Findings) {
    if privilege::is_root() {
        let fixed_dir = options.mailbox.fixed_dir();
        let rules = privilege::LoginRules {
            not_user: options.user.as_deref(),
            mailbox_dir: fixed_dir.as_deref(),
        };
        match privilege::check_login_user(&options.login_user, &rules) {
            Ok(_) => found.ok(format!(
                "--login-user {}: reads the client's lines until a login",
                options.login_user
            )),
            Err(error) => found.error(format!("{error:#}")),
        }
        if options.login_user == "nobody" {
            found.warning(
                "--login-user nobody: other daemons run as nobody too, and any of them could signal pop1d's login processes; make a dedicated account: useradd --system --no-create-home --shell /usr/sbin/nologin pop1d-login".into(),
            );
        }
    }
    if options.passwd_file.is_none() {
        if let Some(dir) = options.mailbox.fixed_dir() {
            check_directory(&dir, false, found);
        }
        return;
    }
    match &options.user {
        Some(user) => match privilege::become_user(user) {
            Ok(()) => found.ok(format!("--user {user}: serving as this account")),
            Err(error) => found.error(format!("{error:#}")),
        },
        None if privilege::is_root() => found.error(
            "started as root without --user: pop1d refuses to serve as root (give the account that owns the mailboxes)".into(),
        ),
        None => found.ok(format!(
            "no --user: serving as uid {}",
            nix::unistd::getuid()
        )),
    }
}

fn check_mailbox_directories(options: &Options, passwd: Option<&PasswdFile>, found: &mut Findings) {
    let Some(passwd) = passwd else { return };
    let mut directories = BTreeSet::new();
    for user in passwd.users() {
        if let Some(dir) = options
            .mailbox
            .resolve(user)
            .as_deref()
            .and_then(Path::parent)
        {
            directories.insert(dir.to_path_buf());
        }
    }
    let total = directories.len();
    for dir in directories.into_iter().take(MOST_DIRECTORIES) {
        check_directory(&dir, options.locks.dotlock, found);
    }
    if total > MOST_DIRECTORIES {
        found.warning(format!(
            "{} more mailbox directories not looked at",
            total - MOST_DIRECTORIES
        ));
    }
}

fn check_directory(dir: &Path, dotlock: bool, found: &mut Findings) {
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            found.error(format!(
                "mailbox directory {}: not a directory",
                dir.display()
            ));
            return;
        }
        Err(error) => {
            found.error(format!("mailbox directory {}: {error}", dir.display()));
            return;
        }
    }
    if !dotlock {
        found.ok(format!("mailbox directory {}: exists", dir.display()));
        return;
    }
    match lock::try_dotlock_in(dir) {
        Ok(()) => found.ok(format!(
            "mailbox directory {}: a dot-lock can be made there",
            dir.display()
        )),
        Err(error) => found.error(format!(
            "mailbox directory {}: no dot-lock can be made there: {error}",
            dir.display()
        )),
    }
}
