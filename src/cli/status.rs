//! `tskeyctl status`: what was provisioned, whether the last run worked, when keys expire —
//! for a human (✓/✗ per key, like tailscale-manager's `status`), for scripts (`--json`) and for
//! node_exporter's textfile collector (`--prometheus`).
//!
//! Exit codes (contract): 0 healthy, 1 a last run failed, 2 a key expired or expires within
//! `--warn`. When both happen, 1 wins: a failed run needs a person, an expiring key may be renewed
//! by the next timer run.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use clap::Args;
use serde::Serialize;

use super::write_stdout;
use crate::error::Error;
use crate::state::{self, Record, RunResult};

/// Show provisioned keys, their expiry and the last result.
#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
tskeyctl status\n  \
tskeyctl status --json | jq .\n  \
tskeyctl status --prometheus > /var/lib/node_exporter/textfile/tskeyctl.prom")]
pub struct StatusArgs {
    /// State directory written by `provision`.
    #[arg(long, value_name = "DIR", default_value = "/var/lib/tskeyctl")]
    state_dir: PathBuf,
    /// Only this key name.
    #[arg(long)]
    name: Option<String>,
    /// JSON output.
    #[arg(long, conflicts_with = "prometheus")]
    json: bool,
    /// Prometheus textfile-collector output.
    #[arg(long)]
    prometheus: bool,
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

pub fn status(a: StatusArgs) -> Result<ExitCode, Error> {
    let records = match &a.name {
        Some(n) => state::read(&a.state_dir, n)?.into_iter().collect(),
        None => state::list(&a.state_dir)?,
    };
    let now = SystemTime::now();
    let health: Vec<Health> = records.iter().map(|r| Health::of(r, a.warn, now)).collect();
    let code = if health.contains(&Health::Failed) {
        1
    } else {
        health.iter().map(|h| h.exit_code()).max().unwrap_or(0)
    };
    let out = if a.json {
        let keys: Vec<JsonKey> = records
            .iter()
            .zip(&health)
            .map(|(record, &health)| JsonKey { health, record })
            .collect();
        let doc = serde_json::json!({ "healthy": code == 0, "exit_code": code, "keys": keys });
        format!("{doc:#}\n")
    } else if a.prometheus {
        prometheus(&records, &health, now)
    } else {
        human(&a, &records, &health, now)
    };
    write_stdout(out.as_bytes())?;
    Ok(ExitCode::from(code))
}

fn human(a: &StatusArgs, records: &[Record], health: &[Health], now: SystemTime) -> String {
    if records.is_empty() {
        return format!("no keys provisioned under {}\n", a.state_dir.display());
    }
    let mut s = String::new();
    for (r, h) in records.iter().zip(health) {
        let mark = match h {
            Health::Ok => "✓",
            Health::Revoked => "○",
            _ => "✗",
        };
        let _ = write!(s, "{mark} {}  {}", r.name, r.out.display());
        if let Some(id) = &r.key_id {
            let _ = write!(s, "  key {id}");
        }
        match (h, r.expires_at(), &r.expires) {
            (Health::Revoked, _, _) => {
                let when = r.revoked.map(|t| t.to_string());
                let _ = write!(s, "  revoked {}", when.as_deref().unwrap_or("?"));
            }
            (_, Some(t), Some(e)) if t > now => {
                let left = humantime::format_duration(Duration::from_secs(
                    t.duration_since(now).map(|d| d.as_secs()).unwrap_or(0),
                ));
                let _ = write!(s, "  expires {e} (in {left})");
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

fn prometheus(records: &[Record], health: &[Health], now: SystemTime) -> String {
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
        "# HELP tskeyctl_status_timestamp_seconds Unix time this report was made.\n# TYPE tskeyctl_status_timestamp_seconds gauge\ntskeyctl_status_timestamp_seconds {}",
        secs(now)
    );
    s
}
