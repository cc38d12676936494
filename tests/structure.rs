//! Structural limits of the source tree (issue 13): no file under `crates/*/src` or `src/` over
//! 1,000 lines, no function over 150 lines, no import cycle between files (file A uses file B
//! and B uses A, directly or around a longer loop). A plain text scan — comments, strings and
//! character literals are blanked, braces are counted — so it needs no database and no parser.
//!
//! The allow-lists below name what other work streams are still splitting. They are meant to
//! shrink: an entry that no longer exceeds its limit fails the test too, so that it is removed
//! as soon as the split lands.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The longest file, in lines.
const MAX_FILE_LINES: usize = 1_000;
/// The longest function, in lines (from the line of `fn` to the line of its closing brace).
const MAX_FN_LINES: usize = 150;

/// Files still over [`MAX_FILE_LINES`] (path from the workspace root).
const LONG_FILES: &[&str] = &[];

/// Functions still over [`MAX_FN_LINES`]: (file, function name).
const LONG_FNS: &[(&str, &str)] = &[
    ("crates/gates/src/rules/cascade_reach.rs", "check"),
    ("crates/migration-parser/src/slices.rs", "slices"),
];

/// Import cycles still to break, each as the sorted files of the cycle.
const CYCLES: &[&[&str]] = &[];

#[test]
fn no_source_file_over_1000_lines() {
    let root = workspace_root();
    let mut over = BTreeSet::new();
    for file in source_files(&root) {
        let lines = read(&file).lines().count();
        if lines > MAX_FILE_LINES {
            over.insert((rel(&root, &file), lines));
        }
    }
    let found: BTreeSet<String> = over.iter().map(|(f, _)| f.clone()).collect();
    let new: Vec<String> = over
        .iter()
        .filter(|(f, _)| !LONG_FILES.contains(&f.as_str()))
        .map(|(f, n)| format!("{f}: {n} lines"))
        .collect();
    assert!(
        new.is_empty(),
        "files over {MAX_FILE_LINES} lines (split them by concern):\n{}",
        new.join("\n")
    );
    assert_no_stale(
        "LONG_FILES",
        LONG_FILES.iter().map(|f| f.to_string()),
        &found,
    );
}

#[test]
fn no_function_over_150_lines() {
    let root = workspace_root();
    let mut over = BTreeSet::new();
    for file in source_files(&root) {
        for f in long_functions(&read(&file), MAX_FN_LINES) {
            over.insert((rel(&root, &file), f.name, f.line, f.lines));
        }
    }
    let found: BTreeSet<String> = over.iter().map(|(f, n, ..)| format!("{f} {n}")).collect();
    let new: Vec<String> = over
        .iter()
        .filter(|(f, n, ..)| !LONG_FNS.contains(&(f.as_str(), n.as_str())))
        .map(|(f, n, line, lines)| format!("{f}:{line}: fn {n} is {lines} lines"))
        .collect();
    assert!(
        new.is_empty(),
        "functions over {MAX_FN_LINES} lines (split them into named steps):\n{}",
        new.join("\n")
    );
    let allowed = LONG_FNS.iter().map(|(f, n)| format!("{f} {n}"));
    assert_no_stale("LONG_FNS", allowed, &found);
}

#[test]
fn no_import_cycle_between_files() {
    let root = workspace_root();
    let mut cycles = BTreeSet::new();
    for src in crate_source_dirs(&root) {
        for cycle in import_cycles(&src) {
            cycles.insert(cycle.iter().map(|f| rel(&root, f)).collect::<Vec<_>>());
        }
    }
    let allowed: BTreeSet<Vec<String>> = CYCLES
        .iter()
        .map(|c| c.iter().map(|f| f.to_string()).collect())
        .collect();
    let new: Vec<String> = cycles
        .iter()
        .filter(|c| !allowed.contains(*c))
        .map(|c| c.join(" <-> "))
        .collect();
    assert!(
        new.is_empty(),
        "files that use each other (move what both need into a file of its own):\n{}",
        new.join("\n")
    );
    let found = cycles.iter().map(|c| c.join(" <-> ")).collect();
    let allowed = allowed.iter().map(|c| c.join(" <-> "));
    assert_no_stale("CYCLES", allowed, &found);
}

