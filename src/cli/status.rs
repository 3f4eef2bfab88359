//! `tskeyctl status`: what was provisioned, whether the last run worked, when keys expire —
//! for a human (✓/✗ per key, like tailscale-manager's `status`), for scripts (`--json`), for
//! node_exporter's textfile collector (`--prometheus`, `-o FILE` written atomically, 0644) and
//! for a waybar custom module (`--waybar`).
//!
//! Exit codes (contract): 0 healthy, 1 a last run failed — or no state directory, or no record
//! under `--name` (a monitor must not read "nothing recorded" as healthy), 2 a key expired or
//! expires within `--warn`. When both happen, 1 wins: a failed run needs a person, an expiring key
//! may be renewed by the next timer run. `--waybar` exits 0 whatever the health (waybar hides a
//! module whose command fails); its `class` carries the health.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use clap::Args;
use serde::Serialize;

use super::{output_path, write_stdout};
use crate::error::Error;
use crate::log;
use crate::sink::{self, WriteOptions};
use crate::state::{self, Missing, Record, RunResult};

/// Show provisioned keys, their expiry and the last result.
#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
tskeyctl status\n  \
tskeyctl status --json | jq .\n  \
tskeyctl status --prometheus -o /var/lib/node_exporter/textfile/tskeyctl.prom\n  \
tskeyctl status --waybar\n\n\
Exit codes: 0 healthy, 1 a last run failed, no state directory, or no record under --name, \
2 a key expired or expires within --warn (--waybar: always 0, the class says it).")]
pub struct StatusArgs {
    /// State directory written by `provision`.
    #[arg(long, value_name = "DIR", default_value = super::manual::STATE_DIR)]
    state_dir: PathBuf,
    /// Only this key name.
    #[arg(long)]
    name: Option<String>,
    /// JSON output.
    #[arg(long, conflicts_with_all = ["prometheus", "waybar"])]
    json: bool,
    /// Prometheus textfile-collector output.
    #[arg(long, conflicts_with = "waybar")]
    prometheus: bool,
    /// One line of JSON for a waybar custom module (`"return-type": "json"`): text, alt,
    /// tooltip, class.
    #[arg(long)]
    waybar: bool,
    /// Write the report to FILE (atomically, mode 0644, even when unhealthy) instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
    /// Report (exit 2) keys that expire within this duration.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = humantime::parse_duration)]
    warn: Duration,
}

/// One key's health.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Health {
    Ok,
    Failed,
    Expiring,
    Expired,
    Revoked,
}

impl Health {
    fn of(r: &Record, warn: Duration, now: SystemTime) -> Health {
        if matches!(
            r.result,
            Some(RunResult::Error | RunResult::Pending | RunResult::Kept)
        ) {
            Health::Failed
        } else if r.revoked.is_some() {
            Health::Revoked
        } else {
            match r.expires_at() {
                Some(t) if t <= now => Health::Expired,
                // A window past the end of time: everything expires within it.
                Some(t) if now.checked_add(warn).is_none_or(|limit| t <= limit) => Health::Expiring,
                _ => Health::Ok,
            }
        }
    }

    fn exit_code(self) -> u8 {
        match self {
            Health::Ok | Health::Revoked => 0,
            Health::Failed => 1,
            Health::Expiring | Health::Expired => 2,
        }
    }
}

#[derive(Serialize)]
struct JsonKey<'a> {
    health: Health,
    #[serde(flatten)]
    record: &'a Record,
}

/// The records asked for, and what is missing (a missing state directory, an unknown name).
fn load(a: &StatusArgs) -> Result<(Vec<Record>, Option<Missing>), Error> {
    if let Err(m) = state::require_dir(&a.state_dir) {
        return Ok((Vec::new(), Some(m)));
    }
    let Some(n) = &a.name else {
        return Ok((state::list(&a.state_dir)?, None));
    };
    match state::read(&a.state_dir, n)? {
        Some(r) => Ok((vec![r], None)),
        None => {
            let names: Vec<String> = state::list(&a.state_dir)
                .unwrap_or_default()
                .into_iter()
                .map(|r| r.name)
                .collect();
            let known = if names.is_empty() {
                "none".to_string()
            } else {
                log::bounded::list(&names, ", ")
            };
            let missing = Missing::Name {
                dir: a.state_dir.clone(),
                name: n.clone(),
                known,
            };
            Ok((Vec::new(), Some(missing)))
        }
    }
}

