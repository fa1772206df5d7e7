//! What an `fs` write will change, read now: the tree a delete or a move
//! takes away, a file write as a diff. Paths resolve exactly as `plan`
//! resolves them (from the root's descriptor, no symbolic link followed), so
//! the preview shows the target the write would act on, never a file a
//! planted link points at. Bounded: a tree is walked to at most
//! [`WALK_LIMIT`] entries, a file read for a diff up to [`DIFF_BYTES`] and
//! hashed up to [`HASH_BYTES`].

use std::io::Read;

use recourse_client::{
    effect::{EFFECT_DIFF_LINES, EFFECT_TREE_ENTRIES},
    DiffLine, DiffTag, EffectChange, FileFacts, Notable, TextDiff, TreeEntry, TreeSummary,
};

use super::*;

/// Entries a tree walk visits at most; past it the counts are lower bounds
/// (`complete: false`).
const WALK_LIMIT: u64 = 200_000;
/// Each side of a file diff is read up to this many bytes.
const DIFF_BYTES: u64 = 1024 * 1024;
/// Files larger than this are not hashed while a person waits.
const HASH_BYTES: u64 = 256 * 1024 * 1024;
/// Unchanged lines kept around each change.
const CONTEXT: usize = 3;

impl Inner {
    pub(crate) fn effect(&self, action: &Value) -> Result<EffectChange, ConnectorError> {
        Ok(match action::parse(action)? {
            FsAction::Delete { path } => {
                let place = self.place(&path, "action.path")?;
                let st = place.stat()?.ok_or_else(|| {
                    ConnectorError::invalid("action.path", format!("`{path}` does not exist"))
                })?;
                EffectChange::Removes {
                    tree: summarize(&place, &st)?,
                    path,
                }
            }
            FsAction::Move { path, to } => {
                let src = self.place(&path, "action.path")?;
                let st = src.stat()?.ok_or_else(|| {
                    ConnectorError::invalid("action.path", format!("`{path}` does not exist"))
                })?;
                let dst = self.place(&to, "action.to")?;
                let replaces = match dst.stat()? {
                    Some(d) => Some(summarize(&dst, &d)?),
                    None => None,
                };
                EffectChange::Moves {
                    tree: summarize(&src, &st)?,
                    replaces,
                    path,
                    to,
                }
            }
            FsAction::Write { path, content } => {
                let place = self.place(&path, "action.path")?;
                let after = FileFacts {
                    size: content.len() as u64,
                    sha256: Some(tree::sha256(&content)),
                    text: is_text(&content),
                };
                let (before, old) = match place.stat()? {
                    None => (None, Some(Vec::new())),
                    Some(st) if tree::kind(&st) == Kind::File => {
                        let (facts, old) = read_file(&place, &st)?;
                        (Some(facts), old)
                    }
                    // `plan` refuses to overwrite anything else; say what is there.
                    Some(st) => (
                        Some(FileFacts {
                            size: tree::size(&st),
                            sha256: None,
                            text: false,
                        }),
                        None,
                    ),
                };
                let diff = match (&old, after.text, content.len() as u64 <= DIFF_BYTES) {
                    (Some(old), true, true) if is_text(old) => std::str::from_utf8(old)
                        .ok()
                        .zip(std::str::from_utf8(&content).ok())
                        .map(|(a, b)| line_diff(a, b)),
                    _ => None,
                };
                EffectChange::Writes {
                    path,
                    before,
                    after,
                    diff,
                }
            }
        })
    }
}

/// The file's facts, and its bytes when it is small enough to diff.
fn read_file(
    place: &Place,
    st: &rfs::Stat,
) -> Result<(FileFacts, Option<Vec<u8>>), ConnectorError> {
    let size = tree::size(st);
    let err = io(format!("reading `{}`", place.abs));
    if size > DIFF_BYTES {
        let sha256 = if size <= HASH_BYTES {
            Some(tree::hash_file(place.parent.as_fd(), place.name()).map_err(err)?)
        } else {
            None
        };
        // Text or not from its first bytes: enough to say why there is no diff.
        let mut head = vec![0u8; 8192];
        let mut f = tree::open_read(place.parent.as_fd(), place.name())
            .map_err(io(format!("reading `{}`", place.abs)))?;
        let n = f
            .read(&mut head)
            .map_err(io(format!("reading `{}`", place.abs)))?;
        head.truncate(n);
        let text = !head.contains(&0);
        return Ok((FileFacts { size, sha256, text }, None));
    }
    let bytes = tree::read_small(place.parent.as_fd(), place.name()).map_err(err)?;
    let facts = FileFacts {
        size: bytes.len() as u64,
        sha256: Some(tree::sha256(&bytes)),
        text: is_text(&bytes),
    };
    Ok((facts, Some(bytes)))
}

