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
