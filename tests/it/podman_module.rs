//! `services.tskeyctl.containers.<name>` (nixos-module/containers.nix): what it evaluates to
//! against nixpkgs' lib and the oci-containers stub of tests/nix/stubs.nix (the same option names,
//! types and `podman run` script as nixpkgs' oci-containers.nix), its assertions, and the units
//! it generates run under the real podman by `unit_runner` — and the same for the README
//! example's `sidecars.podman-web-ts` (EnvironmentFile= and `--env=TS_AUTHKEY`), with the
//! example's image, journald log driver and age file replaced by local stand-ins. The generated
//! container units also pass `systemd-analyze verify`.
//!
//! The run uses the case `containersLocal` of tests/nix/cases.nix (the stand-in image, file
//! logs, commands that report what the containers see). The runner renders the units as NixOS
//! does (`script` → ExecStart=, `preStop` → ExecStop=, `postStop` → ExecStopPost= after the
//! module's own, which it orders first with mkBefore; each a `sh -e` script), and substitutes: the container name `podtest` by a
//! unique one, store paths by local programs, /run/secrets, /var/lib/tskeyctl*, the host key and
//! the out directory by paths in a temp dir. The fake API comes in through a test drop-in
//! (`TAILSCALE_BASE_URL`), as in `podman_sidecar`; tskeyctl runs on the host in ExecStartPre=,
//! so the containers keep podman's default network and never need to reach the fake.

use std::path::Path;

use serde_json::{Value, json};

use crate::fake_tailscale::{Fault, Route};
use crate::nix_support::units::render_service;
use crate::nix_support::{EXE, HOST_KEY, MKDIR, eval};
use crate::podman_sidecar::{
    Host, assert_key_only_in_env, env_file_key, figures, seen_hash, sha256_hex, wait_for,
};
use crate::podman_support::{Cleanup, Podman, podman_or_skip, unique};
use crate::unit_runner::Unit;
use crate::util::{BIN, peer, s};

const SOPS: &str = "/nix/store/11111111111111111111111111111111-tailscale.yaml";
const COREUTILS_MKDIR: &str = "/nix/store/00000000000000000000000000000000-coreutils-9.7/bin/mkdir";

#[test]
fn containers_option_evaluates_to_a_tailscale_container_per_node() {
    let Some(e) = eval() else { return };
    let c = &e["containers"];
    assert_eq!(c["failedAssertions"], json!([]));
    let services = &c["services"];
    let names: Vec<&String> = services.as_object().expect("services").keys().collect();
    assert_eq!(
        names,
        [
            "podman-podtest-app",
            "podman-ts-podtest",
            "tailscaled",
            "tskeyctl-ts-podtest-after-join"
        ],
        "the container's key has no unit of its own, only its after-join revoke"
    );
    let ts = &services["podman-ts-podtest"];
    assert_eq!(
        ts["serviceConfig"]["ExecStartPre"],
        json!([
            "/nix/store/00000000000000000000000000000000-pre-start-ts-podtest/bin/pre-start",
            format!("{MKDIR} -p -m 0751 /run/secrets"),
            format!("{MKDIR} -p -m 0700 /var/lib/tskeyctl"),
            format!("{MKDIR} -p -m 0700 /var/lib/tskeyctl-containers/podtest"),
            format!("{MKDIR} -p -m 0700 /run/tskeyctl/ts-podtest"),
            format!(
                "{EXE} provision --source {SOPS} --out /run/secrets/ts-podtest.env --format env \
                 --name ts-podtest --state-dir /var/lib/tskeyctl --mode 0600 --tags tag:container \
                 --ephemeral --no-reusable --preauthorized --expiry 10m --reuse-if-valid-for 5m \
                 -i {HOST_KEY}"
            )
        ])
    );
    assert_eq!(
        ts["serviceConfig"]["ExecStopPost"],
        json!([format!(
            "-{EXE} revoke --state-dir /var/lib/tskeyctl --name ts-podtest -i {HOST_KEY}"
        )])
    );
    assert!(ts["serviceConfig"].get("EnvironmentFile").is_none());
    assert_eq!(
        ts["script"],
        "exec podman  \\\n  run \\\n  --name=ts-podtest \\\n  --log-driver=journald \\\n  \
         --hostname=podtest \\\n  --cidfile=/run/ts-podtest/ctr-id \\\n  --cgroups=enabled \\\n  \
         --sdnotify=conmon \\\n  -d \\\n  --replace \\\n  \
         -e TS_EXTRA_ARGS='--advertise-tags=tag:container --accept-routes' \\\n  \
         -e TS_HOSTNAME=podtest \\\n  -e TS_SOCKET=/run/tailscale/tailscaled.sock \\\n  \
         -e TS_STATE_DIR=/var/lib/tailscale \\\n  \
         --env-file /run/secrets/ts-podtest.env \\\n  \
         -v /var/lib/tskeyctl-containers/podtest:/var/lib/tailscale \\\n  \
         -v /run/tskeyctl/ts-podtest:/run/tailscale \\\n  --rm \\\n  \
         --pull missing \\\n  docker.io/tailscale/tailscale:stable"
    );
    let app = &services["podman-podtest-app"];
    assert_eq!(
        app["after"],
        json!(["network-online.target", "podman-ts-podtest.service"])
    );
    assert_eq!(app["requires"], json!(["podman-ts-podtest.service"]));
    assert!(
        app["script"].as_str().expect("script").contains(
            " \\\n  '--network=container:ts-podtest' \\\n  docker.io/library/nginx:stable"
        ),
        "{}",
        app["script"]
    );
}

