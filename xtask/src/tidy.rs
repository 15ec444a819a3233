//! `cargo xtask tidy`: the floor plan's rules, checked over the source tree so they do not
//! drift back (`.ci/run` runs it; a broken rule fails CI with the file and line).
//!
//! - no source file longer than [`MAX_LINES`] lines before its tests (the stand-in's data
//!   generator excepted);
//! - a `//!` doc at the top of every source file;
//! - each crate depends only on the crates [`CRATE_DEPS`] allows it (so the Alpaca source,
//!   the database and the Parquet store never depend on each other);
//! - no import cycle between modules, and no forbidden edge between components within a
//!   crate (the core uses only the core; the stand-in only the core; the Alpaca source no
//!   store, command or CLI; a store no source, command or CLI);
//! - no column found by a name string outside the dataset code (columns are found by role);
//! - no error matched by its text (errors are told apart by kind or code).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The longest a source file may be, not counting its `#[cfg(test)]` module.
pub const MAX_LINES: usize = 600;

/// Files allowed to be longer: the stand-in's deterministic data generator, one algorithm.
const LONG_FILES: &[&str] = &["crates/standin/src/generate.rs"];

/// The core: markets, time and the calendar, datasets, batches, the pipeline, transforms,
/// resume, retry and the secrets registry. It uses nothing outside itself.
const CORE: &[&str] = &[
    "time",
    "nyse",
    "model",
    "dataset",
    "batch",
    "pipeline",
    "transform",
    "resume",
    "retry",
    "secrets",
];

/// A rule's breach: where, and what.
pub struct Breach {
    pub file: String,
    pub line: usize,
    pub what: String,
}

/// The workspace's crates that may depend on other crates of it, and on which. The core on
/// none; the stand-in, the Alpaca source and where files live on the core only; the job
/// (settings, run, the store face) on the core and where files live; each store on the
/// core, the job and (the Parquet store) where files live. So the Alpaca source, the
/// database and the Parquet store never depend on each other, not even through another
/// crate. Tests (`[dev-dependencies]`) may use more: the Alpaca source's decode the
/// stand-in's pages.
const CRATE_DEPS: &[(&str, &[&str])] = &[
    ("data-core", &[]),
    ("data-standin", &["data-core"]),
    ("data-alpaca", &["data-core"]),
    ("data-storage", &["data-core"]),
    ("data-job", &["data-core", "data-storage"]),
    ("data-sql", &["data-core", "data-job"]),
    ("data-parquet", &["data-core", "data-job", "data-storage"]),
];

/// Runs every check over the tree at `root` (the root crate's `src/` and each
/// `crates/*/src/`); the breaches, sorted.
pub fn check(root: &Path) -> Result<Vec<Breach>, String> {
    let mut out = Vec::new();
    let mut dirs = vec![root.join("src")];
    if let Ok(entries) = std::fs::read_dir(root.join("crates")) {
        let mut crates: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        crates.sort();
        for krate in crates {
            out.extend(check_manifest(root, &krate)?);
            dirs.push(krate.join("src"));
        }
    }
    for dir in dirs {
        out.extend(check_crate(root, &dir)?);
    }
    out.sort_by(|a, b| (&a.file, a.line, &a.what).cmp(&(&b.file, b.line, &b.what)));
    Ok(out)
}

/// A crate's dependencies on the workspace's other crates are those [`CRATE_DEPS`] allows.
fn check_manifest(root: &Path, krate: &Path) -> Result<Vec<Breach>, String> {
    let path = krate.join("Cargo.toml");
    let rel = path
        .strip_prefix(root)
        .map_err(|e| e.to_string())?
        .to_string_lossy()
        .replace('\\', "/");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{rel}: {e}"))?;
    let name = text
        .lines()
        .find_map(|l| l.strip_prefix("name = "))
        .map(|n| n.trim_matches('"').to_string())
        .unwrap_or_default();
    let allowed = CRATE_DEPS
        .iter()
        .find(|(n, _)| *n == name)
        .map_or(&[][..], |(_, deps)| *deps);
    let mut out = Vec::new();
    let mut section = "";
    for (n, line) in text.lines().enumerate() {
        if line.starts_with('[') {
            section = line.trim();
        }
        if section != "[dependencies]" {
            continue;
        }
        let Some(dep) = line.split_once(" = {").map(|(d, _)| d.trim()) else {
            continue;
        };
        if line.contains("path = ") && !allowed.contains(&dep) {
            out.push(breach(
                &rel,
                n + 1,
                format!("{name} depends on {dep}: allowed are {allowed:?}"),
            ));
        }
    }
    Ok(out)
}