#[test]
fn the_scan_measures_functions_through_strings_comments_and_literals() {
    let src = "fn short() {\n    let s = \"}}}\";\n}\n\
               /// doc { brace\nfn long() {\n    let c = '}';\n    let r = r#\"}\"#;\n    \
               // }\n    /* } */\n    let l: &'static str = \"\";\n    let x = 1;\n}\n\
               trait T {\n    fn decl(&self);\n}\n";
    let all = long_functions(src, 0);
    let got: Vec<(String, usize)> = all.into_iter().map(|f| (f.name, f.lines)).collect();
    assert_eq!(
        got,
        vec![("short".to_string(), 3), ("long".to_string(), 8)],
        "function lengths"
    );
    assert!(long_functions(src, 8).is_empty());
}

#[test]
fn the_scan_finds_files_that_use_each_other() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path();
    let write = |name: &str, text: &str| {
        let p = src.join(name);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    };
    write(
        "lib.rs",
        "mod a;\nmod b;\nmod c;\nmod d;\nmod f;\npub use a::A;\n",
    );
    write("a.rs", "use crate::b::B;\npub struct A;\n");
    write("b.rs", "use crate::{c::C, d};\npub struct B;\n");
    write("c.rs", "pub struct C(crate::a::A);\n");
    write("d/mod.rs", "mod e;\npub use e::E;\n");
    write("d/e.rs", "use super::super::f::F;\npub struct E;\n");
    write(
        "f.rs",
        "pub struct F;\n#[cfg(test)]\nmod tests {\n    use super::super::a::A;\n}\n",
    );
    let cycles: Vec<Vec<String>> = import_cycles(src)
        .into_iter()
        .map(|c| c.iter().map(|f| rel(src, f)).collect())
        .collect();
    assert_eq!(cycles, vec![vec!["a.rs", "b.rs", "c.rs"]]);
}

// ---------------------------------------------------------------------------------------------
// The scan
// ---------------------------------------------------------------------------------------------

