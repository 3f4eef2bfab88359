//! The after-join revoke of `services.tskeyctl.containers.<name>` run under the real podman:
//! the generated container unit starts `ts-<name>` with the host directory of its tailscaled
//! socket bind-mounted at TS_SOCKET's directory, a fake tailscaled LocalAPI (`tailscaled`'s
//! `FakeLocalApi`) listens at the host side of that socket, and the generated
//! `tskeyctl-ts-<name>-after-join.service` — its ExecStart= run by `unit_runner` — waits through
//! NeedsLogin for Running and revokes the key while the container keeps running; the container's
//! own revoke on stop then finds it already revoked. When tailscaled never reports Running, the
//! after-join unit fails with 75, keeps the key, and the revoke on stop still removes it.
//!
//! The units come from the case `containersLocal` of tests/nix/cases.nix, made runnable by
//! `podman_module::Generated` (local paths, a unique container name, the fake API).

use crate::nix_support::eval;
use crate::nix_support::units::render_service;
use crate::podman_module::Generated;
use crate::podman_sidecar::{Host, figures, wait_for};
use crate::podman_support::{Cleanup, Podman, podman_or_skip, unique};
use crate::tailscaled::{Answer, FakeLocalApi};
use crate::unit_runner::{Spawned, Unit};
use crate::util::{BIN, s};

/// The sandbox settings of the after-join unit: systemd enforces them (the eval test in
/// `podman_module` asserts each); the runner, which has no sandbox, runs the rest of the unit.
const SANDBOX: [&str; 23] = [
    "CapabilityBoundingSet",
    "LimitCORE",
    "LockPersonality",
    "MemoryDenyWriteExecute",
    "NoNewPrivileges",
    "PrivateDevices",
    "PrivateTmp",
    "ProtectClock",
    "ProtectControlGroups",
    "ProtectHome",
    "ProtectHostname",
    "ProtectKernelLogs",
    "ProtectKernelModules",
    "ProtectKernelTunables",
    "ProtectSystem",
    "ReadWritePaths",
    "RestrictAddressFamilies",
    "RestrictNamespaces",
    "RestrictRealtime",
    "RestrictSUIDSGID",
    "SystemCallArchitectures",
    "SystemCallFilter",
    "UMask",
];

/// `tskeyctl-ts-podtest-after-join.service` as generated, without its sandbox settings.
fn after_join_unit(g: &Generated) -> Unit {
    let svc = &g.eval["services"]["tskeyctl-ts-podtest-after-join"];
    let rendered = render_service(svc, &|t| g.subst(t));
    let text: String = rendered
        .lines()
        .filter(|l| {
            !SANDBOX
                .iter()
                .any(|k| l.strip_prefix(k).is_some_and(|r| r.starts_with('=')))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    Unit::parse(
        &format!("tskeyctl-ts-{}-after-join.service", g.token),
        &[&text, &g.host.test_dropin(g.podman)],
    )
}

/// The generated units of `containersLocal` for one test, with `extra` replacements.
fn generated<'a>(
    e: &'a serde_json::Value,
    host: &'a Host,
    podman: &'a Podman,
    extra: Vec<(String, String)>,
) -> Generated<'a> {
    let g = Generated {
        host,
        podman,
        name: "podtest",
        token: unique("podtest").replace('-', ""),
        extra,
        scripts: tempfile::tempdir().expect("tempdir"),
        eval: &e["containersLocal"],
    };
    assert_eq!(g.eval["failedAssertions"], serde_json::json!([]));
    g
}

/// The one command of a setting, which must have exited 0.
fn only_ok<'a>(unit: &'a Unit, setting: &str) -> &'a Spawned {
    let runs = unit.spawned(setting);
    assert_eq!(runs.len(), 1, "{setting}: {runs:?}");
    assert_eq!(runs[0].code, 0, "{setting}: {}", runs[0].stderr);
    runs[0]
}

/// The revoke of the container's ExecStopPost= (the module's, ordered first).
fn stop_post_revoke(unit: &Unit) -> &Spawned {
    let post = unit.spawned("ExecStopPost");
    assert_eq!(post[0].argv[..2], [BIN, "revoke"], "{post:?}");
    post[0]
}

/// Starts the container unit; the host side of its socket directory exists, 0700, and the
/// container sees a socket made there at its TS_SOCKET.
fn start_with_socket(g: &Generated, script: &[Answer]) -> (Unit, FakeLocalApi) {
    let mut ts = g.unit("podman-ts-podtest");
    ts.start()
        .unwrap_or_else(|f| panic!("ts start failed: {f:?}"));
    let dir = g.host.p(&format!("run/tskeyctl/ts-{}", g.token));
    let mode = std::fs::metadata(&dir).expect("socket dir").permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o7777,
        0o700
    );
    let api = FakeLocalApi::start(&dir.join("tailscaled.sock"), script);
    assert_eq!(
        wait_for(&g.host.p("out/ts.socket")),
        "/run/tailscale/tailscaled.sock\n",
        "the container sees the host's socket at TS_SOCKET"
    );
    (ts, api)
}

