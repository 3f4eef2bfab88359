//! The NixOS module, the flake and the plain systemd units, checked with the real tools: every
//! `.nix` file parses (`nix-instantiate --parse`), the module evaluates with nixpkgs' `lib` (from
//! `NIXPKGS_LIB`) against the stub options of tests/nix/ to exactly the units, command lines,
//! ordering, `authKeyFile` and install manifest asserted here, its assertions reject broken
//! configurations with the expected messages, the README's NixOS section is the evaluated
//! example, and the flake's outputs evaluate. (systemd-analyze: the `systemd_units` module.)
//!
//! Locally a missing tool or `NIXPKGS_LIB` prints "skipped: …"; with `CI=true` a missing tool
//! fails (NIXPKGS_LIB is optional: nixpkgs' lib is never part of the repository).

use std::process::Command;

use serde_json::{Value, json};

use crate::nix_support::{self, EXE, HOST_KEY, MKDIR, eval, nix_instantiate, run};
use crate::util::repo;

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|s| s.as_str().expect("string"))
        .collect()
}

/// The store path the example's secrets.yaml was copied to, checked for its shape.
fn sops_store_path(example: &Value) -> String {
    let p = example["manifest"]["json"]["secrets"][0]["sopsFile"]
        .as_str()
        .expect("manifest sopsFile")
        .to_string();
    let hash = p
        .strip_prefix("/nix/store/")
        .and_then(|rest| rest.strip_suffix("-secrets.yaml"))
        .unwrap_or_else(|| panic!("not a store path of secrets.yaml: {p}"));
    assert_eq!(hash.len(), 32, "{p}");
    p
}

fn mkdirs(out_dir: &str) -> [String; 2] {
    [
        format!("{MKDIR} -p -m 0751 {out_dir}"),
        format!("{MKDIR} -p -m 0700 /var/lib/tskeyctl"),
    ]
}

#[test]
fn every_nix_file_parses() {
    let Some(nix) = nix_instantiate() else { return };
    let mut files = Vec::new();
    nix_support::nix_files(&repo(), &mut files);
    let rel: Vec<String> = files
        .iter()
        .map(|f| {
            f.strip_prefix(repo())
                .expect("inside repo")
                .display()
                .to_string()
        })
        .collect();
    for expected in [
        "flake.nix",
        "nixos-module/default.nix",
        "nixos-module/keys.nix",
        "nixos-module/lib.nix",
        "nixos-module/secrets.nix",
        "nixos-module/package.nix",
        "nixos-module/example.nix",
        "tests/nix/eval.nix",
        "tests/nix/stubs.nix",
        "tests/nix/cases.nix",
        "tests/nix/pkgs.nix",
        "tests/nix/harness.nix",
        "tests/nix/flake-outputs.nix",
    ] {
        assert!(
            rel.iter().any(|r| r == expected),
            "{expected} not found among {rel:?}"
        );
    }
    for file in &files {
        let (code, _, err) = run(Command::new(&nix).arg("--parse").arg(file));
        assert_eq!(code, 0, "{} does not parse:\n{err}", file.display());
    }
}

