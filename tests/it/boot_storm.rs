//! A fleet's boot storm (issue 16 §5): 200 hosts — 200 `tskeyctl provision` processes, each with
//! its own OAuth client, source, state directory and output — start together against the fake
//! API, which refuses the first burst of 100 requests with 429 `Retry-After: 1` and then gives
//! every 10th request a 503, 20 in all.
//!
//! Counted at the fake: every host gets a valid key within its deadline; the fleet makes at most
//! 3 requests per host on average (token and key requests together); each host exchanges its
//! OAuth secret exactly once (the access token is kept across retries); exactly 100 429s and 20
//! 503s were given, and every other request is accounted for (a 503 on a create costs one
//! listing of the keys before the retry and one after it); no key is orphaned (the live keys at
//! the fake are exactly the keys in the 200 outputs, each in one output and its state record);
//! and the retries spread: every rate-limited host waited at least the `Retry-After`, and the
//! jitter on top scatters them (no 50 ms window holds half of them).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::fake_tailscale::{FakeTailscale, KEYS, Recorded, Storm, TOKEN};
use crate::util::{assert_no_secret, command, s};

const HOSTS: usize = 200;
const BURST: u32 = 100;
const RETRY_AFTER: Duration = Duration::from_secs(1);
const EVERY: u32 = 10;
const UNAVAILABLE: u32 = 20;
/// Each host's `--deadline`: the storm costs a few seconds; 200 debug processes on 2 cores
/// start over a few more.
const DEADLINE: &str = "45s";

struct Host {
    client: String,
    dir: std::path::PathBuf,
    child: Child,
}

fn start_host(fake: &FakeTailscale, root: &Path, i: usize) -> Host {
    let secret = fake.add_oauth_client(&["auth_keys"], &["tag:server"]);
    let client = secret.split('-').nth(2).expect("client id").to_string();
    let dir = root.join(format!("host{i:03}"));
    fs::create_dir_all(dir.join("run")).expect("mkdir");
    let source = dir.join("oauth.env");
    fs::write(
        &source,
        format!("TAILSCALE_OAUTH_CLIENT_ID={client}\nTAILSCALE_OAUTH_CLIENT_SECRET={secret}\n"),
    )
    .expect("write source");
    let (out, state, url) = (dir.join("run/authkey"), dir.join("state"), fake.url());
    let args = [
        "provision",
        "--source",
        s(&source),
        "--out",
        s(&out),
        "--state-dir",
        s(&state),
        "--tags",
        "tag:server",
        "--api-url",
        &url,
        "--deadline",
        DEADLINE,
    ];
    let mut cmd = command(&args, &[]);
    cmd.stdout(File::create(dir.join("stdout")).expect("stdout"))
        .stderr(File::create(dir.join("stderr")).expect("stderr"));
    Host {
        client,
        dir,
        child: cmd.spawn().expect("spawn tskeyctl"),
    }
}

/// The largest number of `times` within any `window`.
fn busiest(times: &[Duration], window: Duration) -> usize {
    let mut t = times.to_vec();
    t.sort();
    (0..t.len())
        .map(|i| t[i..].iter().take_while(|x| **x < t[i] + window).count())
        .max()
        .unwrap_or(0)
}

fn is_create(r: &Recorded) -> bool {
    r.method == "POST" && r.path == KEYS
}

