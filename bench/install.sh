#!/usr/bin/env bash
# Benchmark: `tskeyctl install` of 200 secrets from 20 sops files (under --root, no mount) next to
# the agenix-style activation loop (one `age -d` per secret, mkdir/chmod/mv) over the same values.
# Needs: a release build (cargo build --release), sops 3.11 (SOPS_BIN), age, age-keygen, hyperfine, python3.
# Usage: bench/install.sh [WORKDIR]   — figures go to bench/RESULTS.md by hand.
# The default WORKDIR is on /dev/shm (tmpfs), standing in for the ramfs that holds /run/secrets.d in
# production; pass a directory on disk to measure there instead. Both tools write to the same place.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${TSKEYCTL:-$here/../target/release/tskeyctl}
work=${1:-$(mktemp -d -p "$( [ -d /dev/shm ] && echo /dev/shm || echo /tmp )")}
[ -f "$work/manifest.json" ] || python3 "$here/install_gen.py" "$work"
root=$work/root
# One warm-up install each so both measure the steady state (generation N → N+1, compare, prune).
"$bin" -q install --root "$root" --no-mount "$work/manifest.json" >/dev/null
bash "$work/agenix.sh" >/dev/null
hyperfine --warmup 3 --runs ${RUNS:-30} -N \
  --export-markdown "$work/results.md" \
  -n "tskeyctl install (200 secrets, 20 sops files)" \
  "$bin -q install --root $root --no-mount $work/manifest.json" \
  -n "agenix-style loop (200 x age -d)" \
  "bash $work/agenix.sh"
cat "$work/results.md"
# Both installed the same 200 values.
n=0
for f in "$root"/run/agenix/f*/k*; do
  rel=${f#"$root"/run/agenix/}
  cmp -s "$f" "$root/run/secrets/$rel" || { echo "MISMATCH: $rel" >&2; exit 1; }
  n=$((n + 1))
done
echo "identical bytes in $n secrets; generations: secrets.d=$(ls "$root/run/secrets.d") agenix.d=$(ls "$root/run/agenix.d")"