#[test]
fn example_tailscale_key_unit() {
    let Some(e) = eval() else { return };
    let example = &e["example"];
    assert_eq!(example["failedAssertions"], json!([]));
    assert_eq!(example["package"], "tskeyctl-0.1.0");
    assert_eq!(example["authKeyFile"], "/run/secrets/tailscale");
    let sops = sops_store_path(example);
    let unit = &example["services"]["tskeyctl-tailscale"];
    assert_eq!(
        unit["description"],
        "Provision Tailscale auth key tailscale"
    );
    assert_eq!(strings(&unit["before"]), ["tailscaled-autoconnect.service"]);
    assert_eq!(
        strings(&unit["wantedBy"]),
        ["multi-user.target", "tailscaled-autoconnect.service"]
    );
    // After tailscaled, so that --skip-if-logged-in finds it answering.
    assert_eq!(
        strings(&unit["after"]),
        ["network-online.target", "tailscaled.service"]
    );
    assert_eq!(strings(&unit["wants"]), ["network-online.target"]);
    let sc = &unit["serviceConfig"];
    assert_eq!(
        sc["ExecStart"].as_str().expect("ExecStart"),
        format!(
            "{EXE} provision --source {sops} --key tailscale/oauth_client_secret --out /run/secrets/tailscale \
--format raw --name tailscale --state-dir /var/lib/tskeyctl --mode 0600 --tags tag:server --no-ephemeral \
--no-reusable --preauthorized --expiry 1h --description \"nixos host\" --reuse-if-valid-for 15m \
--skip-if-logged-in -i {HOST_KEY}"
        )
    );
    assert_eq!(strings(&sc["ExecStartPre"]), mkdirs("/run/secrets"));
    assert_eq!(sc["ExecStop"], json!([]), "revokeOnStop is off");
    assert_eq!(sc["Type"], "oneshot");
    assert_eq!(sc["RemainAfterExit"], true);
    assert_eq!(sc["Restart"], "on-failure");
    assert_eq!(sc["RestartPreventExitStatus"], "1 2 65 66 73 77 78 101");
    assert_eq!(sc["ProtectSystem"], "strict");
    assert_eq!(
        strings(&sc["ReadWritePaths"]),
        ["/run/secrets", "/var/lib/tskeyctl"]
    );
    for flag in [
        "PrivateTmp",
        "NoNewPrivileges",
        "ProtectHome",
        "PrivateDevices",
        "ProtectKernelTunables",
        "RestrictSUIDSGID",
        "MemoryDenyWriteExecute",
    ] {
        assert_eq!(sc[flag], true, "{flag}");
    }
    assert_eq!(
        sc["CapabilityBoundingSet"], "",
        "no capability without --owner/--group"
    );
    assert_eq!(
        strings(&sc["RestrictAddressFamilies"]),
        ["AF_UNIX", "AF_INET", "AF_INET6"]
    );
    assert_eq!(sc["UMask"], "0077");
    assert_eq!(
        unit["unitConfig"],
        json!({"StartLimitBurst": 10, "StartLimitIntervalSec": 600})
    );
    // The nixpkgs autoconnect unit is left alone; the ordering lives in our unit.
    let auto = &e["example"]["services"]["tailscaled-autoconnect"];
    assert_eq!(strings(&auto["after"]), ["tailscaled.service"]);
}

/// The tailscaled key is revoked once tailscaled has joined with it: a unit of its own, after
/// (and pulled in by) tailscaled-autoconnect.service, waiting at most joinTimeoutSec.
#[test]
fn example_after_join_revoke_unit() {
    let Some(e) = eval() else { return };
    let unit = &e["example"]["services"]["tskeyctl-tailscale-after-join"];
    assert_eq!(
        unit["description"],
        "Revoke Tailscale auth key tailscale once tailscaled has joined"
    );
    assert_eq!(
        strings(&unit["after"]),
        ["network-online.target", "tailscaled-autoconnect.service"]
    );
    assert_eq!(strings(&unit["wants"]), ["network-online.target"]);
    assert_eq!(
        strings(&unit["wantedBy"]),
        ["multi-user.target", "tailscaled-autoconnect.service"]
    );
    assert_eq!(strings(&unit["before"]), Vec::<&str>::new());
    let sc = &unit["serviceConfig"];
    assert_eq!(
        sc["ExecStart"],
        format!(
            "{EXE} revoke --state-dir /var/lib/tskeyctl --name tailscale -i {HOST_KEY} --after-join \
             --timeout 300s"
        )
        .as_str()
    );
    assert_eq!(sc["Type"], "oneshot");
    assert_eq!(sc["TimeoutStartSec"], "420s");
    assert!(
        sc.get("RemainAfterExit").is_none(),
        "runs again with autoconnect"
    );
    assert!(
        sc.get("Restart").is_none(),
        "a timeout keeps the key: no retry"
    );
    assert_eq!(strings(&sc["ReadWritePaths"]), ["/var/lib/tskeyctl"]);
    assert_eq!(sc["CapabilityBoundingSet"], "");
    assert_eq!(sc["ProtectSystem"], "strict");
    assert_eq!(
        strings(&sc["RestrictAddressFamilies"]),
        ["AF_UNIX", "AF_INET", "AF_INET6"]
    );
    // Only the tailscaled key gets --skip-if-logged-in.
    let services = e["example"]["services"].as_object().expect("services");
    for (name, svc) in services {
        let mut lines = Vec::new();
        collect_commands(svc, &mut lines);
        for l in lines.iter().filter(|l| l.contains(" provision ")) {
            assert_eq!(
                l.contains(" --skip-if-logged-in "),
                l.contains(" --name tailscale "),
                "{name}: {l}"
            );
        }
    }
}

