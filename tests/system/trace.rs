//! Replays an `strace -f` trace of a pop1d session: which credentials each
//! process (and thread) had at each `read` and `openat`.
//!
//! The trace is written with [`STRACE_ARGS`]; every process starts with the
//! credentials of the one that created it (the first one, pop1d started by
//! strace as root, with uid and gid 0), and `set*id` calls that returned 0
//! change them.

use std::collections::HashMap;

/// strace's options for a trace this module reads: follow forks, every
/// credential change, reads and opens, process creation; no signals, no
/// attach/exit notes; 256 bytes of each string.
pub const STRACE_ARGS: &[&str] = &[
    "-f",
    "-qq",
    "-e",
    "signal=none",
    "-e",
    "trace=setuid,setgid,setresuid,setresgid,setreuid,setregid,setgroups,read,openat,open,clone,clone3,fork,vfork",
    "-s",
    "256",
];

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Creds {
    pub ruid: u32,
    pub euid: u32,
    pub suid: u32,
    pub rgid: u32,
    pub egid: u32,
    pub sgid: u32,
    /// Whether setgroups was called (the supplementary groups were set).
    pub groups_set: bool,
}

#[derive(Debug)]
pub enum Event {
    /// `read(fd, "data", ...) = n`, with the (escaped) data as strace shows it.
    Read {
        pid: u32,
        creds: Creds,
        fd: i32,
        data: String,
        n: i64,
    },
    /// `openat(..., "path", flags) = ret`
    Open {
        pid: u32,
        creds: Creds,
        path: String,
        flags: String,
        ret: i64,
    },
}

/// Where the result of a call line starts: strace writes `call(args)`, spaces
/// to a column, `= result` (no result contains " = ").
fn result_at(line: &str) -> Option<usize> {
    line.rfind(" = ")
}

/// The result of a call line (`... = 12`, `... = -1 EACCES (...)`, `... = ?`).
fn result(line: &str) -> Option<i64> {
    let rest = &line[result_at(line)? + 3..];
    rest.split_whitespace().next()?.parse().ok()
}

/// The arguments between the call's first `(` and its closing `)`.
fn args(call: &str) -> &str {
    let open = call.find('(').unwrap_or(0);
    let end = result_at(call).unwrap_or(call.len());
    let close = call[..end].rfind(')').unwrap_or(end);
    &call[open + 1..close.max(open + 1)]
}

/// Numeric arguments of a set*id call (-1 kept as None).
fn ids(call: &str) -> Vec<Option<u32>> {
    args(call)
        .split(',')
        .map(|a| {
            let a = a.trim();
            if a == "-1" {
                None
            } else {
                Some(a.parse().unwrap_or_else(|_| panic!("id {a:?} in {call}")))
            }
        })
        .collect()
}

/// The first double-quoted string of the arguments, still escaped.
fn first_string(call: &str) -> String {
    let a = args(call);
    let Some(start) = a.find('"') else {
        return String::new();
    };
    let bytes = a.as_bytes();
    let mut i = start + 1;
    while i < bytes.len() && bytes[i] != b'"' {
        if bytes[i] == b'\\' {
            i += 1;
        }
        i += 1;
    }
    a[start + 1..i.min(a.len())].to_string()
}

