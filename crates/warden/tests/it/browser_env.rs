//! `browser()`: what the browser tests run with: Debian's `chromium` and
//! `playwright-core` from npm (which never downloads a browser), installed
//! by the first test process that needs them, as `python_env.rs` installs
//! Python's.
//!
//! - chromium: `$WARDEN_TEST_CHROMIUM`, else `/usr/bin/chromium`, else
//!   `apt-get install chromium` (as root; otherwise the error says what to
//!   install).
//! - Node.js: `node` and `npm` on the PATH, else `apt-get install nodejs npm`.
//! - playwright-core: `npm ci` of `crates/warden/tests/browser/` (its
//!   package-lock.json pins the version and hash) into
//!   `<target>/tmp/warden-test-browser`, with
//!   `PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1`. Complete when its stamp holds the
//!   lock file's SHA-256.
//!
//! All of it under a file lock beside the environment, so parallel test
//! processes take turns, and once per process (a `OnceLock`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

use crate::python_env::{lock_file, run};

const STAMP: &str = "warden-browser.sha256";

#[derive(Clone, Debug)]
pub struct Browser {
    /// The chromium executable.
    pub chromium: PathBuf,
    /// The folder whose `node_modules` holds playwright-core.
    pub env: PathBuf,
}

pub fn browser() -> Browser {
    static BROWSER: OnceLock<Result<Browser, String>> = OnceLock::new();
    match BROWSER.get_or_init(ensure) {
        Ok(b) => b.clone(),
        Err(e) => panic!(
            "browser_env: cannot set up the browser tests: {e}\n\
             They need Debian's chromium (apt install chromium), Node.js with npm, and the npm \
             registry; or WARDEN_TEST_CHROMIUM naming a chromium."
        ),
    }
}

/// `crates/warden/tests/browser/`.
pub fn scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

fn on_path(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn apt_install(packages: &[&str]) -> Result<(), String> {
    let install = || {
        run(Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(packages)
            .env("DEBIAN_FRONTEND", "noninteractive"))
    };
    install().or_else(|_| {
        run(Command::new("apt-get").args(["update", "-qq"]))?;
        install()
    })
}

fn ensure() -> Result<Browser, String> {
    let parent = Path::new(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(parent)
        .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    let _lock = lock_file(&parent.join("warden-test-browser.lock"))?;

    let chromium = match std::env::var_os("WARDEN_TEST_CHROMIUM").filter(|p| !p.is_empty()) {
        Some(p) => PathBuf::from(p),
        None => {
            let p = PathBuf::from("/usr/bin/chromium");
            if !p.exists() {
                apt_install(&["chromium"])?;
            }
            p
        }
    };
    if !on_path("node") || !on_path("npm") {
        apt_install(&["nodejs", "npm"])?;
    }

    let lockfile = scripts().join("package-lock.json");
    let wanted =
        std::fs::read(&lockfile).map_err(|e| format!("cannot read {}: {e}", lockfile.display()))?;
    let wanted = hex::encode(Sha256::digest(&wanted));
    let env = parent.join("warden-test-browser");
    let current = std::fs::read_to_string(env.join(STAMP)).is_ok_and(|s| s.trim() == wanted);
    if !current
        || !env
            .join("node_modules/playwright-core/package.json")
            .exists()
    {
        let _ = std::fs::remove_file(env.join(STAMP));
        let _ = std::fs::remove_dir_all(&env);
        std::fs::create_dir_all(&env)
            .map_err(|e| format!("cannot create {}: {e}", env.display()))?;
        for f in ["package.json", "package-lock.json"] {
            std::fs::copy(scripts().join(f), env.join(f))
                .map_err(|e| format!("cannot copy {f}: {e}"))?;
        }
        run(Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&env)
            .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1"))?;
        let partial = env.join(format!("{STAMP}.partial"));
        std::fs::write(&partial, format!("{wanted}\n")).map_err(|e| e.to_string())?;
        std::fs::rename(&partial, env.join(STAMP)).map_err(|e| e.to_string())?;
    }
    Ok(Browser { chromium, env })
}
