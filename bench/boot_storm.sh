#!/usr/bin/env bash
# A fleet's boot storm (issue 16 §5): HOSTS `tskeyctl provision` processes (release build), each
# with its own OAuth client, source, state directory and output, start together against the
# fake API (the fake_tailscale example), which refuses the first BURST requests with 429
# `Retry-After: RETRY_AFTER` and then every EVERY-th request with 503, UNAVAILABLE in all.
# Prints requests per host (mean, max; counted at the fake), completion time per host (median,
# max), keys orphaned (live at the fake but in no output or state record), and the spread of the
# retries after a 429. Needs jq and python3. Not part of .ci/run.
#
#   bench/boot_storm.sh                      # 200 hosts, storm 100,1,10,20
#   HOSTS=500 STORM=250,2,10,50 bench/boot_storm.sh
set -euo pipefail
cd "$(dirname "$0")/.."
HOSTS="${HOSTS:-200}"
STORM="${STORM:-100,1,10,20}"
DEADLINE="${DEADLINE:-60s}"
for tool in jq python3; do
  command -v "$tool" >/dev/null || { echo "bench: $tool not found" >&2; exit 1; }
done

cargo build --release --bin tskeyctl --example fake_tailscale >&2
bin="$PWD/target/release/tskeyctl"
work=$(mktemp -d)
fake_pid=
trap 'exec 3>&- 2>/dev/null || true; [[ -n "$fake_pid" ]] && kill "$fake_pid" 2>/dev/null; rm -rf "$work"' EXIT
mkfifo "$work/ctl"
target/release/examples/fake_tailscale --info "$work/info.json" --clients "$HOSTS" \
  --storm "$STORM" --report "$work/report.json" <"$work/ctl" 2>/dev/null &
fake_pid=$!
exec 3>"$work/ctl"   # the fake serves until this closes
for _ in $(seq 200); do [[ -s "$work/info.json" ]] && break; sleep 0.05; done
url=$(jq -r .url "$work/info.json")

# One directory per host: its OAuth client in an env file (0600), its state, its output.
for i in $(seq 0 $((HOSTS - 1))); do
  h="$work/host$i"
  mkdir -p "$h/run"
  secret=$(jq -r ".clients[$i]" "$work/info.json")
  id=$(cut -d- -f3 <<<"$secret")
  printf 'TAILSCALE_OAUTH_CLIENT_ID=%s\nTAILSCALE_OAUTH_CLIENT_SECRET=%s\n' "$id" "$secret" >"$h/oauth.env"
  chmod 600 "$h/oauth.env"
done

# Each host records its exit code and its completion time (ns since its own start).
host() {
  local h="$work/host$1" t0 rc=0
  t0=$(date +%s%N)
  "$bin" provision --source "$h/oauth.env" --out "$h/run/authkey" --state-dir "$h/state" \
    --tags tag:bench --api-url "$url" --deadline "$DEADLINE" >"$h/stdout" 2>"$h/stderr" || rc=$?
  echo "$rc $(( $(date +%s%N) - t0 ))" >"$h/done"
}
t0=$(date +%s%N)
pids=()
for i in $(seq 0 $((HOSTS - 1))); do host "$i" & pids+=($!); done
wait "${pids[@]}"
wall_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
exec 3>&-
wait "$fake_pid"
fake_pid=

python3 - "$work" "$HOSTS" "$STORM" "$wall_ms" <<'PY'
import json, os, statistics, sys
work, hosts, storm, wall = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
report = json.load(open(f"{work}/report.json"))
codes, times, out_ids, state_ids = [], [], [], []
for i in range(hosts):
    h = f"{work}/host{i}"
    rc, ns = open(f"{h}/done").read().split()
    codes.append(int(rc)); times.append(int(ns) / 1e6)
    if int(rc) == 0:
        key = open(f"{h}/run/authkey").read().strip()
        out_ids.append(key.split("-")[2])
        state_ids.append(json.load(open(f"{h}/state/authkey/state.json"))["key_id"])
per = {}
for r in report["requests"]:
    per.setdefault(r["client"], []).append(r)
counts = [len(v) for v in per.values()]
live = set(report["live_key_ids"])
orphaned = live - set(out_ids)
delays = []
for rs in per.values():
    for a, b in zip(rs, rs[1:]):
        if a["status"] == 429:
            delays.append(b["ms"] - a["ms"])
def busiest(xs, w=50.0):
    xs = sorted(xs)
    return max((sum(1 for y in xs[i:] if y < x + w) for i, x in enumerate(xs)), default=0)
status = lambda c: sum(1 for r in report["requests"] if r["status"] == c)
print(f"hosts {hosts}, storm {storm} (burst,retry-after s,every,503s), wall {wall} ms")
print(f"ok {codes.count(0)}/{hosts}; exit codes {sorted(set(codes))}")
print(f"requests {len(report['requests'])}: per host mean {len(report['requests'])/hosts:.2f}, "
      f"max {max(counts)}; 429s {status(429)}, 503s {status(503)}, "
      f"token 200s {sum(1 for r in report['requests'] if r['path'].endswith('/oauth/token') and r['status'] == 200)}")
print(f"completion per host: median {statistics.median(times):.0f} ms, max {max(times):.0f} ms")
print(f"keys: live {len(live)}, in outputs {len(set(out_ids))}, state == output for "
      f"{sum(1 for a, b in zip(out_ids, state_ids) if a == b)}, orphaned {len(orphaned)}")
if delays:
    print(f"retries after 429: {len(delays)}, delay {min(delays):.0f}..{max(delays):.0f} ms, "
          f"busiest 50 ms window {busiest(delays)}")
PY
