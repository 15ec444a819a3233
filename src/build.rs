//! Build script: names the build for `data --version` — the git commit it was built from
//! (`+dirty` when the checkout had uncommitted changes), or `unknown build` outside a
//! checkout. Nothing else.

use std::process::Command;

/// Runs git without its optional locks: a plain `git status` refreshes and rewrites
/// `.git/index`, which is in `rerun-if-changed` below, so every build would schedule the
/// next one (a fresh clone's second `cargo run` rebuilt the crate).
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("--no-optional-locks")
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    let build = match git(&["rev-parse", "--short=12", "HEAD"]) {
        Some(commit) if !commit.is_empty() => {
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            let date = git(&["log", "-1", "--format=%cs"]).unwrap_or_default();
            format!(
                "commit {commit}{}{}",
                if dirty { "+dirty" } else { "" },
                if date.is_empty() {
                    String::new()
                } else {
                    format!(", {date}")
                }
            )
        }
        _ => "unknown build".to_string(),
    };
    println!("cargo:rustc-env=DATA_BUILD={build}");
    for path in [".git/HEAD", ".git/index", ".git/refs/heads"] {
        if std::path::Path::new(path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    println!("cargo:rerun-if-changed=src/build.rs");
}
