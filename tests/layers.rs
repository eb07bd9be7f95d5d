//! The house plan of `src/`, checked on every `cargo test` (README, "Development"):
//!
//! - no import cycle between files, and none between top-level modules;
//! - every import points down the layers in [`LAYERS`] (a module may use its own layer or lower);
//! - no file over [`MAX_LINES`] lines, test-only files and [`LONG_FILES`] aside;
//! - each folder's `mod.rs` opens with a `//!` line saying what the folder is for;
//! - SQL on a table group only in the module that owns it ([`TABLE_OWNERS`]);
//! - what `fuzz/` compiles alone ([`STANDALONE`]) imports nothing outside itself.
//!
//! Imports are read from the text: `use` trees, and `crate::`/`super::`/`self::`/child-module/
//! alias paths in code, with `use` bindings (re-exports) followed to the file that defines the item.
//! Comments, strings and `#[cfg(test)]` items are left out. `LAYERS_REPORT=1 cargo test --test
//! layers -- --nocapture` prints every edge with the line it comes from.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top to bottom. A module may import from its own layer (if no cycle) or any layer below.
const LAYERS: &[&[&str]] = &[
    &["cli"],
    &["app", "export", "scaffold", "ops"],
    &["web", "inbox", "api"],
    &["timeline"],
    &["conversation", "owner"],
    &["delivery"],
    &["activitypub"],
    &["context"],
    &["posts", "federation"],
    &["graph"],
    &["actors"],
    &[
        "httpsig", "keys", "db", "urls", "config", "times", "text", "sanitize", "metrics",
    ],
];

/// Compiled alone by `fuzz/src/lib.rs` (`#[path]`): these may import only inside themselves.
const STANDALONE: &[(&str, &str)] = &[
    ("httpsig/", "httpsig/"),
    ("activitypub/incoming.rs", "activitypub/incoming.rs"),
];

const MAX_LINES: usize = 600;
/// Files allowed over the limit, with the reason (paths relative to `src/`).
const LONG_FILES: &[(&str, &str)] = &[];

/// Table, the path prefix (relative to `src/`) of its owner, and whether every statement must be
/// there (`true`) or only the writes (`INSERT INTO`, `UPDATE`, `DELETE FROM`): a read that joins
/// a handle or a slug onto one's own rows may stay with its rows. Test code is not checked.
const TABLE_OWNERS: &[(&str, &str, bool)] = &[
    ("followers", "graph/", true),
    ("following", "graph/", true),
    ("follower_suspensions", "graph/", true),
    ("account_relations", "graph/", true),
    ("remote_actors", "actors.rs", false),
    ("posts", "posts/", false),
    ("timeline_entries", "timeline/", true),
    ("timeline_actions", "timeline/", true),
    ("quote_requests", "conversation/consent.rs", false),
    ("own_quote_requests", "conversation/quoting.rs", false),
    ("own_reply_approvals", "conversation/approvals.rs", false),
];

fn src_dir() -> std::path::PathBuf {
    match std::env::var("LAYERS_SRC") {
        Ok(dir) => dir.into(),
        Err(_) => Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
    }
}

struct File {
    /// Lines in the file as written.
    lines: usize,
    /// Comments and string contents blanked, `#[cfg(test)]` items blanked.
    code: String,
    /// Comments blanked, strings kept, `#[cfg(test)]` items blanked (for SQL).
    sql: String,
    /// `mod x;` children of this file.
    children: BTreeSet<String>,
    /// Children declared `#[cfg(test)] mod x;` (test-only files).
    test_children: BTreeSet<String>,
}

