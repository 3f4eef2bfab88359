#!/usr/bin/env bash
# Whole-process timing of `tskeyctl recipient` / `tskeyctl identity` next to Debian's
# `age-keygen -y` (the nearest native peer: derive a recipient from an identity file).
# Needs: hyperfine, age (apt-get install -y hyperfine age), a release build (cargo build --release).
# Usage: bash bench/keys.sh [RUNS]   — prints hyperfine's table; copy medians into bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-300}
bin=${TSKEYCTL_BIN:-target/release/tskeyctl}
[ -x "$bin" ] || cargo build --release --quiet
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
key=secrets.example/host/ssh_host_ed25519_key
"$bin" identity "$key" -o "$work/identity.txt"
hyperfine -N --warmup 20 --runs "$runs" --export-json "$work/keys.json" \
  -n "tskeyctl recipient (.pub)" "$bin recipient $key.pub" \
  -n "tskeyctl recipient (private key)" "$bin recipient $key" \
  -n "tskeyctl identity" "$bin identity --force $key" \
  -n "age-keygen -y" "age-keygen -y $work/identity.txt" >&2
python3 bench/medians.py "$work/keys.json"
