//! The repository's own tasks, run with `cargo xtask <task>` (an alias in
//! `.cargo/config.toml`):
//!
//! - `tidy [DIR]`: the floor plan's rules over the source tree (or another checkout's);
//! - `docs [--check]`: the generated reference pages and `config/default.toml` ([`docs`]).
//!
//! Both exit 1 with one line per problem when something is off; `.ci/run` runs
//! `tidy` and `docs --check`.

mod docs;
mod tidy;

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), PathBuf::from);
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["tidy"] | ["tidy", _] => match tidy::check(&args.get(1).map_or(root, PathBuf::from)) {
            Ok(breaches) if breaches.is_empty() => {
                println!("tidy: the floor plan's rules hold");
                ExitCode::SUCCESS
            }
            Ok(breaches) => {
                eprint!("{}", tidy::report(&breaches));
                eprintln!("tidy: {} problem(s)", breaches.len());
                ExitCode::FAILURE
            }
            Err(e) => {
                eprintln!("tidy: {e}");
                ExitCode::FAILURE
            }
        },
        ["docs"] | ["docs", "--check"] => {
            let check = args.len() == 2;
            match docs::run(&root, check) {
                Ok(stale) if stale.is_empty() => {
                    println!("docs: the generated references are up to date");
                    ExitCode::SUCCESS
                }
                Ok(stale) if check => {
                    for f in &stale {
                        eprintln!("{f}: stale; run `cargo xtask docs` and commit it");
                    }
                    ExitCode::FAILURE
                }
                Ok(stale) => {
                    for f in &stale {
                        println!("wrote {f}");
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("docs: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        _ => {
            eprintln!("usage: cargo xtask tidy [DIR] | cargo xtask docs [--check]");
            ExitCode::from(2)
        }
    }
}
