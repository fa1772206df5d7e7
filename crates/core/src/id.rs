//! Resource ids (`scheme:rest`) and the `fs:` containment rule.

/// Checks the `scheme:rest` shape; for `fs:` also that the path is absolute
/// and normalized, because containment compares whole path segments and a
/// `..` or a doubled slash would let an id escape the tree it names.
pub fn check(id: &str) -> Result<(), String> {
    let Some((scheme, rest)) = id.split_once(':') else {
        return Err(format!(
            "`{id}` is not a resource id (expected `scheme:rest`)"
        ));
    };
    let scheme_ok = scheme
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.' | '_'));
    if !scheme_ok || rest.is_empty() {
        return Err(format!(
            "`{id}` is not a resource id (expected `scheme:rest`)"
        ));
    }
    if id.contains('\0') {
        return Err(format!("`{}` contains a NUL byte", id.escape_default()));
    }
    if scheme == "fs" {
        check_fs_path(rest).map_err(|why| format!("`{id}`: {why}"))?;
    }
    Ok(())
}

fn check_fs_path(path: &str) -> Result<(), &'static str> {
    if !path.starts_with('/') {
        return Err("an fs path must be absolute");
    }
    if path == "/" {
        return Ok(());
    }
    if path.ends_with('/') {
        return Err("an fs path must not end with `/`");
    }
    for segment in path.split('/').skip(1) {
        match segment {
            "" => return Err("an fs path must not contain an empty segment"),
            "." | ".." => return Err("an fs path must not contain `.` or `..`"),
            _ => {}
        }
    }
    Ok(())
}

/// The `fs:` ids that contain `id`, nearest first (`fs:/a/b` gives `fs:/a`,
/// then `fs:/`). Empty for other schemes and for `fs:/` itself.
pub fn fs_ancestors(id: &str) -> impl Iterator<Item = &str> {
    let path = id
        .strip_prefix("fs:")
        .filter(|p| p.starts_with('/') && *p != "/");
    let mut cut = path.map(|p| p.len() + 3);
    std::iter::from_fn(move || {
        let end = cut?;
        let head = id.get(..end)?;
        let slash = head.rfind('/')?;
        // `fs:/` is the root: keep its slash.
        let keep = if slash == 3 { 4 } else { slash };
        cut = if slash == 3 { None } else { Some(slash) };
        id.get(..keep)
    })
}

/// The ids that contain `id`, nearest first: `fs:` parents (as
/// [`fs_ancestors`]), else `scheme:a/b/c` -> `scheme:a/b` -> `scheme:a`
/// (`sql:db/table/pk` -> `sql:db/table` -> `sql:db`). No allocation: each is
/// a prefix of `id`.
pub fn containers(id: &str) -> impl Iterator<Item = &str> {
    let fs = id.starts_with("fs:");
    let mut fs_up = fs_ancestors(id);
    let mut cur = (!fs).then_some(id);
    std::iter::from_fn(move || {
        if fs {
            return fs_up.next();
        }
        loop {
            let at = cur?;
            let cut = at.rfind('/');
            cur = cut.and_then(|c| at.get(..c));
            let up = cur?;
            if up.contains(':') && !up.ends_with(':') {
                return Some(up);
            }
        }
    })
}

/// Whether `inner` is `outer` or lies inside it by `fs:` containment.
pub fn fs_within(inner: &str, outer: &str) -> bool {
    inner == outer || fs_ancestors(inner).any(|a| a == outer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ancestors_compare_whole_segments() {
        let a: Vec<_> = fs_ancestors("fs:/a/b/c").collect();
        assert_eq!(a, vec!["fs:/a/b", "fs:/a", "fs:/"]);
        assert!(fs_within("fs:/a/b", "fs:/a"));
        assert!(!fs_within("fs:/ab", "fs:/a"));
        assert!(fs_within("fs:/ab", "fs:/"));
        assert_eq!(fs_ancestors("fs:/").count(), 0);
        assert_eq!(fs_ancestors("sql:db/t").count(), 0);
    }

    #[test]
    fn containers_are_nearest_first() {
        let c: Vec<_> = containers("sql:db/t/7").collect();
        assert_eq!(c, vec!["sql:db/t", "sql:db"]);
        let c: Vec<_> = containers("fs:/a/b").collect();
        assert_eq!(c, vec!["fs:/a", "fs:/"]);
        assert_eq!(containers("account:4411").count(), 0);
        assert_eq!(containers("x:/a").count(), 0);
    }

    #[test]
    fn ids_are_checked() {
        assert!(check("account:seller-4411").is_ok());
        assert!(check("fs:/").is_ok());
        assert!(check("noscheme").is_err());
        assert!(check(":x").is_err());
        assert!(check("a:").is_err());
        assert!(check("fs:relative").is_err());
        assert!(check("fs:/a/../b").is_err());
        assert!(check("fs:/a//b").is_err());
        assert!(check("fs:/a/").is_err());
    }
}