/// The tree to check: this workspace, or `DEPLOYCLAW_STRUCTURE_ROOT` (to scan another
/// checkout with the same rules).
fn workspace_root() -> PathBuf {
    std::env::var_os("DEPLOYCLAW_STRUCTURE_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn rel(root: &Path, path: &Path) -> String {
    let p = path.strip_prefix(root).unwrap_or(path);
    p.to_string_lossy().replace('\\', "/")
}

/// `src/` of the root package and of every crate under `crates/`.
fn crate_source_dirs(root: &Path) -> Vec<PathBuf> {
    let mut dirs = vec![root.join("src")];
    let mut crates: Vec<PathBuf> = std::fs::read_dir(root.join("crates"))
        .expect("crates/")
        .filter_map(|e| e.ok().map(|e| e.path().join("src")))
        .filter(|p| p.is_dir())
        .collect();
    crates.sort();
    dirs.extend(crates);
    dirs
}

fn source_files(root: &Path) -> Vec<PathBuf> {
    crate_source_dirs(root)
        .iter()
        .flat_map(|d| rust_files(d))
        .collect()
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn assert_no_stale(list: &str, allowed: impl Iterator<Item = String>, found: &BTreeSet<String>) {
    let stale: Vec<String> = allowed.filter(|a| !found.contains(a)).collect();
    assert!(
        stale.is_empty(),
        "{list} in tests/structure.rs names what is now within the limit; remove:\n{}",
        stale.join("\n")
    );
}

/// Rust source with comments, string and character literals blanked (newlines kept), so that
/// braces, `fn` and paths can be found by plain text search.
fn code_only(src: &str) -> String {
    let b: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let blank = |out: &mut String, c: char| out.push(if c == '\n' { '\n' } else { ' ' });
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < b.len() && b[i] != '\n' {
                blank(&mut out, b[i]);
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == '/' && b.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if b[i] == '*' && b.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, b[i]);
                    i += 1;
                }
            }
        } else if c == 'r' && raw_string_start(&b, i).is_some() && !ident_char_before(&b, i) {
            let hashes = raw_string_start(&b, i).unwrap_or(0);
            let end = raw_string_end(&b, i + 2 + hashes, hashes);
            for &x in &b[i..end] {
                blank(&mut out, x);
            }
            i = end;
        } else if c == '"' {
            blank(&mut out, c);
            i += 1;
            while i < b.len() && b[i] != '"' {
                let step = if b[i] == '\\' { 2 } else { 1 };
                for &x in &b[i..(i + step).min(b.len())] {
                    blank(&mut out, x);
                }
                i += step;
            }
            if i < b.len() {
                out.push(' ');
                i += 1;
            }
        } else if c == '\'' && char_literal_len(&b, i).is_some() {
            let n = char_literal_len(&b, i).unwrap_or(1);
            for &x in &b[i..i + n] {
                blank(&mut out, x);
            }
            i += n;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn ident_char_before(b: &[char], i: usize) -> bool {
    i > 0 && (b[i - 1].is_alphanumeric() || b[i - 1] == '_') && b[i - 1] != 'b'
}

/// At `r` of `r"`, `r#"`, `r##"`: the number of `#`.
fn raw_string_start(b: &[char], i: usize) -> Option<usize> {
    let mut j = i + 1;
    while b.get(j) == Some(&'#') {
        j += 1;
    }
    (b.get(j) == Some(&'"')).then_some(j - i - 1)
}

/// The index after the closing quote and hashes of a raw string whose body starts at `from`.
fn raw_string_end(b: &[char], from: usize, hashes: usize) -> usize {
    let mut i = from;
    while i < b.len() {
        if b[i] == '"' && (1..=hashes).all(|k| b.get(i + k) == Some(&'#')) {
            return i + 1 + hashes;
        }
        i += 1;
    }
    b.len()
}

/// At a `'`: the length of the character literal that starts here, `None` for a lifetime.
fn char_literal_len(b: &[char], i: usize) -> Option<usize> {
    if b.get(i + 1) == Some(&'\\') {
        let close = (i + 2..b.len().min(i + 12)).find(|&j| b[j] == '\'')?;
        return Some(close - i + 1);
    }
    (b.get(i + 2) == Some(&'\'')).then_some(3)
}

/// A function longer than the limit.
struct LongFn {
    name: String,
    /// 1-based line of `fn`.
    line: usize,
    lines: usize,
}

/// Every function with a body of more than `max` lines, in source order.
fn long_functions(src: &str, max: usize) -> Vec<LongFn> {
    let code: Vec<char> = code_only(src).chars().collect();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < code.len() {
        if code[i] == '\n' {
            line += 1;
        }
        let starts_fn = code[i..].starts_with(&['f', 'n', ' '])
            && (i == 0 || !(code[i - 1].is_alphanumeric() || code[i - 1] == '_'));
        if starts_fn {
            let name: String = code[i + 3..]
                .iter()
                .skip_while(|c| c.is_whitespace())
                .take_while(|c| c.is_alphanumeric() || **c == '_')
                .collect();
            if let Some(lines) = body_lines(&code, i + 3)
                && lines > max
            {
                out.push(LongFn { name, line, lines });
            }
        }
        i += 1;
    }
    out
}

/// Lines from `from` to the brace closing the function body that starts after it; `None` for
/// a declaration without a body (`;` first, outside brackets).
fn body_lines(code: &[char], from: usize) -> Option<usize> {
    let mut parens = 0i32;
    let mut i = from;
    while i < code.len() {
        match code[i] {
            '(' | '[' | '<' => parens += 1,
            ')' | ']' | '>' if code.get(i.wrapping_sub(1)) != Some(&'-') => parens -= 1,
            ';' if parens <= 0 => return None,
            '{' => break,
            _ => {}
        }
        i += 1;
    }
    let start = i;
    let mut depth = 0;
    while i < code.len() {
        match code[i] {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            _ => {}
        }
        i += 1;
    }
    let newlines = |a: usize, b: usize| code[a..b.min(code.len())].iter().filter(|c| **c == '\n');
    Some(newlines(from, start).count() + newlines(start, i).count() + 1)
}

// ---------------------------------------------------------------------------------------------
// Imports between files
// ---------------------------------------------------------------------------------------------

/// The module path of every file of the crate whose sources are in `src` (`lib.rs`, `main.rs`:
/// the empty path; `a/mod.rs` and `a.rs`: `a`).
fn module_paths(src: &Path) -> BTreeMap<Vec<String>, PathBuf> {
    let mut out = BTreeMap::new();
    for f in rust_files(src) {
        let rel = f.strip_prefix(src).expect("under src");
        let mut parts: Vec<String> = rel
            .iter()
            .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
            .collect();
        if matches!(
            parts.last().map(String::as_str),
            Some("mod" | "lib" | "main")
        ) {
            parts.pop();
        }
        // A binary next to the library (`src/bin/…`) is a crate of its own: skipped.
        if parts.first().map(String::as_str) == Some("bin") {
            continue;
        }
        out.entry(parts).or_insert(f);
    }
    out
}

/// Every path a file names with `crate::`, `super::`, `self::` or a child module, as an
/// absolute module path (use trees expanded).
fn named_paths(code: &str, here: &[String], children: &BTreeSet<String>) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for (i, _) in code.match_indices("use ") {
        if is_ident(code[..i].chars().next_back()) {
            continue;
        }
        let tree = code[i + 4..].split(';').next().unwrap_or("");
        let compact: String = tree
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .replace(" as ", "@")
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        for p in expand_use(&compact) {
            out.extend(absolute(&p, here, children));
        }
    }
    for head in ["crate::", "super::", "self::"] {
        for (i, _) in code.match_indices(head) {
            if !is_ident(code[..i].chars().next_back()) {
                let path: String = code[i..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                    .collect();
                let parts: Vec<String> = path
                    .split("::")
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect();
                out.extend(absolute(&parts, here, children));
            }
        }
    }
    out
}

fn is_ident(c: Option<char>) -> bool {
    c.is_some_and(|c| c.is_alphanumeric() || c == '_')
}

/// `a::{b, c::{d, self}}` → `a::b`, `a::c::d`, `a::c` (whitespace removed, ` as ` written `@`).
fn expand_use(tree: &str) -> Vec<Vec<String>> {
    let split_path = |s: &str| -> Vec<String> {
        s.split('@')
            .next()
            .unwrap_or(s)
            .split("::")
            .filter(|x| !x.is_empty() && *x != "*")
            .map(String::from)
            .collect()
    };
    let Some(open) = tree.find('{') else {
        return vec![split_path(tree)];
    };
    let prefix = split_path(&tree[..open]);
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let mut items = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&inner[start..]);
    let mut out = Vec::new();
    for item in items.into_iter().filter(|s| !s.is_empty()) {
        for rest in expand_use(item) {
            let mut p = prefix.clone();
            p.extend(rest.into_iter().filter(|s| s != "self"));
            out.push(p);
        }
    }
    out
}