fn is_text(bytes: &[u8]) -> bool {
    !bytes.contains(&0) && std::str::from_utf8(bytes).is_ok()
}

/// A line diff with [`CONTEXT`] unchanged lines around each change and the
/// rest shortened to a `skip` line, at most [`EFFECT_DIFF_LINES`] lines.
pub(crate) fn line_diff(old: &str, new: &str) -> TextDiff {
    use similar::{ChangeTag, TextDiff as Similar};
    let d = Similar::from_lines(old, new);
    let (mut added, mut removed) = (0u64, 0u64);
    for c in d.iter_all_changes() {
        match c.tag() {
            ChangeTag::Insert => added += 1,
            ChangeTag::Delete => removed += 1,
            ChangeTag::Equal => {}
        }
    }
    let mut lines = Vec::new();
    let mut truncated = false;
    let mut shown_to = 0usize; // old lines up to here are accounted for
    let groups = d.grouped_ops(CONTEXT);
    'groups: for group in &groups {
        let Some(first) = group.first() else { continue };
        let start = first.old_range().start;
        if start > shown_to {
            lines.push(skip(start - shown_to));
        }
        for op in group {
            for c in d.iter_changes(op) {
                if lines.len() >= EFFECT_DIFF_LINES {
                    truncated = true;
                    break 'groups;
                }
                let tag = match c.tag() {
                    ChangeTag::Equal => DiffTag::Same,
                    ChangeTag::Insert => DiffTag::Added,
                    ChangeTag::Delete => DiffTag::Removed,
                };
                let text = c.value().trim_end_matches(['\n', '\r']).to_owned();
                lines.push(DiffLine { tag, text });
            }
            shown_to = op.old_range().end;
        }
    }
    let old_lines = d.old_slices().len();
    if !truncated && !groups.is_empty() && shown_to < old_lines {
        lines.push(skip(old_lines - shown_to));
    }
    TextDiff {
        added,
        removed,
        lines,
        truncated,
    }
}

fn skip(n: usize) -> DiffLine {
    DiffLine {
        tag: DiffTag::Skip,
        text: if n == 1 {
            "1 unchanged line".to_owned()
        } else {
            format!("{n} unchanged lines")
        },
    }
}

/// Counts under one top-level entry.
#[derive(Default)]
struct Tally {
    files: u64,
    dirs: u64,
    others: u64,
    bytes: u64,
}

struct Walk {
    visited: u64,
    notable: Vec<Notable>,
}

/// The tree at `place`: counts, notable things inside, the top level
/// largest first.
fn summarize(place: &Place, st: &rfs::Stat) -> Result<TreeSummary, ConnectorError> {
    let kind = tree::kind(st);
    let mut walk = Walk {
        visited: 0,
        notable: Vec::new(),
    };
    let mut total = Tally::default();
    let mut entries = Vec::new();
    let err = |e| io(format!("reading `{}`", place.abs))(e);
    if kind == Kind::Dir {
        note_notable(&mut walk, "", place.name());
        let dir = tree::open_dir(place.parent.as_fd(), place.name()).map_err(err)?;
        total.dirs += 1;
        for name in tree::list(dir.as_fd()).map_err(err)? {
            let os = <OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(name.to_bytes());
            let rel = String::from_utf8_lossy(name.to_bytes()).into_owned();
            let Some(cst) = lstat(dir.as_fd(), os).map_err(err)? else {
                continue; // gone since it was listed
            };
            let mut t = Tally::default();
            tally(dir.as_fd(), os, &rel, &cst, &mut t, &mut walk).map_err(err)?;
            total.files += t.files;
            total.dirs += t.dirs;
            total.others += t.others;
            total.bytes += t.bytes;
            entries.push(TreeEntry {
                name: rel,
                kind: tree::kind(&cst).as_str().to_owned(),
                files: t.files,
                bytes: t.bytes,
            });
        }
    } else {
        add(&mut total, st);
        walk.visited = 1;
    }
    entries.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.name.cmp(&b.name)));
    let more_entries = entries.len().saturating_sub(EFFECT_TREE_ENTRIES) as u64;
    entries.truncate(EFFECT_TREE_ENTRIES);
    Ok(TreeSummary {
        kind: kind.as_str().to_owned(),
        files: total.files,
        dirs: total.dirs,
        others: total.others,
        bytes: total.bytes,
        complete: walk.visited <= WALK_LIMIT,
        notable: walk.notable,
        entries,
        more_entries,
    })
}