pub fn status(a: StatusArgs) -> Result<ExitCode, Error> {
    let (records, missing) = load(&a)?;
    let now = SystemTime::now();
    let health: Vec<Health> = records.iter().map(|r| Health::of(r, a.warn, now)).collect();
    let code = if missing.is_some() || health.contains(&Health::Failed) {
        1
    } else {
        health.iter().map(|h| h.exit_code()).max().unwrap_or(0)
    };
    let problem = missing.as_ref().map(|m| m.to_string());
    let out = if a.json {
        let keys: Vec<JsonKey> = records
            .iter()
            .zip(&health)
            .map(|(record, &health)| JsonKey { health, record })
            .collect();
        let mut doc = serde_json::json!({ "healthy": code == 0, "exit_code": code, "keys": keys });
        if let Some(p) = &problem {
            doc["problem"] = p.as_str().into();
        }
        format!("{doc:#}\n")
    } else if a.prometheus {
        prometheus(&records, &health, code, now)
    } else if a.waybar {
        waybar(&records, &health, problem.as_deref(), now)
    } else if missing.is_some() {
        String::new()
    } else {
        human(&a, &records, &health, now)
    };
    match output_path(&a.output) {
        Some(path) => {
            // A textfile collector reads it as another user: 0644, replaced atomically.
            let write = WriteOptions {
                mode: 0o644,
                ..WriteOptions::default()
            };
            sink::write_atomic(path, out.as_bytes(), &write)?;
            log::info(format!("wrote {}", path.display()));
        }
        None => write_stdout(out.as_bytes())?,
    }
    match missing {
        Some(m) if a.waybar => {
            log::warn(m);
            Ok(ExitCode::from(0))
        }
        Some(m) => Err(m.into()),
        None if a.waybar => Ok(ExitCode::from(0)),
        None => Ok(ExitCode::from(code)),
    }
}

/// waybar's custom-module JSON, one line: `text` for the bar, `alt` (the health, for
/// `format-icons`), `tooltip` (the human summary), `class` (the health, for style.css).
fn waybar(records: &[Record], health: &[Health], problem: Option<&str>, now: SystemTime) -> String {
    let worst = if problem.is_some() {
        Health::Failed
    } else {
        health
            .iter()
            .copied()
            .max_by_key(|h| match h {
                Health::Revoked => 0,
                Health::Ok => 1,
                Health::Expiring => 2,
                Health::Expired => 3,
                Health::Failed => 4,
            })
            .unwrap_or(Health::Ok)
    };
    let alt = match worst {
        Health::Ok | Health::Revoked => "ok",
        Health::Failed => "failed",
        Health::Expiring => "expiring",
        Health::Expired => "expired",
    };
    let bad = health.iter().filter(|h| h.exit_code() != 0).count();
    let text = match (problem, bad) {
        (Some(_), _) => "ts ✗".to_string(),
        (None, 0) => format!("ts ✓{}", records.len()),
        (None, n) => format!("ts ✗{n}/{}", records.len()),
    };
    let tooltip = match problem {
        Some(p) => p.to_string(),
        None if records.is_empty() => "no keys provisioned".to_string(),
        None => {
            let mut t = String::new();
            for (r, h) in records.iter().zip(health) {
                let _ = write!(t, "{} {}", mark(*h), r.name);
                if let Some(e) = r.expires_at() {
                    if e > now {
                        let _ = write!(t, ": expires in {}", left(e, now));
                    } else {
                        let _ = write!(t, ": expired");
                    }
                }
                if let (Health::Failed, Some(e)) = (h, &r.error) {
                    let _ = write!(t, ": {e}");
                }
                t.push('\n');
            }
            t.trim_end().to_string()
        }
    };
    let doc = serde_json::json!({ "text": text, "alt": alt, "tooltip": tooltip, "class": alt });
    format!("{doc}\n")
}

fn mark(h: Health) -> &'static str {
    match h {
        Health::Ok => "✓",
        Health::Revoked => "○",
        _ => "✗",
    }
}