#[test]
fn example_rotation_and_watch_units() {
    let Some(e) = eval() else { return };
    let example = &e["example"];
    let sops = sops_store_path(example);
    assert_eq!(
        example["timers"],
        json!({"tskeyctl-tailscale-refresh": {
            "wantedBy": ["timers.target"],
            "timerConfig": {"OnActiveSec": "12h", "OnUnitActiveSec": "12h", "RandomizedDelaySec": "5min"}
        }})
    );
    assert_eq!(
        example["paths"],
        json!({"tskeyctl-ci-refresh": {
            "wantedBy": ["paths.target"],
            "pathConfig": {"PathChanged": "/run/agenix/ci-oauth.env"}
        }})
    );
    let refresh = &example["services"]["tskeyctl-tailscale-refresh"];
    let main = &example["services"]["tskeyctl-tailscale"];
    assert_eq!(
        refresh["serviceConfig"]["ExecStart"],
        main["serviceConfig"]["ExecStart"]
    );
    assert!(
        refresh["serviceConfig"]["ExecStart"]
            .as_str()
            .is_some_and(|s| s.contains(&sops))
    );
    assert_eq!(refresh["serviceConfig"]["RemainAfterExit"], false);
    assert_eq!(refresh["wantedBy"], json!([]), "started by its timer only");
    assert_eq!(refresh["before"], json!([]));

    let ci = &example["services"]["tskeyctl-ci"];
    let sc = &ci["serviceConfig"];
    assert_eq!(
        sc["ExecStart"].as_str().expect("ExecStart"),
        format!(
            "{EXE} provision --source /run/agenix/ci-oauth.env --out /run/secrets/ci/authkey --format raw \
--name ci --state-dir /var/lib/tskeyctl --owner ci --group ci --mode 0440 --tags tag:ci,tag:build \
--ephemeral --no-reusable --preauthorized --expiry 10m -i {HOST_KEY}"
        )
    );
    assert_eq!(strings(&sc["ExecStartPre"]), mkdirs("/run/secrets/ci"));
    assert_eq!(
        strings(&sc["ReadWritePaths"]),
        ["/run/secrets/ci", "/var/lib/tskeyctl"]
    );
    assert_eq!(sc["CapabilityBoundingSet"], "CAP_CHOWN");
    assert_eq!(strings(&ci["before"]), Vec::<&str>::new());
    assert_eq!(strings(&ci["wantedBy"]), ["multi-user.target"]);
}

