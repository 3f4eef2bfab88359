#!/usr/bin/env bash
# The static release binary (scripts/build-static) against the dynamic one (`cargo build
# --release`), same source, side by side in one hyperfine run per job: the README's main job
# (provision of the sops auth-key example, output and state on tmpfs) and one decrypt; with
# CONFORMANCE_DIR (a folder holding sops-nix/test-assets/) also the decrypt of sops-nix's own
# secrets.yaml with its ssh host key. Then peak RSS (GNU time, median of 30 runs each).
# Needs: hyperfine, /usr/bin/time, python3. Usage: bash bench/static.sh [RUNS]
# STATIC_BIN / DYNAMIC_BIN use existing builds instead of building.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-300}
static=${STATIC_BIN:-$(scripts/build-static --quiet | tail -n1)}
dynamic=${DYNAMIC_BIN:-}
if [ -z "$dynamic" ]; then
  cargo build --locked --release --quiet --bin tskeyctl
  dynamic=target/release/tskeyctl
fi
work=$(mktemp -d -p "${BENCH_TMP:-/dev/shm}")
trap 'rm -rf "$work"' EXIT
ex=secrets.example
id=$ex/host/ssh_host_ed25519_key
unset SOPS_AGE_KEY SOPS_AGE_KEY_FILE SOPS_AGE_SSH_PRIVATE_KEY_FILE

main_job() { echo "$1 provision --source $ex/authkey.yaml --key tailscale_authkey -i $id --out $work/$2/secrets/tailscale_authkey --mkdir --state-dir $work/$2/state"; }
jobs=("main-job|$(main_job "$static" s)|$(main_job "$dynamic" d)"
      "decrypt-example|$static decrypt -i $id $ex/authkey.yaml|$dynamic decrypt -i $id $ex/authkey.yaml")
if [ -n "${CONFORMANCE_DIR:-}" ]; then
  a=$CONFORMANCE_DIR/sops-nix/test-assets
  jobs+=("decrypt-sops-nix|$static decrypt -i $a/ssh-ed25519-key $a/secrets.yaml|$dynamic decrypt -i $a/ssh-ed25519-key $a/secrets.yaml")
fi

for j in "${jobs[@]}"; do
  IFS='|' read -r name s d <<<"$j"
  $s >/dev/null; $d >/dev/null   # both must work (and create their output directories)
  hyperfine -N --warmup 20 --runs "$runs" --export-json "$work/$name.json" \
    -n "$name static" "$s" -n "$name dynamic" "$d" >/dev/null
  echo "### $name"
  python3 bench/medians.py "$work/$name.json"
  for v in static dynamic; do
    cmd=$s; [ "$v" = dynamic ] && cmd=$d
    for _ in $(seq 30); do /usr/bin/time -f %M $cmd 2>&1 >/dev/null | tail -n1; done |
      sort -n | awk -v n="$name $v" '{ a[NR] = $1 } END { printf "peak RSS %s: %.1f MiB (median of %d)\n", n, a[int((NR + 1) / 2)] / 1024, NR }'
  done
done