/// Replays a whole trace.
pub fn replay(text: &str) -> Vec<Event> {
    let mut creds: HashMap<u32, Creds> = HashMap::new();
    let mut parent: HashMap<u32, u32> = HashMap::new();
    let mut pending: HashMap<u32, String> = HashMap::new();
    let mut first: Option<u32> = None;
    // Pass 1: who created whom (the results of clone, fork and vfork).
    let mut calls: Vec<(u32, String)> = Vec::new();
    for line in text.lines() {
        let Some((pid, rest)) = line.split_once(' ') else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        first.get_or_insert(pid);
        let rest = rest.trim_start();
        if let Some(before) = rest.strip_suffix("<unfinished ...>") {
            pending.insert(pid, before.trim_end().to_string());
            continue;
        }
        let call = if rest.starts_with("<... ") {
            let after = &rest[rest.find("resumed>").expect("resumed line") + 8..];
            let start = pending.remove(&pid).unwrap_or_default();
            format!("{start}{after}")
        } else {
            rest.to_string()
        };
        let name = call.split('(').next().unwrap_or("").to_string();
        if matches!(name.as_str(), "clone" | "clone3" | "fork" | "vfork") {
            if let Some(child) = result(&call).filter(|&c| c > 0) {
                parent.insert(child as u32, pid);
            }
        }
        calls.push((pid, call));
    }
    // Pass 2, in the order the calls completed. A child's first call comes
    // after its creator's clone started and the creator cannot change its
    // credentials until that clone returns, so the creator's credentials at
    // the child's first call are the child's.
    let first = first.expect("empty trace");
    creds.insert(first, Creds::default());
    let mut events = Vec::new();
    for (pid, call) in calls {
        if !creds.contains_key(&pid) {
            let p = *parent
                .get(&pid)
                .unwrap_or_else(|| panic!("pid {pid}: no creator in the trace"));
            let c = *creds.get(&p).expect("creator's credentials");
            creds.insert(pid, c);
        }
        let c = creds.get_mut(&pid).unwrap();
        let name = call.split('(').next().unwrap_or("");
        let ret = result(&call);
        let ok = ret == Some(0);
        match name {
            "setresuid" | "setresuid32" if ok => {
                let v = ids(&call);
                c.ruid = v[0].unwrap_or(c.ruid);
                c.euid = v[1].unwrap_or(c.euid);
                c.suid = v[2].unwrap_or(c.suid);
            }
            "setresgid" | "setresgid32" if ok => {
                let v = ids(&call);
                c.rgid = v[0].unwrap_or(c.rgid);
                c.egid = v[1].unwrap_or(c.egid);
                c.sgid = v[2].unwrap_or(c.sgid);
            }
            "setreuid" | "setreuid32" if ok => {
                let v = ids(&call);
                if let Some(r) = v[0] {
                    c.ruid = r;
                }
                if let Some(e) = v[1] {
                    c.euid = e;
                }
                if v[0].is_some() || v[1].is_some_and(|e| e != c.ruid) {
                    c.suid = c.euid;
                }
            }
            "setregid" | "setregid32" if ok => {
                let v = ids(&call);
                if let Some(r) = v[0] {
                    c.rgid = r;
                }
                if let Some(e) = v[1] {
                    c.egid = e;
                }
                if v[0].is_some() || v[1].is_some_and(|e| e != c.rgid) {
                    c.sgid = c.egid;
                }
            }
            "setuid" | "setuid32" if ok => {
                let u = ids(&call)[0].expect("setuid(-1)");
                if c.euid == 0 {
                    (c.ruid, c.euid, c.suid) = (u, u, u);
                } else {
                    c.euid = u;
                }
            }
            "setgid" | "setgid32" if ok => {
                let g = ids(&call)[0].expect("setgid(-1)");
                if c.euid == 0 {
                    (c.rgid, c.egid, c.sgid) = (g, g, g);
                } else {
                    c.egid = g;
                }
            }
            "setgroups" | "setgroups32" if ok => c.groups_set = true,
            "read" => {
                let fd = args(&call)
                    .split(',')
                    .next()
                    .unwrap()
                    .trim()
                    .parse()
                    .unwrap_or(-1);
                events.push(Event::Read {
                    pid,
                    creds: *c,
                    fd,
                    data: first_string(&call),
                    n: ret.unwrap_or(-1),
                });
            }
            "openat" | "open" => {
                let a = args(&call);
                let flags = a
                    .rsplit_once("\", ")
                    .map(|(_, f)| f.to_string())
                    .unwrap_or_default();
                events.push(Event::Open {
                    pid,
                    creds: *c,
                    path: first_string(&call),
                    flags,
                    ret: ret.unwrap_or(-1),
                });
            }
            _ => {}
        }
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replays_forks_and_switches() {
        let t = "\
100 read(0, \"USER a\\r\\n\", 8192) = 8
100 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|SIGCHLD <unfinished ...>
101 setgroups(1, [65534]) = 0
101 setresgid(65534, 65534, 65534) = 0
101 setresuid(65534, 65534, 65534) = 0
101 read(0, \"PASS x\\r\\n\", 8192) = 8
100 <... clone resumed>, child_tidptr=0x7f) = 101
100 setgid(1001)                      = 0
100 setuid(1001)                      = 0
100 openat(AT_FDCWD, \"/var/mail/a\", O_RDWR|O_CLOEXEC) = 3
100 setresuid(-1, 0, -1) = -1 EPERM (Operation not permitted)
100 read(0,  <unfinished ...>
100 <... read resumed>\"RDEL a\\r\\n\", 8192) = 8
";
        let ev = replay(t);
        let summary: Vec<(u32, u32, u32, String)> = ev
            .iter()
            .map(|e| match e {
                Event::Read {
                    pid, creds, data, ..
                } => (*pid, creds.euid, creds.egid, data.clone()),
                Event::Open {
                    pid, creds, path, ..
                } => (*pid, creds.euid, creds.egid, path.clone()),
            })
            .collect();
        assert_eq!(
            summary,
            [
                (100, 0, 0, "USER a\\r\\n".to_string()),
                (101, 65534, 65534, "PASS x\\r\\n".to_string()),
                (100, 1001, 1001, "/var/mail/a".to_string()),
                (100, 1001, 1001, "RDEL a\\r\\n".to_string()),
            ]
        );
    }
}
