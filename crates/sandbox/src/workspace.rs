//! A session's workspace directory and safe access to its files from the
//! outside (the API): relative paths only, no `..`, and no symbolic link
//! followed anywhere on the way, since code in the sandbox may plant links
//! pointing out of the workspace.

use crate::SandboxError;
use std::path::{Component, Path, PathBuf};

/// Longest relative path accepted, in bytes.
const MAX_PATH_BYTES: usize = 1024;
/// Most entries a listing returns.
pub const MAX_LIST_ENTRIES: usize = 10_000;

#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct FileEntry {
    /// Relative to the workspace, `/`-separated.
    pub path: String,
    pub bytes: u64,
    /// Unix seconds.
    pub modified: i64,
}

/// Checks a client-supplied relative path and splits it into components.
pub fn clean_path(path: &str) -> Result<Vec<String>, SandboxError> {
    let bad = |why: &str| SandboxError::InvalidPath(format!("`{path}`: {why}"));
    if path.is_empty() {
        return Err(bad("empty"));
    }
    if path.len() > MAX_PATH_BYTES {
        return Err(bad("too long"));
    }
    if path.contains('\0') || path.contains('\\') {
        return Err(bad("contains NUL or a backslash"));
    }
    let mut parts = Vec::new();
    for component in Path::new(path).components() {
        match component {
            Component::Normal(part) => {
                let part = part.to_str().ok_or_else(|| bad("not UTF-8"))?.to_owned();
                parts.push(part);
            }
            Component::CurDir => {}
            Component::ParentDir => return Err(bad("`..` is not allowed")),
            Component::RootDir | Component::Prefix(_) => {
                return Err(bad("must be relative to the workspace"))
            }
        }
    }
    if parts.is_empty() {
        return Err(bad("names no file"));
    }
    Ok(parts)
}

/// `root/parts…`, refusing if any existing component is a symbolic link.
/// The last component may be missing (for writes).
pub fn resolve(root: &Path, parts: &[String]) -> Result<PathBuf, SandboxError> {
    let mut path = root.to_path_buf();
    for part in parts {
        path.push(part);
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(SandboxError::InvalidPath(format!(
                    "`{}` is a symbolic link",
                    parts.join("/")
                )))
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(SandboxError::io("reading the workspace", e)),
        }
    }
    Ok(path)
}

/// Every regular file under `root`, sorted by path; links are not followed.
pub fn list(root: &Path) -> Result<Vec<FileEntry>, SandboxError> {
    let mut out = Vec::new();
    let mut stack = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, prefix)) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(SandboxError::io("listing the workspace", e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| SandboxError::io("listing the workspace", e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            let meta = entry
                .metadata()
                .map_err(|e| SandboxError::io("listing the workspace", e))?;
            let kind = entry
                .file_type()
                .map_err(|e| SandboxError::io("listing the workspace", e))?;
            if kind.is_dir() {
                stack.push((entry.path(), rel));
            } else if kind.is_file() {
                let modified = meta
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
                out.push(FileEntry {
                    path: rel,
                    bytes: meta.len(),
                    modified,
                });
                if out.len() >= MAX_LIST_ENTRIES {
                    out.sort_by(|a, b| a.path.cmp(&b.path));
                    return Ok(out);
                }
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside() {
        assert_eq!(
            clean_path("a/b.csv").ok(),
            Some(vec!["a".into(), "b.csv".into()])
        );
        assert_eq!(clean_path("./a").ok(), Some(vec!["a".into()]));
        for bad in ["", "/etc/passwd", "../x", "a/../../x", "a\0b", ".", "a\\b"] {
            assert!(clean_path(bad).is_err(), "{bad:?}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn links_are_never_followed() {
        let dir = tempfile::tempdir().expect("dir");
        std::os::unix::fs::symlink("/etc", dir.path().join("out")).expect("link");
        std::os::unix::fs::symlink("/etc/hostname", dir.path().join("f")).expect("link");
        assert!(resolve(dir.path(), &["out".into(), "hostname".into()]).is_err());
        assert!(resolve(dir.path(), &["f".into()]).is_err());
        std::fs::write(dir.path().join("ok.txt"), "x").expect("write");
        let listed = list(dir.path()).expect("list");
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].path, "ok.txt");
    }
}
