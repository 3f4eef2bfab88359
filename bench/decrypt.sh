#!/usr/bin/env bash
# Whole-process decrypt benchmarks, side by side in one hyperfine run each (medians are what
# bench/RESULTS.md reports). Needs: a release build, hyperfine, the real sops (SOPS_BIN),
# Debian age (AGE_BIN or PATH), node + the npm package sops-age (SOPS_AGE_NPM_DIR), GNU time
# (peak RSS), python3, and CONFORMANCE_DIR: a folder holding sops-nix's own test files
# (sops-nix/test-assets/{secrets.yaml,ssh-ed25519-key{,.pub}} and
# sops-nix/derived/ssh-ed25519-key.age-identity.txt, never committed here).
# Usage: CONFORMANCE_DIR=DIR bench/decrypt.sh [--quick]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
conf=${CONFORMANCE_DIR:?set CONFORMANCE_DIR to a folder with sops-nix/test-assets (see the header)}
runs=${BENCH_RUNS:-50}
[ "${1:-}" = "--quick" ] && runs=10
tk=${TSKEYCTL_BIN:-$root/target/release/tskeyctl}
sops=${SOPS_BIN:-$(command -v sops)}
age=${AGE_BIN:-$(command -v age)}
npm_dir=${SOPS_AGE_NPM_DIR:?set SOPS_AGE_NPM_DIR to a directory with node_modules/sops-age}
[ -x "$tk" ] || (cd "$root" && cargo build --release --quiet)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

assets=$conf/sops-nix/test-assets
secrets=$assets/secrets.yaml
sshkey=$assets/ssh-ed25519-key
conv=$conf/sops-nix/derived/ssh-ed25519-key.age-identity.txt
# tskeyctl must not pick up this machine's host key or sops env.
unset SOPS_AGE_KEY SOPS_AGE_KEY_FILE SOPS_AGE_SSH_PRIVATE_KEY_FILE
export HOME=$work

# age file of the same size as secrets.yaml, to the same converted key.
recipient=$(grep -o 'age1[0-9a-z]*' "$conv" || true)
[ -n "$recipient" ] || recipient=$("$tk" recipient "$assets/ssh-ed25519-key.pub")
head -c "$(stat -c %s "$secrets")" /dev/urandom > "$work/plain.bin"
"$age" -r "$recipient" -o "$work/same-size.age" "$work/plain.bin"

cat > "$work/dec.mjs" <<JS
import { decryptSops } from "$npm_dir/node_modules/sops-age/dist/index.js";
import { readFileSync } from "node:fs";
const key = readFileSync("$conv", "utf8").split("\n").find((l) => l.startsWith("AGE-SECRET-KEY-"));
const out = await decryptSops({ path: process.argv[2], secretKey: key, fileType: "yaml" });
process.stdout.write(JSON.stringify(out));
JS

# Sanity: all four agree on the content before timing.
"$tk" decrypt -i "$sshkey" "$secrets" > "$work/tk.out"
SOPS_AGE_KEY_FILE=$conv "$sops" decrypt "$secrets" > "$work/sops.out"
cmp "$work/tk.out" "$work/sops.out"
"$age" -d -i "$conv" "$work/same-size.age" | cmp - "$work/plain.bin"
node "$work/dec.mjs" "$secrets" > /dev/null

echo "== small: sops-nix secrets.yaml ($(stat -c %s "$secrets") bytes)"
hyperfine -N --warmup 5 --runs "$runs" --export-json "$work/small.json" \
  -n tskeyctl "$tk decrypt -i $sshkey $secrets" \
  -n sops "env SOPS_AGE_KEY_FILE=$conv $sops decrypt $secrets" \
  -n age "$age -d -i $conv $work/same-size.age" \
  -n sops-age "node $work/dec.mjs $secrets"

# 10,000-value YAML, encrypted by the real sops.
python3 - "$work/big.yaml" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    for i in range(10000):
        f.write(f"key{i:05d}: value-{i}-{'x' * 16}\n")
PY
SOPS_AGE_KEY_FILE=$conv "$sops" encrypt --age "$recipient" "$work/big.yaml" > "$work/big.enc.yaml"
"$tk" decrypt -i "$sshkey" "$work/big.enc.yaml" | cmp - <(SOPS_AGE_KEY_FILE=$conv "$sops" decrypt "$work/big.enc.yaml")
echo "== 10,000 values ($(stat -c %s "$work/big.enc.yaml") bytes)"
hyperfine -N --warmup 2 --runs "$(( runs < 20 ? runs : 20 ))" --export-json "$work/big.json" \
  -n tskeyctl "$tk decrypt -i $sshkey $work/big.enc.yaml" \
  -n sops "env SOPS_AGE_KEY_FILE=$conv $sops decrypt $work/big.enc.yaml"

echo "== peak RSS (KiB, GNU time %M)"
for f in "$secrets" "$work/big.enc.yaml"; do
  /usr/bin/time -f "tskeyctl $(basename "$f"): %M KiB" "$tk" decrypt -i "$sshkey" "$f" > /dev/null
done
/usr/bin/time -f "age -d same-size: %M KiB" "$age" -d -i "$conv" "$work/same-size.age" > /dev/null

python3 - "$work/small.json" "$work/big.json" <<'PY'
import json, sys
for path in sys.argv[1:]:
    res = {r["command"]: r["median"] * 1000 for r in json.load(open(path))["results"]}
    tk = res["tskeyctl"]
    print(path.rsplit("/", 1)[-1], {k: f"{v:.2f} ms" for k, v in res.items()})
    for k, v in res.items():
        if k != "tskeyctl":
            print(f"  {k}/tskeyctl = {v / tk:.1f}x")
PY
