//! The architecture test: reads every file under `src/`, extracts the module paths it names
//! (`use crate::…`, `crate::x::…` in expressions, `super::…`, `self::…`, brace groups included;
//! comments and string literals removed first), and fails when a module imports what
//! `ARCHITECTURE.md` forbids:
//!
//! * a top-level module imports only the modules its row of [`ALLOWED`] lists (`cli`: any);
//! * only `cli` names `clap` or reads the environment (`std::env::var`, `vars`, `args`, …);
//! * the top-level modules import each other without cycles, and so do the files of one module
//!   directory (its `mod.rs` excepted: a parent declares its children, and children use its
//!   re-exports);
//! * the rules table in `ARCHITECTURE.md` is exactly [`ALLOWED`].
//!
//! Each failure names the file, the line and the rule. The scan must find a plausible number of
//! files and paths, and the checker is run on small made-up trees that break each rule, so the
//! test cannot pass by finding nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Which other top-level modules each module may import. `"*"`: any. The same table is in
/// `ARCHITECTURE.md` (checked by [`architecture_md_states_exactly_these_rules`]).
const ALLOWED: &[(&str, &[&str])] = &[
    ("log", &[]),
    ("harden", &["log"]),
    ("source", &["log"]),
    ("hostkey", &["source", "log"]),
    ("sops", &["hostkey", "source", "log"]),
    ("decode", &["sops", "hostkey", "source", "log"]),
    ("material", &["source", "log"]),
    ("credentials", &["material", "source", "hostkey", "log"]),
    ("mint", &["credentials", "material", "log"]),
    ("sink", &["log"]),
    ("accounts", &[]),
    ("perm", &["accounts"]),
    ("state", &["sink", "material", "source", "log"]),
    ("tailscaled", &["log"]),
    (
        "install",
        &["sops", "sink", "perm", "source", "hostkey", "harden", "log"],
    ),
    (
        "provision",
        &[
            "decode",
            "sops",
            "material",
            "credentials",
            "mint",
            "sink",
            "state",
            "source",
            "hostkey",
            "log",
            "error",
        ],
    ),
    (
        "revoke",
        &[
            "provision",
            "decode",
            "sops",
            "credentials",
            "mint",
            "sink",
            "state",
            "log",
            "error",
        ],
    ),
    (
        "error",
        &[
            "source",
            "hostkey",
            "sops",
            "decode",
            "material",
            "credentials",
            "mint",
            "sink",
            "state",
            "install",
            "tailscaled",
            "log",
        ],
    ),
    ("cli", &["*"]),
];

/// The only module that parses flags and reads the environment.
const CLI: &str = "cli";

/// Known violations still to be removed. Each entry is `(rule, what)` exactly as a violation
/// reports it; an entry that no longer occurs fails the test, so the list can only shrink (it
/// is empty now: `credentials` became its own module with its own error type, and
/// `mint/api.rs` and `mint/transport.rs` no longer import each other).
const PENDING: &[(&str, &str)] = &[];

/// A source file: its path relative to the crate root (`src/…`) and its text.
struct File {
    rel: String,
    text: String,
}

/// One broken rule, with where.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Violation {
    /// `import`, `flags-env`, `cycle`.
    rule: &'static str,
    /// A stable description (file and module, or the cycle), used for [`PENDING`].
    what: String,
    /// `file:line` and the explanation.
    detail: String,
}