#[test]
fn example_podman_sidecar() {
    let Some(e) = eval() else { return };
    let services = &e["example"]["services"];
    let names: Vec<&String> = services.as_object().expect("services").keys().collect();
    assert_eq!(
        names,
        [
            "podman-web-ts",
            "tailscaled",
            "tailscaled-autoconnect",
            "tskeyctl-ci",
            "tskeyctl-ci-refresh",
            "tskeyctl-tailscale",
            "tskeyctl-tailscale-after-join",
            "tskeyctl-tailscale-refresh"
        ],
        "a sidecar's key has no unit of its own"
    );
    let age = services["podman-web-ts"]["serviceConfig"]["ExecStartPre"][3]
        .as_str()
        .and_then(|s| s.split(' ').nth(3))
        .expect("--source value");
    assert!(
        age.starts_with("/nix/store/") && age.ends_with("-sidecar-oauth.age"),
        "{age}"
    );
    let [mk_out, mk_state] = mkdirs("/run/secrets");
    assert_eq!(
        services["podman-web-ts"],
        json!({
            "description": "",
            // The module's network ordering and oci-containers' own (pulling the image).
            "after": ["network-online.target", "network-online.target"],
            "wants": ["network-online.target", "network-online.target"],
            "before": [],
            "requires": [],
            "wantedBy": ["multi-user.target"],
            "unitConfig": {},
            "script": "exec podman  \\\n  run \\\n  --name=web-ts \\\n  --log-driver=journald \\\n  \
                --cidfile=/run/web-ts/ctr-id \\\n  --cgroups=enabled \\\n  --sdnotify=conmon \\\n  -d \\\n  \
                --replace \\\n  -e TS_HOSTNAME=web \\\n  -e TS_STATE_DIR=/var/lib/tailscale \\\n  \
                -e TS_USERSPACE=true \\\n  --rm \\\n  --pull missing \\\n  '--env=TS_AUTHKEY' \\\n  \
                docker.io/tailscale/tailscale:stable",
            "preStop": "podman stop --ignore --cidfile=/run/web-ts/ctr-id",
            "postStop": "podman rm -f --ignore --cidfile=/run/web-ts/ctr-id",
            "serviceConfig": {
                "ExecStartPre": [
                    "/nix/store/00000000000000000000000000000000-pre-start-web-ts/bin/pre-start",
                    mk_out,
                    mk_state,
                    format!("{EXE} provision --source {age} --out /run/secrets/web-ts --format env --name web-ts \
        --state-dir /var/lib/tskeyctl --mode 0600 --tags tag:container --ephemeral --no-reusable --preauthorized \
        --expiry 10m --description \"web sidecar\" -i {HOST_KEY}")
                ],
                "EnvironmentFile": ["-/run/secrets/web-ts"],
                "ExecStopPost": [format!("-{EXE} revoke --state-dir /var/lib/tskeyctl --name web-ts -i {HOST_KEY}")],
                "Environment": "PODMAN_SYSTEMD_UNIT=%n",
                "NotifyAccess": "all",
                "Restart": "always",
                "RuntimeDirectory": "web-ts",
                "TimeoutStartSec": 0,
                "TimeoutStopSec": 120,
                "Type": "notify",
                "User": "root"
            }
        })
    );
}

#[test]
fn example_secrets_manifest_and_activation() {
    let Some(e) = eval() else { return };
    let example = &e["example"];
    let sops = sops_store_path(example);
    let manifest = &example["manifest"];
    assert_eq!(manifest["name"], "tskeyctl-manifest.json");
    assert_eq!(
        manifest["checkPhase"],
        format!("{EXE} install --check \"$out\"")
    );
    assert_eq!(
        manifest["json"],
        json!({
            "secrets": [{
                "name": "grafana/admin-password",
                "key": "grafana/admin_password",
                "path": "/run/secrets/grafana/admin-password",
                "format": "yaml",
                "mode": "0400",
                "owner": "grafana",
                "uid": 0,
                "group": "grafana",
                "gid": 0,
                "sopsFile": sops,
                "restartUnits": ["grafana.service"],
                "reloadUnits": []
            }],
            "templates": [],
            "placeholderBySecretName": {},
            "secretsMountPoint": "/run/secrets.d",
            "symlinkPath": "/run/secrets",
            "keepGenerations": 1,
            "sshKeyPaths": [],
            "gnupgHome": null,
            "ageKeyFile": null,
            "ageSshKeyPaths": [HOST_KEY],
            "useTmpfs": false,
            "userMode": false,
            "logging": {"keyImport": true, "secretChanges": true}
        })
    );
    let path = manifest["path"].as_str().expect("manifest path");
    assert_eq!(
        example["activation"],
        json!({
            "deps": ["specialfs", "users", "groups"],
            "text": format!(
                "echo \"setting up secrets with tskeyctl...\"\n{EXE} install {path}\n\
        if [ -d /run/nixos ]; then\n  echo tskeyctl-ci.service >> /run/nixos/activation-restart-list\n  \
        echo tskeyctl-tailscale.service >> /run/nixos/activation-restart-list\nfi\n"
            )
        })
    );
}

