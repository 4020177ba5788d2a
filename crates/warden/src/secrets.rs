//! Secrets. A secret NAME comes from the environment variable NAME, or from
//! the file named by NAME_FILE; in development, from the local secrets file
//! that `warden secret set NAME` writes (mode 0600). The server's own secret
//! is `WARDEN_SECRET`: generated once and kept in development, required (at
//! least 32 bytes) in production.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};

use crate::config::Environment;

pub const SERVER_SECRET: &str = "WARDEN_SECRET";
pub const MIN_SECRET_BYTES: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("secret {name} is not set. In production set the environment variable {name} (or {name}_FILE, a file holding it) to at least {MIN_SECRET_BYTES} random bytes, e.g. `export {name}=$(openssl rand -base64 32)`")]
    Missing { name: String },
    #[error("secret {name} is too short ({len} bytes): it must be at least {MIN_SECRET_BYTES} bytes. Generate one with `openssl rand -base64 32`")]
    TooShort { name: String, len: usize },
    #[error("invalid secret name {0:?}: use letters, digits and underscores")]
    BadName(String),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("secrets file {path} is not valid JSON: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("the secret value is empty")]
    Empty,
}

/// The local development secrets file.
pub struct SecretsFile {
    path: PathBuf,
}

impl SecretsFile {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        SecretsFile { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read(&self) -> Result<BTreeMap<String, String>, SecretError> {
        match fs::read_to_string(&self.path) {
            Ok(s) => serde_json::from_str(&s).map_err(|source| SecretError::Parse {
                path: self.path.clone(),
                source,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(source) => Err(SecretError::Read {
                path: self.path.clone(),
                source,
            }),
        }
    }

    pub fn get(&self, name: &str) -> Result<Option<SecretString>, SecretError> {
        Ok(self.read()?.remove(name).map(SecretString::from))
    }

    /// Stores a secret, readable only by its owner.
    pub fn set(&self, name: &str, value: &SecretString) -> Result<(), SecretError> {
        self.update(name, |_| Some(value.clone())).map(drop)
    }

    /// The secret `name`, stored first as `make()` gives it if the file has
    /// none. Processes starting together in one directory (several
    /// development instances) all get the same value.
    pub fn get_or_insert(
        &self,
        name: &str,
        make: impl FnOnce() -> SecretString,
    ) -> Result<SecretString, SecretError> {
        self.update(name, |old| old.is_none().then(make))
    }

    /// Read-modify-write of one entry under an exclusive lock (a
    /// `.lock` file beside the secrets file): `change` sees the current
    /// value and returns a new one, or `None` to keep it. Returns the value
    /// stored afterwards.
    fn update(
        &self,
        name: &str,
        change: impl FnOnce(Option<&SecretString>) -> Option<SecretString>,
    ) -> Result<SecretString, SecretError> {
        check_name(name)?;
        let werr = |source| SecretError::Write {
            path: self.path.clone(),
            source,
        };
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            create_private_dir(dir).map_err(werr)?;
        }
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.path.with_extension("lock"))
            .map_err(werr)?;
        lock.lock().map_err(werr)?;
        let mut all = self.read()?;
        let old = all.get(name).cloned().map(SecretString::from);
        let Some(value) = change(old.as_ref()) else {
            return Ok(old.expect("kept only when present"));
        };
        if value.expose_secret().is_empty() {
            return Err(SecretError::Empty);
        }
        all.insert(name.to_owned(), value.expose_secret().to_owned());
        let tmp = self
            .path
            .with_extension(format!("{}.tmp", std::process::id()));
        let json = serde_json::to_string_pretty(&all).expect("a map of strings serialises");
        write_private(&tmp, json.as_bytes()).map_err(werr)?;
        fs::rename(&tmp, &self.path).map_err(werr)?;
        Ok(value)
    }
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.exists() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    fs::create_dir_all(dir)
}

fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(fs::Permissions::from_mode(0o600))?;
    }
    f.write_all(data)?;
    f.sync_all()
}

/// The environment-style name of a secret given as a configuration path:
/// `social.google.client_secret` is `WARDEN_SOCIAL_GOOGLE_CLIENT_SECRET`.
/// Names without a dot are kept as they are.
pub fn canonical_name(name: &str) -> String {
    if name.contains('.') {
        format!(
            "WARDEN_{}",
            name.replace(['.', '-'], "_").to_ascii_uppercase()
        )
    } else {
        name.to_owned()
    }
}

pub fn check_name(name: &str) -> Result<(), SecretError> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(SecretError::BadName(name.to_owned()));
    }
    Ok(())
}

/// Looks a secret up: env NAME, then the file named by env NAME_FILE, then
/// (in development only) the local secrets file.
pub fn lookup(
    name: &str,
    env: Environment,
    file: &SecretsFile,
) -> Result<Option<SecretString>, SecretError> {
    if let Ok(v) = std::env::var(name) {
        if !v.is_empty() {
            return Ok(Some(v.into()));
        }
    }
    if let Ok(p) = std::env::var(format!("{name}_FILE")) {
        let path = PathBuf::from(p);
        let v = fs::read_to_string(&path).map_err(|source| SecretError::Read { path, source })?;
        return Ok(Some(v.trim_end_matches(['\r', '\n']).to_owned().into()));
    }
    match env {
        Environment::Development => file.get(name),
        Environment::Production => Ok(None),
    }
}

/// The server secret. Production refuses a missing or short one; development
/// generates one on first start and keeps it in the secrets file.
pub fn server_secret(env: Environment, file: &SecretsFile) -> Result<SecretString, SecretError> {
    let secret = match lookup(SERVER_SECRET, env, file)? {
        Some(s) => s,
        None if env == Environment::Development => {
            let mut made = false;
            let s = file.get_or_insert(SERVER_SECRET, || {
                made = true;
                let mut bytes = [0u8; 32];
                rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
                SecretString::from(base64::engine::general_purpose::STANDARD.encode(bytes))
            })?;
            if made {
                tracing::info!(file = %file.path().display(), "generated a development secret {SERVER_SECRET}");
            }
            s
        }
        None => {
            return Err(SecretError::Missing {
                name: SERVER_SECRET.into(),
            })
        }
    };
    let len = secret.expose_secret().len();
    if len < MIN_SECRET_BYTES {
        return Err(SecretError::TooShort {
            name: SERVER_SECRET.into(),
            len,
        });
    }
    Ok(secret)
}