#[test]
fn containers_option_rejects_unknown_shared_apps_and_bad_tags() {
    let Some(e) = eval() else { return };
    let r = &e["rejected"];
    assert_eq!(
        r["containerUnknownApp"],
        json!([
            "services.tskeyctl.containers.a.apps: typo not in virtualisation.oci-containers.containers."
        ])
    );
    let twice = "also listed by another of services.tskeyctl.containers; a container joins one \
                 network namespace.";
    assert_eq!(
        r["containerAppTwice"],
        json!([
            format!("services.tskeyctl.containers.a.apps: web {twice}"),
            format!("services.tskeyctl.containers.b.apps: web {twice}")
        ])
    );
    assert_eq!(
        r["containerBadTags"],
        json!([
            "services.tskeyctl.containers.a.tags: every tag must start with \"tag:\" (got web).",
            "services.tskeyctl.keys.ts-a.mint.tags: every tag must start with \"tag:\" (got web)."
        ])
    );
}

/// The generated units of `containersLocal`, made runnable here.
pub(crate) struct Generated<'a> {
    pub(crate) host: &'a Host,
    pub(crate) podman: &'a Podman,
    /// The container name in the evaluated units (`podtest`, `web-ts`) and its unique stand-in.
    pub(crate) name: &'static str,
    pub(crate) token: String,
    /// Replacements applied first (the example's image, log driver and source).
    pub(crate) extra: Vec<(String, String)>,
    pub(crate) scripts: tempfile::TempDir,
    pub(crate) eval: &'a Value,
}

impl Generated<'_> {
    pub(crate) fn subst(&self, text: &str) -> String {
        let mut t = text.to_string();
        for (from, to) in &self.extra {
            t = t.replace(from, to);
        }
        let mut t = t
            .replace("/tmp/tskeyctl-podtest-out", s(&self.host.p("out")))
            .replace(self.name, &self.token)
            .replace(EXE, BIN)
            .replace(COREUTILS_MKDIR, "/bin/mkdir")
            .replace(
                "/run/tskeyctl/",
                &format!("{}/", s(&self.host.p("run/tskeyctl"))),
            )
            .replace(
                "/var/lib/tskeyctl-containers",
                s(&self.host.p("containers")),
            );
        // After the other paths: the temp root is not substituted twice.
        t = self
            .host
            .subst(&t)
            .replace(SOPS, s(&self.host.p("etc/tskeyctl/oauth.sops.yaml")));
        for (path, _) in self.eval["storeScripts"].as_object().expect("storeScripts") {
            let local = self.script_path(path);
            t = t.replace(&path.replace(self.name, &self.token), s(&local));
        }
        t
    }

    fn script_path(&self, store_path: &str) -> std::path::PathBuf {
        let name = store_path
            .split('/')
            .nth(3)
            .expect("store name")
            .replace(self.name, &self.token);
        self.scripts.path().join(name)
    }

    /// Writes `text` as a `sh -e` script (as NixOS's makeJobScript does with bash).
    fn script(&self, name: &str, text: &str) -> String {
        let path = self.scripts.path().join(name);
        std::fs::write(&path, format!("#!/bin/sh -e\n{}\n", self.subst(text))).expect("write");
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .expect("chmod");
        s(&path).to_string()
    }

    pub(crate) fn unit(&self, service: &str) -> Unit {
        for (path, text) in self.eval["storeScripts"].as_object().expect("scripts") {
            let local = self.script_path(path);
            std::fs::write(
                &local,
                format!("#!/bin/sh -e\n{}", self.subst(text.as_str().expect("text"))),
            )
            .expect("write");
            std::fs::set_permissions(&local, std::os::unix::fs::PermissionsExt::from_mode(0o700))
                .expect("chmod");
        }
        let svc = &self.eval["services"][service];
        let main = render_service(svc, &|t| self.subst(t));
        let start = self.script(
            &format!("{service}-start"),
            svc["script"].as_str().expect("script"),
        );
        let stop = self.script(
            &format!("{service}-pre-stop"),
            svc["preStop"].as_str().expect("preStop"),
        );
        let post = self.script(
            &format!("{service}-post-stop"),
            svc["postStop"].as_str().expect("postStop"),
        );
        // The module's ExecStopPost= (mkBefore) first, then postStop's.
        let (head, module_post) = split_stop_post(&main);
        let nixos = format!(
            "[Service]\nExecStart={start}\nExecStop={stop}\n{module_post}ExecStopPost={post}\n"
        );
        let name = format!("{}.service", service.replace(self.name, &self.token));
        Unit::parse(&name, &[&head, &nixos, &self.host.test_dropin(self.podman)])
    }
}

