//! The podman sidecar path end to end under a real podman: contrib/systemd/podman-sidecar.conf
//! as a drop-in of a stand-in container unit, run from the unit text by `unit_runner` the way
//! systemd would (ExecStartPre → ExecStart, then ExecStop → ExecStopPost), against the fake API.
//!
//! The unit text is used as shipped; the runner only substitutes where things live (tskeyctl,
//! /etc/tskeyctl, /run/secrets, /var/lib/tskeyctl and the host key, into a temp dir) and adds
//! one test drop-in with `Environment=TAILSCALE_BASE_URL=…` (the fake on loopback) and
//! `CONTAINERS_CONF=…` (see `podman_support`). No container talks to the fake: tskeyctl runs on
//! the host in ExecStartPre=, as it would under systemd, so the containers can have
//! `--network=none` (a network namespace of their own, loopback only), which also shows that the
//! app container really shares the sidecar's namespace and not the host's.
//!
//! The stand-in image's command writes the SHA-256 of `$TS_AUTHKEY` into a bind mount; the tests
//! compare hashes and never print a key.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::fake_tailscale::{FakeTailscale, Fault, Route};
use crate::podman_support::{Cleanup, IMAGE, Podman, podman_or_skip, unique};
use crate::unit_runner::Unit;
use crate::util::{BIN, assert_no_secret, repo, s};

/// Totals over every podman test of this run: containers started, keys minted, keys revoked.
static FIGURES: [AtomicUsize; 3] = [
    AtomicUsize::new(0),
    AtomicUsize::new(0),
    AtomicUsize::new(0),
];

/// Adds one test's figures and prints the running totals (the last line printed is the total).
pub fn figures(test: &str, started: usize, fake: &FakeTailscale) {
    let minted = fake.minted_keys().len();
    let revoked = minted - fake.live_keys().len();
    let [c, m, r] = &FIGURES;
    let c = c.fetch_add(started, Ordering::SeqCst) + started;
    let m = m.fetch_add(minted, Ordering::SeqCst) + minted;
    let r = r.fetch_add(revoked, Ordering::SeqCst) + revoked;
    eprintln!(
        "FIGURES {test}: {started} containers started, {minted} keys minted, {revoked} revoked; \
         podman tests so far: {c} started, {m} minted, {r} revoked"
    );
}

pub fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A host for one test: the fake API with an OAuth client for tag:container, a temp root for
/// /etc/tskeyctl, /run/secrets and /var/lib/tskeyctl, and the demo host key of
/// secrets.example (the source is encrypted to it).
pub struct Host {
    pub fake: FakeTailscale,
    pub dir: tempfile::TempDir,
}

impl Host {
    pub fn new(tags: &[&str]) -> Host {
        let fake = FakeTailscale::start();
        let dir = tempfile::tempdir().expect("tempdir");
        for d in ["etc/tskeyctl", "out"] {
            std::fs::create_dir_all(dir.path().join(d)).expect("mkdir");
        }
        let host = Host { fake, dir };
        let secret = host.fake.add_oauth_client(&["auth_keys"], tags);
        host.encrypt_source("oauth", &format!("client_secret: {secret}\n"));
        host
    }

