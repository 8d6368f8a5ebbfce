//! The layout is the architecture (docs/engine.md#layers-of-the-code): no file of `src/`
//! imports, through a chain of others, a file that imports it back, and none is over 600 lines.
//! A file's imports are the `crate::…` and `super::…` paths it names (in `use` lines or inline),
//! each resolved to the longest module path that is a file and followed through a folder's
//! `pub use` re-exports to the file that defines the item; a `mod.rs` declaring and re-exporting
//! its children is the folder's index, not an import of them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module path (`train::fit`, `cuda` for `cuda/mod.rs`) → source text without its test module
/// and comments.
fn modules(src: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for p in rust_files(src) {
        let rel = p.strip_prefix(src).unwrap().with_extension("");
        let mut parts: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        if parts
            .last()
            .is_some_and(|l| l == "mod" || l == "lib" || l == "main")
        {
            parts.pop();
        }
        let text = std::fs::read_to_string(&p).unwrap();
        let code = text.split("#[cfg(test)]\nmod tests").next().unwrap();
        let code: String = code
            .lines()
            .map(|l| l.split("//").next().unwrap())
            .collect::<Vec<_>>()
            .join("\n");
        out.insert(parts.join("::"), code);
    }
    out
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let (mut files, mut dirs) = (Vec::new(), vec![dir.to_path_buf()]);
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                files.push(p);
            }
        }
    }
    files
}

/// The module paths a file names: `crate::a::b::C`, `super::x`, and each item of a
/// `crate::a::{b, c::D}` group.
fn named_paths(module: &str, code: &str) -> Vec<String> {
    let mut paths = Vec::new();
    for base in ["crate::", "super::"] {
        for (at, _) in code.match_indices(base) {
            if at > 0 && code[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let rest = &code[at + base.len()..];
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(rest.len());
            let path = rest[..end].trim_end_matches(':');
            let prefix = if base == "crate::" {
                path.to_string()
            } else {
                // `super` of module `a::b` (a/b.rs, or a/b/mod.rs) is `a`.
                let mut parent: Vec<&str> = module.split("::").filter(|s| !s.is_empty()).collect();
                parent.pop();
                parent.push(path);
                parent.join("::")
            };
            paths.push(prefix.clone());
            if rest[end..].starts_with('{') {
                let group = &rest[end + 1..rest[end..].find('}').map_or(rest.len(), |k| end + k)];
                for item in group.split(',') {
                    let item = item.trim().split(" as ").next().unwrap().trim();
                    if !item.is_empty() && item != "self" {
                        paths.push(format!("{prefix}::{}", item.split("::{").next().unwrap()));
                    }
                }
            }
        }
    }
    paths
}

/// `(module, item)` → the path a `pub use` in that module re-exports it from: `pub use
/// child::{A, B};`, `pub use child::A;`, `pub(crate) use crate::x::A;`.
fn re_exports(files: &BTreeMap<String, String>) -> BTreeMap<(String, String), String> {
    let mut out = BTreeMap::new();
    for (m, code) in files {
        for stmt in code.split(';') {
            let stmt = stmt.trim();
            let Some(rest) = ["pub use ", "pub(crate) use ", "pub(super) use "]
                .iter()
                .find_map(|p| stmt.strip_prefix(p))
            else {
                continue;
            };
            let (base, items) = match rest.split_once("::{") {
                Some((base, group)) => (base, group.trim_end_matches('}').split(',').collect()),
                None => match rest.rsplit_once("::") {
                    Some((base, item)) => (base, vec![item]),
                    None => continue,
                },
            };
            let target = if let Some(p) = base.strip_prefix("crate::") {
                p.to_string()
            } else if let Some(p) = base.strip_prefix("super::") {
                let mut parent: Vec<&str> = m.split("::").filter(|s| !s.is_empty()).collect();
                parent.pop();
                parent.push(p);
                parent.join("::")
            } else if m.is_empty() {
                base.to_string()
            } else {
                format!("{m}::{base}")
            };
            for item in items {
                let name = item.trim().rsplit(" as ").next().unwrap().trim();
                if !name.is_empty() && name != "self" && !name.contains('{') {
                    let source = item.trim().split(" as ").next().unwrap().trim();
                    out.insert((m.clone(), name.to_string()), format!("{target}::{source}"));
                }
            }
        }
    }
    out
}

/// The file a path names: the longest module prefix that is a file, followed through the
/// re-exports of a folder's `mod.rs` to the file that defines the item.
fn resolve<'a>(
    path: &str,
    files: &'a BTreeMap<String, String>,
    re: &BTreeMap<(String, String), String>,
) -> Option<&'a str> {
    let mut path = path.to_string();
    for _ in 0..8 {
        let parts: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
        let k = (1..=parts.len())
            .rev()
            .find(|&k| files.contains_key(&parts[..k].join("::")))?;
        let module = parts[..k].join("::");
        match parts
            .get(k)
            .and_then(|item| re.get(&(module.clone(), item.to_string())))
        {
            Some(next) => path = next.clone(),
            None => return files.get_key_value(&module).map(|(m, _)| m.as_str()),
        }
    }
    None
}

