//! A real podman for the container tests, set up the way it runs on these machines: root, the
//! `runc` runtime, cgroupfs, no default ulimits (a containers.conf of our own via
//! `CONTAINERS_CONF`, the system one untouched), and a local busybox image made with
//! `podman import` (no registry is reachable). It stands in for `tailscale/tailscale`.
//!
//! Where podman cannot start a container (not root, podman/runc/busybox missing, the runtime
//! refuses) the tests print a NOTICE and skip; under `CI=true` a missing program fails
//! (`.ci/run` installs podman, runc and busybox-static).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;

use crate::fake_tailscale::random_alnum;
use crate::util::{find_program, in_ci, is_root};

/// The stand-in image, imported from a busybox rootfs.
pub const IMAGE: &str = "localhost/tskeyctl-test-busybox:1";

/// The applets the stand-in image offers.
const APPLETS: [&str; 13] = [
    "sh",
    "cat",
    "echo",
    "env",
    "ls",
    "sleep",
    "sha256sum",
    "readlink",
    "printf",
    "true",
    "test",
    "mkdir",
    "hostname",
];

pub struct Podman {
    pub bin: PathBuf,
    /// The containers.conf of the tests (`CONTAINERS_CONF`).
    pub conf: PathBuf,
    _dir: tempfile::TempDir,
}

impl Podman {
    /// `podman ARGS` with the tests' containers.conf.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.env("CONTAINERS_CONF", &self.conf).args(args);
        c
    }

    pub fn output(&self, args: &[&str]) -> Output {
        self.cmd(args)
            .output()
            .unwrap_or_else(|e| panic!("podman {args:?}: {e}"))
    }

    /// `podman inspect NAME` (the first object), or None when there is no such container.
    pub fn inspect(&self, name: &str) -> Option<Value> {
        let o = self.output(&["container", "inspect", name]);
        if !o.status.success() {
            return None;
        }
        let v: Value = serde_json::from_slice(&o.stdout).expect("inspect JSON");
        v.get(0).cloned()
    }

    pub fn exists(&self, name: &str) -> bool {
        self.output(&["container", "exists", name]).status.success()
    }

    /// Whether the container is gone within 10 s (`--rm` removes it after the stop returned).
    pub fn gone(&self, name: &str) -> bool {
        for _ in 0..100 {
            if !self.exists(name) {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        false
    }

    /// The network namespace of a running container, as seen from the host.
    pub fn netns(&self, name: &str) -> String {
        let pid = self.inspect(name).expect("container")["State"]["Pid"]
            .as_i64()
            .expect("pid");
        std::fs::read_link(format!("/proc/{pid}/ns/net"))
            .expect("netns")
            .display()
            .to_string()
    }
}

/// Removes the named containers (`podman rm -f`) when dropped: the tests clean up even when an
/// assertion fails.
pub struct Cleanup<'a> {
    pub podman: &'a Podman,
    pub names: Vec<String>,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        for name in &self.names {
            let _ = self
                .podman
                .output(&["rm", "-f", "-t", "0", "--ignore", name]);
        }
    }
}

/// A container name no other test (or run) uses.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}{}",
        std::process::id(),
        random_alnum(6).to_lowercase()
    )
}

fn setup() -> Result<Podman, String> {
    if !is_root() {
        return Err("needs root (podman runs containers as root here)".into());
    }
    let programs = |name: &str, env: &str| {
        find_program(env, name).ok_or_else(|| format!("{name} not found (set {env} or install it)"))
    };
    let bin = programs("podman", "PODMAN_BIN")?;
    let runc = programs("runc", "RUNC_BIN")?;
    let busybox = programs("busybox", "BUSYBOX_BIN")?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let conf = dir.path().join("containers.conf");
    std::fs::write(
        &conf,
        format!(
            "[containers]\n# podman's defaults make the runtime call setrlimit, refused here\n\
             default_ulimits = []\n\n[engine]\n# no systemd as PID 1\ncgroup_manager = \"cgroupfs\"\n\
             runtime = \"runc\"\n\n[engine.runtimes]\nrunc = [\"{}\"]\n",
            runc.display()
        ),
    )
    .map_err(|e| e.to_string())?;
    let podman = Podman {
        bin,
        conf,
        _dir: dir,
    };
    import_image(&podman, &busybox)?;
    let o = podman.output(&["run", "--rm", "--network=none", IMAGE, "/bin/true"]);
    if !o.status.success() {
        return Err(format!(
            "podman cannot start a container here: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        ));
    }
    Ok(podman)
}

/// Imports the stand-in image unless an earlier run left one with every applet (re-importing
/// each run would leave the old image behind untagged).
fn import_image(podman: &Podman, busybox: &Path) -> Result<(), String> {
    let check = format!(
        "for a in {}; do test -e /bin/$a || exit 1; done",
        APPLETS.join(" ")
    );
    if podman.output(&["image", "exists", IMAGE]).status.success()
        && podman
            .output(&[
                "run",
                "--rm",
                "--network=none",
                IMAGE,
                "/bin/sh",
                "-c",
                &check,
            ])
            .status
            .success()
    {
        return Ok(());
    }
    let root = podman._dir.path().join("rootfs");
    let bin = root.join("bin");
    std::fs::create_dir_all(&bin).map_err(|e| e.to_string())?;
    std::fs::copy(busybox, bin.join("busybox")).map_err(|e| e.to_string())?;
    for applet in APPLETS {
        std::os::unix::fs::symlink("busybox", bin.join(applet)).map_err(|e| e.to_string())?;
    }
    for d in ["tmp", "proc", "sys", "dev", "etc", "run"] {
        std::fs::create_dir_all(root.join(d)).map_err(|e| e.to_string())?;
    }
    let tar = podman._dir.path().join("rootfs.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(&root)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .map_err(|e| format!("tar: {e}"))?;
    if !st.success() {
        return Err("tar failed".into());
    }
    let o = podman.output(&["import", &tar.display().to_string(), IMAGE]);
    if !o.status.success() {
        return Err(format!(
            "podman import: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        ));
    }
    Ok(())
}

/// The podman of the tests, set up once; `None` after a NOTICE when it cannot run containers
/// (as root under `CI=true`, where `.ci/run` installed everything, that is a failure).
pub fn podman_or_skip(test: &str) -> Option<&'static Podman> {
    static PODMAN: OnceLock<Result<Podman, String>> = OnceLock::new();
    match PODMAN.get_or_init(setup) {
        Ok(p) => Some(p),
        Err(why) => {
            assert!(!(in_ci() && is_root()), "CI=true but {why}");
            eprintln!("NOTICE: {test}: skipped, {why}");
            None
        }
    }
}