/// Blanks comments (and, unless `keep_strings`, string and char contents) with spaces, keeping
/// every byte offset and newline where it was.
fn blank(src: &str, keep_strings: bool) -> String {
    let b = src.as_bytes();
    let mut out = b.to_vec();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let wipe = |out: &mut Vec<u8>, from: usize, to: usize| {
        for x in &mut out[from..to] {
            if *x != b'\n' {
                *x = b' ';
            }
        }
    };
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'/' && b.get(i + 1) == Some(&b'/') {
            let end = src[i..].find('\n').map_or(b.len(), |n| i + n);
            wipe(&mut out, i, end);
            i = end;
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            let (mut depth, mut j) = (1, i + 2);
            while j < b.len() && depth > 0 {
                if b[j] == b'/' && b.get(j + 1) == Some(&b'*') {
                    depth += 1;
                    j += 2;
                } else if b[j] == b'*' && b.get(j + 1) == Some(&b'/') {
                    depth -= 1;
                    j += 2;
                } else {
                    j += 1;
                }
            }
            wipe(&mut out, i, j);
            i = j;
        } else if (c == b'r' || (c == b'b' && b.get(i + 1) == Some(&b'r')))
            && (i == 0 || !ident(b[i - 1]))
            && {
                let mut j = i + if c == b'b' { 2 } else { 1 };
                while b.get(j) == Some(&b'#') {
                    j += 1;
                }
                b.get(j) == Some(&b'"')
            }
        {
            let mut j = i + if c == b'b' { 2 } else { 1 };
            let hashes = b[j..].iter().take_while(|&&x| x == b'#').count();
            j += hashes + 1;
            let close = format!("\"{}", "#".repeat(hashes));
            let end = src[j..].find(&close).map_or(b.len(), |n| j + n);
            if !keep_strings {
                wipe(&mut out, j, end);
            }
            i = (end + close.len()).min(b.len());
        } else if c == b'"' {
            let mut j = i + 1;
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            if !keep_strings {
                wipe(&mut out, i + 1, j.min(b.len()));
            }
            i = j + 1;
        } else if c == b'\'' {
            // A char literal ('x', '\n', '"', '\u{..}') or a lifetime ('a).
            if b.get(i + 1) == Some(&b'\\') {
                let mut j = i + 2;
                while j < b.len() && b[j] != b'\'' {
                    j += 1;
                }
                wipe(&mut out, i + 1, j.min(b.len()));
                i = j + 1;
            } else if let Some(ch) = src[i + 1..].chars().next() {
                let after = i + 1 + ch.len_utf8();
                if b.get(after) == Some(&b'\'') {
                    wipe(&mut out, i + 1, after);
                    i = after + 1;
                } else {
                    i += 1;
                }
            } else {
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The byte range of the item after `at` (a `;`-ended item or a braced block).
fn item_end(code: &[u8], at: usize) -> usize {
    let mut depth = 0usize;
    let mut j = at;
    while j < code.len() {
        match code[j] {
            b'{' => depth += 1,
            b'}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return j + 1;
                }
            }
            b';' if depth == 0 => return j + 1,
            _ => {}
        }
        j += 1;
    }
    code.len()
}

fn read_file(text: &str) -> File {
    let mut code = blank(text, false);
    let mut sql = blank(text, true);
    let mut test_children = BTreeSet::new();
    let attr = "#[cfg(test)]";
    let mut from = 0;
    while let Some(n) = code[from..].find(attr) {
        let start = from + n;
        let body = start + attr.len();
        let rest = code[body..].trim_start();
        let end = item_end(code.as_bytes(), body);
        if let Some(m) = rest.strip_prefix("mod ") {
            let name: String = m
                .trim_start()
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if code[body..end].trim_end().ends_with(';') {
                test_children.insert(name);
            }
        }
        for s in [&mut code, &mut sql] {
            let wiped: String = s[start..end]
                .chars()
                .map(|c| if c == '\n' { '\n' } else { ' ' })
                .collect();
            s.replace_range(start..end, &wiped);
        }
        from = end;
    }
    let mut children = BTreeSet::new();
    for (i, _) in code.match_indices("mod ") {
        if i > 0 && !code.as_bytes()[i - 1].is_ascii_whitespace() {
            continue;
        }
        let name: String = code[i + 4..]
            .trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let after = code[i + 4..].trim_start()[name.len()..].trim_start();
        if !name.is_empty() && after.starts_with(';') {
            children.insert(name);
        }
    }
    File {
        lines: text.lines().count(),
        code,
        sql,
        children,
        test_children,
    }
}

fn module_path(rel: &str) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .trim_end_matches(".rs")
        .split('/')
        .map(String::from)
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

/// `a::{b, c::{d as e}}` → [([a,b],None), ([a,c,d],Some(e))].
fn expand(tree: &str, prefix: &[String], out: &mut Vec<(Vec<String>, Option<String>)>) {
    let tree = tree.trim();
    if let Some(open) = tree.find('{') {
        let head: Vec<String> = tree[..open]
            .split("::")
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        let close = tree.rfind('}').unwrap_or(tree.len());
        let inner = &tree[open + 1..close];
        let base: Vec<String> = prefix.iter().cloned().chain(head).collect();
        let (mut depth, mut last) = (0, 0);
        for (i, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    expand(&inner[last..i], &base, out);
                    last = i + 1;
                }
                _ => {}
            }
        }
        expand(&inner[last..], &base, out);
        return;
    }
    if tree.is_empty() {
        return;
    }
    let (path, alias) = match tree.split_once(" as ") {
        Some((p, a)) => (p, Some(a.trim().to_string())),
        None => (tree, None),
    };
    let mut segs: Vec<String> = prefix.to_vec();
    segs.extend(
        path.split("::")
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from),
    );
    if segs.last().map(String::as_str) == Some("self") {
        segs.pop();
    }
    out.push((segs, alias));
}

