//! The core's module graph: every file imports only from its own layer or the layers below
//! (`error` → `storage` → `format` → `coord` → `db` → `api`), and no two files import each
//! other through any chain. Run with `--nocapture` to see the graph.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const LAYERS: [&str; 6] = ["error", "storage", "format", "coord", "db", "api"];

fn rank(module: &str) -> Option<usize> {
    let top = module.split("::").next()?;
    LAYERS.iter().position(|l| *l == top)
}

/// `format/schema/mod.rs` → `format::schema`; `lib.rs` → ``.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts.join("::")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Expands a use tree (`a::{b, c::d}`) into full paths.
fn expand(prefix: &str, tree: &str, out: &mut Vec<String>) {
    let tree = tree.trim();
    match tree.find('{') {
        None => out.push(join(prefix, tree.split(" as ").next().unwrap().trim())),
        Some(open) => {
            let head = tree[..open].trim_end_matches("::");
            let inner = &tree[open + 1..tree.rfind('}').unwrap()];
            let base = join(prefix, head);
            let mut depth = 0;
            let mut start = 0;
            for (i, c) in inner.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        expand(&base, &inner[start..i], out);
                        start = i + 1;
                    }
                    _ => {}
                }
            }
            if !inner[start..].trim().is_empty() {
                expand(&base, &inner[start..], out);
            }
        }
    }
}

fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_string(),
        (_, true) => a.to_string(),
        _ => format!("{a}::{b}"),
    }
}

/// Every `crate::…` path a file names: in `use` trees and inline.
fn referenced_paths(text: &str) -> Vec<String> {
    let code: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = Vec::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        let after = &rest[at + "crate::".len()..];
        let end = if after.starts_with('{') {
            let mut depth = 0;
            after
                .char_indices()
                .find(|&(_, c)| {
                    match c {
                        '{' => depth += 1,
                        '}' => depth -= 1,
                        _ => {}
                    }
                    depth == 0
                })
                .map(|(i, _)| i + 1)
                .unwrap_or(after.len())
        } else {
            after
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':' || c == '{'))
                .unwrap_or(after.len())
        };
        let tree = after[..end].trim_end_matches(':');
        if tree.contains('{') && !tree.ends_with('}') {
            let close = after.find(';').unwrap_or(after.len());
            expand("", &after[..close], &mut out);
        } else {
            expand("", tree, &mut out);
        }
        rest = &after[end..];
    }
    out
}

/// The module file a path lands in: its longest prefix that is a module.
fn target_module(path: &str, modules: &BTreeSet<String>) -> Option<String> {
    let parts: Vec<&str> = path.split("::").collect();
    (1..=parts.len())
        .rev()
        .map(|n| parts[..n].join("::"))
        .find(|m| modules.contains(m))
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(&src, f)).collect();
    let mut edges = BTreeMap::new();
    for file in &files {
        let from = module_of(&src, file);
        if from.is_empty() {
            continue; // lib.rs only declares and re-exports
        }
        let text = std::fs::read_to_string(file).unwrap();
        let mut to: BTreeSet<String> = referenced_paths(&text)
            .iter()
            .filter_map(|p| target_module(p, &modules))
            .filter(|m| *m != from)
            .collect();
        let parent = from.rsplit_once("::").map(|(p, _)| p).unwrap_or("");
        for line in text.lines().filter(|l| l.contains("super::")) {
            for part in line.split("super::").skip(1) {
                let name: String = part
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if let Some(m) = target_module(&join(parent, &name), &modules) {
                    if m != from && m != parent {
                        to.insert(m);
                    }
                }
            }
        }
        edges.insert(from, to);
    }
    edges
}

fn find_cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.to_string());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, edges, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    edges
        .keys()
        .find_map(|n| visit(n, edges, &mut Vec::new(), &mut done))
}

#[test]
fn imports_point_only_downward_and_never_circle() {
    let edges = graph();
    let mut problems = Vec::new();
    for (from, tos) in &edges {
        let Some(from_rank) = rank(from) else {
            problems.push(format!("{from} is in no layer ({LAYERS:?})"));
            continue;
        };
        println!(
            "{from} -> {}",
            tos.iter().cloned().collect::<Vec<_>>().join(", ")
        );
        for to in tos {
            match rank(to) {
                Some(r) if r > from_rank => problems.push(format!("upward import: {from} -> {to}")),
                Some(_) => {}
                None => problems.push(format!("{from} imports {to}, which is in no layer")),
            }
        }
    }
    if let Some(cycle) = find_cycle(&edges) {
        problems.push(format!("import circle: {}", cycle.join(" -> ")));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_checker_sees_upward_imports_and_circles() {
    let paths = referenced_paths(
        "use crate::db::{inner::DbInner, resource::{self, Resource}};\nlet x = crate::coord::jitter();",
    );
    assert_eq!(
        paths,
        [
            "db::inner::DbInner",
            "db::resource::self",
            "db::resource::Resource",
            "coord::jitter"
        ]
    );
    let modules: BTreeSet<String> = ["coord", "db", "db::resource"].map(String::from).into();
    assert_eq!(
        target_module("db::resource::Resource", &modules).as_deref(),
        Some("db::resource")
    );
    let edges: BTreeMap<String, BTreeSet<String>> = [
        (
            "coord::lock".to_string(),
            BTreeSet::from(["db::inner".to_string()]),
        ),
        (
            "db::inner".to_string(),
            BTreeSet::from(["coord::lock".to_string()]),
        ),
    ]
    .into();
    assert_eq!(
        find_cycle(&edges).unwrap(),
        ["coord::lock", "db::inner", "coord::lock"]
    );
    assert!(rank("db::inner") > rank("coord::lock"));
}