/// How long until `t`, in whole seconds, as humantime prints it.
fn left(t: SystemTime, now: SystemTime) -> humantime::FormattedDuration {
    humantime::format_duration(Duration::from_secs(
        t.duration_since(now).map(|d| d.as_secs()).unwrap_or(0),
    ))
}

fn human(a: &StatusArgs, records: &[Record], health: &[Health], now: SystemTime) -> String {
    if records.is_empty() {
        return format!("no keys provisioned under {}\n", a.state_dir.display());
    }
    let mut s = String::new();
    for (r, h) in records.iter().zip(health) {
        let _ = write!(s, "{} {}  {}", mark(*h), r.name, r.out.display());
        if let Some(id) = &r.key_id {
            let _ = write!(s, "  key {id}");
        }
        match (h, r.expires_at(), &r.expires) {
            (Health::Revoked, _, _) => {
                let when = r.revoked.map(|t| t.to_string());
                let _ = write!(s, "  revoked {}", when.as_deref().unwrap_or("?"));
            }
            (_, Some(t), Some(e)) if t > now => {
                let _ = write!(s, "  expires {e} (in {})", left(t, now));
            }
            (_, Some(_), Some(e)) => {
                let _ = write!(s, "  EXPIRED {e}");
            }
            _ => {}
        }
        if !r.tags.is_empty() {
            let _ = write!(s, "  tags {}", r.tags.join(","));
        }
        let _ = write!(
            s,
            "  last run {} {}",
            r.result.map_or("never", result_name),
            r.last_run.map(|t| t.to_string()).unwrap_or_default()
        );
        if let (Health::Failed, Some(e)) = (h, &r.error) {
            let _ = write!(s, " (exit {}): {e}", r.exit_code.unwrap_or(1));
        }
        s.push('\n');
    }
    s
}

/// How a result reads in the human summary (as in the record).
fn result_name(r: RunResult) -> &'static str {
    match r {
        RunResult::Ok => "ok",
        RunResult::Reused => "reused",
        RunResult::Error => "error",
        RunResult::Pending => "pending",
        RunResult::Skipped => "skipped",
        RunResult::Kept => "kept",
    }
}

fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn prometheus(records: &[Record], health: &[Health], code: u8, now: SystemTime) -> String {
    type Metric = (
        &'static str,
        &'static str,
        fn(&Record, Health) -> Option<f64>,
    );
    let metrics: [Metric; 5] = [
        (
            "tskeyctl_last_run_success",
            "1 if the last provision run for the key succeeded.",
            |r, _| {
                Some(
                    if matches!(
                        r.result,
                        Some(RunResult::Error | RunResult::Pending | RunResult::Kept)
                    ) {
                        0.0
                    } else {
                        1.0
                    },
                )
            },
        ),
        (
            "tskeyctl_last_run_timestamp_seconds",
            "Unix time of the last provision run.",
            |r, _| r.last_run.map(|t| secs(t.0) as f64),
        ),
        (
            "tskeyctl_key_expiry_timestamp_seconds",
            "Unix time at which the current key expires.",
            |r, _| r.expires_at().map(|t| secs(t) as f64),
        ),
        (
            "tskeyctl_key_revoked",
            "1 if the current key was revoked.",
            |r, _| Some(if r.revoked.is_some() { 1.0 } else { 0.0 }),
        ),
        (
            "tskeyctl_key_healthy",
            "1 if the key is usable and not within the warning window.",
            |_, h| Some(if h.exit_code() == 0 { 1.0 } else { 0.0 }),
        ),
    ];
    let mut s = String::new();
    for (name, help, value) in metrics {
        let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (r, &h) in records.iter().zip(health) {
            if let Some(v) = value(r, h) {
                let _ = writeln!(s, "{name}{{name=\"{}\"}} {v}", label(&r.name));
            }
        }
    }
    let _ = writeln!(
        s,
        "# HELP tskeyctl_status_exit_code The exit code of this status run (0 healthy, 1 a failed \
run or nothing recorded, 2 expiring).\n# TYPE tskeyctl_status_exit_code gauge\n\
tskeyctl_status_exit_code {code}"
    );
    let _ = writeln!(
        s,
        "# HELP tskeyctl_status_timestamp_seconds Unix time this report was made.\n# TYPE tskeyctl_status_timestamp_seconds gauge\ntskeyctl_status_timestamp_seconds {}",
        secs(now)
    );
    s
}