#[test]
fn two_hundred_hosts_booting_together_each_get_one_key_in_few_requests() {
    let fake = FakeTailscale::start();
    fake.storm(Storm {
        burst: BURST,
        retry_after: RETRY_AFTER.as_secs().to_string(),
        every: EVERY,
        unavailable: UNAVAILABLE,
    });
    let root = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    let mut hosts: Vec<Host> = (0..HOSTS)
        .map(|i| start_host(&fake, root.path(), i))
        .collect();
    let mut codes = Vec::new();
    for h in &mut hosts {
        codes.push(h.child.wait().expect("wait").code().unwrap_or(-1));
    }
    let took = started.elapsed();
    let secrets = fake.secrets();
    let reqs = fake.requests();

    // Every host got a key, within the deadline, and said nothing secret.
    let mut out_keys: BTreeMap<String, usize> = BTreeMap::new();
    let live: BTreeMap<String, String> = fake
        .live_keys()
        .into_iter()
        .map(|(id, key)| (key, id))
        .collect();
    for (i, (h, code)) in hosts.iter().zip(&codes).enumerate() {
        let stderr = fs::read_to_string(h.dir.join("stderr")).unwrap_or_default();
        assert_eq!(*code, 0, "host {i}: {stderr}");
        assert_no_secret("stderr", &stderr, &secrets);
        assert_no_secret("stderr", &stderr, &fake.minted_keys());
        let out = fs::read_to_string(h.dir.join("run/authkey")).expect("out");
        let key = out.strip_suffix('\n').expect("newline").to_string();
        let id = live
            .get(&key)
            .unwrap_or_else(|| panic!("host {i}: its key is not live at the fake"));
        let state: Value = serde_json::from_str(
            &fs::read_to_string(h.dir.join("state/authkey/state.json")).expect("state"),
        )
        .expect("state json");
        assert_eq!(state["key_id"], id.as_str(), "host {i}");
        assert_eq!(state["result"], "ok", "host {i}");
        assert_eq!(state["minted"], true, "host {i}");
        *out_keys.entry(key).or_default() += 1;
    }
    assert!(took < Duration::from_secs(60), "the storm took {took:?}");

    // No key orphaned: the live keys are exactly the 200 delivered, each to one host.
    assert_eq!(out_keys.len(), HOSTS, "two hosts got the same key");
    assert!(out_keys.values().all(|n| *n == 1));
    assert_eq!(
        live.keys().cloned().collect::<BTreeSet<_>>(),
        out_keys.keys().cloned().collect::<BTreeSet<_>>(),
        "a live key at the fake that no host holds"
    );
    assert_eq!(
        fake.minted_keys().len(),
        HOSTS,
        "more keys created than hosts"
    );

    // Exact accounting at the fake.
    let status = |pred: &dyn Fn(&Recorded) -> bool, code: u16| {
        reqs.iter().filter(|r| pred(r) && r.status == code).count()
    };
    let any = |_: &Recorded| true;
    let token = |r: &Recorded| r.path == TOKEN;
    let list = |r: &Recorded| r.method == "GET" && r.path == KEYS;
    assert_eq!(status(&any, 429), BURST as usize);
    assert_eq!(status(&any, 503), UNAVAILABLE as usize);
    // One token exchange per host: the access token is kept across the retries of the create.
    assert_eq!(status(&token, 200), HOSTS);
    assert_eq!(status(&is_create, 200), HOSTS);
    // A 503 on a create may have created a key: the host lists the keys before its retry
    // (until a listing succeeds) and once more after the create that succeeds.
    let mut per_host: BTreeMap<String, Vec<&Recorded>> = BTreeMap::new();
    for r in &reqs {
        let c = fake.client_of(r).expect("every request is a host's");
        per_host.entry(c).or_default().push(r);
    }
    assert_eq!(per_host.len(), HOSTS);
    let mut expected_lists = 0;
    for h in &hosts {
        let mine = &per_host[&h.client];
        let created_503 = mine
            .iter()
            .filter(|r| is_create(r) && r.status == 503)
            .count();
        if created_503 > 0 {
            expected_lists += created_503 + 1;
        }
    }
    assert_eq!(status(&list, 200), expected_lists);
    let accounted = 2 * HOSTS + BURST as usize + UNAVAILABLE as usize + expected_lists;
    assert_eq!(reqs.len(), accounted, "requests nobody asked for");
    // At most 3 requests per host on average.
    assert!(
        reqs.len() <= 3 * HOSTS,
        "{} requests: {:.2} per host",
        reqs.len(),
        reqs.len() as f64 / HOSTS as f64
    );

    // The retries after a 429: never before the Retry-After, and spread by the jitter.
    let mut delays = Vec::new();
    let mut arrivals = Vec::new();
    for rs in per_host.values() {
        for w in rs.windows(2) {
            if w[0].status == 429 {
                let d = w[1].at.duration_since(w[0].at);
                assert!(d >= RETRY_AFTER, "retried after {d:?}");
                delays.push(d);
                arrivals.push(w[1].at.duration_since(started));
            }
        }
    }
    assert_eq!(delays.len(), BURST as usize);
    let (lo, hi) = (delays.iter().min().unwrap(), delays.iter().max().unwrap());
    let window = Duration::from_millis(50);
    let (by_delay, by_arrival) = (busiest(&delays, window), busiest(&arrivals, window));
    eprintln!(
        "boot storm: {HOSTS} hosts in {took:?}, {} requests ({:.2}/host), retry delays \
         {lo:?}..{hi:?}, busiest 50 ms: {by_delay} by delay, {by_arrival} by arrival",
        reqs.len(),
        reqs.len() as f64 / HOSTS as f64
    );
    assert!(*hi - *lo >= Duration::from_millis(200), "{lo:?}..{hi:?}");
    assert!(
        by_delay < delays.len() / 2,
        "{by_delay} retries waited within 50 ms of each other"
    );
    assert!(
        by_arrival < delays.len() / 2,
        "{by_arrival} retries arrived within one 50 ms"
    );
}
