//! Unit definitions as evaluated by tests/nix/eval.nix, written out the way NixOS renders them
//! (lists repeat the key, booleans are `true`/`false`, an empty string clears a setting), so that
//! `systemd-analyze verify` can judge what the module generates.

use serde_json::Value;

/// One `Key=value` line per value, as NixOS renders unit options: lists repeat the key, booleans
/// are `true`/`false`, an empty string clears the setting.
fn render_entries(
    section: &str,
    entries: &[(&str, &Value)],
    subst: &dyn Fn(&str) -> String,
) -> String {
    let mut s = format!("[{section}]\n");
    for (key, value) in entries {
        let values: Vec<&Value> = match value {
            Value::Array(items) => items.iter().collect(),
            Value::Null => Vec::new(),
            other => vec![other],
        };
        for v in values {
            let text = match v {
                Value::Bool(b) => b.to_string(),
                Value::Number(n) => n.to_string(),
                Value::String(s) => subst(s),
                other => panic!("unexpected unit value for {key}: {other}"),
            };
            s.push_str(&format!("{key}={text}\n"));
        }
    }
    s
}

fn object_entries(v: &Value) -> Vec<(&str, &Value)> {
    v.as_object()
        .map(|m| m.iter().map(|(k, v)| (k.as_str(), v)).collect())
        .unwrap_or_default()
}

/// A `.service` file from the eval summary of one service (see tests/nix/eval.nix).
pub fn render_service(svc: &Value, subst: &dyn Fn(&str) -> String) -> String {
    let mut unit: Vec<(&str, &Value)> = vec![("Description", &svc["description"])];
    unit.extend([
        ("After", &svc["after"]),
        ("Wants", &svc["wants"]),
        ("Before", &svc["before"]),
    ]);
    unit.extend(object_entries(&svc["unitConfig"]));
    format!(
        "{}\n{}\n{}",
        render_entries("Unit", &unit, subst),
        render_entries("Service", &object_entries(&svc["serviceConfig"]), subst),
        render_entries("Install", &[("WantedBy", &svc["wantedBy"])], subst)
    )
}

/// A `.timer` or `.path` file: `section` is `Timer` or `Path`, `config` its settings.
pub fn render_trigger(section: &str, config: &Value, wanted_by: &Value) -> String {
    let id = |s: &str| s.to_string();
    format!(
        "{}\n{}",
        render_entries(section, &object_entries(config), &id),
        render_entries("Install", &[("WantedBy", wanted_by)], &id)
    )
}
