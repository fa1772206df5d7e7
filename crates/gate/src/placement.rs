//! Where the gate keeps its own state, against where connectors may write:
//! the data directory, the vault and the store are never inside a root a
//! connector may write, and no root is inside them (section 10). A gate
//! started otherwise could be told by an agent to overwrite its own
//! database or delete its own vault, so it refuses to start.

use std::path::{Component, Path, PathBuf};

/// One of the gate's own places, named as the sentence refusing it names
/// it (`the data directory`, `the vault`, …).
#[derive(Debug, Clone)]
pub struct Place {
    pub name: String,
    /// Resolved (see [`resolve`]).
    pub path: PathBuf,
}

impl Place {
    pub fn new(name: impl Into<String>, path: impl Into<PathBuf>) -> Place {
        Place {
            name: name.into(),
            path: path.into(),
        }
    }
}

/// `inner` lies at or under `outer`, compared by whole components
/// (`/a` contains `/a/b`, never `/ab`).
pub fn contains(outer: &Path, inner: &Path) -> bool {
    inner.starts_with(outer)
}

/// Refuses the first of the gate's `places` that lies inside a `root`, or
/// a root that lies inside one of them, with one sentence naming which path
/// is inside which. Pure: both sides must already be resolved.
pub fn check(places: &[Place], roots: &[PathBuf]) -> Result<(), String> {
    for place in places {
        for root in roots {
            if contains(root, &place.path) {
                return Err(format!(
                    "{} {} is inside the fs root {}: an agent's write could overwrite or delete the gate's own state; move one outside the other",
                    place.name,
                    place.path.display(),
                    root.display()
                ));
            }
            if contains(&place.path, root) {
                return Err(format!(
                    "the fs root {} is inside {} {}: an agent's write could overwrite or delete the gate's own state; move one outside the other",
                    root.display(),
                    place.name,
                    place.path.display()
                ));
            }
        }
    }
    Ok(())
}

/// The absolute path with symbolic links resolved, for a path that may not
/// exist yet: its nearest existing ancestor is canonicalized and the rest
/// appended (`..` in the missing rest is refused, as it cannot be resolved
/// without the directories it would leave).
pub fn resolve(path: &Path) -> std::io::Result<PathBuf> {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()?.join(path)
    };
    let mut missing = Vec::new();
    let mut cur = abs.as_path();
    loop {
        match cur.canonicalize() {
            Ok(mut c) => {
                for part in missing.iter().rev() {
                    c.push(part);
                }
                return Ok(c);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let Some(parent) = cur.parent() else {
                    return Err(e);
                };
                match cur.components().next_back() {
                    Some(Component::Normal(name)) => missing.push(name.to_os_string()),
                    Some(Component::CurDir) => {}
                    _ => {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::InvalidInput,
                            format!(
                                "{}: cannot resolve `..` below a missing directory",
                                path.display()
                            ),
                        ))
                    }
                }
                cur = parent;
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn p(s: &str) -> PathBuf {
        PathBuf::from(s)
    }

    #[test]
    fn containment_is_by_whole_components() {
        assert!(contains(&p("/a"), &p("/a")));
        assert!(contains(&p("/a"), &p("/a/b")));
        assert!(!contains(&p("/a"), &p("/ab")));
        assert!(!contains(&p("/a/b"), &p("/a")));
    }

    #[test]
    fn a_place_inside_a_root_is_refused_naming_both() {
        let places = [
            Place::new("the data directory", "/srv/data"),
            Place::new("the vault", "/srv/root/vault"),
        ];
        let e = check(&places, &[p("/srv/root")]).unwrap_err();
        assert!(
            e.starts_with("the vault /srv/root/vault is inside the fs root /srv/root:"),
            "{e}"
        );
        assert!(!e.contains('\n'));
    }

    #[test]
    fn a_root_inside_a_place_or_equal_to_it_is_refused() {
        let places = [Place::new("the data directory", "/srv/data")];
        let e = check(&places, &[p("/srv/data/files")]).unwrap_err();
        assert!(
            e.starts_with("the fs root /srv/data/files is inside the data directory /srv/data:"),
            "{e}"
        );
        assert!(check(&places, &[p("/srv/data")]).is_err());
    }

    #[test]
    fn siblings_and_prefix_lookalikes_are_accepted() {
        let places = [
            Place::new("the data directory", "/srv/data"),
            Place::new("the vault", "/srv/vault"),
            Place::new("the store", "/srv/data"),
        ];
        assert!(check(&places, &[p("/srv/root"), p("/srv/dat"), p("/srv/data2")]).is_ok());
        assert!(check(&places, &[]).is_ok());
    }

    #[test]
    fn resolve_follows_symlinks_and_keeps_missing_tails() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().canonicalize().unwrap();
        let root = base.join("root");
        std::fs::create_dir(&root).unwrap();
        #[cfg(unix)]
        {
            let link = base.join("link");
            std::os::unix::fs::symlink(&root, &link).unwrap();
            let r = resolve(&link.join("data").join("vault")).unwrap();
            assert_eq!(r, root.join("data").join("vault"));
            let places = [Place::new("the vault", r)];
            assert!(check(&places, std::slice::from_ref(&root)).is_err());
        }
        assert_eq!(resolve(&root).unwrap(), root);
        assert!(resolve(&base.join("missing/../x")).is_err());
    }
}
