//! Delete and restore of a large tree: the fs connector (rename and copy
//! modes) against `rm -rf` and against `restic backup` + `rm -rf` /
//! `restic restore`.
//!
//! `cargo bench -p recourse-connector-fs --bench delete_restore`
//! Env: `BENCH_FILES` (default 10000), `BENCH_BYTES` (default 1 GiB),
//! `BENCH_DIR` (default the system temp dir; the tree, the vault and the
//! restic repository all go there, on one file system).

use std::error::Error;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use recourse_connector::Connector;
use recourse_connector_fs::FsConnector;
use recourse_core::Proposal;
use serde_json::json;

type Res<T> = Result<T, Box<dyn Error>>;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Incompressible bytes without a dependency (xorshift64*).
fn fill(buf: &mut [u8], seed: &mut u64) {
    for chunk in buf.chunks_mut(8) {
        *seed ^= *seed >> 12;
        *seed ^= *seed << 25;
        *seed ^= *seed >> 27;
        let v = seed.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes();
        let n = chunk.len();
        chunk.copy_from_slice(v.get(..n).unwrap_or_default());
    }
}

/// `files` files of `bytes / files` bytes each, 100 to a directory, under a
/// git-like layout with an executable hook.
fn build(tree: &Path, files: u64, bytes: u64) -> Res<()> {
    fs::create_dir_all(tree.join(".git/hooks"))?;
    fs::write(tree.join(".git/HEAD"), b"ref: refs/heads/main\n")?;
    fs::write(tree.join(".git/hooks/pre-commit"), b"#!/bin/sh\nexit 0\n")?;
    fs::set_permissions(
        tree.join(".git/hooks/pre-commit"),
        fs::Permissions::from_mode(0o755),
    )?;
    let each = usize::try_from(bytes / files.max(1))?;
    let mut buf = vec![0u8; each];
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    for i in 0..files {
        let dir = tree.join(format!("d{:03}", i / 100));
        if i % 100 == 0 {
            fs::create_dir_all(&dir)?;
        }
        fill(&mut buf, &mut seed);
        let mut f = fs::File::create(dir.join(format!("f{i:05}.bin")))?;
        f.write_all(&buf)?;
    }
    Ok(())
}

fn sync() {
    let _ = Command::new("sync").status();
}

