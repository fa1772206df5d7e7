//! Errors of setting the connector up.

use std::io;
use std::path::PathBuf;

/// Why [`crate::FsConnector::new`] refused its roots or vault.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    #[error("no fs root given")]
    NoRoots,
    #[error("root `{}`: {source}", path.display())]
    Root { path: PathBuf, source: io::Error },
    #[error("root `{}` is not a directory", .0.display())]
    RootNotDir(PathBuf),
    #[error("vault `{}`: {source}", path.display())]
    Vault { path: PathBuf, source: io::Error },
    #[error("vault `{}` is not a directory", .0.display())]
    VaultNotDir(PathBuf),
    #[error("vault `{}` lies inside root `{}`: a write under the root could take the vault with it", vault.display(), root.display())]
    VaultInRoot { vault: PathBuf, root: PathBuf },
    #[error("root `{}` lies inside vault `{}`", root.display(), vault.display())]
    RootInVault { root: PathBuf, vault: PathBuf },
    #[error("`{}` is not valid UTF-8: resource ids are strings", .0.display())]
    NotUtf8(PathBuf),
}
