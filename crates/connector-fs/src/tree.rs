//! Tree operations on directory file descriptors: every step below a
//! directory is an `*at` call with no-follow flags, so a symbolic link
//! swapped in anywhere is never followed out of the tree.
//!
//! Every I/O operation of the crate is one of the helpers here, and each
//! helper passes its [`fault`] point first (a no-op outside the tests'
//! `failpoints` builds): the reliability tests fail any one of them.

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{self as rfs, AtFlags, FileType, Gid, Mode, OFlags, Stat, Timestamps, Uid};
use rustix::io::Errno;
use sha2::{Digest, Sha256};

use crate::fault::{self, Op};
use crate::manifest::{encode, Entry, Kind, Time};

const BUF: usize = 1 << 20;

// The field types of `struct stat` differ between architectures; on every
// 64-bit Linux target these conversions are lossless.
#[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
mod st {
    use rustix::fs::Stat;

    pub fn ino(st: &Stat) -> u64 {
        st.st_ino as u64
    }
    pub fn dev(st: &Stat) -> u64 {
        st.st_dev as u64
    }
    pub fn nlink(st: &Stat) -> u64 {
        st.st_nlink as u64
    }
    pub fn size(st: &Stat) -> u64 {
        u64::try_from(st.st_size as i64).unwrap_or(0)
    }
    pub fn mtime(st: &Stat) -> (i64, u32) {
        (
            st.st_mtime as i64,
            u32::try_from(st.st_mtime_nsec as u64).unwrap_or(0),
        )
    }
    pub fn atime(st: &Stat) -> (i64, u32) {
        (
            st.st_atime as i64,
            u32::try_from(st.st_atime_nsec as u64).unwrap_or(0),
        )
    }
}

pub use st::{dev, ino, nlink, size};

pub fn kind(st: &Stat) -> Kind {
    match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => Kind::File,
        FileType::Directory => Kind::Dir,
        FileType::Symlink => Kind::Symlink,
        FileType::Fifo => Kind::Fifo,
        FileType::Socket => Kind::Socket,
        FileType::CharacterDevice => Kind::CharDevice,
        FileType::BlockDevice => Kind::BlockDevice,
        _ => Kind::Unknown,
    }
}