struct Crate {
    files: BTreeMap<String, File>,
    modules: BTreeMap<Vec<String>, String>,
    /// Per file: name brought in by `use` → absolute path (crate-relative segments).
    aliases: BTreeMap<String, BTreeMap<String, Vec<String>>>,
    /// Per file: (absolute path, byte offset) of every `use` item.
    uses: BTreeMap<String, Vec<(Vec<String>, usize)>>,
}

impl Crate {
    fn load(src: &Path) -> Crate {
        let mut files = BTreeMap::new();
        let mut stack = vec![src.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).expect("read src/") {
                let path = entry.expect("dir entry").path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let rel = path
                        .strip_prefix(src)
                        .expect("under src")
                        .to_string_lossy()
                        .replace('\\', "/");
                    if rel == "main.rs" || rel.starts_with("bin/") {
                        continue; // the binary: it sees the library from outside
                    }
                    let text = std::fs::read_to_string(&path).expect("read source");
                    files.insert(rel, read_file(&text));
                }
            }
        }
        let modules = files
            .keys()
            .map(|rel| (module_path(rel), rel.clone()))
            .collect();
        let mut c = Crate {
            files,
            modules,
            aliases: BTreeMap::new(),
            uses: BTreeMap::new(),
        };
        let rels: Vec<String> = c.files.keys().cloned().collect();
        for rel in &rels {
            let code = c.files[rel].code.clone();
            let (mut aliases, mut uses) = (BTreeMap::new(), Vec::new());
            for (start, tree, _) in use_decls(&code) {
                let mut items = Vec::new();
                expand(&tree, &[], &mut items);
                for (segs, alias) in items {
                    let Some(abs) = c.absolute(rel, &segs, &aliases) else {
                        continue;
                    };
                    let name = alias
                        .clone()
                        .or_else(|| segs.last().cloned())
                        .unwrap_or_default();
                    if name != "*" && name != "_" {
                        aliases.insert(name, abs.clone());
                    }
                    uses.push((abs, start));
                }
            }
            c.aliases.insert(rel.clone(), aliases);
            c.uses.insert(rel.clone(), uses);
        }
        c
    }

    /// The crate-relative path `segs` names when written in `rel`, or None for other crates.
    fn absolute(
        &self,
        rel: &str,
        segs: &[String],
        aliases: &BTreeMap<String, Vec<String>>,
    ) -> Option<Vec<String>> {
        let me = module_path(rel);
        let first = segs.first()?;
        let mut abs = match first.as_str() {
            "crate" => Vec::new(),
            "self" => me.clone(),
            "super" => {
                let mut base = me.clone();
                let mut n = 0;
                while segs.get(n).map(String::as_str) == Some("super") {
                    base.pop();
                    n += 1;
                }
                return Some(base.into_iter().chain(segs[n..].iter().cloned()).collect());
            }
            name if self.files[rel].children.contains(name) => me.clone(),
            name if aliases.contains_key(name) => {
                return Some(
                    aliases[name]
                        .iter()
                        .cloned()
                        .chain(segs[1..].iter().cloned())
                        .collect(),
                );
            }
            _ => return None,
        };
        let skip = usize::from(matches!(first.as_str(), "crate" | "self"));
        abs.extend(segs[skip..].iter().cloned());
        Some(abs)
    }

    /// The file that defines what `abs` names, following `use` bindings (a child may name its
    /// parent's imports, public or not).
    fn resolve(&self, abs: &[String], depth: usize) -> Option<String> {
        let mut n = abs.len();
        while n > 0 && !self.modules.contains_key(&abs[..n]) {
            n -= 1;
        }
        let file = self.modules.get(&abs[..n])?.clone();
        if depth < 8
            && let Some(name) = abs.get(n)
            && let Some(target) = self.aliases.get(&file).and_then(|r| r.get(name))
            && target.as_slice() != abs
        {
            let mut next = target.clone();
            next.extend(abs[n + 1..].iter().cloned());
            return self.resolve(&next, depth + 1).or(Some(file));
        }
        Some(file)
    }

    /// Every file → file import, with the line of its first occurrence.
    fn edges(&self) -> BTreeMap<String, BTreeMap<String, usize>> {
        let mut edges: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
        for (rel, file) in &self.files {
            let me_test_only: BTreeSet<Vec<String>> = file
                .test_children
                .iter()
                .map(|c| module_path(rel).into_iter().chain([c.clone()]).collect())
                .collect();
            let mut add = |abs: &[String], at: usize| {
                if me_test_only.iter().any(|t| abs.starts_with(t)) {
                    return;
                }
                if let Some(to) = self.resolve(abs, 0)
                    && to != *rel
                    && to != "lib.rs"
                {
                    let line = file.code[..at].matches('\n').count() + 1;
                    edges
                        .entry(rel.clone())
                        .or_default()
                        .entry(to)
                        .or_insert(line);
                }
            };
            for (abs, at) in &self.uses[rel] {
                add(abs, *at);
            }
            let mut code = file.code.clone();
            for (start, tree, _) in use_decls(&file.code) {
                let end = start + file.code[start..].find(';').map_or(tree.len(), |n| n + 1);
                code.replace_range(start..end, &" ".repeat(end - start));
            }
            for (at, segs) in paths(&code) {
                if let Some(abs) = self.absolute(rel, &segs, &self.aliases[rel]) {
                    add(&abs, at);
                }
            }
        }
        edges
    }
}