/// The checks within one crate whose sources are under `src` (its modules are its own).
fn check_crate(root: &Path, src: &Path) -> Result<Vec<Breach>, String> {
    let files = source_files(src)?;
    let prefix = src
        .strip_prefix(root)
        .map_err(|e| e.to_string())?
        .to_string_lossy()
        .replace('\\', "/")
        + "/";
    let mut out = Vec::new();
    let mut graph: BTreeMap<String, BTreeSet<(String, usize)>> = BTreeMap::new();
    let mut modules = BTreeSet::new();
    let mut parsed = Vec::new();
    for path in &files {
        let rel = path
            .strip_prefix(root)
            .map_err(|e| e.to_string())?
            .to_string_lossy()
            .replace('\\', "/");
        let text = std::fs::read_to_string(path).map_err(|e| format!("{rel}: {e}"))?;
        let module = rel
            .strip_prefix(&prefix)
            .and_then(|inner| module_of(&format!("src/{inner}")));
        if let Some(m) = &module {
            modules.insert(m.clone());
        }
        parsed.push((rel, text, module));
    }
    for (rel, text, module) in &parsed {
        let code = before_tests(text);
        let lines = code.lines().count();
        if lines > MAX_LINES && !LONG_FILES.contains(&rel.as_str()) {
            out.push(breach(
                rel,
                MAX_LINES + 1,
                format!("{lines} lines before its tests (at most {MAX_LINES}): split it by what it does"),
            ));
        }
        if !text.trim_start().starts_with("//!") {
            out.push(breach(rel, 1, "no `//!` module doc at the top".into()));
        }
        let in_dataset = rel.contains("/dataset/");
        for (n, line) in code.lines().enumerate() {
            let t = line.trim_start();
            if t.starts_with("//") {
                continue;
            }
            for pattern in [
                "name == \"",
                "name != \"",
                "column_by_name(\"",
                "index_of(\"",
                ", \"t\")",
                ", \"seq\")",
            ] {
                if !in_dataset && t.contains(pattern) {
                    out.push(breach(
                        rel,
                        n + 1,
                        format!("a column found by its name (`{pattern}`): find it by its dataset::Role"),
                    ));
                }
            }
            for pattern in [
                ".to_string().contains(",
                "message().contains(",
                "}\").contains(",
                ".to_string().starts_with(",
            ] {
                if t.contains(pattern) {
                    out.push(breach(
                        rel,
                        n + 1,
                        format!(
                            "an error matched by its text (`{pattern}`): match its kind or code"
                        ),
                    ));
                }
            }
        }
        if let Some(m) = module {
            for (target, line) in references(m, code) {
                graph.entry(m.clone()).or_default().insert((target, line));
            }
        }
    }
    // References resolve to the longest module they name; a module's own ancestors are its
    // rooms, not edges.
    let mut edges: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for (from, targets) in &graph {
        for (path, line) in targets {
            let Some(to) = longest_module(path, &modules) else {
                continue;
            };
            if to.is_empty() || to == *from || from.starts_with(&format!("{to}::")) {
                continue;
            }
            edges
                .entry(from.clone())
                .or_default()
                .entry(to)
                .or_insert(*line);
        }
    }
    let file_of = |m: &str| -> String {
        parsed
            .iter()
            .find(|(_, _, module)| module.as_deref() == Some(m))
            .map_or_else(|| m.to_string(), |(rel, _, _)| rel.clone())
    };
    for (from, tos) in &edges {
        for (to, line) in tos {
            if let Some(rule) = forbidden(from, to) {
                out.push(breach(
                    &file_of(from),
                    *line,
                    format!("{from} uses {to}: {rule}"),
                ));
            }
        }
    }
    for cycle in cycles(&edges) {
        let first = &cycle[0];
        let line = edges[first]
            .get(&cycle[1 % cycle.len()])
            .copied()
            .unwrap_or(1);
        out.push(breach(
            &file_of(first),
            line,
            format!("an import cycle: {} -> {first}", cycle.join(" -> ")),
        ));
    }
    Ok(out)
}