#[test]
fn plain_auth_key_and_nixpkgs_without_autoconnect() {
    let Some(e) = eval() else { return };
    let line = format!(
        "{EXE} provision --source /run/keys/tailscale-authkey --out /run/secrets/tailscale --format raw \
--name tailscale --state-dir /var/lib/tskeyctl --mode 0600 -i {HOST_KEY}"
    );
    let skip_line = line.replace(" -i ", " --skip-if-logged-in -i ");
    let minimal = &e["minimal"];
    assert_eq!(minimal["failedAssertions"], json!([]));
    assert_eq!(minimal["manifest"], Value::Null);
    assert_eq!(minimal["activation"], Value::Null);
    assert_eq!(minimal["timers"], json!({}));
    assert_eq!(minimal["paths"], json!({}));
    assert_eq!(
        minimal["services"]["tskeyctl-tailscale"]["serviceConfig"]["ExecStart"],
        skip_line.as_str()
    );
    assert!(
        minimal["services"]
            .get("tskeyctl-tailscale-after-join")
            .is_none(),
        "a ready auth key was not minted: nothing to revoke after the join"
    );

    let old = &e["noAutoconnect"];
    assert_eq!(old["failedAssertions"], json!([]));
    assert_eq!(
        old["authKeyFile"],
        Value::Null,
        "the option does not exist there"
    );
    let unit = &old["services"]["tskeyctl-tailscale"];
    assert_eq!(strings(&unit["before"]), ["tailscaled.service"]);
    assert_eq!(
        strings(&unit["wantedBy"]),
        ["multi-user.target", "tailscaled.service"]
    );
    // Without tailscaled-autoconnect the unit runs before tailscaled: no skip, no after-join.
    assert_eq!(unit["serviceConfig"]["ExecStart"], line.as_str());
    assert_eq!(strings(&unit["after"]), ["network-online.target"]);
    assert!(old["services"].get("tailscaled-autoconnect").is_none());
    assert!(
        old["services"]
            .get("tskeyctl-tailscale-after-join")
            .is_none()
    );
}

#[test]
fn broken_configurations_are_rejected_with_their_message() {
    let Some(e) = eval() else { return };
    let k = "services.tskeyctl.keys.k";
    let expected = json!({
        "twoSources": [format!("{k}: set exactly one of sopsFile, ageFile or file (now set: sopsFile, file).")],
        "noSource": [format!("{k}: set exactly one of sopsFile, ageFile or file (now set: none).")],
        "mintWithoutTags": [format!("{k}.mint.tags is empty: minting with an OAuth client needs at least one tag \
    the client owns, e.g. [ \"tag:server\" ]. Set mint = null if the source holds a ready auth key.")],
        "badTags": [format!("{k}.mint.tags: every tag must start with \"tag:\" (got server, Tag:x).")],
        "badDescription": [format!("{k}.mint.description: at most 50 characters of letters, digits, spaces \
    and '-' (the Tailscale API rejects others).")],
        "badName": ["services.tskeyctl.keys.my key: the key name is used in unit and state names; use only \
    letters, digits, '_', '.' and '-' (starting with a letter or digit)."],
        "unknownTailscaleKey": ["services.tskeyctl.tailscaleAuthKey = \"tailscale\" is not a key in \
    services.tskeyctl.keys (known: k)."],
        "envForTailscale": [format!("{k}.outputFormat must be \"raw\": services.tailscale.authKeyFile expects \
    the bare key.")],
        "sidecarWithoutUnit": ["services.tskeyctl.sidecars.podman-typo: systemd.services.podman-typo has no \
    ExecStart; name the container's unit, e.g. podman-<container> for virtualisation.oci-containers."],
        "sidecarRawKey": [format!("{k}.outputFormat must be \"env\": sidecar podman-web reads it with \
    EnvironmentFile=.")],
        // services.tskeyctl.containers (asserted in detail by podman_module).
        "containerUnknownApp": e["rejected"]["containerUnknownApp"],
        "containerAppTwice": e["rejected"]["containerAppTwice"],
        "containerBadTags": e["rejected"]["containerBadTags"],
        "samePath": ["services.tskeyctl: these paths are written by two keys or by a key and a secret: \
    /run/secrets/c; give each its own path."],
        "noHostKey": ["services.tskeyctl.hostKeyPaths is empty, so nothing can decrypt sopsFile/ageFile \
    sources: enable services.openssh with an ed25519 host key or set hostKeyPaths."]
    });
    assert_eq!(e["rejected"], expected);
}

#[test]
fn readme_nixos_section_is_the_evaluated_example() {
    let example = std::fs::read_to_string(repo().join("nixos-module/example.nix"))
        .expect("nixos-module/example.nix");
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README.md");
    let section = readme
        .split("\n## ")
        .find(|s| s.starts_with("NixOS"))
        .expect("README.md has a '## NixOS' section");
    assert!(
        section.contains(&format!("```nix\n{example}```\n")),
        "README.md's NixOS section must contain nixos-module/example.nix verbatim in a ```nix block"
    );
}