/// `(offset, tree, is_pub)` of every `use …;` in blanked code.
fn use_decls(code: &str) -> Vec<(usize, String, bool)> {
    let b = code.as_bytes();
    let mut out = Vec::new();
    for (i, _) in code.match_indices("use ") {
        let before = code[..i].trim_end();
        if i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_' || b[i - 1] == b':') {
            continue;
        }
        if !(before.is_empty()
            || before.ends_with([';', '{', '}', ']', ')'])
            || before.ends_with("pub"))
        {
            continue;
        }
        let public = before.ends_with("pub")
            || before.ends_with("pub(crate)")
            || before.ends_with("pub(super)");
        let Some(end) = code[i..].find(';') else {
            continue;
        };
        out.push((i, code[i + 4..i + end].to_string(), public));
    }
    out
}

/// `(offset, segments)` of every `a::b::c` path that starts a path (not preceded by `::`).
fn paths(code: &str) -> Vec<(usize, Vec<String>)> {
    let b = code.as_bytes();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if ident(b[i])
            && (i == 0 || !ident(b[i - 1]))
            && !(i >= 2 && &b[i - 2..i] == b"::")
            && !b[i].is_ascii_digit()
        {
            let start = i;
            let mut segs = Vec::new();
            let mut j = i;
            loop {
                let s = j;
                while j < b.len() && ident(b[j]) {
                    j += 1;
                }
                segs.push(code[s..j].to_string());
                if b.get(j..j + 2) == Some(b"::") && b.get(j + 2).is_some_and(|&c| ident(c)) {
                    j += 2;
                } else {
                    break;
                }
            }
            if segs.len() > 1 {
                out.push((start, segs));
            }
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    out
}

fn top(rel: &str) -> &str {
    rel.split('/').next().unwrap_or(rel).trim_end_matches(".rs")
}

fn rank(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// Strongly connected components with more than one node (Tarjan).
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct T<'g> {
        g: &'g BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on: BTreeSet<&'g str>,
        out: Vec<Vec<String>>,
    }
    impl<'g> T<'g> {
        fn visit(&mut self, v: &'g str) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on.insert(v);
            for w in self.g.get(v).into_iter().flatten() {
                if !self.index.contains_key(w.as_str()) {
                    self.visit(w);
                    let l = self.low[w.as_str()].min(self.low[v]);
                    self.low.insert(v, l);
                } else if self.on.contains(w.as_str()) {
                    let l = self.index[w.as_str()].min(self.low[v]);
                    self.low.insert(v, l);
                }
            }
            if self.low[v] == self.index[v] {
                let mut comp = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on.remove(w);
                    comp.push(w.to_string());
                    if w == v {
                        break;
                    }
                }
                if comp.len() > 1 {
                    comp.sort();
                    self.out.push(comp);
                }
            }
        }
    }
    let mut t = T {
        g: graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !t.index.contains_key(v.as_str()) {
            t.visit(v);
        }
    }
    t.out
}

