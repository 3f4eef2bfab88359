//! Bad input: each case fails with a clear message and the contract's exit code, and where the
//! real sops also rejects the input, both tools reject it.

use std::path::Path;

use crate::sops_support::matrix::*;
use crate::sops_support::*;

struct Case<'a> {
    name: &'a str,
    file: std::path::PathBuf,
    code: i32,
    needle: &'a str,
    sops_rejects: bool,
}

fn tk_decrypt(ids: &[std::path::PathBuf], file: &Path) -> std::process::Output {
    let mut c = tskeyctl();
    c.arg("decrypt");
    for i in ids {
        c.arg("-i").arg(i);
    }
    c.arg(file);
    run(c, None)
}

fn replace_once(data: &str, from: &str, to: &str) -> String {
    assert!(data.contains(from), "{from:?} not in file");
    data.replacen(from, to, 1)
}

#[test]
fn malformed_files_fail_clearly() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let keys = make_keys(dir);
    let all = kinds(dir, &keys);
    let x = &all[0];
    let mut tk = tskeyctl();
    tk.current_dir(dir)
        .args(["encrypt", "--age", &keys.x_a.1])
        .arg(write(dir, "plain.yaml", b"user: alice\npw: secret\nn: 5\n"));
    let out = run(tk, None);
    assert_eq!(out.status.code(), Some(0));
    let good = String::from_utf8(out.stdout).expect("utf8");
    let enc_of = |key: &str| {
        let line = good
            .lines()
            .find(|l| l.starts_with(&format!("{key}: ")))
            .expect("line");
        line[key.len() + 2..].to_string()
    };
    let pw = enc_of("pw");
    let user = enc_of("user");
    // data:<b64> of pw, with one byte flipped.
    let data_b64 = pw
        .split("data:")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .expect("data");
    let mut flipped = data_b64.to_string().into_bytes();
    flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).expect("b64");
    let mac_line = good
        .lines()
        .find(|l| l.trim_start().starts_with("mac: "))
        .expect("mac");
    let cases = vec![
        Case {
            name: "flipped ciphertext byte",
            file: write(
                dir,
                "c1.yaml",
                replace_once(&good, data_b64, &flipped).as_bytes(),
            ),
            code: 65,
            needle: "cannot decrypt the value at 'pw'",
            sops_rejects: true,
        },
        Case {
            name: "changed MAC",
            file: write(
                dir,
                "c2.yaml",
                replace_once(&good, mac_line, &mac_line.replacen("data:", "data:AA", 1)).as_bytes(),
            ),
            code: 65,
            needle: "MAC",
            sops_rejects: true,
        },
        Case {
            name: "value moved to another key",
            file: write(
                dir,
                "c3.yaml",
                replace_once(
                    &replace_once(&good, &format!("user: {user}"), "user: X"),
                    &format!("pw: {pw}"),
                    &format!("pw: {user}"),
                )
                .replace("user: X", &format!("user: {pw}"))
                .as_bytes(),
            ),
            code: 65,
            needle: "moved to another key",
            sops_rejects: true,
        },
        Case {
            name: "no sops section",
            file: write(dir, "c4.yaml", b"a: b\n"),
            code: 65,
            needle: "not a sops file",
            sops_rejects: true,
        },
        Case {
            name: "no version",
            file: write(
                dir,
                "c5.yaml",
                good.lines()
                    .filter(|l| !l.trim_start().starts_with("version:"))
                    .map(|l| format!("{l}\n"))
                    .collect::<String>()
                    .as_bytes(),
            ),
            code: 65,
            needle: "no version",
            sops_rejects: true,
        },
        Case {
            name: "bad version",
            file: write(
                dir,
                "c6.yaml",
                replace_once(&good, "version: 3.11.0", "version: banana").as_bytes(),
            ),
            code: 65,
            needle: "not a valid version",
            sops_rejects: true,
        },
        Case {
            name: "unknown cipher",
            file: write(
                dir,
                "c7.yaml",
                replace_once(
                    &good,
                    &format!("pw: {pw}"),
                    &format!("pw: {}", pw.replace("AES256_GCM", "CHACHA20")),
                )
                .as_bytes(),
            ),
            code: 65,
            needle: "data format",
            sops_rejects: true,
        },
        Case {
            name: "unknown type",
            file: write(
                dir,
                "c8.yaml",
                replace_once(&good, "type:int]", "type:uint128]").as_bytes(),
            ),
            code: 65,
            needle: "unknown datatype",
            sops_rejects: true,
        },
        Case {
            name: "bad base64",
            file: write(
                dir,
                "c9.yaml",
                replace_once(&good, data_b64, "%%%%").as_bytes(),
            ),
            code: 65,
            needle: "base64",
            sops_rejects: true,
        },
        Case {
            name: "duplicate keys",
            file: write(dir, "c10.yaml", format!("pw: x\n{good}").as_bytes()),
            code: 65,
            needle: "duplicate mapping key",
            sops_rejects: true,
        },
        Case {
            name: "non-string key",
            file: write(dir, "c11.yaml", format!("1: x\n{good}").as_bytes()),
            code: 65,
            needle: "only string keys",
            sops_rejects: true,
        },
        Case {
            name: "invalid UTF-8",
            file: write(
                dir,
                "c12.yaml",
                &[good.as_bytes(), b"x: \xff\xfe\n"].concat(),
            ),
            code: 65,
            needle: "UTF-8",
            sops_rejects: true,
        },
        Case {
            name: "top-level list",
            file: write(dir, "c13.yaml", b"- a\n- b\n"),
            code: 65,
            needle: "sequences are not supported",
            sops_rejects: true,
        },
    ];
    let sops = sops();
    for c in &cases {
        let out = tk_decrypt(&x.tk_ids, &c.file);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(c.code), "{}: {err}", c.name);
        assert!(
            err.to_lowercase().contains(&c.needle.to_lowercase()),
            "{}: message {err:?} lacks {:?}",
            c.name,
            c.needle
        );
        assert!(out.stdout.is_empty(), "{}: printed output", c.name);
        assert!(
            !err.contains("secret") && !err.contains("alice"),
            "{}: message leaks plaintext: {err}",
            c.name
        );
        if let Some(s) = &sops {
            let mut d = sops_cmd(s, dir, &x.sops_env);
            d.arg("decrypt").arg(&c.file);
            let so = run(d, None);
            assert_eq!(
                so.status.code() != Some(0),
                c.sops_rejects,
                "{}: sops exit {:?}",
                c.name,
                so.status.code()
            );
        }
    }
}