#[test]
fn flake_exports_package_module_overlay_and_checks() {
    let Some(e) = eval() else { return };
    let flake = &e["flake"];
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        strings(&flake["systems"]),
        ["aarch64-linux", "x86_64-linux"]
    );
    assert_eq!(
        strings(&flake["checks"]),
        [
            "example-manifest",
            "example-units",
            "module-eval",
            "package"
        ]
    );
    assert_eq!(
        flake["package"],
        json!({"pname": "tskeyctl", "version": version, "lockFile": "/Cargo.lock", "mainProgram": "tskeyctl"})
    );
    assert_eq!(flake["overlay"], format!("tskeyctl-{version}"));
    // nixosModules.default brings its own package (the stand-in nixpkgs has no `tskeyctl`).
    assert_eq!(flake["moduleAssertions"], json!([]));
    let exec = flake["moduleExecStart"].as_str().expect("ExecStart");
    let own = format!(
        "/nix/store/11111111111111111111111111111111-tskeyctl-{version}/bin/tskeyctl provision "
    );
    assert!(exec.starts_with(&own), "{exec}");
    assert_eq!(
        exec.strip_prefix(&own),
        e["example"]["services"]["tskeyctl-tailscale"]["serviceConfig"]["ExecStart"]
            .as_str()
            .and_then(|s| s.strip_prefix(&format!("{EXE} provision ")))
    );
}

/// Splits a systemd command line (double quotes group words; a leading `-`/`+` prefix of the
/// executable is a systemd flag, not part of the path).
fn split_command(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            ' ' if !quoted => {
                if any {
                    words.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            _ => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        words.push(cur);
    }
    words
}

fn collect_commands(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => {
            for line in s.lines() {
                if let Some(i) = line.find("/bin/tskeyctl ") {
                    out.push(line[i..].to_string());
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_commands(x, out)),
        Value::Object(o) => o.values().for_each(|x| collect_commands(x, out)),
        _ => {}
    }
}

#[test]
fn every_generated_command_line_is_accepted_by_the_real_cli() {
    let Some(e) = eval() else { return };
    let mut lines = Vec::new();
    collect_commands(e, &mut lines);
    lines.sort();
    lines.dedup();
    assert!(
        lines.iter().any(|l| l.contains(" provision "))
            && lines.iter().any(|l| l.contains(" revoke "))
            && lines.iter().any(|l| l.contains(" install ")),
        "expected provision, revoke and install lines: {lines:#?}"
    );
    for line in &lines {
        let tmp = tempfile::tempdir().expect("tempdir");
        // Every absolute path is moved under an empty temp root: inputs are then missing (66),
        // and nothing outside the temp dir is touched. A usage error (2) means a flag the
        // module generates does not exist.
        let words: Vec<String> = split_command(line)
            .into_iter()
            .skip(1)
            .map(|w| {
                if w.starts_with('/') {
                    format!("{}{w}", tmp.path().display())
                } else {
                    w.trim_end_matches(['\'', ';'])
                        .trim_start_matches('\'')
                        .to_string()
                }
            })
            .collect();
        // The output directory exists on the host (the module's units create it first), and it
        // is checked before the source is read.
        if let Some(i) = words.iter().position(|w| w == "--out") {
            let dir = std::path::Path::new(&words[i + 1])
                .parent()
                .expect("parent");
            std::fs::create_dir_all(dir).expect("mkdir out dir");
        }
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tskeyctl"))
            .args(&words)
            .env_remove("TS_API_CLIENT_SECRET")
            .env_remove("TAILSCALE_OAUTH_CLIENT_SECRET")
            .env_remove("TAILSCALE_API_KEY")
            .output()
            .expect("run tskeyctl");
        let err = String::from_utf8_lossy(&out.stderr);
        // Owners the module sets exist on the NixOS host, not here: that lookup (78) comes
        // after flag parsing, so it also proves the flags were accepted.
        let owner_missing = out.status.code() == Some(78) && err.contains(": no such ");
        assert!(
            out.status.code() == Some(66) || owner_missing,
            "{line}\n→ {words:?}\n{err}"
        );
    }
}