/// Blanks comments, string/char literals, and byte strings, keeping every newline and byte
/// offset, so paths inside them are not read as code and line numbers stay right.
fn strip(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = b.to_vec();
    let blank = |out: &mut Vec<u8>, from: usize, to: usize| {
        for c in &mut out[from..to] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
    };
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            let end = b[i..]
                .iter()
                .position(|&c| c == b'\n')
                .map_or(b.len(), |p| i + p);
            blank(&mut out, i, end);
            i = end;
        } else if b[i..].starts_with(b"/*") {
            let (mut depth, mut j) = (1, i + 2);
            while j < b.len() && depth > 0 {
                if b[j..].starts_with(b"/*") {
                    depth += 1;
                    j += 2;
                } else if b[j..].starts_with(b"*/") {
                    depth -= 1;
                    j += 2;
                } else {
                    j += 1;
                }
            }
            blank(&mut out, i, j);
            i = j;
        } else if (b[i] == b'r' || b[i..].starts_with(b"br")) && (i == 0 || !ident(b[i - 1])) && {
            let s = if b[i] == b'b' { i + 2 } else { i + 1 };
            let h = b[s..].iter().take_while(|&&c| c == b'#').count();
            b.get(s + h) == Some(&b'"')
        } {
            let s = if b[i] == b'b' { i + 2 } else { i + 1 };
            let hashes = b[s..].iter().take_while(|&&c| c == b'#').count();
            let mut close = vec![b'"'];
            close.extend(std::iter::repeat_n(b'#', hashes));
            let body = s + hashes + 1;
            let end = b[body..]
                .windows(close.len())
                .position(|w| w == close.as_slice())
                .map_or(b.len(), |p| body + p + close.len());
            blank(&mut out, i, end);
            i = end;
        } else if b[i] == b'"' {
            let mut j = i + 1;
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            let end = (j + 1).min(b.len());
            blank(&mut out, i, end);
            i = end;
        } else if b[i] == b'\'' {
            // A char literal ('x', '\n', '\u{..}'); a lifetime ('a) is left alone.
            let len = if b.get(i + 1) == Some(&b'\\') {
                b[i + 3..].iter().position(|&c| c == b'\'').map(|p| p + 4)
            } else {
                let ch = src[i + 1..].chars().next().map_or(1, char::len_utf8);
                (b.get(i + 1 + ch) == Some(&b'\'')).then_some(ch + 2)
            };
            match len {
                Some(l) => {
                    blank(&mut out, i, i + l);
                    i += l;
                }
                None => i += 1,
            }
        } else {
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A token of stripped code and its byte offset.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    Path, // `::`
    Punct(char),
}

fn tokens(code: &str) -> Vec<(Tok, usize)> {
    let mut out = Vec::new();
    let mut it = code.char_indices().peekable();
    while let Some((i, c)) = it.next() {
        if c.is_alphanumeric() || c == '_' {
            let mut s = String::from(c);
            while let Some(&(_, d)) = it.peek() {
                if d.is_alphanumeric() || d == '_' {
                    s.push(d);
                    it.next();
                } else {
                    break;
                }
            }
            let s = s.strip_prefix("r#").map(str::to_string).unwrap_or(s);
            out.push((Tok::Ident(s), i));
        } else if c == ':' && it.peek().is_some_and(|&(_, d)| d == ':') {
            it.next();
            out.push((Tok::Path, i));
        } else if !c.is_whitespace() {
            out.push((Tok::Punct(c), i));
        }
    }
    out
}

/// Parses the path tree starting at `toks[i]` (an identifier): `a::b::{c, d::{e}}`. Returns
/// the expanded paths (a group item `self` names the prefix itself).
fn path_tree(toks: &[(Tok, usize)], mut i: usize, prefix: &[String]) -> Vec<Vec<String>> {
    let mut path = prefix.to_vec();
    loop {
        match toks.get(i) {
            Some((Tok::Ident(s), _)) if s == "self" && !path.is_empty() => {}
            Some((Tok::Ident(s), _)) => path.push(s.clone()),
            Some((Tok::Punct('{'), _)) => {
                let mut all = Vec::new();
                let mut j = i + 1;
                loop {
                    match toks.get(j) {
                        Some((Tok::Ident(_), _)) => {
                            all.extend(path_tree(toks, j, &path));
                            // Skip to this item's `,` or the group's `}`.
                            let mut depth = 0usize;
                            while let Some((t, _)) = toks.get(j) {
                                match t {
                                    Tok::Punct('{') => depth += 1,
                                    Tok::Punct('}') if depth == 0 => break,
                                    Tok::Punct('}') => depth -= 1,
                                    Tok::Punct(',') if depth == 0 => break,
                                    _ => {}
                                }
                                j += 1;
                            }
                        }
                        Some((Tok::Punct(','), _)) => j += 1,
                        Some((Tok::Punct('*'), _)) => j += 1,
                        _ => break,
                    }
                }
                return all;
            }
            _ => return vec![path],
        }
        if toks.get(i + 1).map(|t| &t.0) != Some(&Tok::Path) {
            return vec![path];
        }
        i += 2;
    }
}

/// Every `crate::…`, `super::…`, `self::…` path in `code`, with its byte offset.
fn paths(code: &str) -> Vec<(Vec<String>, usize)> {
    let toks = tokens(code);
    let mut out = Vec::new();
    for (i, (t, off)) in toks.iter().enumerate() {
        let Tok::Ident(s) = t else { continue };
        let starts = matches!(s.as_str(), "crate" | "super" | "self")
            && toks.get(i + 1).map(|t| &t.0) == Some(&Tok::Path)
            && (i == 0 || toks[i - 1].0 != Tok::Path);
        if starts {
            for p in path_tree(&toks, i, &[]) {
                out.push((p, *off));
            }
        }
    }
    out
}

