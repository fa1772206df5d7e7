//! Tree operations on directory file descriptors: every step below a
//! directory is an `*at` call with no-follow flags, so a symbolic link
//! swapped in anywhere is never followed out of the tree.

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use rustix::fs::{self as rfs, AtFlags, FileType, Gid, Mode, OFlags, Stat, Timestamps, Uid};
use rustix::io::Errno;
use sha2::{Digest, Sha256};

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

pub use st::{dev, ino, nlink};

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
    match rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Opens the directory `name` in `dir`, refusing to follow a link.
pub fn open_dir(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<OwnedFd> {
    Ok(rfs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// Opens the regular file `name` in `dir` for reading, refusing to follow a
/// link, and without touching its atime where the kernel lets us.
pub fn open_read(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<File> {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = match rfs::openat(dir, name, flags | OFlags::NOATIME, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::PERM) => rfs::openat(dir, name, flags, Mode::empty())?,
        Err(e) => return Err(e.into()),
    };
    Ok(File::from(fd))
}

/// The names in a directory, without `.` and `..`, sorted.
pub fn list(dir: BorrowedFd<'_>) -> io::Result<Vec<CString>> {
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
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let chunk = buf.get(..n).unwrap_or_default();
        h.update(chunk);
        if let Some(w) = sink.as_deref_mut() {
            w.write_all(chunk)?;
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
    let st = rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)?;
    let mut e = entry_of(rel, &st);
    match e.kind {
        Kind::Symlink => {
            let target = rfs::readlinkat(dir, name, Vec::new())?;
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
    let st = rfs::statat(src_dir, src_name, AtFlags::SYMLINK_NOFOLLOW)?;
    let mut e = entry_of(rel, &st);
    let mode = Mode::from_raw_mode(st.st_mode & 0o7777);
    let (uid, gid) = owners(&st);
    match e.kind {
        Kind::File => {
            let src = open_read(src_dir, src_name)?;
            let dst = rfs::openat(
                dst_dir,
                dst_name,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )?;
            let mut dst = File::from(dst);
            e.sha256 = Some(hash_reader(src, Some(&mut dst))?);
            // Owner first: chown clears set-id bits, chmod puts them back.
            let _ = rfs::fchown(&dst, uid, gid);
            rfs::fchmod(&dst, mode)?;
            rfs::futimens(&dst, &timestamps(&e))?;
            fsync(&dst)?;
            out.push(e);
        }
        Kind::Dir => {
            rfs::mkdirat(dst_dir, dst_name, Mode::from_raw_mode(0o700))?;
            let src = open_dir(src_dir, src_name)?;
            let dst = open_dir(dst_dir, dst_name)?;
            let times = timestamps(&e);
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
            let _ = rfs::fchown(&dst, uid, gid);
            rfs::fchmod(&dst, mode)?;
            rfs::futimens(&dst, &times)?;
            fsync(&dst)?;
        }
        Kind::Symlink => {
            let target = rfs::readlinkat(src_dir, src_name, Vec::new())?;
            rfs::symlinkat(target.as_c_str(), dst_dir, dst_name)?;
            let _ = rfs::chownat(dst_dir, dst_name, uid, gid, AtFlags::SYMLINK_NOFOLLOW);
            e.target = Some(encode(target.to_bytes()));
            set_times(dst_dir, dst_name, &e)?;
            out.push(e);
        }
        Kind::Fifo => {
            rfs::mkfifoat(dst_dir, dst_name, mode)?;
            let _ = rfs::chownat(dst_dir, dst_name, uid, gid, AtFlags::SYMLINK_NOFOLLOW);
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
    let st = rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)?;
    if kind(&st) == Kind::Dir {
        let fd = open_dir(dir, name)?;
        if st.st_mode & 0o700 != 0o700 {
            // Without write and search on it, its entries cannot go.
            rfs::fchmod(&fd, Mode::from_raw_mode((st.st_mode & 0o7777) | 0o700))?;
        }
        for child in list(fd.as_fd())? {
            remove(fd.as_fd(), os(&child))?;
        }
        rfs::unlinkat(dir, name, AtFlags::REMOVEDIR)?;
    } else {
        rfs::unlinkat(dir, name, AtFlags::empty())?;
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
    rfs::fsync(fd).map_err(|e| io::Error::new(io::Error::from(e).kind(), FsyncFailed(e)))
}

/// Whether `e` is a failed fsync.
pub fn is_fsync_failure(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<FsyncFailed>())
}

/// Creates `name` in `dir` with `bytes`, fsynced; fails if it exists.
pub fn create_file(dir: BorrowedFd<'_>, name: &OsStr, bytes: &[u8], mode: u32) -> io::Result<()> {
    let fd = rfs::openat(
        dir,
        name,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )?;
    let mut f = File::from(fd);
    f.write_all(bytes)?;
    rfs::fchmod(&f, Mode::from_raw_mode(mode & 0o7777))?;
    fsync(&f)?;
    Ok(())
}

/// Reads the small regular file `name` in `dir` (a manifest).
pub fn read_small(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<Vec<u8>> {
    let mut f = open_read(dir, name)?;
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes)?;
    Ok(bytes)
}
