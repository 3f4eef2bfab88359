//! A small stand-in for systemd's service manager, for running units where systemd is not PID 1.
//!
//! The podman tests need the sidecar path executed the way systemd would execute it, from the
//! unit text itself (contrib/systemd/podman-sidecar.conf, the units the NixOS module generates):
//! the main unit and its drop-ins are parsed in order, and `start` runs ExecStartPre= →
//! ExecStart=, `stop` runs ExecStop= → ExecStopPost= (also after a failed start, as systemd does).
//! It implements what those units use and refuses everything else loudly (a panic naming the
//! setting), so a unit that grows a setting this runner does not understand fails the test
//! instead of being run half-right:
//! - `[Service]` settings: `Environment=`, `EnvironmentFile=` (`-` optional; re-read before each
//!   command, as systemd does), `ExecStartPre=`, `ExecStart=`, `ExecStop=`, `ExecStopPost=` (an
//!   empty assignment resets the list), `RuntimeDirectory=` (made under /run before the start,
//!   removed after the stop), `User=root`; settings that only steer restarts, timeouts or
//!   readiness are accepted and have no effect here. `[Unit]`/`[Install]` are ordering only.
//! - command prefixes `-` (failure ignored) and `+` (full privileges: the runner runs as root);
//! - specifiers `%n`, `%N`, `%i`, `%%`; quoting with `"…"`/`'…'` and C escapes; `${VAR}` (one
//!   argument), `$VAR` as a word of its own (split at whitespace), `$$`.
//!
//! Every argv it spawns is recorded, so a test can prove that a secret appears in none of them.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

/// The PATH systemd gives services.
const SYSTEMD_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// One command line of an Exec*= setting.
#[derive(Clone, Debug)]
struct Exec {
    ignore_failure: bool,
    line: String,
}

/// One command the runner spawned.
#[derive(Clone, Debug)]
pub struct Spawned {
    pub setting: &'static str,
    pub argv: Vec<String>,
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// A parsed service unit (main file plus drop-ins).
#[derive(Debug)]
pub struct Unit {
    name: String,
    env: Vec<(String, String)>,
    env_files: Vec<(bool, String)>,
    runtime_dirs: Vec<String>,
    exec: BTreeMap<&'static str, Vec<Exec>>,
    /// Everything spawned so far, in order.
    pub log: Vec<Spawned>,
}

const EXEC_KEYS: [&str; 4] = ["ExecStartPre", "ExecStart", "ExecStop", "ExecStopPost"];
/// Settings that steer restarts, timeouts, readiness or resources: no effect on one run here.
const INERT: [&str; 11] = [
    "Type",
    "Restart",
    "RestartSec",
    "TimeoutStartSec",
    "TimeoutStopSec",
    "NotifyAccess",
    "RemainAfterExit",
    "RestartPreventExitStatus",
    "KillMode",
    "Delegate",
    "SyslogIdentifier",
];

impl Unit {
    /// Parses `texts` (the unit file, then its drop-ins in order) of the unit `name`
    /// (e.g. `web-ts.service`).
    pub fn parse(name: &str, texts: &[&str]) -> Unit {
        let mut unit = Unit {
            name: name.to_string(),
            env: Vec::new(),
            env_files: Vec::new(),
            runtime_dirs: Vec::new(),
            exec: EXEC_KEYS.iter().map(|k| (*k, Vec::new())).collect(),
            log: Vec::new(),
        };
        for text in texts {
            unit.parse_one(text);
        }
        unit
    }

    fn parse_one(&mut self, text: &str) {
        let mut section = String::new();
        let mut pending = String::new();
        for raw in text.lines() {
            // Continuation lines: a trailing backslash joins the next line (with a space).
            if let Some(head) = raw.strip_suffix('\\') {
                pending.push_str(head);
                pending.push(' ');
                continue;
            }
            let line = std::mem::take(&mut pending) + raw;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = s.to_string();
                continue;
            }
            let (key, value) = line
                .split_once('=')
                .unwrap_or_else(|| panic!("unit runner: not a setting: {line:?}"));
            let (key, value) = (key.trim(), value.trim());
            match section.as_str() {
                "Unit" | "Install" => {}
                "Service" => self.setting(key, value),
                other => panic!("unit runner: section [{other}] is not implemented"),
            }
        }
        assert!(
            pending.is_empty(),
            "unit runner: dangling continuation line"
        );
    }

