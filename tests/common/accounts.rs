//! Real system accounts for the tests that change the machine
//! (POP1D_SYSTEM_TESTS=1): made with `useradd` and `chpasswd` (yescrypt, as
//! Debian hashes), removed with their homes when dropped.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Mutex;

/// useradd and userdel lock /etc/passwd; tests of one file run in parallel.
static ACCOUNTS: Mutex<()> = Mutex::new(());

/// A test account, removed with its home when dropped.
pub struct TestAccount {
    pub name: String,
    pub uid: u32,
}

impl TestAccount {
    /// A new account with `password` set through `chpasswd`.
    pub fn new(password: &str) -> TestAccount {
        TestAccount::with_args(password, &[])
    }

    /// A new account made with these extra `useradd` arguments.
    pub fn with_args(password: &str, extra: &[&str]) -> TestAccount {
        for (program, package) in [
            ("useradd", "passwd"),
            ("chpasswd", "passwd"),
            ("usermod", "passwd"),
            ("chage", "passwd"),
            ("passwd", "passwd"),
            ("userdel", "passwd"),
        ] {
            require_sbin_tool(program, package);
        }
        let name = format!("p1dt{:08x}", fastrand::u32(..));
        let mut args = vec!["-m", "-s", "/usr/sbin/nologin"];
        args.extend(extra);
        args.push(&name);
        run("useradd", &args);
        let account = TestAccount {
            uid: pop1d::auth::system::lookup(&name)
                .expect("the new account")
                .uid,
            name,
        };
        let _serial = ACCOUNTS.lock().unwrap_or_else(|e| e.into_inner());
        let mut chpasswd = Command::new("chpasswd")
            .env("PATH", SBIN_PATH)
            .stdin(Stdio::piped())
            .spawn()
            .expect("cannot run chpasswd");
        writeln!(
            chpasswd.stdin.take().unwrap(),
            "{}:{password}",
            account.name
        )
        .unwrap();
        assert!(chpasswd.wait().unwrap().success(), "chpasswd failed");
        account
    }

    pub fn change(&self, program: &str, args: &[&str]) {
        let mut all = args.to_vec();
        all.push(&self.name);
        run(program, &all);
    }

    /// The hash field of the account's /etc/shadow line.
    pub fn shadow_hash(&self) -> String {
        let shadow = std::fs::read_to_string("/etc/shadow").unwrap();
        let line = shadow
            .lines()
            .find(|line| line.split(':').next() == Some(&self.name))
            .expect("the account's shadow line");
        line.split(':').nth(1).unwrap().to_owned()
    }
}

impl Drop for TestAccount {
    fn drop(&mut self) {
        let _serial = ACCOUNTS.lock().unwrap_or_else(|e| e.into_inner());
        let _ = Command::new("userdel")
            .env("PATH", SBIN_PATH)
            .args(["-r", &self.name])
            .stderr(Stdio::null())
            .status();
    }
}

pub const SBIN_PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";

/// `useradd` and friends live in /usr/sbin, which a test's PATH may lack.
pub fn require_sbin_tool(program: &str, package: &str) {
    let found = ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
        .iter()
        .any(|dir| std::path::Path::new(dir).join(program).is_file());
    assert!(
        found,
        "required tool `{program}` is missing: install the Debian package `{package}`; this test does not skip"
    );
}

pub fn run(program: &str, args: &[&str]) {
    let _serial = ACCOUNTS.lock().unwrap_or_else(|e| e.into_inner());
    let output = Command::new(program)
        .args(args)
        .env("PATH", SBIN_PATH)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Installs contrib/pam.d/pop1d as /etc/pam.d/pop1d, and puts back what was
/// there when dropped.
pub struct PamService {
    before: Option<Vec<u8>>,
}

const PAM_FILE: &str = "/etc/pam.d/pop1d";

impl PamService {
    pub fn install() -> PamService {
        for include in ["/etc/pam.d/common-auth", "/etc/pam.d/common-account"] {
            assert!(
                std::path::Path::new(include).is_file(),
                "{include} is missing: install the Debian package libpam-runtime; this test does not skip"
            );
        }
        let shipped = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/contrib/pam.d/pop1d"))
            .expect("contrib/pam.d/pop1d");
        let before = std::fs::read(PAM_FILE).ok();
        std::fs::write(PAM_FILE, shipped).expect("cannot write /etc/pam.d/pop1d");
        PamService { before }
    }
}

impl Drop for PamService {
    fn drop(&mut self) {
        let _ = match &self.before {
            Some(text) => std::fs::write(PAM_FILE, text),
            None => std::fs::remove_file(PAM_FILE),
        };
    }
}
