//! Starts real `recourse serve` processes on 127.0.0.1 and talks to them.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use recourse_client::GateClient;
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_recourse");

pub fn recourse(args: &[&str]) -> std::process::Output {
    Command::new(BIN).args(args).output().expect("run recourse")
}

/// A token made with `recourse token create`.
pub fn token(data_dir: &Path, name: &str, role: &str) -> String {
    token_in(&["--data-dir", data_dir.to_str().unwrap()], name, role)
}

/// A token made with `recourse token create` in the store `store` names
/// (`--data-dir DIR` or `--database-url URL`).
pub fn token_in(store: &[&str], name: &str, role: &str) -> String {
    let mut args = vec!["token", "create"];
    args.extend_from_slice(store);
    args.extend_from_slice(&["--name", name, "--role", role]);
    let out = recourse(&args);
    assert!(
        out.status.success(),
        "token create: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[derive(Clone)]
pub struct Tokens {
    pub agent: String,
    pub reviewer: String,
    pub reviewer2: String,
    pub risk: String,
    pub incident: String,
    pub admin: String,
}

/// One gate process with its own data directory and one fs root.
pub struct TestGate {
    pub dir: tempfile::TempDir,
    pub root: PathBuf,
    pub url: String,
    pub tokens: Tokens,
    child: Option<Child>,
    extra: Vec<String>,
    /// The shared store (`--database-url`), when not the data directory's.
    database_url: Option<String>,
    /// Where the current process's stderr goes, when captured.
    log: Option<PathBuf>,
    spawns: usize,
}

impl TestGate {
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn start(extra: &[&str]) -> TestGate {
        Self::start_prepared(extra, |_| {})
    }

    /// [`TestGate::start`] with `prepare` run on the (empty) data directory
    /// first, before any token is made in it: a file system mounted there,
    /// say.
    pub fn start_prepared(extra: &[&str], prepare: impl FnOnce(&Path)) -> TestGate {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(&root).unwrap();
        let root = root.canonicalize().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        prepare(&data);
        let tokens = Tokens {
            agent: token(&data, "agent-1", "agent"),
            reviewer: token(&data, "rev-1", "reviewer"),
            reviewer2: token(&data, "rev-2", "reviewer"),
            risk: token(&data, "risk-1", "risk_officer"),
            incident: token(&data, "lead-1", "incident_lead"),
            admin: token(&data, "admin-1", "admin"),
        };
        let mut gate = TestGate {
            dir,
            root,
            url: String::new(),
            tokens,
            child: None,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            database_url: None,
            log: None,
            spawns: 0,
        };
        gate.spawn(&[]);
        gate
    }

    /// A gate on a shared store (`--database-url URL`) with a data
    /// directory of its own. With `peer` (a gate on the same store) it
    /// shares the peer's tokens and fs root, as two gates behind one load
    /// balancer on one machine would; without, the tokens are made with
    /// `recourse token create --database-url`.
    pub fn start_shared(database_url: &str, peer: Option<&TestGate>, extra: &[&str]) -> TestGate {
        let tokens = match peer {
            Some(p) => p.tokens.clone(),
            None => {
                let store = ["--database-url", database_url];
                Tokens {
                    agent: token_in(&store, "agent-1", "agent"),
                    reviewer: token_in(&store, "rev-1", "reviewer"),
                    reviewer2: token_in(&store, "rev-2", "reviewer"),
                    risk: token_in(&store, "risk-1", "risk_officer"),
                    incident: token_in(&store, "lead-1", "incident_lead"),
                    admin: token_in(&store, "admin-1", "admin"),
                }
            }
        };
        // Gates on one store share one action key (the sealed proposals
        // are in the store): a peer's key file, as an operator would copy it.
        let key = peer.map(|p| p.data_dir().join("action.key"));
        let mut args: Vec<&str> = extra.to_vec();
        if let Some(key) = &key {
            args.extend(["--action-key", key.to_str().unwrap()]);
        }
        Self::start_on(database_url, tokens, peer.map(|p| p.root.clone()), &args)
    }

    /// A gate on a shared store that may not answer: no token is made, the
    /// caller brings its own (the gate cannot check them anyway).
    pub fn start_shared_with(database_url: &str, tokens: Tokens, extra: &[&str]) -> TestGate {
        Self::start_on(database_url, tokens, None, extra)
    }

    fn start_on(
        database_url: &str,
        tokens: Tokens,
        root: Option<PathBuf>,
        extra: &[&str],
    ) -> TestGate {
        let dir = tempfile::tempdir().unwrap();
        let root = root.unwrap_or_else(|| {
            let root = dir.path().join("root");
            std::fs::create_dir_all(&root).unwrap();
            root.canonicalize().unwrap()
        });
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        let mut gate = TestGate {
            dir,
            root,
            url: String::new(),
            tokens,
            child: None,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            database_url: Some(database_url.to_string()),
            log: None,
            spawns: 0,
        };
        gate.spawn(&[]);
        gate
    }

    /// Stops the process and starts it again with other extra flags.
    pub fn respawn_with(&mut self, extra: &[&str]) {
        self.kill();
        self.extra = extra.iter().map(|s| s.to_string()).collect();
        self.spawn(&[]);
    }

    /// Starts the process (again), with extra environment variables.
    pub fn spawn(&mut self, env: &[(&str, &str)]) {
        self.spawn_with(env, false);
    }

    /// Starts the process (again) with its stderr kept in a file, read by
    /// [`TestGate::log`].
    pub fn spawn_logged(&mut self, env: &[(&str, &str)]) {
        self.kill();
        self.spawn_with(env, true);
    }

    /// What the current process wrote to stderr, when captured.
    pub fn log(&self) -> String {
        self.log
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default()
    }

    /// Starts the process with a crash point armed to pause there
    /// (`FAILPOINTS=point=return(pause)`; the binary is built with the
    /// `failpoints` feature for the tests), its stderr kept in a file that
    /// [`TestGate::wait_for_crash_point`] watches.
    pub fn spawn_paused_at(&mut self, point: &str) {
        let spec = format!("{point}=return(pause)");
        self.spawn_with(&[("FAILPOINTS", spec.as_str())], true);
    }

    /// True once the process said it reached `point`; false when `within`
    /// passed first.
    pub async fn wait_for_crash_point(&self, point: &str, within: std::time::Duration) -> bool {
        let needle = format!("crash point `{point}` reached");
        let Some(log) = &self.log else { return false };
        let start = std::time::Instant::now();
        while start.elapsed() < within {
            if std::fs::read_to_string(log).is_ok_and(|s| s.contains(&needle)) {
                return true;
            }
            // Async: the request that reaches the point runs on this
            // runtime too.
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        false
    }

    fn spawn_with(&mut self, env: &[(&str, &str)], capture: bool) {
        let mut child = self.command(env, capture).spawn().expect("spawn gate");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        self.url = listening_url(&line);
        self.child = Some(child);
    }

    /// Starts the process with `point` armed to pause, without waiting for
    /// it to listen: recovery at start may reach the point first. True when
    /// the point was reached (the process is paused there, not listening);
    /// false when the gate came up listening (the point was not on
    /// recovery's path; the gate runs on, armed).
    pub async fn spawn_armed(&mut self, point: &str) -> bool {
        let spec = format!("{point}=return(pause)");
        let mut child = self
            .command(&[("FAILPOINTS", spec.as_str())], true)
            .spawn()
            .expect("spawn gate");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        self.child = Some(child);
        let start = std::time::Instant::now();
        loop {
            if self
                .wait_for_crash_point(point, std::time::Duration::from_millis(20))
                .await
            {
                return true;
            }
            if let Ok(line) = rx.try_recv() {
                self.url = listening_url(&line);
                return false;
            }
            assert!(
                start.elapsed() < std::time::Duration::from_secs(30),
                "{point}: the gate neither listened nor reached the point at start:\n{}",
                self.log()
            );
        }
    }

    fn command(&mut self, env: &[(&str, &str)], capture: bool) -> Command {
        self.spawns += 1;
        let data = self.data_dir();
        let mut cmd = Command::new(BIN);
        cmd.args([
            "serve",
            "--data-dir",
            data.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--fs-root",
            self.root.to_str().unwrap(),
        ])
        .args(&self.extra)
        .args(
            self.database_url
                .iter()
                .flat_map(|u| ["--database-url", u.as_str()]),
        )
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped());
        if capture {
            let log = self.dir.path().join(format!("gate-{}.log", self.spawns));
            cmd.stderr(std::fs::File::create(&log).unwrap());
            self.log = Some(log);
        } else {
            cmd.stderr(Stdio::inherit());
            self.log = None;
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    }

    /// The running process's id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// How the process ended, if it ended by itself (it stopped on a fault,
    /// say); `None` while it runs. An ended process is forgotten, so a
    /// [`TestGate::spawn`] can follow.
    pub fn try_exit(&mut self) -> Option<std::process::ExitStatus> {
        let status = self.child.as_mut()?.try_wait().ok()??;
        self.child = None;
        Some(status)
    }

    /// Waits for the process to end by itself (a failpoint aborts it).
    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("running");
        c.wait().unwrap()
    }

    pub fn client(&self, token: &str) -> GateClient {
        GateClient::new(self.url.clone(), token.to_string())
    }

    pub fn http(&self) -> reqwest::Client {
        reqwest::Client::new()
    }

    /// A raw request: (status, JSON body).
    pub async fn raw(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Vec<u8>>,
    ) -> (u16, Value) {
        let mut req = self
            .http()
            .request(method, format!("{}{}", self.url, path))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    pub async fn audit_len(&self) -> usize {
        self.client(&self.tokens.admin).audit().await.unwrap().len()
    }

    pub async fn write_count(&self) -> usize {
        self.client(&self.tokens.admin)
            .writes(None)
            .await
            .unwrap()
            .len()
    }
}

/// The address in the gate's first line on stdout.
fn listening_url(line: &str) -> String {
    line.trim()
        .strip_prefix("recourse gate listening on ")
        .unwrap_or_else(|| panic!("unexpected first line from the gate: {line:?}"))
        .to_string()
}

impl Drop for TestGate {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A listing of a tree: relative path, kind, mode, size, mtime, content or
/// link target. Two equal listings mean byte-exact with modes and times.
pub fn tree_listing(root: &Path) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let md = std::fs::symlink_metadata(&p).unwrap();
        let rel = p.strip_prefix(root).unwrap().display().to_string();
        let kind = if md.file_type().is_symlink() {
            format!("link->{}", std::fs::read_link(&p).unwrap().display())
        } else if md.is_dir() {
            let mut kids: Vec<_> = std::fs::read_dir(&p)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            kids.sort();
            stack.extend(kids);
            "dir".to_string()
        } else {
            let bytes = std::fs::read(&p).unwrap();
            format!("file:{}", sha(&bytes))
        };
        let mtime = if md.file_type().is_symlink() || md.is_dir() {
            0
        } else {
            md.mtime()
        };
        out.push(format!("{rel} {kind} {:o} {mtime}", md.mode() & 0o7777));
    }
    out.sort();
    out
}

fn sha(bytes: &[u8]) -> String {
    // A cheap stable digest is enough to compare trees in tests.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016x}-{}", bytes.len())
}

/// A project folder with a git repository, an executable hook, a symlink,
/// an empty directory and old mtimes: what the seed's wrong-directory
/// delete took.
pub fn make_project(dir: &Path) {
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("src/main.rs"),
        "fn main() { println!(\"prod\"); }\n",
    )
    .unwrap();
    std::fs::write(dir.join("README"), "production code\n").unwrap();
    std::fs::create_dir_all(dir.join("empty")).unwrap();
    std::os::unix::fs::symlink("src/main.rs", dir.join("entry")).unwrap();
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    git(&["init", "-q"]);
    git(&["-c", "user.email=t@t", "-c", "user.name=t", "add", "."]);
    git(&[
        "-c",
        "user.email=t@t",
        "-c",
        "user.name=t",
        "commit",
        "-qm",
        "init",
    ]);
    let hook = dir.join(".git/hooks/pre-commit");
    std::fs::write(&hook, "#!/bin/sh\nexit 0\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    let old = filetime_from_secs(1_500_000_000);
    set_mtime(&dir.join("README"), old);
}

fn filetime_from_secs(s: i64) -> std::time::SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::from_secs(s as u64)
}

fn set_mtime(p: &Path, t: std::time::SystemTime) {
    let f = std::fs::File::options().write(true).open(p).unwrap();
    f.set_modified(t).unwrap();
}

/// A write's reasons as (code, subject) pairs.
pub fn codes(rec: &recourse_client::WriteRecord) -> Vec<(String, String)> {
    rec.decision
        .reasons
        .iter()
        .map(|r| {
            let code = serde_json::to_value(r.code).unwrap();
            (code.as_str().unwrap().to_string(), r.subject())
        })
        .collect()
}

/// Runs one statement on the shared PostgreSQL (`test` database, trust
/// auth) with `psql`, failing the test on an error; its unaligned output.
pub fn psql(sql: &str) -> String {
    let out = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "test",
            "-v",
            "ON_ERROR_STOP=1",
            "-qAt",
            "-c",
            sql,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// One server-sent event as a test reads it.
#[derive(Debug, Clone)]
pub struct SseEvent {
    pub id: Option<String>,
    pub kind: String,
    pub data: Value,
}

/// Reads `GET /v1/events` as a client would: blocks separated by blank
/// lines, comments (keep-alives) skipped.
pub struct SseReader {
    resp: reqwest::Response,
    buf: String,
}

impl SseReader {
    /// Opens the stream with `token`, resuming after `last_event_id`.
    pub async fn open(base: &str, token: &str, last_event_id: Option<&str>) -> SseReader {
        let mut req = reqwest::Client::new()
            .get(format!("{base}/v1/events"))
            .bearer_auth(token);
        if let Some(id) = last_event_id {
            req = req.header("Last-Event-ID", id);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200, "the event stream opens");
        SseReader {
            resp,
            buf: String::new(),
        }
    }

    /// The next event, or `None` when none comes within `wait`.
    pub async fn next(&mut self, wait: std::time::Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            while let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let (mut id, mut kind, mut data) = (None, String::new(), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = Some(v.trim().to_string());
                    } else if let Some(v) = line.strip_prefix("event:") {
                        kind = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim());
                    }
                }
                if !data.is_empty() {
                    return Some(SseEvent {
                        id,
                        kind,
                        data: serde_json::from_str(&data).unwrap(),
                    });
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.resp.chunk()).await;
            match chunk {
                Ok(Ok(Some(bytes))) => self.buf.push_str(&String::from_utf8_lossy(&bytes)),
                _ => return None,
            }
        }
    }

    /// Events until the first one `done` accepts (included), failing after
    /// `wait` without it.
    pub async fn until(
        &mut self,
        wait: std::time::Duration,
        done: impl Fn(&SseEvent) -> bool,
    ) -> Vec<SseEvent> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let Some(e) = self.next(left).await else {
                panic!("no matching event within {wait:?}; saw {seen:?}");
            };
            let stop = done(&e);
            seen.push(e);
            if stop {
                return seen;
            }
        }
    }
}