/// The module path of a file: `src/sops/formats/json.rs` → `[sops, formats, json]`,
/// `src/sops/mod.rs` → `[sops]`, `src/lib.rs` → `[]`.
fn module_of(rel: &str) -> Vec<String> {
    let inner = rel.strip_prefix("src/").unwrap_or(rel);
    let mut parts: Vec<String> = inner.split('/').map(str::to_string).collect();
    if let Some(last) = parts.pop() {
        let stem = last.trim_end_matches(".rs");
        if !matches!(stem, "mod" | "lib" | "main") {
            parts.push(stem.to_string());
        }
    }
    parts
}

/// Resolves `crate::`/`super::`/`self::` against the file's module; `None` if it leaves the crate.
fn resolve(module: &[String], path: &[String]) -> Option<Vec<String>> {
    let mut base: Vec<String> = module.to_vec();
    let mut rest = path;
    match rest.first().map(String::as_str) {
        Some("crate") => {
            base.clear();
            rest = &rest[1..];
        }
        Some("self") => rest = &rest[1..],
        Some("super") => {
            // A file `a/b.rs` is module `a::b`, its `super` is `a`; `a/mod.rs` is module `a`.
            while rest.first().map(String::as_str) == Some("super") {
                base.pop()?;
                rest = &rest[1..];
            }
        }
        _ => return None,
    }
    base.extend(rest.iter().cloned());
    Some(base)
}

fn line_of(text: &str, off: usize) -> usize {
    text[..off].bytes().filter(|&c| c == b'\n').count() + 1
}

/// The reads of flags or environment in `code`: `clap` anywhere, `env::var`/`var_os`/`vars`/
/// `vars_os`/`args`/`args_os` (also inside `env::{…}`).
fn flags_env(code: &str) -> Vec<(String, usize)> {
    const READS: &[&str] = &["var", "var_os", "vars", "vars_os", "args", "args_os"];
    let toks = tokens(code);
    let mut out = Vec::new();
    for (i, (t, off)) in toks.iter().enumerate() {
        let Tok::Ident(s) = t else { continue };
        if s == "clap" {
            out.push(("clap".to_string(), *off));
        }
        if s == "env" && toks.get(i + 1).map(|t| &t.0) == Some(&Tok::Path) {
            for p in path_tree(&toks, i, &[]) {
                if let Some(f) = p.get(1).filter(|f| READS.contains(&f.as_str())) {
                    out.push((format!("env::{f}"), *off));
                }
            }
        }
    }
    out
}

/// The reference graph of a tree and how it was found.
#[derive(Default)]
struct Scan {
    /// Paths resolved.
    paths: usize,
    /// (from, to) top-level module → an example `file:line`.
    top: BTreeMap<(String, String), String>,
    violations: Vec<Violation>,
}

fn rule_table() -> BTreeMap<&'static str, BTreeSet<&'static str>> {
    ALLOWED
        .iter()
        .map(|(m, a)| (*m, a.iter().copied().collect()))
        .collect()
}