/// Moves the `ExecStopPost=` lines out of a rendered unit (to append them after postStop's).
fn split_stop_post(unit: &str) -> (String, String) {
    let (post, rest): (Vec<&str>, Vec<&str>) =
        unit.lines().partition(|l| l.starts_with("ExecStopPost="));
    (rest.join("\n") + "\n", post.join("\n") + "\n")
}

fn host_netns() -> String {
    std::fs::read_link("/proc/self/ns/net")
        .expect("netns")
        .display()
        .to_string()
}

#[test]
fn generated_container_units_run_under_podman() {
    let test = "generated_container_units_run_under_podman";
    let Some(e) = eval() else { return };
    let Some(podman) = podman_or_skip(test) else {
        return;
    };
    let host = Host::new(&["tag:container"]);
    let token = unique("podtest").replace('-', "");
    let g = Generated {
        host: &host,
        podman,
        name: "podtest",
        token: token.clone(),
        extra: Vec::new(),
        scripts: tempfile::tempdir().expect("tempdir"),
        eval: &e["containersLocal"],
    };
    assert_eq!(g.eval["failedAssertions"], json!([]));
    let ts_name = format!("ts-{token}");
    let app_name = format!("{token}-app");
    let _cleanup = Cleanup {
        podman,
        names: vec![app_name.clone(), ts_name.clone()],
    };
    let out = host.p("out");
    let env_path = host.p(&format!("run/secrets/ts-{token}.env"));
    let mut keys = Vec::new();
    let mut started = 0;
    // Two rounds: start both units in dependency order, check, stop both. The key is revoked on
    // stop, so the second start mints a new one despite reuseIfValidFor.
    for round in 0..2 {
        let mut ts = g.unit("podman-ts-podtest");
        let mut app = g.unit("podman-podtest-app");
        ts.start()
            .unwrap_or_else(|f| panic!("round {round}: ts start failed: {f:?}"));
        app.start()
            .unwrap_or_else(|f| panic!("round {round}: app start failed: {f:?}"));
        started += 2;

        let key = env_file_key(&env_path);
        assert_eq!(seen_hash(&out, "ts"), sha256_hex(key.as_bytes()));
        assert_eq!(
            wait_for(&out.join("ts.env")),
            format!(
                "{token}|/var/lib/tailscale|--advertise-tags=tag:container --accept-routes|{token}\n"
            )
        );
        let marker = host.p(&format!("containers/{token}/marker"));
        assert_eq!(
            wait_for(&marker),
            "state\n",
            "TS_STATE_DIR is the state directory"
        );
        assert_key_only_in_env(podman, &ts_name, &key, &host.secrets(), &["--env-file"]);
        // The app: in the node's network namespace (not the host's), without the key.
        assert_eq!(seen_hash(&out, "app"), sha256_hex(b""));
        let ns = wait_for(&out.join("ts.netns"));
        assert_eq!(wait_for(&out.join("app.netns")), ns);
        assert_ne!(ns.trim(), host_netns());
        assert_eq!(podman.netns(&app_name), podman.netns(&ts_name));
        keys.push(key);

        app.stop()
            .unwrap_or_else(|f| panic!("round {round}: app stop failed: {f:?}"));
        ts.stop()
            .unwrap_or_else(|f| panic!("round {round}: ts stop failed: {f:?}"));
        assert!(
            host.fake.live_keys().is_empty(),
            "round {round}: revoked on stop"
        );
        assert!(podman.gone(&ts_name) && podman.gone(&app_name));
        host.audit(&ts);
        host.audit(&app);
        for f in ["ts.sha256", "app.sha256", "ts.env", "ts.netns", "app.netns"] {
            std::fs::remove_file(out.join(f)).expect("rm");
        }
    }
    assert!(keys[0] != keys[1], "a new key after the revoke");
    // Compared, never printed: these are keys.
    assert!(
        host.fake.minted_keys() == keys,
        "the fake minted other keys"
    );

    // A provision failure: the ts container never starts, the message is on stderr.
    host.fake.inject(Route::CreateKey, Fault::Status(403), 10);
    let mut ts = g.unit("podman-ts-podtest");
    let failed = ts.start().expect_err("the start must fail");
    assert_eq!(failed.argv[..2], [BIN, "provision"]);
    assert_eq!(failed.code, 77, "{}", failed.stderr);
    assert!(failed.stderr.contains("403"), "{}", failed.stderr);
    assert!(ts.spawned("ExecStart").is_empty());
    assert!(!podman.exists(&ts_name));
    assert!(!Path::new(&format!("/run/ts-{token}")).exists());
    host.audit(&ts);
    figures(test, started, &host.fake);
}

