//! tskeyctl → real sops 3.11: everything `tskeyctl encrypt` writes is decrypted by `sops
//! decrypt` (MAC verified) to what sops itself round-trips, and equals `sops encrypt`'s output
//! for the same input and rule once the random parts are masked. `sops set` on a tskeyctl file
//! and `tskeyctl updatekeys` on a sops file leave files the other tool decrypts.

use std::path::Path;

use regex::Regex;

use crate::sops_support::matrix::*;
use crate::sops_support::*;

/// Masks ENC payloads, age blocks and timestamps; sorts INI's `[sops]` section (sops 3.11
/// writes it in Go map order, which is random).
fn mask(data: &[u8]) -> String {
    let s = String::from_utf8_lossy(data).into_owned();
    let enc = Regex::new(r"ENC\[AES256_GCM,data:[^,]*,iv:[^,]*,tag:[^,]*,type:").expect("re");
    let s = enc.replace_all(&s, "ENC[AES256_GCM,data:D,iv:I,tag:T,type:");
    let age =
        Regex::new(r"(?s)-----BEGIN AGE ENCRYPTED FILE-----.*?-----END AGE ENCRYPTED FILE-----")
            .expect("re");
    let s = age.replace_all(&s, "AGE");
    let time = Regex::new(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ").expect("re");
    let s = time.replace_all(&s, "TIME").into_owned();
    if let Some(pos) = s.find("\n[sops]\n") {
        let (head, tail) = s.split_at(pos + 8);
        let mut lines: Vec<&str> = tail.lines().collect();
        lines.sort();
        return format!("{head}{}\n", lines.join("\n"));
    }
    s
}

fn sops_decrypt(
    sops: &Path,
    dir: &Path,
    env: &[(&str, std::path::PathBuf)],
    file: &Path,
) -> Vec<u8> {
    let mut c = sops_cmd(sops, dir, env);
    c.arg("decrypt").arg(file);
    let out = run(c, None);
    assert_eq!(
        out.status.code(),
        Some(0),
        "sops decrypt {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn tskeyctl_files_match_sops_layout_and_decrypt_with_sops() {
    let Some(sops) = sops() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let keys = make_keys(dir);
    let all = kinds(dir, &keys);
    let mut compared = 0;
    // Without key groups (several recipients) and with Shamir key groups.
    for kind in [&all[3], &all[4], &all[1]] {
        for (oi, opt) in OPTIONS.iter().enumerate() {
            let rule = format!(
                "creation_rules:\n  - path_regex: .*\n{}{}",
                kind.rule_keys, opt
            );
            write(dir, ".sops.yaml", rule.as_bytes());
            for (ext, plain) in plaintexts() {
                let a = write(dir, &format!("tk-{}-{oi}.{ext}", kind.name), &plain);
                let b = write(dir, &format!("so-{}-{oi}.{ext}", kind.name), &plain);
                let mut tk = tskeyctl();
                tk.current_dir(dir).args(["encrypt", "-i"]).arg(&a);
                let out = run(tk, None);
                assert_eq!(
                    out.status.code(),
                    Some(0),
                    "tskeyctl encrypt {}: {}",
                    a.display(),
                    String::from_utf8_lossy(&out.stderr)
                );
                let mut so = sops_cmd(&sops, dir, &[]);
                so.args(["encrypt", "-i"]).arg(&b);
                assert_eq!(run(so, None).status.code(), Some(0));
                let ta = std::fs::read(&a).expect("read");
                let sb = std::fs::read(&b).expect("read");
                if mask(&ta) != mask(&sb) {
                    std::fs::write("/tmp/tskeyctl-enc-tk", mask(&ta)).ok();
                    std::fs::write("/tmp/tskeyctl-enc-sops", mask(&sb)).ok();
                    panic!(
                        "{} {oi} {ext}: layout differs from sops (see /tmp/tskeyctl-enc-{{tk,sops}})",
                        kind.name
                    );
                }
                let want = sops_decrypt(&sops, dir, &kind.sops_env, &b);
                let got = sops_decrypt(&sops, dir, &kind.sops_env, &a);
                assert_eq!(
                    got, want,
                    "{} {oi} {ext}: sops decrypt of the tskeyctl file",
                    kind.name
                );
                compared += 1;
            }
        }
    }
    assert_eq!(compared, 3 * OPTIONS.len() * 5);
}

#[test]
fn sops_set_and_updatekeys_cross_over() {
    let Some(sops) = sops() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let keys = make_keys(dir);
    let all = kinds(dir, &keys);
    let x = &all[0];
    write(
        dir,
        ".sops.yaml",
        format!("creation_rules:\n  - path_regex: .*\n{}", x.rule_keys).as_bytes(),
    );
    // sops set on a tskeyctl file.
    let f = write(dir, "s.yaml", b"a: 1\nb:\n  c: two\n");
    let mut tk = tskeyctl();
    tk.current_dir(dir).args(["encrypt", "-i"]).arg(&f);
    assert_eq!(run(tk, None).status.code(), Some(0));
    let mut set = sops_cmd(&sops, dir, &x.sops_env);
    set.args(["set"])
        .arg(&f)
        .args(["[\"b\"][\"d\"]", "\"new\""]);
    let out = run(set, None);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut dec = tskeyctl();
    dec.args(["decrypt", "-i"]).arg(&x.tk_ids[0]).arg(&f);
    let out = run(dec, None);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "a: 1\nb:\n    c: two\n    d: new\n"
    );
    // tskeyctl updatekeys on a sops file: move it from the x25519 key to the ssh key.
    let g = write(dir, "u.json", b"{\"k\": \"v\"}");
    let mut so = sops_cmd(&sops, dir, &[]);
    so.args(["encrypt", "-i"]).arg(&g);
    assert_eq!(run(so, None).status.code(), Some(0));
    let ssh = &all[1];
    write(
        dir,
        ".sops.yaml",
        format!("creation_rules:\n  - path_regex: .*\n{}", ssh.rule_keys).as_bytes(),
    );
    let mut up = tskeyctl();
    up.current_dir(dir)
        .args(["updatekeys", "-y", "-i"])
        .arg(&x.tk_ids[0])
        .arg(&g);
    let out = run(up, None);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        sops_decrypt(&sops, dir, &ssh.sops_env, &g),
        b"{\n\t\"k\": \"v\"\n}\n"
    );
    // The old key no longer opens it.
    let mut c = sops_cmd(&sops, dir, &x.sops_env);
    c.arg("decrypt").arg(&g);
    assert_ne!(run(c, None).status.code(), Some(0));
    // And into Shamir key groups.
    let sh = &all[4];
    write(
        dir,
        ".sops.yaml",
        format!("creation_rules:\n  - path_regex: .*\n{}", sh.rule_keys).as_bytes(),
    );
    let mut up = tskeyctl();
    up.current_dir(dir)
        .args(["updatekeys", "-y", "-i"])
        .arg(&keys.ssh_key)
        .arg(&g);
    let out = run(up, None);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        sops_decrypt(&sops, dir, &sh.sops_env, &g),
        b"{\n\t\"k\": \"v\"\n}\n"
    );
}
