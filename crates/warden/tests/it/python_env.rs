//! `python()`: the Python interpreter the tests run their helpers with (the
//! SMTP sink of `mail_sink.rs`, pyotp in `two_factor.rs` and `social.rs`).
//!
//! It is the interpreter of a virtual environment in
//! `<target>/tmp/warden-test-venv` (cargo's `CARGO_TARGET_TMPDIR`) holding
//! exactly the packages of `crates/warden/tests/support/requirements.txt`,
//! each pinned with its hash. The first test process that needs it creates
//! it: `python3 -m venv`, then `pip install --require-hashes --no-deps -r
//! requirements.txt` (from PyPI, or wherever pip is configured to look).
//! Creation happens under a file lock (`warden-test-venv.lock` beside it),
//! so parallel test processes take turns, and each process checks once (a
//! `OnceLock`), so parallel tests do too.
//!
//! The environment is complete when its `warden-requirements.sha256` holds
//! the SHA-256 of requirements.txt. That file is written last (atomically)
//! and deleted first when the environment is re-created: a changed
//! requirements.txt re-creates it, and one left half-built by an interrupted
//! run is never taken as complete.
//!
//! `python3` is taken from the PATH; it needs the venv module (Debian and
//! Ubuntu package it as `python3-venv`). `$WARDEN_TEST_PYTHON`, when set, is
//! used as is instead, with no environment (it must have those packages).

use std::fs::File;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

/// In the environment: the SHA-256 (hex) of the requirements it was built from.
const STAMP: &str = "warden-requirements.sha256";

/// The interpreter to run the tests' Python helpers with: the test
/// environment's (created if needed), or `$WARDEN_TEST_PYTHON`. Panics,
/// saying what failed, if the environment cannot be created.
pub fn python() -> PathBuf {
    if let Some(python) = std::env::var_os("WARDEN_TEST_PYTHON").filter(|p| !p.is_empty()) {
        return PathBuf::from(python);
    }
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match PYTHON.get_or_init(ensure_venv) {
        Ok(python) => python.clone(),
        Err(e) => panic!(
            "python_env: cannot set up the tests' Python environment: {e}\n\
             It needs Python 3 with the venv module (`python3 -m venv`; Debian and Ubuntu: \
             apt install python3-venv) and access to PyPI. Or set WARDEN_TEST_PYTHON to an \
             interpreter that has the packages of {}.",
            requirements().display()
        ),
    }
}

/// `crates/warden/tests/support/requirements.txt`.
fn requirements() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/requirements.txt")
}

fn venv_python(venv: &Path) -> PathBuf {
    if cfg!(windows) {
        venv.join("Scripts").join("python.exe")
    } else {
        venv.join("bin").join("python")
    }
}

/// Creates the environment unless it is complete and current; returns its
/// interpreter.
fn ensure_venv() -> Result<PathBuf, String> {
    let requirements = requirements();
    let wanted = std::fs::read(&requirements)
        .map_err(|e| format!("cannot read {}: {e}", requirements.display()))?;
    let wanted = hex::encode(Sha256::digest(&wanted));

    let parent = Path::new(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(parent)
        .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    let venv = parent.join("warden-test-venv");
    let python = venv_python(&venv);

    // Another test process may be creating it too: take turns. The lock is
    // released when `lock` is dropped (or the process ends).
    let _lock = lock_file(&parent.join("warden-test-venv.lock"))?;

    let current = std::fs::read_to_string(venv.join(STAMP)).is_ok_and(|s| s.trim() == wanted);
    // `exists` follows the symlink: false if the base interpreter is gone.
    if current && python.exists() {
        return Ok(python);
    }
    create(&venv, &requirements, &wanted)?;
    Ok(python)
}

/// Opens and locks `path` (created if missing), waiting for another test
/// process that holds it; released when the file is dropped. (Also the
/// browser tests' installer's.)
pub(crate) fn lock_file(path: &Path) -> Result<File, String> {
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    lock.lock()
        .map_err(|e| format!("cannot lock {}: {e}", path.display()))?;
    Ok(lock)
}

/// `removed`, the result of removing `path`, with "not found" as success.
fn removed(path: &Path, removed: std::io::Result<()>) -> Result<(), String> {
    match removed {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("cannot remove {}: {e}", path.display())),
    }
}

/// Runs `command`; on failure the error quotes its output (also the
/// browser tests' installer's).
pub(crate) fn run(command: &mut Command) -> Result<(), String> {
    let shown = format!("{command:?}");
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "{shown} failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(())
}

/// (Re-)creates the environment at `venv` from scratch. Called with the
/// lock held.
fn create(venv: &Path, requirements: &Path, stamp: &str) -> Result<(), String> {
    // The stamp first: an interrupted removal or build leaves no stamp.
    let stamp_path = venv.join(STAMP);
    removed(&stamp_path, std::fs::remove_file(&stamp_path))?;
    removed(venv, std::fs::remove_dir_all(venv))?;

    run(Command::new("python3").args(["-m", "venv"]).arg(venv))?;
    run(Command::new(venv_python(venv))
        .args(["-m", "pip", "install", "--require-hashes", "--no-deps"])
        .args(["--disable-pip-version-check", "--no-input", "-r"])
        .arg(requirements))?;

    let partial = venv.join(format!("{STAMP}.partial"));
    std::fs::write(&partial, format!("{stamp}\n"))
        .map_err(|e| format!("cannot write {}: {e}", partial.display()))?;
    std::fs::rename(&partial, venv.join(STAMP))
        .map_err(|e| format!("cannot rename {} into place: {e}", partial.display()))
}
