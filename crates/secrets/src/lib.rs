//! Credentials encrypted at rest.
//!
//! Owns: [`SecretBox`], which seals a credential with XChaCha20-Poly1305
//! under a 32-byte key, binding it to where it belongs (the associated
//! data, e.g. tenant and integration name, so a sealed value copied to
//! another row does not open), and where that key comes from.
//!
//! Sealed values are text, `v1.` + base64url(nonce ‖ ciphertext): a random
//! 24-byte nonce per seal (XChaCha's nonce is large enough to draw at
//! random without counting). Must never: log, format or return a plaintext
//! or the key; [`Secret`] hides its value from `Debug`.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use std::path::Path;

const PREFIX: &str = "v1.";
const NONCE_BYTES: usize = 24;
/// The environment variable that may hold the key (base64 of 32 bytes).
pub const KEY_ENV: &str = "ROSTER_SECRET_KEY";
/// The key file made in the data directory when no key is given.
pub const KEY_FILE: &str = "secret.key";

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the secret key must be 32 bytes, base64-encoded")]
    BadKey,
    #[error("a stored secret is not readable with this key (was the key changed?)")]
    Unreadable,
    #[error("cannot {action} the key file {path}: {source}")]
    KeyFile {
        action: &'static str,
        path: String,
        source: std::io::Error,
    },
}

/// A plaintext credential; `Debug` shows `***`, and it is read from config
/// but never serialised.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The plaintext, for the one place that sends it (a header, a DSN).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

#[derive(Clone)]
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(…)")
    }
}

impl SecretBox {
    /// From a base64 (standard or URL-safe) encoding of 32 bytes.
    pub fn from_base64(key: &str) -> Result<Self, SecretError> {
        let key = key.trim();
        let bytes = STANDARD
            .decode(key)
            .or_else(|_| URL_SAFE_NO_PAD.decode(key.trim_end_matches('=')))
            .map_err(|_| SecretError::BadKey)?;
        Self::from_bytes(&bytes)
    }

    pub fn from_bytes(key: &[u8]) -> Result<Self, SecretError> {
        if key.len() != 32 {
            return Err(SecretError::BadKey);
        }
        let cipher = XChaCha20Poly1305::new_from_slice(key).map_err(|_| SecretError::BadKey)?;
        Ok(Self { cipher })
    }

    /// A fresh random key, base64-encoded.
    pub fn generate_key() -> String {
        STANDARD.encode(XChaCha20Poly1305::generate_key(&mut OsRng))
    }

    /// The key given (config or [`KEY_ENV`]), else the one in
    /// `data_dir/secret.key`, made (mode 0600) on first use.
    pub fn load(given: Option<&str>, data_dir: &Path) -> Result<Self, SecretError> {
        if let Some(key) = given.filter(|k| !k.trim().is_empty()) {
            return Self::from_base64(key);
        }
        let path = data_dir.join(KEY_FILE);
        let display = path.display().to_string();
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::from_base64(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate_key();
                write_private(&path, &key).map_err(|source| SecretError::KeyFile {
                    action: "write",
                    path: display,
                    source,
                })?;
                Self::from_base64(&key)
            }
            Err(source) => Err(SecretError::KeyFile {
                action: "read",
                path: display,
                source,
            }),
        }
    }

    /// Seals `plaintext`, bound to `context` (which must be given again to open it).
    pub fn seal(&self, plaintext: &Secret, context: &str) -> String {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let payload = Payload {
            msg: plaintext.0.as_bytes(),
            aad: context.as_bytes(),
        };
        // Encryption fails only for messages beyond the cipher's limit
        // (256 GiB), which no credential reaches; seal an empty value then.
        let sealed = self.cipher.encrypt(&nonce, payload).unwrap_or_default();
        let mut bytes = Vec::with_capacity(NONCE_BYTES + sealed.len());
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(&sealed);
        format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Opens a value [`SecretBox::seal`] made with the same key and context.
    pub fn open(&self, sealed: &str, context: &str) -> Result<Secret, SecretError> {
        let encoded = sealed.strip_prefix(PREFIX).ok_or(SecretError::Unreadable)?;
        let bytes = URL_SAFE_NO_PAD
            .decode(encoded)
            .map_err(|_| SecretError::Unreadable)?;
        if bytes.len() < NONCE_BYTES {
            return Err(SecretError::Unreadable);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_BYTES);
        let plain = self
            .cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| SecretError::Unreadable)?;
        String::from_utf8(plain)
            .map(Secret)
            .map_err(|_| SecretError::Unreadable)
    }
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boxed() -> SecretBox {
        SecretBox::from_base64(&SecretBox::generate_key()).expect("key")
    }

    #[test]
    fn seals_and_opens_in_context() {
        let b = boxed();
        let sealed = b.seal(&Secret::new("token-123"), "tenant/a:mcp/files");
        assert!(sealed.starts_with("v1."));
        assert!(!sealed.contains("token-123"));
        assert_eq!(
            b.open(&sealed, "tenant/a:mcp/files")
                .expect("open")
                .expose(),
            "token-123"
        );
        // Each seal draws a new nonce.
        assert_ne!(
            sealed,
            b.seal(&Secret::new("token-123"), "tenant/a:mcp/files")
        );
    }

    #[test]
    fn another_context_key_or_a_tampered_value_does_not_open() {
        let b = boxed();
        let sealed = b.seal(&Secret::new("pw"), "ctx");
        assert!(b.open(&sealed, "other").is_err());
        assert!(boxed().open(&sealed, "ctx").is_err());
        let mut tampered = sealed.clone().into_bytes();
        let last = tampered.len() - 1;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).expect("ascii");
        assert!(b.open(&tampered, "ctx").is_err());
        assert!(b.open("plain", "ctx").is_err());
        assert!(b.open("v1.", "ctx").is_err());
    }

    #[test]
    fn keys_must_be_32_bytes() {
        assert!(SecretBox::from_base64("c2hvcnQ=").is_err());
        assert!(SecretBox::from_base64("not base64!").is_err());
        assert!(SecretBox::from_bytes(&[7; 32]).is_ok());
    }

    #[test]
    fn a_key_file_is_made_once_and_private() {
        let dir = tempfile::tempdir().expect("dir");
        let first = SecretBox::load(None, dir.path()).expect("made");
        let sealed = first.seal(&Secret::new("x"), "c");
        let again = SecretBox::load(None, dir.path()).expect("read");
        assert_eq!(again.open(&sealed, "c").expect("open").expose(), "x");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // A given key wins over the file.
        let given = SecretBox::generate_key();
        let other = SecretBox::load(Some(&given), dir.path()).expect("given");
        assert!(other.open(&sealed, "c").is_err());
    }

    #[test]
    fn debug_hides_values() {
        assert_eq!(format!("{:?}", Secret::new("pw")), "***");
    }
}
