//! The `fs` connector's reading of an action and its path checks:
//! arbitrary bytes as the action JSON, through `parse_action` and through
//! `Connector::plan` (which parses, resolves each path from the root one
//! component at a time without following links, and stats what is there)
//! on a temporary root holding files, folders, a `.git`, a socket, a
//! hard-linked file and symbolic links pointing inside and out.
//!
//! The input may say `@R` for the root, `@S` for a second root, `@V` for
//! the gate's vault and `@O` for a folder outside every root: they are
//! replaced with the temporary paths before the JSON is read, so inputs
//! (and the seed corpus) reach the real tree wherever it was made.
//!
//! Asserted:
//! - an action `parse_action` accepts round-trips (written back as JSON it
//!   reads as the same action);
//! - `plan` answers a plan, `Invalid` naming a field under `action.` (or
//!   `write_id`), or a refusal: never an I/O error for a bad action;
//! - every path a plan accepts lies under a root, is not a root itself,
//!   not in the vault, and its real parent directory (links resolved) is
//!   under that same root: nothing the gate would touch is outside it;
//! - its touches are valid resource ids, and its rollback step restores
//!   exactly them.
#![no_main]

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use recourse_connector::{Connector, ConnectorError};
use recourse_connector_fs::{parse_action, FsAction, FsConnector};
use serde_json::Value;

struct Fixture {
    _dir: tempfile::TempDir,
    roots: Vec<PathBuf>,
    vault: PathBuf,
    outside: PathBuf,
    connector: Arc<FsConnector>,
    runtime: tokio::runtime::Runtime,
}

fn tree(root: &Path, outside: &Path) -> std::io::Result<()> {
    std::fs::write(root.join("a.txt"), "a")?;
    std::fs::create_dir_all(root.join("dir/sub"))?;
    std::fs::write(root.join("dir/b.txt"), "b")?;
    std::fs::write(root.join("dir/sub/c.txt"), "c")?;
    std::fs::create_dir_all(root.join("dir/.git/objects"))?;
    std::fs::write(root.join("dir/.env"), "TOKEN=x")?;
    std::fs::create_dir_all(root.join("empty"))?;
    std::fs::write(root.join("hard1"), "h")?;
    std::fs::hard_link(root.join("hard1"), root.join("hard2"))?;
    symlink(outside, root.join("out"))?;
    symlink(root.join("dir"), root.join("in"))?;
    symlink("a.txt", root.join("rel"))?;
    symlink("missing", root.join("dangling"))?;
    std::os::unix::net::UnixListener::bind(root.join("sock"))?;
    Ok(())
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temp dir");
        let base = dir.path().canonicalize().expect("canonical");
        let (root, second, vault, outside) = (
            base.join("root"),
            base.join("second"),
            base.join("vault"),
            base.join("outside"),
        );
        for d in [&root, &second, &outside] {
            std::fs::create_dir_all(d).expect("a folder");
        }
        std::fs::write(outside.join("secret.txt"), "s").expect("a file");
        tree(&root, &outside).expect("the tree");
        std::fs::write(second.join("x.txt"), "x").expect("a file");
        let roots = vec![root, second];
        let connector =
            Arc::new(FsConnector::new(roots.clone(), vault.clone()).expect("the connector"));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        Fixture {
            _dir: dir,
            roots,
            vault,
            outside,
            connector,
            runtime,
        }
    })
}

/// An action written back as the JSON `parse_action` reads.
fn to_json(a: &FsAction) -> Value {
    a.to_value()
}

/// The root a planned path lies under, checked lexically and on disk.
fn check_under_a_root(f: &Fixture, touch: &str) {
    let abs = touch
        .strip_prefix("fs:")
        .unwrap_or_else(|| panic!("a touch that is not an fs id: {touch}"));
    let p = Path::new(abs);
    let root = f
        .roots
        .iter()
        .find(|r| p.starts_with(r))
        .unwrap_or_else(|| panic!("planned `{abs}` lies under no root"));
    assert_ne!(p, root.as_path(), "planned a root itself");
    assert!(!p.starts_with(&f.vault), "planned `{abs}` in the vault");
    assert!(!p.starts_with(&f.outside), "planned `{abs}` outside");
    let parent = p.parent().expect("a path under a root has a parent");
    if let Ok(real) = parent.canonicalize() {
        assert!(
            real.starts_with(root),
            "planned `{abs}`, whose parent is really `{}`, outside its root",
            real.display()
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let show = |p: &Path| p.display().to_string();
    let text = text
        .replace("@R", &show(&f.roots[0]))
        .replace("@S", &show(&f.roots[1]))
        .replace("@V", &show(&f.vault))
        .replace("@O", &show(&f.outside));
    let Ok(action) = serde_json::from_str::<Value>(&text) else {
        return;
    };

    if let Ok(parsed) = parse_action(&action) {
        let again = parse_action(&to_json(&parsed)).expect("a written action reads back");
        assert_eq!(again, parsed, "the action does not round-trip");
    }

    let plan = f.runtime.block_on(f.connector.plan("w-fuzz", &action));
    match plan {
        Ok(plan) => {
            assert!(!plan.touches.is_empty(), "a plan that touches nothing");
            for t in &plan.touches {
                recourse_core::id::check(t).unwrap_or_else(|m| panic!("touch `{t}`: {m}"));
                check_under_a_root(f, t);
            }
            let step = plan.step.expect("an fs plan models its rollback");
            assert_eq!(step.restores, plan.touches, "the step restores other ids");
        }
        Err(ConnectorError::Invalid { field, .. }) => {
            assert!(
                field.starts_with("action") || field == "write_id",
                "invalid field `{field}`"
            );
        }
        Err(ConnectorError::Refuse { .. }) => {}
        Err(e) => panic!("a bad action is not an I/O failure: {e}\n{action}"),
    }
});