/// `parts` from the module `here` as an absolute module path, if it points into the crate.
fn absolute(parts: &[String], here: &[String], children: &BTreeSet<String>) -> Option<Vec<String>> {
    let first = parts.first()?;
    let mut base: Vec<String> = match first.as_str() {
        "crate" => Vec::new(),
        "self" => here.to_vec(),
        "super" => here.to_vec(),
        c if children.contains(c) => here.to_vec(),
        _ => return None,
    };
    let mut rest = parts;
    if first == "crate" || first == "self" {
        rest = &parts[1..];
    }
    while rest.first().map(String::as_str) == Some("super") {
        base.pop();
        rest = &rest[1..];
    }
    base.extend(rest.iter().cloned());
    Some(base)
}

/// The module a path lands in: its longest prefix that is a module of the crate.
fn module_of<'a>(
    path: &'a [String],
    modules: &BTreeMap<Vec<String>, PathBuf>,
) -> Option<&'a [String]> {
    (0..=path.len())
        .rev()
        .map(|n| &path[..n])
        .find(|m| modules.contains_key(*m))
}

/// `code` without inline modules (`mod tests { … }`): their `super` is the file itself.
fn without_inline_modules(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let mut rest = code;
    while let Some(i) = find_inline_module(rest) {
        out.push_str(&rest[..i]);
        let body = &rest[i..];
        let mut depth = 0;
        let mut end = body.len();
        for (j, c) in body.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = j + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        out.extend(body[..end].chars().filter(|c| *c == '\n'));
        rest = &body[end..];
    }
    out.push_str(rest);
    out
}