#[test]
fn wrong_identity_is_77_and_lists_recipients() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let keys = make_keys(dir);
    let all = kinds(dir, &keys);
    let f = write(dir, "w.yaml", b"a: b\n");
    let mut tk = tskeyctl();
    tk.args([
        "encrypt",
        "-i",
        "--age",
        &format!("{},{}", keys.x_b.1, keys.ssh_pub),
    ])
    .arg(&f);
    assert_eq!(run(tk, None).status.code(), Some(0));
    let out = tk_decrypt(&all[0].tk_ids, &f);
    assert_eq!(out.status.code(), Some(77));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "file recipients: {}, {}",
            keys.x_b.1, keys.ssh_pub
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("identities tried: {}", keys.x_a.1)),
        "{err}"
    );
}

#[test]
fn alias_bomb_is_refused_with_bounded_memory() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let mut bomb = String::from(
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    let names = ["b", "c", "d", "e", "f", "g", "h", "i"];
    let mut prev = "a";
    for n in names {
        bomb.push_str(&format!(
            "{n}: &{n} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"
        ));
        prev = n;
    }
    let f = write(dir, "bomb.yaml", bomb.as_bytes());
    let mut tk = tskeyctl();
    tk.args([
        "encrypt",
        "--age",
        "age1lzd99uklcjnc0e7d860axevet2cz99ce9pq6tzuzd05l5nr28ams36nvun",
    ])
    .arg(&f);
    let start = std::time::Instant::now();
    let out = run(tk, None);
    assert_eq!(
        out.status.code(),
        Some(65),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("alias bomb"));
    assert!(start.elapsed().as_secs() < 10);
    let out = tk_decrypt(&[], &f);
    assert_eq!(out.status.code(), Some(65));
}

#[test]
fn oversized_input_is_refused_before_reading() {
    let tmp = tempfile::tempdir().expect("tmp");
    let f = tmp.path().join("huge.yaml");
    let file = std::fs::File::create(&f).expect("create");
    file.set_len(100 << 20).expect("sparse 100 MB");
    let out = tk_decrypt(&[], &f);
    assert_eq!(out.status.code(), Some(65));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("larger than 67108864 bytes"), "{err}");
}

#[test]
fn ignore_mac_warns_and_decrypts() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let keys = make_keys(dir);
    let all = kinds(dir, &keys);
    let f = write(dir, "m.yaml", b"a: b\nc: d\n");
    let mut tk = tskeyctl();
    tk.args(["encrypt", "-i", "--age", &keys.x_a.1]).arg(&f);
    assert_eq!(run(tk, None).status.code(), Some(0));
    // Drop one leaf: every remaining value still authenticates; only the MAC catches it.
    let text = std::fs::read_to_string(&f).expect("read");
    let cut: String = text
        .lines()
        .filter(|l| !l.starts_with("c: "))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&f, cut).expect("write");
    let out = tk_decrypt(&all[0].tk_ids, &f);
    assert_eq!(out.status.code(), Some(65));
    assert!(String::from_utf8_lossy(&out.stderr).contains("MAC mismatch"));
    let mut c2 = tskeyctl();
    c2.args(["decrypt", "--ignore-mac", "-i"])
        .arg(&all[0].tk_ids[0])
        .arg(&f);
    let out = run(c2, None);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(out.stdout, b"a: b\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--ignore-mac"));
}
