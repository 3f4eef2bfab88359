//! The repository stands alone: a clone has no `../shared` (the original design notes, format
//! notes and conformance files), so nothing outside `tests/` and `.ci/` may point there — the
//! project's own documentation is `docs/`. Tests that do read `../shared` (or a nixpkgs lib) skip
//! with a notice when it is absent; the last cases show that path on real tests of this binary.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util;

/// Directories (relative to the repository root) that are not part of what a user reads:
/// build output, git's own data, the tests and CI (allowed to name `../shared`), and the
/// git-ignored scratch folders.
const SKIPPED: &[&str] = &[
    ".git",
    ".ci",
    "tests",
    "target",
    "run",
    "fuzz/target",
    "fuzz/corpus",
    "fuzz/artifacts",
];

/// What counts as pointing at the shared folder.
const PATTERNS: &[&str] = &[
    "../shared",
    "shared/design",
    "shared/reference",
    "shared/conformance",
    "shared/nixpkgs-lib",
    "shared/hooks",
];

/// `file:line: text` for every line of `text` that names the shared folder.
fn offending_lines(file: &str, text: &str) -> Vec<String> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| PATTERNS.iter().any(|p| l.contains(p)))
        .map(|(i, l)| format!("{file}:{}: {}", i + 1, l.trim()))
        .collect()
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>, files: &mut usize) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let rel = path.strip_prefix(root).expect("below the root");
        let rel_s = rel.to_string_lossy().into_owned();
        let ft = std::fs::symlink_metadata(&path).expect("lstat").file_type();
        if ft.is_dir() {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if !SKIPPED.contains(&rel_s.as_str()) && name != "node_modules" {
                walk(root, &path, out, files);
            }
        } else if ft.is_file() {
            *files += 1;
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("read {rel_s}: {e}"));
            out.extend(offending_lines(&rel_s, &String::from_utf8_lossy(&bytes)));
        }
    }
}

#[test]
fn nothing_outside_tests_and_ci_names_the_shared_folder() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let (mut found, mut files) = (Vec::new(), 0);
    walk(&root, &root, &mut found, &mut files);
    // The walk really read the tree (README, docs, sources), not an empty or wrong directory.
    assert!(
        files > 50,
        "only {files} files walked under {}",
        root.display()
    );
    for must in ["README.md", "docs/contract.md", "src/lib.rs"] {
        assert!(root.join(must).is_file(), "{must} missing");
    }
    assert!(
        found.is_empty(),
        "these lines point at ../shared, which a clone does not have; cite docs/ instead:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_check_flags_shared_paths_and_not_the_word_shared() {
    let text = "a\nsee ../shared/design/tskeyctl.md\nshared with other helpers\n\
                conf=$root/../shared\n`shared/reference/sops-format.md` §3\nshared conformance files\n";
    assert_eq!(
        offending_lines("f", text),
        [
            "f:2: see ../shared/design/tskeyctl.md",
            "f:4: conf=$root/../shared",
            "f:5: `shared/reference/sops-format.md` §3",
        ]
    );
}

#[test]
fn docs_index_links_every_page() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let index = std::fs::read_to_string(root.join("docs/README.md")).expect("docs/README.md");
    let mut pages: Vec<String> = std::fs::read_dir(root.join("docs"))
        .expect("docs/")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".md") && n != "README.md")
        .collect();
    pages.sort();
    assert_eq!(
        pages,
        ["contract.md", "kubernetes.md", "nixos.md", "sops-format.md"]
    );
    for p in &pages {
        assert!(
            index.contains(&format!("]({p})")),
            "docs/README.md does not link {p}"
        );
    }
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    assert!(
        readme.contains("(docs/contract.md)"),
        "README.md does not link the contract"
    );
}

/// Reads `../shared/conformance` when it is there: one folder per tool, each with its SOURCES.md.
#[test]
fn conformance_corpus_has_a_folder_per_tool() {
    let Some(c) = util::shared("conformance") else {
        return;
    };
    for tool in ["sops", "sops-nix", "ssh-to-age", "agenix"] {
        assert!(
            c.join(tool).join("SOURCES.md").is_file(),
            "{}/{tool}/SOURCES.md missing",
            c.display()
        );
    }
}

#[test]
fn a_missing_path_is_none_with_a_notice() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("shared/conformance");
    assert_eq!(util::present_or_skip(&missing), None);
    assert_eq!(
        util::present_or_skip(dir.path()),
        Some(dir.path().to_path_buf())
    );
}

/// Runs the conformance test above in a child of this test binary with `../shared` replaced by a
/// folder that does not exist: it must pass, and say that it skipped and why.
#[test]
fn conformance_tests_skip_with_a_notice_when_shared_is_absent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("no-shared-here");
    let out = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "standalone::conformance_corpus_has_a_folder_per_tool",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("TSKEYCTL_SHARED_DIR", &missing)
        .output()
        .expect("run the test binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("1 passed"), "{stdout}");
    let notice = format!("skipped: {}/conformance is absent", missing.display());
    assert!(stdout.contains(&notice), "no {notice:?} in:\n{stdout}");
}

/// Runs `tests` (exact names) in a child of this test binary with `../shared` replaced by a
/// folder that does not exist, no `NIXPKGS_LIB` and no `CI`: returns its status and output.
fn run_without_shared(tests: &[&str]) -> (bool, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "--nocapture", "--test-threads=1"])
        .args(tests)
        .env("TSKEYCTL_SHARED_DIR", dir.path().join("no-shared-here"))
        .env_remove("NIXPKGS_LIB")
        // Only the shared files are missing here: a missing peer must skip, not fail as in CI.
        .env_remove("CI")
        .output()
        .expect("run the test binary");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Real conformance tests (ssh-to-age vectors, sops's own age files, sops-nix's test assets) pass
/// without `../shared`, each saying it skipped and why.
#[test]
fn conformance_tests_of_every_kind_skip_without_shared() {
    let tests = [
        "keys::ssh_to_age_expected_outputs_byte_for_byte",
        "sops_conformance::age_examples_decrypt_with_both_key_files",
        "install_conformance::host_ssh_key_opens_secrets_yaml_like_sops_nix",
    ];
    let (ok, text) = run_without_shared(&tests);
    assert!(ok, "{text}");
    assert!(text.contains("test result: ok. 3 passed"), "{text}");
    let notices = text.matches("no-shared-here/conformance is absent").count();
    assert_eq!(notices, 3, "one skip notice per test expected:\n{text}");
}

/// The NixOS module evaluation without a nixpkgs lib: passes, with a notice.
#[test]
fn nix_module_evaluation_skips_without_a_nixpkgs_lib() {
    let (ok, text) = run_without_shared(&["nixos_module::example_tailscale_key_unit"]);
    assert!(ok, "{text}");
    assert!(text.contains("test result: ok. 1 passed"), "{text}");
    assert!(text.contains("skipped: "), "no skip notice:\n{text}");
}
