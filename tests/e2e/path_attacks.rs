//! Path attacks on the `fs` connector, as an agent meets the gate: the real
//! `recourse serve`, an agent token, `POST /v1/writes`. Each kind of attack
//! is one test; each case in it is named in its failure message.
//!
//! What every case asserts, whatever the kind:
//! - the answer is the one the contract gives: a write that would leave
//!   the roots is *refused* (201, status `refused`, reason `outside_roots`,
//!   a sentence naming the field and what is wrong; section 4, rule 7 and
//!   section 8), a malformed path is a 400 naming `proposal.action.path` or
//!   `.to`, and a name that only looks like an attack (a look-alike slash,
//!   a `~`, a `*`) is taken literally: the write runs, on that one name;
//! - never a 5xx, and never a hang (every request has a deadline);
//! - nothing outside the root changes, byte for byte with modes and mtimes
//!   (the `outside` tree beside the root and a canary file in the gate's
//!   data directory); where the attack is refused or malformed, nothing
//!   inside the root or in the vault changes either;
//! - the gate stays up: an ordinary write runs after the attacks.
//!
//! Attacks that change the tree after the gate looked (a link, a hard link
//! or a FIFO swapped in while a write is held, after its capture, or
//! before its rollback) are run through the real lifecycle: the write
//! fails, waits for a person, or its rollback fails, naming why, and
//! nothing outside changes.

