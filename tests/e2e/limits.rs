//! What the gate refuses to be: inside a root it writes, or exhausted by
//! idle connections, request bursts or huge refused proposals.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::json;

use crate::harness::{TestGate, BIN};

/// `recourse serve` with these flags: Ok(url) once it listens (then
/// killed), or Err(stderr) when it exits first.
fn try_serve(args: &[&str]) -> Result<String, (Option<i32>, String)> {
    let mut child = Command::new(BIN)
        .arg("serve")
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    if let Some(url) = line.trim().strip_prefix("recourse gate listening on ") {
        let _ = child.kill();
        let _ = child.wait();
        return Ok(url.to_string());
    }
    let out = child.wait_with_output().unwrap();
    Err((
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn refused(args: &[&str]) -> String {
    let (code, stderr) = try_serve(args).expect_err("the gate started");
    assert_ne!(code, Some(0), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one sentence: {stderr}");
    stderr
}

#[test]
fn the_gate_refuses_to_start_with_its_own_state_inside_a_root_or_a_root_inside_it() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().canonicalize().unwrap();
    let root = base.join("root");
    std::fs::create_dir_all(&root).unwrap();
    let outside_vault = base.join("vault");

    // The data directory inside the root (the vault elsewhere).
    let data_in = root.join("data");
    let e = refused(&[
        "--data-dir",
        s(&data_in),
        "--vault",
        s(&outside_vault),
        "--fs-root",
        s(&root),
    ]);
    assert!(
        e.contains(&format!(
            "the data directory {} is inside the fs root {}",
            data_in.display(),
            root.display()
        )),
        "{e}"
    );
    assert!(!data_in.exists(), "nothing created inside the root");

    // The vault inside the root.
    let data = base.join("data");
    let e = refused(&[
        "--data-dir",
        s(&data),
        "--vault",
        s(&root.join("vault")),
        "--fs-root",
        s(&root),
    ]);
    assert!(
        e.contains(&format!(
            "the vault {} is inside the fs root {}",
            root.join("vault").display(),
            root.display()
        )),
        "{e}"
    );

    // The audit signing key inside the root.
    let e = refused(&[
        "--data-dir",
        s(&data),
        "--signing-key",
        s(&root.join("signing.key")),
        "--fs-root",
        s(&root),
    ]);
    assert!(e.contains("the audit signing key"), "{e}");

    // Through a symbolic link to the root.
    let link = base.join("link");
    std::os::unix::fs::symlink(&root, &link).unwrap();
    let e = refused(&["--data-dir", s(&link.join("d")), "--fs-root", s(&root)]);
    assert!(e.contains("is inside the fs root"), "{e}");

    // A root inside the data directory.
    let inner_root = data.join("files");
    std::fs::create_dir_all(&inner_root).unwrap();
    let e = refused(&["--data-dir", s(&data), "--fs-root", s(&inner_root)]);
    assert!(
        e.contains(&format!(
            "the fs root {} is inside the data directory {}",
            inner_root.display(),
            data.display()
        )),
        "{e}"
    );

    // Siblings, one a prefix of the other's name, start.
    let root2 = base.join("data2");
    std::fs::create_dir_all(&root2).unwrap();
    let url = try_serve(&[
        "--data-dir",
        s(&base.join("data")),
        "--vault",
        s(&outside_vault),
        "--fs-root",
        s(&root),
        "--fs-root",
        s(&root2),
    ])
    .unwrap_or_else(|(_, e)| panic!("siblings refused: {e}"));
    assert!(url.starts_with("http://127.0.0.1:"));
}

#[tokio::test]
async fn eleven_hundred_idle_connections_leave_the_gate_reachable() {
    let gate = TestGate::start(&[]);
    let addr = gate.url.trim_start_matches("http://").to_string();
    let mut idle = Vec::new();
    for _ in 0..1100 {
        match tokio::net::TcpStream::connect(&addr).await {
            Ok(s) => idle.push(s),
            Err(e) => panic!("connect #{}: {e}", idle.len()),
        }
    }
    // Give the gate the time to accept them all.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    let resp = reqwest::Client::new()
        .get(format!("{}/v1/writes", gate.url))
        .bearer_auth(&gate.tokens.admin)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .expect("the gate answers");
    let took = started.elapsed();
    eprintln!(
        "with 1,100 idle connections open: {} in {took:?}",
        resp.status()
    );
    assert_eq!(resp.status().as_u16(), 200);
    assert!(took < Duration::from_secs(3), "{took:?}");
    drop(idle);
}

#[tokio::test]
async fn a_silent_connection_is_closed_after_the_header_timeout() {
    let gate = TestGate::start(&["--header-timeout-s", "1"]);
    let addr = gate.url.trim_start_matches("http://").to_string();
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 512];
    let n = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::io::AsyncReadExt::read(&mut s, &mut buf),
    )
    .await
    .expect("closed within 5 s");
    // Closed (EOF or a 408), not left open.
    let _ = n;
    assert!(started.elapsed() >= Duration::from_millis(900));
}

#[tokio::test]
async fn a_burst_over_the_rate_limit_gets_429_with_retry_after_and_stores_nothing() {
    let gate = TestGate::start(&["--rate-limit", "1", "--rate-burst", "3"]);
    let before = gate.write_count().await;
    let http = reqwest::Client::new();
    let mut tasks = Vec::new();
    for i in 0..12 {
        let req = http
            .post(format!("{}/v1/writes", gate.url))
            .bearer_auth(&gate.tokens.agent)
            .json(&json!({"intent": format!("burst {i}"), "action": {
                "connector": "fs", "op": "write",
                "path": gate.root.join(format!("f{i}")).display().to_string(),
                "content_b64": "aGk="}}));
        tasks.push(tokio::spawn(req.send()));
    }
    let (mut ok, mut limited) = (0, 0);
    for t in tasks {
        let resp = t.await.unwrap().unwrap();
        if resp.status().as_u16() == 429 {
            let retry: u64 = resp.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!(retry >= 1);
            let body: serde_json::Value = resp.json().await.unwrap();
            assert_eq!(body["error"]["code"], "rate_limited");
            limited += 1;
        } else {
            assert!(resp.status().is_success(), "{}", resp.status());
            ok += 1;
        }
    }
    assert!(limited >= 8, "{ok} answered, {limited} limited");
    // Only the answered ones were stored (the admin has its own budget).
    assert_eq!(gate.write_count().await, before + ok);
}

fn dir_size(p: &Path) -> u64 {
    let mut total = 0;
    let mut stack: Vec<PathBuf> = vec![p.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let m = e.metadata().unwrap();
            if m.is_dir() {
                stack.push(e.path());
            } else {
                total += m.len();
            }
        }
    }
    total
}

