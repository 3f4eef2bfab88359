//! Real sops 3.11 → tskeyctl: files made by `sops encrypt` across every format × recipient kind
//! × crypt option decrypt byte-identically to `sops decrypt` (whole file and `--extract`).

mod sops_support;

use sops_support::matrix::*;
use sops_support::*;

#[test]
fn real_sops_files_decrypt_byte_identically() {
    let Some(sops) = sops() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let keys = make_keys(dir);
    let mut checked = 0;
    for kind in kinds(dir, &keys) {
        for (oi, opt) in OPTIONS.iter().enumerate() {
            let rule = format!(
                "creation_rules:\n  - path_regex: .*\n{}{}",
                kind.rule_keys, opt
            );
            write(dir, ".sops.yaml", rule.as_bytes());
            for (ext, plain) in plaintexts() {
                let name = format!("f-{}-{oi}.{ext}", kind.name);
                let src = write(dir, &name, &plain);
                let mut enc = sops_cmd(&sops, dir, &[]);
                enc.args(["encrypt", "-i"]).arg(&src);
                let out = run(enc, None);
                assert_eq!(
                    out.status.code(),
                    Some(0),
                    "sops encrypt {name}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                let mut extracts_all: Vec<Option<&str>> = vec![None];
                extracts_all.extend(extracts(ext).iter().map(|e| Some(*e)));
                for x in extracts_all {
                    let mut dec = sops_cmd(&sops, dir, &kind.sops_env);
                    dec.arg("decrypt");
                    let mut tk = tskeyctl();
                    tk.current_dir(dir).arg("decrypt");
                    for id in &kind.tk_ids {
                        tk.arg("-i").arg(id);
                    }
                    if let Some(x) = x {
                        dec.args(["--extract", x]);
                        tk.args(["--extract", x]);
                    }
                    dec.arg(&src);
                    tk.arg(&src);
                    let want = run(dec, None);
                    let got = run(tk, None);
                    if want.status.code() != Some(0) {
                        // Where sops refuses (e.g. a section extracted from INI), so do we.
                        assert_ne!(
                            got.status.code(),
                            Some(0),
                            "{name} {x:?}: sops failed but tskeyctl did not"
                        );
                        checked += 1;
                        continue;
                    }
                    assert_eq!(
                        got.status.code(),
                        Some(0),
                        "tskeyctl decrypt {name} {x:?}: {}",
                        String::from_utf8_lossy(&got.stderr)
                    );
                    if want.stdout != got.stdout {
                        std::fs::write("/tmp/tskeyctl-interop-want", &want.stdout).ok();
                        std::fs::write("/tmp/tskeyctl-interop-got", &got.stdout).ok();
                        panic!(
                            "{name} {x:?}: output differs from sops (see /tmp/tskeyctl-interop-{{want,got}})"
                        );
                    }
                    checked += 1;
                }
            }
        }
    }
    eprintln!("{checked} decryptions compared");
    assert!(checked > 100);
}

#[test]
fn shamir_threshold_not_met_is_77_for_both() {
    let Some(sops) = sops() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let keys = make_keys(dir);
    let kind = kinds(dir, &keys).pop().expect("shamir");
    write(
        dir,
        ".sops.yaml",
        format!("creation_rules:\n  - path_regex: .*\n{}", kind.rule_keys).as_bytes(),
    );
    let src = write(dir, "s.yaml", b"a: b\n");
    let mut enc = sops_cmd(&sops, dir, &[]);
    enc.args(["encrypt", "-i"]).arg(&src);
    assert_eq!(run(enc, None).status.code(), Some(0));
    let xa = dir.join("xa.txt");
    // Byte-level Shamir layout of the real sops: each group's age file holds a 33-byte share,
    // 32 y-bytes then x = group index + 1; any two combine to the same 32-byte key.
    let bytes = std::fs::read(&src).expect("read");
    let origin = tskeyctl::source::Origin::File(src.clone());
    let loaded = tskeyctl::sops::load_encrypted(&origin, &bytes, tskeyctl::sops::Format::Yaml)
        .expect("load");
    assert_eq!(loaded.metadata.shamir_threshold, 2);
    let (ids, _) = tskeyctl::sops::Identities::load_from(&tskeyctl::sops::Sources {
        explicit: vec![dir.join("xab.txt"), keys.ssh_key.clone()],
        ..Default::default()
    });
    let shares: Vec<Vec<u8>> = loaded
        .metadata
        .groups
        .iter()
        .map(|g| {
            tskeyctl::sops::agefile::open(&ids, g.age[0].enc.as_bytes())
                .expect("share")
                .to_vec()
        })
        .collect();
    for (i, s) in shares.iter().enumerate() {
        assert_eq!(s.len(), 33);
        assert_eq!(s[32] as usize, i + 1);
    }
    let k01 = tskeyctl::sops::shamir::combine(&[&shares[0], &shares[1]]).expect("01");
    let k12 = tskeyctl::sops::shamir::combine(&[&shares[1], &shares[2]]).expect("12");
    assert_eq!(*k01, *k12);
    assert_eq!(k01.len(), 32);
    let mut dec = sops_cmd(&sops, dir, &[("SOPS_AGE_KEY_FILE", xa.clone())]);
    dec.arg("decrypt").arg(&src);
    assert_ne!(run(dec, None).status.code(), Some(0));
    let mut tk = tskeyctl();
    tk.arg("decrypt").arg("-i").arg(&xa).arg(&src);
    let out = run(tk, None);
    assert_eq!(out.status.code(), Some(77));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Shamir threshold of 2, but only 1"), "{err}");
    assert!(err.contains(&keys.x_b.1), "{err}");
    // With the ssh key as well (group 3) it opens.
    let mut tk = tskeyctl();
    tk.arg("decrypt")
        .arg("-i")
        .arg(&xa)
        .arg("-i")
        .arg(&keys.ssh_key)
        .arg(&src);
    let out = run(tk, None);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, b"a: b\n");
}

