//! What a stdio server runs as, checked before it is stored: the program
//! (which must exist and be visible inside the sandbox), its argv, whether
//! it has the network, and the host paths shown to it read-only.

use crate::McpError;
use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// One stdio server's command line, ready to confine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Launch {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub network: bool,
    pub read_only: Vec<PathBuf>,
}

/// Paths no server may be shown: mounting one would hand it Roster's own
/// state (the data directory) or the kernel's (`/proc`, `/dev`, `/sys`).
pub(crate) fn check_read_only(paths: &[PathBuf], private: &[PathBuf]) -> Result<(), McpError> {
    for path in paths {
        let shown = path.display();
        if !path.is_absolute() {
            return Err(McpError::Invalid(format!(
                "read-only path `{shown}` must be absolute"
            )));
        }
        let real = path.canonicalize().map_err(|e| {
            McpError::Invalid(format!("read-only path `{shown}` cannot be used: {e}"))
        })?;
        for system in ["/proc", "/dev", "/sys"] {
            if real.starts_with(system) || real == Path::new("/") {
                return Err(McpError::Invalid(format!(
                    "read-only path `{shown}` would show {} to the server",
                    if real == Path::new("/") {
                        "the whole host"
                    } else {
                        system
                    }
                )));
            }
        }
        for own in private {
            let own = own.canonicalize().unwrap_or_else(|_| own.clone());
            if real.starts_with(&own) || own.starts_with(&real) {
                return Err(McpError::Invalid(format!(
                    "read-only path `{shown}` would show Roster's data directory to the server"
                )));
            }
        }
    }
    Ok(())
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The program a server runs, as the sandbox will find it: a bare name is
/// looked up in the sandbox's `PATH` (which shows the host's `/usr`), an
/// absolute path must exist, be executable, and lie under `/usr` or one of
/// `read_only`.
pub(crate) fn resolve_program(command: &str, read_only: &[PathBuf]) -> Result<PathBuf, McpError> {
    let command = command.trim();
    if command.is_empty() {
        return Err(McpError::Invalid("command must not be empty".into()));
    }
    if command.contains('\0') || command.contains('\n') {
        return Err(McpError::Invalid("command has a NUL or line break".into()));
    }
    let program = if command.contains('/') {
        let path = PathBuf::from(command);
        if !path.is_absolute() {
            return Err(McpError::Invalid(format!(
                "command `{command}` must be a bare name or an absolute path"
            )));
        }
        if !is_executable(&path) {
            return Err(McpError::Invalid(format!(
                "command `{command}` does not exist or is not executable"
            )));
        }
        path
    } else {
        roster_sandbox::confine::SANDBOX_PATH
            .split(':')
            .map(|dir| Path::new(dir).join(command))
            .find(|p| is_executable(p))
            .ok_or_else(|| {
                McpError::Invalid(format!(
                    "command `{command}` is not found in the sandbox's PATH ({}); give its absolute path and show its directory with a read-only path",
                    roster_sandbox::confine::SANDBOX_PATH
                ))
            })?
    };
    let real = program
        .canonicalize()
        .map_err(|e| McpError::Invalid(format!("command `{}`: {e}", program.display())))?;
    // Both the path as written (what the sandbox executes) and where its
    // links lead must be inside what the sandbox shows.
    let written_shown = ["/usr", "/bin", "/sbin", "/lib", "/lib64"]
        .iter()
        .any(|top| program.starts_with(top))
        || read_only.iter().any(|dir| program.starts_with(dir));
    let real_shown = real.starts_with("/usr")
        || read_only
            .iter()
            .any(|dir| dir.canonicalize().is_ok_and(|dir| real.starts_with(dir)));
    if !(written_shown && real_shown) {
        return Err(McpError::Invalid(format!(
            "command `{}` lies outside what the sandbox shows (`/usr` and the read-only paths); add its directory as a read-only path",
            program.display()
        )));
    }
    Ok(program)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_must_exist_and_be_visible_in_the_sandbox() {
        assert_eq!(
            resolve_program("sh", &[]).ok(),
            Some(PathBuf::from("/usr/bin/sh"))
        );
        assert!(resolve_program("/bin/sh", &[]).is_ok());
        for bad in [
            "",
            "no-such-command-here",
            "./run.sh",
            "bin/sh",
            "/no/such/file",
        ] {
            let err = resolve_program(bad, &[]).expect_err(bad);
            assert_eq!(err.code(), "invalid_request", "{bad}");
        }
        let dir = tempfile::tempdir().expect("dir");
        let script = dir.path().join("server.sh");
        std::fs::write(&script, "#!/bin/sh\n").expect("write");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let outside = resolve_program(script.to_str().expect("utf-8"), &[]).expect_err("hidden");
        assert!(outside.to_string().contains("read-only path"), "{outside}");
        assert!(
            resolve_program(script.to_str().expect("utf-8"), &[dir.path().to_path_buf()]).is_ok()
        );
    }

    #[test]
    fn private_and_system_paths_are_never_shown() {
        let data = tempfile::tempdir().expect("data");
        let private = [data.path().to_path_buf()];
        let inside = data.path().join("mcp");
        std::fs::create_dir_all(&inside).expect("dir");
        for bad in [
            data.path().to_path_buf(),
            inside,
            PathBuf::from("/"),
            PathBuf::from("/proc"),
            PathBuf::from("relative"),
            PathBuf::from("/no/such/dir"),
        ] {
            assert!(
                check_read_only(std::slice::from_ref(&bad), &private).is_err(),
                "{}",
                bad.display()
            );
        }
        // A parent of the data directory would show it too.
        let parent = data.path().parent().expect("parent").to_path_buf();
        assert!(check_read_only(&[parent], &private).is_err());
        assert!(check_read_only(&[PathBuf::from("/usr/share")], &private).is_ok());
    }
}
