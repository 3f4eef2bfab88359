//! CLI behaviour of `decrypt` / `encrypt` that needs no peer: `-o` (0600, atomic), output
//! types, stdin, creation-rule selection by `path_regex`, and usage/config exit codes.

use std::os::unix::fs::PermissionsExt;

use crate::sops_support::matrix::make_keys;
use crate::sops_support::*;

#[test]
fn output_file_types_stdin_and_rule_selection() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let keys = make_keys(dir);
    let xa = write(dir, "xa.txt", format!("{}\n", keys.x_a.0).as_bytes());
    // Two rules: prod/ files go to the ssh key, everything else to x_a.
    write(
        dir,
        ".sops.yaml",
        format!(
            "creation_rules:\n  - path_regex: ^prod/.*\\.yaml$\n    age: '{}'\n  - age: {}\n",
            keys.ssh_pub, keys.x_a.1
        )
        .as_bytes(),
    );
    std::fs::create_dir(dir.join("prod")).expect("mkdir");
    let p = write(&dir.join("prod"), "a.yaml", b"k: v\nn: 1.5\n");
    let d = write(dir, "b.yaml", b"k: v\n");
    for f in [&p, &d] {
        let mut c = tskeyctl();
        c.current_dir(dir).args(["encrypt", "-i"]).arg(f);
        let out = run(c, None);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let prod = std::fs::read_to_string(&p).expect("read");
    assert!(
        prod.contains(&format!("recipient: {}", keys.ssh_pub)),
        "{prod}"
    );
    assert!(!prod.contains(&keys.x_a.1));
    let dflt = std::fs::read_to_string(&d).expect("read");
    assert!(
        dflt.contains(&format!("recipient: {}", keys.x_a.1)),
        "{dflt}"
    );

    // -o: atomic, mode 0600; --output-type json.
    let out_file = dir.join("out.json");
    let mut c = tskeyctl();
    c.args(["decrypt", "--output-type", "json", "-o"])
        .arg(&out_file)
        .arg("-i")
        .arg(&keys.ssh_key)
        .arg(&p);
    let out = run(c, None);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty());
    assert_eq!(
        std::fs::read(&out_file).expect("out"),
        b"{\n\t\"k\": \"v\",\n\t\"n\": 1.5\n}\n"
    );
    let mode = std::fs::metadata(&out_file)
        .expect("meta")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);

    // stdin with --input-type.
    let mut c = tskeyctl();
    c.args(["decrypt", "--input-type", "yaml", "-i"])
        .arg(&xa)
        .arg("-");
    let out = run(c, Some(dflt.as_bytes()));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, b"k: v\n");

    // --key of a number prints its YAML text; a map is refused.
    let mut c = tskeyctl();
    c.args(["decrypt", "--key", "n", "-i"])
        .arg(&keys.ssh_key)
        .arg(&p);
    assert_eq!(run(c, None).stdout, b"1.5");

    // Bad --extract syntax is a usage error (2); a missing key is data (65).
    let mut c = tskeyctl();
    c.args(["decrypt", "--extract", "[k]", "-i"])
        .arg(&xa)
        .arg(&d);
    assert_eq!(run(c, None).status.code(), Some(2));
    let mut c = tskeyctl();
    c.args(["decrypt", "--extract", "[\"nope\"]", "-i"])
        .arg(&xa)
        .arg(&d);
    let out = run(c, None);
    assert_eq!(out.status.code(), Some(65));
    assert!(String::from_utf8_lossy(&out.stderr).contains("component ['nope'] not found"));

    // Encrypting an encrypted file: 65. No rule / no recipients: 78. Missing input: 66.
    let mut c = tskeyctl();
    c.current_dir(dir).args(["encrypt"]).arg(&d);
    let out = run(c, None);
    assert_eq!(out.status.code(), Some(65));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already encrypted"));
    let other = tempfile::tempdir().expect("tmp");
    let f = write(other.path(), "c.yaml", b"a: b\n");
    let mut c = tskeyctl();
    c.current_dir(other.path()).args(["encrypt"]).arg(&f);
    assert_eq!(run(c, None).status.code(), Some(78));
    let mut c = tskeyctl();
    c.args(["encrypt", "--age", "not-a-recipient"]).arg(&f);
    assert_eq!(run(c, None).status.code(), Some(78));
    let mut c = tskeyctl();
    c.args(["decrypt"]).arg(other.path().join("missing.yaml"));
    assert_eq!(run(c, None).status.code(), Some(66));
}
