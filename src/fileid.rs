//! Small names for what pop1d compares files by: which file it is (device and
//! inode) and whether it was changed (modification and change times).
//!
//! Pure values; reading them is the caller's business.

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;

/// Which file: the same device and inode is the same file, whatever its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
}

impl FileId {
    pub fn of(meta: &Metadata) -> FileId {
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }
}

/// When a file was last written (mtime) and last changed in any way (ctime), to
/// the nanosecond: a rewrite in place that keeps the size still moves them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stamp {
    pub modified: (i64, i64),
    pub changed: (i64, i64),
}

impl Stamp {
    pub fn of(meta: &Metadata) -> Stamp {
        Stamp {
            modified: (meta.mtime(), meta.mtime_nsec()),
            changed: (meta.ctime(), meta.ctime_nsec()),
        }
    }
}
