#!/usr/bin/env bash
# Whole-process `tskeyctl provision` of the bundled examples:
#  - the sops-encrypted auth key (secrets.example/authkey.yaml): no network;
#  - the sops-encrypted OAuth client (secrets.example/oauth.env) minting against the local fake
#    Tailscale API on loopback (examples/fake_tailscale.rs).
# Needs: hyperfine, jq (apt-get install -y hyperfine jq). Usage: bash bench/provision.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-300}
cargo build --release --quiet --bin tskeyctl --example fake_tailscale
bin=$PWD/target/release/tskeyctl
# Output and state on tmpfs, as /run/secrets is in production (see RESULTS.md for the on-disk cost).
work=$(mktemp -d -p "${BENCH_TMP:-/dev/shm}")
trap 'kill "$fake_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
ex=secrets.example
id="$ex/host/ssh_host_ed25519_key"
mkdir -m 0700 "$work/out"

# The fake accepts the demo OAuth secret (decrypted here into a 0600 file, never argv).
"$bin" decrypt -i "$id" --key TAILSCALE_OAUTH_CLIENT_SECRET "$ex/oauth.env" > "$work/demo-secret"
target/release/examples/fake_tailscale --info "$work/info.json" --accept-secret-file "$work/demo-secret" 2>/dev/null &
fake_pid=$!
for _ in $(seq 100); do [[ -s "$work/info.json" ]] && break; sleep 0.05; done
url=$(jq -r .url "$work/info.json")

common="-i $id --state-dir $work/state"
"$bin" provision $common --source "$ex/authkey.yaml" --key tailscale_authkey --out "$work/out/a"
"$bin" provision $common --source "$ex/oauth.env" --tags tag:server --api-url "$url" --out "$work/out/b"

hyperfine -N --warmup 20 --runs "$runs" --export-json "$work/provision.json" \
  -n "provision auth-key example (sops yaml, no network)" \
  "$bin provision $common --source $ex/authkey.yaml --key tailscale_authkey --out $work/out/a" \
  -n "provision OAuth example (sops dotenv) + mint via fake API" \
  "$bin provision $common --source $ex/oauth.env --tags tag:server --api-url $url --out $work/out/b" >&2
python3 bench/medians.py "$work/provision.json"
