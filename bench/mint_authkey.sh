#!/usr/bin/env bash
# The baseline: how users mint a Tailscale auth key today without tskeyctl — a bash function
# with curl + jq, in the shape of the TazLab design (OAuth client credentials → access token,
# then POST /api/v2/tailnet/-/keys). Note what it gets wrong that tskeyctl does not: the client
# secret and the access token are curl *arguments* (visible in /proc/*/cmdline), there is no
# retry, no deadline, and no tag validation before the request.
#
# Env: TS_API_CLIENT_SECRET (required), TS_API_CLIENT_ID (optional), TS_BASE_URL
# (default https://api.tailscale.com), TAGS (default tag:bench), EXPIRY (seconds, default 3600).
set -euo pipefail

mint_authkey() {
  local base="${TS_BASE_URL:-https://api.tailscale.com}"
  local token key
  token=$(curl -fsS \
    -d "client_id=${TS_API_CLIENT_ID:-}" \
    -d "client_secret=${TS_API_CLIENT_SECRET}" \
    "${base}/api/v2/oauth/token" | jq -r '.access_token')
  key=$(curl -fsS \
    -H "Authorization: Bearer ${token}" \
    -H 'Content-Type: application/json' \
    -d "$(jq -cn --arg tag "${TAGS:-tag:bench}" --argjson exp "${EXPIRY:-3600}" \
      '{capabilities:{devices:{create:{reusable:false,ephemeral:true,preauthorized:true,tags:[$tag]}}},expirySeconds:$exp}')" \
    "${base}/api/v2/tailnet/-/keys" | jq -r '.key')
  printf '%s\n' "$key"
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  mint_authkey
fi