#[test]
fn container_key_is_revoked_once_its_tailscaled_runs() {
    let test = "container_key_is_revoked_once_its_tailscaled_runs";
    let Some(e) = eval() else { return };
    let Some(podman) = podman_or_skip(test) else {
        return;
    };
    let host = Host::new(&["tag:container"]);
    let g = generated(e, &host, podman, Vec::new());
    let ts_name = format!("ts-{}", g.token);
    let _cleanup = Cleanup {
        podman,
        names: vec![ts_name.clone()],
    };
    let (mut ts, api) = start_with_socket(
        &g,
        &[
            Answer::State("NeedsLogin"),
            Answer::State("NeedsLogin"),
            Answer::State("Running"),
        ],
    );
    let live = host.fake.live_keys();
    assert_eq!(live.len(), 1, "the container's key");
    let id = &live[0].0;

    let mut aj = after_join_unit(&g);
    aj.start()
        .unwrap_or_else(|f| panic!("after-join failed: {f:?}"));
    let run = only_ok(&aj, "ExecStart");
    let socket = g
        .host
        .p(&format!("run/tskeyctl/ts-{}/tailscaled.sock", g.token));
    assert_eq!(
        run.argv[run.argv.len() - 5..],
        [
            "--after-join",
            "--timeout",
            "300s",
            "--tailscaled-socket",
            s(&socket)
        ]
    );
    assert_eq!(
        api.heads().len(),
        3,
        "polled through NeedsLogin until Running"
    );
    assert!(host.fake.live_keys().is_empty(), "revoked once joined");
    assert!(podman.exists(&ts_name), "while the container runs on");
    let deletes = |fake: &crate::fake_tailscale::FakeTailscale| {
        fake.requests()
            .into_iter()
            .filter(|r| r.method == "DELETE" && r.path.ends_with(&format!("/keys/{id}")))
            .count()
    };
    assert_eq!(deletes(&host.fake), 1);

    // The stop: the revoke in ExecStopPost= finds the key already revoked, asks nothing.
    ts.stop()
        .unwrap_or_else(|f| panic!("ts stop failed: {f:?}"));
    let post = stop_post_revoke(&ts);
    assert_eq!(post.code, 0, "{}", post.stderr);
    let said = format!("{}{}", post.stdout, post.stderr);
    assert!(
        said.contains(&format!("ts-{}: key {id} was already revoked at ", g.token)),
        "{said}"
    );
    assert_eq!(deletes(&host.fake), 1, "no second revoke");
    assert!(podman.gone(&ts_name));
    host.audit(&ts);
    host.audit(&aj);
    figures(test, 1, &host.fake);
}

#[test]
fn container_key_is_kept_when_its_tailscaled_never_runs_and_revoked_on_stop() {
    let test = "container_key_is_kept_when_its_tailscaled_never_runs_and_revoked_on_stop";
    let Some(e) = eval() else { return };
    let Some(podman) = podman_or_skip(test) else {
        return;
    };
    let host = Host::new(&["tag:container"]);
    // A short wait instead of joinTimeoutSec's 300s.
    let g = generated(
        e,
        &host,
        podman,
        vec![("--timeout 300s".into(), "--timeout 2s".into())],
    );
    let ts_name = format!("ts-{}", g.token);
    let _cleanup = Cleanup {
        podman,
        names: vec![ts_name.clone()],
    };
    let (mut ts, api) = start_with_socket(&g, &[Answer::State("NeedsLogin")]);
    let mut aj = after_join_unit(&g);
    let failed = aj.start().expect_err("no Running within 2s");
    assert_eq!(failed.argv[..2], [BIN, "revoke"]);
    assert_eq!(failed.code, 75, "{}", failed.stderr);
    assert!(
        failed.stderr.contains(
            "tailscaled did not report Running within 2s (last: NeedsLogin); the key is kept"
        ),
        "{}",
        failed.stderr
    );
    assert!(api.heads().len() >= 2, "polled more than once");
    assert_eq!(host.fake.live_keys().len(), 1, "kept");

    ts.stop()
        .unwrap_or_else(|f| panic!("ts stop failed: {f:?}"));
    let post = stop_post_revoke(&ts);
    assert_eq!(post.code, 0, "{}", post.stderr);
    assert!(host.fake.live_keys().is_empty(), "revoked on stop");
    assert!(podman.gone(&ts_name));
    host.audit(&ts);
    host.audit(&aj);
    figures(test, 1, &host.fake);
}
