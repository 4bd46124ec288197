//! Records the git revision the binary was built from, for the provenance of evaluation
//! campaigns (outside a git checkout, a source tarball, it records nothing), and gives the
//! linker the layout that keeps the monitor's code together (`assets/link/hot.ld`, written
//! by `scripts/profile-layout.sh`).

use std::process::Command;

fn main() {
    hot_layout();
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
    let rev = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    if let Some(rev) = rev {
        println!("cargo:rustc-env=OPERATOR_GIT_REVISION={rev}");
    }
}

/// The functions the monitor runs go first in the `operator` binary's code, so that the few
/// pages the kernel maps around each hold hardly anything else (see the script).
fn hot_layout() {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/link/hot.ld");
    println!("cargo:rerun-if-changed={}", script.display());
    // `OPERATOR_HOT_LAYOUT=off` links as usual, to measure what the layout saves.
    println!("cargo:rerun-if-env-changed=OPERATOR_HOT_LAYOUT");
    let off = std::env::var("OPERATOR_HOT_LAYOUT").is_ok_and(|v| v == "off");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    if linux && !off && script.exists() {
        println!(
            "cargo:rustc-link-arg-bin=operator=-Wl,-T,{}",
            script.display()
        );
    }
}