#[test]
fn example_sidecar_unit_runs_under_podman() {
    let test = "example_sidecar_unit_runs_under_podman";
    let Some(e) = eval() else { return };
    let Some(podman) = podman_or_skip(test) else {
        return;
    };
    let Some(age) = peer("AGE_BIN", "age") else {
        return;
    };
    let host = Host::new(&["tag:container"]);
    // The example's age file (agenix style, to the native ssh-ed25519 recipient) holding
    // TS_API_CLIENT_SECRET=…, made for this fake and the demo host key.
    let secret = host
        .fake
        .add_oauth_client(&["auth_keys"], &["tag:container"]);
    let plain = host.p("sidecar-oauth.env");
    std::fs::write(&plain, format!("TS_API_CLIENT_SECRET={secret}\n")).expect("write");
    let age_file = host.p("sidecar-oauth.age");
    let mut pubkey = Host::host_key().into_os_string();
    pubkey.push(".pub");
    let st = std::process::Command::new(age)
        .arg("-R")
        .arg(&pubkey)
        .arg("-o")
        .arg(&age_file)
        .arg(&plain)
        .status()
        .expect("age");
    assert!(st.success());
    std::fs::remove_file(&plain).expect("rm");

    let example = &e["example"];
    let svc = &example["services"]["podman-web-ts"];
    let store_age = svc["serviceConfig"]["ExecStartPre"][3]
        .as_str()
        .and_then(|l| l.split(' ').nth(3))
        .expect("--source");
    let out = host.p("out");
    let report = format!(
        "-v {}:/out {} /bin/sh -c 'printf %s \"$TS_AUTHKEY\" | sha256sum > /out/web.sha256; \
         trap \"exit 0\" TERM; while true; do sleep 1; done'",
        s(&out),
        crate::podman_support::IMAGE
    );
    let token = unique("webts").replace('-', "");
    let g = Generated {
        host: &host,
        podman,
        name: "web-ts",
        token: token.clone(),
        // The stand-in image with a command that reports the key's hash, file logs (no
        // journald here), and this test's age file.
        extra: vec![
            ("docker.io/tailscale/tailscale:stable".into(), report),
            (
                "--log-driver=journald".into(),
                "--log-driver=k8s-file".into(),
            ),
            (store_age.to_string(), s(&age_file).to_string()),
        ],
        scripts: tempfile::tempdir().expect("tempdir"),
        eval: example,
    };
    let _cleanup = Cleanup {
        podman,
        names: vec![token.clone()],
    };
    let mut unit = g.unit("podman-web-ts");
    unit.start()
        .unwrap_or_else(|f| panic!("start failed: {f:?}"));
    let key = env_file_key(&host.p(&format!("run/secrets/{token}")));
    assert!(
        host.fake.minted_keys() == std::slice::from_ref(&key),
        "the fake minted other keys"
    );
    assert_eq!(seen_hash(&out, "web"), sha256_hex(key.as_bytes()));
    assert_key_only_in_env(podman, &token, &key, &host.secrets(), &["--env=TS_AUTHKEY"]);
    unit.stop().unwrap_or_else(|f| panic!("stop failed: {f:?}"));
    assert!(
        host.fake.live_keys().is_empty(),
        "revokeOnStop revoked the key"
    );
    assert!(podman.gone(&token));
    host.audit(&unit);
    figures(test, 1, &host.fake);
}