#[test]
fn imports_point_down_and_never_loop() {
    let c = Crate::load(&src_dir());
    let edges = c.edges();
    let report = std::env::var("LAYERS_REPORT").is_ok();
    let mut problems = Vec::new();
    let mut file_graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut module_graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (from, tos) in &edges {
        for (to, line) in tos {
            if report {
                println!("edge src/{from}:{line} -> src/{to}");
            }
            file_graph
                .entry(from.clone())
                .or_default()
                .insert(to.clone());
            for (scope, allowed) in STANDALONE {
                if from.starts_with(scope) && !to.starts_with(allowed) {
                    problems.push(format!(
                        "src/{from}:{line} uses src/{to}, but fuzz/src/lib.rs compiles {scope} alone"
                    ));
                }
            }
            let (a, b) = (top(from), top(to));
            if a == b {
                continue;
            }
            module_graph
                .entry(a.to_string())
                .or_default()
                .insert(b.to_string());
            match (rank(a), rank(b)) {
                (Some(ra), Some(rb)) if ra > rb => problems.push(format!(
                    "upward import: src/{from}:{line} uses src/{to} ({a} is below {b} in LAYERS)"
                )),
                (None, _) | (_, None) => problems.push(format!(
                    "src/{from}:{line} -> src/{to}: add `{}` to LAYERS in tests/layers.rs",
                    if rank(a).is_none() { a } else { b }
                )),
                _ => {}
            }
        }
    }
    for cycle in cycles(&file_graph) {
        let inner: Vec<String> = cycle
            .iter()
            .flat_map(|f| {
                edges[f]
                    .iter()
                    .filter(|(t, _)| cycle.contains(t))
                    .map(move |(t, l)| format!("src/{f}:{l} -> src/{t}"))
            })
            .collect();
        problems.push(format!(
            "file cycle of {}: {}\n    {}",
            cycle.len(),
            cycle.join(", "),
            inner.join("\n    ")
        ));
    }
    for cycle in cycles(&module_graph) {
        problems.push(format!("module cycle: {}", cycle.join(", ")));
    }
    assert!(
        problems.is_empty(),
        "{} problems:\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}

/// Files declared `#[cfg(test)] mod x;` by their parent: test code as a whole.
fn test_only_files(c: &Crate) -> BTreeSet<String> {
    c.files
        .iter()
        .flat_map(|(rel, f)| {
            let dir = rel
                .rsplit_once('/')
                .map_or(String::new(), |(d, _)| format!("{d}/"));
            let base = if rel.ends_with("mod.rs") || rel == "lib.rs" {
                dir
            } else {
                format!("{}/", rel.trim_end_matches(".rs"))
            };
            f.test_children
                .iter()
                .map(move |t| format!("{base}{t}.rs"))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn files_stay_small_and_folders_say_what_they_hold() {
    let c = Crate::load(&src_dir());
    let test_only = test_only_files(&c);
    let mut problems = Vec::new();
    for (rel, f) in &c.files {
        let allowed = LONG_FILES.iter().any(|(p, _)| p == rel) || test_only.contains(rel);
        if f.lines > MAX_LINES && !allowed {
            problems.push(format!(
                "src/{rel} has {} lines (limit {MAX_LINES}): split it along its seams",
                f.lines
            ));
        }
        if rel.ends_with("mod.rs") {
            let text = std::fs::read_to_string(src_dir().join(rel)).unwrap_or_default();
            if !text.starts_with("//!") {
                problems.push(format!(
                    "src/{rel}:1: start with `//!` lines saying what the folder is for"
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} problems:\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}

#[test]
fn each_table_group_has_one_owner() {
    let c = Crate::load(&src_dir());
    let test_only = test_only_files(&c);
    let mut problems = Vec::new();
    for (rel, f) in c.files.iter().filter(|(rel, _)| !test_only.contains(*rel)) {
        let words: Vec<(usize, &str)> = f
            .sql
            .split(|ch: char| !(ch.is_alphanumeric() || ch == '_' || ch == '{' || ch == '}'))
            .scan(0usize, |pos, w| {
                let at = *pos;
                *pos += w.len() + 1;
                Some((at, w))
            })
            .filter(|(_, w)| !w.is_empty())
            .collect();
        for (i, &(at, kw)) in words.iter().enumerate() {
            let Some(&(_, table)) = words.get(i + 1) else {
                break;
            };
            if !matches!(kw, "FROM" | "JOIN" | "INTO" | "UPDATE") {
                continue;
            }
            let write = matches!(kw, "INTO" | "UPDATE")
                || (kw == "FROM" && i > 0 && words[i - 1].1 == "DELETE");
            let line = f.sql[..at].matches('\n').count() + 1;
            // `db/` owns the database as a whole: a backup counts the rows of every table the
            // schema names, whatever owns them.
            if table.starts_with('{') && !rel.starts_with("posts/") && !rel.starts_with("db/") {
                problems.push(format!("src/{rel}:{line}: `{kw} {table}` builds a table name at run time; call the owner's function"));
            }
            for (t, owner, every) in TABLE_OWNERS {
                if table == *t && !rel.starts_with(owner) && (*every || write) {
                    problems.push(format!(
                        "src/{rel}:{line}: `{kw} {t}` outside its owner src/{owner}"
                    ));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} problems:\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}
