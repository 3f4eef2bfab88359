#!/usr/bin/env bash
# Whole-process `tskeyctl mint` over loopback against the fake Tailscale API, next to the
# curl + jq baseline (bench/mint_authkey.sh). Needs hyperfine, curl, jq
# (apt-get install -y hyperfine curl jq). Writes bench/results/mint.{md,json}.
#
#   bench/mint.sh            # 30 warmup + 300 runs each
#   RUNS=50 bench/mint.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${RUNS:-300}"
WARMUP="${WARMUP:-30}"
for tool in hyperfine curl jq; do
  command -v "$tool" >/dev/null || { echo "bench: $tool not found (apt-get install -y $tool)" >&2; exit 1; }
done

cargo build --release --bin tskeyctl --example fake_tailscale >&2
bin="$PWD/target/release/tskeyctl"
work=$(mktemp -d)
trap 'kill "$fake_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
target/release/examples/fake_tailscale --info "$work/info.json" 2>/dev/null &
fake_pid=$!
for _ in $(seq 100); do [[ -s "$work/info.json" ]] && break; sleep 0.05; done
url=$(jq -r .url "$work/info.json")
# The secret is a 0600 file: tskeyctl reads it with --oauth-secret-file; the baseline's bash
# loads it into TS_API_CLIENT_SECRET with the $(<file) builtin (no extra process).
jq -r .oauth_secret "$work/info.json" > "$work/secret"
chmod 600 "$work/secret"
export TS_BASE_URL="$url" TAGS=tag:bench
baseline="export TS_API_CLIENT_SECRET=\$(<$work/secret); source bench/mint_authkey.sh; mint_authkey"

# Sanity: both produce a key, and tskeyctl prints nothing on stderr.
"$bin" mint --oauth-secret-file "$work/secret" --tags tag:bench --api-url "$url" 2>"$work/err" | grep -q '^tskey-auth-'
[[ ! -s "$work/err" ]] || { cat "$work/err" >&2; exit 1; }
bash -c "$baseline" | grep -q '^tskey-auth-'

mkdir -p bench/results
hyperfine -N --warmup "$WARMUP" --runs "$RUNS" \
  --export-markdown bench/results/mint.md --export-json bench/results/mint.json \
  -n "tskeyctl mint" "$bin mint --oauth-secret-file $work/secret --tags tag:bench --api-url $url" \
  -n "bash mint_authkey (curl+jq)" "bash -c '$baseline'"
jq -r '.results[] | "\(.command): median \(.median * 1000 | . * 100 | round / 100) ms"' bench/results/mint.json
jq -r '"speed-up (median): \((.results[1].median / .results[0].median) * 10 | round / 10)x"' bench/results/mint.json