use std::os::unix::fs::{symlink, FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{recourse, TestGate, BIN};

/// How long one request may take before the test calls it a hang.
const DEADLINE: Duration = Duration::from_secs(20);

/// What a case must get.
#[derive(Debug, Clone, Copy)]
enum Want {
    /// 201, `refused` with `outside_roots`, its sentence containing this.
    Refused(&'static str),
    /// 400 `invalid` naming this field, its message containing the second.
    Invalid(&'static str, &'static str),
    /// 201 and run at once (a literal name inside the root).
    Executed,
}

const PATH: &str = "proposal.action.path";
const TO: &str = "proposal.action.to";

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn del(path: &str) -> Value {
    json!({"connector": "fs", "op": "delete", "path": path})
}

fn write(path: &str) -> Value {
    json!({"connector": "fs", "op": "write", "path": path, "content_b64": b64(b"pwned")})
}

fn mv(path: &str, to: &str) -> Value {
    json!({"connector": "fs", "op": "move", "path": path, "to": to})
}

/// A gate with one root; beside the root, an `outside` tree and the gate's
/// data directory (with its vault) that no attack may change.
struct Arena {
    gate: TestGate,
    /// Canonical: the directory holding `root`, `data` and `outside`.
    base: PathBuf,
    root: PathBuf,
    outside: PathBuf,
    data: PathBuf,
    /// The gate's vault (`data/vault`); the fs connector's captures are
    /// in `vault/fs`.
    vault: PathBuf,
    fs_vault: PathBuf,
    writes: std::cell::Cell<usize>,
}

impl Arena {
    fn new() -> Arena {
        Arena::with_vault(None)
    }

    /// With `--vault DIR` (on another file system, captures are copies).
    fn with_vault(vault: Option<&Path>) -> Arena {
        let gate = match vault {
            Some(v) => TestGate::start(&["--vault", s(v)]),
            None => TestGate::start(&[]),
        };
        let root = gate.root.clone();
        let base = root.parent().unwrap().to_path_buf();
        let data = base.join("data");
        assert_eq!(
            data.canonicalize().unwrap(),
            data,
            "the data dir is canonical"
        );
        let outside = base.join("outside");
        std::fs::create_dir_all(outside.join("proj/sub")).unwrap();
        std::fs::write(outside.join("secret"), "outside secret\n").unwrap();
        std::fs::write(outside.join("notes.txt"), "outside notes\n").unwrap();
        std::fs::write(outside.join("proj/a.txt"), "outside a\n").unwrap();
        std::fs::write(outside.join("proj/sub/b.txt"), "outside b\n").unwrap();
        std::fs::write(data.join("canary.txt"), "the gate's own\n").unwrap();
        std::fs::create_dir_all(root.join("d")).unwrap();
        std::fs::write(root.join("d/f"), "inside f\n").unwrap();
        std::fs::write(root.join("notes.txt"), "inside notes\n").unwrap();
        Arena {
            vault: vault.map_or_else(|| data.join("vault"), Path::to_path_buf),
            fs_vault: vault
                .map_or_else(|| data.join("vault"), Path::to_path_buf)
                .join("fs"),
            gate,
            base,
            root,
            outside,
            data,
            writes: std::cell::Cell::new(0),
        }
    }

    /// `root/rel` as a string.
    fn r(&self, rel: &str) -> String {
        format!("{}/{rel}", self.root.display())
    }

    /// `outside/rel` as a string.
    fn o(&self, rel: &str) -> String {
        format!("{}/{rel}", self.outside.display())
    }

    /// What must never change: the outside tree and the gate's canary.
    fn outside_state(&self) -> Vec<String> {
        let mut out: Vec<String> = listing(&self.outside)
            .into_iter()
            .map(|l| format!("outside/{l}"))
            .collect();
        out.push(format!(
            "data/canary.txt {:?}",
            std::fs::read(self.data.join("canary.txt")).unwrap()
        ));
        out
    }

    /// Everything an attack may reach: outside, the root and the vault.
    fn world(&self) -> Vec<String> {
        let mut out = self.outside_state();
        out.extend(listing(&self.root).into_iter().map(|l| format!("root/{l}")));
        if self.vault.exists() {
            out.extend(
                listing(&self.vault)
                    .into_iter()
                    .map(|l| format!("vault/{l}")),
            );
        }
        out
    }

    /// Waits until every capture in the vault is sealed. A capture by
    /// rename is sealed in the background (its `seal.json` comes a moment
    /// after the write): a snapshot must not see it arrive.
    async fn sealed(&self) {
        let start = Instant::now();
        let Ok(dirs) = std::fs::read_dir(&self.fs_vault) else {
            return;
        };
        for dir in dirs {
            let dir = dir.unwrap().path();
            if !dir.join("data").exists() {
                continue;
            }
            while !["seal.json", "unsealed.json"]
                .iter()
                .any(|f| dir.join(f).exists())
            {
                assert!(
                    start.elapsed() < DEADLINE,
                    "{} was not sealed",
                    dir.display()
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    /// `POST /v1/writes` with the agent's token, under a deadline.
    async fn submit_as(&self, token: &str, action: &Value) -> (u16, Value) {
        let body = json!({"intent": "path attack", "action": action});
        let fut = self.gate.raw(
            Method::POST,
            "/v1/writes",
            token,
            Some(body.to_string().into_bytes()),
        );
        tokio::time::timeout(DEADLINE, fut)
            .await
            .unwrap_or_else(|_| panic!("{action}: no answer within {DEADLINE:?}: the gate hangs"))
    }

    async fn submit(&self, action: &Value) -> (u16, Value) {
        self.submit_as(&self.gate.tokens.agent, action).await
    }

    /// Runs one case and checks its answer; for a refused or malformed
    /// one, that nothing anywhere changed, and for one that ran, that
    /// nothing outside did. Returns the body.
    async fn case(&self, name: &str, action: Value, want: Want) -> Value {
        self.sealed().await;
        let world = self.world();
        let outside = self.outside_state();
        let (status, body) = self.submit(&action).await;
        // The observed outcome, for a reader of the test's output.
        let said = body["decision"]["reasons"][0]["detail"]
            .as_str()
            .or(body["error"]["message"].as_str())
            .unwrap_or_default();
        eprintln!(
            "{name}: {status} {} {said}",
            body["status"].as_str().unwrap_or("-")
        );
        expect(name, status, &body, want);
        match want {
            Want::Refused(_) | Want::Invalid(..) => assert_eq!(
                self.world(),
                world,
                "{name}: a refused or malformed write changed something"
            ),
            Want::Executed => assert_eq!(
                self.outside_state(),
                outside,
                "{name}: a write inside the root changed something outside"
            ),
        }
        body
    }

    /// Runs one case whose answer the caller checks (never a 5xx, nothing
    /// outside changed); its body.
    async fn case_any(&self, name: &str, action: Value) -> Value {
        let outside = self.outside_state();
        let (status, body) = self.submit(&action).await;
        eprintln!("{name}: {status} {} {}", body["status"], last_note(&body));
        assert!(status < 500, "{name}: {status} {body}");
        assert_eq!(self.outside_state(), outside, "{name}");
        body
    }

    /// Runs every case, in order.
    async fn cases(&self, cases: Vec<(&str, Value, Want)>) {
        for (name, action, want) in cases {
            self.case(name, action, want).await;
        }
    }

    /// An ordinary write after the attacks: the gate is up and runs it.
    async fn still_serves(&self) {
        let n = self.writes.get() + 1;
        self.writes.set(n);
        let path = self.root.join(format!("ordinary-{n}.txt"));
        let action = json!({"connector": "fs", "op": "write", "path": s(&path), "content_b64": b64(b"fine")});
        let (status, body) = self.submit(&action).await;
        assert_eq!(status, 201, "the gate still serves: {body}");
        assert_eq!(body["status"], "executed", "{body}");
        assert_eq!(std::fs::read(&path).unwrap(), b"fine");
    }

    /// `root/customer`, catalogued as borne by a customer: every write in
    /// it is held for a reviewer (`third_party_bearer`).
    async fn customer_folder(&self) -> PathBuf {
        let dir = self.root.join("customer");
        std::fs::create_dir_all(dir.join("proj/sub")).unwrap();
        std::fs::write(dir.join("history.csv"), "15 years\n").unwrap();
        std::fs::write(dir.join("proj/a.txt"), "customer a\n").unwrap();
        std::fs::write(dir.join("proj/sub/b.txt"), "customer b\n").unwrap();
        let catalog = json!({"resources": [{"id": format!("fs:{}", dir.display()), "bearer": "customer", "title": "customer files"}]});
        let (status, body) = self
            .gate
            .raw(
                Method::POST,
                "/v1/catalog",
                &self.gate.tokens.risk,
                Some(catalog.to_string().into_bytes()),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        dir
    }

    /// Submits `action` and asserts it is held; its id.
    async fn held(&self, name: &str, action: &Value) -> String {
        let (status, body) = self.submit(action).await;
        assert_eq!(status, 201, "{name}: {body}");
        assert_eq!(body["status"], "held", "{name}: {body}");
        body["id"].as_str().unwrap().to_string()
    }

    /// A reviewer approves (with the reason a customer-borne write needs);
    /// the write's record as the gate keeps it afterwards.
    async fn approve(&self, name: &str, id: &str) -> Value {
        let path = format!("/v1/writes/{id}/approve");
        let fut = self.gate.raw(
            Method::POST,
            &path,
            &self.gate.tokens.reviewer,
            Some(br#"{"comment": "reviewed"}"#.to_vec()),
        );
        let (status, body) = tokio::time::timeout(DEADLINE, fut)
            .await
            .unwrap_or_else(|_| panic!("{name}: the approval hangs"));
        assert!(status < 500, "{name}: approve answered {status}: {body}");
        let (status, rec) = self
            .gate
            .raw(
                Method::GET,
                &format!("/v1/writes/{id}"),
                &self.gate.tokens.admin,
                None,
            )
            .await;
        assert_eq!(status, 200, "{name}: {rec}");
        eprintln!("{name}: {} {}", rec["status"], last_note(&rec));
        rec
    }
}

/// Checks one answer against what the case wants.
fn expect(name: &str, status: u16, body: &Value, want: Want) {
    assert!(status < 500, "{name}: {status} {body}");
    match want {
        Want::Refused(needle) => {
            assert_eq!(status, 201, "{name}: refused writes are recorded: {body}");
            assert_eq!(body["status"], "refused", "{name}: {body}");
            let reason = &body["decision"]["reasons"][0];
            assert_eq!(reason["code"], "outside_roots", "{name}: {body}");
            let detail = reason["detail"].as_str().unwrap_or_default();
            assert!(
                detail.contains(needle),
                "{name}: the refusal should say `{needle}`: {detail}"
            );
            assert!(
                body["capture"].is_null(),
                "{name}: nothing captured: {body}"
            );
        }
        Want::Invalid(field, needle) => {
            assert_eq!(status, 400, "{name}: {body}");
            let err = &body["error"];
            assert_eq!(err["code"], "invalid", "{name}: {body}");
            assert_eq!(err["field"], field, "{name}: {body}");
            let msg = err["message"].as_str().unwrap_or_default();
            assert!(
                msg.contains(needle),
                "{name}: the error should say `{needle}`: {msg}"
            );
        }
        Want::Executed => {
            assert_eq!(status, 201, "{name}: {body}");
            assert_eq!(body["status"], "executed", "{name}: {body}");
        }
    }
}

/// A listing of a tree: relative path, kind, mode, size, mtime, and the
/// contents of regular files or a link's target. Unlike the harness's, it
/// never opens anything but a regular file (reading a FIFO would wait for
/// a writer).
fn listing(top: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![top.to_path_buf()];
    while let Some(p) = stack.pop() {
        let md = std::fs::symlink_metadata(&p).unwrap();
        let rel = p.strip_prefix(top).unwrap().display().to_string();
        let ft = md.file_type();
        let what = if ft.is_symlink() {
            format!("link->{}", std::fs::read_link(&p).unwrap().display())
        } else if ft.is_dir() {
            stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
            "dir".to_string()
        } else if ft.is_file() {
            format!("file:{:?}", std::fs::read(&p).unwrap())
        } else {
            format!("special:{:o}", md.mode() & 0o170000)
        };
        let mtime = if ft.is_dir() { 0 } else { md.mtime() };
        out.push(format!(
            "{rel} {what} {:o} {} {mtime}",
            md.mode() & 0o7777,
            md.size()
        ));
    }
    out.sort();
    out
}

/// The names directly in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

// 1 ---------------------------------------------------------------------------

#[tokio::test]
async fn path_attacks_dotdot_segments_never_climb_out_of_the_root() {
    let a = Arena::new();
    let dd = "contains `..`";
    a.cases(vec![
        (
            "write root/../outside/secret",
            write(&a.r("../outside/secret")),
            Want::Refused(dd),
        ),
        (
            "delete root/../outside/secret",
            del(&a.r("../outside/secret")),
            Want::Refused(dd),
        ),
        (
            "delete root/d/../../outside/proj (after a real dir)",
            del(&a.r("d/../../outside/proj")),
            Want::Refused(dd),
        ),
        (
            "write root/d/../../data/canary.txt",
            write(&a.r("d/../../data/canary.txt")),
            Want::Refused(dd),
        ),
        ("delete root/..", del(&a.r("..")), Want::Refused(dd)),
        ("delete root/d/..", del(&a.r("d/..")), Want::Refused(dd)),
        // Stricter than a model that would normalize: a `..` that would
        // stay inside is refused too (the README: no `..` in an fs path).
        (
            "write root/d/../notes.txt (stays inside)",
            write(&a.r("d/../notes.txt")),
            Want::Refused(dd),
        ),
        (
            "move root/notes.txt to root/../outside/x",
            mv(&a.r("notes.txt"), &a.r("../outside/x")),
            Want::Refused("action.to"),
        ),
        (
            "move root/../outside/secret to root/got",
            mv(&a.r("../outside/secret"), &a.r("got")),
            Want::Refused(dd),
        ),
    ])
    .await;
    a.still_serves().await;
}

// 2 ---------------------------------------------------------------------------

#[tokio::test]
async fn path_attacks_absolute_paths_outside_every_root_are_refused() {
    let a = Arena::new();
    // A sibling whose name extends the root's: containment is by whole
    // components, never by string prefix.
    let sibling = PathBuf::from(format!("{}x", a.root.display()));
    std::fs::create_dir_all(&sibling).unwrap();
    std::fs::write(sibling.join("f"), "sibling\n").unwrap();
    let sibling_before = listing(&sibling);
    let passwd = std::fs::read("/etc/passwd").unwrap();
    let out = "outside the gate's roots";
    a.cases(vec![
        (
            "write outside/secret",
            write(&a.o("secret")),
            Want::Refused(out),
        ),
        ("delete outside/proj", del(&a.o("proj")), Want::Refused(out)),
        (
            "write /etc/passwd",
            write("/etc/passwd"),
            Want::Refused(out),
        ),
        (
            "write rootx/f (prefix look-alike)",
            write(&format!("{}/f", sibling.display())),
            Want::Refused(out),
        ),
        // The root's parent holds the vault too; that is said first.
        (
            "delete the root's parent",
            del(s(&a.base)),
            Want::Refused("holds the gate's vault"),
        ),
        (
            "delete /",
            del("/"),
            Want::Refused("holds the gate's vault"),
        ),
        (
            "delete root/notes.txt as a relative path",
            del("root/notes.txt"),
            Want::Invalid(PATH, "is not an absolute path"),
        ),
        (
            "delete an empty path",
            del(""),
            Want::Invalid(PATH, "must not be empty"),
        ),
    ])
    .await;
    assert_eq!(std::fs::read("/etc/passwd").unwrap(), passwd);
    assert_eq!(listing(&sibling), sibling_before);
    a.still_serves().await;
}

// 3 ---------------------------------------------------------------------------

#[tokio::test]
async fn path_attacks_a_symlink_inside_the_root_never_carries_a_write_out() {
    let a = Arena::new();
    symlink(&a.outside, a.root.join("out-dir")).unwrap();
    symlink("../outside", a.root.join("rel-out")).unwrap();
    symlink(a.outside.join("secret"), a.root.join("secret-link")).unwrap();
    symlink(a.outside.join("notes.txt"), a.root.join("notes-link")).unwrap();
    symlink("d", a.root.join("in-link")).unwrap();
    let link = "is a symbolic link";
    a.cases(vec![
        (
            "write through an absolute dir link",
            write(&a.r("out-dir/secret")),
            Want::Refused(link),
        ),
        (
            "write through a relative dir link",
            write(&a.r("rel-out/secret")),
            Want::Refused(link),
        ),
        (
            "delete through a dir link",
            del(&a.r("out-dir/proj")),
            Want::Refused(link),
        ),
        (
            "delete deep through a dir link",
            del(&a.r("rel-out/proj/sub/b.txt")),
            Want::Refused(link),
        ),
        (
            "write onto a file link",
            write(&a.r("secret-link")),
            Want::Refused("never writes through a link"),
        ),
        // Stricter than following: a link in a parent is refused even when
        // it points inside the root.
        (
            "write through a link that stays inside",
            write(&a.r("in-link/f")),
            Want::Refused(link),
        ),
        (
            "move into a dir link",
            mv(&a.r("notes.txt"), &a.r("out-dir/stolen")),
            Want::Refused("action.to"),
        ),
        (
            "move out through a dir link",
            mv(&a.r("out-dir/secret"), &a.r("got")),
            Want::Refused(link),
        ),
    ])
    .await;

    // On the link itself, the link is what is deleted or moved: the file it
    // points at is never opened.
    a.case(
        "delete a file link",
        del(&a.r("secret-link")),
        Want::Executed,
    )
    .await;
    assert!(a.root.join("secret-link").symlink_metadata().is_err());
    a.case(
        "move a dir link",
        mv(&a.r("out-dir"), &a.r("moved-link")),
        Want::Executed,
    )
    .await;
    assert_eq!(
        std::fs::read_link(a.root.join("moved-link")).unwrap(),
        a.outside
    );
    // Onto a link: the link goes to the vault, the moved file takes its
    // name; the file it pointed at stays as it was.
    a.case(
        "move onto a file link",
        mv(&a.r("notes.txt"), &a.r("notes-link")),
        Want::Executed,
    )
    .await;
    assert_eq!(
        std::fs::read(a.root.join("notes-link")).unwrap(),
        b"inside notes\n"
    );
    assert!(!a
        .root
        .join("notes-link")
        .symlink_metadata()
        .unwrap()
        .file_type()
        .is_symlink());
    a.still_serves().await;
}

// 4 ---------------------------------------------------------------------------

#[tokio::test]
async fn path_attacks_a_symlink_swapped_in_after_submission_is_refused_when_the_write_runs() {
    let a = Arena::new();
    let customer = a.customer_folder().await;
    let outside = a.outside_state();

    // (a) A parent component: `customer` becomes a link to the outside,
    // which has a `proj` of its own, between the hold and the approval.
    let id = a
        .held(
            "held delete of customer/proj",
            &del(s(&customer.join("proj"))),
        )
        .await;
    let moved = a.root.join("customer.orig");
    std::fs::rename(&customer, &moved).unwrap();
    symlink(&a.outside, &customer).unwrap();
    let moved_before = listing(&moved);
    let rec = a.approve("parent swapped for a link", &id).await;
    assert_eq!(rec["status"], "failed", "parent swapped for a link: {rec}");
    let note = last_note(&rec);
    assert!(note.contains("is a symbolic link"), "{note}");
    assert!(note.contains("nothing ran"), "{note}");
    assert!(rec["capture"].is_null(), "{rec}");
    assert_eq!(a.outside_state(), outside, "the outside proj is untouched");
    assert_eq!(listing(&moved), moved_before, "and the real one too");
    std::fs::remove_file(&customer).unwrap();
    std::fs::rename(&moved, &customer).unwrap();

    // (b) The final component of a held overwrite becomes a link to an
    // outside file: the gate never writes through a link.
    let target = customer.join("history.csv");
    let id = a
        .held("held write of customer/history.csv", &write(s(&target)))
        .await;
    std::fs::rename(&target, customer.join("history.orig")).unwrap();
    symlink(a.outside.join("secret"), &target).unwrap();
    let rec = a.approve("target swapped for a link", &id).await;
    assert_eq!(rec["status"], "failed", "target swapped for a link: {rec}");
    assert_eq!(
        a.outside_state(),
        outside,
        "the outside secret is untouched"
    );
    assert_eq!(
        std::fs::read_link(&target).unwrap(),
        a.outside.join("secret"),
        "the link is left as it was"
    );

    // (c) The final component of a held delete becomes a link: what is
    // there now (the link) is captured and removed, never what it points
    // at (a delete removes a name; it opens nothing).
    let id = a.held("held delete of the link", &del(s(&target))).await;
    let rec = a.approve("delete of a swapped-in link", &id).await;
    assert_eq!(rec["status"], "executed", "{rec}");
    assert!(target.symlink_metadata().is_err());
    assert_eq!(a.outside_state(), outside);

    // (d) The final component of a held delete is swapped for a link
    // between the hold and the approval: the reviewer approved removing a
    // file, and what would run removes a link. The approval is bound to
    // what the connector found (a file): re-verification finds a link, and
    // the write is held again, naming the change; nothing is removed.
    std::fs::rename(customer.join("history.orig"), &target).unwrap();
    let id = a
        .held("held delete of customer/history.csv", &del(s(&target)))
        .await;
    std::fs::rename(&target, customer.join("history.orig")).unwrap();
    symlink(a.outside.join("secret"), &target).unwrap();
    let rec = a.approve("delete whose file became a link", &id).await;
    assert_eq!(rec["status"], "held", "target swapped while held: {rec}");
    let note = last_note(&rec);
    assert!(note.contains("was fs.file, now fs.symlink"), "{note}");
    assert!(rec["capture"].is_null(), "nothing captured: {rec}");
    assert_eq!(
        std::fs::read_link(&target).unwrap(),
        a.outside.join("secret"),
        "the link is left as it was"
    );
    assert!(customer.join("history.orig").is_file());
    assert_eq!(a.outside_state(), outside);
    a.still_serves().await;
}

/// The last note in a write's history.
fn last_note(rec: &Value) -> String {
    rec["history"]
        .as_array()
        .and_then(|h| h.last())
        .and_then(|t| t["note"].as_str())
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn path_attacks_a_symlink_swapped_in_after_the_capture_or_before_a_rollback_is_refused() {
    let mut a = Arena::new();
    let outside = a.outside_state();
    let agent = a.gate.tokens.agent.clone();

    // (d) Between the capture and the write itself: the gate is stopped
    // there (a crash point), `d` becomes a link to the outside, and the
    // restarted gate settles the write.
    a.gate.kill();
    a.gate.spawn_paused_at("gate.after_capture");
    let client = a.gate.client(&agent);
    let new = a.root.join("d/new.txt");
    let body = json!({"intent": "create", "action": write(s(&new))});
    let pending = tokio::spawn(async move { client.submit_json(&body).await });
    assert!(
        a.gate
            .wait_for_crash_point("gate.after_capture", DEADLINE)
            .await,
        "the write reached its capture"
    );
    a.gate.kill();
    pending.abort();
    std::fs::rename(a.root.join("d"), a.root.join("d.orig")).unwrap();
    symlink(&a.outside, a.root.join("d")).unwrap();
    a.gate.spawn(&[]);
    let (status, list) = a
        .gate
        .raw(Method::GET, "/v1/writes", &a.gate.tokens.admin, None)
        .await;
    assert_eq!(status, 200, "{list}");
    let id = list.as_array().unwrap()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, rec) = a
        .gate
        .raw(
            Method::GET,
            &format!("/v1/writes/{id}"),
            &a.gate.tokens.admin,
            None,
        )
        .await;
    let rec = &rec;
    eprintln!("swap after capture: {} {}", rec["status"], last_note(rec));
    // Nothing runs: whether the write took effect cannot be read through
    // the link, so a person decides.
    assert_eq!(rec["status"], "outcome_unknown", "{rec}");
    assert!(last_note(rec).contains("is a symbolic link"), "{rec}");
    assert!(
        !a.outside.join("new.txt").exists(),
        "nothing written outside"
    );
    assert_eq!(a.outside_state(), outside);
    std::fs::remove_file(a.root.join("d")).unwrap();
    std::fs::rename(a.root.join("d.orig"), a.root.join("d")).unwrap();

    // (e) Between a write and its rollback: the rollback would put `d/f`
    // back through a link to the outside.
    let body = a.case("delete d/f", del(&a.r("d/f")), Want::Executed).await;
    let id = body["id"].as_str().unwrap().to_string();
    std::fs::rename(a.root.join("d"), a.root.join("d.orig")).unwrap();
    symlink(&a.outside, a.root.join("d")).unwrap();
    let path = format!("/v1/writes/{id}/rollback");
    for force in [false, true] {
        let body = json!({"reason": "undo", "force": force});
        let (status, body) = a
            .gate
            .raw(
                Method::POST,
                &path,
                &a.gate.tokens.incident,
                Some(body.to_string().into_bytes()),
            )
            .await;
        eprintln!(
            "rollback through a swapped-in link (force {force}): {status} {} {}",
            body["status"],
            last_note(&body)
        );
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["status"], "rollback_failed", "{body}");
        assert!(last_note(&body).contains("is a symbolic link"), "{body}");
        assert!(!a.outside.join("f").exists(), "nothing restored outside");
        assert_eq!(a.outside_state(), outside);
    }
    a.still_serves().await;
}

// 5 ---------------------------------------------------------------------------

#[tokio::test]
async fn path_attacks_a_hard_link_to_an_outside_file_is_never_written_through() {
    let a = Arena::new();
    std::fs::hard_link(a.outside.join("secret"), a.root.join("hard")).unwrap();
    let links = "hard links";
    a.cases(vec![
        (
            "overwrite a hard link",
            write(&a.r("hard")),
            Want::Refused(links),
        ),
        (
            "delete a hard link",
            del(&a.r("hard")),
            Want::Refused(links),
        ),
        (
            "move a hard link",
            mv(&a.r("hard"), &a.r("moved")),
            Want::Refused(links),
        ),
        (
            "move onto a hard link",
            mv(&a.r("notes.txt"), &a.r("hard")),
            Want::Refused(links),
        ),
    ])
    .await;
    assert_eq!(
        std::fs::metadata(a.outside.join("secret")).unwrap().nlink(),
        2
    );

    // Swapped in after a hold: refused when the write runs.
    let customer = a.customer_folder().await;
    let target = customer.join("history.csv");
    let id = a.held("held write", &write(s(&target))).await;
    std::fs::remove_file(&target).unwrap();
    std::fs::hard_link(a.outside.join("notes.txt"), &target).unwrap();
    let outside = a.outside_state();
    let rec = a.approve("hard link swapped in", &id).await;
    assert_eq!(rec["status"], "failed", "{rec}");
    assert_eq!(a.outside_state(), outside);
    assert_eq!(
        std::fs::read(a.outside.join("notes.txt")).unwrap(),
        b"outside notes\n"
    );
    a.still_serves().await;
}

// 6 ---------------------------------------------------------------------------

#[tokio::test]
async fn path_attacks_the_root_itself_is_never_the_target() {
    let a = Arena::new();
    let root = s(&a.root).to_string();
    // An alias of the root beside it: the gate knows the root only by its
    // canonical path, so the alias is outside.
    let alias = a.base.join("root-alias");
    symlink(&a.root, &alias).unwrap();
    let itself = "is a root itself";
    a.cases(vec![
        ("delete the root", del(&root), Want::Refused(itself)),
        ("write the root", write(&root), Want::Refused(itself)),
        (
            "move the root",
            mv(&root, &a.r("inner")),
            Want::Refused(itself),
        ),
        (
            "move the root out",
            mv(&root, &a.o("root")),
            Want::Refused(itself),
        ),
        (
            "move onto the root",
            mv(&a.r("d"), &root),
            Want::Refused(itself),
        ),
        (
            "delete the root with a trailing slash",
            del(&format!("{root}/")),
            Want::Invalid(PATH, "ends with `/`"),
        ),
        (
            "delete the root through an alias",
            del(&format!("{}/d", alias.display())),
            Want::Refused("outside the gate's roots"),
        ),
        (
            "delete the root's alias",
            del(s(&alias)),
            Want::Refused("outside the gate's roots"),
        ),
    ])
    .await;
    a.still_serves().await;
}

// 7 ---------------------------------------------------------------------------

#[tokio::test]
async fn path_attacks_the_vault_and_the_data_directory_are_never_targets() {
    let a = Arena::new();
    // A capture in the vault to aim at.
    a.case("an ordinary delete", del(&a.r("notes.txt")), Want::Executed)
        .await;
    let id = names(&a.fs_vault)
        .into_iter()
        .find(|n| n.starts_with("w"))
        .expect("a capture in the vault");
    let capture = a.fs_vault.join(&id);
    symlink(&a.fs_vault, a.root.join("vault-link")).unwrap();
    symlink(&a.data, a.root.join("data-link")).unwrap();
    // A hard link to the gate's own database, planted in the root.
    std::fs::hard_link(a.data.join("recourse.db"), a.root.join("db-hard")).unwrap();
    let vault = s(&a.vault).to_string();
    let in_vault = "is in the gate's vault";
    a.cases(vec![
        (
            "delete the gate's vault",
            del(&vault),
            Want::Refused("holds the gate's vault"),
        ),
        (
            "delete the fs vault",
            del(s(&a.fs_vault)),
            Want::Refused(in_vault),
        ),
        (
            "delete another connector's vault",
            del(s(&a.vault.join("sql"))),
            Want::Refused("outside the gate's roots"),
        ),
        (
            "delete a capture",
            del(s(&capture)),
            Want::Refused(in_vault),
        ),
        (
            "overwrite a capture's manifest",
            write(s(&capture.join("manifest.json"))),
            Want::Refused(in_vault),
        ),
        (
            "delete the data directory",
            del(s(&a.data)),
            Want::Refused("holds the gate's vault"),
        ),
        (
            "overwrite the gate's database",
            write(s(&a.data.join("recourse.db"))),
            Want::Refused("outside the gate's roots"),
        ),
        (
            "delete the gate's canary",
            del(s(&a.data.join("canary.txt"))),
            Want::Refused("outside the gate's roots"),
        ),
        (
            "delete a capture through a link to the vault",
            del(&a.r(&format!("vault-link/{id}"))),
            Want::Refused("is a symbolic link"),
        ),
        (
            "overwrite the database through a link",
            write(&a.r("data-link/recourse.db")),
            Want::Refused("is a symbolic link"),
        ),
        (
            "overwrite the database through a hard link",
            write(&a.r("db-hard")),
            Want::Refused("hard links"),
        ),
        (
            "delete the database's hard link",
            del(&a.r("db-hard")),
            Want::Refused("hard links"),
        ),
        (
            "move a capture into the root",
            mv(s(&capture), &a.r("stolen")),
            Want::Refused(in_vault),
        ),
    ])
    .await;
    let db = std::fs::symlink_metadata(a.data.join("recourse.db")).unwrap();
    assert!(
        db.is_file() && db.nlink() == 2,
        "the database is where it was"
    );
    a.still_serves().await;
    // The capture still restores: the vault was not touched.
    let back = a
        .gate
        .client(&a.gate.tokens.incident)
        .rollback(&id, "undo", false)
        .await
        .unwrap();
    assert_eq!(back.status, recourse_client::WriteStatus::RolledBack);
    assert_eq!(
        std::fs::read(a.root.join("notes.txt")).unwrap(),
        b"inside notes\n"
    );
}

/// `recourse serve` with these flags must exit at once (never listen),
/// saying `needle` in one line on stderr.
fn refuses_to_start(name: &str, args: &[&str], needle: &str) {
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            panic!("{name}: the gate started");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success(), "{name}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(needle), "{name}: {err}");
    assert_eq!(err.trim().lines().count(), 1, "{name}: one sentence: {err}");
}

#[test]
fn path_attacks_a_gate_with_its_data_directory_or_vault_in_a_root_does_not_start() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().canonicalize().unwrap();
    let root = base.join("root");
    std::fs::create_dir_all(&root).unwrap();
    let data_in = root.join("data");
    refuses_to_start(
        "data dir inside the root",
        &["--data-dir", s(&data_in), "--fs-root", s(&root)],
        &format!(
            "the data directory {} is inside the fs root {}",
            data_in.display(),
            root.display()
        ),
    );
    assert!(!data_in.exists(), "nothing was created inside the root");
    refuses_to_start(
        "data dir inside the root, spelled with `..`",
        &[
            "--data-dir",
            &format!("{}/../root/data", root.display()),
            "--fs-root",
            s(&root),
        ],
        "is inside the fs root",
    );
    refuses_to_start(
        "vault inside the root",
        &[
            "--data-dir",
            s(&base.join("data")),
            "--vault",
            s(&root.join("vault")),
            "--fs-root",
            s(&root),
        ],
        "the vault",
    );
    refuses_to_start(
        "the root inside the data dir",
        &["--data-dir", s(&base), "--fs-root", s(&root)],
        "is inside the data directory",
    );
}

// 8 ---------------------------------------------------------------------------

#[tokio::test]
async fn path_attacks_proc_self_root_forms_are_outside() {
    let a = Arena::new();
    symlink("/proc/self/root", a.root.join("proc-link")).unwrap();
    let root = s(&a.root).to_string();
    let out = "outside the gate's roots";
    a.cases(vec![
        (
            "write /proc/self/root<root>/notes.txt",
            write(&format!("/proc/self/root{root}/notes.txt")),
            Want::Refused(out),
        ),
        (
            "delete /proc/self/root<outside>/secret",
            del(&format!("/proc/self/root{}", a.o("secret"))),
            Want::Refused(out),
        ),
        (
            "delete /proc/thread-self/root<root>/d",
            del(&format!("/proc/thread-self/root{root}/d")),
            Want::Refused(out),
        ),
        (
            "delete /proc/1/root<root>/d",
            del(&format!("/proc/1/root{root}/d")),
            Want::Refused(out),
        ),
        (
            "write /proc/self/cwd/x",
            write("/proc/self/cwd/x"),
            Want::Refused(out),
        ),
        (
            "write /proc/self/fd/0",
            write("/proc/self/fd/0"),
            Want::Refused(out),
        ),
        ("write /dev/fd/1", write("/dev/fd/1"), Want::Refused(out)),
        (
            "write through a link to /proc/self/root",
            write(&format!("{root}/proc-link{}", a.o("secret"))),
            Want::Refused("is a symbolic link"),
        ),
        (
            "write onto a link to /proc/self/root",
            write(&a.r("proc-link")),
            Want::Refused("never writes through a link"),
        ),
        (
            "move to /proc/self/root<outside>",
            mv(
                &a.r("notes.txt"),
                &format!("/proc/self/root{}", a.o("stolen")),
            ),
            Want::Refused("action.to"),
        ),
    ])
    .await;
    a.still_serves().await;
}

// 9 ---------------------------------------------------------------------------

#[tokio::test]
async fn path_attacks_a_nul_byte_is_malformed() {
    let a = Arena::new();
    let nul = "contains a NUL byte";
    a.cases(vec![
        (
            "write notes.txt\\0",
            write(&a.r("notes.txt\0")),
            Want::Invalid(PATH, nul),
        ),
        (
            "delete notes.txt\\0/../../outside/secret",
            del(&a.r("notes.txt\0/../../outside/secret")),
            Want::Invalid(PATH, nul),
        ),
        (
            "delete a path that ends at a NUL before the root",
            del(&format!("{}\0{}", a.o("secret"), a.r("d"))),
            Want::Invalid(PATH, nul),
        ),
        (
            "move to notes\\0",
            mv(&a.r("notes.txt"), &a.r("notes\0.txt")),
            Want::Invalid(TO, nul),
        ),
    ])
    .await;
    a.still_serves().await;
}

// 10 --------------------------------------------------------------------------

#[tokio::test]
async fn path_attacks_overlong_paths_are_malformed() {
    let a = Arena::new();
    let long_name = "a".repeat(256);
    // 128 two-byte characters: 128 characters, 256 bytes.
    let long_utf8 = "é".repeat(128);
    let deep = format!("{}/f", "dir/".repeat(1100));
    let name_max = "NAME_MAX";
    let path_max = "PATH_MAX";
    a.cases(vec![
        (
            "a component of 256 bytes",
            write(&a.r(&long_name)),
            Want::Invalid(PATH, name_max),
        ),
        (
            "a component of 256 bytes in 128 characters",
            write(&a.r(&long_utf8)),
            Want::Invalid(PATH, name_max),
        ),
        (
            "a component of 256 bytes in a parent",
            del(&a.r(&format!("{long_name}/f"))),
            Want::Invalid(PATH, name_max),
        ),
        (
            "a path longer than PATH_MAX",
            del(&a.r(&deep)),
            Want::Invalid(PATH, path_max),
        ),
        (
            "a move to a path longer than PATH_MAX",
            mv(&a.r("notes.txt"), &a.r(&deep)),
            Want::Invalid(TO, path_max),
        ),
        (
            "a path of 64 KiB",
            del(&"/x".repeat(32 * 1024)),
            Want::Invalid(PATH, path_max),
        ),
        // The limits themselves are fine.
        (
            "a component of 255 bytes",
            write(&a.r(&"a".repeat(255))),
            Want::Executed,
        ),
    ])
    .await;
    assert_eq!(
        std::fs::read(a.root.join("a".repeat(255))).unwrap(),
        b"pwned"
    );
    a.still_serves().await;
}

// 11 --------------------------------------------------------------------------

#[tokio::test]
async fn path_attacks_look_alike_slashes_are_one_literal_name() {
    let a = Arena::new();
    for (slash, label) in [
        ('\u{2215}', "U+2215"),
        ('\u{FF0F}', "U+FF0F"),
        ('\u{2044}', "U+2044"),
    ] {
        let f = a.root.join("d/f");
        let before_f = std::fs::read(&f).unwrap();
        // `root/d∕f`: one name in the root, never `root/d/f`.
        let name = format!("d{slash}f");
        a.case(
            &format!("{label}: write d{slash}f"),
            write(&a.r(&name)),
            Want::Executed,
        )
        .await;
        assert!(a.root.join(&name).is_file(), "{label}: created as one name");
        assert_eq!(
            std::fs::read(&f).unwrap(),
            before_f,
            "{label}: d/f untouched"
        );
        // `root/..∕..∕outside∕secret`: one name too.
        let name = format!("..{slash}..{slash}outside{slash}secret");
        a.case(
            &format!("{label}: write {name}"),
            write(&a.r(&name)),
            Want::Executed,
        )
        .await;
        assert!(a.root.join(&name).is_file(), "{label}");
        // Glued to the root's own last component, it names a sibling of the
        // root: outside.
        a.case(
            &format!("{label}: root{slash}..{slash}outside"),
            write(&format!(
                "{}{slash}..{slash}outside{slash}secret",
                a.root.display()
            )),
            Want::Refused("outside the gate's roots"),
        )
        .await;
        // As a parent component it is a directory that does not exist.
        a.case(
            &format!("{label}: delete d{slash}f/x"),
            del(&a.r(&format!("d{slash}missing/x"))),
            Want::Invalid(PATH, "does not exist"),
        )
        .await;
    }
    // A token scoped to `root/d` may not reach `root/d∕x`: a sibling of
    // `d`, not inside it.
    let out = recourse(&[
        "token",
        "create",
        "--data-dir",
        s(&a.data),
        "--name",
        "scoped",
        "--role",
        "agent",
        "--fs-root",
        s(&a.root.join("d")),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let scoped = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let world = a.world();
    let (status, body) = a.submit_as(&scoped, &write(&a.r("d\u{2215}x"))).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "out_of_scope", "{body}");
    assert_eq!(a.world(), world);
    let (status, body) = a.submit_as(&scoped, &write(&a.r("d/x"))).await;
    assert_eq!(
        (status, &body["status"]),
        (201, &json!("executed")),
        "{body}"
    );
    a.still_serves().await;
}

// 12 --------------------------------------------------------------------------

#[tokio::test]
async fn path_attacks_fifos_and_device_nodes_neither_hang_nor_get_written() {
    let a = Arena::new();
    let mkfifo = |p: &Path| {
        let st = Command::new("mkfifo").arg(p).status().unwrap();
        assert!(st.success(), "mkfifo {}", p.display());
    };
    mkfifo(&a.root.join("pipe"));
    std::fs::create_dir_all(a.root.join("withpipe")).unwrap();
    mkfifo(&a.root.join("withpipe/pipe"));
    mkfifo(&a.root.join("pipe2"));
    symlink("/dev/zero", a.root.join("zero")).unwrap();
    let fifo = "is a fifo, not a regular file";
    a.cases(vec![
        (
            "overwrite a FIFO",
            write(&a.r("pipe")),
            Want::Invalid(PATH, fifo),
        ),
        (
            "write through a FIFO as a parent",
            write(&a.r("pipe/x")),
            Want::Invalid(PATH, "is not a directory"),
        ),
        (
            "overwrite a link to /dev/zero",
            write(&a.r("zero")),
            Want::Refused("never writes through a link"),
        ),
    ])
    .await;
    // A delete or a move takes the FIFO by its name: nothing opens it, so
    // nothing waits for a writer.
    a.case("delete a FIFO", del(&a.r("pipe")), Want::Executed)
        .await;
    a.case(
        "delete a directory holding a FIFO",
        del(&a.r("withpipe")),
        Want::Executed,
    )
    .await;
    a.case(
        "move a FIFO",
        mv(&a.r("pipe2"), &a.r("pipe3")),
        Want::Executed,
    )
    .await;

    // A FIFO swapped in under a held overwrite: refused when it runs.
    let customer = a.customer_folder().await;
    let target = customer.join("history.csv");
    let id = a.held("held write", &write(s(&target))).await;
    std::fs::remove_file(&target).unwrap();
    mkfifo(&target);
    let rec = a.approve("FIFO swapped in", &id).await;
    assert_eq!(rec["status"], "failed", "{rec}");

    // A character device (as root, where mknod is allowed): never written.
    let dev = a.root.join("null");
    let made = Command::new("mknod")
        .args([s(&dev), "c", "1", "3"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|st| st.success());
    if made {
        a.case(
            "overwrite a char device",
            write(&a.r("null")),
            Want::Invalid(PATH, "is a char_device, not a regular file"),
        )
        .await;
        a.case(
            "delete a char device node",
            del(&a.r("null")),
            Want::Executed,
        )
        .await;
    } else {
        eprintln!("mknod is not allowed here: the char device case is skipped");
    }
    a.still_serves().await;

    // With the vault on another file system a capture is a copy: a FIFO is
    // copied as a FIFO (made, never opened), and a device node, which
    // cannot be copied, fails the write before anything runs.
    let Ok(shm) = tempfile::tempdir_in("/dev/shm") else {
        eprintln!("no /dev/shm: the copy cases are skipped");
        return;
    };
    let vault = shm.path().canonicalize().unwrap();
    let c = Arena::with_vault(Some(&vault));
    assert_ne!(
        std::fs::metadata(&c.root).unwrap().dev(),
        std::fs::metadata(&vault).unwrap().dev(),
        "the vault is on another file system"
    );
    std::fs::create_dir_all(c.root.join("withpipe")).unwrap();
    mkfifo(&c.root.join("withpipe/pipe"));
    std::fs::write(c.root.join("withpipe/file"), "x").unwrap();
    c.case(
        "copy: delete a directory holding a FIFO",
        del(&c.r("withpipe")),
        Want::Executed,
    )
    .await;
    assert!(!c.root.join("withpipe").exists());
    if made {
        let dev = c.root.join("null");
        let st = Command::new("mknod")
            .args([s(&dev), "c", "1", "3"])
            .status()
            .unwrap();
        assert!(st.success());
        let body = c
            .case_any("copy: delete a char device node", del(&c.r("null")))
            .await;
        assert_eq!(body["status"], "failed", "{body}");
        assert!(
            dev.symlink_metadata().unwrap().file_type().is_char_device(),
            "left in place"
        );
    }
    c.still_serves().await;
}

// 13 --------------------------------------------------------------------------

#[tokio::test]
async fn path_attacks_tilde_and_glob_characters_are_literal() {
    let a = Arena::new();
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    a.cases(vec![
        (
            "delete ~/notes.txt",
            del("~/notes.txt"),
            Want::Invalid(PATH, "is not an absolute path"),
        ),
        (
            "delete ~root/x",
            del("~root/x"),
            Want::Invalid(PATH, "is not an absolute path"),
        ),
        (
            "delete root/~/x",
            del(&a.r("~/x")),
            Want::Invalid(PATH, "does not exist"),
        ),
        (
            "delete root/*",
            del(&a.r("*")),
            Want::Invalid(PATH, "does not exist"),
        ),
        (
            "delete root/d/?",
            del(&a.r("d/?")),
            Want::Invalid(PATH, "does not exist"),
        ),
        (
            "delete root/[dn]*",
            del(&a.r("[dn]*")),
            Want::Invalid(PATH, "does not exist"),
        ),
        (
            "delete root/*/f",
            del(&a.r("*/f")),
            Want::Invalid(PATH, "does not exist"),
        ),
    ])
    .await;
    let before = names(&a.root);
    for name in ["~", "*", "?", "[dn]*", "$HOME", "{a,b}"] {
        a.case(
            &format!("write root/{name}"),
            write(&a.r(name)),
            Want::Executed,
        )
        .await;
        assert_eq!(
            std::fs::read(a.root.join(name)).unwrap(),
            b"pwned",
            "{name}"
        );
    }
    let mut want = before.clone();
    want.extend(["~", "*", "?", "[dn]*", "$HOME", "{a,b}"].map(String::from));
    want.sort();
    assert_eq!(names(&a.root), want, "one literal name each, nothing else");
    assert_eq!(
        std::fs::read(a.root.join("notes.txt")).unwrap(),
        b"inside notes\n"
    );
    assert_eq!(std::fs::read(a.root.join("d/f")).unwrap(), b"inside f\n");
    // The literal `*` goes alone.
    a.case("delete root/*", del(&a.r("*")), Want::Executed)
        .await;
    assert!(a.root.join("notes.txt").exists() && a.root.join("d/f").exists());
    assert!(!Path::new(&home).join("pwned").exists());
    a.still_serves().await;
}

// 14 --------------------------------------------------------------------------

#[tokio::test]
async fn path_attacks_backslashes_trailing_slashes_dots_and_double_slashes() {
    let a = Arena::new();
    let root = s(&a.root).to_string();
    a.cases(vec![
        (
            "delete root/d/ (trailing slash)",
            del(&a.r("d/")),
            Want::Invalid(PATH, "ends with `/`"),
        ),
        (
            "delete root/d// (trailing slashes)",
            del(&a.r("d//")),
            Want::Invalid(PATH, "ends with `/`"),
        ),
        (
            "delete root/d/. (trailing dot)",
            del(&a.r("d/.")),
            Want::Invalid(PATH, "contains a `.` segment"),
        ),
        (
            "delete root/./d/f",
            del(&a.r("./d/f")),
            Want::Invalid(PATH, "contains a `.` segment"),
        ),
        (
            "delete root//d/f",
            del(&a.r("/d/f")),
            Want::Invalid(PATH, "empty segment"),
        ),
        (
            "delete //root/d/f",
            del(&format!("/{root}/d/f")),
            Want::Invalid(PATH, "empty segment"),
        ),
        (
            "move to root/x/",
            mv(&a.r("notes.txt"), &a.r("x/")),
            Want::Invalid(TO, "ends with `/`"),
        ),
        // A backslash is a character of a name, never a separator.
        (
            "write root\\..\\outside\\secret",
            write(&format!("{root}\\..\\outside\\secret")),
            Want::Refused("outside the gate's roots"),
        ),
        (
            "delete root/d\\f",
            del(&a.r("d\\f")),
            Want::Invalid(PATH, "does not exist"),
        ),
    ])
    .await;
    for name in [
        "..\\..\\outside\\secret",
        "d\\f",
        "f.",
        "f..",
        "...",
        " ",
        "d ",
    ] {
        a.case(
            &format!("write root/{name}"),
            write(&a.r(name)),
            Want::Executed,
        )
        .await;
        assert_eq!(
            std::fs::read(a.root.join(name)).unwrap(),
            b"pwned",
            "{name:?}"
        );
    }
    assert_eq!(std::fs::read(a.root.join("d/f")).unwrap(), b"inside f\n");
    a.still_serves().await;
}

// 15 --------------------------------------------------------------------------

#[tokio::test]
async fn path_attacks_a_move_never_lands_outside_or_in_the_vault() {
    let a = Arena::new();
    symlink(&a.outside, a.root.join("out-dir")).unwrap();
    let from = a.r("notes.txt");
    let to = "action.to";
    a.cases(vec![
        (
            "move to outside",
            mv(&from, &a.o("stolen")),
            Want::Refused(to),
        ),
        (
            "move onto an outside file",
            mv(&from, &a.o("secret")),
            Want::Refused(to),
        ),
        (
            "move into the vault",
            mv(&from, s(&a.fs_vault.join("planted"))),
            Want::Refused("is in the gate's vault"),
        ),
        (
            "move into the gate's vault",
            mv(&from, s(&a.vault.join("planted"))),
            Want::Refused("outside the gate's roots"),
        ),
        (
            "move onto the fs vault",
            mv(&a.r("d"), s(&a.fs_vault)),
            Want::Refused("is in the gate's vault"),
        ),
        (
            "move onto the gate's vault",
            mv(&a.r("d"), s(&a.vault)),
            Want::Refused("holds the gate's vault"),
        ),
        (
            "move onto the data directory",
            mv(&a.r("d"), s(&a.data)),
            Want::Refused("holds the gate's vault"),
        ),
        (
            "move onto the gate's database",
            mv(&from, s(&a.data.join("recourse.db"))),
            Want::Refused(to),
        ),
        (
            "move through a link",
            mv(&from, &a.r("out-dir/stolen")),
            Want::Refused(to),
        ),
        (
            "move up with ..",
            mv(&from, &a.r("d/../../outside/stolen")),
            Want::Refused(to),
        ),
        (
            "move to the root's parent",
            mv(&from, s(&a.base)),
            Want::Refused("holds the gate's vault"),
        ),
        (
            "move to a relative path",
            mv(&from, "stolen"),
            Want::Invalid(TO, "is not an absolute path"),
        ),
        (
            "move to itself",
            mv(&from, &from),
            Want::Invalid(TO, "same path"),
        ),
        (
            "move into itself",
            mv(&a.r("d"), &a.r("d/inner")),
            Want::Invalid(TO, "lies inside"),
        ),
        (
            "move to a missing directory",
            mv(&from, &a.r("nope/x")),
            Want::Invalid(TO, "does not exist"),
        ),
    ])
    .await;
    a.still_serves().await;
}

// 16 --------------------------------------------------------------------------

#[tokio::test]
async fn path_attacks_case_and_unicode_normalisation_look_alikes_are_distinct_names() {
    let a = Arena::new();
    let nfc = "caf\u{e9}";
    let nfd = "cafe\u{301}";
    std::fs::create_dir_all(a.root.join(nfc)).unwrap();
    std::fs::write(a.root.join(nfc).join("menu.txt"), "customer menu\n").unwrap();
    let catalog = json!({"resources": [{"id": format!("fs:{}", a.r(nfc)), "bearer": "customer"}]});
    let (status, body) = a
        .gate
        .raw(
            Method::POST,
            "/v1/catalog",
            &a.gate.tokens.risk,
            Some(catalog.to_string().into_bytes()),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // The root's own name in other case or with a Cyrillic `о`.
    let upper = format!("{}/ROOT/notes.txt", a.base.display());
    let cyrillic = format!("{}/r\u{43e}\u{43e}t/notes.txt", a.base.display());
    let fullwidth_dots = "\u{ff0e}\u{ff0e}";
    a.cases(vec![
        (
            "the root in upper case",
            write(&upper),
            Want::Refused("outside the gate's roots"),
        ),
        (
            "the root with Cyrillic o",
            write(&cyrillic),
            Want::Refused("outside the gate's roots"),
        ),
        (
            "the NFD spelling of an NFC directory",
            del(&a.r(&format!("{nfd}/menu.txt"))),
            Want::Invalid(PATH, "does not exist"),
        ),
        (
            "a directory in other case",
            del(&a.r("D/f")),
            Want::Invalid(PATH, "does not exist"),
        ),
        (
            "full-width dots as a parent",
            del(&a.r(&format!("{fullwidth_dots}/{fullwidth_dots}/outside/secret"))),
            Want::Invalid(PATH, "does not exist"),
        ),
    ])
    .await;
    // The NFC path is the customer's: held. The NFD one is another name
    // (Linux compares bytes): a new file, the customer's menu untouched.
    let (status, body) = a.submit(&del(&a.r(&format!("{nfc}/menu.txt")))).await;
    assert_eq!((status, &body["status"]), (201, &json!("held")), "{body}");
    for name in [nfd, "NOTES.TXT", fullwidth_dots] {
        a.case(
            &format!("write root/{name}"),
            write(&a.r(name)),
            Want::Executed,
        )
        .await;
    }
    assert_eq!(
        std::fs::read(a.root.join(nfc).join("menu.txt")).unwrap(),
        b"customer menu\n"
    );
    assert_eq!(
        std::fs::read(a.root.join("notes.txt")).unwrap(),
        b"inside notes\n"
    );
    assert!(a.root.join(nfd).is_file() && a.root.join(nfc).is_dir());
    a.still_serves().await;
}