fn add(t: &mut Tally, st: &rfs::Stat) {
    match tree::kind(st) {
        Kind::Dir => t.dirs += 1,
        Kind::File => {
            t.files += 1;
            t.bytes += tree::size(st);
        }
        Kind::Symlink => {
            t.others += 1;
            t.bytes += tree::size(st);
        }
        _ => t.others += 1,
    }
}

fn note_notable(walk: &mut Walk, rel: &str, name: &OsStr) {
    if let Some((_, _, what)) = NOTABLE.iter().find(|(n, _, _)| OsStr::new(n) == name) {
        if walk.notable.len() < EFFECT_TREE_ENTRIES {
            walk.notable.push(Notable {
                path: if rel.is_empty() {
                    ".".to_owned()
                } else {
                    rel.to_owned()
                },
                what: (*what).to_owned(),
            });
        }
    }
}

fn tally(
    dir: std::os::fd::BorrowedFd<'_>,
    name: &OsStr,
    rel: &str,
    st: &rfs::Stat,
    t: &mut Tally,
    walk: &mut Walk,
) -> std::io::Result<()> {
    walk.visited += 1;
    if walk.visited > WALK_LIMIT {
        return Ok(());
    }
    add(t, st);
    note_notable(walk, rel, name);
    if tree::kind(st) != Kind::Dir {
        return Ok(());
    }
    let fd = tree::open_dir(dir, name)?;
    for child in tree::list(fd.as_fd())? {
        if walk.visited > WALK_LIMIT {
            break;
        }
        let os = <OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(child.to_bytes());
        let Some(cst) = lstat(fd.as_fd(), os)? else {
            continue;
        };
        let crel = format!("{rel}/{}", String::from_utf8_lossy(child.to_bytes()));
        tally(fd.as_fd(), os, &crel, &cst, t, walk)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;

    fn tags(d: &TextDiff) -> Vec<(DiffTag, &str)> {
        d.lines.iter().map(|l| (l.tag, l.text.as_str())).collect()
    }

    #[test]
    fn a_diff_keeps_three_lines_around_a_change_and_counts_the_rest() {
        let old: String = (1..=20).map(|i| format!("line {i}\n")).collect();
        let new = old.replace("line 10\n", "line ten\n");
        let d = line_diff(&old, &new);
        assert_eq!((d.added, d.removed), (1, 1));
        assert_eq!(
            tags(&d),
            vec![
                (DiffTag::Skip, "6 unchanged lines"),
                (DiffTag::Same, "line 7"),
                (DiffTag::Same, "line 8"),
                (DiffTag::Same, "line 9"),
                (DiffTag::Removed, "line 10"),
                (DiffTag::Added, "line ten"),
                (DiffTag::Same, "line 11"),
                (DiffTag::Same, "line 12"),
                (DiffTag::Same, "line 13"),
                (DiffTag::Skip, "7 unchanged lines"),
            ]
        );
        assert!(!d.truncated);
    }

    #[test]
    fn a_new_file_is_all_added_and_a_long_diff_is_cut_and_says_so() {
        let new: String = (0..1000).map(|i| format!("{i}\n")).collect();
        let d = line_diff("", &new);
        assert_eq!((d.added, d.removed), (1000, 0));
        assert_eq!(d.lines.len(), EFFECT_DIFF_LINES);
        assert!(d.truncated);
        assert!(d.lines.iter().all(|l| l.tag == DiffTag::Added));
    }

    #[test]
    fn the_same_text_has_no_lines() {
        let d = line_diff("a\nb\n", "a\nb\n");
        assert_eq!((d.added, d.removed, d.lines.len()), (0, 0, 0));
    }
}
