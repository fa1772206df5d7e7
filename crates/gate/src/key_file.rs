//! The gate's key files (the audit signing key, the action key): 32 secret
//! bytes as 64 hex digits, created 0600 on first start, refused when others
//! may read them. One place, so both keys get the same care.

use std::io::{Error, ErrorKind, Write};
use std::path::Path;

/// Reads the key at `path`, or creates one there from `generate` (mode
/// 0600, synced) when there is none; true when it was created. `what` names
/// the key in errors ("signing key", "action key").
pub fn load_or_create(
    path: &Path,
    what: &str,
    generate: impl FnOnce() -> [u8; 32],
) -> std::io::Result<([u8; 32], bool)> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            check_private(path, what)?;
            let bytes: [u8; 32] = hex::decode(text.trim())
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| {
                    Error::new(
                        ErrorKind::InvalidData,
                        format!(
                            "{}: not {} (64 hex digits expected)",
                            path.display(),
                            article(what)
                        ),
                    )
                })?;
            Ok((bytes, false))
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {
            let bytes = generate();
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            let mut f = opts.open(path)?;
            writeln!(f, "{}", hex::encode(bytes))?;
            f.sync_all()?;
            Ok((bytes, true))
        }
        Err(e) => Err(e),
    }
}

/// Reads a secret an operator keeps in a file (the webhook secret): its
/// contents without surrounding whitespace, refused when the file is empty
/// or others may read it.
pub fn read_secret(path: &Path, what: &str) -> std::io::Result<Vec<u8>> {
    let text = std::fs::read_to_string(path)?;
    check_private(path, what)?;
    let secret = text.trim();
    if secret.is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidData,
            format!("{}: the {what} is empty", path.display()),
        ));
    }
    Ok(secret.as_bytes().to_vec())
}

fn article(what: &str) -> String {
    let vowel = what.starts_with(['a', 'e', 'i', 'o', 'u']);
    format!("{} {what}", if vowel { "an" } else { "a" })
}

/// Whoever can read a key file can use the key: refuse one others may read.
#[cfg(unix)]
fn check_private(path: &Path, what: &str) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)?.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(Error::new(
            ErrorKind::PermissionDenied,
            format!(
                "{}: the {what} is readable by others (mode {:o}); chmod 600 it",
                path.display(),
                mode & 0o777
            ),
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path, _what: &str) -> std::io::Result<()> {
    Ok(())
}
