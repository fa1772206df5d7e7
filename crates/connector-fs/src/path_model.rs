//! The path resolver ([`Inner::place`]) against a plain reference model,
//! over a real temporary tree, with generated paths.
//!
//! The rule tested is the one the README and section 8 of the contract
//! state, made exact:
//! - malformed (`Invalid`): empty, relative, a trailing `/`, a `.` or empty
//!   segment, a component over NAME_MAX; a parent that does not exist or
//!   is not a directory;
//! - refused (`OutsideRoots`): any `..` segment (even one that would stay
//!   inside: containment is decided on the spelling, never on a
//!   normalization), anything in or holding the vault, anything not under
//!   a root by whole components, a root itself, and a symbolic link in any
//!   parent component (even one pointing inside: the resolver never follows
//!   a link);
//! - the first of these in reading order decides; anything else resolves to
//!   the parent directory `root/p1/…/pn` and the last name, taken literally
//!   (a look-alike slash is a character of a name).
//!
//! The model is pure segment logic plus a table of the tree's links. Two
//! further oracles guard the model itself: the kernel's semantics (links
//! followed, `..` taken physically) computed over the same table, and the
//! OS's own `canonicalize`: whatever the resolver opens must be exactly the
//! directory both say, inside the root.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use recourse_connector::ConnectorError;
use recourse_core::ReasonCode;

use super::{FsConnector, NAME_MAX};