#[test]
fn generated_container_units_pass_systemd_analyze_verify() {
    let Some(e) = eval() else { return };
    let c = &e["containers"];
    let mut files = Vec::new();
    for name in ["podman-ts-podtest", "podman-podtest-app"] {
        let svc = &c["services"][name];
        // NixOS makes store scripts of script/preStop/postStop and pre-start; /bin/true here.
        let subst = |t: &str| {
            let mut t = crate::systemd_units::local_binaries(t);
            for path in c["storeScripts"].as_object().expect("storeScripts").keys() {
                t = t.replace(path.as_str(), "/bin/true");
            }
            t
        };
        let text = render_service(svc, &subst)
            + "\n[Service]\nExecStart=/bin/true\nExecStop=/bin/true\nExecStopPost=/bin/true\n";
        files.push((format!("{name}.service"), text));
    }
    let after_join = &c["services"]["tskeyctl-ts-podtest-after-join"];
    files.push((
        "tskeyctl-ts-podtest-after-join.service".into(),
        render_service(after_join, &crate::systemd_units::local_binaries),
    ));
    crate::systemd_units::verify_units(
        &files,
        &[
            "podman-ts-podtest.service",
            "podman-podtest-app.service",
            "tskeyctl-ts-podtest-after-join.service",
        ],
    );
}

/// The container's key is revoked once the tailscaled inside reports Running: a unit pulled in
/// by (and bound to) the container's unit, asking the socket the container shares with the host,
/// with the credentials of the container's ExecStopPost= revoke.
#[test]
fn container_after_join_unit_asks_the_sidecar_socket() {
    let Some(e) = eval() else { return };
    let unit = &e["containers"]["services"]["tskeyctl-ts-podtest-after-join"];
    assert_eq!(
        unit["description"],
        "Revoke Tailscale auth key ts-podtest once its container has joined"
    );
    assert_eq!(
        unit["after"],
        json!(["network-online.target", "podman-ts-podtest.service"])
    );
    assert_eq!(unit["wants"], json!(["network-online.target"]));
    assert_eq!(unit["wantedBy"], json!(["podman-ts-podtest.service"]));
    assert_eq!(
        unit["unitConfig"],
        json!({"BindsTo": "podman-ts-podtest.service"})
    );
    let sc = &unit["serviceConfig"];
    assert_eq!(
        sc["ExecStart"],
        format!(
            "{EXE} revoke --state-dir /var/lib/tskeyctl --name ts-podtest -i {HOST_KEY} \
             --after-join --timeout 300s --tailscaled-socket /run/tskeyctl/ts-podtest/tailscaled.sock"
        )
        .as_str()
    );
    // The same credentials as the container's own revoke on stop.
    let stop_post =
        e["containers"]["services"]["podman-ts-podtest"]["serviceConfig"]["ExecStopPost"][0]
            .as_str()
            .expect("ExecStopPost");
    assert!(
        sc["ExecStart"]
            .as_str()
            .expect("ExecStart")
            .starts_with(&stop_post[1..]),
        "{stop_post}"
    );
    assert_eq!(sc["Type"], "oneshot");
    assert_eq!(sc["TimeoutStartSec"], "420s");
    assert!(sc.get("RemainAfterExit").is_none() && sc.get("Restart").is_none());
    assert_eq!(sc["ReadWritePaths"], json!(["/var/lib/tskeyctl"]));
    assert_eq!(sc["ProtectSystem"], "strict");
    assert_eq!(
        sc["RestrictAddressFamilies"],
        json!(["AF_UNIX", "AF_INET", "AF_INET6"])
    );

    // revokeAfterJoin = false: no unit; the socket is shared all the same.
    let off = &e["containersNoAfterJoin"];
    assert_eq!(off["failedAssertions"], json!([]));
    let names: Vec<&String> = off["services"]
        .as_object()
        .expect("services")
        .keys()
        .collect();
    assert_eq!(
        names,
        ["podman-podtest-app", "podman-ts-podtest", "tailscaled"]
    );
    assert_eq!(
        off["services"]["podman-ts-podtest"]["script"],
        e["containers"]["services"]["podman-ts-podtest"]["script"]
    );
}
