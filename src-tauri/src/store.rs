//! Where the gate token is kept. The token stays on the Rust side: no
//! command returns it. Order of preference when reading: the
//! `RECOURSE_TOKEN` environment variable, then the OS keyring (Secret
//! Service), then a file `token` in the app's config dir (mode 0600).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{ConsoleError, ConsoleResult};

const KEYRING_SERVICE: &str = "recourse-console";
/// The keyring talks D-Bus; with no session bus it can stall. Give up fast
/// and fall back to the file.
const KEYRING_TIMEOUT: Duration = Duration::from_secs(3);

/// Which store holds the token of the current session, said plainly in the
/// UI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TokenStore {
    /// Read from `RECOURSE_TOKEN` at start; nothing is saved.
    Environment,
    /// The OS keyring (Secret Service).
    Keyring,
    /// A file readable only by this user.
    File { path: String },
    /// Held in memory for this run only.
    Memory,
}

/// What is remembered between runs besides the token: not secret.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Saved {
    url: String,
    store: SavedStore,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum SavedStore {
    Keyring,
    File,
}

/// Token storage rooted at the app's config dir (none: memory only).
#[derive(Debug, Clone)]
pub struct Tokens {
    dir: Option<PathBuf>,
    use_keyring: bool,
}

impl Tokens {
    pub fn new(dir: Option<PathBuf>) -> Self {
        // RECOURSE_CONSOLE_NO_KEYRING=1 skips the keyring (tests, and machines
        // with no Secret Service where the D-Bus timeout would only slow
        // saving down).
        let use_keyring = std::env::var_os("RECOURSE_CONSOLE_NO_KEYRING").is_none();
        Self { dir, use_keyring }
    }

    pub fn without_keyring(dir: Option<PathBuf>) -> Self {
        Self {
            dir,
            use_keyring: false,
        }
    }

    fn token_file(&self) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join("token"))
    }

    fn saved_file(&self) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join("gate.json"))
    }

    /// The saved gate URL and token, if a previous run remembered them.
    pub async fn load(&self) -> Option<(String, String, TokenStore)> {
        let saved: Saved = serde_json::from_slice(&std::fs::read(self.saved_file()?).ok()?).ok()?;
        match saved.store {
            SavedStore::Keyring => {
                let url = saved.url.clone();
                let token = keyring_call(move || {
                    keyring::Entry::new(KEYRING_SERVICE, &url)?.get_password()
                })
                .await
                .ok()?;
                Some((saved.url, token, TokenStore::Keyring))
            }
            SavedStore::File => {
                let path = self.token_file()?;
                let token = std::fs::read_to_string(&path).ok()?.trim().to_string();
                (!token.is_empty()).then(|| {
                    let store = TokenStore::File {
                        path: path.display().to_string(),
                    };
                    (saved.url, token, store)
                })
            }
        }
    }

    /// Saves the token: in the keyring when it works, else in the file.
    /// Returns the store used and, on fallback, why the keyring was not.
    pub async fn save(
        &self,
        url: &str,
        token: &str,
    ) -> ConsoleResult<(TokenStore, Option<String>)> {
        let dir = self.dir.clone().ok_or_else(|| ConsoleError::TokenStore {
            message: "no config directory to remember the gate in".into(),
        })?;
        std::fs::create_dir_all(&dir).map_err(store_err)?;
        let note = if self.use_keyring {
            let (u, t) = (url.to_string(), token.to_string());
            match keyring_call(move || keyring::Entry::new(KEYRING_SERVICE, &u)?.set_password(&t))
                .await
            {
                Ok(()) => {
                    self.write_saved(url, SavedStore::Keyring)?;
                    // A token left in the file from an earlier fallback goes.
                    if let Some(f) = self.token_file() {
                        let _ = std::fs::remove_file(f);
                    }
                    return Ok((TokenStore::Keyring, None));
                }
                Err(e) => format!("the OS keyring is not available ({e})"),
            }
        } else {
            "the OS keyring is turned off (RECOURSE_CONSOLE_NO_KEYRING)".to_string()
        };
        let path = self.token_file().ok_or_else(|| ConsoleError::TokenStore {
            message: "no config directory".into(),
        })?;
        write_private(&path, token.as_bytes())?;
        self.write_saved(url, SavedStore::File)?;
        Ok((
            TokenStore::File {
                path: path.display().to_string(),
            },
            Some(note),
        ))
    }

    /// Forgets the saved gate and token, wherever they are.
    pub async fn forget(&self, url: &str) {
        if self.use_keyring {
            let u = url.to_string();
            let _ =
                keyring_call(move || keyring::Entry::new(KEYRING_SERVICE, &u)?.delete_credential())
                    .await;
        }
        for f in [self.token_file(), self.saved_file()].into_iter().flatten() {
            let _ = std::fs::remove_file(f);
        }
    }

    fn write_saved(&self, url: &str, store: SavedStore) -> ConsoleResult<()> {
        let Some(path) = self.saved_file() else {
            return Ok(());
        };
        let body = serde_json::to_vec_pretty(&Saved {
            url: url.to_string(),
            store,
        })
        .map_err(store_err)?;
        std::fs::write(path, body).map_err(store_err)
    }
}

fn store_err(e: impl std::fmt::Display) -> ConsoleError {
    ConsoleError::TokenStore {
        message: e.to_string(),
    }
}

/// Writes `bytes` to `path`, readable and writable by the owner only.
fn write_private(path: &Path, bytes: &[u8]) -> ConsoleResult<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        opts.mode(0o600);
        let mut f = opts.open(path).map_err(store_err)?;
        // An existing file keeps its old mode on open: set it again.
        f.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(store_err)?;
        f.write_all(bytes).map_err(store_err)
    }
    #[cfg(not(unix))]
    {
        let mut f = opts.open(path).map_err(store_err)?;
        f.write_all(bytes).map_err(store_err)
    }
}

async fn keyring_call<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, keyring::Error> + Send + 'static,
) -> Result<T, String> {
    let job = tokio::task::spawn_blocking(f);
    match tokio::time::timeout(KEYRING_TIMEOUT, job).await {
        Ok(Ok(Ok(v))) => Ok(v),
        Ok(Ok(Err(e))) => Err(e.to_string()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no answer from the keyring service".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn file_fallback_is_private_and_loads_back() {
        let dir = tempfile::tempdir().unwrap();
        let tokens = Tokens::without_keyring(Some(dir.path().to_path_buf()));
        let (store, note) = tokens.save("http://127.0.0.1:1", "sekret").await.unwrap();
        assert!(matches!(store, TokenStore::File { .. }));
        assert!(note.unwrap().contains("keyring"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("token"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let (url, token, store) = tokens.load().await.unwrap();
        assert_eq!(
            (url.as_str(), token.as_str()),
            ("http://127.0.0.1:1", "sekret")
        );
        assert!(matches!(store, TokenStore::File { .. }));
        tokens.forget("http://127.0.0.1:1").await;
        assert!(tokens.load().await.is_none());
    }

    #[tokio::test]
    async fn no_dir_means_nothing_saved() {
        let tokens = Tokens::without_keyring(None);
        assert!(tokens.save("http://x", "t").await.is_err());
        assert!(tokens.load().await.is_none());
    }
}