fn breach(file: &str, line: usize, what: String) -> Breach {
    Breach {
        file: file.to_string(),
        line,
        what,
    }
}

/// The breaches as lines `file:line: what`.
pub fn report(breaches: &[Breach]) -> String {
    let mut s = String::new();
    for b in breaches {
        let _ = writeln!(s, "{}:{}: {}", b.file, b.line, b.what);
    }
    s
}

fn source_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|e| format!("{}: {e}", d.display()))?;
        for entry in entries {
            let path = entry.map_err(|e| e.to_string())?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The library module a file is (`src/store/sql/face.rs` → `store::sql::face`); `None`
/// for the binaries and the build script.
fn module_of(rel: &str) -> Option<String> {
    let inner = rel.strip_prefix("src/")?.strip_suffix(".rs")?;
    if inner.starts_with("bin/") || matches!(inner, "main" | "build") {
        return None;
    }
    let mut parts: Vec<&str> = inner.split('/').collect();
    if matches!(parts.last(), Some(&"mod") | Some(&"lib")) {
        parts.pop();
    }
    Some(parts.join("::"))
}

/// The text before the file's test module.
fn before_tests(text: &str) -> &str {
    match text.find("\n#[cfg(test)]") {
        Some(i) => &text[..i],
        None => text,
    }
}

/// Every module path the code names through `crate::` or `super::` (use trees expanded),
/// with the line that names it.
fn references(module: &str, code: &str) -> Vec<(String, usize)> {
    let parent: Vec<&str> = module.split("::").collect();
    let parent = parent[..parent.len().saturating_sub(1)].join("::");
    let mut out = Vec::new();
    let mut line_starts = vec![0];
    for (i, b) in code.bytes().enumerate() {
        if b == b'\n' {
            line_starts.push(i + 1);
        }
    }
    let line_of = |pos: usize| line_starts.partition_point(|&s| s <= pos);
    // Comments out: a line whose code starts with `//`.
    let mut clean = String::with_capacity(code.len());
    for line in code.split_inclusive('\n') {
        if line.trim_start().starts_with("//") {
            clean.extend(std::iter::repeat_n(' ', line.len() - 1));
            clean.push('\n');
        } else {
            clean.push_str(line);
        }
    }
    for (root, base) in [("crate::", String::new()), ("super::", parent)] {
        let mut from = 0;
        while let Some(i) = clean[from..].find(root) {
            let start = from + i;
            from = start + root.len();
            let before = clean[..start].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            for path in use_tree(&clean[from..]) {
                let full = match base.is_empty() {
                    true => path,
                    false => format!("{base}::{path}"),
                };
                out.push((full, line_of(start)));
            }
        }
    }
    out
}

/// The paths a use tree (or a plain path) at the start of `text` names: `a::b`, and for
/// `a::{b, c::{d}}` each of `a::b`, `a::c::d`.
fn use_tree(text: &str) -> Vec<String> {
    let mut prefix = String::new();
    let mut chars = text.char_indices().peekable();
    while let Some(&(i, c)) = chars.peek() {
        if c.is_alphanumeric() || c == '_' || c == ':' {
            prefix.push(c);
            chars.next();
        } else if c == '{' && (prefix.is_empty() || prefix.ends_with("::")) {
            let inner = &text[i + 1..];
            let mut depth = 1;
            let mut end = inner.len();
            for (j, ch) in inner.char_indices() {
                match ch {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            end = j;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let mut out = Vec::new();
            for part in split_top(&inner[..end]) {
                let part = part.trim();
                if part.is_empty() || part == "self" {
                    out.push(prefix.trim_end_matches(':').to_string());
                    continue;
                }
                for p in use_tree(part) {
                    out.push(format!("{prefix}{p}"));
                }
            }
            return out;
        } else {
            break;
        }
    }
    vec![prefix.trim_end_matches(':').to_string()]
}

/// `a, b::{c, d}, e` split at its top-level commas.
fn split_top(text: &str) -> Vec<&str> {
    let (mut out, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&text[start..]);
    out
}

fn longest_module(path: &str, modules: &BTreeSet<String>) -> Option<String> {
    let segs: Vec<&str> = path.split("::").collect();
    (1..=segs.len())
        .rev()
        .map(|k| segs[..k].join("::"))
        .find(|m| modules.contains(m))
}

/// Why `from` may not use `to`, if it may not.
fn forbidden(from: &str, to: &str) -> Option<&'static str> {
    let top = |m: &str| m.split("::").next().unwrap_or("").to_string();
    let two = |m: &str| m.split("::").take(2).collect::<Vec<_>>().join("::");
    let (f, t) = (top(from), top(to));
    let core = |m: &str| CORE.contains(&m);
    if core(&f) && !core(&t) {
        return Some("the core uses only the core");
    }
    if f == "standin" && t != "standin" && !core(&t) {
        return Some("the stand-in uses only the core");
    }
    let above = ["commands", "cli", "args"];
    if f == "source" && (t == "store" || above.contains(&t.as_str())) {
        return Some("the Alpaca source knows no store, command or CLI");
    }
    if f == "store" && (t == "source" || above.contains(&t.as_str())) {
        return Some("a store knows no source, command or CLI");
    }
    match (two(from).as_str(), two(to).as_str()) {
        ("store::sql", "store::parquet") | ("store::parquet", "store::sql") => {
            Some("the database and the Parquet store do not use each other")
        }
        _ => None,
    }
}

/// The import cycles of `edges` (each strongly connected set of more than one module, in
/// an order that walks it).
fn cycles(edges: &BTreeMap<String, BTreeMap<String, usize>>) -> Vec<Vec<String>> {
    // Tarjan's algorithm, iteratively small enough to recurse: the graph has ~100 nodes.
    struct State<'a> {
        edges: &'a BTreeMap<String, BTreeMap<String, usize>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        s.on.insert(v);
        if let Some(tos) = s.edges.get(v) {
            for w in tos.keys() {
                let w = w.as_str();
                if !s.index.contains_key(w) {
                    visit(s, w);
                    let lw = s.low[w];
                    let lv = s.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(lw);
                } else if s.on.contains(w) {
                    let iw = s.index[w];
                    let lv = s.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(iw);
                }
            }
        }
        if s.low[v] == s.index[v] {
            let mut set = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on.remove(w);
                set.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if set.len() > 1 {
                set.reverse();
                s.out.push(set);
            }
        }
    }
    let mut s = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in edges.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn use_trees_expand_to_every_path() {
        assert_eq!(
            use_tree("a::{b, c::{d, e}, self};"),
            vec!["a::b", "a::c::d", "a::c::e", "a"]
        );
        assert_eq!(
            use_tree("time::format_nanos(x)"),
            vec!["time::format_nanos"]
        );
    }

    #[test]
    fn files_map_to_modules() {
        assert_eq!(
            module_of("src/store/sql/mod.rs").as_deref(),
            Some("store::sql")
        );
        assert_eq!(module_of("src/lib.rs").as_deref(), Some(""));
        assert_eq!(module_of("src/bin/alpaca-standin.rs"), None);
    }

    #[test]
    fn a_cycle_and_a_forbidden_edge_are_found() {
        let mut edges: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
        edges.entry("a".into()).or_default().insert("b".into(), 3);
        edges.entry("b".into()).or_default().insert("a".into(), 4);
        edges.entry("b".into()).or_default().insert("c".into(), 5);
        assert_eq!(cycles(&edges), vec![vec!["a".to_string(), "b".to_string()]]);
        assert!(forbidden("time", "store::sql").is_some());
        assert!(forbidden("source::fetch", "store::claims").is_some());
        assert!(forbidden("store::sql::face", "store::parquet::layout").is_some());
        assert!(forbidden("store::parquet::face", "run").is_none());
    }
}