/// Checks `files` against the rules; the heart of the test, also run on made-up trees.
fn check(files: &[File]) -> Scan {
    let rules = rule_table();
    let mut scan = Scan::default();
    // Every directory's children (file stems and subdirectories), for the file-cycle check.
    let mut children: BTreeMap<Vec<String>, BTreeSet<String>> = BTreeMap::new();
    for f in files {
        let m = module_of(&f.rel);
        if !m.is_empty() && !f.rel.ends_with("/mod.rs") {
            children
                .entry(m[..m.len() - 1].to_vec())
                .or_default()
                .insert(m[m.len() - 1].clone());
        }
        for k in 1..m.len() {
            children
                .entry(m[..k - 1].to_vec())
                .or_default()
                .insert(m[k - 1].clone());
        }
    }
    // (directory) → (child, child) → example.
    let mut local: BTreeMap<Vec<String>, BTreeMap<(String, String), String>> = BTreeMap::new();
    for f in files {
        let module = module_of(&f.rel);
        let code = strip(&f.text);
        let Some(top) = module.first().cloned() else {
            continue; // lib.rs / main.rs: the crate root declares the modules.
        };
        if top != CLI {
            for (what, off) in flags_env(&code) {
                scan.violations.push(Violation {
                    rule: "flags-env",
                    what: format!("{}: {top} uses {what}", f.rel),
                    detail: format!(
                        "{}:{}: {what} outside cli (only cli parses flags and reads the environment)",
                        f.rel,
                        line_of(&f.text, off)
                    ),
                });
            }
        }
        for (p, off) in paths(&code) {
            let Some(target) = resolve(&module, &p) else {
                continue;
            };
            scan.paths += 1;
            let at = format!("{}:{}", f.rel, line_of(&f.text, off));
            let Some(to) = target.first().cloned() else {
                continue;
            };
            if to != top {
                scan.top
                    .entry((top.clone(), to.clone()))
                    .or_insert_with(|| at.clone());
                let allowed = rules.get(top.as_str());
                let ok = allowed.is_some_and(|a| a.contains("*") || a.contains(to.as_str()));
                if !ok {
                    scan.violations.push(Violation {
                        rule: "import",
                        what: format!("{}: {top} imports {to}", f.rel),
                        detail: match allowed {
                            Some(a) => format!(
                                "{at}: {top} may import only {a:?} (ARCHITECTURE.md), not {to} (`{}`)",
                                p.join("::")
                            ),
                            None => format!(
                                "{at}: module {top} has no row in the rules table (ARCHITECTURE.md)"
                            ),
                        },
                    });
                }
            }
            // File-level edges inside each directory both ends share.
            for depth in 0..module.len().min(target.len()) {
                if module[..depth] != target[..depth] {
                    break;
                }
                let (Some(a), Some(b)) = (module.get(depth), target.get(depth)) else {
                    break;
                };
                let dir = module[..depth].to_vec();
                let kids = children.get(&dir);
                if a != b && kids.is_some_and(|k| k.contains(a) && k.contains(b)) {
                    local
                        .entry(dir)
                        .or_default()
                        .entry((a.clone(), b.clone()))
                        .or_insert_with(|| at.clone());
                }
            }
        }
    }
    for cycle in cycles(&scan.top) {
        scan.violations.push(cycle_violation(
            "top-level modules".into(),
            &cycle,
            &scan.top,
        ));
    }
    for (dir, edges) in &local {
        if dir.is_empty() {
            continue; // the top level, checked above
        }
        for cycle in cycles(edges) {
            scan.violations.push(cycle_violation(
                format!("files in src/{}", dir.join("/")),
                &cycle,
                edges,
            ));
        }
    }
    scan.violations.sort();
    scan.violations.dedup();
    scan
}

fn cycle_violation(
    scope: String,
    cycle: &[String],
    edges: &BTreeMap<(String, String), String>,
) -> Violation {
    let mut ring = cycle.to_vec();
    ring.push(cycle[0].clone());
    let hops: Vec<String> = ring
        .windows(2)
        .map(|w| {
            format!(
                "{} -> {} at {}",
                w[0],
                w[1],
                edges[&(w[0].clone(), w[1].clone())]
            )
        })
        .collect();
    Violation {
        rule: "cycle",
        what: format!("{scope}: {}", ring.join(" -> ")),
        detail: format!("import cycle among {scope}: {}", hops.join("; ")),
    }
}

/// Elementary cycles, one per strongly connected component (the shortest found from its
/// smallest node), rotated to start at that node.
fn cycles(edges: &BTreeMap<(String, String), String>) -> Vec<Vec<String>> {
    let mut adj: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (a, b) in edges.keys() {
        adj.entry(a).or_default().push(b);
    }
    let reach = |from: &str| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.to_string()];
        while let Some(n) = stack.pop() {
            for m in adj.get(n.as_str()).into_iter().flatten() {
                if seen.insert(m.to_string()) {
                    stack.push(m.to_string());
                }
            }
        }
        seen
    };
    let mut done = BTreeSet::new();
    let mut out = Vec::new();
    for start in adj.keys() {
        if done.contains(*start) || !reach(start).contains(*start) {
            continue;
        }
        // Breadth-first for the shortest way back to `start`.
        let mut prev: BTreeMap<String, String> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([start.to_string()]);
        let mut found = None;
        while let Some(n) = queue.pop_front() {
            for m in adj.get(n.as_str()).into_iter().flatten() {
                if *m == *start {
                    found = Some(n.clone());
                    break;
                }
                if !prev.contains_key(*m) {
                    prev.insert(m.to_string(), n.clone());
                    queue.push_back(m.to_string());
                }
            }
            if found.is_some() {
                break;
            }
        }
        let mut cycle = vec![];
        let mut n = found.unwrap_or_else(|| start.to_string());
        while n != *start {
            cycle.push(n.clone());
            n = prev[&n].clone();
        }
        cycle.push(start.to_string());
        cycle.reverse();
        // Everything on a cycle through `start` is in its component: report it once.
        let comp: BTreeSet<String> = reach(start)
            .into_iter()
            .filter(|n| reach(n).contains(*start))
            .collect();
        done.extend(comp);
        out.push(cycle);
    }
    out
}