/// The strongly connected components of more than one module (Tarjan).
fn circles(edges: &BTreeMap<&str, BTreeSet<&str>>) -> Vec<Vec<String>> {
    struct State<'a> {
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        found: Vec<Vec<String>>,
    }
    fn visit<'a>(v: &'a str, edges: &BTreeMap<&'a str, BTreeSet<&'a str>>, s: &mut State<'a>) {
        let k = s.index.len();
        s.index.insert(v, k);
        s.low.insert(v, k);
        s.stack.push(v);
        for &w in &edges[v] {
            if !s.index.contains_key(w) {
                visit(w, edges, s);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if s.stack.contains(&w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = s.stack.pop() {
                comp.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                s.found.push(comp);
            }
        }
    }
    let mut s = State {
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        found: Vec::new(),
    };
    for &v in edges.keys() {
        if !s.index.contains_key(v) {
            visit(v, edges, &mut s);
        }
    }
    s.found
}

fn import_graph(src: &Path) -> (BTreeMap<String, String>, Vec<(String, String)>) {
    let files = modules(src);
    let re = re_exports(&files);
    let mut pairs = Vec::new();
    for (m, code) in &files {
        for p in named_paths(m, code) {
            if let Some(t) = resolve(&p, &files, &re) {
                if t != m && !t.is_empty() {
                    pairs.push((m.clone(), t.to_string()));
                }
            }
        }
    }
    (files, pairs)
}

#[test]
fn no_file_of_src_imports_itself_back_through_others() {
    let (files, pairs) = import_graph(Path::new(env!("CARGO_MANIFEST_DIR")).join("src").as_path());
    let mut edges: BTreeMap<&str, BTreeSet<&str>> = files
        .keys()
        .map(|k| (k.as_str(), BTreeSet::new()))
        .collect();
    for (a, b) in &pairs {
        edges.get_mut(a.as_str()).unwrap().insert(b.as_str());
    }
    let found = circles(&edges);
    let shown: Vec<String> = found
        .iter()
        .map(|c| {
            let members: BTreeSet<&str> = c.iter().map(String::as_str).collect();
            let lines: Vec<String> = c
                .iter()
                .map(|m| {
                    let to: Vec<&str> = edges[m.as_str()]
                        .iter()
                        .copied()
                        .filter(|t| members.contains(t))
                        .collect();
                    format!("  {m} -> {}", to.join(", "))
                })
                .collect();
            lines.join("\n")
        })
        .collect();
    assert!(found.is_empty(), "import circles:\n{}", shown.join("\n\n"));
}

#[test]
fn the_check_finds_a_circle_when_there_is_one() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path();
    std::fs::create_dir_all(src.join("a")).unwrap();
    std::fs::write(src.join("lib.rs"), "pub mod a;\npub mod b;\n").unwrap();
    std::fs::write(src.join("a/mod.rs"), "pub mod x;\n").unwrap();
    std::fs::write(src.join("a/x.rs"), "use crate::b::{Thing, other::More};\n").unwrap();
    std::fs::write(src.join("b.rs"), "fn f() { super::a::x::g(); }\n").unwrap();
    let (_, pairs) = import_graph(src);
    let has = |a: &str, b: &str| pairs.iter().any(|p| p.0 == a && p.1 == b);
    assert!(has("a::x", "b") && has("b", "a::x"), "{pairs:?}");
    // Through a re-export: `crate::a::Y` is a/y.rs's item, re-exported by a/mod.rs.
    std::fs::write(src.join("a/mod.rs"), "pub mod x;\nmod y;\npub use y::Y;\n").unwrap();
    std::fs::write(src.join("a/y.rs"), "use crate::b::Thing;\n").unwrap();
    std::fs::write(src.join("b.rs"), "use crate::a::Y;\n").unwrap();
    let (_, pairs) = import_graph(src);
    let has = |a: &str, b: &str| pairs.iter().any(|p| p.0 == a && p.1 == b);
    assert!(has("a::y", "b") && has("b", "a::y"), "{pairs:?}");
}

/// One concept per file: a file that grows past this is split where its concepts part.
const MAX_LINES: usize = 600;

#[test]
fn no_file_of_src_is_over_600_lines() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut long = Vec::new();
    for p in rust_files(&src) {
        let n = std::fs::read_to_string(&p).unwrap().lines().count();
        if n > MAX_LINES {
            long.push(format!(
                "{} ({n} lines)",
                p.strip_prefix(&src).unwrap().display()
            ));
        }
    }
    assert!(
        long.is_empty(),
        "over {MAX_LINES} lines: {}",
        long.join(", ")
    );
}
