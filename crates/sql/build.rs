//! Build script: compiles the crate again when a migration is added or changed, so the
//! schema `sqlx::migrate!` embeds from `migrations/` is always the one on disk (the macro
//! alone is not told about new files). Nothing else.

fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
    println!("cargo:rerun-if-changed=build.rs");
}
