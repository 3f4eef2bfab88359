#!/usr/bin/env bash
# Regenerates the encrypted examples from plain/ with `tskeyctl encrypt` (recipients from
# .sops.yaml: the PUBLIC DEMO host key) and, for the agenix-style file, Debian's `age` to the
# host key's native ssh-ed25519 recipient. Run from anywhere: bash secrets.example/make.sh
set -euo pipefail
cd "$(dirname "$0")"
bin=${TSKEYCTL_BIN:-../target/release/tskeyctl}
"$bin" encrypt plain/authkey.yaml > authkey.yaml
"$bin" encrypt plain/oauth.env > oauth.env
"$bin" encrypt plain/apikey.json > apikey.json
age -R host/ssh_host_ed25519_key.pub -o authkey.age plain/authkey.txt