    pub fn p(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn host_key() -> PathBuf {
        repo().join("secrets.example/host/ssh_host_ed25519_key")
    }

    /// etc/tskeyctl/NAME.sops.yaml: `plain` encrypted to the demo host key with `tskeyctl
    /// encrypt`.
    pub fn encrypt_source(&self, name: &str, plain: &str) -> PathBuf {
        let plain_path = self.p(&format!("{name}.plain.yaml"));
        std::fs::write(&plain_path, plain).expect("write");
        let out = std::process::Command::new(BIN)
            .args(["recipient", s(&Self::host_key())])
            .output()
            .expect("recipient");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let recipient = String::from_utf8(out.stdout).expect("utf8");
        let dest = self.p(&format!("etc/tskeyctl/{name}.sops.yaml"));
        let out = std::process::Command::new(BIN)
            .args([
                "encrypt",
                "--age",
                recipient.trim(),
                "-o",
                s(&dest),
                s(&plain_path),
            ])
            .output()
            .expect("encrypt");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::remove_file(&plain_path).expect("rm");
        dest
    }

    /// Where the unit text says things live → this host's temp root.
    pub fn subst(&self, text: &str) -> String {
        text.replace("/usr/local/bin/tskeyctl", BIN)
            .replace(
                "/etc/tskeyctl/",
                &format!("{}/", s(&self.p("etc/tskeyctl"))),
            )
            .replace("/run/secrets", s(&self.p("run/secrets")))
            .replace("/var/lib/tskeyctl", s(&self.p("state")))
            .replace("/etc/ssh/ssh_host_ed25519_key", s(&Self::host_key()))
    }

    /// The test's own drop-in: the fake API and the tests' containers.conf.
    pub fn test_dropin(&self, podman: &Podman) -> String {
        format!(
            "[Service]\nEnvironment=TAILSCALE_BASE_URL={} CONTAINERS_CONF={}\n",
            self.fake.url(),
            s(&podman.conf)
        )
    }

    /// Every secret of the fake plus every key it minted.
    pub fn secrets(&self) -> Vec<String> {
        let mut all = self.fake.secrets();
        all.extend(self.fake.minted_keys());
        all
    }

    /// No argv, stdout or stderr of the unit's commands holds a secret.
    pub fn audit(&self, unit: &Unit) {
        let secrets = self.secrets();
        for sp in &unit.log {
            let what = format!("{} {:?}", sp.setting, sp.argv.first());
            assert_no_secret(&format!("argv of {what}"), &sp.argv.join(" "), &secrets);
            assert_no_secret(&format!("stdout of {what}"), &sp.stdout, &secrets);
            assert_no_secret(&format!("stderr of {what}"), &sp.stderr, &secrets);
        }
    }
}

/// The contents of a file a container writes (complete once it ends in a newline).
pub fn wait_for(path: &Path) -> String {
    for _ in 0..200 {
        if let Ok(text) = std::fs::read_to_string(path)
            && text.ends_with('\n')
        {
            return text;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("the container never wrote {}", path.display())
}

/// The container's view of the key: the SHA-256 its command wrote into the bind mount.
pub fn seen_hash(out: &Path, name: &str) -> String {
    let text = wait_for(&out.join(format!("{name}.sha256")));
    text.split(' ').next().unwrap_or_default().to_string()
}

/// A container unit as `podman generate systemd --new` makes them (detached, removed on stop):
/// its command writes the hash of `$TS_AUTHKEY` (or of nothing) into OUT and waits.
fn container_unit(podman: &Podman, out: &Path, network: &str, pass_key: bool) -> String {
    let env = if pass_key { " --env=TS_AUTHKEY" } else { "" };
    format!(
        "[Unit]\nDescription=a container\n\n[Service]\n\
         ExecStart={podman} run -d --rm --replace --name %N --network={network}{env} -v {out}:/out \
         {IMAGE} /bin/sh -c 'printf %%s \"$${{TS_AUTHKEY}}\" | sha256sum > /out/%N.sha256; \
         trap \"exit 0\" TERM; while true; do sleep 1; done'\n\
         ExecStop={podman} stop -t 5 %N\n",
        podman = s(&podman.bin),
        out = s(out),
    )
}

fn contrib_dropin() -> String {
    std::fs::read_to_string(repo().join("contrib/systemd/podman-sidecar.conf"))
        .expect("contrib/systemd/podman-sidecar.conf")
}

/// The sidecar stand-in: the container unit, contrib's drop-in, the test drop-in, `extra`.
/// The credential is at /etc/tskeyctl/%N.sops.yaml, as the drop-in says.
fn sidecar(host: &Host, podman: &Podman, name: &str, extra: &[&str]) -> Unit {
    std::fs::copy(
        host.p("etc/tskeyctl/oauth.sops.yaml"),
        host.p(&format!("etc/tskeyctl/{name}.sops.yaml")),
    )
    .expect("copy source");
    let main = container_unit(podman, &host.p("out"), "none", true);
    let mut texts = vec![
        main,
        host.subst(&contrib_dropin()),
        host.test_dropin(podman),
    ];
    texts.extend(extra.iter().map(|t| t.to_string()));
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    Unit::parse(&format!("{name}.service"), &texts)
}

/// What podman recorded about the container holds the key only in its environment: not in the
/// command line it was created with (whose only `--env*` flags are `env_flags`), not in its
/// process's argv.
pub fn assert_key_only_in_env(
    podman: &Podman,
    name: &str,
    key: &str,
    secrets: &[String],
    env_flags: &[&str],
) {
    let inspect = podman.inspect(name).expect("the container runs");
    for field in [
        &inspect["Path"],
        &inspect["Args"],
        &inspect["Config"]["Cmd"],
        &inspect["Config"]["Entrypoint"],
        &inspect["Config"]["CreateCommand"],
    ] {
        assert_no_secret(
            &format!("podman inspect {name}"),
            &field.to_string(),
            secrets,
        );
    }
    let create: Vec<&str> = inspect["Config"]["CreateCommand"]
        .as_array()
        .expect("CreateCommand")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let flags: Vec<&str> = create
        .iter()
        .copied()
        .filter(|a| a.starts_with("--env"))
        .collect();
    assert_eq!(flags, env_flags, "the key goes in by name or file only");
    let env = inspect["Config"]["Env"].as_array().expect("Env");
    let in_env = env
        .iter()
        .filter_map(Value::as_str)
        .filter(|e| e.starts_with("TS_AUTHKEY="))
        .collect::<Vec<_>>();
    assert!(
        in_env.len() == 1 && in_env[0] == format!("TS_AUTHKEY={key}"),
        "Config.Env of {name} does not hold exactly the provisioned key"
    );
}

/// The env file: `TS_AUTHKEY=<key>\n`, 0600, root-owned; returns the key.
pub fn env_file_key(path: &Path) -> String {
    let meta = std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(meta.mode() & 0o7777, 0o600, "{}", path.display());
    assert_eq!((meta.uid(), meta.gid()), (0, 0), "{}", path.display());
    let text = std::fs::read_to_string(path).expect("read env file");
    let key = text
        .strip_prefix("TS_AUTHKEY=")
        .and_then(|k| k.strip_suffix('\n'))
        .expect("TS_AUTHKEY=<key>\\n");
    assert!(!key.contains('\n'));
    key.to_string()
}

#[test]
fn sidecar_unit_provisions_before_the_container_and_revokes_after_it() {
    let test = "sidecar_unit_provisions_before_the_container_and_revokes_after_it";
    let Some(podman) = podman_or_skip(test) else {
        return;
    };
    let host = Host::new(&["tag:container"]);
    let name = unique("tskeyctl-ts");
    let _cleanup = Cleanup {
        podman,
        names: vec![name.clone()],
    };
    let mut unit = sidecar(&host, podman, &name, &[]);
    unit.start()
        .unwrap_or_else(|f| panic!("start failed: {f:?}"));

    // ExecStartPre= ran mkdir and provision, in that order, then podman.
    let pre = unit.spawned("ExecStartPre");
    assert_eq!(pre.len(), 2);
    assert_eq!(pre[0].argv[0], "/bin/mkdir");
    assert_eq!(pre[1].argv[..2], [BIN, "provision"]);
    assert_eq!(unit.spawned("ExecStart").len(), 1);

    let minted = host.fake.minted_keys();
    assert_eq!(minted.len(), 1);
    let key = env_file_key(&host.p(&format!("run/secrets/{name}.env")));
    assert!(
        key == minted[0],
        "the env file does not hold the minted key"
    );
    assert_eq!(seen_hash(&host.p("out"), &name), sha256_hex(key.as_bytes()));
    assert_key_only_in_env(podman, &name, &key, &host.secrets(), &["--env=TS_AUTHKEY"]);
    // The key as the unit asked: ephemeral, single-use, pre-authorised, tag:container, 10 min.
    let (id, _) = host.fake.live_keys().pop().expect("a live key");
    let k = host.fake.key_json(&id).expect("key");
    let create = &k["capabilities"]["devices"]["create"];
    assert_eq!(create["ephemeral"], true);
    assert_eq!(create["reusable"], false);
    assert_eq!(create["preauthorized"], true);
    assert_eq!(create["tags"], serde_json::json!(["tag:container"]));
    assert_eq!(k["expirySeconds"], 600);

    unit.stop().unwrap_or_else(|f| panic!("stop failed: {f:?}"));
    let post = unit.spawned("ExecStopPost");
    assert_eq!(post[0].code, 0, "{}", post[0].stderr);
    assert!(host.fake.live_keys().is_empty(), "stopping revokes the key");
    assert!(podman.gone(&name), "--rm removed the container");
    host.audit(&unit);
    figures(test, 1, &host.fake);
}

#[test]
fn provision_failure_keeps_the_container_from_starting() {
    let test = "provision_failure_keeps_the_container_from_starting";
    let Some(podman) = podman_or_skip(test) else {
        return;
    };
    let host = Host::new(&["tag:container"]);
    host.fake.inject(Route::CreateKey, Fault::Status(403), 10);
    let name = unique("tskeyctl-ts");
    let _cleanup = Cleanup {
        podman,
        names: vec![name.clone()],
    };
    let mut unit = sidecar(&host, podman, &name, &[]);
    let failed = unit.start().expect_err("the start must fail");
    assert_eq!(failed.setting, "ExecStartPre");
    assert_eq!(failed.argv[..2], [BIN, "provision"]);
    assert_eq!(failed.code, 77, "{}", failed.stderr);
    assert!(failed.stderr.contains("403"), "{}", failed.stderr);
    assert!(unit.spawned("ExecStart").is_empty(), "podman must not run");
    assert!(!podman.exists(&name));
    assert!(!host.p(&format!("run/secrets/{name}.env")).exists());
    // systemd runs ExecStopPost= after a failed start; its `-` makes the failed revoke harmless.
    assert_eq!(unit.spawned("ExecStopPost").len(), 1);
    assert!(host.fake.minted_keys().is_empty());
    host.audit(&unit);
    figures(test, 0, &host.fake);
}

#[test]
fn restart_remints_after_revoke_and_reuses_without_it() {
    let test = "restart_remints_after_revoke_and_reuses_without_it";
    let Some(podman) = podman_or_skip(test) else {
        return;
    };
    let host = Host::new(&["tag:container"]);
    let name = unique("tskeyctl-ts");
    let _cleanup = Cleanup {
        podman,
        names: vec![name.clone()],
    };
    let env = host.p(&format!("run/secrets/{name}.env"));
    // As shipped: the stop revokes, so the next start mints a fresh key.
    let mut unit = sidecar(&host, podman, &name, &[]);
    let mut keys = Vec::new();
    for _ in 0..2 {
        unit.start()
            .unwrap_or_else(|f| panic!("start failed: {f:?}"));
        let key = env_file_key(&env);
        assert_eq!(seen_hash(&host.p("out"), &name), sha256_hex(key.as_bytes()));
        std::fs::remove_file(host.p(&format!("out/{name}.sha256"))).expect("rm");
        keys.push(key);
        unit.stop().unwrap_or_else(|f| panic!("stop failed: {f:?}"));
    }
    assert!(
        keys[0] != keys[1],
        "a restart after a revoke must mint a new key"
    );
    // Compared, never printed: these are keys.
    assert!(
        host.fake.minted_keys() == keys,
        "the fake minted other keys"
    );
    assert!(host.fake.live_keys().is_empty());
    host.audit(&unit);

    // A drop-in that clears ExecStopPost= (no revoke): within --reuse-if-valid-for the restart
    // hands the container the same key and makes no API call.
    let mut unit = sidecar(&host, podman, &name, &["[Service]\nExecStopPost=\n"]);
    let mut again = Vec::new();
    for _ in 0..2 {
        unit.start()
            .unwrap_or_else(|f| panic!("start failed: {f:?}"));
        let key = env_file_key(&env);
        assert_eq!(seen_hash(&host.p("out"), &name), sha256_hex(key.as_bytes()));
        std::fs::remove_file(host.p(&format!("out/{name}.sha256"))).expect("rm");
        again.push(key);
        unit.stop().unwrap_or_else(|f| panic!("stop failed: {f:?}"));
    }
    assert!(again[0] == again[1], "the restart must reuse the key");
    assert_eq!(host.fake.minted_keys().len(), 3);
    assert_eq!(host.fake.live_keys().len(), 1);
    host.audit(&unit);
    figures(test, 4, &host.fake);
}

#[test]
fn app_container_shares_the_sidecar_network_namespace_without_the_key() {
    let test = "app_container_shares_the_sidecar_network_namespace_without_the_key";
    let Some(podman) = podman_or_skip(test) else {
        return;
    };
    let host = Host::new(&["tag:container"]);
    let name = unique("tskeyctl-ts");
    let app_name = unique("tskeyctl-app");
    let _cleanup = Cleanup {
        podman,
        names: vec![app_name.clone(), name.clone()],
    };
    let mut sc = sidecar(&host, podman, &name, &[]);
    let app_text = container_unit(podman, &host.p("out"), &format!("container:{name}"), false);
    let mut app = Unit::parse(
        &format!("{app_name}.service"),
        &[&app_text, &host.test_dropin(podman)],
    );
    sc.start()
        .unwrap_or_else(|f| panic!("sidecar start failed: {f:?}"));
    app.start()
        .unwrap_or_else(|f| panic!("app start failed: {f:?}"));

    let key = env_file_key(&host.p(&format!("run/secrets/{name}.env")));
    let ns = podman.netns(&name);
    assert_eq!(podman.netns(&app_name), ns, "one network namespace");
    let own = std::fs::read_link("/proc/self/ns/net").expect("netns");
    assert_ne!(ns, own.display().to_string(), "not the host's namespace");
    let inspect = podman.inspect(&app_name).expect("app");
    let sidecar_id = podman.inspect(&name).expect("sidecar")["Id"].clone();
    assert_eq!(
        inspect["HostConfig"]["NetworkMode"],
        format!("container:{}", sidecar_id.as_str().expect("id"))
    );
    // The app never sees the key: its environment has no TS_AUTHKEY.
    assert_eq!(seen_hash(&host.p("out"), &app_name), sha256_hex(b""));
    assert_no_secret(
        "app env",
        &inspect["Config"]["Env"].to_string(),
        std::slice::from_ref(&key),
    );
    assert_eq!(seen_hash(&host.p("out"), &name), sha256_hex(key.as_bytes()));

    app.stop()
        .unwrap_or_else(|f| panic!("app stop failed: {f:?}"));
    sc.stop()
        .unwrap_or_else(|f| panic!("sidecar stop failed: {f:?}"));
    assert!(host.fake.live_keys().is_empty());
    host.audit(&sc);
    host.audit(&app);
    figures(test, 2, &host.fake);
}

/// The checks above can fail: a unit that expands the key into podman's argv
/// (`--env=TS_AUTHKEY=${TS_AUTHKEY}`) is caught by both the argv audit and the inspect check.
#[test]
fn key_in_podman_argv_is_caught() {
    let test = "key_in_podman_argv_is_caught";
    let Some(podman) = podman_or_skip(test) else {
        return;
    };
    let host = Host::new(&["tag:container"]);
    let name = unique("tskeyctl-ts");
    let _cleanup = Cleanup {
        podman,
        names: vec![name.clone()],
    };
    let leaky = "[Service]\nExecStart=\n".to_string()
        + &container_unit(podman, &host.p("out"), "none", true)
            .lines()
            .filter(|l| l.starts_with("ExecStart="))
            .collect::<String>()
            .replace("--env=TS_AUTHKEY", "--env=TS_AUTHKEY=${TS_AUTHKEY}")
        + "\n";
    let mut unit = sidecar(&host, podman, &name, &[&leaky]);
    unit.start()
        .unwrap_or_else(|f| panic!("start failed: {f:?}"));
    let key = env_file_key(&host.p(&format!("run/secrets/{name}.env")));
    let secrets = host.secrets();
    let audit = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| host.audit(&unit)));
    assert!(audit.is_err(), "the argv audit missed the key");
    let inspect = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        assert_key_only_in_env(podman, &name, &key, &secrets, &["--env=TS_AUTHKEY"])
    }));
    assert!(inspect.is_err(), "the inspect check missed the key");
    unit.stop().unwrap_or_else(|f| panic!("stop failed: {f:?}"));
    assert!(host.fake.live_keys().is_empty());
    figures(test, 1, &host.fake);
}