#[tokio::test]
async fn huge_refused_proposals_are_stored_truncated() {
    let gate = TestGate::start(&[]);
    let before = dir_size(&gate.data_dir());
    let content = base64::engine::general_purpose::STANDARD.encode(vec![7u8; 5 * 1024 * 1024]);
    let outside = gate.dir.path().join("outside.bin");
    let mut ids = Vec::new();
    for _ in 0..5 {
        let rec = gate
            .client(&gate.tokens.agent)
            .submit_json(&json!({"intent": "too big", "action": {
                "connector": "fs", "op": "write", "path": outside.display().to_string(),
                "content_b64": content}}))
            .await
            .unwrap();
        assert_eq!(rec.status, recourse_client::WriteStatus::Refused);
        ids.push(rec.id);
    }
    let rec = gate
        .client(&gate.tokens.agent)
        .write(&ids[0])
        .await
        .unwrap();
    let action = &rec.proposal.action;
    assert_eq!(action["op"], "write");
    assert!(action.get("content_b64").is_none(), "{action}");
    assert!(action["truncated"]["original_bytes"].as_u64().unwrap() > 5 * 1024 * 1024);
    let grown = dir_size(&gate.data_dir()).saturating_sub(before);
    eprintln!("5 refused proposals of 7 MiB grew the data directory by {grown} bytes");
    assert!(grown < 2 * 1024 * 1024, "{grown} bytes");
}