#[derive(Clone, Copy)]
enum Node {
    Dir,
    File,
    /// A link whose target is relative to the link's directory.
    Link(&'static str),
    /// A link to `<base>/outside`, absolute.
    LinkOutside,
}

/// The tree under the root: plain entries, names with look-alike slashes,
/// and links inside and outside.
const TREE: &[(&str, Node)] = &[
    ("a", Node::Dir),
    ("a/b", Node::Dir),
    ("a/f", Node::File),
    ("b", Node::Dir),
    ("f", Node::File),
    ("a\u{2215}b", Node::Dir),
    ("a\u{2215}b/f", Node::File),
    ("in", Node::Link("a")),
    ("a/up", Node::Link("..")),
    ("out", Node::LinkOutside),
    ("a/esc", Node::Link("../../outside")),
];

/// Segments paths are made of: names (plain, links, look-alike slashes,
/// the base's own entries), and the ones the rule rejects.
fn names() -> Vec<String> {
    [
        "a",
        "b",
        "f",
        "x",
        "in",
        "up",
        "out",
        "esc",
        "a\u{2215}b",
        "b\u{ff0f}a",
        "a\u{2044}b",
        "..\u{2215}..",
        "root",
        "outside",
        "vault",
    ]
    .map(String::from)
    .to_vec()
}

fn rejected() -> Vec<String> {
    let mut v: Vec<String> = ["..", ".", ""].map(String::from).to_vec();
    v.push("n".repeat(NAME_MAX + 1));
    v
}

/// Where a generated path starts.
#[derive(Debug, Clone, Copy)]
enum Start {
    Root,
    /// The directory holding the root, the vault and `outside`.
    Base,
    Outside,
    Vault,
    /// `/` itself.
    Slash,
    /// A sibling whose name extends the root's (`…/rootx`).
    RootX,
    /// `root`, without a leading `/`.
    Relative,
}

/// Mostly the root: the other starts are refused whatever follows.
const STARTS: &[Start] = &[
    Start::Root,
    Start::Root,
    Start::Root,
    Start::Root,
    Start::Root,
    Start::Root,
    Start::Root,
    Start::Root,
    Start::Root,
    Start::Base,
    Start::Outside,
    Start::Vault,
    Start::Slash,
    Start::RootX,
    Start::Relative,
];

struct World {
    _tmp: tempfile::TempDir,
    base: PathBuf,
    root: PathBuf,
    vault: PathBuf,
    fs: FsConnector,
    /// Absolute components of each link -> its node.
    links: HashMap<Vec<String>, Node>,
}

fn comps(p: &Path) -> Vec<String> {
    p.to_str()
        .unwrap()
        .split('/')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

fn world() -> World {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let root = base.join("root");
    let vault = base.join("vault");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(base.join("outside/a")).unwrap();
    std::fs::create_dir_all(base.join("outside/b")).unwrap();
    std::fs::create_dir_all(base.join("rootx/a")).unwrap();
    let mut links = HashMap::new();
    for (rel, node) in TREE {
        let p = root.join(rel);
        match node {
            Node::Dir => std::fs::create_dir_all(&p).unwrap(),
            Node::File => std::fs::write(&p, b"f").unwrap(),
            Node::Link(t) => std::os::unix::fs::symlink(t, &p).unwrap(),
            Node::LinkOutside => std::os::unix::fs::symlink(base.join("outside"), &p).unwrap(),
        }
        if matches!(node, Node::Link(_) | Node::LinkOutside) {
            links.insert(comps(&p), *node);
        }
    }
    let fs = FsConnector::new(vec![root.clone()], vault.clone()).unwrap();
    World {
        _tmp: tmp,
        base,
        root,
        vault,
        fs,
        links,
    }
}

impl World {
    fn raw(&self, start: Start, segs: &[String]) -> String {
        let prefix = match start {
            Start::Root => self.root.display().to_string(),
            Start::Base => self.base.display().to_string(),
            Start::Outside => self.base.join("outside").display().to_string(),
            Start::Vault => self.vault.display().to_string(),
            Start::Slash => String::new(),
            Start::RootX => self.base.join("rootx").display().to_string(),
            Start::Relative => "root".to_owned(),
        };
        let mut raw = prefix;
        for s in segs {
            raw.push('/');
            raw.push_str(s);
        }
        if raw.is_empty() {
            raw.push('/');
        }
        raw
    }

    /// The model of the tree: what is at `root/rel`.
    fn node(&self, rel: &[String]) -> Option<Node> {
        let key = rel.join("/");
        TREE.iter().find(|(p, _)| *p == key).map(|(_, n)| *n)
    }
}

/// What the resolver must answer.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Invalid,
    Refused,
    /// The parent's components under the root, and the name.
    Ok(Vec<String>, String),
}

/// `inner` lies at or under `outer`, by whole components.
fn under(inner: &[String], outer: &[String]) -> bool {
    inner.len() >= outer.len() && inner[..outer.len()] == *outer
}

/// The reference model: the rule in the module's doc, as segment logic.
fn model(w: &World, raw: &str) -> Verdict {
    if raw.is_empty() || !raw.starts_with('/') {
        return Verdict::Invalid;
    }
    if raw.len() > 1 && raw.ends_with('/') {
        return Verdict::Invalid;
    }
    let segs: Vec<&str> = raw.split('/').skip(1).collect();
    for s in &segs {
        match *s {
            ".." => return Verdict::Refused,
            "." => return Verdict::Invalid,
            "" if raw != "/" => return Verdict::Invalid,
            s if s.len() > NAME_MAX => return Verdict::Invalid,
            _ => {}
        }
    }
    let p: Vec<String> = segs
        .iter()
        .filter(|s| !s.is_empty())
        .map(|s| (*s).to_owned())
        .collect();
    let (root, vault) = (comps(&w.root), comps(&w.vault));
    if under(&p, &vault) || under(&vault, &p) {
        return Verdict::Refused;
    }
    if !under(&p, &root) || p == root || under(&root, &p) {
        return Verdict::Refused;
    }
    let rel = &p[root.len()..];
    let (name, parents) = rel.split_last().unwrap();
    for i in 1..=parents.len() {
        match w.node(&parents[..i]) {
            Some(Node::Dir) => {}
            Some(Node::Link(_) | Node::LinkOutside) => return Verdict::Refused,
            Some(Node::File) | None => return Verdict::Invalid,
        }
    }
    Verdict::Ok(parents.to_vec(), name.clone())
}

/// The kernel's semantics over the model's links: where the components of
/// `raw` up to (not including) its last lead, following every link and
/// taking `..` physically. Absolute components.
fn kernel_parent(w: &World, raw: &str) -> Vec<String> {
    let segs: Vec<&str> = raw.split('/').skip(1).collect();
    let Some((_, parents)) = segs.split_last() else {
        return Vec::new();
    };
    let mut cur = Vec::new();
    walk(w, &mut cur, parents, 0);
    cur
}

fn walk(w: &World, cur: &mut Vec<String>, segs: &[&str], depth: usize) {
    assert!(depth < 40, "the model's links loop");
    for s in segs {
        match *s {
            "" | "." => {}
            ".." => {
                cur.pop();
            }
            name => {
                cur.push(name.to_owned());
                match w.links.get(cur.as_slice()) {
                    Some(Node::Link(t)) => {
                        cur.pop();
                        let t: Vec<&str> = t.split('/').collect();
                        walk(w, cur, &t, depth + 1);
                    }
                    Some(Node::LinkOutside) => *cur = comps(&w.base.join("outside")),
                    _ => {}
                }
            }
        }
    }
}

fn resolver(w: &World, raw: &str) -> Result<Verdict, String> {
    match w.fs.inner.place(raw, "action.path") {
        Ok(place) => {
            let want = |parents: &[String]| {
                let mut p = w.root.clone();
                p.extend(parents);
                p
            };
            // The directory opened must be, by device and inode, the one
            // the path spells under the root (its last link not followed:
            // a link there is not that directory).
            let st = rustix::fs::fstat(place.parent.as_fd()).map_err(|e| e.to_string())?;
            let name = place
                .name
                .to_str()
                .ok_or("a name that is not UTF-8")?
                .to_owned();
            let rel: Vec<String> = raw
                .strip_prefix(w.root.to_str().unwrap())
                .unwrap_or("")
                .split('/')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
            let parents = rel
                .split_last()
                .map(|(_, p)| p.to_vec())
                .unwrap_or_default();
            let dir = std::fs::symlink_metadata(want(&parents)).map_err(|e| e.to_string())?;
            use std::os::unix::fs::MetadataExt;
            if crate::tree::ino(&st) != dir.ino() || crate::tree::dev(&st) != dir.dev() {
                return Err(format!(
                    "opened a directory that is not `{}`",
                    want(&parents).display()
                ));
            }
            Ok(Verdict::Ok(parents, name))
        }
        Err(ConnectorError::Invalid { field, .. }) if field == "action.path" => {
            Ok(Verdict::Invalid)
        }
        Err(ConnectorError::Refuse {
            code: ReasonCode::OutsideRoots,
            ..
        }) => Ok(Verdict::Refused),
        Err(e) => Err(format!("unexpected error: {e:?}")),
    }
}

fn listing(p: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![p.to_path_buf()];
    while let Some(p) = stack.pop() {
        let md = std::fs::symlink_metadata(&p).unwrap();
        use std::os::unix::fs::MetadataExt;
        out.push(format!(
            "{} {:o} {} {}",
            p.display(),
            md.mode(),
            md.ino(),
            md.mtime_nsec()
        ));
        if md.is_dir() {
            for e in std::fs::read_dir(&p).unwrap() {
                stack.push(e.unwrap().path());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn the_resolver_agrees_with_the_reference_model() {
    let w = world();
    let before = listing(&w.base);
    let strategy = (
        prop::sample::select(STARTS.to_vec()),
        prop::collection::vec(
            prop_oneof![
                6 => prop::sample::select(names()),
                1 => prop::sample::select(rejected()),
            ],
            0..5,
        ),
    );
    let mut runner = TestRunner::new(Config {
        cases: 256,
        failure_persistence: None,
        ..Config::default()
    });
    // How many cases ended each way: a run that never resolves (or never
    // refuses) would prove little.
    let seen = std::cell::RefCell::new([0usize; 3]);
    runner
        .run(&strategy, |(start, segs)| {
            let raw = w.raw(start, &segs);
            let want = model(&w, &raw);
            seen.borrow_mut()[match want {
                Verdict::Invalid => 0,
                Verdict::Refused => 1,
                Verdict::Ok(..) => 2,
            }] += 1;
            let got =
                resolver(&w, &raw).map_err(|e| TestCaseError::fail(format!("{raw:?}: {e}")))?;
            prop_assert_eq!(&got, &want, "{:?}", raw);
            if let Verdict::Ok(parents, _) = &got {
                // The kernel, following links and `..`, lands in the same
                // directory, inside the root; and that directory's path has
                // no link anywhere (the OS says so).
                let mut dir = w.root.clone();
                dir.extend(parents);
                prop_assert_eq!(kernel_parent(&w, &raw), comps(&dir), "{:?}", raw);
                prop_assert_eq!(dir.canonicalize().unwrap(), dir.clone(), "{:?}", raw);
                prop_assert!(dir.starts_with(&w.root), "{:?}", raw);
            }
            Ok(())
        })
        .unwrap();
    let [invalid, refused, ok] = *seen.borrow();
    eprintln!("{invalid} malformed, {refused} refused, {ok} resolved");
    assert!(
        invalid >= 10 && refused >= 10 && ok >= 10,
        "{invalid} malformed, {refused} refused, {ok} resolved"
    );
    // Resolving opens directories and nothing else.
    assert_eq!(listing(&w.base), before, "the resolver changed the tree");
}

/// The model itself is checked on hand-picked paths, so that agreement
/// with it means something.
#[test]
fn the_reference_model_says_what_the_rule_says() {
    let w = world();
    let r = w.root.display().to_string();
    let ok =
        |p: &[&str], n: &str| Verdict::Ok(p.iter().map(|s| s.to_string()).collect(), n.to_owned());
    let cases = [
        (format!("{r}/a/f"), ok(&["a"], "f")),
        (format!("{r}/a\u{2215}b/f"), ok(&["a\u{2215}b"], "f")),
        (format!("{r}/a\u{2215}b"), ok(&[], "a\u{2215}b")),
        (format!("{r}/in"), ok(&[], "in")),
        (format!("{r}/out"), ok(&[], "out")),
        (format!("{r}/in/f"), Verdict::Refused),
        (format!("{r}/out/a"), Verdict::Refused),
        (format!("{r}/a/up/f"), Verdict::Refused),
        (format!("{r}/a/../f"), Verdict::Refused),
        (format!("{r}/a/./f"), Verdict::Invalid),
        (format!("{r}/a/"), Verdict::Invalid),
        (format!("{r}/x/f"), Verdict::Invalid),
        (format!("{r}/f/x"), Verdict::Invalid),
        (r.clone(), Verdict::Refused),
        (format!("{r}x/a"), Verdict::Refused),
        (w.vault.join("a").display().to_string(), Verdict::Refused),
        ("/".to_owned(), Verdict::Refused),
        ("root/a".to_owned(), Verdict::Invalid),
    ];
    for (raw, want) in cases {
        assert_eq!(model(&w, &raw), want, "{raw}");
    }
    // The kernel oracle follows links: `in/b` is `a/b`; `a/esc` leaves.
    assert_eq!(
        kernel_parent(&w, &format!("{r}/in/b/x")),
        comps(&w.root.join("a/b"))
    );
    assert_eq!(
        kernel_parent(&w, &format!("{r}/a/esc/x")),
        comps(&w.base.join("outside"))
    );
    assert_eq!(kernel_parent(&w, &format!("{r}/a/up/x")), comps(&w.root));
}
