//! Python's reference implementations as test oracles (pyzmq's libzmq peer, the Prometheus
//! client's exposition parser): found, or installed with pip when missing.
//!
//! A test that cannot get its module is skipped with a message, except under `CI=true`,
//! where it fails: CI must never skip one silently.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::Mutex;

/// The Python interpreter: `$PYTHON`, or `python3`.
pub fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

fn imports(module: &str) -> bool {
    Command::new(python())
        .args(["-c", &format!("import {module}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// True if `module` can be imported, after `pip install package` if it could not (tried once
/// per test process); false, after saying so, if the caller should skip. Panics under
/// `CI=true` instead of returning false.
#[allow(clippy::print_stderr)] // A skip must be loud: it is printed for whoever runs the tests.
pub fn have_module(module: &str, package: &str) -> bool {
    static CHECKED: Mutex<Option<HashMap<String, bool>>> = Mutex::new(None);
    let mut checked = CHECKED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let usable = *checked
        .get_or_insert_with(HashMap::new)
        .entry(module.to_owned())
        .or_insert_with(|| install(module, package));
    if !usable {
        eprintln!("SKIPPED: {module} is not usable; a test that needs it did not run");
    }
    usable
}

#[allow(clippy::print_stderr)] // Says why the tests are skipped.
fn install(module: &str, package: &str) -> bool {
    if imports(module) {
        return true;
    }
    let pip = Command::new(python())
        .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", package])
        .status();
    if imports(module) {
        return true;
    }
    let why =
        format!("{module} cannot be imported by {} (pip install {package}: {pip:?})", python());
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}; required under CI=true");
    eprintln!("{why}");
    false
}