/// YAML comment placements go-yaml treats specially (foot comments, comments after a bare
/// `- ` or `key:`, head comments of list items that are maps or lists, block scalars, several
/// documents): both directions agree with the real sops byte for byte.
#[test]
fn yaml_comment_edge_cases_match_sops() {
    let Some(sops) = sops() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let keys = make_keys(dir);
    let kind = kinds(dir, &keys).remove(0);
    let docs = [
        "a:\n  b: 1\n  # foot of b\nc: 2\n",
        "a:\n  - x\n  # foot in seq\nb: 1\n",
        "a: {}\n# only comment\n",
        "a:\n  - # head of map item\n    k: v\n    j: w\n",
        "# c1\n\n# c2 after blank\na: 1\n\n\n# end\n",
        "a: [1, {b: 2}]\nc: !!str 5\nd: \"multi\\nline  \\n\"\ne: '  lead'\nf: \"tab\\tx\"\n",
        "x:\n  y:\n    z: 1\n    # deep foot\n  # mid foot\n# top foot\n",
        "a: |+\n  keep\n\n\nb: >\n  folded\n  text\n",
        "k: 1\n---\n# only comment doc\n---\nz: 2\n",
        "a: # c\n  b: 1\n",
        "a:\n  - # c\n    - x\n",
        "a:\n  - # c\n    k: v\n  - # d\n    k: w\n",
        "a:\n  - x # t\n  - y\n",
        "a:\n  - k: v # t\n    j: w\n",
    ];
    for (i, doc) in docs.iter().enumerate() {
        let plain = write(dir, &format!("e{i}.yaml"), doc.as_bytes());
        let by_sops = dir.join(format!("e{i}.sops.yaml"));
        let by_tk = dir.join(format!("e{i}.tk.yaml"));
        let mut c = sops_cmd(&sops, dir, &[]);
        c.args(["encrypt", "--age", &keys.x_a.1, "--output"])
            .arg(&by_sops)
            .arg(&plain);
        assert_eq!(run(c, None).status.code(), Some(0), "case {i}");
        let mut c = tskeyctl();
        c.args(["encrypt", "--age", &keys.x_a.1, "-o"])
            .arg(&by_tk)
            .arg(&plain);
        assert_eq!(run(c, None).status.code(), Some(0), "case {i}");
        let mut c = sops_cmd(&sops, dir, &kind.sops_env);
        c.arg("decrypt").arg(&by_sops);
        let want = run(c, None).stdout;
        let mut c = tskeyctl();
        c.arg("decrypt")
            .arg("-i")
            .arg(&kind.tk_ids[0])
            .arg(&by_sops);
        let got = run(c, None);
        assert_eq!(
            String::from_utf8_lossy(&got.stdout),
            String::from_utf8_lossy(&want),
            "case {i}: tskeyctl decrypt of the sops file"
        );
        let mut c = sops_cmd(&sops, dir, &kind.sops_env);
        c.arg("decrypt").arg(&by_tk);
        let back = run(c, None).stdout;
        assert_eq!(
            String::from_utf8_lossy(&back),
            String::from_utf8_lossy(&want),
            "case {i}: sops decrypt of the tskeyctl file"
        );
    }
}