    fn setting(&mut self, key: &str, value: &str) {
        let value = self.specifiers(value);
        if let Some(list) = EXEC_KEYS
            .iter()
            .find(|k| **k == key)
            .and_then(|k| self.exec.get_mut(k))
        {
            if value.is_empty() {
                list.clear();
                return;
            }
            let mut line = value.as_str();
            let mut ignore_failure = false;
            loop {
                match line.chars().next() {
                    Some('-') => ignore_failure = true,
                    // Full privileges: this runner runs everything as root without a sandbox.
                    Some('+') => {}
                    Some(c @ ('@' | ':' | '!' | '|')) => {
                        panic!(
                            "unit runner: the {c:?} command prefix is not implemented ({key}={value})"
                        )
                    }
                    _ => break,
                }
                line = &line[1..];
            }
            list.push(Exec {
                ignore_failure,
                line: line.to_string(),
            });
            return;
        }
        match key {
            "Environment" if value.is_empty() => self.env.clear(),
            "Environment" => {
                for word in split_words(&value) {
                    let (k, v) = word.split_once('=').unwrap_or_else(|| {
                        panic!("unit runner: Environment= word without '=': {word:?}")
                    });
                    self.env.push((k.to_string(), v.to_string()));
                }
            }
            "EnvironmentFile" if value.is_empty() => self.env_files.clear(),
            "EnvironmentFile" => match value.strip_prefix('-') {
                Some(path) => self.env_files.push((true, path.to_string())),
                None => self.env_files.push((false, value.clone())),
            },
            "RuntimeDirectory" => self
                .runtime_dirs
                .extend(value.split_whitespace().map(str::to_string)),
            "User" => assert_eq!(value, "root", "unit runner: only User=root is implemented"),
            k if INERT.contains(&k) => {}
            other => panic!("unit runner: {other}= is not implemented ({other}={value})"),
        }
    }

    /// Expands the specifiers the units use; any other is refused.
    fn specifiers(&self, value: &str) -> String {
        let prefix = self
            .name
            .rsplit_once('.')
            .map_or(self.name.as_str(), |(p, _)| p);
        let instance = prefix.split_once('@').map_or("", |(_, i)| i);
        let mut out = String::new();
        let mut chars = value.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('n') => out.push_str(&self.name),
                Some('N') => out.push_str(prefix),
                Some('i') => out.push_str(instance),
                Some('%') => out.push('%'),
                other => {
                    panic!("unit runner: specifier %{other:?} is not implemented in {value:?}")
                }
            }
        }
        out
    }

    /// The environment of a command: Environment=, then the EnvironmentFile= files as they are
    /// now (systemd reads them before each command).
    fn environment(&self) -> Vec<(String, String)> {
        let mut env = vec![("PATH".to_string(), SYSTEMD_PATH.to_string())];
        env.extend(self.env.iter().cloned());
        for (optional, path) in &self.env_files {
            match std::fs::read_to_string(path) {
                Ok(text) => env.extend(parse_env_file(path, &text)),
                Err(e) if *optional && e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => panic!("unit runner: EnvironmentFile={path}: {e}"),
            }
        }
        env
    }

    /// Runs the commands of one setting in order; `Err` = the first failure not prefixed `-`.
    fn run(&mut self, setting: &'static str) -> Result<(), Spawned> {
        let commands = self.exec[setting].clone();
        for exec in commands {
            let env = self.environment();
            let argv = expand(&exec.line, &env);
            assert!(
                argv[0].starts_with('/'),
                "unit runner: {setting}= needs an absolute program path: {:?}",
                argv[0]
            );
            let out = Command::new(&argv[0])
                .args(&argv[1..])
                .env_clear()
                .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .current_dir("/")
                .output()
                .unwrap_or_else(|e| panic!("unit runner: spawn {}: {e}", argv[0]));
            let spawned = Spawned {
                setting,
                argv,
                code: out.status.code().unwrap_or(-1),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            };
            self.log.push(spawned.clone());
            if spawned.code != 0 && !exec.ignore_failure {
                return Err(spawned);
            }
        }
        Ok(())
    }

    fn runtime_paths(&self) -> Vec<PathBuf> {
        self.runtime_dirs
            .iter()
            .map(|d| PathBuf::from("/run").join(d))
            .collect()
    }

    /// ExecStartPre= then ExecStart=. On a failure, systemd skips the rest of the start and runs
    /// ExecStopPost=; so does this, returning the failed command.
    pub fn start(&mut self) -> Result<(), Spawned> {
        for dir in self.runtime_paths() {
            std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        }
        let result = self
            .run("ExecStartPre")
            .and_then(|()| self.run("ExecStart"));
        if result.is_err() {
            // Recorded in the log; the start has failed either way.
            let _ = self.run("ExecStopPost");
            self.remove_runtime_dirs();
        }
        result
    }

    /// ExecStop= then ExecStopPost= (the latter runs even when the former fails).
    pub fn stop(&mut self) -> Result<(), Spawned> {
        let stop = self.run("ExecStop");
        let post = self.run("ExecStopPost");
        self.remove_runtime_dirs();
        stop.and(post)
    }

    fn remove_runtime_dirs(&self) {
        for dir in self.runtime_paths() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }

    /// The spawned commands of one setting.
    pub fn spawned(&self, setting: &str) -> Vec<&Spawned> {
        self.log.iter().filter(|s| s.setting == setting).collect()
    }
}