fn read_tree(dir: &Path, root: &Path, out: &mut Vec<File>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            read_tree(&p, root, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            let rel = p
                .strip_prefix(root)
                .expect("under root")
                .to_string_lossy()
                .into_owned();
            let text =
                std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            out.push(File { rel, text });
        }
    }
}

fn crate_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn source_files() -> Vec<File> {
    let root = crate_root();
    let mut files = Vec::new();
    read_tree(&root.join("src"), &root, &mut files);
    files
}

fn file(rel: &str, text: &str) -> File {
    File {
        rel: rel.into(),
        text: text.into(),
    }
}

#[test]
fn src_keeps_the_import_rules_of_architecture_md() {
    let files = source_files();
    let scan = check(&files);
    eprintln!(
        "architecture: {} files, {} module paths, {} edges between top-level modules",
        files.len(),
        scan.paths,
        scan.top.len()
    );
    // Not vacuous: the tree was read and its paths were found.
    assert!(files.len() >= 40, "only {} files under src/", files.len());
    assert!(scan.paths >= 200, "only {} module paths found", scan.paths);
    let tops: BTreeSet<&str> = scan.top.keys().map(|(a, _)| a.as_str()).collect();
    for m in [
        "cli",
        "provision",
        "decode",
        "sops",
        "install",
        "error",
        "hostkey",
    ] {
        assert!(tops.contains(m), "no imports found in {m}: {tops:?}");
    }
    for (a, b) in [
        ("cli", "provision"),
        ("provision", "decode"),
        ("decode", "sops"),
        ("sops", "source"),
        ("state", "sink"),
    ] {
        assert!(
            scan.top.contains_key(&(a.to_string(), b.to_string())),
            "the known import {a} -> {b} was not found: the scanner is broken"
        );
    }
    // Every module in src/ has a row.
    let rules = rule_table();
    for f in &files {
        if let Some(m) = module_of(&f.rel).first() {
            assert!(
                rules.contains_key(m.as_str()),
                "{}: module {m} has no row in the rules table (ARCHITECTURE.md and ALLOWED)",
                f.rel
            );
        }
    }
    let mut pending_seen = BTreeSet::new();
    let mut failures = Vec::new();
    for v in &scan.violations {
        if PENDING.contains(&(v.rule, v.what.as_str())) {
            pending_seen.insert((v.rule, v.what.clone()));
            eprintln!("pending (issue 14, other work): [{}] {}", v.rule, v.detail);
        } else {
            failures.push(format!("[{}] {}", v.rule, v.detail));
        }
    }
    for (rule, what) in PENDING {
        if !pending_seen.contains(&(*rule, what.to_string())) {
            failures.push(format!(
                "[{rule}] {what}: fixed — remove it from PENDING in tests/it/architecture.rs"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} architecture rule(s) broken:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn architecture_md_states_exactly_these_rules() {
    let path = crate_root().join("ARCHITECTURE.md");
    let md = std::fs::read_to_string(&path).expect("ARCHITECTURE.md");
    // Rows `| `module` | `a`, `b` |` of the table under "## Import rules".
    let section = md
        .split("\n## ")
        .find(|s| s.starts_with("Import rules"))
        .expect("ARCHITECTURE.md has a section '## Import rules'");
    let mut doc: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in section
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("| `"))
    {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let module = cells[1].trim_matches('`').to_string();
        let allowed: BTreeSet<String> = if cells[2] == "any module" {
            BTreeSet::from(["*".to_string()])
        } else {
            cells[2]
                .split(',')
                .map(|c| c.trim().trim_matches('`').to_string())
                .filter(|c| !c.is_empty() && c != "—")
                .collect()
        };
        assert!(
            doc.insert(module.clone(), allowed).is_none(),
            "ARCHITECTURE.md: two rows for {module}"
        );
    }
    let test: BTreeMap<String, BTreeSet<String>> = ALLOWED
        .iter()
        .map(|(m, a)| (m.to_string(), a.iter().map(|s| s.to_string()).collect()))
        .collect();
    assert_eq!(
        doc, test,
        "the import table of ARCHITECTURE.md and ALLOWED in tests/it/architecture.rs differ"
    );
    for phrase in [
        "Only `cli` parses flags",
        "no cycles",
        "`mod.rs`",
        "tests/it/architecture.rs",
    ] {
        assert!(
            section.contains(phrase),
            "ARCHITECTURE.md's rules do not say {phrase:?}"
        );
    }
    assert!(
        !md.contains("../shared"),
        "ARCHITECTURE.md must not point outside the repository"
    );
}

#[test]
fn the_scanner_reads_paths_and_ignores_comments_and_strings() {
    let code = strip(
        "use crate::{a::{self, b}, c};\n// crate::commented\n/* crate::block /* nested */ */\n\
         let s = \"crate::in_string\"; let r = r#\"crate::raw\"#; let c = '\"';\n\
         x = crate::d::e(); use super::super::f::{g, h::*};\nfn f<'a>(_: &'a str) { self::i::j(); }\n",
    );
    let got: Vec<(String, usize)> = paths(&code)
        .into_iter()
        .map(|(p, off)| (p.join("::"), line_of(&code, off)))
        .collect();
    let want = [
        ("crate::a", 1),
        ("crate::a::b", 1),
        ("crate::c", 1),
        ("crate::d::e", 5),
        ("super::super::f::g", 5),
        ("super::super::f::h", 5),
        ("self::i::j", 6),
    ];
    let want: Vec<(String, usize)> = want.iter().map(|(p, l)| (p.to_string(), *l)).collect();
    assert_eq!(got, want);
    let code = strip(
        "let a = std::env::var(\"X\");\nuse std::env::{self, args_os};\n\
         #[derive(clap::Args)]\nlet d = std::env::current_dir(); // env::var\nlet e = env!(\"X\");\n",
    );
    let reads: Vec<(String, usize)> = flags_env(&code)
        .into_iter()
        .map(|(what, off)| (what, line_of(&code, off)))
        .collect();
    assert_eq!(
        reads,
        vec![
            ("env::var".to_string(), 1),
            ("env::args_os".to_string(), 2),
            ("clap".to_string(), 3),
        ]
    );
}

#[test]
fn each_rule_catches_a_made_up_violation() {
    let tree = [
        file("src/lib.rs", "pub mod sink; pub mod mint; pub mod cli;"),
        file(
            "src/sink.rs",
            "//! Sink.\nuse crate::log;\n\nuse crate::mint::Minter;\n",
        ),
        file(
            "src/mint/mod.rs",
            "mod a;\nmod b;\nfn f() { let _ = crate::sops::decrypt; }",
        ),
        file("src/mint/a.rs", "use super::b::X;\n"),
        file("src/mint/b.rs", "use crate::mint::a::Y;\nuse super::Z;\n"),
        file(
            "src/material.rs",
            "fn f() {\n    std::env::var_os(\"HOME\");\n}\n",
        ),
        file("src/cli/mod.rs", "use clap::Parser;\nuse crate::mint;\n"),
        file("src/log.rs", "use crate::sink::write;\n"),
    ];
    let scan = check(&tree);
    let got: Vec<String> = scan
        .violations
        .iter()
        .map(|v| format!("[{}] {}", v.rule, v.detail))
        .collect();
    let want = [
        "[cycle] import cycle among files in src/mint: a -> b at src/mint/a.rs:1; b -> a at src/mint/b.rs:1",
        "[cycle] import cycle among top-level modules: log -> sink at src/log.rs:1; sink -> log at src/sink.rs:2",
        "[flags-env] src/material.rs:2: env::var_os outside cli (only cli parses flags and reads the environment)",
        "[import] src/log.rs:1: log may import only {} (ARCHITECTURE.md), not sink (`crate::sink::write`)",
        "[import] src/mint/mod.rs:3: mint may import only {\"credentials\", \"log\", \"material\"} (ARCHITECTURE.md), not sops (`crate::sops::decrypt`)",
        "[import] src/sink.rs:4: sink may import only {\"log\"} (ARCHITECTURE.md), not mint (`crate::mint::Minter`)",
    ];
    assert_eq!(got, want);
}
