//! I/O faults on demand, for the reliability tests (SQLite's method: fail
//! I/O operation k, for k = 1, 2, ... until the operation under test
//! completes, once or for good, and check what each failure leaves).
//!
//! Every I/O operation of this crate goes through a helper of
//! [`crate::tree`]: opening (a directory, a file to read, a file created
//! to write), `stat`, listing a directory, reading a link, each `read` and
//! `write` call, `fchmod`/`fchown`/`utimensat`, `fsync`, `rename`,
//! `unlink`/`rmdir`, `mkdir`, `symlink`, `mkfifo`, and the path lookups
//! of setting the connector up. Each helper first calls [`check`] with the
//! kind of operation ([`Op`]), which evaluates two fail points of the
//! `fail` crate:
//!
//! - `fs.io`: every operation (what a sweep over k counts);
//! - `fs.io.<op>` (`fs.io.fsync`, `fs.io.rename`, ...): one kind only.
//!
//! On the background sealer's thread the points are `fs.sealer.io` and
//! `fs.sealer.io.<op>` instead, so that a sweep of a capture, an execute
//! or a restore counts their operations alone, deterministically, whatever
//! the sealer is doing meanwhile.
//!
//! A point configured to return names the errno the operation fails with:
//! `return(EIO)`, `return(ENOSPC)` (also `EDQUOT`, `EROFS`, `EACCES`,
//! `EPERM`, `ENOMEM`, `EINTR`; anything else, or none, is `EIO`). With the
//! `fail` crate's counts, `"{k-1}*off->1*return(EIO)->off"` fails
//! operation k once and `"{k-1}*off->return(ENOSPC)"` fails operation k
//! and every later one; in a `recourse serve` built for the tests,
//! `FAILPOINTS="fs.io.fsync=1*off->return(EIO)"` fails every fsync but the
//! first. The operation fails as the system call would have: it does not
//! run, and the errno comes back where the call's would. A failed `fsync`
//! is a [`crate::tree::FsyncFailed`] like a real one, so the durability
//! handling sees it.
//!
//! The layer exists only in builds with this crate's `failpoints` feature
//! (the tests turn it on); elsewhere [`check`] is an empty inline function
//! and nothing of this module is compiled.

/// The kinds of I/O operation, each with its own fail point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    /// Opening a directory, or a file to read.
    Open,
    /// Opening a file to write: created, exclusive.
    Create,
    Stat,
    List,
    ReadLink,
    /// One `read` call.
    Read,
    /// One `write` call.
    Write,
    Chmod,
    Chown,
    Utimens,
    Fsync,
    Rename,
    /// `unlink`, and `rmdir`.
    Unlink,
    Mkdir,
    Symlink,
    Mkfifo,
    /// A path resolved from the current directory (canonicalizing, setup).
    Lookup,
}

#[cfg(feature = "failpoints")]
pub use imp::take_injected;

#[cfg(feature = "failpoints")]
pub(crate) use imp::{background, check};

#[cfg(not(feature = "failpoints"))]
pub(crate) use off::{background, check};

#[cfg(not(feature = "failpoints"))]
mod off {
    use rustix::io::Errno;

    use super::Op;

    #[inline(always)]
    pub(crate) fn check(_op: Op) -> Result<(), Errno> {
        Ok(())
    }

    #[inline(always)]
    pub(crate) fn background() {}
}

#[cfg(feature = "failpoints")]
mod imp {
    use std::cell::Cell;
    use std::sync::{Mutex, PoisonError};

    use fail::fail_point;
    use rustix::io::Errno;

    use super::Op;

    thread_local! {
        /// Set on the sealer's thread: its operations use the
        /// `fs.sealer.io` points.
        static BACKGROUND: Cell<bool> = const { Cell::new(false) };
    }

    /// The kinds of the operations failed since the last
    /// [`take_injected`], in order (foreground and background alike).
    static LOG: Mutex<Vec<(Op, bool)>> = Mutex::new(Vec::new());

    /// Each kind's name, and its points in the foreground and on the
    /// sealer's thread (no allocation per operation).
    macro_rules! names {
        ($($op:ident => $name:literal,)*) => {
            impl Op {
                fn name(self) -> &'static str {
                    match self {
                        $(Op::$op => $name,)*
                    }
                }

                fn point(self, bg: bool) -> &'static str {
                    match (self, bg) {
                        $(
                            (Op::$op, false) => concat!("fs.io.", $name),
                            (Op::$op, true) => concat!("fs.sealer.io.", $name),
                        )*
                    }
                }
            }
        };
    }

    names! {
        Open => "open",
        Create => "create",
        Stat => "stat",
        List => "list",
        ReadLink => "readlink",
        Read => "read",
        Write => "write",
        Chmod => "chmod",
        Chown => "chown",
        Utimens => "utimens",
        Fsync => "fsync",
        Rename => "rename",
        Unlink => "unlink",
        Mkdir => "mkdir",
        Symlink => "symlink",
        Mkfifo => "mkfifo",
        Lookup => "lookup",
    }

    /// Marks the calling thread as the sealer's (its points are
    /// `fs.sealer.io...`).
    pub(crate) fn background() {
        BACKGROUND.with(|b| b.set(true));
    }

    /// The operations failed on purpose since the last call: each kind's
    /// name, and whether it ran on the sealer's thread.
    pub fn take_injected() -> Vec<(&'static str, bool)> {
        let mut log = LOG.lock().unwrap_or_else(PoisonError::into_inner);
        std::mem::take(&mut *log)
            .into_iter()
            .map(|(op, bg)| (op.name(), bg))
            .collect()
    }

    fn errno(arg: Option<&str>) -> Errno {
        match arg.map(str::trim) {
            Some("ENOSPC") => Errno::NOSPC,
            Some("EDQUOT") => Errno::DQUOT,
            Some("EROFS") => Errno::ROFS,
            Some("EACCES") => Errno::ACCESS,
            Some("EPERM") => Errno::PERM,
            Some("ENOMEM") => Errno::NOMEM,
            Some("EINTR") => Errno::INTR,
            _ => Errno::IO,
        }
    }

    fn injected_now(op: Op, bg: bool, arg: Option<String>) -> Result<(), Errno> {
        LOG.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((op, bg));
        Err(errno(arg.as_deref()))
    }

    /// Fails the operation when its point says so.
    pub(crate) fn check(op: Op) -> Result<(), Errno> {
        let bg = BACKGROUND.with(Cell::get);
        let prefix = if bg { "fs.sealer.io" } else { "fs.io" };
        fail_point!(prefix, |arg| injected_now(op, bg, arg));
        fail_point!(op.point(bg), |arg| injected_now(op, bg, arg));
        Ok(())
    }
}