/// `lstat` of `name` in `dir`; `None` when nothing is there.
pub fn lstat(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<Option<Stat>> {
    fault::check(Op::Stat)?;
    match rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// `lstat` of `name` in `dir`, which must exist.
fn stat_here(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<Stat> {
    fault::check(Op::Stat)?;
    Ok(rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)?)
}

/// `fstat`.
pub fn fstat(fd: impl AsFd) -> io::Result<Stat> {
    fault::check(Op::Stat)?;
    Ok(rfs::fstat(fd)?)
}

/// Opens the directory at an absolute path (a root, the vault), following
/// links in it: those paths were canonicalized at start.
pub fn open_path(path: &Path) -> io::Result<OwnedFd> {
    fault::check(Op::Open)?;
    Ok(rfs::openat(
        rfs::CWD,
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// `realpath`, for setting up.
pub fn canonicalize(path: &Path) -> io::Result<PathBuf> {
    fault::check(Op::Lookup)?;
    path.canonicalize()
}

/// Whether `path` (links followed) is a directory, for setting up.
pub fn is_dir(path: &Path) -> io::Result<bool> {
    fault::check(Op::Stat)?;
    Ok(std::fs::metadata(path)?.is_dir())
}

/// `mkdir -p`, for setting up the vault.
pub fn create_dir_all(path: &Path) -> io::Result<()> {
    fault::check(Op::Mkdir)?;
    std::fs::create_dir_all(path)
}

/// Creates the directory `name` in `dir` with `mode`.
pub fn mkdir(dir: BorrowedFd<'_>, name: &OsStr, mode: u32) -> io::Result<()> {
    fault::check(Op::Mkdir)?;
    Ok(rfs::mkdirat(dir, name, Mode::from_raw_mode(mode))?)
}

/// Removes the file (or link, or FIFO) `name` in `dir`.
pub fn unlink(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    fault::check(Op::Unlink)?;
    Ok(rfs::unlinkat(dir, name, AtFlags::empty())?)
}

/// Removes the empty directory `name` in `dir`.
fn rmdir(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    fault::check(Op::Unlink)?;
    Ok(rfs::unlinkat(dir, name, AtFlags::REMOVEDIR)?)
}

/// Renames, replacing what is at the destination (the crate's own files
/// in the vault only: a manifest, a journal, a seal).
pub fn rename(
    from_dir: BorrowedFd<'_>,
    from: &OsStr,
    to_dir: BorrowedFd<'_>,
    to: &OsStr,
) -> io::Result<()> {
    fault::check(Op::Rename)?;
    Ok(rfs::renameat(from_dir, from, to_dir, to)?)
}

fn readlink(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<CString> {
    fault::check(Op::ReadLink)?;
    Ok(rfs::readlinkat(dir, name, Vec::new())?)
}

fn fchmod(fd: impl AsFd, mode: Mode) -> io::Result<()> {
    fault::check(Op::Chmod)?;
    Ok(rfs::fchmod(fd, mode)?)
}

/// Owners where permitted: the result is for the caller to ignore.
fn fchown(fd: impl AsFd, st: &Stat) -> io::Result<()> {
    fault::check(Op::Chown)?;
    let (uid, gid) = owners(st);
    Ok(rfs::fchown(fd, uid, gid)?)
}

fn chownat(dir: BorrowedFd<'_>, name: &OsStr, st: &Stat) -> io::Result<()> {
    fault::check(Op::Chown)?;
    let (uid, gid) = owners(st);
    Ok(rfs::chownat(
        dir,
        name,
        uid,
        gid,
        AtFlags::SYMLINK_NOFOLLOW,
    )?)
}

fn futimens(fd: impl AsFd, e: &Entry) -> io::Result<()> {
    fault::check(Op::Utimens)?;
    Ok(rfs::futimens(fd, &timestamps(e))?)
}

/// Creates `name` in `dir` for writing: exclusive, no link followed.
fn create(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<File> {
    fault::check(Op::Create)?;
    let fd = rfs::openat(
        dir,
        name,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )?;
    Ok(File::from(fd))
}

/// All of `bytes`, one checked `write` call at a time.
fn write_all(f: &mut File, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        fault::check(Op::Write)?;
        match f.write(bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = bytes.get(n..).unwrap_or_default(),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// One checked `read` call.
fn read(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    fault::check(Op::Read)?;
    r.read(buf)
}

/// Opens the directory `name` in `dir`, refusing to follow a link.
pub fn open_dir(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<OwnedFd> {
    fault::check(Op::Open)?;
    Ok(rfs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// Opens the regular file `name` in `dir` for reading, refusing to follow a
/// link, and without touching its atime where the kernel lets us.
///
/// Callers check the entry is a regular file before they open it, but
/// something may swap a FIFO in between (by name, in a directory of a
/// root): a plain `open` of a FIFO for reading waits for a writer, for
/// ever, with the write's claim held. So the open never blocks
/// (`O_NONBLOCK`, which changes nothing for a regular file's reads), and
/// what was opened must be a regular file.
pub fn open_read(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<File> {
    fault::check(Op::Open)?;
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
    let fd = match rfs::openat(dir, name, flags | OFlags::NOATIME, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::PERM) => rfs::openat(dir, name, flags, Mode::empty())?,
        Err(e) => return Err(e.into()),
    };
    let k = kind(&rfs::fstat(&fd)?);
    if k != Kind::File {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "`{}` became a {} while it was read: only a regular file is read",
                name.to_string_lossy(),
                k.as_str()
            ),
        ));
    }
    Ok(File::from(fd))
}

/// The names in a directory, without `.` and `..`, sorted.
pub fn list(dir: BorrowedFd<'_>) -> io::Result<Vec<CString>> {
    fault::check(Op::List)?;
    let mut names = Vec::new();
    let mut d = rfs::Dir::read_from(dir)?;
    while let Some(entry) = d.read() {
        let entry = entry?;
        let name = entry.file_name();
        let bytes = name.to_bytes();
        if bytes == b"." || bytes == b".." {
            continue;
        }
        names.push(name.to_owned());
    }
    names.sort();
    Ok(names)
}

fn os(name: &CString) -> &OsStr {
    OsStr::from_bytes(name.to_bytes())
}

fn join(rel: &str, name: &CString) -> String {
    let name = encode(name.to_bytes());
    if rel.is_empty() {
        name
    } else {
        format!("{rel}/{name}")
    }
}

fn entry_of(rel: &str, st: &Stat) -> Entry {
    let k = kind(st);
    let (ms, mns) = st::mtime(st);
    let (a_s, ans) = st::atime(st);
    Entry {
        path: rel.to_owned(),
        kind: k,
        mode: st.st_mode & 0o7777,
        size: if k == Kind::Dir { 0 } else { st::size(st) },
        mtime: Time { s: ms, ns: mns },
        atime: Time { s: a_s, ns: ans },
        uid: st.st_uid,
        gid: st.st_gid,
        ino: st::ino(st),
        target: None,
        sha256: None,
    }
}

/// The entry for one `lstat` result, as the top of a tree.
pub fn entry(st: &Stat) -> Entry {
    entry_of("", st)
}

fn timestamps(e: &Entry) -> Timestamps {
    Timestamps {
        last_access: rfs::Timespec {
            tv_sec: e.atime.s,
            tv_nsec: e.atime.ns.into(),
        },
        last_modification: rfs::Timespec {
            tv_sec: e.mtime.s,
            tv_nsec: e.mtime.ns.into(),
        },
    }
}

/// Sets the atime and mtime of `name` in `dir` (the link itself for a link).
pub fn set_times(dir: BorrowedFd<'_>, name: &OsStr, e: &Entry) -> io::Result<()> {
    fault::check(Op::Utimens)?;
    Ok(rfs::utimensat(
        dir,
        name,
        &timestamps(e),
        AtFlags::SYMLINK_NOFOLLOW,
    )?)
}

fn hash_reader(mut r: impl Read, mut sink: Option<&mut File>) -> io::Result<String> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; BUF];
    loop {
        let n = match read(&mut r, &mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let chunk = buf.get(..n).unwrap_or_default();
        h.update(chunk);
        if let Some(w) = sink.as_deref_mut() {
            write_all(w, chunk)?;
        }
    }
    Ok(hex::encode(h.finalize()))
}

/// SHA-256 of bytes in memory.
pub fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// SHA-256 of the regular file `name` in `dir`.
pub fn hash_file(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<String> {
    hash_reader(open_read(dir, name)?, None)
}

/// Walks the tree at `name` in `dir` (pre-order, names sorted). Reads file
/// contents only when `hash`: O(entries) otherwise.
pub fn walk(dir: BorrowedFd<'_>, name: &OsStr, hash: bool) -> io::Result<Vec<Entry>> {
    let mut out = Vec::new();
    walk_into(dir, name, "", hash, &mut out)?;
    Ok(out)
}

fn walk_into(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    rel: &str,
    hash: bool,
    out: &mut Vec<Entry>,
) -> io::Result<()> {
    let st = stat_here(dir, name)?;
    let mut e = entry_of(rel, &st);
    match e.kind {
        Kind::Symlink => {
            let target = readlink(dir, name)?;
            e.target = Some(encode(target.to_bytes()));
        }
        Kind::File if hash => e.sha256 = Some(hash_file(dir, name)?),
        _ => {}
    }
    let is_dir = e.kind == Kind::Dir;
    out.push(e);
    if is_dir {
        let fd = open_dir(dir, name)?;
        for child in list(fd.as_fd())? {
            walk_into(fd.as_fd(), os(&child), &join(rel, &child), hash, out)?;
        }
    }
    Ok(())
}

/// Copies the tree at `src_name` in `src_dir` to `dst_name` in `dst_dir`
/// (which must not exist), keeping modes, owners where permitted, atimes,
/// mtimes, symbolic links, empty directories and FIFOs; hashes every file
/// on the way and fsyncs everything written. Returns the source's entries.
pub fn copy(
    src_dir: BorrowedFd<'_>,
    src_name: &OsStr,
    dst_dir: BorrowedFd<'_>,
    dst_name: &OsStr,
) -> io::Result<Vec<Entry>> {
    let mut out = Vec::new();
    copy_into(src_dir, src_name, dst_dir, dst_name, "", &mut out)?;
    Ok(out)
}

fn owners(st: &Stat) -> (Option<Uid>, Option<Gid>) {
    (
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
    )
}

fn copy_into(
    src_dir: BorrowedFd<'_>,
    src_name: &OsStr,
    dst_dir: BorrowedFd<'_>,
    dst_name: &OsStr,
    rel: &str,
    out: &mut Vec<Entry>,
) -> io::Result<()> {
    let st = stat_here(src_dir, src_name)?;
    let mut e = entry_of(rel, &st);
    let mode = Mode::from_raw_mode(st.st_mode & 0o7777);
    match e.kind {
        Kind::File => {
            let src = open_read(src_dir, src_name)?;
            let mut dst = create(dst_dir, dst_name)?;
            e.sha256 = Some(hash_reader(src, Some(&mut dst))?);
            // Owner first: chown clears set-id bits, chmod puts them back.
            // Owners only where permitted: a failure changes nothing else.
            let _ = fchown(&dst, &st);
            fchmod(&dst, mode)?;
            futimens(&dst, &e)?;
            fsync(&dst)?;
            out.push(e);
        }
        Kind::Dir => {
            mkdir(dst_dir, dst_name, 0o700)?;
            let src = open_dir(src_dir, src_name)?;
            let dst = open_dir(dst_dir, dst_name)?;
            let top = e.clone();
            out.push(e);
            for child in list(src.as_fd())? {
                copy_into(
                    src.as_fd(),
                    os(&child),
                    dst.as_fd(),
                    os(&child),
                    &join(rel, &child),
                    out,
                )?;
            }
            // Last, so creating the children does not move its mtime.
            let _ = fchown(&dst, &st);
            fchmod(&dst, mode)?;
            futimens(&dst, &top)?;
            fsync(&dst)?;
        }
        Kind::Symlink => {
            let target = readlink(src_dir, src_name)?;
            fault::check(Op::Symlink)?;
            rfs::symlinkat(target.as_c_str(), dst_dir, dst_name)?;
            let _ = chownat(dst_dir, dst_name, &st);
            e.target = Some(encode(target.to_bytes()));
            set_times(dst_dir, dst_name, &e)?;
            out.push(e);
        }
        Kind::Fifo => {
            fault::check(Op::Mkfifo)?;
            rfs::mkfifoat(dst_dir, dst_name, mode)?;
            let _ = chownat(dst_dir, dst_name, &st);
            fault::check(Op::Chmod)?;
            rfs::chmodat(dst_dir, dst_name, mode, AtFlags::empty())?;
            set_times(dst_dir, dst_name, &e)?;
            out.push(e);
        }
        other => {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "`{}` is a {}: it cannot be copied (only renamed)",
                    if rel.is_empty() { "." } else { rel },
                    other.as_str()
                ),
            ))
        }
    }
    Ok(())
}

/// Removes the tree at `name` in `dir`, never following a link.
pub fn remove(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    let st = stat_here(dir, name)?;
    if kind(&st) == Kind::Dir {
        let fd = open_dir(dir, name)?;
        if st.st_mode & 0o700 != 0o700 {
            // Without write and search on it, its entries cannot go.
            fchmod(&fd, Mode::from_raw_mode((st.st_mode & 0o7777) | 0o700))?;
        }
        for child in list(fd.as_fd())? {
            remove(fd.as_fd(), os(&child))?;
        }
        rmdir(dir, name)?;
    } else {
        unlink(dir, name)?;
    }
    Ok(())
}

/// Renames without replacing; `Ok(false)` when the two lie on different
/// file systems (the caller copies instead).
pub fn rename_noreplace(
    from_dir: BorrowedFd<'_>,
    from: &OsStr,
    to_dir: BorrowedFd<'_>,
    to: &OsStr,
) -> io::Result<bool> {
    fault::check(Op::Rename)?;
    match rfs::renameat_with(from_dir, from, to_dir, to, rfs::RenameFlags::NOREPLACE) {
        Ok(()) => Ok(true),
        Err(Errno::XDEV) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// An `fsync` that failed. It travels inside the `io::Error` so callers
/// can tell it from any other failure (see [`is_fsync_failure`]).
#[derive(Debug)]
pub struct FsyncFailed(Errno);

impl std::fmt::Display for FsyncFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "fsync failed: {}", self.0)
    }
}

impl std::error::Error for FsyncFailed {}

/// Every fsync of this crate goes through here, so that a failed one is
/// recognizable wherever it surfaces.
pub fn fsync(fd: impl AsFd) -> io::Result<()> {
    fault::check(Op::Fsync)
        .and_then(|()| rfs::fsync(fd))
        .map_err(|e| io::Error::new(io::Error::from(e).kind(), FsyncFailed(e)))
}

/// Whether `e` is a failed fsync.
pub fn is_fsync_failure(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<FsyncFailed>())
}

/// Creates `name` in `dir` with `bytes`, fsynced; fails if it exists.
pub fn create_file(dir: BorrowedFd<'_>, name: &OsStr, bytes: &[u8], mode: u32) -> io::Result<()> {
    let mut f = create(dir, name)?;
    write_all(&mut f, bytes)?;
    fchmod(&f, Mode::from_raw_mode(mode & 0o7777))?;
    fsync(&f)?;
    Ok(())
}

/// Reads the small regular file `name` in `dir` (a manifest).
pub fn read_small(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<Vec<u8>> {
    let mut f = open_read(dir, name)?;
    let mut bytes = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match read(&mut f, &mut buf) {
            Ok(0) => return Ok(bytes),
            Ok(n) => bytes.extend_from_slice(buf.get(..n).unwrap_or_default()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use std::time::Duration;

    use super::*;

    #[test]
    fn a_fifo_in_place_of_a_file_fails_at_once_instead_of_waiting_for_a_writer() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = open_dir(rfs::CWD, tmp.path().as_os_str()).unwrap();
        create_file(dir.as_fd(), OsStr::new("file"), b"abc", 0o600).unwrap();
        rfs::mkfifoat(&dir, "pipe", Mode::from_raw_mode(0o600)).unwrap();
        assert_eq!(
            hash_file(dir.as_fd(), OsStr::new("file")).unwrap(),
            sha256(b"abc")
        );
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = dir.try_clone().unwrap();
        std::thread::spawn(move || {
            let _ = tx.send(hash_file(reader.as_fd(), OsStr::new("pipe")));
        });
        match rx.recv_timeout(Duration::from_secs(5)) {
            Ok(Err(e)) => assert!(e.to_string().contains("fifo"), "{e}"),
            Ok(Ok(h)) => panic!("a FIFO was read as a file: {h}"),
            Err(_) => {
                // Let the stuck reader go before failing.
                let _ = rfs::openat(
                    &dir,
                    "pipe",
                    OFlags::WRONLY | OFlags::NONBLOCK,
                    Mode::empty(),
                );
                panic!("reading a FIFO waited for a writer");
            }
        }
    }
}
