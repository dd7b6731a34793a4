//! What contrib/ ships, checked with the tools that read it: the systemd units
//! with `systemd-analyze verify` and `security --offline`, the manual page
//! with `mandoc -T lint`. The units' command line itself is run for real by
//! the system tests (systemd-socket-activate); here only the files.

mod common;
use common::*;

use std::fs;
use std::path::Path;
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The shipped units in a temporary directory, with the built pop1d in place
/// of `/usr/local/sbin/pop1d`: what systemd-analyze sees once pop1d is
/// installed there, without installing it.
fn units_with_the_built_binary() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for unit in ["pop1d.socket", "pop1d@.service"] {
        let text = fs::read_to_string(Path::new(ROOT).join("contrib/systemd").join(unit)).unwrap();
        fs::write(
            dir.path().join(unit),
            text.replace("/usr/local/sbin/pop1d", POP1D),
        )
        .unwrap();
    }
    dir
}

#[test]
fn the_systemd_units_verify_cleanly() {
    require_tool("systemd-analyze", "systemd");
    let dir = units_with_the_built_binary();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .args(["pop1d.socket", "pop1d@.service"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "systemd-analyze verify: {said}");
    assert!(
        said.trim().is_empty(),
        "systemd-analyze verify warns: {said}"
    );
}

#[test]
fn the_service_is_hardened() {
    require_tool("systemd-analyze", "systemd");
    let dir = units_with_the_built_binary();
    // systemd's own exposure score, 0 (best) to 10; the shipped unit scores
    // 1.6 ("OK"). It must not drift into "MEDIUM" (5) or worse.
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--threshold=30", "--no-pager"])
        .arg("pop1d@.service")
        .current_dir(dir.path())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "exposure over 3.0: {}",
        said.lines().last().unwrap_or_default()
    );
    for must in [
        "CapabilityBoundingSet=",
        "NoNewPrivileges=",
        "PrivateNetwork=",
    ] {
        assert!(said.contains(must), "{must} not judged: {said}");
    }
}

#[test]
fn the_manual_page_lints_cleanly() {
    require_tool("mandoc", "mandoc");
    let out = Command::new("mandoc")
        .args(["-T", "lint", "-W", "warning"])
        .arg(Path::new(ROOT).join("contrib/pop1d.8"))
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "mandoc: {said}"
    );
}

#[test]
fn every_option_is_in_the_manual_page_and_the_help() {
    let page = fs::read_to_string(Path::new(ROOT).join("contrib/pop1d.8")).unwrap();
    let help = Command::new(POP1D).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for option in [
        "passwd-file",
        "mailbox",
        "user",
        "login-user",
        "auth",
        "first-valid-uid",
        "locks",
        "lock-timeout",
        "timeout",
        "auth-delay",
        "max-auth-failures",
        "log",
        "check",
        "hash-password",
    ] {
        assert!(
            help.contains(&format!("--{option}")),
            "--help lacks --{option}"
        );
        assert!(
            page.contains(&format!("Fl -{option}")),
            "the manual page lacks --{option}"
        );
    }
}