fn sh(cmd: &mut Command) -> Res<()> {
    let out = cmd.output()?;
    if !out.status.success() {
        return Err(format!("{cmd:?}: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(())
}

fn timed(f: impl FnOnce() -> Res<()>) -> Res<Duration> {
    sync();
    let t = Instant::now();
    f()?;
    let d = t.elapsed();
    Ok(d)
}

struct Row {
    what: String,
    took: Duration,
}

fn connector_run(
    rt: &tokio::runtime::Runtime,
    fs: &FsConnector,
    id: &str,
    tree: &Path,
    rows: &mut Vec<Row>,
    label: &str,
) -> Res<()> {
    let action = json!({"connector": "fs", "op": "delete", "path": tree.to_str().ok_or("path")?});
    let proposal = Proposal {
        action: action.clone(),
        ..Proposal::default()
    };
    rt.block_on(fs.plan(id, &action))?;
    let mut cap = serde_json::Value::Null;
    let took = timed(|| {
        cap = rt.block_on(fs.capture(id, &proposal))?;
        rt.block_on(fs.execute(id, &proposal, &cap))?;
        Ok(())
    })?;
    if tree.exists() {
        return Err("the delete did not take effect".into());
    }
    rows.push(Row {
        what: format!("connector ({label}): capture + delete"),
        took,
    });
    // The seal is hashed in the background, off the write's path; the
    // restore then checks the vault's contents against it.
    if !fs.settle_seals(std::time::Duration::from_secs(600)) {
        return Err("the seal was not written".into());
    }
    let mut verified = false;
    let took = timed(|| {
        let report = rt.block_on(fs.restore(id, &proposal, &cap, None, false))?;
        verified = report.verified;
        Ok(())
    })?;
    if !verified {
        return Err(format!("the {label} restore did not verify").into());
    }
    rows.push(Row {
        what: format!("connector ({label}): restore + verify"),
        took,
    });
    Ok(())
}

fn main() -> Res<()> {
    // `cargo bench` passes `--bench`; nothing else is read from the args.
    let files = env_u64("BENCH_FILES", 10_000);
    let bytes = env_u64("BENCH_BYTES", 1 << 30);
    let base = std::env::var_os("BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
    let work = tempfile::Builder::new()
        .prefix("recourse-bench-")
        .tempdir_in(&base)?;
    let root = work.path().canonicalize()?.join("root");
    let vault = work.path().canonicalize()?.join("vault");
    fs::create_dir_all(&root)?;
    let tree = root.join("project");
    println!(
        "building {files} files, {bytes} bytes in {}",
        tree.display()
    );
    build(&tree, files, bytes)?;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut rows = Vec::new();
    let fs_rename = FsConnector::new(vec![root.clone()], vault.clone())?;
    connector_run(&rt, &fs_rename, "bench-rename", &tree, &mut rows, "rename")?;
    let fs_copy = FsConnector::new(vec![root.clone()], vault.clone())?.with_copy_mode(true);
    connector_run(&rt, &fs_copy, "bench-copy", &tree, &mut rows, "copy")?;

    let restic = Command::new("restic")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if restic {
        let repo = work.path().join("restic-repo");
        let restic = |args: &[&str]| {
            let mut c = Command::new("restic");
            c.arg("-r")
                .arg(&repo)
                .args(args)
                .env("RESTIC_PASSWORD", "bench")
                .env("RESTIC_CACHE_DIR", work.path().join("restic-cache"));
            c
        };
        sh(&mut restic(&["init", "--quiet"]))?;
        let t = tree.to_str().ok_or("path")?;
        let took = timed(|| {
            sh(&mut restic(&["backup", "--quiet", t]))?;
            sh(Command::new("rm").arg("-rf").arg(&tree))?;
            Ok(())
        })?;
        rows.push(Row {
            what: "restic backup + rm -rf".into(),
            took,
        });
        let took = timed(|| {
            sh(&mut restic(&[
                "restore", "latest", "--target", "/", "--quiet",
            ]))
        })?;
        rows.push(Row {
            what: "restic restore".into(),
            took,
        });
        if !tree.join(".git/hooks/pre-commit").exists() {
            return Err("restic did not restore the tree".into());
        }
    } else {
        println!("restic not found: skipping it (apt-get install -y restic)");
    }

    let rm = timed(|| sh(Command::new("rm").arg("-rf").arg(&tree)))?;
    rows.push(Row {
        what: "rm -rf".into(),
        took: rm,
    });

    let rm_s = rm.as_secs_f64().max(1e-9);
    let delete_ref = rows
        .iter()
        .find(|r| r.what == "restic backup + rm -rf")
        .map(|r| r.took.as_secs_f64());
    let restore_ref = rows
        .iter()
        .find(|r| r.what == "restic restore")
        .map(|r| r.took.as_secs_f64());
    println!();
    println!(
        "{files} files, {:.2} GiB",
        bytes as f64 / f64::from(1u32 << 30)
    );
    println!("| operation | seconds | x rm -rf | x restic |");
    println!("|---|---:|---:|---:|");
    for r in &rows {
        let s = r.took.as_secs_f64();
        let reference = if r.what.contains("restore") {
            restore_ref
        } else {
            delete_ref
        };
        let vs_restic = reference.map_or("-".to_owned(), |x| format!("{:.3}", s / x.max(1e-9)));
        println!(
            "| {} | {:.3} | {:.2} | {} |",
            r.what,
            s,
            s / rm_s,
            vs_restic
        );
    }
    Ok(())
}