/// `KEY=VALUE` lines; `#`/`;` comments. Quoting and escapes are refused (tskeyctl writes none).
fn parse_env_file(path: &str, text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'))
        .map(|l| {
            let (k, v) = l
                .split_once('=')
                .unwrap_or_else(|| panic!("unit runner: {path}: a line without '='"));
            assert!(
                !v.contains(['"', '\'', '\\']),
                "unit runner: {path}: quoting in an environment file is not implemented"
            );
            (k.trim().to_string(), v.trim().to_string())
        })
        .collect()
}

/// A word as split by systemd, remembering whether any of it was quoted.
struct Word {
    text: String,
    quoted: bool,
}

fn split_quoted(line: &str) -> Vec<Word> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return words;
        }
        let mut word = Word {
            text: String::new(),
            quoted: false,
        };
        let mut quote: Option<char> = None;
        while let Some(c) = chars.next() {
            match (c, quote) {
                (c, None) if c.is_whitespace() => break,
                ('"' | '\'', None) => {
                    quote = Some(c);
                    word.quoted = true;
                }
                (c, Some(q)) if c == q => quote = None,
                ('\\', _) => word.text.push(match chars.next() {
                    Some('n') => '\n',
                    Some('t') => '\t',
                    Some(c @ ('\\' | '"' | '\'' | ' ')) => c,
                    other => {
                        panic!("unit runner: escape \\{other:?} is not implemented in {line:?}")
                    }
                }),
                (c, _) => word.text.push(c),
            }
        }
        assert!(
            quote.is_none(),
            "unit runner: unterminated quote in {line:?}"
        );
        words.push(word);
    }
}

fn split_words(line: &str) -> Vec<String> {
    split_quoted(line).into_iter().map(|w| w.text).collect()
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.starts_with(|c: char| c.is_ascii_digit())
}

fn lookup<'a>(env: &'a [(String, String)], name: &str) -> &'a str {
    // Later assignments win, as in systemd.
    env.iter()
        .rev()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

/// Splits a command line into argv and expands variables, as systemd does at exec time.
fn expand(line: &str, env: &[(String, String)]) -> Vec<String> {
    let mut argv = Vec::new();
    for word in split_quoted(line) {
        if !word.quoted
            && let Some(name) = word.text.strip_prefix('$').filter(|n| is_name(n))
        {
            argv.extend(lookup(env, name).split_whitespace().map(str::to_string));
            continue;
        }
        let mut out = String::new();
        let mut rest = word.text.as_str();
        while let Some(pos) = rest.find('$') {
            out.push_str(&rest[..pos]);
            rest = &rest[pos..];
            if let Some(r) = rest.strip_prefix("$$") {
                out.push('$');
                rest = r;
            } else if let Some((name, r)) = rest
                .strip_prefix("${")
                .and_then(|r| r.split_once('}'))
                .filter(|(n, _)| is_name(n))
            {
                out.push_str(lookup(env, name));
                rest = r;
            } else {
                panic!(
                    "unit runner: `$` inside a word is only implemented as ${{VAR}} or $$: {line:?}"
                )
            }
        }
        out.push_str(rest);
        argv.push(out);
    }
    assert!(!argv.is_empty(), "unit runner: empty command line");
    argv
}

#[test]
fn expands_like_systemd() {
    let env = vec![
        ("A".to_string(), "x y".to_string()),
        ("B".to_string(), "z".to_string()),
    ];
    assert_eq!(
        expand(r#"/bin/p $A ${A} "q ${B}" '$$A' a\ b"#, &env),
        ["/bin/p", "x", "y", "x y", "q z", "$A", "a b"]
    );
    let unit = Unit::parse("web-ts.service", &["[Service]\nExecStart=/x %n %N %i %%\n"]);
    assert_eq!(
        unit.exec["ExecStart"][0].line,
        "/x web-ts.service web-ts  %"
    );
}

#[test]
fn refuses_what_it_does_not_implement() {
    for text in [
        "[Service]\nPrivateNetwork=yes\n",
        "[Service]\nExecStart=/x %h\n",
        "[Service]\nExecStart=@/x y\n",
        "[Timer]\nOnCalendar=daily\n",
    ] {
        let r = std::panic::catch_unwind(|| Unit::parse("a.service", &[text]));
        assert!(r.is_err(), "accepted: {text}");
    }
    let r = std::panic::catch_unwind(|| expand("/x a$B", &[]));
    assert!(r.is_err());
}