/// Where the next `mod name {` starts.
fn find_inline_module(code: &str) -> Option<usize> {
    code.match_indices("mod ").map(|(i, _)| i).find(|&i| {
        !is_ident(code[..i].chars().next_back())
            && code[i + 4..]
                .trim_start()
                .trim_start_matches(|c: char| c.is_alphanumeric() || c == '_')
                .trim_start()
                .starts_with('{')
    })
}

/// The sets of files of the crate in `src` that use each other (strongly connected
/// components of more than one file), each sorted. The crate root (`lib.rs`, `main.rs`)
/// declares and re-exports everything and is left out, and so is a module's use of its own
/// submodules (a `rules/mod.rs` that lists its rules, whose files use its helpers, is one
/// module, like `gates/src/rules/`).
fn import_cycles(src: &Path) -> Vec<Vec<PathBuf>> {
    let modules = module_paths(src);
    let mut edges: BTreeMap<PathBuf, BTreeSet<PathBuf>> = BTreeMap::new();
    for (here, file) in &modules {
        if here.is_empty() {
            continue;
        }
        let code = without_inline_modules(&code_only(&read(file)));
        let children: BTreeSet<String> = modules
            .keys()
            .filter(|m| m.len() == here.len() + 1 && m.starts_with(here))
            .filter_map(|m| m.last().cloned())
            .collect();
        for path in named_paths(&code, here, &children) {
            if let Some(target) = module_of(&path, &modules)
                && !target.is_empty()
                && !target.starts_with(here)
            {
                let to = modules[target].clone();
                edges.entry(file.clone()).or_default().insert(to);
            }
        }
    }
    strongly_connected(&edges)
}

/// Components of more than one node (Tarjan's algorithm, recursive: the graphs are small).
fn strongly_connected(edges: &BTreeMap<PathBuf, BTreeSet<PathBuf>>) -> Vec<Vec<PathBuf>> {
    struct State<'a> {
        edges: &'a BTreeMap<PathBuf, BTreeSet<PathBuf>>,
        index: BTreeMap<&'a PathBuf, usize>,
        low: BTreeMap<&'a PathBuf, usize>,
        stack: Vec<&'a PathBuf>,
        on_stack: BTreeSet<&'a PathBuf>,
        out: Vec<Vec<PathBuf>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a PathBuf) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.edges.get(v).into_iter().flatten() {
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(lw);
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                comp.push(w.clone());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                s.out.push(comp);
            }
        }
    }
    let mut s = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in edges.keys() {
        if !s.index.contains_key(v) {
            visit(&mut s, v);
        }
    }
    s.out.sort();
    s.out
}
