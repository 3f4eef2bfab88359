#!/usr/bin/env bash
# Before/after comparison of two release binaries of tskeyctl on the same jobs, measured in
# alternating rounds so that a load change on the machine hits both alike.
# Needs: hyperfine, jq, python3. Usage:
#   bash bench/before_after.sh OLD_BIN NEW_BIN [ROUNDS] [RUNS_PER_ROUND]
# The fake Tailscale API is the example of the current tree (cargo build --release --example
# fake_tailscale). Output and state on tmpfs (/dev/shm), as /run/secrets is in production.
set -euo pipefail
cd "$(dirname "$0")/.."
old=$1 new=$2 rounds=${3:-10} runs=${4:-30}
[ -x target/release/examples/fake_tailscale ] || cargo build --release --quiet --example fake_tailscale
work=$(mktemp -d -p "${BENCH_TMP:-/dev/shm}")
trap 'kill "$fake_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
ex=secrets.example
id="$ex/host/ssh_host_ed25519_key"
"$new" decrypt -i "$id" --key TAILSCALE_OAUTH_CLIENT_SECRET "$ex/oauth.env" > "$work/demo-secret"
target/release/examples/fake_tailscale --info "$work/info.json" --accept-secret-file "$work/demo-secret" 2>/dev/null &
fake_pid=$!
for _ in $(seq 100); do [[ -s "$work/info.json" ]] && break; sleep 0.05; done
url=$(jq -r .url "$work/info.json")

jobs=(
  "recipient|recipient $id.pub"
  "decrypt|decrypt -i $id $ex/authkey.yaml"
  "provision auth key|provision -i $id --state-dir @W/state --source $ex/authkey.yaml --key tailscale_authkey --out @W/out/a"
  "provision OAuth + mint|provision -i $id --state-dir @W/state --source $ex/oauth.env --tags tag:server --api-url $url --out @W/out/b"
)
for which in old new; do
  mkdir -p -m 0700 "$work/$which/out"
  bin=${!which}
  for j in "${jobs[@]}"; do
    args=${j#*|}; args=${args//@W/$work/$which}
    $bin $args >/dev/null
  done
done
: > "$work/all.tsv"
for r in $(seq "$rounds"); do
  for j in "${jobs[@]}"; do
    name=${j%%|*}
    for which in old new; do
      bin=${!which}; args=${j#*|}; args=${args//@W/$work/$which}
      hyperfine -N --warmup 3 --runs "$runs" --export-json "$work/r.json" "$bin $args" >/dev/null 2>&1
      jq -r --arg n "$name" --arg w "$which" '.results[0].times[] | [$n, $w, .] | @tsv' "$work/r.json" >> "$work/all.tsv"
    done
  done
done
python3 - "$work/all.tsv" <<'PY'
import sys, statistics, collections
t = collections.defaultdict(list)
for line in open(sys.argv[1]):
    n, w, s = line.rstrip("\n").split("\t")
    t[(n, w)].append(float(s) * 1000)
names = list(dict.fromkeys(n for n, _ in t))
print("| job | before (median ms) | after (median ms) | after / before | runs each |")
print("|---|---:|---:|---:|---:|")
for n in names:
    o, a = statistics.median(t[(n, "old")]), statistics.median(t[(n, "new")])
    print(f"| {n} | {o:.2f} | {a:.2f} | {a/o:.2f} | {len(t[(n, 'new')])} |")
PY
